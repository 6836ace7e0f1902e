// What each rule id means, for reports that describe their rules (SARIF's reportingDescriptor).
// Mirrors the rule catalogue of docs/json-report.md; deny rules take their text from the deny
// entry in the rules (rules/denylist.json), which is what the finding's message says too.
#pragma once

#include <string>
#include <string_view>

#include "rules/rule_set.hpp"

namespace brine::report {

struct RuleHelp {
  std::string short_description;  ///< one phrase
  std::string full_description;   ///< what the rule means
  std::string help;               ///< what to do about a result
  std::string help_uri;           ///< an advisory, when the deny entry names one
};

/// Help for `rule` (a Finding::rule). Never empty: an id outside the catalogue is described by its
/// class (the part before ':'). `rules` may be null (then deny rules get the generic text).
RuleHelp rule_help(std::string_view rule, const rules::RuleSet* rules);

}  // namespace brine::report
