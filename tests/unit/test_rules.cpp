// Rule files: schema validation with file:line errors, and name resolution (aliases, py2 names,
// dotted qualnames, attribute traversal, module prefixes).
#include <doctest/doctest.h>

#include "helpers.hpp"
#include "rules/json_tree.hpp"

#include <atomic>
#include <thread>
#include <vector>

using namespace brine;

namespace {
std::string load_error(std::string_view text) {
  rules::RuleSetBuilder b;
  auto s = b.add_file(text, "t.json");
  REQUIRE_FALSE(s.has_value());
  return s.error().detail;
}
std::shared_ptr<const rules::RuleSet> from(std::string_view text) {
  rules::RuleSetBuilder b;
  auto s = b.add_file(text, "t.json");
  if (!s) FAIL(s.error().detail);
  return std::move(b).build();
}
}  // namespace

TEST_CASE("JSON errors name the file and line") {
  CHECK(load_error("{\n \"schema\": \"brine-rules/1\",\n \"allow\": [\n  {\"global\": \"a.b\" \"use\": [\"call\"]}\n ]\n}").starts_with("t.json:4:"));
  CHECK(load_error("{\"schema\": \"brine-rules/1\", \"schema\": \"x\"}").find("duplicate key") != std::string::npos);
}

TEST_CASE("schema errors name the line of the bad entry") {
  const char* text =
      "{\n"
      " \"schema\": \"brine-rules/1\",\n"
      " \"allow\": [\n"
      "  {\"global\": \"a.b\", \"use\": [\"call\"]},\n"
      "  {\"global\": \"c.d\", \"use\": [\"cal\"]}\n"
      " ]\n"
      "}\n";
  const std::string e = load_error(text);
  CHECK(e.starts_with("t.json:5:"));
  CHECK(e.find("unknown use \"cal\"") != std::string::npos);
  CHECK(load_error("{\"schema\": \"brine-rules/2\"}").find("brine-rules/1") != std::string::npos);
  CHECK(load_error("{\"schema\": \"brine-rules/1\", \"alow\": []}").find("unknown key \"alow\"") != std::string::npos);
  CHECK(load_error("{\"schema\": \"brine-rules/1\", \"allow\": [{\"global\": \"nodot\", \"use\": \"call\"}]}").find("module.qualname") != std::string::npos);
  CHECK(load_error("{\"schema\": \"brine-rules/1\", \"allow\": [{\"global\": \"a.b\", \"module\": \"a\", \"use\": \"call\"}]}").find("exactly one") != std::string::npos);
  CHECK(load_error("{\"schema\": \"brine-rules/1\", \"deny\": [{\"module\": \"os\", \"severity\": \"bad\", \"message\": \"m\"}]}").find("severity") != std::string::npos);
  CHECK(load_error("{\"schema\": \"brine-rules/1\", \"allow\": [{\"global\": \"a.b\", \"use\": \"call\", \"args\": {\"items\": [{\"type\": \"tupel\"}]}}]}").find("unknown argument type") != std::string::npos);
  CHECK(load_error("{\"schema\": \"brine-rules/1\", \"allow\": [{\"global\": \"a.b\", \"use\": \"reference\", \"args\": {}}]}").find("needs use") != std::string::npos);
}

TEST_CASE("the shipped rule files all load") {
  auto r = test::builtin_rules({"torch-full-model", "sklearn", "training-checkpoint"});
  CHECK(r->allow_entries().size() > 100);
  CHECK(r->deny_entries().size() > 100);
  CHECK(rules::builtin_pack_names().size() == 3);
}

