// SHA-256 of a byte span (nettle), as lowercase hex.
#pragma once

#include <string>

#include "core/byte_reader.hpp"

namespace brine::core {

std::string sha256_hex(Bytes data);

}  // namespace brine::core
