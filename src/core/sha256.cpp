#include "core/sha256.hpp"

// Nettle's SHA-256 (SHA-NI or AVX2 assembly picked at run time), linked statically: it pulls in
// the digest alone. OpenSSL 3's digests, even the one-shot SHA256(), go through its provider
// machinery, which brought all of libcrypto into the binary and its tables into every start.
#include <nettle/sha2.h>

#include <algorithm>
#include <array>

namespace brine::core {

std::string sha256_hex(Bytes data) {
  sha256_ctx ctx;
  sha256_init(&ctx);
  // sha256_update takes a size_t; feed bounded pieces anyway so no length is ever truncated.
  constexpr std::size_t kPiece = std::size_t{1} << 30;
  for (std::size_t at = 0; at < data.size(); at += kPiece) {
    const std::size_t n = std::min(kPiece, data.size() - at);
    sha256_update(&ctx, n, data.data() + at);
  }
  std::array<std::uint8_t, SHA256_DIGEST_SIZE> digest{};
  sha256_digest(&ctx, digest.size(), digest.data());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(digest.size() * 2);
  for (const std::uint8_t b : digest) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

}  // namespace brine::core
