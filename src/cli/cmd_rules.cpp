#include "cli/cmd_rules.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "core/text.hpp"
#include "rules/rule_explain.hpp"

namespace brine::cli {

namespace {

constexpr int kExitOk = 0;
constexpr int kExitNo = 1;
constexpr int kExitError = 2;

using nlohmann::json;

std::shared_ptr<const rules::RuleSet> load_or_report(const rules::RuleOptions& options) {
  auto loaded = rules::load_rules(options);
  if (!loaded) {
    std::cerr << "brine: " << core::display_text(loaded.error().detail) << '\n';
    return nullptr;
  }
  return *loaded;
}

json uses_json(rules::UseMask m) {
  json out = json::array();
  for (int bit = 1; bit <= 64; bit <<= 1) {
    if ((m & bit) != 0) out.push_back(std::string(rules::use_name(static_cast<rules::Use>(bit))));
  }
  return out;
}

json allow_json(const rules::RuleSet& set, const rules::AllowEntry& a) {
  json j;
  j["kind"] = "allow";
  j[a.is_module ? "module" : "global"] = a.target;
  j["uses"] = uses_json(a.uses);
  j["source"] = a.source;
  j["file"] = rules::source_file(a.source);
  json c = json::object();
  if (a.args) c["args"] = rules::describe_args(set, *a.args);
  if (a.state) c["state"] = rules::describe_state(set, *a.state);
  if (a.result_is_arg0) c["result"] = "arg0";
  if (a.loads_arg >= 0) c["loads"] = fmt::format("arg{}", a.loads_arg);
  if (a.state_arg >= 0) c["state_arg"] = fmt::format("arg{}", a.state_arg);
  j["constraints"] = std::move(c);
  if (!a.note.empty()) j["note"] = a.note;
  return j;
}

json deny_json(const rules::DenyEntry& d) {
  json j;
  j["kind"] = "deny";
  j[d.is_module ? "module" : "global"] = d.target;
  j["id"] = d.id;
  j["severity"] = std::string(rules::severity_name(d.severity));
  j["message"] = d.message;
  if (!d.advisory.empty()) j["advisory"] = d.advisory;
  j["source"] = d.source;
  j["file"] = rules::source_file(d.source);
  return j;
}

std::string allow_line(const rules::RuleSet& set, const rules::AllowEntry& a) {
  std::string line = fmt::format("allow {} {}  uses={}  from={}", a.is_module ? "module" : "global", a.target,
                                 rules::uses_to_string(a.uses), a.source);
  if (auto c = rules::describe_constraints(set, a); !c.empty()) line += "  " + c;
  return line;
}

std::string deny_line(const rules::DenyEntry& d) {
  return fmt::format("deny  {} {}  severity={}  from={}  {}", d.is_module ? "module" : "global", d.target,
                     rules::severity_name(d.severity), d.source, d.message);
}

int run_list(const rules::RuleOptions& options, bool as_json) {
  auto set = load_or_report(options);
  if (!set) return kExitError;
  if (as_json) {
    json doc;
    doc["sources"] = set->sources();
    json entries = json::array();
    for (const auto& a : set->allow_entries()) entries.push_back(allow_json(*set, a));
    for (const auto& d : set->deny_entries()) entries.push_back(deny_json(d));
    doc["entries"] = std::move(entries);
    // Rule text comes from files anyone can write: replace invalid UTF-8 rather than throw.
    std::cout << doc.dump(1, ' ', false, json::error_handler_t::replace) << '\n';
    return kExitOk;
  }
  for (const auto& a : set->allow_entries()) std::cout << core::display_text(allow_line(*set, a)) << '\n';
  for (const auto& d : set->deny_entries()) std::cout << core::display_text(deny_line(d)) << '\n';
  return kExitOk;
}

int run_explain(const rules::RuleOptions& options, const std::string& global, int protocol, bool as_json) {
  const auto [module, name] = rules::split_global(global);
  if (module.empty()) {
    std::cerr << "brine: rules explain needs module.qualname (or module:qualname), got '" << core::display_text(global) << "'\n";
    return kExitError;
  }
  auto set = load_or_report(options);
  if (!set) return kExitError;
  const rules::Explanation e = rules::explain(*set, module, name, protocol);
  const int code = e.status == rules::Explanation::Status::kAllowed ? kExitOk : kExitNo;
  if (as_json) {
    json doc;
    doc["global"] = e.written;
    doc["protocol"] = protocol;
    doc["status"] = std::string(rules::status_name(e.status));
    doc["loader_name"] = e.loader_name;
    doc["judged_as"] = e.judged;
    json chain = json::array();
    for (const auto& s : e.chain) chain.push_back({{"from", s.from}, {"to", s.to}, {"why", s.why}});
    doc["chain"] = std::move(chain);
    doc["uses"] = uses_json(e.uses);
    if (e.deny != nullptr) {
      doc["deny"] = deny_json(*e.deny);
      doc["deny"]["matched"] = e.deny_form;
    }
    if (!e.traversal.empty()) doc["traversal"] = e.traversal;
    json allow = json::array();
    for (const auto* a : e.allow) allow.push_back(allow_json(*set, *a));
    doc["allow"] = std::move(allow);
    std::cout << doc.dump(1, ' ', false, json::error_handler_t::replace) << '\n';
    return code;
  }
  std::string out = fmt::format("{}: {}\n", e.written, rules::status_name(e.status));
  for (const auto& s : e.chain) out += fmt::format("  {}: {} -> {}\n", s.why, s.from, s.to);
  out += fmt::format("  judged as: {} (protocol {})\n", e.judged, protocol);
  if (e.deny != nullptr) {
    out += fmt::format("  denied by {} ({}, {}), matching {}: {}\n", e.deny->id, e.deny->source,
                       rules::severity_name(e.deny->severity), e.deny_form, e.deny->message);
  }
  if (!e.traversal.empty()) out += fmt::format("  attribute traversal through {}: always malicious\n", e.traversal);
  if (e.allow.empty()) {
    if (e.status == rules::Explanation::Status::kUnlisted) out += "  no allow entry names it: a scan reports it unapproved\n";
  } else {
    if (e.status == rules::Explanation::Status::kDenied) out += "  (the deny decision wins over these allow entries)\n";
    out += fmt::format("  uses granted: {}\n", rules::uses_to_string(e.uses));
    for (const auto* a : e.allow) out += "  " + allow_line(*set, *a) + "\n";
  }
  // Line by line: display_text escapes control characters, newlines included.
  for (std::size_t start = 0; start < out.size();) {
    const auto nl = out.find('\n', start);
    std::cout << core::display_text(std::string_view(out).substr(start, nl - start)) << '\n';
    start = nl + 1;
  }
  return code;
}

int run_check(const std::string& path) {
  const auto problems = rules::check_rule_file(path);
  for (const auto& p : problems) std::cout << core::display_text(p) << '\n';
  if (!problems.empty()) {
    std::cout << fmt::format("{}: {} problem{}\n", core::display_text(path), problems.size(), problems.size() == 1 ? "" : "s");
    return kExitError;
  }
  std::cout << core::display_text(path) << ": valid\n";
  return kExitOk;
}

}  // namespace

void RulesSubcommands::add_to(CLI::App& rules_command) {
  list_ = rules_command.add_subcommand("list", "List every allow and deny entry of the loaded rules: target, uses or severity, "
                                               "the file and line it comes from, its constraints.");
  list_->add_option("--rules", list_rules_.rule_files, "also load a built-in pack or a rule FILE; repeatable")->allow_extra_args(false);
  list_->add_option("--allow", list_rules_.allow, "add one allow entry: module.qualname[:use,use...]; repeatable")
      ->allow_extra_args(false);
  list_->add_flag("--no-default-rules", list_no_default_, "do not load rules/default.json");
  list_->add_flag("--json", list_json_, "one JSON document for tools");

  explain_ = rules_command.add_subcommand(
      "explain", "Say whether a global is allowed, denied or unlisted, for which uses, under which constraints, and which "
                 "entries decide it, after the renames, aliases and re-exports a scan applies. Exit 0 allowed, 1 denied "
                 "or unlisted, 2 error.");
  explain_->add_option("global", global_, "module.qualname (split at the last dot) or module:qualname")->required();
  explain_->add_option("--rules", explain_rules_.rule_files, "also load a built-in pack or a rule FILE; repeatable")
      ->allow_extra_args(false);
  explain_->add_option("--allow", explain_rules_.allow, "add one allow entry: module.qualname[:use,use...]; repeatable")
      ->allow_extra_args(false);
  explain_->add_flag("--no-default-rules", explain_no_default_, "do not load rules/default.json");
  explain_->add_option("--protocol", protocol_, "pickle protocol of the GLOBAL (below 3, pickle applies Python 2 renames; "
                                                "torch.save writes 2)")
      ->check(CLI::Range(0, 5))->capture_default_str();
  explain_->add_flag("--json", explain_json_, "one JSON document for tools");

  check_ = rules_command.add_subcommand("check", "Validate a rule file as --rules FILE would load it; every problem is "
                                                 "printed as FILE:LINE:COLUMN: message. Exit 0 valid, 2 invalid.");
  check_->add_option("file", check_path_, "the rule file")->required();
}

std::optional<int> RulesSubcommands::run() const {
  if (list_ != nullptr && list_->parsed()) {
    auto options = list_rules_;
    options.use_default = !list_no_default_;
    return run_list(options, list_json_);
  }
  if (explain_ != nullptr && explain_->parsed()) {
    auto options = explain_rules_;
    options.use_default = !explain_no_default_;
    return run_explain(options, global_, protocol_, explain_json_);
  }
  if (check_ != nullptr && check_->parsed()) return run_check(check_path_);
  return std::nullopt;
}

}  // namespace brine::cli
