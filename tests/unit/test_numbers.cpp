// Protocol-0 text arguments, decoded as CPython 3.11's _pickle.c does.
#include <doctest/doctest.h>

#include <cmath>

#include "core/text.hpp"
#include "pickle/numbers.hpp"
#include "pickle/string_codecs.hpp"

using namespace brine::pickle;

namespace {
std::int64_t int_of(std::string_view line, bool* as_bool = nullptr) {
  bool b = false;
  auto v = parse_int_opcode(line, b);
  REQUIRE(v.has_value());
  REQUIRE(v->is_small);
  if (as_bool) *as_bool = b;
  return v->small;
}
}  // namespace

TEST_CASE("INT: strtol base 0 first, as _pickle.c load_int does") {
  CHECK(int_of("42") == 42);
  CHECK(int_of("-7") == -7);
  CHECK(int_of("0x1F") == 31);   // strtol reads hex
  CHECK(int_of("010") == 8);     // ...and C octal, which Python literals reject
  CHECK(int_of(" 5") == 5);      // leading whitespace
  bool b = false;
  CHECK(int_of("00", &b) == 0);
  CHECK(b);
  CHECK(int_of("01", &b) == 1);
  CHECK(b);
  CHECK(int_of(" 1", &b) == 1);  // any 2-char form of 0/1 is a bool in _pickle.c
  CHECK(b);
  CHECK(int_of("10", &b) == 10);
  CHECK_FALSE(b);
}

TEST_CASE("INT: PyLong_FromString fallback and its rejections") {
  bool b = false;
  CHECK(int_of("1_000") == 1000);  // strtol stops at '_', Python literal syntax accepts it
  CHECK(int_of("0o17") == 15);
  CHECK(int_of("0b101") == 5);
  CHECK_FALSE(parse_int_opcode("08", b));     // strtol stops at 8, base-0 literal "08" is invalid
  CHECK_FALSE(parse_int_opcode("1__0", b));
  CHECK_FALSE(parse_int_opcode("0x", b));
  CHECK_FALSE(parse_int_opcode("abc", b));
  CHECK_FALSE(parse_int_opcode("", b));       // empty line: bad_readline
  auto big = parse_int_opcode("123456789012345678901234567890", b);
  REQUIRE(big);
  CHECK_FALSE(big->is_small);
  CHECK(le_bytes_to_decimal(big->big) == "123456789012345678901234567890");
  CHECK_FALSE(parse_int_opcode(std::string(kMaxDecimalDigits + 1, '7'), b));  // CPython's digit limit
  CHECK(parse_int_opcode(std::string(kMaxDecimalDigits, '7'), b));
}

TEST_CASE("INT stops at an embedded NUL like a C string") {
  bool b = false;
  auto v = parse_int_opcode(std::string_view("12\0zz", 5), b);
  REQUIRE(v);
  CHECK(v->small == 12);
  CHECK_FALSE(v->canonical);
}

TEST_CASE("INT canonical forms are what CPython's pickler writes") {
  bool b = false;
  CHECK(parse_int_opcode("42", b)->canonical);
  CHECK(parse_int_opcode("-42", b)->canonical);
  CHECK(parse_int_opcode("00", b)->canonical);
  CHECK_FALSE(parse_int_opcode("0x2a", b)->canonical);
  CHECK_FALSE(parse_int_opcode("+42", b)->canonical);
  CHECK_FALSE(parse_int_opcode("042", b)->canonical);
}

TEST_CASE("LONG drops one trailing L and parses a Python literal") {
  auto v = parse_long_opcode("12345678901234567890L");
  REQUIRE(v);
  CHECK(le_bytes_to_decimal(v->big) == "12345678901234567890");
  CHECK(v->canonical);
  auto w = parse_long_opcode("-5");
  REQUIRE(w);
  CHECK(w->small == -5);
  CHECK_FALSE(w->canonical);  // Python 2 always wrote the L
  CHECK_FALSE(parse_long_opcode("5LL"));
  CHECK(parse_long_opcode("0x10L")->small == 16);
}

