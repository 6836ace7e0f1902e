// Checks a call's arguments against an allow entry's ARGSPEC (docs/rules.md), on the final
// state of the symbolic object graph.
//
// Work is linear in the graph: results for container specs are memoized per (spec, value), so a
// huge tuple shared by many calls is checked once.
#pragma once

#include <functional>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "pickle/value.hpp"
#include "rules/rule_set.hpp"

namespace brine::analysis {

/// (global node, use) pairs that a matching spec says the callee gives its arguments.
using ImpliedUses = std::vector<std::pair<pickle::ValueRef, rules::UseMask>>;

class ArgMatcher {
 public:
  /// `loader_name(global)` returns the module.qualname the loader resolves a kGlobal node to.
  /// `mutated` holds objects that received BUILD/SETITEM/APPEND (they are not "empty" calls).
  ArgMatcher(const rules::RuleSet& rules, const pickle::ValueStore& values,
             const std::unordered_set<pickle::ValueRef>& mutated,
             std::function<std::string_view(pickle::ValueRef)> loader_name)
      : rules_(rules), v_(values), mutated_(mutated), loader_name_(std::move(loader_name)) {}

  /// True if `args` (and `kwargs`, kNoValue if none) satisfy `spec`; adds implied uses on success.
  bool match_args(const rules::ArgsSpec& spec, pickle::ValueRef args, pickle::ValueRef kwargs, ImpliedUses& implied);

  /// True if `value` satisfies one spec (state rules use this per key).
  bool match_value(int spec, pickle::ValueRef value, ImpliedUses& implied) { return match(spec, value, implied); }

  /// True if nothing reachable from `value` imports, calls or loads: only primitives and plain
  /// containers. Explicit stack, each node visited once (shared and cyclic values are fine).
  bool is_data(pickle::ValueRef value);

  /// The loader name of a call's callable when it is a resolved global, else empty.
  std::string_view callee_name(pickle::ValueRef call) const;

 private:
  bool match(int spec, pickle::ValueRef value, ImpliedUses& implied);
  bool match_elements(const rules::SpecNode& spec, pickle::ValueRef value, ImpliedUses& implied);
  bool name_in(std::string_view name, const std::vector<std::string>& names) const;

  const rules::RuleSet& rules_;
  const pickle::ValueStore& v_;
  const std::unordered_set<pickle::ValueRef>& mutated_;
  std::function<std::string_view(pickle::ValueRef)> loader_name_;
  std::unordered_map<std::uint64_t, bool> memo_;  // (spec << 32 | value) -> result, containers only
  std::unordered_map<pickle::ValueRef, bool> data_memo_;
};

}  // namespace brine::analysis
