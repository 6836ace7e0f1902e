// Hostile-input robustness over the corpus: every sample truncated at every byte, and byte-flipped
// at many points, must give a verdict or an error — never a crash, never a hang — and a truncated
// sample is never `clean` unless the cut falls exactly at the end of a complete pickle.
//
// BRINE_MALFORMED_STRIDE=N takes every Nth cut and flip point (a different phase per file, so the
// files together still cover every position class): the sanitizer stage of scripts/test.sh runs
// a sampled pass, because the full one takes over 8 minutes under AddressSanitizer.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "pickle/machine.hpp"
#include "rules/rule_loader.hpp"
#include "sanitize/sanitize.hpp"
#include "scan/scanner.hpp"

namespace fs = std::filesystem;
using namespace brine;

namespace {

std::size_t stride() {
  static const std::size_t n = [] {
    const char* env = std::getenv("BRINE_MALFORMED_STRIDE");
    const long v = env != nullptr ? std::strtol(env, nullptr, 10) : 1;
    return static_cast<std::size_t>(v >= 1 ? v : 1);
  }();
  return n;
}

/// Where this file's sampled positions start: files take turns over the stride's residues.
std::size_t phase(std::size_t file_index) { return file_index % stride(); }

std::vector<std::string> corpus_files(std::initializer_list<const char*> subs = {"benign", "malicious"}) {
  std::vector<std::string> out;
  for (const char* sub : subs) {
    const fs::path dir = fs::path(BRINE_CORPUS_DIR) / sub;
    for (const auto& e : fs::directory_iterator(dir)) {
      const auto ext = e.path().extension();
      if (e.is_regular_file() && ext != ".json" && ext != ".py") out.push_back(e.path().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

const scan::Scanner& scanner() {
  static const scan::Scanner s = [] {
    auto rules = rules::load_rules({});
    if (!rules) throw std::runtime_error(rules.error().detail);
    scan::ScanOptions o;
    o.compute_sha256 = false;
    o.limits.max_file_time = std::chrono::seconds(5);
    // Bombs in corpus/containers are rescanned hundreds of times here: a small budget keeps each
    // scan short (the defaults are tested by the corpus test).
    o.limits.max_total_decompressed = 16ull << 20;
    return scan::Scanner(*rules, o);
  }();
  return s;
}

/// A prefix that is exactly one or more complete pickles may legitimately be clean.
bool ends_at_stop(std::string_view data) {
  std::uint64_t pos = 0;
  while (pos < data.size()) {
    auto run = pickle::run_pickle(core::as_bytes(data), pos, core::Limits{}, std::chrono::steady_clock::now() + std::chrono::seconds(5));
    if (!run.stopped) return false;
    pos = run.end;
  }
  return true;
}

}  // namespace

TEST_CASE("every corpus sample truncated at every byte is never clean and never crashes") {
  std::size_t scans = 0, file_index = 0;
  for (const auto& path : corpus_files()) {
    const std::string data = read(path);
    CAPTURE(path);
    for (std::size_t len = phase(file_index++); len < data.size(); len += stride()) {
      const std::string_view prefix(data.data(), len);
      auto r = scanner().scan_bytes(core::as_bytes(prefix), path);
      ++scans;
      if (r.verdict == analysis::Verdict::kClean) {
        CAPTURE(len);
        CHECK(ends_at_stop(prefix));
      }
      for (const auto& f : r.findings) {
        if (f.impact == analysis::Verdict::kError && f.member.empty()) CHECK(f.offset <= len);
      }
    }
  }
  MESSAGE("truncated scans: " << scans << " (stride " << stride() << ")");
  CHECK(scans > 10000 / stride());
}

TEST_CASE("byte flips at many points give a verdict, quickly") {
  std::size_t scans = 0, file_index = 0;
  const auto start = std::chrono::steady_clock::now();
  for (const auto& path : corpus_files()) {
    std::string data = read(path);
    const std::size_t step = std::max<std::size_t>(1, data.size() / 256) * stride();
    for (std::size_t pos = phase(file_index++) * step / stride(); pos < data.size(); pos += step) {
      for (unsigned char mask : {0xFFu, 0x01u, 0x80u}) {
        data[pos] = static_cast<char>(data[pos] ^ mask);
        auto r = scanner().scan_bytes(core::as_bytes(data), path);
        CHECK(r.seconds < 5.0);
        data[pos] = static_cast<char>(data[pos] ^ mask);
        ++scans;
      }
    }
  }
  MESSAGE("flipped scans: " << scans << " in "
                            << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() << "s");
  CHECK(scans > 10000 / stride());
}

TEST_CASE("container samples truncated or byte-flipped at many points give a verdict, never a crash or a hang") {
  std::size_t scans = 0, runs_files = 0;
  double worst = 0;
  for (const auto& path : corpus_files({"containers"})) {
    std::string data = read(path);
    CAPTURE(path);
    // Every byte of the first and last 512 bytes (headers, end records), and ~200 points between.
    std::vector<std::size_t> cuts;
    const std::size_t n = data.size();
    for (std::size_t i = 0; i < std::min<std::size_t>(n, 512); ++i) cuts.push_back(i);
    for (std::size_t i = n > 512 ? n - 512 : 0; i < n; ++i) cuts.push_back(i);
    const std::size_t step = std::max<std::size_t>(1, n / 200);
    for (std::size_t i = 0; i < n; i += step) cuts.push_back(i);
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    if (stride() > 1) {
      std::vector<std::size_t> sampled;
      for (std::size_t i = phase(runs_files++); i < cuts.size(); i += stride()) sampled.push_back(cuts[i]);
      cuts.swap(sampled);
    }
    for (std::size_t len : cuts) {
      auto r = scanner().scan_bytes(core::as_bytes(std::string_view(data.data(), len)), path);
      worst = std::max(worst, r.seconds);
      ++scans;
    }
    for (std::size_t pos : cuts) {
      if (pos >= n) continue;
      data[pos] = static_cast<char>(data[pos] ^ 0xFF);
      auto r = scanner().scan_bytes(core::as_bytes(data), path);
      worst = std::max(worst, r.seconds);
      data[pos] = static_cast<char>(data[pos] ^ 0xFF);
      ++scans;
    }
  }
  MESSAGE("container scans: " << scans << ", slowest " << worst << "s");
  CHECK(scans > 10000 / stride());
  CHECK(worst < 5.0);
}

namespace {
class CountingSink : public tensor::ByteSink {
 public:
  core::Status write(core::Bytes b) override {
    // Touch every byte: under ASan an out-of-bounds view would be reported here.
    for (auto c : b) sum += c;
    bytes += b.size();
    return {};
  }
  std::uint64_t bytes = 0, sum = 0;
};

std::vector<std::string> tensor_samples() {
  std::vector<std::string> out;
  // The reference samples are in the repository; none found makes the REQUIRE below fail (never
  // a silent skip).
  const fs::path dir = fs::path(BRINE_CORPUS_DIR) / ".." / "tests" / "data" / "reference";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const auto ext = e.path().extension();
    if (e.is_regular_file() && (ext == ".pt" || ext == ".pkl" || ext == ".joblib" || ext == ".npy")) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}
}  // namespace

TEST_CASE("sanitize's readers on truncated and byte-flipped checkpoints: every extracted view stays inside its bytes") {
  std::size_t runs = 0, tensors = 0;
  auto check = [&](std::string_view data) {
    auto ex = sanitize::extract_bytes(core::as_bytes(data), scanner(), /*salvage=*/true);
    for (const auto& t : ex.extraction.tensors) {
      REQUIRE(tensor::check_bounds(t));
      CountingSink sink;
      REQUIRE(tensor::write_contiguous_le(t, sink));
      CHECK(sink.bytes == t.nbytes());
      ++tensors;
    }
    ++runs;
  };
  const auto files = tensor_samples();
  REQUIRE(files.size() >= 20);
  std::size_t file_index = 0;
  for (const auto& path : files) {
    std::string data = read(path);
    CAPTURE(path);
    const std::size_t first = phase(file_index++);
    for (std::size_t len = first; len <= data.size(); len += stride()) check(std::string_view(data.data(), len));
    const std::size_t step = std::max<std::size_t>(1, data.size() / 300) * stride();
    for (std::size_t pos = first * step / stride(); pos < data.size(); pos += step) {
      for (unsigned char mask : {0xFFu, 0x01u, 0x80u}) {
        data[pos] = static_cast<char>(data[pos] ^ mask);
        check(data);
        data[pos] = static_cast<char>(data[pos] ^ mask);
      }
    }
  }
  MESSAGE("sanitize extractions: " << runs << ", tensors written: " << tensors);
  CHECK(tensors > 1000 / stride());
}
