#include "scan/scanner.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>

#include "analysis/analyzer.hpp"
#include "container/npy.hpp"
#include "container/sniff.hpp"
#include "container/zip_archive.hpp"
#include "core/mapped_file.hpp"
#include "core/sha256.hpp"
#include "pickle/machine.hpp"
#include "pickle/numbers.hpp"

namespace brine::scan {

using analysis::Finding;
using analysis::Verdict;
using rules::Severity;

std::uint64_t storage_element_size(std::string_view type) {
  static const std::map<std::string_view, std::uint64_t> kSizes = {
      {"DoubleStorage", 8}, {"FloatStorage", 4}, {"HalfStorage", 2}, {"BFloat16Storage", 2},
      {"LongStorage", 8}, {"IntStorage", 4}, {"ShortStorage", 2}, {"CharStorage", 1},
      {"ByteStorage", 1}, {"BoolStorage", 1}, {"ComplexFloatStorage", 8}, {"ComplexDoubleStorage", 16},
      {"QInt8Storage", 1}, {"QUInt8Storage", 1}, {"QInt32Storage", 4}, {"QUInt4x2Storage", 1},
      {"QUInt2x4Storage", 1}, {"UntypedStorage", 1}, {"_UntypedStorage", 1},
  };
  const auto dot = type.rfind('.');
  const std::string_view module = dot == std::string_view::npos ? std::string_view{} : type.substr(0, dot);
  if (module != "torch" && module != "torch.cuda" && module != "torch.storage") return 0;
  auto it = kSizes.find(type.substr(dot + 1));
  return it == kSizes.end() ? 0 : it->second;
}

namespace {

Finding simple_finding(std::string rule, Severity sev, Verdict impact, std::string member, std::uint64_t offset,
                       std::string message) {
  Finding f;
  f.rule = std::move(rule);
  f.severity = sev;
  f.impact = impact;
  f.member = std::move(member);
  f.offset = offset;
  f.message = std::move(message);
  return f;
}

/// State for scanning one file.
class FileScan {
 public:
  FileScan(const rules::RuleSet& rules, const ScanOptions& options, FileReport& report)
      : FileScan(rules, options, report, std::chrono::steady_clock::now() + options.limits.max_file_time, 0) {}
  FileScan(const rules::RuleSet& rules, const ScanOptions& options, FileReport& report,
           std::chrono::steady_clock::time_point deadline, std::uint64_t depth)
      : rules_(rules), options_(options), report_(report), deadline_(deadline), depth_(depth) {}

  void run(core::Bytes data) {
    switch (container::sniff(data)) {
      case container::Format::kEmpty:
        report_.container = "empty";
        report_.recognized = false;
        add(simple_finding("malformed:empty", Severity::kHigh, Verdict::kError, {}, 0, "the file is empty"));
        return;
      case container::Format::kZip:
        scan_zip(data);
        return;
      case container::Format::kNpy:
        report_.container = "npy";
        scan_npy(data, {});
        return;
      case container::Format::kUnknown:
        report_.container = "unknown";
        report_.recognized = false;
        add(simple_finding("malformed:not-a-pickle", Severity::kHigh, Verdict::kError, {}, 0,
                           fmt::format("not a pickle or a supported container (first byte 0x{:02x} is not a pickle opcode)", data[0])));
        return;
      case container::Format::kPickle:
      case container::Format::kMaybePickle:
        if (container::is_torch_legacy_magic(data)) {
          scan_torch_legacy(data);
          return;
        }
        report_.container = "pickle";
        scan_stream(data, {}, /*first_is_probe=*/container::sniff(data) == container::Format::kMaybePickle);
        return;
    }
  }

 private:
  void add(Finding f) { report_.findings.push_back(std::move(f)); }

