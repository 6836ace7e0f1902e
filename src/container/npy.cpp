#include "container/npy.hpp"

#include <fmt/format.h>

#include <cstring>

namespace brine::container {

bool is_npy(core::Bytes data) { return data.size() >= 6 && std::memcmp(data.data(), "\x93NUMPY", 6) == 0; }

namespace {
/// True for a dtype string that is (or, inside a structured descr, contains) an object type: O, |O, <O8...
bool object_type(std::string_view t) {
  if (!t.empty() && (t[0] == '<' || t[0] == '>' || t[0] == '|' || t[0] == '=')) t.remove_prefix(1);
  if (t.empty() || t[0] != 'O') return false;
  for (char c : t.substr(1)) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}
}  // namespace

core::Result<NpyHeader> parse_npy_header(core::Bytes data) {
  auto err = [](std::uint64_t at, std::string why) { return core::fail(core::Error{core::ErrorCode::kContainer, at, {}, {}, "npy: " + why}); };
  if (!is_npy(data)) return err(0, "no magic");
  core::ByteReader r(data, 6);
  NpyHeader h;
  auto major = r.u8();
  auto minor = r.u8();
  if (!major || !minor) return err(6, "truncated version");
  h.major = *major;
  h.minor = *minor;
  if (h.major < 1 || h.major > 3) return err(6, fmt::format("unknown format version {}.{}", h.major, h.minor));
  auto len = r.uint_le(h.major == 1 ? 2 : 4);
  if (!len) return err(8, "truncated header length");
  auto header = r.bytes(*len);
  if (!header) return err(r.pos(), fmt::format("header claims {} bytes, {} remain", *len, r.remaining()));
  h.data_offset = r.pos();
  const std::string_view text = core::as_chars(*header);
  // 'descr' is the first key numpy writes; find its value and collect every quoted string in it.
  const auto key = text.find("'descr'");
  if (key == std::string_view::npos) return err(10, "header has no 'descr'");
  std::size_t i = text.find(':', key);
  if (i == std::string_view::npos) return err(10, "malformed 'descr'");
  ++i;
  while (i < text.size() && text[i] == ' ') ++i;
  // The value runs to the next top-level ", '" key or the closing brace; brackets nest.
  int depth = 0;
  const std::size_t start = i;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\'' || c == '"') {
      const std::size_t close = text.find(c, i + 1);
      if (close == std::string_view::npos) return err(10, "unterminated string in 'descr'");
      if (object_type(text.substr(i + 1, close - i - 1))) h.has_object = true;
      i = close;
    } else if (c == '[' || c == '(') {
      ++depth;
    } else if (c == ']' || c == ')') {
      --depth;
    } else if ((c == ',' || c == '}') && depth == 0) {
      break;
    }
  }
  h.descr = std::string(text.substr(start, i - start));
  return h;
}

}  // namespace brine::container
