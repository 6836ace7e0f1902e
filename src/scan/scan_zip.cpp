// Zip archives, read three ways, and every member any of the readings could hand to an unpickler
// scanned:
//  - torch.load (miniz): the archive prefix is the first central-directory name up to '/';
//    records are looked up by name (case-insensitively, as miniz does by default); a member's
//    method and sizes come from the central directory and its data starts after the *local*
//    header's name and extra field; CRCs are not what decides.
//  - a strict reader (Python's zipfile, libzip): offsets shifted by data prepended to the
//    archive, the local name must equal the central name, CRCs must match, encrypted members fail.
//  - a streaming reader: the local headers, walked from the start.
// Disagreements between them are findings: a loader and a scanner reading different files is
// how most real bypasses work.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "container/npy.hpp"
#include "container/sniff.hpp"
#include "container/zip_archive.hpp"
#include "container/zip_layout.hpp"
#include "scan/file_scan.hpp"

namespace brine::scan {

using analysis::Verdict;
using rules::Severity;

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  return out;
}

bool ends_with_ci(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && lower(s.substr(s.size() - suffix.size())) == suffix;
}

/// General-purpose flag bits a plain writer sets: deflate options (1, 2), data descriptor (3),
/// UTF-8 names (11). Anything else changes how readers treat the member.
constexpr std::uint16_t kOrdinaryFlags = 0x0806 | 0x0008;

/// Where one reading finds a member's bytes.
struct Range {
  std::uint64_t data_offset;
  std::uint64_t compressed_size;
  std::uint16_t method;
  bool operator<(const Range& o) const {
    return std::tie(data_offset, compressed_size, method) < std::tie(o.data_offset, o.compressed_size, o.method);
  }
};

struct Candidate {
  std::string name;           // as the reading that found it names it
  std::uint64_t size = 0;     // declared uncompressed size
  std::uint32_t crc = 0;
  bool crc_known = false;
  bool storage = false;       // a torch storage record: never read
  bool hidden = false;        // only the local-header walk sees it
};

}  // namespace

