// Reading and writing big inputs without mapping their pages in: core::read_at and
// WindowReader (zip local headers are preaded, not faulted in), and sanitize's file-to-file
// copy of contiguous tensors (copy_file_range). The page-fault counts below are this thread's
// minor faults (getrusage RUSAGE_THREAD): touching a mapped page costs at least one, a pread
// none.
#include <algorithm>
#include <doctest/doctest.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "container/zip_layout.hpp"
#include "core/mapped_file.hpp"
#include "tensor/tensor.hpp"
#include "writer/atomic_file.hpp"
#include "writer/output.hpp"
#include "zip_builder.hpp"

using namespace brine;

namespace {

std::string temp_file(const char* name, const std::string& bytes) {
  const auto path = (std::filesystem::temp_directory_path() / name).string();
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

long minor_faults() {
  rusage ru{};
  ::getrusage(RUSAGE_THREAD, &ru);
  return ru.ru_minflt;
}

/// Bytes no page of which is the same as another's: a wrong offset is seen.
std::string pattern(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 2654435761u + seed) >> 13);
  return s;
}

}  // namespace

TEST_CASE("read_at and WindowReader read a mapped file's bytes, and in-memory bytes, exactly") {
  const std::string content = pattern(3 << 20, 7);  // above MappedFile's read threshold: mapped
  const auto path = temp_file("brine_unit_io_read_at.bin", content);
  auto file = core::MappedFile::open(path);
  REQUIRE(file);
  REQUIRE(file->fd() >= 0);
  const core::Bytes data = file->bytes();
  std::string out(100, '\0');
  auto span = std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(out.data()), out.size());
  CHECK(core::read_at(data, 12345, span) == 100);
  CHECK(out == content.substr(12345, 100));
  CHECK(core::read_at(data, data.size() - 10, span) == 10);  // clamped at the end
  CHECK(out.substr(0, 10) == content.substr(content.size() - 10));
  CHECK(core::read_at(data, data.size() + 5, span) == 0);
  // A sub-span (a nested container) is read at its own offsets.
  CHECK(core::read_at(data.subspan(1 << 20), 3, span) == 100);
  CHECK(out == content.substr((1 << 20) + 3, 100));

  core::WindowReader w(data);
  CHECK(core::as_chars(w.peek(2 << 20, 30)) == content.substr(2 << 20, 30));
  CHECK(core::as_chars(w.peek((2 << 20) + 40, 8)) == content.substr((2 << 20) + 40, 8));  // inside the window
  CHECK(core::as_chars(w.peek(5, 2000)) == content.substr(5, 2000));                      // larger than the window
  CHECK(w.peek(data.size() - 3, 30).size() == 3);
  CHECK(w.peek(data.size(), 1).empty());
  CHECK(w.peek(UINT64_MAX - 2, 30).empty());

  const std::string small = "not mapped";
  core::WindowReader m(core::as_bytes(small));
  CHECK(m.peek(4, 100).data() == core::as_bytes(small).data() + 4);  // used in place
  CHECK(core::as_chars(m.peek(4, 100)) == "mapped");
  file = core::MappedFile::from_buffer({});
  std::filesystem::remove(path);
}

TEST_CASE("read_whole replaces a file's map with its bytes read at once, whole 2 MiB pieces first, the tail mapped after them") {
  const std::string content = pattern((5 << 20) + 12345, 11);  // two whole 2 MiB pieces and a tail
  const auto path = temp_file("brine_unit_io_read_whole.bin", content);
  auto file = core::MappedFile::open(path);
  REQUIRE(file);
  REQUIRE(file->fd() >= 0);
  const auto* mapped_at = file->bytes().data();
  REQUIRE(file->read_whole());
  CHECK(file->fd() == -1);  // no longer a map of the file: read_at copies from memory
  CHECK(file->bytes().data() != mapped_at);
  CHECK(reinterpret_cast<std::uintptr_t>(file->bytes().data()) % (std::uintptr_t{2} << 20) == 0);
  REQUIRE(file->bytes().size() == content.size());
  CHECK(core::as_chars(file->bytes()) == content);  // the copied pieces and the mapped tail, in order
  std::string out(100, '\0');
  auto span = std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(out.data()), out.size());
  CHECK(core::read_at(file->bytes(), (4 << 20) - 50, span) == 100);  // across the copy's end
  CHECK(out == content.substr((4 << 20) - 50, 100));
  CHECK_FALSE(file->read_whole());  // already read
  // A move keeps the bytes; the moved-from file no longer owns them.
  core::MappedFile moved = std::move(*file);
  CHECK(core::as_chars(moved.bytes()) == content);
  // Under 2 MiB there is no whole piece to read: the map stays.
  const auto small_path = temp_file("brine_unit_io_read_whole_small.bin", pattern((1 << 20) + 4096, 3));
  auto small = core::MappedFile::open(small_path);
  REQUIRE(small);
  REQUIRE(small->fd() >= 0);
  CHECK_FALSE(small->read_whole());
  CHECK(small->fd() >= 0);
  // A buffer that is no map is left as it is.
  auto buffer = core::MappedFile::from_buffer(std::vector<std::uint8_t>(10, 1));
  CHECK_FALSE(buffer.read_whole());
  std::filesystem::remove(path);
  std::filesystem::remove(small_path);
}

