// ONNX output: a ModelProto with no nodes whose graph initializers are the tensors, each also a
// graph output, so that a runtime loads it and returns every tensor from run({}).
//
// The tensor bytes are never assembled into one message: protobuf would need the whole model
// (up to 2 GiB, or more with external data) in memory, twice. Everything is written as wire format
// by brine (writer/protobuf_wire.hpp explains why not libprotobuf), the big length-delimited
// parts (TensorProto.raw_data and the initializer/graph fields that enclose it) streamed. Every
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

#include "writer/protobuf_wire.hpp"

namespace brine::writer {

namespace {

using core::ErrorCode;
using tensor::Tensor;

constexpr std::string_view kGraphName = "brine_sanitized";
constexpr std::string_view kProducerName = "brine";
/// The external data file's tensors start at multiples of this: lets a runtime mmap each one
/// page-aligned (onnx's own save_model uses 4096 too).
constexpr std::uint64_t kExternalAlignment = 4096;

using wire::field_prefix;
using wire::field_size;

// Field numbers, from onnx.proto (they never change: protobuf compatibility).
namespace field {
constexpr std::uint32_t kModelIrVersion = 1, kModelProducerName = 2, kModelProducerVersion = 3, kModelGraph = 7,
                        kModelOpsetImport = 8, kModelMetadataProps = 14;
constexpr std::uint32_t kOpsetDomain = 1, kOpsetVersion = 2;
constexpr std::uint32_t kEntryKey = 1, kEntryValue = 2;
constexpr std::uint32_t kGraphName = 2, kGraphInitializer = 5, kGraphOutput = 12;
constexpr std::uint32_t kValueInfoName = 1, kValueInfoType = 2;
constexpr std::uint32_t kTypeTensorType = 1, kTensorTypeElemType = 1, kTensorTypeShape = 2;
constexpr std::uint32_t kShapeDim = 1, kDimValue = 1;
constexpr std::uint32_t kTensorDims = 1, kTensorDataType = 2, kTensorName = 8, kTensorRawData = 9, kTensorExternalData = 13,
                        kTensorDataLocation = 14;
constexpr std::int64_t kDataLocationExternal = 1;
}  // namespace field

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
// The small messages.

std::string string_entry(const std::string& key, const std::string& value) {
  std::string e;
  wire::bytes_field(e, field::kEntryKey, key);
  wire::bytes_field(e, field::kEntryValue, value);
  return e;
}

/// ModelProto's fields other than the graph.
core::Result<std::string> model_head(const OutputModel& model, const WriteOptions& options, int ir_version) {
  std::string m;
  wire::int_field(m, field::kModelIrVersion, ir_version);
  wire::bytes_field(m, field::kModelProducerName, kProducerName);
  if (!options.producer_version.empty()) wire::bytes_field(m, field::kModelProducerVersion, options.producer_version);
  std::string opset;
  wire::bytes_field(opset, field::kOpsetDomain, "");
  wire::int_field(opset, field::kOpsetVersion, opset_for(ir_version));
  wire::bytes_field(m, field::kModelOpsetImport, opset);
  for (const auto& [key, value] : model.metadata) wire::bytes_field(m, field::kModelMetadataProps, string_entry(key, value));
  return m;
}

/// One graph output (the complete output(12) field): the tensor's name, element type and full
/// static shape. A scalar gets an empty shape (rank 0), not a missing one (unknown rank).
std::string graph_output(const Tensor& t) {
  std::string shape;
  for (const auto d : t.shape) {
    std::string dim;
    wire::int_field(dim, field::kDimValue, d);
    wire::bytes_field(shape, field::kShapeDim, dim);
  }
  std::string tensor_type;
  wire::int_field(tensor_type, field::kTensorTypeElemType, tensor::info(t.dtype).onnx);
  wire::bytes_field(tensor_type, field::kTensorTypeShape, shape);
  std::string type;
  wire::bytes_field(type, field::kTypeTensorType, tensor_type);
  std::string value_info;
  wire::bytes_field(value_info, field::kValueInfoName, t.name);
  wire::bytes_field(value_info, field::kValueInfoType, type);
  std::string out;
  wire::bytes_field(out, field::kGraphOutput, value_info);
  return out;
}

/// GraphProto's fields other than the initializers: name and outputs.
core::Result<std::string> graph_head(const OutputModel& model) {
  std::string head;
  wire::bytes_field(head, field::kGraphName, kGraphName);
  for (const Tensor* t : model.tensors) head += graph_output(*t);
  return head;
}

/// Where one tensor's bytes live in the external data file.
struct ExternalRef {
  std::string location;  ///< the side file's name, relative to the model's directory
  std::uint64_t offset = 0;
};

/// TensorProto without raw_data: dims, data_type, name, and the external reference if any.
core::Result<std::string> tensor_header(const Tensor& t, const ExternalRef* external) {
  std::string p;
  // onnx.proto is proto2: repeated scalars are unpacked, one tag per dim.
  for (const auto d : t.shape) wire::int_field(p, field::kTensorDims, d);
  wire::int_field(p, field::kTensorDataType, tensor::info(t.dtype).onnx);
  wire::bytes_field(p, field::kTensorName, t.name);
  if (external != nullptr) {
    wire::bytes_field(p, field::kTensorExternalData, string_entry("location", external->location));
    wire::bytes_field(p, field::kTensorExternalData, string_entry("offset", std::to_string(external->offset)));
    wire::bytes_field(p, field::kTensorExternalData, string_entry("length", std::to_string(t.nbytes())));
    wire::int_field(p, field::kTensorDataLocation, field::kDataLocationExternal);
  }
  return p;
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
    return header.size() + (inline_data ? field_size(field::kTensorRawData, tensor->nbytes()) : 0);
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
    for (const auto& t : tensors) n += field_size(field::kGraphInitializer, t.proto_size());
    return n;
  }
  [[nodiscard]] std::uint64_t model_size() const {
    return model_head.size() + field_size(field::kModelGraph, graph_size());
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
  core::Result<std::uint64_t> copy_from_file(int fd, std::uint64_t offset, std::uint64_t n) override {
    if (n > remaining_) return core::fail(ErrorCode::kIo, 0, "tensor produced more bytes than its size");
    BRINE_TRY_ASSIGN(const std::uint64_t copied, file_.copy_from_file(fd, offset, n));
    remaining_ -= copied;
    return copied;
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
  BRINE_TRY(file.write(field_prefix(field::kModelGraph, plan.graph_size())));
  BRINE_TRY(file.write(plan.graph_head));
  for (const auto& tp : plan.tensors) {
    BRINE_TRY(file.write(field_prefix(field::kGraphInitializer, tp.proto_size())));
    BRINE_TRY(file.write(tp.header));
    if (!tp.inline_data) continue;
    BRINE_TRY(file.write(field_prefix(field::kTensorRawData, tp.tensor->nbytes())));
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
