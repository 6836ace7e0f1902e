// `brine scan --emit-safe-globals FILE`: the torch.serialization.add_safe_globals([...]) list a
// file needs to load with torch.load(weights_only=True), or why it never can (docs/weights-only.md).
#pragma once

#include <string>
#include <vector>

#include "core/limits.hpp"
#include "rules/rule_loader.hpp"

namespace CLI {
class App;
}

namespace brine::cli {

class SafeGlobalsOption {
 public:
  /// Adds --emit-safe-globals and --safe-globals-torch to the scan command.
  void add_to(CLI::App& scan);
  [[nodiscard]] bool requested() const { return emit_; }
  /// Exit 0: loads that way (with the list); 1: never loads that way, or the list names a global
  /// brine's denylist names; 2: usage.
  [[nodiscard]] int run(const std::vector<std::string>& paths, const rules::RuleOptions& rule_options,
                        const core::Limits& limits, const std::string& format) const;

 private:
  bool emit_ = false;
  std::string torch_ = "2";
};

}  // namespace brine::cli
