#include "report/baseline.hpp"

#include "report/fingerprint.hpp"

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace brine::report {

using nlohmann::json;

namespace {
constexpr int kFormatVersion = 1;
}

BaselineKey baseline_key(const scan::FileReport& file, const analysis::Finding& finding) {
  return BaselineKey{file.sha256, finding.rule, finding.global, finding.member, finding.offset};
}

core::Result<Baseline> make_baseline(const std::vector<scan::FileReport>& files) {
  Baseline b;
  for (const auto& f : files) {
    for (const auto& finding : f.findings) {
      if (finding.impact == analysis::Verdict::kError) continue;
      if (f.sha256.empty()) return core::fail(core::ErrorCode::kUsage, 0, fmt::format("{}: no sha256 computed", f.path));
      BaselineKey key = baseline_key(f, finding);
      if (!b.keys.insert(key).second) continue;
      b.entries.push_back({std::move(key), f.path, std::string(analysis::verdict_name(finding.impact)),
                           finding_fingerprint(f, finding)});
    }
  }
  return b;
}

void write_baseline(std::ostream& out, const Baseline& baseline) {
  json doc;
  doc["brine_baseline"] = kFormatVersion;
  doc["brine_version"] = BRINE_VERSION;
  json& arr = doc["findings"] = json::array();
  for (const auto& e : baseline.entries) {
    arr.push_back({{"sha256", e.key.sha256}, {"rule", e.key.rule}, {"global", e.key.global}, {"member", e.key.member},
                   {"offset", e.key.offset}, {"impact", e.impact}, {"path", e.path}, {"fingerprint", e.fingerprint}});
  }
  out << doc.dump(1, ' ', false, json::error_handler_t::replace) << '\n';
}

core::Result<Baseline> load_baseline(const std::string& path) {
  auto bad = [&](const std::string& why) { return core::fail(core::ErrorCode::kUsage, 0, fmt::format("baseline {}: {}", path, why)); };
  std::ifstream in(path, std::ios::binary);
  if (!in) return bad("cannot be read");
  std::ostringstream text;
  text << in.rdbuf();
  json doc = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return bad("not a JSON object");
  if (!doc.contains("brine_baseline") || doc["brine_baseline"] != kFormatVersion) {
    return bad(fmt::format("not a brine baseline of format {} (\"brine_baseline\": {})", kFormatVersion, kFormatVersion));
  }
  if (!doc.contains("findings") || !doc["findings"].is_array()) return bad("no \"findings\" array");
  Baseline b;
  std::size_t i = 0;
  for (const auto& e : doc["findings"]) {
    ++i;
    auto str = [&](const char* k) -> const json* {
      auto it = e.find(k);
      return it != e.end() && it->is_string() ? &*it : nullptr;
    };
    const json* sha = str("sha256");
    const json* rule = str("rule");
    const json* global = str("global");
    const json* member = str("member");
    auto off = e.find("offset");
    if (!e.is_object() || sha == nullptr || rule == nullptr || global == nullptr || member == nullptr || off == e.end() ||
        !off->is_number_unsigned()) {
      return bad(fmt::format("finding {} needs string sha256, rule, global, member and an unsigned offset", i));
    }
    if (sha->get<std::string>().size() != 64) return bad(fmt::format("finding {}: sha256 is not 64 hex digits", i));
    BaselineKey key{sha->get<std::string>(), rule->get<std::string>(), global->get<std::string>(), member->get<std::string>(),
                    off->get<std::uint64_t>()};
    const json* p = str("path");
    const json* impact = str("impact");
    if (b.keys.insert(key).second) {
      const json* fp = str("fingerprint");
      b.entries.push_back({std::move(key), p ? p->get<std::string>() : "", impact ? impact->get<std::string>() : "",
                           fp ? fp->get<std::string>() : ""});
    }
  }
  return b;
}

std::uint64_t apply_baseline(const Baseline& baseline, scan::FileReport& file) {
  if (file.sha256.empty() || baseline.keys.empty()) return 0;
  std::uint64_t suppressed = 0;
  std::vector<analysis::Finding> kept;
  kept.reserve(file.findings.size());
  for (auto& f : file.findings) {
    // Errors are never accepted, whatever the file says.
    if (f.impact != analysis::Verdict::kError && baseline.keys.count(baseline_key(file, f)) != 0) {
      suppressed += f.count;
      continue;
    }
    kept.push_back(std::move(f));
  }
  file.findings = std::move(kept);
  file.verdict = analysis::verdict_of(file.findings);
  file.suppressed += suppressed;
  return suppressed;
}

}  // namespace brine::report
