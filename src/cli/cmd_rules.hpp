// `brine rules list | explain | check`: questions about the rules themselves (docs/rules.md,
// "Rules tooling"). The `rules` command and its --show live in main.cpp; this adds the
// subcommands under it and runs whichever was given.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "rules/rule_loader.hpp"

namespace CLI {
class App;
}

namespace brine::cli {

class RulesSubcommands {
 public:
  /// Adds list, explain and check to the `rules` command.
  void add_to(CLI::App& rules_command);
  /// Runs the subcommand that was given, if one was: its exit code.
  [[nodiscard]] std::optional<int> run() const;

 private:
  CLI::App* list_ = nullptr;
  CLI::App* explain_ = nullptr;
  CLI::App* check_ = nullptr;
  rules::RuleOptions list_rules_, explain_rules_;
  bool list_no_default_ = false, explain_no_default_ = false;
  bool list_json_ = false, explain_json_ = false;
  std::string global_, check_path_;
  int protocol_ = 2;
};

}  // namespace brine::cli
