// Where uploads and sanitize outputs live while a request is served: a private directory per
// request (mode 0700, under the service's temp dir), the upload an unnamed file in it (O_TMPFILE,
// mode 0600) that vanishes when closed, and a budget on the disk all requests hold at once.
// One request never names, lists or opens another's files; everything is removed when the
// request ends, however it ends.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "core/result.hpp"

namespace brine::serve {

/// Bytes of temp disk the requests in progress may hold together.
class DiskBudget {
 public:
  explicit DiskBudget(std::uint64_t capacity) : capacity_(capacity) {}
  /// Takes `bytes` if they fit under the capacity.
  bool try_reserve(std::uint64_t bytes);
  void release(std::uint64_t bytes) { used_.fetch_sub(bytes, std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t used() const { return used_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t capacity() const { return capacity_; }

 private:
  const std::uint64_t capacity_;
  std::atomic<std::uint64_t> used_{0};
};

/// One request's private directory, its upload file, and the budget it holds.
class RequestSpool {
 public:
  /// Makes the directory under `temp_dir`.
  static core::Result<RequestSpool> create(const std::string& temp_dir, DiskBudget& budget);
  RequestSpool(RequestSpool&&) noexcept;
  RequestSpool& operator=(RequestSpool&&) = delete;
  RequestSpool(const RequestSpool&) = delete;
  ~RequestSpool();

  /// Reserves `bytes` more of the budget for this request; false if they do not fit.
  bool reserve(std::uint64_t bytes);
  /// Appends to the upload; false on a write error (disk full).
  bool append(const char* data, std::size_t size);
  [[nodiscard]] std::uint64_t upload_size() const { return upload_size_; }
  /// A path that opens the upload (the unnamed file has no name of its own).
  [[nodiscard]] std::string upload_path() const;
  /// A path in the private directory for a sanitize output.
  [[nodiscard]] std::string output_path(const std::string& file_name) const { return dir_ + "/" + file_name; }
  [[nodiscard]] const std::string& dir() const { return dir_; }

 private:
  RequestSpool(std::string dir, int upload_fd, DiskBudget& budget) : dir_(std::move(dir)), upload_fd_(upload_fd), budget_(&budget) {}
  std::string dir_;
  int upload_fd_ = -1;
  DiskBudget* budget_;
  std::uint64_t reserved_ = 0;
  std::uint64_t upload_size_ = 0;
};

}  // namespace brine::serve
