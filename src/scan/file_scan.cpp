#include "scan/file_scan.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <numeric>

#include "container/npy.hpp"
#include "container/sniff.hpp"
#include "container/zip_layout.hpp"

namespace brine::scan {

namespace {
/// Is what the pickle returns torch's legacy magic number, compared as torch compares it (by
/// value: `magic_number != MAGIC_NUMBER`)? 0x1950a86a20f9469cfc6c needs 77 bits, so only a long
/// can equal it; its little-endian bytes may carry any number of zero bytes above the top one.
bool is_legacy_magic_value(const pickle::PickleRun& run) {
  static constexpr std::uint8_t kMagicLe[] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
  if (run.root == pickle::kNoValue) return false;
  const pickle::Node& n = run.values.node(run.root);
  if (n.kind != pickle::Kind::kBigInt || n.text.size() < sizeof kMagicLe) return false;
  if (std::memcmp(n.text.data(), kMagicLe, sizeof kMagicLe) != 0) return false;
  return n.text.find_first_not_of('\0', sizeof kMagicLe) == std::string_view::npos;
}

}  // namespace

using analysis::Finding;
using analysis::Verdict;
using rules::Severity;

FileScan::FileScan(const rules::RuleSet& rules, const ScanOptions& options, FileReport& report,
                   std::chrono::steady_clock::time_point deadline, std::uint64_t nested_depth)
    : rules_(rules), options_(options), report_(report), deadline_(deadline), nested_depth_(nested_depth) {}

void FileScan::add(std::string rule, Severity sev, Verdict impact, const std::string& where, std::uint64_t offset,
                   std::string message) {
  Finding f;
  f.rule = std::move(rule);
  f.severity = sev;
  f.impact = impact;
  f.member = where;
  f.offset = offset;
  f.message = std::move(message);
  add(std::move(f));
}

std::string FileScan::child(const std::string& where, std::string_view name) {
  return where.empty() ? std::string(name) : where + "!" + std::string(name);
}

bool FileScan::loader_reads(const std::string& where) const {
  if (nested_depth_ != 0 || quiet_loads_ || !options_.on_load) return false;
  // Every segment must be a compression layer ("[gzip]"): members of archives, gaps and the
  // bytes after a stream are scanned, but no loader returns them.
  std::string_view rest = where;
  while (!rest.empty()) {
    const auto bang = rest.find('!');
    const std::string_view segment = rest.substr(0, bang);
    bool codec_layer = false;
    for (auto c : container::kAllCodecs) codec_layer = codec_layer || segment == fmt::format("[{}]", container::codec_name(c));
    if (!codec_layer) return false;
    rest = bang == std::string_view::npos ? std::string_view{} : rest.substr(bang + 1);
  }
  return true;
}

bool FileScan::enter(const std::string& where, unsigned depth) {
  if (depth <= options_.limits.max_container_depth) return true;
  add("limit:max-container-depth", Severity::kHigh, Verdict::kError, where, 0,
      fmt::format("containers nested more than {} deep", options_.limits.max_container_depth));
  return false;
}

void FileScan::run(core::Bytes data) {
  file_size_ = data.size();
  const container::Format format = container::sniff(data);
  if (format == container::Format::kEmpty) {
    report_.container = "empty";
    report_.recognized = false;
    add("malformed:empty", Severity::kHigh, Verdict::kError, {}, 0, "the file is empty");
    return;
  }
  std::optional<container::Codec> codec;
  std::optional<std::string_view> archive;
  if (format != container::Format::kZip) archive = container::sniff_archive(data);
  if (format != container::Format::kPickle && format != container::Format::kZip && format != container::Format::kNpy) {
    codec = container::sniff_codec(data);
  }
  if (format == container::Format::kZip) {
    report_.container = "zip";
  } else if (archive) {
    report_.container = std::string(*archive);
  } else if (format == container::Format::kNpy) {
    report_.container = "npy";
  } else if (codec) {
    report_.container = std::string(container::codec_name(*codec));
  } else if (archive) {
    report_.container = std::string(*archive);
  } else if (format == container::Format::kPickle || format == container::Format::kMaybePickle) {
    report_.container = container::is_torch_legacy_magic(data) ? "torch-legacy" : "pickle";
  } else if (container::find_eocd(data)) {
    report_.container = "zip";  // a zip with something in front of it
  } else {
    report_.container = "unknown";
    report_.recognized = false;
    add("malformed:not-a-pickle", Severity::kHigh, Verdict::kError, {}, 0,
        fmt::format("not a pickle or a supported container (first byte 0x{:02x} is not a pickle opcode)", data[0]));
    return;
  }
  scan_blob(data, {}, 0);
}

void FileScan::scan_blob(core::Bytes data, const std::string& where, unsigned depth) {
  if (data.empty() || !enter(where, depth)) return;
  if (out_of_time(where)) return;
  // Strong magics first (zip, npy, PROTO, compression, archives); a first byte that merely is an
  // opcode (protocol 0/1 streams have no PROTO) is the weakest guess and comes last.
  const container::Format format = container::sniff(data);
  if (format == container::Format::kZip) return scan_zip(data, where, depth);
  // torch.load tries tarfile before the pickle magic: a first block with a valid checksum makes
  // the file a tar to it, whatever else the bytes are (scan_tar also reads them as a stream).
  if (auto archive = container::sniff_archive(data)) return scan_archive(data, where, depth, *archive);
  if (format == container::Format::kNpy) return scan_npy(data, where, loader_reads(where));
  if (format != container::Format::kPickle) {
    if (auto codec = container::sniff_codec(data)) return scan_compressed(*codec, data, where, depth);
  }
  if (format == container::Format::kPickle || format == container::Format::kMaybePickle) {
    if (container::is_torch_legacy_magic(data)) {
      scan_torch_legacy(data, where);
    } else {
      scan_stream(data, where, /*first_is_probe=*/format == container::Format::kMaybePickle);
    }
  }
  check_polyglot(data, where, depth);
}

void FileScan::note_bytes_values(const pickle::PickleRun& run, core::Bytes data) {
  // Only values long enough to hold an end-of-central-directory record matter, and only those
  // that are views into `data` (decoded protocol-0 text lives in the run's arena).
  constexpr std::size_t kEocdSize = 22;
  const auto* lo = reinterpret_cast<const char*>(data.data());
  const auto* hi = lo + data.size();
  run.values.for_each_text(kEocdSize, [&](std::string_view text) {
    if (text.data() < lo || text.data() + text.size() > hi) return;
    bytes_values_.push_back({reinterpret_cast<const std::uint8_t*>(text.data()),
                             reinterpret_cast<const std::uint8_t*>(text.data() + text.size())});
  });
}

void FileScan::check_polyglot(core::Bytes data, const std::string& where, unsigned depth) {
  auto eocd = container::find_eocd(data);
  if (!eocd) return;
  // zipfile's reading: it finds an archive behind any prefix (miniz needs it at offset 0).
  auto layout = container::parse_zip_layout(data, options_.limits.max_archive_entries, container::ZipReader::kZipfile);
  if (!layout && layout.error().code == core::ErrorCode::kLimitExceeded) {
    // A directory too big to read could hold anything: fail closed, as scan_zip does (found by
    // fuzz/fuzz_archive.cpp: 2,975 entries behind a 4-byte prefix were otherwise `clean`).
    add(analysis::error_finding(layout.error(), child(where, "[zip-directory]")));
    report_.findings.back().rule = "limit:max-archive-entries";
    return;
  }
  if (!layout || layout->central.empty()) return;
  // An archive lying wholly inside one bytes/str value of a pickle that was executed is data the
  // pickle carries: no loader opens a pickle's value as an archive (torch.load, numpy.load and
  // joblib decide by the file's first bytes). Bytes an approved loader deserializes are scanned
  // as nested files by the analysis already.
  if (layout->prepended >= 0) {
    const std::uint8_t* begin = data.data() + layout->prepended;
    const std::uint8_t* end = data.data() + (data.size() - std::min<std::uint64_t>(layout->trailing, data.size()));
    for (const auto& [vb, ve] : bytes_values_) {
      if (vb <= begin && end <= ve) {
        add("info:archive-in-bytes-value", Severity::kLow, Verdict::kClean, where, static_cast<std::uint64_t>(vb - data.data()),
            fmt::format("a zip archive ({} entries) is stored inside a bytes value at offset {}: no loader opens a "
                        "pickle's value as an archive, so it is data, not a polyglot",
                        layout->central.size(), vb - data.data()));
        return;
      }
    }
  }
  add("evasion:polyglot", Severity::kHigh, Verdict::kMalicious, where, 0,
      fmt::format("the file is not a zip from its first byte but holds a zip directory at offset {}: torch.load "
                  "reads it as a pickle stream, zipfile-based tools (and numpy) read the zip",
                  *eocd));
  scan_zip(data, child(where, "[zip-directory]"), depth + 1);
}

bool FileScan::out_of_time(const std::string& where) {
  if (timed_out_) return true;
  if (std::chrono::steady_clock::now() <= deadline_) return false;
  timed_out_ = true;  // one finding, however many members are left
  add("limit:max-time", Severity::kHigh, Verdict::kError, where, 0, "the file's time budget is spent");
  return true;
}

bool FileScan::take_pickle_budget(const std::string& where, std::uint64_t offset) {
  if (++report_.pickles > options_.limits.max_pickles_per_file) {
    add("limit:max-pickles", Severity::kHigh, Verdict::kError, where, offset,
        fmt::format("more than {} pickles in one file", options_.limits.max_pickles_per_file));
    return false;
  }
  return true;
}

namespace {
std::atomic<std::uint64_t> early_runs_taken_{0};
}  // namespace

std::uint64_t FileScan::early_runs_taken() { return early_runs_taken_.load(std::memory_order_relaxed); }

pickle::PickleRun FileScan::run_one(core::Bytes data, std::uint64_t pos, const std::string& where,
                                    std::vector<analysis::StorageRef>* storages, analysis::PersistentIds ids,
                                    const pickle::BuildHook* hook, bool observe) {
  std::optional<analysis::PickleAnalysis> early_analysis;
  pickle::PickleRun run = [&] {
    if (early_run_ && pos == 0 && hook != nullptr && early_run_->data == data.data() && early_run_->size == data.size()) {
      // This very run, made while the archive's headers were read (scan_zip).
      pickle::PickleRun early = std::move(early_run_->run);
      if (early_run_->member == where && ids == analysis::PersistentIds::kTorchZip) early_analysis = std::move(early_run_->analysis);
      early_run_.reset();
      early_runs_taken_.fetch_add(1, std::memory_order_relaxed);
      return early;
    }
    return pickle::run_pickle(data, pos, options_.limits, deadline_, hook);
  }();
  report_.opcodes += run.opcodes;
  note_bytes_values(run, data);
  if (observe && options_.on_pickle) options_.on_pickle(where, data, run);
  auto result = early_analysis ? std::move(*early_analysis) : analysis::analyze_pickle(run, rules_, analysis::PickleContext{where, ids});
  for (auto& f : result.findings) add(std::move(f));
  if (storages != nullptr) storages->insert(storages->end(), result.storages.begin(), result.storages.end());
  for (const auto& nested : result.nested) scan_nested(nested, where);
  return run;
}

void FileScan::scan_nested(const analysis::NestedPayload& nested, const std::string& where) {
  const std::string inner_where = child(where, fmt::format("{}@{}", nested.loader, nested.offset));
  if (nested_depth_ + 1 > options_.limits.max_nested_depth) {
    add("limit:max-nested-depth", Severity::kHigh, Verdict::kError, where, nested.offset,
        fmt::format("files nested more than {} deep", options_.limits.max_nested_depth));
    return;
  }
  // A fresh scan of the embedded file, folded into this report.
  FileReport inner;
  const core::Bytes bytes = core::as_bytes(nested.data);
  FileScan(rules_, options_, inner, deadline_, nested_depth_ + 1).scan_blob(bytes, inner_where, 0);
  report_.pickles += inner.pickles;
  report_.opcodes += inner.opcodes;
  for (auto& f : inner.findings) add(std::move(f));
  // The only "loads" callee is torch.storage._load_from_bytes, i.e. torch.load(BytesIO(bytes)):
  // a zip, a tar, or the legacy layout (first pickle equal to the magic number). Anything else
  // fails in torch.load (after it unpickled the first pickle, scanned above): the file does not load.
  bool torch_layout = container::sniff(bytes) == container::Format::kZip || container::sniff_archive(bytes) == "tar" ||
                      container::is_torch_legacy_magic(bytes);
  if (!torch_layout && !bytes.empty()) {
    const pickle::PickleRun first = pickle::run_pickle(bytes, 0, options_.limits, deadline_);
    torch_layout = first.stopped && is_legacy_magic_value(first);
  }
  if (!torch_layout) {
    add("malformed:nested-not-torch", Severity::kHigh, Verdict::kError, inner_where, 0,
        fmt::format("{} hands these {} bytes to torch.load, which reads them as no torch file (not a zip, a tar, or a "
                    "stream starting with the legacy magic number) and fails",
                    nested.loader, bytes.size()));
  }
}

namespace {
bool limit_hit(const pickle::PickleRun& run) {
  return run.error && (run.error->code == core::ErrorCode::kLimitExceeded || run.error->code == core::ErrorCode::kTimeout);
}

/// A dotted path of Python identifiers (non-ASCII bytes allowed: identifiers may be Unicode).
bool dotted_identifiers(std::string_view s) {
  if (s.empty()) return false;
  bool start = true;
  for (unsigned char c : s) {
    if (c == '.') {
      if (start) return false;
      start = true;
      continue;
    }
    const bool letter = c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
    if (!letter && (start || c < '0' || c > '9')) return false;
    start = false;
  }
  return !start;
}

/// Did the run do anything a real loader would do before failing? find_class raises on a module
/// name that is not an identifier path, so the first such GLOBAL ends what a loader can reach:
/// a text file that happens to start with 'c' (GLOBAL) "imports" nothing.
bool plausible_effects(const pickle::PickleRun& run) {
  for (const auto& e : run.events) {
    // No loader has a persistent_load for a stream's first pickle (pickle.load, numpy, joblib, and
    // torch's read of the legacy magic number all raise "no persistent_load function"): a PERSID
    // as the first effect is where the loader stops (a PNG's "\x89PNG\r" reads as NEWFALSE, PERSID).
    if (e.kind == pickle::Event::Kind::kPersistentLoad) return false;
    if (e.kind != pickle::Event::Kind::kGlobal) return true;
    const auto& g = run.values.global_rec(e.subject);
    if (!g.resolved) return true;
    return dotted_identifiers(g.module) && dotted_identifiers(g.name);
  }
  return false;
}
}  // namespace

void FileScan::scan_after_stop(core::Bytes data, std::uint64_t pos, const std::string& where,
                               std::vector<analysis::StorageRef>* storages, const pickle::BuildHook* hook) {
  while (pos < data.size()) {
    // Probe first: trailing bytes that are no pickle at all are reported as such, not as an error.
    pickle::PickleRun probe = pickle::run_pickle(data, pos, options_.limits, deadline_, hook);
    if (!probe.stopped && !plausible_effects(probe) && !limit_hit(probe)) {
      add("unapproved:trailing-data", Severity::kMedium, Verdict::kUnapproved, where, pos,
          fmt::format("{} bytes follow the last STOP; pickle.load ignores them, other readers may not", data.size() - pos));
      return;
    }
    if (!take_pickle_budget(where, pos)) return;
    add("evasion:pickle-after-stop", Severity::kHigh, Verdict::kMalicious, where, pos,
        "another pickle follows STOP: a second pickle.load on the same stream runs it, and scanners that "
        "stop at the first STOP miss it");
    pickle::PickleRun run = run_one(data, pos, where, storages, analysis::PersistentIds::kTorch, hook);
    if (!run.stopped) return;
    pos = run.end;
  }
}

void FileScan::scan_stream(core::Bytes data, const std::string& where, bool first_is_probe,
                           std::vector<analysis::StorageRef>* storages, analysis::PersistentIds ids,
                           const TorchZipPickle* torch_zip) {
  if (data.empty()) {
    add("malformed:empty", Severity::kHigh, Verdict::kError, where, 0, "empty pickle");
    return;
  }
  if (!take_pickle_budget(where, 0)) return;
  const std::size_t before = report_.findings.size();
  std::vector<Region> regions;
  std::map<pickle::ValueRef, core::Bytes> arrays;
  const pickle::BuildHook hook = joblib_hook(data, where, regions, arrays);
  pickle::PickleRun run = run_one(data, 0, where, storages, ids, &hook, !first_is_probe);
  if (first_is_probe && !run.stopped && !plausible_effects(run) && !limit_hit(run)) {
    // Starts with an opcode byte but is no pickle: nothing would run before the loader fails.
    report_.findings.resize(before);
    --report_.pickles;
    if (where.empty()) {
      report_.container = "unknown";
      report_.recognized = false;
      add("malformed:not-a-pickle", Severity::kHigh, Verdict::kError, where, run.end,
          fmt::format("not a pickle or a supported container: {}", run.error ? run.error->describe() : std::string("no STOP")));
    }
    return;
  }
  if (first_is_probe && options_.on_pickle) options_.on_pickle(where, data, run);
  if (run.stopped && is_legacy_magic_value(run)) {
    // torch's _legacy_load compares the first pickle's *value* with its magic number: however it
    // is spelled (LONG1, LONG4, a text LONG), the pickles after it are the legacy layout.
    if (where.empty()) report_.container = "torch-legacy";
    scan_torch_legacy(data, where, run.end, 1);
    return;
  }
  if (run.stopped && (torch_zip != nullptr || loader_reads(where))) {
    // pickle.load / joblib.load / torch.load return what this first pickle builds.
    LoadedObject loaded;
    loaded.kind = torch_zip != nullptr ? LoadedObject::Kind::kTorchZip : LoadedObject::Kind::kPickle;
    loaded.member = where;
    loaded.data = data;
    loaded.run = &run;
    loaded.raw_arrays = &arrays;
    if (torch_zip != nullptr) {
      loaded.root_name = torch_zip->root_name;
      loaded.storages = torch_zip->storages;
    }
    options_.on_load(loaded);
  }
  if (run.stopped) scan_after_stop(data, run.end, where, storages, &hook);
  if (!regions.empty()) joblib_differential(data, where, regions);
}

void FileScan::check_storage_reuse(const std::vector<analysis::StorageRef>& storages, const std::string& where) {
  // torch.load (both layouts) creates a storage on a key's first use and hands every later use of
  // that key the same object: its dtype and element count are the first use's, whatever the later
  // id says (sanitize reads it so). A later use that names more elements than the first created
  // builds a tensor past the storage's end: torch fails ("Trying to resize storage that is not
  // resizable"), so the file does not load.
  // The first use of each key, found by sorting positions by key (ties in order): a checkpoint
  // names a thousand storages, and a map node per key is fresh memory this needs only briefly.
  std::vector<std::size_t> by_key(storages.size());
  std::iota(by_key.begin(), by_key.end(), std::size_t{0});
  std::stable_sort(by_key.begin(), by_key.end(), [&](std::size_t a, std::size_t b) { return storages[a].key < storages[b].key; });
  std::size_t reported = storages.size();  // the earliest later use that does not fit
  for (std::size_t g = 0; g < by_key.size();) {
    const analysis::StorageRef& f = storages[by_key[g]];
    std::size_t k = g + 1;
    for (; k < by_key.size() && storages[by_key[k]].key == f.key; ++k) {
      const analysis::StorageRef& s = storages[by_key[k]];
      if (s.numel && f.numel && *s.numel > *f.numel) reported = std::min(reported, by_key[k]);
    }
    g = k;
  }
  if (reported != storages.size()) {
    const analysis::StorageRef& s = storages[reported];
    const analysis::StorageRef& f = *std::find_if(storages.begin(), storages.end(), [&](const analysis::StorageRef& x) { return x.key == s.key; });
    add("malformed:storage-key-reuse", Severity::kHigh, Verdict::kError, where, s.offset,
        fmt::format("storage '{}' is named with {} elements ({}) here, but its first use created it with {} ({}): "
                    "torch.load gives this use that storage, and a tensor of {} elements does not fit in it",
                    s.key, *s.numel, s.storage_type, *f.numel, f.storage_type, *s.numel));
  }
}

void FileScan::scan_torch_legacy(core::Bytes data, const std::string& where, std::uint64_t pos, int first_part) {
  std::vector<analysis::StorageRef> storages;
  pickle::PickleRun object_run, keys_run;
  static constexpr const char* kParts[] = {"magic number", "protocol version", "sys_info", "object", "storage keys"};
  for (int i = first_part; i < 5; ++i) {
    if (pos >= data.size()) {
      add("malformed:truncated", Severity::kHigh, Verdict::kError, where, pos,
          fmt::format("legacy torch file ends before its {} pickle", kParts[i]));
      return;
    }
    if (!take_pickle_budget(where, pos)) return;
    pickle::PickleRun run = run_one(data, pos, where, i == 3 ? &storages : nullptr,
                                    i == 3 ? analysis::PersistentIds::kTorchLegacy : analysis::PersistentIds::kTorch);
    if (!run.stopped) return;  // the error is already a finding
    pos = run.end;
    if (i == 3) object_run = std::move(run);
    if (i == 4) keys_run = std::move(run);
  }
  check_storage_reuse(storages, where);
  // The raw storages, walked by their declared sizes in the order of the key list.
  std::map<std::string, std::uint64_t> element_size;
  for (const auto& s : storages) element_size.emplace(s.key, storage_element_size(s.storage_type));
  const auto& kv = keys_run.values;
  if (kv.node(keys_run.root).kind != pickle::Kind::kList) {
    add("malformed:legacy-storage-keys", Severity::kHigh, Verdict::kError, where, keys_run.start,
        "the storage-key pickle of a legacy torch file is not a list");
    return;
  }
  // The raw section as torch reads it (_set_from_file, in key-list order, into the storage cached
  // for each key): a key listed twice is read twice and keeps the later bytes; the sizes must match.
  std::map<std::string, StorageRecord> records;
  core::ByteReader reader(data, pos);
  for (pickle::ValueRef key_ref : kv.items(keys_run.root)) {
    auto key = kv.as_text(key_ref);
    auto it = key ? element_size.find(std::string(*key)) : element_size.end();
    if (it == element_size.end() || it->second == 0) {
      add("malformed:legacy-storage-keys", Severity::kHigh, Verdict::kError, where, reader.pos(),
          "a storage key has no storage of known type in the object pickle");
      return;
    }
    const std::uint64_t at = reader.pos();
    auto numel = reader.uint_le(8);
    const std::uint64_t n = numel.value_or(0);
    if (!numel || n > (1ull << 62) / it->second || n * it->second > reader.remaining()) {
      add("malformed:truncated", Severity::kHigh, Verdict::kError, where, at,
          fmt::format("storage {} claims {} elements of {} bytes, {} bytes remain", *key, n, it->second, reader.remaining()));
      return;
    }
    StorageRecord record{data.subspan(reader.pos(), n * it->second), fmt::format("{}@{}", where, reader.pos()), false, nullptr};
    if (auto [r, fresh] = records.try_emplace(std::string(*key), record); !fresh) {
      if (r->second.bytes.size() != record.bytes.size()) {
        add("malformed:legacy-storage-size", Severity::kHigh, Verdict::kError, where, at,
            fmt::format("storage '{}' is listed twice with different sizes ({} and {} bytes): torch.load fails "
                        "(\"storage has wrong size\")", *key, r->second.bytes.size(), record.bytes.size()));
        return;
      }
      r->second = record;
    }
    reader.seek(reader.pos() + n * it->second);
  }
  if (loader_reads(where)) {
    LoadedObject loaded;
    loaded.kind = LoadedObject::Kind::kTorchLegacy;
    loaded.member = where;
    loaded.data = data;
    loaded.offset = object_run.start;
    loaded.run = &object_run;
    loaded.storages = [&records](std::string_view key) -> core::Result<StorageRecord> {
      auto it = records.find(std::string(key));
      if (it == records.end()) return core::fail(core::ErrorCode::kContainer, 0, fmt::format("storage '{}' is not in the file", key));
      return it->second;
    };
    options_.on_load(loaded);
  }
  scan_after_stop(data, reader.pos(), where, nullptr);
}

void FileScan::scan_npy(core::Bytes data, const std::string& where, bool loaded, const std::string& array_name) {
  auto header = container::parse_npy_header(data, options_.limits.max_npy_header_bytes);
  if (!header) {
    add(analysis::error_finding(header.error(), where));
    return;
  }
  if (!header->unresolved.empty()) {
    // numpy's reading of this header is not established: say so, and read the data as the
    // pickle it may be (fail closed).
    add("unresolved:npy-header", Severity::kMedium, Verdict::kUnapproved, where, 0,
        "brine cannot establish how numpy reads this .npy header, so whether its data is a pickle is unknown: " +
            header->unresolved);
  }
  if (loaded) {
    LoadedObject object;
    object.kind = LoadedObject::Kind::kNpy;
    object.member = where;
    object.data = data;
    object.offset = header->data_offset;
    object.npy = &*header;
    object.root_name = array_name;
    options_.on_load(object);
  }
  if (!header->has_object) return;  // plain array data: nothing to unpickle
  // The pickle follows the header; offsets in findings stay relative to the whole file/member.
  if (!take_pickle_budget(where, header->data_offset)) return;
  pickle::PickleRun run = run_one(data, header->data_offset, where, nullptr);
  if (run.stopped) scan_after_stop(data, run.end, where, nullptr);
}

}  // namespace brine::scan
