// Zip archives, read the ways real readers read them, and every member any of them could hand to
// an unpickler scanned:
//  - torch.load (miniz): the EOCD's ZIP64 locator followed to its absolute offset, the entry
//    count honoured exactly; the archive prefix is the first central name up to '/'; records are
//    looked up case-insensitively; method, sizes, flags and CRC come from the central directory,
//    the data starts after the *local* header's name and extra field; CRCs are never checked.
//  - Python's zipfile (picklescan, modelscan, numpy's npz reader): the ZIP64 record taken from
//    just before its locator, the count ignored, offsets shifted by data in front of the archive,
//    the local name must equal the central name, CRCs are checked.
//  - a streaming reader: local headers walked from the start, resyncing past gaps.
// Disagreements between them are findings: a loader and a scanner reading different files is how
// most real bypasses work.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <numeric>
#include <optional>
#include <tuple>
#include <set>

#include "analysis/joblib_array.hpp"
#include "analysis/torchscript.hpp"
#include "container/sniff.hpp"
#include "container/zip_layout.hpp"
#include "core/side_task.hpp"
#include "core/text.hpp"
#include "scan/file_scan.hpp"

namespace brine::scan {

using analysis::Verdict;
using container::ZipReader;
using rules::Severity;

namespace {

using core::ascii_lower;
using core::ends_with_ascii_ci;

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
  std::string_view name;      // as the first reading that found it names it (a view into a layout)
  std::uint64_t size = 0;     // declared uncompressed size
  std::uint32_t crc = 0;
  bool crc_known = false;
  bool storage = false;       // under the torch prefix's data/ or constants/
  bool torch_pickle = false;  // what torch.load / torch.jit.load unpickles
};

/// The eight bytes of `v` with ASCII 'A'-'Z' lowered (SWAR: bit 7 of each byte says whether it
/// is in that range).
std::uint64_t lower8(std::uint64_t v) {
  constexpr std::uint64_t kHigh = 0x8080808080808080ull;
  const std::uint64_t low7 = v & ~kHigh;
  const std::uint64_t at_least_a = low7 + 0x3f3f3f3f3f3f3f3full;  // bit 7 set where >= 0x41
  const std::uint64_t above_z = low7 + 0x2525252525252525ull;     // bit 7 set where >= 0x5b
  const std::uint64_t upper = at_least_a & ~above_z & ~v & kHigh;
  return v | (upper >> 2);
}

/// Compares as ascii_lower(a) <=> ascii_lower(b) would (bytes as unsigned, like std::string),
/// without making either string. Eight bytes at a time: names in one archive share long
/// prefixes ("archive/data/"), and every lookup and sort below compares them.
int compare_ci(std::string_view a, std::string_view b) {
  const std::size_t n = std::min(a.size(), b.size());
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t x = 0, y = 0;
    std::memcpy(&x, a.data() + i, 8);
    std::memcpy(&y, b.data() + i, 8);
    if (x == y) continue;
    x = lower8(x);
    y = lower8(y);
    if (x == y) continue;
    // Little-endian loads: the lowest differing byte is the first.
    const unsigned shift = static_cast<unsigned>(__builtin_ctzll(x ^ y)) & ~7u;
    return ((x >> shift) & 0xff) < ((y >> shift) & 0xff) ? -1 : 1;
  }
  for (; i < n; ++i) {
    const auto x = static_cast<unsigned char>(core::ascii_lower_char(a[i])), y = static_cast<unsigned char>(core::ascii_lower_char(b[i]));
    if (x != y) return x < y ? -1 : 1;
  }
  return a.size() < b.size() ? -1 : a.size() > b.size() ? 1 : 0;
}

/// ascii_lower(s).starts_with(lower_prefix), for a prefix given in lower case.
bool starts_with_ci(std::string_view s, std::string_view lower_prefix) {
  return s.size() >= lower_prefix.size() && compare_ci(s.substr(0, lower_prefix.size()), lower_prefix) == 0;
}

/// ascii_lower(s) == lower.
bool equals_ci(std::string_view s, std::string_view lower) { return s.size() == lower.size() && compare_ci(s, lower) == 0; }

/// Records of one reading sorted by case-insensitive name (ties in directory order): torch's
/// lookup, and duplicate detection, without a map node and a lower-cased string per entry.
class NameIndex {
 public:
  explicit NameIndex(std::span<const container::ZipCentral> records) : records_(records), order_(records.size()) {
    std::iota(order_.begin(), order_.end(), std::size_t{0});
    std::stable_sort(order_.begin(), order_.end(),
                     [&](std::size_t a, std::size_t b) { return compare_ci(records_[a].name, records_[b].name) < 0; });
    // Lookups by name hash to the first position of the name's group: a torch archive looks up
    // one record per tensor, and a binary search over the sorted names cost ~11 comparisons each.
    if (order_.size() >= kEmpty) return;  // (positions would not fit: find() searches instead)
    std::size_t size = 16;
    while (size < 2 * order_.size()) size *= 2;
    table_.assign(size, kEmpty);
    for (std::size_t pos = 0; pos < order_.size(); ++pos) {
      if (pos > 0 && compare_ci(records_[order_[pos - 1]].name, records_[order_[pos]].name) == 0) continue;  // not a group's first
      std::size_t slot = hash_ci(records_[order_[pos]].name) & (size - 1);
      while (table_[slot] != kEmpty) slot = (slot + 1) & (size - 1);
      table_[slot] = static_cast<std::uint32_t>(pos);
    }
  }
  /// Positions in order() of the records named `name` in any case, in directory order.
  [[nodiscard]] std::pair<std::size_t, std::size_t> find(std::string_view name) const {
    if (table_.empty()) return search(name);
    const std::size_t mask = table_.size() - 1;
    for (std::size_t slot = hash_ci(name) & mask; table_[slot] != kEmpty; slot = (slot + 1) & mask) {
      const std::size_t lo = table_[slot];
      if (compare_ci(records_[order_[lo]].name, name) == 0) return {lo, group_end(lo + 1, name)};
    }
    return {0, 0};  // no record has the name
  }
  [[nodiscard]] bool contains(std::string_view name) const {
    const auto [lo, hi] = find(name);
    return lo != hi;
  }
  [[nodiscard]] std::span<const container::ZipCentral> records() const { return records_; }
  [[nodiscard]] const std::vector<std::size_t>& order() const { return order_; }
  [[nodiscard]] const container::ZipCentral& record(std::size_t position) const { return records_[order_[position]]; }

