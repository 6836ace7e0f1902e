// SARIF 2.1.0 for code-scanning platforms (GitHub, GitLab, IDE viewers). The mapping from brine's
// report to SARIF is documented in docs/sarif.md; tests/schema_test.py validates the output against
// the OASIS schema.
#include <fmt/format.h>

#include <map>
#include <nlohmann/json.hpp>

#include "report/fingerprint.hpp"
#include "report/report.hpp"
#include "report/rule_help.hpp"

namespace brine::report {

using nlohmann::json;
using analysis::Verdict;
using rules::Severity;

namespace {

constexpr const char* kSchemaUri = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";
// brine has no public home page yet: this is where a reader is told what the tool is.
constexpr const char* kInformationUri = "https://brine.invalid/docs/sarif.md";
constexpr const char* kSrcRoot = "%SRCROOT%";

/// SARIF level of a finding's impact; informational findings (impact clean) are not results.
const char* level_of(Verdict impact) {
  switch (impact) {
    case Verdict::kMalicious:
    case Verdict::kError: return "error";
    case Verdict::kUnapproved: return "warning";
    case Verdict::kClean: break;
  }
  return "none";
}

/// GitHub's `security-severity` (0.0-10.0; >= 9.0 critical, >= 7.0 high, >= 4.0 medium, > 0 low).
const char* security_severity(Severity s) {
  switch (s) {
    case Severity::kCritical: return "9.5";
    case Severity::kHigh: return "8.0";
    case Severity::kMedium: return "5.5";
    case Severity::kLow: return "3.0";
    case Severity::kInfo: break;
  }
  return "0.0";
}

/// RFC 3986: every byte but the unreserved characters and '/' is percent-encoded, so any path
/// (spaces, '#', '%', bytes that are not UTF-8) becomes a valid URI reference.
std::string escape_path(std::string_view path) {
  std::string out;
  out.reserve(path.size());
  for (const char ch : path) {
    const auto c = static_cast<unsigned char>(ch);
    const bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                      c == '_' || c == '~' || c == '/';
    if (keep) {
      out += ch;
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

/// Relative paths stay relative to %SRCROOT% (where the scan ran); absolute ones become file: URIs.
json artifact_location(std::string_view path) {
  if (path == "-") return {{"uri", "-"}, {"description", {{"text", "standard input"}}}};
  if (path.starts_with('/')) return {{"uri", "file://" + escape_path(path)}};
  return {{"uri", escape_path(path)}, {"uriBaseId", kSrcRoot}};
}

std::string result_text(const analysis::Finding& f) {
  std::string text = f.message;
  if (!f.global.empty()) {
    text += fmt::format(" [global {}", f.global);
    if (!f.use.empty()) text += fmt::format(", used as {}", f.use);
    text += ']';
  }
  if (!f.call.empty()) text += fmt::format(" call: {}", f.call);
  text += fmt::format(" (at offset {}", f.offset);
  if (!f.opcode.empty()) text += fmt::format(", {}", f.opcode);
  if (!f.member.empty()) text += fmt::format(", in member {}", f.member);
  if (f.count > 1) text += fmt::format("; {} occurrences", f.count);
  text += ')';
  return text;
}

json nullable(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

struct RuleSeen {
  Verdict worst_impact = Verdict::kClean;
  Severity worst_severity = Severity::kInfo;
  std::size_t index = 0;
};

}  // namespace

void write_sarif(std::ostream& out, const std::vector<scan::FileReport>& files, const Summary& summary,
                 const rules::RuleSet* rules, const SarifRun& run) {
  // Rules first: one descriptor per rule id that has a result, in id order.
  std::map<std::string, RuleSeen> seen;
  for (const auto& file : files) {
    for (const auto& f : file.findings) {
      if (f.impact == Verdict::kClean) continue;
      RuleSeen& r = seen[f.rule];
      r.worst_impact = std::max(r.worst_impact, f.impact);
      r.worst_severity = std::max(r.worst_severity, f.severity);
    }
  }
  json rules_json = json::array();
  for (auto& [id, r] : seen) {
    r.index = rules_json.size();
    const RuleHelp help = rule_help(id, rules);
    const std::string_view cls = std::string_view(id).substr(0, std::min(id.find(':'), id.find('-')));
    json rule = {
        {"id", id},
        {"shortDescription", {{"text", help.short_description}}},
        {"fullDescription", {{"text", help.full_description}}},
        {"help", {{"text", help.help}}},
        {"defaultConfiguration", {{"level", level_of(r.worst_impact)}}},
        {"properties",
         {{"security-severity", security_severity(r.worst_severity)},
          {"severity", std::string(rules::severity_name(r.worst_severity))},
          {"impact", std::string(analysis::verdict_name(r.worst_impact))},
          {"tags", {"security", std::string(cls)}}}},
    };
    if (!help.help_uri.empty()) rule["helpUri"] = help.help_uri;
    rules_json.push_back(std::move(rule));
  }

  json artifacts = json::array();
  json results = json::array();
  for (const auto& file : files) {
    const std::size_t artifact_index = artifacts.size();
    json artifact = {
        {"location", artifact_location(file.path)},
        {"length", file.size},
        {"properties", {{"container", file.container}, {"verdict", std::string(analysis::verdict_name(file.verdict))}}},
    };
    if (!file.sha256.empty()) artifact["hashes"] = {{"sha-256", file.sha256}};
    artifacts.push_back(std::move(artifact));

    for (const auto& f : file.findings) {
      if (f.impact == Verdict::kClean) continue;  // informational: not a result (docs/sarif.md)
      json location = artifact_location(file.path);
      location["index"] = artifact_index;
      json physical = {{"artifactLocation", std::move(location)}, {"region", {{"byteOffset", f.offset}, {"byteLength", 1}}}};
      json result = {
          {"ruleId", f.rule},
          {"ruleIndex", seen[f.rule].index},
          {"level", level_of(f.impact)},
          {"message", {{"text", result_text(f)}}},
          {"locations", json::array({{{"physicalLocation", std::move(physical)}}})},
          {"partialFingerprints", {{kFingerprintName, finding_fingerprint(file, f)}}},
          {"properties",
           {{"severity", std::string(rules::severity_name(f.severity))},
            {"impact", std::string(analysis::verdict_name(f.impact))},
            {"global", nullable(f.global)},
            {"use", nullable(f.use)},
            {"call", nullable(f.call)},
            {"member", nullable(f.member)},
            {"offset", f.offset},
            {"opcode", nullable(f.opcode)},
            {"count", f.count}}},
      };
      if (!f.member.empty()) {
        const auto bang = f.member.rfind('!');
        result["locations"][0]["logicalLocations"] = json::array({{
            {"name", bang == std::string::npos ? f.member : f.member.substr(bang + 1)},
            {"fullyQualifiedName", f.member},
            {"kind", "member"},
        }});
      }
      results.push_back(std::move(result));
    }
  }

  // What the walk skipped and what it could not do are notifications, not results.
  json notifications = json::array();
  for (const auto& e : run.errors) notifications.push_back({{"level", "error"}, {"message", {{"text", e}}}});
  for (const auto& s : summary.skipped_files) {
    notifications.push_back({
        {"level", "note"},
        {"message", {{"text", "skipped: " + s.reason}}},
        {"locations", json::array({{{"physicalLocation", {{"artifactLocation", artifact_location(s.path)}}}}})},
    });
  }
  json invocation = {
      {"executionSuccessful", run.errors.empty()},
      {"exitCode", run.exit_code},
      {"toolExecutionNotifications", std::move(notifications)},
  };

  json driver = {{"name", "brine"}, {"version", BRINE_VERSION}, {"semanticVersion", BRINE_VERSION},
                 {"informationUri", kInformationUri}, {"rules", std::move(rules_json)}};
  json run_json = {
      {"tool", {{"driver", std::move(driver)}}},
      {"invocations", json::array({std::move(invocation)})},
      {"originalUriBaseIds", {{kSrcRoot, {{"description", {{"text", "the directory brine scan ran in"}}}}}}},
      {"artifacts", std::move(artifacts)},
      {"results", std::move(results)},
  };
  run_json["properties"]["summary"] = {
      {"files", summary.files}, {"clean", summary.clean}, {"unapproved", summary.unapproved},
      {"malicious", summary.malicious}, {"error", summary.errors}, {"skipped", summary.skipped},
      {"suppressed", summary.suppressed}, {"seconds", summary.seconds},
  };
  json doc = {{"$schema", kSchemaUri}, {"version", "2.1.0"}};
  doc["runs"] = json::array({std::move(run_json)});
  // Pickle strings may hold lone surrogates or arbitrary bytes: replace what is not UTF-8.
  out << doc.dump(2, ' ', false, json::error_handler_t::replace) << '\n';
}

}  // namespace brine::report
