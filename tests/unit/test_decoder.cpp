// The opcode decoder: every argument encoding, offsets, and every way an argument can be bad.
#include <doctest/doctest.h>

#include <algorithm>

#include <cstring>
#include <string>
#include <vector>

#include "helpers.hpp"
#include "pickle/decoder.hpp"
#include "pickle/numbers.hpp"

using namespace brine;
using pickle::Arg;
using pickle::Op;

namespace {

struct Decoded {
  std::vector<pickle::Instruction> ins;
  std::optional<core::Error> error;
};

Decoded decode_all(std::string_view data, const core::Limits& limits = {}) {
  static pickle::StringArena arena;  // kept alive: instructions view into it
  pickle::Decoder d(test::bytes(data), 0, arena, limits);
  Decoded out;
  for (;;) {
    pickle::Instruction ins;
    if (!d.next(ins)) {
      out.error = d.error();
      break;
    }
    out.ins.push_back(ins);
    if (ins.op == Op::STOP) break;
  }
  return out;
}

template <std::size_t N>
Decoded decode_all(const char (&data)[N], const core::Limits& limits = {}) {
  return decode_all(test::lit(data), limits);
}

pickle::Instruction one(std::string_view data) {
  auto d = decode_all(data);
  REQUIRE_FALSE(d.error);
  REQUIRE(!d.ins.empty());
  return d.ins[0];
}

core::ErrorCode error_of(std::string_view data) {
  auto d = decode_all(data);
  REQUIRE(d.error);
  return d.error->code;
}
template <std::size_t N>
pickle::Instruction one(const char (&data)[N]) { return one(test::lit(data)); }
template <std::size_t N>
core::ErrorCode error_of(const char (&data)[N]) { return error_of(test::lit(data)); }

}  // namespace

TEST_CASE("the opcode table has the 68 opcodes of protocols 0-5") {
  CHECK(pickle::kOpCount == 68);
  CHECK(pickle::op_from_byte('c') == Op::GLOBAL);
  CHECK(pickle::op_from_byte(0x93) == Op::STACK_GLOBAL);
  CHECK(pickle::op_from_byte(0x98) == Op::READONLY_BUFFER);
  CHECK_FALSE(pickle::op_from_byte(0x99));
  CHECK_FALSE(pickle::op_from_byte('#'));
  CHECK(pickle::name(Op::NEWOBJ_EX) == "NEWOBJ_EX");
}

TEST_CASE("fixed-width integers") {
  CHECK(one("K\xff.").arg.i == 255);
  CHECK(one("M\x01\x02.").arg.i == 0x0201);
  CHECK(one(std::string_view("J\xfe\xff\xff\xff.", 6)).arg.i == -2);
  CHECK(one(std::string_view("j\x00\x00\x00\x80.", 6)).arg.i == 0x80000000LL);  // LONG_BINGET is unsigned
  CHECK(one(std::string_view("\x82\x05.", 3)).arg.i == 5);                        // EXT1
  CHECK(one(std::string_view("\x84\xff\xff\xff\xff.", 6)).arg.i == -1);           // EXT4 is signed
}

TEST_CASE("LONG1/LONG4 give int64 when it fits, bytes otherwise") {
  auto small = one(std::string_view("\x8a\x02\xff\x00.", 5));
  CHECK(small.arg.kind == Arg::Kind::kInt);
  CHECK(small.arg.i == 255);
  auto zero = one(std::string_view("\x8a\x00.", 3));
  CHECK(zero.arg.i == 0);
  auto big = one(std::string_view("\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01.", 12));
  CHECK(big.arg.kind == Arg::Kind::kBigInt);
  CHECK(pickle::le_bytes_to_decimal(big.arg.a) == "18446744073709551616");
  CHECK(error_of(std::string_view("\x8b\xff\xff\xff\xff.", 6)) == core::ErrorCode::kBadArgument);  // negative count
}

