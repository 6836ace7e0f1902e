#include "analysis/analyzer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "analysis/arg_check.hpp"
#include "analysis/call_repr.hpp"
#include "analysis/nested_bytes.hpp"
#include "core/text.hpp"

namespace brine::analysis {

using pickle::Event;
using pickle::Kind;
using pickle::ValueRef;
using rules::Severity;
using rules::Use;
using rules::UseMask;

Finding error_finding(const core::Error& error, const std::string& member) {
  Finding f;
  const bool limit = error.code == core::ErrorCode::kLimitExceeded || error.code == core::ErrorCode::kTimeout;
  if (limit) {
    // detail starts with the limit's flag name: "max-opcodes: ..."
    const auto colon = error.detail.find(':');
    f.rule = "limit:" + (colon == std::string::npos ? std::string(core::error_slug(error.code)) : error.detail.substr(0, colon));
  } else {
    f.rule = fmt::format("malformed:{}", core::error_slug(error.code));
  }
  f.severity = Severity::kHigh;
  f.impact = Verdict::kError;
  f.member = error.member.empty() ? member : error.member;
  f.offset = error.offset;
  f.opcode = error.opcode;
  f.message = core::Error{error.code, error.offset, {}, error.opcode, error.detail}.describe();
  return f;
}

namespace {

constexpr std::array<Use, 7> kUses = {Use::kReference, Use::kCall, Use::kInstantiate, Use::kBuild,
                                      Use::kSetItem, Use::kAppend, Use::kStateValue};

bool is_dunder(std::string_view s) { return s.size() > 4 && s.starts_with("__") && s.ends_with("__"); }

std::size_t use_index(Use u) {
  for (std::size_t i = 0; i < kUses.size(); ++i) {
    if (kUses[i] == u) return i;
  }
  return 0;
}

struct UseSite {
  std::uint64_t offset = 0;
  pickle::Op op = pickle::Op::STOP;
  std::string call;  // reconstruction of the first site
  bool seen = false;
};

/// Everything known about one global node.
struct GlobalInfo {
  UseMask uses = 0;
  std::array<UseSite, 7> sites;
  bool args_rejected = false;     // some call failed every allow entry's ARGSPEC
  bool named_in_state = false;    // found in a state whose rule names it: approved there
  UseSite rejected_site;
};

class Analyzer {
 public:
  Analyzer(const pickle::PickleRun& run, const rules::RuleSet& rules, const PickleContext& ctx)
      : run_(run), v_(run.values), rules_(rules), ctx_(ctx),
        matcher_(rules, run.values, mutated_, [this](ValueRef g) -> std::string_view { return resolution(g).loader_name; }) {}

  PickleAnalysis analyze() {
    for (const Event& e : run_.events) {
      if (e.kind == Event::Kind::kBuild || e.kind == Event::Kind::kSetItem || e.kind == Event::Kind::kAppend) {
        mutated_.insert(e.subject);
      }
    }
    std::size_t loads = 0;
    for (const Event& e : run_.events) loads += e.kind == Event::Kind::kPersistentLoad ? 1 : 0;
    out_.storages.reserve(loads);  // one per storage persistent id at most: no doubling copies
    for (const Event& e : run_.events) handle(e);
    // The walk reports globals and call records found among the values. Neither exists without
    // an event (every GLOBAL, STACK_GLOBAL, INST and call records one), so a pickle without
    // events (plain data, however big) has nothing for it to find.
    if (!run_.events.empty()) walk_values();
    report_globals();
    report_anomalies();
    if (run_.error) out_.findings.push_back(error_finding(*run_.error, ctx_.member));
    return std::move(out_);
  }

 private:
  // ---- name resolution: per global value here, per name for the whole thread in the rule set ----
  const rules::Resolution& resolution(ValueRef global) {
    auto it = resolutions_.find(global);
    if (it == resolutions_.end()) {
      const auto& g = v_.global_rec(global);
      it = resolutions_.emplace(global, rules_.resolve_shared(g.module, g.name, g.protocol)).first;
    }
    return *it->second;
  }

  Finding make(std::string rule, Severity sev, Verdict impact, std::uint64_t offset, pickle::Op op, std::string message) {
    Finding f;
    f.rule = std::move(rule);
    f.severity = sev;
    f.impact = impact;
    f.member = ctx_.member;
    f.offset = offset;
    f.opcode = std::string(pickle::name(op));
    f.message = std::move(message);
    return f;
  }

