// Read-only access to a whole input: a memory map for regular files, an owned buffer otherwise.
//
// Mapping means a scan touches only the pages it reads: the storage records of a multi-GB
// checkpoint are never paged in.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
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
  /// For a mapped file that will be read from its start to its end (a raw pickle): its whole
  /// 2 MiB pieces are read into huge pages (from two pieces on, the second half of them by a
  /// core::SideTask at the same time), and the rest is mapped right after them, so bytes()
  /// stays one span. One read costs less than mapping those pieces in page by page (bench/
  /// README.md finding 17). fd() is -1 afterwards. False, with the map kept, if the file is not
  /// mapped or is under 2 MiB, the memory is refused, or the read comes up short (it changed).
  bool read_whole();
  [[nodiscard]] std::uint64_t size() const { return size_; }
  /// The open file behind a mapping (for pread / copy_file_range), or -1 for owned buffers.
  [[nodiscard]] int fd() const { return fd_; }

 private:
  MappedFile() = default;
  void unmap();
  const std::uint8_t* data_ = nullptr;
  std::uint64_t size_ = 0;
  bool mapped_ = false;
  int fd_ = -1;
  std::vector<std::uint8_t> owned_;
  std::size_t anon_bytes_ = 0;  ///< read_whole's mapping at data_ (the copy, then the file's tail): its bytes
};

/// Maps in the pages under `range` (any readable memory) in one call, MADV_POPULATE_READ, rather
/// than one fault per few pages as a reader walks it: a pass over a 10 MB pickle took ~115 faults
/// of a mapped file. Anonymous pages already present cost a page-table walk; unsupported
/// kernels, and memory that is no mapping, make it a no-op. Never reads past `range`'s pages.
void populate_for_reading(Bytes range);

/// write(2) until all of `bytes` is written: short writes and EINTR are not errors. False on
/// any other failure (errno says which); then some prefix may have been written.
bool write_all(int fd, Bytes bytes);

/// Copies up to out.size() bytes of `data` from `offset` into `out` (fewer at its end) and
/// returns how many. When `data` lies in a live MappedFile's mapping, the bytes are read with
/// pread() from the file instead of through the map: touching one mapped page makes the kernel
/// map in its neighbours too (fault-around, whole large folios: about 230 KB per touch measured
/// on this machine's 6.18 kernel), so reading the 1,024 local headers of a 1 GB zip through the
/// map made 230 MB resident; pread copies only what is asked. Anywhere else, a plain copy.
std::size_t read_at(Bytes data, std::uint64_t offset, std::span<std::uint8_t> out);

/// Whether read_at reads `data` with pread (it starts in a live MappedFile's mapping): each
/// small read at a scattered offset is then a system call.
bool read_through_file(Bytes data);

/// Small reads at scattered offsets of `data` (zip local headers) through read_at, one pread per
/// window: 512 bytes from the first offset asked, so neighbouring fields (a data descriptor and
/// the next local header) cost one read. The view returned stays valid until the next call.
class WindowReader {
 public:
  explicit WindowReader(Bytes data) : data_(data) {}
  /// `n` bytes at `offset`, or fewer where `data` ends (empty past its end).
  Bytes peek(std::uint64_t offset, std::size_t n);
  [[nodiscard]] Bytes data() const { return data_; }

 private:
  static constexpr std::size_t kWindow = 512;
  Bytes data_;
  std::vector<std::uint8_t> window_;
  std::uint64_t window_at_ = 0;
  bool looked_up_ = false;  ///< whether `data_` lies in a mapped file is looked up once
  bool in_file_ = false;
};

}  // namespace brine::core