TEST_CASE("text forms: INT, LONG, FLOAT, STRING, UNICODE, GLOBAL, PERSID, GET/PUT") {
  CHECK(one("I123\n.").arg.i == 123);
  CHECK(one("I01\n.").arg.kind == Arg::Kind::kBool);
  CHECK(one("L5L\n.").arg.i == 5);
  CHECK(one("F2.5\n.").arg.f == 2.5);
  auto s = one("S'a\\x42'\n.");
  CHECK(s.arg.kind == Arg::Kind::kBytes);
  CHECK(s.arg.a == "aB");
  CHECK(one("V\\u0041\n.").arg.a == "A");
  auto g = one("cos\nsystem\n.");
  CHECK(g.arg.kind == Arg::Kind::kPair);
  CHECK(g.arg.a == "os");
  CHECK(g.arg.b == "system");
  CHECK(g.length == 11);
  CHECK(one("P0\n.").arg.a == "0");
  CHECK(one("g12\n.").arg.i == 12);
  CHECK(one("p 3\n.").noncanonical);
}

TEST_CASE("length-prefixed strings, bytes and bytearrays") {
  CHECK(one(std::string_view("U\x03" "abc.", 6)).arg.a == "abc");
  CHECK(one(std::string_view("T\x02\x00\x00\x00" "ab.", 8)).arg.a == "ab");
  CHECK(one(std::string_view("C\x01z.", 4)).arg.a == "z");
  CHECK(one(std::string_view("B\x01\x00\x00\x00z.", 7)).arg.a == "z");
  CHECK(one(std::string_view("\x8e\x01\x00\x00\x00\x00\x00\x00\x00z.", 11)).arg.a == "z");
  CHECK(one(std::string_view("\x96\x01\x00\x00\x00\x00\x00\x00\x00z.", 11)).arg.a == "z");
  CHECK(one(std::string_view("\x8c\x03h\xc3\xa9.", 6)).arg.kind == Arg::Kind::kText);
  CHECK(one(std::string_view("X\x03\x00\x00\x00\xed\xa0\x80.", 9)).arg.a == "\xed\xa0\x80");  // surrogatepass
  CHECK(one(std::string_view("\x8d\x01\x00\x00\x00\x00\x00\x00\x00" "a.", 11)).arg.a == "a");
  CHECK(one("G\x3f\xf8\x00\x00\x00\x00\x00\x00.").arg.f == 1.5);  // BINFLOAT is big-endian
}

TEST_CASE("every instruction carries its offset and length") {
  auto d = decode_all(std::string_view("\x80\x02K\x01X\x01\x00\x00\x00" "a\x86q\x00.", 15));
  REQUIRE_FALSE(d.error);
  std::vector<std::uint64_t> offsets;
  for (auto& i : d.ins) offsets.push_back(i.offset);
  CHECK(offsets == std::vector<std::uint64_t>{0, 2, 4, 10, 11, 13});
  CHECK(d.ins[2].length == 6);
}

TEST_CASE("bad input: each is an error with the offset of the opcode") {
  using core::ErrorCode;
  CHECK(error_of("") == ErrorCode::kNoStop);
  CHECK(error_of("N") == ErrorCode::kNoStop);
  CHECK(error_of("#") == ErrorCode::kUnknownOpcode);
  CHECK(error_of("K") == ErrorCode::kTruncated);
  CHECK(error_of("I12") == ErrorCode::kTruncated);              // no newline
  CHECK(error_of("Iab\n.") == ErrorCode::kBadArgument);
  CHECK(error_of("S'abc\n.") == ErrorCode::kBadArgument);       // mismatched quotes
  CHECK(error_of("Sabc\n.") == ErrorCode::kBadArgument);        // unquoted
  CHECK(error_of("c\nx\n.") == ErrorCode::kBadArgument);        // empty module line
  CHECK(error_of("cos\xff\nx\n.") == ErrorCode::kBadArgument);  // GLOBAL names are UTF-8
  CHECK(error_of("ios\xc3\xa9\nx\n.") == ErrorCode::kBadArgument);  // INST names are ASCII
  CHECK(error_of("P\xff\n.") == ErrorCode::kBadArgument);       // PERSID is ASCII
  CHECK(error_of(std::string_view("X\x02\x00\x00\x00\xc0\x80.", 8)) == ErrorCode::kBadArgument);  // overlong UTF-8
  CHECK(error_of("g0x1\n.") == ErrorCode::kBadArgument);
  // A length prefix larger than the data: nothing is allocated, the claim is refused.
  auto d = decode_all(std::string_view("N\x8e\xff\xff\xff\xff\xff\xff\x00\x00.", 11));
  REQUIRE(d.error);
  CHECK(d.error->code == ErrorCode::kTruncated);
  CHECK(d.error->offset == 1);
  CHECK(d.error->opcode == "BINBYTES8");
}

