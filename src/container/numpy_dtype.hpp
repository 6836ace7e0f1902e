// numpy.dtype as numpy 1.24 builds it from the values brine reads: a dtype string (the .npy
// header's 'descr', joblib's numpy.dtype(typestr, ...) call) or format.descr_to_dtype's
// structured descriptions. `has_object` is numpy's dtype.hasobject over the whole dtype tree:
// it decides whether numpy.load and joblib.load unpickle the array data. A spelling brine does
// not resolve exactly is kUnresolved — never "not object".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "container/py_literal.hpp"

namespace brine::container {

struct NumpyDtype {
  bool has_object = false;    ///< dtype.hasobject
  std::uint64_t itemsize = 0;
  char kind = 'V';            ///< dtype.kind
  std::string str;            ///< dtype.str ("<f8") for a plain dtype; empty for structured/subarray
  bool structured = false;    ///< dtype.names is not None
  bool subarray = false;      ///< dtype.subdtype is not None
  /// numpy "flexible" types (S, U, V): the only ones whose itemsize dtype.__setstate__ takes from a pickle.
  [[nodiscard]] bool flexible() const { return kind == 'S' || kind == 'U' || kind == 'V'; }
};

struct DtypeResolution {
  enum class Status : std::uint8_t { kOk, kInvalid, kUnresolved } status = Status::kOk;
  NumpyDtype dtype;
  std::string why;  ///< for kInvalid (numpy raises) and kUnresolved (brine cannot tell)
  [[nodiscard]] bool ok() const { return status == Status::kOk; }
};

/// numpy.dtype(s) for a str `s` (Debian numpy 1.24 on a little-endian 64-bit host).
DtypeResolution numpy_dtype_from_string(std::string_view s);
/// numpy.lib.format.descr_to_dtype(descr): str, (base, shape) tuples, and field lists (padding
/// fields dropped as numpy drops them).
DtypeResolution numpy_dtype_from_descr(const pylit::Value& descr);

}  // namespace brine::container
