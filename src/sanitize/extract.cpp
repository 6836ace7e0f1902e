#include "sanitize/extract.hpp"

#include "analysis/joblib_array.hpp"
#include "analysis/nested_bytes.hpp"
#include "analysis/numpy_pickled_dtype.hpp"
#include "core/text.hpp"

#include <fmt/format.h>

#include <array>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <unordered_set>

namespace brine::sanitize {

using pickle::CallKind;
using pickle::Kind;
using pickle::ValueRef;
using pickle::ValueStore;
using tensor::DType;
using Json = nlohmann::ordered_json;

namespace {

/// Leaves larger than this (as JSON text) are dropped rather than put into metadata.
constexpr std::size_t kMaxLeafJson = 64 << 10;
/// All leaves together: safetensors headers are capped at 100 MB.
constexpr std::size_t kMaxMetadataBytes = 16 << 20;
/// Memory for remembered dict-key names (each one is at most ~100 values of JSON).
constexpr std::uint64_t kMaxKeyNameBytes = 64 << 20;

std::string join(const std::string& path, std::string_view part) {
  if (path.empty()) return std::string(part);
  return path + "." + std::string(part);
}

/// The rebuild functions brine understands, by loader name.
enum class Rebuild : std::uint8_t {
  kNone, kTensorV2, kTensorV3, kTensor, kParameter, kParameterWithState, kFromTypeV2, kQTensor,
  kDeviceFromCpu, kDeviceFromNumpy, kSparse, kSparseCsr, kMeta, kWrapperSubclass, kNested,
  kOrderedDict, kTorchSize, kTorchDevice, kGetLayout, kSet, kFrozenSet, kCodecsEncode, kBytes, kBytearray,
  kComplex, kSlice, kNpReconstruct, kNpFromBuffer, kNpScalar, kNpDtype, kJoblibWrapper, kJitRestoreTypeTag,
  kJitBuildList,
};

Rebuild rebuild_kind(std::string_view n) {
  static const std::unordered_map<std::string_view, Rebuild> kTable{
      {"torch._utils._rebuild_tensor_v2", Rebuild::kTensorV2},
      {"torch._utils._rebuild_tensor_v3", Rebuild::kTensorV3},
      {"torch._utils._rebuild_tensor", Rebuild::kTensor},
      {"torch._utils._rebuild_parameter", Rebuild::kParameter},
      {"torch._utils._rebuild_parameter_with_state", Rebuild::kParameterWithState},
      {"torch._tensor._rebuild_from_type_v2", Rebuild::kFromTypeV2},
      {"torch._utils._rebuild_qtensor", Rebuild::kQTensor},
      {"torch._utils._rebuild_device_tensor_from_cpu_tensor", Rebuild::kDeviceFromCpu},
      {"torch._utils._rebuild_device_tensor_from_numpy", Rebuild::kDeviceFromNumpy},
      {"torch._utils._rebuild_xla_tensor", Rebuild::kDeviceFromNumpy},
      {"torch._utils._rebuild_sparse_tensor", Rebuild::kSparse},
      {"torch._utils._rebuild_sparse_csr_tensor", Rebuild::kSparseCsr},
      {"torch._utils._rebuild_meta_tensor_no_storage", Rebuild::kMeta},
      {"torch._utils._rebuild_wrapper_subclass", Rebuild::kWrapperSubclass},
      {"torch._utils._rebuild_nested_tensor", Rebuild::kNested},
      {"collections.OrderedDict", Rebuild::kOrderedDict},
      {"torch.Size", Rebuild::kTorchSize},
      {"torch.device", Rebuild::kTorchDevice},
      {"torch.serialization._get_layout", Rebuild::kGetLayout},
      {"builtins.set", Rebuild::kSet},
      {"builtins.frozenset", Rebuild::kFrozenSet},
      {"_codecs.encode", Rebuild::kCodecsEncode},
      {"builtins.bytes", Rebuild::kBytes},
      {"builtins.bytearray", Rebuild::kBytearray},
      {"builtins.complex", Rebuild::kComplex},
      {"builtins.slice", Rebuild::kSlice},
      {"numpy.core.multiarray._reconstruct", Rebuild::kNpReconstruct},
      {"numpy._core.multiarray._reconstruct", Rebuild::kNpReconstruct},
      {"numpy.core._multiarray_umath._reconstruct", Rebuild::kNpReconstruct},
      {"numpy.core.numeric._frombuffer", Rebuild::kNpFromBuffer},
      {"numpy._core.numeric._frombuffer", Rebuild::kNpFromBuffer},
      {"numpy.core.multiarray.scalar", Rebuild::kNpScalar},
      {"numpy._core.multiarray.scalar", Rebuild::kNpScalar},
      {"numpy.core._multiarray_umath.scalar", Rebuild::kNpScalar},
      {"numpy.dtype", Rebuild::kNpDtype},
      {"joblib.numpy_pickle.NumpyArrayWrapper", Rebuild::kJoblibWrapper},
      {"sklearn.externals.joblib.numpy_pickle.NumpyArrayWrapper", Rebuild::kJoblibWrapper},
      {"torch.jit._pickle.restore_type_tag", Rebuild::kJitRestoreTypeTag},
      {"torch.jit._pickle.build_intlist", Rebuild::kJitBuildList},
      {"torch.jit._pickle.build_doublelist", Rebuild::kJitBuildList},
      {"torch.jit._pickle.build_boollist", Rebuild::kJitBuildList},
      {"torch.jit._pickle.build_tensorlist", Rebuild::kJitBuildList},
      {"torch.jit._pickle.build_strlist", Rebuild::kJitBuildList},
  };
  auto it = kTable.find(n);
  return it == kTable.end() ? Rebuild::kNone : it->second;
}

/// A numpy dtype as far as brine can write it.
struct NpDtype {
  DType dtype = DType::kF32;
  bool big_endian = false;
  std::string typestr;
};

class Walker {
 public:
  Walker(const PickleInput& in, const rules::RuleSet& rules, const core::Limits& limits, Extraction& out)
      : in_(in), v_(in.run->values), rules_(rules), limits_(limits), out_(out) {
    // Items given to objects that are not plain dicts/lists (an OrderedDict's SETITEMS, a
    // list subclass's APPENDS) are events, not node contents: index them by object.
    for (const auto& e : in.run->events) {
      if (e.kind == pickle::Event::Kind::kSetItem) setitems_[e.subject].emplace_back(e.arg, e.arg2);
      if (e.kind == pickle::Event::Kind::kAppend && v_.node(e.arg).kind == Kind::kList) {
        for (ValueRef item : v_.items(e.arg)) appends_[e.subject].push_back(item);
      }
    }
  }

