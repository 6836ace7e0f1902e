// The Python literals ast.literal_eval accepts, as far as .npy headers need them: numpy's
// format.py evaluates the header with ast.literal_eval, so brine reads it with the same grammar
// instead of searching its text. Anything this reader does not model exactly (f-strings, \N{...},
// line continuations, complex arithmetic...) is reported as unsupported, never guessed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace brine::container::pylit {

enum class Kind : std::uint8_t { kNone, kBool, kInt, kFloat, kStr, kBytes, kTuple, kList, kDict, kSet };

struct Value {
  Kind kind = Kind::kNone;
  bool boolean = false;
  std::int64_t integer = 0;  ///< kInt (and kBool as 0/1); `big` when it does not fit
  bool big = false;
  std::string text;          ///< kStr: code points as (generalized) UTF-8; kBytes: the bytes
  std::vector<Value> items;  ///< tuple/list/set items; dict: key, value, key, value... (keys unique, last value wins)
  [[nodiscard]] bool is_int() const { return kind == Kind::kInt || kind == Kind::kBool; }  // isinstance(x, int)
  [[nodiscard]] bool is_str(std::string_view s) const { return kind == Kind::kStr && text == s; }
};

struct ParseOutcome {
  enum class Status : std::uint8_t { kOk, kInvalid, kUnsupported } status = Status::kOk;
  Value value;
  std::size_t at = 0;  ///< character offset of the problem
  std::string why;
};

struct ParseOptions {
  /// numpy filters Python 2 long suffixes ("3L") out of version 1 and 2 headers with tokenize.
  bool drop_long_suffix = false;
  std::size_t max_depth = 32;
  std::size_t max_values = 100'000;
};

/// Parses `text` (UTF-8, as numpy decoded the header) as one literal_eval expression.
/// kInvalid: literal_eval (or the tokenizer numpy runs first) raises. kUnsupported: brine does not
/// model this spelling exactly.
ParseOutcome parse(std::string_view text, const ParseOptions& options = {});


}  // namespace brine::container::pylit
