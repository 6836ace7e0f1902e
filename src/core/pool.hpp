// Memory for the growable arrays of one pickle's values (list items, dict entries, the value
// table, the memo): power-of-two blocks carved from slabs, recycled through free lists, and
// backed by transparent huge pages once a pickle is large.
//
// Why not std::vector: a 2M-opcode pickle made ~6,000 first-touch page faults in vectors that
// double (each doubling is a fresh malloc/mmap, the old copy freed), and on this kind of VM a
// 4 KiB first touch costs ~15 us: half the scan's CPU time. Here a growing array reuses the
// blocks others released, slabs of 2 MiB and more are mapped 2 MiB-aligned with MADV_HUGEPAGE
// (one fault per 2 MiB), and a block too big for a slab is a mapping with address space beyond it
// to grow into in place (past that room it moves with mremap: pages move, nothing is copied or
// touched again).
//
// Blocks are never returned to the system one by one: the Pool frees everything it mapped when it
// is destroyed, so the arrays that live in it need no destructor. Sizes come only from what has
// arrived (an array grows when an item is appended), never from what the input claims.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/heap_pages.hpp"

namespace brine::core {

class Pool {
 public:
  Pool() = default;
  Pool(Pool&& other) noexcept { swap(other); }
  Pool& operator=(Pool&& other) noexcept {
    if (this != &other) {
      Pool gone(std::move(other));
      swap(gone);
    }
    return *this;
  }
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  ~Pool();

  /// A block of at least `bytes` bytes (16-byte aligned); `bytes` becomes its capacity, a power
  /// of two. Throws std::bad_alloc when the system has no memory.
  void* allocate(std::size_t& bytes);
  /// Returns a block for reuse (`bytes`: its capacity, as allocate gave it).
  void release(void* p, std::size_t bytes);
  /// A block of at least `bytes` holding the first `used` bytes of `p` (capacity `old_bytes`,
  /// nullptr/0 for none); `p` is released. `bytes` becomes the new capacity.
  void* grow(void* p, std::size_t old_bytes, std::size_t used, std::size_t& bytes);

  /// Bytes mapped or allocated from the system (slabs and big blocks).
  [[nodiscard]] std::size_t reserved() const { return reserved_; }

  static constexpr unsigned kMinShift = 4;     ///< smallest block: 16 bytes
  static constexpr unsigned kSlabShift = 20;   ///< blocks up to 1 MiB come from slabs
  static constexpr std::size_t kHuge = kHugePage;  ///< transparent huge page size

 private:
  struct Region {
    void* p;
    std::size_t bytes;
    bool mapped;  ///< mmap (2 MiB-aligned, huge pages) rather than operator new
  };
  void new_slab(std::size_t need);
  void swap(Pool& other) noexcept {
    std::swap(free_, other.free_);
    std::swap(cur_, other.cur_);
    std::swap(end_, other.end_);
    std::swap(slab_bytes_, other.slab_bytes_);
    std::swap(reserved_, other.reserved_);
    std::swap(slabs_, other.slabs_);
    std::swap(big_, other.big_);
  }

  std::array<void*, kSlabShift - kMinShift + 1> free_{};  ///< per class; linked through a block's first word
  char* cur_ = nullptr;  ///< bump pointer in the newest slab
  char* end_ = nullptr;
  std::size_t slab_bytes_ = 0;  ///< total slab bytes so far (the next slab is about as big)
  std::size_t reserved_ = 0;
  std::vector<Region> slabs_;
  /// A block above kSlabShift: its capacity, and the address space mapped for it to grow into
  /// in place (`room`, capacity or more; only what is written costs memory).
  struct Big {
    std::size_t bytes;
    std::size_t room;
  };
  /// A new big block of `bytes` with room beyond it.
  void* map_big(std::size_t bytes, std::size_t& room);
  std::unordered_map<void*, Big> big_;  ///< blocks above kSlabShift: mapped one by one
};

/// A growable array of trivially copyable T whose storage is a Pool block. It has no destructor
/// (the Pool frees its blocks); every call that may allocate takes the Pool.
template <typename T>
class PoolVec {
  // Moved with memcpy (std::pair qualifies: trivially copy-constructible and destructible).
  static_assert(std::is_trivially_copy_constructible_v<T> && std::is_trivially_destructible_v<T> && alignof(T) <= 16);

 public:
  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] bool empty() const { return size_ == 0; }
  [[nodiscard]] T* data() { return data_; }
  [[nodiscard]] const T* data() const { return data_; }
  T& operator[](std::size_t i) { return data_[i]; }
  const T& operator[](std::size_t i) const { return data_[i]; }
  T& back() { return data_[size_ - 1]; }
  [[nodiscard]] const T* begin() const { return data_; }
  [[nodiscard]] const T* end() const { return data_ + size_; }
  operator std::span<const T>() const { return {data_, size_}; }  // NOLINT: a view, as vector's

  void push_back(Pool& pool, const T& v) {
    if (size_ == cap_) [[unlikely]] grow(pool, size_ + 1);
    data_[size_++] = v;
  }
  void append(Pool& pool, const T* items, std::size_t n) {
    if (n > cap_ - size_) grow(pool, size_ + n);
    if (n != 0) std::memcpy(data_ + size_, items, n * sizeof(T));
    size_ += n;
  }
  /// Grows to `n` items, the new ones set to `fill`; or shrinks.
  void resize(Pool& pool, std::size_t n, const T& fill) {
    if (n > cap_) grow(pool, n);
    for (std::size_t i = size_; i < n; ++i) data_[i] = fill;
    size_ = n;
  }
  /// Room for `n` more items, which the caller writes at the returned pointer; grow_into(k)
  /// then counts the first k of them (k <= n). For loops that append many items: the size stays
  /// in a register instead of being loaded and stored per item.
  T* space(Pool& pool, std::size_t n) {
    if (n > cap_ - size_) grow(pool, size_ + n);
    return data_ + size_;
  }
  void grow_into(std::size_t k) { size_ += k; }
  /// Capacity for `n` items (a size hint: no item is written).
  void reserve(Pool& pool, std::size_t n) {
    if (n > cap_) grow(pool, n);
  }
  void pop_back() { --size_; }
  void shrink_to(std::size_t n) { size_ = n; }  ///< n <= size()

 private:
  void grow(Pool& pool, std::size_t need) {
    std::size_t want = cap_ * 2 > need ? cap_ * 2 : need;
    if (want < 4) want = 4;
    std::size_t bytes = want * sizeof(T);
    data_ = static_cast<T*>(pool.grow(data_, cap_ * sizeof(T), size_ * sizeof(T), bytes));
    cap_ = bytes / sizeof(T);
  }

  T* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t cap_ = 0;
};

}  // namespace brine::core
