#include "pickle/numbers.hpp"

#include <clocale>
#include <locale.h>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace brine::pickle {

namespace {

bool py_isspace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\x0b' || c == '\x0c';
}

int digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'z') return c - 'a' + 10;
  if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
  return 99;
}

/// Cut at the first NUL, as C string functions see the line.
std::string_view c_string(std::string_view s) {
  const auto nul = s.find('\0');
  return nul == std::string_view::npos ? s : s.substr(0, nul);
}

/// Magnitude in base 2^32 limbs (little-endian) -> minimal two's complement bytes with sign.
std::string limbs_to_le(std::vector<std::uint32_t> limbs, bool negative) {
  while (!limbs.empty() && limbs.back() == 0) limbs.pop_back();
  std::string bytes;
  for (std::uint32_t limb : limbs) {
    for (int k = 0; k < 4; ++k) bytes += static_cast<char>((limb >> (8 * k)) & 0xFF);
  }
  while (!bytes.empty() && bytes.back() == 0) bytes.pop_back();
  if (negative && !bytes.empty()) {
    // two's complement: invert and add one
    unsigned carry = 1;
    for (char& c : bytes) {
      unsigned v = (~static_cast<unsigned char>(c) & 0xFFu) + carry;
      c = static_cast<char>(v & 0xFF);
      carry = v >> 8;
    }
    // ensure the sign bit is set
    if ((static_cast<unsigned char>(bytes.back()) & 0x80) == 0) bytes += '\xff';
    // minimise: drop redundant 0xFF bytes whose next-lower byte already has the sign bit
    while (bytes.size() > 1 && static_cast<unsigned char>(bytes.back()) == 0xFF &&
           (static_cast<unsigned char>(bytes[bytes.size() - 2]) & 0x80) != 0) {
      bytes.pop_back();
    }
  } else if (!bytes.empty() && (static_cast<unsigned char>(bytes.back()) & 0x80) != 0) {
    bytes += '\0';
  }
  return bytes;
}

ParsedInt from_magnitude(std::vector<std::uint32_t> limbs, bool negative) {
  ParsedInt out;
  std::string le = limbs_to_le(std::move(limbs), negative);
  if (auto small = le_bytes_to_int64(le)) {
    out.small = *small;
  } else {
    out.is_small = false;
    out.big = std::move(le);
  }
  return out;
}

/// C strtol(s, &end, 0) on a NUL-free string: returns the value and the end index,
/// or nullopt on overflow (errno == ERANGE).
struct StrtolResult {
  long value;
  std::size_t end;
  bool overflow;
};

StrtolResult c_strtol_base0(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r'))) ++i;
  bool neg = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    neg = s[i] == '-';
    ++i;
  }
  int base = 10;
  if (i < s.size() && s[i] == '0') {
    if (i + 2 < s.size() + 1 && i + 1 < s.size() && (s[i + 1] == 'x' || s[i + 1] == 'X') && i + 2 < s.size() &&
        digit_value(s[i + 2]) < 16) {
      base = 16;
      i += 2;
    } else {
      base = 8;
    }
  }
  const std::size_t digits_start = i;
  unsigned long long acc = 0;
  bool overflow = false;
  const unsigned long long limit = neg ? 9223372036854775808ull : 9223372036854775807ull;
  while (i < s.size() && digit_value(s[i]) < base) {
    const auto d = static_cast<unsigned>(digit_value(s[i]));
    if (!overflow) {
      if (acc > (limit - d) / static_cast<unsigned>(base)) {
        overflow = true;
      } else {
        acc = acc * static_cast<unsigned>(base) + d;
      }
    }
    ++i;
  }
  if (i == digits_start) return {0, 0, false};  // no conversion: endptr = nptr
  long value = neg ? static_cast<long>(0 - acc) : static_cast<long>(acc);
  return {value, i, overflow};
}

}  // namespace

std::optional<std::int64_t> le_bytes_to_int64(std::string_view le) {
  if (le.empty()) return 0;
  // Strip redundant sign-extension bytes before the width check.
  std::size_t n = le.size();
  const bool negative = (static_cast<unsigned char>(le[n - 1]) & 0x80) != 0;
  const unsigned char ext = negative ? 0xFF : 0x00;
  while (n > 1 && static_cast<unsigned char>(le[n - 1]) == ext &&
         ((static_cast<unsigned char>(le[n - 2]) & 0x80) != 0) == negative) {
    --n;
  }
  if (n > 8) return std::nullopt;
  std::uint64_t v = negative ? ~0ull : 0ull;
  for (std::size_t i = 0; i < n; ++i) {
    v &= ~(0xFFull << (8 * i));
    v |= static_cast<std::uint64_t>(static_cast<unsigned char>(le[i])) << (8 * i);
  }
  return static_cast<std::int64_t>(v);
}

