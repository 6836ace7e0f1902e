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
/// Argument classes next_fast decodes itself; kSlow leaves the opcode to next_slow. The classes
/// up to kI4 (no argument, fixed-width integers) are decoded without a branch per class.
/// kLong1 (LONG1: a 1-byte count, then the int's bytes) is measured by run_of_scalars only:
/// next() decodes it on its slow path, which turns the bytes into an int.
enum class Fast : std::uint8_t { kNone, kU1, kU2, kU4, kI4, kF8, kBytes1, kText1, kBytes4, kText4, kLong1, kSlow };
struct FastOp {
  Op op;
  Fast cls;
  std::uint8_t width;  ///< fixed argument bytes (kNone..kI4), length-prefix bytes (strings)
  bool scalar = false;  ///< one of kScalarOps (Decoder::next_scalar); also makes an entry four bytes, one load
};
static_assert(sizeof(FastOp) == 4);
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
    case ArgKind::Long1: return Fast::kLong1;
    default: return Fast::kSlow;  // text lines, 8-byte lengths, LONG4, FRAME's Uint8
  }
}
constexpr std::uint8_t fast_width(Fast c) {
  switch (c) {
    case Fast::kU1: case Fast::kBytes1: case Fast::kText1: case Fast::kLong1: return 1;
    case Fast::kU2: return 2;
    case Fast::kU4: case Fast::kI4: case Fast::kBytes4: case Fast::kText4: return 4;
    case Fast::kF8: return 8;
    default: return 0;
  }
}
/// The opcodes next_scalar decodes: binary scalars whose whole value is their own bytes, which
/// make most of a large pickle. All are of a fast class. (LONG1 is what pickle writes for an int
/// past 32 bits: int64 ids, timestamps, numpy int64 lists.)
inline constexpr std::array<Op, 12> kScalarOps = {Op::BININT, Op::BININT1, Op::BININT2, Op::LONG1, Op::BINFLOAT,
                                                  Op::SHORT_BINUNICODE, Op::BINUNICODE, Op::SHORT_BINBYTES,
                                                  Op::BINBYTES, Op::NONE, Op::NEWTRUE, Op::NEWFALSE};
constexpr std::array<FastOp, 256> make_fast_table() {
  std::array<FastOp, 256> t{};
  for (auto& e : t) e = FastOp{Op::STOP, Fast::kSlow, 0, false};  // not an opcode: next_slow reports it
  for (std::size_t i = 0; i < kOpCount; ++i) {
    const Fast c = fast_class(kOpInfo[i].arg);
    t[kOpInfo[i].byte] = FastOp{static_cast<Op>(i), c, fast_width(c), false};
  }
  for (Op op : kScalarOps) t[info(op).byte].scalar = true;
  return t;
}
inline constexpr std::array<FastOp, 256> kFast = make_fast_table();
/// The low `width` bytes (width 0, 1, 2 or 4).
inline constexpr std::array<std::uint64_t, 5> kLowBytes = {0, 0xFF, 0xFFFF, 0, 0xFFFFFFFF};
/// The count a counted opcode (str, bytes, LONG1/4) writes after its byte, from the 8 bytes
/// loaded there at once: its low 4 bytes, or its low byte.
constexpr std::uint64_t counted_length(std::uint64_t raw, bool four_bytes) { return raw & (four_bytes ? 0xFFFFFFFFu : 0xFFu); }

/// True if the `len` bytes at `s` are ASCII. Reads whole 8-byte words: the caller guarantees
/// that the bytes up to the next multiple of 8 past `len` are readable.
inline bool ascii_words_padded(const std::uint8_t* s, std::uint64_t len) {
  std::uint64_t acc = 0, w = 0, i = 0;
  for (; i + 8 <= len; i += 8) {
    std::memcpy(&w, s + i, 8);
    acc |= w;
  }
  if (i < len) {
    std::memcpy(&w, s + i, 8);
    acc |= w & (~std::uint64_t{0} >> (64 - 8 * (len - i)));  // little-endian: the first len-i bytes
  }
  return (acc & 0x8080808080808080ull) == 0;
}
}  // namespace detail

