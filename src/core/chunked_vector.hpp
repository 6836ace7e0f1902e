// An append-only vector stored in fixed-size chunks: growing never moves or copies elements,
// so appending tens of millions of values costs no reallocation copies (and no page-fault storms
// from copying), and references to elements stay valid.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace brine::core {

template <typename T, unsigned kChunkBits = 14>
class ChunkedVector {
 public:
  static constexpr std::size_t kChunk = std::size_t{1} << kChunkBits;

  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] bool empty() const { return size_ == 0; }

  T& operator[](std::size_t i) { return chunks_[i >> kChunkBits][i & (kChunk - 1)]; }
  const T& operator[](std::size_t i) const { return chunks_[i >> kChunkBits][i & (kChunk - 1)]; }
  T& back() { return (*this)[size_ - 1]; }

  template <typename... Args>
  T& emplace_back(Args&&... args) {
    if ((size_ & (kChunk - 1)) == 0 && (size_ >> kChunkBits) == chunks_.size()) {
      chunks_.push_back(std::make_unique<T[]>(kChunk));
    }
    T& slot = (*this)[size_];
    slot = T(std::forward<Args>(args)...);
    ++size_;
    return slot;
  }
  void push_back(T v) { emplace_back(std::move(v)); }

 private:
  std::vector<std::unique_ptr<T[]>> chunks_;
  std::size_t size_ = 0;
};

}  // namespace brine::core
