// TorchScript source analysis: operations that leave the process, by method.
#include <doctest/doctest.h>

#include "analysis/torchscript.hpp"

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