  bool take_pickle_budget(const std::string& member, std::uint64_t offset) {
    if (++report_.pickles > options_.limits.max_pickles_per_file) {
      add(simple_finding("limit:max-pickles", Severity::kHigh, Verdict::kError, member, offset,
                         fmt::format("more than {} pickles in one file", options_.limits.max_pickles_per_file)));
      return false;
    }
    return true;
  }

  /// Runs and analyses one pickle at `pos`; returns the run (for its root/end) and keeps storages.
  pickle::PickleRun run_one(core::Bytes data, std::uint64_t pos, const std::string& member,
                            std::vector<analysis::StorageRef>* storages) {
    pickle::PickleRun run = pickle::run_pickle(data, pos, options_.limits, deadline_);
    report_.opcodes += run.opcodes;
    auto result = analysis::analyze_pickle(run, rules_, analysis::PickleContext{member});
    for (auto& f : result.findings) add(std::move(f));
    if (storages != nullptr) storages->insert(storages->end(), result.storages.begin(), result.storages.end());
    for (const auto& nested : result.nested) scan_nested(nested, member);
    return run;
  }

  /// A file inside the file: scanned like any file, its findings folded in under
  /// "<member>!<loader>@<offset>[/<inner member>]".
  void scan_nested(const analysis::NestedPayload& nested, const std::string& member) {
    const std::string where = member.empty() ? fmt::format("{}@{}", nested.loader, nested.offset)
                                             : fmt::format("{}!{}@{}", member, nested.loader, nested.offset);
    if (depth_ + 1 > options_.limits.max_nested_depth) {
      add(simple_finding("limit:max-nested-depth", Severity::kHigh, Verdict::kError, member, nested.offset,
                         fmt::format("files nested more than {} deep", options_.limits.max_nested_depth)));
      return;
    }
    FileReport inner;
    FileScan(rules_, options_, inner, deadline_, depth_ + 1).run(core::as_bytes(nested.data));
    report_.pickles += inner.pickles;
    report_.opcodes += inner.opcodes;
    for (auto& f : inner.findings) {
      f.member = f.member.empty() ? where : where + "/" + f.member;
      add(std::move(f));
    }
  }

  /// Everything after the first pickle of a stream: more pickles (each one an evasion
  /// indicator, and scanned like the first) or trailing bytes.
  void scan_after_stop(core::Bytes data, std::uint64_t pos, const std::string& member,
                       std::vector<analysis::StorageRef>* storages) {
    while (pos < data.size()) {
      // Probe first: trailing bytes that are no pickle at all are reported as such, not as an error.
      pickle::PickleRun probe = pickle::run_pickle(data, pos, options_.limits, deadline_);
      const bool limit_hit = probe.error && (probe.error->code == core::ErrorCode::kLimitExceeded ||
                                             probe.error->code == core::ErrorCode::kTimeout);
      if (!probe.stopped && !probe.effects && !limit_hit) {
        add(simple_finding("unapproved:trailing-data", Severity::kMedium, Verdict::kUnapproved, member, pos,
                           fmt::format("{} bytes follow the last STOP; pickle.load ignores them, other readers may not",
                                       data.size() - pos)));
        return;
      }
      if (!take_pickle_budget(member, pos)) return;
      add(simple_finding("evasion:pickle-after-stop", Severity::kHigh, Verdict::kMalicious, member, pos,
                         "another pickle follows STOP: a second pickle.load on the same stream runs it, and scanners that "
                         "stop at the first STOP miss it"));
      pickle::PickleRun run = run_one(data, pos, member, storages);
      if (!run.stopped) return;
      pos = run.end;
    }
  }

