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
  /// Checks one rule file as add_file loads it (its entries join the rules), but goes on past a
  /// bad entry: every problem found, each "<source>:<line>:<column>: message". Empty = valid.
  /// (A JSON syntax error still ends the check: nothing after it can be read.)
  std::vector<std::string> check_file(std::string_view text, std::string_view source);
  /// One --allow value: "module.qualname" (all uses) or "module.qualname:call,build".
  core::Status add_allow(std::string_view spec);
  /// Freezes the rules.
  std::shared_ptr<const RuleSet> build() &&;

 private:
  core::Status load_file(std::string_view text, std::string_view source, std::vector<std::string>* problems);

  struct State;
  std::unique_ptr<State> state_;
};

/// Reads a rule file from disk (a pack name is not looked up): its text, or why it cannot be read.
core::Result<std::string> read_rule_file(const std::string& path);

/// `brine rules check`: the problems of the rule file at `path`, checked after the rules that are
/// always loaded (aliases, denylist), exactly as `--rules FILE` would load it. Empty = valid.
std::vector<std::string> check_rule_file(const std::string& path);

/// Builds the rule set for a scan: aliases + denylist (+ default) + the requested packs/files + --allow.
core::Result<std::shared_ptr<const RuleSet>> load_rules(const RuleOptions& options);

}  // namespace brine::rules
