// core::Pool and PoolVec (the storage of a pickle's values), and the value store's use of them:
// 4-byte value slots, input scalars past 2 GiB, for_each_text.
#include <doctest/doctest.h>

#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "core/block_cache.hpp"
#include "core/chunked_vector.hpp"
#include "core/pool.hpp"
#include "helpers.hpp"
#include "pickle/value.hpp"

using namespace brine;

TEST_CASE("PoolVec keeps its items while growing from slab blocks to huge-page mappings") {
  core::Pool pool;
  core::PoolVec<std::uint32_t> big, small;
  core::PoolVec<std::pair<std::uint32_t, std::uint32_t>> pairs;
  // 3M items: 12 MiB, past the slab classes (1 MiB), so the last growths move mappings (mremap).
  for (std::uint32_t i = 0; i < 3'000'000; ++i) {
    big.push_back(pool, i * 7u);
    if (i % 30 == 0) small.push_back(pool, i);
    if (i % 100 == 0) pairs.push_back(pool, {i, ~i});
  }
  REQUIRE(big.size() == 3'000'000);
  bool ok = true;
  for (std::uint32_t i = 0; i < big.size(); ++i) ok = ok && big[i] == i * 7u;
  CHECK(ok);
  REQUIRE(small.size() == 100'000);
  for (std::uint32_t i = 0; i < small.size(); ++i) ok = ok && small[i] == i * 30;
  CHECK(ok);
  REQUIRE(pairs.size() == 30'000);
  for (std::uint32_t i = 0; i < pairs.size(); ++i) ok = ok && pairs[i].first == i * 100 && pairs[i].second == ~(i * 100);
  CHECK(ok);
  CHECK(pool.reserved() >= 12u << 20);

  const std::uint32_t more[] = {1, 2, 3};
  small.append(pool, more, 3);
  CHECK(small.size() == 100'003);
  CHECK(small.back() == 3);
  small.resize(pool, 100'010, 9u);
  CHECK(small[100'009] == 9u);
  small.shrink_to(5);
  CHECK(small.size() == 5);
}

TEST_CASE("a big block grows in place within its room, and moves with its contents past it") {
  core::Pool pool;
  core::PoolVec<std::uint32_t> v;
  v.reserve(pool, (std::size_t{2} << 20) / sizeof(std::uint32_t));  // the first big block: 2 MiB
  const std::uint32_t* const first = v.data();
  std::size_t moves = 0;
  const std::uint32_t* at = first;
  // 64 MiB of room (kMinBigRoom): 16M items grow in place; 40M items need more, once.
  for (std::uint32_t i = 0; i < 40'000'000; ++i) {
    v.push_back(pool, i ^ 0x5a5a5a5au);
    if (v.data() != at) {
      ++moves;
      at = v.data();
    }
    if (i == 16'000'000) CHECK(v.data() == first);
  }
  CHECK(moves == 1);
  bool ok = true;
  for (std::uint32_t i = 0; i < v.size(); ++i) ok = ok && v[i] == (i ^ 0x5a5a5a5au);
  CHECK(ok);
  // A block released and a new one asked for: a fresh mapping, writable throughout.
  core::PoolVec<std::uint64_t> w;
  w.reserve(pool, 1u << 20);
  for (std::uint64_t i = 0; i < (1u << 20); ++i) w.push_back(pool, i);
  CHECK(w[(1u << 20) - 1] == (1u << 20) - 1);
}

TEST_CASE("Pool reuses released blocks, and a moved pool keeps its blocks") {
  core::Pool pool;
  std::size_t bytes = 100;
  void* a = pool.allocate(bytes);
  CHECK(bytes == 128);  // a power of two
  pool.release(a, bytes);
  std::size_t again = 128;
  CHECK(pool.allocate(again) == a);

  core::PoolVec<std::uint32_t> v;
  for (std::uint32_t i = 0; i < 1000; ++i) v.push_back(pool, i);
  core::Pool moved(std::move(pool));
  for (std::uint32_t i = 1000; i < 200'000; ++i) v.push_back(moved, i);  // grows in the moved pool
  bool ok = true;
  for (std::uint32_t i = 0; i < v.size(); ++i) ok = ok && v[i] == i;
  CHECK(ok);
}

TEST_CASE("an input scalar past 2 GiB of input is stored as the Node it reads as") {
  // 2 GiB + 8 KiB of address space; only the two pages written are ever backed.
  const std::size_t size = (std::size_t{1} << 31) + 8192;
  void* map = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  REQUIRE(map != MAP_FAILED);
  auto* p = static_cast<std::uint8_t*>(map);
  const std::uint64_t near = (std::uint64_t{1} << 31) - 4096, far = (std::uint64_t{1} << 31) + 16;
  std::memcpy(p + near, "\x8c\x03" "abc", 5);
  std::memcpy(p + far, "K\x07", 2);
  {
    pickle::ValueStore vs(core::Bytes(p, size));
    const pickle::ValueRef a = vs.input_scalar(near);
    CHECK(vs.stored_size() == 0);  // fits a 4-byte slot
    const pickle::ValueRef b = vs.input_scalar(far);
    CHECK(vs.stored_size() == 1);  // does not: stored
    CHECK(vs.size() == 2);
    CHECK(vs.node(a).kind == pickle::Kind::kStr);
    CHECK(vs.node(a).text == "abc");
    CHECK(vs.node(a).offset == near);
    const pickle::Node n = vs.node(b);
    CHECK(n.kind == pickle::Kind::kInt);
    CHECK(n.i == 7);
    CHECK(n.offset == far);
    CHECK(vs.kind(b) == pickle::Kind::kInt);
    CHECK(vs.leaf(b));
    CHECK(vs.hashable(b));
    CHECK(vs.equal(b, b));
  }
  ::munmap(map, size);
}

/// Checks that for_each_text(min) yields exactly the texts a pass over every value finds (the same
/// views, in the same order); returns how many.
template <typename Run>
std::size_t texts_match_full_pass(Run& r, std::size_t min) {
  std::vector<std::string_view> want, got;
  for (std::size_t ref = 0; ref < r.values.size(); ++ref) {
    const pickle::Node n = r.values.node(static_cast<pickle::ValueRef>(ref));
    const bool texty = n.kind == pickle::Kind::kStr || n.kind == pickle::Kind::kBytes || n.kind == pickle::Kind::kPy2Str ||
                       n.kind == pickle::Kind::kByteArray;
    if (texty && n.text.size() >= min) want.push_back(n.text);
  }
  r.values.for_each_text(min, [&](std::string_view t) { got.push_back(t); });
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    CHECK(got[i].data() == want[i].data());
    CHECK(got[i].size() == want[i].size());
  }
  return got.size();
}

TEST_CASE("for_each_text yields the text of exactly the str/bytes/bytearray/py2 str values at least that long") {
  // Binary strings of every length width around the threshold, protocol-0 STRING/UNICODE (stored
  // nodes), ints and a LONG1 (counted, but no text).
  const std::string data = std::string("\x80\x05(", 3) + "\x8c\x03" "abc" + "\x8c\x04" "abcd" + "C\x05" "12345" +
                           std::string("B\x04\x00\x00\x00" "wxyz", 9) + std::string("\x8e\x06\x00\x00\x00\x00\x00\x00\x00" "uvwxyz", 15) +
                           std::string("\x96\x04\x00\x00\x00\x00\x00\x00\x00" "qrst", 13) + "U\x04" "py2s" +
                           std::string("\x8a\x05\x01\x02\x03\x04\x05", 7) + "K\x01" + "S'text'\n" + "Vuni\n" + "l.";
  auto r = test::run(data);
  REQUIRE(r.stopped);
  for (std::size_t min : {0, 1, 4, 5, 6, 7}) {
    CAPTURE(min);
    const std::size_t got = texts_match_full_pass(r, min);
    if (min == 4) CHECK(got == 7);  // abcd 12345 wxyz uvwxyz qrst py2s text
  }
}

TEST_CASE("for_each_text from the long-text threshold up yields what a pass over every value yields") {
  // Texts around 16 bytes made by every path: the inline step (SHORT_BINUNICODE, SHORT_BINBYTES,
  // BINUNICODE), execute (SHORT_BINSTRING, BINUNICODE8, BYTEARRAY8), stored protocol-0 nodes
  // (STRING, UNICODE, PERSID's id), and a 20-byte LONG1 whose bytes are no text.
  const std::string s15(15, 'a'), s16(16, 'b'), s17(17, 'c'), s22(22, 'd'), s300(300, 'e');
  auto le4 = [](std::uint32_t n) { return std::string(reinterpret_cast<const char*>(&n), 4); };
  auto le8 = [](std::uint64_t n) { return std::string(reinterpret_cast<const char*>(&n), 8); };
  const std::string data = std::string("\x80\x05(", 3) + "\x8c\x0f" + s15 + "\x8c\x10" + s16 + "C\x16" + s22 + "X" + le4(300) + s300 +
                           "U\x11" + s17 + "\x8d" + le8(16) + s16 + "\x96" + le8(22) + s22 + "\x8a\x14" + std::string(20, '\x01') +
                           "S'" + s17 + "'\n" + "V" + s16 + "\n" + "P" + s22 + "\n" + "l.";
  auto r = test::run(data);
  REQUIRE(r.stopped);
  for (std::size_t min : {15, 16, 17, 18, 22, 23, 300, 301}) {
    CAPTURE(min);
    const std::size_t got = texts_match_full_pass(r, min);
    if (min == 16) CHECK(got == 9);  // s16 s22 s300 s17 s16 s22, STRING s17, UNICODE s16, PERSID s22
  }
}

TEST_CASE("input_scalar without the decoder's text size finds long texts itself") {
  const std::string s20(20, 'z');
  const std::string data = std::string("\x8c\x14", 2) + s20 + "K\x05";
  pickle::ValueStore vs(test::bytes(data));
  vs.input_scalar(0);
  vs.input_scalar(22);
  std::vector<std::string_view> got;
  vs.for_each_text(16, [&](std::string_view t) { got.push_back(t); });
  REQUIRE(got.size() == 1);
  CHECK(got[0] == s20);
}

#if !defined(__SANITIZE_ADDRESS__)  // under ASan every block is freed (to catch a use after it)
TEST_CASE("block_cache gives a block back to the next request of its size and alignment on its thread only") {
  std::thread([] {  // a fresh thread: nothing kept yet, so the block given back is kept
    constexpr std::size_t kBytes = 200'000;
    void* a = core::block_cache::take(kBytes, std::align_val_t{16});
    std::memset(a, 0x5a, kBytes);
    core::block_cache::give(a, kBytes, std::align_val_t{16});
    REQUIRE(core::block_cache::kept().blocks == 1);
    // Another size or alignment gets another block; another thread does not see this thread's.
    void* other_size = core::block_cache::take(kBytes + 16, std::align_val_t{16});
    void* other_align = core::block_cache::take(kBytes, std::align_val_t{64});
    CHECK(other_size != a);
    CHECK(other_align != a);
    void* elsewhere = nullptr;
    std::thread([&] {
      elsewhere = core::block_cache::take(kBytes, std::align_val_t{16});
      core::block_cache::give(elsewhere, kBytes, std::align_val_t{16});  // kept there, freed when it ends
    }).join();
    CHECK(elsewhere != a);
    CHECK(core::block_cache::take(kBytes, std::align_val_t{16}) == a);
    CHECK(core::block_cache::kept().blocks == 0);  // taken once: no longer kept
    core::block_cache::give(other_size, kBytes + 16, std::align_val_t{16});
    core::block_cache::give(other_align, kBytes, std::align_val_t{64});
    core::block_cache::give(a, kBytes, std::align_val_t{16});
    CHECK(core::block_cache::kept().blocks == 3);
  }).join();
}

TEST_CASE("block_cache keeps at most kKeepBlocks blocks and kKeepBytes bytes per thread") {
  std::thread([] {
    CHECK(core::block_cache::kept().blocks == 0);  // a fresh thread
    constexpr std::size_t kBytes = 4096;
    std::vector<void*> blocks;
    for (std::size_t i = 0; i < core::block_cache::kKeepBlocks + 4; ++i) blocks.push_back(core::block_cache::take(kBytes, std::align_val_t{16}));
    for (void* p : blocks) core::block_cache::give(p, kBytes, std::align_val_t{16});  // the last 4 are freed
    CHECK(core::block_cache::kept().blocks == core::block_cache::kKeepBlocks);
    CHECK(core::block_cache::kept().bytes == core::block_cache::kKeepBlocks * kBytes);
    std::vector<void*> taken;
    for (std::size_t i = 0; i < core::block_cache::kKeepBlocks; ++i) {
      taken.push_back(core::block_cache::take(kBytes, std::align_val_t{16}));
      CHECK(std::find(blocks.begin(), blocks.end(), taken.back()) != blocks.end());
    }
    CHECK(core::block_cache::kept().blocks == 0);
    for (void* p : taken) core::block_cache::give(p, kBytes, std::align_val_t{16});
    CHECK(core::block_cache::kept().blocks == core::block_cache::kKeepBlocks);
    for (std::size_t i = 0; i < core::block_cache::kKeepBlocks; ++i) ::operator delete(core::block_cache::take(kBytes, std::align_val_t{16}), std::align_val_t{16});
    // Bytes: two blocks of just over half the bound; the second does not fit and is freed.
    constexpr std::size_t kHalf = core::block_cache::kKeepBytes / 2 + 16;
    void* x = core::block_cache::take(kHalf, std::align_val_t{16});
    void* y = core::block_cache::take(kHalf, std::align_val_t{16});
    core::block_cache::give(x, kHalf, std::align_val_t{16});
    core::block_cache::give(y, kHalf, std::align_val_t{16});
    CHECK(core::block_cache::kept().blocks == 1);
    CHECK(core::block_cache::kept().bytes == kHalf);
    CHECK(core::block_cache::take(kHalf, std::align_val_t{16}) == x);
    core::block_cache::give(x, kHalf, std::align_val_t{16});
  }).join();
}

TEST_CASE("a pickle's storage is reused by the next pickle on the thread: a second run takes no new chunk") {
  std::thread([] {
    // Counted, not compared by address: malloc often hands a freed block back at the same address.
    REQUIRE(core::block_cache::kept().blocks == 0);  // a fresh thread
    const void* first_chunk = nullptr;
    {
      core::ChunkedVector<std::uint64_t, 10> v;
      v.push_back(1);
      first_chunk = &v[0];
    }
    CHECK(core::block_cache::kept().blocks == 1);  // the chunk, given back
    {
      core::ChunkedVector<std::uint64_t, 10> w;
      w.push_back(2);
      CHECK(core::block_cache::kept().blocks == 0);  // taken again
      CHECK(static_cast<const void*>(&w[0]) == first_chunk);
      CHECK(w[0] == 2);
    }
    // A Pool's first slab likewise.
    const std::size_t before = core::block_cache::kept().blocks;
    void* first_block = nullptr;
    {
      core::Pool pool;
      std::size_t bytes = 64;
      first_block = pool.allocate(bytes);
    }
    CHECK(core::block_cache::kept().blocks == before + 1);
    core::Pool again;
    std::size_t bytes = 64;
    CHECK(again.allocate(bytes) == first_block);
    CHECK(core::block_cache::kept().blocks == before);
  }).join();
}
#endif

namespace {
std::vector<pickle::ValueRef> as_vector(pickle::Items items) { return {items.begin(), items.end()}; }
}  // namespace

TEST_CASE("a list of consecutive refs is kept as a run and reads exactly as its items would") {
  // 40 ints (BININT1), values 0..39; a dict as value 40; the lists after them.
  std::string data;
  for (int k = 0; k < 40; ++k) data += std::string("K") + static_cast<char>(k);
  pickle::ValueStore vs(test::bytes(data));
  std::vector<pickle::ValueRef> refs;
  for (int k = 0; k < 40; ++k) refs.push_back(vs.input_scalar(static_cast<std::uint64_t>(2 * k)));
  const pickle::ValueRef d = vs.dict(0);

  // Made at once (LIST) from consecutive refs, then extended (APPENDS) with the refs after them.
  const pickle::ValueRef a = vs.list(0, refs.data(), 10);
  vs.list_extend(a, refs.data() + 10, 10);
  vs.list_extend(a, refs.data() + 20, 1);
  std::vector<pickle::ValueRef> want(refs.begin(), refs.begin() + 21);
  CHECK(as_vector(vs.items(a)) == want);
  CHECK(vs.items(a).size() == 21);
  CHECK(vs.items(a)[20] == refs[20]);
  CHECK(vs.items(a).front() == refs[0]);
  CHECK(vs.items(a).back() == refs[20]);
  CHECK(as_vector(vs.items(a).subspan(5, 3)) == std::vector<pickle::ValueRef>{refs[5], refs[6], refs[7]});
  CHECK(as_vector(vs.items(a).first(2)) == std::vector<pickle::ValueRef>{refs[0], refs[1]});
  CHECK(std::ranges::find(vs.items(a), refs[13]) - vs.items(a).begin() == 13);
  CHECK(vs.node(a).depth == 1);

  // Items that do not go on from the run's end (a gap, a repeat, the dict): written out, in order.
  vs.list_extend(a, refs.data() + 30, 2);
  want.insert(want.end(), {refs[30], refs[31]});
  CHECK(as_vector(vs.items(a)) == want);
  vs.list_extend(a, &d, 1);
  want.push_back(d);
  CHECK(as_vector(vs.items(a)) == want);
  CHECK(vs.node(a).depth == 2);  // the dict counts

  // An empty list starts a run with its first items; replacing one item writes the run out.
  const pickle::ValueRef b = vs.list(0, nullptr, 0);
  CHECK(vs.items(b).empty());
  vs.list_extend(b, refs.data() + 3, 4);
  CHECK(as_vector(vs.items(b)) == std::vector<pickle::ValueRef>{refs[3], refs[4], refs[5], refs[6]});
  vs.list_set(b, 2, refs[39]);
  CHECK(as_vector(vs.items(b)) == std::vector<pickle::ValueRef>{refs[3], refs[4], refs[39], refs[6]});
  vs.list_extend(b, refs.data() + 7, 1);  // no run any more: appended as items
  CHECK(as_vector(vs.items(b)) == std::vector<pickle::ValueRef>{refs[3], refs[4], refs[39], refs[6], refs[7]});

  // Not consecutive from the start: items as given.
  const pickle::ValueRef c = vs.list(0, std::vector<pickle::ValueRef>{refs[2], refs[1]}.data(), 2);
  CHECK(as_vector(vs.items(c)) == std::vector<pickle::ValueRef>{refs[2], refs[1]});
  // A list nested in a run-kept list counts for the depth, wherever its ref is.
  const pickle::ValueRef e = vs.list(0, &a, 1);
  CHECK(vs.node(e).depth == 3);
}
