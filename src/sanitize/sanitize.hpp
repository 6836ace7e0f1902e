// `brine sanitize`: the tensors of a checkpoint written as safetensors or ONNX, from brine's own
// symbolic reading — nothing from the input is ever executed.
//
// Policy: the file is scanned first; unless its verdict is clean, nothing is written, except in
// salvage mode, which writes the tensors of approved rebuild calls and reports everything it
// dropped. Outputs are atomic, never replace the input, and replace an existing file only when
// forced. Verification re-reads the output and compares every tensor with the source.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "sanitize/extract.hpp"
#include "scan/scanner.hpp"
#include "writer/output.hpp"

namespace brine::sanitize {

struct SanitizeOptions {
  std::string output;
  std::string format;                 ///< "safetensors" or "onnx"
  bool salvage = false;
  bool verify = false;
  bool dedupe = true;
  std::string strip_prefix;
  std::vector<std::string> select;    ///< fnmatch globs; empty keeps everything
  std::string bare_name = "tensor";   ///< name of a tensor that is the whole loaded object
  /// The name reports give the input, and its extension checks use (default: its path). `brine
  /// serve` scans an unnamed temp file under the name the client gave.
  std::string input_name;
  /// Tensor bytes one output may hold. Views can overlap, so a small file can name far more
  /// bytes than it holds: 0 means 8x the input's size, at least 1 GiB.
  std::uint64_t max_output_bytes = 0;
  /// Asked, with the exact tensor bytes, before anything is written; false refuses the output
  /// (`brine serve` charges them to its temp-disk budget). Optional.
  std::function<bool(std::uint64_t bytes)> admit_output;
  writer::WriteOptions write;
};

/// One written tensor, as the report shows it (no bytes).
struct WrittenTensor {
  std::string name;
  std::string dtype;
  std::vector<std::int64_t> shape;
  std::string source;
  std::uint64_t offset = 0;
  std::uint64_t bytes = 0;
};

struct SanitizeReport {
  scan::FileReport scan;
  std::string input, output, format;
  bool written = false;
  bool verified = false;
  std::vector<WrittenTensor> tensors;
  std::vector<std::pair<std::string, std::string>> aliases;   ///< {alias, kept}
  std::vector<std::pair<std::string, std::string>> metadata;  ///< as written
  std::vector<Dropped> dropped;
  /// Why nothing (or not everything) was done; nullopt on success.
  std::optional<core::Error> error;
  bool refused = false;  ///< not written because the scan was not clean (exit 1, not 2)
};

SanitizeReport sanitize_file(const std::string& input, const scan::Scanner& scanner, const SanitizeOptions& options);

/// The extraction half of sanitize, over bytes already in memory: the scan (whose report goes to
/// `report` if given) and what it reports the loader builds, converted; no policy, no output. The
/// tensors' byte views point into `data` or into buffers `keep_alive` owns.
struct ExtractedFile {
  Extraction extraction;
  std::optional<core::Error> error;      ///< the input could not be read (nothing, or part, extracted)
  std::shared_ptr<const void> keep_alive;
};
ExtractedFile extract_bytes(core::Bytes data, const scan::Scanner& scanner, bool salvage, scan::FileReport* report = nullptr,
                            const std::string& path = {});

}  // namespace brine::sanitize
