// An output file that appears complete or not at all: bytes go to a temporary file in the same
// directory, which is renamed over the destination on commit() and removed otherwise.
//
// Large outputs can be written with O_DIRECT (see DirectIo): the output's bytes are assembled in
// order in a page-aligned staging buffer and written in whole aligned blocks, so the kernel
// neither dirties page cache for them nor splices folio by folio, and the final fsync has little
// left to write. Where O_DIRECT is refused the file is written exactly as without it.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/byte_reader.hpp"
#include "core/result.hpp"

namespace brine::writer {

/// The calls the O_DIRECT path makes, replaceable so that tests can refuse O_DIRECT the way some
/// file systems do (EINVAL when it is turned on, or on the first write).
struct DirectIo {
  int (*enable)(int fd);  ///< turns O_DIRECT on for `fd`: 0, or -1 with errno
  ssize_t (*pwrite)(int fd, const void* data, std::size_t n, off_t offset);
};
/// fcntl(F_SETFL, O_DIRECT) and ::pwrite.
const DirectIo& system_direct_io();

/// A page-aligned anonymous mapping (2 MiB-aligned, MADV_HUGEPAGE: a direct write from huge pages
/// reaches the disk in a few large requests, from 4 KiB pages in many small ones).
class StageBuffer {
 public:
  StageBuffer() = default;
  StageBuffer(StageBuffer&& other) noexcept;
  StageBuffer& operator=(StageBuffer&& other) noexcept;
  StageBuffer(const StageBuffer&) = delete;
  StageBuffer& operator=(const StageBuffer&) = delete;
  ~StageBuffer();
  /// Maps `n` bytes (a multiple of 2 MiB); false if the mapping fails.
  bool allocate(std::size_t n);
  [[nodiscard]] std::uint8_t* data() const { return data_; }
  [[nodiscard]] std::size_t size() const { return size_; }

 private:
  void release();
  std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

class AtomicFile {
 public:
  /// Bytes of output assembled before each direct write (bounded memory: this is all of it).
  static constexpr std::size_t kDirectStageBytes = 4u << 20;

  /// Fails (kIo) if `path` exists and `force` is false, or the temporary cannot be created.
  /// With `direct`, the file is written with O_DIRECT through it when the file system allows;
  /// when O_DIRECT is refused (on enabling it, or EINVAL on a write) the rest is written as
  /// without `direct`, and the output is the same bytes.
  static core::Result<AtomicFile> create(const std::string& path, bool force, const DirectIo* direct = nullptr);
  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&&) = delete;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();  // removes the temporary unless committed

  core::Status write(core::Bytes bytes);
  core::Status write(std::string_view text) { return write(core::as_bytes(text)); }
  /// Zero bytes (padding).
  core::Status write_zeros(std::uint64_t n);
  /// Appends up to `n` bytes of the file `fd` from `offset`: read into the staging buffer when
  /// writing directly, else copied by the kernel (copy_file_range: no page of them is mapped or
  /// read into this process). Returns how many were copied: fewer than `n` (maybe 0) when the
  /// kernel cannot copy between these files (EXDEV, ENOSYS, EINVAL, EOPNOTSUPP) or the source
  /// ends early; the caller writes the rest.
  core::Result<std::uint64_t> copy_from_file(int fd, std::uint64_t offset, std::uint64_t n);
  [[nodiscard]] std::uint64_t written() const { return written_; }
  /// Whether writes still go through O_DIRECT (false once it was refused).
  [[nodiscard]] bool direct() const { return direct_ != nullptr; }
  /// Flushes, fsyncs and renames onto the destination, then fsyncs the destination's directory so
  /// that the rename itself survives a crash: when it returns, the output is durable.
  core::Status commit();
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  AtomicFile() = default;
  core::Status flush();
  core::Result<std::uint64_t> copy_kernel(int fd, std::uint64_t offset, std::uint64_t n);
  core::Result<std::uint64_t> copy_staged(int fd, std::uint64_t offset, std::uint64_t n);
  core::Status stage(core::Bytes bytes);
  core::Status write_stage(bool last);
  core::Status leave_direct(std::size_t from);
  core::Status sync_directory() const;
  std::string path_, temp_;
  int fd_ = -1;
  std::vector<std::uint8_t> buffer_;  ///< small writes (headers, protobuf prefixes) are gathered here
  std::uint64_t written_ = 0;
  bool committed_ = false;
  // Direct writing: the output from byte `stage_at_` on is in `stage_` (`staged_` bytes);
  // everything before it is on disk. Null `direct_`: the buffered path above.
  const DirectIo* direct_ = nullptr;
  StageBuffer stage_;
  std::size_t staged_ = 0;
  std::uint64_t stage_at_ = 0;
};

}  // namespace brine::writer
