#include "rules/rule_loader.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "rules/json_tree.hpp"

namespace brine::rules {

namespace {

using core::ErrorCode;
using Type = JsonNode::Type;

/// "<file>:<line>:<column>: message", placed at the value the message is about.
core::Unexpected rule_error(std::string_view source, const JsonNode& at, std::string message) {
  return core::fail(core::Error{ErrorCode::kRules, 0, {}, {}, fmt::format("{}:{}: {}", source, at.where(), message)});
}

bool valid_dotted(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.back() == '.' || s.find("..") != std::string_view::npos) return false;
  for (char c : s) {
    if (c == ' ' || c == '\n' || c == '\t' || c == '\0') return false;
  }
  return true;
}

}  // namespace

struct RuleSetBuilder::State {
  RuleSet rules;

  core::Status check_keys(const JsonNode& obj, std::string_view source, std::initializer_list<std::string_view> allowed,
                          std::string_view what) {
    for (const auto& [key, value] : obj.object) {
      bool ok = false;
      for (auto a : allowed) ok = ok || key == a;
      if (!ok) return rule_error(source, value, fmt::format("unknown key \"{}\" in {}", key, what));
    }
    return {};
  }

  core::Result<std::string> get_string(const JsonNode& obj, std::string_view key, std::string_view source, bool required) {
    const JsonNode* v = obj.find(key);
    if (v == nullptr) {
      if (required) return rule_error(source, obj, fmt::format("missing \"{}\"", key));
      return std::string();
    }
    if (v->type != Type::kString) return rule_error(source, *v, fmt::format("\"{}\" must be a string, not {}", key, v->type_name()));
    return v->string;
  }

  core::Result<UseMask> parse_uses(const JsonNode& node, std::string_view source) {
    std::vector<const JsonNode*> items;
    if (node.type == Type::kString) {
      items.push_back(&node);
    } else if (node.type == Type::kArray && !node.array.empty()) {
      for (const auto& item : node.array) items.push_back(&item);
    } else {
      return rule_error(source, node, "\"use\" must be a use name or a non-empty list of them");
    }
    // No use implies another: an entry that needs its global passed around as a value says "reference".
    UseMask m = 0;
    for (const JsonNode* item : items) {
      if (item->type != Type::kString) return rule_error(source, *item, "a use must be a string");
      auto u = use_from_name(item->string);
      if (!u) {
        return rule_error(source, *item,
                          fmt::format("unknown use \"{}\" (expected reference, call, instantiate, build, setitem, append or state-value)", item->string));
      }
      m |= mask(*u);
    }
    return m;
  }

  core::Result<std::vector<std::string>> parse_names(const JsonNode& node, std::string_view source) {
    if (node.type != Type::kArray) return rule_error(source, node, "\"names\" must be a list of module.qualname strings");
    std::vector<std::string> out;
    for (const auto& item : node.array) {
      if (item.type != Type::kString || !valid_dotted(item.string) || item.string.find('.') == std::string::npos) {
        return rule_error(source, item, "\"names\" entries must be module.qualname strings");
      }
      out.push_back(item.string);
    }
    return out;
  }

