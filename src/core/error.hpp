// Input errors: a closed set of codes, each with one message, plus where in the input it happened.
//
// An Error means "this input could not be analysed past this point". It is a value, never an
// exception: library functions return Result<T> (result.hpp). Programmer errors use assert.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace brine::core {

enum class ErrorCode : std::uint8_t {
  kTruncated,            ///< the input ended inside an opcode, a line or a length-prefixed value
  kUnknownOpcode,        ///< a byte that is not a pickle opcode of protocols 0-5
  kBadArgument,          ///< an opcode argument the loader would reject (bad number text, bad quoting, bad UTF-8...)
  kUnsupportedProtocol,  ///< PROTO names a protocol above 5
  kBadFrame,             ///< FRAME claims more bytes than the input holds
  kStackUnderflow,       ///< an opcode needs more stack items than lie above the current MARK
  kMarkMissing,          ///< an opcode needs a MARK and there is none
  kMemoMiss,             ///< GET of a memo index that was never PUT
  kBadMemoIndex,         ///< negative or oversized memo index
  kTypeError,            ///< the loader would raise here (wrong operand type, unhashable key, odd item count...)
  kNoStop,               ///< the stream ended without STOP
  kLimitExceeded,        ///< a resource limit was hit (limits.hpp); detail names the limit
  kTimeout,              ///< the wall-time limit was hit
  kNotAPickle,           ///< the data does not start like any pickle or container brine reads
  kContainer,            ///< a container (zip...) could not be read
  kIo,                   ///< the file could not be opened or read
  kRules,                ///< a rule file is malformed
  kUsage,                ///< bad command-line usage
};

/// One line describing the code, for reports ("unexpected end of data").
std::string_view error_message(ErrorCode code);
/// Stable identifier used in rule ids and JSON ("truncated", "stack-underflow").
std::string_view error_slug(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kIo;
  std::uint64_t offset = 0;   ///< byte offset in the member (or file) where the problem is
  std::string member;         ///< container member, empty for the whole file
  std::string opcode;         ///< opcode name being executed, if any
  std::string detail;         ///< what exactly was wrong, quoting the offending fragment

  /// "stack underflow at offset 42 (REDUCE): needs 2 items above the mark, has 1"
  [[nodiscard]] std::string describe() const;
};

}  // namespace brine::core