std::string int64_to_le_bytes(std::int64_t v) {
  if (v == 0) return {};
  std::string out;
  auto u = static_cast<std::uint64_t>(v);
  for (int i = 0; i < 8; ++i) out += static_cast<char>((u >> (8 * i)) & 0xFF);
  const bool negative = v < 0;
  const unsigned char ext = negative ? 0xFF : 0x00;
  while (out.size() > 1 && static_cast<unsigned char>(out.back()) == ext &&
         ((static_cast<unsigned char>(out[out.size() - 2]) & 0x80) != 0) == negative) {
    out.pop_back();
  }
  return out;
}

std::string le_bytes_to_decimal(std::string_view le) {
  if (auto small = le_bytes_to_int64(le)) return std::to_string(*small);
  const bool negative = (static_cast<unsigned char>(le.back()) & 0x80) != 0;
  std::string mag(le);
  if (negative) {  // magnitude = ~x + 1
    unsigned carry = 1;
    for (char& c : mag) {
      unsigned v = (~static_cast<unsigned char>(c) & 0xFFu) + carry;
      c = static_cast<char>(v & 0xFF);
      carry = v >> 8;
    }
  }
  std::vector<std::uint32_t> limbs((mag.size() + 3) / 4, 0);
  for (std::size_t i = 0; i < mag.size(); ++i) {
    limbs[i / 4] |= static_cast<std::uint32_t>(static_cast<unsigned char>(mag[i])) << (8 * (i % 4));
  }
  std::string digits;
  while (!limbs.empty()) {
    std::uint64_t rem = 0;
    for (std::size_t i = limbs.size(); i-- > 0;) {
      const std::uint64_t cur = (rem << 32) | limbs[i];
      limbs[i] = static_cast<std::uint32_t>(cur / 1000000000u);
      rem = cur % 1000000000u;
    }
    while (!limbs.empty() && limbs.back() == 0) limbs.pop_back();
    for (int k = 0; k < 9; ++k) {
      digits += static_cast<char>('0' + rem % 10);
      rem /= 10;
      if (limbs.empty() && rem == 0) break;
    }
  }
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  if (negative) digits += '-';
  return {digits.rbegin(), digits.rend()};
}

std::optional<ParsedInt> python_int_from_string(std::string_view s, int base) {
  std::size_t i = 0;
  while (i < s.size() && py_isspace(s[i])) ++i;
  bool negative = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    negative = s[i] == '-';
    ++i;
  }
  bool canonical = true;
  bool old_octal_zero = false;  // base-0 literal starting with '0' and no prefix: only zeros allowed
  if (base == 0) {
    if (i < s.size() && s[i] == '0' && i + 1 < s.size() &&
        (s[i + 1] == 'x' || s[i + 1] == 'X' || s[i + 1] == 'o' || s[i + 1] == 'O' || s[i + 1] == 'b' ||
         s[i + 1] == 'B')) {
      const char p = static_cast<char>(s[i + 1] | 0x20);
      base = p == 'x' ? 16 : p == 'o' ? 8 : 2;
      i += 2;
      if (i < s.size() && s[i] == '_') ++i;  // one underscore may follow the prefix
      canonical = false;
    } else {
      if (i < s.size() && s[i] == '0') old_octal_zero = true;
      base = 10;
    }
  }
  if (i < s.size() && s[i] == '_') return std::nullopt;
  const std::size_t start = i;
  std::size_t ndigits = 0;
  bool prev_underscore = false;
  std::string digits;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '_') {
      if (prev_underscore) return std::nullopt;
      prev_underscore = true;
      canonical = false;
      continue;
    }
    if (digit_value(c) >= base) break;
    prev_underscore = false;
    digits += c;
    ++ndigits;
  }
  if (prev_underscore || ndigits == 0) return std::nullopt;
  if (old_octal_zero && digits.find_first_not_of('0') != std::string::npos) return std::nullopt;
  std::size_t end = i;
  while (i < s.size() && py_isspace(s[i])) ++i;
  if (i != s.size()) return std::nullopt;
  if (start > 0 && (py_isspace(s[0]) || s[0] == '+')) canonical = false;
  if (end != s.size()) canonical = false;
  if (base == 10 && ndigits > kMaxDecimalDigits) return std::nullopt;

  // Accumulate the magnitude in base 2^32 limbs.
  std::vector<std::uint32_t> limbs;
  for (char c : digits) {
    std::uint64_t carry = static_cast<std::uint64_t>(digit_value(c));
    for (auto& limb : limbs) {
      const std::uint64_t cur = static_cast<std::uint64_t>(limb) * static_cast<unsigned>(base) + carry;
      limb = static_cast<std::uint32_t>(cur);
      carry = cur >> 32;
    }
    if (carry != 0) limbs.push_back(static_cast<std::uint32_t>(carry));
  }
  ParsedInt out = from_magnitude(std::move(limbs), negative);
  if (base == 10 && digits.size() > 1 && digits[0] == '0') canonical = false;
  out.canonical = canonical;
  return out;
}

