// brine inspect: the JSON value tree and the Python-like reconstruction, and their bounds.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "core/text.hpp"
#include "helpers.hpp"
#include "report/inspect.hpp"

using namespace brine;
using nlohmann::json;

namespace {

std::string unhex(std::string_view h) {
  std::string out;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2) out += static_cast<char>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16));
  return out;
}

void append_u32(std::string& p, std::uint32_t v) { p.append(reinterpret_cast<const char*>(&v), 4); }

/// The run's JSON text as `brine inspect --json` writes it; `truncated` gets the writer's flag.
std::string run_json_text(const pickle::PickleRun& run, std::uint64_t budget = 1ull << 30, bool* truncated = nullptr) {
  std::ostringstream out;
  report::InspectJsonWriter w(out, budget);
  w.write_run("m", run);
  w.flush();
  if (truncated != nullptr) *truncated = w.truncated();
  return out.str();
}

json run_json(const pickle::PickleRun& run) { return json::parse(run_json_text(run)); }

std::string run_text(const pickle::PickleRun& run) {
  std::ostringstream out;
  report::write_run_text(out, "m", run);
  return out.str();
}

}  // namespace

TEST_CASE("JSON strings: ASCII escapes, lone surrogates kept, astral code points as pairs") {
  std::string out;
  REQUIRE(core::append_json_string(out, "a\"b\\c\n\x01"));
  CHECK(out == "\"a\\\"b\\\\c\\n\\u0001\"");
  out.clear();
  REQUIRE(core::append_json_string(out, "\xc3\xa9\xed\xb2\x80\xf0\x9f\x98\x80"));  // é, lone U+DC80, U+1F600
  CHECK(out == "\"\\u00e9\\udc80\\ud83d\\ude00\"");
  out.clear();
  CHECK_FALSE(core::append_json_string(out, "\xff"));
  CHECK(out.empty());
}

TEST_CASE("inspect JSON: the value tree with exact scalars, calls, and what BUILD and SETITEMS did") {
  // collections.OrderedDict() with an item and a BUILD; a list with an int beyond int64, a float, bytes
  const std::string data = unhex(
      "800263636f6c6c656374696f6e730a4f726465726564446963740a295258010000006b4b07737d5801000000614b0173625d7100288a09"
      "000000000000000001473ff8000000000000430200ff65862e");
  auto run = test::run(data);  // values point into `data`: it outlives the run
  REQUIRE(run.stopped);
  const json doc = run_json(run);
  CHECK(doc["member"] == "m");
  CHECK(doc["stopped"] == true);
  CHECK(doc["protocol"] == 2);
  const json& root = doc["root"];
  REQUIRE(root["t"] == "tuple");
  const json& od = root["items"][0];
  CHECK(od["t"] == "object");
  CHECK(od["kind"] == "reduce");
  CHECK(od["callable"]["module"] == "collections");
  CHECK(od["callable"]["name"] == "OrderedDict");
  CHECK(od["setitems"][0][0]["v"] == "k");
  CHECK(od["setitems"][0][1]["v"] == "7");
  CHECK(od["builds"][0]["t"] == "dict");
  const json& list = root["items"][1];
  CHECK(list["t"] == "list");
  CHECK(list["items"][0]["v"] == "18446744073709551616");
  CHECK(list["items"][1]["bits"] == "3ff8000000000000");
  CHECK(list["items"][2]["hex"] == "00ff");
  // events in execution order
  std::vector<std::string> kinds;
  for (const auto& e : doc["events"]) kinds.push_back(e["event"]);
  CHECK(kinds == std::vector<std::string>{"global", "call", "setitem", "build"});
  CHECK(doc["events"][1]["subject"]["ref"] == od["id"]);
}

TEST_CASE("inspect JSON: shared values are written once, cycles end in a ref") {
  // l = []; l.append(l); (l, l)
  const std::string data = unhex("80025d71006800616800862e");
  auto run = test::run(data);
  REQUIRE(run.stopped);
  const json doc = run_json(run);
  const json& t = doc["root"];
  REQUIRE(t["items"].size() == 2);
  const auto id = t["items"][0]["id"];
  CHECK(t["items"][0]["items"][0]["ref"] == id);
  CHECK(t["items"][1]["ref"] == id);
}

