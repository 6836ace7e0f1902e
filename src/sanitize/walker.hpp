// Internal to the sanitize module, not part of brine's public API (callers include
// sanitize/extract.hpp and call extract()). It declares the Walker that turns one symbolic pickle
// run into an Extraction, so that its methods can live in one file per job:
//   walker.cpp         the generic walk of the loaded object: visiting values, JSON leaves,
//                      dispatching calls to the rebuilds below, instances and their state, aliases
//   torch_rebuild.cpp  torch tensors, storages and the persistent ids that name them
//   numpy_rebuild.cpp  numpy arrays, dtypes and scalars, and joblib's NumpyArrayWrapper arrays
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/text.hpp"
#include "sanitize/extract.hpp"

namespace brine::sanitize::detail {

using pickle::CallKind;
using pickle::Kind;
using pickle::ValueRef;
using pickle::ValueStore;
using tensor::DType;
using Json = nlohmann::ordered_json;

inline std::string join(const std::string& path, std::string_view part) {
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

/// The rebuild a loader name denotes (kNone for any other name).
Rebuild rebuild_kind(std::string_view n);

/// A numpy dtype as far as brine can write it.
struct NpDtype {
  DType dtype = DType::kF32;
  bool big_endian = false;
  std::string typestr;
};

/// Walks one pickle run's loaded object and adds what it holds to an Extraction (see extract()).
class Walker {
 public:
  Walker(const PickleInput& in, const rules::RuleSet& rules, const core::Limits& limits, Extraction& out);
  void run();

 private:
  // ---------------------------------------------------------------- classification helpers (walker.cpp)
  struct Callee {
    std::string name;        ///< loader name ("torch._utils._rebuild_tensor_v2"), empty if not a resolved global
    bool approved = false;
    std::string why;         ///< when not approved
  };

  Callee callee_of(ValueRef callable, rules::Use use) const;

  static rules::Use use_of(CallKind k) {
    return k == CallKind::kReduce ? rules::Use::kCall : rules::Use::kInstantiate;
  }

  std::optional<std::int64_t> as_int(ValueRef r) const;

  /// A tuple (or torch.Size) of ints.
  std::optional<std::vector<std::int64_t>> int_tuple(ValueRef r) const;

  pickle::Items args_of(ValueRef call) const;

  /// Bytes of a bytes-like value: BINBYTES, a protocol-2 `_codecs.encode(str[, encoding])`, a
  /// py2 str, a bytearray.
  std::optional<core::Bytes> bytes_of(ValueRef r);

  // ---------------------------------------------------------------- the walk (walker.cpp)
  void drop(const std::string& name, std::string reason, std::uint64_t offset) {
    out_.dropped.push_back(Dropped{name.empty() ? "(root)" : name, std::move(reason), offset});
  }

  void add_leaf(const std::string& name, const Json& j, std::uint64_t offset);

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

  void same_child(ValueRef r, unsigned depth);
  void key_child(ValueRef r, ValueRef key, unsigned depth);
  void index_child(ValueRef r, std::uint64_t i, unsigned depth);
  void fixed_child(ValueRef r, std::string_view name, unsigned depth);

  std::string child_path(const std::string& parent, const Child& c);
  void walk(ValueRef root, const std::string& root_path);

  /// One value's own work; the values it contains go to *kids_ (see walk()).
  void visit(ValueRef r, const std::string& path, unsigned depth);

  /// The same container reached again (memo): record the alias instead of walking it twice.
  bool first_visit(ValueRef r, const std::string& path);

  std::string global_text(ValueRef r) const;

  /// The name of a dict key in a dotted path. A key that is not text, a number or None is named
  /// by its JSON text; that JSON can itself contain dicts with such keys (a set({...: 1}) key), so
  /// key names nest: at most max_metadata_depth levels of native recursion, each name computed
  /// once (a key reached again, even through a cycle, reuses it).
  std::string key_name(ValueRef k);

  // to_json is a post-order evaluation over an explicit stack (the nesting is the input's): a
  // container's frame collects its children's JSON and becomes one JSON value when complete.
  // Values are numbered in the order a recursive evaluation would reach them, so the budget and
  // the depth limit stop at the same value; any part that is not data makes the whole nullopt.
  struct JsonFrame {
    enum class Shape : std::uint8_t { kArray, kObject, kDevice, kLayout, kForward };
    Shape shape = Shape::kArray;
    unsigned depth = 0;
    pickle::Items items;                            ///< kArray, kDevice, kLayout, kForward
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

  JsonStart json_start(ValueRef r, std::uint64_t& budget, unsigned depth);
  JsonStart call_json_start(ValueRef r, unsigned depth);

  /// A complete frame's JSON.
  static std::optional<Json> json_finish(JsonFrame& f);

  /// JSON for a value built only from data (and a few approved value types), or nullopt.
  std::optional<Json> to_json(ValueRef r, std::uint64_t& budget, unsigned depth);

  bool empty_state(ValueRef s) const;

  static std::string hex(core::Bytes b) { return core::hex(core::as_chars(b)); }

  static std::string bigint_text(std::string_view le);

  // ---------------------------------------------------------------- calls (walker.cpp)
  void visit_call(ValueRef r, const std::string& path, unsigned depth);

  /// An approved class instance: its BUILD state (its __dict__) holds its contents. For a
  /// whole nn.Module, the weights sit in _parameters / _buffers / _modules.
  void object_with_state(ValueRef r, const std::string& cls, const std::string& path, unsigned depth);

  /// The entries of a module's _parameters / _buffers / _modules dict, named directly under the module.
  void visit_members(ValueRef dict, const std::string& path, unsigned depth);

  // ---------------------------------------------------------------- torch tensors (torch_rebuild.cpp)
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
  void note_first_references();

  /// `pid` as torch resolves it: the class and size of the first reference to its key (and the
  /// view of the first reference to its view key).
  [[nodiscard]] Pid as_loaded(Pid pid) const;

  std::optional<Pid> parse_pid(ValueRef storage, std::string& why) const;

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

  std::optional<ResolvedStorage> resolve_storage(ValueRef arg, std::string& why);

  /// A storage saved on its own (`torch.save(storage)`, or the root of a nested storage file):
  /// written as a 1-D tensor of its class's dtype (uint8 for untyped storages).
  void bare_storage(ValueRef r, const std::string& path);

  void torch_tensor(ValueRef call, Rebuild kind, pickle::Items args, const std::string& path);

  /// (per_tensor_affine, scale, zero_point) or (per_channel_affine, scales, zero_points, axis).
  void quantizer_params(ValueRef q, const std::string& path, std::uint64_t offset);

  // ---------------------------------------------------------------- numpy and joblib arrays (numpy_rebuild.cpp)
  std::optional<NpDtype> numpy_dtype(ValueRef r, std::string& why);

  /// Row-major (C) or column-major (F) element strides for `shape`.
  static std::vector<std::int64_t> strides_for(const std::vector<std::int64_t>& shape, bool fortran);

  void numpy_tensor(const std::string& path, const NpDtype& d, std::vector<std::int64_t> shape, bool fortran,
                    core::Bytes data, std::uint64_t offset, std::string key);
  void numpy_reconstruct(ValueRef r, pickle::Items args, const std::string& path);
  void numpy_frombuffer(ValueRef r, pickle::Items args, const std::string& path);
  std::optional<Json> np_scalar_json(ValueRef r);
  void joblib_array(ValueRef r, const std::string& path);

  // ---------------------------------------------------------------- state
  const PickleInput& in_;
  const ValueStore& v_;
  const rules::RuleSet& rules_;
  const core::Limits& limits_;
  Extraction& out_;
  std::unordered_map<ValueRef, std::vector<std::pair<ValueRef, ValueRef>>> setitems_;
  std::unordered_map<ValueRef, std::vector<ValueRef>> appends_;
  std::unordered_map<ValueRef, std::string> seen_containers_;
  std::uint64_t visits_ = 0;
  std::vector<Child>* kids_ = nullptr;  ///< where visit() records the children of the value it visits
  std::unordered_map<ValueRef, std::string> key_names_;  ///< key_name() results, up to kMaxKeyNameBytes
  std::uint64_t key_name_bytes_ = 0;
  std::uint64_t key_level_ = 0;                          ///< key names being computed inside key names
  std::size_t metadata_bytes_ = 0;
  bool walk_limited_ = false;
  std::map<std::string, Pid> first_by_key_, first_by_view_key_;  ///< see note_first_references()
};

}  // namespace brine::sanitize::detail
