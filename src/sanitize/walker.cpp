// The generic walk of a pickle's loaded object, and extract(), the entry point: every value is
// visited once (depth-first over an explicit stack), data becomes JSON leaves, containers are
// walked, a container reached twice is an alias, and each call is dispatched on its approved
// callable to the torch or numpy rebuild that reads its tensor (torch_rebuild.cpp,
// numpy_rebuild.cpp), where the reading of each framework's tensors lives.

#include "sanitize/walker.hpp"

#include <fmt/format.h>

#include <array>
#include <cmath>

#include "analysis/nested_bytes.hpp"

namespace brine::sanitize::detail {

namespace {

/// Leaves larger than this (as JSON text) are dropped rather than put into metadata.
constexpr std::size_t kMaxLeafJson = 64 << 10;
/// All leaves together: safetensors headers are capped at 100 MB.
constexpr std::size_t kMaxMetadataBytes = 16 << 20;
/// Memory for remembered dict-key names (each one is at most ~100 values of JSON).
constexpr std::uint64_t kMaxKeyNameBytes = 64 << 20;

}  // namespace

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

Walker::Walker(const PickleInput& in, const rules::RuleSet& rules, const core::Limits& limits, Extraction& out)
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

void Walker::run() {
  if (in_.run->root == pickle::kNoValue) return;
  note_first_references();
  walk(in_.run->root, in_.root_name);
}

Walker::Callee Walker::callee_of(ValueRef callable, rules::Use use) const {
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

std::optional<std::int64_t> Walker::as_int(ValueRef r) const {
  if (r == pickle::kNoValue) return std::nullopt;
  const auto& n = v_.node(r);
  if (n.kind == Kind::kInt || n.kind == Kind::kBool) return n.i;
  return std::nullopt;
}

std::optional<std::vector<std::int64_t>> Walker::int_tuple(ValueRef r) const {
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

pickle::Items Walker::args_of(ValueRef call) const {
  const auto& c = v_.call_rec(call);
  const auto& n = v_.node(c.args);
  if (n.kind != Kind::kTuple && n.kind != Kind::kList) return {};
  return v_.items(c.args);
}

std::optional<core::Bytes> Walker::bytes_of(ValueRef r) {
  // bytes(bytearray(bytes(...(b)))) is b: a loop, not recursion (the chain is the input's; it
  // has no cycle, as a call's arguments exist before the call).
  Callee callee;
  Rebuild kind = Rebuild::kNone;
  pickle::Items args;
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

void Walker::add_leaf(const std::string& name, const Json& j, std::uint64_t offset) {
  std::string text = j.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (text.size() > kMaxLeafJson || metadata_bytes_ + text.size() > kMaxMetadataBytes) {
    drop(name, fmt::format("a {}-byte value is too large for metadata", text.size()), offset);
    return;
  }
  metadata_bytes_ += text.size() + name.size();
  out_.leaves.push_back(Leaf{name.empty() ? "value" : name, std::move(text)});
}

void Walker::same_child(ValueRef r, unsigned depth) { kids_->push_back(Child{r, depth, Child::Name::kSame}); }
void Walker::key_child(ValueRef r, ValueRef key, unsigned depth) { kids_->push_back(Child{r, depth, Child::Name::kKey, key}); }
void Walker::index_child(ValueRef r, std::uint64_t i, unsigned depth) {
  kids_->push_back(Child{r, depth, Child::Name::kIndex, pickle::kNoValue, i});
}
void Walker::fixed_child(ValueRef r, std::string_view name, unsigned depth) {
  kids_->push_back(Child{r, depth, Child::Name::kFixed, pickle::kNoValue, 0, name});
}

std::string Walker::child_path(const std::string& parent, const Child& c) {
  switch (c.name) {
    case Child::Name::kSame: return parent;
    case Child::Name::kKey: return join(parent, key_name(c.key));
    case Child::Name::kIndex: return join(parent, std::to_string(c.index));
    case Child::Name::kFixed: return join(parent, c.fixed);
  }
  return parent;
}

void Walker::walk(ValueRef root, const std::string& root_path) {
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

void Walker::visit(ValueRef r, const std::string& path, unsigned depth) {
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

bool Walker::first_visit(ValueRef r, const std::string& path) {
  auto [it, inserted] = seen_containers_.emplace(r, path);
  if (!inserted) out_.object_aliases.emplace_back(path, it->second);
  return inserted;
}

std::string Walker::global_text(ValueRef r) const {
  const auto& g = v_.global_rec(r);
  return g.resolved ? fmt::format("{}.{}", g.module, g.name) : std::string("a computed name");
}

std::string Walker::key_name(ValueRef k) {
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

Walker::JsonStart Walker::json_start(ValueRef r, std::uint64_t& budget, unsigned depth) {
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

Walker::JsonStart Walker::call_json_start(ValueRef r, unsigned depth) {
  const auto& c = v_.call_rec(r);
  const auto callee = callee_of(c.callable, use_of(c.kind));
  if (!callee.approved) return json_done(std::nullopt);
  const auto args = args_of(r);
  auto frame = [&](JsonFrame::Shape shape, pickle::Items items) {
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

std::optional<Json> Walker::json_finish(JsonFrame& f) {
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

std::optional<Json> Walker::to_json(ValueRef r, std::uint64_t& budget, unsigned depth) {
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

bool Walker::empty_state(ValueRef s) const {
  const auto& n = v_.node(s);
  return (n.kind == Kind::kDict && v_.entries(s).empty()) || n.kind == Kind::kNone;
}

std::string Walker::bigint_text(std::string_view le) {
  // Little-endian two's complement; shown as hex (exact, and no bignum arithmetic needed).
  std::string out = "0x";
  for (std::size_t i = le.size(); i-- > 0;) out += fmt::format("{:02x}", static_cast<std::uint8_t>(le[i]));
  return out;
}

void Walker::visit_call(ValueRef r, const std::string& path, unsigned depth) {
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

void Walker::object_with_state(ValueRef r, const std::string& cls, const std::string& path, unsigned depth) {
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

void Walker::visit_members(ValueRef dict, const std::string& path, unsigned depth) {
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

}  // namespace brine::sanitize::detail

namespace brine::sanitize {

void extract(const PickleInput& in, const rules::RuleSet& rules, const core::Limits& limits, Extraction& out) {
  detail::Walker(in, rules, limits, out).run();
}

}  // namespace brine::sanitize