  void run() {
    if (in_.run->root == pickle::kNoValue) return;
    note_first_references();
    walk(in_.run->root, in_.root_name);
  }

 private:
  // ---------------------------------------------------------------- classification helpers
  struct Callee {
    std::string name;        ///< loader name ("torch._utils._rebuild_tensor_v2"), empty if not a resolved global
    bool approved = false;
    std::string why;         ///< when not approved
  };

  Callee callee_of(ValueRef callable, rules::Use use) const {
    Callee c;
    if (v_.node(callable).kind != Kind::kGlobal) {
      c.why = fmt::format("the callable is a {}, not an imported name", pickle::kind_name(v_.node(callable).kind));
      return c;
    }
    const auto& g = v_.global_rec(callable);
    if (!g.resolved) {
      c.why = "its callable's name is computed at load time";
      return c;
    }
    const auto res = rules_.resolve(g.module, g.name, g.protocol);
    c.name = res.loader_name;
    if (res.deny != nullptr) {
      c.why = fmt::format("{} is denied ({})", res.written_name, res.deny->id);
      return c;
    }
    if (!res.traversal.empty()) {
      c.why = fmt::format("{} reaches {} through attribute access", res.written_name, res.traversal);
      return c;
    }
    for (const auto* a : res.allow) {
      if ((a->uses & rules::mask(use)) != 0) c.approved = true;
    }
    // torch.jit's loader builds __torch__ objects from the archive's compiled class types; it
    // calls no Python code to do so, so their attribute dicts are data.
    if (c.name.starts_with("__torch__.")) c.approved = true;
    if (!c.approved) c.why = fmt::format("{} is not approved by the rules for this use", res.written_name);
    return c;
  }

  static rules::Use use_of(CallKind k) {
    return k == CallKind::kReduce ? rules::Use::kCall : rules::Use::kInstantiate;
  }

  std::optional<std::int64_t> as_int(ValueRef r) const {
    if (r == pickle::kNoValue) return std::nullopt;
    const auto& n = v_.node(r);
    if (n.kind == Kind::kInt || n.kind == Kind::kBool) return n.i;
    return std::nullopt;
  }

  /// A tuple (or torch.Size) of ints.
  std::optional<std::vector<std::int64_t>> int_tuple(ValueRef r) const {
    // torch.Size(torch.Size(...(t))) is t: followed by a loop, as the chain is the input's. It
    // ends: a call's arguments exist before the call does, so the chain has no cycle.
    while (r != pickle::kNoValue && v_.node(r).kind == Kind::kCall) {
      const auto& c = v_.call_rec(r);
      if (v_.node(c.callable).kind != Kind::kGlobal) return std::nullopt;
      const auto& g = v_.global_rec(c.callable);
      if (!g.resolved || g.module != "torch" || g.name != "Size" || v_.items(c.args).size() != 1) return std::nullopt;
      r = v_.items(c.args)[0];
    }
    if (r == pickle::kNoValue) return std::nullopt;
    const auto& n = v_.node(r);
    if (n.kind != Kind::kTuple && n.kind != Kind::kList) return std::nullopt;
    std::vector<std::int64_t> out;
    for (ValueRef item : v_.items(r)) {
      auto i = as_int(item);
      if (!i) return std::nullopt;
      out.push_back(*i);
    }
    return out;
  }

  std::span<const ValueRef> args_of(ValueRef call) const {
    const auto& c = v_.call_rec(call);
    const auto& n = v_.node(c.args);
    if (n.kind != Kind::kTuple && n.kind != Kind::kList) return {};
    return v_.items(c.args);
  }

  /// Bytes of a bytes-like value: BINBYTES, a protocol-2 `_codecs.encode(str[, encoding])`, a
  /// py2 str, a bytearray.
  std::optional<core::Bytes> bytes_of(ValueRef r) {
    // bytes(bytearray(bytes(...(b)))) is b: a loop, not recursion (the chain is the input's; it
    // has no cycle, as a call's arguments exist before the call).
    Callee callee;
    Rebuild kind = Rebuild::kNone;
    std::span<const ValueRef> args;
    for (;;) {
      const auto& n = v_.node(r);
      if (n.kind == Kind::kBytes || n.kind == Kind::kPy2Str || n.kind == Kind::kByteArray) return core::as_bytes(n.text);
      if (n.kind != Kind::kCall) return std::nullopt;
      callee = callee_of(v_.call_rec(r).callable, rules::Use::kCall);
      kind = rebuild_kind(callee.name);
      args = args_of(r);
      if (kind == Rebuild::kBytes && args.empty()) return core::Bytes{};
      if ((kind == Rebuild::kBytearray || kind == Rebuild::kBytes) && args.size() == 1) {
        r = args[0];
        continue;
      }
      break;
    }
    if (kind != Rebuild::kCodecsEncode || args.empty() || !callee.approved) return std::nullopt;
    // CPython's _codecs.encode(str, encoding='utf-8', errors='strict'), as the scan computes it.
    const auto& s = v_.node(args[0]);
    if (s.kind != Kind::kStr || args.size() > 2) return std::nullopt;
    std::optional<analysis::Codec> codec = analysis::Codec::kUtf8;
    if (args.size() == 2) {
      auto enc = v_.as_text(args[1]);
      codec = enc ? analysis::lookup_codec(*enc) : std::nullopt;
    }
    std::string why;
    auto encoded = codec ? analysis::encode_text(s.text, *codec, "strict", why) : std::nullopt;
    if (!encoded) return std::nullopt;
    std::vector<std::uint8_t> bytes(encoded->begin(), encoded->end());
    return core::Bytes(out_.owned.emplace_back(std::move(bytes)));
  }

  // ---------------------------------------------------------------- the walk
  void drop(const std::string& name, std::string reason, std::uint64_t offset) {
    out_.dropped.push_back(Dropped{name.empty() ? "(root)" : name, std::move(reason), offset});
  }

  void add_leaf(const std::string& name, const Json& j, std::uint64_t offset) {
    std::string text = j.dump(-1, ' ', false, Json::error_handler_t::replace);
    if (text.size() > kMaxLeafJson || metadata_bytes_ + text.size() > kMaxMetadataBytes) {
      drop(name, fmt::format("a {}-byte value is too large for metadata", text.size()), offset);
      return;
    }
    metadata_bytes_ += text.size() + name.size();
    out_.leaves.push_back(Leaf{name.empty() ? "value" : name, std::move(text)});
  }

