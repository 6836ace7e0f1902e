// Questions about the rules themselves, for `brine rules list` and `brine rules explain`: what a
// rule set says about one name (after the rewrites a scan applies), and each entry's constraints
// in words. The scan never uses this; it uses RuleSet::resolve directly.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "rules/rule_set.hpp"

namespace brine::rules {

/// What the rules decide for one global, and why.
struct Explanation {
  enum class Status : std::uint8_t {
    kAllowed,   ///< some allow entry approves the judged name (for the uses in `uses`)
    kDenied,    ///< a deny entry hits a form of the name, or a component is attribute traversal
    kUnlisted,  ///< no entry names it: a scan reports it `unapproved`
  };
  Status status = Status::kUnlisted;
  std::string written;                   ///< module.qualname as asked
  std::string loader_name;               ///< what the loader imports at this protocol (renames, aliases)
  std::string judged;                    ///< the name allow entries must name (re-exports followed)
  std::vector<NameStep> chain;           ///< written -> ... -> judged
  const DenyEntry* deny = nullptr;
  std::string deny_form;                 ///< the form of the name the deny entry matched
  std::string traversal;                 ///< a dunder component reached by attribute access
  std::vector<const AllowEntry*> allow;  ///< entries approving `judged`, exact entries first
  UseMask uses = 0;                      ///< every use some entry grants
  int protocol = 2;
};

std::string_view status_name(Explanation::Status status);

/// `module` + `name` as a GLOBAL opcode at `protocol` would write them.
Explanation explain(const RuleSet& rules, std::string_view module, std::string_view name, int protocol);

/// "module.qualname" split where a GLOBAL would most likely split it: "module:qual.name" splits at
/// the colon, otherwise at the last dot. Empty module: not a dotted name.
std::pair<std::string, std::string> split_global(std::string_view text);

/// A constraint tree in words: "one_of(list, tuple, dict)", "tuple(of=int, max_len=8)".
std::string describe_spec(const RuleSet& rules, int spec);
/// "min 6, max 7; arg0: ..., arg1: ...; rest: ..."
std::string describe_args(const RuleSet& rules, const ArgsSpec& args);
/// "shapes dict; keys _metadata; _metadata: call(collections.OrderedDict)"
std::string describe_state(const RuleSet& rules, const StateRule& state);
/// Every constraint an allow entry adds besides its uses ("args: ...; state: ...; result arg0"); empty if none.
std::string describe_constraints(const RuleSet& rules, const AllowEntry& entry);
/// The rule file an entry comes from, without its line: "rules/default.json", "--allow".
std::string source_file(std::string_view source);

}  // namespace brine::rules