class Decoder {
 public:
  /// Decodes `data` from `start`. Offsets in instructions and errors are relative to `data`.
  Decoder(core::Bytes data, std::uint64_t start, StringArena& arena, const core::Limits& limits)
      : reader_(data, start), arena_(arena), limits_(limits) {
    update_fast_limit();
  }
  /// The decoder keeps a reference to the limits: a temporary would be gone by the first opcode.
  Decoder(core::Bytes data, std::uint64_t start, StringArena& arena, const core::Limits&& limits) = delete;

  /// Decodes the next instruction into `out`. On false, error() holds what CPython would raise.
  /// (A bool and a stored error, not a Result: this runs once per opcode.)
  /// Inline: the common binary opcodes take next_fast; anything it does not handle, and every
  /// error, goes through next_slow, which decodes every opcode and is the reference.
  bool next(Instruction& out) {
    if (reader_.pos() < fast_limit_ && next_fast(out)) [[likely]] return true;
    return next_slow(out);
  }
  /// next() for the hot loop of a symbolic run: if the opcode at pos() is one of
  /// detail::kScalarOps and within next()'s fast limit and checks (LONG1, which next() decodes
  /// on its slow path, under the same checks of its count), moves past it and gives
  /// what the run needs of it: its offset, opcode and text size (the argument's byte count for
  /// the str/bytes opcodes, 0 for the others). The Instruction next() would give is exactly
  /// {offset, 1 + argument bytes, op, the argument}, with no anomaly. Otherwise consumes nothing
  /// and returns false: next() then decodes the opcode (and reports it, if it is malformed).
  bool next_scalar(std::uint64_t& offset, Op& op, std::uint64_t& text_size);
  /// What a run_of_scalars callback did with the opcode it was given.
  enum class Take : std::uint8_t {
    kNext,   ///< took it; go on
    kStop,   ///< took it; stop after it
    kLeave,  ///< left it: stop before it (next() decodes it)
  };
  /// next_scalar over consecutive opcodes, and MEMOIZE among them, at most `max`:
  /// on_scalar(offset, op, text_size) for each opcode next_scalar would take, on_memoize(offset)
  /// for each MEMOIZE next() would decode on its fast path. Stops at anything else. Returns how
  /// many opcodes were taken; pos() is past the last one taken.
  /// Why a loop here: the position stays in a register from one opcode to the next. Stored in
  /// the reader after every opcode, each decode waited for the store, a load of the opcode byte
  /// and a table load in a row (bench/README.md finding 19).
  template <typename OnScalar, typename OnMemoize>
  std::uint64_t run_of_scalars(std::uint64_t max, OnScalar&& on_scalar, OnMemoize&& on_memoize);
  /// The reference path alone: decodes any opcode, the way next() must (tests compare them).
  bool next_slow(Instruction& ins) {
    const bool ok = decode_slow(ins);
    update_fast_limit();  // the FRAME (or the end of one) just read moves it
    return ok;
  }
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
    update_fast_limit();
  }
  /// Back to `pos`, where the instruction just decoded starts, so that next() decodes it again
  /// (in the same FRAME: unlike seek(), this keeps the frame).
  void seek_back_to(std::uint64_t pos) { reader_.seek(pos); }
  [[nodiscard]] bool at_end() const { return reader_.at_end(); }
  /// Moves forward to `pos`, an opcode boundary inside the current FRAME (or outside frames
  /// when not in one), past opcodes measured elsewhere (pickle::Predecoder's runs, which are
  /// exactly what run_of_scalars would have taken): like seek_back_to, keeps the frame.
  void advance_to(std::uint64_t pos) { reader_.seek_checked(pos); }
  /// The scalar at `pos` as run_of_scalars measures it at this point of the stream (same fast
  /// limit, same checks): where it ends and its text size; false if run_of_scalars would stop there.
  bool measure_scalar(std::uint64_t pos, std::uint64_t& end, std::uint64_t& text_size) const;
  /// End of the FRAME the last instruction was read from (0 outside frames): pickle.py's
  /// _Unframer has read the file up to there, so that is where a loader reading the file itself is.
  [[nodiscard]] std::uint64_t frame_end() const { return frame_end_; }

 private:
  /// next_fast needs the longest fixed argument (8 bytes) after the opcode byte to be there, so
  /// that only counted lengths need checking.
  static constexpr std::uint64_t kFastMinRemaining = 9;

  /// fast_limit_: next_fast decodes only an instruction that starts before it and ends at or
  /// before it. It is at most size - 8 (so the 8 bytes after any opcode byte it reads are
  /// there) and, inside a FRAME, at most the frame's end: an instruction that fits needs no
  /// FRAME bookkeeping (it neither crosses the end nor leaves the frame, and FRAME itself is
  /// never fast), so one comparison replaces the remaining-bytes test and track_frame. Anything
  /// else takes next_slow, which tracks frames and recomputes the limit.
  void update_fast_limit() {
    const std::uint64_t size = reader_.size();
    std::uint64_t limit = size >= kFastMinRemaining ? size - (kFastMinRemaining - 1) : 0;
    if (frame_end_ != 0 && frame_end_ < limit) limit = frame_end_;
    fast_limit_ = limit;
  }
  bool decode_slow(Instruction& ins);

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
  std::uint64_t fast_limit_ = 0;  ///< see update_fast_limit
  core::Error error_;
};

