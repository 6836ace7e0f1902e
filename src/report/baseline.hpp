// Baselines: findings a team has looked at and accepted as they are now. A baseline records each
// accepted finding by what it is *in which bytes* — the file's sha256, the rule, the global, the
// container member and the byte offset — so `scan --baseline` suppresses exactly those: a changed
// file (another sha256), or a new finding in the same file, is reported again. Nothing is ever
// suppressed by name or path alone; paths are kept only to help a person read the file. The key is
// the tuple report/fingerprint.hpp hashes, so each entry also carries the SARIF fingerprint.
//
// Findings whose impact is `error` (a file brine could not read completely, a limit hit) are never
// recorded: accepting one would accept bytes brine never judged.
#pragma once

#include <cstdint>
#include <ostream>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "analysis/finding.hpp"
#include "core/result.hpp"
#include "scan/scanner.hpp"

namespace brine::report {

struct BaselineKey {
  std::string sha256, rule, global, member;
  std::uint64_t offset = 0;
  auto operator<=>(const BaselineKey&) const = default;
};

struct Baseline {
  struct Entry {
    BaselineKey key;
    std::string path;  ///< where it was seen (informational only)
    std::string impact;
    std::string fingerprint;  ///< report::finding_fingerprint of the finding: SARIF's partialFingerprints value
  };
  std::vector<Entry> entries;
  std::set<BaselineKey> keys;
};

/// The key of one finding of a scanned file (the file's sha256 must have been computed).
BaselineKey baseline_key(const scan::FileReport& file, const analysis::Finding& finding);

/// A baseline of every finding of `files` that can be accepted (impact other than error).
/// Files without a sha256 are an error (kUsage): the key needs it.
core::Result<Baseline> make_baseline(const std::vector<scan::FileReport>& files);
void write_baseline(std::ostream& out, const Baseline& baseline);
/// Reads a baseline file; errors name the file and what is wrong.
core::Result<Baseline> load_baseline(const std::string& path);

/// Removes the findings of `file` the baseline accepts and recomputes its verdict. Returns how
/// many were suppressed (their `count`s summed).
std::uint64_t apply_baseline(const Baseline& baseline, scan::FileReport& file);

}  // namespace brine::report