  // The walk is depth-first over an explicit stack: the input decides how deep its object graph
  // nests (memo references make a million levels cost a few bytes each), so the walk must not
  // use the thread's stack for it. Each value's own work (a leaf, a dropped value, a tensor) is
  // done when it is reached, in the order a recursive pre-order walk would do it; the values it
  // contains are recorded as children and named only when the walk reaches them, so at most one
  // path per level is alive, as in a recursive walk.
  struct Child {
    enum class Name : std::uint8_t { kSame, kKey, kIndex, kFixed };
    ValueRef ref = pickle::kNoValue;
    unsigned depth = 0;
    Name name = Name::kSame;
    ValueRef key = pickle::kNoValue;  ///< kKey: the dict key naming the child
    std::uint64_t index = 0;          ///< kIndex: the position naming the child
    std::string_view fixed;           ///< kFixed: a static name ("values", "scale"...)
  };
  struct Frame {
    std::string path;
    std::vector<Child> children;
    std::size_t next = 0;
  };

  void same_child(ValueRef r, unsigned depth) { kids_->push_back(Child{r, depth, Child::Name::kSame}); }
  void key_child(ValueRef r, ValueRef key, unsigned depth) { kids_->push_back(Child{r, depth, Child::Name::kKey, key}); }
  void index_child(ValueRef r, std::uint64_t i, unsigned depth) {
    kids_->push_back(Child{r, depth, Child::Name::kIndex, pickle::kNoValue, i});
  }
  void fixed_child(ValueRef r, std::string_view name, unsigned depth) {
    kids_->push_back(Child{r, depth, Child::Name::kFixed, pickle::kNoValue, 0, name});
  }

  std::string child_path(const std::string& parent, const Child& c) {
    switch (c.name) {
      case Child::Name::kSame: return parent;
      case Child::Name::kKey: return join(parent, key_name(c.key));
      case Child::Name::kIndex: return join(parent, std::to_string(c.index));
      case Child::Name::kFixed: return join(parent, c.fixed);
    }
    return parent;
  }

  void walk(ValueRef root, const std::string& root_path) {
    std::vector<Frame> stack;
    auto enter = [&](ValueRef r, std::string path, unsigned depth) {
      std::vector<Child> kids;
      kids_ = &kids;
      visit(r, path, depth);
      kids_ = nullptr;
      if (!kids.empty()) stack.push_back(Frame{std::move(path), std::move(kids)});
    };
    enter(root, root_path, 0);
    while (!stack.empty()) {
      Frame& top = stack.back();
      if (top.next == top.children.size()) {
        stack.pop_back();
        continue;
      }
      const Child c = top.children[top.next++];
      std::string path = child_path(top.path, c);  // before enter() may grow (and move) the stack
      enter(c.ref, std::move(path), c.depth);
    }
  }

  /// One value's own work; the values it contains go to *kids_ (see walk()).
  void visit(ValueRef r, const std::string& path, unsigned depth) {
    if (++visits_ > limits_.max_walk_visits || depth > limits_.max_walk_depth || depth > limits_.max_nesting) {
      if (!walk_limited_) drop(path, "the object graph is too large or too deep to walk", v_.node(r).offset);
      walk_limited_ = true;
      return;
    }
    const auto& n = v_.node(r);
    // A scalar (or a value type such as torch.Size, a dtype, a set) is one metadata leaf; dicts,
    // lists and tuples are walked so every leaf gets its own dotted name, and an empty one is
    // kept as a leaf of its own.
    const bool walked = n.kind == Kind::kDict || n.kind == Kind::kList || n.kind == Kind::kTuple;
    if (!walked || (n.kind == Kind::kDict ? v_.entries(r).empty() : v_.items(r).empty() && appends_.count(r) == 0)) {
      std::uint64_t budget = 10'000;
      if (auto j = to_json(r, budget, 0)) {
        add_leaf(path, *j, n.offset);
        return;
      }
    }
    switch (n.kind) {
      case Kind::kDict:
        if (!first_visit(r, path)) return;
        for (const auto& [k, val] : v_.entries(r)) key_child(val, k, depth + 1);
        return;
      case Kind::kList:
      case Kind::kTuple: {
        if (!first_visit(r, path)) return;
        std::size_t i = 0;
        for (ValueRef item : v_.items(r)) index_child(item, i++, depth + 1);
        if (n.kind == Kind::kList) {
          if (auto it = appends_.find(r); it != appends_.end()) {
            for (ValueRef item : it->second) index_child(item, i++, depth + 1);
          }
        }
        return;
      }
      case Kind::kCall:
        visit_call(r, path, depth);
        return;
      case Kind::kPersistent:
        bare_storage(r, path);
        return;
      case Kind::kGlobal:
        drop(path, fmt::format("a reference to {} that the rules do not approve", global_text(r)), n.offset);
        return;
      case Kind::kBuffer:
        drop(path, "an out-of-band buffer: its data is not in the file", n.offset);
        return;
      default:
        drop(path, fmt::format("a {} value", pickle::kind_name(n.kind)), n.offset);
        return;
    }
  }

  /// The same container reached again (memo): record the alias instead of walking it twice.
  bool first_visit(ValueRef r, const std::string& path) {
    auto [it, inserted] = seen_containers_.emplace(r, path);
    if (!inserted) out_.object_aliases.emplace_back(path, it->second);
    return inserted;
  }

  std::string global_text(ValueRef r) const {
    const auto& g = v_.global_rec(r);
    return g.resolved ? fmt::format("{}.{}", g.module, g.name) : std::string("a computed name");
  }

