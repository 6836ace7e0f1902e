// Report writers: text for people, JSON for tools (schema in docs/json-report.md).
// Only this layer and the CLI know about output formats.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "scan/scanner.hpp"

namespace brine::report {

/// An entry a directory walk did not scan, and why (never dropped silently).
struct Skipped {
  std::string path;
  std::string reason;
};

struct Summary {
  std::uint64_t files = 0, clean = 0, unapproved = 0, malicious = 0, errors = 0, skipped = 0;
  std::uint64_t suppressed = 0;  ///< findings a baseline accepted (scan --baseline)
  double seconds = 0;
  std::vector<Skipped> skipped_files;  ///< listed under text -v and in JSON
};
Summary summarize(const std::vector<scan::FileReport>& files, std::uint64_t skipped, double seconds);
/// Adds one reported file to `s` (its verdict and suppressed findings), as summarize does for each.
void count_file(Summary& s, const scan::FileReport& file);
/// Adds the counts of `part` (files, verdicts, skipped, suppressed) to `s`.
void add_counts(Summary& s, const Summary& part);

struct TextOptions {
  bool quiet = false;    ///< only files that are not clean, and the summary
  bool color = false;
  bool verbose = false;  ///< also informational findings and members
};
void write_text(std::ostream& out, const std::vector<scan::FileReport>& files, const Summary& summary, const TextOptions& options);
/// The parts of write_text: one file's lines ("" for a clean file under quiet), then, after every
/// file's, the skipped list (verbose) and the summary line. A scan of many files renders each
/// file's lines on the thread that scanned it.
std::string text_lines(const scan::FileReport& file, const TextOptions& options);
void write_text_summary(std::ostream& out, const Summary& summary, const TextOptions& options);

/// {"files": [...], "summary": {...}} — see docs/json-report.md.
void write_json(std::ostream& out, const std::vector<scan::FileReport>& files, const Summary& summary);
/// One file's entry of that report, as compact JSON text (also one line of `--format jsonl`).
std::string file_report_json(const scan::FileReport& file);
/// The summary object of `--format jsonl`'s last line: {"summary": {...}, "skipped": [...]}.
std::string summary_json_line(const Summary& summary);

/// What a SARIF run says about the invocation beyond the file reports.
struct SarifRun {
  int exit_code = 0;
  std::vector<std::string> errors;  ///< problems outside the reports (paths the walk could not read)
};
/// SARIF 2.1.0 — see docs/sarif.md. `rules` (may be null) describes deny rules; the files' sha256
/// must be computed for stable fingerprints (report/fingerprint.hpp).
void write_sarif(std::ostream& out, const std::vector<scan::FileReport>& files, const Summary& summary,
                 const rules::RuleSet* rules, const SarifRun& run);

}  // namespace brine::report