  /// A raw pickle stream (a file or a container member).
  void scan_stream(core::Bytes data, const std::string& member, bool first_is_probe,
                   std::vector<analysis::StorageRef>* storages = nullptr) {
    if (data.empty()) {
      add(simple_finding("malformed:empty", Severity::kHigh, Verdict::kError, member, 0, "empty pickle"));
      return;
    }
    if (!take_pickle_budget(member, 0)) return;
    const std::size_t before = report_.findings.size();
    pickle::PickleRun run = run_one(data, 0, member, storages);
    const bool limit_hit = run.error && (run.error->code == core::ErrorCode::kLimitExceeded ||
                                         run.error->code == core::ErrorCode::kTimeout);
    if (first_is_probe && member.empty() && !run.stopped && !run.effects && !limit_hit) {
      // Starts with an opcode byte but is no pickle: nothing would run before the loader fails.
      report_.findings.resize(before);
      report_.container = "unknown";
      report_.recognized = false;
      add(simple_finding("malformed:not-a-pickle", Severity::kHigh, Verdict::kError, member, run.end,
                         fmt::format("not a pickle or a supported container: {}",
                                     run.error ? run.error->describe() : std::string("no STOP"))));
      return;
    }
    if (run.stopped) scan_after_stop(data, run.end, member, storages);
  }

  /// torch < 1.6 (and _use_new_zipfile_serialization=False): magic, protocol version and
  /// sys_info pickles, the object pickle, the storage-key list pickle, then raw storages.
  void scan_torch_legacy(core::Bytes data) {
    report_.container = "torch-legacy";
    std::vector<analysis::StorageRef> storages;
    std::uint64_t pos = 0;
    pickle::PickleRun keys_run;
    static constexpr const char* kParts[] = {"magic number", "protocol version", "sys_info", "object", "storage keys"};
    for (int i = 0; i < 5; ++i) {
      if (pos >= data.size()) {
        add(simple_finding("malformed:truncated", Severity::kHigh, Verdict::kError, {}, pos,
                           fmt::format("legacy torch file ends before its {} pickle", kParts[i])));
        return;
      }
      if (!take_pickle_budget({}, pos)) return;
      pickle::PickleRun run = run_one(data, pos, {}, i == 3 ? &storages : nullptr);
      if (!run.stopped) return;  // the error is already a finding
      pos = run.end;
      if (i == 4) keys_run = std::move(run);
    }
    // Walk the raw storages by their declared sizes, in the order of the key list.
    std::map<std::string, std::uint64_t> element_size;
    for (const auto& s : storages) element_size.emplace(s.key, storage_element_size(s.storage_type));
    const auto& kv = keys_run.values;
    if (kv.node(keys_run.root).kind != pickle::Kind::kList) {
      add(simple_finding("malformed:legacy-storage-keys", Severity::kHigh, Verdict::kError, {}, keys_run.start,
                         "the storage-key pickle of a legacy torch file is not a list"));
      return;
    }
    core::ByteReader reader(data, pos);
    for (pickle::ValueRef key_ref : kv.items(keys_run.root)) {
      auto key = kv.as_text(key_ref);
      auto it = key ? element_size.find(std::string(*key)) : element_size.end();
      if (it == element_size.end() || it->second == 0) {
        add(simple_finding("malformed:legacy-storage-keys", Severity::kHigh, Verdict::kError, {}, reader.pos(),
                           "a storage key has no storage of known type in the object pickle"));
        return;
      }
      const std::uint64_t at = reader.pos();
      auto numel = reader.uint_le(8);
      const std::uint64_t n = numel.value_or(0);
      if (!numel || n > (1ull << 62) / it->second || n * it->second > reader.remaining()) {
        add(simple_finding("malformed:truncated", Severity::kHigh, Verdict::kError, {}, at,
                           fmt::format("storage {} claims {} elements of {} bytes, {} bytes remain", *key, n, it->second,
                                       reader.remaining())));
        return;
      }
      reader.seek(reader.pos() + n * it->second);
    }
    scan_after_stop(data, reader.pos(), {}, nullptr);
  }