inline bool Decoder::next_fast(Instruction& ins) {
  static_assert(std::endian::native == std::endian::little, "next_fast reads little-endian arguments in place");
  using detail::Fast;
  const std::uint64_t pos = reader_.pos();  // < fast_limit_ <= size - 8
  const std::uint8_t* p = reader_.data().data() + pos;
  const detail::FastOp f = detail::kFast[p[0]];
  std::uint64_t raw;  // the 8 bytes after the opcode byte, there by fast_limit_
  std::memcpy(&raw, p + 1, 8);
  // Written field by field into `ins` (on failure the caller's next_slow rewrites all of it):
  // copying a whole Arg compiles to a slow string move.
  Arg& arg = ins.arg;
  arg.f = 0;
  arg.a = {};
  arg.b = {};
  std::uint64_t n;  // argument bytes
  if (f.cls <= Fast::kI4) [[likely]] {
    // No argument or a fixed-width integer: masked, not switched on (a random mix of BININT1,
    // BININT2 and BININT mispredicts a jump per opcode).
    const std::uint64_t v = raw & detail::kLowBytes[f.width];
    arg.i = f.cls == Fast::kI4 ? static_cast<std::int32_t>(static_cast<std::uint32_t>(v)) : static_cast<std::int64_t>(v);
    arg.kind = f.width == 0 ? Arg::Kind::kNone : Arg::Kind::kInt;
    n = f.width;
    if (pos + 1 + n > fast_limit_) return false;
  } else if (f.cls == Fast::kF8) {
    const std::uint64_t bits = __builtin_bswap64(raw);  // big-endian IEEE-754
    arg.kind = Arg::Kind::kFloat;
    arg.i = 0;
    std::memcpy(&arg.f, &bits, sizeof arg.f);
    n = 8;
    if (pos + 1 + n > fast_limit_) return false;
  } else if (f.cls <= Fast::kText4) {  // the str/bytes classes
    const unsigned width = f.width;
    const std::uint64_t len = detail::counted_length(raw, width == 4);
    n = width + len;
    // A length past the data (or the frame) or over max-string is next_slow's to decode or report.
    if (pos + 1 + n > fast_limit_ || len > limits_.max_string_length) return false;
    const std::uint8_t* text = p + 1 + width;
    arg.i = 0;
    arg.a = std::string_view(reinterpret_cast<const char*>(text), static_cast<std::size_t>(len));
    if (f.cls == Fast::kText1 || f.cls == Fast::kText4) {
      arg.kind = Arg::Kind::kText;
      // ASCII is valid UTF-8; the words read stay below end + 8 <= size (fast_limit_).
      if (!detail::ascii_words_padded(text, len) && !core::valid_utf8(arg.a, core::Utf8Mode::kSurrogatePass)) return false;
    } else {
      arg.kind = Arg::Kind::kBytes;
    }
  } else {
    return false;
  }
  // The instruction ends at or before fast_limit_: inside its FRAME, if any, so no FRAME
  // bookkeeping changes (track_frame would find nothing to do).
  ins.offset = pos;
  ins.length = static_cast<std::uint32_t>(std::min<std::uint64_t>(1 + n, UINT32_MAX));
  ins.op = f.op;
  ins.noncanonical = false;
  ins.frame_violation = false;
  reader_.seek_checked(pos + 1 + n);  // <= fast_limit_ <= size, checked above
  return true;
}

