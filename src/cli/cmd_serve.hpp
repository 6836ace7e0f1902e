// `brine serve`: the command-line front of serve/server.hpp — its flags, the signals that stop
// it, and the access log's destination.
#pragma once

#include <string>
#include <vector>

#include "core/limits.hpp"
#include "rules/rule_loader.hpp"
#include "serve/server.hpp"

namespace CLI {
class App;
}

namespace brine::cli {

class ServeCommand {
 public:
  /// Adds the serve flags (not the rules or limits flags, which main adds as for scan).
  void add_to(CLI::App& serve);
  /// Serves until SIGTERM or SIGINT, then drains. 0 after a clean drain; 2 when it cannot start.
  [[nodiscard]] int run(const rules::RuleOptions& rules, const core::Limits& limits);

 private:
  serve::ServeOptions options_;
  std::string listen_ = "127.0.0.1:8080";
  std::string token_file_;
  std::string access_log_ = "-";
  double request_timeout_ = 300;
};

}  // namespace brine::cli
