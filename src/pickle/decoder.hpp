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
  /// The decoder keeps a reference to the limits: a temporary would be gone by the first opcode.
  Decoder(core::Bytes data, std::uint64_t start, StringArena& arena, const core::Limits&& limits) = delete;

  /// Decodes the next instruction into `out`. On false, error() holds what CPython would raise.
  /// (A bool and a stored error, not a Result: this runs once per opcode.)
  bool next(Instruction& out);
  [[nodiscard]] const core::Error& error() const { return error_; }
  /// Convenience wrapper for callers outside hot loops.
  core::Result<Instruction> next_result() {
    Instruction ins;
    if (!next(ins)) return core::fail(error_);
    return ins;
  }

  [[nodiscard]] std::uint64_t pos() const { return reader_.pos(); }
  /// Continues decoding at `pos` (a loader read raw bytes out of the stream); ends any FRAME.
  void seek(std::uint64_t pos) {
    reader_.seek(pos);
    frame_end_ = 0;
  }
  [[nodiscard]] bool at_end() const { return reader_.at_end(); }
  /// End of the FRAME the last instruction was read from (0 outside frames): pickle.py's
  /// _Unframer has read the file up to there, so that is where a loader reading the file itself is.
  [[nodiscard]] std::uint64_t frame_end() const { return frame_end_; }

 private:
  bool read_arg(Instruction& ins);
  bool read_counted(Instruction& ins, unsigned width, Arg::Kind kind);
  bool read_line(const Instruction& ins, std::string_view& out);
  bool fail(core::ErrorCode code, const Instruction& ins, std::string detail);

  core::ByteReader reader_;
  StringArena& arena_;
  const core::Limits& limits_;
  std::uint64_t frame_end_ = 0;  ///< end of the current FRAME, 0 when outside one
  core::Error error_;
};

}  // namespace brine::pickle
