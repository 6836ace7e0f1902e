// Findings and verdicts: the output of analysis, the input of reports.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "rules/rule_set.hpp"

namespace brine::analysis {

/// Ordered from best to worst; a file's verdict is the worst of its findings' impacts.
enum class Verdict : std::uint8_t {
  kClean,       ///< everything approved, stream well formed, nothing after the last STOP
  kUnapproved,  ///< something not approved by the rules (but not known to be dangerous)
  kError,       ///< malformed input or a limit hit: analysis is incomplete
  kMalicious,   ///< a denylisted global, or an evasion indicator
};
std::string_view verdict_name(Verdict v);

struct Finding {
  std::string rule;          ///< "deny:os", "unapproved-global", "evasion:pickle-after-stop", "malformed:truncated"
  rules::Severity severity = rules::Severity::kInfo;
  Verdict impact = Verdict::kClean;  ///< kClean for informational findings
  std::string global;        ///< module.qualname as the loader resolves it, if a global is involved
  std::string use;           ///< "call", "build, setitem"...
  std::string call;          ///< readable reconstruction: os.system('echo hi')
  std::string member;        ///< container member ("archive/data.pkl"), empty for a raw stream
  std::uint64_t offset = 0;  ///< byte offset within the member (or the file)
  std::string opcode;        ///< opcode at that offset
  std::string message;       ///< one line: what it means
  std::uint64_t count = 1;   ///< occurrences folded into this finding
};

/// The worst impact among `findings` (kClean if none).
Verdict verdict_of(const std::vector<Finding>& findings);

}  // namespace brine::analysis
