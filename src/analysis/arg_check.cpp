#include "analysis/arg_check.hpp"

namespace brine::analysis {

using pickle::Kind;
using pickle::ValueRef;
using rules::SpecNode;

bool ArgMatcher::name_in(std::string_view name, const std::vector<std::string>& names) const {
  if (names.empty()) return true;
  for (const auto& n : names) {
    if (n == name) return true;
  }
  return false;
}

std::string_view ArgMatcher::callee_name(ValueRef call) const {
  const ValueRef callee = v_.call_rec(call).callable;
  if (v_.node(callee).kind != Kind::kGlobal || !v_.global_rec(callee).resolved) return {};
  return loader_name_(callee);
}

bool ArgMatcher::is_data(ValueRef root) {
  if (auto it = data_memo_.find(root); it != data_memo_.end()) return it->second;
  std::vector<ValueRef> stack{root};
  std::unordered_set<ValueRef> seen{root};
  bool ok = true;
  while (!stack.empty() && ok) {
    const ValueRef v = stack.back();
    stack.pop_back();
    if (auto it = data_memo_.find(v); it != data_memo_.end()) {
      ok = it->second;
      continue;
    }
    const pickle::Node& n = v_.node(v);
    switch (n.kind) {
      case Kind::kGlobal: case Kind::kCall: case Kind::kPersistent: case Kind::kExt: case Kind::kBuffer:
        ok = false;
        break;
      case Kind::kTuple: case Kind::kList: case Kind::kSet: case Kind::kFrozenSet:
        for (ValueRef item : v_.items(v)) {
          if (seen.insert(item).second) stack.push_back(item);
        }
        break;
      case Kind::kDict:
        for (const auto& [k, val] : v_.entries(v)) {
          if (seen.insert(k).second) stack.push_back(k);
          if (seen.insert(val).second) stack.push_back(val);
        }
        break;
      default:
        break;
    }
  }
  data_memo_.emplace(root, ok);
  return ok;
}

bool ArgMatcher::match_args(const rules::ArgsSpec& spec, ValueRef args, ValueRef kwargs, ImpliedUses& implied) {
  if (v_.node(args).kind != Kind::kTuple) return false;  // computed argument lists cannot be checked
  if (kwargs != pickle::kNoValue && (v_.node(kwargs).kind != Kind::kDict || !v_.entries(kwargs).empty())) return false;
  const auto items = v_.items(args);
  const auto n = static_cast<int>(items.size());
  if (spec.min >= 0 && n < spec.min) return false;
  if (spec.max >= 0 && n > spec.max) return false;
  ImpliedUses local;
  for (int i = 0; i < n; ++i) {
    const int s = static_cast<std::size_t>(i) < spec.items.size() ? spec.items[static_cast<std::size_t>(i)] : spec.rest;
    if (s >= 0 && !match(s, items[static_cast<std::size_t>(i)], local)) return false;
  }
  implied.insert(implied.end(), local.begin(), local.end());
  return true;
}

bool ArgMatcher::match_elements(const SpecNode& spec, ValueRef value, ImpliedUses& implied) {
  const pickle::Node& n = v_.node(value);
  if (n.kind == Kind::kDict) {
    const auto entries = v_.entries(value);
    if (spec.max_len >= 0 && entries.size() > static_cast<std::size_t>(spec.max_len)) return false;
    for (const auto& [k, val] : entries) {
      if (spec.keys >= 0 && !match(spec.keys, k, implied)) return false;
      if (spec.of >= 0 && !match(spec.of, val, implied)) return false;
    }
    return true;
  }
  const auto items = v_.items(value);
  if (spec.max_len >= 0 && items.size() > static_cast<std::size_t>(spec.max_len)) return false;
  if (spec.of < 0) return true;
  for (ValueRef item : items) {
    if (!match(spec.of, item, implied)) return false;
  }
  return true;
}

bool ArgMatcher::match(int spec_index, ValueRef value, ImpliedUses& implied) {
  const SpecNode& spec = rules_.spec(spec_index);
  const pickle::Node& n = v_.node(value);
  auto text_ok = [&](std::string_view text) {
    if (spec.max_len >= 0 && text.size() > static_cast<std::size_t>(spec.max_len)) return false;
    if (spec.values.empty()) return true;
    for (const auto& allowed : spec.values) {
      if (allowed == text) return true;
    }
    return false;
  };
  switch (spec.type) {
    case SpecNode::Type::kAny: return true;
    case SpecNode::Type::kAnyData: return is_data(value);
    case SpecNode::Type::kNone: return n.kind == Kind::kNone;
    case SpecNode::Type::kBool: return n.kind == Kind::kBool;
    case SpecNode::Type::kInt: return n.kind == Kind::kInt || n.kind == Kind::kBigInt;
    case SpecNode::Type::kFloat: return n.kind == Kind::kFloat;
    case SpecNode::Type::kNumber:
      return n.kind == Kind::kInt || n.kind == Kind::kBigInt || n.kind == Kind::kBool || n.kind == Kind::kFloat;
    case SpecNode::Type::kStr: return (n.kind == Kind::kStr || n.kind == Kind::kPy2Str) && text_ok(n.text);
    case SpecNode::Type::kBytes:
      return (n.kind == Kind::kBytes || n.kind == Kind::kByteArray) && text_ok(n.text);
    case SpecNode::Type::kTuple:
    case SpecNode::Type::kList:
    case SpecNode::Type::kSet:
    case SpecNode::Type::kDict: {
      const bool kind_ok = (spec.type == SpecNode::Type::kTuple && n.kind == Kind::kTuple) ||
                           (spec.type == SpecNode::Type::kList && n.kind == Kind::kList) ||
                           (spec.type == SpecNode::Type::kSet && (n.kind == Kind::kSet || n.kind == Kind::kFrozenSet)) ||
                           (spec.type == SpecNode::Type::kDict && n.kind == Kind::kDict);
      if (!kind_ok) return false;
      const std::uint64_t key = (static_cast<std::uint64_t>(spec_index) << 32) | value;
      if (auto it = memo_.find(key); it != memo_.end()) return it->second;
      const bool ok = match_elements(spec, value, implied);
      memo_.emplace(key, ok);
      return ok;
    }
    case SpecNode::Type::kPersistentId: return n.kind == Kind::kPersistent;
    case SpecNode::Type::kGlobal: {
      if (n.kind != Kind::kGlobal || !v_.global_rec(value).resolved) return false;
      if (!name_in(loader_name_(value), spec.names)) return false;
      if (spec.use != 0) implied.emplace_back(value, spec.use);
      return true;
    }
    case SpecNode::Type::kCall: {
      if (n.kind != Kind::kCall) return false;
      const std::string_view callee = callee_name(value);
      if (!spec.names.empty() && (callee.empty() || !name_in(callee, spec.names))) return false;
      if (spec.empty) {
        const auto& c = v_.call_rec(value);
        if (v_.node(c.args).kind != Kind::kTuple || !v_.items(c.args).empty()) return false;
        if (c.kwargs != pickle::kNoValue) return false;
        if (mutated_.count(value) != 0) return false;
      }
      return true;
    }
    case SpecNode::Type::kOneOf:
      for (int option : spec.options) {
        ImpliedUses local;
        if (match(option, value, local)) {
          implied.insert(implied.end(), local.begin(), local.end());
          return true;
        }
      }
      return false;
  }
  return false;
}

}  // namespace brine::analysis