TEST_CASE("max-string limits a single argument") {
  core::Limits limits;
  limits.max_string_length = 4;
  auto d = decode_all(std::string_view("C\x05" "abcde.", 8), limits);
  REQUIRE(d.error);
  CHECK(d.error->code == core::ErrorCode::kLimitExceeded);
  CHECK(d.error->detail.starts_with("max-string"));
}

TEST_CASE("FRAME: the length is checked, straddling instructions are marked") {
  // FRAME claims more than remains
  CHECK(error_of(std::string_view("\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00N.", 13)) == core::ErrorCode::kBadFrame);
  // A well-formed frame holding "N."
  auto ok = decode_all(std::string_view("\x80\x04\x95\x02\x00\x00\x00\x00\x00\x00\x00N.", 13));
  REQUIRE_FALSE(ok.error);
  for (auto& i : ok.ins) CHECK_FALSE(i.frame_violation);
  // Frame of 2 bytes ends inside the 3-byte BININT2 that follows N
  auto bad = decode_all(std::string_view("\x80\x04\x95\x02\x00\x00\x00\x00\x00\x00\x00NM\x01\x00.", 16));
  REQUIRE_FALSE(bad.error);
  CHECK(bad.ins[3].op == Op::BININT2);
  CHECK(bad.ins[3].frame_violation);
  // A FRAME inside a frame
  auto nested = decode_all(std::string_view("\x95\x0a\x00\x00\x00\x00\x00\x00\x00\x95\x01\x00\x00\x00\x00\x00\x00\x00N.", 20));
  REQUIRE_FALSE(nested.error);
  CHECK(nested.ins[1].frame_violation);
}

namespace {
/// Random instruction streams for the fast-path test: mostly the opcodes next_fast decodes (with
/// lengths near the data's end and the limit, UTF-8 that is sometimes broken), some FRAMEs and
/// protocol-0 lines, and random bytes.
std::string random_stream(std::uint64_t& seed) {
  auto rnd = [&seed](std::uint32_t n) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<std::uint32_t>((seed >> 33) % n);
  };
  static const std::uint8_t kOps[] = {
      'K', 'M', 'J', 'G', 'q', 'h', 'r', 'j', 0x94, '(', 'e', ']', '}', 'u', 'N', 0x88, 0x89, 't', 0x85, 0x86, 0x87,
      0x8c, 'X', 'C', 'B', 'U', 'T', 0x8a, 0x8b, 0x95, 'I', 'L', 'F', 'c', 0x8d, 0x8e, 0x96, 0x82, 0x83, 0x84, 'P', '.'};
  std::string s;
  const std::uint32_t count = 1 + rnd(12);
  for (std::uint32_t k = 0; k < count; ++k) {
    const std::uint8_t op = rnd(10) == 0 ? static_cast<std::uint8_t>(rnd(256)) : kOps[rnd(sizeof kOps)];
    s += static_cast<char>(op);
    auto text = [&](std::uint32_t n) {
      for (std::uint32_t i = 0; i < n; ++i) {
        const std::uint32_t pick = rnd(16);
        s += pick == 0 ? static_cast<char>(0x80 + rnd(0x80)) : pick == 1 ? '\xc3' : static_cast<char>('a' + rnd(26));
      }
    };
    switch (op) {
      case 0x8c: case 'C': case 'U': {
        const std::uint32_t n = rnd(6) == 0 ? rnd(256) : rnd(12);
        s += static_cast<char>(n);
        text(rnd(8) == 0 ? rnd(n + 1) : n);  // sometimes cut short
        break;
      }
      case 'X': case 'B': case 'T': {
        const std::uint32_t n = rnd(6) == 0 ? 0x80000000u + rnd(16) : rnd(20);
        s.append(reinterpret_cast<const char*>(&n), 4);
        text(rnd(8) == 0 ? rnd(20) : n & 0xFF);
        break;
      }
      case 0x95: {
        const std::uint64_t n = rnd(4) == 0 ? rnd(1u << 20) : rnd(24);
        s.append(reinterpret_cast<const char*>(&n), 8);
        break;
      }
      case 'I': case 'L': s += std::to_string(rnd(1000)) + (rnd(8) ? "\n" : ""); break;
      case 'F': s += "1.5\n"; break;
      case 'c': s += "os\nsystem\n"; break;
      case 'P': s += "pid\n"; break;
      default:
        for (std::uint32_t i = rnd(10); i > 0; --i) s += static_cast<char>(rnd(256));  // argument bytes, or the next opcodes
        break;
    }
  }
  return s;
}