  /// .npy: only an object dtype carries a pickle (what np.load(allow_pickle=True) would unpickle).
  void scan_npy(core::Bytes data, const std::string& member) {
    auto header = container::parse_npy_header(data);
    if (!header) {
      add(analysis::error_finding(header.error(), member));
      return;
    }
    if (!header->has_object) return;  // plain array data: nothing to unpickle
    // The pickle follows the header; offsets in findings stay relative to the whole file/member.
    if (!take_pickle_budget(member, header->data_offset)) return;
    pickle::PickleRun run = run_one(data, header->data_offset, member, nullptr);
    if (run.stopped) scan_after_stop(data, run.end, member, nullptr);
  }

  void scan_zip(core::Bytes data) {
    report_.container = "zip";
    auto archive = container::ZipArchive::open(data);
    if (!archive) {
      add(analysis::error_finding(archive.error(), {}));
      return;
    }
    const auto& entries = archive->entries();
    // torch's reader takes the archive prefix from the first entry and looks records up under it.
    std::string prefix;
    if (!entries.empty()) {
      const auto slash = entries[0].name.find('/');
      if (slash != std::string::npos) prefix = entries[0].name.substr(0, slash + 1);
    }
    std::map<std::string, std::uint64_t> sizes;
    for (const auto& e : entries) sizes[e.name] = e.size;
    const bool torch = !prefix.empty() && (sizes.count(prefix + "data.pkl") || sizes.count(prefix + "constants.pkl"));
    if (torch) {
      bool script = sizes.count(prefix + "constants.pkl") != 0;
      for (const auto& e : entries) script = script || e.name.starts_with(prefix + "code/");
      report_.container = script ? "torchscript-zip" : "torch-zip";
    }
    std::uint64_t outside = 0;
    std::string first_outside;
    bool any_pickle = false;
    for (const auto& e : entries) {
      MemberInfo info{e.name, "other", e.size, false};
      if (torch && !e.name.starts_with(prefix)) {
        if (outside++ == 0) first_outside = e.name;
      }
      const bool storage = torch && (e.name.starts_with(prefix + "data/") || e.name.starts_with(prefix + "constants/"));
      if (storage) {
        info.format = "storage";  // never read during a scan
        report_.members.push_back(std::move(info));
        continue;
      }
      bool scan = e.name.ends_with(".pkl") || e.name.ends_with(".debug_pkl");
      if (!scan && e.size > 0 && !e.name.ends_with("/")) {
        auto head = archive->read_prefix(e, 16);
        if (head) {
          const core::Bytes h(head->data(), head->size());
          if (container::sniff(h) == container::Format::kPickle) {
            scan = true;
          } else if (container::is_npy(h)) {
            info.format = "npy";
            scan_npz_member(*archive, e);
          } else if (container::sniff(h) == container::Format::kZip) {
            info.format = "zip";
            add(simple_finding("unapproved:unscanned-member", Severity::kMedium, Verdict::kUnapproved, e.name, 0,
                               "a nested zip archive; brine does not read nested archives yet"));
          }
        }
      }
      if (scan) {
        any_pickle = true;
        info.format = "pickle";
        info.scanned = true;
        scan_zip_pickle(*archive, e, torch ? prefix : std::string(), sizes);
      }
      report_.members.push_back(std::move(info));
    }
    if (outside != 0) {
      add(simple_finding("unapproved:outside-prefix", Severity::kMedium, Verdict::kUnapproved, first_outside, 0,
                         fmt::format("{} entr{} outside the archive prefix '{}' that torch.load uses", outside,
                                     outside == 1 ? "y lies" : "ies lie", prefix)));
    }
    if (!any_pickle) {
      add(simple_finding("info:no-pickle", Severity::kInfo, Verdict::kClean, {}, 0, "the archive holds no pickle member"));
    }
  }

  /// An .npy inside a zip (npz): read the header first, and the whole member only for object arrays.
  void scan_npz_member(const container::ZipArchive& archive, const container::ZipEntry& e) {
    auto head = archive.read_prefix(e, 1 << 16);
    if (!head) {
      add(analysis::error_finding(head.error(), e.name));
      return;
    }
    auto header = container::parse_npy_header(core::Bytes(head->data(), head->size()));
    if (!header) {
      add(analysis::error_finding(header.error(), e.name));
      return;
    }
    if (!header->has_object) return;
    auto bytes = archive.read(e, options_.limits.max_member_bytes);
    if (!bytes) {
      add(analysis::error_finding(bytes.error(), e.name));
      return;
    }
    scan_npy(core::Bytes(bytes->data(), bytes->size()), e.name);
  }

