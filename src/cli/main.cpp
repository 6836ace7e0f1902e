// brine: the command line. Parses arguments, wires the library's stages together, and maps
// verdicts to exit codes. Nothing here knows about pickle internals.
//
// Exit codes: 0 every file clean; 1 some file malicious or unapproved (scan --fail-on malicious:
// only malicious); 2 errors (unreadable or malformed input, a limit hit) — always — or bad usage.
#include <fnmatch.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>

#include "cli/cmd_rules.hpp"
#include "cli/cmd_safe_globals.hpp"
#include "cli/cmd_serve.hpp"
#include "cli/ordered_output.hpp"
#include "cli/parallel_walk.hpp"
#include "cli/walk.hpp"
#include "core/heap_pages.hpp"
#include "core/mapped_file.hpp"
#include "core/text.hpp"
#include "report/baseline.hpp"
#include "report/disassembly.hpp"
#include "report/inspect.hpp"
#include "report/report.hpp"
#include "report/sanitize_report.hpp"
#include "rules/rule_loader.hpp"
#include "sanitize/sanitize.hpp"
#include "scan/scanner.hpp"
#include "writer/output.hpp"

namespace {

namespace fs = std::filesystem;
using brine::analysis::Verdict;

constexpr int kExitClean = 0;
constexpr int kExitFindings = 1;
constexpr int kExitError = 2;

struct LimitFlags {
  brine::core::Limits limits;
  double timeout_seconds = 60;

  void add_to(CLI::App& app) {
    auto* g = "Limits (hitting one makes the file an `error`, never `clean`)";
    app.add_option("--max-opcodes", limits.max_opcodes, "opcodes executed per pickle")->group(g)->capture_default_str();
    app.add_option("--max-stack", limits.max_stack_depth, "VM stack items")->group(g)->capture_default_str();
    // Values the code cannot honour are refused at start-up: value references and depths are 32-bit.
    constexpr std::uint64_t k32 = std::numeric_limits<std::uint32_t>::max() - 1;
    app.add_option("--max-nesting", limits.max_nesting,
                   "open MARKs, and the depth of a container when the opcode that builds or fills it runs (walkers of "
                   "the finished graph have their own caps and report what they could not walk)")
        ->group(g)->capture_default_str()->check(CLI::Range(std::uint64_t{1}, k32));
    app.add_option("--max-memo", limits.max_memo_entries, "memo entries per pickle")->group(g)->capture_default_str();
    app.add_option("--max-values", limits.max_value_nodes, "symbolic values per pickle")->group(g)->capture_default_str()
        ->check(CLI::Range(std::uint64_t{1}, k32));
    app.add_option("--max-value-bytes", limits.max_value_bytes, "bytes of decoded text per pickle")->group(g)->capture_default_str();
    app.add_option("--max-string", limits.max_string_length, "length of one string/bytes argument")->group(g)->capture_default_str();
    app.add_option("--max-pickles", limits.max_pickles_per_file, "pickle streams per file")->group(g)->capture_default_str();
    app.add_option("--max-member-bytes", limits.max_member_bytes, "bytes read from one archive member")->group(g)->capture_default_str();
    app.add_option("--max-container-depth", limits.max_container_depth, "containers inside containers (zip in tar in gzip...)")
        ->group(g)->capture_default_str();
    app.add_option("--max-npy-header", limits.max_npy_header_bytes, "bytes of one .npy header")->group(g)->capture_default_str();
    app.add_option("--max-archive-entries", limits.max_archive_entries, "entries in one archive")->group(g)->capture_default_str();
    app.add_option("--max-compression-ratio", limits.max_compression_ratio,
                   "decompressed/compressed size of a member (checked past 64 MiB)")->group(g)->capture_default_str();
    app.add_option("--max-total-decompressed", limits.max_total_decompressed, "bytes decompressed for one file")
        ->group(g)->capture_default_str();
    app.add_option("--max-nested-depth", limits.max_nested_depth, "files inside files (bytes an approved loader deserializes)")
        ->group(g)->capture_default_str();
    app.add_option("--max-torchscript-tokens", limits.max_torchscript_tokens, "tokens of one TorchScript source file")
        ->group(g)->capture_default_str();
    app.add_option("--max-walk-visits", limits.max_walk_visits, "values the sanitize walk visits per pickle")
        ->group(g)->capture_default_str();
    app.add_option("--max-walk-depth", limits.max_walk_depth, "nesting depth of the names the sanitize walk gives")
        ->group(g)->capture_default_str();
    app.add_option("--max-metadata-depth", limits.max_metadata_depth,
                   "nesting depth of one metadata value (and of dict keys inside keys) sanitize writes as JSON")
        ->group(g)->capture_default_str()
        // The JSON library prints nested values recursively, and a key inside a key is one native
        // level: this cap keeps both far from the thread's stack limit.
        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1000}));
    app.add_option("--timeout", timeout_seconds, "wall-time seconds per file")->group(g)->capture_default_str()
        ->check(CLI::Range(0.001, 1e7));  // the deadline is a steady_clock time point: no overflow
  }
  brine::core::Limits get() const {
    brine::core::Limits l = limits;
    l.max_file_time = std::chrono::milliseconds(static_cast<std::int64_t>(timeout_seconds * 1000));
    return l;
  }
};

