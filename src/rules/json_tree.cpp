#include "rules/json_tree.hpp"

#include <fmt/format.h>

#include <iterator>
#include <nlohmann/json.hpp>

namespace brine::rules {

const JsonNode* JsonNode::find(std::string_view key) const {
  for (const auto& [k, v] : object) {
    if (k == key) return &v;
  }
  return nullptr;
}

std::string_view JsonNode::type_name() const {
  switch (type) {
    case Type::kNull: return "null";
    case Type::kBool: return "boolean";
    case Type::kInt: return "integer";
    case Type::kFloat: return "number";
    case Type::kString: return "string";
    case Type::kArray: return "array";
    case Type::kObject: return "object";
  }
  return "?";
}

namespace {

/// A char iterator that counts the lines it has read, so SAX callbacks know where they are.
class LineCountingIterator {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  LineCountingIterator(const char* p, std::uint32_t* line) : p_(p), line_(line) {}
  reference operator*() const { return *p_; }
  LineCountingIterator& operator++() {
    if (*p_ == '\n') ++*line_;
    ++p_;
    return *this;
  }
  LineCountingIterator operator++(int) {
    auto copy = *this;
    ++*this;
    return copy;
  }
  bool operator==(const LineCountingIterator& o) const { return p_ == o.p_; }
  bool operator!=(const LineCountingIterator& o) const { return p_ != o.p_; }

 private:
  const char* p_;
  std::uint32_t* line_;
};

class TreeBuilder {
 public:
  using json = nlohmann::json;
  TreeBuilder(std::string_view file, std::uint32_t* line) : file_(file), line_(line) {}

  bool null() { return add(JsonNode{}); }
  bool boolean(bool v) {
    JsonNode n;
    n.type = JsonNode::Type::kBool;
    n.boolean = v;
    return add(std::move(n));
  }
  bool number_integer(json::number_integer_t v) {
    JsonNode n;
    n.type = JsonNode::Type::kInt;
    n.integer = v;
    return add(std::move(n));
  }
  bool number_unsigned(json::number_unsigned_t v) {
    if (v > static_cast<json::number_unsigned_t>(INT64_MAX)) return fail("integer too large");
    return number_integer(static_cast<json::number_integer_t>(v));
  }
  bool number_float(json::number_float_t v, const json::string_t&) {
    JsonNode n;
    n.type = JsonNode::Type::kFloat;
    n.number = v;
    return add(std::move(n));
  }
  bool string(json::string_t& v) {
    JsonNode n;
    n.type = JsonNode::Type::kString;
    n.string = std::move(v);
    return add(std::move(n));
  }
  bool binary(json::binary_t&) { return fail("binary values are not JSON"); }
  bool start_object(std::size_t) { return open(JsonNode::Type::kObject); }
  bool key(json::string_t& k) {
    JsonNode& obj = *stack_.back();
    for (const auto& [existing, value] : obj.object) {
      if (existing == k) return fail(fmt::format("duplicate key \"{}\"", k));
    }
    pending_key_ = std::move(k);
    return true;
  }
  bool end_object() { return close(); }
  bool start_array(std::size_t) { return open(JsonNode::Type::kArray); }
  bool end_array() { return close(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& ex) {
    // nlohmann's message already says "syntax error while parsing ..."; keep its text after the id.
    std::string what = ex.what();
    const auto pos = what.find("] ");
    error_ = fmt::format("{}:{}: invalid JSON: {}", file_, *line_, pos == std::string::npos ? what : what.substr(pos + 2));
    return false;
  }

  JsonNode root;
  std::string error_;

 private:
  bool fail(std::string message) {
    error_ = fmt::format("{}:{}: {}", file_, *line_, message);
    return false;
  }
  bool add(JsonNode n) {
    n.line = *line_;
    if (stack_.empty()) {
      root = std::move(n);
      return true;
    }
    JsonNode& parent = *stack_.back();
    if (parent.type == JsonNode::Type::kArray) {
      parent.array.push_back(std::move(n));
    } else {
      parent.object.emplace_back(std::move(pending_key_), std::move(n));
    }
    return true;
  }
  bool open(JsonNode::Type type) {
    if (stack_.size() > 64) return fail("nested too deeply");
    JsonNode n;
    n.type = type;
    n.line = *line_;
    if (stack_.empty()) {
      root = std::move(n);
      stack_.push_back(&root);
      return true;
    }
    JsonNode& parent = *stack_.back();
    if (parent.type == JsonNode::Type::kArray) {
      parent.array.push_back(std::move(n));
      stack_.push_back(&parent.array.back());
    } else {
      parent.object.emplace_back(std::move(pending_key_), std::move(n));
      stack_.push_back(&parent.object.back().second);
    }
    return true;
  }
  bool close() {
    stack_.pop_back();
    return true;
  }

  std::string_view file_;
  std::uint32_t* line_;
  std::vector<JsonNode*> stack_;  // pointers stay valid: a node's children only grow while it is the top
  std::string pending_key_;
};

}  // namespace

core::Result<JsonNode> parse_json(std::string_view text, std::string_view file) {
  std::uint32_t line = 1;
  TreeBuilder builder(file, &line);
  LineCountingIterator begin(text.data(), &line), end(text.data() + text.size(), &line);
  const bool ok = nlohmann::json::sax_parse(begin, end, &builder, nlohmann::json::input_format_t::json, true, false);
  if (!ok || !builder.error_.empty()) {
    return core::fail(core::Error{core::ErrorCode::kRules, 0, {}, {},
                                  builder.error_.empty() ? fmt::format("{}: invalid JSON", file) : builder.error_});
  }
  return std::move(builder.root);
}

}  // namespace brine::rules
