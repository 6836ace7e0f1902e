#include "container/npy.hpp"

#include "core/text.hpp"

#include <fmt/format.h>

#include <cstring>

#include "container/py_literal.hpp"

namespace brine::container {

bool is_npy(core::Bytes data) { return data.size() >= 6 && std::memcmp(data.data(), "\x93NUMPY", 6) == 0; }

namespace {

/// The header as numpy's bytes.decode sees it, re-encoded as UTF-8; nullopt if decoding fails.
std::optional<std::string> decode_header(core::Bytes raw, bool utf8) {
  std::string out;
  out.reserve(raw.size());
  if (!utf8) {  // latin1: every byte is the code point of the same value
    for (std::uint8_t b : raw) core::append_wtf8(out, b);
    return out;
  }
  // Strict UTF-8 as Python decodes it: no overlongs, no surrogates, nothing above U+10FFFF.
  for (std::size_t i = 0; i < raw.size();) {
    const std::uint8_t b = raw[i];
    std::size_t n = 0;
    std::uint32_t cp = 0, min = 0;
    if (b < 0x80) { out += static_cast<char>(b); ++i; continue; }
    if (b >= 0xC2 && b <= 0xDF) { n = 1; cp = b & 0x1F; min = 0x80; }
    else if (b >= 0xE0 && b <= 0xEF) { n = 2; cp = b & 0x0F; min = 0x800; }
    else if (b >= 0xF0 && b <= 0xF4) { n = 3; cp = b & 0x07; min = 0x10000; }
    else return std::nullopt;
    for (std::size_t k = 1; k <= n; ++k) {
      if (i + k >= raw.size() || (raw[i + k] & 0xC0) != 0x80) return std::nullopt;
      cp = (cp << 6) | (raw[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
    out.append(reinterpret_cast<const char*>(raw.data() + i), n + 1);
    i += n + 1;
  }
  return out;
}

}  // namespace

core::Result<NpyHeader> parse_npy_header(core::Bytes data, std::uint64_t max_header_bytes) {
  auto err = [](std::uint64_t at, std::string why) { return core::fail(core::Error{core::ErrorCode::kContainer, at, {}, {}, "npy: " + why}); };
  if (!is_npy(data)) return err(0, "no magic");
  core::ByteReader r(data, 6);
  NpyHeader h;
  auto major = r.u8();
  auto minor = r.u8();
  if (!major || !minor) return err(6, "truncated version");
  h.major = *major;
  h.minor = *minor;
  // format._check_version: only (1, 0), (2, 0) and (3, 0).
  if (h.major < 1 || h.major > 3 || h.minor != 0) return err(6, fmt::format("unsupported format version {}.{}", h.major, h.minor));
  auto len = r.uint_le(h.major == 1 ? 2 : 4);
  if (!len) return err(8, "truncated header length");
  auto header = r.bytes(*len);
  if (!header) return err(r.pos(), fmt::format("header claims {} bytes, {} remain", *len, r.remaining()));
  h.data_offset = r.pos();
  const std::uint64_t at = h.data_offset - *len;
  auto unresolved = [&](std::string why) {
    h.unresolved = std::move(why);
    h.has_object = true;
    h.descr = "(unresolved)";
    return h;
  };
  if (*len > max_header_bytes) {
    return core::fail(core::Error{core::ErrorCode::kLimitExceeded, at, {}, {},
                                  fmt::format("max-npy-header: the .npy header is {} bytes (limit {})", *len, max_header_bytes)});
  }
  auto text = decode_header(*header, h.major == 3);
  if (!text) return err(at, "the header is not valid UTF-8");
  pylit::ParseOptions options;
  options.drop_long_suffix = h.major <= 2;
  auto parsed = pylit::parse(*text, options);
  using PS = pylit::ParseOutcome::Status;
  if (parsed.status == PS::kInvalid) return err(at, fmt::format("header is not a Python literal: {} (at character {})", parsed.why, parsed.at));
  if (parsed.status == PS::kUnsupported) return unresolved(fmt::format("header literal: {} (at character {})", parsed.why, parsed.at));
  const pylit::Value& d = parsed.value;
  if (d.kind != pylit::Kind::kDict) return err(at, "header is not a dictionary");
  const pylit::Value *descr = nullptr, *fortran = nullptr, *shape = nullptr;
  for (std::size_t i = 0; i + 1 < d.items.size(); i += 2) {
    const auto& k = d.items[i];
    const pylit::Value* v = &d.items[i + 1];
    if (k.is_str("descr")) descr = v;
    else if (k.is_str("fortran_order")) fortran = v;
    else if (k.is_str("shape")) shape = v;
    else return err(at, "header does not have exactly the keys 'descr', 'fortran_order', 'shape'");
  }
  if (descr == nullptr || fortran == nullptr || shape == nullptr) {
    return err(at, "header does not have exactly the keys 'descr', 'fortran_order', 'shape'");
  }
  if (shape->kind != pylit::Kind::kTuple) return err(at, "shape is not a tuple");
  for (const auto& dim : shape->items) {
    if (!dim.is_int()) return err(at, "shape is not a tuple of ints");
    if (dim.big) return err(at, "a dimension overflows int64");
    h.shape.push_back(dim.integer);
  }
  if (fortran->kind != pylit::Kind::kBool) return err(at, "fortran_order is not a bool");
  h.fortran_order = fortran->boolean;
  auto dtype = numpy_dtype_from_descr(*descr);
  if (dtype.status == DtypeResolution::Status::kInvalid) return err(at, "descr: " + dtype.why);
  if (dtype.status == DtypeResolution::Status::kUnresolved) return unresolved("descr: " + dtype.why);
  h.dtype = std::move(dtype.dtype);
  h.has_object = h.dtype.has_object;
  h.descr = !h.dtype.str.empty() ? h.dtype.str
            : fmt::format("{} of {} bytes{}", h.dtype.structured ? "structured" : "sub-array", h.dtype.itemsize,
                          h.has_object ? " holding objects" : "");
  return h;
}

}  // namespace brine::container
