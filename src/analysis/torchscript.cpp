#include "analysis/torchscript.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "analysis/ts_tokenizer.hpp"

namespace brine::analysis {

namespace {

using Kind = TsTokenKind;

/// Namespaces of stock operators: calling them is ordinary model code.
bool stock_namespace(std::string_view ns) {
  return ns == "aten" || ns == "prim" || ns == "quantized" || ns == "_quantized" || ns == "_caffe2" ||
         ns == "torchvision" || ns == "image" || ns == "sparse" || ns == "mkldnn" || ns == "_nnapi" ||
         ns == "xnnpack" || ns == "fbgemm" || ns == "_fbgemm" || ns == "cuda" || ns == "__torch__" ||
         // the other namespaces torch 1.13 registers itself (torch._C._jit_get_all_schemas())
         ns == "prims" || ns == "nvprims" || ns == "onnx" || ns == "static_runtime" || ns == "quantization" ||
         ns == "prepacked" || ns == "mkldnn_prepacked";
}

/// What a name denotes in torch's source importer (torch/csrc/jit/serialization/import_source.cpp):
/// `torch` is the builtin module of namespace aten, `ops` the namespace of every registered
/// operator, `__torch__` the class namespace. A builtin module's attribute is an operator of its
/// namespace, except `autograd`, which is the aten module again (so `torch.autograd.save` and
/// `ops.prim.autograd.save` are aten::save; checked with torch 1.13).
struct Sym {
  enum class K : std::uint8_t { kModule, kOps, kFunc, kClassPath } k = K::kModule;
  std::string ns;    ///< kModule, kFunc
  std::string name;  ///< kFunc: the operator; kClassPath: the dotted path
  bool operator<(const Sym& o) const { return std::tie(k, ns, name) < std::tie(o.k, o.ns, o.name); }
};

struct Hit {
  std::string rule, what, canonical;
};

/// The effect of referring to a symbol: an operator that leaves the process, or a native class.
std::optional<Hit> classify(const Sym& s) {
  if (s.k == Sym::K::kFunc) {
    const std::string canonical = s.ns + "::" + s.name;
    if (s.ns == "aten") {
      // From torch's operator registry (torch._C._jit_get_all_schemas() in 1.13: save and from_file
      // are the aten operators that take a file name); load, distributed and classes are names of
      // Python's torch module kept for torch versions whose importers may resolve them.
      if (s.name == "save") return Hit{"torchscript:file-write", "writes a file", canonical};
      if (s.name == "from_file") return Hit{"torchscript:file-read", "reads or maps a file", canonical};
      if (s.name == "load") return Hit{"torchscript:file-read", "reads a file", canonical};
      if (s.name == "distributed") return Hit{"torchscript:network", "talks to other processes over the network", canonical};
      if (s.name == "classes") return Hit{"torchscript:native-class", "uses a class from a native library loaded into the process", canonical};
      return std::nullopt;
    }
    if (s.ns == "prim" && (s.name == "rpc_async" || s.name == "rpc_sync" || s.name == "rpc_remote")) {
      // torch.distributed.rpc calls, serialized as ops.prim.rpc_async(...)
      return Hit{"torchscript:network", "calls a function on another process over RPC", canonical};
    }
    if (s.ns == "c10d") return Hit{"torchscript:network", "talks to other processes over the network (collective op)", canonical};
    if (s.ns == "profiler") return Hit{"torchscript:profiler", "starts the profiler, which writes traces", canonical};
    if (stock_namespace(s.ns)) return std::nullopt;
    return Hit{"torchscript:native-op", "calls a native custom operator", canonical};
  }
  if (s.k == Sym::K::kClassPath && s.name.starts_with("__torch__.torch.classes.") &&
      s.name.size() > std::string_view("__torch__.torch.classes.").size()) {
    return Hit{"torchscript:native-class", "uses a class from a native library loaded into the process", s.name};
  }
  return std::nullopt;
}

std::optional<Sym> attr(const Sym& s, const std::string& field) {
  switch (s.k) {
    case Sym::K::kModule:
      if (field == "autograd") return Sym{Sym::K::kModule, "aten", {}};
      // torch 1.13's importer rejects torch.ops.<ns> (aten::ops has no attributes); read as Python
      // reads it, in case another version's importer does not.
      if (field == "ops") return Sym{Sym::K::kOps, {}, {}};
      return Sym{Sym::K::kFunc, s.ns, field};
    case Sym::K::kOps: return Sym{Sym::K::kModule, field, {}};
    case Sym::K::kClassPath: return Sym{Sym::K::kClassPath, {}, s.name + "." + field};
    case Sym::K::kFunc: return std::nullopt;  // an operator has no attributes: torch rejects it
  }
  return std::nullopt;
}

/// Aliases a function may hold: `o = ops.aten`, then `o.save(...)`. Values per name are unioned
/// over every assignment in the file, whichever branch or def it is in (a superset of torch's
/// scoping, which only ever lets fewer of them reach a use).
constexpr std::size_t kMaxAliasValues = 16;
constexpr std::size_t kMaxOpeners = 32;
/// Components of one dotted reference: every effect is reported at the component that reaches
/// it (the fifth at most, __torch__.torch.classes.ns.Cls), so a longer chain is only cost.
constexpr std::size_t kMaxComponents = 64;

class Finder {
 public:
  Finder(std::string_view src, std::uint64_t max_tokens) : src_(src), toks_(tokenize_torchscript(src, max_tokens)) {}

