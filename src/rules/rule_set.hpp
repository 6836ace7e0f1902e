// The compiled, immutable rule set: allow entries, deny entries and name aliases.
//
// A RuleSet is built once (rule_loader.hpp) and shared, read-only, by every scan. It answers
// one question about a global — `resolve(module, name, protocol)` — with every deny entry any
// form of the name hits, whether a qualname component is attribute traversal, and the allow
// entries that apply to the name the loader would actually import. What those entries mean for
// a given use and argument list is decided by the analysis layer.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace brine::rules {

/// How a global is used. Bit flags: an allow entry grants a set of them.
enum class Use : std::uint8_t {
  kReference = 1,    ///< imported (find_class ran)
  kCall = 2,         ///< called by REDUCE / INST / OBJ, or called by an approved callee
  kInstantiate = 4,  ///< created by NEWOBJ / NEWOBJ_EX, or the class of a factory call
  kBuild = 8,        ///< given state by BUILD
  kSetItem = 16,     ///< receives SETITEM(S): its __setitem__ runs
  kAppend = 32,      ///< receives APPEND(S)/ADDITEMS: its append/extend/add runs
  kStateValue = 64,  ///< a global, or a call's callable, found inside a BUILD state
};
using UseMask = std::uint8_t;
inline constexpr UseMask mask(Use u) { return static_cast<UseMask>(u); }
std::string_view use_name(Use use);
std::optional<Use> use_from_name(std::string_view name);
/// "call, build"
std::string uses_to_string(UseMask mask);

enum class Severity : std::uint8_t { kInfo, kLow, kMedium, kHigh, kCritical };
std::string_view severity_name(Severity s);
std::optional<Severity> severity_from_name(std::string_view name);

/// One node of an argument constraint tree (see docs/rules.md, ARGSPEC).
struct SpecNode {
  enum class Type : std::uint8_t {
    kAny, kNone, kBool, kInt, kFloat, kNumber, kStr, kBytes,
    kTuple, kList, kDict, kSet, kPersistentId, kGlobal, kCall, kOneOf,
    kAnyData,  ///< plain data at any depth: no global, call, persistent load, EXT or buffer
  };
  Type type = Type::kAny;
  int of = -1;                      ///< element spec index (containers; dict: values)
  int keys = -1;                    ///< dict key spec index
  std::int64_t max_len = -1;        ///< containers, str, bytes
  std::vector<std::string> names;   ///< kGlobal / kCall: allowed module.qualname
  UseMask use = 0;                  ///< kGlobal: the use the callee gives this argument
  bool empty = false;               ///< kCall: no arguments, no items, no state
  std::vector<int> options;         ///< kOneOf
  std::vector<std::string> values;  ///< kStr: allowed values (empty = any)
};

struct ArgsSpec {
  int min = -1;
  int max = -1;
  std::vector<int> items;           ///< spec index per leading positional argument
  int rest = -1;                    ///< spec for the others
};

/// What BUILD may give an instance of an approved class (docs/rules.md, STATE).
struct StateRule {
  enum Shape : std::uint8_t {
    kDict = 1,       ///< a dict: __setstate__(d) or __dict__.update(d)
    kSlots = 2,      ///< (dict or None, slots dict)
    kNone = 4,       ///< None
    kTupleState = 8, ///< a tuple checked against `tuple` (numpy's ndarray/dtype __setstate__)
    kOther = 16,     ///< any other value, checked against `values`
  };
  std::uint8_t shapes = kDict;
  std::vector<std::string> keys;    ///< allowed dict keys (empty = any non-dunder key)
  bool any_key = false;             ///< "keys": "*": any non-dunder key
  int values = -1;                  ///< spec for every dict value (or the whole state for kOther)
  std::vector<std::pair<std::string, int>> items;  ///< per-key spec (wins over `values`)
  std::optional<ArgsSpec> tuple;  ///< kTupleState
  std::vector<std::string> named;   ///< globals/callables the rule's specs name: approved inside the state
};

struct AllowEntry {
  std::string target;               ///< "module.qualname" or a module
  bool is_module = false;
  UseMask uses = 0;
  std::optional<ArgsSpec> args;
  std::optional<StateRule> state;   ///< what BUILD may give (with use "build")
  bool result_is_arg0 = false;      ///< the call returns an instance of its first argument
  int loads_arg = -1;               ///< the callee deserializes this argument as a file: scan it in place
  int state_arg = -1;               ///< the callee applies this argument as object state (setattr per key)
  std::string source;               ///< "default.json:12"
  std::string note;
};

struct DenyEntry {
  std::string id;                   ///< "deny:os"
  std::string target;
  bool is_module = false;
  Severity severity = Severity::kCritical;
  std::string message;
  std::string advisory;
  std::string source;
};

