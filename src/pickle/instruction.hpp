// One decoded pickle instruction: opcode, argument, and where it is.
#pragma once

#include <cstdint>
#include <string_view>

#include "pickle/opcode.hpp"

namespace brine::pickle {

/// A decoded argument. Text and bytes are views into the input or into the decoder's arena,
/// so they stay valid for as long as both live.
struct Arg {
  enum class Kind : std::uint8_t {
    kNone,
    kInt,     ///< `i` (any opcode with an integer argument, memo indices included)
    kBigInt,  ///< `a` = little-endian two's-complement bytes, too wide for int64
    kBool,    ///< `i` = 0 or 1 (INT "00"/"01")
    kFloat,   ///< `f`
    kBytes,   ///< `a` = raw bytes (BINBYTES, STRING/BINSTRING content, BYTEARRAY8)
    kText,    ///< `a` = WTF-8 text (UNICODE family, PERSID)
    kPair,    ///< `a` = module, `b` = name (GLOBAL, INST)
  };
  Kind kind = Kind::kNone;
  std::int64_t i = 0;
  double f = 0;
  std::string_view a, b;
};

struct Instruction {
  std::uint64_t offset = 0;  ///< of the opcode byte, within the stream being decoded
  std::uint32_t length = 0;  ///< opcode byte plus argument bytes (lines include their '\n')
  Op op = Op::STOP;
  Arg arg;
  /// The argument is valid but written in a form CPython's pickler never produces
  /// (hex INT, escaped GLOBAL-like text, "+1.0"...): a hand-made stream.
  bool noncanonical = false;
  /// The instruction crosses the end of the current FRAME, or a FRAME begins inside another:
  /// CPython's C unpickler accepts this, pickle.py's _Unframer rejects it.
  bool frame_violation = false;

  [[nodiscard]] std::uint64_t end() const { return offset + length; }
};

}  // namespace brine::pickle