TEST_CASE("every combination of built-in files loads (they are parsed lazily, where a failure could only abort)") {
  const auto packs = rules::builtin_pack_names();
  for (unsigned subset = 0; subset < (1u << packs.size()); ++subset) {
    for (bool use_default : {true, false}) {
      rules::RuleOptions o;
      o.use_default = use_default;
      for (std::size_t i = 0; i < packs.size(); ++i) {
        if ((subset & (1u << i)) != 0) o.rule_files.push_back(packs[i]);
      }
      auto r = rules::load_rules(o);
      REQUIRE(r.has_value());
      CHECK((*r)->deny_entries().size() > 100);  // consulting it builds it
      CHECK((*r)->resolve("os", "system", 4).deny != nullptr);
    }
  }
}

TEST_CASE("a deferred rule set is built once, on first use, whichever thread asks") {
  std::atomic<int> builds{0};
  auto lazy = rules::RuleSet::deferred([&builds] {
    ++builds;
    return from(R"({"schema": "brine-rules/1", "allow": [{"global": "collections.OrderedDict", "use": ["call"]}]})");
  });
  CHECK(builds == 0);
  std::vector<std::thread> threads;
  std::atomic<int> approved{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      if (!lazy->resolve("collections", "OrderedDict", 4).allow.empty()) ++approved;
    });
  }
  for (auto& t : threads) t.join();
  CHECK(builds == 1);
  CHECK(approved == 4);
  CHECK(lazy->allow_entries().size() == 1);
  CHECK(builds == 1);
}

TEST_CASE("user rule input is checked when loaded, not when first used") {
  rules::RuleOptions o;
  o.allow = {"not a name!"};
  CHECK_FALSE(rules::load_rules(o).has_value());
}

TEST_CASE("a rule file that is not a pack or a readable file is an error") {
  rules::RuleOptions o;
  o.rule_files = {"/nonexistent/rules.json"};
  auto r = rules::load_rules(o);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().detail.find("not a built-in pack") != std::string::npos);
}

TEST_CASE("--allow adds an exact entry, with all uses unless narrowed") {
  rules::RuleOptions o;
  o.allow = {"mymod.Thing", "other.fn:call"};
  auto r = rules::load_rules(o);
  REQUIRE(r);
  auto thing = (*r)->resolve("mymod", "Thing", 2);
  REQUIRE(thing.allow.size() == 1);
  CHECK(thing.allow[0]->uses == 0x7F);  // all seven uses, state-value included
  auto fn = (*r)->resolve("other", "fn", 2);
  CHECK(fn.allow[0]->uses == rules::mask(rules::Use::kCall));  // reference is not implied
  rules::RuleOptions bad;
  bad.allow = {"x.y:frobnicate"};
  CHECK_FALSE(rules::load_rules(bad).has_value());
}

TEST_CASE("deny matching: module prefixes, aliases, py2 names, dotted components") {
  auto r = test::builtin_rules();
  CHECK(r->resolve("os", "system", 2).deny != nullptr);
  CHECK(r->resolve("os.path", "join", 2).deny != nullptr);           // submodule of a denied module
  auto posix = r->resolve("posix", "system", 4);
  REQUIRE(posix.deny);
  CHECK(posix.loader_name == "os.system");                           // alias
  auto py2 = r->resolve("__builtin__", "eval", 2);
  REQUIRE(py2.deny);
  CHECK(py2.loader_name == "builtins.eval");
  CHECK(r->resolve("__builtin__", "eval", 4).deny != nullptr);       // even where the loader would not map it
  CHECK(r->resolve("commands", "getoutput", 0).loader_name == "subprocess.getoutput");
  auto dotted = r->resolve("torch", "os.system", 4);
  REQUIRE(dotted.deny);
  CHECK(dotted.deny_form == "os.system");                            // reached through torch.os
  CHECK(r->resolve("torch", "hub.load", 4).deny != nullptr);
  CHECK(r->resolve("builtins", "eval", 4).deny != nullptr);
  CHECK(r->resolve("builtins", "set", 4).deny == nullptr);           // builtins is not denied wholesale
}

