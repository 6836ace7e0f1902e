// core::place_heap_on_huge_pages: the heap's free top is moved to a 2 MiB boundary and the range
// from there is advised MADV_HUGEPAGE, so the blocks malloc hands out next lie in huge pages.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "core/heap_pages.hpp"

using namespace brine;

namespace {
/// The VmFlags line of the mapping of /proc/self/smaps that contains `address` ("" if none).
std::string vm_flags_at(std::uintptr_t address) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    std::uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::istringstream range(line);
    if (range >> std::hex >> lo >> dash >> hi && dash == '-' && line.find(':') > line.find(' ')) {
      inside = lo <= address && address < hi;
      continue;
    }
    if (inside && line.rfind("VmFlags:", 0) == 0) return line;
  }
  return {};
}
}  // namespace

TEST_CASE("the heap's next blocks come from a 2 MiB-aligned range advised for huge pages") {
  const core::HugeHeap heap = core::place_heap_on_huge_pages();
  // Straight after, before anything else allocates: a 3 MiB block is below the raised mmap
  // threshold and bigger than any free block the test process has, so it is cut from the top.
  void* block = std::malloc(std::size_t{3} << 20);
  REQUIRE(block != nullptr);
  const auto at = reinterpret_cast<std::uintptr_t>(block);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  CHECK_FALSE(heap.placed);  // the sanitizer's allocator serves malloc: nothing to place
#else
  REQUIRE(heap.placed);
  CHECK(heap.begin % (std::uintptr_t{2} << 20) == 0);
  CHECK(heap.end - heap.begin >= (std::uintptr_t{2} << 20));
  CHECK(vm_flags_at(heap.begin).find(" hg") != std::string::npos);
  CHECK(at >= heap.begin);  // the heap's top now starts at heap.begin
  CHECK(at < heap.begin + 64);
#endif
  std::free(block);
}
