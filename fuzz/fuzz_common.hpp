// Shared by the fuzz targets: the built-in rules and small limits, built once per process.
//
// Limits are small so that each input runs in milliseconds (a fuzzer wants many execs/s) while
// every limit path is still reachable; the defaults are exercised by the corpus tests.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>

#include "core/limits.hpp"
#include "rules/rule_loader.hpp"
#include "scan/scanner.hpp"

namespace brine::fuzz {

inline core::Limits small_limits() {
  core::Limits l;
  l.max_opcodes = 200'000;
  l.max_stack_depth = 100'000;
  l.max_memo_entries = 100'000;
  l.max_value_nodes = 400'000;
  l.max_value_bytes = 16ull << 20;
  l.max_string_length = 16ull << 20;
  l.max_pickles_per_file = 64;
  l.max_archive_entries = 2'000;
  l.max_total_decompressed = 32ull << 20;
  l.max_member_bytes = 16ull << 20;
  l.max_file_time = std::chrono::seconds(5);
  return l;
}

inline std::shared_ptr<const rules::RuleSet> builtin_rules() {
  static const auto rules = [] {
    auto r = rules::load_rules({});
    if (!r) throw std::logic_error(r.error().detail);  // the built-in rules are part of the binary
    return *r;
  }();
  return rules;
}

inline const scan::Scanner& scanner() {
  static const scan::Scanner s = [] {
    scan::ScanOptions o;
    o.limits = small_limits();
    o.compute_sha256 = false;
    return scan::Scanner(builtin_rules(), o);
  }();
  return s;
}

}  // namespace brine::fuzz
