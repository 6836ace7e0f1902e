// AtomicFile's O_DIRECT path: the output is the same bytes whether it is written directly, through
// the buffered path because O_DIRECT was refused when turned on, or because a direct write was
// refused (EINVAL) at the start or midway. The refusals are injected through writer::DirectIo.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/mapped_file.hpp"
#include "tensor/tensor.hpp"
#include "writer/atomic_file.hpp"
#include "writer/output.hpp"

using namespace brine;

namespace {

std::string temp_path(const char* name) { return (std::filesystem::temp_directory_path() / name).string(); }

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string pattern(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 2654435761u + seed) >> 13);
  return s;
}

// What the injected calls saw. Plain globals: DirectIo holds function pointers.
int g_enables = 0, g_enabled = 0, g_writes = 0, g_fail_from_write = -1, g_max_write = 0;
std::vector<std::size_t> g_write_sizes;

void reset(int fail_from_write, int max_write = 0) {
  g_enables = g_enabled = g_writes = 0;
  g_fail_from_write = fail_from_write;
  g_max_write = max_write;
  g_write_sizes.clear();
}

int refuse_enable(int) {
  ++g_enables;
  errno = EINVAL;
  return -1;
}

int real_enable(int fd) {
  ++g_enables;
  const int r = writer::system_direct_io().enable(fd);
  if (r == 0) ++g_enabled;
  return r;
}

/// The real pwrite, except that write number `g_fail_from_write` and later fail with EINVAL, and
/// writes are cut to `g_max_write` bytes when set (a short direct write of whole blocks).
ssize_t scripted_pwrite(int fd, const void* data, std::size_t n, off_t at) {
  const int k = g_writes++;
  if (g_fail_from_write >= 0 && k >= g_fail_from_write) {
    errno = EINVAL;
    return -1;
  }
  if (g_max_write > 0 && n > static_cast<std::size_t>(g_max_write)) n = static_cast<std::size_t>(g_max_write);
  g_write_sizes.push_back(n);
  return ::pwrite(fd, data, n, at);
}

constexpr writer::DirectIo kRefuseEnable{refuse_enable, scripted_pwrite};
constexpr writer::DirectIo kScripted{real_enable, scripted_pwrite};

