// The opcode table: names, bytes, argument kinds and protocols, generated from opcodes.def.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace brine::pickle {

/// How an opcode's argument is encoded (pickletools' ArgumentDescriptor names).
enum class ArgKind : std::uint8_t {
  None,
  Uint1, Uint2, Int4, Uint4, Uint8,           // fixed-width little-endian integers
  DecimalNlShort, DecimalNlLong, FloatNl,     // protocol-0 text numbers, newline-terminated
  StringNl, StringNlNoEscape, StringNlNoEscapePair, UnicodeStringNl,  // text lines
  String1, String4,                           // length-prefixed Python-2 str
  Bytes1, Bytes4, Bytes8, ByteArray8,         // length-prefixed bytes
  UnicodeString1, UnicodeString4, UnicodeString8,  // length-prefixed UTF-8
  Float8,                                     // big-endian IEEE-754 double
  Long1, Long4,                               // length-prefixed two's-complement integer
};

enum class Op : std::uint8_t {
#define X(name, byte, arg, proto) name,
#include "pickle/opcodes.def"
#undef X
};

inline constexpr std::size_t kOpCount = 0
#define X(name, byte, arg, proto) +1
#include "pickle/opcodes.def"
#undef X
    ;

struct OpInfo {
  std::string_view name;
  std::uint8_t byte;
  ArgKind arg;
  std::uint8_t proto;
};

inline constexpr std::array<OpInfo, kOpCount> kOpInfo = {{
#define X(name, byte, arg, proto) {#name, byte, ArgKind::arg, proto},
#include "pickle/opcodes.def"
#undef X
}};

constexpr const OpInfo& info(Op op) { return kOpInfo[static_cast<std::size_t>(op)]; }
constexpr std::string_view name(Op op) { return info(op).name; }

namespace detail {
inline constexpr std::uint8_t kNoOp = 0xFF;
constexpr std::array<std::uint8_t, 256> make_byte_table() {
  std::array<std::uint8_t, 256> table{};
  for (auto& t : table) t = kNoOp;
  for (std::size_t i = 0; i < kOpCount; ++i) table[kOpInfo[i].byte] = static_cast<std::uint8_t>(i);
  return table;
}
/// byte -> Op index, kNoOp for bytes that are no opcode. Inline: the decoder and the value
/// store look it up once per opcode.
inline constexpr std::array<std::uint8_t, 256> kByteToOp = make_byte_table();
}  // namespace detail

/// The opcode a byte stands for, if any.
inline std::optional<Op> op_from_byte(std::uint8_t byte) {
  const std::uint8_t v = detail::kByteToOp[byte];
  if (v == detail::kNoOp) return std::nullopt;
  return static_cast<Op>(v);
}

}  // namespace brine::pickle
