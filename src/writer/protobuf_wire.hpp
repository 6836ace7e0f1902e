// Just enough of the protobuf wire format to write ONNX messages: varints, tags, and
// length-delimited fields. brine writes ONNX itself rather than linking libprotobuf and
// libonnx_proto: their start-up (descriptor registration) would cost every brine process —
// including every `brine scan` in a pre-commit hook — several milliseconds. The unit tests parse
// the output with the official generated classes, and the e2e tests with onnx's checker.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace brine::writer::wire {

enum WireType : std::uint8_t { kVarint = 0, kLengthDelimited = 2 };

inline void varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

inline std::uint64_t varint_size(std::uint64_t v) {
  std::uint64_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

inline void tag(std::string& out, std::uint32_t field, WireType type) { varint(out, (std::uint64_t{field} << 3) | type); }

/// An int32/int64/enum field (negative values take ten bytes, as protobuf encodes them).
inline void int_field(std::string& out, std::uint32_t field, std::int64_t v) {
  tag(out, field, kVarint);
  varint(out, static_cast<std::uint64_t>(v));
}

/// A string, bytes or embedded-message field.
inline void bytes_field(std::string& out, std::uint32_t field, std::string_view payload) {
  tag(out, field, kLengthDelimited);
  varint(out, payload.size());
  out.append(payload);
}

/// The tag and length of a length-delimited field whose payload is written separately.
inline std::string field_prefix(std::uint32_t field, std::uint64_t payload_size) {
  std::string out;
  tag(out, field, kLengthDelimited);
  varint(out, payload_size);
  return out;
}

/// Total bytes of a length-delimited field with a payload of `payload_size` bytes.
inline std::uint64_t field_size(std::uint32_t field, std::uint64_t payload_size) {
  return varint_size((std::uint64_t{field} << 3) | kLengthDelimited) + varint_size(payload_size) + payload_size;
}

}  // namespace brine::writer::wire
