// The two text decoders protocol 0 needs, exactly as CPython 3.11 implements them:
// PyBytes_DecodeEscape (STRING) and raw-unicode-escape (UNICODE).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace brine::pickle {

/// STRING's body (quotes already stripped) -> bytes. nullopt where CPython raises
/// ("Trailing \\ in string", "invalid \\x escape"). Unknown escapes are kept as backslash + char.
/// `canonical` is false when the text uses an escape repr() would not write.
std::optional<std::string> decode_escape(std::string_view body, bool& canonical);

/// UNICODE's line -> WTF-8 text. nullopt for a truncated or out-of-range \u/\U escape.
std::optional<std::string> decode_raw_unicode_escape(std::string_view line);

}  // namespace brine::pickle