  TorchScriptAnalysis run() {
    const auto& t = toks_.tokens;
    scope_defs();
    for (std::size_t i = 0; i < t.size(); ++i) {
      if (t[i].line_start && t[i].kind == Kind::kName) note_alias(i);
      const bool start = (t[i].kind == Kind::kName && (i == 0 || t[i - 1].text != ".")) || t[i].text == "(";
      if (start) path_at(i, nullptr);
    }
    if (!toks_.error.empty()) {
      TorchScriptOp op;
      op.op = "(source)";
      op.rule = "torchscript:unreadable";
      op.what = fmt::format("cannot be tokenized ({}), so brine cannot tell which operations it calls", toks_.error);
      op.offset = toks_.error_offset;
      op.line = line_of(toks_.error_offset);
      out_.push_back(std::move(op));
    }
    TorchScriptAnalysis a;
    a.ops = std::move(out_);
    for (auto& d : defs_) {
      if (!d.name.empty()) a.calls[d.name].merge(d.refs);
    }
    return a;
  }

 private:
  struct Def {
    std::string name;  ///< "" for a class body
    int parent = -1;
    std::set<std::string> refs;  ///< names it calls or reads as attributes
  };

  std::uint64_t line_of(std::uint64_t offset) const {
    std::uint64_t line = 1;
    for (std::size_t i = 0; i < offset && i < src_.size(); ++i) line += src_[i] == '\n' ? 1 : 0;
    return line;
  }

  /// Which def or class body encloses every token, from the indentation of logical lines.
  void scope_defs() {
    const auto& t = toks_.tokens;
    scope_.assign(t.size(), -1);
    std::vector<std::pair<std::uint32_t, int>> stack;  // (indent, def index)
    int current = -1;
    for (std::size_t i = 0; i < t.size(); ++i) {
      if (t[i].line_start) {
        while (!stack.empty() && stack.back().first >= t[i].indent) stack.pop_back();
        current = stack.empty() ? -1 : stack.back().second;
        const bool def = t[i].text == "def" && i + 1 < t.size() && t[i + 1].kind == Kind::kName;
        if (def || t[i].text == "class") {
          defs_.push_back(Def{def ? std::string(t[i + 1].text) : std::string(), current, {}});
          current = static_cast<int>(defs_.size()) - 1;
          stack.emplace_back(t[i].indent, current);
        }
      }
      scope_[i] = current;
      const bool referenced = t[i].kind == Kind::kName && ((i > 0 && t[i - 1].text == ".") ||
                                                           (i + 1 < t.size() && t[i + 1].text == "("));
      if (referenced && current >= 0) defs_[static_cast<std::size_t>(current)].refs.emplace(t[i].text);
    }
  }

  std::vector<Sym> roots(std::string_view name) const {
    std::vector<Sym> out;
    if (name == "torch") out.push_back(Sym{Sym::K::kModule, "aten", {}});
    if (name == "ops") out.push_back(Sym{Sym::K::kOps, {}, {}});
    if (name == "__torch__") out.push_back(Sym{Sym::K::kClassPath, {}, "__torch__"});
    if (auto it = aliases_.find(std::string(name)); it != aliases_.end()) out.insert(out.end(), it->second.begin(), it->second.end());
    return out;
  }

