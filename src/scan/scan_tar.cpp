// Tar files, read the way the loader that opens them reads them: Python's tarfile
// (container/tarfile_model.hpp), because torch.load tries tarfile.open(fileobj=f, mode='r:') on
// every non-zip file before reading it as a pickle stream. libarchive's reading (what GNU tar and
// most tools see) is compared member by member; any difference is a finding and both readings
// are scanned. The same bytes are also read as a pickle stream from byte 0: a tar that tarfile
// gives up on (ReadError) is unpickled by torch.load from its first byte.
#include <fmt/format.h>

#include <set>
#include <unordered_map>

#include "container/sniff.hpp"
#include "container/tarfile_model.hpp"
#include "core/byte_reader.hpp"
#include "scan/file_scan.hpp"

namespace brine::scan {

using analysis::Verdict;
using container::TarContent;
using rules::Severity;

void FileScan::scan_tar(core::Bytes data, const std::string& where, unsigned depth) {
  // 1. The stream reading of the same bytes: byte 0 is the first member's name, which
  //    pickle.load (and torch.load after a tarfile ReadError) reads as opcodes.
  {
    const std::uint64_t before = report_.pickles;
    const std::size_t findings_before = report_.findings.size();
    const std::string container = report_.container;
    const container::Format f = container::sniff(data);
    // torch.load reads a tar as a tar: what this other reading builds is scanned, not reported
    // as the loaded object (sanitize does not convert tar checkpoints).
    const bool was_quiet = quiet_loads_;
    quiet_loads_ = true;
    struct Restore {
      bool& flag;
      bool value;
      ~Restore() { flag = value; }
    } restore{quiet_loads_, was_quiet};
    if (f == container::Format::kNpy) {
      scan_npy(data, where, false);
    } else if (container::is_torch_legacy_magic(data)) {
      scan_torch_legacy(data, where);  // torch.load's own stream reading after a tarfile ReadError
    } else {
      scan_stream(data, where, /*first_is_probe=*/f != container::Format::kPickle);
    }
    if (report_.pickles == before) {  // not a pickle: the probe leaves no trace
      report_.findings.resize(findings_before);
      report_.container = container;
      report_.recognized = true;
    } else {
      add("evasion:polyglot", Severity::kHigh, Verdict::kMalicious, where, 0,
          "the tar's first header is also a pickle: tarfile (torch.load's first attempt) and pickle.load read different files");
    }
    if (auto codec = container::sniff_codec(data)) scan_compressed(*codec, data, where, depth);
  }

  // 2. tarfile's reading.
  const container::TarfileReading t = container::read_tarfile(data, options_.limits.max_archive_entries);
  if (t.end == container::TarEnd::kUnmodelled) {
    add(t.why.find("tar members") != std::string::npos ? "limit:max-archive-entries" : "malformed:tar-unmodelled",
        Severity::kHigh, Verdict::kError, where, 0,
        fmt::format("what Python's tarfile (torch.load's tar attempt) reads here cannot be established: {}", t.why));
  } else if (t.end == container::TarEnd::kTarError) {
    add("unapproved:tar-read-error", Severity::kMedium, Verdict::kUnapproved, where, 0,
        fmt::format("tarfile raises ReadError ({}); torch.load then unpickles the file from byte 0", t.why));
  }
  std::set<const container::TarMember*> consumed;
  if (t.opens) {
    if (where.empty()) report_.container = "tar";
    // torch.serialization legacy_load: extract('storages'), extract('tensors'), extractfile('pickle').
    std::vector<std::pair<std::string, TarContent>> extracted;
    std::vector<TorchTarPart> parts;
    bool torch_fails = false;
    for (const char* role : {"storages", "tensors", "pickle"}) {
      if (torch_fails) break;
      const std::string r = role;
      TarContent c = r == "pickle" ? container::tarfile_extractfile(t, data, r) : container::tarfile_extract(t, data, r, extracted);
      switch (c.kind) {
        case TarContent::Kind::kFails:
          // KeyError / IsADirectoryError...: torch.load raises, nothing further is unpickled.
          torch_fails = true;
          break;
        case TarContent::Kind::kUnmodelled:
          add("malformed:tar-unmodelled", Severity::kHigh, Verdict::kError, child(where, r), 0,
              fmt::format("what torch.load unpickles as '{}' cannot be established: {}", r, c.why));
          torch_fails = true;
          break;
        case TarContent::Kind::kBytes:
          if (c.truncated) {
            add("unapproved:tar-read-error", Severity::kMedium, Verdict::kUnapproved, child(where, r), c.bytes.size(),
                fmt::format("member '{}' runs past the end of the file; tarfile raises ReadError while reading it", r));
          }
          consumed.insert(c.member);
          parts.push_back(TorchTarPart{r, child(where, c.member->name == r ? r : r + "->" + c.member->name), c.bytes});
          extracted.emplace_back(r, c);
          break;
      }
    }
    if (!parts.empty()) {
      if (where.empty()) report_.container = "torch-tar";
      scan_torch_tar(parts);
    }
  }

  // 3. Every other regular member tarfile sees, scanned by content.
  std::vector<std::pair<std::string, core::Bytes>> seen;
  for (const auto& m : t.members) {
    if (!m.regular()) continue;
    const std::uint64_t begin = std::min<std::uint64_t>(m.data_offset, data.size());
    const core::Bytes bytes = data.subspan(begin, std::min<std::uint64_t>(m.size, data.size() - begin));
    seen.emplace_back(m.name, bytes);
    if (consumed.count(&m)) continue;
    if (out_of_time(where)) return;
    if (where.empty()) report_.members.push_back(MemberInfo{m.name, "other", bytes.size(), false});
    const std::uint64_t before = report_.pickles;
    scan_blob(bytes, child(where, m.name), depth + 1);
    if (where.empty() && report_.pickles > before) {
      report_.members.back().scanned = true;
      report_.members.back().format = "pickle";
    }
  }

  // 4. libarchive's reading: whatever it sees differently is a finding, and is scanned too.
  std::vector<ArchiveEntry> entries;
  const std::size_t findings_before = report_.findings.size();
  const bool la_ok = libarchive_entries(data, where, "tar", entries);
  if (!la_ok && t.opens) report_.findings.resize(findings_before);  // tarfile reads it; the difference is below
  auto same = [](core::Bytes a, core::Bytes b) { return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin()); };
  std::vector<bool> matched(seen.size(), false);
  // Matched by (name, content hash), each tarfile member at most once: linear in the members
  // and their bytes, however many share a name.
  auto key = [](std::string_view name, core::Bytes b) {
    return std::pair{std::string(name), std::hash<std::string_view>{}(core::as_chars(b))};
  };
  struct KeyHash {
    std::size_t operator()(const std::pair<std::string, std::size_t>& k) const {
      return std::hash<std::string>{}(k.first) ^ (k.second * 0x9e3779b97f4a7c15ull);
    }
  };
  std::unordered_multimap<std::pair<std::string, std::size_t>, std::size_t, KeyHash> by_key;
  for (std::size_t i = 0; i < seen.size(); ++i) by_key.emplace(key(seen[i].first, seen[i].second), i);
  for (const auto& e : entries) {
    bool found = false;
    auto [lo, hi] = by_key.equal_range(key(e.name, e.bytes));
    for (auto it = lo; it != hi; ++it) {
      if (same(seen[it->second].second, e.bytes)) {
        matched[it->second] = found = true;
        by_key.erase(it);
        break;
      }
    }
    if (found) continue;
    add("unapproved:tar-reader-disagreement", Severity::kMedium, Verdict::kUnapproved, child(where, e.name), 0,
        fmt::format("libarchive (GNU tar-like readers) reads a member '{}' of {} bytes that Python's tarfile (torch.load) "
                    "does not read with that name and content",
                    e.name, e.bytes.size()));
    if (out_of_time(where)) return;
    scan_blob(e.bytes, child(where, "[libarchive]" + e.name), depth + 1);
  }
  for (std::size_t i = 0; i < seen.size(); ++i) {
    if (matched[i]) continue;
    add("unapproved:tar-reader-disagreement", Severity::kMedium, Verdict::kUnapproved, child(where, seen[i].first), 0,
        fmt::format("Python's tarfile (torch.load) reads a member '{}' of {} bytes that libarchive (GNU tar-like readers) "
                    "does not read with that name and content",
                    seen[i].first, seen[i].second.size()));
  }
}

