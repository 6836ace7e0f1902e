// TorchScript source (the code/ records of torch.jit.save archives): which methods call
// operations that touch files, the network or native libraries. torch.jit.load compiles this code
// and runs every class's __setstate__ while loading; other methods run when called.
// The code is tokenized (ts_tokenizer.hpp) and names are resolved the way torch's source importer
// resolves them; it is never compiled or run.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace brine::analysis {

struct TorchScriptOp {
  std::string op;           ///< as written, with the operator it resolves to when that differs:
                            ///< "torch.save", "o.save (aten::save)", "ops.myns.run"
  std::string what;         ///< "writes a file", "reads or maps a file", ...
  std::string rule;         ///< "torchscript:file-write", ..., "torchscript:unreadable"
  std::string method;       ///< enclosing def, "" at class or module level
  std::uint64_t offset = 0; ///< of the name in the source
  std::uint64_t line = 0;   ///< 1-based
  bool runs_at_load = false;  ///< inside __setstate__ or a def that __setstate__ may call (mark_load_time)
  std::vector<std::string> enclosing;  ///< names of the enclosing defs, innermost first
};

/// The names each def refers to (calls, attributes), by def name: which code __setstate__ may reach.
using TorchScriptCalls = std::map<std::string, std::set<std::string>>;

struct TorchScriptAnalysis {
  std::vector<TorchScriptOp> ops;  ///< runs_at_load not yet set
  TorchScriptCalls calls;
};

/// Default for --max-torchscript-tokens.
inline constexpr std::uint64_t kDefaultMaxTorchScriptTokens = 4000000;  // core::Limits::max_torchscript_tokens

/// Every reference to a file, network, profiler or native operation in one source file. A source
/// that cannot be tokenized yields a "torchscript:unreadable" entry (and whatever was found before
/// the fault).
TorchScriptAnalysis analyze_torchscript(std::string_view source, std::uint64_t max_tokens);

/// Sets runs_at_load on the ops of every def reachable from any __setstate__ through `calls`
/// (merged over all code files of an archive: a def may call a function of another file).
void mark_load_time(std::vector<TorchScriptOp>& ops, const TorchScriptCalls& calls);

/// One file on its own: analyze_torchscript, then mark_load_time with its own calls.
std::vector<TorchScriptOp> find_torchscript_ops(std::string_view source,
                                                std::uint64_t max_tokens = kDefaultMaxTorchScriptTokens);

}  // namespace brine::analysis
