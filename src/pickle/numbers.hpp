// Numbers as the CPython 3.11 unpickler reads them.
//
// Protocol-0 text numbers follow _pickle.c exactly: INT tries C strtol(base 0) and falls back to
// PyLong_FromString(base 0); LONG strips one trailing 'L'; FLOAT uses PyOS_string_to_double;
// GET/PUT use PyLong_FromString(base 10). All of them stop at an embedded NUL the way C strings
// do. Integers too large for int64 are kept as little-endian two's-complement bytes, the format
// LONG1/LONG4 already use.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace brine::pickle {

/// CPython refuses to convert decimal strings longer than this (sys.int_info.default_max_str_digits).
inline constexpr std::size_t kMaxDecimalDigits = 4300;

struct ParsedInt {
  bool is_small = true;    ///< fits in int64: `small` holds it
  std::int64_t small = 0;
  std::string big;         ///< otherwise: minimal little-endian two's-complement bytes
  bool canonical = true;   ///< false when the text is not how CPython's pickler writes it
};

/// INT: the line without its '\n'. Returns nullopt when CPython would raise.
/// `as_bool` is set when CPython pushes True/False ("00"/"01" and other 2-char forms of 0/1).
std::optional<ParsedInt> parse_int_opcode(std::string_view line, bool& as_bool);
/// LONG: the line without its '\n' (an 'L' before it is dropped).
std::optional<ParsedInt> parse_long_opcode(std::string_view line);
/// GET/PUT: base-10 memo index. Negative values are returned as such (the caller decides).
std::optional<ParsedInt> parse_memo_index(std::string_view line);
/// FLOAT: the line without its '\n'. `canonical` is false for forms repr() never writes.
std::optional<double> parse_float_opcode(std::string_view line, bool& canonical);

/// PyLong_FromString(s, NULL, base) for base 0 or 10 on a C string (no embedded NUL).
std::optional<ParsedInt> python_int_from_string(std::string_view s, int base);

/// Little-endian two's-complement bytes -> int64 if it fits.
std::optional<std::int64_t> le_bytes_to_int64(std::string_view le);
/// Minimal little-endian two's-complement encoding of v (empty for 0, as LONG1 writes 0).
std::string int64_to_le_bytes(std::int64_t v);
/// Decimal text of a little-endian two's-complement integer. Quadratic: callers bound the size.
std::string le_bytes_to_decimal(std::string_view le);
/// Python repr() of a float: shortest round-trip digits, repr()'s exponent rules, inf/nan.
std::string float_repr(double d);

}  // namespace brine::pickle
