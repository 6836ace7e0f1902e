#include "core/mapped_file.hpp"

#include "core/heap_pages.hpp"
#include "core/side_task.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <shared_mutex>
#include <utility>

namespace brine::core {

namespace {
Unexpected io_error(const std::string& what) {
  return fail(Error{ErrorCode::kIo, 0, {}, {}, what + ": " + std::strerror(errno)});
}

class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  ~FdGuard() { if (fd_ >= 0) ::close(fd_); }
  [[nodiscard]] int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

/// The live mappings, so that read_at() can tell which file a span of mapped bytes comes from
/// (a span has no file; nested containers hand their readers sub-spans of the input).
struct Mapping {
  const std::uint8_t* begin;
  const std::uint8_t* end;
  int fd;
};
std::shared_mutex g_mappings_lock;
std::vector<Mapping> g_mappings;
std::atomic<std::size_t> g_mapping_count{0};  ///< lets read_at skip the lock when nothing is mapped

void register_mapping(const std::uint8_t* data, std::uint64_t size, int fd) {
  const std::unique_lock lock(g_mappings_lock);
  g_mappings.push_back(Mapping{data, data + size, fd});
  g_mapping_count.store(g_mappings.size(), std::memory_order_release);
}

void unregister_mapping(const std::uint8_t* data) {
  const std::unique_lock lock(g_mappings_lock);
  std::erase_if(g_mappings, [&](const Mapping& m) { return m.begin == data; });
  g_mapping_count.store(g_mappings.size(), std::memory_order_release);
}

/// The file and file offset of `p`, if it lies in a live mapping.
bool file_of(const std::uint8_t* p, int& fd, std::uint64_t& offset) {
  if (g_mapping_count.load(std::memory_order_acquire) == 0) return false;
  const std::shared_lock lock(g_mappings_lock);
  for (const auto& m : g_mappings) {
    if (p >= m.begin && p < m.end) {
      fd = m.fd;
      offset = static_cast<std::uint64_t>(p - m.begin);
      return true;
    }
  }
  return false;
}
}  // namespace

Result<MappedFile> MappedFile::open(const std::string& path) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below anyway).
  FdGuard fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) return io_error("cannot open");
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return io_error("cannot stat");
  if (S_ISDIR(st.st_mode)) {
    errno = EISDIR;
    return io_error("cannot read");
  }
  if (!S_ISREG(st.st_mode)) {
    // A FIFO, device or socket has no size and may never end (/dev/zero): refused. A stream is
    // scanned from standard input ("-"), bounded by the member limit.
    const char* kind = S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISCHR(st.st_mode) ? "a character device"
                     : S_ISBLK(st.st_mode)  ? "a block device" : S_ISSOCK(st.st_mode) ? "a socket" : "not a regular file";
    return fail(Error{ErrorCode::kIo, 0, {}, {}, std::string("refused: ") + kind + ", not a regular file (pipe it to '-' to scan a stream)"});
  }
  MappedFile file;
  file.size_ = static_cast<std::uint64_t>(st.st_size);
  if (file.size_ == 0) return file;
  if (file.size_ <= kReadThreshold) {
    // Small files are read, not mapped: unmapping costs a TLB shootdown on every other core
    // running a scan thread, which made parallel scans of many small files slower than serial.
    // One read of one byte more than the size, straight into the buffer: a regular file's read
    // is short only at its end, so a short read is the end and needs no second read to see 0
    // (one syscall per file less on a walk of many small files; with page-table isolation a
    // syscall is not cheap). A file that changed size while it was read would get a verdict
    // about other bytes: a byte past the size, or fewer bytes than it, is an error.
    file.owned_.resize(static_cast<std::size_t>(file.size_) + 1);
    std::size_t got = 0;
    while (got < file.owned_.size()) {
      const ssize_t n = ::read(fd.get(), file.owned_.data() + got, file.owned_.size() - got);
      if (n < 0) {
        if (errno == EINTR) continue;
        return io_error("cannot read");
      }
      if (n == 0) break;
      got += static_cast<std::size_t>(n);
      if (got == file.size_) break;  // short of the byte asked beyond the size: the end
    }
    if (got != file.size_) return fail(Error{ErrorCode::kIo, 0, {}, {}, "the file changed size while it was read"});
    file.owned_.pop_back();
    file.data_ = file.owned_.data();
    return file;
  }
  void* p = ::mmap(nullptr, file.size_, PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (p == MAP_FAILED) return io_error("cannot map");
  file.data_ = static_cast<const std::uint8_t*>(p);
  file.mapped_ = true;
  // Kept open while mapped: read_at() preads scattered small pieces, sanitize copies ranges
  // file to file (copy_file_range) without mapping them.
  file.fd_ = fd.release();
  register_mapping(file.data_, file.size_, file.fd_);
  return file;
}