/// What the rules say about one global.
struct Resolution {
  std::string loader_name;          ///< module.qualname the loader imports at this protocol (aliases applied)
  std::string written_name;         ///< module.qualname as the pickle wrote it
  const DenyEntry* deny = nullptr;  ///< first deny entry hit by any form of the name
  std::string deny_form;            ///< the form of the name that hit it ("os.system")
  std::string traversal;            ///< a dunder component reached through attribute access, if any
  std::vector<const AllowEntry*> allow;  ///< entries approving the loader form (exact first)
  std::string reexport_of;          ///< the canonical module.qualname when the loader form is a re-export
};

/// One rewrite on the way from the name a pickle writes to the name brine judges.
struct NameStep {
  std::string from, to;
  std::string why;  ///< "py2-rename", "module-alias", "re-export"
};

/// A number no other RuleSet object had: a copy or a move is another object, whose entries
/// (what a Resolution points to) live elsewhere, so it gets its own.
class RuleSetId {
 public:
  RuleSetId() : value_(next()) {}
  RuleSetId(const RuleSetId&) : value_(next()) {}
  RuleSetId& operator=(const RuleSetId&) {
    value_ = next();
    return *this;
  }
  ~RuleSetId() = default;
  [[nodiscard]] std::uint64_t value() const { return value_; }

 private:
  static std::uint64_t next();
  std::uint64_t value_;
};

class RuleSet {
 public:
  /// A rule set that `make` builds the first time anything consults it (once, thread-safe).
  /// For rules that cannot fail to load, the built-in files: a scan whose pickles import
  /// nothing never parses them, and start-up does not pay for them (docs/scaling.md).
  static std::shared_ptr<const RuleSet> deferred(std::function<std::shared_ptr<const RuleSet>()> make);

  [[nodiscard]] Resolution resolve(std::string_view module, std::string_view name, int protocol) const;
  /// resolve(), remembered on the calling thread for this set: the few globals nearly every
  /// checkpoint imports (torch's rebuild functions, OrderedDict, the storage classes) are
  /// resolved once a thread, not once a file. The result stays valid as long as it is held.
  [[nodiscard]] std::shared_ptr<const Resolution> resolve_shared(std::string_view module, std::string_view name,
                                                                 int protocol) const;
  /// The rewrites resolve() applies to a name, in order (empty when the written name is judged
  /// as written): what `brine rules explain` shows.
  [[nodiscard]] std::vector<NameStep> name_chain(std::string_view module, std::string_view name, int protocol) const;

  [[nodiscard]] const std::vector<AllowEntry>& allow_entries() const { return built().allow_; }
  [[nodiscard]] const std::vector<DenyEntry>& deny_entries() const { return built().deny_; }
  [[nodiscard]] const std::vector<SpecNode>& specs() const { return built().specs_; }
  [[nodiscard]] const SpecNode& spec(int index) const { return built().specs_[static_cast<std::size_t>(index)]; }
  [[nodiscard]] const std::vector<std::string>& sources() const { return built().sources_; }
  [[nodiscard]] const std::unordered_map<std::string, std::string>& reexports() const { return built().reexports_; }

 private:
  friend class RuleSetBuilder;
  struct Deferred;

  /// This set, or for a deferred one the set its `make` built (building it on first use).
  [[nodiscard]] const RuleSet& built() const;

  /// Applies `modules` aliases to the longest matching module prefix.
  [[nodiscard]] std::string alias_module(std::string_view module) const;
  [[nodiscard]] const DenyEntry* deny_for_path(std::string_view dotted) const;
  /// Follows the re-export table (longest dotted prefix, bounded chain) to the defining name.
  [[nodiscard]] std::string canonical(std::string_view dotted) const;

  std::vector<AllowEntry> allow_;
  std::vector<DenyEntry> deny_;
  std::vector<SpecNode> specs_;
  std::vector<std::string> sources_;
  std::unordered_multimap<std::string, std::size_t> allow_exact_;
  std::unordered_multimap<std::string, std::size_t> allow_module_;
  std::unordered_map<std::string, std::size_t> deny_exact_;
  std::unordered_map<std::string, std::size_t> deny_module_;
  std::unordered_map<std::string, std::string> py2_names_;
  std::unordered_map<std::string, std::string> py2_modules_;
  std::map<std::string, std::string> module_aliases_;
  std::unordered_map<std::string, std::string> reexports_;
  std::shared_ptr<Deferred> deferred_;  ///< set only on a deferred() set, whose own tables stay empty
  RuleSetId id_;                        ///< what resolve_shared's per-thread memory is keyed by
};

}  // namespace brine::rules
