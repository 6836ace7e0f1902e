#include "container/py_literal.hpp"

#include <fmt/format.h>

#include <optional>

#include "core/text.hpp"

namespace brine::container::pylit {


namespace {

using Status = ParseOutcome::Status;

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_ident(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' || static_cast<unsigned char>(c) >= 0x80;
}
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// digitpart: digit (["_"] digit)*, for the given digit test. Returns the end or npos.
template <typename Pred>
std::size_t digit_part(std::string_view s, std::size_t i, Pred ok) {
  if (i >= s.size() || !ok(s[i])) return std::string_view::npos;
  ++i;
  while (i < s.size()) {
    if (ok(s[i])) {
      ++i;
    } else if (s[i] == '_' && i + 1 < s.size() && ok(s[i + 1])) {
      i += 2;
    } else {
      break;
    }
  }
  return i;
}

class Parser {
 public:
  Parser(std::string_view text, const ParseOptions& options) : s_(text), o_(options) {}

  ParseOutcome run() {
    ParseOutcome out;
    // literal_eval strips leading spaces and tabs; a leading newline or comment is left unmodelled.
    skip_blank(false);
    if (!ok_) return finish(std::move(out));
    out.value = value(0);
    if (ok_) {
      skip_blank(true);
      if (ok_ && i_ < s_.size()) invalid("unexpected text after the literal");
    }
    return finish(std::move(out));
  }

 private:
  ParseOutcome finish(ParseOutcome out) {
    if (!ok_) {
      out.status = status_;
      out.at = at_;
      out.why = why_;
      out.value = Value{};
    }
    return out;
  }
  void problem(Status st, std::string why) {
    if (!ok_) return;
    ok_ = false;
    status_ = st;
    at_ = i_;
    why_ = std::move(why);
  }
  void invalid(std::string why) { problem(Status::kInvalid, std::move(why)); }
  void unsupported(std::string why) { problem(Status::kUnsupported, std::move(why)); }

  /// Spaces and tabs; newlines and comments only inside brackets or after the whole literal.
  void skip_blank(bool newlines_ok) {
    while (i_ < s_.size()) {
      const char c = s_[i_];
      if (c == ' ' || c == '\t') {
        ++i_;
      } else if ((c == '\n' || c == '#') && (newlines_ok || depth_ > 0)) {
        if (c == '#') {
          while (i_ < s_.size() && s_[i_] != '\n') ++i_;
        } else {
          ++i_;
        }
      } else if (c == '\n' || c == '#') {
        return unsupported("a line break or comment where brine does not model Python's tokenizer");
      } else if (c == '\\' || c == '\r' || c == '\f' || c == '\v') {
        return unsupported(fmt::format("character 0x{:02x} outside a string", static_cast<unsigned>(c)));
      } else {
        return;
      }
    }
  }

