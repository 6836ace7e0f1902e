// write_onnx: the streamed ModelProto must parse back (with the protobuf library itself) into the
// model a runtime expects: initializers with exact bytes, matching graph outputs, metadata, no
// data on empty tensors, and the external-data layout.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "tensor/tensor.hpp"
#include "writer/output.hpp"

#ifndef ONNX_ML
#define ONNX_ML 1
#endif
#include <onnx/onnx_pb.h>

namespace {

namespace fs = std::filesystem;
using brine::tensor::DType;
using brine::tensor::Tensor;
using brine::writer::OutputModel;
using brine::writer::WriteOptions;
using brine::writer::write_onnx;

/// A directory of its own per test case, removed afterwards.
struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("brine-onnx-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] std::string file(const std::string& name) const { return (path / name).string(); }
};

/// A tensor over bytes the test owns: row-major strides unless given.
struct OwnedTensor {
  std::vector<std::uint8_t> bytes;
  Tensor t;

  OwnedTensor(std::string name, DType dtype, std::vector<std::int64_t> shape, std::vector<std::uint8_t> data)
      : bytes(std::move(data)) {
    t.name = std::move(name);
    t.dtype = dtype;
    t.shape = std::move(shape);
    t.strides.assign(t.shape.size(), 1);
    for (std::size_t i = t.shape.size(); i-- > 1;) t.strides[i - 1] = t.strides[i] * t.shape[i];
    t.storage = brine::core::Bytes(bytes.data(), bytes.size());
    t.storage_key = "test/" + t.name;
  }
  // t.storage points into bytes: never copied or moved once built.
  OwnedTensor(const OwnedTensor&) = delete;
  OwnedTensor& operator=(const OwnedTensor&) = delete;
};

/// `n` bytes counting up from `seed`: every tensor's bytes differ, so a misplaced one shows.
std::vector<std::uint8_t> pattern(std::size_t n, unsigned seed) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(seed + i * 7);
  return v;
}

std::vector<std::uint8_t> f32_le(std::initializer_list<float> values) {
  std::vector<std::uint8_t> out;
  for (const float f : values) {
    std::uint32_t bits = 0;
    std::memcpy(&bits, &f, sizeof bits);
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(bits >> (8 * i)));
  }
  return out;
}

std::string as_string(const std::vector<std::uint8_t>& v) { return {v.begin(), v.end()}; }

std::string read_file(const std::string& path) {
  // Sized read rather than istreambuf_iterator, which trips GCC 12's -Wnull-dereference.
  std::string out(fs::file_size(path), '\0');
  std::ifstream in(path, std::ios::binary);
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  REQUIRE(in.gcount() == static_cast<std::streamsize>(out.size()));
  return out;
}

onnx::ModelProto load(const std::string& path) {
  onnx::ModelProto m;
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  REQUIRE(m.ParseFromIstream(&in));
  return m;
}

std::string external_value(const onnx::TensorProto& p, const std::string& key) {
  for (const auto& e : p.external_data()) {
    if (e.key() == key) return e.value();
  }
  return {};
}

/// The sample model of the issue: several dtypes, a scalar, an empty tensor.
struct Sample {
  OwnedTensor f32{"fc.weight", DType::kF32, {2, 3}, f32_le({1, 2, 3, 4, 5, 6})};
  OwnedTensor f64{"scale", DType::kF64, {}, pattern(8, 1)};
  OwnedTensor i64{"steps", DType::kI64, {4}, pattern(32, 2)};
  OwnedTensor flags{"mask", DType::kBool, {5}, {1, 0, 1, 1, 0}};
  OwnedTensor f16{"half", DType::kF16, {3, 1}, pattern(6, 3)};
  OwnedTensor empty{"empty", DType::kF32, {0, 3}, {}};
  OwnedTensor bf16{"bf", DType::kBF16, {2, 2}, pattern(8, 4)};

  [[nodiscard]] std::vector<const OwnedTensor*> all() const { return {&f32, &f64, &i64, &flags, &f16, &empty, &bf16}; }
  [[nodiscard]] OutputModel model() const {
    OutputModel m;
    for (const auto* o : all()) m.tensors.push_back(&o->t);
    m.metadata = {{"format", "pt"}, {"brine.source", "model.pt"}, {"a", "last"}};
    return m;
  }
};

void check_outputs(const onnx::GraphProto& g, const std::vector<const OwnedTensor*>& tensors) {
  REQUIRE(g.output_size() == static_cast<int>(tensors.size()));
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i]->t;
    const auto& out = g.output(static_cast<int>(i));
    CHECK(out.name() == t.name);
    REQUIRE(out.type().has_tensor_type());
    CHECK(out.type().tensor_type().elem_type() == brine::tensor::info(t.dtype).onnx);
    // A scalar has a rank-0 shape, not a missing (unknown-rank) one.
    REQUIRE(out.type().tensor_type().has_shape());
    const auto& shape = out.type().tensor_type().shape();
    REQUIRE(shape.dim_size() == static_cast<int>(t.shape.size()));
    for (std::size_t d = 0; d < t.shape.size(); ++d) CHECK(shape.dim(static_cast<int>(d)).dim_value() == t.shape[d]);
  }
}

