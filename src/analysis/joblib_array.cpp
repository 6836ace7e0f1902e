#include "analysis/joblib_array.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <string_view>

namespace brine::analysis {

using pickle::Kind;
using pickle::ValueRef;
using pickle::ValueStore;

namespace {

std::optional<ValueRef> dict_get(const ValueStore& v, ValueRef dict, std::string_view key) {
  if (v.node(dict).kind != Kind::kDict) return std::nullopt;
  for (const auto& [k, val] : v.entries(dict)) {
    if (v.as_text(k) == key) return val;
  }
  return std::nullopt;
}

struct DtypeInfo {
  std::uint64_t itemsize = 0;
  bool has_object = false;
};

/// numpy.dtype(typestr, align, copy) + BUILD (version, byteorder, subarray, names, fields, elsize,
/// alignment, flags[, metadata]): the element size and whether elements are Python objects.
std::optional<DtypeInfo> dtype_info(const ValueStore& v, ValueRef dtype) {
  if (v.node(dtype).kind != Kind::kCall) return std::nullopt;
  const auto& call = v.call_rec(dtype);
  const auto args = v.items(call.args);
  if (args.empty()) return std::nullopt;
  auto typestr = v.as_text(args[0]);
  if (!typestr || typestr->empty()) return std::nullopt;
  DtypeInfo info;
  if (call.state != pickle::kNoValue && v.node(call.state).kind == Kind::kTuple) {
    const auto st = v.items(call.state);
    if (st.size() >= 8) {
      const auto& elsize = v.node(st[5]);
      const auto& flags = v.node(st[7]);
      if (elsize.kind == Kind::kInt && elsize.i > 0) info.itemsize = static_cast<std::uint64_t>(elsize.i);
      if (flags.kind == Kind::kInt && (flags.i & 0x01) != 0) info.has_object = true;  // NPY_ITEM_REFCOUNT
    }
  }
  std::string_view t = *typestr;
  if (t[0] == '<' || t[0] == '>' || t[0] == '|' || t[0] == '=') t.remove_prefix(1);
  if (t.empty()) return std::nullopt;
  const char kind = t[0];
  if (kind == 'O') info.has_object = true;
  if (info.itemsize == 0) {
    std::uint64_t n = 0;
    std::size_t i = 1;
    for (; i < t.size() && t[i] >= '0' && t[i] <= '9' && n < (1ull << 40); ++i) n = n * 10 + static_cast<std::uint64_t>(t[i] - '0');
    if (kind == 'U') n *= 4;
    if ((kind == 'M' || kind == 'm') && n == 0) n = 8;
    info.itemsize = n;
  }
  if (info.itemsize == 0 && !info.has_object) return std::nullopt;
  return info;
}

}  // namespace

bool is_joblib_wrapper(const ValueStore& v, ValueRef inst) {
  if (v.node(inst).kind != Kind::kCall) return false;
  const ValueRef cls = v.call_rec(inst).callable;
  if (v.node(cls).kind != Kind::kGlobal || !v.global_rec(cls).resolved) return false;
  const auto& g = v.global_rec(cls);
  return g.name == "NumpyArrayWrapper" &&
         (g.module == "joblib.numpy_pickle" || g.module == "sklearn.externals.joblib.numpy_pickle");
}

core::Result<JoblibArrayData> joblib_array_data(const ValueStore& v, ValueRef state, core::Bytes data, std::uint64_t pos) {
  auto fail = [&](std::string why) {
    return core::fail(core::Error{core::ErrorCode::kTypeError, pos, {}, "BUILD", "joblib array: " + std::move(why)});
  };
  auto shape = dict_get(v, state, "shape");
  auto dtype = dict_get(v, state, "dtype");
  if (!shape || !dtype || v.node(*shape).kind != Kind::kTuple) return fail("the wrapper's state has no shape or dtype");
  auto info = dtype_info(v, *dtype);
  if (!info) return fail("the dtype's element size cannot be established");
  JoblibArrayData out;
  if (info->has_object) {
    out.object_pickle = true;
    return out;
  }
  std::uint64_t count = 1;
  for (ValueRef dim : v.items(*shape)) {
    const auto& n = v.node(dim);
    if (n.kind != Kind::kInt || n.i < 0) return fail("a dimension is not a non-negative int");
    const auto d = static_cast<std::uint64_t>(n.i);
    if (d != 0 && count > UINT64_MAX / d) return fail("the array size overflows");
    count *= d;
  }
  if (count != 0 && info->itemsize > UINT64_MAX / count) return fail("the array size overflows");
  const std::uint64_t bytes = count * info->itemsize;
  std::uint64_t at = pos;
  if (auto align = dict_get(v, state, "numpy_array_alignment_bytes"); align && v.node(*align).kind == Kind::kInt) {
    if (at >= data.size()) return fail("the alignment byte is missing");
    at += 1 + data[at];  // padding length, then that many bytes
  }
  if (at > data.size() || bytes > data.size() - at) {
    return core::fail(core::Error{core::ErrorCode::kTruncated, pos, {}, "BUILD",
                                  fmt::format("joblib array claims {} bytes at offset {}, {} remain", bytes, at,
                                              data.size() - std::min<std::uint64_t>(at, data.size()))});
  }
  out.begin = at;
  out.size = bytes;
  return out;
}

}  // namespace brine::analysis