TEST_CASE("resolve_shared answers what resolve answers, per name and protocol class, whatever came before") {
  auto r = test::builtin_rules();
  const auto same = [&](std::string_view m, std::string_view n, int protocol) {
    const auto shared = r->resolve_shared(m, n, protocol);
    const auto plain = r->resolve(m, n, protocol);
    CHECK(shared->loader_name == plain.loader_name);
    CHECK(shared->written_name == plain.written_name);
    CHECK(shared->deny == plain.deny);
    CHECK(shared->deny_form == plain.deny_form);
    CHECK(shared->traversal == plain.traversal);
    CHECK(shared->allow == plain.allow);
    CHECK(shared->reexport_of == plain.reexport_of);
    return shared;
  };
  // Names whose module and name run together the same way are different names: "oss" +
  // "ystem" is remembered first, and must not answer for os.system.
  CHECK(same("oss", "ystem", 4)->deny == nullptr);
  CHECK(same("os", "system", 4)->deny != nullptr);
  CHECK(same("os\nsys", "tem", 4)->loader_name == "os\nsys.tem");
  // The py2 renames apply below protocol 3 only: one name, two answers.
  CHECK(same("__builtin__", "set", 2)->loader_name == "builtins.set");
  CHECK(same("__builtin__", "set", 3)->loader_name == "__builtin__.set");
  CHECK(same("__builtin__", "set", 2)->loader_name == "builtins.set");
  // Past the per-thread bound the memory starts again; what a caller holds stays valid.
  const auto held = r->resolve_shared("collections", "OrderedDict", 4);
  for (int i = 0; i < 5000; ++i) (void)r->resolve_shared("mod" + std::to_string(i), "name", 4);
  CHECK(held->loader_name == "collections.OrderedDict");
  CHECK_FALSE(held->allow.empty());
  same("collections", "OrderedDict", 4);
  same("torch", "os.system", 4);
  // Another rule set on the same thread has its own answers.
  auto custom = from(R"({"schema": "brine-rules/1", "allow": [{"global": "oss.ystem", "use": ["call"]}]})");
  CHECK_FALSE(custom->resolve_shared("oss", "ystem", 4)->allow.empty());
  CHECK(r->resolve_shared("oss", "ystem", 4)->allow.empty());
}

TEST_CASE("a dunder component is attribute traversal") {
  auto r = test::builtin_rules();
  CHECK(r->resolve("collections", "OrderedDict.__init__.__globals__", 4).traversal == "__init__");
  CHECK(r->resolve("builtins", "__dict__", 2).traversal == "__dict__");
  CHECK(r->resolve("copyreg", "__newobj__", 2).traversal.empty());   // a real module-level function
}

TEST_CASE("allow matching uses the name the loader imports at that protocol") {
  auto r = test::builtin_rules();
  CHECK_FALSE(r->resolve("collections", "OrderedDict", 2).allow.empty());
  CHECK_FALSE(r->resolve("__builtin__", "set", 2).allow.empty());    // protocol 2 writes py2 names
  CHECK(r->resolve("__builtin__", "set", 3).allow.empty());          // protocol 3 does not map them
  CHECK(r->resolve("collections", "OrderedDict.fromkeys", 4).allow.empty());
  CHECK(r->resolve("torch._utils", "_rebuild_tensor_v2", 2).allow.size() == 1);
}

TEST_CASE("module entries approve single public names only") {
  auto r = from("{\"schema\": \"brine-rules/1\", \"allow\": [{\"module\": \"pkg\", \"use\": [\"instantiate\"]}]}");
  CHECK_FALSE(r->resolve("pkg.sub", "Thing", 2).allow.empty());
  CHECK(r->resolve("pkg.sub", "_private", 2).allow.empty());
  CHECK(r->resolve("pkg.sub", "Thing.attr", 4).allow.empty());
  CHECK(r->resolve("pkgx", "Thing", 2).allow.empty());               // prefix on dot boundaries only
}

