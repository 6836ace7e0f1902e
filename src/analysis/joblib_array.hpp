// joblib's NumpyArrayWrapper (joblib 1.2, joblib/numpy_pickle.py): right after the wrapper's
// BUILD, NumpyUnpickler.load_build calls wrapper.read_array, which reads from the *file handle*,
// not from the unpickler: an alignment byte p and p bytes of padding when the wrapper's
// numpy_array_alignment_bytes attribute is anything but None, then count x dtype.itemsize raw
// bytes — or, when dtype.hasobject, a whole separate pickle (pickle.load on the file handle).
// The unpickler is pickle._Unpickler (pure Python): inside a protocol-4 FRAME it has already
// read the whole frame, so the file position is the frame's end, not the BUILD opcode's end.
// The scan (which skips and cross-checks those bytes) and sanitize (which converts them) both
// follow that reading through this one description of it.
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
  bool object_pickle = false;  ///< dtype.hasobject: a complete pickle starts at `begin`
  std::uint64_t begin = 0;     ///< raw array bytes [begin, begin + size), or the object pickle's start
  std::uint64_t size = 0;
};

/// Reads the wrapper's attributes (from its constructor arguments, if the pickle called the
/// class, then its BUILD `state`) and locates its data in `data`. `pos` is just past BUILD and
/// `frame_end` the end of the FRAME BUILD was read from (0 outside frames). Errors are what
/// joblib.load would fail on, or a reading brine does not follow exactly (kTypeError), or data
/// running past the stream (kTruncated); all name BUILD at `pos`.
core::Result<JoblibArrayData> joblib_array_data(const pickle::ValueStore& v, pickle::ValueRef inst, pickle::ValueRef state,
                                                core::Bytes data, std::uint64_t pos, std::uint64_t frame_end);

}  // namespace brine::analysis
