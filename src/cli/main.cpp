// brine: the command line. Parses arguments, wires the library's stages together, and maps
// verdicts to exit codes. Nothing here knows about pickle internals.
//
// Exit codes: 0 every file clean; 1 some file malicious or unapproved; 2 errors (unreadable or
// malformed input, a limit hit) or bad usage.
#include <fnmatch.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <thread>

#include "cli/cmd_rules.hpp"
#include "cli/cmd_safe_globals.hpp"
#include "cli/walk.hpp"
#include "core/mapped_file.hpp"
#include "core/text.hpp"
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

/// Exit status of a scan: findings outrank errors (`other_errors`: problems outside the reports).
int scan_exit_code(const brine::report::Summary& summary, bool other_errors = false) {
  if (summary.malicious != 0 || summary.unapproved != 0) return kExitFindings;
  if (summary.errors != 0 || other_errors) return kExitError;
  return kExitClean;
}

int run_scan(const std::vector<std::string>& paths, const brine::rules::RuleOptions& rule_options, const LimitFlags& limit_flags,
             const std::string& format, const std::string& output, bool quiet, bool verbose, const std::string& color,
             unsigned jobs, bool no_hash, const brine::cli::WalkOptions& walk_options) {
  auto rules = load_rules_or_report(rule_options);
  if (!rules) return kExitError;
  brine::scan::ScanOptions options;
  options.limits = limit_flags.get();
  options.compute_sha256 = !no_hash && format == "json";
  const brine::scan::Scanner scanner(rules, options);

  const auto start = std::chrono::steady_clock::now();
  brine::cli::WalkResult walked = brine::cli::walk(paths, walk_options);
  const std::vector<brine::cli::WalkTarget>& targets = walked.targets;
  for (const auto& e : walked.errors) std::cerr << "brine: " << brine::core::display_text(e) << '\n';

  std::vector<brine::scan::FileReport> reports(targets.size());
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    for (std::size_t i; (i = next.fetch_add(1)) < targets.size();) reports[i] = scanner.scan_path(targets[i].path);
  };
  const unsigned n = std::max(1u, std::min<unsigned>(jobs, static_cast<unsigned>(targets.size())));
  std::vector<std::thread> threads;
  for (unsigned t = 1; t < n; ++t) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();

  // Files met while walking a directory that no supported loader reads are not reported as
  // files, but they are listed (text -v, JSON) with the scan's reason, never dropped silently.
  std::vector<brine::scan::FileReport> shown;
  std::vector<brine::report::Skipped> skipped;
  for (const auto& s : walked.skipped) skipped.push_back({s.path, s.reason});
  for (std::size_t i = 0; i < reports.size(); ++i) {
    if (!targets[i].explicit_file && !reports[i].recognized) {
      std::string reason = "not a format any supported loader reads";
      for (const auto& f : reports[i].findings) {
        if (f.impact == Verdict::kError) {
          reason = f.message;
          break;
        }
      }
      skipped.push_back({reports[i].path, std::move(reason)});
      continue;
    }
    shown.push_back(std::move(reports[i]));
  }
  std::sort(skipped.begin(), skipped.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  auto summary = brine::report::summarize(shown, skipped.size(), seconds);
  summary.skipped_files = std::move(skipped);

  std::ofstream file;
  if (!output.empty()) {
    file.open(output, std::ios::binary | std::ios::trunc);
    if (!file) {
      std::cerr << "brine: cannot write " << output << '\n';
      return kExitError;
    }
  }
  std::ostream& out = output.empty() ? std::cout : file;
  if (format == "json") {
    brine::report::write_json(out, shown, summary);
  } else {
    brine::report::TextOptions text;
    text.quiet = quiet;
    text.verbose = verbose;
    text.color = output.empty() && (color == "always" || (color == "auto" && stdout_is_tty()));
    brine::report::write_text(out, shown, summary, text);
  }
  out.flush();
  return scan_exit_code(summary, !walked.errors.empty());
}