  /// The name of a dict key in a dotted path. A key that is not text, a number or None is named
  /// by its JSON text; that JSON can itself contain dicts with such keys (a set({...: 1}) key), so
  /// key names nest: at most max_metadata_depth levels of native recursion, each name computed
  /// once (a key reached again, even through a cycle, reuses it).
  std::string key_name(ValueRef k) {
    const auto& n = v_.node(k);
    if (auto t = v_.as_text(k)) return std::string(*t);
    if (n.kind == Kind::kInt) return std::to_string(n.i);
    if (n.kind == Kind::kBool) return n.i != 0 ? "True" : "False";
    if (n.kind == Kind::kNone) return "None";
    if (auto it = key_names_.find(k); it != key_names_.end()) return it->second;
    std::string name = fmt::format("<{}@{}>", pickle::kind_name(n.kind), n.offset);
    if (key_level_ < limits_.max_metadata_depth) {
      ++key_level_;
      std::uint64_t budget = 100;
      if (auto j = to_json(k, budget, 0)) {
        // Each level of keys inside keys escapes the quotes of the one inside, doubling its size:
        // a name is a metadata value and bounded like one.
        std::string text = j->dump(-1, ' ', false, Json::error_handler_t::replace);
        if (text.size() <= kMaxLeafJson) name = std::move(text);
      }
      --key_level_;
    }
    // Bounded memo: past kMaxKeyNameBytes in all, names are recomputed (still bounded by depth).
    if (key_name_bytes_ + name.size() <= kMaxKeyNameBytes) {
      key_name_bytes_ += name.size();
      key_names_.emplace(k, name);
    }
    return name;
  }

  // to_json is a post-order evaluation over an explicit stack (the nesting is the input's): a
  // container's frame collects its children's JSON and becomes one JSON value when complete.
  // Values are numbered in the order a recursive evaluation would reach them, so the budget and
  // the depth limit stop at the same value; any part that is not data makes the whole nullopt.
  struct JsonFrame {
    enum class Shape : std::uint8_t { kArray, kObject, kDevice, kLayout, kForward };
    Shape shape = Shape::kArray;
    unsigned depth = 0;
    std::span<const ValueRef> items;                            ///< kArray, kDevice, kLayout, kForward
    std::span<const std::pair<ValueRef, ValueRef>> entries;     ///< kObject
    std::size_t next = 0;
    Json acc;
  };

  /// A value's JSON when it has no parts (`done`), or the frame that collects its parts.
  struct JsonStart {
    bool done = false;
    std::optional<Json> value;
    JsonFrame frame;
  };

  static JsonStart json_done(std::optional<Json> j) { return JsonStart{true, std::move(j), {}}; }

  JsonStart json_start(ValueRef r, std::uint64_t& budget, unsigned depth) {
    if (budget == 0 || depth > limits_.max_metadata_depth) return json_done(std::nullopt);
    --budget;
    const auto& n = v_.node(r);
    // Large strings and bytes never become metadata: don't copy them to find that out.
    if (n.text.size() > kMaxLeafJson) return json_done(std::nullopt);
    switch (n.kind) {
      case Kind::kNone: return json_done(Json(nullptr));
      case Kind::kBool: return json_done(Json(n.i != 0));
      case Kind::kInt: return json_done(Json(n.i));
      case Kind::kBigInt: return json_done(Json(bigint_text(n.text)));
      case Kind::kFloat:
        if (std::isfinite(n.f)) return json_done(Json(n.f));
        return json_done(Json(std::isnan(n.f) ? "nan" : (n.f > 0 ? "inf" : "-inf")));
      case Kind::kStr: return json_done(Json(std::string(n.text)));
      case Kind::kPy2Str:
        if (auto t = v_.as_text(r)) return json_done(Json(std::string(*t)));
        return json_done(Json{{"bytes", hex(core::as_bytes(n.text))}});
      case Kind::kBytes:
      case Kind::kByteArray: return json_done(Json{{"bytes", hex(core::as_bytes(n.text))}});
      case Kind::kList:
      case Kind::kTuple:
      case Kind::kSet:
      case Kind::kFrozenSet:
        // A list that also received APPENDs as events is not data (the items would be lost).
        if (n.kind == Kind::kList && appends_.count(r) != 0) return json_done(std::nullopt);
        return JsonStart{false, std::nullopt, JsonFrame{JsonFrame::Shape::kArray, depth, v_.items(r), {}, 0, Json::array()}};
      case Kind::kDict:
        return JsonStart{false, std::nullopt, JsonFrame{JsonFrame::Shape::kObject, depth, {}, v_.entries(r), 0, Json::object()}};
      case Kind::kGlobal: {
        // dtypes, layouts, qschemes and classes the rules approve read as their names.
        const auto callee = callee_of(r, rules::Use::kReference);
        if (!callee.approved) return json_done(std::nullopt);
        return json_done(Json(callee.name));
      }
      case Kind::kCall: return call_json_start(r, depth);
      default: return json_done(std::nullopt);
    }
  }

  JsonStart call_json_start(ValueRef r, unsigned depth) {
    const auto& c = v_.call_rec(r);
    const auto callee = callee_of(c.callable, use_of(c.kind));
    if (!callee.approved) return json_done(std::nullopt);
    const auto args = args_of(r);
    auto frame = [&](JsonFrame::Shape shape, std::span<const ValueRef> items) {
      return JsonStart{false, std::nullopt, JsonFrame{shape, depth, items, {}, 0, Json::array()}};
    };
    switch (rebuild_kind(callee.name)) {
      case Rebuild::kTorchSize:
      case Rebuild::kSet:
      case Rebuild::kFrozenSet:
      case Rebuild::kJitBuildList:
        if (args.size() == 1 && c.state == pickle::kNoValue && v_.node(args[0]).kind != Kind::kCall) {
          return frame(JsonFrame::Shape::kForward, args.first(1));
        }
        if (args.empty()) return json_done(Json::array());
        return json_done(std::nullopt);
      case Rebuild::kTorchDevice: return frame(JsonFrame::Shape::kDevice, args);
      case Rebuild::kGetLayout:
      case Rebuild::kComplex:
      case Rebuild::kSlice: return frame(JsonFrame::Shape::kLayout, args);
      case Rebuild::kCodecsEncode:
      case Rebuild::kBytes:
      case Rebuild::kBytearray:
        if (!args.empty() && v_.node(args[0]).text.size() > kMaxLeafJson) return json_done(std::nullopt);
        if (auto b = bytes_of(r)) return json_done(Json{{"bytes", hex(*b)}});
        return json_done(std::nullopt);
      case Rebuild::kNpScalar: return json_done(np_scalar_json(r));
      case Rebuild::kNpDtype: {
        std::string why;
        if (auto d = numpy_dtype(r, why)) return json_done(Json(d->typestr));
        if (!args.empty()) {
          if (auto t = v_.as_text(args[0])) return json_done(Json(std::string(*t)));
        }
        return json_done(std::nullopt);
      }
      case Rebuild::kOrderedDict:
        // Walked like a dict (one leaf per entry); only an empty one is a leaf itself.
        if (!args.empty() || setitems_.count(r) != 0) return json_done(std::nullopt);
        return json_done(Json::object());
      default: return json_done(std::nullopt);
    }
  }

