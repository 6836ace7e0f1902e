#include "container/decompress.hpp"

#include "container/tarfile_model.hpp"

#include <bzlib.h>
#include <fmt/format.h>
#include <lz4frame.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include <cstring>
#include <memory>

namespace brine::container {

using core::ErrorCode;

std::string_view codec_name(Codec c) {
  switch (c) {
    case Codec::kDeflateRaw: return "deflate";
    case Codec::kZlib: return "zlib";
    case Codec::kGzip: return "gzip";
    case Codec::kBzip2: return "bzip2";
    case Codec::kXz: return "xz";
    case Codec::kLzmaAlone: return "lzma";
    case Codec::kZipLzma: return "zip-lzma";
    case Codec::kZstd: return "zstd";
    case Codec::kLz4Frame: return "lz4";
    case Codec::kJoblibZF: return "joblib-zf";
  }
  return "?";
}

std::optional<std::uint64_t> joblib_zf_header(core::Bytes d) {
  // joblib numpy_pickle_compat.read_zfile: 'ZF', then int(next 19 bytes, 16) (a ValueError ends
  // the load), then the zlib stream at 21, or at 22 if byte 21 is a space.
  if (d.size() < 22 || d[0] != 'Z' || d[1] != 'F') return std::nullopt;
  const std::string_view digits(reinterpret_cast<const char*>(d.data()) + 2, 19);
  for (char c : digits) {
    if (c == '\0' || static_cast<unsigned char>(c) >= 0x80 || (c >= 0x1c && c <= 0x1f)) return std::nullopt;
  }
  auto length = python_int(digits, 16);
  if (!length || *length < 0) return std::nullopt;  // zlib.decompress refuses a negative bufsize
  return d[21] == ' ' ? 22 : 21;
}

bool lzma_alone_header(core::Bytes d) {
  if (d.size() < 13 || d[0] > 224) return false;
  lzma_stream ls = LZMA_STREAM_INIT;
  if (lzma_alone_decoder(&ls, 1 << 20) != LZMA_OK) return false;
  std::unique_ptr<lzma_stream, decltype(&lzma_end)> guard(&ls, &lzma_end);
  // lzma_alone_decoder is not picky; the checks lzma_auto_decoder adds for .lzma are these:
  const std::uint32_t dict = static_cast<std::uint32_t>(d[1]) | static_cast<std::uint32_t>(d[2]) << 8 |
                             static_cast<std::uint32_t>(d[3]) << 16 | static_cast<std::uint32_t>(d[4]) << 24;
  if (dict != UINT32_MAX) {
    std::uint32_t r = dict - 1;
    r |= r >> 2;
    r |= r >> 3;
    r |= r >> 4;
    r |= r >> 8;
    r |= r >> 16;
    ++r;
    if (r != dict) return false;
  }
  std::uint64_t usize = 0;
  for (int i = 0; i < 8; ++i) usize |= static_cast<std::uint64_t>(d[5 + i]) << (8 * i);
  if (usize != UINT64_MAX && usize >= (1ull << 38)) return false;
  // The properties byte: liblzma decides (lc + lp <= 4).
  std::uint8_t out[1];
  ls.next_in = d.data();
  ls.avail_in = 13;
  ls.next_out = out;
  ls.avail_out = sizeof out;
  const lzma_ret rc = lzma_code(&ls, LZMA_RUN);
  return rc == LZMA_OK || rc == LZMA_MEMLIMIT_ERROR || rc == LZMA_STREAM_END;
}

std::optional<Codec> sniff_codec(core::Bytes d) {
  auto starts = [&](std::initializer_list<std::uint8_t> magic) {
    if (d.size() < magic.size()) return false;
    std::size_t i = 0;
    for (auto b : magic) {
      if (d[i++] != b) return false;
    }
    return true;
  };
  if (starts({0x1f, 0x8b})) return Codec::kGzip;
  if (starts({'B', 'Z', 'h'}) && d.size() > 3 && d[3] >= '1' && d[3] <= '9') return Codec::kBzip2;
  if (starts({0xfd, '7', 'z', 'X', 'Z', 0x00})) return Codec::kXz;
  if (starts({0x28, 0xb5, 0x2f, 0xfd})) return Codec::kZstd;
  if (starts({0x04, 0x22, 0x4d, 0x18})) return Codec::kLz4Frame;
  if (joblib_zf_header(d)) return Codec::kJoblibZF;
  // lzma-alone, accepted the way Python's lzma module (FORMAT_AUTO: lzma.open, LZMAFile, hence
  // joblib and pandas) accepts it: liblzma's own header check, which wants a valid lc/lp/pb byte,
  // a dictionary size of 2^n or 2^n + 2^(n-1) and a plausible uncompressed size.
  if (lzma_alone_header(d)) return Codec::kLzmaAlone;
  // zlib: CMF 0x78 (deflate, 32K window) and a header checksum that divides by 31.
  if (d.size() >= 2 && d[0] == 0x78 && ((static_cast<unsigned>(d[0]) << 8) | d[1]) % 31 == 0) return Codec::kZlib;
  return std::nullopt;
}

namespace {

constexpr std::size_t kChunk = 1 << 16;

core::Unexpected too_big(std::uint64_t max_out) {
  return core::fail(core::Error{ErrorCode::kLimitExceeded, 0, {}, {},
                                fmt::format("max-decompressed-bytes: output exceeds {} bytes", max_out)});
}
core::Unexpected corrupt(Codec c, std::uint64_t at, std::string_view why) {
  return core::fail(core::Error{ErrorCode::kContainer, at, {}, {}, fmt::format("{} stream: {}", codec_name(c), why)});
}

/// Appends `n` bytes, failing past the cap.
bool append(Decompressed& out, const std::uint8_t* p, std::size_t n, std::uint64_t max_out) {
  if (out.data.size() + n > max_out) return false;
  out.data.insert(out.data.end(), p, p + n);
  return true;
}

core::Result<Decompressed> zlib_family(Codec codec, core::Bytes in, std::uint64_t max_out) {
  Decompressed out;
  const int window = codec == Codec::kDeflateRaw ? -15 : codec == Codec::kZlib ? 15 : 15 + 16;
  std::uint64_t pos = 0;
  std::uint8_t buf[kChunk];
  do {  // gzip: members may follow each other (NUL padding between them); each is decompressed in turn
    z_stream zs{};
    if (inflateInit2(&zs, window) != Z_OK) return corrupt(codec, pos, "cannot initialise zlib");
    std::unique_ptr<z_stream, decltype(&inflateEnd)> guard(&zs, &inflateEnd);
    zs.next_in = const_cast<Bytef*>(in.data() + pos);
    zs.avail_in = static_cast<uInt>(std::min<std::uint64_t>(in.size() - pos, UINT32_MAX));
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
      zs.next_out = buf;
      zs.avail_out = sizeof buf;
      rc = inflate(&zs, Z_NO_FLUSH);
      if (rc != Z_OK && rc != Z_STREAM_END) {
        if (rc == Z_BUF_ERROR && zs.avail_in == 0) return corrupt(codec, in.size(), "truncated");
        return corrupt(codec, pos + zs.total_in, zs.msg != nullptr ? zs.msg : "corrupt data");
      }
      if (!append(out, buf, sizeof buf - zs.avail_out, max_out)) return too_big(max_out);
    }
    pos += zs.total_in;
    if (codec != Codec::kGzip) break;
    // Python's gzip module (_GzipReader._read_eof) skips NUL padding after each member; another
    // member may follow it, or the end of the file.
    std::uint64_t next = pos;
    while (next < in.size() && in[next] == 0) ++next;
    if (next == in.size()) {
      pos = next;
      break;
    }
    if (next + 2 > in.size() || in[next] != 0x1f || in[next + 1] != 0x8b) break;
    pos = next;
  } while (true);
  out.consumed = pos;
  return out;
}

core::Result<Decompressed> bzip2(core::Bytes in, std::uint64_t max_out) {
  Decompressed out;
  std::uint64_t pos = 0;
  char buf[kChunk];
  do {  // concatenated streams, as bzip2 -d handles them
    bz_stream bs{};
    if (BZ2_bzDecompressInit(&bs, 0, 0) != BZ_OK) return corrupt(Codec::kBzip2, pos, "cannot initialise");
    bs.next_in = const_cast<char*>(reinterpret_cast<const char*>(in.data() + pos));
    bs.avail_in = static_cast<unsigned>(std::min<std::uint64_t>(in.size() - pos, UINT32_MAX));
    int rc = BZ_OK;
    while (rc != BZ_STREAM_END) {
      bs.next_out = buf;
      bs.avail_out = sizeof buf;
      rc = BZ2_bzDecompress(&bs);
      const std::uint64_t used = static_cast<std::uint64_t>(bs.total_in_lo32) | (static_cast<std::uint64_t>(bs.total_in_hi32) << 32);
      if (rc != BZ_OK && rc != BZ_STREAM_END) {
        BZ2_bzDecompressEnd(&bs);
        return corrupt(Codec::kBzip2, pos + used, "corrupt data");
      }
      if (rc == BZ_OK && bs.avail_in == 0 && bs.avail_out == sizeof buf) {
        BZ2_bzDecompressEnd(&bs);
        return corrupt(Codec::kBzip2, in.size(), "truncated");
      }
      if (!append(out, reinterpret_cast<std::uint8_t*>(buf), sizeof buf - bs.avail_out, max_out)) {
        BZ2_bzDecompressEnd(&bs);
        return too_big(max_out);
      }
      if (rc == BZ_STREAM_END) pos += used;
    }
    BZ2_bzDecompressEnd(&bs);
  } while (pos + 3 <= in.size() && in[pos] == 'B' && in[pos + 1] == 'Z' && in[pos + 2] == 'h');
  out.consumed = pos;
  return out;
}

core::Result<Decompressed> lzma_family(Codec codec, core::Bytes in, std::uint64_t max_out) {
  Decompressed out;
  lzma_stream ls = LZMA_STREAM_INIT;
  std::uint64_t skip = 0;
  lzma_ret init;
  lzma_options_lzma opts{};
  lzma_filter filters[2];
  if (codec == Codec::kXz) {
    // One stream per decoder, as Python's lzma module reads them (see xz_streams).
    init = lzma_stream_decoder(&ls, UINT64_MAX, 0);
  } else if (codec == Codec::kLzmaAlone) {
    init = lzma_alone_decoder(&ls, UINT64_MAX);
  } else {
    // zip method 14: version (2), properties size (2), properties (5: lc/lp/pb byte + dict size)
    if (in.size() < 9) return corrupt(codec, 0, "truncated header");
    const unsigned props_size = static_cast<unsigned>(in[2]) | static_cast<unsigned>(in[3]) << 8;
    if (props_size != 5) return corrupt(codec, 2, "unexpected properties size");
    unsigned props = in[4];
    if (props >= 9 * 5 * 5) return corrupt(codec, 4, "bad properties");
    opts.lc = props % 9;
    props /= 9;
    opts.lp = props % 5;
    opts.pb = props / 5;
    opts.dict_size = static_cast<std::uint32_t>(in[5]) | static_cast<std::uint32_t>(in[6]) << 8 |
                     static_cast<std::uint32_t>(in[7]) << 16 | static_cast<std::uint32_t>(in[8]) << 24;
    if (opts.dict_size < LZMA_DICT_SIZE_MIN) opts.dict_size = LZMA_DICT_SIZE_MIN;
    filters[0] = {LZMA_FILTER_LZMA1, &opts};
    filters[1] = {LZMA_VLI_UNKNOWN, nullptr};
    init = lzma_raw_decoder(&ls, filters);
    skip = 9;
  }
  if (init != LZMA_OK) return corrupt(codec, 0, "cannot initialise");
  std::unique_ptr<lzma_stream, decltype(&lzma_end)> guard(&ls, &lzma_end);
  ls.next_in = in.data() + skip;
  ls.avail_in = in.size() - skip;
  std::uint8_t buf[kChunk];
  for (;;) {
    ls.next_out = buf;
    ls.avail_out = sizeof buf;
    const lzma_ret rc = lzma_code(&ls, ls.avail_in == 0 ? LZMA_FINISH : LZMA_RUN);
    if (!append(out, buf, sizeof buf - ls.avail_out, max_out)) return too_big(max_out);
    if (rc == LZMA_STREAM_END) break;
    if (rc == LZMA_OK) {
      // A raw LZMA1 stream without an end marker ends with its input.
      if (codec == Codec::kZipLzma && ls.avail_in == 0 && ls.avail_out != 0) break;
      continue;
    }
    if (rc == LZMA_BUF_ERROR) return corrupt(codec, in.size(), "truncated");
    return corrupt(codec, skip + ls.total_in, "corrupt data");
  }
  out.consumed = skip + ls.total_in;
  return out;
}

/// .xz as Python's lzma module reads it (_compression.DecompressReader): one stream per
/// decompressor; after a stream ends, a new one starts on the bytes that follow, and if they are
/// not a stream (stream padding, anything else) reading stops there. liblzma's LZMA_CONCATENATED
/// would skip padding and read on: a reading Python never makes.
core::Result<Decompressed> xz_streams(core::Bytes in, std::uint64_t max_out) {
  static constexpr std::uint8_t kMagic[] = {0xfd, '7', 'z', 'X', 'Z', 0x00};
  Decompressed out;
  std::uint64_t pos = 0;
  do {
    auto one = lzma_family(Codec::kXz, in.subspan(pos), max_out - out.data.size());
    if (!one) {
      if (one.error().code == ErrorCode::kLimitExceeded) return too_big(max_out);
      auto e = one.error();
      e.offset += pos;
      return core::fail(std::move(e));
    }
    out.data.insert(out.data.end(), one->data.begin(), one->data.end());
    pos += one->consumed;
  } while (in.size() - pos >= sizeof kMagic && std::memcmp(in.data() + pos, kMagic, sizeof kMagic) == 0);
  out.consumed = pos;
  return out;
}

core::Result<Decompressed> zstd(core::Bytes in, std::uint64_t max_out) {
  Decompressed out;
  std::unique_ptr<ZSTD_DStream, decltype(&ZSTD_freeDStream)> ds(ZSTD_createDStream(), &ZSTD_freeDStream);
  if (!ds || ZSTD_isError(ZSTD_initDStream(ds.get()))) return corrupt(Codec::kZstd, 0, "cannot initialise");
  ZSTD_inBuffer ib{in.data(), in.size(), 0};
  std::uint8_t buf[kChunk];
  for (;;) {
    ZSTD_outBuffer ob{buf, sizeof buf, 0};
    const std::size_t rc = ZSTD_decompressStream(ds.get(), &ob, &ib);
    if (ZSTD_isError(rc)) return corrupt(Codec::kZstd, ib.pos, ZSTD_getErrorName(rc));
    if (!append(out, buf, ob.pos, max_out)) return too_big(max_out);
    if (rc == 0) {
      // A frame is complete; another one may follow (zstd -d decompresses them all).
      if (ib.size - ib.pos >= 4 && std::memcmp(in.data() + ib.pos, "\x28\xb5\x2f\xfd", 4) == 0) continue;
      break;
    }
    if (ib.pos == ib.size && ob.pos < ob.size) return corrupt(Codec::kZstd, in.size(), "truncated");
  }
  out.consumed = ib.pos;
  return out;
}

core::Result<Decompressed> lz4(core::Bytes in, std::uint64_t max_out) {
  Decompressed out;
  LZ4F_dctx* raw = nullptr;
  if (LZ4F_isError(LZ4F_createDecompressionContext(&raw, LZ4F_VERSION))) return corrupt(Codec::kLz4Frame, 0, "cannot initialise");
  std::unique_ptr<LZ4F_dctx, decltype(&LZ4F_freeDecompressionContext)> ctx(raw, &LZ4F_freeDecompressionContext);
  std::uint8_t buf[kChunk];
  std::size_t pos = 0;
  for (;;) {
    std::size_t out_size = sizeof buf;
    std::size_t in_size = in.size() - pos;
    const std::size_t rc = LZ4F_decompress(ctx.get(), buf, &out_size, in.data() + pos, &in_size, nullptr);
    if (LZ4F_isError(rc)) return corrupt(Codec::kLz4Frame, pos, LZ4F_getErrorName(rc));
    pos += in_size;
    if (!append(out, buf, out_size, max_out)) return too_big(max_out);
    if (rc == 0) {
      // A frame is complete; another one may follow.
      if (in.size() - pos >= 4 && std::memcmp(in.data() + pos, "\x04\x22\x4d\x18", 4) == 0) continue;
      break;
    }
    if (pos == in.size() && out_size < sizeof buf) return corrupt(Codec::kLz4Frame, in.size(), "truncated");
  }
  out.consumed = pos;
  return out;
}

}  // namespace

core::Result<Decompressed> decompress(Codec codec, core::Bytes input, std::uint64_t max_out) {
  switch (codec) {
    case Codec::kDeflateRaw:
    case Codec::kZlib:
    case Codec::kGzip:
      return zlib_family(codec, input, max_out);
    case Codec::kBzip2:
      return bzip2(input, max_out);
    case Codec::kXz:
      return xz_streams(input, max_out);
    case Codec::kLzmaAlone:
    case Codec::kZipLzma:
      return lzma_family(codec, input, max_out);
    case Codec::kZstd:
      return zstd(input, max_out);
    case Codec::kLz4Frame:
      return lz4(input, max_out);
    case Codec::kJoblibZF: {
      auto skip = joblib_zf_header(input);
      if (!skip) return corrupt(codec, 0, "not a joblib ZF header");
      auto out = zlib_family(Codec::kZlib, input.subspan(*skip), max_out);
      if (out) out->consumed += *skip;
      return out;
    }
  }
  return corrupt(codec, 0, "unknown codec");
}

}  // namespace brine::container
