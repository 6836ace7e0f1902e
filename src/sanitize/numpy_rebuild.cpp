// numpy's rebuilds: arrays pickled by numpy (_reconstruct with its state, _frombuffer), their
// dtypes, numpy scalars (as JSON leaves), and joblib's NumpyArrayWrapper arrays, whose data the
// scan found after the wrapper. One job: from an approved numpy (or joblib) value to the bytes and
// layout of its array.

#include "sanitize/walker.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "analysis/numpy_pickled_dtype.hpp"

namespace brine::sanitize::detail {

std::optional<NpDtype> Walker::numpy_dtype(ValueRef r, std::string& why) {
  if (v_.node(r).kind != Kind::kCall) {
    why = "its dtype is not a numpy.dtype(...) value";
    return std::nullopt;
  }
  const auto callee = callee_of(v_.call_rec(r).callable, rules::Use::kCall);
  const auto args = args_of(r);
  if (rebuild_kind(callee.name) != Rebuild::kNpDtype || !callee.approved || args.empty()) {
    why = "its dtype is not an approved numpy.dtype(...)";
    return std::nullopt;
  }
  // The dtype facts (size, objects, byte order after __setstate__) come from the one model
  // joblib's reading also uses.
  const auto pd = analysis::pickled_numpy_dtype(v_, r);
  const auto& res = pd.resolution;
  NpDtype d;
  d.typestr = res.ok() && !res.dtype.str.empty() ? res.dtype.str : std::string(v_.as_text(args[0]).value_or("?"));
  d.big_endian = pd.big_endian();
  if (!res.ok()) {
    why = fmt::format("numpy dtype '{}': {}", d.typestr, res.why);
    return std::nullopt;
  }
  std::optional<DType> dt;
  if (!res.dtype.has_object && !res.dtype.structured && !res.dtype.subarray && !res.dtype.str.empty()) {
    dt = tensor::from_numpy_typestr(res.dtype.str);
  }
  if (!dt) {
    why = fmt::format("numpy dtype '{}' has no tensor type brine writes", d.typestr);
    return std::nullopt;
  }
  d.dtype = *dt;
  return d;
}

std::vector<std::int64_t> Walker::strides_for(const std::vector<std::int64_t>& shape, bool fortran) {
  std::vector<std::int64_t> s(shape.size());
  std::int64_t acc = 1;
  if (fortran) {
    for (std::size_t i = 0; i < shape.size(); ++i) {
      s[i] = acc;
      acc *= std::max<std::int64_t>(shape[i], 1);
    }
  } else {
    for (std::size_t i = shape.size(); i-- > 0;) {
      s[i] = acc;
      acc *= std::max<std::int64_t>(shape[i], 1);
    }
  }
  return s;
}

void Walker::numpy_tensor(const std::string& path, const NpDtype& d, std::vector<std::int64_t> shape, bool fortran,
                          core::Bytes data, std::uint64_t offset, std::string key) {
  tensor::Tensor t;
  t.name = path;
  t.dtype = d.dtype;
  t.big_endian = d.big_endian;
  t.strides = strides_for(shape, fortran);
  t.shape = std::move(shape);
  t.storage = data;
  t.offset = offset;
  t.source = in_.member.empty() ? fmt::format("@{}", offset) : in_.member;
  t.storage_key = std::move(key);
  for (auto dim : t.shape) {
    if (dim < 0) return drop(path, "array not converted: negative dimension", offset);
  }
  const std::uint64_t n = t.numel();
  if (n == UINT64_MAX || (n != 0 && data.size() / n != tensor::info(t.dtype).size) || (n == 0 && !data.empty())) {
    return drop(path, fmt::format("array not converted: {} data bytes for {} elements of {}", data.size(), n, d.typestr), offset);
  }
  if (auto ok = tensor::check_bounds(t); !ok) return drop(path, "array not converted: " + ok.error().detail, offset);
  out_.tensors.push_back(std::move(t));
}

void Walker::numpy_reconstruct(ValueRef r, pickle::Items args, const std::string& path) {
  const auto& c = v_.call_rec(r);
  if (args.empty() || v_.node(args[0]).kind != Kind::kGlobal) return drop(path, "numpy _reconstruct of an unknown class", c.offset);
  const auto& g = v_.global_rec(args[0]);
  if (!g.resolved || g.module != "numpy" || g.name != "ndarray") {
    return drop(path, fmt::format("numpy _reconstruct of {} (only numpy.ndarray is converted)", global_text(args[0])), c.offset);
  }
  if (c.state == pickle::kNoValue || v_.node(c.state).kind != Kind::kTuple) return drop(path, "numpy array without state", c.offset);
  auto st = v_.items(c.state);
  if (st.size() == 5) st = st.subspan(1);  // (version, shape, dtype, is_fortran, rawdata)
  if (st.size() != 4) return drop(path, "numpy array state has an unexpected form", c.offset);
  std::string why;
  auto shape = int_tuple(st[0]);
  auto d = numpy_dtype(st[1], why);
  if (!shape) return drop(path, "array not converted: its shape is not an int tuple", c.offset);
  if (!d) return drop(path, "array not converted: " + why, c.offset);
  auto data = bytes_of(st[3]);
  if (!data) return drop(path, "array not converted: its data is not bytes (object arrays are not converted)", c.offset);
  numpy_tensor(path, *d, std::move(*shape), as_int(st[2]).value_or(0) != 0, *data, c.offset,
               fmt::format("{}#{}", in_.member, r));
}

void Walker::numpy_frombuffer(ValueRef r, pickle::Items args, const std::string& path) {
  const auto& c = v_.call_rec(r);
  if (args.size() < 4) return drop(path, "numpy _frombuffer with unexpected arguments", c.offset);
  if (v_.node(args[0]).kind == Kind::kBuffer) return drop(path, "an out-of-band buffer: its data is not in the file", c.offset);
  std::string why;
  auto data = bytes_of(args[0]);
  auto d = numpy_dtype(args[1], why);
  auto shape = int_tuple(args[2]);
  auto order = v_.as_text(args[3]);
  if (!data || !shape) return drop(path, "array not converted: its data or shape has an unexpected form", c.offset);
  if (!d) return drop(path, "array not converted: " + why, c.offset);
  numpy_tensor(path, *d, std::move(*shape), order == "F", *data, c.offset, fmt::format("{}#{}", in_.member, r));
}

std::optional<Json> Walker::np_scalar_json(ValueRef r) {
  const auto args = args_of(r);
  if (args.size() != 2) return std::nullopt;
  std::string why;
  auto d = numpy_dtype(args[0], why);
  auto b = bytes_of(args[1]);
  if (!d || !b || b->size() != tensor::info(d->dtype).size) return std::nullopt;
  std::array<std::uint8_t, 16> buf{};
  std::memcpy(buf.data(), b->data(), b->size());
  if (d->big_endian) std::reverse(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(b->size()));
  auto get = [&](auto v) {
    std::memcpy(&v, buf.data(), sizeof v);
    return v;
  };
  switch (d->dtype) {
    case DType::kF64: { const double x = get(double{}); return std::isfinite(x) ? Json(x) : Json(fmt::format("{}", x)); }
    case DType::kF32: { const float x = get(float{}); return std::isfinite(x) ? Json(static_cast<double>(x)) : Json(fmt::format("{}", x)); }
    case DType::kI8: return Json(get(std::int8_t{}));
    case DType::kI16: return Json(get(std::int16_t{}));
    case DType::kI32: return Json(get(std::int32_t{}));
    case DType::kI64: return Json(get(std::int64_t{}));
    case DType::kU8: return Json(get(std::uint8_t{}));
    case DType::kU16: return Json(get(std::uint16_t{}));
    case DType::kU32: return Json(get(std::uint32_t{}));
    case DType::kU64: return Json(get(std::uint64_t{}));
    case DType::kBool: return Json(buf[0] != 0);
    default: return Json{{"dtype", d->typestr}, {"bytes", hex(*b)}};
  }
}

void Walker::joblib_array(ValueRef r, const std::string& path) {
  const auto& c = v_.call_rec(r);
  auto it = in_.raw_arrays.find(r);
  if (it == in_.raw_arrays.end()) return drop(path, "joblib array whose data brine did not find (object arrays are not converted)", c.offset);
  if (c.state == pickle::kNoValue || v_.node(c.state).kind != Kind::kDict) return drop(path, "joblib array without state", c.offset);
  std::optional<ValueRef> shape_ref, dtype_ref, order_ref;
  for (const auto& [k, val] : v_.entries(c.state)) {
    auto name = v_.as_text(k);
    if (name == "shape") shape_ref = val;
    if (name == "dtype") dtype_ref = val;
    if (name == "order") order_ref = val;
  }
  std::string why;
  auto shape = shape_ref ? int_tuple(*shape_ref) : std::nullopt;
  auto d = dtype_ref ? numpy_dtype(*dtype_ref, why) : std::nullopt;
  if (!shape) return drop(path, "joblib array without a shape", c.offset);
  if (!d) return drop(path, "array not converted: " + why, c.offset);
  const bool fortran = order_ref && v_.as_text(*order_ref) == "F";
  numpy_tensor(path, *d, std::move(*shape), fortran, it->second, c.offset, fmt::format("{}#{}", in_.member, r));
}

}  // namespace brine::sanitize::detail
