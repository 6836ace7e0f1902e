// Resource bombs: each hostile input is scanned (and, where tensors are involved, sanitized) in a
// forked child with the default limits, and the test asserts what it cost: the child's wall time
// and peak RSS (wait4's rusage) stay within fixed budgets, and the verdict is never `clean` when
// a limit was the reason to stop. One child per bomb, so one bomb's memory cannot hide another's.
#include <doctest/doctest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <string>

#include "../unit/helpers.hpp"
#include "../unit/zip_builder.hpp"
#include "sanitize/sanitize.hpp"

using namespace brine;
using analysis::Verdict;

namespace {

struct Cost {
  int exit_code = -1;
  double seconds = 0;
  long max_rss_mib = 0;
};

/// Runs `body` in a child process; its return value is the exit code.
Cost in_child(const std::function<int()>& body) {
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int code = 99;
    try {
      code = body();
    } catch (...) {
      code = 98;
    }
    ::_exit(code);
  }
  int status = 0;
  struct rusage ru {};
  REQUIRE(::wait4(pid, &status, 0, &ru) == pid);
  Cost c;
  c.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  c.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  c.max_rss_mib = ru.ru_maxrss / 1024;
  return c;
}

/// Scans `data` in a child with the default limits; exit 0 if the verdict satisfies `ok`.
Cost scan_cost(const std::string& data, const std::function<bool(const scan::FileReport&)>& ok, core::Limits limits = {}) {
  return in_child([&] {
    auto r = test::scan(data, {}, limits);
    return ok(r) ? 0 : 1;
  });
}

bool not_clean(const scan::FileReport& r) { return r.verdict != Verdict::kClean; }
bool limit_hit(const scan::FileReport& r) { return r.verdict == Verdict::kError && test::has_rule(r, "limit:*"); }
bool any_verdict(const scan::FileReport&) { return true; }

void check_cost(const Cost& c, double max_seconds, long max_mib) {
  CHECK(c.exit_code == 0);
  CHECK(c.seconds < max_seconds);
  CHECK(c.max_rss_mib < max_mib);
  MESSAGE("  " << c.seconds << " s, " << c.max_rss_mib << " MiB peak RSS");
}

/// A byte-string literal with its NULs, as a std::string.
template <std::size_t N>
std::string bin(const char (&s)[N]) {
  return std::string(s, N - 1);
}

std::string repeat(std::string_view s, std::size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (std::size_t i = 0; i < n; ++i) out += s;
  return out;
}

void le(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}

