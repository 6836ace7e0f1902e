// Report writers: the JSON shape other tools rely on, and the text a person reads.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "core/text.hpp"
#include "helpers.hpp"
#include "report/baseline.hpp"
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
  report::write_disassembly(out, test::bytes(p), "t", test::builtin_rules(), {});
  const std::string text = out.str();
  CHECK(text.find("0: \\x80 PROTO") != std::string::npos);
  CHECK(text.find("BININT2") != std::string::npos);
  CHECK(text.find("crosses a FRAME boundary") != std::string::npos);
  std::ostringstream js;
  report::DisasmOptions o;
  o.json = true;
  report::write_disassembly(js, test::bytes(test::lit("cos\nsystem\n.")), "t", test::builtin_rules(), o);
  auto doc = nlohmann::json::parse(js.str());
  CHECK(doc[0]["instructions"][0]["op"] == "GLOBAL");
  CHECK(doc[0]["instructions"][0]["arg"]["pair"][0] == "6f73");
}

namespace {
/// Bytes a terminal would act on: C0 controls other than newline, DEL, and the UTF-8 encodings of
/// C1 controls and bidi overrides/isolates.
bool has_terminal_control(std::string_view s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if ((c < 0x20 && c != '\n') || c == 0x7f) return true;
    if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 && static_cast<unsigned char>(s[i + 1]) <= 0x9f) return true;
    if (c == 0xe2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
        static_cast<unsigned char>(s[i + 2]) >= 0xaa && static_cast<unsigned char>(s[i + 2]) <= 0xae) return true;
    if (c == 0xe2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x81 &&
        static_cast<unsigned char>(s[i + 2]) >= 0xa6 && static_cast<unsigned char>(s[i + 2]) <= 0xa9) return true;
  }
  return false;
}
}  // namespace

TEST_CASE("text outputs escape control characters, ANSI sequences, bidi controls and bad UTF-8 from the input") {
  // A global whose name erases the report line and rewrites it, a bidi override, and a byte that is
  // not UTF-8 (GLOBAL names are strict UTF-8 for the loader, but a member name or message is not).
  const std::string payload = "cos\nsys\x1b[2K\rCLEAN\xe2\x80\xaetem\n(S'echo hi'\ntR.";
  std::vector<scan::FileReport> files = {test::scan(payload)};
  files[0].path = "evil\x1b]0;title\x07\xff.pkl";
  std::ostringstream text;
  report::TextOptions opts;
  opts.verbose = true;
  report::write_text(text, files, report::summarize(files, 0, 0), opts);
  CHECK_FALSE(has_terminal_control(text.str()));
  CHECK(text.str().find("os.sys\\x1b[2K\\rCLEAN\\u202etem") != std::string::npos);
  CHECK(text.str().find("evil\\x1b]0;title\\x07\\xff.pkl") != std::string::npos);

  std::ostringstream listing;
  report::DisasmOptions d;
  report::write_disassembly(listing, test::bytes(payload), "x", test::builtin_rules(), d);
  CHECK_FALSE(has_terminal_control(listing.str()));

  CHECK(core::display_text("plain é ünïcode") == "plain é ünïcode");
  CHECK(core::display_text("a\nb\x7f\xc2\x85\xe2\x81\xa6") == "a\\nb\\x7f\\x85\\u2066");
  CHECK(core::display_text("\xed\xa0\x80") == "\\ud800");  // a lone surrogate as WTF-8
  CHECK(core::display_text("\xc0\xaf") == "\\xc0\\xaf");   // overlong: not UTF-8
}

TEST_CASE("a baseline suppresses exactly the findings it recorded, never errors, and recomputes the verdict") {
  scan::FileReport f;
  f.path = "m.pt";
  f.sha256 = std::string(64, 'a');
  analysis::Finding deny;
  deny.rule = "deny:os";
  deny.global = "posix.system";
  deny.impact = analysis::Verdict::kMalicious;
  deny.offset = 10;
  deny.count = 2;
  analysis::Finding err;
  err.rule = "limit:max-opcodes";
  err.impact = analysis::Verdict::kError;
  f.findings = {deny, err};
  auto made = report::make_baseline({f});
  REQUIRE(made);
  CHECK(made->entries.size() == 1);  // the error is not recorded

  scan::FileReport same = f;
  same.findings = {deny};
  same.verdict = analysis::Verdict::kMalicious;
  CHECK(report::apply_baseline(*made, same) == 2);
  CHECK(same.findings.empty());
  CHECK(same.verdict == analysis::Verdict::kClean);
  CHECK(same.suppressed == 2);

  scan::FileReport changed = f;  // other bytes: another sha256
  changed.sha256 = std::string(64, 'b');
  changed.findings = {deny};
  CHECK(report::apply_baseline(*made, changed) == 0);
  CHECK(changed.findings.size() == 1);

  scan::FileReport moved_offset = f;  // a new finding in the same file
  deny.offset = 11;
  moved_offset.findings = {deny, err};
  CHECK(report::apply_baseline(*made, moved_offset) == 0);
  CHECK(report::apply_baseline(*made, f) == 2);
  CHECK(f.verdict == analysis::Verdict::kError);  // the error stays whatever the baseline says

  scan::FileReport no_hash;  // a finding without the file's sha256 cannot be keyed
  no_hash.findings = {deny};
  CHECK_FALSE(report::make_baseline({no_hash}));
}