  /// A complete frame's JSON.
  static std::optional<Json> json_finish(JsonFrame& f) {
    Json& a = f.acc;
    switch (f.shape) {
      case JsonFrame::Shape::kArray:
      case JsonFrame::Shape::kObject: return std::move(a);
      case JsonFrame::Shape::kForward: return a.empty() ? std::nullopt : std::optional<Json>(std::move(a[0]));
      case JsonFrame::Shape::kDevice:
        if (a.size() == 1) return a[0];
        if (a.size() == 2 && a[0].is_string()) return Json(fmt::format("{}:{}", a[0].get<std::string>(), a[1].dump()));
        return std::nullopt;
      case JsonFrame::Shape::kLayout: return a.size() == 1 ? a[0] : a;
    }
    return std::nullopt;
  }

  /// JSON for a value built only from data (and a few approved value types), or nullopt.
  std::optional<Json> to_json(ValueRef r, std::uint64_t& budget, unsigned depth) {
    JsonStart first = json_start(r, budget, depth);
    if (first.done) return std::move(first.value);
    std::vector<JsonFrame> stack;
    stack.push_back(std::move(first.frame));
    for (;;) {
      JsonFrame& top = stack.back();
      const bool object = top.shape == JsonFrame::Shape::kObject;
      const std::size_t size = object ? top.entries.size() : top.items.size();
      std::optional<Json> value;
      if (top.next == size) {
        value = json_finish(top);
        stack.pop_back();
        if (!value) return std::nullopt;
        if (stack.empty()) return value;
      } else {
        const ValueRef child = object ? top.entries[top.next].second : top.items[top.next];
        JsonStart s = json_start(child, budget, top.depth + 1);
        if (!s.done) {
          stack.push_back(std::move(s.frame));  // invalidates `top`
          continue;
        }
        if (!s.value) return std::nullopt;
        value = std::move(s.value);
      }
      // Give the completed value to the frame waiting for it.
      JsonFrame& parent = stack.back();
      if (parent.shape == JsonFrame::Shape::kObject) {
        parent.acc[key_name(parent.entries[parent.next].first)] = std::move(*value);
      } else {
        parent.acc.push_back(std::move(*value));
      }
      ++parent.next;
    }
  }

  bool empty_state(ValueRef s) const {
    const auto& n = v_.node(s);
    return (n.kind == Kind::kDict && v_.entries(s).empty()) || n.kind == Kind::kNone;
  }

  static std::string hex(core::Bytes b) { return core::hex(core::as_chars(b)); }

  static std::string bigint_text(std::string_view le) {
    // Little-endian two's complement; shown as hex (exact, and no bignum arithmetic needed).
    std::string out = "0x";
    for (std::size_t i = le.size(); i-- > 0;) out += fmt::format("{:02x}", static_cast<std::uint8_t>(le[i]));
    return out;
  }

  // ---------------------------------------------------------------- calls
  void visit_call(ValueRef r, const std::string& path, unsigned depth) {
    const auto& c = v_.call_rec(r);
    const auto callee = callee_of(c.callable, use_of(c.kind));
    if (!callee.approved) {
      const bool instance = c.kind != CallKind::kReduce && args_of(r).empty();
      const auto& cn = v_.node(c.callable);
      const bool denied = cn.kind != Kind::kGlobal || callee.name.empty() || callee.why.find("denied") != std::string::npos;
      if (in_.salvage && instance && !denied && c.state != pickle::kNoValue) {
        drop(path, fmt::format("an instance of a class the rules do not approve ({}): not kept; approved tensors in its state are",
                               callee.name), c.offset);
        object_with_state(r, callee.name, path, depth);
        return;
      }
      drop(path, fmt::format("built by a call the rules do not approve: {}", callee.why), c.offset);
      return;
    }
    const auto args = args_of(r);
    const auto kind = rebuild_kind(callee.name);
    switch (kind) {
      case Rebuild::kTensorV2:
      case Rebuild::kTensorV3:
      case Rebuild::kTensor:
      case Rebuild::kQTensor:
        torch_tensor(r, kind, args, path);
        return;
      case Rebuild::kParameter:
      case Rebuild::kParameterWithState:
      case Rebuild::kDeviceFromCpu:
      case Rebuild::kDeviceFromNumpy:
        if (args.empty()) return drop(path, fmt::format("{} without arguments", callee.name), c.offset);
        same_child(args[0], depth + 1);
        return;
      case Rebuild::kFromTypeV2: {
        // (func, new_type, args, state): the tensor is func(*args); the subclass is not imported.
        if (args.size() < 3 || v_.node(args[2]).kind != Kind::kTuple) {
          return drop(path, "_rebuild_from_type_v2 with unexpected arguments", c.offset);
        }
        const auto inner = callee_of(args[0], rules::Use::kCall);
        const auto inner_kind = rebuild_kind(inner.name);
        if (!inner.approved || (inner_kind != Rebuild::kTensorV2 && inner_kind != Rebuild::kTensorV3 && inner_kind != Rebuild::kTensor)) {
          return drop(path, fmt::format("_rebuild_from_type_v2 of a function brine does not rebuild ({})", inner.why.empty() ? inner.name : inner.why), c.offset);
        }
        torch_tensor(r, inner_kind, v_.items(args[2]), path);
        return;
      }
      case Rebuild::kSparse:
      case Rebuild::kSparseCsr: {
        if (args.size() < 2 || v_.node(args[1]).kind != Kind::kTuple) return drop(path, "sparse tensor with unexpected arguments", c.offset);
        std::uint64_t budget = 16;
        const auto layout = to_json(args[0], budget, 0);
        const std::string lname = layout && layout->is_string() ? layout->get<std::string>() : "torch.sparse_coo";
        const auto parts = v_.items(args[1]);
        static constexpr std::array<std::string_view, 4> kCoo{"indices", "values", "size", "is_coalesced"};
        static constexpr std::array<std::string_view, 4> kCsr{"crow_indices", "col_indices", "values", "size"};
        static constexpr std::array<std::string_view, 4> kCsc{"ccol_indices", "row_indices", "values", "size"};
        const auto& names = lname == "torch.sparse_coo" ? kCoo : (lname.find("csc") != std::string::npos || lname.find("bsc") != std::string::npos ? kCsc : kCsr);
        add_leaf(join(path, "layout"), Json(lname), c.offset);
        for (std::size_t i = 0; i < parts.size() && i < names.size(); ++i) fixed_child(parts[i], names[i], depth + 1);
        return;
      }
      case Rebuild::kMeta:
      case Rebuild::kWrapperSubclass:
        return drop(path, "a tensor without storage (meta or wrapper subclass): there is no data to write", c.offset);
      case Rebuild::kNested:
        return drop(path, "a nested tensor: not converted", c.offset);
      case Rebuild::kOrderedDict: {
        if (!first_visit(r, path)) return;
        if (args.empty() && setitems_.count(r) == 0) {
          add_leaf(path, Json::object(), c.offset);
          return;
        }
        if (!args.empty()) {
          // OrderedDict(iterable of pairs)
          if (v_.node(args[0]).kind == Kind::kList || v_.node(args[0]).kind == Kind::kTuple) {
            for (ValueRef pair : v_.items(args[0])) {
              if ((v_.node(pair).kind == Kind::kTuple || v_.node(pair).kind == Kind::kList) && v_.items(pair).size() == 2) {
                key_child(v_.items(pair)[1], v_.items(pair)[0], depth + 1);
              }
            }
          } else if (v_.node(args[0]).kind == Kind::kDict) {
            for (const auto& [k, val] : v_.entries(args[0])) key_child(val, k, depth + 1);
          }
        }
        if (auto it = setitems_.find(r); it != setitems_.end()) {
          for (const auto& [k, val] : it->second) key_child(val, k, depth + 1);
        }
        // A state_dict's BUILD state (`_metadata`: module versions) is an attribute, not an item.
        return;
      }
      case Rebuild::kCodecsEncode:
      case Rebuild::kBytes:
      case Rebuild::kBytearray:
        return drop(path, "a bytes value too large for metadata (or not latin-1 text)", c.offset);
      case Rebuild::kJitRestoreTypeTag:
        if (args.empty()) return;
        same_child(args[0], depth + 1);
        return;
      case Rebuild::kJitBuildList:
        if (args.empty()) return;
        same_child(args[0], depth + 1);
        return;
      case Rebuild::kNpReconstruct:
        numpy_reconstruct(r, args, path);
        return;
      case Rebuild::kNpFromBuffer:
        numpy_frombuffer(r, args, path);
        return;
      case Rebuild::kJoblibWrapper:
        joblib_array(r, path);
        return;
      default:
        object_with_state(r, callee.name, path, depth);
        return;
    }
  }

