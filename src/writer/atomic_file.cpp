#include "writer/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace brine::writer {

using core::ErrorCode;

namespace {
core::Unexpected io_error(const std::string& what, const std::string& path) {
  return core::fail(ErrorCode::kIo, 0, what + " " + path + ": " + std::strerror(errno));
}
}  // namespace

core::Result<AtomicFile> AtomicFile::create(const std::string& path, bool force) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!force) return core::fail(ErrorCode::kIo, 0, "output exists (use --force to replace it): " + path);
    if (S_ISDIR(st.st_mode)) return core::fail(ErrorCode::kIo, 0, "output is a directory: " + path);
  }
  AtomicFile f;
  f.path_ = path;
  // mkstemp in the destination's directory: rename() is atomic only within one file system.
  std::string tmpl = path + ".brine-tmp-XXXXXX";
  const int fd = ::mkstemp(tmpl.data());
  if (fd < 0) return io_error("cannot create a temporary file next to", path);
  ::fchmod(fd, 0644);
  f.temp_ = tmpl;
  f.file_ = ::fdopen(fd, "wb");
  if (f.file_ == nullptr) {
    ::close(fd);
    ::unlink(tmpl.c_str());
    return io_error("cannot open", tmpl);
  }
  return f;
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : path_(std::move(other.path_)), temp_(std::move(other.temp_)), file_(other.file_),
      written_(other.written_), committed_(other.committed_) {
  other.file_ = nullptr;
  other.temp_.clear();
}

AtomicFile::~AtomicFile() {
  if (file_ != nullptr) std::fclose(file_);
  if (!committed_ && !temp_.empty()) ::unlink(temp_.c_str());
}

core::Status AtomicFile::write(core::Bytes bytes) {
  if (bytes.empty()) return {};
  if (std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size()) return io_error("cannot write", temp_);
  written_ += bytes.size();
  return {};
}

core::Status AtomicFile::write_zeros(std::uint64_t n) {
  static constexpr std::array<std::uint8_t, 4096> kZeros{};
  while (n > 0) {
    const std::uint64_t k = n < kZeros.size() ? n : kZeros.size();
    BRINE_TRY(write(core::Bytes(kZeros.data(), k)));
    n -= k;
  }
  return {};
}

core::Status AtomicFile::commit() {
  if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0) return io_error("cannot flush", temp_);
  if (std::fclose(file_) != 0) {
    file_ = nullptr;
    return io_error("cannot close", temp_);
  }
  file_ = nullptr;
  if (std::rename(temp_.c_str(), path_.c_str()) != 0) return io_error("cannot rename the output to", path_);
  committed_ = true;
  return {};
}

}  // namespace brine::writer
