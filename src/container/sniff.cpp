#include "container/sniff.hpp"

#include <cstring>

#include "container/tarfile_model.hpp"
#include "pickle/opcode.hpp"

namespace brine::container {

Format sniff(core::Bytes data) {
  if (data.empty()) return Format::kEmpty;
  if (data.size() >= 4 && std::memcmp(data.data(), "PK\x03\x04", 4) == 0) return Format::kZip;
  // numpy.load opens a file starting with an end-of-central-directory record as an npz (an empty
  // archive is exactly that record); zipfile then finds the directory from the end.
  if (data.size() >= 4 && std::memcmp(data.data(), "PK\x05\x06", 4) == 0) return Format::kZip;
  if (data.size() >= 6 && std::memcmp(data.data(), "\x93NUMPY", 6) == 0) return Format::kNpy;
  if (data[0] == 0x80 && data.size() >= 2 && data[1] <= 5) return Format::kPickle;
  if (pickle::op_from_byte(data[0])) return Format::kMaybePickle;
  return Format::kUnknown;
}

std::string_view format_name(Format f) {
  switch (f) {
    case Format::kEmpty: return "empty";
    case Format::kZip: return "zip";
    case Format::kNpy: return "npy";
    case Format::kPickle: return "pickle";
    case Format::kMaybePickle: return "pickle";
    case Format::kUnknown: return "unknown";
  }
  return "?";
}

std::optional<std::string_view> sniff_archive(core::Bytes data) {
  // A tar to libarchive (the ustar magic) or to Python's tarfile, which checks only the first
  // header's checksum: torch.load tries tarfile on every non-zip file before reading a pickle.
  if (data.size() >= 262 && std::memcmp(data.data() + 257, "ustar", 5) == 0) return "tar";
  if (tarfile_opens(data)) return "tar";
  if (data.size() >= 6 && std::memcmp(data.data(), "7z\xbc\xaf\x27\x1c", 6) == 0) return "7z";
  return std::nullopt;
}

bool is_torch_legacy_magic(core::Bytes data) {
  static constexpr std::uint8_t kMagic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                            0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};
  return data.size() >= sizeof kMagic && std::memcmp(data.data(), kMagic, sizeof kMagic) == 0;
}

}  // namespace brine::container
