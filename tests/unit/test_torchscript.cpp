// TorchScript source analysis: operations that leave the process, by method.
#include <doctest/doctest.h>

#include "analysis/torchscript.hpp"

#include <string>
#include <vector>

using brine::analysis::find_torchscript_ops;

TEST_CASE("file and network operations are found with their method and line") {
  const char* src =
      "class M(Module):\n"
      "  __parameters__ = []\n"
      "  def forward(self: __torch__.M, x: Tensor) -> Tensor:\n"
      "    torch.save(x, \"/tmp/a\")\n"
      "    return torch.mul(x, 2)\n"
      "  def __setstate__(self: __torch__.M, state: Tuple[Tensor, bool]) -> NoneType:\n"
      "    t = torch.from_file(\"/etc/passwd\", False)\n"
      "    _0 = ops.c10d.allreduce_([t], pg)\n"
      "    return None\n";
  auto ops = find_torchscript_ops(src);
  REQUIRE(ops.size() == 3);
  CHECK(ops[0].op == "torch.save");
  CHECK(ops[0].method == "forward");
  CHECK_FALSE(ops[0].runs_at_load);
  CHECK(ops[0].line == 4);
  CHECK(ops[1].rule == "torchscript:file-read");
  CHECK(ops[1].runs_at_load);
  CHECK(ops[2].rule == "torchscript:network");
}

TEST_CASE("stock operators and look-alike names are not flagged; custom native ops are") {
  const char* src =
      "class M(Module):\n"
      "  def forward(self: __torch__.M, x: Tensor) -> Tensor:\n"
      "    a = ops.aten.relu(x)\n"
      "    b = ops.prim.NumToTensor(1)\n"
      "    c = torch.saved_tensors\n"
      "    d = my_torch.save(x)\n"
      "    e = ops.evil_ns.run_command(x)\n"
      "    f = torch.classes.mylib.Handle()\n"
      "    return a\n";
  auto ops = find_torchscript_ops(src);
  REQUIRE(ops.size() == 2);
  CHECK(ops[0].op == "ops.evil_ns.run_command");
  CHECK(ops[0].rule == "torchscript:native-op");
  CHECK(ops[1].op == "torch.classes.mylib.Handle");
}

namespace {

// The __setstate__ of a torch.jit.save archive as torch 1.13 writes it, with `body` appended.
std::string setstate_with(const std::string& body) {
  return "class M(Module):\n"
         "  __parameters__ = []\n"
         "  w : Tensor\n"
         "  def forward(self: __torch__.M,\n"
         "    x: Tensor) -> Tensor:\n"
         "    return x\n"
         "  def __setstate__(self: __torch__.M,\n"
         "    state: Tuple[Tensor, bool]) -> NoneType:\n"
         "    self.w = (state)[0]\n"
         "    w = self.w\n" +
         body + "    return None\n";
}

bool writes_at_load(const std::vector<brine::analysis::TorchScriptOp>& ops) {
  for (const auto& o : ops) {
    if (o.rule == "torchscript:file-write" && o.runs_at_load && o.method == "__setstate__") return true;
  }
  return false;
}

}  // namespace

// Each spelling below was checked with torch 1.13: torch.jit.load compiles it and the file is written.
TEST_CASE("a file write in __setstate__ is found however it is spelled") {
  const char* spellings[] = {
      "    torch . save  (w, \"/tmp/o\")\n",                      // spaces around the dot
      "    torch.save(\n      w,\n \"/tmp/o\")\n",                // arguments over lines
      "    _0 = (torch.\n  save)(w, \"/tmp/o\")\n",               // the name split inside brackets
      "    torch\\\n.save(w, \"/tmp/o\")\n",                      // backslash continuation
      "    torch.save( # note\n w, \"/tmp/o\")\n",                // a comment inside the call
      "    ops.aten.save(w, \"/tmp/o\")\n",                       // the operator's own namespace
      "    torch.autograd.save(w, \"/tmp/o\")\n",                 // torch.autograd is aten again
      "    ops.prim.autograd.save(w, \"/tmp/o\")\n",              // so is any namespace's autograd
      "    f = torch.save\n    f(w, \"/tmp/o\")\n",               // the operator in a local
      "    t = torch\n    t.save(w, \"/tmp/o\")\n",               // the module in a local
      "    a = ops\n    b = a.aten\n    b.save(w, \"/tmp/o\")\n",  // a chain of locals
      "    o : Any = (ops.aten)\n    o.save(w, \"/tmp/o\")\n",    // annotated, parenthesized
      "    getattr(torch, \"save\")(w, \"/tmp/o\")\n",            // getattr with a literal
      "    getattr(getattr(ops, 'aten'), \"sa\" \"ve\")(w, \"/tmp/o\")\n",  // nested, concatenated
      "    getattr(ops, \"aten\").save(w, \"/tmp/o\")\n",
      "    fut = fork(torch.save, w, \"/tmp/o\")\n    _1 = torch.wait(fut)\n",  // passed, not called
      "    s = \"\"\"a \" \"\"\"\n    torch.save(w, \"/tmp/o\")\n",  // after a triple-quoted string
  };
  for (const char* body : spellings) {
    CAPTURE(std::string(body));
    CHECK(writes_at_load(find_torchscript_ops(setstate_with(body))));
  }
}