bool stdout_is_tty() { return ::isatty(1) == 1; }

/// The rules the options name, or nullptr after saying on stderr why they could not be loaded.
std::shared_ptr<const brine::rules::RuleSet> load_rules_or_report(const brine::rules::RuleOptions& options) {
  auto rules = brine::rules::load_rules(options);
  if (!rules) {
    std::cerr << "brine: " << brine::core::display_text(rules.error().detail) << '\n';
    return nullptr;
  }
  return *rules;
}

/// Exit status of a scan: 2 if anything could not be read (an `error` verdict, or a problem
/// outside the reports), else 1 if some file is at least as bad as `fail_on`, else 0.
int scan_exit_code(const brine::report::Summary& summary, bool other_errors = false, Verdict fail_on = Verdict::kUnapproved) {
  if (summary.errors != 0 || other_errors) return kExitError;
  if (summary.malicious != 0) return kExitFindings;
  if (summary.unapproved != 0 && fail_on == Verdict::kUnapproved) return kExitFindings;
  return kExitClean;
}

struct ScanFlags {
  std::vector<std::string> paths;
  std::string files_from;       ///< a file (or -) of paths, NUL- or newline-separated
  std::string format = "text", output, color = "auto", baseline, fail_on = "unapproved";
  bool quiet = false, verbose = false, no_hash = false;
  /// Named files no supported loader reads are skipped (listed) as in a walk: a pre-commit hook
  /// names every staged file, and a README is no more an error there than in a directory.
  bool skip_unrecognized = false;
  unsigned jobs = 1;
  brine::cli::WalkOptions walk;
};

/// Paths from --files-from: NUL-separated when the list holds a NUL (find -print0), else one per line.
bool read_path_list(const std::string& from, std::vector<std::string>& paths) {
  std::string text;
  if (from == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(from, std::ios::binary);
    if (!in) {
      std::cerr << "brine: cannot read --files-from " << brine::core::display_text(from) << '\n';
      return false;
    }
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const char sep = text.find('\0') != std::string::npos ? '\0' : '\n';
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find(sep, start);
    if (end == std::string::npos) end = text.size();
    std::string p = text.substr(start, end - start);
    if (sep == '\n' && !p.empty() && p.back() == '\r') p.pop_back();
    if (!p.empty()) paths.push_back(std::move(p));
    start = end + 1;
  }
  return true;
}

