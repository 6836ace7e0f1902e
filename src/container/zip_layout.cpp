#include "container/zip_layout.hpp"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "container/decompress.hpp"
#include "core/mapped_file.hpp"

namespace brine::container {

using core::ByteReader;
using core::ErrorCode;

namespace detail {

/// The central directory records in [start, limit), read as zipfile reads them (while records
/// fit); miniz reads a prefix of the same list (it stops at the count the EOCD claims).
struct ZipDirectory {
  std::uint64_t start = 0;
  std::uint64_t limit = 0;
  std::vector<ZipCentral> records;
  std::optional<std::string> problem;   ///< why reading stopped early, if it did
  std::optional<std::uint64_t> too_many;  ///< where reading stopped at max_entries records
};

/// A local-header walk: its members' names live in one buffer.
struct ZipWalk {
  std::vector<ZipLocal> locals;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> gaps;
  std::string names;
  std::vector<std::string> problems;
};

}  // namespace detail

namespace {

constexpr std::uint32_t kLocalSig = 0x04034b50;
constexpr std::uint32_t kCentralSig = 0x02014b50;
constexpr std::uint32_t kEocdSig = 0x06054b50;
constexpr std::uint32_t kEocd64Sig = 0x06064b50;
constexpr std::uint32_t kLocator64Sig = 0x07064b50;
constexpr std::uint32_t kDescriptorSig = 0x08074b50;

std::uint32_t sig_at(core::Bytes d, std::uint64_t pos) {
  if (pos + 4 > d.size()) return 0;
  return static_cast<std::uint32_t>(d[pos]) | static_cast<std::uint32_t>(d[pos + 1]) << 8 |
         static_cast<std::uint32_t>(d[pos + 2]) << 16 | static_cast<std::uint32_t>(d[pos + 3]) << 24;
}

/// The ZIP64 extended-information extra field (0x0001): each 64-bit value is present only when
/// its 32-bit field is saturated, in the order usize, csize, offset. Returns whether it exists.
bool apply_zip64_extra(core::Bytes extra, std::uint64_t& usize, std::uint64_t& csize, std::uint64_t* offset) {
  ByteReader r(extra);
  while (r.remaining() >= 4) {
    const auto id = *r.uint_le(2);
    const auto len = *r.uint_le(2);
    auto body = r.bytes(len);
    if (!body) return false;
    if (id != 0x0001) continue;
    ByteReader z(*body);
    if (usize == 0xFFFFFFFF) usize = z.uint_le(8).value_or(usize);
    if (csize == 0xFFFFFFFF) csize = z.uint_le(8).value_or(csize);
    if (offset != nullptr && *offset == 0xFFFFFFFF) *offset = z.uint_le(8).value_or(*offset);
    return true;
  }
  return false;
}

}  // namespace

std::uint32_t crc32_of(core::Bytes data) {
  uLong crc = crc32(0L, Z_NULL, 0);
  std::uint64_t pos = 0;
  while (pos < data.size()) {
    const auto n = static_cast<uInt>(std::min<std::uint64_t>(data.size() - pos, 1u << 30));
    crc = crc32(crc, data.data() + pos, n);
    pos += n;
  }
  return static_cast<std::uint32_t>(crc);
}

std::optional<std::uint64_t> find_eocd(core::Bytes data) {
  if (data.size() < 22) return std::nullopt;
  const std::uint64_t lowest = data.size() > 22 + 65535 ? data.size() - (22 + 65535) : 0;
  // The last record start at or after `lowest` (a comment is at most 65,535 bytes). Every pickle
  // is checked for an archive behind it, so this runs over whole small files: memrchr finds the
  // candidate 'P' bytes many at a time, where a test of every position cost ~8 instructions a byte.
  const auto* base = data.data();
  std::uint64_t end = data.size() - 22 + 1;  // candidates lie in [lowest, end)
  while (end > lowest) {
    const void* hit = ::memrchr(base + lowest, 'P', static_cast<std::size_t>(end - lowest));
    if (hit == nullptr) return std::nullopt;
    const auto pos = static_cast<std::uint64_t>(static_cast<const std::uint8_t*>(hit) - base);
    if (sig_at(data, pos) == kEocdSig) return pos;
    end = pos;
  }
  return std::nullopt;
}

std::optional<ZipLocal> parse_local_header(core::WindowReader& in, std::uint64_t offset) {
  // Local headers lie between members, up to gigabytes apart: read through the window (pread
  // for mapped files), never by touching the mapping (see core::read_at).
  const core::Bytes fixed = in.peek(offset, 30);
  if (fixed.size() < 30 || sig_at(fixed, 0) != kLocalSig) return std::nullopt;
  ByteReader r(fixed, 4);
  ZipLocal l;
  l.offset = offset;
  r.uint_le(2);  // version needed
  l.flags = static_cast<std::uint16_t>(*r.uint_le(2));
  l.method = static_cast<std::uint16_t>(*r.uint_le(2));
  r.uint_le(4);  // time, date
  l.crc = static_cast<std::uint32_t>(*r.uint_le(4));
  l.compressed_size = *r.uint_le(4);
  l.size = *r.uint_le(4);
  const auto name_len = *r.uint_le(2);
  const auto extra_len = *r.uint_le(2);
  // `fixed` is not valid past the next peek.
  const core::Bytes rest = in.peek(offset + 30, name_len + extra_len);
  if (rest.size() < name_len + extra_len) return std::nullopt;
  l.name = core::as_chars(rest.first(name_len));
  l.zip64 = apply_zip64_extra(rest.subspan(name_len), l.size, l.compressed_size, nullptr);
  l.data_offset = offset + 30 + name_len + extra_len;
  l.has_descriptor = (l.flags & 0x08) != 0;
  return l;
}

std::optional<ZipLocal> parse_local_header(core::Bytes data, std::uint64_t offset) {
  core::WindowReader in(data);
  auto l = parse_local_header(in, offset);
  // The window dies with `in`; the same bytes are in `data`.
  if (l) l->name = core::as_chars(data.subspan(offset + 30, l->name.size()));
  return l;
}

namespace {

/// Whether the local-header walk of `b` would be the walk `a` made: the same start (data in
/// front), the same end (the directory's start) and the same local offsets and compressed
/// sizes, in order (the sizes are what the walk takes for members whose sizes follow the data).
bool same_walk(const ZipLayout& a, const ZipLayout& b) {
  if (std::max<std::int64_t>(a.prepended, 0) != std::max<std::int64_t>(b.prepended, 0) || a.cd_start != b.cd_start ||
      a.central.size() != b.central.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.central.size(); ++i) {
    if (a.central[i].local_offset != b.central[i].local_offset ||
        a.central[i].compressed_size != b.central[i].compressed_size) {
      return false;
    }
  }
  return true;
}


/// Reads the central directory records in [start, limit) while they fit, at most max_entries.
std::shared_ptr<const detail::ZipDirectory> read_directory(core::Bytes data, std::uint64_t start, std::uint64_t limit,
                                                           std::uint64_t max_entries, std::uint64_t present) {
  auto dir = std::make_shared<detail::ZipDirectory>();
  dir->start = start;
  dir->limit = limit;
  dir->records.reserve(std::min(present, max_entries));
  ByteReader c(data, start);
  while (c.pos() + 46 <= limit) {
    if (dir->records.size() >= max_entries) {
      dir->too_many = c.pos();
      break;
    }
    if (sig_at(data, c.pos()) != kCentralSig) {
      dir->problem = fmt::format("no central directory record at offset {}", c.pos());
      break;
    }
    ZipCentral e;
    e.offset = c.pos();
    c.seek(c.pos() + 4 + 2 + 2);
    e.flags = static_cast<std::uint16_t>(*c.uint_le(2));
    e.method = static_cast<std::uint16_t>(*c.uint_le(2));
    c.uint_le(4);
    e.crc = static_cast<std::uint32_t>(*c.uint_le(4));
    e.compressed_size = *c.uint_le(4);
    e.size = *c.uint_le(4);
    const auto name_len = *c.uint_le(2);
    const auto extra_len = *c.uint_le(2);
    const auto comment = *c.uint_le(2);
    c.seek(c.pos() + 2 + 2 + 4);  // disk, internal and external attributes
    e.local_offset = *c.uint_le(4);
    auto name = c.bytes(name_len);
    auto extra = c.bytes(extra_len);
    auto comment_bytes = c.bytes(comment);
    if (!name || !extra || !comment_bytes) {
      dir->problem = fmt::format("central directory record at offset {} is cut off", e.offset);
      break;
    }
    e.name = core::as_chars(*name);
    apply_zip64_extra(*extra, e.size, e.compressed_size, &e.local_offset);
    dir->records.push_back(e);
  }
  return dir;
}

/// Walks the local headers from the start of the archive to its directory (see parse_zip_layout).
std::shared_ptr<const detail::ZipWalk> walk_locals(core::Bytes data, const ZipLayout& z, std::uint64_t max_entries) {
  auto walk = std::make_shared<detail::ZipWalk>();
  const std::uint64_t shift = z.prepended > 0 ? static_cast<std::uint64_t>(z.prepended) : 0;
  // Sized from the records the directory holds (a plain archive has one local per record).
  walk->locals.reserve(std::min<std::uint64_t>(z.central.size(), max_entries));
  std::size_t name_bytes = 0;
  for (const auto& e : z.central) name_bytes += e.name.size();
  walk->names.reserve(name_bytes);
  // The directory's records by local offset (shifted as this reader shifts), the first record
  // for each: looked up for members whose sizes follow their data. Sorted on first need.
  std::vector<std::pair<std::uint64_t, const ZipCentral*>> by_local;
  auto central_at = [&](std::uint64_t at) -> const ZipCentral* {
    if (by_local.empty() && !z.central.empty()) {
      by_local.reserve(z.central.size());
      // Keyed as the sum wraps (hostile offsets may): the same key a map of the sums would use.
      for (const auto& e : z.central) by_local.emplace_back(e.local_offset + shift, &e);
      std::stable_sort(by_local.begin(), by_local.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    }
    auto it = std::lower_bound(by_local.begin(), by_local.end(), at, [](const auto& a, std::uint64_t key) { return a.first < key; });
    return it == by_local.end() || it->first != at ? nullptr : it->second;
  };
  const std::uint64_t walk_limit = std::min<std::uint64_t>(z.cd_start, data.size());
  core::WindowReader headers(data);
  std::uint64_t pos = shift;
  auto next_local_sig = [&](std::uint64_t from) -> std::uint64_t {
    for (std::uint64_t p = from; p + 4 <= walk_limit; ++p) {
      if (sig_at(data, p) == kLocalSig) return p;
    }
    return walk_limit;
  };
  auto keep = [&](ZipLocal& local) {
    // The name views `headers`' window, which the next read replaces: into the one buffer
    // (views into it are set once it stops growing).
    walk->names.append(local.name);
    walk->locals.push_back(local);
  };
  while (pos < walk_limit) {
    if (walk->locals.size() >= max_entries) break;
    auto local = parse_local_header(headers, pos);
    if (!local) {
      const std::uint64_t resync = next_local_sig(pos + 1);
      walk->gaps.emplace_back(pos, resync);
      pos = resync;
      continue;
    }
    std::uint64_t length = local->compressed_size;
    bool descriptor_found = false;
    std::uint64_t next = 0;
    if (local->has_descriptor && length == 0) {
      // Sizes are in the data descriptor: take them from the central directory, or find where
      // the member ends as a streaming reader must.
      if (const ZipCentral* e = central_at(pos); e != nullptr) {
        length = e->compressed_size;
      } else if (local->method == 8) {
        auto inflated = decompress(Codec::kDeflateRaw, data.subspan(local->data_offset, walk_limit - std::min(walk_limit, local->data_offset)), 1ull << 34);
        length = inflated ? inflated->consumed : 0;
      } else {
        // Stored: the first descriptor whose compressed size equals the distance to it.
        for (std::uint64_t p = local->data_offset; p + 16 <= walk_limit; ++p) {
          if (sig_at(data, p) != kDescriptorSig) continue;
          ByteReader d(data, p + 8);
          const std::uint64_t csize = local->zip64 ? d.uint_le(8).value_or(0) : d.uint_le(4).value_or(0);
          if (csize == p - local->data_offset) {
            length = csize;
            next = p + 4 + 4 + (local->zip64 ? 16 : 8);
            descriptor_found = true;
            break;
          }
        }
      }
    }
    if (next == 0) next = local->data_offset + length;
    if (next > walk_limit || next < local->data_offset) {
      walk->problems.push_back(fmt::format("the member at offset {} runs past the central directory", pos));
      keep(*local);
      break;
    }
    local->walk_length = length;
    keep(*local);
    if (local->has_descriptor && !descriptor_found) {
      if (sig_at(headers.peek(next, 4), 0) == kDescriptorSig) next += 4;
      next += local->zip64 ? 20 : 12;  // crc + sizes
    }
    pos = next;
  }
  std::size_t at = 0;
  for (auto& l : walk->locals) {
    l.name = std::string_view(walk->names).substr(at, l.name.size());
    at += l.name.size();
  }
  return walk;
}
}  // namespace

core::Result<ZipLayout> parse_zip_directory(core::Bytes data, std::uint64_t max_entries, ZipReader reader, const ZipLayout* other) {
  auto eocd = find_eocd(data);
  if (!eocd) return core::fail(core::Error{ErrorCode::kContainer, 0, {}, {}, "zip: no end-of-central-directory record"});
  ZipLayout z;
  z.reader = reader;
  z.eocd_offset = *eocd;
  ByteReader r(data, *eocd + 4);
  const auto disk = *r.uint_le(2);
  const auto cd_disk = *r.uint_le(2);
  const auto entries_disk = *r.uint_le(2);
  z.declared_entries = *r.uint_le(2);
  z.cd_size = *r.uint_le(4);
  z.cd_offset = *r.uint_le(4);
  const auto comment_len = *r.uint_le(2);
  const std::uint64_t record_end = *eocd + 22 + comment_len;
  if (record_end > data.size()) {
    z.problems.push_back(fmt::format("the EOCD comment claims {} bytes, {} remain", comment_len, data.size() - *eocd - 22));
  } else {
    z.trailing = data.size() - record_end;
  }
  if (disk != 0 || cd_disk != 0 || entries_disk != z.declared_entries) {
    z.problems.push_back("the EOCD describes a multi-disk archive");
  }
  std::uint64_t cd_end = *eocd;
  // ZIP64: miniz follows the locator's offset; zipfile takes the record right before the locator.
  if (*eocd >= 20 && sig_at(data, *eocd - 20) == kLocator64Sig) {
    ByteReader loc(data, *eocd - 20 + 8);
    const std::uint64_t by_locator = *loc.uint_le(8);
    const std::uint64_t before = *eocd >= 20 + 56 ? *eocd - 20 - 56 : UINT64_MAX;
    const std::uint64_t rec = reader == ZipReader::kMiniz ? by_locator : before;
    if (by_locator != before) {
      z.problems.push_back(fmt::format("the ZIP64 locator points at offset {}, the record before it is at {}", by_locator, before));
    }
    if (rec != UINT64_MAX && sig_at(data, rec) == kEocd64Sig && rec + 56 <= data.size()) {
      ByteReader z64(data, rec + 4 + 8 + 2 + 2 + 4 + 4);
      z64.uint_le(8);  // entries on this disk
      z.declared_entries = *z64.uint_le(8);
      z.cd_size = *z64.uint_le(8);
      z.cd_offset = *z64.uint_le(8);
      z.zip64 = true;
      cd_end = reader == ZipReader::kMiniz ? rec : *eocd - 20 - 56;
    } else {
      z.problems.push_back("the ZIP64 locator points at no ZIP64 EOCD record");
    }
  }
  if (z.declared_entries > max_entries) {
    return core::fail(core::Error{ErrorCode::kLimitExceeded, *eocd, {}, {},
                                  fmt::format("max-archive-entries: the directory claims {} entries, limit {}",
                                              z.declared_entries, max_entries)});
  }
  if (reader == ZipReader::kZipfile) {
    if (z.cd_size > cd_end) {
      return core::fail(core::Error{ErrorCode::kContainer, *eocd, {}, {},
                                    fmt::format("zip: central directory of {} bytes cannot end at {}", z.cd_size, cd_end)});
    }
    z.cd_start = cd_end - z.cd_size;
    // Both offsets are 64-bit values from the file: the difference may not fit (ZIP64 records
    // can claim any offset). Clamped so that negating it stays defined too.
    if (__builtin_sub_overflow(z.cd_start, z.cd_offset, &z.prepended)) {
      z.prepended = z.cd_start >= z.cd_offset ? INT64_MAX : -INT64_MAX;
      z.problems.push_back("the central directory offset is absurd (beyond 2^63 bytes away)");
    }
  } else {
    z.cd_start = z.cd_offset;
    z.prepended = 0;
    if (z.cd_start > data.size()) {
      return core::fail(core::Error{ErrorCode::kContainer, *eocd, {}, {},
                                    fmt::format("zip: central directory offset {} is past the end of the file", z.cd_offset)});
    }
  }

  // Central directory records: zipfile reads while inside cd_size; miniz reads exactly the count.
  const std::uint64_t cd_limit = std::min<std::uint64_t>(data.size(), reader == ZipReader::kZipfile ? cd_end : z.cd_start + z.cd_size);
  // How many records the directory's size holds, whoever reads it (records present in the
  // bytes, not what the EOCD claims: this sizes the vectors below).
  std::uint64_t present = 0;
  {
    ByteReader k(data, z.cd_start);
    while (k.pos() + 46 <= std::min<std::uint64_t>(data.size(), z.cd_start + z.cd_size) && sig_at(data, k.pos()) == kCentralSig) {
      k.seek(k.pos() + 28);
      const auto nl = *k.uint_le(2), el = *k.uint_le(2), cl = *k.uint_le(2);
      k.seek(k.pos() + 12 + nl + el + cl);
      ++present;
    }
  }
  if (other != nullptr && other->directory_storage && other->directory_storage->start == z.cd_start &&
      other->directory_storage->limit == cd_limit) {
    z.directory_storage = other->directory_storage;  // the same bytes, read the same way
  } else {
    z.directory_storage = read_directory(data, z.cd_start, cd_limit, max_entries, present);
  }
  const detail::ZipDirectory& dir = *z.directory_storage;
  if (reader == ZipReader::kZipfile) {
    if (dir.too_many) {
      return core::fail(core::Error{ErrorCode::kLimitExceeded, *dir.too_many, {}, {},
                                    fmt::format("max-archive-entries: more than {} entries", max_entries)});
    }
    z.central = dir.records;
    if (dir.problem) z.problems.push_back(*dir.problem);
  } else {
    // miniz stops at the count (never more than max_entries: checked above); whatever ended
    // the reading earlier ended miniz's too.
    z.central = std::span<const ZipCentral>(dir.records).first(std::min<std::uint64_t>(dir.records.size(), z.declared_entries));
    if (dir.records.size() < z.declared_entries && dir.problem) z.problems.push_back(*dir.problem);
  }
  if (present < z.declared_entries) {
    z.count_too_large = true;
    z.problems.push_back(fmt::format("the EOCD counts {} entries, the directory's {} bytes hold {}", z.declared_entries, z.cd_size, present));
  } else if (present > z.declared_entries) {
    z.count_too_small = true;
    z.problems.push_back(fmt::format("the EOCD counts {} entries, the directory's {} bytes hold {}: torch sees only the first {}",
                                     z.declared_entries, z.cd_size, present, z.declared_entries));
  }

  return z;
}

void walk_zip_locals(core::Bytes data, std::uint64_t max_entries, ZipLayout& z, const ZipLayout* other) {
  // Local headers, walked from the start of the archive as a streaming reader would; past bytes
  // that are no local header it resyncs at the next signature, and records the gap.
  if (z.walk_storage) return;  // walked already
  z.walk_problems_from = z.problems.size();
  if (other != nullptr && other->walk_storage && same_walk(*other, z)) {
    // The walk depends only on where it starts and stops and on the directory's local offsets
    // and sizes; another reader that agrees on those walked these very headers already.
    z.walk_storage = other->walk_storage;
  } else {
    z.walk_storage = walk_locals(data, z, max_entries);
  }
  z.locals = z.walk_storage->locals;
  z.gaps = z.walk_storage->gaps;
  z.problems.insert(z.problems.end(), z.walk_storage->problems.begin(), z.walk_storage->problems.end());
}

core::Result<ZipLayout> parse_zip_layout(core::Bytes data, std::uint64_t max_entries, ZipReader reader, const ZipLayout* other) {
  auto z = parse_zip_directory(data, max_entries, reader, other);
  if (z) walk_zip_locals(data, max_entries, *z, other);
  return z;
}

core::Result<std::vector<std::uint8_t>> zip_member_data(core::Bytes data, std::uint64_t data_offset,
                                                         std::uint64_t compressed_size, std::uint16_t method,
                                                         std::uint64_t max_out) {
  if (data_offset > data.size() || compressed_size > data.size() - data_offset) {
    return core::fail(core::Error{ErrorCode::kContainer, data_offset, {}, {},
                                  fmt::format("member data claims {} bytes at offset {}, the file has {}", compressed_size,
                                              data_offset, data.size())});
  }
  const core::Bytes raw = data.subspan(data_offset, compressed_size);
  std::optional<Codec> codec;
  switch (method) {
    case 0:
      if (raw.size() > max_out) {
        return core::fail(core::Error{ErrorCode::kLimitExceeded, data_offset, {}, {},
                                      fmt::format("max-member-bytes: member holds {} bytes, limit {}", raw.size(), max_out)});
      }
      return std::vector<std::uint8_t>(raw.begin(), raw.end());
    case 8: codec = Codec::kDeflateRaw; break;
    case 12: codec = Codec::kBzip2; break;
    case 14: codec = Codec::kZipLzma; break;
    case 93: codec = Codec::kZstd; break;
    default:
      return core::fail(core::Error{ErrorCode::kContainer, data_offset, {}, {}, fmt::format("unsupported compression method {}", method)});
  }
  auto out = decompress(*codec, raw, max_out);
  if (!out) {
    out.error().offset += data_offset;
    return core::fail(std::move(out.error()));
  }
  return std::move(out->data);
}

}  // namespace brine::container
