// ONNX output: a ModelProto with no nodes whose graph initializers are the tensors, each also a
// graph output, so that a runtime loads it and returns every tensor from run({}).
//
// The tensor bytes are never assembled into one message: protobuf would need the whole model
// (up to 2 GiB, or more with external data) in memory, twice. Instead the small messages are
// serialized with the generated classes and the big, length-delimited parts (TensorProto.raw_data
// and the initializer/graph fields that enclose it) are written as wire format by hand. Every
// length is known up front (Tensor::nbytes()), so the output is written in one forward pass.
//
// A protobuf parser accepts fields in any order and concatenated message fragments, so the
// layout is: ModelProto = [small fields] + graph(7){ [name, outputs] + initializer(5){ [header]
// + raw_data(9) }... }.

#include <algorithm>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "writer/atomic_file.hpp"
#include "writer/output.hpp"

// libonnx-dev ships only the ONNX-ML flavour of the generated header (onnx-ml.pb.h); onnx_pb.h
// picks it when ONNX_ML is defined. The cmake target defines it; keep the file compilable
// without it too.
#ifndef ONNX_ML
#define ONNX_ML 1
#endif
#include <onnx/onnx_pb.h>

namespace brine::writer {

namespace {

using core::ErrorCode;
using tensor::Tensor;

constexpr std::string_view kGraphName = "brine_sanitized";
constexpr std::string_view kProducerName = "brine";
/// The external data file's tensors start at multiples of this: lets a runtime mmap each one
/// page-aligned (onnx's own save_model uses 4096 too).
constexpr std::uint64_t kExternalAlignment = 4096;

// ---------------------------------------------------------------------------------------------
// Protobuf wire format: just what is needed to frame length-delimited fields by hand.

constexpr std::uint32_t kWireLengthDelimited = 2;

std::size_t varint_size(std::uint64_t v) {
  std::size_t n = 1;
  for (; v >= 0x80; v >>= 7) ++n;
  return n;
}

void append_varint(std::string& out, std::uint64_t v) {
  for (; v >= 0x80; v >>= 7) out.push_back(static_cast<char>((v & 0x7f) | 0x80));
  out.push_back(static_cast<char>(v));
}

std::uint64_t tag(int field) { return (static_cast<std::uint64_t>(field) << 3) | kWireLengthDelimited; }

/// Tag and length prefix of a length-delimited field whose payload is `len` bytes.
std::string field_prefix(int field, std::uint64_t len) {
  std::string out;
  append_varint(out, tag(field));
  append_varint(out, len);
  return out;
}

/// Bytes a length-delimited field occupies in total, prefix included.
std::uint64_t field_size(int field, std::uint64_t len) { return varint_size(tag(field)) + varint_size(len) + len; }

// ---------------------------------------------------------------------------------------------
// Versions.

/// The lowest IR version that defines an ONNX data type (IR 8 is the floor: ONNX 1.10+, which
/// every current runtime reads). nullopt for types newer than this writer knows.
std::optional<int> ir_version_for(int onnx_type) {
  if (onnx_type >= 1 && onnx_type <= 16) return 8;   // up to BFLOAT16
  if (onnx_type >= 17 && onnx_type <= 20) return 9;  // FLOAT8E4M3FN..FLOAT8E5M2FNUZ (ONNX 1.14)
  if (onnx_type == 21 || onnx_type == 22) return 10; // UINT4, INT4 (ONNX 1.16)
  if (onnx_type == 23) return 11;                    // FLOAT4E2M1 (ONNX 1.18)
  if (onnx_type == 24) return 12;                    // FLOAT8E8M0 (ONNX 1.19)
  return std::nullopt;
}

/// The default-domain opset released with an IR version: the first one whose operators
/// (Identity, Constant, Cast...) accept that IR's new types, should anyone add nodes.
int opset_for(int ir_version) {
  switch (ir_version) {
    case 8: return 13;
    case 9: return 19;
    case 10: return 21;
    case 11: return 23;
    default: return 24;
  }
}

// ---------------------------------------------------------------------------------------------
// Validation: everything that can be refused is refused before any output file exists.

core::Unexpected usage(std::string detail) { return core::fail(ErrorCode::kUsage, 0, std::move(detail)); }

/// Checks one tensor; returns the IR version its dtype needs.
core::Result<int> check_tensor(const Tensor& t) {
  const auto& di = tensor::info(t.dtype);
  if (di.onnx == 0) return usage("tensor '" + t.name + "': dtype " + std::string(di.torch_name) + " has no ONNX type");
  const auto ir = ir_version_for(di.onnx);
  if (!ir) {
    return usage("tensor '" + t.name + "': ONNX type " + std::to_string(di.onnx) + " is not supported by this writer");
  }
  // An empty name cannot be a graph output, and a negative dim is no shape at all.
  if (t.name.empty()) return usage("a tensor has an empty name; ONNX graph outputs need one");
  for (const auto d : t.shape) {
    if (d < 0) return usage("tensor '" + t.name + "': negative dimension " + std::to_string(d));
  }
  std::uint64_t bytes = 0;
  if (__builtin_mul_overflow(t.numel(), std::uint64_t{di.size}, &bytes) || t.numel() == UINT64_MAX) {
    return usage("tensor '" + t.name + "': byte size overflows");
  }
  return *ir;
}

/// Validates the whole model; returns the IR version to write (the lowest covering every dtype).
core::Result<int> check_model(const OutputModel& model) {
  int ir = 8;
  std::set<std::string_view> names;
  for (const Tensor* t : model.tensors) {
    BRINE_TRY_ASSIGN(const int needed, check_tensor(*t));
    ir = std::max(ir, needed);
    // Duplicate outputs/initializers break the graph's single-assignment rule (checker error).
    if (!names.insert(t->name).second) return usage("tensor name '" + t->name + "' appears twice");
  }
  std::set<std::string_view> keys;
  for (const auto& [key, value] : model.metadata) {
    if (!keys.insert(key).second) return usage("metadata key '" + key + "' appears twice");
  }
  return ir;
}

// ---------------------------------------------------------------------------------------------
// The small messages, serialized by the protobuf library.

core::Result<std::string> serialize(const google::protobuf::MessageLite& message, std::string_view what) {
  std::string out;
  // Fails only for a message over 2 GiB: a name or metadata value that large.
  if (!message.SerializeToString(&out)) {
    return core::fail(ErrorCode::kLimitExceeded, 0, "cannot serialize the ONNX " + std::string(what));
  }
  return out;
}

/// ModelProto's fields other than the graph.
core::Result<std::string> model_head(const OutputModel& model, const WriteOptions& options, int ir_version) {
  onnx::ModelProto m;
  m.set_ir_version(ir_version);
  m.set_producer_name(std::string(kProducerName));
  m.set_producer_version(options.producer_version);
  auto* opset = m.add_opset_import();
  opset->set_domain("");
  opset->set_version(opset_for(ir_version));
  for (const auto& [key, value] : model.metadata) {
    auto* entry = m.add_metadata_props();
    entry->set_key(key);
    entry->set_value(value);
  }
  return serialize(m, "model");
}

/// One graph output: the tensor's name, element type and full static shape. A scalar gets an
/// empty shape (rank 0), not a missing one (unknown rank).
core::Result<std::string> graph_output(const Tensor& t) {
  onnx::GraphProto g;
  auto* out = g.add_output();
  out->set_name(t.name);
  auto* type = out->mutable_type()->mutable_tensor_type();
  type->set_elem_type(tensor::info(t.dtype).onnx);
  auto* shape = type->mutable_shape();
  for (const auto d : t.shape) shape->add_dim()->set_dim_value(d);
  // Serialized as part of a GraphProto, so the bytes are the complete output(12) field.
  return serialize(g, "graph output");
}

/// GraphProto's fields other than the initializers: name and outputs.
core::Result<std::string> graph_head(const OutputModel& model) {
  onnx::GraphProto g;
  g.set_name(std::string(kGraphName));
  BRINE_TRY_ASSIGN(std::string head, serialize(g, "graph"));
  for (const Tensor* t : model.tensors) {
    BRINE_TRY_ASSIGN(const std::string out, graph_output(*t));
    head += out;
  }
  return head;
}

/// Where one tensor's bytes live in the external data file.
struct ExternalRef {
  std::string location;  ///< the side file's name, relative to the model's directory
  std::uint64_t offset = 0;
};

/// TensorProto without raw_data: name, dims, data_type, and the external reference if any.
core::Result<std::string> tensor_header(const Tensor& t, const ExternalRef* external) {
  onnx::TensorProto p;
  p.set_name(t.name);
  for (const auto d : t.shape) p.add_dims(d);
  p.set_data_type(tensor::info(t.dtype).onnx);
  if (external != nullptr) {
    p.set_data_location(onnx::TensorProto::EXTERNAL);
    auto add = [&p](const std::string& key, const std::string& value) {
      auto* entry = p.add_external_data();
      entry->set_key(key);
      entry->set_value(value);
    };
    add("location", external->location);
    add("offset", std::to_string(external->offset));
    add("length", std::to_string(t.nbytes()));
  }
  return serialize(p, "tensor '" + t.name + "'");
}

// ---------------------------------------------------------------------------------------------
// The layout: every piece's size, known before the first byte is written.

struct TensorPlan {
  const Tensor* tensor = nullptr;
  std::string header;        ///< serialized TensorProto fields other than raw_data
  bool inline_data = false;  ///< raw_data(9) follows the header
  std::uint64_t offset = 0;  ///< in the side file, when external

