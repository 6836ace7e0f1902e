#include "analysis/joblib_array.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <string_view>

#include "analysis/numpy_pickled_dtype.hpp"

namespace brine::analysis {

using pickle::Kind;
using pickle::ValueRef;
using pickle::ValueStore;

namespace {

/// The wrapper's instance attributes that read_array uses.
struct WrapperAttrs {
  std::optional<ValueRef> shape, dtype, subclass;
  bool aligned = false;  ///< numpy_array_alignment_bytes is set and is not None
};

}  // namespace

bool is_joblib_wrapper(const ValueStore& v, ValueRef inst) {
  if (v.node(inst).kind != Kind::kCall) return false;
  const ValueRef cls = v.call_rec(inst).callable;
  if (v.node(cls).kind != Kind::kGlobal || !v.global_rec(cls).resolved) return false;
  const auto& g = v.global_rec(cls);
  return g.name == "NumpyArrayWrapper" &&
         (g.module == "joblib.numpy_pickle" || g.module == "sklearn.externals.joblib.numpy_pickle");
}

core::Result<JoblibArrayData> joblib_array_data(const ValueStore& v, ValueRef inst, ValueRef state, core::Bytes data,
                                                std::uint64_t pos, std::uint64_t frame_end) {
  auto fail = [&](std::string why) {
    return core::fail(core::Error{core::ErrorCode::kTypeError, pos, {}, "BUILD", "joblib array: " + std::move(why)});
  };
  // Where the file handle is: pickle._Unpickler has read the whole current frame.
  if (frame_end != 0 && frame_end > pos) {
    return fail(fmt::format("the wrapper's BUILD is inside a FRAME, so joblib reads the array at the frame's end (offset {}), "
                            "not after BUILD; brine does not follow that reading",
                            frame_end));
  }
  WrapperAttrs attrs;
  // Attributes from the constructor: pickle calls __init__ for REDUCE and for INST/OBJ with
  // arguments; NEWOBJ (what joblib writes) calls only __new__.
  const auto& call = v.call_rec(inst);
  const bool init = call.kind == pickle::CallKind::kReduce ||
                    ((call.kind == pickle::CallKind::kInst || call.kind == pickle::CallKind::kObj) &&
                     !(v.node(call.args).kind == Kind::kTuple && v.items(call.args).empty()));
  if (init) {
    // __init__(self, subclass, shape, order, dtype, allow_mmap=False, numpy_array_alignment_bytes=16)
    if (v.node(call.args).kind != Kind::kTuple) return fail("the wrapper's constructor arguments are not a tuple");
    const auto a = v.items(call.args);
    if (a.size() < 4 || a.size() > 6) return fail("NumpyArrayWrapper() with an unexpected number of arguments");
    attrs.subclass = a[0];
    attrs.shape = a[1];
    attrs.dtype = a[3];
    // The default alignment is NUMPY_ARRAY_ALIGNMENT_BYTES (16): not None.
    attrs.aligned = a.size() < 6 || v.node(a[5]).kind != Kind::kNone;
  }
  // BUILD without __setstate__: the state dict updates the instance dict (last key wins).
  if (v.node(state).kind != Kind::kDict) return fail("the wrapper's state is not a dict (slot states are not followed)");
  for (const auto& [k, val] : v.entries(state)) {
    const auto name = v.as_text(k);
    if (!name) continue;
    if (*name == "subclass") attrs.subclass = val;
    if (*name == "shape") attrs.shape = val;
    if (*name == "dtype") attrs.dtype = val;
    if (*name == "numpy_array_alignment_bytes") attrs.aligned = v.node(val).kind != Kind::kNone;
  }
  if (!attrs.shape || !attrs.dtype) return fail("the wrapper has no shape or dtype");
  // NumpyArrayWrapper.read: for a subclass other than ndarray and memmap, joblib calls
  // numpy.core.multiarray._reconstruct(subclass, (0,), 'b'), instantiating it; only numpy's own
  // array classes are followed (np.matrix is what joblib itself writes besides those).
  if (!attrs.subclass || v.node(*attrs.subclass).kind != Kind::kGlobal || !v.global_rec(*attrs.subclass).resolved) {
    return fail("the wrapper's subclass is not a class global");
  }
  {
    const auto& g = v.global_rec(*attrs.subclass);
    const bool numpy_module = g.module == "numpy" || g.module == "numpy.core.memmap" || g.module == "numpy.matrixlib.defmatrix";
    if (!numpy_module || (g.name != "ndarray" && g.name != "memmap" && g.name != "matrix")) {
      return fail(fmt::format("joblib instantiates the wrapper's subclass {}.{}; only numpy.ndarray, memmap and matrix are followed",
                              g.module, g.name));
    }
  }
  const PickledDtype dt = pickled_numpy_dtype(v, *attrs.dtype);
  if (!dt.resolution.ok()) return fail("its dtype cannot be established: " + dt.resolution.why);
  JoblibArrayData out;
  if (dt.resolution.dtype.has_object) {
    out.object_pickle = true;
    out.begin = pos;
    return out;
  }
  const std::uint64_t itemsize = dt.resolution.dtype.itemsize;
  if (itemsize == 0) return fail("the dtype's itemsize is 0 (joblib divides by it)");
  // count = np.multiply.reduce([np.int64(x) for x in shape]): overflow or a negative count fails.
  const Kind sk = v.node(*attrs.shape).kind;
  if (sk != Kind::kTuple && sk != Kind::kList) return fail("the shape is not a tuple");
  std::uint64_t count = 1;
  for (ValueRef dim : v.items(*attrs.shape)) {
    const auto& n = v.node(dim);
    if ((n.kind != Kind::kInt && n.kind != Kind::kBool) || n.i < 0) return fail("a dimension is not a non-negative int");
    const auto d = static_cast<std::uint64_t>(n.i);
    if (d != 0 && count > static_cast<std::uint64_t>(INT64_MAX) / d) return fail("the array size overflows");
    count *= d;
  }
  if (count != 0 && itemsize > static_cast<std::uint64_t>(INT64_MAX) / count) return fail("the array size overflows");
  const std::uint64_t bytes = count * itemsize;
  std::uint64_t at = pos;
  // `if numpy_array_alignment_bytes is not None`: any value but None means a padding byte.
  if (attrs.aligned) {
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