void FileScan::scan_zip(core::Bytes data, const std::string& where, unsigned depth) {
  auto parsed = container::parse_zip_layout(data, options_.limits.max_archive_entries);
  if (!parsed) {
    add(analysis::error_finding(parsed.error(), where));
    if (parsed.error().code == core::ErrorCode::kLimitExceeded) report_.findings.back().rule = "limit:max-archive-entries";
    return;
  }
  const container::ZipLayout& z = *parsed;
  const bool top = where.empty();

  for (const auto& problem : z.problems) {
    add("unapproved:zip-structure", Severity::kMedium, Verdict::kUnapproved, where, z.eocd_offset,
        "readers disagree about this archive's structure: " + problem);
  }
  if (z.prepended < 0) {
    add("unapproved:zip-structure", Severity::kMedium, Verdict::kUnapproved, where, z.eocd_offset,
        fmt::format("the central directory lies {} bytes before where the EOCD says", -z.prepended));
  }
  if (!z.walk_stop_reason.empty()) {
    add("unapproved:zip-gap", Severity::kMedium, Verdict::kUnapproved, where, z.walk_end,
        "the local headers do not run contiguously to the central directory: " + z.walk_stop_reason);
    // Whatever sits in the gap is scanned too: some reader may be pointed at it.
    const std::uint64_t cd_start = z.eocd_offset;
    if (z.walk_end < cd_start) {
      const core::Bytes gap = data.subspan(z.walk_end, std::min<std::uint64_t>(cd_start - z.walk_end, data.size() - z.walk_end));
      if (container::sniff(gap) != container::Format::kUnknown || container::sniff_codec(gap)) {
        scan_blob(gap, child(where, fmt::format("[gap@{}]", z.walk_end)), depth + 1);
      }
    }
  }
  if (z.trailing > 0) {
    const std::uint64_t end = data.size() - z.trailing;
    add("unapproved:trailing-data", Severity::kMedium, Verdict::kUnapproved, where, end,
        fmt::format("{} bytes follow the end of the archive", z.trailing));
    const core::Bytes tail = data.subspan(end);
    if (container::sniff(tail) != container::Format::kUnknown || container::sniff_codec(tail)) {
      scan_blob(tail, child(where, "[after-archive]"), depth + 1);
    }
  }
  // A strict reader's opinion (libzip with its consistency checks).
  if (auto strict = container::ZipArchive::open(data, /*strict=*/true); !strict) {
    add("unapproved:zip-structure", Severity::kMedium, Verdict::kUnapproved, where, 0,
        "a strict zip reader rejects the archive: " + strict.error().detail);
  }

  // ---- torch's view: prefix from the first central name, case-insensitive lookup ----
  const bool torch_magic = data.size() >= 4 && std::equal(data.begin(), data.begin() + 4, "PK\x03\x04");
  std::string prefix;
  if (torch_magic && !z.central.empty()) {
    const auto slash = z.central[0].name.find('/');
    if (slash != std::string::npos) prefix = z.central[0].name.substr(0, slash + 1);
  }
  std::map<std::string, std::vector<std::size_t>> by_lower;
  for (std::size_t i = 0; i < z.central.size(); ++i) by_lower[lower(z.central[i].name)].push_back(i);
  auto torch_has = [&](std::string_view record) { return !prefix.empty() && by_lower.count(lower(prefix + std::string(record))) != 0; };
  const bool torch = torch_has("data.pkl") || torch_has("constants.pkl");
  if (top && torch) {
    bool script = torch_has("constants.pkl");
    for (const auto& e : z.central) script = script || lower(e.name).starts_with(lower(prefix + "code/"));
    report_.container = script ? "torchscript-zip" : "torch-zip";
  }
  const std::string storage_data = lower(prefix + "data/"), storage_constants = lower(prefix + "constants/");

  // ---- every member, as each reading sees it ----
  std::map<Range, Candidate> candidates;
  std::set<std::string> seen_exact;
  std::uint64_t outside = 0;
  std::string first_outside;
  const std::uint64_t shift = z.prepended > 0 ? static_cast<std::uint64_t>(z.prepended) : 0;

  for (const auto& e : z.central) {
    const std::string member = child(where, e.name);
    const std::string lname = lower(e.name);
    if (!seen_exact.insert(e.name).second) {
      add("evasion:zip-duplicate-name", Severity::kHigh, Verdict::kMalicious, member, e.offset,
          "two entries have this name: readers pick different ones (zipfile the last, miniz either)");
    } else if (by_lower[lname].size() > 1 && by_lower[lname].front() != static_cast<std::size_t>(&e - z.central.data())) {
      add("evasion:zip-duplicate-name", Severity::kHigh, Verdict::kMalicious, member, e.offset,
          "another entry has this name in a different case: torch's case-insensitive lookup may read either");
    }
    if ((e.flags & 0x01) != 0) {
      add("unapproved:zip-encrypted", Severity::kHigh, Verdict::kUnapproved, member, e.offset,
          "the member is marked encrypted: strict readers refuse it, others may read it as is");
    } else if ((e.flags & ~kOrdinaryFlags) != 0) {
      add("unapproved:zip-flags", Severity::kMedium, Verdict::kUnapproved, member, e.offset,
          fmt::format("unusual general-purpose flags 0x{:04x}", e.flags));
    }
    if (torch && !lname.starts_with(lower(prefix)) && outside++ == 0) first_outside = e.name;
    const bool storage = torch && (lname.starts_with(storage_data) || lname.starts_with(storage_constants));

    // torch's reading: data after the local header found at the recorded offset.
    auto local = container::parse_local_header(data, e.local_offset);
    auto shifted = shift != 0 ? container::parse_local_header(data, e.local_offset + shift) : local;
    const auto& strict_local = shifted;
    if (!local && !shifted) {
      add("malformed:zip-local-header", Severity::kHigh, Verdict::kError, member, e.local_offset,
          "the central directory points at no local header");
      continue;
    }
    if (strict_local) {
      const auto& l = *strict_local;
      std::vector<std::string> diffs;
      if (l.name != e.name) diffs.push_back(fmt::format("name '{}' vs '{}'", l.name, e.name));
      if (l.method != e.method) diffs.push_back(fmt::format("method {} vs {}", l.method, e.method));
      if ((l.flags & ~0x0008) != (e.flags & ~0x0008)) diffs.push_back(fmt::format("flags 0x{:04x} vs 0x{:04x}", l.flags, e.flags));
      if (!l.has_descriptor) {
        if (l.crc != e.crc) diffs.push_back(fmt::format("crc {:08x} vs {:08x}", l.crc, e.crc));
        if (l.compressed_size != e.compressed_size || l.size != e.size) {
          diffs.push_back(fmt::format("sizes {}/{} vs {}/{}", l.compressed_size, l.size, e.compressed_size, e.size));
        }
      }
      if (!diffs.empty()) {
        add("evasion:zip-header-mismatch", Severity::kHigh, Verdict::kMalicious, member, l.offset,
            fmt::format("local header and central directory disagree ({}): readers that trust one or the other read different members",
                        fmt::join(diffs, ", ")));
      }
    }
    auto note = [&](const container::ZipLocal& l, std::uint64_t csize, std::uint16_t method, const std::string& name) {
      Candidate& c = candidates[Range{l.data_offset, csize, method}];
      if (c.name.empty()) c.name = name;
      c.size = e.size;
      c.crc = e.crc;
      c.crc_known = true;
      c.storage = c.storage || storage;
    };
    if (local) note(*local, e.compressed_size, e.method, e.name);                // torch / miniz
    if (shifted && shift != 0) note(*shifted, e.compressed_size, e.method, e.name);  // zipfile with prepended data
    if (lname == lower(prefix + "data.pkl") && e.method != 0) {
      add("anomaly:deflated-pickle", Severity::kLow, Verdict::kClean, member, e.offset,
          fmt::format("data.pkl is compressed (method {}); torch.save stores it", e.method));
    }
  }
  // The streaming reading: local headers no central entry accounts for.
  for (const auto& l : z.locals) {
    bool known = false;
    for (const auto& [range, c] : candidates) known = known || range.data_offset == l.data_offset;
    if (known) continue;
    const std::uint64_t csize = l.compressed_size;
    Candidate& c = candidates[Range{l.data_offset, csize, l.method}];
    c.name = l.name;
    c.size = l.size;
    c.crc = l.crc;
    c.crc_known = !l.has_descriptor;
    c.hidden = true;
    const std::string lname = lower(l.name);
    c.storage = torch && (lname.starts_with(storage_data) || lname.starts_with(storage_constants));
    add("unapproved:zip-hidden-entry", Severity::kMedium, Verdict::kUnapproved, child(where, l.name), l.offset,
        "a local header that the central directory does not list: streaming readers see it, others do not");
  }
  if (outside != 0) {
    add("unapproved:outside-prefix", Severity::kMedium, Verdict::kUnapproved, child(where, first_outside), 0,
        fmt::format("{} entr{} outside the archive prefix '{}' that torch.load uses", outside,
                    outside == 1 ? "y lies" : "ies lie", prefix));
  }

  // ---- scan what any reading could unpickle ----
  std::map<std::string, std::uint64_t> record_sizes;  // for storage checks (lower-case names)
  for (const auto& e : z.central) record_sizes[lower(e.name)] = e.size;
  bool any_pickle = false;
  for (const auto& [range, c] : candidates) {
    const std::string member = child(where, c.name);
    MemberInfo info{member, c.storage ? "storage" : "other", c.size, false};
    if (c.storage || range.compressed_size == 0) {
      if (top || c.storage) report_.members.push_back(std::move(info));
      continue;
    }
    const bool pickle_name = ends_with_ci(c.name, ".pkl") || ends_with_ci(c.name, ".debug_pkl") ||
                             ends_with_ci(c.name, ".pickle") || ends_with_ci(c.name, ".joblib");
    // Stored members are views into the file; others are decompressed (bounded).
    std::vector<std::uint8_t> owned;
    core::Bytes bytes;
    if (range.method == 0) {
      if (range.data_offset > data.size() || range.compressed_size > data.size() - range.data_offset) {
        add("malformed:truncated", Severity::kHigh, Verdict::kError, member, range.data_offset,
            fmt::format("member data claims {} bytes, the file ends first", range.compressed_size));
        continue;
      }
      bytes = data.subspan(range.data_offset, range.compressed_size);
    } else {
      if (range.method != 8 && range.method != 12 && range.method != 14 && range.method != 93) {
        add("unapproved:unscanned-member", Severity::kMedium, Verdict::kUnapproved, member, range.data_offset,
            fmt::format("compression method {} is not one brine (or torch) reads", range.method));
        continue;
      }
      if (range.data_offset > data.size() || range.compressed_size > data.size() - range.data_offset) {
        add("malformed:truncated", Severity::kHigh, Verdict::kError, member, range.data_offset, "member data runs past the end of the file");
        continue;
      }
      const container::Codec codec = range.method == 8 ? container::Codec::kDeflateRaw
                                     : range.method == 12 ? container::Codec::kBzip2
                                     : range.method == 14 ? container::Codec::kZipLzma
                                                          : container::Codec::kZstd;
      auto out = inflate(codec, data.subspan(range.data_offset, range.compressed_size), member);
      if (!out) continue;
      owned = std::move(*out);
      bytes = core::Bytes(owned.data(), owned.size());
    }
    if (c.crc_known && container::crc32_of(bytes) != c.crc) {
      add("malformed:zip-bad-crc", Severity::kHigh, Verdict::kError, member, range.data_offset,
          "the member's CRC-32 does not match: strict readers refuse it, torch reads it anyway");
    }
    const auto format = container::sniff(bytes);
    const bool interesting = pickle_name || format != container::Format::kUnknown || container::sniff_codec(bytes) ||
                             container::sniff_archive(bytes);
    if (!interesting) {
      if (top) report_.members.push_back(std::move(info));
      continue;
    }
    const std::uint64_t pickles_before = report_.pickles;
    std::vector<analysis::StorageRef> storages;
    const bool torch_pickle = torch && (lower(c.name) == lower(prefix + "data.pkl") || lower(c.name) == lower(prefix + "constants.pkl"));
    if (format == container::Format::kPickle || format == container::Format::kMaybePickle) {
      if (container::is_torch_legacy_magic(bytes)) {
        scan_blob(bytes, member, depth + 1);
      } else {
        // Members named like pickles are loaded as pickles; others only if they are one.
        scan_stream(bytes, member, /*first_is_probe=*/!pickle_name, torch_pickle ? &storages : nullptr);
        check_polyglot(bytes, member, depth + 1);
      }
    } else if (pickle_name && format == container::Format::kUnknown && !container::sniff_codec(bytes)) {
      scan_stream(bytes, member, false);  // a .pkl that is no pickle: the loader's error is ours
    } else {
      scan_blob(bytes, member, depth + 1);
    }
    info.scanned = report_.pickles > pickles_before;
    info.format = info.scanned ? "pickle" : std::string(container::format_name(format));
    any_pickle = any_pickle || info.scanned;
    if (top || info.scanned) report_.members.push_back(std::move(info));

    // Storage records the pickle names must exist and be large enough (never read).
    if (!torch_pickle) continue;
    const std::string dir = lower(c.name.substr(0, c.name.size() - 4)) + "/";
    for (const auto& s : storages) {
      auto it = record_sizes.find(dir + lower(s.key));
      if (it == record_sizes.end()) {
        add("malformed:missing-storage", Severity::kHigh, Verdict::kError, member, s.offset,
            fmt::format("persistent id names storage '{}', but the archive has no record for it", s.key));
        continue;
      }
      const std::uint64_t elem = storage_element_size(s.storage_type);
      if (elem != 0 && s.numel && *s.numel >= 0) {
        const auto need = static_cast<std::uint64_t>(*s.numel);
        if (need > (1ull << 62) / elem || need * elem > it->second) {
          add("malformed:storage-size", Severity::kHigh, Verdict::kError, member, s.offset,
              fmt::format("storage '{}' claims {} x {} bytes, its record holds {}", s.key, need, elem, it->second));
        }
      }
    }
  }
  if (!any_pickle && top) {
    add("info:no-pickle", Severity::kInfo, Verdict::kClean, where, 0, "the archive holds no pickle member");
  }
}

}  // namespace brine::scan
