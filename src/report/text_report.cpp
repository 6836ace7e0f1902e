#include <fmt/format.h>

#include <iterator>

#include "core/text.hpp"
#include "report/report.hpp"

namespace brine::report {

namespace {
std::string_view color_of(analysis::Verdict v) {
  switch (v) {
    case analysis::Verdict::kClean: return "\033[32m";
    case analysis::Verdict::kUnapproved: return "\033[33m";
    case analysis::Verdict::kError: return "\033[35m";
    case analysis::Verdict::kMalicious: return "\033[1;31m";
  }
  return "";
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
  return out;
}
}  // namespace

// Every string that can come from the input (paths, member names, globals, calls, messages that
// quote the file) goes through core::display_text: the only control bytes this writes are its
// own newlines and, with colour on, its own SGR codes.
using core::display_text;

std::string text_lines(const scan::FileReport& f, const TextOptions& options) {
  if (options.quiet && f.verdict == analysis::Verdict::kClean) return {};
  fmt::memory_buffer b;
  auto out = std::back_inserter(b);
  const std::string verdict = upper(analysis::verdict_name(f.verdict));
  const std::string_view on = options.color ? color_of(f.verdict) : "";
  const std::string_view off = options.color ? "\033[0m" : "";
  fmt::format_to(out, "{}: {}{}{} ({}, {} bytes, {} pickle{})\n", display_text(f.path), on, verdict, off, display_text(f.container), f.size,
                 f.pickles, f.pickles == 1 ? "" : "s");
  for (const auto& x : f.findings) {
    if (x.impact == analysis::Verdict::kClean && !options.verbose) continue;
    std::string where = x.member.empty() ? fmt::format("offset {}", x.offset) : fmt::format("{} offset {}", display_text(x.member), x.offset);
    if (!x.opcode.empty()) where += fmt::format(" ({})", display_text(x.opcode));
    fmt::format_to(out, "  {:<8} {}", rules::severity_name(x.severity), display_text(x.rule));
    if (!x.global.empty()) fmt::format_to(out, "  {}", display_text(x.global));
    if (!x.use.empty()) fmt::format_to(out, "  [{}]", display_text(x.use));
    fmt::format_to(out, "  at {}", where);
    if (x.count > 1) fmt::format_to(out, "  (x{})", x.count);
    b.push_back('\n');
    if (!x.call.empty()) fmt::format_to(out, "           {}\n", display_text(x.call));
    fmt::format_to(out, "           {}\n", display_text(x.message));
  }
  if (options.verbose) {
    for (const auto& m : f.members) {
      fmt::format_to(out, "  member {} ({}, {} bytes{})\n", display_text(m.name), display_text(m.format), m.size, m.scanned ? ", scanned" : "");
    }
  }
  return fmt::to_string(b);
}

void write_text_summary(std::ostream& out, const Summary& summary, const TextOptions& options) {
  if (options.verbose) {
    for (const auto& s : summary.skipped_files) out << fmt::format("skipped {}: {}\n", display_text(s.path), display_text(s.reason));
  }
  out << fmt::format("{} file{}: {} clean, {} unapproved, {} malicious, {} error{}", summary.files, summary.files == 1 ? "" : "s",
                     summary.clean, summary.unapproved, summary.malicious, summary.errors, summary.errors == 1 ? "" : "s");
  if (summary.skipped != 0) out << fmt::format(", {} skipped{}", summary.skipped, options.verbose ? "" : " (-v lists them)");
  if (summary.suppressed != 0) out << fmt::format(", {} finding{} accepted by the baseline", summary.suppressed, summary.suppressed == 1 ? "" : "s");
  out << fmt::format(" in {:.3f}s\n", summary.seconds);
}

void write_text(std::ostream& out, const std::vector<scan::FileReport>& files, const Summary& summary, const TextOptions& options) {
  for (const auto& f : files) out << text_lines(f, options);
  write_text_summary(out, summary, options);
}

}  // namespace brine::report
