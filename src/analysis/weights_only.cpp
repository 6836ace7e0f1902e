#include "analysis/weights_only.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <unordered_set>

#include "core/text.hpp"
#include "pickle/decoder.hpp"
#include "pickle/machine.hpp"

namespace brine::analysis {

namespace {

using pickle::CallKind;
using pickle::Kind;
using pickle::Op;
using pickle::ValueRef;
using pickle::ValueStore;

// --- torch 1.13: _get_allowed_globals() of Debian's torch 1.13 (printed from the installed
// package: OrderedDict, Parameter, _get_layout, Size, Tensor, ten dtypes, torch._tensor_classes,
// torch._storage_classes and six rebuild functions).
constexpr std::array<std::string_view, 14> kStorageNames = {
    "BFloat16", "Bool", "Byte", "Char", "ComplexDouble", "ComplexFloat", "Double",
    "Float", "Half", "Int", "Long", "QInt32", "QInt8", "QUInt2x4"};
// (QUInt4x2, QUInt8 and Short are added below: the array keeps the common prefix.)
constexpr std::array<std::string_view, 9> kTensorNames = {"BFloat16", "Bool", "Byte", "Char", "Double", "Float", "Half", "Int", "Long"};

std::unordered_set<std::string> tensor_and_storage_classes() {
  std::unordered_set<std::string> s;
  std::vector<std::string_view> storages(kStorageNames.begin(), kStorageNames.end());
  storages.insert(storages.end(), {"QUInt4x2", "QUInt8", "Short"});
  for (auto n : storages) s.insert(fmt::format("torch.{}Storage", n));
  // CUDA storages exist for the non-quantized types only.
  for (auto n : storages) {
    if (!n.starts_with("Q")) s.insert(fmt::format("torch.cuda.{}Storage", n));
  }
  std::vector<std::string_view> tensors(kTensorNames.begin(), kTensorNames.end());
  tensors.push_back("Short");
  for (auto n : tensors) {
    s.insert(fmt::format("torch.{}Tensor", n));
    s.insert(fmt::format("torch.cuda.{}Tensor", n));
    if (n != "Bool") {  // there is no sparse BoolTensor class
      s.insert(fmt::format("torch.sparse.{}Tensor", n));
      s.insert(fmt::format("torch.cuda.sparse.{}Tensor", n));
    }
  }
  s.insert("torch.storage.TypedStorage");
  s.insert("torch.storage.UntypedStorage");
  return s;
}

const std::unordered_set<std::string>& allowed_1_13() {
  static const std::unordered_set<std::string> s = [] {
    auto out = tensor_and_storage_classes();
    for (const char* n : {"collections.OrderedDict", "torch.nn.parameter.Parameter", "torch.serialization._get_layout",
                          "torch.Size", "torch.Tensor", "torch.complex32", "torch.complex64", "torch.complex128",
                          "torch.float16", "torch.float32", "torch.float64", "torch.int8", "torch.int16", "torch.int32",
                          "torch.int64", "torch._utils._rebuild_parameter", "torch._utils._rebuild_tensor",
                          "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_sparse_tensor",
                          "torch._utils._rebuild_meta_tensor_no_storage", "torch._utils._rebuild_sparse_csr_tensor"}) {
      out.insert(n);
    }
    return out;
  }();
  return s;
}

// --- torch 2.x: _get_allowed_globals() of pytorch's torch/_weights_only_unpickler.py (main at
// 00f730b6, the add_safe_globals design of 2.4 and later). dtypes are those of
// torch.storage._dtype_to_storage_type_map() and _new_dtypes(), uint1-7 and int1-7.
const std::unordered_set<std::string>& allowed_2() {
  static const std::unordered_set<std::string> s = [] {
    auto out = tensor_and_storage_classes();
    for (const char* n :
         {"collections.OrderedDict", "collections.Counter", "torch.nn.parameter.Parameter", "torch.serialization._get_layout",
          "torch.Size", "torch.Tensor", "torch.device", "_codecs.encode", "builtins.bytearray", "builtins.set",
          "builtins.complex",
          // _dtype_to_storage_type_map
          "torch.float64", "torch.float32", "torch.float16", "torch.int64", "torch.int32", "torch.int16", "torch.int8",
          "torch.uint8", "torch.bool", "torch.bfloat16", "torch.complex128", "torch.complex64", "torch.qint8",
          "torch.quint8", "torch.qint32", "torch.quint4x2", "torch.quint2x4",
          // _new_dtypes
          "torch.float8_e5m2", "torch.float8_e4m3fn", "torch.float8_e5m2fnuz", "torch.float8_e4m3fnuz",
          "torch.float8_e8m0fnu", "torch.float4_e2m1fn_x2", "torch.bits8", "torch.bits16", "torch.bits1x8",
          "torch.bits2x4", "torch.bits4x2", "torch.complex32", "torch.uint16", "torch.uint32", "torch.uint64",
          // quantization schemes
          "torch.per_tensor_affine", "torch.per_tensor_symmetric", "torch.per_channel_affine",
          "torch.per_channel_symmetric", "torch.per_channel_affine_float_qparams",
          // _tensor_rebuild_functions
          "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state", "torch._utils._rebuild_qtensor",
          "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor_v3",
          "torch._utils._rebuild_sparse_tensor", "torch._utils._rebuild_meta_tensor_no_storage",
          "torch._utils._rebuild_wrapper_subclass", "torch._utils._rebuild_device_tensor_from_numpy",
          "torch._utils._rebuild_device_tensor_from_cpu_tensor", "torch._tensor._rebuild_from_type_v2"}) {
      out.insert(n);
    }
    for (int i = 1; i <= 7; ++i) {
      out.insert(fmt::format("torch.uint{}", i));
      out.insert(fmt::format("torch.int{}", i));
    }
    return out;
  }();
  return s;
}

/// torch._utils.IMPORT_MAPPING / NAME_MAPPING: 2.x's _read_global_instruction applies them to
/// every GLOBAL (whatever the protocol) before the lookup. 1.13 applies none.
std::pair<std::string, std::string> torch2_rename(std::string module, std::string name) {
  static constexpr std::pair<std::string_view, std::string_view> kNames[][2] = {
      {{"__builtin__", "xrange"}, {"builtins", "range"}},     {{"__builtin__", "reduce"}, {"functools", "reduce"}},
      {{"__builtin__", "intern"}, {"sys", "intern"}},         {{"__builtin__", "unichr"}, {"builtins", "chr"}},
      {{"__builtin__", "unicode"}, {"builtins", "str"}},      {{"__builtin__", "long"}, {"builtins", "int"}},
      {{"itertools", "izip"}, {"builtins", "zip"}},           {{"itertools", "imap"}, {"builtins", "map"}},
      {{"itertools", "ifilter"}, {"builtins", "filter"}},     {{"itertools", "ifilterfalse"}, {"itertools", "filterfalse"}},
      {{"itertools", "izip_longest"}, {"itertools", "zip_longest"}},
      {{"UserDict", "IterableUserDict"}, {"collections", "UserDict"}},
      {{"UserList", "UserList"}, {"collections", "UserList"}}, {{"UserString", "UserString"}, {"collections", "UserString"}},
      {{"__builtin__", "basestring"}, {"builtins", "str"}},   {{"exceptions", "StandardError"}, {"builtins", "Exception"}},
      {{"UserDict", "UserDict"}, {"collections", "UserDict"}},
  };
  static constexpr std::pair<std::string_view, std::string_view> kModules[] = {
      {"__builtin__", "builtins"}, {"copy_reg", "copyreg"}, {"Queue", "queue"}, {"repr", "reprlib"},
      {"_abcoll", "collections.abc"}, {"UserDict", "collections"}, {"UserList", "collections"},
      {"UserString", "collections"}, {"whichdb", "dbm"}, {"StringIO", "io"}, {"cStringIO", "io"},
  };
  for (const auto& m : kNames) {
    if (m[0].first == module && m[0].second == name) return {std::string(m[1].first), std::string(m[1].second)};
  }
  for (const auto& [from, to] : kModules) {
    if (from == module) return {std::string(to), std::move(name)};
  }
  return {std::move(module), std::move(name)};
}

bool op_supported(TorchVersion v, Op op) {
  switch (op) {
    case Op::GLOBAL: case Op::NEWOBJ: case Op::REDUCE: case Op::BUILD: case Op::APPEND: case Op::APPENDS:
    case Op::SETITEM: case Op::SETITEMS: case Op::MARK: case Op::TUPLE: case Op::TUPLE1: case Op::TUPLE2:
    case Op::TUPLE3: case Op::NONE: case Op::NEWFALSE: case Op::NEWTRUE: case Op::EMPTY_TUPLE: case Op::EMPTY_LIST:
    case Op::EMPTY_DICT: case Op::EMPTY_SET: case Op::BININT: case Op::BININT1: case Op::BININT2:
    case Op::BINUNICODE: case Op::SHORT_BINSTRING: case Op::BINPERSID: case Op::BINGET: case Op::LONG_BINGET:
    case Op::BINPUT: case Op::LONG_BINPUT: case Op::LONG1: case Op::PROTO: case Op::STOP:
      return true;
    case Op::BINFLOAT:
      return v == TorchVersion::k2;  // 1.13 has no BINFLOAT case: every Python float is refused
    default:
      return false;
  }
}

/// The name the unpickler looks a GLOBAL up under.
std::string lookup_name(TorchVersion v, const pickle::GlobalRec& g) {
  std::string module(g.module), name(g.name);
  if (v == TorchVersion::k2) std::tie(module, name) = torch2_rename(module, name);
  return module + "." + name;
}

std::string module_of(TorchVersion v, const pickle::GlobalRec& g) {
  std::string module(g.module);
  if (v == TorchVersion::k2) module = torch2_rename(module, std::string(g.name)).first;
  return module;
}

/// Functions whose result type is known without running them.
std::string_view known_result(std::string_view fn) {
  static constexpr std::pair<std::string_view, std::string_view> kResults[] = {
      {"torch._utils._rebuild_tensor", "torch.Tensor"},
      {"torch._utils._rebuild_tensor_v2", "torch.Tensor"},
      {"torch._utils._rebuild_tensor_v3", "torch.Tensor"},
      {"torch._utils._rebuild_sparse_tensor", "torch.Tensor"},
      {"torch._utils._rebuild_sparse_csr_tensor", "torch.Tensor"},
      {"torch._utils._rebuild_meta_tensor_no_storage", "torch.Tensor"},
      {"torch._utils._rebuild_qtensor", "torch.Tensor"},
      {"torch._utils._rebuild_device_tensor_from_numpy", "torch.Tensor"},
      {"torch._utils._rebuild_device_tensor_from_cpu_tensor", "torch.Tensor"},
      {"torch._utils._rebuild_parameter", "torch.nn.parameter.Parameter"},
      {"torch._utils._rebuild_parameter_with_state", "torch.nn.parameter.Parameter"},
  };
  for (const auto& [f, t] : kResults) {
    if (f == fn) return t;
  }
  return {};
}

/// Callables that return an instance of one of their arguments (the type is that argument).
int result_type_arg(std::string_view fn) {
  if (fn == "numpy.core.multiarray._reconstruct" || fn == "numpy._core.multiarray._reconstruct" ||
      fn == "copyreg._reconstructor") {
    return 0;
  }
  if (fn == "torch._tensor._rebuild_from_type_v2") return 1;
  return -1;
}

/// Classes the allowlists hold: calling one makes an instance of it.
bool known_class(std::string_view name) {
  static constexpr std::string_view kClasses[] = {
      "collections.OrderedDict", "collections.Counter", "torch.nn.parameter.Parameter", "torch.Size", "torch.Tensor",
      "torch.device", "builtins.bytearray", "builtins.set", "builtins.complex"};
  return std::find(std::begin(kClasses), std::end(kClasses), name) != std::end(kClasses);
}

/// ASCII identifiers joined by dots: what the Python list can name (and all it may print as code).
bool dotted_identifier(std::string_view s) {
  if (s.empty()) return false;
  bool start = true;
  for (char c : s) {
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    if (c == '.') {
      if (start) return false;
      start = true;
      continue;
    }
    if (!(alpha || (digit && !start))) return false;
    start = false;
  }
  return !start;
}

struct TypeOf {
  std::string name;       ///< module.qualname of the value's type; empty when unknown
  bool plain = false;     ///< a value the unpickler builds itself (dict, list, str, ...), named in `name`
  bool assumed = false;   ///< the callable was taken to be a class
};

TypeOf type_of(TorchVersion v, const ValueStore& values, ValueRef ref) {
  const pickle::Node& n = values.node(ref);
  switch (n.kind) {
    case Kind::kCall: {
      const pickle::CallRec& c = values.call_rec(ref);
      if (values.node(c.callable).kind != Kind::kGlobal) return {};
      const std::string fn = lookup_name(v, values.global_rec(c.callable));
      if (c.kind == CallKind::kNewObj) return {fn};
      if (auto t = known_result(fn); !t.empty()) return {std::string(t)};
      if (const int arg = result_type_arg(fn); arg >= 0) {
        if (values.node(c.args).kind != Kind::kTuple) return {};
        const auto items = values.items(c.args);
        if (static_cast<std::size_t>(arg) >= items.size() || values.node(items[arg]).kind != Kind::kGlobal) return {};
        return {lookup_name(v, values.global_rec(items[arg]))};
      }
      return {fn, false, !known_class(fn)};
    }
    case Kind::kGlobal: return {"builtins.type", true};  // a class or function object itself
    case Kind::kPersistent: return {};
    default: return {fmt::format("builtins.{}", pickle::kind_name(n.kind)), true};
  }
}

}  // namespace

std::string_view torch_version_name(TorchVersion v) { return v == TorchVersion::k1_13 ? "1.13" : "2.x"; }

bool weights_only_default_allowed(TorchVersion torch, std::string_view name) {
  const auto& set = torch == TorchVersion::k1_13 ? allowed_1_13() : allowed_2();
  return set.count(std::string(name)) != 0;
}

bool WeightsOnlyResult::loadable() const {
  return never.empty() && (torch == TorchVersion::k2 || needed.empty());
}

void WeightsOnlyModel::refuse(std::string member, std::uint64_t offset, std::string message) {
  result_.never.push_back({std::move(member), offset, std::move(message)});
}

void WeightsOnlyModel::assume(std::string member, std::uint64_t offset, std::string message) {
  result_.assumptions.push_back({std::move(member), offset, std::move(message)});
}

void WeightsOnlyModel::merge(const WeightsOnlyResult& other) {
  for (const auto& n : other.never) result_.never.push_back(n);
  for (const auto& n : other.assumptions) result_.assumptions.push_back(n);
  for (const auto& g : other.needed) {
    need(g.name, g.module, g.member, g.offset, g.why);
  }
}

void WeightsOnlyModel::need(std::string name, std::string module, const std::string& member, std::uint64_t offset,
                            std::string why) {
  for (const auto& g : result_.needed) {
    if (g.name == name) return;
  }
  if (!dotted_identifier(name) || !dotted_identifier(module)) {
    // Such a name is printed nowhere as code; no list entry can be written for it by name.
    refuse(member, offset, fmt::format("{} names {}, which is not a dotted Python identifier: brine does not write it into an "
                                       "add_safe_globals list", why, core::display_text(name)));
    return;
  }
  SafeGlobal g;
  g.name = std::move(name);
  g.module = std::move(module);
  g.member = member;
  g.offset = offset;
  g.why = std::move(why);
  result_.needed.push_back(std::move(g));
}

void WeightsOnlyModel::add_run(const std::string& member, core::Bytes data, const pickle::PickleRun& run) {
  const TorchVersion v = result_.torch;
  const bool v1 = v == TorchVersion::k1_13;
  if (run.error) {
    refuse(member, run.start, fmt::format("the pickle fails under every unpickler: {}", run.error->detail));
    return;
  }
  // 1. Opcodes: the restricted unpickler has a case for a fixed set; any other is "Unsupported operand".
  {
    pickle::StringArena arena;
    pickle::Decoder dec(data, run.start, arena, limits_);
    pickle::Instruction ins;
    std::vector<Op> reported;
    while (dec.pos() < run.end && dec.next(ins)) {
      if (!op_supported(v, ins.op) && std::find(reported.begin(), reported.end(), ins.op) == reported.end()) {
        reported.push_back(ins.op);
        refuse(member, ins.offset, fmt::format("opcode {} (0x{:02x}): the weights_only unpickler of torch {} has no case for it "
                                               "(\"Unsupported operand {}\")",
                                               pickle::name(ins.op), static_cast<unsigned>(pickle::info(ins.op).byte),
                                               torch_version_name(v), pickle::info(ins.op).byte));
      }
      // torch.load passes encoding="utf-8": a SHORT_BINSTRING is decoded strictly.
      if (ins.op == Op::SHORT_BINSTRING && !core::valid_utf8(ins.arg.a, core::Utf8Mode::kStrict)) {
        refuse(member, ins.offset, "SHORT_BINSTRING is not UTF-8: torch.load's encoding='utf-8' decode raises");
      }
      if (ins.op == Op::STOP) break;
    }
  }
  // 2. What the run does, in order.
  const ValueStore& values = run.values;
  for (const pickle::Event& e : run.events) {
    switch (e.kind) {
      case pickle::Event::Kind::kGlobal: {
        const pickle::GlobalRec& g = values.global_rec(e.subject);
        if (e.op != Op::GLOBAL) break;  // STACK_GLOBAL / INST: already refused as opcodes
        const std::string name = lookup_name(v, g);
        const std::string module = module_of(v, g);
        if (!v1 && (module == "sys" || module == "os" || module == "posix" || module == "nt")) {
          refuse(member, e.offset, fmt::format("GLOBAL {}: module {} is blocklisted in torch 2.x, whatever the list", name, module));
          break;
        }
        if (!weights_only_default_allowed(v, name)) {
          need(name, module, member, e.offset, "GLOBAL");
        }
        break;
      }
      case pickle::Event::Kind::kCall: {
        const pickle::CallRec& c = values.call_rec(e.subject);
        if (c.kind != CallKind::kReduce && c.kind != CallKind::kNewObj) break;  // other opcodes refused above
        const char* op = c.kind == CallKind::kReduce ? "REDUCE" : "NEWOBJ";
        if (values.node(c.callable).kind != Kind::kGlobal) {
          refuse(member, e.offset, fmt::format("{} calls a non-global value ({}): the unpickler only calls allowlisted globals", op,
                                               pickle::kind_name(values.node(c.callable).kind)));
          break;
        }
        const std::string fn = lookup_name(v, values.global_rec(c.callable));
        if (c.kind == CallKind::kNewObj && v1 && fn != "torch.nn.parameter.Parameter") {
          refuse(member, e.offset, fmt::format("NEWOBJ of {}: torch 1.13 instantiates only torch.nn.Parameter", fn));
        }
        break;
      }
      case pickle::Event::Kind::kBuild: {
        const TypeOf t = type_of(v, values, e.subject);
        if (t.name.empty()) {
          refuse(member, e.offset, "BUILD on a value whose type brine cannot tell (a persistent load, or the result of a "
                                   "call on a non-global): the unpickler builds only allowlisted types");
          break;
        }
        if (t.plain) {
          refuse(member, e.offset, fmt::format("BUILD on a {}: the unpickler builds only Tensor, Parameter, OrderedDict{}", t.name,
                                               v1 ? "" : " and allowlisted classes"));
          break;
        }
        const bool builtin_ok = t.name == "torch.Tensor" || t.name == "torch.nn.parameter.Parameter" || t.name == "collections.OrderedDict";
        if (t.assumed) {
          result_.assumptions.push_back({member, e.offset, fmt::format("BUILD on the result of calling {}: taken to be an "
                                                                       "instance of {} (a class)", t.name, t.name)});
        }
        if (builtin_ok) break;
        if (v1) {
          refuse(member, e.offset, fmt::format("BUILD on an instance of {}: torch 1.13 builds only Tensor, Parameter and OrderedDict", t.name));
        } else if (!weights_only_default_allowed(v, t.name)) {
          // A type named only through a call: import its module as the name says (a class's
          // own module can differ; the GLOBAL entry, when there is one, came first and wins).
          need(t.name, t.name.substr(0, t.name.rfind('.')), member, e.offset, "BUILD on an instance of it");
        }
        break;
      }
      case pickle::Event::Kind::kSetItem: {
        if (v1) break;  // 1.13 assigns into any object
        const TypeOf t = type_of(v, values, e.subject);
        if (t.name != "collections.OrderedDict" && t.name != "collections.Counter") {
          refuse(member, e.offset, fmt::format("SETITEM on {}: torch 2.x sets items only in dict, OrderedDict and Counter",
                                               t.name.empty() ? std::string("a value of unknown type") : "an instance of " + t.name));
        }
        break;
      }
      case pickle::Event::Kind::kAppend: {
        const TypeOf t = type_of(v, values, e.subject);
        if (v1 || t.name.empty() || t.plain) {
          refuse(member, e.offset, fmt::format("APPEND to {}: the unpickler appends only to lists{}",
                                               t.name.empty() ? std::string("a value of unknown type") : t.name,
                                               v1 ? "" : " (and allowlisted list subclasses)"));
        } else {
          result_.assumptions.push_back({member, e.offset, fmt::format("APPEND to an instance of {}: loads only if {} subclasses list", t.name, t.name)});
          need(t.name, t.name.substr(0, t.name.rfind('.')), member, e.offset, "APPEND to an instance of it");
        }
        break;
      }
      case pickle::Event::Kind::kPersistentLoad: {
        if (e.op != Op::BINPERSID) break;  // PERSID: refused as an opcode
        const ValueRef pid = values.persistent_rec(e.subject).pid;
        const pickle::Node& n = values.node(pid);
        bool storage = false;
        if (n.kind == Kind::kTuple && !values.items(pid).empty()) {
          const ValueRef first = values.items(pid)[0];
          const pickle::Node& f = values.node(first);
          // torch's _maybe_decode_ascii: bytes are decoded as ASCII, str taken as is.
          storage = (f.kind == Kind::kStr || f.kind == Kind::kBytes || f.kind == Kind::kPy2Str) && f.text == "storage";
        }
        if (!storage) {
          refuse(member, e.offset, fmt::format("persistent id is a {}{}: torch.load accepts only ('storage', ...) tuples",
                                               pickle::kind_name(n.kind), n.kind == Kind::kTuple ? " not starting with 'storage'" : ""));
        }
        break;
      }
      case pickle::Event::Kind::kExtension:
      case pickle::Event::Kind::kOutOfBandBuffer:
        break;  // EXT*/NEXT_BUFFER: refused as opcodes
    }
  }
}

}  // namespace brine::analysis
