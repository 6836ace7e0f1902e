#include "analysis/torchscript.hpp"

#include <array>

namespace brine::analysis {

namespace {

struct Pattern {
  std::string_view text;  ///< matched at an identifier boundary, followed by '(' or '.'
  std::string_view what;
  std::string_view rule;
};

// From torch's operator registry: the builtins whose effects leave the process (docs/containers.md §4).
constexpr std::array<Pattern, 12> kPatterns = {{
    {"torch.save", "writes a file", "torchscript:file-write"},
    {"ops.aten.save", "writes a file", "torchscript:file-write"},
    {"torch.from_file", "reads or maps a file", "torchscript:file-read"},
    {"ops.aten.from_file", "reads or maps a file", "torchscript:file-read"},
    {"torch.load", "reads a file", "torchscript:file-read"},
    {"ops.c10d", "talks to other processes over the network (collective op)", "torchscript:network"},
    {"torch.distributed", "talks to other processes over the network", "torchscript:network"},
    {"ops.profiler", "starts the profiler, which writes traces", "torchscript:profiler"},
    {"torch.classes.", "uses a class from a native library loaded into the process", "torchscript:native-class"},
    {"__torch__.torch.classes.", "uses a class from a native library loaded into the process", "torchscript:native-class"},
    {"torch.ops.", "calls a native custom operator", "torchscript:native-op"},
    {"ops.", "calls a native custom operator", "torchscript:native-op"},
}};

bool ident_char(char c) {
  return c == '_' || c == '.' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/// Namespaces of stock operators: calling them is ordinary model code.
bool stock_namespace(std::string_view ns) {
  return ns == "aten" || ns == "prim" || ns == "quantized" || ns == "_quantized" || ns == "_caffe2" ||
         ns == "torchvision" || ns == "image" || ns == "sparse" || ns == "mkldnn" || ns == "_nnapi" ||
         ns == "xnnpack" || ns == "fbgemm" || ns == "_fbgemm" || ns == "cuda" || ns == "__torch__";
}

}  // namespace

std::vector<TorchScriptOp> find_torchscript_ops(std::string_view src) {
  std::vector<TorchScriptOp> out;
  std::string method;
  std::size_t method_indent = 0;
  std::uint64_t line_no = 0;
  std::size_t pos = 0;
  while (pos < src.size()) {
    std::size_t eol = src.find('\n', pos);
    if (eol == std::string_view::npos) eol = src.size();
    const std::string_view line = src.substr(pos, eol - pos);
    ++line_no;
    std::size_t indent = 0;
    while (indent < line.size() && line[indent] == ' ') ++indent;
    const std::string_view body = line.substr(indent);
    if (!body.empty() && indent <= method_indent && !method.empty() && !body.starts_with("def ")) method.clear();
    if (body.starts_with("def ")) {
      const auto paren = body.find('(');
      method = std::string(body.substr(4, paren == std::string_view::npos ? std::string_view::npos : paren - 4));
      method_indent = indent;
    } else if (body.starts_with("class ")) {
      method.clear();
    } else {
      for (const auto& p : kPatterns) {
        for (std::size_t at = body.find(p.text); at != std::string_view::npos; at = body.find(p.text, at + 1)) {
          if (at > 0 && ident_char(body[at - 1])) continue;  // part of a longer name
          std::size_t end = at + p.text.size();
          std::string_view name = p.text;
          if (p.rule == "torchscript:native-op") {
            // ops.<namespace>.<op>: stock namespaces are ordinary model code
            const std::size_t ns_begin = end;
            std::size_t ns_end = ns_begin;
            while (ns_end < body.size() && ident_char(body[ns_end]) && body[ns_end] != '.') ++ns_end;
            const std::string_view ns = body.substr(ns_begin, ns_end - ns_begin);
            if (ns.empty() || stock_namespace(ns) || ns == "c10d" || ns == "profiler") continue;
            end = ns_end;
            while (end < body.size() && ident_char(body[end])) ++end;
            name = body.substr(at, end - at);
          } else if (p.rule == "torchscript:native-class") {
            while (end < body.size() && ident_char(body[end])) ++end;
            name = body.substr(at, end - at);
          } else if (end < body.size() && body[end] != '(' && body[end] != '.') {
            continue;  // torch.saved_x is not torch.save
          }
          bool dup = false;
          for (const auto& o : out) dup = dup || (o.line == line_no && o.rule == p.rule);
          if (dup) continue;
          TorchScriptOp op;
          op.op = std::string(name);
          op.what = std::string(p.what);
          op.rule = std::string(p.rule);
          op.method = method;
          op.offset = pos;
          op.line = line_no;
          op.runs_at_load = method == "__setstate__";
          out.push_back(std::move(op));
        }
      }
    }
    pos = eol + 1;
  }
  return out;
}

}  // namespace brine::analysis
