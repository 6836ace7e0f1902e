// Tensor views, byte order, the safetensors writer and extraction from hand-made pickles.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "helpers.hpp"
#include "sanitize/extract.hpp"
#include "sanitize/verify.hpp"
#include "tensor/tensor.hpp"
#include "writer/output.hpp"

using namespace brine;
using tensor::DType;
using tensor::Tensor;

namespace {

class VectorSink : public tensor::ByteSink {
 public:
  core::Status write(core::Bytes b) override {
    out.insert(out.end(), b.begin(), b.end());
    return {};
  }
  std::vector<std::uint8_t> out;
};

std::vector<std::uint8_t> materialize(const Tensor& t) {
  VectorSink sink;
  REQUIRE(tensor::check_bounds(t));
  REQUIRE(tensor::write_contiguous_le(t, sink));
  return sink.out;
}

std::vector<float> floats(const std::vector<std::uint8_t>& b) {
  std::vector<float> f(b.size() / 4);
  std::memcpy(f.data(), b.data(), b.size());
  return f;
}

Tensor f32_view(const std::vector<float>& storage, std::vector<std::int64_t> shape, std::vector<std::int64_t> strides, std::int64_t offset) {
  Tensor t;
  t.name = "t";
  t.dtype = DType::kF32;
  t.storage = core::Bytes(reinterpret_cast<const std::uint8_t*>(storage.data()), storage.size() * 4);
  t.shape = std::move(shape);
  t.strides = std::move(strides);
  t.storage_offset = offset;
  return t;
}

std::string temp_path(const char* name) { return (std::filesystem::temp_directory_path() / name).string(); }

}  // namespace

