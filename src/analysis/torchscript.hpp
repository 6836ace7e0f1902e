// TorchScript source (the code/ records of torch.jit.save archives): which methods call
// operations that touch files, the network or native libraries. torch.jit.load compiles this code
// and runs every class's __setstate__ while loading; other methods run when called.
// Text analysis only: the code is never compiled or run.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace brine::analysis {

struct TorchScriptOp {
  std::string op;           ///< as written: "torch.save", "ops.aten.from_file", "torch.ops.myns.run"
  std::string what;         ///< "writes a file", "reads or maps a file", ...
  std::string rule;         ///< "torchscript:file-write", ...
  std::string method;       ///< enclosing def, "" at class or module level
  std::uint64_t offset = 0; ///< of the line in the source
  std::uint64_t line = 0;   ///< 1-based
  bool runs_at_load = false;  ///< inside __setstate__
};

std::vector<TorchScriptOp> find_torchscript_ops(std::string_view source);

}  // namespace brine::analysis
