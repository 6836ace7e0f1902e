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

std::string JsonNode::where() const { return fmt::format("{}:{}", line, column); }

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

/// Where the lexer is, and where the token it read last began. nlohmann's SAX callbacks carry no
/// position, and fire after the lexer has read one character past a number (the delimiter, which
/// may be a newline): so each value takes the position of the token's *first* character, found by
/// following string/escape state as the characters go by.
struct Position {
  std::uint32_t line = 1, column = 1;              ///< of the next character
  std::uint32_t token_line = 1, token_column = 1;  ///< of the first character of the last token
  bool in_string = false, escaped = false, in_scalar = false;

  void consume(char c) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"' || c == '[' || c == '{') {
      mark();
      in_string = c == '"';
      in_scalar = false;
    } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' || c == ':' || c == ']' || c == '}') {
      in_scalar = false;
    } else if (!in_scalar) {  // first character of a number or literal
      mark();
      in_scalar = true;
    }
    if (c == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }

 private:
  void mark() {
    token_line = line;
    token_column = column;
  }
};

/// A char iterator that feeds every character it passes to a Position.
class PositionIterator {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  PositionIterator(const char* p, Position* pos) : p_(p), pos_(pos) {}
  reference operator*() const { return *p_; }
  PositionIterator& operator++() {
    pos_->consume(*p_);
    ++p_;
    return *this;
  }
  PositionIterator operator++(int) {
    auto copy = *this;
    ++*this;
    return copy;
  }
  bool operator==(const PositionIterator& o) const { return p_ == o.p_; }
  bool operator!=(const PositionIterator& o) const { return p_ != o.p_; }

 private:
  const char* p_;
  Position* pos_;
};

class TreeBuilder {
 public:
  using json = nlohmann::json;
  TreeBuilder(std::string_view file, Position* pos) : file_(file), pos_(pos) {}

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
    // Syntax errors are placed where the lexer stopped, which is where the text went wrong.
    error_ = fmt::format("{}:{}:{}: invalid JSON: {}", file_, pos_->line, pos_->column,
                         pos == std::string::npos ? what : what.substr(pos + 2));
    return false;
  }

  JsonNode root;
  std::string error_;

 private:
  bool fail(std::string message) {
    error_ = fmt::format("{}:{}:{}: {}", file_, pos_->token_line, pos_->token_column, message);
    return false;
  }
  bool add(JsonNode n) {
    n.line = pos_->token_line;
    n.column = pos_->token_column;
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
    n.line = pos_->token_line;
    n.column = pos_->token_column;
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
  Position* pos_;
  std::vector<JsonNode*> stack_;  // pointers stay valid: a node's children only grow while it is the top
  std::string pending_key_;
};

}  // namespace

core::Result<JsonNode> parse_json(std::string_view text, std::string_view file) {
  Position position;
  TreeBuilder builder(file, &position);
  PositionIterator begin(text.data(), &position), end(text.data() + text.size(), &position);
  const bool ok = nlohmann::json::sax_parse(begin, end, &builder, nlohmann::json::input_format_t::json, true, false);
  if (!ok || !builder.error_.empty()) {
    return core::fail(core::Error{core::ErrorCode::kRules, 0, {}, {},
                                  builder.error_.empty() ? fmt::format("{}: invalid JSON", file) : builder.error_});
  }
  return std::move(builder.root);
}

}  // namespace brine::rules