TEST_CASE("state rules are validated with line numbers") {
  CHECK(load_error("{\"schema\": \"brine-rules/1\", \"allow\": [{\"global\": \"a.b\", \"use\": \"call\",\n \"state\": {}}]}").find("t.json:2:11: \"state\" needs use \"build\"") != std::string::npos);
  CHECK(load_error("{\"schema\": \"brine-rules/1\", \"allow\": [{\"global\": \"a.b\", \"use\": \"build\", \"state\": {\"shapes\": [\"dikt\"]}}]}").find("state shape") != std::string::npos);
  CHECK(load_error("{\"schema\": \"brine-rules/1\", \"allow\": [{\"global\": \"a.b\", \"use\": \"build\", \"state\": {\"keys\": [\"__dict__\"]}}]}").find("dunder") != std::string::npos);
  CHECK(load_error("{\"schema\": \"brine-rules/1\", \"allow\": [{\"global\": \"a.b\", \"use\": \"build\", \"state\": {\"shapes\": [\"tuple\"]}}]}").find("needs a \"tuple\"") != std::string::npos);
  CHECK(load_error("{\"schema\": \"brine-rules/1\", \"allow\": [{\"global\": \"a.b\", \"use\": \"build\", \"state\": {\"keyz\": 1}}]}").find("unknown key \"keyz\"") != std::string::npos);
  CHECK(load_error("{\"schema\": \"brine-rules/1\", \"reexports\": {\"a\": \"b.c\"}}").find("re-export") != std::string::npos);
  auto r = from("{\"schema\": \"brine-rules/1\", \"allow\": [{\"global\": \"a.B\", \"use\": [\"build\"], \"state\": {\"keys\": [\"x\"], "
                "\"items\": {\"x\": {\"type\": \"call\", \"names\": [\"a.f\"]}}}}]}");
  REQUIRE(r->allow_entries()[0].state);
  CHECK(r->allow_entries()[0].state->named == std::vector<std::string>{"a.f"});
  CHECK(r->allow_entries()[0].uses == rules::mask(rules::Use::kBuild));  // no implied reference
}

TEST_CASE("re-exports resolve to the canonical name, and the denylist sees it") {
  auto r = from("{\"schema\": \"brine-rules/1\", \"allow\": [{\"global\": \"lib._impl.Thing\", \"use\": \"instantiate\"}],"
                " \"deny\": [{\"global\": \"joblib.numpy_pickle.load\", \"severity\": \"high\", \"message\": \"m\"}],"
                " \"reexports\": {\"lib.Thing\": \"lib._impl.Thing\", \"lib.load\": \"joblib.numpy_pickle.load\", \"lib.osmod\": \"os\"}}");
  auto thing = r->resolve("lib", "Thing", 4);
  CHECK(thing.reexport_of == "lib._impl.Thing");
  REQUIRE(thing.allow.size() == 1);
  auto load = r->resolve("lib", "load", 4);
  REQUIRE(load.deny);
  CHECK(load.deny->target == "joblib.numpy_pickle.load");
  CHECK(r->resolve("lib", "osmod.system", 4).reexport_of == "os.system");
}

TEST_CASE("no shipped pack approves by module prefix or makes a denylisted callable clean") {
  for (const auto& pack : rules::builtin_pack_names()) {
    CAPTURE(pack);
    auto r = test::builtin_rules({pack});
    for (const auto& e : r->allow_entries()) {
      CAPTURE(e.target);
      if (e.source.find("packs/") == std::string::npos) continue;
      CHECK_FALSE(e.is_module);
      const auto dot = e.target.rfind('.');
      auto res = r->resolve(e.target.substr(0, dot), e.target.substr(dot + 1), 4);
      CHECK(res.deny == nullptr);
    }
    for (const auto& [from, to] : r->reexports()) {
      // a re-export may point at a denied object; it must then resolve to the deny entry
      const auto dot = from.rfind('.');
      auto res = r->resolve(from.substr(0, dot), from.substr(dot + 1), 4);
      if (res.deny) CHECK(res.allow.empty());
    }
  }
}