 private:
  static constexpr std::uint32_t kEmpty = UINT32_MAX;
  /// find() by binary search over the sorted names.
  [[nodiscard]] std::pair<std::size_t, std::size_t> search(std::string_view name) const {
    auto lo = std::lower_bound(order_.begin(), order_.end(), name,
                               [&](std::size_t i, std::string_view k) { return compare_ci(records_[i].name, k) < 0; });
    const auto pos = static_cast<std::size_t>(lo - order_.begin());
    return {pos, group_end(pos, name)};
  }
  /// The end of the run of records named `name` (any case) that starts at position `lo`.
  [[nodiscard]] std::size_t group_end(std::size_t lo, std::string_view name) const {
    std::size_t hi = lo;
    while (hi < order_.size() && compare_ci(records_[order_[hi]].name, name) == 0) ++hi;  // groups are one record, as a rule
    return hi;
  }
  /// FNV-1a over the ASCII-lowered bytes: names equal under compare_ci hash alike.
  static std::size_t hash_ci(std::string_view name) {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (char c : name) h = (h ^ static_cast<unsigned char>(core::ascii_lower_char(c))) * 0x100000001b3ull;
    return static_cast<std::size_t>(h ^ (h >> 29));
  }
  std::span<const container::ZipCentral> records_;
  std::vector<std::size_t> order_;
  std::vector<std::uint32_t> table_;  ///< open addressing: a group's first position in order_, or kEmpty
};

/// Per record of the index, whether an earlier record has exactly its name, and whether an
/// earlier one has its name in any case.
struct Duplicates {
  std::vector<std::uint8_t> exact, any_case;
};
Duplicates find_duplicates(const NameIndex& index) {
  const auto records = index.records();
  const auto& order = index.order();
  Duplicates d{std::vector<std::uint8_t>(records.size()), std::vector<std::uint8_t>(records.size())};
  std::vector<std::size_t> group;
  for (std::size_t g = 0; g < order.size();) {
    std::size_t end = g + 1;
    while (end < order.size() && compare_ci(records[order[g]].name, records[order[end]].name) == 0) ++end;
    if (end - g > 1) {
      // order[g] is the group's first record in the directory (a stable sort); by exact name
      // (ties in directory order), the first of each run of one name is no exact duplicate.
      group.assign(order.begin() + static_cast<std::ptrdiff_t>(g), order.begin() + static_cast<std::ptrdiff_t>(end));
      std::stable_sort(group.begin(), group.end(), [&](std::size_t a, std::size_t b) { return records[a].name < records[b].name; });
      for (std::size_t k = 0; k < group.size(); ++k) {
        d.any_case[group[k]] = group[k] != order[g];
        d.exact[group[k]] = k > 0 && records[group[k - 1]].name == records[group[k]].name;
      }
    }
    g = end;
  }
  return d;
}

/// The archive name torch's reader takes (PyTorchStreamReader): the first central name up to and
/// including its first '/', for a file that starts with a local header; "" when there is none.
std::string torch_prefix(core::Bytes data, std::span<const container::ZipCentral> central) {
  const bool magic = data.size() >= 4 && std::equal(data.begin(), data.begin() + 4, "PK\x03\x04");
  if (!magic || central.empty()) return {};
  const auto slash = central[0].name.find('/');
  return slash == std::string_view::npos ? std::string() : std::string(central[0].name.substr(0, slash + 1));
}

bool worth_scanning(core::Bytes head) {
  const auto f = container::sniff(head);
  return f != container::Format::kUnknown || container::sniff_codec(head) || container::sniff_archive(head);
}

}  // namespace

