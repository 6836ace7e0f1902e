// A model of torch's weights_only unpickler (torch.load(f, weights_only=True)): which globals a
// pickle needs in torch.serialization.add_safe_globals([...]) to load that way, and what it does
// that the restricted unpickler refuses whatever the list says. See docs/weights-only.md.
//
// Two versions are modelled, from their source: Debian's torch 1.13
// (torch/_weights_only_unpickler.py: a fixed allowlist, no add_safe_globals) and torch 2.x
// (pytorch main's torch/_weights_only_unpickler.py, the 2.4+ design with add_safe_globals).
// The model reads brine's symbolic run of the pickle (its events and value graph) and the
// run's opcodes; it never decides a scan verdict.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/byte_reader.hpp"
#include "core/limits.hpp"

namespace brine::pickle {
struct PickleRun;
}

namespace brine::analysis {

enum class TorchVersion : std::uint8_t { k1_13, k2 };
std::string_view torch_version_name(TorchVersion v);

struct WeightsOnlyNote {
  std::string member;  ///< as findings name it ("archive/data.pkl", "" for the file itself)
  std::uint64_t offset = 0;
  std::string message;
};

struct SafeGlobal {
  std::string name;    ///< module.qualname as the unpickler looks it up (after torch's py2 renames)
  std::string module;  ///< what to import to name it
  std::string member;  ///< where it is first needed
  std::uint64_t offset = 0;
  std::string why;     ///< "GLOBAL", "BUILD on an instance of it", ...
};

struct WeightsOnlyResult {
  TorchVersion torch = TorchVersion::k2;
  /// Globals outside the version's default allowlist, in the order the unpickler meets them.
  /// For 1.13 (no add_safe_globals) any entry here already means the load is refused.
  std::vector<SafeGlobal> needed;
  /// Refusals no list lifts: the file can never load with weights_only=True.
  std::vector<WeightsOnlyNote> never;
  /// What the model assumed (e.g. that a called global is a class whose instances BUILD sets up).
  std::vector<WeightsOnlyNote> assumptions;

  [[nodiscard]] bool loadable() const;
};

/// Feeds the pickles torch.load reads with the weights_only unpickler, in order.
class WeightsOnlyModel {
 public:
  explicit WeightsOnlyModel(TorchVersion torch, const core::Limits& limits) : limits_(limits) { result_.torch = torch; }

  /// One pickle the weights_only unpickler reads: `data` are the bytes the run's offsets index.
  void add_run(const std::string& member, core::Bytes data, const pickle::PickleRun& run);
  /// A refusal found outside the pickles (not a torch file, a TorchScript archive...).
  void refuse(std::string member, std::uint64_t offset, std::string message);
  /// Something the load does that the model states rather than checks.
  void assume(std::string member, std::uint64_t offset, std::string message);
  /// Adds another model's findings (a later pickle of the same load).
  void merge(const WeightsOnlyResult& other);

  [[nodiscard]] const WeightsOnlyResult& result() const { return result_; }

 private:
  void need(std::string name, std::string module, const std::string& member, std::uint64_t offset, std::string why);

  const core::Limits& limits_;
  WeightsOnlyResult result_;
};

/// True when `name` (module.qualname) is in the version's built-in allowlist (_get_allowed_globals).
bool weights_only_default_allowed(TorchVersion torch, std::string_view name);

}  // namespace brine::analysis