  /// Resolves the reference starting at token `i`: openers `(` and `getattr(`, a name, then
  /// `.name`, `)` and `, "name")` steps, left to right without recursion. Reports what it reaches;
  /// returns the symbols of the whole reference and, in `end`, the token after it.
  std::vector<Sym> path_at(std::size_t i, std::size_t* end) {
    const auto& t = toks_.tokens;
    std::vector<bool> openers;  // true: getattr(
    while (i < t.size() && openers.size() < kMaxOpeners) {
      if (t[i].text == "(") {
        openers.push_back(false);
        ++i;
      } else if (t[i].text == "getattr" && i + 1 < t.size() && t[i + 1].text == "(") {
        openers.push_back(true);
        i += 2;
      } else {
        break;
      }
    }
    if (i >= t.size() || t[i].kind != Kind::kName) return {};
    const std::size_t root = i;
    std::vector<Sym> syms = roots(t[i].text);
    if (syms.empty()) return {};
    std::string written(t[i].text);
    bool indirect = aliases_.count(written) != 0 || std::find(openers.begin(), openers.end(), true) != openers.end();
    ++i;
    for (std::size_t components = 1;; ++components) {
      for (const Sym& s : syms) report(s, root, written, indirect);
      if (components >= kMaxComponents) break;
      std::optional<std::string> field;
      if (i + 1 < t.size() && t[i].text == "." && t[i + 1].kind == Kind::kName) {
        field = std::string(t[i + 1].text);
        i += 2;
      } else if (!openers.empty() && !openers.back() && i < t.size() && t[i].text == ")") {
        openers.pop_back();
        ++i;
        continue;
      } else if (!openers.empty() && openers.back() && i + 1 < t.size() && t[i].text == "," && t[i + 1].kind == Kind::kString) {
        // getattr(x, "na" "me"): adjacent literals concatenate, as torch's parser does.
        std::string name;
        std::size_t j = i + 1;
        bool plain = true;
        for (; j < t.size() && t[j].kind == Kind::kString; ++j) {
          std::string part;
          plain = plain && ts_plain_string_value(t[j].text, part);
          name += part;
        }
        if (j >= t.size() || t[j].text != ")") break;
        if (!plain) {
          unknown_getattr(syms, root, written);
          break;
        }
        field = std::move(name);
        openers.pop_back();
        i = j + 1;
        indirect = true;
      } else {
        break;
      }
      written += "." + *field;
      if (*field == "autograd") indirect = true;
      std::vector<Sym> next;
      for (const Sym& s : syms) {
        if (auto n = attr(s, *field)) next.push_back(std::move(*n));
      }
      if (next.empty()) {
        // torch.classes.lib.Cls: name the whole class, not just torch.classes.
        const bool classes = std::any_of(syms.begin(), syms.end(), [](const Sym& s) { return s.k == Sym::K::kFunc && s.ns == "aten" && s.name == "classes"; });
        for (std::size_t more = 0; classes && more < kMaxComponents && i + 1 < t.size() && t[i].text == "." && t[i + 1].kind == Kind::kName; ++more) {
          written += "." + std::string(t[i + 1].text);
          i += 2;
        }
        if (classes) report(Sym{Sym::K::kFunc, "aten", "classes"}, root, written, indirect);
      }
      syms = std::move(next);
      if (syms.empty()) break;
    }
    if (end != nullptr) *end = openers.empty() ? i : t.size();
    return syms;
  }

  void unknown_getattr(const std::vector<Sym>& syms, std::size_t root, const std::string& written) {
    for (const Sym& s : syms) {
      if (s.k == Sym::K::kFunc) continue;
      emit(root, fmt::format("getattr({}, ...)", written), "torchscript:unreadable",
           "looks up an attribute of a torch namespace by a string with escapes, which brine does not decode");
      return;
    }
  }

