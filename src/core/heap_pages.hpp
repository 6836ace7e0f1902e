// Puts the process heap (glibc malloc's main arena) on transparent huge pages.
//
// Why: on the VMs brine is measured on, the first touch of a fresh 4 KiB anonymous page costs
// 12-13 us, while a whole 2 MiB huge page costs 0.15-0.6 ms (bench/README.md, finding 16). Loading
// the built-in rules touches about 200 heap pages (~2.5 ms of a 7 ms scan of a one-global pickle);
// a 1,024-tensor checkpoint's data.pkl about 540. With the heap on huge pages, a scan pays one or
// two huge-page faults instead.
//
// How: the kernel only backs 2 MiB-aligned ranges of a mapping advised MADV_HUGEPAGE. At start-up
// the heap is grown once by a large pad (address space, not memory: nothing is touched), a filler
// block moves the heap's free top to just before the next 2 MiB boundary, and the range from there
// to the end of the heap is advised before anything in it is touched (a 2 MiB range with one 4 KiB
// page mapped in already is filled with 4 KiB pages). Later allocations come from that range. The filler's pages are never
// touched, so it costs address space only.
#pragma once

#include <cstddef>
#include <cstdint>

namespace brine::core {

/// The transparent huge page size on x86-64.
inline constexpr std::size_t kHugePage = std::size_t{2} << 20;

/// `bytes` of fresh memory mapped at a 2 MiB boundary and advised MADV_HUGEPAGE: the kernel then
/// backs each whole 2 MiB of it with one huge page, one fault each, instead of 4 KiB pages.
/// nullptr if the system refuses the mapping. Free with munmap(p, bytes).
void* map_huge_pages(std::size_t bytes) noexcept;
/// The same, as address space only (MAP_NORESERVE): nothing is committed or touched, and a page
/// costs memory only once written. nullptr if the system refuses (strict overcommit, a limit).
void* reserve_huge_pages(std::size_t bytes) noexcept;

struct HugeHeap {
  bool placed = false;        ///< false: left as it was (not glibc, a sanitizer, a check failed)
  std::uintptr_t begin = 0;   ///< the advised range, 2 MiB-aligned
  std::uintptr_t end = 0;
};

/// Call once, first thing in main(), before threads exist. Also raises malloc's mmap threshold to
/// 4 MiB, so blocks below it come from the huge-page heap rather than from a fresh 4 KiB-page
/// mapping each. Idempotent in effect: a second call advises what the heap has then.
HugeHeap place_heap_on_huge_pages();

}  // namespace brine::core