// torch.serialization.legacy_load (the 0.1.x tar format), member by member. Each record is a
// pickle followed by raw data whose length the pickle or a fixed header gives; the raw data is
// skipped by those lengths, bounds-checked, and every pickle is scanned.
void FileScan::scan_torch_tar(const std::vector<TorchTarPart>& parts) {
  for (const auto& p : parts) report_.members.push_back(MemberInfo{p.label, "other", p.bytes.size(), false});
  auto walk_fail = [&](const std::string& member, std::uint64_t at, std::string why) {
    add("malformed:torch-tar", Severity::kHigh, Verdict::kError, member, at, std::move(why));
  };
  // A pickle at `pos` of a member; false if it did not reach STOP (the error is a finding).
  auto one = [&](core::Bytes data, std::uint64_t& pos, const std::string& member, pickle::PickleRun& out,
                 analysis::PersistentIds ids = analysis::PersistentIds::kTorch) {
    if (pos >= data.size()) {
      walk_fail(member, pos, "the member ends before the next pickle");
      return false;
    }
    if (!take_pickle_budget(member, pos)) return false;
    out = run_one(data, pos, member, nullptr, ids);
    if (!out.stopped) return false;
    pos = out.end;
    return true;
  };
  auto int_root = [](const pickle::PickleRun& r) -> std::optional<std::int64_t> {
    const auto& n = r.values.node(r.root);
    if (n.kind != pickle::Kind::kInt) return std::nullopt;
    return n.i;
  };
  for (const auto& [name, member, data] : parts) {
    std::uint64_t pos = 0;
    pickle::PickleRun run;
    if (name == "pickle") {
      if (one(data, pos, member, run, analysis::PersistentIds::kTorchTar)) scan_after_stop(data, pos, member, nullptr);
      continue;
    }
    if (!one(data, pos, member, run)) continue;
    auto count = int_root(run);
    if (!count || *count < 0) {
      walk_fail(member, 0, "the record count is not a non-negative int");
      continue;
    }
    core::ByteReader r(data);
    bool ok = true;
    for (std::int64_t i = 0; i < *count && ok; ++i) {
      pickle::PickleRun rec;
      if (!(ok = one(data, pos, member, rec))) break;
      const auto& v = rec.values;
      const auto items = v.items(rec.root);
      r.seek(pos);
      if (name == "storages") {
        // (key, location, storage_type) then int64 numel and numel * element size bytes
        std::uint64_t elem = 0;
        if (items.size() == 3 && v.node(items[2]).kind == pickle::Kind::kGlobal && v.global_rec(items[2]).resolved) {
          const auto& g = v.global_rec(items[2]);
          elem = storage_element_size(rules_.resolve(g.module, g.name, g.protocol).loader_name);
        }
        auto numel = r.uint_le(8);
        if (elem == 0 || !numel || *numel > (1ull << 62) / elem || *numel * elem > r.remaining()) {
          walk_fail(member, pos, "a storage record has no known element size or claims more data than the member holds");
          ok = false;
          break;
        }
        r.seek(r.pos() + *numel * elem);
      } else {
        // (key, storage_id, tensor_type) then int32 ndim, 4 skipped bytes, sizes, strides, offset
        auto ndim = r.i32_le();
        if (!ndim || *ndim < 0 || *ndim > 64 || !r.bytes(4) || !r.bytes(16ull * static_cast<std::uint64_t>(*ndim) + 8)) {
          walk_fail(member, pos, "a tensor record is cut off or has an impossible number of dimensions");
          ok = false;
          break;
        }
      }
      pos = r.pos();
    }
    if (ok && name == "storages") {
      pickle::PickleRun views;  // the list of storage views
      if (one(data, pos, member, views)) scan_after_stop(data, pos, member, nullptr);
    } else if (ok && pos < data.size()) {
      scan_after_stop(data, pos, member, nullptr);
    }
  }
}

}  // namespace brine::scan