void check_header(const onnx::TensorProto& p, const Tensor& t) {
  CHECK(p.name() == t.name);
  CHECK(p.data_type() == brine::tensor::info(t.dtype).onnx);
  REQUIRE(p.dims_size() == static_cast<int>(t.shape.size()));
  for (std::size_t d = 0; d < t.shape.size(); ++d) CHECK(p.dims(static_cast<int>(d)) == t.shape[d]);
}

}  // namespace

TEST_CASE("onnx: inline model parses back with exact bytes, outputs and metadata") {
  TempDir dir;
  Sample s;
  WriteOptions options;
  options.producer_version = "9.8.7";
  const std::string path = dir.file("model.onnx");
  REQUIRE(write_onnx(s.model(), path, options));
  CHECK_FALSE(fs::exists(path + ".data"));

  const onnx::ModelProto m = load(path);
  CHECK(m.ir_version() == 8);
  REQUIRE(m.opset_import_size() == 1);
  CHECK(m.opset_import(0).domain().empty());
  CHECK(m.opset_import(0).version() == 13);
  CHECK(m.producer_name() == "brine");
  CHECK(m.producer_version() == "9.8.7");

  REQUIRE(m.metadata_props_size() == 3);
  CHECK(m.metadata_props(0).key() == "format");
  CHECK(m.metadata_props(0).value() == "pt");
  CHECK(m.metadata_props(1).key() == "brine.source");
  CHECK(m.metadata_props(2).key() == "a");
  CHECK(m.metadata_props(2).value() == "last");

  const auto& g = m.graph();
  CHECK(g.name() == "brine_sanitized");
  CHECK(g.node_size() == 0);
  CHECK(g.input_size() == 0);
  const auto all = s.all();
  REQUIRE(g.initializer_size() == static_cast<int>(all.size()));
  for (std::size_t i = 0; i < all.size(); ++i) {
    const auto& p = g.initializer(static_cast<int>(i));
    check_header(p, all[i]->t);
    CHECK(p.data_location() == onnx::TensorProto::DEFAULT);
    CHECK(p.external_data_size() == 0);
    if (all[i]->t.numel() == 0) {
      // onnx's checker rejects a 0-element tensor with any data field, even an empty one.
      CHECK_FALSE(p.has_raw_data());
    } else {
      REQUIRE(p.has_raw_data());
      CHECK(p.raw_data() == as_string(all[i]->bytes));
    }
  }
  check_outputs(g, all);

  // protobuf re-serializes the parsed model (in field-number order) to exactly the streamed
  // file's size: no stray or missing bytes around the hand-written length prefixes.
  std::string reserialized;
  REQUIRE(m.SerializeToString(&reserialized));
  CHECK(reserialized.size() == read_file(path).size());
}

TEST_CASE("onnx: a non-contiguous view is written row-major") {
  TempDir dir;
  // Storage holds a 3x2 matrix; the tensor is its 2x3 transpose.
  OwnedTensor o{"t", DType::kF32, {2, 3}, f32_le({1, 2, 3, 4, 5, 6})};
  o.t.strides = {1, 2};
  OutputModel model;
  model.tensors = {&o.t};
  const std::string path = dir.file("t.onnx");
  REQUIRE(write_onnx(model, path, {}));
  const auto m = load(path);
  REQUIRE(m.graph().initializer_size() == 1);
  CHECK(m.graph().initializer(0).raw_data() == as_string(f32_le({1, 3, 5, 2, 4, 6})));
}

TEST_CASE("onnx: external data layout") {
  TempDir dir;
  Sample s;
  WriteOptions options;
  options.onnx_inline_limit = 0;  // forces external data
  const std::string path = dir.file("ext.onnx");
  REQUIRE(write_onnx(s.model(), path, options));
  REQUIRE(fs::exists(path + ".data"));
  const std::string side = read_file(path + ".data");

  const auto m = load(path);
  const auto all = s.all();
  REQUIRE(m.graph().initializer_size() == static_cast<int>(all.size()));
  std::uint64_t end = 0;
  for (std::size_t i = 0; i < all.size(); ++i) {
    const auto& p = m.graph().initializer(static_cast<int>(i));
    const Tensor& t = all[i]->t;
    check_header(p, t);
    CHECK_FALSE(p.has_raw_data());
    if (t.numel() == 0) {
      CHECK(p.data_location() == onnx::TensorProto::DEFAULT);
      CHECK(p.external_data_size() == 0);
      continue;
    }
    CHECK(p.data_location() == onnx::TensorProto::EXTERNAL);
    // Relative to the model's directory: just the side file's name.
    CHECK(external_value(p, "location") == "ext.onnx.data");
    const std::uint64_t offset = std::stoull(external_value(p, "offset"));
    const std::uint64_t length = std::stoull(external_value(p, "length"));
    CHECK(offset % 4096 == 0);
    CHECK(offset >= end);
    CHECK(length == all[i]->bytes.size());
    REQUIRE(offset + length <= side.size());
    CHECK(side.substr(offset, length) == as_string(all[i]->bytes));
    // The gap before each tensor is zero padding.
    CHECK(side.substr(end, offset - end) == std::string(offset - end, '\0'));
    end = offset + length;
  }
  CHECK(side.size() == end);
  check_outputs(m.graph(), all);
  CHECK(m.metadata_props_size() == 3);
}