TEST_CASE("names inside strings and comments are not calls") {
  const char* bodies[] = {
      "    s = \"torch.save(w, '/tmp/o')\"\n",
      "    # torch.save(w, \"/tmp/o\")\n",
      "    s = 'ops.aten.save(w)'\n",
      "    s = \"a\\\" torch.save(w) \\\"\"\n",
      "    s = '''\n    torch.save(w, \"/tmp/o\")\n    '''\n",
  };
  for (const char* body : bodies) {
    CAPTURE(std::string(body));
    CHECK(find_torchscript_ops(setstate_with(body)).empty());
  }
}

TEST_CASE("a def that __setstate__ calls runs at load") {
  const char* src =
      "class M(Module):\n"
      "  def helper(self: __torch__.M, w: Tensor) -> NoneType:\n"
      "    torch.save(w, \"/tmp/o\")\n"
      "    return None\n"
      "  def forward(self: __torch__.M, x: Tensor) -> Tensor:\n"
      "    torch.save(x, \"/tmp/p\")\n"
      "    return x\n"
      "  def __setstate__(self: __torch__.M, state: Tuple[Tensor, bool]) -> NoneType:\n"
      "    _0 = (self).helper((state)[0], )\n"
      "    return None\n";
  auto ops = find_torchscript_ops(src);
  REQUIRE(ops.size() == 2);
  CHECK(ops[0].method == "helper");
  CHECK(ops[0].runs_at_load);
  CHECK(ops[1].method == "forward");
  CHECK_FALSE(ops[1].runs_at_load);
}

TEST_CASE("source that cannot be tokenized is reported, not passed") {
  const char* bad[] = {
      "    s = \"unterminated\n    torch.save(w, \"/tmp/o\")\n",
      "    x = (1, 2\n",
      "    x = 1 \\ 2\n",
      "    x = \"\xff\" + \xff\n",
      "    x = 1 $ 2\n",
  };
  for (const char* body : bad) {
    CAPTURE(std::string(body));
    const auto ops = find_torchscript_ops(setstate_with(body));
    REQUIRE_FALSE(ops.empty());
    CHECK(ops.back().rule == "torchscript:unreadable");
  }
  // Limits: tokens and bracket depth.
  CHECK(find_torchscript_ops(setstate_with("    x = 1\n"), 10).back().rule == "torchscript:unreadable");
  CHECK(find_torchscript_ops(setstate_with("    x = " + std::string(300, '(') + std::string(300, ')') + "\n")).back().rule ==
        "torchscript:unreadable");
  CHECK(find_torchscript_ops(setstate_with("    x = " + std::string(200, '(') + std::string(200, ')') + "\n")).empty());
}

TEST_CASE("a function of another code file that __setstate__ calls runs at load") {
  using brine::analysis::analyze_torchscript;
  // As torch.jit.save writes a function of another Python module: code/__torch__/helpers.py.
  auto main_file = analyze_torchscript(setstate_with("    _0 = __torch__.helpers.helper(w, )\n"), 1000);
  auto helpers = analyze_torchscript(
      "def helper(w: Tensor) -> NoneType:\n"
      "  torch.save(w, \"/tmp/o\")\n"
      "  return None\n"
      "def unused(w: Tensor) -> NoneType:\n"
      "  torch.save(w, \"/tmp/p\")\n"
      "  return None\n",
      1000);
  brine::analysis::TorchScriptCalls calls = main_file.calls;
  for (auto& [name, refs] : helpers.calls) calls[name].insert(refs.begin(), refs.end());
  brine::analysis::mark_load_time(helpers.ops, calls);
  REQUIRE(helpers.ops.size() == 2);
  CHECK(helpers.ops[0].runs_at_load);
  CHECK_FALSE(helpers.ops[1].runs_at_load);
  // On its own, the helper file has no __setstate__.
  CHECK_FALSE(find_torchscript_ops("def helper(w: Tensor) -> NoneType:\n  torch.save(w, \"/tmp/o\")\n")[0].runs_at_load);
}

TEST_CASE("RPC calls are network operations; torch's own operator namespaces are not native code") {
  // torch 1.13 serializes torch.distributed.rpc.rpc_async as ops.prim.rpc_async().
  const auto ops = find_torchscript_ops(setstate_with(
      "    fut = ops.prim.rpc_async()\n"
      "    a = ops.prepacked.linear_clamp_run(w, CONSTANTS.c0)\n"
      "    b = ops.prims.add(w, w)\n"));
  REQUIRE(ops.size() == 1);
  CHECK(ops[0].rule == "torchscript:network");
  CHECK(ops[0].runs_at_load);
}

TEST_CASE("torch.ops is read as Python reads it, though torch 1.13's importer rejects it") {
  const auto ops = find_torchscript_ops(setstate_with("    torch.ops.aten.save(w, \"/tmp/o\")\n    torch.ops.evil.run(w)\n"));
  REQUIRE(ops.size() == 2);
  CHECK(ops[0].rule == "torchscript:file-write");
  CHECK(ops[1].rule == "torchscript:native-op");
}
