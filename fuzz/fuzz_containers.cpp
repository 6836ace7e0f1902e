// Every container reader on the same bytes: brine's zip layout parser as each loader reads it,
// local headers, the .npy header, each decompressor (bounded), and the whole scanner,
// which sniffs and dispatches to tar/7z, the legacy torch stream, joblib and nested archives.
#include <cstddef>
#include <cstdint>

#include "container/decompress.hpp"
#include "container/npy.hpp"
#include "container/sniff.hpp"
#include "container/zip_layout.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace brine;
  const core::Bytes bytes(data, size);
  for (auto reader : {container::ZipReader::kMiniz, container::ZipReader::kZipfile}) {
    auto layout = container::parse_zip_layout(bytes, 2'000, reader);
    if (!layout) continue;
    for (const auto& e : layout->central) {
      if (auto local = container::parse_local_header(bytes, e.local_offset)) {
        (void)container::zip_member_data(bytes, local->data_offset, e.compressed_size, e.method, 1 << 20);
      }
    }
  }
  (void)container::parse_npy_header(bytes);
  if (auto codec = container::sniff_codec(bytes)) (void)container::decompress(*codec, bytes, 1 << 20);
  // The first byte picks a codec for raw streams no magic announces (raw deflate, zip LZMA).
  if (size > 1) {
    const auto codec = static_cast<container::Codec>(data[0] % 10);
    (void)container::decompress(codec, bytes.subspan(1), 1 << 20);
  }
  (void)fuzz::scanner().scan_bytes(bytes, "fuzz");
  return 0;
}
