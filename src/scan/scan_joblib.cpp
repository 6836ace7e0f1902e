// joblib (numpy_pickle): joblib.load runs a pure-Python unpickler that, right after the BUILD of
// a NumpyArrayWrapper, reads the array out of the stream itself — an alignment byte p, p bytes
// of padding, then count x itemsize raw bytes — or, for arrays holding Python objects, a whole
// separate pickle. The pickle then continues. brine follows that reading with a BUILD hook, and
// also reads the same bytes the way plain pickle.load would, because "array data" that decodes
// as opcodes is a payload joblib-aware scanners skip and pickle.load runs.
#include <fmt/format.h>

#include "scan/file_scan.hpp"

namespace brine::scan {

using analysis::Verdict;
using pickle::Kind;
using pickle::ValueRef;
using pickle::ValueStore;
using rules::Severity;

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

bool is_wrapper(const ValueStore& v, ValueRef inst) {
  if (v.node(inst).kind != Kind::kCall) return false;
  const ValueRef cls = v.call_rec(inst).callable;
  if (v.node(cls).kind != Kind::kGlobal || !v.global_rec(cls).resolved) return false;
  const auto& g = v.global_rec(cls);
  return g.name == "NumpyArrayWrapper" &&
         (g.module == "joblib.numpy_pickle" || g.module == "sklearn.externals.joblib.numpy_pickle");
}

}  // namespace

pickle::BuildHook FileScan::joblib_hook(core::Bytes data, const std::string& where, std::vector<Region>& regions) {
  return [this, data, where, &regions](const ValueStore& v, ValueRef inst, ValueRef state, std::uint64_t pos) {
    pickle::BuildHookResult r;
    if (!is_wrapper(v, inst)) return r;
    auto fail = [&](std::string why) {
      r.error = core::Error{core::ErrorCode::kTypeError, pos, {}, "BUILD", "joblib array: " + std::move(why)};
      return r;
    };
    auto shape = dict_get(v, state, "shape");
    auto dtype = dict_get(v, state, "dtype");
    if (!shape || !dtype || v.node(*shape).kind != Kind::kTuple) return fail("the wrapper's state has no shape or dtype");
    auto info = dtype_info(v, *dtype);
    if (!info) return fail("the dtype's element size cannot be established");
    if (info->has_object) {
      // A separate, complete pickle (joblib calls plain pickle.load on the file here).
      if (!take_pickle_budget(where, pos)) return fail("too many pickles");
      pickle::PickleRun nested = run_one(data, pos, where, nullptr);
      if (!nested.stopped) return fail("the object array's pickle does not end");
      r.resume_at = nested.end;
      return r;
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
      r.error = core::Error{core::ErrorCode::kTruncated, pos, {}, "BUILD",
                            fmt::format("joblib array claims {} bytes at offset {}, {} remain", bytes, at,
                                        data.size() - std::min<std::uint64_t>(at, data.size()))};
      return r;
    }
    regions.push_back({pos, at + bytes});
    r.resume_at = at + bytes;
    return r;
  };
}

void FileScan::joblib_differential(core::Bytes data, const std::string& where, const std::vector<Region>& regions) {
  // pickle.load on the same bytes, without joblib's reading: only what happens inside the
  // array-data regions is new.
  auto inside = [&](std::uint64_t off) {
    for (const auto& [b, e] : regions) {
      if (off >= b && off < e) return true;
    }
    return false;
  };
  pickle::PickleRun plain = pickle::run_pickle(data, 0, options_.limits, deadline_);
  bool hidden = false;
  for (const auto& e : plain.events) hidden = hidden || inside(e.offset);
  if (!hidden) return;
  auto result = analysis::analyze_pickle(plain, rules_, analysis::PickleContext{where});
  add("evasion:joblib-array-data", Severity::kHigh, Verdict::kMalicious, where, regions.front().first,
      "bytes joblib.load reads as array data are opcodes that import or call when pickle.load reads the file");
  for (auto& f : result.findings) {
    if (inside(f.offset) && f.impact != Verdict::kError) add(std::move(f));
  }
}

}  // namespace brine::scan