TEST_CASE("read_whole reads one whole piece, or halves of two or more at once, into the same bytes") {
  // 2 MiB: one piece, read by the caller; 6 and 9 MiB: the second half read on another thread.
  for (const std::size_t size : {(std::size_t{2} << 20) + 7, (std::size_t{6} << 20) + 1, (std::size_t{9} << 20) + 4097}) {
    CAPTURE(size);
    // Not pattern(): that repeats every 2 MiB, so pieces read to the wrong place would pass.
    std::string content(size, '\0');
    for (std::size_t i = 0; i < size; ++i) content[i] = static_cast<char>((i * 0x9E3779B97F4A7C15ull) >> 56);
    const auto path = temp_file("brine_unit_io_read_whole_halves.bin", content);
    auto file = core::MappedFile::open(path);
    REQUIRE(file);
    REQUIRE(file->read_whole());
    CHECK(file->fd() == -1);
    REQUIRE(file->bytes().size() == content.size());
    CHECK(core::as_chars(file->bytes()) == content);
    file = core::MappedFile::from_buffer({});
    std::filesystem::remove(path);
  }
}

TEST_CASE("the zip layout of a mapped 1 MiB-per-member archive reads its local headers without faulting member pages in") {
  test::ZipBuilder zb;
  constexpr int kMembers = 32;
  for (int i = 0; i < kMembers; ++i) zb.add("archive/data/" + std::to_string(i), pattern(1 << 20, static_cast<unsigned>(i)));
  const std::string zip = zb.build();
  const auto path = temp_file("brine_unit_io_layout.zip", zip);
  auto file = core::MappedFile::open(path);
  REQUIRE(file);
  const core::Bytes data = file->bytes();
  const long before = minor_faults();
  auto miniz = container::parse_zip_layout(data, 1000, container::ZipReader::kMiniz);
  auto zipfile = container::parse_zip_layout(data, 1000, container::ZipReader::kZipfile);
  const long faults = minor_faults() - before;
  REQUIRE(miniz);
  REQUIRE(zipfile);
  CHECK(miniz->locals.size() == kMembers);
  CHECK(zipfile->locals.size() == kMembers);
  CHECK(miniz->gaps.empty());
  CHECK(miniz->locals[5].name == "archive/data/5");
  CHECK(miniz->locals[5].data_offset == miniz->central[5].local_offset + 30 + miniz->central[5].name.size());
  // Reading the headers through the map faulted 20 times here (fault-around covers some
  // neighbours); preading them, 3 or 4 (the central directory at the end, the heap).
  MESSAGE("minor faults while parsing both layouts: " << faults);
  CHECK(faults < kMembers / 2);
  std::filesystem::remove(path);
}

namespace {
/// The local walks of two layouts (one made some other way) found the same: problems, gaps,
/// and each local header where and as long as the other.
void same_walk(const container::ZipLayout& a, const container::ZipLayout& b) {
  CHECK(a.problems == b.problems);
  CHECK(std::ranges::equal(a.gaps, b.gaps));
  REQUIRE(a.locals.size() == b.locals.size());
  for (std::size_t i = 0; i < b.locals.size(); ++i) {
    CHECK(a.locals[i].offset == b.locals[i].offset);
    CHECK(a.locals[i].name == b.locals[i].name);
    CHECK(a.locals[i].walk_length == b.locals[i].walk_length);
  }
}
}  // namespace

TEST_CASE("a second reader's layout takes the first one's local walk only when it would walk the same headers") {
  auto same_as_fresh = [](const std::string& zip) {
    const core::Bytes data = core::as_bytes(zip);
    auto miniz = container::parse_zip_layout(data, 1000, container::ZipReader::kMiniz);
    auto fresh = container::parse_zip_layout(data, 1000, container::ZipReader::kZipfile);
    auto shared = container::parse_zip_layout(data, 1000, container::ZipReader::kZipfile, miniz ? &*miniz : nullptr);
    REQUIRE(fresh);
    REQUIRE(shared);
    same_walk(*shared, *fresh);
    return fresh->locals.size();
  };
  test::ZipBuilder plain;
  plain.add("archive/data.pkl", "\x80\x02}q\x00.");
  plain.add("archive/data/0", std::string(100, 'x'));
  CHECK(same_as_fresh(plain.build()) == 2);
  // Data in front: miniz does not shift offsets, zipfile does, so the two walks start in
  // different places and the second must walk for itself (its walk finds both members).
  test::ZipBuilder shifted = plain;
  shifted.prepend = std::string(64, 'J');
  CHECK(same_as_fresh(shifted.build()) == 2);
}

