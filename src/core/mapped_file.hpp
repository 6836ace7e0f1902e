// Read-only access to a whole input: a memory map for regular files, an owned buffer otherwise.
//
// Mapping means a scan touches only the pages it reads: the storage records of a multi-GB
// checkpoint are never paged in.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/byte_reader.hpp"
#include "core/result.hpp"

namespace brine::core {

class MappedFile {
 public:
  /// Files up to this size are read into memory instead of mapped.
  static constexpr std::uint64_t kReadThreshold = 1 << 20;

  /// Maps `path` read-only. Directories, missing and unreadable files are kIo errors.
  static Result<MappedFile> open(const std::string& path);
  /// Reads a stream (stdin) fully into memory, up to `max_bytes`.
  static Result<MappedFile> read_stream(int fd, std::uint64_t max_bytes, std::uint64_t size_hint = 0);
  /// Wraps an owned buffer (tests, decompressed members).
  static MappedFile from_buffer(std::vector<std::uint8_t> buffer);

  MappedFile(MappedFile&&) noexcept;
  MappedFile& operator=(MappedFile&&) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  [[nodiscard]] Bytes bytes() const { return {data_, size_}; }
  /// Tells the kernel this process is done with the pages wholly inside `range` (a sub-span of
  /// bytes()), so a pass over a multi-GB mapping does not keep it all resident. They stay in the
  /// page cache; reading them again just maps them back. No-op for owned buffers.
  void release(Bytes range) const;
  /// Maps in the pages of `range` in one call (MADV_POPULATE_READ, Linux 5.14+) instead of one
  /// page fault per few pages while copying; a no-op where unsupported or for owned buffers.
  void prefault(Bytes range) const;
  [[nodiscard]] std::uint64_t size() const { return size_; }

 private:
  MappedFile() = default;
  const std::uint8_t* data_ = nullptr;
  std::uint64_t size_ = 0;
  bool mapped_ = false;
  std::vector<std::uint8_t> owned_;
};

}  // namespace brine::core