  core::Result<int> parse_spec(const JsonNode& node, std::string_view source, int depth = 0) {
    if (depth > 16) return rule_error(source, node, "argument spec nested too deeply");
    if (node.type != Type::kObject) return rule_error(source, node, "an argument spec must be an object with a \"type\"");
    BRINE_TRY_ASSIGN(std::string type, get_string(node, "type", source, true));
    static const std::pair<std::string_view, SpecNode::Type> kTypes[] = {
        {"any", SpecNode::Type::kAny}, {"none", SpecNode::Type::kNone}, {"bool", SpecNode::Type::kBool},
        {"int", SpecNode::Type::kInt}, {"float", SpecNode::Type::kFloat}, {"number", SpecNode::Type::kNumber},
        {"str", SpecNode::Type::kStr}, {"bytes", SpecNode::Type::kBytes}, {"tuple", SpecNode::Type::kTuple},
        {"list", SpecNode::Type::kList}, {"dict", SpecNode::Type::kDict}, {"set", SpecNode::Type::kSet},
        {"persistent_id", SpecNode::Type::kPersistentId}, {"global", SpecNode::Type::kGlobal},
        {"call", SpecNode::Type::kCall}, {"one_of", SpecNode::Type::kOneOf}, {"any_data", SpecNode::Type::kAnyData},
    };
    SpecNode spec;
    bool found = false;
    for (const auto& [name, t] : kTypes) {
      if (name == type) {
        spec.type = t;
        found = true;
      }
    }
    if (!found) return rule_error(source, node, fmt::format("unknown argument type \"{}\"", type));
    switch (spec.type) {
      case SpecNode::Type::kTuple:
      case SpecNode::Type::kList:
      case SpecNode::Type::kSet:
      case SpecNode::Type::kDict:
        BRINE_TRY(check_keys(node, source, {"type", "of", "keys", "max_len"}, "a container spec"));
        if (spec.type != SpecNode::Type::kDict && node.find("keys")) {
          return rule_error(source, *node.find("keys"), "\"keys\" applies to dict specs only");
        }
        break;
      case SpecNode::Type::kStr:
      case SpecNode::Type::kBytes:
        BRINE_TRY(check_keys(node, source, {"type", "max_len", "values"}, "a string spec"));
        break;
      case SpecNode::Type::kGlobal:
        BRINE_TRY(check_keys(node, source, {"type", "names", "use"}, "a global spec"));
        break;
      case SpecNode::Type::kCall:
        BRINE_TRY(check_keys(node, source, {"type", "names", "empty"}, "a call spec"));
        break;
      case SpecNode::Type::kOneOf:
        BRINE_TRY(check_keys(node, source, {"type", "options"}, "a one_of spec"));
        break;
      default:
        BRINE_TRY(check_keys(node, source, {"type"}, fmt::format("a {} spec", type)));
    }
    if (const JsonNode* of = node.find("of")) {
      BRINE_TRY_ASSIGN(spec.of, parse_spec(*of, source, depth + 1));
    }
    if (const JsonNode* keys = node.find("keys")) {
      BRINE_TRY_ASSIGN(spec.keys, parse_spec(*keys, source, depth + 1));
    }
    if (const JsonNode* ml = node.find("max_len")) {
      if (ml->type != Type::kInt || ml->integer < 0) return rule_error(source, *ml, "\"max_len\" must be a non-negative integer");
      spec.max_len = ml->integer;
    }
    if (const JsonNode* values = node.find("values")) {
      if (values->type != Type::kArray) return rule_error(source, *values, "\"values\" must be a list of strings");
      for (const auto& v : values->array) {
        if (v.type != Type::kString) return rule_error(source, v, "\"values\" must be a list of strings");
        spec.values.push_back(v.string);
      }
    }
    if (const JsonNode* names = node.find("names")) {
      BRINE_TRY_ASSIGN(spec.names, parse_names(*names, source));
    }
    if (const JsonNode* use = node.find("use")) {
      BRINE_TRY_ASSIGN(spec.use, parse_uses(*use, source));
    }
    if (const JsonNode* empty = node.find("empty")) {
      if (empty->type != Type::kBool) return rule_error(source, *empty, "\"empty\" must be true or false");
      spec.empty = empty->boolean;
    }
    if (spec.type == SpecNode::Type::kOneOf) {
      const JsonNode* options = node.find("options");
      if (options == nullptr || options->type != Type::kArray || options->array.empty()) {
        return rule_error(source, node, "\"one_of\" needs a non-empty \"options\" list");
      }
      for (const auto& option : options->array) {
        BRINE_TRY_ASSIGN(int idx, parse_spec(option, source, depth + 1));
        spec.options.push_back(idx);
      }
    }
    rules.specs_.push_back(std::move(spec));
    return static_cast<int>(rules.specs_.size() - 1);
  }

