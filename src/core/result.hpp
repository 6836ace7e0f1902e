// Result<T>: a value or an Error, never an exception.
//
// It uses std::expected's member names (has_value, value, error, operator*, value_or) so that it
// can become an alias of std::expected<T, Error> once the toolchain has it (GCC 12 and clang 14
// with libstdc++ 12 do not). [[nodiscard]] makes a dropped error a compiler warning.
#pragma once

#include <cassert>
#include <type_traits>
#include <utility>
#include <variant>

#include "core/error.hpp"

namespace brine::core {

struct Unexpected {
  Error error;
};

inline Unexpected fail(ErrorCode code, std::uint64_t offset, std::string detail = {}) {
  return Unexpected{Error{code, offset, {}, {}, std::move(detail)}};
}
inline Unexpected fail(Error error) { return Unexpected{std::move(error)}; }

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : data_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Unexpected u) : data_(std::in_place_index<1>, std::move(u.error)) {}  // NOLINT

  [[nodiscard]] bool has_value() const { return data_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & { assert(has_value()); return std::get<0>(data_); }
  const T& value() const& { assert(has_value()); return std::get<0>(data_); }
  T&& value() && { assert(has_value()); return std::get<0>(std::move(data_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { assert(!has_value()); return std::get<1>(data_); }
  Error& error() { assert(!has_value()); return std::get<1>(data_); }

  template <typename U>
  T value_or(U&& fallback) const& {
    return has_value() ? value() : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  std::variant<T, Error> data_;
};

/// Result<void>: success or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Unexpected u) : error_(std::move(u.error)), failed_(true) {}  // NOLINT
  [[nodiscard]] bool has_value() const { return !failed_; }
  explicit operator bool() const { return has_value(); }
  const Error& error() const { assert(failed_); return error_; }
  Error& error() { assert(failed_); return error_; }

 private:
  Error error_;
  bool failed_ = false;
};

using Status = Result<void>;

}  // namespace brine::core

/// Evaluates a Result-returning expression; on error returns the error from the enclosing function.
#define BRINE_TRY(expr)                                                \
  do {                                                                 \
    auto brine_try_result_ = (expr);                                   \
    if (!brine_try_result_) return ::brine::core::fail(std::move(brine_try_result_.error())); \
  } while (false)

#define BRINE_CONCAT_INNER(a, b) a##b
#define BRINE_CONCAT(a, b) BRINE_CONCAT_INNER(a, b)
/// BRINE_TRY_ASSIGN(auto x, f()); declares x from f()'s value or returns its error.
#define BRINE_TRY_ASSIGN(decl, expr) BRINE_TRY_ASSIGN_IMPL(BRINE_CONCAT(brine_tmp_, __LINE__), decl, expr)
#define BRINE_TRY_ASSIGN_IMPL(tmp, decl, expr)                           \
  auto tmp = (expr);                                                     \
  if (!tmp) return ::brine::core::fail(std::move(tmp.error()));         \
  decl = std::move(*tmp)