TEST_CASE("memo indices are base-10 Python ints") {
  CHECK(parse_memo_index("007")->small == 7);
  CHECK(parse_memo_index(" 1_0 ")->small == 10);
  CHECK(parse_memo_index("-1")->small == -1);
  CHECK_FALSE(parse_memo_index("0x10"));
}

TEST_CASE("FLOAT follows PyOS_string_to_double") {
  bool canonical = true;
  CHECK(*parse_float_opcode("1.5", canonical) == 1.5);
  CHECK(canonical);
  CHECK(*parse_float_opcode("-2.25e-3", canonical) == -2.25e-3);
  CHECK(std::isinf(*parse_float_opcode("inf", canonical)));
  CHECK(canonical);  // repr(float('inf'))
  CHECK(std::isinf(*parse_float_opcode("-Infinity", canonical)));
  CHECK_FALSE(canonical);
  CHECK(std::isnan(*parse_float_opcode("nan", canonical)));
  CHECK(*parse_float_opcode("1e-400", canonical) == 0.0);  // underflow is fine
  CHECK_FALSE(parse_float_opcode("1e500", canonical));       // OverflowError
  CHECK_FALSE(parse_float_opcode(" 1.0", canonical));        // no leading whitespace
  CHECK_FALSE(parse_float_opcode("1_0.0", canonical));
  CHECK_FALSE(parse_float_opcode("0x1p3", canonical));
  CHECK_FALSE(parse_float_opcode("1e", canonical));          // 'e' not consumed, so not at the newline
  CHECK(*parse_float_opcode(".5", canonical) == 0.5);
  CHECK(*parse_float_opcode("5.", canonical) == 5.0);
}

TEST_CASE("float repr matches Python") {
  CHECK(float_repr(1.0) == "1.0");
  CHECK(float_repr(0.1) == "0.1");
  CHECK(float_repr(1e-8) == "1e-08");
  CHECK(float_repr(1e16) == "1e+16");
  CHECK(float_repr(1234567890123456.0) == "1234567890123456.0");
  CHECK(float_repr(-0.0) == "-0.0");
  CHECK(float_repr(0.0001) == "0.0001");
  CHECK(float_repr(1.5e300) == "1.5e+300");
  CHECK(float_repr(HUGE_VAL) == "inf");
}

TEST_CASE("little-endian two's complement helpers") {
  CHECK(le_bytes_to_int64("") == 0);
  CHECK(le_bytes_to_int64("\xff") == -1);
  CHECK(le_bytes_to_int64(std::string_view("\x00\x80\x00", 3)) == 0x8000);
  CHECK(le_bytes_to_int64(std::string_view("\x00\x80", 2)) == -32768);
  CHECK_FALSE(le_bytes_to_int64("\x01\x02\x03\x04\x05\x06\x07\x08\x09"));
  CHECK(le_bytes_to_int64(std::string_view("\xff\xff\xff\xff\xff\xff\xff\x7f\x00", 9)) == INT64_MAX);  // redundant sign byte
  CHECK(le_bytes_to_decimal(std::string("\x00\x00\x00\x00\x00\x00\x00\x00\x01", 9)) == "18446744073709551616");
  CHECK(le_bytes_to_decimal(std::string("\x00\x00\x00\x00\x00\x00\x00\x00\xff", 9)) == "-18446744073709551616");
  for (std::int64_t v : std::initializer_list<std::int64_t>{0, 1, -1, 127, 128, -128, -129, INT64_MAX, INT64_MIN}) {
    CHECK(le_bytes_to_int64(int64_to_le_bytes(v)) == v);
  }
}