  core::Result<ArgsSpec> parse_args(const JsonNode& node, std::string_view source) {
    if (node.type != Type::kObject) return rule_error(source, node, "\"args\" must be an object");
    BRINE_TRY(check_keys(node, source, {"min", "max", "items", "rest"}, "\"args\""));
    ArgsSpec args;
    for (auto [key, target] : {std::pair<std::string_view, int*>{"min", &args.min}, {"max", &args.max}}) {
      if (const JsonNode* v = node.find(key)) {
        if (v->type != Type::kInt || v->integer < 0 || v->integer > 255) {
          return rule_error(source, *v, fmt::format("\"{}\" must be an integer from 0 to 255", key));
        }
        *target = static_cast<int>(v->integer);
      }
    }
    if (args.min >= 0 && args.max >= 0 && args.min > args.max) return rule_error(source, node, "\"min\" is larger than \"max\"");
    if (const JsonNode* items = node.find("items")) {
      if (items->type != Type::kArray) return rule_error(source, *items, "\"items\" must be a list of argument specs");
      for (const auto& item : items->array) {
        BRINE_TRY_ASSIGN(int idx, parse_spec(item, source));
        args.items.push_back(idx);
      }
    }
    if (const JsonNode* rest = node.find("rest")) {
      BRINE_TRY_ASSIGN(args.rest, parse_spec(*rest, source));
    }
    return args;
  }

  /// Every module.qualname a spec tree names (global and call specs): inside a BUILD state,
  /// these are approved by the state rule itself.
  void collect_named(int spec, std::vector<std::string>& out, int depth = 0) {
    if (spec < 0 || depth > 32) return;
    const SpecNode& n = rules.specs_[static_cast<std::size_t>(spec)];
    if (n.type == SpecNode::Type::kGlobal || n.type == SpecNode::Type::kCall) out.insert(out.end(), n.names.begin(), n.names.end());
    collect_named(n.of, out, depth + 1);
    collect_named(n.keys, out, depth + 1);
    for (int o : n.options) collect_named(o, out, depth + 1);
  }

  core::Result<StateRule> parse_state(const JsonNode& node, std::string_view source) {
    if (node.type != Type::kObject) return rule_error(source, node, "\"state\" must be an object");
    BRINE_TRY(check_keys(node, source, {"shapes", "keys", "values", "items", "tuple"}, "\"state\""));
    StateRule st;
    if (const JsonNode* shapes = node.find("shapes")) {
      if (shapes->type != Type::kArray || shapes->array.empty()) {
        return rule_error(source, *shapes, "\"shapes\" must be a non-empty list of dict, slots, none, tuple, other");
      }
      st.shapes = 0;
      for (const auto& sh : shapes->array) {
        static const std::pair<std::string_view, std::uint8_t> kShapes[] = {
            {"dict", StateRule::kDict}, {"slots", StateRule::kSlots}, {"none", StateRule::kNone},
            {"tuple", StateRule::kTupleState}, {"other", StateRule::kOther}};
        bool found = false;
        for (const auto& [name, bit] : kShapes) {
          if (sh.type == Type::kString && sh.string == name) {
            st.shapes |= bit;
            found = true;
          }
        }
        if (!found) return rule_error(source, sh, "a state shape must be one of dict, slots, none, tuple, other");
      }
    }
    if (const JsonNode* keys = node.find("keys")) {
      if (keys->type == Type::kString && keys->string == "*") {
        st.any_key = true;
      } else if (keys->type == Type::kArray) {
        for (const auto& k : keys->array) {
          if (k.type != Type::kString || k.string.empty()) return rule_error(source, k, "\"keys\" entries must be attribute names");
          if (k.string.size() > 4 && k.string.starts_with("__") && k.string.ends_with("__")) {
            return rule_error(source, k, fmt::format("\"{}\" is a dunder name: a state may never set one", k.string));
          }
          st.keys.push_back(k.string);
        }
      } else {
        return rule_error(source, *keys, "\"keys\" must be a list of attribute names or \"*\"");
      }
    } else {
      st.any_key = true;
    }
    if (const JsonNode* values = node.find("values")) {
      BRINE_TRY_ASSIGN(st.values, parse_spec(*values, source));
      collect_named(st.values, st.named);
    }
    if (const JsonNode* items = node.find("items")) {
      if (items->type != Type::kObject) return rule_error(source, *items, "\"items\" must map attribute names to specs");
      for (const auto& [key, spec] : items->object) {
        BRINE_TRY_ASSIGN(int idx, parse_spec(spec, source));
        collect_named(idx, st.named);
        st.items.emplace_back(key, idx);
      }
    }
    if (const JsonNode* tuple = node.find("tuple")) {
      BRINE_TRY_ASSIGN(st.tuple, parse_args(*tuple, source));
      for (int i : st.tuple->items) collect_named(i, st.named);
      collect_named(st.tuple->rest, st.named);
    }
    if ((st.shapes & StateRule::kTupleState) != 0 && !st.tuple) {
      return rule_error(source, node, "state shape \"tuple\" needs a \"tuple\" argument spec");
    }
    return st;
  }

