// Text helpers shared by the decoder and the reports: UTF-8 validation in CPython's two modes,
// and Python-style repr() of str and bytes values.
//
// Strings from a pickle are kept as "WTF-8": UTF-8 that may also encode lone surrogates
// (U+D800..U+DFFF), because BINUNICODE decodes with errors="surrogatepass" and UNICODE's
// raw-unicode-escape can produce them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace brine::core {

enum class Utf8Mode : std::uint8_t {
  kStrict,          ///< CPython "strict": no surrogates
  kSurrogatePass,   ///< CPython "surrogatepass": encoded surrogates allowed
};

/// True when `s` is well-formed UTF-8 in `mode` (no overlongs, nothing above U+10FFFF).
bool valid_utf8(std::string_view s, Utf8Mode mode);
/// True when every byte is < 0x80.
bool is_ascii(std::string_view s);

/// Appends `cp` (0..0x10FFFF, surrogates included) as WTF-8.
void append_wtf8(std::string& out, std::uint32_t cp);

/// Decodes one code point of WTF-8 at `pos` (which must be valid); advances `pos`.
std::uint32_t next_codepoint(std::string_view s, std::size_t& pos);

/// Python repr() of a str given as WTF-8, e.g. 'echo hi' or "it's". At most `max_chars` code
/// points are shown; longer strings end in "...' (+N chars)".
std::string py_repr_str(std::string_view wtf8, std::size_t max_chars = SIZE_MAX);
/// Python repr() of bytes, e.g. b'\x00ab'. Same truncation rule.
std::string py_repr_bytes(std::string_view bytes, std::size_t max_bytes = SIZE_MAX);

/// `s` (any bytes) made safe to show a person on a terminal, in the style of Python escapes:
/// printable UTF-8 is kept; control characters (C0, DEL, C1, so every ANSI escape sequence),
/// bidi and zero-width formatting characters, line separators, surrogates and the newline
/// become \xNN / \uNNNN / \UNNNNNNNN (\n, \r, \t), and a byte that is not well-formed UTF-8
/// becomes \xNN. Every string taken from an input file passes through this before it reaches
/// a text report, so a file cannot rewrite what the analyst sees.
std::string display_text(std::string_view s);

/// Appends `wtf8` as a quoted JSON string in ASCII: every non-ASCII code point is a \uXXXX
/// escape (a surrogate pair above U+FFFF), so lone surrogates survive as "\udc80" the way
/// Python's json.dumps writes them. Returns false, appending nothing, if `wtf8` is not WTF-8.
bool append_json_string(std::string& out, std::string_view wtf8);

/// Lowercase hex of the bytes.
std::string hex(std::string_view bytes);

/// ASCII-lowercased copy (bytes >= 0x80 unchanged): zip readers compare names case-insensitively
/// this way, and file extensions are matched this way.
/// `c` with A-Z made a-z (every other byte as it is).
constexpr char ascii_lower_char(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }
std::string ascii_lower(std::string_view s);
/// True if `s` ends with `lower_suffix` (given in lowercase), ignoring ASCII case.
bool ends_with_ascii_ci(std::string_view s, std::string_view lower_suffix);

}  // namespace brine::core
