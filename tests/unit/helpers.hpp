// Shared helpers for the unit tests: byte strings, running the VM, scanning with the built-in rules.
#pragma once

#include <doctest/doctest.h>
#include <zlib.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "core/byte_reader.hpp"
#include "core/limits.hpp"
#include "pickle/machine.hpp"
#include "rules/rule_loader.hpp"
#include "scan/scanner.hpp"

namespace brine::test {

inline core::Bytes bytes(std::string_view s) { return core::as_bytes(s); }

/// A string literal with its full length: pickles contain NUL bytes, and const char* -> string_view
/// would stop at the first one.
template <std::size_t N>
constexpr std::string_view lit(const char (&s)[N]) {
  return {s, N - 1};
}

inline pickle::PickleRun run(std::string_view data, const core::Limits& limits = {}) {
  return pickle::run_pickle(bytes(data), 0, limits, std::chrono::steady_clock::now() + std::chrono::seconds(30));
}

/// The built-in rules (aliases + denylist + default), plus packs.
inline std::shared_ptr<const rules::RuleSet> builtin_rules(std::vector<std::string> packs = {}) {
  rules::RuleOptions options;
  options.rule_files = std::move(packs);
  auto r = rules::load_rules(options);
  if (!r) throw std::runtime_error(r.error().detail);
  return *r;
}

inline scan::FileReport scan(std::string_view data, std::vector<std::string> packs = {}, const core::Limits& limits = {}) {
  scan::ScanOptions options;
  options.limits = limits;
  options.compute_sha256 = false;
  scan::Scanner scanner(builtin_rules(std::move(packs)), options);
  return scanner.scan_bytes(bytes(data), "test");
}
template <std::size_t N>
scan::FileReport scan(const char (&data)[N], std::vector<std::string> packs = {}, const core::Limits& limits = {}) {
  return scan(lit(data), std::move(packs), limits);
}
template <std::size_t N>
pickle::PickleRun run(const char (&data)[N], const core::Limits& limits = {}) {
  return run(lit(data), limits);
}

/// True if some finding has this rule id (prefix match when the id ends with '*').
inline bool has_rule(const scan::FileReport& r, std::string_view rule) {
  for (const auto& f : r.findings) {
    if (rule.ends_with('*') ? f.rule.starts_with(rule.substr(0, rule.size() - 1)) : f.rule == rule) return true;
  }
  return false;
}

inline const analysis::Finding* finding(const scan::FileReport& r, std::string_view rule) {
  for (const auto& f : r.findings) {
    if (f.rule == rule || (rule.ends_with('*') && f.rule.starts_with(rule.substr(0, rule.size() - 1)))) return &f;
  }
  return nullptr;
}

/// A joblib-style stream: a NumpyArrayWrapper for `n` float64 values, then `data` (what follows
/// the BUILD: the alignment byte, padding and the raw array), then the rest of the pickle.
inline std::string joblib_stream(int n, const std::string& data) {
  std::string p(test::lit("\x80\x04\x8c\x13joblib.numpy_pickle\x8c\x11NumpyArrayWrapper\x93)\x81}("));
  p += test::lit("\x8c\x08subclass\x8c\x05numpy\x8c\x07ndarray\x93");
  p += test::lit("\x8c\x05shape");
  p += "K";
  p += static_cast<char>(n);
  p += "\x85";
  p += test::lit("\x8c\x05order\x8c\x01" "C");
  p += test::lit("\x8c\x05" "dtype\x8c\x05numpy\x8c\x05" "dtype\x93\x8c\x02" "f8\x89\x88\x87R(K\x03\x8c\x01<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t" "b");
  p += test::lit("\x8c\x1bnumpy_array_alignment_bytesK\x10u" "b");
  p += data;
  p += ".";
  return p;
}

inline /// `data` as one gzip member (gzip's header and trailer around a deflate stream).
std::string gzip_of(const std::string& data) {
  z_stream z{};
  REQUIRE(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&z, data.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

}  // namespace brine::test