  core::Status target(const JsonNode& entry, std::string_view source, std::string& out, bool& is_module) {
    const JsonNode* g = entry.find("global");
    const JsonNode* m = entry.find("module");
    if ((g == nullptr) == (m == nullptr)) return rule_error(source, entry, "an entry needs exactly one of \"global\" or \"module\"");
    const JsonNode* t = g ? g : m;
    if (t->type != Type::kString || !valid_dotted(t->string)) {
      return rule_error(source, *t, "the target must be a dotted Python name");
    }
    if (g && t->string.find('.') == std::string::npos) {
      return rule_error(source, *t, fmt::format("\"global\" must be module.qualname, got \"{}\"", t->string));
    }
    out = t->string;
    is_module = m != nullptr;
    return {};
  }

  core::Status add_allow_entry(const JsonNode& entry, std::string_view source) {
    if (entry.type != Type::kObject) return rule_error(source, entry, "an allow entry must be an object");
    BRINE_TRY(check_keys(entry, source, {"global", "module", "use", "args", "state", "state_arg", "result", "loads", "note"}, "an allow entry"));
    AllowEntry a;
    BRINE_TRY(target(entry, source, a.target, a.is_module));
    const JsonNode* use = entry.find("use");
    if (use == nullptr) return rule_error(source, entry, "an allow entry needs \"use\"");
    BRINE_TRY_ASSIGN(a.uses, parse_uses(*use, source));
    if (const JsonNode* args = entry.find("args")) {
      if ((a.uses & (mask(Use::kCall) | mask(Use::kInstantiate))) == 0) {
        return rule_error(source, *args, "\"args\" needs use \"call\" or \"instantiate\"");
      }
      BRINE_TRY_ASSIGN(a.args, parse_args(*args, source));
    }
    if (const JsonNode* state = entry.find("state")) {
      if ((a.uses & mask(Use::kBuild)) == 0) return rule_error(source, *state, "\"state\" needs use \"build\"");
      BRINE_TRY_ASSIGN(a.state, parse_state(*state, source));
    }
    if (const JsonNode* result = entry.find("result")) {
      if (result->type != Type::kString || result->string != "arg0") {
        return rule_error(source, *result, "\"result\" can only be \"arg0\"");
      }
      a.result_is_arg0 = true;
    }
    if (const JsonNode* loads = entry.find("loads")) {
      const bool ok = loads->type == Type::kString && loads->string.size() == 4 && loads->string.starts_with("arg") &&
                      loads->string[3] >= '0' && loads->string[3] <= '9';
      if (!ok || (a.uses & mask(Use::kCall)) == 0) {
        return rule_error(source, *loads, "\"loads\" must be \"arg0\"..\"arg9\" on an entry with use \"call\"");
      }
      a.loads_arg = loads->string[3] - '0';
    }
    if (const JsonNode* sa = entry.find("state_arg")) {
      const bool ok = sa->type == Type::kString && sa->string.size() == 4 && sa->string.starts_with("arg") &&
                      sa->string[3] >= '0' && sa->string[3] <= '9';
      if (!ok || (a.uses & mask(Use::kCall)) == 0) {
        return rule_error(source, *sa, "\"state_arg\" must be \"arg0\"..\"arg9\" on an entry with use \"call\"");
      }
      a.state_arg = sa->string[3] - '0';
    }
    BRINE_TRY_ASSIGN(a.note, get_string(entry, "note", source, false));
    a.source = fmt::format("{}:{}", source, entry.line);
    const std::size_t idx = rules.allow_.size();
    (a.is_module ? rules.allow_module_ : rules.allow_exact_).emplace(a.target, idx);
    rules.allow_.push_back(std::move(a));
    return {};
  }

