#include "core/error.hpp"

#include <fmt/format.h>

namespace brine::core {

namespace {
struct ErrorText {
  std::string_view slug;
  std::string_view message;
};

constexpr ErrorText kErrorText[] = {
    {"truncated", "unexpected end of data"},
    {"unknown-opcode", "unknown opcode"},
    {"bad-argument", "malformed opcode argument"},
    {"unsupported-protocol", "unsupported pickle protocol"},
    {"bad-frame", "FRAME length exceeds the data"},
    {"stack-underflow", "stack underflow"},
    {"mark-missing", "no MARK on the mark stack"},
    {"memo-miss", "memo index was never stored"},
    {"bad-memo-index", "invalid memo index"},
    {"type-error", "the loader would raise a type error"},
    {"no-stop", "pickle ends without STOP"},
    {"limit-exceeded", "resource limit exceeded"},
    {"timeout", "time limit exceeded"},
    {"not-a-pickle", "not a pickle or a supported container"},
    {"container", "container could not be read"},
    {"io", "file could not be read"},
    {"rules", "invalid rule file"},
    {"usage", "invalid usage"},
};
static_assert(std::size(kErrorText) == static_cast<std::size_t>(ErrorCode::kUsage) + 1,
              "every ErrorCode needs a text entry");
}  // namespace

std::string_view error_message(ErrorCode code) {
  return kErrorText[static_cast<std::size_t>(code)].message;
}

std::string_view error_slug(ErrorCode code) {
  return kErrorText[static_cast<std::size_t>(code)].slug;
}

std::string Error::describe() const {
  std::string out{error_message(code)};
  if (code != ErrorCode::kIo && code != ErrorCode::kRules && code != ErrorCode::kUsage) {
    out += fmt::format(" at offset {}", offset);
  }
  if (!opcode.empty()) out += fmt::format(" ({})", opcode);
  if (!member.empty()) out += fmt::format(" in {}", member);
  if (!detail.empty()) out += fmt::format(": {}", detail);
  return out;
}

}  // namespace brine::core