std::optional<std::pair<core::Bytes, std::string_view>> FileScan::early_pickle(core::Bytes data,
                                                                              const container::ZipLayout& torch_view) const {
  // Below this many local headers, reading them costs less than starting a thread.
  constexpr std::size_t kOverlapFrom = 64;
  if (early_run_ || torch_view.central.size() < kOverlapFrom || !core::read_through_file(data)) return std::nullopt;
  // A guess at what scan_zip will run (torch's data.pkl): a wrong guess costs a run, never a
  // result, since run_one takes the run only for the same bytes.
  const std::string prefix = torch_prefix(data, torch_view.central);
  if (prefix.empty()) return std::nullopt;
  const std::string data_pkl = ascii_lower(prefix) + "data.pkl";
  for (const auto& e : torch_view.central) {
    if (!equals_ci(e.name, data_pkl)) continue;
    if (e.method != 0) return std::nullopt;
    const auto local = container::parse_local_header(data, e.local_offset);
    if (!local || local->data_offset >= data.size() || e.compressed_size > data.size() - local->data_offset) return std::nullopt;
    const core::Bytes pickle = data.subspan(local->data_offset, e.compressed_size);
    if (pickle.empty() || pickle[0] != 0x80) return std::nullopt;  // torch.save's pickles start with PROTO
    return std::pair{pickle, e.name};
  }
  return std::nullopt;
}

void FileScan::run_early(core::Bytes pickle, std::string member) {
  // scan_stream's joblib hook changes the run only after a NumpyArrayWrapper's BUILD: up to the
  // first such BUILD this run is that one, and there it gives up.
  bool joblib = false;
  const pickle::BuildHook until_joblib = [&joblib](const pickle::ValueStore& v, pickle::ValueRef inst, pickle::ValueRef,
                                                   std::uint64_t pos, std::uint64_t) {
    pickle::BuildHookResult r;
    if (analysis::is_joblib_wrapper(v, inst)) {
      joblib = true;
      r.error = core::Error{core::ErrorCode::kTypeError, pos, {}, "BUILD", "a joblib array: run again in turn"};
    }
    return r;
  };
  pickle::PickleRun run = pickle::run_pickle(pickle, 0, options_.limits, deadline_, &until_joblib);
  if (joblib || (run.error && run.error->code == core::ErrorCode::kTimeout)) return;
  // What run_one will make of it, as a torch zip's pickle under the name torch reads it by.
  auto analysis = analysis::analyze_pickle(run, rules_, analysis::PickleContext{member, analysis::PersistentIds::kTorchZip});
  early_run_.emplace(EarlyRun{pickle.data(), pickle.size(), std::move(run), std::move(member), std::move(analysis)});
}

