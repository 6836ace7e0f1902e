// A JSON document tree that remembers the line and column each value starts on, so that a rule
// file's semantic errors ("unknown use 'cal'") can name the place, not just the file.
//
// Parsing uses nlohmann's SAX interface (no exceptions: parse errors come back as values).
// Duplicate object keys are an error: in a rule file they would silently drop a rule.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.hpp"

namespace brine::rules {

struct JsonMember;

struct JsonNode {
  enum class Type : std::uint8_t { kNull, kBool, kInt, kFloat, kString, kArray, kObject };
  Type type = Type::kNull;
  bool boolean = false;
  std::int64_t integer = 0;
  double number = 0;
  std::string string;
  std::vector<JsonNode> array;
  /// Object members in file order. (A pair<string, JsonNode> member would need JsonNode complete
  /// here, which clang with libstdc++ enforces; a declared struct does not.)
  std::vector<JsonMember> object;
  std::uint32_t line = 0;
  std::uint32_t column = 0;  ///< 1-based, in bytes, of the value's first character

  /// "line:column", as errors print it.
  [[nodiscard]] std::string where() const;

  [[nodiscard]] const JsonNode* find(std::string_view key) const;
  [[nodiscard]] std::string_view type_name() const;
};

struct JsonMember {
  JsonMember(std::string key, JsonNode value) : first(std::move(key)), second(std::move(value)) {}
  std::string first;
  JsonNode second;
};

/// Parses `text`; errors are kRules with "<file>:<line>:<column>: ..." in detail.
core::Result<JsonNode> parse_json(std::string_view text, std::string_view file);

}  // namespace brine::rules
