// Decodes pickle instructions one at a time, as CPython 3.11's unpickler reads them.
//
// The decoder knows argument encodings, not semantics: it never looks at the stack. Every read
// is bounds-checked; a length prefix is compared with the bytes that remain before anything is
// taken, so a lying length costs nothing. FRAME lengths are checked against the input, and
// instructions that cross a frame end are marked (Instruction::frame_violation).
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>

#include "core/byte_reader.hpp"
#include "core/limits.hpp"
#include "core/result.hpp"
#include "core/text.hpp"
#include "pickle/arena.hpp"
#include "pickle/instruction.hpp"

namespace brine::pickle {

namespace detail {
/// Argument classes next_fast decodes itself; kSlow leaves the opcode to next_slow.
enum class Fast : std::uint8_t { kSlow, kNone, kU1, kU2, kU4, kI4, kF8, kBytes1, kText1, kBytes4, kText4 };
struct FastOp {
  Op op;
  Fast cls;
};
constexpr Fast fast_class(ArgKind k) {
  switch (k) {
    case ArgKind::None: return Fast::kNone;
    case ArgKind::Uint1: return Fast::kU1;
    case ArgKind::Uint2: return Fast::kU2;
    case ArgKind::Uint4: return Fast::kU4;
    case ArgKind::Int4: return Fast::kI4;
    case ArgKind::Float8: return Fast::kF8;
    case ArgKind::String1: case ArgKind::Bytes1: return Fast::kBytes1;
    case ArgKind::UnicodeString1: return Fast::kText1;
    case ArgKind::String4: case ArgKind::Bytes4: return Fast::kBytes4;
    case ArgKind::UnicodeString4: return Fast::kText4;
    default: return Fast::kSlow;  // text lines, 8-byte lengths, LONG1/LONG4, FRAME's Uint8
  }
}
constexpr std::array<FastOp, 256> make_fast_table() {
  std::array<FastOp, 256> t{};
  for (auto& e : t) e = FastOp{Op::STOP, Fast::kSlow};  // not an opcode: next_slow reports it
  for (std::size_t i = 0; i < kOpCount; ++i) t[kOpInfo[i].byte] = FastOp{static_cast<Op>(i), fast_class(kOpInfo[i].arg)};
  return t;
}
inline constexpr std::array<FastOp, 256> kFast = make_fast_table();
}  // namespace detail

class Decoder {
 public:
  /// Decodes `data` from `start`. Offsets in instructions and errors are relative to `data`.
  Decoder(core::Bytes data, std::uint64_t start, StringArena& arena, const core::Limits& limits)
      : reader_(data, start), arena_(arena), limits_(limits) {}
  /// The decoder keeps a reference to the limits: a temporary would be gone by the first opcode.
  Decoder(core::Bytes data, std::uint64_t start, StringArena& arena, const core::Limits&& limits) = delete;

  /// Decodes the next instruction into `out`. On false, error() holds what CPython would raise.
  /// (A bool and a stored error, not a Result: this runs once per opcode.)
  /// Inline: the common binary opcodes take next_fast; anything it does not handle, and every
  /// error, goes through next_slow, which decodes every opcode and is the reference.
  bool next(Instruction& out) {
    if (reader_.remaining() >= kFastMinRemaining && next_fast(out)) [[likely]] return true;
    return next_slow(out);
  }
  /// The reference path alone: decodes any opcode, the way next() must (tests compare them).
  bool next_slow(Instruction& ins);
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
  /// next_fast needs the longest fixed argument (8 bytes) after the opcode byte to be there, so
  /// that only counted lengths need checking.
  static constexpr std::uint64_t kFastMinRemaining = 9;