  void add_use(ValueRef global, Use use, std::uint64_t offset, pickle::Op op, ValueRef site_value, const std::string& prefix = {}) {
    GlobalInfo& info = globals_[global];
    if (order_.insert(global).second) order_list_.push_back(global);
    info.uses |= rules::mask(use);
    UseSite& site = info.sites[use_index(use)];
    if (!site.seen) {
      site.seen = true;
      site.offset = offset;
      site.op = op;
      if (site_value != pickle::kNoValue) site.call = prefix + repr_value(v_, site_value);
    }
  }

  /// The global an object is an instance of, as far as the rules can tell (kNoValue if unknown).
  ValueRef type_of(ValueRef obj) const {
    auto it = type_of_.find(obj);
    return it == type_of_.end() ? pickle::kNoValue : it->second;
  }

  void handle(const Event& e) {
    switch (e.kind) {
      case Event::Kind::kGlobal: {
        // Importing is not yet a use: how the global is used (called, passed as a value, found in
        // a state) is established by the events and the value walk; one never used at all is
        // a plain reference (report_globals).
        globals_[e.subject];
        if (order_.insert(e.subject).second) order_list_.push_back(e.subject);
        const auto& g = v_.global_rec(e.subject);
        if (!g.resolved) {
          Finding f = make("evasion:unresolvable-global", Severity::kCritical, Verdict::kMalicious, e.offset, e.op,
                           "STACK_GLOBAL takes its module or name from a value computed at load time, so no scanner can "
                           "know statically what it imports");
          f.call = global_display(v_, e.subject);
          out_.findings.push_back(std::move(f));
        }
        return;
      }
      case Event::Kind::kCall: handle_call(e); return;
      case Event::Kind::kBuild: handle_mutation(e, Use::kBuild); return;
      case Event::Kind::kSetItem: handle_mutation(e, Use::kSetItem); return;
      case Event::Kind::kAppend: handle_mutation(e, Use::kAppend); return;
      case Event::Kind::kPersistentLoad: handle_persistent(e); return;
      case Event::Kind::kExtension: {
        Finding f = make("evasion:extension-code", Severity::kHigh, Verdict::kMalicious, e.offset, e.op,
                         "EXT opcodes name globals through copyreg's extension registry, which is empty unless the "
                         "loading program fills it: the imported object cannot be known from the file");
        f.call = repr_value(v_, e.subject);
        out_.findings.push_back(std::move(f));
        return;
      }
      case Event::Kind::kOutOfBandBuffer: {
        Finding f = make("unapproved:out-of-band-buffer", Severity::kMedium, Verdict::kUnapproved, e.offset, e.op,
                         "NEXT_BUFFER refers to data that is not in the file (protocol-5 out-of-band buffer)");
        out_.findings.push_back(std::move(f));
        return;
      }
    }
  }

