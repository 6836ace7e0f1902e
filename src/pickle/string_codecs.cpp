#include "pickle/string_codecs.hpp"

#include "core/text.hpp"

namespace brine::pickle {

namespace {
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::optional<std::string> decode_escape(std::string_view s, bool& canonical) {
  canonical = true;
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (c != '\\') {
      out += c;
      ++i;
      continue;
    }
    ++i;
    if (i == s.size()) return std::nullopt;  // Trailing \ in string
    const char e = s[i++];
    switch (e) {
      case '\n': canonical = false; break;  // line continuation
      case '\\': out += '\\'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; canonical = false; break;
      case 'b': out += '\b'; canonical = false; break;
      case 'f': out += '\f'; canonical = false; break;
      case 't': out += '\t'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 'v': out += '\v'; canonical = false; break;
      case 'a': out += '\a'; canonical = false; break;
      case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': {
        unsigned v = static_cast<unsigned>(e - '0');
        if (i < s.size() && s[i] >= '0' && s[i] <= '7') {
          v = (v << 3) + static_cast<unsigned>(s[i++] - '0');
          if (i < s.size() && s[i] >= '0' && s[i] <= '7') v = (v << 3) + static_cast<unsigned>(s[i++] - '0');
        }
        out += static_cast<char>(v & 0xFF);  // CPython truncates values above 0o377
        canonical = false;
        break;
      }
      case 'x': {
        if (i + 1 < s.size()) {
          const int d1 = hex_value(s[i]);
          const int d2 = hex_value(s[i + 1]);
          if (d1 >= 0 && d2 >= 0) {
            out += static_cast<char>((d1 << 4) + d2);
            i += 2;
            break;
          }
        }
        return std::nullopt;  // invalid \x escape
      }
      default:
        out += '\\';
        --i;  // the character after the backslash is kept as is
        canonical = false;
        break;
    }
  }
  return out;
}

std::optional<std::string> decode_raw_unicode_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i++]);
    if (c != '\\' || i >= s.size()) {
      core::append_wtf8(out, c);  // bytes are Latin-1 code points
      continue;
    }
    const char kind = s[i++];
    int count;
    if (kind == 'u') {
      count = 4;
    } else if (kind == 'U') {
      count = 8;
    } else {
      out += '\\';
      core::append_wtf8(out, static_cast<unsigned char>(kind));
      continue;
    }
    std::uint32_t cp = 0;
    for (; count > 0; --count, ++i) {
      if (i >= s.size()) return std::nullopt;  // truncated \uXXXX escape
      const int d = hex_value(s[i]);
      if (d < 0) return std::nullopt;
      cp = (cp << 4) | static_cast<std::uint32_t>(d);
    }
    if (cp > 0x10FFFF) return std::nullopt;  // \Uxxxxxxxx out of range
    core::append_wtf8(out, cp);
  }
  return out;
}

}  // namespace brine::pickle