  void report(const Sym& s, std::size_t root, const std::string& written, bool indirect) {
    auto hit = classify(s);
    if (!hit) return;
    std::string op = written;
    if (s.k == Sym::K::kFunc && hit->rule != "torchscript:native-class") {
      const bool plain = !indirect && (written == (s.ns == "aten" ? "torch." + s.name : "ops." + s.ns + "." + s.name) ||
                                       written == "ops." + s.ns + "." + s.name);
      if (!plain) op += " (" + hit->canonical + ")";
    }
    emit(root, std::move(op), hit->rule, hit->what);
  }

  void emit(std::size_t root, std::string op, const std::string& rule, const std::string& what) {
    if (auto [it, fresh] = emitted_.emplace(std::make_pair(root, rule), out_.size()); !fresh) {
      // One entry per name and effect; the longest spelling (torch.classes.lib.Cls) wins.
      if (op.size() > out_[it->second].op.size()) out_[it->second].op = std::move(op);
      return;
    }
    // The same operation spelled the same way in the same def is one entry (a file may repeat it
    // a million times); its first place is kept.
    if (!distinct_.emplace(rule, op, scope_[root]).second) {
      emitted_.erase(std::make_pair(root, rule));
      return;
    }
    const auto& t = toks_.tokens[root];
    TorchScriptOp o;
    o.op = std::move(op);
    o.what = what;
    o.rule = rule;
    o.offset = t.offset;
    o.line = t.line;
    for (int d = scope_[root]; d >= 0; d = defs_[static_cast<std::size_t>(d)].parent) {
      const std::string& name = defs_[static_cast<std::size_t>(d)].name;
      if (name.empty()) continue;
      if (o.method.empty()) o.method = name;
      o.enclosing.push_back(name);
    }
    out_.push_back(std::move(o));
  }

  /// `name = <reference>` or `name : T = <reference>` as a whole statement: later uses of name
  /// resolve through it.
  void note_alias(std::size_t i) {
    const auto& t = toks_.tokens;
    std::size_t j = i + 1;
    if (j < t.size() && t[j].text == ":") {
      while (j < t.size() && t[j].kind != Kind::kEndLine && t[j].text != "=") ++j;
    }
    if (j >= t.size() || t[j].text != "=") return;
    std::size_t end = 0;
    std::vector<Sym> syms = path_at(j + 1, &end);
    if (syms.empty() || end >= t.size() || t[end].kind != Kind::kEndLine) return;
    auto& values = aliases_[std::string(t[i].text)];
    for (Sym& s : syms) {
      if (values.size() >= kMaxAliasValues) break;
      bool dup = false;
      for (const Sym& v : values) dup = dup || !(v < s || s < v);
      if (!dup) values.push_back(std::move(s));
    }
  }

  std::string_view src_;
  TsTokens toks_;
  std::vector<Def> defs_;
  std::vector<int> scope_;
  std::unordered_map<std::string, std::vector<Sym>> aliases_;
  std::map<std::pair<std::size_t, std::string>, std::size_t> emitted_;  // (root token, rule) -> index in out_
  std::set<std::tuple<std::string, std::string, int>> distinct_;           // (rule, op, def)
  std::vector<TorchScriptOp> out_;
};

}  // namespace

TorchScriptAnalysis analyze_torchscript(std::string_view source, std::uint64_t max_tokens) {
  return Finder(source, max_tokens).run();
}

void mark_load_time(std::vector<TorchScriptOp>& ops, const TorchScriptCalls& calls) {
  // __setstate__ runs during torch.jit.load, and so does every def it may call, by name: a
  // superset of the defs torch would call, whichever class or file they are in.
  std::set<std::string> reached{"__setstate__"};
  std::vector<std::string> work{"__setstate__"};
  while (!work.empty()) {
    const std::string name = std::move(work.back());
    work.pop_back();
    auto it = calls.find(name);
    if (it == calls.end()) continue;
    for (const auto& callee : it->second) {
      if (calls.count(callee) != 0 && reached.insert(callee).second) work.push_back(callee);
    }
  }
  for (auto& op : ops) {
    op.runs_at_load = false;
    for (const auto& d : op.enclosing) op.runs_at_load = op.runs_at_load || reached.count(d) != 0;
  }
}

std::vector<TorchScriptOp> find_torchscript_ops(std::string_view source, std::uint64_t max_tokens) {
  TorchScriptAnalysis a = analyze_torchscript(source, max_tokens);
  mark_load_time(a.ops, a.calls);
  return std::move(a.ops);
}

}  // namespace brine::analysis
