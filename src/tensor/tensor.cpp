#include "tensor/tensor.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace brine::tensor {

using core::ErrorCode;

namespace {

/// Staging for non-contiguous or converted tensors: small enough to stay in cache, large
/// enough that the sink sees big writes. Always a multiple of every element size (16).
constexpr std::size_t kStageBytes = 1 << 20;
/// Plain copies are handed to the sink in pieces of this size, so that sinks that hash or
/// compare (verify) never need a whole tensor in memory either.
constexpr std::size_t kCopyChunk = 16 << 20;

bool mul_overflows(std::uint64_t a, std::uint64_t b, std::uint64_t& out) { return __builtin_mul_overflow(a, b, &out); }

bool is_float_like(DType d) {
  switch (d) {
    case DType::kF64: case DType::kF32: case DType::kF16: case DType::kBF16:
    case DType::kF8E4M3FN: case DType::kF8E5M2: case DType::kF8E4M3FNUZ: case DType::kF8E5M2FNUZ:
    case DType::kC64: case DType::kC128: case DType::kC32:
      return true;
    default:
      return false;
  }
}

bool is_complex(DType d) { return d == DType::kC64 || d == DType::kC128 || d == DType::kC32; }

/// Reverses each `unit`-byte group in place.
void swap_units(std::uint8_t* p, std::size_t n, unsigned unit) {
  if (unit <= 1) return;
  for (std::size_t i = 0; i + unit <= n; i += unit) std::reverse(p + i, p + i + unit);
}

/// Negates one little-endian component of `unit` bytes: a sign-bit flip for floats (what -x
/// does), two's complement for integers.
void negate_component(std::uint8_t* p, unsigned unit, bool floating) {
  if (floating) {
    p[unit - 1] ^= 0x80;
    return;
  }
  unsigned carry = 1;
  for (unsigned i = 0; i < unit; ++i) {
    const unsigned v = static_cast<std::uint8_t>(~p[i]) + carry;
    p[i] = static_cast<std::uint8_t>(v);
    carry = v >> 8;
  }
}

/// Applies byte order, conj and neg to `n` bytes of whole elements.
void convert(const Tensor& t, std::uint8_t* p, std::size_t n) {
  const auto& di = info(t.dtype);
  if (t.big_endian) swap_units(p, n, di.swap_unit);
  if (!t.conj && !t.neg) return;
  const bool floating = is_float_like(t.dtype);
  const bool complex = is_complex(t.dtype);
  const unsigned unit = complex ? di.size / 2 : di.size;
  for (std::size_t i = 0; i + di.size <= n; i += di.size) {
    if (t.neg) {
      negate_component(p + i, unit, floating);
      if (complex) negate_component(p + i + unit, unit, true);
    }
    if (t.conj && complex) negate_component(p + i + unit, unit, true);
  }
}

}  // namespace

std::uint64_t Tensor::numel() const {
  std::uint64_t n = 1;
  for (auto d : shape) {
    if (d <= 0) return 0;
    if (mul_overflows(n, static_cast<std::uint64_t>(d), n)) return UINT64_MAX;
  }
  return n;
}

bool Tensor::is_plain_contiguous() const {
  if (big_endian && info(dtype).swap_unit > 1) return false;
  if (neg || (conj && is_complex(dtype))) return false;
  std::int64_t expected = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    if (shape[i] != 1 && strides[i] != expected) return false;
    expected *= shape[i];
  }
  return true;
}

core::Status check_bounds(const Tensor& t) {
  auto bad = [&](std::string why) {
    return core::fail(ErrorCode::kBadArgument, t.offset, fmt::format("tensor '{}': {}", t.name, why));
  };
  if (t.shape.size() != t.strides.size()) return bad(fmt::format("{} sizes but {} strides", t.shape.size(), t.strides.size()));
  if (t.storage_offset < 0) return bad(fmt::format("negative storage offset {}", t.storage_offset));
  bool empty = false;
  for (std::size_t i = 0; i < t.shape.size(); ++i) {
    if (t.shape[i] < 0) return bad(fmt::format("negative size {} in dimension {}", t.shape[i], i));
    if (t.strides[i] < 0) return bad(fmt::format("negative stride {} in dimension {}", t.strides[i], i));
    empty = empty || t.shape[i] == 0;
  }
  if (t.numel() == UINT64_MAX) return bad("element count overflows");
  if (empty) return {};
  // Last element read: offset + sum((size-1) * stride); every product checked.
  std::uint64_t last = static_cast<std::uint64_t>(t.storage_offset);
  for (std::size_t i = 0; i < t.shape.size(); ++i) {
    std::uint64_t span = 0;
    if (mul_overflows(static_cast<std::uint64_t>(t.shape[i] - 1), static_cast<std::uint64_t>(t.strides[i]), span) ||
        __builtin_add_overflow(last, span, &last)) {
      return bad("view extent overflows");
    }
  }
  const std::uint64_t es = info(t.dtype).size;
  std::uint64_t end = 0;
  if (__builtin_add_overflow(last, 1, &end) || mul_overflows(end, es, end) || end > t.storage.size()) {
    return bad(fmt::format("view reads up to byte {} of a {}-byte storage ({})", last * es + es, t.storage.size(),
                           t.storage_key));
  }
  return {};
}