  core::Status add_deny_entry(const JsonNode& entry, std::string_view source) {
    if (entry.type != Type::kObject) return rule_error(source, entry, "a deny entry must be an object");
    BRINE_TRY(check_keys(entry, source, {"id", "global", "module", "severity", "message", "advisory"}, "a deny entry"));
    DenyEntry d;
    BRINE_TRY(target(entry, source, d.target, d.is_module));
    BRINE_TRY_ASSIGN(std::string severity, get_string(entry, "severity", source, true));
    auto sev = severity_from_name(severity);
    if (!sev || *sev == Severity::kInfo) {
      return rule_error(source, *entry.find("severity"),
                        fmt::format("severity must be critical, high, medium or low, not \"{}\"", severity));
    }
    d.severity = *sev;
    BRINE_TRY_ASSIGN(d.message, get_string(entry, "message", source, true));
    if (d.message.empty() || d.message.find('\n') != std::string::npos) {
      return rule_error(source, *entry.find("message"), "\"message\" must be one non-empty line");
    }
    BRINE_TRY_ASSIGN(d.advisory, get_string(entry, "advisory", source, false));
    BRINE_TRY_ASSIGN(d.id, get_string(entry, "id", source, false));
    if (d.id.empty()) d.id = "deny:" + d.target;
    d.source = fmt::format("{}:{}", source, entry.line);
    auto& index = d.is_module ? rules.deny_module_ : rules.deny_exact_;
    if (index.count(d.target) != 0) {
      return rule_error(source, entry, fmt::format("\"{}\" is denied twice (first at {})", d.target, rules.deny_[index[d.target]].source));
    }
    index.emplace(d.target, rules.deny_.size());
    rules.deny_.push_back(std::move(d));
    return {};
  }

  /// "reexports": {"pkg.mod.name": "defining.module.qualname"} — names importable from a module
  /// that are really another module's object. brine judges (and denies) the canonical name.
  core::Status add_reexports(const JsonNode& node, std::string_view source) {
    if (node.type != Type::kObject) return rule_error(source, node, "\"reexports\" must be an object");
    for (const auto& [from, to] : node.object) {
      if (to.type != Type::kString || !valid_dotted(to.string) || !valid_dotted(from) || from.find('.') == std::string::npos) {
        return rule_error(source, to, fmt::format("re-export \"{}\" must map module.name to a dotted name", from));
      }
      rules.reexports_[from] = to.string;
    }
    return {};
  }

  core::Status add_aliases(const JsonNode& node, std::string_view source) {
    if (node.type != Type::kObject) return rule_error(source, node, "\"aliases\" must be an object");
    BRINE_TRY(check_keys(node, source, {"py2_names", "py2_modules", "modules"}, "\"aliases\""));
    for (const auto& [key, table] : node.object) {
      if (table.type != Type::kObject) return rule_error(source, table, fmt::format("\"{}\" must be an object", key));
      for (const auto& [from, to] : table.object) {
        if (to.type != Type::kString || !valid_dotted(to.string) || !valid_dotted(from)) {
          return rule_error(source, to, fmt::format("alias \"{}\" must map a dotted name to a dotted name", from));
        }
        if (key == "py2_names") {
          if (from.find('.') == std::string::npos || to.string.find('.') == std::string::npos) {
            return rule_error(source, to, "py2_names maps module.name to module.name");
          }
          rules.py2_names_[from] = to.string;
        } else if (key == "py2_modules") {
          rules.py2_modules_[from] = to.string;
        } else {
          rules.module_aliases_[from] = to.string;
        }
      }
    }
    return {};
  }
};

RuleSetBuilder::RuleSetBuilder() : state_(std::make_unique<State>()) {}
RuleSetBuilder::RuleSetBuilder(RuleSetBuilder&&) noexcept = default;
RuleSetBuilder::~RuleSetBuilder() = default;

core::Status RuleSetBuilder::add_file(std::string_view text, std::string_view source) {
  return load_file(text, source, nullptr);
}

std::vector<std::string> RuleSetBuilder::check_file(std::string_view text, std::string_view source) {
  std::vector<std::string> problems;
  if (auto st = load_file(text, source, &problems); !st) problems.push_back(st.error().detail);
  return problems;
}

