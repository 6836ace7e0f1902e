// What a loader builds from a file, as the scan read it. The scan reports each object the file's
// own loader would return — the first pickle of a pickle/joblib stream, torch's data.pkl and
// constants.pkl with their storage records, a legacy torch file's object pickle with its raw
// storages, every array of an .npy/.npz — to ScanOptions::on_load. `brine sanitize` converts
// these and reads nothing itself: the bytes it writes are the bytes the scan judged, located by
// the same container, legacy-layout, joblib and npy readers.
//
// Only the loader's path is reported: the file itself and compression layers a loader removes
// (joblib's and the gzip/xz/... wrappers). Members a loader never unpickles (another zip
// reading's members, tar contents, gaps, files nested in bytes values) are scanned, never
// reported here.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "container/npy.hpp"
#include "core/byte_reader.hpp"
#include "core/result.hpp"
#include "pickle/machine.hpp"

namespace brine::scan {

/// A torch storage record's bytes as stored, and where they are.
struct StorageRecord {
  core::Bytes bytes;        ///< a view into the scanned data, or into `owner`
  std::string member;       ///< "archive/data/0", or "@1009" for a legacy file's raw section
  bool big_endian = false;  ///< the zip's `byteorder` record says big
  /// Holds decompressed record bytes (a deflated storage record); null for views into the input.
  std::shared_ptr<const std::vector<std::uint8_t>> owner;
};
/// A storage key of a persistent id ("0") to its record, as torch.load finds it.
using StorageResolver = std::function<core::Result<StorageRecord>(std::string_view key)>;

struct LoadedObject {
  enum class Kind {
    kPickle,        ///< pickle.load / joblib.load of the stream's first pickle
    kTorchZip,      ///< data.pkl or constants.pkl of a torch zip (storages: the archive's records)
    kTorchLegacy,   ///< the object pickle of a legacy torch file (storages: the raw section)
    kNpy,           ///< an .npy array, or an .npz member (npy set)
    kNotAnArray,    ///< an .npz member numpy does not read as an array
  };
  Kind kind = Kind::kPickle;
  std::string member;       ///< as findings name it ("" for the file itself)
  core::Bytes data;         ///< the bytes the run's offsets (or the npy header's) index
  std::uint64_t offset = 0; ///< where in `data` the object starts
  const pickle::PickleRun* run = nullptr;  ///< pickle kinds
  std::string root_name;    ///< "constants" for constants.pkl, else ""
  StorageResolver storages; ///< torch kinds
  /// joblib: each NumpyArrayWrapper object → its raw array bytes, as joblib.load reads them.
  const std::map<pickle::ValueRef, core::Bytes>* raw_arrays = nullptr;
  const container::NpyHeader* npy = nullptr;  ///< kNpy
};

/// Called on the scanning thread; everything referenced is only valid during the call.
using LoadObserver = std::function<void(const LoadedObject&)>;

}  // namespace brine::scan