namespace detail {
/// The opcode at `p` (offset `pos`, below `fast_limit`, so the 8 bytes after p[0] are there),
/// if it is one of kScalarOps that next_fast would decode: the checks of next_fast, for the
/// classes kScalarOps have. Sets `end` (where the next opcode starts) and `len` (the text size).
inline bool scalar_at(const std::uint8_t* p, std::uint64_t pos, FastOp f, std::uint64_t fast_limit, std::uint64_t max_string,
                      std::uint64_t& end, std::uint64_t& len) {
  std::uint64_t n = f.width;  // kNone .. kI4
  len = 0;
  if (f.cls == Fast::kF8) {
    n = 8;
  } else if (f.cls > Fast::kI4) {  // kBytes1, kText1, kBytes4, kText4, kLong1
    std::uint64_t raw;
    std::memcpy(&raw, p + 1, 8);
    const std::uint64_t count = counted_length(raw, f.width == 4);
    n = f.width + count;
    // next_slow's checks of a counted argument (LONG1's included): within the data, within max-string.
    if (pos + 1 + n > fast_limit || count > max_string) return false;
    if (f.cls == Fast::kText1 || f.cls == Fast::kText4) {
      const std::uint8_t* text = p + 1 + f.width;
      const std::string_view view(reinterpret_cast<const char*>(text), static_cast<std::size_t>(count));
      if (!ascii_words_padded(text, count) && !core::valid_utf8(view, core::Utf8Mode::kSurrogatePass)) return false;
    }
    len = f.cls == Fast::kLong1 ? 0 : count;  // a LONG1's bytes are an int, not a text
  }
  end = pos + 1 + n;
  return end <= fast_limit;
}
}  // namespace detail


template <typename OnScalar, typename OnMemoize>
inline std::uint64_t Decoder::run_of_scalars(std::uint64_t max, OnScalar&& on_scalar, OnMemoize&& on_memoize) {
  const std::uint8_t* const base = reader_.data().data();
  const std::uint64_t fast_limit = fast_limit_, max_string = limits_.max_string_length;
  std::uint64_t pos = reader_.pos();
  std::uint64_t taken = 0;
  while (taken < max && pos < fast_limit) {
    const std::uint8_t* p = base + pos;
    const detail::FastOp f = detail::kFast[p[0]];
    std::uint64_t end, len;
    Take t;
    if (f.scalar) {
      if (!detail::scalar_at(p, pos, f, fast_limit, max_string, end, len)) break;
      t = on_scalar(pos, f.op, len);
    } else if (f.op == Op::MEMOIZE && f.cls == detail::Fast::kNone) {
      end = pos + 1;  // <= fast_limit: pos < fast_limit
      t = on_memoize(pos);
    } else {
      break;
    }
    if (t == Take::kLeave) break;
    pos = end;
    ++taken;
    if (t == Take::kStop) break;
  }
  reader_.seek_checked(pos);
  return taken;
}

inline bool Decoder::measure_scalar(std::uint64_t pos, std::uint64_t& end, std::uint64_t& text_size) const {
  if (pos >= fast_limit_) return false;
  const std::uint8_t* p = reader_.data().data() + pos;
  const detail::FastOp f = detail::kFast[p[0]];
  return f.scalar && detail::scalar_at(p, pos, f, fast_limit_, limits_.max_string_length, end, text_size);
}

inline bool Decoder::next_scalar(std::uint64_t& offset, Op& op, std::uint64_t& text_size) {
  // A run of at most one scalar, MEMOIZE left to next().
  return run_of_scalars(
             1,
             [&](std::uint64_t at, Op o, std::uint64_t text) {
               offset = at;
               op = o;
               text_size = text;
               return Take::kNext;
             },
             [](std::uint64_t) { return Take::kLeave; }) == 1;
}

}  // namespace brine::pickle
