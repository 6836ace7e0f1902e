// A small open-addressing index from hashes to positions, for dict and set semantics.
//
// Containers with few entries (the common case) are searched linearly and build no index; past
// kLinearLimit a power-of-two table with linear probing is built and kept at most half full.
// Each slot is 8 bytes, so a SETITEMS storm costs amortised O(1) per key and bounded memory.
#pragma once

#include <cstdint>
#include <vector>

namespace brine::pickle {

class HashIndex {
 public:
  static constexpr std::size_t kLinearLimit = 8;

  /// Calls `visit(position)` for every stored position whose hash equals `h` (in a linear
  /// container: every position, the caller compares). Stops when visit returns true.
  template <typename Visit>
  bool find(std::uint64_t h, std::size_t count, Visit&& visit) const {
    if (slots_.empty()) {
      for (std::size_t i = 0; i < count; ++i) {
        if (visit(static_cast<std::uint32_t>(i))) return true;
      }
      return false;
    }
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.pos == kEmpty) return false;
      if (s.hash == static_cast<std::uint32_t>(h) && visit(s.pos)) return true;
    }
  }

  /// Records that position `pos` (== count - 1 after the caller's append) has hash `h`.
  /// `hash_of(i)` recomputes the hash of position i when the table is (re)built.
  template <typename HashOf>
  void insert(std::uint64_t h, std::uint32_t pos, std::size_t count, HashOf&& hash_of) {
    if (slots_.empty()) {
      if (count <= kLinearLimit) return;
      rebuild(count, hash_of);
      return;
    }
    if (count * 2 > slots_.size()) {
      rebuild(count, hash_of);
      return;
    }
    place(h, pos);
  }

 private:
  struct Slot {
    std::uint32_t hash;
    std::uint32_t pos;
  };
  static constexpr std::uint32_t kEmpty = UINT32_MAX;

  void place(std::uint64_t h, std::uint32_t pos) {
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = h & mask;
    while (slots_[i].pos != kEmpty) i = (i + 1) & mask;
    slots_[i] = Slot{static_cast<std::uint32_t>(h), pos};
  }

  template <typename HashOf>
  void rebuild(std::size_t count, HashOf&& hash_of) {
    std::size_t cap = 16;
    while (cap < count * 4) cap *= 2;
    slots_.assign(cap, Slot{0, kEmpty});
    for (std::size_t i = 0; i < count; ++i) place(hash_of(i), static_cast<std::uint32_t>(i));
  }

  std::vector<Slot> slots_;
};

}  // namespace brine::pickle
