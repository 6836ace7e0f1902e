// torch's rebuilds: tensors (_rebuild_tensor[_v2|_v3], through _rebuild_from_type_v2), quantized
// tensors' parameters, storages saved on their own, and the persistent ids that name storages,
// resolved the way torch.load resolves them (the first reference to a key decides its class and
// size). One job: from an approved torch call to the bytes and layout of its tensor.

#include "sanitize/walker.hpp"

#include <fmt/format.h>

#include <array>

namespace brine::sanitize::detail {

void Walker::note_first_references() {
  for (const auto& e : in_.run->events) {
    if (e.kind != pickle::Event::Kind::kPersistentLoad) continue;
    std::string why;
    auto pid = parse_pid(e.subject, why);
    if (!pid) continue;
    first_by_key_.try_emplace(pid->key, *pid);
    if (pid->view) first_by_view_key_.try_emplace(pid->view_key, *pid);
  }
}

Walker::Pid Walker::as_loaded(Pid pid) const {
  if (auto it = first_by_key_.find(pid.key); it != first_by_key_.end()) {
    pid.storage_class = it->second.storage_class;
    pid.numel = it->second.numel;
  }
  if (pid.view) {
    if (auto it = first_by_view_key_.find(pid.view_key); it != first_by_view_key_.end()) pid.view = it->second.view;
  }
  return pid;
}

std::optional<Walker::Pid> Walker::parse_pid(ValueRef storage, std::string& why) const {
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

std::optional<Walker::ResolvedStorage> Walker::resolve_storage(ValueRef arg, std::string& why) {
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

void Walker::bare_storage(ValueRef r, const std::string& path) {
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

void Walker::torch_tensor(ValueRef call, Rebuild kind, pickle::Items args, const std::string& path) {
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

void Walker::quantizer_params(ValueRef q, const std::string& path, std::uint64_t offset) {
  if (v_.node(q).kind != Kind::kTuple || v_.items(q).empty()) return drop(join(path, "qparams"), "quantizer parameters are not a tuple", offset);
  const auto items = v_.items(q);
  std::uint64_t budget = 8;
  auto scheme = to_json(items[0], budget, 0);
  add_leaf(join(path, "qscheme"), scheme.value_or(Json("unknown")), offset);
  static constexpr std::array<std::string_view, 3> kNames{"scale", "zero_point", "axis"};
  for (std::size_t i = 1; i < items.size() && i <= kNames.size(); ++i) fixed_child(items[i], kNames[i - 1], 1);
}

}  // namespace brine::sanitize::detail