void same_instruction(const pickle::Instruction& a, const pickle::Instruction& b) {
  CHECK(a.offset == b.offset);
  CHECK(a.length == b.length);
  CHECK(a.op == b.op);
  CHECK(a.arg.kind == b.arg.kind);
  CHECK(a.arg.i == b.arg.i);
  CHECK(std::memcmp(&a.arg.f, &b.arg.f, sizeof a.arg.f) == 0);
  CHECK(a.arg.a == b.arg.a);
  CHECK(a.arg.b == b.arg.b);
  CHECK(a.noncanonical == b.noncanonical);
  CHECK(a.frame_violation == b.frame_violation);
}

/// Runs `check(data, limits)` on 20,000 random streams from `seed`, one in 7 of them with a
/// max-string limit of 0 to 2 bytes (the limit, checked on every path).
template <typename F>
void on_random_streams(std::uint64_t seed, F&& check) {
  for (int iter = 0; iter < 20000; ++iter) {
    const std::string data = random_stream(seed);
    core::Limits limits;
    if (iter % 7 == 0) limits.max_string_length = iter % 3;
    CAPTURE(iter);
    check(data, limits);
  }
}
}  // namespace

TEST_CASE("next() with its fast path decodes every stream exactly as the reference path, errors included") {
  std::size_t fast_ok = 0, errors = 0;
  on_random_streams(20261205, [&](const std::string& data, const core::Limits& limits) {
    pickle::StringArena arena_a, arena_b;
    pickle::Decoder a(test::bytes(data), 0, arena_a, limits);
    pickle::Decoder b(test::bytes(data), 0, arena_b, limits);
    for (;;) {
      pickle::Instruction ia, ib;
      const bool ok_a = a.next(ia);
      const bool ok_b = b.next_slow(ib);
      REQUIRE(ok_a == ok_b);
      if (!ok_a) {
        CHECK(a.error().code == b.error().code);
        CHECK(a.error().offset == b.error().offset);
        CHECK(a.error().opcode == b.error().opcode);
        CHECK(a.error().detail == b.error().detail);
        ++errors;
        break;
      }
      same_instruction(ia, ib);
      REQUIRE(a.pos() == b.pos());
      CHECK(a.frame_end() == b.frame_end());
      if (data.size() - ia.offset >= 9) ++fast_ok;  // next() tried its fast path
      if (a.at_end()) break;
    }
  });
  CHECK(fast_ok > 10000);  // the streams did reach the fast path
  CHECK(errors > 1000);
}