  bool eat(char c) {
    skip_blank(false);
    if (ok_ && i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }

  bool count_value() {
    if (++values_ > o_.max_values) {
      unsupported(fmt::format("the header holds more than {} values", o_.max_values));
      return false;
    }
    return true;
  }

  Value value(std::size_t depth) {
    Value v;
    skip_blank(false);
    if (!ok_) return v;
    if (depth > o_.max_depth) {
      unsupported(fmt::format("the header nests deeper than {}", o_.max_depth));
      return v;
    }
    if (!count_value()) return v;
    if (i_ >= s_.size()) {
      invalid("the header ends where a value is expected");
      return v;
    }
    const char c = s_[i_];
    if (c == '(' || c == '[' || c == '{') return container(depth);
    if (c == '-' || c == '+') {
      ++i_;
      skip_blank(false);
      if (!ok_) return v;
      if (i_ < s_.size() && (is_digit(s_[i_]) || s_[i_] == '.')) {
        v = number();
        if (ok_ && c == '-') {
          if (v.kind == Kind::kInt) {
            if (v.big || v.integer == INT64_MIN) v.big = true; else v.integer = -v.integer;
          }
        }
        return v;
      }
      unsupported("a sign before something other than a number");
      return v;
    }
    if (is_digit(c) || (c == '.' && i_ + 1 < s_.size() && is_digit(s_[i_ + 1]))) return number();
    if (c == '\'' || c == '"') return strings();
    if (is_ident(c)) {
      std::size_t j = i_;
      while (j < s_.size() && is_ident(s_[j])) ++j;
      const std::string_view word = s_.substr(i_, j - i_);
      if (j < s_.size() && (s_[j] == '\'' || s_[j] == '"') && word.size() <= 2) return strings();
      i_ = j;
      if (word == "True" || word == "False") {
        v.kind = Kind::kBool;
        v.boolean = word == "True";
        v.integer = v.boolean ? 1 : 0;
        return v;
      }
      if (word == "None") return v;
      i_ -= word.size();
      invalid(fmt::format("name '{}' is not a literal", word));
      return v;
    }
    unsupported(fmt::format("character 0x{:02x} where a value is expected", static_cast<unsigned char>(c)));
    return v;
  }

  Value container(std::size_t depth) {
    Value v;
    const char open = s_[i_++];
    const char close = open == '(' ? ')' : open == '[' ? ']' : '}';
    ++depth_;
    v.kind = open == '(' ? Kind::kTuple : open == '[' ? Kind::kList : Kind::kDict;
    bool first = true, had_comma = false;
    while (ok_) {
      skip_blank(false);
      if (!ok_) break;
      if (i_ >= s_.size()) {
        invalid("the header ends inside brackets");
        break;
      }
      if (s_[i_] == close) {
        ++i_;
        break;
      }
      if (!first && !had_comma) {
        invalid("missing comma");
        break;
      }
      if (s_[i_] == '*') {
        unsupported("star expression");
        break;
      }
      Value item = value(depth + 1);
      if (!ok_) break;
      if (v.kind == Kind::kDict && first) {
        if (!eat(':')) {
          if (!ok_) break;
          v.kind = Kind::kSet;
        }
      } else if (v.kind == Kind::kDict && !eat(':')) {
        invalid("dict entry without ':'");
        break;
      }
      if (v.kind == Kind::kDict) {
        Value val = value(depth + 1);
        if (!ok_) break;
        if (item.kind == Kind::kList || item.kind == Kind::kDict || item.kind == Kind::kSet) {
          invalid("unhashable dict key");
          break;
        }
        put(v, std::move(item), std::move(val));
      } else {
        if ((v.kind == Kind::kSet) && (item.kind == Kind::kList || item.kind == Kind::kDict || item.kind == Kind::kSet)) {
          invalid("unhashable set item");
          break;
        }
        v.items.push_back(std::move(item));
      }
      first = false;
      had_comma = eat(',');
      if (!ok_) break;
      if (open == '(' && !had_comma && v.items.size() == 1) {
        // (x) is x itself, not a tuple.
        if (eat(')')) {
          --depth_;
          return std::move(v.items.front());
        }
        if (ok_) invalid("missing comma or ')'");
        break;
      }
    }
    --depth_;
    return v;
  }

  /// Dict insertion: a repeated key keeps its first position and takes the last value. Only str,
  /// bytes, None, bool and exact ints compare equal here; other key kinds make numpy reject the
  /// header anyway (its keys must be exactly three strs), so their equality is not modelled.
  static void put(Value& dict, Value key, Value val) {
    for (std::size_t k = 0; k + 1 < dict.items.size(); k += 2) {
      const Value& old = dict.items[k];
      const bool same_text = (old.kind == key.kind && (key.kind == Kind::kStr || key.kind == Kind::kBytes) && old.text == key.text);
      const bool same_num = old.is_int() && key.is_int() && !old.big && !key.big && old.integer == key.integer;
      const bool both_none = old.kind == Kind::kNone && key.kind == Kind::kNone;
      if (same_text || same_num || both_none) {
        dict.items[k + 1] = std::move(val);
        return;
      }
    }
    dict.items.push_back(std::move(key));
    dict.items.push_back(std::move(val));
  }

  Value number() {
    Value v;
    const std::size_t start = i_;
    std::size_t j = i_;
    const bool radix = s_[j] == '0' && j + 1 < s_.size() && std::string_view("xXoObB").find(s_[j + 1]) != std::string_view::npos;
    while (j < s_.size()) {
      const char c = s_[j];
      if (is_ident(c) || c == '.') {
        ++j;
      } else if ((c == '+' || c == '-') && !radix && (s_[j - 1] == 'e' || s_[j - 1] == 'E')) {
        ++j;
      } else {
        break;
      }
    }
    std::string_view tok = s_.substr(start, j - start);
    // numpy's tokenize filter removes a NAME 'L' right after a NUMBER ("3L", "3 L").
    std::size_t after = j;
    if (o_.drop_long_suffix && tok.size() > 1 && tok.back() == 'L' && !radix) {
      // "3L" lexes as NUMBER "3" + NAME "L" only when "3" alone is the number.
      tok.remove_suffix(1);
    } else if (o_.drop_long_suffix && radix && tok.size() > 2 && tok.back() == 'L') {
      tok.remove_suffix(1);
    }
    i_ = after;
    if (o_.drop_long_suffix && tok.size() == j - start) {
      std::size_t k = j;
      while (k < s_.size() && (s_[k] == ' ' || s_[k] == '\t')) ++k;
      if (k < s_.size() && s_[k] == 'L' && (k + 1 >= s_.size() || !is_ident(s_[k + 1]))) i_ = k + 1;
    }
    auto is_dec = [](char c) { return is_digit(c); };
    if (radix) {
      const char r = static_cast<char>(s_[start + 1] | 0x20);
      auto ok = [r](char c) {
        if (r == 'x') return hex_value(c) >= 0;
        if (r == 'o') return c >= '0' && c <= '7';
        return c == '0' || c == '1';
      };
      std::size_t k = 2;
      if (k < tok.size() && tok[k] == '_') ++k;
      const std::size_t end = digit_part(tok, k, ok);
      if (end != tok.size()) {
        unsupported(fmt::format("number '{}'", tok));
        return v;
      }
      const unsigned base = r == 'x' ? 16 : r == 'o' ? 8 : 2;
      return integer(tok.substr(2), base);
    }
    const std::size_t int_end = digit_part(tok, 0, is_dec);
    if (int_end == tok.size()) {
      // Decimal int: no leading zeros unless all zeros.
      if (tok[0] == '0') {
        for (char c : tok) {
          if (c != '0' && c != '_') {
            invalid(fmt::format("leading zeros in '{}'", tok));
            return v;
          }
        }
      }
      return integer(tok, 10);
    }
    // Float or imaginary: validate Python's floatnumber grammar; its value is never needed.
    std::size_t k = int_end == std::string_view::npos ? 0 : int_end;
    bool digits = int_end != std::string_view::npos;
    if (k < tok.size() && tok[k] == '.') {
      ++k;
      if (k < tok.size() && is_digit(tok[k])) {
        k = digit_part(tok, k, is_dec);
        digits = true;
      }
    }
    if (digits && k < tok.size() && (tok[k] == 'e' || tok[k] == 'E')) {
      ++k;
      if (k < tok.size() && (tok[k] == '+' || tok[k] == '-')) ++k;
      k = digit_part(tok, k, is_dec);
    }
    if (k != std::string_view::npos && k < tok.size() && (tok[k] == 'j' || tok[k] == 'J')) {
      unsupported(fmt::format("complex number '{}'", tok));
      return v;
    }
    if (!digits || k != tok.size()) {
      unsupported(fmt::format("number '{}'", tok));
      return v;
    }
    v.kind = Kind::kFloat;
    return v;
  }

  Value integer(std::string_view digits, unsigned base) {
    Value v;
    v.kind = Kind::kInt;
    std::uint64_t n = 0;
    for (char c : digits) {
      if (c == '_') continue;
      const auto d = static_cast<std::uint64_t>(hex_value(c));
      if (n > (static_cast<std::uint64_t>(INT64_MAX) - d) / base) {
        v.big = true;
        return v;
      }
      n = n * base + d;
    }
    v.integer = static_cast<std::int64_t>(n);
    return v;
  }

  /// One or more adjacent string literals (concatenated; str and bytes must not mix).
  Value strings() {
    Value v;
    bool first = true;
    while (ok_) {
      std::size_t j = i_;
      while (j < s_.size() && is_ident(s_[j])) ++j;
      if (j >= s_.size() || (s_[j] != '\'' && s_[j] != '"')) break;
      std::string prefix(s_.substr(i_, j - i_));
      for (auto& c : prefix) c = static_cast<char>(c | 0x20);
      const bool raw = prefix.find('r') != std::string::npos;
      const bool bytes = prefix.find('b') != std::string::npos;
      if (!(prefix.empty() || prefix == "r" || prefix == "u" || prefix == "b" || prefix == "br" || prefix == "rb")) {
        if (prefix.find('f') != std::string::npos) {
          unsupported("f-string");
        } else {
          invalid(fmt::format("string prefix '{}'", prefix));
        }
        return v;
      }
      const Kind k = bytes ? Kind::kBytes : Kind::kStr;
      if (!first && k != v.kind) {
        invalid("cannot mix bytes and nonbytes literals");
        return v;
      }
      v.kind = k;
      i_ = j;
      one_string(v.text, raw, bytes);
      first = false;
      if (!ok_) return v;
      // Adjacent literals: only spaces/tabs (or newlines inside brackets) between them.
      const std::size_t save = i_;
      skip_blank(false);
      if (!ok_) return v;
      if (i_ >= s_.size() || !(s_[i_] == '\'' || s_[i_] == '"' || is_ident(s_[i_]))) break;
      std::size_t m = i_;
      while (m < s_.size() && is_ident(s_[m])) ++m;
      if (m >= s_.size() || (s_[m] != '\'' && s_[m] != '"') || m - i_ > 2) {
        i_ = save;
        break;
      }
    }
    return v;
  }

  void one_string(std::string& out, bool raw, bool bytes) {
    const char q = s_[i_];
    const bool triple = i_ + 2 < s_.size() && s_[i_ + 1] == q && s_[i_ + 2] == q;
    i_ += triple ? 3 : 1;
    while (true) {
      if (i_ >= s_.size()) return invalid("unterminated string literal");
      const char c = s_[i_];
      if (c == q && (!triple || (i_ + 2 < s_.size() && s_[i_ + 1] == q && s_[i_ + 2] == q))) {
        i_ += triple ? 3 : 1;
        return;
      }
      if (c == '\r') return unsupported("carriage return in a string literal (Python translates it)");
      if (c == '\n' && !triple) return invalid("line break in a single-quoted string");
      if (bytes && static_cast<unsigned char>(c) >= 0x80) return invalid("non-ASCII character in a bytes literal");
      if (c != '\\') {
        out += c;  // UTF-8 passes through as is (a str holds those code points)
        ++i_;
        continue;
      }
      if (i_ + 1 >= s_.size()) return invalid("unterminated string literal");
      const char e = s_[i_ + 1];
      if (raw) {
        // A backslash keeps itself and the next character (which cannot end the literal).
        if (e == '\r') return unsupported("carriage return in a string literal");
        if (e == '\n' && !triple) { out += "\\\n"; i_ += 2; continue; }
        out += '\\';
        out += e;
        i_ += 2;
        continue;
      }
      i_ += 2;
      switch (e) {
        case '\n': break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'v': out += '\v'; break;
        case 'x': {
          if (i_ + 1 >= s_.size() || hex_value(s_[i_]) < 0 || hex_value(s_[i_ + 1]) < 0) return invalid("truncated \\xXX escape");
          const auto cp = static_cast<std::uint32_t>(hex_value(s_[i_]) * 16 + hex_value(s_[i_ + 1]));
          i_ += 2;
          if (bytes) out += static_cast<char>(cp); else core::append_wtf8(out, cp);
          break;
        }
        case 'u':
        case 'U': {
          if (bytes) { out += '\\'; out += e; break; }
          const std::size_t n = e == 'u' ? 4 : 8;
          std::uint32_t cp = 0;
          for (std::size_t k = 0; k < n; ++k) {
            if (i_ + k >= s_.size() || hex_value(s_[i_ + k]) < 0) return invalid("truncated \\u escape");
            cp = cp * 16 + static_cast<std::uint32_t>(hex_value(s_[i_ + k]));
          }
          if (cp > 0x10FFFF) return invalid("illegal Unicode character");
          i_ += n;
          core::append_wtf8(out, cp);
          break;
        }
        case 'N':
          if (bytes) { out += "\\N"; break; }
          return unsupported("\\N{...} escape (brine has no Unicode name table)");
        default:
          if (e >= '0' && e <= '7') {
            std::uint32_t cp = static_cast<std::uint32_t>(e - '0');
            for (int k = 0; k < 2 && i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '7'; ++k) cp = cp * 8 + static_cast<std::uint32_t>(s_[i_++] - '0');
            if (bytes) out += static_cast<char>(cp & 0xFF); else core::append_wtf8(out, cp);
          } else if (e == '\r') {
            return unsupported("carriage return in a string literal");
          } else {
            out += '\\';  // unknown escapes keep the backslash (a DeprecationWarning only)
            --i_;          // the next character is ordinary (it may be a UTF-8 lead byte)
          }
      }
    }
  }

  std::string_view s_;
  const ParseOptions& o_;
  std::size_t i_ = 0;
  std::size_t depth_ = 0;
  std::size_t values_ = 0;
  bool ok_ = true;
  Status status_ = Status::kOk;
  std::size_t at_ = 0;
  std::string why_;
};

}  // namespace

ParseOutcome parse(std::string_view text, const ParseOptions& options) {
  if (text.find('\0') != std::string_view::npos) {
    ParseOutcome out;
    out.status = Status::kInvalid;
    out.at = text.find('\0');
    out.why = "source code cannot contain null bytes";
    return out;
  }
  return Parser(text, options).run();
}

}  // namespace brine::container::pylit
