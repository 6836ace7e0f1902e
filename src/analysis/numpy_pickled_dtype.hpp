// A numpy dtype as a pickle rebuilds it: numpy.dtype(typestr, align, copy), then BUILD, which
// calls dtype.__setstate__(state) (numpy 1.24 descriptor.c, arraydescr_setstate). The state
// decides more than it seems: for version >= 3 the flags — and so dtype.hasobject — are taken
// from the state as given ('O8' with flags 0 holds no objects, 'f8' with flags 1 does), and the
// element size is taken from the state only for flexible types (S, U, V). joblib's reading of
// array data and sanitize's conversion of pickled arrays both go through this one model.
#pragma once

#include "container/numpy_dtype.hpp"
#include "pickle/value.hpp"

namespace brine::analysis {

struct PickledDtype {
  container::DtypeResolution resolution;  ///< has_object / itemsize / kind after __setstate__
  char byteorder = '|';                   ///< '<', '>', '=' (native), '|' (not applicable)
  [[nodiscard]] bool big_endian() const { return byteorder == '>'; }
};

/// `dtype` must be a call of numpy.dtype; anything else (or any form brine does not model) is
/// kUnresolved with the reason.
PickledDtype pickled_numpy_dtype(const pickle::ValueStore& v, pickle::ValueRef dtype);

}  // namespace brine::analysis