  /// An approved class instance: its BUILD state (its __dict__) holds its contents. For a
  /// whole nn.Module, the weights sit in _parameters / _buffers / _modules.
  void object_with_state(ValueRef r, const std::string& cls, const std::string& path, unsigned depth) {
    const auto& c = v_.call_rec(r);
    if (!first_visit(r, path)) return;
    ValueRef state = c.state;
    if (state != pickle::kNoValue && v_.node(state).kind == Kind::kTuple && v_.items(state).size() == 2) {
      state = v_.items(state)[0];  // (dict, slots)
    }
    const bool has_items = setitems_.count(r) != 0 || appends_.count(r) != 0;
    if ((state == pickle::kNoValue || v_.node(state).kind != Kind::kDict) && !has_items) {
      if (state == pickle::kNoValue && args_of(r).empty()) {
        add_leaf(path, Json(cls), c.offset);
      } else {
        drop(path, fmt::format("an instance of {} whose contents brine cannot read as data", cls), c.offset);
      }
      return;
    }
    if (state != pickle::kNoValue && v_.node(state).kind == Kind::kDict) {
      std::optional<ValueRef> params, buffers, modules;
      for (const auto& [k, val] : v_.entries(state)) {
        auto name = v_.as_text(k);
        if (name == "_parameters") params = val;
        if (name == "_buffers") buffers = val;
        if (name == "_modules") modules = val;
      }
      if (params || modules) {
        for (auto part : {params, buffers, modules}) {
          if (part) visit_members(*part, path, depth + 1);
        }
      } else {
        for (const auto& [k, val] : v_.entries(state)) key_child(val, k, depth + 1);
      }
    }
    if (auto it = setitems_.find(r); it != setitems_.end()) {
      for (const auto& [k, val] : it->second) key_child(val, k, depth + 1);
    }
    if (auto it = appends_.find(r); it != appends_.end()) {
      std::size_t i = 0;
      for (ValueRef item : it->second) index_child(item, i++, depth + 1);
    }
  }

  /// The entries of a module's _parameters / _buffers / _modules dict, named directly under the module.
  void visit_members(ValueRef dict, const std::string& path, unsigned depth) {
    auto each = [&](ValueRef k, ValueRef val) {
      if (v_.node(val).kind == Kind::kNone) return;  // an unset parameter/buffer
      key_child(val, k, depth);
    };
    const auto& n = v_.node(dict);
    if (n.kind == Kind::kDict) {
      for (const auto& [k, val] : v_.entries(dict)) each(k, val);
    } else if (n.kind == Kind::kCall) {
      if (auto it = setitems_.find(dict); it != setitems_.end()) {
        for (const auto& [k, val] : it->second) each(k, val);
      }
    }
  }

  // ---------------------------------------------------------------- torch tensors
  struct Pid {
    std::string key;
    std::string storage_class;   ///< loader name
    std::optional<std::int64_t> numel;
    std::optional<std::pair<std::int64_t, std::int64_t>> view;  ///< legacy view: (offset, numel) in elements
    std::string view_key;
  };

  /// torch caches one typed storage per key (zip: `loaded_storages[key]`; legacy:
  /// `deserialized_objects[root_key]` and `[view_key]`): the FIRST persistent load of a key, in
  /// unpickling order, decides its dtype and size, and later references get that same storage
  /// whatever class they name. The walk below meets references in graph order, so the first ones
  /// are taken from the run's events, which are in execution order.
  void note_first_references() {
    for (const auto& e : in_.run->events) {
      if (e.kind != pickle::Event::Kind::kPersistentLoad) continue;
      std::string why;
      auto pid = parse_pid(e.subject, why);
      if (!pid) continue;
      first_by_key_.try_emplace(pid->key, *pid);
      if (pid->view) first_by_view_key_.try_emplace(pid->view_key, *pid);
    }
  }

  /// `pid` as torch resolves it: the class and size of the first reference to its key (and the
  /// view of the first reference to its view key).
  [[nodiscard]] Pid as_loaded(Pid pid) const {
    if (auto it = first_by_key_.find(pid.key); it != first_by_key_.end()) {
      pid.storage_class = it->second.storage_class;
      pid.numel = it->second.numel;
    }
    if (pid.view) {
      if (auto it = first_by_view_key_.find(pid.view_key); it != first_by_view_key_.end()) pid.view = it->second.view;
    }
    return pid;
  }

