#include "cli/cmd_safe_globals.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "core/text.hpp"
#include "rules/rule_explain.hpp"
#include "scan/weights_only_scan.hpp"

namespace brine::cli {

namespace {

/// Text that goes into a Python comment: no control character may end the comment line.
std::string comment_safe(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = '?';
  }
  return out;
}

std::string where(const analysis::WeightsOnlyNote& n) {
  return comment_safe(n.member.empty() ? fmt::format("@{}", n.offset) : fmt::format("{}@{}", n.member, n.offset));
}

/// A Python string literal for a path, shown in a comment: quotes, backslashes and control
/// characters escaped, so a file name cannot end the comment and add code.
std::string py_quote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      out += fmt::format("\\x{:02x}", u);
      continue;
    }
    if (c == '\\' || c == '\'') out += '\\';
    out += c;
  }
  return out + "'";
}

}  // namespace

void SafeGlobalsOption::add_to(CLI::App& scan) {
  scan.add_flag("--emit-safe-globals", emit_,
                "for one torch file: print the torch.serialization.add_safe_globals([...]) call it needs to load with "
                "torch.load(weights_only=True), or why it never can (-f json: as JSON); docs/weights-only.md");
  scan.add_option("--safe-globals-torch", torch_, "the torch whose weights_only unpickler is modelled")
      ->check(CLI::IsMember({"2", "1.13"}))->capture_default_str();
}

int SafeGlobalsOption::run(const std::vector<std::string>& paths, const rules::RuleOptions& rule_options,
                           const core::Limits& limits, const std::string& format) const {
  if (paths.size() != 1 || paths[0] == "-") {
    std::cerr << "brine: --emit-safe-globals takes exactly one file\n";
    return 2;
  }
  auto loaded = rules::load_rules(rule_options);
  if (!loaded) {
    std::cerr << "brine: " << core::display_text(loaded.error().detail) << '\n';
    return 2;
  }
  const auto torch = torch_ == "1.13" ? analysis::TorchVersion::k1_13 : analysis::TorchVersion::k2;
  scan::ScanOptions options;
  options.limits = limits;
  options.compute_sha256 = false;
  const auto report = scan::scan_weights_only(*loaded, options, paths[0], torch);
  const auto& m = report.model;
  const std::string version(analysis::torch_version_name(torch));

  // brine's own judgement of each global: allowlisting a global the denylist names is never advice.
  struct Item {
    const analysis::SafeGlobal* g;
    rules::Explanation rules;
  };
  std::vector<Item> items;
  bool denied = false;
  for (const auto& g : m.needed) {
    const std::string qual = g.name.size() > g.module.size() ? g.name.substr(g.module.size() + 1) : g.name;
    items.push_back({&g, rules::explain(**loaded, g.module, qual, 2)});
    denied = denied || items.back().rules.status == rules::Explanation::Status::kDenied;
  }
  const bool loadable = m.loadable();

  std::string py;
  py += fmt::format("# torch.load({}, weights_only=True) under torch {}: {}\n", py_quote(paths[0]), version,
                    loadable ? (m.needed.empty() ? "loads as it is" : "loads with these globals added")
                             : "can never load this way");
  for (const auto& n : m.never) py += fmt::format("#   refused: {}: {}\n", where(n), comment_safe(n.message));
  for (const auto& n : m.assumptions) py += fmt::format("#   assumed: {}: {}\n", where(n), comment_safe(n.message));
  for (const auto& it : items) {
    if (it.rules.status == rules::Explanation::Status::kDenied) {
      py += fmt::format("#   WARNING: brine's rules deny {} ({}): allowlisting it lets the file use it\n", it.g->name,
                        comment_safe(it.rules.deny ? it.rules.deny->message : std::string("attribute traversal")));
    }
  }
  if (torch == analysis::TorchVersion::k1_13 && !m.needed.empty()) {
    py += "#   torch 1.13 has no add_safe_globals; these globals are outside its fixed allowlist:\n";
  }
  if (!m.needed.empty()) {
    std::vector<std::string> modules;
    for (const auto& g : m.needed) {
      if (std::find(modules.begin(), modules.end(), g.module) == modules.end()) modules.push_back(g.module);
    }
    if (std::find(modules.begin(), modules.end(), "torch") == modules.end()) modules.push_back("torch");
    std::sort(modules.begin(), modules.end());
    const std::string prefix = loadable && torch == analysis::TorchVersion::k2 ? "" : "# ";
    for (const auto& mod : modules) py += fmt::format("{}import {}\n", prefix, mod);
    std::string list;
    for (const auto& g : m.needed) list += (list.empty() ? "" : ", ") + g.name;
    py += fmt::format("{}torch.serialization.add_safe_globals([{}])\n", prefix, list);
  }

  if (format == "json") {
    nlohmann::json doc;
    doc["file"] = paths[0];
    doc["torch"] = version;
    doc["container"] = report.scan.container;
    doc["scan_verdict"] = std::string(analysis::verdict_name(report.scan.verdict));
    doc["loadable"] = loadable;
    nlohmann::json globals = nlohmann::json::array();
    for (const auto& it : items) {
      globals.push_back({{"global", it.g->name}, {"module", it.g->module}, {"member", it.g->member}, {"offset", it.g->offset},
                         {"why", it.g->why}, {"brine_rules", std::string(rules::status_name(it.rules.status))}});
    }
    doc["safe_globals"] = std::move(globals);
    auto notes = [](const std::vector<analysis::WeightsOnlyNote>& v) {
      nlohmann::json a = nlohmann::json::array();
      for (const auto& n : v) a.push_back({{"member", n.member}, {"offset", n.offset}, {"message", n.message}});
      return a;
    };
    doc["never"] = notes(m.never);
    doc["assumptions"] = notes(m.assumptions);
    doc["python"] = py;
    std::cout << doc.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  } else {
    // Line by line: display_text escapes control characters, newlines included.
    for (std::size_t start = 0; start < py.size();) {
      const auto nl = py.find('\n', start);
      std::cout << core::display_text(std::string_view(py).substr(start, nl - start)) << '\n';
      start = nl + 1;
    }
  }
  return loadable && !denied ? 0 : 1;
}

}  // namespace brine::cli