core::Status RuleSetBuilder::load_file(std::string_view text, std::string_view source, std::vector<std::string>* problems) {
  // With `problems`, a bad entry (or top-level key) is recorded and the next one is checked, so
  // `brine rules check` reports every problem at once; without, the first one is the error.
  auto note = [&](core::Status st) -> core::Status {
    if (st || problems == nullptr) return st;
    problems->push_back(st.error().detail);
    return {};
  };
  BRINE_TRY_ASSIGN(JsonNode root, parse_json(text, source));
  if (root.type != Type::kObject) return rule_error(source, root, "a rule file must be a JSON object");
  for (const auto& member : root.object) {
    static constexpr std::string_view kKeys[] = {"schema", "name", "description", "versions", "allow", "deny", "aliases", "reexports"};
    if (std::find(std::begin(kKeys), std::end(kKeys), member.first) == std::end(kKeys)) {
      BRINE_TRY(note(rule_error(source, member.second, fmt::format("unknown key \"{}\" in a rule file", member.first))));
    }
  }
  const JsonNode* schema = root.find("schema");
  if (schema == nullptr || schema->type != Type::kString || schema->string != "brine-rules/1") {
    BRINE_TRY(note(rule_error(source, schema ? *schema : root, "\"schema\" must be \"brine-rules/1\"")));
  }
  for (std::string_view key : {"name", "description"}) {
    if (const JsonNode* v = root.find(key); v && v->type != Type::kString) {
      BRINE_TRY(note(rule_error(source, *v, fmt::format("\"{}\" must be a string", key))));
    }
  }
  if (const JsonNode* allow = root.find("allow")) {
    if (allow->type != Type::kArray) {
      BRINE_TRY(note(rule_error(source, *allow, "\"allow\" must be a list")));
    } else {
      for (const auto& entry : allow->array) BRINE_TRY(note(state_->add_allow_entry(entry, source)));
    }
  }
  if (const JsonNode* deny = root.find("deny")) {
    if (deny->type != Type::kArray) {
      BRINE_TRY(note(rule_error(source, *deny, "\"deny\" must be a list")));
    } else {
      for (const auto& entry : deny->array) BRINE_TRY(note(state_->add_deny_entry(entry, source)));
    }
  }
  if (const JsonNode* aliases = root.find("aliases")) BRINE_TRY(note(state_->add_aliases(*aliases, source)));
  if (const JsonNode* re = root.find("reexports")) BRINE_TRY(note(state_->add_reexports(*re, source)));
  if (const JsonNode* versions = root.find("versions"); versions && versions->type != Type::kObject) {
    BRINE_TRY(note(rule_error(source, *versions, "\"versions\" must map library names to the versions the file was generated from")));
  }
  state_->rules.sources_.emplace_back(source);
  return {};
}

