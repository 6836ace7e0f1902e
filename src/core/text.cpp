#include "core/text.hpp"

#include <fmt/format.h>

#include <cstring>

namespace brine::core {

namespace {
/// Length of the all-ASCII prefix of s, rounded down to whole 8-byte words (the rest is
/// checked byte by byte): most text in a pickle is ASCII, and a word test is one instruction.
std::size_t ascii_words(std::string_view s) {
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, s.data() + i, sizeof w);
    if ((w & 0x8080808080808080ULL) != 0) break;
  }
  return i;
}
}  // namespace

bool is_ascii(std::string_view s) {
  for (std::size_t i = ascii_words(s); i < s.size(); ++i) {
    if (static_cast<unsigned char>(s[i]) >= 0x80) return false;
  }
  return true;
}

namespace {
/// Length of the well-formed WTF-8 sequence at p[0..n) (surrogates allowed; the caller decides),
/// with its code point in `cp`; 0 if the bytes there are not one.
std::size_t wtf8_sequence(const unsigned char* p, std::size_t n, std::uint32_t& cp) {
  const unsigned char c = p[0];
  if (c < 0x80) {
    cp = c;
    return 1;
  }
  std::size_t len;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
    cp = c & 0x1Fu;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    cp = c & 0x0Fu;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    cp = c & 0x07u;
  } else {
    return 0;  // continuation byte, overlong 2-byte lead, or > U+10FFFF lead
  }
  if (n < len) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    if ((p[k] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[k] & 0x3Fu);
  }
  if (len == 3 && cp < 0x800) return 0;
  if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) return 0;
  return len;
}
}  // namespace

bool valid_utf8(std::string_view s, Utf8Mode mode) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  for (std::size_t i = ascii_words(s); i < s.size();) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    std::uint32_t cp = 0;
    const std::size_t len = wtf8_sequence(p + i, s.size() - i, cp);
    if (len == 0) return false;
    if (cp >= 0xD800 && cp <= 0xDFFF && mode == Utf8Mode::kStrict) return false;
    i += len;
  }
  return true;
}

void append_wtf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::uint32_t next_codepoint(std::string_view s, std::size_t& pos) {
  const auto c = static_cast<unsigned char>(s[pos]);
  std::size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
  if (pos + len > s.size()) len = s.size() - pos;  // defensive: callers pass validated text
  std::uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
  for (std::size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[pos + k]) & 0x3F);
  pos += len;
  return cp;
}

namespace {
// Approximates str.isprintable(): ASCII printables, and non-ASCII outside the C0/C1 controls,
// surrogates, line/paragraph separators and the BOM/zero-width formatting characters.
bool printable(std::uint32_t cp) {
  if (cp < 0x20 || cp == 0x7F) return false;
  if (cp < 0x7F) return true;
  if (cp <= 0xA0 || cp == 0xAD) return false;
  if (cp >= 0xD800 && cp <= 0xDFFF) return false;
  if ((cp >= 0x2028 && cp <= 0x202E) || (cp >= 0x200B && cp <= 0x200F) || (cp >= 0x2060 && cp <= 0x206F)) return false;
  if (cp == 0xFEFF || (cp >= 0xFFF9 && cp <= 0xFFFB) || cp >= 0xE0000) return false;
  if (cp == 0x061C || cp == 0x180E) return false;  // Arabic letter mark (a bidi control), Mongolian vowel separator
  return true;
}

char pick_quote(bool has_single, bool has_double) { return has_single && !has_double ? '"' : '\''; }
}  // namespace

namespace {
/// Appends `cp` as Python's repr() shows it inside a string: printable characters as they are,
/// \n \r \t, and everything else as \xNN, \uNNNN or \UNNNNNNNN.
void append_escaped(std::string& out, std::uint32_t cp) {
  if (cp == '\n') {
    out += "\\n";
  } else if (cp == '\r') {
    out += "\\r";
  } else if (cp == '\t') {
    out += "\\t";
  } else if (printable(cp)) {
    append_wtf8(out, cp);
  } else if (cp < 0x100) {
    out += fmt::format("\\x{:02x}", cp);
  } else if (cp < 0x10000) {
    out += fmt::format("\\u{:04x}", cp);
  } else {
    out += fmt::format("\\U{:08x}", cp);
  }
}
}  // namespace

std::string display_text(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  std::size_t i = 0;
  while (i < s.size()) {
    // One well-formed (WTF-8) sequence, or else one byte shown as \xNN.
    const unsigned char c = p[i];
    std::uint32_t cp = 0;
    const std::size_t len = wtf8_sequence(p + i, s.size() - i, cp);
    if (len == 0) {
      out += fmt::format("\\x{:02x}", c);
      ++i;
      continue;
    }
    append_escaped(out, cp);
    i += len;
  }
  return out;
}

std::string py_repr_str(std::string_view s, std::size_t max_chars) {
  bool has_single = s.find('\'') != std::string_view::npos;
  bool has_double = s.find('"') != std::string_view::npos;
  const char q = pick_quote(has_single, has_double);
  std::string out(1, q);
  std::size_t pos = 0, shown = 0;
  while (pos < s.size()) {
    if (shown == max_chars) break;
    const std::uint32_t cp = next_codepoint(s, pos);
    ++shown;
    if (cp == static_cast<unsigned char>(q) || cp == '\\') {
      out += '\\';
      out += static_cast<char>(cp);
    } else {
      append_escaped(out, cp);
    }
  }
  out += q;
  if (pos < s.size()) {
    std::size_t rest = 0;
    while (pos < s.size()) {
      next_codepoint(s, pos);
      ++rest;
    }
    out += fmt::format("...(+{} chars)", rest);
  }
  return out;
}

std::string py_repr_bytes(std::string_view s, std::size_t max_bytes) {
  bool has_single = s.find('\'') != std::string_view::npos;
  bool has_double = s.find('"') != std::string_view::npos;
  const char q = pick_quote(has_single, has_double);
  std::string out = "b";
  out += q;
  const std::size_t n = s.size() < max_bytes ? s.size() : max_bytes;
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == static_cast<unsigned char>(q) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  out += q;
  if (n < s.size()) out += fmt::format("...(+{} bytes)", s.size() - n);
  return out;
}

bool append_json_string(std::string& out, std::string_view s) {
  if (!valid_utf8(s, Utf8Mode::kSurrogatePass)) return false;
  static constexpr char kHex[] = "0123456789abcdef";
  auto u16 = [&](std::uint32_t unit) {
    out += "\\u";
    for (int shift = 12; shift >= 0; shift -= 4) out += kHex[(unit >> shift) & 0xF];
  };
  out += '"';
  for (std::size_t pos = 0; pos < s.size();) {
    const std::uint32_t cp = next_codepoint(s, pos);
    if (cp == '"' || cp == '\\') {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp >= 0x20 && cp < 0x7F) {
      out += static_cast<char>(cp);
    } else if (cp < 0x10000) {
      u16(cp);
    } else {
      u16(0xD800 + ((cp - 0x10000) >> 10));
      u16(0xDC00 + ((cp - 0x10000) & 0x3FF));
    }
  }
  out += '"';
  return true;
}

std::string hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_lower_char(c);
  return out;
}

bool ends_with_ascii_ci(std::string_view s, std::string_view lower_suffix) {
  if (s.size() < lower_suffix.size()) return false;
  const std::string_view tail = s.substr(s.size() - lower_suffix.size());
  for (std::size_t i = 0; i < tail.size(); ++i) {
    if (ascii_lower_char(tail[i]) != lower_suffix[i]) return false;
  }
  return true;
}

}  // namespace brine::core