int run_scan(ScanFlags flags, const brine::rules::RuleOptions& rule_options, const LimitFlags& limit_flags) {
  const std::string& format = flags.format;
  const std::string& output = flags.output;
  if (!flags.files_from.empty() && !read_path_list(flags.files_from, flags.paths)) return kExitError;
  if (flags.paths.empty()) {
    std::cerr << "brine: nothing to scan (give paths or --files-from)\n";
    return kExitError;
  }
  std::optional<brine::report::Baseline> baseline;
  if (!flags.baseline.empty()) {
    auto loaded = brine::report::load_baseline(flags.baseline);
    if (!loaded) {
      std::cerr << "brine: " << brine::core::display_text(loaded.error().detail) << '\n';
      return kExitError;
    }
    baseline = std::move(*loaded);
  }
  auto rules = load_rules_or_report(rule_options);
  if (!rules) return kExitError;
  brine::scan::ScanOptions options;
  options.limits = limit_flags.get();
  // A baseline keys findings by the file's sha256: it is computed whenever one is used.
  // SARIF's fingerprints are keyed on it too (report/fingerprint.hpp): always computed for sarif.
  options.compute_sha256 = (!flags.no_hash && (format == "json" || format == "jsonl")) || baseline.has_value() || format == "sarif";
  const brine::scan::Scanner scanner(rules, options);

  std::ofstream file;
  if (!output.empty()) {
    file.open(output, std::ios::binary | std::ios::trunc);
    if (!file) {
      std::cerr << "brine: cannot write " << brine::core::display_text(output) << '\n';
      return kExitError;
    }
  }
  std::ostream& out = output.empty() ? std::cout : file;

  const auto start = std::chrono::steady_clock::now();
  brine::report::TextOptions text;
  text.quiet = flags.quiet;
  text.verbose = flags.verbose;
  text.color = output.empty() && (flags.color == "always" || (flags.color == "auto" && stdout_is_tty()));
  // Files met while walking a directory that no supported loader reads are not reported as
  // files, but they are listed (text -v, JSON) with the scan's reason, never dropped silently.
  auto skip_reason = [](const brine::scan::FileReport& r) {
    for (const auto& f : r.findings) {
      if (f.impact == Verdict::kError) return f.message;
    }
    return std::string("not a format any supported loader reads");
  };

  // The files are scanned while the directories are still being walked (cli/parallel_walk.hpp),
  // and all that can be done for one file is done on the thread that scanned it. Text is written
  // in the walk's order as soon as every earlier file is done (cli/ordered_output.hpp) and jsonl
  // as each file is done, so for them only counts are kept: memory does not grow with the number
  // of files, and little is left for one thread once the last file is scanned. json and sarif are
  // one document: their reports are kept, per thread (a cache line of its own: no shared writes
  // per file), and put back in the walk's order below.
  const bool one_document = format == "json" || format == "sarif";
  struct Scanned {
    std::size_t index;
    brine::scan::FileReport report;
  };
  struct alignas(64) PerThread {
    std::vector<Scanned> done;             ///< json, sarif
    brine::report::Summary counts;         ///< files reported, by verdict
    std::vector<brine::report::Skipped> skipped;
  };
  std::vector<PerThread> per_thread(flags.jobs);
  brine::cli::Walk walk(flags.paths, flags.walk);
  brine::cli::OrderedOutput ordered(out);
  std::mutex stream_lock;  // jsonl: each file's line is written as soon as it is done
  const std::size_t count =
      brine::cli::visit_while_walking(walk, flags.jobs, [&](unsigned worker, std::size_t index, brine::cli::WalkTarget&& target) {
        brine::scan::FileReport report = scanner.scan_path(target.path);
        if (baseline) brine::report::apply_baseline(*baseline, report);
        PerThread& mine = per_thread[worker];
        const bool shown = (target.explicit_file && !flags.skip_unrecognized) || report.recognized;
        if (!shown) {
          std::string reason = skip_reason(report);
          mine.skipped.push_back({std::move(report.path), std::move(reason)});
          if (format == "text") ordered.put(index, {});
          return;
        }
        brine::report::count_file(mine.counts, report);
        if (format == "text") {
          ordered.put(index, brine::report::text_lines(report, text));
        } else if (format == "jsonl") {
          const std::string line = brine::report::file_report_json(report);
          const std::lock_guard<std::mutex> lock(stream_lock);
          out << line << '\n';
          out.flush();
        } else {
          mine.done.push_back({index, std::move(report)});
        }
      });
  const brine::cli::WalkResult walked = walk.finish();
  for (const auto& e : walked.errors) std::cerr << "brine: " << brine::core::display_text(e) << '\n';

  brine::report::Summary summary;
  std::vector<brine::report::Skipped> skipped;
  for (const auto& s : walked.skipped) skipped.push_back({s.path, s.reason});
  std::vector<Scanned*> in_order(one_document ? count : 0, nullptr);
  for (auto& t : per_thread) {
    brine::report::add_counts(summary, t.counts);
    for (auto& s : t.skipped) skipped.push_back(std::move(s));
    for (auto& d : t.done) in_order[d.index] = &d;
  }
  std::vector<brine::scan::FileReport> shown;
  shown.reserve(summary.files);
  for (Scanned* d : in_order) {
    if (d != nullptr) shown.push_back(std::move(d->report));
  }
  std::sort(skipped.begin(), skipped.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
  summary.skipped = skipped.size();
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  summary.skipped_files = std::move(skipped);

  const int exit_code =
      scan_exit_code(summary, !walked.errors.empty(), flags.fail_on == "malicious" ? Verdict::kMalicious : Verdict::kUnapproved);
  if (format == "jsonl") {
    out << brine::report::summary_json_line(summary) << '\n';
  } else if (format == "json") {
    brine::report::write_json(out, shown, summary);
  } else if (format == "sarif") {
    brine::report::write_sarif(out, shown, summary, rules.get(), {exit_code, walked.errors});
  } else {
    brine::report::write_text_summary(out, summary, text);  // after every file's lines (ordered)
  }
  out.flush();
  return exit_code;
}

/// brine baseline: scan, and record every finding (but errors) as accepted.
int run_baseline(const std::vector<std::string>& paths, const std::string& output, const brine::rules::RuleOptions& rule_options,
                 const LimitFlags& limit_flags, bool follow) {
  auto rules = load_rules_or_report(rule_options);
  if (!rules) return kExitError;
  brine::scan::ScanOptions options;
  options.limits = limit_flags.get();
  options.compute_sha256 = true;
  const brine::scan::Scanner scanner(rules, options);
  brine::cli::WalkOptions walk_options;
  walk_options.follow_directory_links = follow;
  const auto walked = brine::cli::walk(paths, walk_options);
  for (const auto& e : walked.errors) std::cerr << "brine: " << brine::core::display_text(e) << '\n';
  std::vector<brine::scan::FileReport> reports;
  std::uint64_t errors = 0;
  for (const auto& t : walked.targets) {
    auto r = scanner.scan_path(t.path);
    if (!t.explicit_file && !r.recognized) continue;
    if (r.verdict == Verdict::kError) {
      ++errors;
      std::cerr << "brine: " << brine::core::display_text(r.path) << ": error verdict: its error findings are not accepted by a baseline\n";
    }
    reports.push_back(std::move(r));
  }
  auto baseline = brine::report::make_baseline(reports);
  if (!baseline) {
    std::cerr << "brine: " << brine::core::display_text(baseline.error().detail) << '\n';
    return kExitError;
  }
  std::ofstream file(output, std::ios::binary | std::ios::trunc);
  if (!file) {
    std::cerr << "brine: cannot write " << brine::core::display_text(output) << '\n';
    return kExitError;
  }
  brine::report::write_baseline(file, *baseline);
  file.flush();
  std::cerr << fmt::format("brine: {} finding{} of {} file{} recorded in {}\n", baseline->entries.size(),
                           baseline->entries.size() == 1 ? "" : "s", reports.size(), reports.size() == 1 ? "" : "s",
                           brine::core::display_text(output));
  return errors != 0 || !walked.errors.empty() ? kExitError : kExitClean;
}

/// brine disasm: the opcodes of every pickle the scan executes, then the scan's verdict.
int run_disasm(const std::string& path, const brine::rules::RuleOptions& rule_options, bool json, const LimitFlags& limit_flags) {
  auto rules = load_rules_or_report(rule_options);
  if (!rules) return kExitError;
  auto file = path == "-" ? brine::core::MappedFile::read_stream(0, limit_flags.limits.max_member_bytes)
                          : brine::core::MappedFile::open(path);
  if (!file) {
    std::cerr << "brine: " << brine::core::display_text(path) << ": " << brine::core::display_text(file.error().detail) << '\n';
    return kExitError;
  }
  brine::report::DisasmOptions options;
  options.json = json;
  options.limits = limit_flags.get();
  const bool ok = brine::report::write_disassembly(std::cout, file->bytes(), path, rules, options);
  return ok ? kExitClean : kExitError;
}

/// brine inspect: the scan, plus every pickle it executed in full (report/inspect.hpp).
int run_inspect(const std::vector<std::string>& paths, const brine::rules::RuleOptions& rule_options,
                const LimitFlags& limit_flags, bool json, std::uint64_t max_output) {
  auto rules = load_rules_or_report(rule_options);
  if (!rules) return kExitError;
  brine::scan::ScanOptions options;
  options.limits = limit_flags.get();
  options.compute_sha256 = json;
  brine::report::InspectJsonWriter writer(std::cout, max_output);
  bool first_run = true;
  if (json) {
    options.on_pickle = [&](const std::string& member, brine::core::Bytes, const brine::pickle::PickleRun& run) {
      writer.raw(first_run ? "\n" : ",\n");
      first_run = false;
      writer.write_run(member, run);
    };
  } else {
    options.on_pickle = [&](const std::string& member, brine::core::Bytes, const brine::pickle::PickleRun& run) {
      brine::report::write_run_text(std::cout, member, run);
      std::cout << '\n';
    };
  }
  const brine::scan::Scanner scanner(rules, options);

  std::vector<brine::scan::FileReport> reports;
  if (json) writer.raw(fmt::format("{{\"brine_version\":\"{}\",\"files\":[", BRINE_VERSION));
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < paths.size(); ++i) {
    if (json) {
      writer.raw(i ? ",\n{\"pickles\":[" : "\n{\"pickles\":[");
      first_run = true;
    } else {
      std::cout << "### " << brine::core::display_text(paths[i]) << "\n\n";
    }
    reports.push_back(scanner.scan_path(paths[i]));
    if (json) writer.raw(fmt::format("],\n\"report\":{}}}", brine::report::file_report_json(reports.back())));
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto summary = brine::report::summarize(reports, 0, seconds);
  if (json) {
    writer.raw(fmt::format("],\n\"truncated\":{}}}\n", writer.truncated()));
    writer.flush();
  } else {
    brine::report::TextOptions text;
    text.verbose = true;
    brine::report::write_text(std::cout, reports, summary, text);
  }
  std::cout.flush();
  if (json && writer.truncated()) std::cerr << "brine: output reached --max-output; later values are elided\n";
  return scan_exit_code(summary);
}

int run_rules(const brine::rules::RuleOptions& rule_options, const std::string& show) {
  if (!show.empty()) {
    for (const auto& f : brine::rules::builtin_rule_files()) {
      if (f.name == show || f.name == "packs/" + show) {
        std::cout << f.text;
        return kExitClean;
      }
    }
    std::cerr << "brine: no built-in rule file named " << show << '\n';
    return kExitError;
  }
  auto rules = load_rules_or_report(rule_options);
  if (!rules) return kExitError;
  std::cout << "loaded:";
  for (const auto& s : rules->sources()) std::cout << ' ' << s;
  std::cout << "\n" << rules->allow_entries().size() << " allow entries, " << rules->deny_entries().size() << " deny entries\n";
  std::cout << "built-in packs (--rules NAME):";
  for (const auto& p : brine::rules::builtin_pack_names()) std::cout << ' ' << p;
  std::cout << '\n';
  return kExitClean;
}

struct SanitizeFlags {
  std::string input, output, to, format = "text", report_path;
  brine::sanitize::SanitizeOptions options;
  bool no_dedupe = false, verbose = false, external_data = false;
};

int run_sanitize(SanitizeFlags flags, const brine::rules::RuleOptions& rule_options, const LimitFlags& limit_flags) {
  auto& o = flags.options;
  o.output = flags.output;
  o.format = !flags.to.empty() ? flags.to : brine::writer::format_from_extension(flags.output);
  if (o.format.empty()) {
    std::cerr << "brine: cannot tell the output format from '" << flags.output << "': use a .safetensors or .onnx name, or --to\n";
    return kExitError;
  }
  o.dedupe = !flags.no_dedupe;
  if (flags.external_data) o.write.onnx_inline_limit = 0;
  o.write.producer_version = BRINE_VERSION;
  auto rules = load_rules_or_report(rule_options);
  if (!rules) return kExitError;
  brine::scan::ScanOptions scan_options;
  scan_options.limits = limit_flags.get();
  scan_options.compute_sha256 = flags.format == "json";
  const brine::scan::Scanner scanner(rules, scan_options);
  const auto report = brine::sanitize::sanitize_file(flags.input, scanner, o);
  if (flags.format == "json") {
    brine::report::write_sanitize_json(std::cout, report);
  } else {
    brine::report::write_sanitize_text(std::cout, report, flags.verbose);
  }
  if (report.error) {
    std::cerr << "brine: " << brine::core::display_text(flags.input) << ": " << brine::core::display_text(report.error->describe()) << '\n';
    return report.refused ? kExitFindings : kExitError;
  }
  return kExitClean;
}

}  // namespace