TEST_CASE("STRING escapes as PyBytes_DecodeEscape") {
  bool canonical = true;
  CHECK(*decode_escape("a\\x41\\n", canonical) == "aA\n");
  CHECK(canonical);
  CHECK(*decode_escape("\\101", canonical) == "A");
  CHECK_FALSE(canonical);
  CHECK(*decode_escape("\\777", canonical) == "\xff");  // truncated to a byte
  CHECK(*decode_escape("\\q", canonical) == "\\q");    // unknown escapes are kept
  CHECK(*decode_escape("a\\\nb", canonical) == "ab");  // line continuation
  CHECK_FALSE(decode_escape("abc\\", canonical));      // trailing backslash
  CHECK_FALSE(decode_escape("\\x4", canonical));       // short \x
  CHECK_FALSE(decode_escape("\\x4g", canonical));
}

TEST_CASE("UNICODE is raw-unicode-escape") {
  CHECK(*decode_raw_unicode_escape("\\u0041b") == "Ab");
  CHECK(*decode_raw_unicode_escape("\\U0001F600") == "\xf0\x9f\x98\x80");
  CHECK(*decode_raw_unicode_escape("\\\\u0041") == "\\\\u0041");  // an even run of backslashes is literal
  CHECK(*decode_raw_unicode_escape("\xe9") == "\xc3\xa9");      // bytes are Latin-1 code points
  CHECK(*decode_raw_unicode_escape("\\ud800") == "\xed\xa0\x80");  // lone surrogate kept (WTF-8)
  CHECK(*decode_raw_unicode_escape("\\x41") == "\\x41");
  CHECK_FALSE(decode_raw_unicode_escape("\\u12"));
  CHECK_FALSE(decode_raw_unicode_escape("\\U00110000"));
}

TEST_CASE("UTF-8 validation modes") {
  using brine::core::Utf8Mode;
  using brine::core::valid_utf8;
  CHECK(valid_utf8("h\xc3\xa9", Utf8Mode::kStrict));
  CHECK_FALSE(valid_utf8("\xed\xa0\x80", Utf8Mode::kStrict));      // surrogate
  CHECK(valid_utf8("\xed\xa0\x80", Utf8Mode::kSurrogatePass));
  CHECK_FALSE(valid_utf8("\xc0\x80", Utf8Mode::kSurrogatePass));   // overlong
  CHECK_FALSE(valid_utf8("\xe0\x80\x80", Utf8Mode::kSurrogatePass));
  CHECK_FALSE(valid_utf8("\xf4\x90\x80\x80", Utf8Mode::kSurrogatePass));  // > U+10FFFF
  CHECK_FALSE(valid_utf8("\xc3", Utf8Mode::kStrict));              // truncated
}

TEST_CASE("repr of str and bytes") {
  using brine::core::py_repr_bytes;
  using brine::core::py_repr_str;
  CHECK(py_repr_str("echo hi") == "'echo hi'");
  CHECK(py_repr_str("it's") == "\"it's\"");
  CHECK(py_repr_str("a\nb\x01") == "'a\\nb\\x01'");
  CHECK(py_repr_str("abcdef", 3) == "'abc'...(+3 chars)");
  CHECK(py_repr_bytes(std::string_view("\x00" "ab", 3)) == "b'\\x00ab'");
}

TEST_CASE("ends_with_ascii_ci answers as ascii_lower(s).ends_with(suffix) does") {
  const std::string_view names[] = {"", "a", ".py", ".PY", "x.Py", "code/__torch__/m.pY", "data.pkl", "DATA.PKL",
                                    "py", "\xc3\x89.py", ".p\xd9", "Z.pz", "@.py"};
  const std::string_view suffixes[] = {"", ".py", "y", "data.pkl", ".pkl", "z"};
  for (std::string_view s : names) {
    for (std::string_view suffix : suffixes) {
      CAPTURE(s);
      CAPTURE(suffix);
      CHECK(brine::core::ends_with_ascii_ci(s, suffix) == brine::core::ascii_lower(s).ends_with(suffix));
    }
  }
}
