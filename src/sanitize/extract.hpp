// Tensor extraction: from one symbolic pickle run, the tensors approved rebuild code would
// produce — where their bytes are and how to read them — named by their path in the loaded
// object, plus the non-tensor leaves (as JSON text) and every value that was left out, and why.
//
// Nothing is executed or imported. A value is only interpreted when the callable that would
// build it is approved by the rules; anything else (a payload, an unknown class) is dropped and
// reported, so a salvage of a poisoned file keeps exactly what safe code would rebuild.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/limits.hpp"
#include "core/result.hpp"
#include "pickle/machine.hpp"
#include "rules/rule_set.hpp"
#include "tensor/tensor.hpp"

namespace brine::sanitize {

/// A torch storage record: its bytes as stored and where they came from.
struct StorageData {
  core::Bytes bytes;
  std::string member;       ///< "archive/data/0", or "@1009" for a legacy file's raw section
  bool big_endian = false;  ///< the record holds big-endian elements (zip `byteorder` = big)
};
/// Looks a persistent-id storage key up in the container ("0" → archive/data/0).
using StorageLookup = std::function<core::Result<StorageData>(std::string_view key)>;

/// A storage serialized as a whole torch file inside the pickle: `pickle.dumps(tensor)` writes
/// `torch.storage._load_from_bytes(b'<torch.save of the storage>')`.
struct NestedStorage {
  StorageData data;
  tensor::DType dtype = tensor::DType::kU8;  ///< of the storage's class (uint8 for untyped storages)
};
/// Reads such a file (`where` names it for messages).
using NestedStorageReader = std::function<core::Result<NestedStorage>(core::Bytes file, const std::string& where)>;

struct Leaf {
  std::string name;
  std::string json;
};

struct Dropped {
  std::string name;
  std::string reason;
  std::uint64_t offset = 0;
};

struct Extraction {
  std::vector<tensor::Tensor> tensors;
  std::vector<Leaf> leaves;
  std::vector<Dropped> dropped;
  /// A container reached twice (the same Python object under two names): {alias, first name}.
  std::vector<std::pair<std::string, std::string>> object_aliases;
  /// Bytes brine had to decode (protocol-2 numpy data is latin-1 text): tensors may point here.
  std::deque<std::vector<std::uint8_t>> owned;
};

struct PickleInput {
  const pickle::PickleRun* run = nullptr;
  std::string member;               ///< the pickle's container member, for messages
  StorageLookup storages;           ///< torch persistent ids; empty when the container has none
  std::map<pickle::ValueRef, core::Bytes> raw_arrays;  ///< joblib: wrapper object → its raw data
  NestedStorageReader nested_storage;  ///< empty: nested storage files are not read
  std::string root_name;            ///< name prefix for this pickle's root ("" = none)
  /// Salvage: walk into the state of instances of classes the rules do not approve (a whole
  /// pickled nn.Module) to reach the approved tensors inside. Their objects are still dropped,
  /// and nothing built by a denied or unapproved *call* is ever looked into.
  bool salvage = false;
};

/// Adds what one pickle holds to `out`.
void extract(const PickleInput& in, const rules::RuleSet& rules, const core::Limits& limits, Extraction& out);

}  // namespace brine::sanitize