  void handle_call(const Event& e) {
    const ValueRef call = e.subject;
    const auto& c = v_.call_rec(call);
    const pickle::Node& callee = v_.node(c.callable);
    if (callee.kind != Kind::kGlobal) {
      if (callee.kind == Kind::kExt || callee.kind == Kind::kBuffer) return;  // reported with the EXT/buffer
      const bool persistent = callee.kind == Kind::kPersistent;
      Finding f = make(persistent ? "unapproved:call-of-persistent-object" : "unapproved:call-of-computed-object",
                       Severity::kHigh, Verdict::kUnapproved, e.offset, e.op,
                       persistent ? "calls an object returned by persistent_load"
                                  : "calls the result of an earlier call: which code runs depends on that result");
      f.call = repr_value(v_, call);
      out_.findings.push_back(std::move(f));
      return;
    }
    if (!v_.global_rec(c.callable).resolved) return;  // reported with the global
    const bool instantiate = c.kind == pickle::CallKind::kNewObj || c.kind == pickle::CallKind::kNewObjEx;
    const Use use = instantiate ? Use::kInstantiate : Use::kCall;
    add_use(c.callable, use, e.offset, e.op, call);
    type_of_[call] = c.callable;

    const rules::Resolution& r = resolution(c.callable);
    if (r.deny || !r.traversal.empty()) return;
    // Of the entries granting this use, one without ARGSPEC or with a matching one approves it.
    bool granted = false, approved = false;
    for (const rules::AllowEntry* entry : r.allow) {
      if ((entry->uses & rules::mask(use)) == 0) continue;
      granted = true;
      ImpliedUses implied;
      if (entry->args && !matcher_.match_args(*entry->args, c.args, c.kwargs, implied)) continue;
      approved = true;
      for (const auto& [global, uses] : implied) {
        for (Use u : kUses) {
          if ((uses & rules::mask(u)) != 0 && u != Use::kReference) add_use(global, u, e.offset, e.op, call);
        }
      }
      // An argument the callee consumes as a global with a named use (the class of a factory, the
      // rebuild function of _rebuild_from_type_v2) is not also a plain reference.
      if (v_.node(c.args).kind == Kind::kTuple) {
        for (ValueRef item : v_.items(c.args)) {
          for (const auto& [global, uses] : implied) {
            if (global == item && (uses & ~rules::mask(Use::kReference)) != 0) consumed_.insert(item_key(call, item));
          }
        }
      }
      if (entry->state_arg >= 0) {
        // torch's _set_obj_state: setattr(obj, k, v) per key of the dict (or both halves of a
        // (dict, slots) pair) -- judged exactly like a BUILD state with no state rule
        const auto args = v_.items(c.args);
        if (static_cast<std::size_t>(entry->state_arg) < args.size()) {
          check_dunder_keys(args[static_cast<std::size_t>(entry->state_arg)], e, [&] { return repr_value(v_, call); });
          states_.push_back(StateRoot{args[static_cast<std::size_t>(entry->state_arg)], nullptr, e.offset, e.op});
          consumed_.insert(item_key(call, args[static_cast<std::size_t>(entry->state_arg)]));
        }
      }
      if (entry->loads_arg >= 0) collect_nested(c, static_cast<std::size_t>(entry->loads_arg), r.loader_name, e);
      if (entry->result_is_arg0) {
        const auto args = v_.items(c.args);
        type_of_[call] = !args.empty() && v_.node(args[0]).kind == Kind::kGlobal ? args[0] : pickle::kNoValue;
      }
      break;
    }
    if (granted && !approved) {
      GlobalInfo& info = globals_[c.callable];
      if (!info.args_rejected) {
        info.args_rejected = true;
        info.rejected_site = UseSite{e.offset, e.op, repr_value(v_, call), true};
      }
    }
  }

  /// The bytes an approved loader receives as argument `index`, computed exactly
  /// (nested_bytes.hpp); when they cannot be, the file is not clean.
  void collect_nested(const pickle::CallRec& c, std::size_t index, const std::string& loader, const Event& e) {
    const auto args = v_.node(c.args).kind == Kind::kTuple ? v_.items(c.args) : pickle::Items{};
    LoaderBytes bytes = index < args.size() ? loader_bytes(v_, args[index], [this](ValueRef r) { return matcher_.callee_name(r); }, mutated_)
                                            : LoaderBytes{false, {}, fmt::format("argument {} is missing", index)};
    if (!bytes.computed) {
      Finding f = make("unapproved:nested-bytes-not-computable", Severity::kHigh, Verdict::kUnapproved, e.offset, e.op,
                       fmt::format("{} deserializes its argument {} as a file, and brine cannot establish those bytes: {}", loader,
                                   index, bytes.why));
      f.global = loader;
      f.call = repr_value(v_, e.subject);
      out_.findings.push_back(std::move(f));
      return;
    }
    NestedPayload p;
    p.data = std::move(bytes.data);
    p.loader = loader;
    p.offset = e.offset;
    out_.nested.push_back(std::move(p));
  }

  void handle_mutation(const Event& e, Use use) {
    const ValueRef target = e.subject;
    const pickle::Node& t = v_.node(target);
    const std::string_view what = use == Use::kBuild ? "gives state (BUILD) to" : use == Use::kSetItem ? "sets items on" : "appends items to";
    auto site_repr = [&]() {
      const std::string obj = repr_value(v_, target, ReprLimits{120, 4, 40, 3});
      if (use == Use::kBuild) return fmt::format("{}.__setstate__({})", obj, repr_value(v_, e.arg));
      if (use == Use::kSetItem) return fmt::format("{}[{}] = {}", obj, repr_value(v_, e.arg, ReprLimits{80, 4, 40, 2}), repr_value(v_, e.arg2));
      return fmt::format("{}.extend({})", obj, repr_value(v_, e.arg));
    };
    if (t.kind == Kind::kGlobal) {
      const bool build = use == Use::kBuild;
      Finding f = make(build ? "evasion:build-on-global" : "unapproved:mutates-global", build ? Severity::kCritical : Severity::kHigh,
                       build ? Verdict::kMalicious : Verdict::kUnapproved, e.offset, e.op,
                       fmt::format("{} a module, class or function object itself: this rewrites code other loads will use", what));
      f.global = v_.global_rec(target).resolved ? resolution(target).loader_name : std::string();
      f.call = site_repr();
      out_.findings.push_back(std::move(f));
      return;
    }
    const ValueRef type = t.kind == Kind::kCall ? type_of(target) : pickle::kNoValue;
    if (type == pickle::kNoValue) {
      Finding f = make(fmt::format("unapproved:{}-on-unknown-object", rules::use_name(use)), Severity::kHigh, Verdict::kUnapproved,
                       e.offset, e.op, fmt::format("{} a {} whose type the rules cannot establish", what, pickle::kind_name(t.kind)));
      f.use = std::string(rules::use_name(use));
      f.call = site_repr();
      out_.findings.push_back(std::move(f));
      return;
    }
    add_use(type, use, e.offset, e.op, pickle::kNoValue);
    UseSite& site = globals_[type].sites[use_index(use)];
    if (site.call.empty()) site.call = site_repr();
    if (use == Use::kBuild) judge_state(e, type, site_repr);
  }

