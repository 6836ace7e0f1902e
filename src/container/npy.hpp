// The .npy header (numpy/lib/format.py): magic, version, a Python-literal dict with 'descr',
// 'fortran_order' and 'shape', padded. An object dtype means a pickle follows the header
// (np.save pickles object arrays; np.load(allow_pickle=True) unpickles them).
#pragma once

#include <cstdint>
#include <string>

#include "core/byte_reader.hpp"
#include "core/result.hpp"

namespace brine::container {

struct NpyHeader {
  int major = 0, minor = 0;
  std::uint64_t data_offset = 0;  ///< first byte after the header
  std::string descr;              ///< the 'descr' value as written
  bool has_object = false;        ///< the dtype holds Python objects: the data is a pickle
};

/// True if `data` starts with the .npy magic.
bool is_npy(core::Bytes data);
/// Parses the header; kContainer errors name the offset.
core::Result<NpyHeader> parse_npy_header(core::Bytes data);

}  // namespace brine::container
