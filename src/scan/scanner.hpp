// Scans one file: sniffs its format, finds every pickle a loader could run, executes each in the
// symbolic VM, analyses the result against the rules, and returns a verdict with its findings.
//
// A Scanner is immutable after construction and can be used from many threads at once.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "analysis/finding.hpp"
#include "core/byte_reader.hpp"
#include "core/limits.hpp"
#include "rules/rule_set.hpp"
#include "scan/loaded_object.hpp"

namespace brine::pickle {
struct PickleRun;
}

namespace brine::scan {

/// Sees every pickle the scan executes, in the order it executes them (probes that only decide
/// whether bytes are a pickle at all are not shown): `member` is the path of container members
/// leading to the pickle's bytes ("" for the file itself), as findings name it; `data` are those
/// bytes (the run's offsets index them; run.jumps lists what a loader read itself). `brine
/// inspect` prints each run from here, `brine disasm` lists its opcodes; both are only valid
/// during the call.
using PickleObserver = std::function<void(const std::string& member, core::Bytes data, const pickle::PickleRun& run)>;

struct ScanOptions {
  core::Limits limits;
  bool compute_sha256 = true;  ///< hashing reads every byte; off when only the verdict matters
  PickleObserver on_pickle;    ///< optional; called on the scanning thread
  LoadObserver on_load;        ///< optional; what the file's loader builds (scan/loaded_object.hpp)
};

/// A container member brine looked at.
struct MemberInfo {
  std::string name;
  std::string format;           ///< "pickle", "storage", "npy", ...
  std::uint64_t size = 0;
  bool scanned = false;         ///< its pickles were executed symbolically
};

struct FileReport {
  std::string path;
  std::uint64_t size = 0;
  std::string sha256;           ///< empty when not computed
  std::string container;        ///< "pickle", "torch-zip", "torchscript-zip", "torch-legacy", "zip", "unknown", "empty"
  analysis::Verdict verdict = analysis::Verdict::kClean;
  std::vector<analysis::Finding> findings;  ///< worst first
  std::vector<MemberInfo> members;
  std::uint64_t pickles = 0;    ///< pickle streams executed
  std::uint64_t opcodes = 0;
  double seconds = 0;
  /// False when the content is no pickle and no container brine reads (its first byte is not an
  /// opcode, or it fails before doing anything): a loader would reject it without running code.
  bool recognized = true;
  /// Findings a baseline accepted and removed (report/baseline.hpp), their counts summed.
  std::uint64_t suppressed = 0;
};

class Scanner {
 public:
  Scanner(std::shared_ptr<const rules::RuleSet> rules, ScanOptions options);

  [[nodiscard]] FileReport scan_bytes(core::Bytes data, std::string path) const;
  /// Maps and scans a file; an unreadable file is a report with verdict `error`.
  [[nodiscard]] FileReport scan_path(const std::string& path) const;
  /// Whether scan_path reads a mapped file into memory at once (MappedFile::read_whole) rather
  /// than through its map: for a raw pickle of at most 64 MiB with no sign of bulk data the
  /// loader reads past the stream (legacy torch tensors, joblib arrays).
  [[nodiscard]] static bool reads_whole(core::Bytes bytes);
  [[nodiscard]] const rules::RuleSet& rules() const { return *rules_; }
  [[nodiscard]] const std::shared_ptr<const rules::RuleSet>& shared_rules() const { return rules_; }
  [[nodiscard]] const ScanOptions& options() const { return options_; }

 private:
  std::shared_ptr<const rules::RuleSet> rules_;
  ScanOptions options_;
};

/// Element size in bytes of a torch storage class by loader name, 0 if unknown.
std::uint64_t storage_element_size(std::string_view storage_type);

}  // namespace brine::scan