  /// TensorProto payload length (the initializer field's length).
  [[nodiscard]] std::uint64_t proto_size() const {
    return header.size() + (inline_data ? field_size(onnx::TensorProto::kRawDataFieldNumber, tensor->nbytes()) : 0);
  }
};

struct Plan {
  std::string model_head;  ///< ModelProto fields other than graph
  std::string graph_head;  ///< GraphProto name and outputs
  std::vector<TensorPlan> tensors;
  bool external = false;
  std::uint64_t side_size = 0;  ///< bytes of the side file (0: none is written)

  [[nodiscard]] std::uint64_t graph_size() const {
    std::uint64_t n = graph_head.size();
    for (const auto& t : tensors) n += field_size(onnx::GraphProto::kInitializerFieldNumber, t.proto_size());
    return n;
  }
  [[nodiscard]] std::uint64_t model_size() const {
    return model_head.size() + field_size(onnx::ModelProto::kGraphFieldNumber, graph_size());
  }
};

/// Every tensor with data inline: zero-element tensors carry no data field at all, since onnx's
/// checker rejects a 0-element tensor that "contains data", even an empty raw_data.
core::Status plan_inline(Plan& plan, const OutputModel& model) {
  plan.tensors.clear();
  for (const Tensor* t : model.tensors) {
    BRINE_TRY_ASSIGN(std::string header, tensor_header(*t, nullptr));
    plan.tensors.push_back({t, std::move(header), t->numel() > 0, 0});
  }
  plan.external = false;
  plan.side_size = 0;
  return {};
}

std::uint64_t align_up(std::uint64_t n, std::uint64_t alignment) {
  return (n + alignment - 1) / alignment * alignment;
}

/// Every tensor with data goes to the side file at an aligned offset; the model keeps headers only.
core::Status plan_external(Plan& plan, const OutputModel& model, const std::string& location) {
  plan.tensors.clear();
  std::uint64_t end = 0;
  for (const Tensor* t : model.tensors) {
    const bool has_data = t->numel() > 0;
    ExternalRef ref{location, align_up(end, kExternalAlignment)};
    BRINE_TRY_ASSIGN(std::string header, tensor_header(*t, has_data ? &ref : nullptr));
    if (has_data) {
      if (__builtin_add_overflow(ref.offset, t->nbytes(), &end)) return usage("external data size overflows");
    }
    plan.tensors.push_back({t, std::move(header), false, ref.offset});
  }
  plan.external = true;
  plan.side_size = end;
  return {};
}

/// "<dir>/model.onnx" -> "model.onnx.data": the location is relative to the model's directory,
/// as the ONNX spec requires (an absolute or ../ path is refused by loaders).
std::string side_file_name(const std::string& path) {
  return std::filesystem::path(path).filename().string() + ".data";
}

core::Result<Plan> make_plan(const OutputModel& model, const std::string& path, const WriteOptions& options,
                             int ir_version) {
  Plan plan;
  BRINE_TRY_ASSIGN(plan.model_head, model_head(model, options, ir_version));
  BRINE_TRY_ASSIGN(plan.graph_head, graph_head(model));
  BRINE_TRY(plan_inline(plan, model));
  if (options.onnx_inline_limit == 0 || plan.model_size() > options.onnx_inline_limit) {
    BRINE_TRY(plan_external(plan, model, side_file_name(path)));
  }
  return plan;
}

// ---------------------------------------------------------------------------------------------
// Writing.

/// Forwards tensor bytes to an AtomicFile, refusing more than the length already written into
/// the enclosing prefixes: a mismatch would silently corrupt every later field.
class FileSink final : public tensor::ByteSink {
 public:
  FileSink(AtomicFile& file, std::uint64_t expected) : file_(file), remaining_(expected) {}