TEST_CASE("the directory first and the walk later make the layout parse_zip_layout makes") {
  test::ZipBuilder zb;
  zb.prepend = std::string(32, 'J');  // the readers walk from different places
  for (int i = 0; i < 5; ++i) zb.add("archive/data/" + std::to_string(i), std::string(10, 'x'));
  test::ZipBuilder::Entry hidden("archive/hidden", "y");
  hidden.hidden = true;
  zb.add(std::move(hidden));
  const std::string zip = zb.build();
  const core::Bytes data = core::as_bytes(zip);
  auto miniz = container::parse_zip_directory(data, 1000, container::ZipReader::kMiniz);
  auto zipfile = container::parse_zip_directory(data, 1000, container::ZipReader::kZipfile, &*miniz);
  REQUIRE(miniz);
  REQUIRE(zipfile);
  CHECK(miniz->locals.empty());
  CHECK(zipfile->gaps.empty());
  container::walk_zip_locals(data, 1000, *miniz);
  container::walk_zip_locals(data, 1000, *zipfile, &*miniz);
  auto whole_miniz = container::parse_zip_layout(data, 1000, container::ZipReader::kMiniz);
  auto whole_zipfile = container::parse_zip_layout(data, 1000, container::ZipReader::kZipfile, &*whole_miniz);
  for (auto [split, whole] : {std::pair{&*miniz, &*whole_miniz}, std::pair{&*zipfile, &*whole_zipfile}}) {
    same_walk(*split, *whole);
    CHECK(split->walk_problems_from == whole->walk_problems_from);
  }
  CHECK(zipfile->locals.size() == 6);  // zipfile's walk starts after the prepended bytes: all six members
  CHECK(!miniz->gaps.empty());         // miniz's starts at 0, in those bytes
}

TEST_CASE("both readers' layouts of one archive share its directory records and walk, names viewing the input") {
  test::ZipBuilder zb;
  for (int i = 0; i < 40; ++i) zb.add("archive/data/" + std::to_string(i), std::string(10, 'x'));
  const std::string zip = zb.build();
  const core::Bytes data = core::as_bytes(zip);
  auto miniz = container::parse_zip_layout(data, 1000, container::ZipReader::kMiniz);
  REQUIRE(miniz);
  auto zipfile = container::parse_zip_layout(data, 1000, container::ZipReader::kZipfile, &*miniz);
  REQUIRE(zipfile);
  // One copy of the records and of the walk, not one per reader (nor a string per name).
  CHECK(zipfile->central.data() == miniz->central.data());
  CHECK(zipfile->locals.data() == miniz->locals.data());
  REQUIRE(zipfile->central.size() == 40);
  CHECK(zipfile->central[39].name == "archive/data/39");
  CHECK(zipfile->central[39].name.data() >= zip.data());
  CHECK(zipfile->central[39].name.data() < zip.data() + zip.size());
  // A copy keeps what it views alive after the layouts it came from are gone.
  container::ZipLayout copy = *zipfile;
  miniz = core::fail(core::ErrorCode::kContainer, 0, "gone");
  zipfile = core::fail(core::ErrorCode::kContainer, 0, "gone");
  REQUIRE(copy.locals.size() == 40);
  CHECK(copy.locals[7].name == "archive/data/7");
  CHECK(copy.locals[39].name == "archive/data/39");
}

