// Rules tooling (`brine rules list | explain | check`): positions in rule-file errors, checking a
// whole file at once, and the explain query over the real built-in rules.
#include <doctest/doctest.h>

#include <algorithm>

#include "helpers.hpp"
#include "rules/json_tree.hpp"
#include "rules/rule_explain.hpp"

using namespace brine;

namespace {
std::shared_ptr<const rules::RuleSet> builtin(std::vector<std::string> packs = {}, std::vector<std::string> allow = {}) {
  rules::RuleOptions o;
  o.rule_files = std::move(packs);
  o.allow = std::move(allow);
  auto r = rules::load_rules(o);
  REQUIRE(r.has_value());
  return *r;
}
}  // namespace

TEST_CASE("json_tree: every value knows the line and column of its first character") {
  auto root = rules::parse_json("{\n  \"a\": [1,\n   \"xy\\\"z\", true],\n\t\"b\": {}\n}", "t.json");
  REQUIRE(root.has_value());
  const rules::JsonNode* a = root->find("a");
  REQUIRE(a != nullptr);
  CHECK(a->where() == "2:8");
  CHECK(a->array[0].where() == "2:9");   // a number is read one character past its end
  CHECK(a->array[1].where() == "3:4");
  CHECK(a->array[2].where() == "3:13");
  CHECK(root->find("b")->where() == "4:7");
  // A number at the end of a line: the lexer has already read the newline when the value arrives.
  auto num = rules::parse_json("[\n 12\n]", "t.json");
  REQUIRE(num.has_value());
  CHECK(num->array[0].where() == "2:2");
}

TEST_CASE("rule errors name line and column of the value at fault") {
  rules::RuleSetBuilder b;
  auto s = b.add_file("{\"schema\": \"brine-rules/1\",\n \"allow\": [{\"global\": \"a.b\", \"use\": [\"call\", \"cal\"]}]}", "t.json");
  REQUIRE_FALSE(s.has_value());
  CHECK(s.error().detail.starts_with("t.json:2:46: unknown use \"cal\""));
  rules::RuleSetBuilder syntax;
  auto bad = syntax.add_file("{\n \"schema\": \"brine-rules/1\",,\n}", "t.json");
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().detail.starts_with("t.json:2:"));
  CHECK(bad.error().detail.find("invalid JSON") != std::string::npos);
}

TEST_CASE("check_file reports every bad entry, not only the first") {
  rules::RuleSetBuilder b;
  const auto problems = b.check_file(
      "{\"schema\": \"brine-rules/1\", \"alow\": [],\n"
      " \"allow\": [{\"global\": \"a.b\", \"use\": \"cal\"},\n"
      "            {\"global\": \"c.d\", \"use\": \"call\"},\n"
      "            {\"global\": \"nodot\", \"use\": \"call\"}],\n"
      " \"deny\": [{\"module\": \"x\", \"severity\": \"info\", \"message\": \"m\"}]}",
      "t.json");
  REQUIRE(problems.size() == 4);
  CHECK(problems[0].find("t.json:1:37: unknown key \"alow\"") != std::string::npos);
  CHECK(problems[1].starts_with("t.json:2:37: unknown use"));
  CHECK(problems[2].starts_with("t.json:4:24: \"global\" must be module.qualname"));
  CHECK(problems[3].starts_with("t.json:5:39: severity"));
  rules::RuleSetBuilder ok;
  CHECK(ok.check_file("{\"schema\": \"brine-rules/1\", \"allow\": [{\"global\": \"a.b\", \"use\": \"call\"}]}", "t.json").empty());
}

TEST_CASE("explain: allowed, with the entry and its constraints") {
  auto set = builtin();
  auto e = rules::explain(*set, "collections", "OrderedDict", 2);
  CHECK(e.status == rules::Explanation::Status::kAllowed);
  CHECK(e.judged == "collections.OrderedDict");
  REQUIRE_FALSE(e.allow.empty());
  CHECK(rules::source_file(e.allow[0]->source) == "rules/default.json");
  CHECK((e.uses & rules::mask(rules::Use::kCall)) != 0);
  const std::string c = rules::describe_constraints(*set, *e.allow[0]);
  CHECK(c.find("args: max 1, arg0: one_of(list | tuple | dict)") != std::string::npos);
  CHECK(c.find("state: shapes dict; keys _metadata; _metadata: call(collections.OrderedDict)") != std::string::npos);
}

TEST_CASE("explain: py2 renames and module aliases are followed to the name that is judged") {
  auto set = builtin();
  // torch.save writes protocol 2: __builtin__.eval is builtins.eval, which the denylist names.
  auto e = rules::explain(*set, "__builtin__", "eval", 2);
  CHECK(e.status == rules::Explanation::Status::kDenied);
  REQUIRE(e.chain.size() == 1);
  CHECK(e.chain[0].why == "py2-rename");
  CHECK(e.chain[0].to == "builtins.eval");
  REQUIRE(e.deny != nullptr);
  auto p = rules::explain(*set, "posix", "system", 4);
  CHECK(p.status == rules::Explanation::Status::kDenied);
  REQUIRE_FALSE(p.chain.empty());
  CHECK(p.chain.back().why == "module-alias");
  CHECK(p.chain.back().to == "os.system");
  auto u = rules::explain(*set, "mylib.models", "Net", 2);
  CHECK(u.status == rules::Explanation::Status::kUnlisted);
  CHECK(u.chain.empty());
}

TEST_CASE("explain: a re-export is judged as what it is, and the chain shows it") {
  auto set = builtin({"sklearn"});
  REQUIRE_FALSE(set->reexports().empty());
  const auto& [from, to] = *set->reexports().begin();
  const auto [module, name] = rules::split_global(from);
  auto e = rules::explain(*set, module, name, 4);
  REQUIRE_FALSE(e.chain.empty());
  CHECK(e.chain.back().why == "re-export");
  CHECK(e.judged == e.chain.back().to);
  CHECK(e.judged.starts_with(to));
}

TEST_CASE("explain: --allow entries and attribute traversal") {
  auto set = builtin({}, {"mylib.Net:instantiate,build"});
  auto e = rules::explain(*set, "mylib", "Net", 4);
  CHECK(e.status == rules::Explanation::Status::kAllowed);
  CHECK(rules::uses_to_string(e.uses) == "instantiate, build");
  CHECK(rules::source_file(e.allow[0]->source) == "--allow");
  auto t = rules::explain(*set, "mylib", "Net.__init__.__globals__", 4);
  CHECK(t.status == rules::Explanation::Status::kDenied);
  CHECK_FALSE(t.traversal.empty());
}

TEST_CASE("split_global") {
  CHECK(rules::split_global("a.b.C") == std::pair<std::string, std::string>{"a.b", "C"});
  CHECK(rules::split_global("a:B.c") == std::pair<std::string, std::string>{"a", "B.c"});
  CHECK(rules::split_global("nodot").first.empty());
  CHECK(rules::split_global("a.").first.empty());
}
