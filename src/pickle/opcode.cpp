#include "pickle/opcode.hpp"

namespace brine::pickle {

namespace {
constexpr std::uint8_t kNoOp = 0xFF;

constexpr std::array<std::uint8_t, 256> make_byte_table() {
  std::array<std::uint8_t, 256> table{};
  for (auto& t : table) t = kNoOp;
  for (std::size_t i = 0; i < kOpCount; ++i) table[kOpInfo[i].byte] = static_cast<std::uint8_t>(i);
  return table;
}
constexpr std::array<std::uint8_t, 256> kByteToOp = make_byte_table();
static_assert(kOpCount == 68, "protocols 0-5 define 68 opcodes");
}  // namespace

std::optional<Op> op_from_byte(std::uint8_t byte) {
  const std::uint8_t v = kByteToOp[byte];
  if (v == kNoOp) return std::nullopt;
  return static_cast<Op>(v);
}

}  // namespace brine::pickle
