// Content sniffing: what a file is, from its bytes. The name is only ever a hint.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "core/byte_reader.hpp"

namespace brine::container {

enum class Format : std::uint8_t {
  kEmpty,
  kZip,          ///< PK\3\4: torch >= 1.6 checkpoints, TorchScript, npz...
  kNpy,          ///< \x93NUMPY: numpy .npy (an object dtype carries a pickle)
  kPickle,       ///< starts with PROTO 0-5 (binary protocols)
  kMaybePickle,  ///< starts with another opcode byte: protocol 0/1 streams have no PROTO
  kUnknown,      ///< first byte is no opcode: pickle.load would fail before doing anything
};

Format sniff(core::Bytes data);
std::string_view format_name(Format f);

/// "tar" (a ustar header: magic at offset 257, or any first block tarfile.open accepts) or "7z".
std::optional<std::string_view> sniff_archive(core::Bytes data);

/// True if `data` begins with the legacy torch magic-number pickle
/// (PROTO 2, LONG1 0x1950a86a20f9469cfc6c, STOP).
bool is_torch_legacy_magic(core::Bytes data);

}  // namespace brine::container