int main(int argc, char** argv) {
  // Before anything allocates much: see core/heap_pages.hpp (a fresh 4 KiB page costs ~12 us here).
  brine::core::place_heap_on_huge_pages();
  // brine prints no local times. With TZ unset, glibc re-reads /etc/localtime under a
  // process-wide lock on every local-time conversion a library makes (archive member times).
  ::setenv("TZ", "UTC", 0);
  ::tzset();

  CLI::App app{
      "brine: reads pickle-based model files (.pt .pth .bin .ckpt .pkl, joblib, numpy) with a sandboxed\n"
      "symbolic pickle VM. Nothing in a file is ever executed: every import and call is recorded and\n"
      "judged against an allowlist of globals.",
      "brine"};
  app.set_version_flag("--version", std::string("brine ") + BRINE_VERSION);
  app.require_subcommand(1);
  app.footer("Exit codes: 0 all clean (sanitize: written), 1 some file malicious or unapproved (scan --fail-on malicious: only\n"
             "malicious; sanitize: not clean, nothing written), 2 some file unreadable (an error verdict, always) or bad usage.\n"
             "Rules: docs/rules.md. JSON report: docs/json-report.md.");

  // Only the subcommand named on the command line gets its options: building all of them (some
  // 150, each with its validators and strings) is a measurable share of every start. When no
  // known subcommand is named (`brine --help`, a typo), all are built, so help and errors are
  // unchanged. No top-level option takes a value, so the first word not starting with '-' is
  // the subcommand.
  std::string_view chosen;
  for (int i = 1; i < argc && chosen.empty(); ++i) {
    if (argv[i][0] != '-') chosen = argv[i];
  }
  static constexpr std::string_view kSubcommands[] = {"scan", "baseline", "disasm", "inspect", "sanitize", "rules", "serve"};
  const bool known = std::find(std::begin(kSubcommands), std::end(kSubcommands), chosen) != std::end(kSubcommands);
  auto wanted = [&](std::string_view name) { return !known || chosen == name; };
  // The same for the 20 limit flags, a third of what start-up spends building options: they are
  // built when the command line names one (every limit flag starts with --max- or is --timeout)
  // or asks for help, so setting a limit, a misspelt limit and the help text are unchanged.
  bool limits_named = !known;
  for (int i = 1; i < argc && !limits_named; ++i) {
    const std::string_view arg = argv[i];
    const bool short_flags = arg.size() > 1 && arg[0] == '-' && arg[1] != '-';  // -h, or -h among -qh
    limits_named = arg.starts_with("--max-") || arg.starts_with("--timeout") || arg == "--help" || arg == "--help-all" ||
                   (short_flags && arg.find('h') != std::string_view::npos);
  }

  // scan
  auto* scan = app.add_subcommand("scan", "Scan files or directories and give each a verdict: clean, unapproved, malicious or error.");
  ScanFlags sf_scan;
  sf_scan.jobs = std::max(1u, std::thread::hardware_concurrency());
  brine::rules::RuleOptions rule_options;
  bool no_default = false, follow = false;
  LimitFlags limits;
  brine::cli::WalkFilter filter;
  brine::cli::SafeGlobalsOption safe_globals;
  if (wanted("scan")) {
    scan->add_option("paths", sf_scan.paths, "files or directories (directories are walked recursively; - reads stdin)");
    scan->add_option("--files-from", sf_scan.files_from,
                     "also scan the paths listed in FILE (- reads stdin): NUL-separated if the list holds a NUL (find -print0), "
                     "else one per line");
    scan->add_option("-f,--format", sf_scan.format,
                     "report format: text, json (one document), jsonl (one line per file as soon as it is done, then a summary "
                     "line), sarif (SARIF 2.1.0 for code scanning)")
        ->check(CLI::IsMember({"text", "json", "jsonl", "sarif"}))->capture_default_str();
    scan->add_option("-o,--output", sf_scan.output, "write the report to FILE instead of stdout");
    scan->add_option("--fail-on", sf_scan.fail_on,
                     "the least severe verdict that makes the exit status 1: unapproved (unapproved or malicious) or malicious; an "
                     "error verdict always exits 2")
        ->check(CLI::IsMember({"unapproved", "malicious"}))->capture_default_str();
    scan->add_option("--baseline", sf_scan.baseline,
                     "suppress the findings recorded in this baseline file (brine baseline): matched by the file's sha256, rule, "
                     "global, member and offset, never by path; error findings are never suppressed");
    scan->add_option("--rules", rule_options.rule_files,
                     "enable a built-in rule pack (torch-full-model, sklearn, training-checkpoint) or load a rule FILE; repeatable")
        ->allow_extra_args(false);
    scan->add_option("--allow", rule_options.allow, "approve one global: module.qualname[:use,use...] (uses: reference, call, "
                                                    "instantiate, build, setitem, append; default all); repeatable")
        ->allow_extra_args(false);
    scan->add_flag("--no-default-rules", no_default, "do not load rules/default.json (the denylist and aliases stay)");
    scan->add_flag("--skip-unrecognized", sf_scan.skip_unrecognized,
                   "treat named files no supported loader reads (text, images, empty files) as a directory walk does: "
                   "skipped and listed by -v, not errors");
    scan->add_flag("-q,--quiet", sf_scan.quiet, "text: list only files that are not clean");
    scan->add_flag("-v,--verbose", sf_scan.verbose, "text: also informational findings and archive members");
    scan->add_option("--color", sf_scan.color, "text colour")->check(CLI::IsMember({"auto", "always", "never"}))->capture_default_str();
    scan->add_option("-j,--jobs", sf_scan.jobs, "files scanned in parallel")->check(CLI::Range(1u, 1024u))->capture_default_str();
    scan->add_flag("--no-hash", sf_scan.no_hash, "json/jsonl: skip sha256 (it reads every byte of every file; a baseline and sarif need it)");
    scan->add_flag("--follow-symlinks", follow,
                   "directory walks: also follow links to directories (loops are detected by device and inode); links to "
                   "files are always scanned");
    scan->add_option("--include", filter.include,
                     "directory walks: scan only files matching this glob (a pattern with '/' matches the path below the "
                     "directory, one without matches the file name); repeatable")
        ->allow_extra_args(false);
    scan->add_option("--exclude", filter.exclude, "directory walks: skip files and directories matching this glob; repeatable")
        ->allow_extra_args(false);
    if (limits_named) limits.add_to(*scan);
    safe_globals.add_to(*scan);
  }

  // baseline
  auto* baseline_cmd = app.add_subcommand(
      "baseline", "Record the findings of files as accepted (a baseline for scan --baseline), keyed by each file's sha256.");
  std::vector<std::string> baseline_paths;
  std::string baseline_output = "brine-baseline.json";
  brine::rules::RuleOptions baseline_rules;
  bool baseline_no_default = false, baseline_follow = false;
  LimitFlags baseline_limits;
  if (wanted("baseline")) {
    baseline_cmd->add_option("paths", baseline_paths, "files or directories")->required();
    baseline_cmd->add_option("-o,--output", baseline_output, "the baseline file to write")->capture_default_str();
    baseline_cmd->add_option("--rules", baseline_rules.rule_files, "as for scan; repeatable")->allow_extra_args(false);
    baseline_cmd->add_option("--allow", baseline_rules.allow, "as for scan; repeatable")->allow_extra_args(false);
    baseline_cmd->add_flag("--no-default-rules", baseline_no_default, "as for scan");
    baseline_cmd->add_flag("--follow-symlinks", baseline_follow, "as for scan");
    if (limits_named) baseline_limits.add_to(*baseline_cmd);
  }

  // disasm
  auto* disasm = app.add_subcommand(
      "disasm", "List the opcodes of exactly the pickles `brine scan` executes in a file (every container member, compressed "
                "and nested ones too), then the scan's verdict and findings.");
  std::string disasm_path;
  bool disasm_json = false, disasm_no_default = false;
  brine::rules::RuleOptions disasm_rules;
  LimitFlags disasm_limits;
  if (wanted("disasm")) {
    disasm->add_option("file", disasm_path, "file to list (- reads stdin)")->required();
    disasm->add_flag("--json", disasm_json, "machine-readable listing with exact argument values (no verdict)");
    disasm->add_option("--rules", disasm_rules.rule_files, "enable a built-in rule pack or load a rule FILE; repeatable")
        ->allow_extra_args(false);
    disasm->add_option("--allow", disasm_rules.allow, "approve one global: module.qualname[:use,use...]; repeatable")
        ->allow_extra_args(false);
    disasm->add_flag("--no-default-rules", disasm_no_default, "do not load rules/default.json");
    if (limits_named) disasm_limits.add_to(*disasm);
  }

  // inspect
  auto* inspect = app.add_subcommand(
      "inspect", "Show what each pickle in a file would do: every import, call, BUILD and item assignment, and the object it "
                 "builds (a Python-like reconstruction, or --json), followed by the scan's verdict.");
  std::vector<std::string> inspect_paths;
  bool inspect_json = false, inspect_no_default = false;
  std::uint64_t inspect_max_output = 256ull << 20;
  brine::rules::RuleOptions inspect_rules;
  LimitFlags inspect_limits;
  if (wanted("inspect")) {
    inspect->add_option("files", inspect_paths, "files to inspect (- reads stdin)")->required();
    inspect->add_flag("--json", inspect_json, "the full value tree and event list of every pickle (docs/inspect.md)");
    inspect->add_option("--max-output", inspect_max_output, "json: bytes written before later values are elided")
        ->capture_default_str();
    inspect->add_option("--rules", inspect_rules.rule_files, "enable a built-in rule pack or load a rule FILE; repeatable")
        ->allow_extra_args(false);
    inspect->add_option("--allow", inspect_rules.allow, "approve one global: module.qualname[:use,use...]; repeatable")
        ->allow_extra_args(false);
    inspect->add_flag("--no-default-rules", inspect_no_default, "do not load rules/default.json");
    if (limits_named) inspect_limits.add_to(*inspect);
  }

  // sanitize
  auto* sanitize = app.add_subcommand(
      "sanitize", "Write the tensors of a checkpoint as safetensors or ONNX, from brine's symbolic reading (nothing is executed).");
  SanitizeFlags sf;
  brine::rules::RuleOptions sanitize_rules;
  bool sanitize_no_default = false;
  LimitFlags sanitize_limits;
  if (wanted("sanitize")) {
    sanitize->add_option("input", sf.input, "checkpoint: torch zip or legacy, pickle, joblib, .npy/.npz (compressed too)")->required();
    sanitize->add_option("-o,--output", sf.output, "output file (.safetensors or .onnx); refused if it exists unless --force")->required();
    sanitize->add_option("--to", sf.to, "output format, instead of the extension")->check(CLI::IsMember({"safetensors", "onnx"}));
    sanitize->add_flag("--salvage", sf.options.salvage,
                       "write the tensors of approved rebuild calls even if the scan is not clean; everything else is dropped and reported");
    sanitize->add_flag("--force", sf.options.write.force, "replace an existing output file");
    sanitize->add_flag("--verify", sf.options.verify, "re-read the output and compare every tensor's bytes with the source");
    sanitize->add_option("--strip-prefix", sf.options.strip_prefix, "remove this prefix from tensor names (e.g. 'state_dict.')");
    sanitize->add_option("--select", sf.options.select, "write only tensors (and metadata) whose name matches this glob; repeatable")
        ->allow_extra_args(false);
    sanitize->add_option("--name", sf.options.bare_name, "name of the tensor when the file holds a single bare tensor or array")
        ->capture_default_str();
    sanitize->add_flag("--no-dedupe", sf.no_dedupe, "write tied tensors (same view of the same storage) once per name");
    sanitize->add_option("--max-output-bytes", sf.options.max_output_bytes,
                         "tensor bytes the output may hold (views can overlap, so a small file can name far more bytes than "
                         "it holds); 0: 8x the input's size, at least 1 GiB")
        ->capture_default_str();
    sanitize->add_flag("--external-data", sf.external_data, "ONNX: put tensor bytes in '<output>.data' (automatic above 2 GB)");
    sanitize->add_option("-f,--format", sf.format, "report format on stdout")->check(CLI::IsMember({"text", "json"}))->capture_default_str();
    sanitize->add_flag("-v,--verbose", sf.verbose, "text: list every tensor written");
    sanitize->add_option("--rules", sanitize_rules.rule_files, "enable a built-in rule pack or load a rule FILE; repeatable")
        ->allow_extra_args(false);
    sanitize->add_option("--allow", sanitize_rules.allow, "approve one global: module.qualname[:use,use...]; repeatable")
        ->allow_extra_args(false);
    sanitize->add_flag("--no-default-rules", sanitize_no_default, "do not load rules/default.json");
    if (limits_named) sanitize_limits.add_to(*sanitize);
  }

  // rules
  auto* rules_cmd = app.add_subcommand("rules", "Check rule files and list the built-in packs.");
  std::string show;
  brine::rules::RuleOptions rules_cmd_options;
  brine::cli::RulesSubcommands rules_subcommands;
  if (wanted("rules")) {
    rules_cmd->add_option("--rules", rules_cmd_options.rule_files, "pack name or rule file to load and check; repeatable")
        ->allow_extra_args(false);
    rules_cmd->add_option("--show", show, "print a built-in rule file (default, denylist, aliases, or a pack name)");
    rules_subcommands.add_to(*rules_cmd);
  }

  // serve
  auto* serve_cmd = app.add_subcommand(
      "serve", "Scan and sanitize over HTTP: POST a file to /v1/scan or /v1/sanitize (docs/serve.md). Listens on loopback "
               "unless told otherwise; SIGTERM drains.");
  brine::cli::ServeCommand serve_command;
  brine::rules::RuleOptions serve_rules;
  bool serve_no_default = false;
  LimitFlags serve_limits;
  if (wanted("serve")) {
    serve_command.add_to(*serve_cmd);
    serve_cmd->add_option("--rules", serve_rules.rule_files, "rule packs or files every request uses; repeatable")
        ->allow_extra_args(false);
    serve_cmd->add_option("--allow", serve_rules.allow, "approve one global for every request: module.qualname[:use,...]; repeatable")
        ->allow_extra_args(false);
    serve_cmd->add_flag("--no-default-rules", serve_no_default, "do not load rules/default.json");
    if (limits_named) serve_limits.add_to(*serve_cmd);
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitClean : kExitError;
  }
  rule_options.use_default = !no_default;
  if (scan->parsed() && safe_globals.requested()) return safe_globals.run(sf_scan.paths, rule_options, limits.get(), sf_scan.format);
  if (scan->parsed()) {
    sf_scan.walk.follow_directory_links = follow;
    sf_scan.walk.filter = filter;
    return run_scan(std::move(sf_scan), rule_options, limits);
  }
  if (baseline_cmd->parsed()) {
    baseline_rules.use_default = !baseline_no_default;
    return run_baseline(baseline_paths, baseline_output, baseline_rules, baseline_limits, baseline_follow);
  }
  if (sanitize->parsed()) {
    sanitize_rules.use_default = !sanitize_no_default;
    return run_sanitize(sf, sanitize_rules, sanitize_limits);
  }
  if (disasm->parsed()) {
    disasm_rules.use_default = !disasm_no_default;
    return run_disasm(disasm_path, disasm_rules, disasm_json, disasm_limits);
  }
  if (inspect->parsed()) {
    inspect_rules.use_default = !inspect_no_default;
    return run_inspect(inspect_paths, inspect_rules, inspect_limits, inspect_json, inspect_max_output);
  }
  if (serve_cmd->parsed()) {
    serve_rules.use_default = !serve_no_default;
    return brine::cli::serve_main(argv, serve_command, serve_rules, serve_limits.get());
  }
  if (auto code = rules_subcommands.run()) return *code;
  if (rules_cmd->parsed()) return run_rules(rules_cmd_options, show);
  return kExitError;
}