void FileScan::scan_zip(core::Bytes data, const std::string& where, unsigned depth) {
  const bool top = where.empty();
  const std::uint64_t max_entries = options_.limits.max_archive_entries;
  auto torch_view = container::parse_zip_directory(data, max_entries, ZipReader::kMiniz);
  auto strict_view = container::parse_zip_directory(data, max_entries, ZipReader::kZipfile, torch_view ? &*torch_view : nullptr);
  for (auto* view : {&torch_view, &strict_view}) {
    if (!*view && view->error().code == core::ErrorCode::kLimitExceeded) {
      add(analysis::error_finding(view->error(), where));
      report_.findings.back().rule = "limit:max-archive-entries";
      return;
    }
  }
  if (!torch_view && !strict_view) {
    add(analysis::error_finding(strict_view.error(), where));
    return;
  }
  // The local headers, walked as each reader would (one pread each): on a second thread while
  // this one runs torch's data.pkl, when there are many. Nothing else runs in between, and the
  // run is kept for its turn below, so findings come out as they would one step after another.
  bool ran_early = false;
  {
    auto walk = [&] {
      if (torch_view) container::walk_zip_locals(data, max_entries, *torch_view);
      if (strict_view) container::walk_zip_locals(data, max_entries, *strict_view, torch_view ? &*torch_view : nullptr);
    };
    const auto pickle = torch_view ? early_pickle(data, *torch_view) : std::nullopt;
    core::SideTask walking;
    if (pickle && walking.start(walk)) {
      run_early(pickle->first, child(where, pickle->second));
      ran_early = early_run_.has_value();
      walking.wait();
    } else {
      walk();  // no other CPU, or not worth one: one step after another
    }
  }
  // An early run nothing took (the guess was not what got scanned) goes with this archive.
  struct DropEarlyRun {
    std::optional<EarlyRun>& run;
    bool on;
    ~DropEarlyRun() {
      if (on) run.reset();
    }
  } drop_early_run{early_run_, ran_early};
  // The structure both readers agree on is described by the strict view when there is one.
  const container::ZipLayout& z = strict_view ? *strict_view : *torch_view;

  std::set<std::string> problems;
  for (auto* view : {&torch_view, &strict_view}) {
    if (*view) problems.insert((*view)->problems.begin(), (*view)->problems.end());
  }
  for (const auto& problem : problems) {
    add("unapproved:zip-structure", Severity::kMedium, Verdict::kUnapproved, where, z.eocd_offset,
        "readers disagree about this archive's structure: " + problem);
  }
  if (torch_view && torch_view->count_too_large) {
    add("malformed:zip-entry-count", Severity::kHigh, Verdict::kError, where, z.eocd_offset,
        "the end record counts more entries than the directory holds: torch.load refuses the archive, zipfile reads it");
  }
  if (torch_view && torch_view->count_too_small) {
    add("evasion:zip-entry-count", Severity::kHigh, Verdict::kMalicious, where, z.eocd_offset,
        "the end record counts fewer entries than the directory holds: torch.load sees some members, zipfile all of them");
  }
  if (torch_view && strict_view) {
    const auto& a = torch_view->central;
    const auto& b = strict_view->central;
    const bool same = std::equal(a.begin(), a.end(), b.begin(), b.end(),
                                 [](const container::ZipCentral& x, const container::ZipCentral& y) { return x.name == y.name; });
    if (!same && !torch_view->count_too_small) {
      add("evasion:zip-readers-disagree", Severity::kHigh, Verdict::kMalicious, where, z.eocd_offset,
          fmt::format("torch.load's reader and zipfile list different members ({} vs {} entries)", a.size(), b.size()));
    }
  }
  if (z.prepended < 0) {
    add("unapproved:zip-structure", Severity::kMedium, Verdict::kUnapproved, where, z.eocd_offset,
        fmt::format("the central directory lies {} bytes before where the end record says", 0 - static_cast<std::uint64_t>(z.prepended)));
  }
  for (const auto& [begin, end] : z.gaps) {
    add("unapproved:zip-gap", Severity::kMedium, Verdict::kUnapproved, where, begin,
        fmt::format("{} bytes between members are no local header: streaming readers skip them", end - begin));
    const core::Bytes gap = data.subspan(begin, end - begin);
    if (worth_scanning(gap)) scan_blob(gap, child(where, fmt::format("[gap@{}]", begin)), depth + 1);
  }
  if (z.trailing > 0) {
    const std::uint64_t end = data.size() - z.trailing;
    add("unapproved:trailing-data", Severity::kMedium, Verdict::kUnapproved, where, end,
        fmt::format("{} bytes follow the end of the archive", z.trailing));
    const core::Bytes tail = data.subspan(end);
    if (worth_scanning(tail)) scan_blob(tail, child(where, "[after-archive]"), depth + 1);
  }

  // ---- torch's view: prefix from the first central name, case-insensitive lookup ----
  const NameIndex by_lower(torch_view ? torch_view->central : std::span<const container::ZipCentral>{});
  const std::string prefix = torch_view ? torch_prefix(data, torch_view->central) : std::string();
  auto torch_has = [&](std::string_view record) { return !prefix.empty() && by_lower.contains(ascii_lower(prefix + std::string(record))); };
  const bool torch = torch_has("data.pkl") || torch_has("constants.pkl");
  if (top && torch) {
    bool script = torch_has("constants.pkl");
    const std::string lcode = ascii_lower(prefix + "code/");
    for (const auto& e : torch_view->central) script = script || starts_with_ci(e.name, lcode);
    report_.container = script ? "torchscript-zip" : "torch-zip";
  }
  if (torch_view && !torch) {
    // A torch.save archive whose data.pkl is not where torch looks: PyTorchStreamReader takes the
    // archive name from the first entry up to its first '/' and reads only <name>/data.pkl, so
    // torch.load fails on it (and no other loader reads a data.pkl).
    for (const auto& e : torch_view->central) {
      if (equals_ci(e.name, "data.pkl") || ends_with_ascii_ci(e.name, "/data.pkl")) {
        add("malformed:torch-zip-prefix", Severity::kHigh, Verdict::kError, child(where, e.name), e.offset,
            prefix.empty() ? std::string("a torch.save archive whose first entry is in no directory: torch.load's zip "
                                         "reader requires one and fails")
                           : fmt::format("a torch.save archive with data.pkl outside the prefix '{}' torch.load takes from "
                                         "its first entry: torch.load finds no {}data.pkl and fails",
                                         prefix, prefix));
        break;
      }
    }
  }
  if (torch && !torch_has("version")) {
    // PyTorchStreamReader's constructor reads <prefix>/version before anything else
    // (TORCH_CHECK(hasRecord("version")) in torch 1.13): without it torch.load reads nothing.
    add("malformed:torch-zip-version", Severity::kHigh, Verdict::kError, child(where, prefix + "version"), 0,
        fmt::format("the archive has no '{}version' record: torch.load's zip reader requires it and fails", prefix));
  }
  const std::string lprefix = ascii_lower(prefix);
  const std::string storage_data = lprefix + "data/", storage_constants = lprefix + "constants/";
  const std::string data_pkl = lprefix + "data.pkl", constants_pkl = lprefix + "constants.pkl";
  // What torch.load returns is reported (ScanOptions::on_load) with its records as torch finds
  // them: by case-insensitive name in torch's reading, in the byte order the `byteorder` record
  // names (torch 2.x; 1.13 writes and reads little-endian only).
  const bool loaded = torch && loader_reads(where);
  bool big_endian = false;
  std::optional<std::string> byteorder_problem;
  auto torch_entry = [&](const std::string& lower_name) -> const container::ZipCentral* {
    const auto [lo, hi] = by_lower.find(lower_name);
    return lo == hi ? nullptr : &by_lower.record(lo);
  };
  if (loaded) {
    if (const auto* bo = torch_entry(lprefix + "byteorder")) {
      auto record = torch_record(data, *bo, where, false);
      const std::string_view text = record ? core::as_chars(record->bytes) : std::string_view{};
      if (text.starts_with("big")) {
        big_endian = true;
      } else if (!text.starts_with("little")) {
        byteorder_problem = record ? std::string("the byteorder record is neither 'little' nor 'big'") : record.error().describe();
      }
    }
  }

  // ---- every member, as each reading sees it ----
  std::map<Range, Candidate> candidates;
  std::uint64_t outside = 0;
  std::string first_outside;
  const std::uint64_t shift = strict_view && strict_view->prepended > 0 ? static_cast<std::uint64_t>(strict_view->prepended) : 0;

  // Local headers by offset: the walks parsed most of them already (in offset order), and both
  // readings look the same ones up again (each parse of a mapped file is a pread: see
  // core::read_at). Headers no walk reached are parsed once and kept, their names copied.
  std::map<std::uint64_t, std::optional<container::ZipLocal>> parsed_elsewhere;
  std::deque<std::string> parsed_names;
  core::WindowReader headers(data);
  auto local_header = [&](std::uint64_t offset) -> const container::ZipLocal* {
    for (auto* view : {&torch_view, &strict_view}) {
      if (!*view) continue;
      const auto& locals = (*view)->locals;
      auto it = std::lower_bound(locals.begin(), locals.end(), offset,
                                 [](const container::ZipLocal& l, std::uint64_t at) { return l.offset < at; });
      if (it != locals.end() && it->offset == offset) return &*it;
    }
    auto it = parsed_elsewhere.find(offset);
    if (it == parsed_elsewhere.end()) {
      auto local = container::parse_local_header(headers, offset);
      if (local) local->name = parsed_names.emplace_back(local->name);  // the window is reused
      it = parsed_elsewhere.emplace(offset, std::move(local)).first;
    }
    return it->second ? &*it->second : nullptr;
  };
  // Both readings usually share one list of records (see parse_zip_layout): one index then.
  std::optional<NameIndex> strict_index;
  auto index_of = [&](const container::ZipLayout& view) -> const NameIndex& {
    const auto shared = by_lower.records();
    if (view.central.data() == shared.data() && view.central.size() == shared.size()) return by_lower;
    if (!strict_index) strict_index.emplace(view.central);
    return *strict_index;
  };
  auto central_checks = [&](const container::ZipLayout& view, bool is_torch) {
    const Duplicates duplicates = find_duplicates(index_of(view));
    for (std::size_t i = 0; i < view.central.size(); ++i) {
      const container::ZipCentral& e = view.central[i];
      // A few lookups an entry: the clock is read every 64 (a read costs about as much as an entry).
      if (i % 64 == 0 && out_of_time(where)) return;
      auto member = [&] { return child(where, e.name); };
      if (duplicates.exact[i] != 0) {
        add("evasion:zip-duplicate-name", Severity::kHigh, Verdict::kMalicious, member(), e.offset,
            "two entries have this name: readers pick different ones (zipfile the last, miniz either)");
      } else if (is_torch && duplicates.any_case[i] != 0) {
        add("evasion:zip-duplicate-name", Severity::kHigh, Verdict::kMalicious, member(), e.offset,
            "another entry has this name in a different case: torch's case-insensitive lookup may read either");
      }
      if ((e.flags & 0x01) != 0) {
        add("unapproved:zip-encrypted", Severity::kHigh, Verdict::kUnapproved, member(), e.offset,
            "the member is marked encrypted: strict readers refuse it, others may read it as is");
      } else if ((e.flags & ~kOrdinaryFlags) != 0) {
        add("unapproved:zip-flags", Severity::kMedium, Verdict::kUnapproved, member(), e.offset,
            fmt::format("unusual general-purpose flags 0x{:04x}", e.flags));
      }
      if (is_torch && torch && !starts_with_ci(e.name, lprefix) && outside++ == 0) first_outside = e.name;

      const std::uint64_t local_at = e.local_offset + (is_torch ? 0 : shift);
      const container::ZipLocal* local = local_header(local_at);
      if (!local) {
        add("malformed:zip-local-header", Severity::kHigh, Verdict::kError, member(), local_at,
            "the central directory points at no local header");
        continue;
      }
      if (!is_torch || !strict_view) {
        std::vector<std::string> diffs;
        if (local->name != e.name) diffs.push_back(fmt::format("name '{}' vs '{}'", local->name, e.name));
        if (local->method != e.method) diffs.push_back(fmt::format("method {} vs {}", local->method, e.method));
        if ((local->flags & ~0x0008) != (e.flags & ~0x0008)) diffs.push_back(fmt::format("flags 0x{:04x} vs 0x{:04x}", local->flags, e.flags));
        if (!local->has_descriptor) {
          if (local->crc != e.crc) diffs.push_back(fmt::format("crc {:08x} vs {:08x}", local->crc, e.crc));
          if (local->compressed_size != e.compressed_size || local->size != e.size) {
            diffs.push_back(fmt::format("sizes {}/{} vs {}/{}", local->compressed_size, local->size, e.compressed_size, e.size));
          }
        }
        if (!diffs.empty()) {
          add("evasion:zip-header-mismatch", Severity::kHigh, Verdict::kMalicious, member(), local->offset,
              fmt::format("local header and central directory disagree ({}): readers that trust one or the other read different members",
                          fmt::join(diffs, ", ")));
        }
      }
      Candidate& c = candidates[Range{local->data_offset, e.compressed_size, e.method}];
      if (c.name.empty()) c.name = e.name;
      c.size = e.size;
      c.crc = e.crc;
      c.crc_known = true;
      if (is_torch && torch) {
        c.storage = c.storage || starts_with_ci(e.name, storage_data) || starts_with_ci(e.name, storage_constants);
        c.torch_pickle = c.torch_pickle || equals_ci(e.name, data_pkl) || equals_ci(e.name, constants_pkl);
        if (equals_ci(e.name, data_pkl) && e.method != 0) {
          add("anomaly:deflated-pickle", Severity::kLow, Verdict::kClean, member(), e.offset,
              fmt::format("data.pkl is compressed (method {}); torch.save stores it", e.method));
        }
      }
    }
  };
  if (torch_view) central_checks(*torch_view, true);
  if (strict_view) central_checks(*strict_view, false);
  // The streaming reading: local headers no central entry accounts for.
  // Indexed by data offset: tens of thousands of entries must not cost a pass over all the others each.
  // (Candidates are ordered by data offset first; the walk's data offsets only grow.)
  for (const auto& l : z.locals) {
    auto known = candidates.lower_bound(Range{l.data_offset, 0, 0});
    if (known != candidates.end() && known->first.data_offset == l.data_offset) continue;
    Candidate& c = candidates[Range{l.data_offset, l.walk_length, l.method}];
    c.name = l.name;
    c.size = l.size;
    c.crc = l.crc;
    c.crc_known = !l.has_descriptor;
    add("unapproved:zip-hidden-entry", Severity::kMedium, Verdict::kUnapproved, child(where, l.name), l.offset,
        "a local header that the central directory does not list: streaming readers see it, others do not");
  }
  if (outside != 0) {
    add("unapproved:outside-prefix", Severity::kMedium, Verdict::kUnapproved, child(where, first_outside), 0,
        fmt::format("{} entr{} outside the archive prefix '{}' that torch.load uses", outside,
                    outside == 1 ? "y lies" : "ies lie", prefix));
  }
  // Members whose compressed data overlap another's: the overlapping-files zip bomb. Stored
  // members are views and cost nothing; compressed ones would be decompressed again and again.
  std::set<Range> overlapping;
  {
    const Range* prev = nullptr;
    std::uint64_t prev_end = 0;
    for (const auto& [range, c] : candidates) {
      if (prev != nullptr && range.data_offset < prev_end && range.compressed_size != 0) {
        overlapping.insert(range);
        add("malformed:zip-overlap", Severity::kHigh, Verdict::kError, child(where, c.name), range.data_offset,
            "the member's data overlaps another member's (the overlapping-entries decompression bomb)");
      }
      if (range.data_offset + range.compressed_size > prev_end) {
        prev = &range;
        prev_end = range.data_offset + range.compressed_size;
      }
    }
  }

  // ---- scan what any reading could unpickle: torch's pickles first, to learn which storage
  // records they reference (those are tensor bytes and are never read) ----
  // Record names the torch pickles reference: by position in by_lower's order (the first of the
  // names' group), and, for names no record has, by lower-case name.
  std::vector<std::uint8_t> referenced(by_lower.order().size());
  std::set<std::string> referenced_missing;
  auto is_referenced = [&](std::string_view name) {
    const auto [lo, hi] = by_lower.find(name);
    return lo != hi ? referenced[lo] != 0 : referenced_missing.count(ascii_lower(name)) != 0;
  };
  if (top) report_.members.reserve(report_.members.size() + candidates.size());
  bool any_pickle = false;
  std::uint64_t torchscript_files = 0;
  std::vector<std::pair<std::string, analysis::TorchScriptAnalysis>> scripts;  // (member, analysis)
  auto scan_candidate = [&](const Range& range, const Candidate& c) {
    const std::string member = child(where, c.name);
    MemberInfo info{member, c.storage ? "storage" : "other", c.size, false};
    const bool pickle_name = ends_with_ascii_ci(c.name, ".pkl") || ends_with_ascii_ci(c.name, ".debug_pkl") ||
                             ends_with_ascii_ci(c.name, ".pickle") || ends_with_ascii_ci(c.name, ".joblib");
    if (range.data_offset > data.size() || range.compressed_size > data.size() - range.data_offset) {
      add("malformed:truncated", Severity::kHigh, Verdict::kError, member, range.data_offset,
          fmt::format("member data claims {} bytes, the file ends first", range.compressed_size));
      return;
    }
    const core::Bytes raw = data.subspan(range.data_offset, range.compressed_size);
    if (c.storage && is_referenced(c.name)) {
      if (top) report_.members.push_back(std::move(info));  // tensor bytes: never read
      return;
    }
    if (c.storage && !(range.method == 0 && worth_scanning(raw.subspan(0, std::min<std::uint64_t>(raw.size(), 64))))) {
      if (top) report_.members.push_back(std::move(info));  // unreferenced record, not a pickle
      return;
    }
    // Stored members are views into the file; others are decompressed (bounded).
    std::vector<std::uint8_t> owned;
    core::Bytes bytes = raw;
    if (range.method != 0) {
      if (range.method != 8 && range.method != 12 && range.method != 14 && range.method != 93) {
        add("unapproved:unscanned-member", Severity::kMedium, Verdict::kUnapproved, member, range.data_offset,
            fmt::format("compression method {} is not one brine (or torch) reads", range.method));
        return;
      }
      if (overlapping.count(range) != 0) return;
      const container::Codec codec = range.method == 8 ? container::Codec::kDeflateRaw
                                     : range.method == 12 ? container::Codec::kBzip2
                                     : range.method == 14 ? container::Codec::kZipLzma
                                                          : container::Codec::kZstd;
      auto out = inflate(codec, raw, member);
      if (!out) return;
      owned = std::move(*out);
      bytes = core::Bytes(owned.data(), owned.size());
    }
    // Compressed streams inside an inflated member are nested layers (the ratio limit applies).
    const bool inflated = range.method != 0;
    if (inflated) ++inflated_depth_;
    struct Leave {
      unsigned& depth;
      bool on;
      ~Leave() {
        if (on) --depth;
      }
    } leave{inflated_depth_, inflated};
    if (c.crc_known) {
      const std::uint32_t crc = container::crc32_of(bytes);
      if (c.crc == 0 && crc != 0) {
        add("anomaly:zip-crc-zero", Severity::kLow, Verdict::kClean, member, range.data_offset,
            "the CRC-32 is recorded as 0 (torch's set_crc32_options(False) writes this); zipfile refuses the member");
      } else if (crc != c.crc) {
        add("malformed:zip-bad-crc", Severity::kHigh, Verdict::kError, member, range.data_offset,
            "the member's CRC-32 does not match: zipfile refuses it, torch reads it anyway");
      }
    }
    const auto format = container::sniff(bytes);
    if (torch && ascii_lower(c.name).starts_with(lprefix + "code/") && ends_with_ascii_ci(c.name, ".py")) {
      scripts.emplace_back(member, analysis::analyze_torchscript(core::as_chars(bytes), options_.limits.max_torchscript_tokens));
      ++torchscript_files;
    }
    // numpy.load of an npz returns every member: an array, or (for sanitize) a member it is not.
    const bool npz_member = !torch && !c.name.ends_with("/") && loader_reads(where);
    if (npz_member && !container::is_npy(bytes)) {
      LoadedObject other;
      other.kind = LoadedObject::Kind::kNotAnArray;
      other.member = member;
      other.root_name = c.name;
      other.data = bytes;
      options_.on_load(other);
    }
    if (!pickle_name && !c.torch_pickle && !worth_scanning(bytes)) {
      if (top) report_.members.push_back(std::move(info));
      return;
    }
    const std::uint64_t pickles_before = report_.pickles;
    std::vector<analysis::StorageRef> storages;
    if ((format == container::Format::kPickle || format == container::Format::kMaybePickle) &&
        !container::is_torch_legacy_magic(bytes) && !container::sniff_codec(bytes) && !container::sniff_archive(bytes)) {
      // Members named like pickles are loaded as pickles; others only if they are one.
      std::optional<TorchZipPickle> target;
      const std::string lname = ascii_lower(c.name);
      if (loaded && c.torch_pickle && (lname == lprefix + "data.pkl" || lname == lprefix + "constants.pkl")) {
        const std::string dir = lname.substr(0, lname.size() - 4) + "/";
        target = TorchZipPickle{lname.ends_with("constants.pkl") ? "constants" : "", {}};
        target->storages = [this, data, where, dir, big_endian, &byteorder_problem,
                            &torch_entry](std::string_view key) -> core::Result<StorageRecord> {
          if (byteorder_problem) return core::fail(core::ErrorCode::kContainer, 0, *byteorder_problem);
          const auto* e = torch_entry(dir + ascii_lower(std::string(key)));
          if (e == nullptr) return core::fail(core::ErrorCode::kContainer, 0, fmt::format("storage record {}{} is missing", dir, key));
          return torch_record(data, *e, where, big_endian);
        };
      }
      scan_stream(bytes, member, /*first_is_probe=*/!(pickle_name || c.torch_pickle), c.torch_pickle ? &storages : nullptr,
                  c.torch_pickle ? analysis::PersistentIds::kTorchZip : analysis::PersistentIds::kTorch,
                  target ? &*target : nullptr);
      check_polyglot(bytes, member, depth + 1);
    } else if ((pickle_name || c.torch_pickle) && format == container::Format::kUnknown && !container::sniff_codec(bytes) &&
               !container::sniff_archive(bytes)) {
      scan_stream(bytes, member, false);  // a .pkl that is no pickle: the loader's error is ours
    } else if (npz_member && format == container::Format::kNpy) {
      // numpy's NpzFile names the array after the member, without ".npy".
      const std::string array(c.name.ends_with(".npy") ? c.name.substr(0, c.name.size() - 4) : c.name);
      if (enter(member, depth + 1)) scan_npy(bytes, member, /*loaded=*/true, array);
      check_polyglot(bytes, member, depth + 1);
    } else {
      scan_blob(bytes, member, depth + 1);
    }
    info.scanned = report_.pickles > pickles_before;
    info.format = info.scanned ? "pickle" : std::string(container::format_name(format));
    any_pickle = any_pickle || info.scanned;
    if (top || info.scanned) report_.members.push_back(std::move(info));
    if (!c.torch_pickle) return;
    // Storage records the pickle names must exist and be large enough (never read).
    check_storage_reuse(storages, member);
    const std::string dir = ascii_lower(c.name.substr(0, c.name.size() - 4)) + "/";
    std::string record;
    for (const auto& s : storages) {
      record = dir;
      record += ascii_lower(s.key);
      const auto [lo, hi] = by_lower.find(record);
      if (lo == hi) {
        referenced_missing.insert(record);
        add("malformed:missing-storage", Severity::kHigh, Verdict::kError, member, s.offset,
            fmt::format("persistent id names storage '{}', but the archive has no record for it", s.key));
        continue;
      }
      referenced[lo] = 1;
      // Of several records with this name, the size of the last (as a map filled in directory
      // order would hold).
      const std::uint64_t record_size = by_lower.record(hi - 1).size;
      const std::uint64_t elem = storage_element_size(s.storage_type);
      if (elem != 0 && s.numel && *s.numel >= 0) {
        const auto need = static_cast<std::uint64_t>(*s.numel);
        if (need > (1ull << 62) / elem || need * elem > record_size) {
          add("malformed:storage-size", Severity::kHigh, Verdict::kError, member, s.offset,
              fmt::format("storage '{}' claims {} x {} bytes, its record holds {}", s.key, need, elem, record_size));
        }
      }
    }
  };
  // The clock is read before each candidate scanned (the torch pickles first), not for each one passed over.
  for (const auto& [range, c] : candidates) {
    if (!c.torch_pickle) continue;
    if (out_of_time(where)) break;
    scan_candidate(range, c);
  }
  for (const auto& [range, c] : candidates) {
    if (c.torch_pickle) continue;
    if (out_of_time(where)) break;
    scan_candidate(range, c);
  }
  report_torchscript(scripts);
  if (torchscript_files != 0) {
    add("unapproved:torchscript-code", Severity::kMedium, Verdict::kUnapproved, child(where, prefix + "code/"), 0,
        fmt::format("{} TorchScript source file{} that torch.jit.load compiles and runs (every __setstate__ during loading; "
                    "torch.load hands archives with constants.pkl to it, under weights_only=True before torch 2.6)",
                    torchscript_files, torchscript_files == 1 ? "" : "s"));
  }
  if (!any_pickle && top) {
    add("info:no-pickle", Severity::kInfo, Verdict::kClean, where, 0, "the archive holds no pickle member");
  }
}

}  // namespace brine::scan