TEST_CASE("miniz reads the first `count` directory records of the ones zipfile reads") {
  test::ZipBuilder zb;
  for (int i = 0; i < 5; ++i) zb.add("archive/data/" + std::to_string(i), std::string(10, 'x'));
  std::string zip = zb.build();
  // The EOCD's two entry counts (at +8 and +10) say 3.
  const std::size_t eocd = zip.size() - 22;
  zip[eocd + 8] = zip[eocd + 10] = 3;
  const core::Bytes data = core::as_bytes(zip);
  auto miniz = container::parse_zip_layout(data, 1000, container::ZipReader::kMiniz);
  auto zipfile = container::parse_zip_layout(data, 1000, container::ZipReader::kZipfile, miniz ? &*miniz : nullptr);
  REQUIRE(miniz);
  REQUIRE(zipfile);
  CHECK(miniz->central.size() == 3);
  CHECK(zipfile->central.size() == 5);
  CHECK(miniz->count_too_small);
  CHECK(zipfile->central[2].name == miniz->central[2].name);
  // miniz's walk looks up 3 records, zipfile's 5: each walks for itself, both find all 5 headers.
  CHECK(miniz->locals.size() == 5);
  CHECK(zipfile->locals.size() == 5);
  // More records than the limit: zipfile's reading fails, miniz's (3 <= limit) does not.
  CHECK(container::parse_zip_layout(data, 4, container::ZipReader::kMiniz));
  auto limited = container::parse_zip_layout(data, 4, container::ZipReader::kZipfile);
  REQUIRE(!limited);
  CHECK(limited.error().code == core::ErrorCode::kLimitExceeded);
}

namespace {
/// Records how a tensor's bytes arrive: as file ranges or as bytes.
class RecordingSink : public tensor::ByteSink {
 public:
  explicit RecordingSink(bool takes_files) : takes_files_(takes_files) {}
  core::Status write(core::Bytes b) override {
    bytes_.append(core::as_chars(b));
    return {};
  }
  core::Result<std::uint64_t> copy_from_file(int fd, std::uint64_t offset, std::uint64_t n) override {
    if (!takes_files_) return std::uint64_t{0};
    std::string piece(n, '\0');
    REQUIRE(::pread(fd, piece.data(), n, static_cast<off_t>(offset)) == static_cast<ssize_t>(n));
    bytes_ += piece;
    ++ranges_;
    return n;
  }
  std::string bytes_;
  int ranges_ = 0;

 private:
  bool takes_files_;
};
}  // namespace

TEST_CASE("a contiguous tensor in a mapped file is handed to a file sink as a file range, to others as bytes") {
  const std::string content = pattern(4 << 20, 3);
  const auto path = temp_file("brine_unit_io_tensor.bin", content);
  auto file = core::MappedFile::open(path);
  REQUIRE(file);
  tensor::Tensor t;
  t.name = "w";
  t.dtype = tensor::DType::kF32;
  t.storage = file->bytes().subspan(4096);
  t.storage_offset = 10;
  t.shape = {256, 1024};
  t.strides = {1024, 1};
  t.mapping = &*file;
  RecordingSink files(true), bytes(false);
  REQUIRE(tensor::write_contiguous_le(t, files));
  REQUIRE(tensor::write_contiguous_le(t, bytes));
  const std::string expected = content.substr(4096 + 40, 1 << 20);
  CHECK(files.ranges_ == 1);
  CHECK(files.bytes_ == expected);
  CHECK(bytes.ranges_ == 0);
  CHECK(bytes.bytes_ == expected);  // verify's comparison still sees the source bytes

  // The safetensors writer takes the range: the output holds exactly the tensor's bytes.
  writer::OutputModel m;
  m.tensors = {&t};
  const auto out = (std::filesystem::temp_directory_path() / "brine_unit_io_tensor.safetensors").string();
  std::filesystem::remove(out);
  REQUIRE(writer::write_safetensors(m, out, {}));
  const std::string written = read_file(out);
  std::uint64_t n = 0;
  std::memcpy(&n, written.data(), 8);
  CHECK(written.substr(8 + n) == expected);
  std::filesystem::remove(out);
  std::filesystem::remove(path);
}

TEST_CASE("AtomicFile::copy_from_file appends file ranges between buffered writes") {
  const std::string content = pattern(1 << 16, 11);
  const auto src = temp_file("brine_unit_io_src.bin", content);
  const auto out = (std::filesystem::temp_directory_path() / "brine_unit_io_copy.bin").string();
  std::filesystem::remove(out);
  {
    auto f = writer::AtomicFile::create(out, false);
    REQUIRE(f);
    std::FILE* fp = std::fopen(src.c_str(), "rb");
    REQUIRE(fp != nullptr);
    REQUIRE(f->write(std::string_view("head")));
    auto copied = f->copy_from_file(::fileno(fp), 100, 5000);
    REQUIRE(copied);
    CHECK(*copied == 5000);
    REQUIRE(f->write(std::string_view("mid")));
    auto tail = f->copy_from_file(::fileno(fp), content.size() - 10, 50);  // the source ends first
    REQUIRE(tail);
    CHECK(*tail == 10);
    CHECK(f->written() == 4 + 5000 + 3 + 10);
    std::fclose(fp);
    REQUIRE(f->commit());
  }
  CHECK(read_file(out) == "head" + content.substr(100, 5000) + "mid" + content.substr(content.size() - 10));
  std::filesystem::remove(out);
  std::filesystem::remove(src);
}
