// joblib (numpy_pickle): joblib.load runs a pure-Python unpickler that, right after the BUILD of
// a NumpyArrayWrapper, reads the array out of the stream itself — an alignment byte p, p bytes
// of padding, then count x itemsize raw bytes — or, for arrays holding Python objects, a whole
// separate pickle. The pickle then continues. brine follows that reading with a BUILD hook, and
// also reads the same bytes the way plain pickle.load would, because "array data" that decodes
// as opcodes is a payload joblib-aware scanners skip and pickle.load runs.
#include <fmt/format.h>

#include <memory>
#include <set>

#include "analysis/joblib_array.hpp"
#include "scan/file_scan.hpp"

namespace brine::scan {

using analysis::Verdict;
using pickle::Kind;
using pickle::ValueRef;
using pickle::ValueStore;
using rules::Severity;

pickle::BuildHook FileScan::joblib_hook(core::Bytes data, const std::string& where, std::vector<Region>& regions,
                                        std::map<ValueRef, core::Bytes>& arrays) {
  auto read = std::make_shared<std::set<ValueRef>>();
  return [this, data, where, &regions, &arrays, read](const ValueStore& v, ValueRef inst, ValueRef state, std::uint64_t pos,
                                             std::uint64_t frame_end) {
    pickle::BuildHookResult r;
    if (!analysis::is_joblib_wrapper(v, inst)) return r;
    auto fail = [&](std::string why) {
      r.error = core::Error{core::ErrorCode::kTypeError, pos, {}, "BUILD", "joblib array: " + std::move(why)};
      return r;
    };
    // A second BUILD on the same wrapper (through the memo) merges states and reads again.
    if (!read->insert(inst).second) return fail("a second BUILD on the same NumpyArrayWrapper is not followed");
    auto layout = analysis::joblib_array_data(v, inst, state, data, pos, frame_end);
    if (!layout) {
      r.error = layout.error();
      return r;
    }
    if (layout->object_pickle) {
      // A separate, complete pickle (joblib calls plain pickle.load on the file here).
      if (!take_pickle_budget(where, pos)) return fail("too many pickles");
      pickle::PickleRun nested = run_one(data, layout->begin, where, nullptr);
      if (!nested.stopped) return fail("the object array's pickle does not end");
      r.resume_at = nested.end;
      return r;
    }
    regions.push_back({pos, layout->begin + layout->size});
    // Recorded whatever the dtype: sanitize converts it or drops it with the dtype as the reason.
    arrays[inst] = data.subspan(layout->begin, layout->size);
    r.resume_at = layout->begin + layout->size;
    return r;
  };
}

void FileScan::joblib_differential(core::Bytes data, const std::string& where, const std::vector<Region>& regions) {
  // pickle.load on the same bytes, without joblib's reading: only what happens inside the
  // array-data regions is new.
  auto inside = [&](std::uint64_t off) {
    for (const auto& [b, e] : regions) {
      if (off >= b && off < e) return true;
    }
    return false;
  };
  pickle::PickleRun plain = pickle::run_pickle(data, 0, options_.limits, deadline_);
  bool hidden = false;
  for (const auto& e : plain.events) hidden = hidden || inside(e.offset);
  if (!hidden) return;
  auto result = analysis::analyze_pickle(plain, rules_, analysis::PickleContext{where});
  add("evasion:joblib-array-data", Severity::kHigh, Verdict::kMalicious, where, regions.front().first,
      "bytes joblib.load reads as array data are opcodes that import or call when pickle.load reads the file");
  for (auto& f : result.findings) {
    if (inside(f.offset) && f.impact != Verdict::kError) add(std::move(f));
  }
}

}  // namespace brine::scan
