// `brine serve`: the command-line front of serve/server.hpp — its flags, the signals that stop
// it, and the access log's destination. `brine` parses the flags and hands the process over to
// brine-serve (exec_serve_program), which parses them again and runs (cmd_serve_run.cpp).
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
  /// Only in brine-serve (cmd_serve_run.cpp).
  [[nodiscard]] int run(const rules::RuleOptions& rules, const core::Limits& limits);

 private:
  serve::ServeOptions options_;
  std::string listen_ = "127.0.0.1:8080";
  std::string token_file_;
  std::string access_log_ = "-";
  double request_timeout_ = 300;
};

/// What `brine serve` does once its flags are parsed: in brine (serve_handoff.cpp), exec
/// brine-serve with the same command line; in brine-serve (cmd_serve_run.cpp), serve.
int serve_main(char** argv, ServeCommand& command, const rules::RuleOptions& rules, const core::Limits& limits);

/// Where brine-serve may be: beside this program, then in the libexec folder of its prefix.
std::vector<std::string> serve_program_candidates();
/// Replaces this process with brine-serve, given the same command line. Returns (2, after
/// saying why on stderr) only when no candidate could be started.
int exec_serve_program(char** argv);

}  // namespace brine::cli