  /// BUILD on an instance of an approved class: the state must fit one of the class's state rules
  /// (an entry with "build" but no rule accepts a dict or (dict, slots) state); its dunder keys are
  /// malicious; every global and callable inside it is a state-value use (walk_values).
  template <typename Repr>
  void judge_state(const Event& e, ValueRef type, Repr&& site_repr) {
    const ValueRef state = e.arg;
    const rules::Resolution& r = resolution(type);
    const rules::StateRule* accepted = nullptr;
    bool judged = false, ok = false;
    if (!r.deny && r.traversal.empty()) {
      for (const rules::AllowEntry* entry : r.allow) {
        if ((entry->uses & rules::mask(Use::kBuild)) == 0) continue;
        judged = true;
        ImpliedUses implied;
        if (!state_fits(entry->state ? &*entry->state : nullptr, state, implied)) continue;
        ok = true;
        accepted = entry->state ? &*entry->state : nullptr;
        for (const auto& [global, uses] : implied) {
          for (Use u : kUses) {
            if ((uses & rules::mask(u)) != 0 && u != Use::kReference) add_use(global, u, e.offset, e.op, pickle::kNoValue);
          }
        }
        break;
      }
    }
    if (judged && !ok) {
      Finding f = make("unapproved-state", Severity::kHigh, Verdict::kUnapproved, e.offset, e.op,
                       fmt::format("{} is approved to receive state, but not this state (see its state rule)", r.loader_name));
      f.global = r.loader_name;
      f.use = "build";
      f.call = site_repr();
      out_.findings.push_back(std::move(f));
    }
    check_dunder_keys(state, e, site_repr);
    states_.push_back(StateRoot{state, accepted, e.offset, e.op});
  }

  /// A dunder key in a state dict or slots dict is malicious whatever the rules say.
  template <typename Repr>
  void check_dunder_keys(ValueRef state, const Event& e, Repr&& site_repr) {
    for (ValueRef dict : state_dicts(state)) {
      for (const auto& [k, v] : v_.entries(dict)) {
        const auto key = v_.node(k).kind == Kind::kStr || v_.node(k).kind == Kind::kPy2Str ? std::optional(v_.node(k).text) : std::nullopt;
        if (!key || !is_dunder(*key)) continue;
        Finding f = make("evasion:state-dunder-key", Severity::kCritical, Verdict::kMalicious, e.offset, e.op,
                         fmt::format("the state sets {}: a dunder attribute replaces the object's class, dictionary or "
                                     "protocol methods, which later code calls",
                                     core::py_repr_str(*key)));
        f.use = "build";
        f.call = site_repr();
        out_.findings.push_back(std::move(f));
      }
    }
  }

  /// The dicts whose keys become attributes: a dict state, or both halves of a (dict, slots) state.
  std::vector<ValueRef> state_dicts(ValueRef state) const {
    std::vector<ValueRef> out;
    const pickle::Node& n = v_.node(state);
    if (n.kind == Kind::kDict) {
      out.push_back(state);
    } else if (n.kind == Kind::kTuple && v_.items(state).size() == 2) {
      for (ValueRef half : v_.items(state)) {
        if (v_.node(half).kind == Kind::kDict) out.push_back(half);
      }
    }
    return out;
  }

