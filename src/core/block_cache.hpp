// Big blocks of memory kept per thread between the pickles a thread scans.
//
// Every pickle gets a fresh ValueStore and machine: three Pools (values, memo, stack) and the
// first chunks of six ChunkedVectors, tens to hundreds of KiB each even for a 1 KB pickle. Taken
// from malloc and given back per pickle, those were ~14% of a walk of small files: each big
// request consolidates the heap, and once a second thread exists every malloc and free of them
// locks an arena. Here a block given back is kept for the next request of the same size and
// alignment on the same thread: a walk of many small files allocates them once per thread.
//
// Bounded: at most kKeepBlocks blocks and kKeepBytes bytes per thread, freed when the thread
// ends. A block is handed out as it was left (as malloc would): no user reads before writing.
// Mapped blocks (a Pool's 2 MiB huge-page slabs) are not kept: with transparent huge pages each
// is 2 MiB resident once touched, and keeping them raised sanitize's peak RSS by ~4 MiB.
#pragma once

#include <cstddef>
#include <new>

namespace brine::core::block_cache {

inline constexpr std::size_t kKeepBlocks = 16;
inline constexpr std::size_t kKeepBytes = std::size_t{16} << 20;

/// `bytes` of memory aligned to `align`: a kept heap block of that size and alignment, or a new
/// one (operator new). Throws std::bad_alloc like operator new.
void* take(std::size_t bytes, std::align_val_t align);
/// Gives back a block `take` returned (same size and alignment): kept if there is room, else
/// freed.
void give(void* p, std::size_t bytes, std::align_val_t align) noexcept;

/// Blocks and bytes kept on this thread now.
struct KeptCount {
  std::size_t blocks;
  std::size_t bytes;
};
KeptCount kept() noexcept;

}  // namespace brine::core::block_cache
