#include "cli/ordered_output.hpp"

#include <utility>

namespace brine::cli {

void OrderedOutput::put(std::size_t index, std::string text) {
  const std::lock_guard<std::mutex> lock(mutex_);
  if (index != next_) {
    waiting_.emplace(index, std::move(text));
    return;
  }
  out_ << text;
  ++next_;
  // The targets given ahead of this one that are now next in line.
  for (auto it = waiting_.begin(); it != waiting_.end() && it->first == next_; it = waiting_.erase(it)) {
    out_ << it->second;
    ++next_;
  }
}

std::size_t OrderedOutput::written() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return next_;
}

}  // namespace brine::cli
