#include <nlohmann/json.hpp>

#include "report/report.hpp"

namespace brine::report {

using nlohmann::json;

Summary summarize(const std::vector<scan::FileReport>& files, std::uint64_t skipped, double seconds) {
  Summary s;
  s.skipped = skipped;
  s.seconds = seconds;
  for (const auto& f : files) count_file(s, f);
  return s;
}

void count_file(Summary& s, const scan::FileReport& file) {
  ++s.files;
  s.suppressed += file.suppressed;
  switch (file.verdict) {
    case analysis::Verdict::kClean: ++s.clean; break;
    case analysis::Verdict::kUnapproved: ++s.unapproved; break;
    case analysis::Verdict::kError: ++s.errors; break;
    case analysis::Verdict::kMalicious: ++s.malicious; break;
  }
}

void add_counts(Summary& s, const Summary& part) {
  s.files += part.files;
  s.clean += part.clean;
  s.unapproved += part.unapproved;
  s.malicious += part.malicious;
  s.errors += part.errors;
  s.skipped += part.skipped;
  s.suppressed += part.suppressed;
}

namespace {
json file_json(const scan::FileReport& f) {
  json jf;
  jf["path"] = f.path;
  jf["size"] = f.size;
  jf["sha256"] = f.sha256.empty() ? json(nullptr) : json(f.sha256);
  jf["container"] = f.container;
  jf["verdict"] = std::string(analysis::verdict_name(f.verdict));
  jf["pickles"] = f.pickles;
  jf["opcodes"] = f.opcodes;
  jf["suppressed"] = f.suppressed;
  json& findings = jf["findings"] = json::array();
  for (const auto& x : f.findings) {
    findings.push_back({
        {"rule", x.rule},
        {"severity", std::string(rules::severity_name(x.severity))},
        {"impact", std::string(analysis::verdict_name(x.impact))},
        {"global", x.global.empty() ? json(nullptr) : json(x.global)},
        {"use", x.use.empty() ? json(nullptr) : json(x.use)},
        {"call", x.call.empty() ? json(nullptr) : json(x.call)},
        {"member", x.member.empty() ? json(nullptr) : json(x.member)},
        {"offset", x.offset},
        {"opcode", x.opcode.empty() ? json(nullptr) : json(x.opcode)},
        {"message", x.message},
        {"count", x.count},
    });
  }
  json& members = jf["members"] = json::array();
  for (const auto& m : f.members) {
    members.push_back({{"name", m.name}, {"format", m.format}, {"size", m.size}, {"scanned", m.scanned}});
  }
  return jf;
}


json summary_json(const Summary& summary) {
  return {
      {"files", summary.files}, {"clean", summary.clean}, {"unapproved", summary.unapproved},
      {"malicious", summary.malicious}, {"error", summary.errors}, {"skipped", summary.skipped},
      {"suppressed", summary.suppressed}, {"seconds", summary.seconds},
  };
}

json skipped_json(const Summary& summary) {
  json skipped = json::array();
  for (const auto& s : summary.skipped_files) skipped.push_back({{"path", s.path}, {"reason", s.reason}});
  return skipped;
}
}  // namespace

void write_json(std::ostream& out, const std::vector<scan::FileReport>& files, const Summary& summary) {
  json doc;
  doc["brine_version"] = BRINE_VERSION;
  json& arr = doc["files"] = json::array();
  for (const auto& f : files) arr.push_back(file_json(f));
  doc["summary"] = summary_json(summary);
  doc["skipped"] = skipped_json(summary);
  // Pickle strings may hold lone surrogates or arbitrary bytes: replace what is not UTF-8.
  out << doc.dump(2, ' ', false, json::error_handler_t::replace) << '\n';
}

std::string summary_json_line(const Summary& summary) {
  json doc;
  doc["brine_version"] = BRINE_VERSION;
  doc["summary"] = summary_json(summary);
  doc["skipped"] = skipped_json(summary);
  return doc.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string file_report_json(const scan::FileReport& file) {
  return file_json(file).dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace brine::report
