// Bounded decompression for every codec a model-file loader may unwrap: raw deflate (zip),
// zlib (joblib), gzip (multi-member), bzip2, xz, lzma-alone, zstd, lz4 frames, and the zip
// variant of LZMA. Output grows only with what actually decompresses, never with a size a
// header claims, and stops at `max_out` bytes (a bomb is a limit error, not an outage).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "core/byte_reader.hpp"
#include "core/result.hpp"

namespace brine::container {

enum class Codec : std::uint8_t {
  kDeflateRaw,  ///< zip method 8
  kZlib,        ///< RFC 1950 (78 xx): joblib compress='zlib'
  kGzip,        ///< 1f 8b, possibly several members back to back
  kBzip2,       ///< BZh
  kXz,          ///< fd 37 7a 58 5a 00
  kLzmaAlone,   ///< 5d 00 00 ...: the .lzma format joblib writes
  kZipLzma,     ///< zip method 14: 4-byte header, properties, raw LZMA1
  kZstd,        ///< 28 b5 2f fd
  kLz4Frame,    ///< 04 22 4d 18
  kJoblibZF,    ///< joblib < 0.10: "ZF", the length in hex padded to 19 bytes, then a zlib stream
};
std::string_view codec_name(Codec c);
inline constexpr Codec kAllCodecs[] = {Codec::kDeflateRaw, Codec::kZlib, Codec::kGzip,    Codec::kBzip2, Codec::kXz,
                                       Codec::kLzmaAlone,  Codec::kZipLzma, Codec::kZstd, Codec::kLz4Frame, Codec::kJoblibZF};

/// joblib's pre-0.10 "ZF" header as numpy_pickle_compat.read_zfile parses it: the offset of the
/// zlib stream (21, or 22 after a space), or nullopt if joblib would refuse the header.
std::optional<std::uint64_t> joblib_zf_header(core::Bytes data);
/// An lzma-alone (.lzma) header that Python's lzma module (FORMAT_AUTO) accepts.
bool lzma_alone_header(core::Bytes data);

/// The codec a stream starts with, if it starts like one.
std::optional<Codec> sniff_codec(core::Bytes data);

struct Decompressed {
  std::vector<std::uint8_t> data;
  std::uint64_t consumed = 0;  ///< input bytes the stream used (trailing bytes = input size - consumed)
};

/// Decompresses `input`. Errors: kLimitExceeded past `max_out` (detail starts with
/// "max-decompressed-bytes"), kContainer for corrupt or truncated streams.
core::Result<Decompressed> decompress(Codec codec, core::Bytes input, std::uint64_t max_out);

}  // namespace brine::container