  void scan_zip_pickle(const container::ZipArchive& archive, const container::ZipEntry& e, const std::string& prefix,
                       const std::map<std::string, std::uint64_t>& sizes) {
    auto bytes = archive.read(e, options_.limits.max_member_bytes);
    if (!bytes) {
      add(analysis::error_finding(bytes.error(), e.name));
      return;
    }
    std::vector<analysis::StorageRef> storages;
    scan_stream(core::Bytes(bytes->data(), bytes->size()), e.name, false, &storages);
    // Only data.pkl and constants.pkl load storages (torch.load / torch.jit.load).
    if (prefix.empty() || (e.name != prefix + "data.pkl" && e.name != prefix + "constants.pkl")) return;
    // Storage records live beside the pickle: data.pkl -> data/<key>, constants.pkl -> constants/<key>.
    const std::string dir = e.name.substr(0, e.name.size() - 4) + "/";
    for (const auto& s : storages) {
      const std::string record = dir + s.key;
      auto it = sizes.find(record);
      if (it == sizes.end()) {
        add(simple_finding("malformed:missing-storage", Severity::kHigh, Verdict::kError, e.name, s.offset,
                           fmt::format("persistent id names storage '{}', but the archive has no {}", s.key, record)));
        continue;
      }
      const std::uint64_t elem = storage_element_size(s.storage_type);
      if (elem != 0 && s.numel && *s.numel >= 0) {
        const auto need = static_cast<std::uint64_t>(*s.numel);
        if (need > (1ull << 62) / elem || need * elem > it->second) {
          add(simple_finding("malformed:storage-size", Severity::kHigh, Verdict::kError, e.name, s.offset,
                             fmt::format("storage '{}' claims {} x {} bytes, its record holds {}", s.key, need, elem, it->second)));
        }
      }
    }
  }

  const rules::RuleSet& rules_;
  const ScanOptions& options_;
  FileReport& report_;
  std::chrono::steady_clock::time_point deadline_;
  std::uint64_t depth_ = 0;
};

}  // namespace

Scanner::Scanner(std::shared_ptr<const rules::RuleSet> rules, ScanOptions options)
    : rules_(std::move(rules)), options_(options) {}

FileReport Scanner::scan_bytes(core::Bytes data, std::string path) const {
  const auto start = std::chrono::steady_clock::now();
  FileReport report;
  report.path = std::move(path);
  report.size = data.size();
  if (options_.compute_sha256) report.sha256 = core::sha256_hex(data);
  FileScan(*rules_, options_, report).run(data);
  std::stable_sort(report.findings.begin(), report.findings.end(), [](const Finding& a, const Finding& b) {
    if (a.impact != b.impact) return a.impact > b.impact;
    if (a.severity != b.severity) return a.severity > b.severity;
    if (a.member != b.member) return a.member < b.member;
    return a.offset < b.offset;
  });
  report.verdict = analysis::verdict_of(report.findings);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

FileReport Scanner::scan_path(const std::string& path) const {
  auto file = path == "-" ? core::MappedFile::read_stream(0, options_.limits.max_member_bytes) : core::MappedFile::open(path);
  if (!file) {
    FileReport report;
    report.path = path;
    report.container = "unreadable";
    report.findings.push_back(analysis::error_finding(file.error(), {}));
    report.findings.back().rule = "io:unreadable";
    report.findings.back().message = file.error().detail;
    report.verdict = Verdict::kError;
    return report;
  }
  return scan_bytes(file->bytes(), path);
}

}  // namespace brine::scan
