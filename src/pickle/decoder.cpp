#include "pickle/decoder.hpp"

#include <fmt/format.h>

#include "core/text.hpp"
#include "pickle/numbers.hpp"
#include "pickle/string_codecs.hpp"

namespace brine::pickle {

using core::ErrorCode;

bool Decoder::fail(ErrorCode code, const Instruction& ins, std::string detail) {
  error_ = core::Error{code, ins.offset, {}, std::string(name(ins.op)), std::move(detail)};
  return false;
}

bool Decoder::decode_slow(Instruction& ins) {
  ins = Instruction{};
  ins.offset = reader_.pos();
  auto byte = reader_.u8();
  if (!byte) {
    error_ = core::Error{ErrorCode::kNoStop, ins.offset, {}, {}, "the stream ended before STOP"};
    return false;
  }
  auto op = op_from_byte(*byte);
  if (!op) {
    error_ = core::Error{ErrorCode::kUnknownOpcode, ins.offset, {}, {}, fmt::format("byte 0x{:02x} is not an opcode", *byte)};
    return false;
  }
  ins.op = *op;
  if (!read_arg(ins)) return false;
  ins.length = static_cast<std::uint32_t>(std::min<std::uint64_t>(reader_.pos() - ins.offset, UINT32_MAX));

  track_frame(ins);
  if (ins.op == Op::FRAME) {
    const auto len = static_cast<std::uint64_t>(ins.arg.i);
    if (len > reader_.remaining()) {
      return fail(ErrorCode::kBadFrame, ins, fmt::format("FRAME claims {} bytes, {} remain", len, reader_.remaining()));
    }
    frame_end_ = len == 0 ? 0 : reader_.pos() + len;
  }
  return true;
}

bool Decoder::read_line(const Instruction& ins, std::string_view& out) {
  auto line = reader_.line();
  if (!line) return fail(ErrorCode::kTruncated, ins, "no newline before the end of the data");
  if (line->size() > limits_.max_string_length) {
    return fail(ErrorCode::kLimitExceeded, ins,
                fmt::format("max-string: a {}-byte line exceeds {}", line->size(), limits_.max_string_length));
  }
  out = core::as_chars(*line);
  return true;
}

bool Decoder::read_counted(Instruction& ins, unsigned width, Arg::Kind kind) {
  const std::uint64_t at = reader_.pos();
  auto len = reader_.uint_le(width);
  if (!len) return fail(ErrorCode::kTruncated, ins, fmt::format("{}-byte length prefix is cut off", width));
  std::uint64_t n = *len;
  if (ins.op == Op::LONG4 || ins.op == Op::BINSTRING) {
    // Signed 4-byte counts. CPython rejects a negative LONG4 count; BINSTRING's count is
    // read unsigned by _pickle.c (a huge value then runs out of data).
    if (ins.op == Op::LONG4 && (n & 0x80000000u) != 0) {
      return fail(ErrorCode::kBadArgument, ins, "LONG4 byte count is negative");
    }
  }
  if (n > reader_.remaining()) {
    return fail(ErrorCode::kTruncated, ins,
                 fmt::format("length prefix at offset {} claims {} bytes, {} remain", at, n, reader_.remaining()));
  }
  if (n > limits_.max_string_length) {
    return fail(ErrorCode::kLimitExceeded, ins,
                 fmt::format("max-string: {} bytes exceeds {}", n, limits_.max_string_length));
  }
  auto data = reader_.bytes(n);  // cannot fail: checked above
  ins.arg.kind = kind;
  ins.arg.a = core::as_chars(*data);
  return true;
}

bool Decoder::read_arg(Instruction& ins) {
  Arg& arg = ins.arg;
  switch (info(ins.op).arg) {
    case ArgKind::None:
      return true;
    case ArgKind::Uint1:
    case ArgKind::Uint2:
    case ArgKind::Uint4:
    case ArgKind::Uint8: {
      const unsigned width = info(ins.op).arg == ArgKind::Uint1   ? 1
                             : info(ins.op).arg == ArgKind::Uint2 ? 2
                             : info(ins.op).arg == ArgKind::Uint4 ? 4
                                                                  : 8;
      auto v = reader_.uint_le(width);
      if (!v) return fail(ErrorCode::kTruncated, ins, fmt::format("{}-byte argument is cut off", width));
      if (width == 8 && *v > static_cast<std::uint64_t>(INT64_MAX)) {
        return fail(ErrorCode::kBadArgument, ins, fmt::format("length {} exceeds the maximum size", *v));
      }
      arg.kind = Arg::Kind::kInt;
      arg.i = static_cast<std::int64_t>(*v);
      return true;
    }
    case ArgKind::Int4: {
      auto v = reader_.i32_le();
      if (!v) return fail(ErrorCode::kTruncated, ins, "4-byte argument is cut off");
      arg.kind = Arg::Kind::kInt;
      arg.i = *v;
      return true;
    }
    case ArgKind::Float8: {
      auto v = reader_.f64_be();
      if (!v) return fail(ErrorCode::kTruncated, ins, "8-byte float is cut off");
      arg.kind = Arg::Kind::kFloat;
      arg.f = *v;
      return true;
    }
    case ArgKind::DecimalNlShort: {
      std::string_view line;
      if (!read_line(ins, line)) return false;
      if (ins.op == Op::INT) {
        bool as_bool = false;
        auto parsed = parse_int_opcode(line, as_bool);
        if (!parsed) return fail(ErrorCode::kBadArgument, ins, fmt::format("invalid INT text {}", core::py_repr_bytes(line, 40)));
        ins.noncanonical = !parsed->canonical;
        if (as_bool) {
          arg.kind = Arg::Kind::kBool;
          arg.i = parsed->small;
        } else if (parsed->is_small) {
          arg.kind = Arg::Kind::kInt;
          arg.i = parsed->small;
        } else {
          arg.kind = Arg::Kind::kBigInt;
          arg.a = arena_.keep(std::move(parsed->big));
        }
        return true;
      }
      // GET / PUT: base-10 memo index
      auto parsed = parse_memo_index(line);
      if (!parsed) return fail(ErrorCode::kBadArgument, ins, fmt::format("invalid memo index {}", core::py_repr_bytes(line, 40)));
      if (!parsed->is_small) return fail(ErrorCode::kBadMemoIndex, ins, "memo index does not fit in a machine word");
      ins.noncanonical = !parsed->canonical;
      arg.kind = Arg::Kind::kInt;
      arg.i = parsed->small;
      return true;
    }
    case ArgKind::DecimalNlLong: {
      std::string_view line;
      if (!read_line(ins, line)) return false;
      auto parsed = parse_long_opcode(line);
      if (!parsed) return fail(ErrorCode::kBadArgument, ins, fmt::format("invalid LONG text {}", core::py_repr_bytes(line, 40)));
      ins.noncanonical = !parsed->canonical;
      if (parsed->is_small) {
        arg.kind = Arg::Kind::kInt;
        arg.i = parsed->small;
      } else {
        arg.kind = Arg::Kind::kBigInt;
        arg.a = arena_.keep(std::move(parsed->big));
      }
      return true;
    }
    case ArgKind::FloatNl: {
      std::string_view line;
      if (!read_line(ins, line)) return false;
      bool canonical = true;
      auto v = parse_float_opcode(line, canonical);
      if (!v) return fail(ErrorCode::kBadArgument, ins, fmt::format("invalid FLOAT text {}", core::py_repr_bytes(line, 40)));
      ins.noncanonical = !canonical;
      arg.kind = Arg::Kind::kFloat;
      arg.f = *v;
      return true;
    }
    case ArgKind::StringNl: {
      std::string_view line;
      if (!read_line(ins, line)) return false;
      if (line.size() < 2 || line.front() != line.back() || (line.front() != '\'' && line.front() != '"')) {
        return fail(ErrorCode::kBadArgument, ins, "the STRING argument must be quoted");
      }
      bool canonical = true;
      auto decoded = decode_escape(line.substr(1, line.size() - 2), canonical);
      if (!decoded) return fail(ErrorCode::kBadArgument, ins, "invalid escape in STRING");
      ins.noncanonical = !canonical;
      arg.kind = Arg::Kind::kBytes;
      arg.a = arena_.keep(std::move(*decoded));
      return true;
    }
    case ArgKind::UnicodeStringNl: {
      std::string_view line;
      if (!read_line(ins, line)) return false;
      auto decoded = decode_raw_unicode_escape(line);
      if (!decoded) return fail(ErrorCode::kBadArgument, ins, "invalid \\u escape in UNICODE");
      arg.kind = Arg::Kind::kText;
      arg.a = arena_.keep(std::move(*decoded));
      return true;
    }
    case ArgKind::StringNlNoEscape: {  // PERSID: ASCII, no escapes
      std::string_view line;
      if (!read_line(ins, line)) return false;
      if (!core::is_ascii(line)) return fail(ErrorCode::kBadArgument, ins, "persistent IDs in protocol 0 must be ASCII strings");
      arg.kind = Arg::Kind::kText;
      arg.a = line;
      return true;
    }
    case ArgKind::StringNlNoEscapePair: {  // GLOBAL (UTF-8) and INST (ASCII)
      std::string_view module, qualname;
      if (!read_line(ins, module) || !read_line(ins, qualname)) return false;
      for (std::string_view part : {module, qualname}) {
        if (part.empty()) return fail(ErrorCode::kBadArgument, ins, "empty module or name line");
        const bool ok = ins.op == Op::INST ? core::is_ascii(part) : core::valid_utf8(part, core::Utf8Mode::kStrict);
        if (!ok) return fail(ErrorCode::kBadArgument, ins, ins.op == Op::INST ? "INST names must be ASCII" : "GLOBAL names must be UTF-8");
      }
      arg.kind = Arg::Kind::kPair;
      arg.a = module;
      arg.b = qualname;
      return true;
    }
    case ArgKind::String1: return read_counted(ins, 1, Arg::Kind::kBytes);
    case ArgKind::String4: return read_counted(ins, 4, Arg::Kind::kBytes);
    case ArgKind::Bytes1: return read_counted(ins, 1, Arg::Kind::kBytes);
    case ArgKind::Bytes4: return read_counted(ins, 4, Arg::Kind::kBytes);
    case ArgKind::Bytes8: return read_counted(ins, 8, Arg::Kind::kBytes);
    case ArgKind::ByteArray8: return read_counted(ins, 8, Arg::Kind::kBytes);
    case ArgKind::UnicodeString1:
    case ArgKind::UnicodeString4:
    case ArgKind::UnicodeString8: {
      const unsigned width = info(ins.op).arg == ArgKind::UnicodeString1 ? 1 : info(ins.op).arg == ArgKind::UnicodeString4 ? 4 : 8;
      if (!read_counted(ins, width, Arg::Kind::kText)) return false;
      if (!core::valid_utf8(arg.a, core::Utf8Mode::kSurrogatePass)) {
        return fail(ErrorCode::kBadArgument, ins, "string is not valid UTF-8");
      }
      return true;
    }
    case ArgKind::Long1:
    case ArgKind::Long4: {
      if (!read_counted(ins, info(ins.op).arg == ArgKind::Long1 ? 1 : 4, Arg::Kind::kBigInt)) return false;
      if (auto small = le_bytes_to_int64(arg.a)) {
        arg.kind = Arg::Kind::kInt;
        arg.i = *small;
      }
      return true;
    }
  }
  return true;
}

}  // namespace brine::pickle