TEST_CASE("views are written as contiguous row-major copies") {
  const std::vector<float> s{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  CHECK(floats(materialize(f32_view(s, {2, 3}, {3, 1}, 2))) == std::vector<float>{2, 3, 4, 5, 6, 7});   // offset
  CHECK(floats(materialize(f32_view(s, {3, 2}, {1, 3}, 0))) == std::vector<float>{0, 3, 1, 4, 2, 5});   // transpose
  CHECK(floats(materialize(f32_view(s, {4}, {3}, 1))) == std::vector<float>{1, 4, 7, 10});               // step
  CHECK(floats(materialize(f32_view(s, {2, 2}, {0, 0}, 5))) == std::vector<float>{5, 5, 5, 5});          // expand
  CHECK(floats(materialize(f32_view(s, {}, {}, 11))) == std::vector<float>{11});                         // scalar
  CHECK(materialize(f32_view(s, {0, 3}, {3, 1}, 0)).empty());                                            // zero-size
  CHECK(f32_view(s, {2, 3}, {3, 1}, 0).is_plain_contiguous());
  CHECK_FALSE(f32_view(s, {3, 2}, {1, 3}, 0).is_plain_contiguous());
}

TEST_CASE("a view that reads past its storage is refused, including by overflow") {
  const std::vector<float> s(12);
  CHECK_FALSE(tensor::check_bounds(f32_view(s, {2, 3}, {3, 1}, 7)));
  CHECK(tensor::check_bounds(f32_view(s, {2, 3}, {3, 1}, 6)));
  CHECK_FALSE(tensor::check_bounds(f32_view(s, {2}, {INT64_MAX / 2}, 0)));
  CHECK_FALSE(tensor::check_bounds(f32_view(s, {INT64_MAX, INT64_MAX}, {1, 1}, 0)));
  CHECK_FALSE(tensor::check_bounds(f32_view(s, {2}, {-1}, 4)));
  CHECK_FALSE(tensor::check_bounds(f32_view(s, {2}, {1}, -1)));
  CHECK(tensor::check_bounds(f32_view(s, {0, 100000}, {100000, 1}, 0)));  // empty: reads nothing
}

TEST_CASE("big-endian storages are swapped per element, complex per component; conj and neg applied") {
  // complex64 big-endian: (1.0f, 2.0f) as two big-endian floats.
  const std::vector<std::uint8_t> be{0x3f, 0x80, 0, 0, 0x40, 0, 0, 0};
  Tensor t;
  t.name = "c";
  t.dtype = DType::kC64;
  t.storage = core::Bytes(be);
  t.shape = {1};
  t.strides = {1};
  t.big_endian = true;
  auto f = floats(materialize(t));
  CHECK(f == std::vector<float>{1.0f, 2.0f});
  t.conj = true;
  CHECK(floats(materialize(t)) == std::vector<float>{1.0f, -2.0f});
  t.neg = true;
  CHECK(floats(materialize(t)) == std::vector<float>{-1.0f, 2.0f});
  // int16 neg: two's complement.
  const std::vector<std::uint8_t> i16{5, 0, 0, 0x80};
  Tensor n;
  n.dtype = DType::kI16;
  n.storage = core::Bytes(i16);
  n.shape = {2};
  n.strides = {1};
  n.neg = true;
  auto out = materialize(n);
  CHECK(out == std::vector<std::uint8_t>{0xfb, 0xff, 0x00, 0x80});  // -5, and -(-32768) wraps as torch does
}

TEST_CASE("a non-contiguous tensor larger than the staging buffer is written correctly") {
  std::vector<float> s(600 * 1000);
  for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<float>(i);
  auto out = floats(materialize(f32_view(s, {1000, 600}, {1, 1000}, 0)));  // transpose of 600x1000
  REQUIRE(out.size() == 600000);
  CHECK(out[0] == 0);
  CHECK(out[1] == 1000);
  CHECK(out[600] == 1);
  CHECK(out[599999] == 599999);
}

TEST_CASE("safetensors output follows the format: header size, padding, order, offsets to EOF") {
  const std::vector<float> f{1, 2, 3};
  const std::vector<std::uint8_t> u{7};
  Tensor a = f32_view(f, {3}, {1}, 0);
  a.name = "b.weight";
  Tensor b;
  b.name = "a.flag";
  b.dtype = DType::kU8;
  b.storage = core::Bytes(u);
  b.shape = {};
  b.strides = {};
  writer::OutputModel m;
  m.tensors = {&b, &a};
  m.metadata = {{"format", "pt"}, {"epoch", "3"}};
  const auto path = temp_path("brine_unit.safetensors");
  std::filesystem::remove(path);
  REQUIRE(writer::write_safetensors(m, path, {}));
  CHECK_FALSE(writer::write_safetensors(m, path, {}));  // exists, no force
  std::string file(std::filesystem::file_size(path), '\0');
  {
    std::FILE* fp = std::fopen(path.c_str(), "rb");
    REQUIRE(fp != nullptr);
    REQUIRE(std::fread(file.data(), 1, file.size(), fp) == file.size());
    std::fclose(fp);
  }
  std::uint64_t n = 0;
  std::memcpy(&n, file.data(), 8);
  CHECK(n % 8 == 0);
  const std::string header = file.substr(8, n);
  CHECK(header.starts_with(R"({"__metadata__":{"format":"pt","epoch":"3"},"b.weight":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"a.flag":{"dtype":"U8","shape":[],"data_offsets":[12,13]}})"));
  CHECK(file.size() == 8 + n + 13);
  CHECK(static_cast<std::uint8_t>(file.back()) == 7);
  CHECK(sanitize::verify_safetensors(m, path));
  // A byte changed on disk is caught by verify.
  {
    std::FILE* fp = std::fopen(path.c_str(), "r+b");
    REQUIRE(fp != nullptr);
    std::fseek(fp, static_cast<long>(8 + n), SEEK_SET);
    std::fputc(1, fp);
    std::fclose(fp);
  }
  CHECK_FALSE(sanitize::verify_safetensors(m, path));
  std::filesystem::remove(path);
}

TEST_CASE("safetensors refuses a dtype it has no type for, naming the tensor, and writes nothing") {
  const std::vector<std::uint8_t> bytes(16);
  Tensor c;
  c.name = "z";
  c.dtype = DType::kC128;
  c.storage = core::Bytes(bytes);
  c.shape = {1};
  c.strides = {1};
  writer::OutputModel m;
  m.tensors = {&c};
  const auto path = temp_path("brine_unit_c128.safetensors");
  std::filesystem::remove(path);
  auto r = writer::write_safetensors(m, path, {});
  REQUIRE_FALSE(r);
  CHECK(r.error().detail.find("'z'") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(path));
}

namespace {
// torch.save-like data.pkl: {'w': _rebuild_tensor_v2(storage '0' of 6 floats, 0, (2,3), (3,1)),
// 'tied': <memo of w>, 'epoch': 7, 'evil': os.system('x')}
std::string dict_pickle() {
  std::string p(test::lit("\x80\x02}q\x00(X\x01\x00\x00\x00wq\x01" "ctorch._utils\n_rebuild_tensor_v2\nq\x02("));
  p += test::lit("(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x06tQ");
  p += test::lit("K\x00K\x02K\x03\x86K\x03K\x01\x86\x89" "ccollections\nOrderedDict\n)RtRq\x03");
  p += test::lit("X\x04\x00\x00\x00tiedh\x03");
  p += test::lit("X\x05\x00\x00\x00" "epochK\x07");
  p += test::lit("X\x04\x00\x00\x00" "evilcos\nsystem\nX\x01\x00\x00\x00x\x85R");
  p += test::lit("u.");
  return p;
}
}  // namespace

TEST_CASE("extraction names tensors by path, keeps leaves, drops the payload, and resolves storages") {
  const std::string data = dict_pickle();
  auto run = test::run(data);
  INFO((run.error ? run.error->describe() : std::string()));
  REQUIRE(run.stopped);
  auto rules = test::builtin_rules();
  std::vector<float> storage{0, 1, 2, 3, 4, 5};
  sanitize::PickleInput in;
  in.run = &run;
  in.member = "archive/data.pkl";
  in.storages = [&](std::string_view key) -> core::Result<sanitize::StorageData> {
    if (key != "0") return core::fail(core::ErrorCode::kContainer, 0, "missing");
    return sanitize::StorageData{core::Bytes(reinterpret_cast<const std::uint8_t*>(storage.data()), 24), "archive/data/0", false};
  };
  sanitize::Extraction ex;
  sanitize::extract(in, *rules, {}, ex);
  REQUIRE(ex.tensors.size() == 2);
  CHECK(ex.tensors[0].name == "w");
  CHECK(ex.tensors[1].name == "tied");
  CHECK(ex.tensors[0].shape == std::vector<std::int64_t>{2, 3});
  CHECK(ex.tensors[0].storage_key == ex.tensors[1].storage_key);
  REQUIRE(ex.leaves.size() == 1);
  CHECK(ex.leaves[0].name == "epoch");
  CHECK(ex.leaves[0].json == "7");
  REQUIRE(ex.dropped.size() == 1);
  CHECK(ex.dropped[0].name == "evil");
  CHECK(ex.dropped[0].reason.find("denied") != std::string::npos);
}

TEST_CASE("a storage record shorter than its persistent id claims drops the tensor instead of reading past it") {
  const std::string data = dict_pickle();
  auto run = test::run(data);
  auto rules = test::builtin_rules();
  std::vector<float> storage{0, 1, 2};  // 12 bytes, the pid says 6 floats
  sanitize::PickleInput in;
  in.run = &run;
  in.storages = [&](std::string_view) -> core::Result<sanitize::StorageData> {
    return sanitize::StorageData{core::Bytes(reinterpret_cast<const std::uint8_t*>(storage.data()), 12), "archive/data/0", false};
  };
  sanitize::Extraction ex;
  sanitize::extract(in, *rules, {}, ex);
  CHECK(ex.tensors.empty());
  CHECK(ex.dropped.size() == 3);
}

// ---- deep but small pickles: the walks must not use the thread's stack for the input's nesting.
namespace {
std::string u32le(std::uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}
sanitize::Extraction extract_plain(const pickle::PickleRun& run, const core::Limits& limits = {}) {
  auto rules = test::builtin_rules();
  sanitize::PickleInput in;
  in.run = &run;
  in.salvage = true;
  sanitize::Extraction ex;
  sanitize::extract(in, *rules, limits, ex);
  return ex;
}
}  // namespace

TEST_CASE("a million nested bytes(bytes(...)) calls are one metadata value, read without recursion") {
  // {'b': bytes(bytes(...(b'x')))}: the global is memoized, so each level costs 4 bytes.
  constexpr int kDepth = 1'000'000;
  std::string p(test::lit("\x80\x02}X\x01\x00\x00\x00" "bcbuiltins\nbytes\nr\x00\x00\x00\x00"));
  for (int i = 1; i < kDepth; ++i) p += test::lit("j\x00\x00\x00\x00");
  p += test::lit("C\x01x");
  for (int i = 0; i < kDepth; ++i) p += test::lit("\x85R");
  p += test::lit("s.");
  auto run = test::run(p);
  INFO((run.error ? run.error->describe() : std::string()));
  REQUIRE(run.stopped);
  const auto ex = extract_plain(run);
  REQUIRE(ex.leaves.size() == 1);
  CHECK(ex.leaves[0].name == "b");
  CHECK(ex.leaves[0].json == R"({"bytes":"78"})");
}

TEST_CASE("dict keys named by keys nested a million deep are named without recursion and within the depth limit") {
  // k0 = frozenset(); k(i) = builtins.set(({k(i-1): 1},)); root = {k(n): 2}. Naming a key walks
  // the JSON of the key, whose dict is named by its own key, and so on.
  constexpr std::uint32_t kDepth = 1'000'000;
  std::string p(test::lit("\x80\x02" "cbuiltins\nset\nr\x00\x00\x00\x00" "0" "cbuiltins\nfrozenset\n)Rr\x01\x00\x00\x00" "0"));
  for (std::uint32_t i = 1; i <= kDepth; ++i) {
    p += "j" + u32le(0) + "}j" + u32le(i) + "K\x01s\x85R" + "r" + u32le(i + 1) + "0";
  }
  p += "}j" + u32le(kDepth + 1) + "K\x02s.";
  core::Limits limits;
  limits.max_memo_entries = 4 * kDepth;
  auto run = test::run(p, limits);
  INFO((run.error ? run.error->describe() : std::string()));
  REQUIRE(run.stopped);
  const auto ex = extract_plain(run);
  REQUIRE(ex.leaves.size() == 1);
  CHECK(ex.leaves[0].json == "2");
  // The outermost levels are named by their JSON; past max_metadata_depth (or past the size of a
  // metadata value: each level escapes the quotes of the one inside), a positional name.
  CHECK(ex.leaves[0].name.starts_with("{\"{\\\"{"));
  INFO(ex.leaves[0].name.substr(0, 300));
  CHECK(ex.leaves[0].name.find("<object@") != std::string::npos);
}

TEST_CASE("the sanitize walk's caps are limits: a chain deeper than the default walk depth is walked when raised") {
  // _rebuild_parameter(_rebuild_parameter(...(1))) 100,000 deep: each level is one walk level.
  constexpr int kDepth = 100'000;
  std::string p(test::lit("\x80\x02" "ctorch._utils\n_rebuild_parameter\nr\x00\x00\x00\x00"));
  for (int i = 1; i < kDepth; ++i) p += test::lit("j\x00\x00\x00\x00");
  p += test::lit("K\x07");
  for (int i = 0; i < kDepth; ++i) p += test::lit("\x85R");
  p += test::lit(".");
  auto run = test::run(p);
  REQUIRE(run.stopped);
  SUBCASE("default: past max_walk_depth the value is dropped") {
    const auto ex = extract_plain(run);
    CHECK(ex.leaves.empty());
    REQUIRE(ex.dropped.size() == 1);
    CHECK(ex.dropped[0].reason.find("too large or too deep") != std::string::npos);
  }
  SUBCASE("raised: the leaf at the bottom is reached") {
    core::Limits limits;
    limits.max_walk_depth = 2 * kDepth;
    limits.max_nesting = 2 * kDepth;
    const auto ex = extract_plain(run, limits);
    REQUIRE(ex.leaves.size() == 1);
    CHECK(ex.leaves[0].json == "7");
  }
}
