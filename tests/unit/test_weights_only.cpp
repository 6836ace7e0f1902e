// The weights_only unpickler model (analysis/weights_only.hpp) on hand-made pickles: which
// globals are listed, and which refusals no list lifts, for torch 1.13 and torch 2.x.
#include <doctest/doctest.h>

#include "analysis/weights_only.hpp"
#include "helpers.hpp"

using namespace brine;
using analysis::TorchVersion;

namespace {
analysis::WeightsOnlyResult model(std::string_view data, TorchVersion v) {
  const core::Limits limits;
  auto r = test::run(data, limits);
  analysis::WeightsOnlyModel m(v, limits);
  m.add_run("data.pkl", test::bytes(data), r);
  return m.result();
}
std::vector<std::string> names(const analysis::WeightsOnlyResult& r) {
  std::vector<std::string> out;
  for (const auto& g : r.needed) out.push_back(g.name);
  return out;
}
bool never_mentions(const analysis::WeightsOnlyResult& r, std::string_view text) {
  for (const auto& n : r.never) {
    if (n.message.find(text) != std::string::npos) return true;
  }
  return false;
}
}  // namespace

TEST_CASE("weights_only: an OrderedDict of plain values loads under both versions") {
  const auto data = test::lit("\x80\x02" "ccollections\nOrderedDict\nq\x00)Rq\x01X\x01\x00\x00\x00" "aK\x01s.");
  for (auto v : {TorchVersion::k1_13, TorchVersion::k2}) {
    const auto r = model(data, v);
    CHECK(r.needed.empty());
    CHECK(r.never.empty());
    CHECK(r.loadable());
  }
}

TEST_CASE("weights_only: BINFLOAT is refused by 1.13 only") {
  const auto data = test::lit("\x80\x02G?\xf0\x00\x00\x00\x00\x00\x00.");
  CHECK(never_mentions(model(data, TorchVersion::k1_13), "BINFLOAT"));
  CHECK(model(data, TorchVersion::k2).loadable());
}

TEST_CASE("weights_only: a global outside the table is listed; 2.x applies torch's py2 renames") {
  const auto data = test::lit("\x80\x02" "c__builtin__\nset\n]\x85R.");
  const auto v1 = model(data, TorchVersion::k1_13);
  CHECK(names(v1) == std::vector<std::string>{"__builtin__.set"});
  CHECK_FALSE(v1.loadable());  // 1.13 has no add_safe_globals
  const auto v2 = model(data, TorchVersion::k2);
  CHECK(v2.needed.empty());  // builtins.set is in 2.x's table
  CHECK(v2.loadable());
  const auto mine = model(test::lit("\x80\x02" "cmylib\nNet\n)\x81}b."), TorchVersion::k2);
  CHECK(names(mine) == std::vector<std::string>{"mylib.Net"});
  CHECK(mine.loadable());
  CHECK(never_mentions(model(test::lit("\x80\x02" "cmylib\nNet\n)\x81}b."), TorchVersion::k1_13), "NEWOBJ of mylib.Net"));
}

TEST_CASE("weights_only: what no list lifts") {
  // 2.x blocklists os/sys/posix/nt whatever the list says.
  CHECK(never_mentions(model(test::lit("cos\nsystem\nX\x04\x00\x00\x00" "echo\x85R."), TorchVersion::k2), "blocklisted"));
  // STACK_GLOBAL and protocol-4 opcodes have no case in the restricted unpickler.
  const auto p4 = model(test::lit("\x80\x04\x95\x0a\x00\x00\x00\x00\x00\x00\x00\x8c\x01" "a\x94\x8c\x01" "b\x94\x93."), TorchVersion::k2);
  CHECK(never_mentions(p4, "FRAME"));
  CHECK(never_mentions(p4, "STACK_GLOBAL"));
  // BUILD on a plain dict, and a persistent id that is not a ('storage', ...) tuple.
  // (BUILD on a dict and calling a dict fail under CPython's pickle too: the run's error is the refusal.)
  const auto build_dict = model(test::lit("}}b."), TorchVersion::k2);
  CHECK_FALSE(build_dict.loadable());
  CHECK((never_mentions(build_dict, "BUILD on a builtins.dict") || never_mentions(build_dict, "fails under every unpickler")));
  CHECK(never_mentions(model(test::lit("X\x03\x00\x00\x00" "abcQ."), TorchVersion::k2), "persistent id"));
  // REDUCE of something that is not a global.
  const auto call_dict = model(test::lit("}X\x01\x00\x00\x00" "a\x85R."), TorchVersion::k2);
  CHECK_FALSE(call_dict.loadable());
  CHECK((never_mentions(call_dict, "REDUCE calls a non-global value (dict)") || never_mentions(call_dict, "fails under every unpickler")));
  // REDUCE of a call's result (a value the VM accepts as callable): only globals are called.
  CHECK(never_mentions(model(test::lit("\x80\x02" "ccollections\nOrderedDict\n)R)R."), TorchVersion::k2), "REDUCE calls a non-global value (object)"));
}

TEST_CASE("weights_only: BUILD on an instance needs its class in 2.x and is refused by 1.13") {
  // numpy's _reconstruct(ndarray, ...) then BUILD: the type is the first argument.
  const auto data = test::lit("\x80\x02" "cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x86R}b.");
  const auto v2 = model(data, TorchVersion::k2);
  CHECK(names(v2) == std::vector<std::string>{"numpy.core.multiarray._reconstruct", "numpy.ndarray"});
  CHECK(v2.loadable());
  CHECK(never_mentions(model(data, TorchVersion::k1_13), "BUILD on an instance of numpy.ndarray"));
}

TEST_CASE("weights_only: names that are not dotted identifiers are never written as code") {
  const auto r = model(test::lit("\x80\x02" "cmy lib;x\nNet\n)\x81."), TorchVersion::k2);
  CHECK(r.needed.empty());
  CHECK(never_mentions(r, "not a dotted Python identifier"));
}
