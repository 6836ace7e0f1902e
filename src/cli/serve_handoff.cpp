// `brine serve` in brine itself: hand the process over to brine-serve (cli/cmd_serve.hpp says why).
#include "cli/cmd_serve.hpp"

namespace brine::cli {

int serve_main(char** argv, ServeCommand& /*command*/, const rules::RuleOptions& /*rules*/, const core::Limits& /*limits*/) {
  return exec_serve_program(argv);
}

}  // namespace brine::cli