  core::Status write(core::Bytes bytes) override {
    if (bytes.size() > remaining_) return core::fail(ErrorCode::kIo, 0, "tensor produced more bytes than its size");
    remaining_ -= bytes.size();
    return file_.write(bytes);
  }
  [[nodiscard]] std::uint64_t remaining() const { return remaining_; }

 private:
  AtomicFile& file_;
  std::uint64_t remaining_;
};

core::Status write_tensor_bytes(AtomicFile& file, const Tensor& t) {
  FileSink sink(file, t.nbytes());
  BRINE_TRY(tensor::write_contiguous_le(t, sink));
  if (sink.remaining() != 0) {
    return core::fail(ErrorCode::kIo, t.offset, "tensor '" + t.name + "' produced fewer bytes than its size");
  }
  return {};
}

core::Status write_side_file(AtomicFile& side, const Plan& plan) {
  for (const auto& tp : plan.tensors) {
    if (tp.tensor->numel() == 0) continue;
    BRINE_TRY(side.write_zeros(tp.offset - side.written()));
    BRINE_TRY(write_tensor_bytes(side, *tp.tensor));
  }
  return {};
}

core::Status write_model_file(AtomicFile& file, const Plan& plan) {
  BRINE_TRY(file.write(plan.model_head));
  BRINE_TRY(file.write(field_prefix(onnx::ModelProto::kGraphFieldNumber, plan.graph_size())));
  BRINE_TRY(file.write(plan.graph_head));
  for (const auto& tp : plan.tensors) {
    BRINE_TRY(file.write(field_prefix(onnx::GraphProto::kInitializerFieldNumber, tp.proto_size())));
    BRINE_TRY(file.write(tp.header));
    if (!tp.inline_data) continue;
    BRINE_TRY(file.write(field_prefix(onnx::TensorProto::kRawDataFieldNumber, tp.tensor->nbytes())));
    BRINE_TRY(write_tensor_bytes(file, *tp.tensor));
  }
  if (file.written() != plan.model_size()) return core::fail(ErrorCode::kIo, 0, "ONNX model size mismatch");
  return {};
}

core::Status write_files(const Plan& plan, const std::string& path, const WriteOptions& options) {
  // Both files are created (and an existing output refused) before any tensor is written, and
  // both are complete before either is committed: a failure leaves neither behind. The side
  // file is committed first so that a model never refers to a missing one.
  std::optional<AtomicFile> side;
  if (plan.external && plan.side_size > 0) {
    BRINE_TRY_ASSIGN(AtomicFile f, AtomicFile::create(path + ".data", options.force));
    side.emplace(std::move(f));
  }
  BRINE_TRY_ASSIGN(AtomicFile model_file, AtomicFile::create(path, options.force));
  if (side) BRINE_TRY(write_side_file(*side, plan));
  BRINE_TRY(write_model_file(model_file, plan));
  if (side) BRINE_TRY(side->commit());
  return model_file.commit();
}

core::Status write_onnx_impl(const OutputModel& model, const std::string& path, const WriteOptions& options) {
  BRINE_TRY_ASSIGN(const int ir_version, check_model(model));
  BRINE_TRY_ASSIGN(const Plan plan, make_plan(model, path, options, ir_version));
  return write_files(plan, path, options);
}

}  // namespace

core::Status write_onnx(const OutputModel& model, const std::string& path, const WriteOptions& options) {
  // protobuf and std::string report allocation failure by throwing; errors leave this function
  // as values only.
  try {
    return write_onnx_impl(model, path, options);
  } catch (const std::exception& e) {
    return core::fail(ErrorCode::kIo, 0, std::string("writing ONNX ") + path + ": " + e.what());
  } catch (...) {
    return core::fail(ErrorCode::kIo, 0, "writing ONNX " + path + ": unknown error");
  }
}

}  // namespace brine::writer
