#include "analysis/ts_tokenizer.hpp"

#include <array>

namespace brine::analysis {

namespace {

bool name_start(char c) { return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool digit(char c) { return c >= '0' && c <= '9'; }
bool name_char(char c) { return name_start(c) || digit(c); }
bool hex_digit(char c) { return digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
/// Whitespace between tokens. torch's lexer rejects a lone \r or a form feed where Python would
/// not; treating them as spaces reads no name differently.
bool blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

// Longest first: the assignment '=' must not be confused with '==', '<=', '+=' ...
constexpr std::array<std::string_view, 24> kMultiOps = {
    "**=", "//=", ">>=", "<<=", "...", "==", "!=", "<=", ">=", "->", "**", "//",
    "<<",  ">>",  "+=",  "-=",  "*=", "/=", "%=", "&=", "|=", "^=", ":=", "@="};
constexpr std::string_view kSingleOps = "+-*/%&|^~<>=!.,:;@()[]{}?";

/// Length of the number at `pos` in Python's spelling. A letter right after it starts a new
/// token, as in torch's lexer: a number never swallows a name.
std::size_t number_length(std::string_view s, std::size_t pos) {
  std::size_t i = pos;
  auto digits = [&](auto pred) {
    while (i < s.size() && (pred(s[i]) || s[i] == '_')) ++i;
  };
  if (s[i] == '0' && i + 1 < s.size() && (s[i + 1] == 'x' || s[i + 1] == 'X' || s[i + 1] == 'o' || s[i + 1] == 'O' ||
                                          s[i + 1] == 'b' || s[i + 1] == 'B')) {
    i += 2;
    digits(hex_digit);
    return i - pos;
  }
  digits(digit);
  if (i < s.size() && s[i] == '.') {
    ++i;
    digits(digit);
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    std::size_t j = i + 1;
    if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
    if (j < s.size() && digit(s[j])) {
      i = j;
      digits(digit);
    }
  }
  if (i < s.size() && (s[i] == 'j' || s[i] == 'J')) ++i;
  return i - pos;
}

class Tokenizer {
 public:
  Tokenizer(std::string_view s, std::uint64_t max_tokens) : s_(s), max_tokens_(max_tokens) {}

  TsTokens run() {
    bool at_line_start = true;  // a physical line that begins a logical line
    while (pos_ < s_.size() && out_.error.empty()) {
      if (at_line_start) {
        at_line_start = false;
        std::uint32_t indent = 0;
        while (pos_ < s_.size() && blank(s_[pos_])) {
          ++pos_;
          ++indent;
        }
        pending_indent_ = indent;
        pending_start_ = depth_ == 0;
        continue;
      }
      const char c = s_[pos_];
      if (c == '\n') {
        ++pos_;
        ++line_;
        if (depth_ == 0) {
          end_line();
          at_line_start = true;
        }
      } else if (blank(c)) {
        ++pos_;
      } else if (c == '#') {
        while (pos_ < s_.size() && s_[pos_] != '\n') {
          if (s_[pos_] == '\0') return fail("a NUL byte in a comment");
          ++pos_;
        }
      } else if (c == '\\') {
        std::size_t j = pos_ + 1;
        if (j < s_.size() && s_[j] == '\r') ++j;
        if (j >= s_.size() || s_[j] != '\n') return fail("a backslash that does not end a line, outside a string");
        pos_ = j + 1;
        ++line_;  // a continuation: the logical line goes on
      } else if (c == '\'' || c == '"') {
        if (!string_token()) break;
      } else if (name_start(c)) {
        std::size_t j = pos_;
        while (j < s_.size() && name_char(s_[j])) ++j;
        emit(TsTokenKind::kName, j - pos_);
      } else if (digit(c) || (c == '.' && pos_ + 1 < s_.size() && digit(s_[pos_ + 1]))) {
        emit(TsTokenKind::kNumber, number_length(s_, pos_));
      } else if (static_cast<unsigned char>(c) >= 0x80) {
        return fail("a non-ASCII byte outside a string or comment");
      } else {
        std::size_t len = 0;
        for (std::string_view op : kMultiOps) {
          if (s_.substr(pos_, op.size()) == op) {
            len = op.size();
            break;
          }
        }
        if (len == 0 && kSingleOps.find(c) != std::string_view::npos) len = 1;
        if (len == 0) return fail("a byte that starts no token");
        if (len == 1 && !bracket(c)) break;
        emit(TsTokenKind::kOp, len);
      }
    }
    if (out_.error.empty()) {
      if (depth_ != 0) return fail("a bracket that is never closed");
      end_line();
    }
    return std::move(out_);
  }

 private:
  TsTokens fail(std::string why) {
    set_error(std::move(why));
    return std::move(out_);
  }

  void set_error(std::string why) {
    if (out_.error.empty()) {
      out_.error = std::move(why);
      out_.error_offset = pos_;
    }
  }

  bool bracket(char c) {
    if (c == '(' || c == '[' || c == '{') {
      if (depth_ >= kTsMaxBracketDepth) {
        set_error("brackets nested deeper than " + std::to_string(kTsMaxBracketDepth));
        return false;
      }
      open_[depth_++] = c;
    } else if (c == ')' || c == ']' || c == '}') {
      const char want = c == ')' ? '(' : c == ']' ? '[' : '{';
      if (depth_ == 0 || open_[depth_ - 1] != want) {
        set_error("a closing bracket that matches no opening one");
        return false;
      }
      --depth_;
    }
    return true;
  }

  bool string_token() {
    const char q = s_[pos_];
    const bool triple = pos_ + 2 < s_.size() && s_[pos_ + 1] == q && s_[pos_ + 2] == q;
    std::size_t j = pos_ + (triple ? 3 : 1);
    std::uint64_t lines = 0;
    for (;;) {
      if (j >= s_.size()) {
        set_error("a string that is never closed");
        return false;
      }
      const char c = s_[j];
      if (c == '\0') {
        set_error("a NUL byte in a string");
        return false;
      }
      if (c == '\\') {
        if (j + 1 < s_.size() && s_[j + 1] == '\n') ++lines;
        j += 2;
        continue;
      }
      if (c == '\n') {
        if (!triple) {
          set_error("a line break inside a one-line string");
          return false;
        }
        ++lines;
      }
      if (c == q && (!triple || (j + 2 < s_.size() && s_[j + 1] == q && s_[j + 2] == q))) {
        j += triple ? 3 : 1;
        break;
      }
      ++j;
    }
    emit(TsTokenKind::kString, j - pos_);
    line_ += lines;
    return true;
  }

  void emit(TsTokenKind kind, std::size_t len) {
    if (out_.tokens.size() >= max_tokens_) {
      set_error("more than " + std::to_string(max_tokens_) + " tokens (--max-torchscript-tokens)");
      pos_ = s_.size();
      return;
    }
    TsToken t;
    t.kind = kind;
    t.text = s_.substr(pos_, len);
    t.offset = pos_;
    t.line = line_;
    t.line_start = pending_start_;
    t.indent = pending_indent_;
    pending_start_ = false;
    out_.tokens.push_back(t);
    line_has_tokens_ = true;
    pos_ += len;
  }

  void end_line() {
    if (!line_has_tokens_) return;
    TsToken t;
    t.kind = TsTokenKind::kEndLine;
    t.offset = pos_;
    t.line = line_;
    out_.tokens.push_back(t);
    line_has_tokens_ = false;
  }

  std::string_view s_;
  std::uint64_t max_tokens_;
  std::size_t pos_ = 0;
  std::uint64_t line_ = 1;
  std::uint32_t depth_ = 0;
  std::array<char, kTsMaxBracketDepth> open_{};
  bool pending_start_ = false;
  std::uint32_t pending_indent_ = 0;
  bool line_has_tokens_ = false;
  TsTokens out_;
};

}  // namespace

TsTokens tokenize_torchscript(std::string_view source, std::uint64_t max_tokens) {
  return Tokenizer(source, max_tokens).run();
}

bool ts_plain_string_value(std::string_view token, std::string& out) {
  if (token.size() < 2) return false;
  const std::size_t q = token.size() >= 6 && token[1] == token[0] && token[2] == token[0] ? 3 : 1;
  if (token.size() < 2 * q) return false;
  const std::string_view body = token.substr(q, token.size() - 2 * q);
  if (body.find('\\') != std::string_view::npos) return false;
  out = std::string(body);
  return true;
}

}  // namespace brine::analysis
