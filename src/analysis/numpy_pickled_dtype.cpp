#include "analysis/numpy_pickled_dtype.hpp"

#include <fmt/format.h>

#include <climits>
#include <optional>

namespace brine::analysis {

using container::DtypeResolution;
using pickle::Kind;
using pickle::ValueRef;
using pickle::ValueStore;
using Status = DtypeResolution::Status;

namespace {

PickledDtype problem(Status st, std::string why) {
  PickledDtype p;
  p.resolution.status = st;
  p.resolution.why = std::move(why);
  return p;
}

/// PyArg_ParseTuple's "i": a Python int (bool included) that fits a C int.
std::optional<int> c_int(const ValueStore& v, ValueRef r) {
  const auto& n = v.node(r);
  if ((n.kind == Kind::kInt || n.kind == Kind::kBool) && n.i >= INT_MIN && n.i <= INT_MAX) return static_cast<int>(n.i);
  return std::nullopt;
}

}  // namespace

PickledDtype pickled_numpy_dtype(const ValueStore& v, ValueRef dtype) {
  if (v.node(dtype).kind != Kind::kCall) return problem(Status::kUnresolved, "the dtype is not a numpy.dtype(...) value");
  const auto& call = v.call_rec(dtype);
  const ValueRef cls = call.callable;
  if (v.node(cls).kind != Kind::kGlobal || !v.global_rec(cls).resolved || v.global_rec(cls).module != "numpy" ||
      v.global_rec(cls).name != "dtype") {
    return problem(Status::kUnresolved, "the dtype is not made by numpy.dtype");
  }
  if ((call.kind != pickle::CallKind::kReduce && call.kind != pickle::CallKind::kNewObj) || call.kwargs != pickle::kNoValue ||
      v.node(call.args).kind != Kind::kTuple) {
    return problem(Status::kUnresolved, "numpy.dtype called in a form brine does not model");
  }
  const auto args = v.items(call.args);
  if (args.empty() || args.size() > 3) return problem(Status::kUnresolved, "numpy.dtype with an unexpected number of arguments");
  for (std::size_t i = 1; i < args.size(); ++i) {
    const Kind k = v.node(args[i]).kind;
    if (k != Kind::kBool && k != Kind::kInt) return problem(Status::kUnresolved, "numpy.dtype's align/copy is not a bool");
  }
  const auto typestr = v.node(args[0]).kind == Kind::kStr ? v.as_text(args[0]) : std::nullopt;
  if (!typestr) return problem(Status::kUnresolved, "numpy.dtype's first argument is not a str");
  PickledDtype out;
  out.resolution = container::numpy_dtype_from_string(*typestr);
  if (!out.resolution.ok()) return out;
  container::NumpyDtype& d = out.resolution.dtype;
  out.byteorder = d.str.empty() ? '|' : d.str[0];
  if (out.byteorder == '<') out.byteorder = '=';  // little-endian host: '<' is native
  if (call.state == pickle::kNoValue) return out;

  // dtype.__setstate__(state)
  if (v.node(call.state).kind != Kind::kTuple) return problem(Status::kInvalid, "the dtype's state is not a tuple");
  const auto st = v.items(call.state);
  const std::size_t n = st.size();
  if (n < 5 || n > 9 || n == 6) {
    // 6 leaves `names` unset in arraydescr_setstate; other sizes raise.
    return problem(n == 6 ? Status::kUnresolved : Status::kInvalid, fmt::format("a dtype state of {} items", n));
  }
  std::size_t k = 0;
  int version = 0;
  if (n >= 7) {
    auto ver = c_int(v, st[k++]);
    if (!ver) return problem(Status::kInvalid, "the dtype state's version is not an int");
    version = *ver;
  }
  const ValueRef endian = st[k++];
  const ValueRef subarray = st[k++];
  const ValueRef names = n >= 7 ? st[k++] : pickle::kNoValue;
  const ValueRef fields = st[k++];
  auto elsize = c_int(v, st[k++]);
  auto alignment = c_int(v, st[k++]);
  std::optional<int> flags = 0;
  if (n >= 8) flags = c_int(v, st[k++]);
  const ValueRef metadata = n == 9 ? st[k] : pickle::kNoValue;
  if (!elsize || !alignment || !flags) return problem(Status::kInvalid, "the dtype state's elsize, alignment or flags is not a C int");
  if (version < 0 || version > 4) return problem(Status::kInvalid, fmt::format("can't handle version {} of numpy.dtype pickle", version));
  // endian: a one-character str (ASCII) or bytes.
  const auto& e = v.node(endian);
  std::optional<std::string_view> etext;
  if (e.kind == Kind::kStr || e.kind == Kind::kPy2Str || e.kind == Kind::kBytes) etext = e.text;
  if (!etext || etext->size() != 1) return problem(Status::kInvalid, "the dtype state's endian is not a one-character string");
  char order = (*etext)[0];
  if (order != '<' && order != '>' && order != '=' && order != '|') {
    return problem(Status::kUnresolved, fmt::format("dtype byte order 0x{:02x}", static_cast<unsigned char>(order)));
  }
  if (order == '<') order = '=';
  const bool has_fields = v.node(fields).kind != Kind::kNone;
  if (v.node(subarray).kind != Kind::kNone) return problem(Status::kUnresolved, "a dtype state with a sub-array");
  if (has_fields) {
    if (version < 3) return problem(Status::kUnresolved, "fields in a dtype state older than version 3");
    if (v.node(names).kind != Kind::kTuple || v.node(fields).kind != Kind::kDict) {
      return problem(Status::kInvalid, "the dtype state's names/fields are not a tuple and a dict");
    }
  } else if (names != pickle::kNoValue && v.node(names).kind != Kind::kNone) {
    return problem(Status::kInvalid, "inconsistent fields and names in the dtype state");
  }
  // Datetime metadata (a unit tuple) changes neither the size nor the object flag; a malformed
  // one makes numpy raise, which brine need not predict to locate the data.
  (void)metadata;
  if (d.flexible()) {
    if (*elsize <= 0) return problem(Status::kUnresolved, fmt::format("a flexible dtype whose state gives element size {}", *elsize));
    d.itemsize = static_cast<std::uint64_t>(*elsize);
  }
  if (*flags < SCHAR_MIN || *flags > SCHAR_MAX) return problem(Status::kInvalid, "incorrect value for flags variable (overflow)");
  // NPY_ITEM_HASOBJECT is 0x01. Before version 3, numpy recomputes the flags: any flag, or an
  // object type, makes them NPY_OBJECT_DTYPE_FLAGS.
  if (version >= 3) {
    d.has_object = (*flags & 0x01) != 0;
  } else {
    d.has_object = *flags != 0 || d.kind == 'O';
  }
  if (has_fields) {
    d.structured = true;
    d.str.clear();
  } else if (!d.str.empty()) {
    d.str[0] = order == '=' ? '<' : order;
  }
  out.byteorder = order;
  return out;
}

}  // namespace brine::analysis
