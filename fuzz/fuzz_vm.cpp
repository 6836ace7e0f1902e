// The decoder and the symbolic VM, then the analysis of what they built: any byte string.
#include <cstddef>
#include <cstdint>

#include "analysis/analyzer.hpp"
#include "fuzz_common.hpp"
#include "pickle/decoder.hpp"
#include "pickle/machine.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace brine;
  static const core::Limits limits = fuzz::small_limits();
  const core::Bytes bytes(data, size);
  auto run = pickle::run_pickle(bytes, 0, limits, std::chrono::steady_clock::now() + limits.max_file_time);
  if (run.end > size) __builtin_trap();  // a run never claims bytes past the input
  (void)analysis::analyze_pickle(run, *fuzz::builtin_rules(), analysis::PickleContext{});
  return 0;
}
