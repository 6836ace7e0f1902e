// A read-only zip archive over bytes already in memory (a mapped file), through libzip.
//
// libzip reads the central directory; members are only decompressed when read() is called,
// so storage records of a checkpoint are never touched by a scan.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/byte_reader.hpp"
#include "core/result.hpp"

namespace brine::container {

struct ZipEntry {
  std::string name;
  std::uint64_t index = 0;
  std::uint64_t size = 0;             ///< uncompressed, as the central directory claims
  std::uint64_t compressed_size = 0;
  std::uint16_t method = 0;           ///< 0 stored, 8 deflate, ...
  bool encrypted = false;
};

class ZipArchive {
 public:
  /// Opens the archive; kContainer error if libzip cannot read its directory. `strict` adds
  /// libzip's consistency checks between local headers and the central directory.
  static core::Result<ZipArchive> open(core::Bytes data, bool strict = false);

  ZipArchive(ZipArchive&&) noexcept;
  ZipArchive& operator=(ZipArchive&&) noexcept;
  ~ZipArchive();

  [[nodiscard]] const std::vector<ZipEntry>& entries() const { return entries_; }
  /// Reads a whole member, at most `max_bytes` (more is a kLimitExceeded error).
  core::Result<std::vector<std::uint8_t>> read(const ZipEntry& entry, std::uint64_t max_bytes) const;
  /// Reads at most `n` bytes from the start of a member (for sniffing).
  core::Result<std::vector<std::uint8_t>> read_prefix(const ZipEntry& entry, std::uint64_t n) const;

 private:
  struct Handle;
  ZipArchive() = default;
  std::unique_ptr<Handle> handle_;
  std::vector<ZipEntry> entries_;
};

}  // namespace brine::container
