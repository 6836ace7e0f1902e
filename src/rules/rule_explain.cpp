#include "rules/rule_explain.hpp"

#include <fmt/format.h>

namespace brine::rules {

std::string_view status_name(Explanation::Status status) {
  switch (status) {
    case Explanation::Status::kAllowed: return "allowed";
    case Explanation::Status::kDenied: return "denied";
    case Explanation::Status::kUnlisted: return "unlisted";
  }
  return "?";
}

Explanation explain(const RuleSet& rules, std::string_view module, std::string_view name, int protocol) {
  // Everything decided here comes from resolve(), the function a scan calls: explain only adds
  // the rewrite chain and the union of the uses.
  const Resolution r = rules.resolve(module, name, protocol);
  Explanation e;
  e.protocol = protocol;
  e.written = r.written_name;
  e.loader_name = r.loader_name;
  e.judged = r.reexport_of.empty() ? r.loader_name : r.reexport_of;
  e.chain = rules.name_chain(module, name, protocol);
  e.deny = r.deny;
  e.deny_form = r.deny_form;
  e.traversal = r.traversal;
  e.allow = r.allow;
  for (const AllowEntry* a : r.allow) e.uses |= a->uses;
  if (r.deny != nullptr || !r.traversal.empty()) {
    e.status = Explanation::Status::kDenied;
  } else if (!r.allow.empty()) {
    e.status = Explanation::Status::kAllowed;
  }
  return e;
}

std::pair<std::string, std::string> split_global(std::string_view text) {
  if (const auto colon = text.find(':'); colon != std::string_view::npos) {
    if (colon == 0 || colon + 1 == text.size()) return {};
    return {std::string(text.substr(0, colon)), std::string(text.substr(colon + 1))};
  }
  const auto dot = text.rfind('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == text.size()) return {};
  return {std::string(text.substr(0, dot)), std::string(text.substr(dot + 1))};
}

namespace {

std::string_view spec_type_name(SpecNode::Type t) {
  switch (t) {
    case SpecNode::Type::kAny: return "any";
    case SpecNode::Type::kNone: return "none";
    case SpecNode::Type::kBool: return "bool";
    case SpecNode::Type::kInt: return "int";
    case SpecNode::Type::kFloat: return "float";
    case SpecNode::Type::kNumber: return "number";
    case SpecNode::Type::kStr: return "str";
    case SpecNode::Type::kBytes: return "bytes";
    case SpecNode::Type::kTuple: return "tuple";
    case SpecNode::Type::kList: return "list";
    case SpecNode::Type::kDict: return "dict";
    case SpecNode::Type::kSet: return "set";
    case SpecNode::Type::kPersistentId: return "persistent_id";
    case SpecNode::Type::kGlobal: return "global";
    case SpecNode::Type::kCall: return "call";
    case SpecNode::Type::kOneOf: return "one_of";
    case SpecNode::Type::kAnyData: return "any_data";
  }
  return "?";
}

std::string join_strings(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (const auto& s : items) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

// Spec trees are built by the loader with a depth cap of 16 (one_of options and container
// elements alike), so this recursion is bounded by the rule file's validation; the depth guard
// keeps a hand-built RuleSet from recursing further.
std::string spec_text(const RuleSet& rules, int index, int depth) {
  if (index < 0 || static_cast<std::size_t>(index) >= rules.specs().size()) return "?";
  if (depth > 32) return "...";
  const SpecNode& n = rules.spec(index);
  std::vector<std::string> opts;
  if (n.type == SpecNode::Type::kOneOf) {
    for (int o : n.options) opts.push_back(spec_text(rules, o, depth + 1));
    return fmt::format("one_of({})", join_strings(opts, " | "));
  }
  if (n.of >= 0) opts.push_back("of=" + spec_text(rules, n.of, depth + 1));
  if (n.keys >= 0) opts.push_back("keys=" + spec_text(rules, n.keys, depth + 1));
  if (n.max_len >= 0) opts.push_back(fmt::format("max_len={}", n.max_len));
  if (!n.values.empty()) opts.push_back("values=" + join_strings(n.values, "|"));
  if (!n.names.empty()) opts.push_back(join_strings(n.names, "|"));
  if (n.use != 0) opts.push_back("use=" + uses_to_string(n.use));
  if (n.empty) opts.push_back("empty");
  if (opts.empty()) return std::string(spec_type_name(n.type));
  return fmt::format("{}({})", spec_type_name(n.type), join_strings(opts, ", "));
}

}  // namespace

std::string describe_spec(const RuleSet& rules, int spec) { return spec_text(rules, spec, 0); }

std::string describe_args(const RuleSet& rules, const ArgsSpec& args) {
  std::vector<std::string> parts;
  if (args.min >= 0) parts.push_back(fmt::format("min {}", args.min));
  if (args.max >= 0) parts.push_back(fmt::format("max {}", args.max));
  for (std::size_t i = 0; i < args.items.size(); ++i) parts.push_back(fmt::format("arg{}: {}", i, describe_spec(rules, args.items[i])));
  if (args.rest >= 0) parts.push_back("rest: " + describe_spec(rules, args.rest));
  return parts.empty() ? "any" : join_strings(parts, ", ");
}

std::string describe_state(const RuleSet& rules, const StateRule& st) {
  std::vector<std::string> shapes;
  for (auto [bit, name] : {std::pair<std::uint8_t, const char*>{StateRule::kDict, "dict"}, {StateRule::kSlots, "slots"},
                           {StateRule::kNone, "none"}, {StateRule::kTupleState, "tuple"}, {StateRule::kOther, "other"}}) {
    if ((st.shapes & bit) != 0) shapes.emplace_back(name);
  }
  std::vector<std::string> parts;
  parts.push_back("shapes " + join_strings(shapes, "|"));
  parts.push_back(st.any_key ? std::string("keys *") : "keys " + join_strings(st.keys, "|"));
  for (const auto& [key, spec] : st.items) parts.push_back(fmt::format("{}: {}", key, describe_spec(rules, spec)));
  if (st.values >= 0) parts.push_back("values: " + describe_spec(rules, st.values));
  if (st.tuple) parts.push_back("tuple: (" + describe_args(rules, *st.tuple) + ")");
  return join_strings(parts, "; ");
}

std::string describe_constraints(const RuleSet& rules, const AllowEntry& a) {
  std::vector<std::string> parts;
  if (a.args) parts.push_back("args: " + describe_args(rules, *a.args));
  if (a.state) parts.push_back("state: " + describe_state(rules, *a.state));
  if (a.result_is_arg0) parts.push_back("result: instance of arg0");
  if (a.loads_arg >= 0) parts.push_back(fmt::format("loads: arg{} is scanned as a file", a.loads_arg));
  if (a.state_arg >= 0) parts.push_back(fmt::format("state_arg: arg{} is judged as object state", a.state_arg));
  return join_strings(parts, "; ");
}

std::string source_file(std::string_view source) {
  if (source.starts_with("--allow")) return "--allow";
  const auto colon = source.rfind(':');
  if (colon == std::string_view::npos) return std::string(source);
  return std::string(source.substr(0, colon));
}

}  // namespace brine::rules
