// Report writers: the JSON shape other tools rely on, and the text a person reads.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "helpers.hpp"
#include "report/disassembly.hpp"
#include "report/report.hpp"

using namespace brine;

TEST_CASE("JSON report keeps the documented shape") {
  std::vector<scan::FileReport> files = {test::scan("cos\nsystem\n(S'echo hi'\ntR."), test::scan("N.")};
  std::ostringstream out;
  report::write_json(out, files, report::summarize(files, 0, 0.5));
  auto doc = nlohmann::json::parse(out.str());
  REQUIRE(doc["files"].size() == 2);
  const auto& f = doc["files"][0];
  for (const char* key : {"path", "size", "sha256", "container", "verdict", "findings"}) CHECK(f.contains(key));
  CHECK(f["verdict"] == "malicious");
  const auto& x = f["findings"][0];
  for (const char* key : {"rule", "severity", "global", "use", "call", "member", "offset", "message"}) CHECK(x.contains(key));
  CHECK(x["rule"] == "deny:os");
  CHECK(x["global"] == "os.system");
  CHECK(x["call"] == "os.system('echo hi')");
  CHECK(x["offset"] == 24);
  CHECK(doc["summary"]["files"] == 2);
  CHECK(doc["summary"]["malicious"] == 1);
  CHECK(doc["summary"]["clean"] == 1);
}

TEST_CASE("JSON stays valid for strings that are not UTF-8") {
  std::vector<scan::FileReport> files = {test::scan("c\xc3\xa9vil\nx\n(S'\\xff'\ntR.")};
  std::ostringstream out;
  report::write_json(out, files, report::summarize(files, 0, 0));
  CHECK(nlohmann::json::accept(out.str()));
}

TEST_CASE("text report shows verdict, rule, global, use, call, offset and message") {
  std::vector<scan::FileReport> files = {test::scan("cos\nsystem\n(S'echo hi'\ntR.")};
  std::ostringstream out;
  report::write_text(out, files, report::summarize(files, 0, 0.1), {});
  const std::string text = out.str();
  CHECK(text.find("MALICIOUS") != std::string::npos);
  CHECK(text.find("deny:os") != std::string::npos);
  CHECK(text.find("os.system('echo hi')") != std::string::npos);
  CHECK(text.find("offset 24 (REDUCE)") != std::string::npos);
  CHECK(text.find("1 file: 0 clean, 0 unapproved, 1 malicious") != std::string::npos);
}

TEST_CASE("quiet text omits clean files") {
  std::vector<scan::FileReport> files = {test::scan("N.")};
  std::ostringstream out;
  report::TextOptions o;
  o.quiet = true;
  report::write_text(out, files, report::summarize(files, 0, 0), o);
  CHECK(out.str().find("CLEAN") == std::string::npos);
}

TEST_CASE("disassembly lists opcodes with offsets and marks frame violations") {
  std::ostringstream out;
  const std::string p(test::lit("\x80\x04\x95\x02\x00\x00\x00\x00\x00\x00\x00NM\x01\x00" "0."));
  report::write_disassembly(out, test::bytes(p), "t", {});
  const std::string text = out.str();
  CHECK(text.find("0: \\x80 PROTO") != std::string::npos);
  CHECK(text.find("BININT2") != std::string::npos);
  CHECK(text.find("crosses a FRAME boundary") != std::string::npos);
  std::ostringstream js;
  report::DisasmOptions o;
  o.json = true;
  report::write_disassembly(js, test::bytes(test::lit("cos\nsystem\n.")), "t", o);
  auto doc = nlohmann::json::parse(js.str());
  CHECK(doc[0]["instructions"][0]["op"] == "GLOBAL");
  CHECK(doc[0]["instructions"][0]["arg"]["pair"][0] == "6f73");
}