  std::map<std::string, Pid> first_by_key_, first_by_view_key_;

  std::optional<Pid> parse_pid(ValueRef storage, std::string& why) const {
    if (v_.node(storage).kind != Kind::kPersistent) {
      why = "its storage is not a persistent id";
      return std::nullopt;
    }
    const ValueRef pid = v_.persistent_rec(storage).pid;
    if (v_.node(pid).kind != Kind::kTuple) {
      why = "its persistent id is not a tuple";
      return std::nullopt;
    }
    const auto t = v_.items(pid);
    if (t.size() < 5 || v_.as_text(t[0]) != "storage" || v_.node(t[1]).kind != Kind::kGlobal) {
      why = "its persistent id is not ('storage', class, key, location, numel)";
      return std::nullopt;
    }
    Pid p;
    const auto cls = callee_of(t[1], rules::Use::kReference);
    if (!cls.approved) {
      why = fmt::format("its storage class is not approved: {}", cls.why);
      return std::nullopt;
    }
    p.storage_class = cls.name;
    auto key = v_.as_text(t[2]);
    if (!key) {
      why = "its storage key is not a string";
      return std::nullopt;
    }
    p.key = std::string(*key);
    p.numel = as_int(t[4]);
    if (t.size() >= 6 && v_.node(t[5]).kind == Kind::kTuple && v_.items(t[5]).size() == 3) {
      // Pre-1.0 legacy view: (view_key, offset, view_numel) into root storage `key`.
      const auto vm = v_.items(t[5]);
      auto off = as_int(vm[1]);
      auto cnt = as_int(vm[2]);
      auto view_key = v_.as_text(vm[0]);
      if (off && cnt && view_key) {
        p.view = std::make_pair(*off, *cnt);
        p.view_key = std::string(*view_key);
      }
    }
    return p;
  }

  /// Where a storage argument's bytes are: a persistent id resolved in the container, or a
  /// whole torch file nested in the pickle (`_load_from_bytes`).
  struct ResolvedStorage {
    core::Bytes bytes;
    std::string member;
    std::string key;                 ///< identifies the storage for tie detection
    bool big_endian = false;
    bool untyped = false;            ///< UntypedStorage: the size is in bytes, the dtype comes from the call
    std::optional<DType> class_dtype;
    std::string class_name;
  };

  std::optional<ResolvedStorage> resolve_storage(ValueRef arg, std::string& why) {
    ResolvedStorage rs;
    if (v_.node(arg).kind == Kind::kCall) {
      const auto& c = v_.call_rec(arg);
      const auto callee = callee_of(c.callable, rules::Use::kCall);
      const auto args = args_of(arg);
      if (!callee.approved || callee.name != "torch.storage._load_from_bytes" || args.size() != 1) {
        why = "its storage is neither a persistent id nor an approved torch.storage._load_from_bytes";
        return std::nullopt;
      }
      if (!in_.nested_storage) {
        why = "a nested storage file here is not read";
        return std::nullopt;
      }
      auto file = bytes_of(args[0]);
      if (!file) {
        why = "_load_from_bytes of something that is not bytes";
        return std::nullopt;
      }
      auto nested = in_.nested_storage(*file, in_.member.empty() ? fmt::format("_load_from_bytes@{}", c.offset)
                                                                         : fmt::format("{}!_load_from_bytes@{}", in_.member, c.offset));
      if (!nested) {
        why = "its nested storage file cannot be read: " + nested.error().describe();
        return std::nullopt;
      }
      rs.bytes = nested->data.bytes;
      rs.member = nested->data.member;
      rs.key = nested->data.member;
      rs.big_endian = nested->data.big_endian;
      rs.class_dtype = nested->dtype;
      rs.class_name = std::string(tensor::info(nested->dtype).torch_name) + " storage";
      return rs;
    }
    auto parsed = parse_pid(arg, why);
    if (!parsed) return std::nullopt;
    const std::optional<Pid> pid = as_loaded(std::move(*parsed));
    if (!in_.storages) {
      why = "this container has no storage records";
      return std::nullopt;
    }
    const std::string_view cls = pid->storage_class;
    rs.class_name = pid->storage_class;
    rs.untyped = cls == "torch.storage.UntypedStorage" || cls == "torch.storage._UntypedStorage" || cls == "torch.UntypedStorage";
    if (!rs.untyped) {
      const auto dot = cls.rfind('.');
      rs.class_dtype = tensor::from_storage_class(cls.substr(dot == std::string_view::npos ? 0 : dot + 1));
      if (!rs.class_dtype) {
        why = fmt::format("storage class {} has no dtype brine writes", cls);
        return std::nullopt;
      }
    }
    const std::uint64_t es = rs.untyped ? 1 : tensor::info(*rs.class_dtype).size;
    auto storage = in_.storages(pid->key);
    if (!storage) {
      why = storage.error().detail;
      return std::nullopt;
    }
    core::Bytes bytes = storage->bytes;
    // The persistent id says how large the storage is (elements of its class; bytes when untyped):
    // the loader reads exactly that much.
    if (pid->numel) {
      std::uint64_t want = 0;
      if (*pid->numel < 0 || __builtin_mul_overflow(static_cast<std::uint64_t>(*pid->numel), es, &want)) {
        why = "its storage size is negative or overflows";
        return std::nullopt;
      }
      if (want > bytes.size()) {
        why = fmt::format("storage record {} holds {} bytes, its persistent id claims {}", storage->member, bytes.size(), want);
        return std::nullopt;
      }
      bytes = bytes.first(want);
    }
    if (pid->view) {
      const auto [voff, vcount] = *pid->view;
      std::uint64_t b = 0, n = 0;
      if (voff < 0 || vcount < 0 || __builtin_mul_overflow(static_cast<std::uint64_t>(voff), es, &b) ||
          __builtin_mul_overflow(static_cast<std::uint64_t>(vcount), es, &n) || b > bytes.size() || n > bytes.size() - b) {
        why = "its legacy storage view lies outside the storage";
        return std::nullopt;
      }
      bytes = bytes.subspan(b, n);
    }
    rs.bytes = bytes;
    rs.member = storage->member;
    rs.big_endian = storage->big_endian;
    rs.key = storage->member + (pid->view ? fmt::format("@{}", pid->view->first) : "");
    return rs;
  }