namespace brine::scan {

void FileScan::report_torchscript(std::vector<std::pair<std::string, analysis::TorchScriptAnalysis>>& scripts) {
  // __setstate__ may call a function of another code file: load time is decided over all of them.
  analysis::TorchScriptCalls calls;
  for (auto& [where, script] : scripts) {
    for (auto& [name, refs] : script.calls) calls[name].insert(refs.begin(), refs.end());
  }
  for (auto& [where, script] : scripts) {
    analysis::mark_load_time(script.ops, calls);
    // One finding per (rule, load time, method) with a count: a file naming torch.save a million
    // times must not make a million findings. Past 256 methods, per (rule, load time).
    std::map<std::tuple<std::string, bool, std::string>, std::size_t> merged;
    for (const auto& op : script.ops) {
      std::string method = merged.size() < 256 ? op.method : std::string("*");
      auto [it, fresh] = merged.emplace(std::make_tuple(op.rule, op.runs_at_load, std::move(method)), report_.findings.size());
      if (fresh) {
        report_torchscript_op(op, where);
      } else {
        ++report_.findings[it->second].count;
      }
    }
  }
}

void FileScan::report_torchscript_op(const analysis::TorchScriptOp& op, const std::string& where) {
  const bool at_load = op.runs_at_load;
  const bool effect = op.rule == "torchscript:file-write" || op.rule == "torchscript:file-read" || op.rule == "torchscript:network";
  analysis::Finding f;
  f.rule = op.rule;
  f.severity = at_load && effect ? Severity::kCritical : effect ? Severity::kHigh : Severity::kMedium;
  f.impact = at_load && effect ? Verdict::kMalicious : Verdict::kUnapproved;
  f.global = op.op;
  f.use = op.method.empty() ? "" : fmt::format("in {}", op.method);
  f.member = where;
  f.offset = op.offset;
  f.message = fmt::format("TorchScript line {} {}{}", op.line, op.what,
                          !at_load                      ? (op.method.empty() ? "" : fmt::format(" when {} is called", op.method))
                          : op.method == "__setstate__" ? std::string(", in __setstate__: torch.jit.load runs it while loading")
                                                        : fmt::format(", in {}, which __setstate__ may call: torch.jit.load runs it while loading", op.method));
  add(std::move(f));
}

}  // namespace brine::scan