/// Raw deflate of `n` zero bytes, produced in pieces (the input is never materialised).
std::string deflate_zeros(std::uint64_t n) {
  z_stream z{};
  REQUIRE(deflateInit2(&z, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string zeros(1 << 20, '\0'), out, buf(1 << 16, '\0');
  while (true) {
    const std::uint64_t take = std::min<std::uint64_t>(n, zeros.size());
    n -= take;
    z.next_in = reinterpret_cast<Bytef*>(zeros.data());
    z.avail_in = static_cast<uInt>(take);
    const int flush = n == 0 ? Z_FINISH : Z_NO_FLUSH;
    int rc = Z_OK;
    do {
      z.next_out = reinterpret_cast<Bytef*>(buf.data());
      z.avail_out = static_cast<uInt>(buf.size());
      rc = deflate(&z, flush);
      out.append(buf.data(), buf.size() - z.avail_out);
    } while (z.avail_out == 0);
    if (flush == Z_FINISH && rc == Z_STREAM_END) break;
  }
  deflateEnd(&z);
  return out;
}

}  // namespace

TEST_CASE("memo bombs: shared references cost nothing, a DUP flood stops at the stack limit") {
  // "Billion laughs": 64 lists, each holding the previous one 16 times through the memo
  // (16^64 elements if copied).
  std::string p = bin("\x80\x02]q\x00");
  for (int level = 1; level < 64; ++level) {
    p += "(";
    for (int k = 0; k < 16; ++k) p += std::string("h") + static_cast<char>(level - 1);
    p += std::string("lq") + static_cast<char>(level);
  }
  p += ".";
  check_cost(scan_cost(p, any_verdict), 5, 256);
  // 10 million DUPs of one value: past max-stack (4M), an error, never an outage.
  const std::string dups = bin("\x80\x02N") + repeat("2", 10'000'000) + ".";
  check_cost(scan_cost(dups, limit_hit), 10, 512);
}

TEST_CASE("nesting bombs: MARKs and containers nested millions deep stop at max-nesting") {
  check_cost(scan_cost(bin("\x80\x02") + repeat("(", 5'000'000) + ".", limit_hit), 5, 512);
  // [[[[...]]]] built by EMPTY_LIST x N then APPEND x N.
  check_cost(scan_cost(bin("\x80\x02") + repeat("]", 1'000'000) + repeat("a", 999'999) + ".", not_clean), 10, 768);
  // The same depth of dicts as values.
  check_cost(scan_cost(bin("\x80\x02") + repeat("}K\x01", 500'000) + "}" + repeat("s", 500'000) + ".", not_clean), 10, 768);
}

TEST_CASE("huge claimed lengths allocate nothing") {
  std::string unicode8 = bin("\x80\x04\x8d");  // BINUNICODE8 claiming 2^62 bytes
  le(unicode8, 1ull << 62, 8);
  unicode8 += "abc";
  check_cost(scan_cost(unicode8, not_clean), 2, 64);
  std::string bytes8 = bin("\x80\x04\x8e");  // BINBYTES8 claiming 1 TiB
  le(bytes8, 1ull << 40, 8);
  check_cost(scan_cost(bytes8, not_clean), 2, 64);
  std::string frame = bin("\x80\x04\x95");  // FRAME claiming 2^50 bytes
  le(frame, 1ull << 50, 8);
  frame += "N.";
  check_cost(scan_cost(frame, not_clean), 2, 64);
  std::string binunicode = bin("\x80\x02X\xff\xff\xff\xff");  // 4 GiB string in a 10-byte file
  check_cost(scan_cost(binunicode, not_clean), 2, 64);
  // A zip entry claiming 4 GiB uncompressed (stored, 10 real bytes), and a .npy claiming a
  // 2^40 x 2^40 array, through sanitize's readers too.
  test::ZipBuilder z;
  z.add("archive/data.pkl", std::string(bin("\x80\x02}q\x00.")));
  std::string zip = z.build();
  const auto cd = zip.find("PK\x01\x02");
  REQUIRE(cd != std::string::npos);
  for (int i = 0; i < 4; ++i) zip[cd + 24 + i] = '\xff';  // uncompressed size
  check_cost(scan_cost(zip, any_verdict), 2, 64);
  std::string npy = "\x93NUMPY\x01\x00";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776), }";
  header.resize(118, ' ');
  header += '\n';
  le(npy, header.size(), 2);
  npy += header + std::string(16, '\0');
  check_cost(in_child([&] {
               auto rules = test::builtin_rules();
               scan::Scanner scanner(rules, {});
               auto ex = sanitize::extract_bytes(core::as_bytes(npy), scanner, true);
               return ex.extraction.tensors.empty() ? 0 : 1;
             }),
             2, 64);
}

TEST_CASE("a FRAME that lies is an error or an evasion finding, never clean") {
  std::string longer = bin("\x80\x04\x95");
  le(longer, 1000, 8);
  longer += bin("N.");
  check_cost(scan_cost(longer, not_clean), 2, 64);
  // A frame that ends inside an opcode (pickle.py rejects, _pickle.c accepts).
  std::string straddle = bin("\x80\x04\x95");
  le(straddle, 2, 8);
  straddle += bin("\x8c\x05hello.");
  check_cost(scan_cost(straddle, not_clean), 2, 64);
}

TEST_CASE("zip bomb: inflating stops at the absolute budget, or at the ratio limit once nested") {
  // 1 GiB of zeros in one deflated member whose data looks like nothing. One layer of zeros is
  // indistinguishable from real compressible data by ratio, so the absolute budgets stop it (here
  // a 256 MiB file budget, or a 64 MiB member cap); the same zip inside a gzip is a nested layer,
  // where the 100:1 ratio limit applies past the 64 MiB floor.
  const std::string packed = deflate_zeros(1ull << 30);
  test::ZipBuilder z;
  test::ZipBuilder::Entry e("archive/data.pkl", packed);
  e.method = 8;
  e.uncompressed = 0xFFFFFFFFu;
  z.add(std::move(e));
  const std::string zip = z.build();
  core::Limits budget;
  budget.max_total_decompressed = 256ull << 20;
  check_cost(scan_cost(zip, limit_hit, budget), 10, 512);
  core::Limits member;
  member.max_member_bytes = 64ull << 20;
  check_cost(scan_cost(zip, limit_hit, member), 10, 256);
  core::Limits ratio;
  ratio.max_compression_ratio = 100;
  check_cost(scan_cost(test::gzip_of(zip), limit_hit, ratio), 10, 512);
}

TEST_CASE("tens of thousands of tiny zip entries: linear, bounded, and past the entry limit an error") {
  test::ZipBuilder z;
  z.add("archive/data.pkl", std::string(bin("\x80\x02}q\x00.")));
  for (int i = 0; i < 60'000; ++i) z.add("archive/extra/" + std::to_string(i), "x");
  const std::string zip = z.build();
  check_cost(scan_cost(zip, any_verdict), 20, 512);
  core::Limits few;
  few.max_archive_entries = 10'000;
  check_cost(scan_cost(zip, limit_hit, few), 5, 256);
}

TEST_CASE("tens of thousands of tar members sharing one name: both tar readings stay linear") {
  // Python's tarfile model and libarchive each read every member; their readings are matched by
  // name and content, which must not turn quadratic when every member has the same name.
  auto header = [](const std::string& name, std::size_t size) {
    std::string b(512, '\0');
    b.replace(0, name.size(), name);
    b.replace(100, 8, std::string("0000644\0", 8));
    b.replace(108, 16, std::string("0000000\0" "0000000\0", 16));
    char buf[16];
    std::snprintf(buf, sizeof buf, "%011lo", static_cast<unsigned long>(size));
    b.replace(124, 12, std::string(buf, 11) + '\0');
    b.replace(136, 12, std::string("00000000000\0", 12));
    b[156] = '0';
    b.replace(257, 8, std::string("ustar\0" "00", 8));
    b.replace(148, 8, "        ");
    long sum = 0;
    for (unsigned char c : b) sum += c;
    std::snprintf(buf, sizeof buf, "%06lo", static_cast<unsigned long>(sum));
    b.replace(148, 8, std::string(buf, 6) + std::string("\0 ", 2));
    return b;
  };
  std::string tar;
  for (int i = 0; i < 30'000; ++i) {
    std::string data = std::to_string(i);  // all different: no match shortcut
    tar += header("x", data.size()) + data + std::string(512 - data.size(), '\0');
  }
  tar += std::string(1024, '\0');
  check_cost(scan_cost(tar, any_verdict), 20, 512);
  core::Limits few;
  few.max_archive_entries = 10'000;
  check_cost(scan_cost(tar, limit_hit, few), 10, 256);
}

TEST_CASE("quadratic patterns stay linear: SETITEMS/APPENDS storms, MARK chains, colliding keys") {
  // One dict, a million SETITEMS of one new key each.
  std::string storm = bin("\x80\x02}");
  for (int i = 0; i < 1'000'000; ++i) {
    storm += "(J";
    le(storm, static_cast<std::uint64_t>(i), 4);
    storm += "Nu";
  }
  storm += ".";
  check_cost(scan_cost(storm, any_verdict), 10, 1024);
  // A million-item APPENDS in one go, then a million single APPENDs on the same list.
  std::string appends = bin("\x80\x02](") + repeat("N", 1'000'000) + "e" + repeat("Na", 1'000'000) + ".";
  check_cost(scan_cost(appends, any_verdict), 10, 1024);
  // MARK chains: a million MARK+TUPLE pairs, and POP_MARK over long runs.
  check_cost(scan_cost(bin("\x80\x02") + repeat("(t", 1'000'000) + repeat("0", 999'999) + ".", any_verdict), 10, 1024);
  check_cost(scan_cost(bin("\x80\x02") + repeat("(" + repeat("N", 1000) + "1", 1000) + "N.", any_verdict), 10, 512);
  // 200,000 int keys that are all multiples of 2^40: identical low bits for a naive hash table.
  std::string collide = bin("\x80\x02}(");
  for (std::uint64_t i = 1; i <= 200'000; ++i) {
    collide += bin("\x8a\x08");
    le(collide, i << 40, 8);
    collide += "N";
  }
  collide += "u.";
  check_cost(scan_cost(collide, any_verdict), 10, 512);
}