  bool is_slots_state(ValueRef state) const {
    if (v_.node(state).kind != Kind::kTuple) return false;
    const auto items = v_.items(state);
    return items.size() == 2 && (v_.node(items[0]).kind == Kind::kDict || v_.node(items[0]).kind == Kind::kNone) &&
           v_.node(items[1]).kind == Kind::kDict;
  }

  bool dict_fits(const rules::StateRule& rule, ValueRef dict, ImpliedUses& implied) {
    for (const auto& [k, v] : v_.entries(dict)) {
      const pickle::Node& kn = v_.node(k);
      if (kn.kind != Kind::kStr && kn.kind != Kind::kPy2Str) return false;
      const std::string_view key = kn.text;
      if (!rule.any_key) {
        bool listed = false;
        for (const auto& allowed : rule.keys) listed = listed || allowed == key;
        if (!listed) return false;
      }
      int spec = rule.values;
      for (const auto& [name, idx] : rule.items) {
        if (name == key) spec = idx;
      }
      if (spec >= 0 && !matcher_.match_value(spec, v, implied)) return false;
    }
    return true;
  }

  /// Does `state` fit `rule`? No rule: a dict or (dict, slots) state, judged by the walk alone.
  bool state_fits(const rules::StateRule* rule, ValueRef state, ImpliedUses& implied) {
    const pickle::Node& n = v_.node(state);
    if (rule == nullptr) return n.kind == Kind::kDict || is_slots_state(state);
    using SR = rules::StateRule;
    if (n.kind == Kind::kDict && (rule->shapes & SR::kDict) != 0) return dict_fits(*rule, state, implied);
    if (n.kind == Kind::kNone && (rule->shapes & SR::kNone) != 0) return true;
    if ((rule->shapes & SR::kSlots) != 0 && is_slots_state(state)) {
      const auto halves = v_.items(state);
      return (v_.node(halves[0]).kind == Kind::kNone || dict_fits(*rule, halves[0], implied)) && dict_fits(*rule, halves[1], implied);
    }
    if (n.kind == Kind::kTuple && (rule->shapes & SR::kTupleState) != 0) {
      return matcher_.match_args(*rule->tuple, state, pickle::kNoValue, implied);
    }
    if ((rule->shapes & SR::kOther) != 0 && n.kind != Kind::kDict && n.kind != Kind::kNone) {
      return rule->values < 0 || matcher_.match_value(rule->values, state, implied);
    }
    return false;
  }

  static std::uint64_t item_key(ValueRef call, ValueRef item) { return (static_cast<std::uint64_t>(call) << 32) | item; }

