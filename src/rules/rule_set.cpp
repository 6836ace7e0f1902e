#include "rules/rule_set.hpp"

#include <array>
#include <atomic>
#include <mutex>

namespace brine::rules {

namespace {
constexpr std::array<std::pair<std::string_view, Use>, 7> kUseNames = {{
    {"reference", Use::kReference},
    {"call", Use::kCall},
    {"instantiate", Use::kInstantiate},
    {"build", Use::kBuild},
    {"setitem", Use::kSetItem},
    {"append", Use::kAppend},
    {"state-value", Use::kStateValue},
}};
constexpr std::array<std::string_view, 5> kSeverityNames = {"info", "low", "medium", "high", "critical"};

std::vector<std::string_view> split_dots(std::string_view s) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (;;) {
    const auto dot = s.find('.', start);
    parts.push_back(s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts;
}

bool is_dunder(std::string_view s) { return s.size() > 4 && s.starts_with("__") && s.ends_with("__"); }

/// Module-level dunder globals that are ordinary functions, not attribute traversal.
bool benign_dunder_global(std::string_view s) {
  return s == "__newobj__" || s == "__newobj_ex__" || s == "__import__" || s == "__build_class__";
}

std::string join(std::string_view a, std::string_view b) {
  std::string out(a);
  out += '.';
  out += b;
  return out;
}
}  // namespace

std::string_view use_name(Use use) {
  for (const auto& [name, u] : kUseNames) {
    if (u == use) return name;
  }
  return "?";
}

std::optional<Use> use_from_name(std::string_view name) {
  for (const auto& [n, u] : kUseNames) {
    if (n == name) return u;
  }
  return std::nullopt;
}

std::string uses_to_string(UseMask m) {
  std::string out;
  for (const auto& [name, u] : kUseNames) {
    if ((m & mask(u)) == 0) continue;
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

std::string_view severity_name(Severity s) { return kSeverityNames[static_cast<std::size_t>(s)]; }

std::optional<Severity> severity_from_name(std::string_view name) {
  for (std::size_t i = 0; i < kSeverityNames.size(); ++i) {
    if (kSeverityNames[i] == name) return static_cast<Severity>(i);
  }
  return std::nullopt;
}

std::string RuleSet::alias_module(std::string_view module) const {
  // Longest prefix (on dot boundaries) that has an alias.
  std::string_view prefix = module;
  for (;;) {
    auto it = module_aliases_.find(std::string(prefix));
    if (it != module_aliases_.end()) {
      std::string out = it->second;
      out += module.substr(prefix.size());
      return out;
    }
    const auto dot = prefix.rfind('.');
    if (dot == std::string_view::npos) return std::string(module);
    prefix = prefix.substr(0, dot);
  }
}

const DenyEntry* RuleSet::deny_for_path(std::string_view dotted) const {
  if (auto it = deny_exact_.find(std::string(dotted)); it != deny_exact_.end()) return &deny_[it->second];
  std::string_view prefix = dotted;
  for (;;) {
    if (auto it = deny_module_.find(std::string(prefix)); it != deny_module_.end()) return &deny_[it->second];
    const auto dot = prefix.rfind('.');
    if (dot == std::string_view::npos) return nullptr;
    prefix = prefix.substr(0, dot);
  }
}

std::string RuleSet::canonical(std::string_view dotted) const {
  std::string name(dotted);
  // A chain of re-exports is followed a few steps; the table is generated acyclic, and the
  // bound keeps a hand-written cycle from looping.
  for (int step = 0; step < 8 && !reexports_.empty(); ++step) {
    std::string_view prefix = name;
    bool hit = false;
    for (;;) {
      if (auto it = reexports_.find(std::string(prefix)); it != reexports_.end()) {
        name = it->second + name.substr(prefix.size());
        hit = true;
        break;
      }
      const auto dot = prefix.rfind('.');
      if (dot == std::string_view::npos) break;
      prefix = prefix.substr(0, dot);
    }
    if (!hit) break;
  }
  return name;
}

struct RuleSet::Deferred {
  std::once_flag once;
  std::function<std::shared_ptr<const RuleSet>()> make;
  std::shared_ptr<const RuleSet> set;
};

std::shared_ptr<const RuleSet> RuleSet::deferred(std::function<std::shared_ptr<const RuleSet>()> make) {
  auto out = std::make_shared<RuleSet>();
  out->deferred_ = std::make_shared<Deferred>();
  out->deferred_->make = std::move(make);
  return out;
}

const RuleSet& RuleSet::built() const {
  if (!deferred_) return *this;
  std::call_once(deferred_->once, [d = deferred_.get()] {
    d->set = d->make();
    d->make = nullptr;
  });
  return *deferred_->set;
}

std::vector<NameStep> RuleSet::name_chain(std::string_view module, std::string_view name, int protocol) const {
  if (deferred_) return built().name_chain(module, name, protocol);
  // The same rewrites, in the same order, as resolve(): py2 rename (protocol < 3), module alias,
  // then the re-export table one step at a time (bounded as canonical() is).
  std::vector<NameStep> steps;
  std::string current = join(module, name);
  std::string mod(module), qual(name);
  if (protocol < 3) {
    if (auto it = py2_names_.find(current); it != py2_names_.end()) {
      const auto dot = it->second.rfind('.');
      mod = it->second.substr(0, dot);
      qual = it->second.substr(dot + 1);
    } else if (auto mit = py2_modules_.find(mod); mit != py2_modules_.end()) {
      mod = mit->second;
    }
    if (join(mod, qual) != current) {
      steps.push_back({current, join(mod, qual), "py2-rename"});
      current = join(mod, qual);
    }
  }
  if (std::string aliased = alias_module(mod); aliased != mod) {
    steps.push_back({current, join(aliased, qual), "module-alias"});
    current = join(aliased, qual);
  }
  for (int step = 0; step < 8; ++step) {
    std::string_view prefix = current;
    std::string next;
    for (;;) {
      if (auto it = reexports_.find(std::string(prefix)); it != reexports_.end()) {
        next = it->second + current.substr(prefix.size());
        break;
      }
      const auto dot = prefix.rfind('.');
      if (dot == std::string_view::npos) break;
      prefix = prefix.substr(0, dot);
    }
    if (next.empty()) break;
    steps.push_back({current, next, "re-export"});
    current = std::move(next);
  }
  return steps;
}

std::uint64_t RuleSetId::next() {
  static std::atomic<std::uint64_t> counter{0};
  return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

namespace {
/// One thread's remembered resolutions, for one rule set at a time (a thread that meets
/// another set forgets the first's). Bounded: a file of many distinct globals empties it,
/// and what callers hold stays valid (shared ownership).
struct ThreadResolutions {
  std::uint64_t set = 0;
  std::unordered_map<std::string, std::shared_ptr<const Resolution>> by_name;
};
constexpr std::size_t kMaxThreadResolutions = 4096;
thread_local ThreadResolutions t_resolutions;
}  // namespace

std::shared_ptr<const Resolution> RuleSet::resolve_shared(std::string_view module, std::string_view name,
                                                          int protocol) const {
  if (deferred_) return built().resolve_shared(module, name, protocol);
  // resolve() depends on the protocol only through `protocol < 3` (the py2 renames). The key is
  // unambiguous: the module's length comes first, and a name from STACK_GLOBAL may hold any byte.
  const auto module_size = static_cast<std::uint32_t>(module.size());
  std::string key;
  key.reserve(1 + sizeof module_size + module.size() + name.size());
  key += protocol < 3 ? '2' : '3';
  key.append(reinterpret_cast<const char*>(&module_size), sizeof module_size);
  key += module;
  key += name;
  ThreadResolutions& mine = t_resolutions;
  if (mine.set != id_.value() || mine.by_name.size() >= kMaxThreadResolutions) {
    mine.by_name.clear();
    mine.set = id_.value();
  }
  auto it = mine.by_name.find(key);
  if (it == mine.by_name.end()) {
    it = mine.by_name.emplace(std::move(key), std::make_shared<const Resolution>(resolve(module, name, protocol))).first;
  }
  return it->second;
}

Resolution RuleSet::resolve(std::string_view module, std::string_view name, int protocol) const {
  if (deferred_) return built().resolve(module, name, protocol);
  Resolution r;
  r.written_name = join(module, name);

  // The py2 rename pickle applies (name mapping first, else module mapping), whatever the
  // protocol: for deny purposes every form counts; for approval only the loader's form.
  std::string py2_module(module), py2_name(name);
  if (auto it = py2_names_.find(r.written_name); it != py2_names_.end()) {
    const auto dot = it->second.rfind('.');
    py2_module = it->second.substr(0, dot);
    py2_name = it->second.substr(dot + 1);
  } else if (auto mit = py2_modules_.find(std::string(module)); mit != py2_modules_.end()) {
    py2_module = mit->second;
  }
  const bool loader_maps = protocol < 3;
  r.loader_name = join(alias_module(loader_maps ? py2_module : std::string(module)), loader_maps ? py2_name : name);

  // Every form the name can take, each checked whole and component by component. The form the
  // loader imports comes first, so that a hit is reported under the name that would run.
  // A re-export (sklearn.utils.fixes.x, torchvision.models.os) is judged as what it is.
  const std::string canon = canonical(r.loader_name);
  if (canon != r.loader_name) r.reexport_of = canon;
  const auto cdot = canon.rfind('.');
  std::vector<std::pair<std::string, std::string>> forms;
  if (!r.reexport_of.empty() && cdot != std::string::npos) forms.emplace_back(canon.substr(0, cdot), canon.substr(cdot + 1));
  if (!r.reexport_of.empty() && cdot == std::string::npos) {  // the name is a module object (torch.nn...distributed.os)
    if (const DenyEntry* d = deny_for_path(canon)) {
      r.deny = d;
      r.deny_form = canon;
    }
  }
  const std::vector<std::pair<std::string, std::string>> written_forms = {
      {alias_module(loader_maps ? py2_module : std::string(module)), std::string(loader_maps ? py2_name : name)},
      {std::string(module), std::string(name)},
      {py2_module, py2_name},
      {alias_module(module), std::string(name)},
      {alias_module(py2_module), py2_name},
  };
  forms.insert(forms.end(), written_forms.begin(), written_forms.end());
  for (const auto& [m, n] : forms) {
    const auto parts = split_dots(n);
    // Attribute traversal: a dunder component after the first, or a first component that is a
    // dunder attribute rather than a module-level function.
    for (std::size_t i = 0; i < parts.size() && r.traversal.empty(); ++i) {
      if (is_dunder(parts[i]) && !(i == 0 && benign_dunder_global(parts[i]))) r.traversal = std::string(parts[i]);
    }
    if (r.deny) continue;
    // module.c1, module.c1.c2, ... (the whole name last)
    std::string path = m;
    for (const auto& part : parts) {
      path = join(path, part);
      if (const DenyEntry* d = deny_for_path(path)) {
        r.deny = d;
        r.deny_form = path;
        break;
      }
    }
    if (!r.deny) {
      if (const DenyEntry* d = deny_for_path(m)) {
        r.deny = d;
        r.deny_form = join(m, n);
      }
    }
    // A component reached as an attribute may itself be a module: torch + "os.system" resolves
    // through torch.os to os.system. Every suffix of two or more components is checked as a path.
    // (A single trailing component is not: "jit.trace" is not the trace module, and a module
    // object obtained that way is still unapproved and can only act through a flagged call.)
    for (std::size_t i = 0; i + 1 < parts.size() && !r.deny; ++i) {
      std::string suffix = alias_module(parts[i]);
      for (std::size_t k = i + 1; k < parts.size(); ++k) suffix = join(suffix, parts[k]);
      if (const DenyEntry* d = deny_for_path(suffix)) {
        r.deny = d;
        r.deny_form = suffix;
      }
    }
  }

  // Allow: exact matches of the name the loader resolves (through re-exports) first, then module
  // entries for single plain identifiers.
  const std::string& judged = r.reexport_of.empty() ? r.loader_name : r.reexport_of;
  auto [lo, hi] = allow_exact_.equal_range(judged);
  for (auto it = lo; it != hi; ++it) r.allow.push_back(&allow_[it->second]);
  if (!r.reexport_of.empty()) return r;  // module entries never approve a re-export
  const auto dot = r.loader_name.rfind('.');
  const std::string_view loader_module = std::string_view(r.loader_name).substr(0, dot);
  const std::string_view loader_qual = loader_maps ? std::string_view(py2_name) : name;
  const bool plain = loader_qual.find('.') == std::string_view::npos && !loader_qual.empty() &&
                     loader_qual.front() != '_';
  if (plain) {
    std::string_view prefix = loader_module;
    for (;;) {
      auto [mlo, mhi] = allow_module_.equal_range(std::string(prefix));
      for (auto it = mlo; it != mhi; ++it) r.allow.push_back(&allow_[it->second]);
      const auto pdot = prefix.rfind('.');
      if (pdot == std::string_view::npos) break;
      prefix = prefix.substr(0, pdot);
    }
  }
  return r;
}

}  // namespace brine::rules