  /// A storage saved on its own (`torch.save(storage)`, or the root of a nested storage file):
  /// written as a 1-D tensor of its class's dtype (uint8 for untyped storages).
  void bare_storage(ValueRef r, const std::string& path) {
    std::string why;
    auto rs = resolve_storage(r, why);
    if (!rs) return drop(path, "storage not converted: " + why, v_.node(r).offset);
    tensor::Tensor t;
    t.name = path;
    t.offset = v_.node(r).offset;
    t.dtype = rs->class_dtype.value_or(DType::kU8);
    const std::uint64_t es = tensor::info(t.dtype).size;
    t.shape = {static_cast<std::int64_t>(rs->bytes.size() / es)};
    t.strides = {1};
    t.storage = rs->bytes;
    t.big_endian = rs->big_endian;
    t.source = rs->member;
    t.storage_key = rs->key;
    out_.tensors.push_back(std::move(t));
  }

  void torch_tensor(ValueRef call, Rebuild kind, std::span<const ValueRef> args, const std::string& path) {
    const std::uint64_t offset = v_.call_rec(call).offset;
    const std::size_t need = kind == Rebuild::kTensor ? 4 : (kind == Rebuild::kTensorV3 ? 7 : (kind == Rebuild::kQTensor ? 5 : 4));
    if (args.size() < need) return drop(path, fmt::format("a tensor rebuild with {} arguments", args.size()), offset);
    std::string why;
    auto rs = resolve_storage(args[0], why);
    if (!rs) return drop(path, "tensor not converted: " + why, offset);

    tensor::Tensor t;
    t.name = path;
    t.offset = offset;
    std::optional<DType> dtype;
    if (kind == Rebuild::kTensorV3) {
      const auto& dn = v_.node(args[6]);
      if (dn.kind == Kind::kGlobal && v_.global_rec(args[6]).resolved && v_.global_rec(args[6]).module == "torch") {
        dtype = tensor::from_torch_dtype_name(v_.global_rec(args[6]).name);
      }
      if (!dtype) return drop(path, "tensor not converted: _rebuild_tensor_v3 names a dtype brine does not know", offset);
    } else {
      dtype = rs->class_dtype;
    }
    if (!dtype) return drop(path, fmt::format("tensor not converted: storage class {} has no dtype brine writes", rs->class_name), offset);
    t.dtype = *dtype;
    t.storage = rs->bytes;
    t.big_endian = rs->big_endian;
    t.source = rs->member;
    t.storage_key = rs->key;
    auto soff = as_int(args[1]);
    auto size = int_tuple(args[2]);
    auto stride = int_tuple(args[3]);
    if (!soff || !size || !stride) return drop(path, "tensor not converted: offset, size or stride is not an int tuple", offset);
    t.storage_offset = *soff;
    t.shape = *size;
    t.strides = *stride;
    // torch >= 2.0 metadata dict: {'conj': True} / {'neg': True}.
    const std::size_t meta_at = kind == Rebuild::kTensorV3 ? 7 : 6;
    if ((kind == Rebuild::kTensorV2 || kind == Rebuild::kTensorV3) && args.size() > meta_at && v_.node(args[meta_at]).kind == Kind::kDict) {
      for (const auto& [k, val] : v_.entries(args[meta_at])) {
        const auto name = v_.as_text(k);
        const bool on = as_int(val).value_or(0) != 0;
        if (name == "conj") t.conj = on;
        if (name == "neg") t.neg = on;
      }
    }
    if (auto ok = tensor::check_bounds(t); !ok) return drop(path, "tensor not converted: " + ok.error().detail, offset);
    if (kind == Rebuild::kQTensor) quantizer_params(args[4], path, offset);
    out_.tensors.push_back(std::move(t));
  }

  /// (per_tensor_affine, scale, zero_point) or (per_channel_affine, scales, zero_points, axis).
  void quantizer_params(ValueRef q, const std::string& path, std::uint64_t offset) {
    if (v_.node(q).kind != Kind::kTuple || v_.items(q).empty()) return drop(join(path, "qparams"), "quantizer parameters are not a tuple", offset);
    const auto items = v_.items(q);
    std::uint64_t budget = 8;
    auto scheme = to_json(items[0], budget, 0);
    add_leaf(join(path, "qscheme"), scheme.value_or(Json("unknown")), offset);
    static constexpr std::array<std::string_view, 3> kNames{"scale", "zero_point", "axis"};
    for (std::size_t i = 1; i < items.size() && i <= kNames.size(); ++i) fixed_child(items[i], kNames[i - 1], 1);
  }

  // ---------------------------------------------------------------- numpy
  std::optional<NpDtype> numpy_dtype(ValueRef r, std::string& why) {
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

  /// Row-major (C) or column-major (F) element strides for `shape`.
  static std::vector<std::int64_t> strides_for(const std::vector<std::int64_t>& shape, bool fortran) {
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

  void numpy_tensor(const std::string& path, const NpDtype& d, std::vector<std::int64_t> shape, bool fortran,
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

  void numpy_reconstruct(ValueRef r, std::span<const ValueRef> args, const std::string& path) {
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

  void numpy_frombuffer(ValueRef r, std::span<const ValueRef> args, const std::string& path) {
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

  std::optional<Json> np_scalar_json(ValueRef r) {
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

  void joblib_array(ValueRef r, const std::string& path) {
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

  const PickleInput& in_;
  const ValueStore& v_;
  const rules::RuleSet& rules_;
  const core::Limits& limits_;
  Extraction& out_;
  std::unordered_map<ValueRef, std::vector<std::pair<ValueRef, ValueRef>>> setitems_;
  std::unordered_map<ValueRef, std::vector<ValueRef>> appends_;
  std::unordered_map<ValueRef, std::string> seen_containers_;
  std::uint64_t visits_ = 0;
  std::vector<Child>* kids_ = nullptr;
  std::unordered_map<ValueRef, std::string> key_names_;  ///< key_name() results, up to kMaxKeyNameBytes
  std::uint64_t key_name_bytes_ = 0;
  std::uint64_t key_level_ = 0;                          ///< key names being computed inside key names  ///< where visit() records the children of the value it visits
  std::size_t metadata_bytes_ = 0;
  bool walk_limited_ = false;
};

}  // namespace

void extract(const PickleInput& in, const rules::RuleSet& rules, const core::Limits& limits, Extraction& out) {
  Walker(in, rules, limits, out).run();
}

}  // namespace brine::sanitize
