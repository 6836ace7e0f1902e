// Turns one symbolic pickle run into findings, using the rules.
//
// Fail-closed: a global is approved only if an allow entry grants every way the pickle uses it
// (reference, call, instantiate, build, setitem, append) and, for calls, the arguments satisfy the
// entry's constraints. Anything the VM could not resolve statically is an evasion indicator.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "analysis/finding.hpp"
#include "pickle/machine.hpp"
#include "rules/rule_set.hpp"

namespace brine::analysis {

/// A storage a torch persistent id refers to: ('storage', class, key, location, numel[, view]).
struct StorageRef {
  std::string key;
  std::string storage_type;     ///< loader name of the storage class ("torch.FloatStorage")
  std::string location;
  std::optional<std::int64_t> numel;
  std::uint64_t offset = 0;     ///< of the persistent load
};

/// Bytes an approved callee would deserialize as a whole file (rules: "loads"), e.g. the
/// torch.save stream inside torch.storage._load_from_bytes(b'...'). The scanner scans them in place.
struct NestedPayload {
  std::string data;
  std::string loader;           ///< loader name of the callee
  std::uint64_t offset = 0;     ///< of the call
};

/// What the loader's persistent_load accepts.
enum class PersistentIds : std::uint8_t {
  kTorch,     ///< ('storage', storage_class, key, location, numel[, view]) — either torch layout
  kTorchZip,  ///< exactly ('storage', storage_class, key, location, numel) — torch.load's zip reader
  kTorchLegacy,  ///< exactly ('storage', storage_class, key, location, numel, view) — _legacy_load
  kTorchTar,  ///< plus decimal-string keys of earlier records — torch 0.1.x tar checkpoints
};

struct PickleContext {
  std::string member;           ///< container member, for findings ("" for a raw stream)
  PersistentIds persistent_ids = PersistentIds::kTorch;
};

struct PickleAnalysis {
  std::vector<Finding> findings;
  std::vector<StorageRef> storages;
  std::vector<NestedPayload> nested;
};

PickleAnalysis analyze_pickle(const pickle::PickleRun& run, const rules::RuleSet& rules, const PickleContext& context);

/// The finding for an input error or limit hit (rule "malformed:<slug>" or "limit:<name>").
Finding error_finding(const core::Error& error, const std::string& member);

}  // namespace brine::analysis
