#include "analysis/analyzer.hpp"

#include <fmt/format.h>

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

constexpr std::array<Use, 6> kUses = {Use::kReference, Use::kCall, Use::kInstantiate, Use::kBuild, Use::kSetItem, Use::kAppend};

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
  std::array<UseSite, 6> sites;
  bool args_rejected = false;     // some call failed every allow entry's ARGSPEC
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
    for (const Event& e : run_.events) handle(e);
    report_globals();
    report_anomalies();
    if (run_.error) out_.findings.push_back(error_finding(*run_.error, ctx_.member));
    return std::move(out_);
  }

 private:
  // ---- name resolution, cached per (module, name, protocol class) ----
  const rules::Resolution& resolution(ValueRef global) {
    const auto& g = v_.global_rec(global);
    const int proto_class = g.protocol < 3 ? 0 : g.protocol < 4 ? 3 : 4;
    std::string key = fmt::format("{}\n{}\n{}", g.module, g.name, proto_class);
    auto it = resolutions_.find(key);
    if (it == resolutions_.end()) it = resolutions_.emplace(std::move(key), rules_.resolve(g.module, g.name, g.protocol)).first;
    return it->second;
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
        add_use(e.subject, Use::kReference, e.offset, e.op, pickle::kNoValue);
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
    const auto args = v_.node(c.args).kind == Kind::kTuple ? v_.items(c.args) : std::span<const ValueRef>{};
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
  }

  void handle_persistent(const Event& e) {
    const auto& rec = v_.persistent_rec(e.subject);
    const ValueRef pid = rec.pid;
    // torch: ('storage', storage_class, key, location, numel[, view_metadata])
    if (v_.node(pid).kind == Kind::kTuple) {
      const auto items = v_.items(pid);
      if (items.size() == 5 || items.size() == 6) {
        const pickle::Node& tag = v_.node(items[0]);
        const bool tag_ok = (tag.kind == Kind::kStr || tag.kind == Kind::kPy2Str || tag.kind == Kind::kBytes) && tag.text == "storage";
        const pickle::Node& cls = v_.node(items[1]);
        auto key = v_.as_text(items[2]);
        auto location = v_.as_text(items[3]);
        const pickle::Node& numel = v_.node(items[4]);
        const bool view_ok = items.size() == 5 || v_.node(items[5]).kind == Kind::kNone || v_.node(items[5]).kind == Kind::kTuple;
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
      const GlobalInfo& info = globals_[g];
      const auto& rec = v_.global_rec(g);
      if (!rec.resolved) continue;
      const rules::Resolution& r = resolution(g);
      const UseSite* first = &info.sites[0];
      for (Use u : {Use::kCall, Use::kInstantiate, Use::kBuild, Use::kSetItem, Use::kAppend}) {
        if (info.sites[use_index(u)].seen) {
          first = &info.sites[use_index(u)];
          break;
        }
      }
      const std::string written_note = r.written_name != r.loader_name ? fmt::format(" (written as {})", r.written_name) : "";
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
  std::unordered_map<std::string, rules::Resolution> resolutions_;
  std::unordered_map<ValueRef, GlobalInfo> globals_;
  std::unordered_set<ValueRef> order_;
  std::vector<ValueRef> order_list_;
  std::unordered_map<ValueRef, ValueRef> type_of_;
  PickleAnalysis out_;
};

}  // namespace

PickleAnalysis analyze_pickle(const pickle::PickleRun& run, const rules::RuleSet& rules, const PickleContext& context) {
  return Analyzer(run, rules, context).analyze();
}

}  // namespace brine::analysis
