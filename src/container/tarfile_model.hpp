// A model of CPython 3.11's tarfile reading (Lib/tarfile.py: TarFile.next, TarInfo.frombuf,
// _proc_builtin/_proc_gnulong/_proc_pax, getmember, extract, extractfile) for the one path that
// matters to brine: torch.load's legacy tar attempt, tarfile.open(fileobj=f, mode='r:').
//
// tarfile differs from libarchive and GNU tar in ways an attacker can choose: it checks only the
// header checksum (signed or unsigned sum, never the 'ustar' magic), parses numbers with Python's
// int(x, 8) after cutting at the first NUL (so "+7", "0o7", "1_0" and spaces are numbers) or as
// base-256, applies the ustar prefix field to every non-GNU header, treats unknown type flags as
// regular files, does not skip the data of link entries, applies pax *global* headers (path,
// size...) to every later member, ends the archive silently at the first bad header after the
// first, and finds a member by name from the end (the last one wins). This reader reproduces
// those decisions; where it cannot (sparse members, huge or negative sizes, deep header chains,
// links that leave the archive) it says so, and the caller reports it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/byte_reader.hpp"

namespace brine::container {

struct TarMember {
  std::string name;      ///< after prefix, GNU longname and pax processing (raw bytes)
  std::string linkname;
  char type = '0';       ///< the type flag byte (AREGTYPE with a trailing '/' is already DIRTYPE)
  std::uint64_t header_offset = 0;
  std::uint64_t data_offset = 0;
  std::uint64_t size = 0;  ///< bytes of data (pax size overrides the header)

  /// tarfile's isreg() or a type it does not know (which it also reads as a regular file).
  [[nodiscard]] bool regular() const;
  [[nodiscard]] bool hardlink() const { return type == '1'; }
  [[nodiscard]] bool symlink() const { return type == '2'; }
  [[nodiscard]] bool directory() const { return type == '5'; }
};

/// How the header walk ended, as tarfile.open / getmembers would.
enum class TarEnd : std::uint8_t {
  kClean,         ///< end-of-archive block, end of data, or a bad header after the first (silently)
  kTarError,      ///< tarfile.ReadError: torch.load falls back to reading the file as a pickle stream
  kUnmodelled,    ///< brine cannot establish what tarfile does next (reason in `why`)
};

struct TarfileReading {
  bool opens = false;  ///< tarfile.open(mode='r:') succeeds (false: ReadError at the first header)
  std::string open_error;
  std::vector<TarMember> members;
  TarEnd end = TarEnd::kClean;
  std::string why;             ///< for kTarError / kUnmodelled
  std::vector<std::string> notes;  ///< things a tar reader other than tarfile reads differently
};

/// Walks the headers the way tarfile does. Stops at `max_members` (end = kUnmodelled, why names
/// the limit). Never reads outside `data`.
TarfileReading read_tarfile(core::Bytes data, std::uint64_t max_members);

/// True if tarfile.open(mode='r:') would accept the first block (a valid checksum is enough).
bool tarfile_opens(core::Bytes data);

/// What torch.load gets when it asks tarfile for a member.
struct TarContent {
  enum class Kind : std::uint8_t {
    kBytes,       ///< these bytes (`truncated`: the member runs past the file; reading on raises ReadError)
    kFails,       ///< the loader raises something other than TarError (KeyError, IsADirectoryError...)
    kUnmodelled,  ///< the content comes from outside the archive or from a path brine does not model
  };
  Kind kind = Kind::kFails;
  core::Bytes bytes;
  bool truncated = false;
  const TarMember* member = nullptr;  ///< the member whose data it is
  std::string why;
};

/// tar.extract(name, path=tmpdir) then open(tmpdir/name): links are made on disk, so a symbolic
/// link reads whatever it points to. `extracted` are names already extracted into the same
/// directory, with their contents (torch extracts 'storages' before 'tensors').
TarContent tarfile_extract(const TarfileReading& t, core::Bytes data, std::string_view name,
                           const std::vector<std::pair<std::string, TarContent>>& extracted);

/// tar.extractfile(name): links are followed inside the archive.
TarContent tarfile_extractfile(const TarfileReading& t, core::Bytes data, std::string_view name);

/// os.path.normpath for POSIX paths.
std::string posix_normpath(std::string_view path);

/// Python's int(text, base) for the ASCII forms it accepts (whitespace, sign, 0o/0x prefix,
/// single underscores between digits). nullopt where Python raises ValueError or the value does
/// not fit in int64 (`overflow` is then set).
std::optional<std::int64_t> python_int(std::string_view text, int base, bool* overflow = nullptr);

}  // namespace brine::container
