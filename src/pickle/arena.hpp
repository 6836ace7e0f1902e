// Owns the bytes the decoder has to build (decoded protocol-0 text, big integers from text),
// so that values can keep string_views to them. Charged against Limits::max_value_bytes.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

namespace brine::pickle {

class StringArena {
 public:
  /// Stores `s` and returns a view that lives as long as the arena.
  std::string_view keep(std::string s) {
    bytes_ += s.size();
    return strings_.emplace_back(std::move(s));
  }
  [[nodiscard]] std::uint64_t bytes() const { return bytes_; }

 private:
  std::deque<std::string> strings_;  // deque: stored strings never move
  std::uint64_t bytes_ = 0;
};

}  // namespace brine::pickle
