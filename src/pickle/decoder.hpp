// Decodes pickle instructions one at a time, as CPython 3.11's unpickler reads them.
//
// The decoder knows argument encodings, not semantics: it never looks at the stack. Every read
// is bounds-checked; a length prefix is compared with the bytes that remain before anything is
// taken, so a lying length costs nothing. FRAME lengths are checked against the input, and
// instructions that cross a frame end are marked (Instruction::frame_violation).
#pragma once

#include "core/byte_reader.hpp"
#include "core/limits.hpp"
#include "core/result.hpp"
#include "pickle/arena.hpp"
#include "pickle/instruction.hpp"

namespace brine::pickle {

class Decoder {
 public:
  /// Decodes `data` from `start`. Offsets in instructions and errors are relative to `data`.
  Decoder(core::Bytes data, std::uint64_t start, StringArena& arena, const core::Limits& limits)
      : reader_(data, start), arena_(arena), limits_(limits) {}

  /// The next instruction, or the error CPython would raise reading it.
  core::Result<Instruction> next();

  [[nodiscard]] std::uint64_t pos() const { return reader_.pos(); }
  [[nodiscard]] bool at_end() const { return reader_.at_end(); }

 private:
  core::Status read_arg(Instruction& ins);
  core::Status read_counted(Instruction& ins, unsigned width, Arg::Kind kind);
  core::Result<std::string_view> read_line(const Instruction& ins);
  core::Unexpected error(core::ErrorCode code, const Instruction& ins, std::string detail) const;

  core::ByteReader reader_;
  StringArena& arena_;
  const core::Limits& limits_;
  std::uint64_t frame_end_ = 0;  ///< end of the current FRAME, 0 when outside one
};

}  // namespace brine::pickle