  /// Decodes the opcode at pos() if it is one of the kFast classes and well-formed within the
  /// limits; otherwise returns false without consuming anything (next_slow then decodes it, and
  /// reports the error if there is one).
  bool next_fast(Instruction& ins);
  /// FRAME bookkeeping for an instruction just decoded (both paths).
  void track_frame(Instruction& ins) {
    // pickle.py's _Unframer refuses an instruction that runs past the frame's end and a FRAME
    // that starts before the previous one is used up; _pickle.c does not check either.
    if (frame_end_ != 0) {
      if (ins.offset >= frame_end_) {
        frame_end_ = 0;
      } else if (ins.end() > frame_end_ || ins.op == Op::FRAME) {
        ins.frame_violation = true;
      }
    }
  }
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

inline bool Decoder::next_fast(Instruction& ins) {
  const std::uint64_t pos = reader_.pos();
  const std::uint8_t* p = reader_.data().data() + pos;
  using detail::Fast;
  const detail::FastOp f = detail::kFast[p[0]];
  const std::uint64_t avail = reader_.remaining() - 1;  // bytes after the opcode (>= 8 here)
  // Written field by field into `ins` (on failure the caller's next_slow rewrites all of it):
  // copying a whole Arg compiles to a slow string move.
  Arg& arg = ins.arg;
  arg.kind = Arg::Kind::kNone;
  arg.i = 0;
  arg.f = 0;
  arg.a = {};
  arg.b = {};
  std::uint64_t n = 0;  // argument bytes
  auto le = [p](unsigned width) {
    std::uint64_t v = 0;
    std::memcpy(&v, p + 1, width);  // little-endian host (checked below)
    return v;
  };
  static_assert(std::endian::native == std::endian::little, "next_fast reads little-endian arguments in place");
  switch (f.cls) {
    case Fast::kSlow:
      return false;
    case Fast::kNone:
      break;
    case Fast::kU1: arg.kind = Arg::Kind::kInt; arg.i = p[1]; n = 1; break;
    case Fast::kU2: arg.kind = Arg::Kind::kInt; arg.i = static_cast<std::int64_t>(le(2)); n = 2; break;
    case Fast::kU4: arg.kind = Arg::Kind::kInt; arg.i = static_cast<std::int64_t>(le(4)); n = 4; break;
    case Fast::kI4:
      arg.kind = Arg::Kind::kInt;
      arg.i = static_cast<std::int32_t>(static_cast<std::uint32_t>(le(4)));
      n = 4;
      break;
    case Fast::kF8: {
      const std::uint64_t bits = __builtin_bswap64(le(8));  // big-endian IEEE-754
      arg.kind = Arg::Kind::kFloat;
      std::memcpy(&arg.f, &bits, sizeof arg.f);
      n = 8;
      break;
    }
    case Fast::kBytes1:
    case Fast::kText1:
    case Fast::kBytes4:
    case Fast::kText4: {
      const bool wide = f.cls == Fast::kBytes4 || f.cls == Fast::kText4;
      const unsigned width = wide ? 4 : 1;
      const std::uint64_t len = wide ? le(4) : p[1];
      // A length past the data or over max-string is an error: next_slow reports it.
      if (len > avail - width || len > limits_.max_string_length) return false;
      arg.kind = f.cls == Fast::kText1 || f.cls == Fast::kText4 ? Arg::Kind::kText : Arg::Kind::kBytes;
      arg.a = std::string_view(reinterpret_cast<const char*>(p + 1 + width), static_cast<std::size_t>(len));
      if (arg.kind == Arg::Kind::kText && !core::valid_utf8(arg.a, core::Utf8Mode::kSurrogatePass)) return false;
      n = width + len;
      break;
    }
  }
  ins.offset = pos;
  ins.length = static_cast<std::uint32_t>(std::min<std::uint64_t>(1 + n, UINT32_MAX));
  ins.op = f.op;
  ins.noncanonical = false;
  ins.frame_violation = false;
  reader_.seek(pos + 1 + n);
  track_frame(ins);
  return true;
}

}  // namespace brine::pickle