  /// How each global appears as a value. A global anywhere in the object graph — an argument no
  /// spec consumed, a dict or list item, a persistent id, what the pickle returns — is a plain
  /// `reference`; one inside a BUILD state (at any depth, not inside a nested call's arguments,
  /// which that call's own rule judges) is a `state-value`, and so is the callable of a call
  /// record found there — unless the state rule that accepted the state names it. Explicit stacks;
  /// every (node, context) pair is visited once, so shared and cyclic values cost nothing extra.
  void walk_values() {
    struct Item {
      ValueRef value;
      const StateRoot* state;  // nullptr: plain value
    };
    std::vector<Item> stack;
    // Capacity for every stored value at once (a hint, bounded): each is pushed at most once per
    // context, and a doubling stack would copy itself into fresh pages as it grows.
    stack.reserve(std::min<std::size_t>(v_.stored_size() + 1, std::size_t{1} << 20));
    // Leaves (scalars) hold no global and are never pushed; the plain context is a bitmap over
    // the values, state contexts (few values, usually) a hash set.
    std::vector<bool> seen_plain(v_.size(), false);
    std::unordered_set<std::uint64_t> seen;
    std::unordered_map<const rules::StateRule*, std::uint32_t> rule_ids;
    auto ctx_id = [&](const StateRoot* s) -> std::uint64_t {
      auto [it, fresh] = rule_ids.emplace(s->rule, static_cast<std::uint32_t>(rule_ids.size() + 1));
      return it->second;
    };
    auto push_node = [&](ValueRef v, const StateRoot* s) {
      if (s == nullptr) {
        if (seen_plain[v]) return;
        seen_plain[v] = true;
        stack.push_back({v, s});
      } else if (seen.insert((ctx_id(s) << 32) | v).second) {
        stack.push_back({v, s});
      }
    };
    // The leaf test is inline and first: most items of a big pickle are scalars.
    auto push = [&](ValueRef v, const StateRoot* s) {
      if (v != pickle::kNoValue && !v_.leaf(v)) push_node(v, s);
    };
    auto exempt = [&](const StateRoot* s, ValueRef global) {
      if (s->rule == nullptr || !v_.global_rec(global).resolved) return false;
      const rules::Resolution& r = resolution(global);
      for (const auto& name : s->rule->named) {
        if (name == r.loader_name) {
          globals_[global].named_in_state = true;
          return true;
        }
      }
      return false;
    };
    push(run_.root, nullptr);
    for (const Event& e : run_.events) {
      switch (e.kind) {
        case Event::Kind::kCall: {
          const auto& c = v_.call_rec(e.subject);
          if (v_.node(c.args).kind == Kind::kTuple) {
            for (ValueRef item : v_.items(c.args)) {
              if (consumed_.count(item_key(e.subject, item)) == 0) push(item, nullptr);
            }
          } else {
            push(c.args, nullptr);
          }
          push(c.kwargs, nullptr);
          break;
        }
        case Event::Kind::kSetItem: push(e.arg, nullptr); push(e.arg2, nullptr); break;
        case Event::Kind::kAppend: push(e.arg, nullptr); break;
        case Event::Kind::kPersistentLoad: push(v_.persistent_rec(e.subject).pid, nullptr); break;
        default: break;
      }
    }
    for (const StateRoot& s : states_) push(s.state, &s);
    while (!stack.empty()) {
      const Item it = stack.back();
      stack.pop_back();
      const pickle::Node& n = v_.node(it.value);
      switch (n.kind) {
        case Kind::kGlobal:
          if (it.state == nullptr) {
            add_use(it.value, Use::kReference, v_.global_rec(it.value).offset, v_.global_rec(it.value).op, pickle::kNoValue);
          } else if (!exempt(it.state, it.value)) {
            add_use(it.value, Use::kStateValue, it.state->offset, it.state->op, pickle::kNoValue);
          }
          break;
        case Kind::kCall: {
          const ValueRef callee = v_.call_rec(it.value).callable;
          if (it.state != nullptr && v_.node(callee).kind == Kind::kGlobal && !exempt(it.state, callee)) {
            add_use(callee, Use::kStateValue, it.state->offset, it.state->op, it.value);
          }
          break;  // its arguments are judged with the call
        }
        case Kind::kTuple: case Kind::kList: case Kind::kSet: case Kind::kFrozenSet:
          for (ValueRef item : v_.items(it.value)) push(item, it.state);
          break;
        case Kind::kDict:
          for (const auto& [k, v] : v_.entries(it.value)) {
            push(k, it.state);
            push(v, it.state);
          }
          break;
        case Kind::kPersistent: push(v_.persistent_rec(it.value).pid, nullptr); break;
        default: break;
      }
    }
  }

  void handle_persistent(const Event& e) {
    const auto& rec = v_.persistent_rec(e.subject);
    const ValueRef pid = rec.pid;
    // torch: ('storage', storage_class, key, location, numel[, view_metadata])
    if (v_.node(pid).kind == Kind::kTuple) {
      const auto items = v_.items(pid);
      // torch unpacks the id's tail into a fixed number of names: 4 in the zip reader
      // (storage_type, key, location, numel), 5 in _legacy_load (plus view_metadata, which it
      // unpacks into 3 when not None). Any other length raises ValueError in the loader.
      const bool arity_ok = ctx_.persistent_ids == PersistentIds::kTorchZip      ? items.size() == 5
                            : ctx_.persistent_ids == PersistentIds::kTorchLegacy ? items.size() == 6
                                                                                 : items.size() == 5 || items.size() == 6;
      const bool tag_ok = !items.empty() && (v_.node(items[0]).kind == Kind::kStr || v_.node(items[0]).kind == Kind::kPy2Str ||
                                             v_.node(items[0]).kind == Kind::kBytes) && v_.node(items[0]).text == "storage";
      if (tag_ok && !arity_ok) {
        Finding f = make("malformed:persistent-id-arity", Severity::kHigh, Verdict::kError, e.offset, e.op,
                         fmt::format("a storage persistent id of {} items: torch.load's {} unpacks exactly {} and raises "
                                     "ValueError, so the file does not load",
                                     items.size(), ctx_.persistent_ids == PersistentIds::kTorchZip ? "zip reader" : "legacy reader",
                                     ctx_.persistent_ids == PersistentIds::kTorchZip ? 5 : 6));
        f.call = repr_value(v_, e.subject);
        out_.findings.push_back(std::move(f));
        return;
      }
      if (arity_ok) {
        const pickle::Node& cls = v_.node(items[1]);
        auto key = v_.as_text(items[2]);
        auto location = v_.as_text(items[3]);
        const pickle::Node& numel = v_.node(items[4]);
        const bool view_ok = items.size() == 5 || v_.node(items[5]).kind == Kind::kNone ||
                             (v_.node(items[5]).kind == Kind::kTuple &&
                              (ctx_.persistent_ids != PersistentIds::kTorchLegacy || v_.items(items[5]).size() == 3));
        if (tag_ok && cls.kind == Kind::kGlobal && v_.global_rec(items[1]).resolved && key && location && numel.kind == Kind::kInt && view_ok) {
          StorageRef s;
          s.key = std::string(*key);
          s.storage_type = resolution(items[1]).loader_name;
          s.location = std::string(*location);
          s.numel = numel.i;
          s.offset = e.offset;
          out_.storages.push_back(std::move(s));
          return;
        }
      }
    }
    if (ctx_.persistent_ids == PersistentIds::kTorchTar) {
      // The tar format names storages and tensors by the decimal key of their record.
      if (auto key = v_.as_text(pid); key && !key->empty() && key->find_first_not_of("0123456789") == std::string_view::npos) return;
    }
    Finding f = make("unapproved:persistent-id", Severity::kMedium, Verdict::kUnapproved, e.offset, e.op,
                     "persistent id is not a torch storage reference: the loader's persistent_load decides what it returns");
    f.call = repr_value(v_, e.subject);
    out_.findings.push_back(std::move(f));
  }

