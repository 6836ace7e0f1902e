// An output file that appears complete or not at all: bytes go to a temporary file in the same
// directory, which is renamed over the destination on commit() and removed otherwise.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/byte_reader.hpp"
#include "core/result.hpp"

namespace brine::writer {

class AtomicFile {
 public:
  /// Fails (kIo) if `path` exists and `force` is false, or the temporary cannot be created.
  static core::Result<AtomicFile> create(const std::string& path, bool force);
  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&&) = delete;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();  // removes the temporary unless committed

  core::Status write(core::Bytes bytes);
  core::Status write(std::string_view text) { return write(core::as_bytes(text)); }
  /// Zero bytes (padding).
  core::Status write_zeros(std::uint64_t n);
  /// Appends up to `n` bytes of the file `fd` from `offset`, copied by the kernel
  /// (copy_file_range: no page of them is mapped or read into this process). Returns how many
  /// were copied: fewer than `n` (maybe 0) when the kernel cannot copy between these files
  /// (EXDEV, ENOSYS, EINVAL, EOPNOTSUPP) or the source ends early; the caller writes the rest.
  core::Result<std::uint64_t> copy_from_file(int fd, std::uint64_t offset, std::uint64_t n);
  [[nodiscard]] std::uint64_t written() const { return written_; }
  /// Flushes, fsyncs and renames onto the destination, then fsyncs the destination's directory so
  /// that the rename itself survives a crash: when it returns, the output is durable.
  core::Status commit();
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  AtomicFile() = default;
  core::Status flush();
  core::Status sync_directory() const;
  std::string path_, temp_;
  int fd_ = -1;
  std::vector<std::uint8_t> buffer_;  ///< small writes (headers, protobuf prefixes) are gathered here
  std::uint64_t written_ = 0;
  bool committed_ = false;
};

}  // namespace brine::writer
