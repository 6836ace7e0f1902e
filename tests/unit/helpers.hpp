// Shared helpers for the unit tests: byte strings, running the VM, scanning with the built-in rules.
#pragma once

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

}  // namespace brine::test