  void report_globals() {
    // Merge by (rule, loader name): one finding per global, the first site's offset.
    std::map<std::pair<std::string, std::string>, std::size_t> merged;
    auto emit = [&](Finding f) {
      auto key = std::make_pair(f.rule, f.global);
      auto it = merged.find(key);
      if (it == merged.end()) {
        merged.emplace(std::move(key), out_.findings.size());
        out_.findings.push_back(std::move(f));
      } else {
        ++out_.findings[it->second].count;
      }
    };
    for (ValueRef g : order_list_) {
      GlobalInfo& info = globals_[g];
      const auto& rec = v_.global_rec(g);
      if (!rec.resolved) continue;
      if (info.uses == 0 && !info.named_in_state) {  // imported and never used: the import itself
        info.uses = rules::mask(Use::kReference);
        info.sites[0] = UseSite{rec.offset, rec.op, {}, true};
      }
      const rules::Resolution& r = resolution(g);
      const UseSite* first = &info.sites[0];
      for (Use u : {Use::kCall, Use::kInstantiate, Use::kBuild, Use::kSetItem, Use::kAppend, Use::kStateValue}) {
        if (info.sites[use_index(u)].seen) {
          first = &info.sites[use_index(u)];
          break;
        }
      }
      std::string written_note = r.written_name != r.loader_name ? fmt::format(" (written as {})", r.written_name) : "";
      if (!r.reexport_of.empty()) written_note += fmt::format(" (a re-export of {})", r.reexport_of);
      if (!r.traversal.empty()) {
        Finding f = make("evasion:attribute-traversal", Severity::kCritical, Verdict::kMalicious, rec.offset, rec.op,
                         fmt::format("the qualname reaches {} through attribute access, which exposes interpreter internals",
                                     r.traversal));
        f.global = r.written_name;
        f.use = rules::uses_to_string(info.uses);
        f.call = first->call;
        emit(std::move(f));
        continue;
      }
      if (r.deny) {
        Finding f = make(r.deny->id, r.deny->severity, Verdict::kMalicious, first->seen ? first->offset : rec.offset,
                         first->seen ? first->op : rec.op, r.deny->message + written_note);
        // Name the global as the loader resolves it; when the hit came through attribute access
        // (torch + "os.system"), name what it reaches instead.
        const bool through_attribute = !r.deny_form.empty() && !r.loader_name.starts_with(r.deny_form) &&
                                       !r.written_name.starts_with(r.deny_form);
        f.global = through_attribute ? r.deny_form : r.loader_name;
        if (through_attribute) f.message += fmt::format(" (reached as {})", r.written_name);
        f.use = rules::uses_to_string(info.uses);
        f.call = first->call;
        emit(std::move(f));
        continue;
      }
      UseMask approved = 0;
      for (const rules::AllowEntry* entry : r.allow) approved |= entry->uses;
      const UseMask missing = static_cast<UseMask>(info.uses & ~approved);
      if (missing != 0) {
        std::uint64_t offset = rec.offset;
        pickle::Op op = rec.op;
        std::string call = first->call;
        for (Use u : kUses) {
          const UseSite& s = info.sites[use_index(u)];
          if ((missing & rules::mask(u)) != 0 && s.seen) {
            offset = s.offset;
            op = s.op;
            if (!s.call.empty()) call = s.call;
            break;
          }
        }
        const bool any = approved != 0;
        Finding f = make("unapproved-global", Severity::kMedium, Verdict::kUnapproved, offset, op,
                         any ? fmt::format("the rules approve {} only for: {}{}", r.loader_name, rules::uses_to_string(approved), written_note)
                             : fmt::format("no rule approves {}{}", r.loader_name, written_note));
        f.global = r.loader_name;
        f.use = rules::uses_to_string(missing);
        f.call = std::move(call);
        emit(std::move(f));
      }
      if (info.args_rejected) {
        Finding f = make("unapproved-arguments", Severity::kHigh, Verdict::kUnapproved, info.rejected_site.offset, info.rejected_site.op,
                         fmt::format("{} is approved, but not with these arguments", r.loader_name));
        f.global = r.loader_name;
        f.use = "call";
        f.call = info.rejected_site.call;
        emit(std::move(f));
      }
    }
  }

