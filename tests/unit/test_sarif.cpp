// SARIF writer and the finding fingerprint (docs/sarif.md).
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "core/sha256.hpp"
#include "helpers.hpp"
#include "report/fingerprint.hpp"
#include "report/report.hpp"

using namespace brine;

namespace {

nlohmann::json sarif_of(const std::vector<scan::FileReport>& files) {
  std::ostringstream out;
  const auto rules = test::builtin_rules();
  report::write_sarif(out, files, report::summarize(files, 0, 0), rules.get(), {1, {}});
  return nlohmann::json::parse(out.str());
}

scan::FileReport hashed(scan::FileReport r, std::string_view data, std::string path) {
  r.sha256 = core::sha256_hex(core::as_bytes(data));
  r.path = std::move(path);
  return r;
}

}  // namespace

TEST_CASE("finding fingerprint: the documented tuple, and nothing else") {
  scan::FileReport file;
  file.path = "a.pkl";
  for (int i = 0; i < 32; ++i) file.sha256 += "ab";
  analysis::Finding f;
  f.rule = "deny:os";
  f.global = "os.system";
  f.offset = 24;
  f.message = "m";
  // Pinned: sha256("brine-finding/1\n" "64:abab...\n" "7:deny:os\n" "9:os.system\n" "0:\n" "2:24\n").
  const std::string fp = report::finding_fingerprint(file, f);
  CHECK(fp == "363b2f503e1ae1e36d992b5e229acaf2560753d125720756a0eb07ac0a65c6b3");

  auto changed = [&](auto&& edit) {
    scan::FileReport g = file;
    analysis::Finding h = f;
    edit(g, h);
    return report::finding_fingerprint(g, h);
  };
  CHECK(changed([](auto&, auto& h) { h.offset = 25; }) != fp);
  CHECK(changed([](auto&, auto& h) { h.rule = "deny:posix"; }) != fp);
  CHECK(changed([](auto&, auto& h) { h.global = "os.popen"; }) != fp);
  CHECK(changed([](auto&, auto& h) { h.member = "archive/data.pkl"; }) != fp);
  CHECK(changed([](auto& g, auto&) { g.sha256[0] = 'c'; }) != fp);
  // Fields are length-prefixed: moving a character from one field to the next is another tuple.
  CHECK(changed([](auto&, auto& h) { h.global = "os.syste"; h.member = "m"; }) != changed([](auto&, auto& h) { h.global = "os.system"; }));
  // Not part of it: the path (a moved file keeps its findings), the message, count, opcode, call.
  CHECK(changed([](auto& g, auto& h) { g.path = "elsewhere/b.pkl"; h.message = "other"; h.count = 3; h.opcode = "REDUCE"; h.call = "x()"; }) == fp);
  // Without a hash the path stands in for the content.
  CHECK(changed([](auto& g, auto&) { g.sha256.clear(); }) != changed([](auto& g, auto&) { g.sha256.clear(); g.path = "b.pkl"; }));
}

TEST_CASE("SARIF: a denylisted call is an error result under a described rule") {
  const std::string_view payload = "cos\nsystem\n(S'echo hi'\ntR.";
  std::vector<scan::FileReport> files = {hashed(test::scan("cos\nsystem\n(S'echo hi'\ntR."), payload, "dir/a b#1.pkl"),
                                         hashed(test::scan("N."), "N.", "/abs/clean.pkl")};
  REQUIRE(files[0].findings.size() >= 1);
  const auto doc = sarif_of(files);
  CHECK(doc["version"] == "2.1.0");
  const auto& run = doc["runs"][0];
  const auto& rules = run["tool"]["driver"]["rules"];
  REQUIRE(rules.size() == 1);
  CHECK(rules[0]["id"] == "deny:os");
  CHECK(rules[0]["defaultConfiguration"]["level"] == "error");
  CHECK(rules[0]["properties"]["security-severity"] == "9.5");
  CHECK(rules[0]["fullDescription"]["text"].get<std::string>().find("shell commands") != std::string::npos);
  const auto& results = run["results"];
  REQUIRE(results.size() == 1);  // the clean file has none
  const auto& r = results[0];
  CHECK(r["ruleId"] == "deny:os");
  CHECK(r["ruleIndex"] == 0);
  CHECK(r["level"] == "error");
  const std::string text = r["message"]["text"];
  CHECK(text.find("os.system('echo hi')") != std::string::npos);
  CHECK(text.find("[global os.system") != std::string::npos);
  const auto& loc = r["locations"][0]["physicalLocation"];
  CHECK(loc["artifactLocation"]["uri"] == "dir/a%20b%231.pkl");
  CHECK(loc["artifactLocation"]["uriBaseId"] == "%SRCROOT%");
  CHECK(loc["region"]["byteOffset"] == files[0].findings[0].offset);
  CHECK(loc["region"]["byteLength"] == 1);
  CHECK(r["partialFingerprints"][report::kFingerprintName] == report::finding_fingerprint(files[0], files[0].findings[0]));
  CHECK(run["artifacts"][1]["location"]["uri"] == "file:///abs/clean.pkl");
  CHECK_FALSE(run["artifacts"][1]["location"].contains("uriBaseId"));
  CHECK(run["artifacts"][0]["hashes"]["sha-256"] == files[0].sha256);
}

TEST_CASE("SARIF: informational findings are not results; members are logical locations; unapproved is a warning") {
  scan::FileReport file;
  file.path = "m.pt";
  file.sha256 = std::string(64, '0');
  analysis::Finding info;
  info.rule = "anomaly:zip-crc-zero";
  info.impact = analysis::Verdict::kClean;
  analysis::Finding unapproved;
  unapproved.rule = "unapproved-global";
  unapproved.severity = rules::Severity::kMedium;
  unapproved.impact = analysis::Verdict::kUnapproved;
  unapproved.member = "outer.tar!model.pt!archive/data.pkl";
  unapproved.offset = 7;
  file.findings = {unapproved, info};
  file.verdict = analysis::Verdict::kUnapproved;
  const auto doc = sarif_of({file});
  const auto& run = doc["runs"][0];
  REQUIRE(run["results"].size() == 1);
  REQUIRE(run["tool"]["driver"]["rules"].size() == 1);
  CHECK(run["tool"]["driver"]["rules"][0]["properties"]["security-severity"] == "5.5");
  const auto& r = run["results"][0];
  CHECK(r["level"] == "warning");
  const auto& logical = r["locations"][0]["logicalLocations"][0];
  CHECK(logical["fullyQualifiedName"] == "outer.tar!model.pt!archive/data.pkl");
  CHECK(logical["name"] == "archive/data.pkl");
  CHECK(logical["kind"] == "member");
}

TEST_CASE("SARIF stays valid JSON for strings that are not UTF-8") {
  std::vector<scan::FileReport> files = {test::scan("c\xc3\xa9vil\nx\n(S'\\xff'\ntR.")};
  files[0].path = "n\xff.pkl";
  std::ostringstream out;
  report::write_sarif(out, files, report::summarize(files, 0, 0), nullptr, {});
  REQUIRE(nlohmann::json::accept(out.str()));
  CHECK(nlohmann::json::parse(out.str())["runs"][0]["artifacts"][0]["location"]["uri"] == "n%FF.pkl");
}
