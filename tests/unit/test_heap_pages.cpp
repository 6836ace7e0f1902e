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
/// The line starting with `field` of the mapping of /proc/self/smaps that contains `address`
/// ("" if none).
std::string smaps_field_at(std::uintptr_t address, const std::string& field) {
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
    if (inside && line.rfind(field, 0) == 0) return line;
  }
  return {};
}

/// Transparent huge pages are off for the whole system ("[never]"): the advice does nothing.
bool thp_off() {
  std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string s;
  std::getline(f, s);
  return s.find("[never]") != std::string::npos;
}
}  // namespace

TEST_CASE("the heap's next blocks come from a 2 MiB-aligned range advised for huge pages") {
  const core::HugeHeap heap = core::place_heap_on_huge_pages();
  // Straight after, before anything else allocates: a 256 KiB block is below the raised mmap
  // threshold and bigger than any free block the test process has, so it is cut from the top.
  // It and the header malloc writes after it lie in the first 2 MiB of the advised range.
  void* block = std::malloc(std::size_t{256} << 10);
  REQUIRE(block != nullptr);
  const auto at = reinterpret_cast<std::uintptr_t>(block);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  CHECK_FALSE(heap.placed);  // the sanitizer's allocator serves malloc: nothing to place
#else
  REQUIRE(heap.placed);
  CHECK(heap.begin % (std::uintptr_t{2} << 20) == 0);
  CHECK(heap.end - heap.begin >= (std::uintptr_t{2} << 20));
  CHECK(smaps_field_at(heap.begin, "VmFlags:").find(" hg") != std::string::npos);
  // And the kernel does back it with a huge page: nothing in the 2 MiB at heap.begin was touched
  // before the advice (a range with one 4 KiB page mapped already gets 4 KiB pages only).
  static_cast<unsigned char*>(block)[0] = 1;
  if (!thp_off()) {
    const std::string huge = smaps_field_at(heap.begin, "AnonHugePages:");
    CAPTURE(huge);
    CHECK(std::stoul(huge.substr(huge.find(':') + 1)) >= 2048);
  }
  CHECK(at >= heap.begin);  // the heap's top now starts at heap.begin
  CHECK(at < heap.begin + 64);
#endif
  std::free(block);
}