core::Status RuleSetBuilder::add_allow(std::string_view spec) {
  std::string_view target = spec;
  std::string_view uses;
  if (const auto colon = spec.find(':'); colon != std::string_view::npos) {
    target = spec.substr(0, colon);
    uses = spec.substr(colon + 1);
  }
  const std::string source = fmt::format("--allow {}", spec);
  if (!valid_dotted(target) || target.find('.') == std::string_view::npos) {
    return core::fail(core::Error{ErrorCode::kUsage, 0, {}, {}, fmt::format("--allow needs module.qualname[:use,...], got \"{}\"", spec)});
  }
  AllowEntry a;
  a.target = std::string(target);
  a.source = source;
  if (uses.empty()) {
    a.uses = 0x7F;  // every use
  } else {
    a.uses = 0;
    std::size_t start = 0;
    while (start <= uses.size()) {
      const auto comma = uses.find(',', start);
      const std::string_view one = uses.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
      auto u = use_from_name(one);
      if (!u) return core::fail(core::Error{ErrorCode::kUsage, 0, {}, {}, fmt::format("--allow: unknown use \"{}\"", one)});
      a.uses |= mask(*u);
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
  }
  state_->rules.allow_exact_.emplace(a.target, state_->rules.allow_.size());
  state_->rules.allow_.push_back(std::move(a));
  return {};
}

std::shared_ptr<const RuleSet> RuleSetBuilder::build() && {
  return std::make_shared<const RuleSet>(std::move(state_->rules));
}

std::vector<std::string> builtin_pack_names() {
  std::vector<std::string> names;
  for (const auto& f : builtin_rule_files()) {
    if (f.name.starts_with("packs/")) names.emplace_back(f.name.substr(6));
  }
  return names;
}

core::Result<std::string> read_rule_file(const std::string& path) {
  std::error_code ec;
  std::ifstream in;
  if (!std::filesystem::is_directory(path, ec)) in.open(path, std::ios::binary);
  if (!in) return core::fail(core::Error{ErrorCode::kRules, 0, {}, {}, fmt::format("{}: not a readable file", path)});
  std::ostringstream text;
  text << in.rdbuf();
  if (!in && !in.eof()) return core::fail(core::Error{ErrorCode::kRules, 0, {}, {}, fmt::format("{}: read error", path)});
  return text.str();
}

namespace {
const BuiltinRuleFile* builtin_file(std::string_view name) {
  for (const auto& f : builtin_rule_files()) {
    if (f.name == name) return &f;
  }
  return nullptr;
}
}  // namespace

std::vector<std::string> check_rule_file(const std::string& path) {
  auto text = read_rule_file(path);
  if (!text) return {text.error().detail};
  RuleSetBuilder builder;
  // The rules every load starts from: a file that denies what the denylist denies is refused.
  for (std::string_view name : {"aliases", "denylist"}) {
    const BuiltinRuleFile* f = builtin_file(name);
    if (f == nullptr || !builder.add_file(f->text, fmt::format("rules/{}.json", name))) {
      return {fmt::format("built-in rules/{}.json is missing or invalid", name)};
    }
  }
  return builder.check_file(*text, path);
}

namespace {

core::Result<std::shared_ptr<const RuleSet>> build_rules(const RuleOptions& options) {
  RuleSetBuilder builder;
  for (std::string_view name : {"aliases", "denylist"}) {
    const BuiltinRuleFile* f = builtin_file(name);
    if (f == nullptr) return core::fail(core::Error{ErrorCode::kRules, 0, {}, {}, fmt::format("built-in rules/{}.json is missing", name)});
    BRINE_TRY(builder.add_file(f->text, fmt::format("rules/{}.json", name)));
  }
  if (options.use_default) BRINE_TRY(builder.add_file(builtin_file("default")->text, "rules/default.json"));
  std::set<std::string> loaded;
  for (const std::string& file : options.rule_files) {
    if (!loaded.insert(file).second) continue;
    if (const BuiltinRuleFile* pack = builtin_file("packs/" + file)) {
      BRINE_TRY(builder.add_file(pack->text, fmt::format("rules/packs/{}.json", file)));
      continue;
    }
    auto text = read_rule_file(file);
    if (!text) {
      return core::fail(core::Error{ErrorCode::kRules, 0, {}, {},
                                    fmt::format("{}: not a built-in pack ({}) and not a readable file", file,
                                                fmt::join(builtin_pack_names(), ", "))});
    }
    BRINE_TRY(builder.add_file(*text, file));
  }
  for (const std::string& allow : options.allow) BRINE_TRY(builder.add_allow(allow));
  return std::move(builder).build();
}

}  // namespace

core::Result<std::shared_ptr<const RuleSet>> load_rules(const RuleOptions& options) {
  // Rule files from disk and --allow values are the user's input: they are checked now, so a
  // mistake is a usage error before anything is scanned. Built-in files only cannot fail to
  // load (tests/unit load every combination), so they are parsed when first consulted.
  const bool builtin_only = options.allow.empty() &&
                            std::all_of(options.rule_files.begin(), options.rule_files.end(),
                                        [](const std::string& f) { return builtin_file("packs/" + f) != nullptr; });
  if (!builtin_only) return build_rules(options);
  return RuleSet::deferred([options] {
    auto rules = build_rules(options);
    if (!rules) {
      // Not reachable from input: the shipped rule text itself is broken.
      std::fprintf(stderr, "brine: the built-in rules do not load: %s\n", rules.error().detail.c_str());
      std::abort();
    }
    return *std::move(rules);
  });
}

}  // namespace brine::rules
