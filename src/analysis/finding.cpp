#include "analysis/finding.hpp"

#include <algorithm>

namespace brine::analysis {

std::string_view verdict_name(Verdict v) {
  switch (v) {
    case Verdict::kClean: return "clean";
    case Verdict::kUnapproved: return "unapproved";
    case Verdict::kError: return "error";
    case Verdict::kMalicious: return "malicious";
  }
  return "?";
}

Verdict verdict_of(const std::vector<Finding>& findings) {
  Verdict v = Verdict::kClean;
  for (const auto& f : findings) v = std::max(v, f.impact);
  return v;
}

}  // namespace brine::analysis
