#include "core/heap_pages.hpp"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>

namespace brine::core {

namespace {
constexpr std::uintptr_t kHuge = kHugePage;
/// How far the heap is grown at start-up, and kept beyond its free top when malloc trims it.
constexpr std::size_t kPad = std::size_t{16} << 20;
/// The filler's least size (its pages are never touched: address space only).
constexpr std::uintptr_t kMinFiller = std::uintptr_t{256} << 10;
/// Blocks up to this size come from the heap (glibc's default starts at 128 KiB).
constexpr int kMmapThreshold = 4 << 20;

std::uintptr_t current_break() { return reinterpret_cast<std::uintptr_t>(::sbrk(0)); }
/// Where the main arena's free top chunk starts: it runs to the break (keepcost is its size).
std::uintptr_t top_chunk() { return current_break() - mallinfo2().keepcost; }
}  // namespace

namespace {
void* map_aligned(std::size_t bytes, int extra_flags) noexcept {
  // Room to start at a 2 MiB boundary; the unused head and tail are given back at once.
  const std::size_t span = bytes + kHugePage;
  void* raw = ::mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | extra_flags, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const auto lo = reinterpret_cast<std::uintptr_t>(raw);
  const std::uintptr_t aligned = (lo + kHuge - 1) & ~(kHuge - 1);
  if (aligned != lo) ::munmap(raw, aligned - lo);
  const std::uintptr_t tail = aligned + bytes;
  if (tail != lo + span) ::munmap(reinterpret_cast<void*>(tail), lo + span - tail);
  void* p = reinterpret_cast<void*>(aligned);
  ::madvise(p, bytes, MADV_HUGEPAGE);  // advice: without THP the memory is still good
  return p;
}
}  // namespace

void* map_huge_pages(std::size_t bytes) noexcept { return map_aligned(bytes, 0); }

void* reserve_huge_pages(std::size_t bytes) noexcept { return map_aligned(bytes, MAP_NORESERVE); }

HugeHeap place_heap_on_huge_pages() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return {};  // the sanitizer's allocator, not glibc's, serves malloc
#else
  if (::mallopt(M_MMAP_THRESHOLD, kMmapThreshold) == 0 || ::mallopt(M_TOP_PAD, static_cast<int>(kPad)) == 0) return {};
  // A filler block from the top chunk, ending 16 bytes short of the next 2 MiB boundary past
  // it: glibc rounds a request up to a multiple of 16 plus an 8-byte header, so the block ends
  // exactly there and the top chunk then starts there. Its header (the size glibc writes 8 bytes
  // in) lies before the boundary: nothing at or past the boundary is touched before it is advised,
  // or the kernel would already have mapped that 2 MiB with 4 KiB pages. The first block malloc
  // hands out next starts at the boundary. Asking for the filler also grows the heap by kPad.
  const std::uintptr_t top = top_chunk();
  // At least kMinFiller before the boundary: a small request could be served from a free block
  // of its size elsewhere (the thread cache, a bin), and then the top would not move.
  const std::uintptr_t aligned = (top + kMinFiller + kHuge - 1) & ~(kHuge - 1);
  void* filler = ::malloc(aligned - top - 32);
  if (filler == nullptr) return {};
  if (top_chunk() != aligned - 16) {
    // It came from elsewhere (a free block that was big enough): nothing moved, give it back.
    ::free(filler);
    return {};
  }
  // The filler is kept for the life of the process: untouched, it costs no memory.
  HugeHeap heap{true, aligned, current_break() & ~(kHuge - 1)};
  if (heap.end <= heap.begin || ::madvise(reinterpret_cast<void*>(heap.begin), heap.end - heap.begin, MADV_HUGEPAGE) != 0) {
    heap.placed = false;
  }
  return heap;
#endif
}

}  // namespace brine::core
