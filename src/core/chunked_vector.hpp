// An append-only vector stored in fixed-size chunks: growing never moves or copies elements,
// so appending tens of millions of values costs no reallocation copies, and references to
// elements stay valid.
//
// Chunks are allocated uninitialised and elements are constructed only as they are appended:
// a fresh chunk costs one malloc, not a fill of the whole chunk (the kernel maps the pages on
// first touch), so a small pickle pays for the few values it creates, not for a chunk. Chunks
// come from the thread's block cache (core/block_cache.hpp): the next pickle reuses them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/block_cache.hpp"

namespace brine::core {

template <typename T, unsigned kChunkBits = 14>
class ChunkedVector {
 public:
  static constexpr std::size_t kChunk = std::size_t{1} << kChunkBits;

  ChunkedVector() = default;
  ChunkedVector(ChunkedVector&& other) noexcept
      : chunks_(std::move(other.chunks_)), size_(std::exchange(other.size_, 0)) {}
  ChunkedVector& operator=(ChunkedVector&& other) noexcept {
    if (this != &other) {
      clear();
      chunks_ = std::move(other.chunks_);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  ChunkedVector(const ChunkedVector&) = delete;
  ChunkedVector& operator=(const ChunkedVector&) = delete;
  ~ChunkedVector() { clear(); }

  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] bool empty() const { return size_ == 0; }

  T& operator[](std::size_t i) { return *slot(i); }
  const T& operator[](std::size_t i) const { return *const_cast<ChunkedVector*>(this)->slot(i); }
  T& back() { return (*this)[size_ - 1]; }

  template <typename... Args>
  T& emplace_back(Args&&... args) {
    if ((size_ >> kChunkBits) == chunks_.size()) {
      chunks_.push_back(Chunk(static_cast<Storage*>(block_cache::take(sizeof(Storage) * kChunk, std::align_val_t{alignof(T)}))));
    }
    T* p = ::new (static_cast<void*>(slot(size_))) T(std::forward<Args>(args)...);
    ++size_;
    return *p;
  }
  void push_back(T v) { emplace_back(std::move(v)); }

 private:
  struct Storage {
    alignas(T) unsigned char bytes[sizeof(T)];
  };
  struct FreeChunk {
    void operator()(Storage* p) const { block_cache::give(p, sizeof(Storage) * kChunk, std::align_val_t{alignof(T)}); }
  };
  using Chunk = std::unique_ptr<Storage[], FreeChunk>;

  T* slot(std::size_t i) {
    return std::launder(reinterpret_cast<T*>(chunks_[i >> kChunkBits][i & (kChunk - 1)].bytes));
  }
  void clear() {
    if constexpr (!std::is_trivially_destructible_v<T>) {
      for (std::size_t i = 0; i < size_; ++i) slot(i)->~T();
    }
    size_ = 0;
    chunks_.clear();
  }

  std::vector<Chunk> chunks_;
  std::size_t size_ = 0;
};

}  // namespace brine::core