  void report_anomalies() {
    std::map<pickle::Anomaly::Kind, std::size_t> first;
    for (const auto& a : run_.anomalies) {
      auto it = first.find(a.kind);
      if (it != first.end()) {
        ++out_.findings[it->second].count;
        continue;
      }
      Severity sev = Severity::kInfo;
      Verdict impact = Verdict::kClean;
      std::string rule = fmt::format("anomaly:{}", pickle::anomaly_name(a.kind));
      std::string why;
      switch (a.kind) {
        case pickle::Anomaly::Kind::kFrameViolation:
          sev = Severity::kHigh;
          impact = Verdict::kMalicious;
          rule = "evasion:frame-violation";
          why = "loaders read this stream differently: pickle.py rejects it, and CPython's C unpickler continues "
                "across the frame end from bytes or an open() file but drops the frame's unread rest when reading "
                "from io.BytesIO (as torch.load reads data.pkl)";
          break;
        case pickle::Anomaly::Kind::kProtoSwitch:
          sev = Severity::kHigh;
          impact = Verdict::kMalicious;
          rule = "evasion:proto-switch";
          why = "changing the protocol mid-stream changes how later names are resolved";
          break;
        case pickle::Anomaly::Kind::kLeftoverStack:
          sev = Severity::kMedium;
          impact = Verdict::kUnapproved;
          rule = "malformed:leftover-stack";
          why = "the stream is not well formed";
          break;
        case pickle::Anomaly::Kind::kNoncanonical:
        case pickle::Anomaly::Kind::kProtoRepeat:
        case pickle::Anomaly::Kind::kDuplicateKey:
        case pickle::Anomaly::Kind::kMemoOverwrite:
          sev = Severity::kLow;
          why = "no pickler writes this; the file was likely made or edited by hand";
          break;
      }
      Finding f = make(std::move(rule), sev, impact, a.offset, a.op, fmt::format("{}: {}", a.detail, why));
      first.emplace(a.kind, out_.findings.size());
      out_.findings.push_back(std::move(f));
    }
  }

  const pickle::PickleRun& run_;
  const pickle::ValueStore& v_;
  const rules::RuleSet& rules_;
  const PickleContext& ctx_;
  std::unordered_set<ValueRef> mutated_;
  ArgMatcher matcher_;
  std::unordered_map<ValueRef, std::shared_ptr<const rules::Resolution>> resolutions_;
  std::unordered_map<ValueRef, GlobalInfo> globals_;
  std::unordered_set<ValueRef> order_;
  std::vector<ValueRef> order_list_;
  std::unordered_map<ValueRef, ValueRef> type_of_;
  struct StateRoot {
    ValueRef state;
    const rules::StateRule* rule;  // the rule that accepted it (nullptr: none, or the default)
    std::uint64_t offset;
    pickle::Op op;
  };
  std::vector<StateRoot> states_;
  std::unordered_set<std::uint64_t> consumed_;  // (call, argument) pairs a spec consumed with a named use
  PickleAnalysis out_;
};

}  // namespace

PickleAnalysis analyze_pickle(const pickle::PickleRun& run, const rules::RuleSet& rules, const PickleContext& context) {
  return Analyzer(run, rules, context).analyze();
}

}  // namespace brine::analysis
