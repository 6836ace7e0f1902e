// The raw structure of a zip archive, read by brine itself: end-of-central-directory records
// (classic and ZIP64), the central directory, and the local headers walked from the start.
//
// Loaders disagree about what an archive holds. torch (miniz) takes
// names and sizes from the central directory and finds data through the local header's
// lengths; Python's zipfile also insists that the local name matches; a streaming reader sees
// only local headers. brine parses every structure itself, bounds-checked, so that it can scan
// what each of those readers would read and report every place where they disagree.
// Nothing here allocates from a size the file claims.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/byte_reader.hpp"
#include "core/mapped_file.hpp"
#include "core/result.hpp"

namespace brine::container {

struct ZipLocal {
  std::uint64_t offset = 0;        ///< of the PK\3\4 signature
  std::uint16_t flags = 0;
  std::uint16_t method = 0;
  std::uint32_t crc = 0;
  std::uint64_t compressed_size = 0;
  std::uint64_t size = 0;
  /// In a layout's walk: a view into the walk's one name buffer (lives as long as the layout or
  /// a copy of it). From parse_local_header(): see there.
  std::string_view name;
  std::uint64_t data_offset = 0;   ///< offset + 30 + name length + extra length
  bool has_descriptor = false;     ///< flag bit 3: crc and sizes follow the data
  bool zip64 = false;              ///< has a ZIP64 extra field (its descriptor has 64-bit sizes)
  /// Length of the member's data as the local-header walk measured it (the header's size, or
  /// the central directory's, or where its data descriptor or deflate stream ends).
  std::uint64_t walk_length = 0;
};

struct ZipCentral {
  std::uint64_t offset = 0;        ///< of this central directory record
  std::uint16_t flags = 0;
  std::uint16_t method = 0;
  std::uint32_t crc = 0;
  std::uint64_t compressed_size = 0;
  std::uint64_t size = 0;
  std::uint64_t local_offset = 0;  ///< as recorded (before any prepended-data adjustment)
  /// A view into the parsed bytes (the central directory): valid as long as they are. No copy
  /// per entry: a 1,024-tensor checkpoint would pay a fresh heap string for each, per reader.
  std::string_view name;
};

namespace detail {
struct ZipDirectory;
struct ZipWalk;
}  // namespace detail

/// Whose reading of the end records and central directory to follow.
enum class ZipReader : std::uint8_t {
  /// miniz (torch.load): the ZIP64 locator's absolute offset, the entry count honoured exactly,
  /// offsets absolute (data in front of the archive breaks it).
  kMiniz,
  /// Python's zipfile: the ZIP64 record taken from just before its locator, the count ignored
  /// (records are read while inside the directory's size), every offset shifted by the bytes
  /// found in front of the archive.
  kZipfile,
};

struct ZipLayout {
  ZipReader reader = ZipReader::kMiniz;
  std::uint64_t eocd_offset = 0;
  bool zip64 = false;
  std::uint64_t declared_entries = 0;  ///< entry count the EOCD claims
  std::uint64_t cd_offset = 0;         ///< as recorded
  std::uint64_t cd_size = 0;
  /// Bytes in front of the archive: (where the central directory really is) - (where the EOCD
  /// says it is). Python's zipfile shifts every offset by this; miniz does not.
  std::int64_t prepended = 0;
  std::uint64_t trailing = 0;          ///< bytes after the EOCD record and its comment
  /// The records this reader reads. Views into storage the layout shares (with copies of itself
  /// and with the other reader's layout when both read the same records): valid as long as the
  /// layout (or a copy) lives.
  std::span<const ZipCentral> central;
  std::uint64_t cd_start = 0;          ///< where this reader reads the central directory
  std::span<const ZipLocal> locals;    ///< from walking local headers from the archive start
  /// Byte ranges between local members (and before the directory) that are no local header:
  /// a streaming reader resyncs past them, so whatever they hold is scanned too.
  std::span<const std::pair<std::uint64_t, std::uint64_t>> gaps;
  std::vector<std::string> problems;   ///< structural inconsistencies found while parsing
  std::size_t walk_problems_from = 0;  ///< problems[i] for i >= this were found by the local walk
  bool count_too_large = false;        ///< the EOCD claims more entries than the directory holds
  bool count_too_small = false;        ///< ... fewer: miniz never sees the rest

  /// What `central`, `locals` and `gaps` view (immutable once parsed, so shared, never copied).
  std::shared_ptr<const detail::ZipDirectory> directory_storage;
  std::shared_ptr<const detail::ZipWalk> walk_storage;
};

/// Finds the end-of-central-directory record (the last one in the final 64 KiB + 22 bytes).
std::optional<std::uint64_t> find_eocd(core::Bytes data);

/// Parses the archive as `reader` would; the layout's names are views into `data`, which must
/// outlive it. Fails only if that reader finds no directory at all;
/// every other inconsistency is recorded in `problems` and parsing continues. An EOCD that
/// claims more than `max_entries` entries is a kLimitExceeded error (detail "max-archive-entries").
/// `other`, a layout of the same bytes as another reader parsed them, lets this one take its
/// local-header walk instead of walking again when both would walk the same headers (the result
/// is the same; a 1,024-tensor checkpoint has 1,024 local headers and data descriptors to read),
/// and its central directory records when both read the same directory bytes.
core::Result<ZipLayout> parse_zip_layout(core::Bytes data, std::uint64_t max_entries, ZipReader reader = ZipReader::kMiniz,
                                         const ZipLayout* other = nullptr);

/// parse_zip_layout in two steps, for a caller that has other work to do while the local headers
/// are read (each is a pread: a 1,024-tensor checkpoint's take ~4 ms): the end records and the
/// central directory, with `locals` and `gaps` empty; then the walk, which completes `z` exactly
/// as parse_zip_layout would have (`other` as there, and walked itself already if it is to be shared).
core::Result<ZipLayout> parse_zip_directory(core::Bytes data, std::uint64_t max_entries, ZipReader reader = ZipReader::kMiniz,
                                            const ZipLayout* other = nullptr);
void walk_zip_locals(core::Bytes data, std::uint64_t max_entries, ZipLayout& z, const ZipLayout* other = nullptr);

/// Parses the local header at `offset`; nullopt if it is not one or is cut off. The name is a
/// view into `data`.
std::optional<ZipLocal> parse_local_header(core::Bytes data, std::uint64_t offset);
/// The same, reading through `in` (one window for many headers: see core::WindowReader). The
/// name is a view into `in`'s window: valid only until `in` reads again (copy it to keep it).
std::optional<ZipLocal> parse_local_header(core::WindowReader& in, std::uint64_t offset);

/// The stored or deflated bytes of a member, decompressed, at most `max_out` bytes.
/// `compressed_size` comes from whichever reader is being emulated.
core::Result<std::vector<std::uint8_t>> zip_member_data(core::Bytes data, std::uint64_t data_offset,
                                                         std::uint64_t compressed_size, std::uint16_t method,
                                                         std::uint64_t max_out);

/// CRC-32 of the bytes (zip/zlib polynomial).
std::uint32_t crc32_of(core::Bytes data);

}  // namespace brine::container