Result<MappedFile> MappedFile::read_stream(int fd, std::uint64_t max_bytes, std::uint64_t size_hint) {
  MappedFile file;
  file.owned_.reserve(static_cast<std::size_t>(std::min(size_hint, max_bytes)));
  std::uint8_t chunk[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error("cannot read");
    }
    if (n == 0) break;
    if (file.owned_.size() + static_cast<std::uint64_t>(n) > max_bytes) {
      return fail(Error{ErrorCode::kLimitExceeded, file.owned_.size(), {}, {}, "input stream is larger than the limit"});
    }
    file.owned_.insert(file.owned_.end(), chunk, chunk + n);
  }
  file.data_ = file.owned_.data();
  file.size_ = file.owned_.size();
  return file;
}

MappedFile MappedFile::from_buffer(std::vector<std::uint8_t> buffer) {
  MappedFile file;
  file.owned_ = std::move(buffer);
  file.data_ = file.owned_.data();
  file.size_ = file.owned_.size();
  return file;
}

MappedFile::MappedFile(MappedFile&& other) noexcept { *this = std::move(other); }

void MappedFile::unmap() {
  if (anon_bytes_ != 0) {
    ::munmap(const_cast<std::uint8_t*>(data_), anon_bytes_);
    anon_bytes_ = 0;
  }
  if (!mapped_) return;
  unregister_mapping(data_);
  ::munmap(const_cast<std::uint8_t*>(data_), size_);
  ::close(fd_);
  mapped_ = false;
  fd_ = -1;
}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this == &other) return *this;
  unmap();
  fd_ = std::exchange(other.fd_, -1);
  mapped_ = std::exchange(other.mapped_, false);
  anon_bytes_ = std::exchange(other.anon_bytes_, 0);
  size_ = std::exchange(other.size_, 0);
  const bool other_owned = !mapped_ && other.data_ == other.owned_.data();
  owned_ = std::move(other.owned_);
  data_ = other_owned ? owned_.data() : other.data_;
  other.data_ = nullptr;
  return *this;
}

MappedFile::~MappedFile() { unmap(); }

