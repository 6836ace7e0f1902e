#include "serve/spool.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/mapped_file.hpp"

namespace brine::serve {

bool DiskBudget::try_reserve(std::uint64_t bytes) {
  std::uint64_t used = used_.load(std::memory_order_relaxed);
  do {
    if (bytes > capacity_ || used > capacity_ - bytes) return false;
  } while (!used_.compare_exchange_weak(used, used + bytes, std::memory_order_relaxed));
  return true;
}

namespace {

/// The upload: an unnamed file (O_TMPFILE), or where the file system cannot make one, a named
/// file that is unlinked at once. Either way no other process can open it by a name.
int open_unnamed(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return fd;
  std::string name = dir + "/upload.XXXXXX";
  std::vector<char> buf(name.begin(), name.end());
  buf.push_back('\0');
  fd = ::mkostemp(buf.data(), O_CLOEXEC);
  if (fd >= 0) ::unlink(buf.data());
  return fd;
}

/// Removes the files a request left in its directory (sanitize outputs, their temp files), then
/// the directory. Only regular entries are expected; nothing is followed.
void remove_dir(const std::string& dir) {
  if (DIR* d = ::opendir(dir.c_str())) {
    std::vector<std::string> names;
    while (const dirent* e = ::readdir(d)) {
      const std::string_view n = e->d_name;
      if (n != "." && n != "..") names.emplace_back(n);
    }
    ::closedir(d);
    for (const auto& n : names) ::unlink((dir + "/" + n).c_str());
  }
  ::rmdir(dir.c_str());
}

}  // namespace

core::Result<RequestSpool> RequestSpool::create(const std::string& temp_dir, DiskBudget& budget) {
  std::string pattern = temp_dir + "/brine-serve.XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {  // mkdtemp makes it 0700
    return core::fail(core::ErrorCode::kIo, 0, fmt::format("cannot make a directory in {}: {}", temp_dir, std::strerror(errno)));
  }
  std::string dir(buf.data());
  const int fd = open_unnamed(dir);
  if (fd < 0) {
    const int err = errno;
    ::rmdir(dir.c_str());
    return core::fail(core::ErrorCode::kIo, 0, fmt::format("cannot make a temp file in {}: {}", temp_dir, std::strerror(err)));
  }
  return RequestSpool(std::move(dir), fd, budget);
}

RequestSpool::RequestSpool(RequestSpool&& other) noexcept
    : dir_(std::move(other.dir_)), upload_fd_(other.upload_fd_), budget_(other.budget_), reserved_(other.reserved_),
      upload_size_(other.upload_size_) {
  other.upload_fd_ = -1;
  other.reserved_ = 0;
  other.dir_.clear();
}

RequestSpool::~RequestSpool() {
  if (upload_fd_ >= 0) ::close(upload_fd_);
  if (!dir_.empty()) remove_dir(dir_);
  if (reserved_ != 0) budget_->release(reserved_);
}

bool RequestSpool::reserve(std::uint64_t bytes) {
  if (!budget_->try_reserve(bytes)) return false;
  reserved_ += bytes;
  return true;
}

bool RequestSpool::append(const char* data, std::size_t size) {
  if (!core::write_all(upload_fd_, core::Bytes(reinterpret_cast<const std::uint8_t*>(data), size))) return false;
  upload_size_ += size;
  return true;
}

std::string RequestSpool::upload_path() const { return fmt::format("/proc/self/fd/{}", upload_fd_); }

}  // namespace brine::serve
