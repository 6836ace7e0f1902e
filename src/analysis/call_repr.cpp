#include "analysis/call_repr.hpp"

#include <fmt/format.h>

#include <vector>

#include "core/text.hpp"
#include "pickle/numbers.hpp"

namespace brine::analysis {

using pickle::CallKind;
using pickle::Kind;
using pickle::ValueRef;
using pickle::ValueStore;

std::string global_display(const ValueStore& values, ValueRef global) {
  const auto& g = values.global_rec(global);
  if (!g.resolved) {
    const auto operand = [&](ValueRef v, std::string_view text) {
      return v == pickle::kNoValue ? std::string(text) : repr_value(values, v, ReprLimits{120, 4, 40, 3});
    };
    return fmt::format("<global computed from ({}, {})>", operand(g.module_value, g.module), operand(g.name_value, g.name));
  }
  if (g.module == "builtins" || g.module == "__builtin__") return std::string(g.name);
  return fmt::format("{}.{}", g.module, g.name);
}

namespace {

class Printer {
 public:
  Printer(const ValueStore& values, const ReprLimits& limits, const ValueNames* names = nullptr)
      : v_(values), limits_(limits), names_(names) {}

  std::string print(ValueRef ref) {
    top_ = ref;
    value(ref, 0);
    if (out_.size() > limits_.max_chars) {
      out_.resize(limits_.max_chars);
      out_ += "...";
    }
    return std::move(out_);
  }

 private:
  bool full() const { return out_.size() > limits_.max_chars; }

  template <typename Fn>
  void seq(pickle::Items items, unsigned depth, Fn&& each) {
    std::size_t n = 0;
    for (ValueRef item : items) {
      if (full()) return;
      if (n > 0) out_ += ", ";
      if (n == limits_.max_items) {
        out_ += fmt::format("... (+{})", items.size() - n);
        return;
      }
      each(item, depth);
      ++n;
    }
  }

  void value(ValueRef ref, unsigned depth) {
    if (full()) return;
    if (depth > limits_.max_depth) {
      out_ += "...";
      return;
    }
    if (names_ != nullptr && ref != top_) {
      if (auto it = names_->find(ref); it != names_->end()) {
        out_ += it->second;
        return;
      }
    }
    for (ValueRef open : path_) {
      if (open == ref) {
        out_ += "<cycle>";
        return;
      }
    }
    path_.push_back(ref);
    print_node(ref, depth);
    path_.pop_back();
  }

  void print_node(ValueRef ref, unsigned depth) {
    const pickle::Node& n = v_.node(ref);
    auto child = [&](ValueRef item, unsigned d) { value(item, d + 1); };
    switch (n.kind) {
      case Kind::kNone: out_ += "None"; return;
      case Kind::kBool: out_ += n.i ? "True" : "False"; return;
      case Kind::kInt: out_ += std::to_string(n.i); return;
      case Kind::kBigInt:
        out_ += n.text.size() <= 64 ? pickle::le_bytes_to_decimal(n.text) : fmt::format("<int of {} bytes>", n.text.size());
        return;
      case Kind::kFloat: out_ += pickle::float_repr(n.f); return;
      case Kind::kStr: out_ += core::py_repr_str(n.text, limits_.max_string); return;
      case Kind::kPy2Str:
        out_ += core::is_ascii(n.text) ? core::py_repr_str(n.text, limits_.max_string) : core::py_repr_bytes(n.text, limits_.max_string);
        return;
      case Kind::kBytes: out_ += core::py_repr_bytes(n.text, limits_.max_string); return;
      case Kind::kByteArray:
        out_ += "bytearray(" + core::py_repr_bytes(n.text, limits_.max_string) + ")";
        return;
      case Kind::kTuple: {
        auto items = v_.items(ref);
        out_ += '(';
        seq(items, depth, child);
        if (items.size() == 1) out_ += ',';
        out_ += ')';
        return;
      }
      case Kind::kList:
        out_ += '[';
        seq(v_.items(ref), depth, child);
        out_ += ']';
        return;
      case Kind::kSet:
      case Kind::kFrozenSet: {
        auto items = v_.items(ref);
        const bool frozen = n.kind == Kind::kFrozenSet;
        if (items.empty()) {
          out_ += frozen ? "frozenset()" : "set()";
          return;
        }
        out_ += frozen ? "frozenset({" : "{";
        seq(items, depth, child);
        out_ += frozen ? "})" : "}";
        return;
      }
      case Kind::kDict: {
        auto entries = v_.entries(ref);
        out_ += '{';
        std::size_t k = 0;
        for (const auto& [key, val] : entries) {
          if (full()) break;
          if (k > 0) out_ += ", ";
          if (k == limits_.max_items) {
            out_ += fmt::format("... (+{})", entries.size() - k);
            break;
          }
          value(key, depth + 1);
          out_ += ": ";
          value(val, depth + 1);
          ++k;
        }
        out_ += '}';
        return;
      }
      case Kind::kGlobal: out_ += global_display(v_, ref); return;
      case Kind::kCall: {
        const auto& c = v_.call_rec(ref);
        // The callee is printed by this printer at depth + 1: a chain f()()()... nests, it does
        // not recurse into fresh printers.
        const bool newobj = c.kind == CallKind::kNewObj || c.kind == CallKind::kNewObjEx;
        const std::size_t callee_start = out_.size();
        value(c.callable, depth + 1);
        if (newobj) {
          const std::string callee = out_.substr(callee_start);
          out_ += ".__new__(" + callee;
        } else {
          out_ += '(';
        }
        auto args = v_.items(c.args);
        if (v_.node(c.args).kind == Kind::kTuple) {
          if (newobj && !args.empty()) out_ += ", ";
          seq(args, depth, child);
        } else {
          out_ += newobj ? ", *" : "*";
          value(c.args, depth + 1);
        }
        if (c.kwargs != pickle::kNoValue) {
          out_ += ", **";
          value(c.kwargs, depth + 1);
        }
        out_ += ')';
        return;
      }
      case Kind::kPersistent:
        out_ += "persistent_load(";
        value(v_.persistent_rec(ref).pid, depth + 1);
        out_ += ')';
        return;
      case Kind::kExt: out_ += fmt::format("<extension code {}>", n.i); return;
      case Kind::kBuffer: out_ += "<out-of-band buffer>"; return;
    }
  }

  const ValueStore& v_;
  const ReprLimits& limits_;
  const ValueNames* names_;
  ValueRef top_ = pickle::kNoValue;
  std::string out_;
  std::vector<ValueRef> path_;
};

}  // namespace

std::string repr_value(const ValueStore& values, ValueRef ref, const ReprLimits& limits) {
  return Printer(values, limits).print(ref);
}

std::string repr_value_named(const ValueStore& values, ValueRef ref, const ValueNames& names, const ReprLimits& limits) {
  return Printer(values, limits, &names).print(ref);
}

}  // namespace brine::analysis
