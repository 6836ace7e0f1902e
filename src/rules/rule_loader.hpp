// Loads rule files (docs/rules.md) into an immutable RuleSet.
//
// The shipped files under rules/ are compiled into the binary; packs are enabled by name
// (`--rules torch-full-model`) and any other file by path. Every error names the file and line.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "rules/rule_set.hpp"

namespace brine::rules {

struct BuiltinRuleFile {
  std::string_view name;  ///< "default", "denylist", "aliases", "packs/sklearn"
  std::string_view text;
};
/// The rule files compiled into the binary (generated from rules/ at build time).
std::span<const BuiltinRuleFile> builtin_rule_files();
/// Names of the opt-in packs ("torch-full-model", ...).
std::vector<std::string> builtin_pack_names();

struct RuleOptions {
  bool use_default = true;             ///< load rules/default.json (aliases and denylist are always loaded)
  std::vector<std::string> rule_files; ///< pack names or paths, in order
  std::vector<std::string> allow;      ///< "module.qualname[:use,use]" from --allow
};

class RuleSetBuilder {
 public:
  RuleSetBuilder();
  RuleSetBuilder(RuleSetBuilder&&) noexcept;
  ~RuleSetBuilder();

  /// Parses and validates one rule file; `source` names it in errors ("rules/default.json").
  core::Status add_file(std::string_view text, std::string_view source);
  /// One --allow value: "module.qualname" (all uses) or "module.qualname:call,build".
  core::Status add_allow(std::string_view spec);
  /// Freezes the rules.
  std::shared_ptr<const RuleSet> build() &&;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// Builds the rule set for a scan: aliases + denylist (+ default) + the requested packs/files + --allow.
core::Result<std::shared_ptr<const RuleSet>> load_rules(const RuleOptions& options);

}  // namespace brine::rules