std::optional<ParsedInt> parse_int_opcode(std::string_view line, bool& as_bool) {
  as_bool = false;
  if (line.empty()) return std::nullopt;  // _pickle.c: len < 2 -> bad_readline
  const std::string_view c = c_string(line);
  const StrtolResult r = c_strtol_base0(c);
  if (!r.overflow && r.end == c.size() && !(r.end == 0 && !c.empty())) {
    // strtol consumed everything up to '\n' or the NUL.
    ParsedInt out;
    out.small = r.value;
    const std::string canonical_text = std::to_string(r.value);
    if (line.size() == 2 && (r.value == 0 || r.value == 1)) {
      as_bool = true;
      out.canonical = line == "00" || line == "01";
    } else {
      out.canonical = c.size() == line.size() && c == canonical_text;
    }
    return out;
  }
  auto parsed = python_int_from_string(c, 0);
  if (!parsed) return std::nullopt;
  parsed->canonical = parsed->canonical && c.size() == line.size() && parsed->is_small == false;
  return parsed;
}

std::optional<ParsedInt> parse_long_opcode(std::string_view line) {
  if (line.empty()) return std::nullopt;
  std::string_view body = line;
  const bool had_l = body.back() == 'L';
  if (had_l) body.remove_suffix(1);
  const std::string_view c = c_string(body);
  auto parsed = python_int_from_string(c, 0);
  if (!parsed) return std::nullopt;
  parsed->canonical = parsed->canonical && had_l && c.size() == body.size();
  return parsed;
}

std::optional<ParsedInt> parse_memo_index(std::string_view line) {
  if (line.empty()) return std::nullopt;
  const std::string_view c = c_string(line);
  auto parsed = python_int_from_string(c, 10);
  if (!parsed) return std::nullopt;
  parsed->canonical = parsed->canonical && c.size() == line.size();
  return parsed;
}

std::optional<double> parse_float_opcode(std::string_view line, bool& canonical) {
  canonical = true;
  if (line.empty()) return std::nullopt;
  const std::string_view s = c_string(line);
  std::size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  const std::size_t num_start = i;
  std::size_t int_digits = 0, frac_digits = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') { ++i; ++int_digits; }
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') { ++i; ++frac_digits; }
  }
  std::size_t end;
  bool special = false;
  double value = 0;
  if (int_digits + frac_digits == 0) {
    // _Py_parse_inf_or_nan
    auto match = [&](std::size_t at, std::string_view word) {
      if (s.size() - at < word.size()) return false;
      for (std::size_t k = 0; k < word.size(); ++k) {
        if ((s[at + k] | 0x20) != word[k]) return false;
      }
      return true;
    };
    const bool negative = s.size() > 0 && s[0] == '-';
    if (match(num_start, "inf")) {
      end = num_start + 3;
      if (match(end, "inity")) end += 5;
      value = negative ? -HUGE_VAL : HUGE_VAL;
    } else if (match(num_start, "nan")) {
      end = num_start + 3;
      value = negative ? -std::fabs(NAN) : std::fabs(NAN);
    } else {
      return std::nullopt;  // nothing converted: ValueError
    }
    special = true;
    // repr() writes exactly these; "Infinity", "+inf", "NaN" are hand-made.
    canonical = s == "inf" || s == "-inf" || s == "nan";
  } else {
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
      std::size_t j = i + 1;
      if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
      if (j < s.size() && s[j] >= '0' && s[j] <= '9') {
        while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j;
        i = j;
      }
    }
    end = i;
  }
  if (end != s.size()) return std::nullopt;  // endptr must be at '\n' or NUL
  if (s.size() != line.size()) canonical = false;
  if (!special) {
    static locale_t c_locale = newlocale(LC_ALL_MASK, "C", static_cast<locale_t>(nullptr));
    const std::string text(s);
    char* endp = nullptr;
    errno = 0;
    value = strtod_l(text.c_str(), &endp, c_locale);
    if (std::isinf(value)) return std::nullopt;  // OverflowError: value too large
    if (s[0] == '+') canonical = false;
  }
  return value;
}

std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  char buf[64];
  // Shortest round-trip digits in scientific form: d.ddddde±XX
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  const bool negative = sci[0] == '-';
  if (negative) sci.erase(0, 1);
  const auto epos = sci.find('e');
  std::string mant = sci.substr(0, epos);
  const int exp10 = std::stoi(sci.substr(epos + 1));
  std::string digits;
  for (char c : mant) {
    if (c != '.') digits += c;
  }
  // repr(): fixed notation when -4 <= exponent < 16, else scientific.
  std::string out;
  const int decpt = exp10 + 1;  // position of the decimal point relative to the digits
  if (exp10 >= -4 && exp10 < 16) {
    if (decpt <= 0) {
      out = "0." + std::string(static_cast<std::size_t>(-decpt), '0') + digits;
    } else if (static_cast<std::size_t>(decpt) >= digits.size()) {
      out = digits + std::string(static_cast<std::size_t>(decpt) - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, static_cast<std::size_t>(decpt)) + "." + digits.substr(static_cast<std::size_t>(decpt));
    }
  } else {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char ebuf[16];
    std::snprintf(ebuf, sizeof ebuf, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
    out += ebuf;
  }
  return negative ? "-" + out : out;
}

}  // namespace brine::pickle
