#include "writer/atomic_file.hpp"

#include "core/mapped_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <utility>

namespace brine::writer {

using core::ErrorCode;

namespace {
/// Writes smaller than this are gathered; larger ones (tensor pieces) go straight to the file.
constexpr std::size_t kBufferBytes = 64 << 10;

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
  const int fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd < 0) return io_error("cannot create a temporary file next to", path);
  ::fchmod(fd, 0644);
  f.temp_ = tmpl;
  f.fd_ = fd;
  f.buffer_.reserve(kBufferBytes);
  return f;
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : path_(std::move(other.path_)), temp_(std::move(other.temp_)), fd_(std::exchange(other.fd_, -1)),
      buffer_(std::move(other.buffer_)), written_(other.written_), committed_(other.committed_) {
  other.temp_.clear();
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !temp_.empty()) ::unlink(temp_.c_str());
}

core::Status AtomicFile::flush() {
  if (buffer_.empty()) return {};
  if (!core::write_all(fd_, buffer_)) return io_error("cannot write", temp_);
  buffer_.clear();
  return {};
}

core::Status AtomicFile::write(core::Bytes bytes) {
  if (bytes.empty()) return {};
  if (buffer_.size() + bytes.size() <= kBufferBytes) {
    buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
  } else {
    BRINE_TRY(flush());
    if (bytes.size() < kBufferBytes) {
      buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
    } else if (!core::write_all(fd_, bytes)) {
      return io_error("cannot write", temp_);
    }
  }
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

core::Result<std::uint64_t> AtomicFile::copy_from_file(int fd, std::uint64_t offset, std::uint64_t n) {
  BRINE_TRY(flush());  // the copy lands at the file's current end
  auto in = static_cast<off_t>(offset);
  std::uint64_t done = 0;
  while (done < n) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(n - done, 1ull << 30));
    const ssize_t r = ::copy_file_range(fd, &in, fd_, nullptr, want, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)) break;
    if (r < 0) return io_error("cannot copy into", temp_);
    if (r == 0) break;  // the source ended early: the caller's own read decides what that means
    done += static_cast<std::uint64_t>(r);
  }
  written_ += done;
  return done;
}

core::Status AtomicFile::commit() {
  BRINE_TRY(flush());
  if (::fsync(fd_) != 0) return io_error("cannot flush", temp_);
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0) return io_error("cannot close", temp_);
  if (std::rename(temp_.c_str(), path_.c_str()) != 0) return io_error("cannot rename the output to", path_);
  committed_ = true;
  return sync_directory();
}

core::Status AtomicFile::sync_directory() const {
  // The rename is a change to the directory: until the directory is flushed, a crash can undo it
  // and leave the old file (or none) under the name, although the new file's bytes are on disk.
  const auto slash = path_.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path_.substr(0, slash);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return io_error("cannot open the directory of", path_);
  const int r = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  // EINVAL: this file system has no way to flush a directory (its renames are as durable as they get).
  if (r != 0 && saved != EINVAL) {
    errno = saved;
    return io_error("cannot flush the directory of", path_);
  }
  return {};
}

}  // namespace brine::writer
