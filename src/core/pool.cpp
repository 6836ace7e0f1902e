#include "core/pool.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <new>

#include "core/block_cache.hpp"

namespace brine::core {

namespace {

constexpr std::size_t kFirstSlab = std::size_t{64} << 10;  // a small pickle needs no more
constexpr std::size_t kMaxSlab = std::size_t{64} << 20;
/// Address space a big block is mapped with, as a multiple of its size (and at least
/// kMinBigRoom): the value table and memo of a large pickle double a dozen times, and each
/// doubling within the room is free (no mremap, whose TLB flush reaches the predecoder's CPU, no
/// new mapping). Untouched, the room costs no memory.
constexpr std::size_t kBigRoomFactor = 16;
constexpr std::size_t kMinBigRoom = std::size_t{64} << 20;

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

/// `bytes` (a multiple of 2 MiB) of huge-page memory (core::map_huge_pages), or bad_alloc.
void* map_huge(std::size_t bytes) {
  void* p = map_huge_pages(bytes);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

unsigned class_of(std::size_t bytes) {
  if (bytes <= (std::size_t{1} << Pool::kMinShift)) return 0;
  return static_cast<unsigned>(std::bit_width(bytes - 1)) - Pool::kMinShift;
}

}  // namespace

Pool::~Pool() {
  for (const Region& r : slabs_) {
    if (r.mapped) {
      ::munmap(r.p, r.bytes);
    } else {
      block_cache::give(r.p, r.bytes, std::align_val_t{16});
    }
  }
  for (const auto& [p, big] : big_) ::munmap(p, big.room);
}

void Pool::new_slab(std::size_t need) {
  // Hand the rest of the current slab to the free lists, largest blocks first, so nothing is lost.
  while (end_ - cur_ >= static_cast<std::ptrdiff_t>(std::size_t{1} << kMinShift)) {
    const auto left = static_cast<std::size_t>(end_ - cur_);
    const unsigned shift = std::min<unsigned>(static_cast<unsigned>(std::bit_width(left)) - 1, kSlabShift);
    const unsigned c = shift - kMinShift;
    *static_cast<void**>(static_cast<void*>(cur_)) = free_[c];
    free_[c] = cur_;
    cur_ += std::size_t{1} << shift;
  }
  // A small pickle gets one small slab from the heap. Past it, slabs are huge-page mappings that
  // grow with the pool (about doubling it), so a big pickle needs O(log n) of them: the sizes in
  // between (128 KiB to 1 MiB) would be separate mmaps of 4 KiB pages anyway.
  Region r{nullptr, 0, !slabs_.empty() || need > kFirstSlab};
  if (r.mapped) {
    r.bytes = round_up(std::max({need, kHuge, std::min(slab_bytes_, kMaxSlab)}), kHuge);
    r.p = map_huge(r.bytes);
  } else {
    r.bytes = kFirstSlab;
    r.p = block_cache::take(r.bytes, std::align_val_t{16});
  }
  try {
    slabs_.push_back(r);
  } catch (...) {
    r.mapped ? static_cast<void>(::munmap(r.p, r.bytes)) : block_cache::give(r.p, r.bytes, std::align_val_t{16});
    throw;
  }
  slab_bytes_ += r.bytes;
  reserved_ += r.bytes;
  cur_ = static_cast<char*>(r.p);
  end_ = cur_ + r.bytes;
}

void* Pool::map_big(std::size_t bytes, std::size_t& room) {
  // The room is address space only; where the system will not give that much (strict
  // overcommit, RLIMIT_AS or RLIMIT_DATA), the block is mapped at its size and moves to grow.
  const std::size_t want = bytes <= kMinBigRoom / kBigRoomFactor ? kMinBigRoom
                           : bytes <= SIZE_MAX / kBigRoomFactor    ? bytes * kBigRoomFactor
                                                                   : bytes;
  if (void* p = reserve_huge_pages(want)) {
    room = want;
    return p;
  }
  room = bytes;
  return map_huge(bytes);
}

void* Pool::allocate(std::size_t& bytes) {
  const unsigned c = class_of(bytes);
  if (c + kMinShift > kSlabShift) {
    // A big block of its own; a power of two >= 2 MiB is a whole number of huge pages.
    bytes = std::size_t{1} << (c + kMinShift);
    std::size_t room = 0;
    void* p = map_big(bytes, room);
    try {
      big_.emplace(p, Big{bytes, room});
    } catch (...) {
      ::munmap(p, room);
      throw;
    }
    reserved_ += bytes;
    return p;
  }
  bytes = std::size_t{1} << (c + kMinShift);
  if (void* p = free_[c]) {
    free_[c] = *static_cast<void**>(p);
    return p;
  }
  if (static_cast<std::size_t>(end_ - cur_) < bytes) new_slab(bytes);
  void* p = cur_;
  cur_ += bytes;
  return p;
}

void Pool::release(void* p, std::size_t bytes) {
  if (p == nullptr) return;
  const unsigned c = class_of(bytes);
  if (c + kMinShift > kSlabShift) {
    const auto it = big_.find(p);
    const std::size_t room = it->second.room;
    big_.erase(it);
    ::munmap(p, room);
    reserved_ -= bytes;
    return;
  }
  *static_cast<void**>(p) = free_[c];
  free_[c] = p;
}

void* Pool::grow(void* p, std::size_t old_bytes, std::size_t used, std::size_t& bytes) {
  if (p != nullptr && class_of(old_bytes) + kMinShift > kSlabShift) {
    bytes = std::size_t{1} << (class_of(bytes) + kMinShift);
    const auto it = big_.find(p);
    const std::size_t old_room = it->second.room;
    if (bytes <= old_room) {  // within its room: nothing to do
      it->second.bytes = bytes;
      reserved_ += bytes - old_bytes;
      return p;
    }
    // Past it: move the pages into a new 2 MiB-aligned mapping (mremap moves page tables; the
    // data is neither copied nor faulted in again).
    std::size_t room = 0;
    void* q = map_big(bytes, room);
    void* moved = ::mremap(p, old_room, old_room, MREMAP_MAYMOVE | MREMAP_FIXED, q);
    if (moved == MAP_FAILED) {
      std::memcpy(q, p, used);
      ::munmap(p, old_room);
    }
    big_.erase(it);
    try {
      big_.emplace(q, Big{bytes, room});
    } catch (...) {
      ::munmap(q, room);
      throw;
    }
    reserved_ += bytes - old_bytes;
    return q;
  }
  void* q = allocate(bytes);
  if (used != 0) std::memcpy(q, p, used);
  release(p, old_bytes);
  return q;
}

}  // namespace brine::core