TEST_CASE("onnx: external data only when the inline model would exceed the limit") {
  OwnedTensor big{"big", DType::kU8, {1000}, pattern(1000, 9)};
  OwnedTensor small{"small", DType::kI32, {2}, pattern(8, 5)};
  OutputModel model;
  model.tensors = {&big.t, &small.t};

  SUBCASE("over the limit") {
    TempDir dir;
    WriteOptions options;
    options.onnx_inline_limit = 500;
    const std::string path = dir.file("m.onnx");
    REQUIRE(write_onnx(model, path, options));
    REQUIRE(fs::exists(path + ".data"));
    const auto m = load(path);
    CHECK(m.graph().initializer(0).data_location() == onnx::TensorProto::EXTERNAL);
    CHECK(m.graph().initializer(1).data_location() == onnx::TensorProto::EXTERNAL);
    CHECK(external_value(m.graph().initializer(1), "offset") == "4096");
    CHECK(fs::file_size(path + ".data") == 4096 + 8);
  }
  SUBCASE("under the limit") {
    TempDir dir;
    WriteOptions options;
    options.onnx_inline_limit = 5000;
    const std::string path = dir.file("m.onnx");
    REQUIRE(write_onnx(model, path, options));
    CHECK_FALSE(fs::exists(path + ".data"));
    const auto m = load(path);
    CHECK(m.graph().initializer(0).raw_data() == as_string(big.bytes));
    CHECK(fs::file_size(path) <= 5000);
  }
}

TEST_CASE("onnx: a dtype without an ONNX type is refused before any file exists") {
  TempDir dir;
  OwnedTensor ok{"ok", DType::kF32, {1}, f32_le({1})};
  OwnedTensor c32{"z", DType::kC32, {2}, pattern(8, 0)};
  OutputModel model;
  model.tensors = {&ok.t, &c32.t};
  const std::string path = dir.file("bad.onnx");
  const auto r = write_onnx(model, path, {});
  REQUIRE_FALSE(r);
  CHECK(r.error().code == brine::core::ErrorCode::kUsage);
  CHECK(r.error().detail == "tensor 'z': dtype complex32 has no ONNX type");
  CHECK(fs::is_empty(dir.path));
}

TEST_CASE("onnx: IR and opset follow the newest dtype present") {
  TempDir dir;
  OwnedTensor f32{"a", DType::kF32, {1}, f32_le({1})};
  OwnedTensor f8{"b", DType::kF8E4M3FN, {3}, pattern(3, 1)};
  OwnedTensor e8m0{"c", DType::kF8E8M0, {2}, pattern(2, 2)};

  OutputModel fp8;
  fp8.tensors = {&f32.t, &f8.t};
  REQUIRE(write_onnx(fp8, dir.file("fp8.onnx"), {}));
  const auto m9 = load(dir.file("fp8.onnx"));
  CHECK(m9.ir_version() == 9);
  CHECK(m9.opset_import(0).version() == 19);
  CHECK(m9.graph().initializer(1).data_type() == 17);

  OutputModel e8;
  e8.tensors = {&f8.t, &e8m0.t};
  REQUIRE(write_onnx(e8, dir.file("e8m0.onnx"), {}));
  const auto m12 = load(dir.file("e8m0.onnx"));
  CHECK(m12.ir_version() == 12);
  CHECK(m12.graph().initializer(1).data_type() == 24);
  CHECK(m12.graph().initializer(1).raw_data() == as_string(e8m0.bytes));
}

TEST_CASE("onnx: an existing output is replaced only with force") {
  TempDir dir;
  OwnedTensor o{"w", DType::kI8, {3}, {1, 2, 3}};
  OutputModel model;
  model.tensors = {&o.t};
  const std::string path = dir.file("m.onnx");
  { std::ofstream(path) << "old"; }

  const auto refused = write_onnx(model, path, {});
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == brine::core::ErrorCode::kIo);
  CHECK(read_file(path) == "old");

  WriteOptions options;
  options.force = true;
  REQUIRE(write_onnx(model, path, options));
  CHECK(load(path).graph().initializer(0).raw_data() == as_string(o.bytes));
  // Only the output remains: no temporary left behind.
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);
}

TEST_CASE("onnx: duplicate tensor names are refused") {
  TempDir dir;
  OwnedTensor a{"w", DType::kI8, {1}, {1}};
  OwnedTensor b{"w", DType::kI8, {1}, {2}};
  OutputModel model;
  model.tensors = {&a.t, &b.t};
  const auto r = write_onnx(model, dir.file("d.onnx"), {});
  REQUIRE_FALSE(r);
  CHECK(r.error().code == brine::core::ErrorCode::kUsage);
  CHECK(fs::is_empty(dir.path));
}
