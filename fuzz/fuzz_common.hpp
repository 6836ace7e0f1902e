// Shared by the fuzz targets: the built-in rules and small limits, built once per process.
//
// Limits are small so that each input runs in milliseconds (a fuzzer wants many execs/s) while
// every limit path is still reachable; the defaults are exercised by the corpus tests.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

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

/// True if `text` is JSON by RFC 8259's grammar. nlohmann::json::accept is stricter in one
/// place: it refuses a u-escape of a lone surrogate, which the grammar allows and which brine
/// writes on purpose (a pickle str may hold one; core::append_json_string writes it as Python's
/// json.dumps does, and json.loads reads it back). Such escapes are checked as any other.
inline bool is_rfc_json(std::string text) {
  for (std::size_t i = 0; i + 1 < text.size(); ++i) {
    if (text[i] != '\\') continue;
    if (text[i + 1] == 'u' && i + 5 < text.size() && (text[i + 2] == 'd' || text[i + 2] == 'D') &&
        std::strchr("89abcdefABCDEF", text[i + 3]) != nullptr && text[i + 3] != '\0') {
      text.replace(i + 2, 2, "00");  // backslash-u Dxxx becomes backslash-u 00xx: same grammar, no surrogate
    }
    ++i;  // the escaped character is not a backslash that starts another escape
  }
  return nlohmann::json::accept(text);
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