core::Status write_contiguous_le(const Tensor& t, ByteSink& sink) {
  const std::uint64_t numel = t.numel();
  if (numel == 0) return {};
  const std::size_t es = info(t.dtype).size;
  const std::uint64_t base = static_cast<std::uint64_t>(t.storage_offset) * es;
  if (t.is_plain_contiguous()) {
    core::Bytes all = t.storage.subspan(base, numel * es);
    std::uint64_t copied = 0;
    if (t.mapping != nullptr && t.mapping->fd() >= 0) {
      const core::Bytes file = t.mapping->bytes();
      if (all.data() >= file.data() && all.data() + all.size() <= file.data() + file.size()) {
        // The kernel copies the bytes between the files: none of them is mapped in or copied
        // through user memory, so a 1 GB checkpoint is converted with a few MiB resident.
        BRINE_TRY_ASSIGN(copied, sink.copy_from_file(t.mapping->fd(), static_cast<std::uint64_t>(all.data() - file.data()), all.size()));
      }
    }
    for (std::uint64_t at = copied; at < all.size(); at += kCopyChunk) {
      const core::Bytes piece = all.subspan(at, std::min<std::uint64_t>(kCopyChunk, all.size() - at));
      if (t.mapping != nullptr) t.mapping->prefault(piece);
      BRINE_TRY(sink.write(piece));
      if (t.mapping != nullptr) t.mapping->release(piece);
    }
    return {};
  }
  std::vector<std::uint8_t> stage(kStageBytes);
  std::size_t filled = 0;
  auto flush = [&]() -> core::Status {
    convert(t, stage.data(), filled);
    BRINE_TRY(sink.write(core::Bytes(stage.data(), filled)));
    filled = 0;
    return {};
  };
  const std::size_t ndim = t.shape.size();
  // The innermost dimension is copied as one run when its stride is 1 (the common transposed /
  // sliced case reads long runs); otherwise element by element.
  const std::int64_t inner = ndim == 0 ? 1 : t.shape[ndim - 1];
  const std::int64_t inner_stride = ndim == 0 ? 1 : t.strides[ndim - 1];
  std::vector<std::int64_t> index(ndim == 0 ? 0 : ndim - 1, 0);
  std::uint64_t outer_pos = static_cast<std::uint64_t>(t.storage_offset);
  const std::uint64_t rows = ndim == 0 ? 1 : numel / static_cast<std::uint64_t>(inner);
  for (std::uint64_t row = 0; row < rows; ++row) {
    std::uint64_t pos = outer_pos;
    for (std::int64_t k = 0; k < inner;) {
      if (filled == stage.size()) BRINE_TRY(flush());
      if (inner_stride == 1) {
        const std::size_t take = std::min<std::size_t>(static_cast<std::size_t>(inner - k), (stage.size() - filled) / es);
        std::memcpy(stage.data() + filled, t.storage.data() + pos * es, take * es);
        filled += take * es;
        pos += take;
        k += static_cast<std::int64_t>(take);
      } else {
        std::memcpy(stage.data() + filled, t.storage.data() + pos * es, es);
        filled += es;
        pos += static_cast<std::uint64_t>(inner_stride);
        ++k;
      }
    }
    // Advance the outer index like an odometer.
    for (std::size_t d = index.size(); d-- > 0;) {
      outer_pos += static_cast<std::uint64_t>(t.strides[d]);
      if (++index[d] < t.shape[d]) break;
      outer_pos -= static_cast<std::uint64_t>(t.strides[d]) * static_cast<std::uint64_t>(t.shape[d]);
      index[d] = 0;
    }
  }
  if (filled > 0) BRINE_TRY(flush());
  return {};
}

}  // namespace brine::tensor