/// A safetensors-like mix: small header writes, then file ranges at unaligned offsets that cross
/// stage boundaries, writes between them, and a tail that ends off a block. Returns the
/// bytes the file must hold; `direct` says whether it was still writing directly at the end.
std::string write_mix(const std::string& out, const std::string& src_path, const std::string& src,
                      const writer::DirectIo* io, bool& direct) {
  std::filesystem::remove(out);
  std::string expected;
  auto f = writer::AtomicFile::create(out, false, io);
  REQUIRE(f);
  const int fd = ::open(src_path.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  const std::string head = "\x08\x00\x00\x00\x00\x00\x00\x00{\"a\":1}";
  REQUIRE(f->write(std::string_view(head)));
  expected += head;
  const std::uint64_t ranges[][2] = {{64, 1 << 20}, {1 << 20, 5'000'001}, {123, 4096}, {7'000'000, 6'500'000}};
  for (const auto& r : ranges) {
    auto copied = f->copy_from_file(fd, r[0], r[1]);
    REQUIRE(copied);
    CHECK(*copied == r[1]);
    expected += src.substr(r[0], r[1]);
    const std::string mid = pattern(70'000, static_cast<unsigned>(r[1]));  // above the 64 KiB gather size
    REQUIRE(f->write(std::string_view(mid)));
    REQUIRE(f->write(std::string_view("xyz")));
    expected += mid + "xyz";
  }
  auto tail = f->copy_from_file(fd, src.size() - 10, 50);  // the source ends first
  REQUIRE(tail);
  CHECK(*tail == 10);
  expected += src.substr(src.size() - 10);
  REQUIRE(f->write_zeros(3));
  expected += std::string(3, '\0');
  CHECK(f->written() == expected.size());
  ::close(fd);
  REQUIRE(f->commit());
  direct = f->direct();
  return expected;
}

}  // namespace

TEST_CASE("AtomicFile writes the same bytes with O_DIRECT, without it, and when O_DIRECT is refused") {
  const std::string src = pattern(14'000'000, 5);
  const auto src_path = temp_path("brine_unit_direct_src.bin");
  std::ofstream(src_path, std::ios::binary | std::ios::trunc).write(src.data(), static_cast<std::streamsize>(src.size()));
  const auto out = temp_path("brine_unit_direct_out.bin");
  bool direct = false;

  SUBCASE("no DirectIo: the buffered path") {
    const std::string expected = write_mix(out, src_path, src, nullptr, direct);
    CHECK_FALSE(direct);
    CHECK(read_file(out) == expected);
  }
  SUBCASE("O_DIRECT refused when turned on: the buffered path, no direct write") {
    reset(-1);
    const std::string expected = write_mix(out, src_path, src, &kRefuseEnable, direct);
    CHECK(g_enables == 1);
    CHECK(g_writes == 0);
    CHECK_FALSE(direct);
    CHECK(read_file(out) == expected);
  }
  SUBCASE("direct writes: whole stages, the last one padded to a block and truncated") {
    reset(-1);
    const std::string expected = write_mix(out, src_path, src, &kScripted, direct);
    const std::string written = read_file(out);
    CHECK(written.size() == expected.size());
    CHECK(written == expected);
    if (g_enabled == 1) {  // this file system takes O_DIRECT (ext4, xfs, btrfs, tmpfs since 6.6)
      CHECK(direct);
      // 20.6 MB: full stages, then the rest padded to 4 KiB.
      const std::size_t stage = writer::AtomicFile::kDirectStageBytes, full = expected.size() / stage;
      REQUIRE(g_write_sizes.size() == full + 1);
      for (std::size_t i = 0; i < full; ++i) CHECK(g_write_sizes[i] == stage);
      CHECK(g_write_sizes.back() % 4096 == 0);
      CHECK(g_write_sizes.back() - (expected.size() - full * stage) < 4096);
    } else {
      MESSAGE("O_DIRECT refused by the temporary directory's file system: only the buffered path ran");
    }
  }
  SUBCASE("short direct writes of whole blocks continue where they stopped") {
    reset(-1, 3 * 4096 + 4096 * 97);
    const std::string expected = write_mix(out, src_path, src, &kScripted, direct);
    CHECK(read_file(out) == expected);
    if (g_enabled == 1) {
      CHECK(direct);
      CHECK(g_write_sizes.size() > 3);
    }
  }
  SUBCASE("EINVAL on the first direct write: the staged bytes and the rest go the buffered way") {
    reset(0);
    const std::string expected = write_mix(out, src_path, src, &kScripted, direct);
    CHECK(read_file(out) == expected);
    if (g_enabled == 1) {
      CHECK(g_writes == 1);  // refused once, then never tried again
      CHECK_FALSE(direct);
    }
  }
  SUBCASE("EINVAL midway (after one stage is on disk), and on the padded last write") {
    for (int fail_at : {1, 2}) {
      CAPTURE(fail_at);
      reset(fail_at);
      const std::string expected = write_mix(out, src_path, src, &kScripted, direct);
      const std::string written = read_file(out);
      CHECK(written.size() == expected.size());
      CHECK(written == expected);
      if (g_enabled == 1) {
        CHECK(g_writes == fail_at + 1);
        CHECK_FALSE(direct);
      }
    }
  }
  SUBCASE("a short direct write that ends off a block leaves the direct path, bytes intact") {
    reset(-1, 4096 * 10 + 100);  // the kernel never does this for O_DIRECT; the code must not assume it
    const std::string expected = write_mix(out, src_path, src, &kScripted, direct);
    CHECK(read_file(out) == expected);
    if (g_enabled == 1) CHECK_FALSE(direct);
  }
  SUBCASE("an empty output") {
    reset(-1);
    std::filesystem::remove(out);
    {
      auto f = writer::AtomicFile::create(out, false, &kScripted);
      REQUIRE(f);
      REQUIRE(f->commit());
    }
    CHECK(std::filesystem::file_size(out) == 0);
    CHECK(g_writes == 0);
  }
  std::filesystem::remove(out);
  std::filesystem::remove(src_path);
}

TEST_CASE("write_safetensors: the same file through O_DIRECT and through the fallback") {
  const std::string content = pattern(12 << 20, 9);
  const auto src_path = temp_path("brine_unit_direct_st_src.bin");
  std::ofstream(src_path, std::ios::binary | std::ios::trunc).write(content.data(), static_cast<std::streamsize>(content.size()));
  auto file = core::MappedFile::open(src_path);
  REQUIRE(file);
  // Two tensors at unaligned offsets of a mapped file (the kernel copy's input), one of them
  // transposed (written through the staging of non-contiguous views).
  tensor::Tensor a, b;
  a.name = "a";
  a.dtype = tensor::DType::kF32;
  a.storage = file->bytes().subspan(64);
  a.shape = {1024, 2500};
  a.strides = {2500, 1};
  a.mapping = &*file;
  b.name = "b";
  b.dtype = tensor::DType::kF16;
  b.storage = file->bytes().subspan(10'000'000);
  b.shape = {300, 200};
  b.strides = {1, 300};
  b.mapping = &*file;
  writer::OutputModel m;
  m.tensors = {&a, &b};
  m.metadata = {{"format", "pt"}};
  std::vector<std::string> outputs;
  for (const writer::DirectIo* io : {&kScripted, &kRefuseEnable}) {
    reset(-1);
    const auto out = temp_path(io == &kScripted ? "brine_unit_direct.safetensors" : "brine_unit_buffered.safetensors");
    std::filesystem::remove(out);
    writer::WriteOptions options;
    options.direct_io = io;
    REQUIRE(writer::write_safetensors(m, out, options));
    if (io == &kScripted && g_enabled == 1) CHECK(g_writes >= 2);
    if (io == &kRefuseEnable) CHECK(g_writes == 0);
    outputs.push_back(read_file(out));
    std::filesystem::remove(out);
  }
  CHECK(outputs[0].size() > 10'000'000);
  CHECK(outputs[0] == outputs[1]);
  std::filesystem::remove(src_path);
}
