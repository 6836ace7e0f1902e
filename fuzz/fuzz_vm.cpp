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
#include "pickle/predecode.hpp"
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
  if (!fuzz::is_rfc_json(json_out.str())) __builtin_trap();  // inspect --json is always valid JSON
  if (pickle::Predecoder::framed(bytes, 0)) {
    // The same run with every frame measured first (pickle::Predecoder): the same result.
    auto pre = pickle::run_pickle(bytes, 0, limits, std::chrono::steady_clock::now() + limits.max_file_time, nullptr,
                                  pickle::Predecode::kBefore);
    std::ostringstream pre_out;
    report::InspectJsonWriter pre_writer(pre_out, 1u << 20);
    pre_writer.write_run("m", pre);
    pre_writer.flush();
    const bool timed_out = (run.error && run.error->code == core::ErrorCode::kTimeout) ||
                           (pre.error && pre.error->code == core::ErrorCode::kTimeout);
    if (!timed_out && (pre_out.str() != json_out.str() || pre.opcodes != run.opcodes)) __builtin_trap();
  }
  std::ostringstream text_out;
  report::write_run_text(text_out, "m", run);
  return 0;
}
