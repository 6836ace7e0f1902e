#include "writer/atomic_file.hpp"

#include "core/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
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
/// Direct writes are whole multiples of this (the page size; a multiple of every common logical
/// block size). The last, partial block is padded with zeros, and the file truncated after it.
constexpr std::size_t kDirectBlock = 4096;
constexpr std::size_t kHugePage = 2u << 20;

/// Turns O_DIRECT on or off for `fd`; 0 on success, -1 with errno as fcntl left it.
int set_o_direct(int fd, bool on) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return -1;
  return ::fcntl(fd, F_SETFL, on ? flags | O_DIRECT : flags & ~O_DIRECT);
}

int enable_o_direct(int fd) { return set_o_direct(fd, true); }

core::Unexpected io_error(const std::string& what, const std::string& path) {
  return core::fail(ErrorCode::kIo, 0, what + " " + path + ": " + std::strerror(errno));
}

}  // namespace

const DirectIo& system_direct_io() {
  static constexpr DirectIo kSystem{enable_o_direct, ::pwrite};
  return kSystem;
}

StageBuffer::StageBuffer(StageBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

StageBuffer& StageBuffer::operator=(StageBuffer&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

StageBuffer::~StageBuffer() { release(); }

void StageBuffer::release() {
  if (data_ != nullptr) ::munmap(data_, size_);
  data_ = nullptr;
  size_ = 0;
}

bool StageBuffer::allocate(std::size_t n) {
  release();
  // Map one huge page more than needed and unmap the unaligned head and the tail.
  void* raw = ::mmap(nullptr, n + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return false;
  auto* const base = static_cast<std::uint8_t*>(raw);
  const auto addr = reinterpret_cast<std::uintptr_t>(base);
  auto* const aligned = base + ((kHugePage - addr % kHugePage) % kHugePage);
  if (aligned > base) ::munmap(base, static_cast<std::size_t>(aligned - base));
  if (aligned + n < base + n + kHugePage) ::munmap(aligned + n, static_cast<std::size_t>(base + n + kHugePage - (aligned + n)));
  // Only advice: without huge pages the writes are still correct, in smaller requests.
  ::madvise(aligned, n, MADV_HUGEPAGE);
  data_ = aligned;
  size_ = n;
  return true;
}

core::Result<AtomicFile> AtomicFile::create(const std::string& path, bool force, const DirectIo* direct) {
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
  // O_DIRECT refused here (EINVAL: tmpfs before Linux 6.6, some FUSE and network file systems):
  // the buffered path. The stage's pages are touched only as the output fills them.
  if (direct != nullptr && direct->enable(fd) == 0) {
    if (f.stage_.allocate(kDirectStageBytes)) {
      f.direct_ = direct;
    } else {
      set_o_direct(fd, false);
    }
  }
  return f;
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : path_(std::move(other.path_)), temp_(std::move(other.temp_)), fd_(std::exchange(other.fd_, -1)),
      buffer_(std::move(other.buffer_)), written_(other.written_), committed_(other.committed_),
      direct_(std::exchange(other.direct_, nullptr)), stage_(std::move(other.stage_)), staged_(other.staged_),
      stage_at_(other.stage_at_) {
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
  if (direct_ != nullptr) {
    BRINE_TRY(stage(bytes));
    written_ += bytes.size();
    return {};
  }
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
  std::uint64_t done = 0;
  if (direct_ != nullptr) {
    BRINE_TRY_ASSIGN(done, copy_staged(fd, offset, n));
    written_ += done;
    // Done, the source ended early, or O_DIRECT was refused midway: the kernel copies the rest.
    if (done == n || direct_ != nullptr) return done;
  }
  BRINE_TRY_ASSIGN(const std::uint64_t rest, copy_kernel(fd, offset + done, n - done));
  written_ += rest;
  return done + rest;
}

core::Status AtomicFile::stage(core::Bytes bytes) {
  while (!bytes.empty()) {
    const std::size_t k = std::min(bytes.size(), stage_.size() - staged_);
    std::memcpy(stage_.data() + staged_, bytes.data(), k);
    staged_ += k;
    bytes = bytes.subspan(k);
    if (staged_ == stage_.size()) BRINE_TRY(write_stage(false));
    if (direct_ == nullptr) {  // O_DIRECT was refused: the rest goes after what is now in the file
      if (!bytes.empty() && !core::write_all(fd_, bytes)) return io_error("cannot write", temp_);
      return {};
    }
  }
  return {};
}

core::Result<std::uint64_t> AtomicFile::copy_staged(int fd, std::uint64_t offset, std::uint64_t n) {
  // pread, not the caller's mapping: the source's pages stay in the page cache and are never
  // mapped into this process.
  std::uint64_t done = 0;
  while (done < n && direct_ != nullptr) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(n - done, stage_.size() - staged_));
    const ssize_t r = ::pread(fd, stage_.data() + staged_, want, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return io_error("cannot read the input for", temp_);
    if (r == 0) break;  // the source ended early: the caller's own read decides what that means
    staged_ += static_cast<std::size_t>(r);
    done += static_cast<std::uint64_t>(r);
    if (staged_ == stage_.size()) BRINE_TRY(write_stage(false));
  }
  return done;
}

core::Status AtomicFile::write_stage(bool last) {
  // Only the last write may end off a block boundary: pad it, and truncate the padding off.
  const std::size_t length = staged_;
  const std::size_t padded = (length + kDirectBlock - 1) / kDirectBlock * kDirectBlock;
  std::memset(stage_.data() + length, 0, padded - length);
  std::size_t at = 0;
  while (at < padded) {
    const ssize_t r = direct_->pwrite(fd_, stage_.data() + at, padded - at, static_cast<off_t>(stage_at_ + at));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EINVAL) return leave_direct(std::min(at, length));
    if (r < 0) return io_error("cannot write", temp_);
    if (r == 0 || static_cast<std::size_t>(r) % kDirectBlock != 0) {
      // A short direct write that ends off a block: what follows cannot be written directly.
      at += static_cast<std::size_t>(r);
      return leave_direct(std::min(at, length));
    }
    at += static_cast<std::size_t>(r);
  }
  stage_at_ += length;
  staged_ = 0;
  if (last && padded != length && ::ftruncate(fd_, static_cast<off_t>(stage_at_)) != 0) {
    return io_error("cannot truncate", temp_);
  }
  return {};
}

core::Status AtomicFile::leave_direct(std::size_t from) {
  // The file system refuses O_DIRECT (or these offsets): write the staged bytes not yet on disk
  // through the page cache and continue on the buffered path, leaving the file position at the
  // end of the output, where write() and copy_file_range append.
  direct_ = nullptr;
  if (set_o_direct(fd_, false) != 0) return io_error("cannot turn off O_DIRECT for", temp_);
  if (::lseek(fd_, static_cast<off_t>(stage_at_ + from), SEEK_SET) < 0) return io_error("cannot seek in", temp_);
  if (!core::write_all(fd_, core::Bytes(stage_.data() + from, staged_ - from))) return io_error("cannot write", temp_);
  stage_at_ += staged_;
  staged_ = 0;
  // Bytes beyond the output that a padded write may have left (a partial last block).
  if (::ftruncate(fd_, static_cast<off_t>(stage_at_)) != 0) return io_error("cannot truncate", temp_);
  return {};
}

core::Result<std::uint64_t> AtomicFile::copy_kernel(int fd, std::uint64_t offset, std::uint64_t n) {
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
  return done;
}

core::Status AtomicFile::commit() {
  if (direct_ != nullptr) BRINE_TRY(write_stage(true));
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
