// Bounds-checked little/big-endian reads over a byte span.
//
// Every read checks the remaining length first and never advances past the end; callers get
// std::nullopt-like failures as `false`/empty results and report kTruncated themselves, with
// the offset they were reading at.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>

namespace brine::core {

using Bytes = std::span<const std::uint8_t>;

inline std::string_view as_chars(Bytes b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}
inline Bytes as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

class ByteReader {
 public:
  explicit ByteReader(Bytes data, std::uint64_t pos = 0) : data_(data), pos_(pos) {}

  [[nodiscard]] std::uint64_t pos() const { return pos_; }
  [[nodiscard]] std::uint64_t size() const { return data_.size(); }
  [[nodiscard]] std::uint64_t remaining() const { return data_.size() - pos_; }
  [[nodiscard]] bool at_end() const { return pos_ >= data_.size(); }
  void seek(std::uint64_t pos) { pos_ = pos <= data_.size() ? pos : data_.size(); }
  /// seek() for a caller that has already checked `pos` <= size() (a hot decoding loop).
  void seek_checked(std::uint64_t pos) { pos_ = pos; }
  [[nodiscard]] Bytes data() const { return data_; }

  std::optional<std::uint8_t> u8() {
    if (remaining() < 1) return std::nullopt;
    return data_[pos_++];
  }
  std::optional<std::uint64_t> uint_le(unsigned n) {
    if (remaining() < n) return std::nullopt;
    std::uint64_t v = 0;
    for (unsigned i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(data_[pos_ + i]) << (8 * i);
    pos_ += n;
    return v;
  }
  std::optional<std::int32_t> i32_le() {
    auto v = uint_le(4);
    if (!v) return std::nullopt;
    return static_cast<std::int32_t>(static_cast<std::uint32_t>(*v));
  }
  std::optional<double> f64_be() {
    if (remaining() < 8) return std::nullopt;
    std::uint64_t bits = 0;
    for (unsigned i = 0; i < 8; ++i) bits = (bits << 8) | data_[pos_ + i];
    pos_ += 8;
    double d;
    std::memcpy(&d, &bits, sizeof d);
    return d;
  }
  /// n bytes as a view; fails without moving if fewer remain (so a huge claimed n costs nothing).
  std::optional<Bytes> bytes(std::uint64_t n) {
    if (remaining() < n) return std::nullopt;
    Bytes out = data_.subspan(pos_, n);
    pos_ += n;
    return out;
  }
  /// The bytes up to and excluding the next '\n'; consumes the '\n'. Fails if there is none.
  std::optional<Bytes> line() {
    if (remaining() == 0) return std::nullopt;
    const void* nl = std::memchr(data_.data() + pos_, '\n', remaining());
    if (nl == nullptr) return std::nullopt;
    auto len = static_cast<std::uint64_t>(static_cast<const std::uint8_t*>(nl) - (data_.data() + pos_));
    Bytes out = data_.subspan(pos_, len);
    pos_ += len + 1;
    return out;
  }

 private:
  Bytes data_;
  std::uint64_t pos_;
};

}  // namespace brine::core