TEST_CASE("next_scalar takes the scalar opcodes next() decodes without error within its fast limit, and gives what next() gives") {
  std::size_t scalars = 0, others = 0, long1s = 0;
  on_random_streams(20261206, [&](const std::string& data, const core::Limits& limits) {
    pickle::StringArena arena_a, arena_b;
    pickle::Decoder a(test::bytes(data), 0, arena_a, limits);  // next_scalar first, then next()
    pickle::Decoder b(test::bytes(data), 0, arena_b, limits);  // next() only
    for (;;) {
      std::uint64_t at = 0, text = 0;
      pickle::Op op = pickle::Op::STOP;
      const std::uint64_t before = a.pos();
      const bool took = a.next_scalar(at, op, text);
      pickle::Instruction ib;
      const bool ok_b = b.next(ib);
      if (took) {
        ++scalars;
        if (op == pickle::Op::LONG1) ++long1s;  // next() decodes it on its slow path, to the same
        REQUIRE(ok_b);
        CHECK(at == before);
        CHECK(ib.offset == at);
        CHECK(ib.op == op);
        CHECK(ib.end() == a.pos());
        const bool texty = ib.arg.kind == pickle::Arg::Kind::kText || ib.arg.kind == pickle::Arg::Kind::kBytes;
        CHECK(text == (texty ? ib.arg.a.size() : 0));
        CHECK_FALSE(ib.noncanonical);
        CHECK_FALSE(ib.frame_violation);
        CHECK(std::find(pickle::detail::kScalarOps.begin(), pickle::detail::kScalarOps.end(), op) != pickle::detail::kScalarOps.end());
      } else {
        ++others;
        REQUIRE(a.pos() == before);  // consumed nothing
        pickle::Instruction ia;
        const bool ok_a = a.next(ia);
        REQUIRE(ok_a == ok_b);
        if (!ok_a) break;
        same_instruction(ia, ib);
        // A scalar opcode it left to next() is one next() did not take on its fast path: it is
        // near the end of the data or a frame, or malformed, or over max-string.
      }
      REQUIRE(a.pos() == b.pos());
      CHECK(a.frame_end() == b.frame_end());
      if (a.at_end()) break;
    }
  });
  CHECK(scalars > 3000);  // 4,973 with this seed
  CHECK(long1s > 50);     // 79
  CHECK(others > 10000);
}

TEST_CASE("run_of_scalars takes what next_scalar and next() take, MEMOIZE too, and stops where it is told") {
  using Take = pickle::Decoder::Take;
  std::size_t taken_total = 0, memoizes = 0, stops = 0, leaves = 0;
  std::uint64_t rng = 20261207;
  auto rand = [&] { return rng = rng * 6364136223846793005ull + 1442695040888963407ull, rng >> 33; };
  on_random_streams(20261207, [&](const std::string& data, const core::Limits& limits) {
    pickle::StringArena arena_a, arena_b;
    pickle::Decoder a(test::bytes(data), 0, arena_a, limits);  // runs, then next() for what a run leaves
    pickle::Decoder b(test::bytes(data), 0, arena_b, limits);  // next() only
    for (;;) {
      const std::uint64_t max = 1 + rand() % 6;
      std::uint64_t calls = 0;
      bool told = false;  // a callback said stop or leave
      bool left = false;  // ... leave: that call's opcode was not taken
      auto expect = [&](std::uint64_t at, pickle::Op op, std::uint64_t text) {
        ++calls;
        pickle::Instruction ib;
        REQUIRE(b.next(ib));
        CHECK(ib.offset == at);
        CHECK(ib.op == op);
        const bool texty = ib.arg.kind == pickle::Arg::Kind::kText || ib.arg.kind == pickle::Arg::Kind::kBytes;
        CHECK(text == (texty ? ib.arg.a.size() : 0));
        CHECK_FALSE(ib.frame_violation);
        const auto r = rand() % 16;
        if (r == 0) {
          told = true;
          ++stops;
          return Take::kStop;
        }
        if (r == 1) {
          told = left = true;
          ++leaves;
          b.seek_back_to(at);  // left: next() decodes it again below
          return Take::kLeave;
        }
        return Take::kNext;
      };
      const std::uint64_t taken = a.run_of_scalars(
          max, [&](std::uint64_t at, pickle::Op op, std::uint64_t text) { return expect(at, op, text); },
          [&](std::uint64_t at) {
            ++memoizes;
            return expect(at, pickle::Op::MEMOIZE, 0);
          });
      taken_total += taken;
      CHECK(taken <= max);
      CHECK(calls == taken + (left ? 1 : 0));
      REQUIRE(a.pos() == b.pos());
      if (!told && taken < max) {
        // It stopped by itself: what is at pos() is not a scalar next_scalar would take.
        std::uint64_t at = 0, text = 0;
        pickle::Op op = pickle::Op::STOP;
        CHECK_FALSE(a.next_scalar(at, op, text));
      }
      if (taken == 0 || told) {
        pickle::Instruction ia, ib;
        const bool ok_a = a.next(ia), ok_b = b.next(ib);
        REQUIRE(ok_a == ok_b);
        if (!ok_a) break;
        same_instruction(ia, ib);
      }
      REQUIRE(a.pos() == b.pos());
      if (a.at_end()) break;
    }
  });
  CHECK(taken_total > 5000);
  CHECK(memoizes > 100);
  CHECK(stops > 100);
  CHECK(leaves > 100);
}