void MappedFile::release(Bytes range) const {
  if (!mapped_ || range.empty() || range.data() < data_ || range.data() + range.size() > data_ + size_) return;
  static const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = (reinterpret_cast<std::uintptr_t>(range.data()) + page - 1) & ~(page - 1);
  const auto end = (reinterpret_cast<std::uintptr_t>(range.data()) + range.size()) & ~(page - 1);
  // MAP_PRIVATE, read-only, never written: MADV_DONTNEED drops our mapping of the pages only.
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

void MappedFile::prefault(Bytes range) const {
  if (!mapped_ || range.empty() || range.data() < data_ || range.data() + range.size() > data_ + size_) return;
  populate_for_reading(range);
}

bool MappedFile::read_whole() {
  // Whole 2 MiB pieces are read into huge pages; the rest stays a map of the file, placed right
  // after them: a fresh 4 KiB page costs more than mapping in a cached one (finding 16), and a
  // partial huge page would make the resident size larger than the file.
  const auto n = static_cast<std::size_t>(size_);
  const std::size_t head = n & ~(kHugePage - 1);
  if (!mapped_ || fd_ < 0 || head == 0) return false;
  static const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const std::size_t keep = (n + page - 1) & ~(page - 1);
  auto* copy = static_cast<std::uint8_t*>(map_huge_pages(keep));
  if (copy == nullptr) return false;
  auto give_up = [&] {
    ::munmap(copy, keep);
    return false;
  };
  // Reading is mostly the kernel zeroing the fresh huge pages and copying into them: with two
  // or more pieces, the second half is read on another CPU meanwhile (bench/README.md finding 20).
  const int fd = fd_;
  auto read_range = [fd, copy](std::size_t from, std::size_t to) {
    while (from < to) {
      const ssize_t r = ::pread(fd, copy + from, to - from, static_cast<off_t>(from));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      from += static_cast<std::size_t>(r);
    }
    return true;
  };
  const std::size_t mid = head >= 2 * kHugePage ? (head / 2) & ~(kHugePage - 1) : head;
  bool tail_ok = true;
  SideTask side;
  const bool split = mid < head && side.start([&] { tail_ok = read_range(mid, head); });
  const bool head_ok = read_range(0, split ? mid : head);
  side.wait();
  if (!head_ok || (split && !tail_ok)) return give_up();
  if (keep > head) {
    // The tail: the file from `head` (a multiple of the page size) over the reserved pages.
    void* tail = ::mmap(copy + head, keep - head, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd_, static_cast<off_t>(head));
    if (tail == MAP_FAILED) return give_up();
  }
  ::mprotect(copy, head, PROT_READ);  // read-only, as the map was
  unmap();  // the file's first map and its descriptor (the tail's map needs neither)
  data_ = copy;
  anon_bytes_ = keep;
  return true;
}

void populate_for_reading(Bytes range) {
#ifndef MADV_POPULATE_READ
  constexpr int MADV_POPULATE_READ = 22;  // glibc 2.36 headers may predate it; the kernel decides
#endif
  if (range.empty()) return;
  static const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<std::uintptr_t>(range.data()) & ~(page - 1);
  const auto end = reinterpret_cast<std::uintptr_t>(range.data()) + range.size();
  ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_READ);
}

bool write_all(int fd, Bytes bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes = bytes.subspan(static_cast<std::size_t>(n));
  }
  return true;
}

std::size_t read_at(Bytes data, std::uint64_t offset, std::span<std::uint8_t> out) {
  if (offset >= data.size()) return 0;
  const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), data.size() - offset));
  int fd = -1;
  std::uint64_t at = 0;
  if (n != 0 && file_of(data.data() + offset, fd, at)) {
    std::size_t done = 0;
    while (done < n) {
      const ssize_t r = ::pread(fd, out.data() + done, n - done, static_cast<off_t>(at + done));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      done += static_cast<std::size_t>(r);
    }
    if (done == n) return n;
    // The file shrank under its mapping (or pread failed): read what the mapping shows, as
    // every other reader of these bytes does.
  }
  std::memcpy(out.data(), data.data() + offset, n);
  return n;
}

bool read_through_file(Bytes data) {
  int fd = -1;
  std::uint64_t at = 0;
  return !data.empty() && file_of(data.data(), fd, at);
}

Bytes WindowReader::peek(std::uint64_t offset, std::size_t n) {
  if (offset >= data_.size()) return {};
  n = static_cast<std::size_t>(std::min<std::uint64_t>(n, data_.size() - offset));
  if (!looked_up_) {
    in_file_ = read_through_file(data_);
    looked_up_ = true;
  }
  // Bytes in memory (a small file read whole, a decompressed member) are used where they are.
  if (!in_file_) return data_.subspan(offset, n);
  if (offset >= window_at_ && offset + n <= window_at_ + window_.size()) {
    return Bytes(window_).subspan(offset - window_at_, n);
  }
  window_.resize(std::max(n, kWindow));
  window_.resize(read_at(data_, offset, window_));
  window_at_ = offset;
  return Bytes(window_).first(std::min(n, window_.size()));
}

}  // namespace brine::core
