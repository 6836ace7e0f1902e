// The .npy header (numpy/lib/format.py, numpy 1.24): magic, version (1.0, 2.0 or 3.0), a header
// length, then a header that numpy decodes (latin1, or UTF-8 for 3.0), filters of Python 2 'L'
// suffixes (1.0 and 2.0), evaluates with ast.literal_eval, and checks: a dict with exactly the
// keys 'descr', 'fortran_order' (a bool) and 'shape' (a tuple of ints); the dtype is
// format.descr_to_dtype(descr). The array data starts right after the header. If the dtype has
// objects anywhere (dtype.hasobject), the data is a pickle (np.load(allow_pickle=True) runs it).
// This is the one reader of these headers: scan, sanitize and disasm all use it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "container/numpy_dtype.hpp"
#include "core/byte_reader.hpp"
#include "core/limits.hpp"
#include "core/result.hpp"

namespace brine::container {

struct NpyHeader {
  int major = 0, minor = 0;
  std::uint64_t data_offset = 0;  ///< first byte after the header (where numpy reads the data)
  std::string descr;              ///< the dtype, described for reports
  /// Non-empty when brine could not establish numpy's reading of the header exactly (a spelling
  /// it does not model): then nothing below is known, and has_object is true (fail closed).
  std::string unresolved;
  bool has_object = false;        ///< dtype.hasobject: the data is a pickle
  NumpyDtype dtype;
  std::vector<std::int64_t> shape;
  bool fortran_order = false;
};

/// True if `data` starts with the .npy magic.
bool is_npy(core::Bytes data);
/// Parses the header. kContainer errors are headers numpy.load rejects; headers brine cannot
/// model exactly parse with `unresolved` set.
/// kLimitExceeded (max-npy-header) when the header is longer than `max_header_bytes`.
core::Result<NpyHeader> parse_npy_header(core::Bytes data, std::uint64_t max_header_bytes = core::Limits{}.max_npy_header_bytes);

}  // namespace brine::container