int run_disasm(const std::string& path, bool json, const LimitFlags& limit_flags) {
  auto file = path == "-" ? brine::core::MappedFile::read_stream(0, limit_flags.limits.max_member_bytes)
                          : brine::core::MappedFile::open(path);
  if (!file) {
    std::cerr << "brine: " << brine::core::display_text(path) << ": " << brine::core::display_text(file.error().detail) << '\n';
    return kExitError;
  }
  brine::report::DisasmOptions options;
  options.json = json;
  options.limits = limit_flags.get();
  const bool ok = brine::report::write_disassembly(std::cout, file->bytes(), path, options);
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
  // libzip converts every entry's DOS time with mktime(); with TZ unset glibc re-reads
  // /etc/localtime for each call under a process-wide lock. brine prints no local times.
  ::setenv("TZ", "UTC", 0);
  ::tzset();

  CLI::App app{
      "brine: reads pickle-based model files (.pt .pth .bin .ckpt .pkl, joblib, numpy) with a sandboxed\n"
      "symbolic pickle VM. Nothing in a file is ever executed: every import and call is recorded and\n"
      "judged against an allowlist of globals.",
      "brine"};
  app.set_version_flag("--version", std::string("brine ") + BRINE_VERSION);
  app.require_subcommand(1);
  app.footer("Exit codes: 0 all clean (sanitize: written), 1 some file malicious or unapproved (sanitize: not clean, nothing\n"
             "written), 2 errors or bad usage.\n"
             "Rules: docs/rules.md. JSON report: docs/json-report.md.");

  // scan
  auto* scan = app.add_subcommand("scan", "Scan files or directories and give each a verdict: clean, unapproved, malicious or error.");
  std::vector<std::string> paths;
  brine::rules::RuleOptions rule_options;
  bool no_default = false, quiet = false, verbose = false, no_hash = false, follow = false;
  std::string format = "text", output, color = "auto";
  unsigned jobs = std::max(1u, std::thread::hardware_concurrency());
  LimitFlags limits;
  scan->add_option("paths", paths, "files or directories (directories are walked recursively; - reads stdin)")->required();
  scan->add_option("-f,--format", format, "report format")->check(CLI::IsMember({"text", "json"}))->capture_default_str();
  scan->add_option("-o,--output", output, "write the report to FILE instead of stdout");
  scan->add_option("--rules", rule_options.rule_files,
                   "enable a built-in rule pack (torch-full-model, sklearn, training-checkpoint) or load a rule FILE; repeatable")
      ->allow_extra_args(false);
  scan->add_option("--allow", rule_options.allow, "approve one global: module.qualname[:use,use...] (uses: reference, call, "
                                                  "instantiate, build, setitem, append; default all); repeatable")
      ->allow_extra_args(false);
  scan->add_flag("--no-default-rules", no_default, "do not load rules/default.json (the denylist and aliases stay)");
  scan->add_flag("-q,--quiet", quiet, "text: list only files that are not clean");
  scan->add_flag("-v,--verbose", verbose, "text: also informational findings and archive members");
  scan->add_option("--color", color, "text colour")->check(CLI::IsMember({"auto", "always", "never"}))->capture_default_str();
  scan->add_option("-j,--jobs", jobs, "files scanned in parallel")->check(CLI::Range(1u, 1024u))->capture_default_str();
  scan->add_flag("--no-hash", no_hash, "json: skip sha256 (it reads every byte of every file)");
  scan->add_flag("--follow-symlinks", follow,
                 "directory walks: also follow links to directories (loops are detected by device and inode); links to "
                 "files are always scanned");
  brine::cli::WalkFilter filter;
  scan->add_option("--include", filter.include,
                   "directory walks: scan only files matching this glob (a pattern with '/' matches the path below the "
                   "directory, one without matches the file name); repeatable")
      ->allow_extra_args(false);
  scan->add_option("--exclude", filter.exclude, "directory walks: skip files and directories matching this glob; repeatable")
      ->allow_extra_args(false);
  limits.add_to(*scan);
  brine::cli::SafeGlobalsOption safe_globals;
  safe_globals.add_to(*scan);

  // disasm
  auto* disasm = app.add_subcommand("disasm", "List the opcodes of every pickle in a file (one listing per pickle member of a zip).");
  std::string disasm_path;
  bool disasm_json = false;
  LimitFlags disasm_limits;
  disasm->add_option("file", disasm_path, "file to list (- reads stdin)")->required();
  disasm->add_flag("--json", disasm_json, "machine-readable listing with exact argument values");
  disasm_limits.add_to(*disasm);

  // inspect
  auto* inspect = app.add_subcommand(
      "inspect", "Show what each pickle in a file would do: every import, call, BUILD and item assignment, and the object it "
                 "builds (a Python-like reconstruction, or --json), followed by the scan's verdict.");
  std::vector<std::string> inspect_paths;
  bool inspect_json = false, inspect_no_default = false;
  std::uint64_t inspect_max_output = 256ull << 20;
  brine::rules::RuleOptions inspect_rules;
  LimitFlags inspect_limits;
  inspect->add_option("files", inspect_paths, "files to inspect (- reads stdin)")->required();
  inspect->add_flag("--json", inspect_json, "the full value tree and event list of every pickle (docs/inspect.md)");
  inspect->add_option("--max-output", inspect_max_output, "json: bytes written before later values are elided")
      ->capture_default_str();
  inspect->add_option("--rules", inspect_rules.rule_files, "enable a built-in rule pack or load a rule FILE; repeatable")
      ->allow_extra_args(false);
  inspect->add_option("--allow", inspect_rules.allow, "approve one global: module.qualname[:use,use...]; repeatable")
      ->allow_extra_args(false);
  inspect->add_flag("--no-default-rules", inspect_no_default, "do not load rules/default.json");
  inspect_limits.add_to(*inspect);

  // sanitize
  auto* sanitize = app.add_subcommand(
      "sanitize", "Write the tensors of a checkpoint as safetensors or ONNX, from brine's symbolic reading (nothing is executed).");
  SanitizeFlags sf;
  brine::rules::RuleOptions sanitize_rules;
  bool sanitize_no_default = false;
  LimitFlags sanitize_limits;
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
  sanitize->add_flag("--external-data", sf.external_data, "ONNX: put tensor bytes in '<output>.data' (automatic above 2 GB)");
  sanitize->add_option("-f,--format", sf.format, "report format on stdout")->check(CLI::IsMember({"text", "json"}))->capture_default_str();
  sanitize->add_flag("-v,--verbose", sf.verbose, "text: list every tensor written");
  sanitize->add_option("--rules", sanitize_rules.rule_files, "enable a built-in rule pack or load a rule FILE; repeatable")
      ->allow_extra_args(false);
  sanitize->add_option("--allow", sanitize_rules.allow, "approve one global: module.qualname[:use,use...]; repeatable")
      ->allow_extra_args(false);
  sanitize->add_flag("--no-default-rules", sanitize_no_default, "do not load rules/default.json");
  sanitize_limits.add_to(*sanitize);

  // rules
  auto* rules_cmd = app.add_subcommand("rules", "Check rule files and list the built-in packs.");
  std::string show;
  brine::rules::RuleOptions rules_cmd_options;
  rules_cmd->add_option("--rules", rules_cmd_options.rule_files, "pack name or rule file to load and check; repeatable")
      ->allow_extra_args(false);
  rules_cmd->add_option("--show", show, "print a built-in rule file (default, denylist, aliases, or a pack name)");
  brine::cli::RulesSubcommands rules_subcommands;
  rules_subcommands.add_to(*rules_cmd);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitClean : kExitError;
  }
  rule_options.use_default = !no_default;
  if (scan->parsed() && safe_globals.requested()) return safe_globals.run(paths, rule_options, limits.get(), format);
  if (scan->parsed()) {
    brine::cli::WalkOptions walk_options;
    walk_options.follow_directory_links = follow;
    walk_options.filter = filter;
    return run_scan(paths, rule_options, limits, format, output, quiet, verbose, color, jobs, no_hash, walk_options);
  }
  if (sanitize->parsed()) {
    sanitize_rules.use_default = !sanitize_no_default;
    return run_sanitize(sf, sanitize_rules, sanitize_limits);
  }
  if (disasm->parsed()) return run_disasm(disasm_path, disasm_json, disasm_limits);
  if (inspect->parsed()) {
    inspect_rules.use_default = !inspect_no_default;
    return run_inspect(inspect_paths, inspect_rules, inspect_limits, inspect_json, inspect_max_output);
  }
  if (auto code = rules_subcommands.run()) return *code;
  if (rules_cmd->parsed()) return run_rules(rules_cmd_options, show);
  return kExitError;
}