TEST_CASE("inspect JSON: a long string repeated through the memo is written once") {
  std::string p = "\x80\x02(";
  const std::string big(100000, 'x');
  p += "X";
  append_u32(p, big.size());
  p += big;
  p.append("q\x00", 2);
  for (int i = 0; i < 5000; ++i) p.append("h\x00", 2);
  p += "l.";
  auto run = test::run(p);
  REQUIRE(run.stopped);
  const std::string out = run_json_text(run);
  CHECK(out.size() < 200000);  // not 5001 x 100 KB
  CHECK(json::parse(out)["root"]["items"].size() == 5001);
}

TEST_CASE("inspect JSON: nesting deeper than any recursion limit is written iteratively") {
  // 200,000 lists, each appended into the previous one while it is still empty, outer first:
  // every append sees a depth-1 item, so no container records the true depth.
  std::string p = "\x80\x02";
  constexpr int kDepth = 200000;
  // push kDepth empty lists, memoizing each at index i (BINPUT/LONG_BINPUT)
  for (std::uint32_t i = 0; i < kDepth; ++i) {
    p += "]r";  // EMPTY_LIST, LONG_BINPUT i
    append_u32(p, i);
    p += "0";   // POP
  }
  for (std::uint32_t i = 0; i + 1 < kDepth; ++i) {  // lists[i].append(lists[i + 1])
    p += "j";
    append_u32(p, i);
    p += "j";
    append_u32(p, i + 1);
    p += "a0";
  }
  p += "j";
  append_u32(p, 0);
  p += ".";
  auto run = test::run(p);
  REQUIRE(run.stopped);
  const std::string s = run_json_text(run);
  std::size_t lists = 0;
  for (std::size_t pos = 0; (pos = s.find("\"t\":\"list\"", pos)) != std::string::npos; ++pos) ++lists;
  CHECK(lists == kDepth);
  CHECK(s.ends_with("\"truncated\":false}"));
}

TEST_CASE("inspect JSON: past the output budget values are elided and the JSON stays valid") {
  std::string p = "\x80\x02(";
  for (int i = 0; i < 20000; ++i) p.append("X\x03\x00\x00\x00" "abc", 8);
  p += "l.";
  auto run = test::run(p);
  REQUIRE(run.stopped);
  bool truncated = false;
  const std::string out = run_json_text(run, 4096, &truncated);
  CHECK(truncated);
  const json doc = json::parse(out);
  CHECK(doc["truncated"] == true);
  CHECK(doc["root"]["items"].back()["t"] == "elided");
  CHECK(out.size() < 300000);
}

TEST_CASE("inspect text: one statement per effect, earlier results named") {
  const std::string text = run_text(test::run("cos\nsystem\n(S'echo hi'\ntR."));
  CHECK(text.find("import os  # -> os.system") != std::string::npos);
  CHECK(text.find("_v1 = os.system('echo hi')") != std::string::npos);
  CHECK(text.find("result = _v1") != std::string::npos);
  CHECK(text.find("# @24 REDUCE") != std::string::npos);
}

TEST_CASE("scan observer sees every pickle of a legacy torch file, in order") {
  // magic number, protocol version, sys_info, the object, the storage keys: five pickles
  const std::string data = std::string(test::lit("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.")) +
                           std::string(test::lit("\x80\x02M\xe9\x03.")) + "\x80\x02}." + "\x80\x02}." + "\x80\x02].";
  scan::ScanOptions options;
  options.compute_sha256 = false;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> seen;
  options.on_pickle = [&](const std::string& member, core::Bytes, const pickle::PickleRun& run) {
    CHECK(member.empty());
    seen.emplace_back(run.start, run.end);
  };
  scan::Scanner scanner(test::builtin_rules(), options);
  const auto report = scanner.scan_bytes(core::as_bytes(data), "legacy.pt");
  CHECK(report.container == "torch-legacy");
  REQUIRE(seen.size() == 5);
  CHECK(seen.size() == report.pickles);
  for (std::size_t i = 1; i < seen.size(); ++i) CHECK(seen[i].first == seen[i - 1].second);
}
