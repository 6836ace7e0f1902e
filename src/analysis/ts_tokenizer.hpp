// Tokens of TorchScript source (the Python subset torch.jit.load compiles from code/*.py).
//
// Made to find names, not to compile: identifiers, strings, numbers and operators come out as
// tokens; comments, spaces and line continuations (backslash-newline, and any newline inside
// brackets) disappear, so `torch .\n save (` is the same four tokens as `torch.save(`.
// Each logical line's first token carries its indentation, which says which def encloses it.
//
// The rules follow torch's lexer (torch/csrc/jit/frontend/lexer.h), checked against torch 1.13:
// strings are '...', "...", '''...''' or """...""" with backslash escapes and no prefixes (`r"x"`
// is the name r then a string), comments run from # to the end of the line, indentation counts
// whitespace characters. Anything outside that (an unterminated string, a byte that is no token,
// unbalanced brackets, a backslash that does not end a line) fails the whole file: what brine
// cannot tokenize it cannot vouch for.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace brine::analysis {

enum class TsTokenKind : std::uint8_t { kName, kString, kNumber, kOp, kEndLine };

struct TsToken {
  TsTokenKind kind = TsTokenKind::kOp;
  std::string_view text;       ///< as written; a string keeps its quotes
  std::uint64_t offset = 0;    ///< in the source
  std::uint64_t line = 0;      ///< 1-based physical line
  bool line_start = false;     ///< first token of a logical line
  std::uint32_t indent = 0;    ///< whitespace characters before it, when line_start
};

struct TsTokens {
  std::vector<TsToken> tokens;
  std::string error;           ///< non-empty: the source could not be tokenized (tokens are partial)
  std::uint64_t error_offset = 0;
};

/// Bracket nesting deeper than this is refused (torch's own parser recurses on it).
inline constexpr std::uint32_t kTsMaxBracketDepth = 256;

/// Tokenizes `source`; at most `max_tokens` tokens, past which it fails.
TsTokens tokenize_torchscript(std::string_view source, std::uint64_t max_tokens);

/// The value of a string token whose body has no escapes; false (leaving `out` alone) when it has
/// one, since torch's escape rules are not Python's and a guess would be a second reading.
bool ts_plain_string_value(std::string_view token, std::string& out);

}  // namespace brine::analysis