namespace brine::scan {

core::Result<StorageRecord> FileScan::torch_record(core::Bytes data, const container::ZipCentral& e, const std::string& where,
                                                   bool big_endian) {
  const std::string member = child(where, e.name);
  auto local = container::parse_local_header(data, e.local_offset);
  if (!local) return core::fail(core::Error{core::ErrorCode::kContainer, e.local_offset, member, {}, "no local header"});
  if (local->data_offset > data.size() || e.compressed_size > data.size() - local->data_offset) {
    return core::fail(core::Error{core::ErrorCode::kTruncated, local->data_offset, member, {}, "the record runs past the end of the archive"});
  }
  if (e.method == 0) return StorageRecord{data.subspan(local->data_offset, e.compressed_size), member, big_endian, nullptr};
  auto bytes = container::zip_member_data(data, local->data_offset, e.compressed_size, e.method, member_cap(e.compressed_size));
  if (!bytes) {
    auto err = bytes.error();
    err.member = member;
    return core::fail(std::move(err));
  }
  if (!charge_decompressed(bytes->size(), member)) {
    return core::fail(core::Error{core::ErrorCode::kLimitExceeded, 0, member, {}, "max-total-decompressed"});
  }
  auto owner = std::make_shared<const std::vector<std::uint8_t>>(std::move(*bytes));
  const core::Bytes view(owner->data(), owner->size());
  return StorageRecord{view, member, big_endian, std::move(owner)};
}

}  // namespace brine::scan
