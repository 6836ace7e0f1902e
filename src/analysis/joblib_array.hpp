// joblib's NumpyArrayWrapper (joblib/numpy_pickle.py): right after the wrapper's BUILD, joblib.load
// reads the array out of the stream itself — an alignment byte p and p bytes of padding (when the
// state has numpy_array_alignment_bytes), then count x itemsize raw bytes — or, for arrays of
// Python objects, a whole separate pickle. The scan (which skips and cross-checks those bytes) and
// sanitize (which converts them) both follow that reading through this one description of it.
#pragma once

#include <cstdint>

#include "core/byte_reader.hpp"
#include "core/result.hpp"
#include "pickle/value.hpp"

namespace brine::analysis {

/// True if `inst` is an instance of joblib's NumpyArrayWrapper (joblib or sklearn.externals.joblib).
bool is_joblib_wrapper(const pickle::ValueStore& v, pickle::ValueRef inst);

/// What follows a wrapper's BUILD.
struct JoblibArrayData {
  bool object_pickle = false;  ///< object dtype: a complete pickle starts at the BUILD's end
  std::uint64_t begin = 0;     ///< raw array bytes [begin, begin + size) (not for object arrays)
  std::uint64_t size = 0;
};

/// Reads the wrapper's `state` (shape, dtype, alignment) and locates its data in `data` after
/// `pos` (the offset just past BUILD). Errors are what joblib.load would fail on: kTypeError for
/// a state it cannot use, kTruncated when the data runs past the stream; both name BUILD at `pos`.
core::Result<JoblibArrayData> joblib_array_data(const pickle::ValueStore& v, pickle::ValueRef state, core::Bytes data,
                                                std::uint64_t pos);

}  // namespace brine::analysis
