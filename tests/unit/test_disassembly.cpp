// brine disasm lists exactly the runs the scan executes: it follows joblib's raw array data,
// ends where the run ended, and reads compressed wrappers through the scan's own reader.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <zlib.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "helpers.hpp"
#include "report/disassembly.hpp"

using namespace brine;
using nlohmann::json;

namespace {
json disasm_json(const std::string& data, bool* ok = nullptr) {
  std::ostringstream out;
  report::DisasmOptions o;
  o.json = true;
  const bool r = report::write_disassembly(out, test::bytes(data), "t", test::builtin_rules(), o);
  if (ok != nullptr) *ok = r;
  return json::parse(out.str());
}

std::string disasm_text(const std::string& data) {
  std::ostringstream out;
  report::write_disassembly(out, test::bytes(data), "t", test::builtin_rules(), {});
  return out.str();
}

}  // namespace

TEST_CASE("disasm follows joblib's raw array data instead of decoding it as opcodes") {
  // pad byte 3, three 0xff padding bytes, 2 x f8: 20 bytes joblib reads itself.
  const std::string raw = std::string(1, '\x03') + std::string(3, '\xff') + std::string(16, '\x07');
  const std::string p = test::joblib_stream(2, raw);
  const std::uint64_t from = p.size() - 1 - raw.size();  // just past BUILD
  bool ok = false;
  json doc = disasm_json(p, &ok);
  CHECK(ok);
  REQUIRE(doc.size() == 1);
  const json& e = doc[0];
  CHECK(e["member"] == "");
  CHECK_FALSE(e.contains("error"));
  REQUIRE(e["jumps"].size() == 1);
  CHECK(e["jumps"][0]["from"] == from);
  CHECK(e["jumps"][0]["to"] == from + raw.size());
  CHECK(e["end"] == p.size());
  for (const auto& ins : e["instructions"]) CHECK_FALSE((ins["offset"] >= from && ins["offset"] < from + raw.size()));
  CHECK(e["instructions"].back()["op"] == "STOP");
  CHECK(e["instructions"].back()["offset"] == p.size() - 1);
  const std::string text = disasm_text(p);
  CHECK(text.find(fmt::format("raw array data [{}, {}) read by joblib", from, from + raw.size())) != std::string::npos);
  CHECK(text.find("=== scan of t: clean") != std::string::npos);
}

TEST_CASE("disasm ends a listing where the run ended, and says why") {
  // APPEND on an empty stack: the VM stops at offset 2, though STOP would decode after it.
  bool ok = true;
  json doc = disasm_json(std::string(test::lit("\x80\x02" "a.")), &ok);
  CHECK_FALSE(ok);
  REQUIRE(doc.size() == 1);
  REQUIRE(doc[0]["instructions"].size() == 2);  // PROTO, and the APPEND the VM refused
  CHECK(doc[0]["instructions"][1]["op"] == "APPEND");
  CHECK(doc[0]["end"] == 2);
  CHECK(doc[0]["error_kind"] == "execute");
  // An opcode that does not decode.
  doc = disasm_json(std::string(test::lit("\x80\x02N\xff.")), &ok);
  CHECK_FALSE(ok);
  REQUIRE(doc.size() == 1);
  CHECK(doc[0]["instructions"].size() == 2);
  CHECK(doc[0]["error_kind"] == "decode");
  // A limit between opcodes: the listing stops where the VM did.
  std::ostringstream out;
  report::DisasmOptions o;
  o.json = true;
  o.limits.max_opcodes = 3;
  CHECK_FALSE(report::write_disassembly(out, test::bytes("\x80\x02NNNN."), "t", test::builtin_rules(), o));
  doc = json::parse(out.str());
  CHECK(doc[0]["instructions"].size() == 3);
  CHECK(doc[0]["error_kind"] == "limit");
  // Bytes after STOP that are no pickle are a note; the summary names the scan's finding.
  doc = disasm_json(std::string(test::lit("N.\xff\xff")), &ok);
  CHECK(ok);
  REQUIRE(doc.size() == 2);
  CHECK(doc[1]["note"].is_string());
  CHECK(doc[1]["start"] == 2);
  CHECK(doc[1]["end"] == 4);
  const std::string text = disasm_text(std::string(test::lit("N.\xff\xff")));
  CHECK(text.find("unapproved:trailing-data") != std::string::npos);
}

TEST_CASE("disasm lists a compressed pickle's opcodes under the scan's member name") {
  json doc = disasm_json(test::gzip_of("cos\nsystem\n(S'echo brine-test'\ntR."));
  REQUIRE(doc.size() == 1);
  CHECK(doc[0]["member"] == "[gzip]");  // as the scan's findings name the decompressed stream
  CHECK(doc[0]["instructions"][0]["op"] == "GLOBAL");
  CHECK(doc[0]["instructions"].back()["op"] == "STOP");
}
