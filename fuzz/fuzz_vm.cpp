// The decoder and the symbolic VM, then the analysis of what they built and `brine inspect`'s
// two renderings of it (JSON, which must parse, and the Python-like text): any byte string.
#include <cstddef>
#include <cstdint>
#include <sstream>

#include <nlohmann/json.hpp>

#include "analysis/analyzer.hpp"
#include "fuzz_common.hpp"
#include "pickle/decoder.hpp"
#include "pickle/machine.hpp"
#include "report/inspect.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace brine;
  static const core::Limits limits = fuzz::small_limits();
  const core::Bytes bytes(data, size);
  auto run = pickle::run_pickle(bytes, 0, limits, std::chrono::steady_clock::now() + limits.max_file_time);
  if (run.end > size) __builtin_trap();  // a run never claims bytes past the input
  (void)analysis::analyze_pickle(run, *fuzz::builtin_rules(), analysis::PickleContext{});
  std::ostringstream json_out;
  report::InspectJsonWriter writer(json_out, 1u << 20);
  writer.write_run("m", run);
  writer.flush();
  if (!nlohmann::json::accept(json_out.str())) __builtin_trap();  // inspect --json is always valid JSON
  std::ostringstream text_out;
  report::write_run_text(text_out, "m", run);
  return 0;
}