TEST_CASE("the fast path hands malformed arguments to the reference path, which reports them") {
  const std::string pad(16, 'N');  // enough bytes after the opcode for the fast path to try
  // Invalid UTF-8 in SHORT_BINUNICODE / BINUNICODE.
  CHECK(error_of(std::string("\x8c\x02\xc3\x28", 4) + pad) == core::ErrorCode::kBadArgument);
  CHECK(error_of(std::string("X\x01\x00\x00\x00\xff", 6) + pad) == core::ErrorCode::kBadArgument);
  // A length past the end, with more than 8 bytes left.
  CHECK(error_of(std::string("X\x00\x01\x00\x00", 5) + pad) == core::ErrorCode::kTruncated);
  CHECK(error_of(std::string("\x8c\x40", 2) + pad) == core::ErrorCode::kTruncated);
  // Over max-string.
  core::Limits small;
  small.max_string_length = 4;
  const std::string data = std::string("\x8c\x05hello", 7) + pad;
  pickle::StringArena arena;
  pickle::Decoder d(test::bytes(data), 0, arena, small);
  pickle::Instruction ins;
  CHECK_FALSE(d.next(ins));
  CHECK(d.error().code == core::ErrorCode::kLimitExceeded);
  CHECK(d.error().offset == 0);
}

TEST_CASE("next() stops its fast path at a FRAME's end: a crossing instruction is flagged as by the reference path") {
  // FRAME of 6 bytes: BININT1 (2 bytes), then a BININT (5 bytes) that runs 1 byte past the end;
  // then a FRAME of 2 bytes holding exactly BININT1, and plenty of bytes after each (the fast
  // path's own 9-byte window is always there).
  auto le8 = [](std::uint64_t n) { return std::string(reinterpret_cast<const char*>(&n), 8); };
  const std::string data = "\x95" + le8(6) + "K\x01" + std::string("J\x01\x02\x03\x04", 5) + "\x95" + le8(2) + "K\x02" +
                           std::string("J\x05\x06\x07\x08", 5) + "NNNNNNNNNNNN.";
  core::Limits limits;
  pickle::StringArena arena_a, arena_b;
  pickle::Decoder a(test::bytes(data), 0, arena_a, limits);
  pickle::Decoder b(test::bytes(data), 0, arena_b, limits);
  std::vector<bool> violations;
  for (;;) {
    pickle::Instruction ia, ib;
    REQUIRE(a.next(ia));
    REQUIRE(b.next_slow(ib));
    same_instruction(ia, ib);
    CHECK(a.frame_end() == b.frame_end());
    violations.push_back(ia.frame_violation);
    if (ia.op == pickle::Op::STOP) break;
  }
  REQUIRE(violations.size() >= 6);
  CHECK_FALSE(violations[1]);  // BININT1 inside the first frame
  CHECK(violations[2]);        // BININT crossing its end
  CHECK_FALSE(violations[4]);  // BININT1 ending exactly at the second frame's end
  CHECK_FALSE(violations[5]);  // BININT after it, outside any frame
}
