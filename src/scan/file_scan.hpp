// Scanning one file: internal to scan/. The format of every blob is sniffed from its content and
// dispatched — pickle streams, legacy torch streams, zips (three readings), npy, compressed
// streams, tar and 7z archives — recursively, since containers nest (a zip in a tar in a gzip).
// Findings name the path of members that leads to them: "outer.tar!model.pt!archive/data.pkl".
//
// Implementation is split by container: file_scan.cpp (dispatch and pickle streams), scan_zip.cpp,
// scan_archive.cpp (compressed streams, tar, 7z, the torch 0.1.x tar format).
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "analysis/analyzer.hpp"
#include "analysis/torchscript.hpp"
#include "container/decompress.hpp"
#include "container/zip_layout.hpp"
#include "pickle/machine.hpp"
#include "scan/scanner.hpp"

namespace brine::scan {

class FileScan {
 public:
  FileScan(const rules::RuleSet& rules, const ScanOptions& options, FileReport& report,
           std::chrono::steady_clock::time_point deadline, std::uint64_t nested_depth);

  /// The whole file: sets the report's container and `recognized`.
  void run(core::Bytes data);
  /// How many runs made early (while a torch zip's local headers were read) were taken in their
  /// turn, in this process: for tests, which must see the overlap happen, not just its result.
  static std::uint64_t early_runs_taken();

 private:
  // ---- dispatch (file_scan.cpp) ----
  /// Any blob found in the file. `where` is its member path ("" for the file itself).
  void scan_blob(core::Bytes data, const std::string& where, unsigned depth);
  static std::string child(const std::string& where, std::string_view name);
  bool enter(const std::string& where, unsigned depth);  // container-depth limit

  // ---- what the loader builds (ScanOptions::on_load) ----
  /// True when `where` is on the file's own loader path: the file itself, or only compression
  /// layers around it, in the top-level file (not in a nested file).
  bool loader_reads(const std::string& where) const;
  /// A torch zip's data.pkl/constants.pkl as torch.load reads them: reported with its records.
  struct TorchZipPickle {
    std::string root_name;
    StorageResolver storages;
  };

  // ---- pickle streams (file_scan.cpp) ----
  /// `torch_zip`: the stream is a torch zip's pickle (reported as such when the zip is loaded).
  void scan_stream(core::Bytes data, const std::string& where, bool first_is_probe,
                   std::vector<analysis::StorageRef>* storages = nullptr,
                   analysis::PersistentIds ids = analysis::PersistentIds::kTorch,
                   const TorchZipPickle* torch_zip = nullptr);
  void scan_after_stop(core::Bytes data, std::uint64_t pos, const std::string& where,
                       std::vector<analysis::StorageRef>* storages, const pickle::BuildHook* hook = nullptr);
  /// `observe`: show the run to options_.on_pickle (off for a probe the caller may discard).
  pickle::PickleRun run_one(core::Bytes data, std::uint64_t pos, const std::string& where,
                            std::vector<analysis::StorageRef>* storages,
                            analysis::PersistentIds ids = analysis::PersistentIds::kTorch,
                            const pickle::BuildHook* hook = nullptr, bool observe = true);
  void scan_nested(const analysis::NestedPayload& nested, const std::string& where);
  /// The legacy torch.save layout from its pickle `first_part` (0 magic .. 4 storage keys) at `pos`.
  void scan_torch_legacy(core::Bytes data, const std::string& where, std::uint64_t pos = 0, int first_part = 0);
  /// `loaded`: numpy.load returns this array (the file itself, or a member of a loaded npz).
  void scan_npy(core::Bytes data, const std::string& where, bool loaded, const std::string& array_name = {});
  /// A storage key used again with more elements than its first use created: torch fails (error finding).
  void check_storage_reuse(const std::vector<analysis::StorageRef>& storages, const std::string& where);
  bool take_pickle_budget(const std::string& where, std::uint64_t offset);
  /// True once the file's wall-time budget is spent (the first call past it adds the finding).
  /// Loops over archive members check it, not only the VM.
  bool out_of_time(const std::string& where);
  /// A raw stream that also carries a zip directory (a pickle/zip polyglot, or a zip with data
  /// in front of it): loaders that look for the directory at the end read a different file.
  void check_polyglot(core::Bytes data, const std::string& where, unsigned depth);

  // ---- joblib (scan_joblib.cpp) ----
  using Region = std::pair<std::uint64_t, std::uint64_t>;  ///< [begin, end) of raw array data
  /// Follows joblib.load: after a NumpyArrayWrapper's BUILD, skips its raw array bytes (recording
  /// them in `regions`) or scans the object array's own pickle.
  /// `arrays` gets each raw-data wrapper's bytes (sanitize converts them).
  pickle::BuildHook joblib_hook(core::Bytes data, const std::string& where, std::vector<Region>& regions,
                                std::map<pickle::ValueRef, core::Bytes>& arrays);
  /// Reads the stream as plain pickle.load would and reports what it finds inside `regions`.
  void joblib_differential(core::Bytes data, const std::string& where, const std::vector<Region>& regions);

  // ---- zip (scan_zip.cpp) ----
  void scan_zip(core::Bytes data, const std::string& where, unsigned depth);
  /// A storage record of a torch zip as torch's reader (miniz) reads it: data after the local
  /// header, sizes and method from the central directory, decompressed within the file's budget.
  core::Result<StorageRecord> torch_record(core::Bytes data, const container::ZipCentral& e, const std::string& where,
                                           bool big_endian);
  /// TorchScript sources (member, analysis) of one archive: operations that touch files, the
  /// network or native code, by method; what __setstate__ reaches in any file runs at load.
  void report_torchscript(std::vector<std::pair<std::string, analysis::TorchScriptAnalysis>>& scripts);
  void report_torchscript_op(const analysis::TorchScriptOp& op, const std::string& where);

  // ---- compressed streams and archives (scan_archive.cpp) ----
  void scan_compressed(container::Codec codec, core::Bytes data, const std::string& where, unsigned depth);
  void scan_archive(core::Bytes data, const std::string& where, unsigned depth, std::string_view kind);
 public:
  /// One archive entry as libarchive reads it: a view into the input when libarchive hands the
  /// data out in place, else owned.
  struct ArchiveEntry {
    std::string name;
    std::vector<std::uint8_t> owned;
    core::Bytes bytes;
  };

 private:
  /// libarchive's reading (7z, and tar as GNU tar-like tools see it). False if it cannot open.
  bool libarchive_entries(core::Bytes data, const std::string& where, std::string_view kind, std::vector<ArchiveEntry>& entries);

  // ---- tar as Python's tarfile reads it, and torch's legacy tar checkpoints (scan_tar.cpp) ----
  void scan_tar(core::Bytes data, const std::string& where, unsigned depth);
  /// One member torch.load's legacy_load unpickles: role is "storages", "tensors" or "pickle".
  struct TorchTarPart {
    std::string role;
    std::string label;
    core::Bytes bytes;
  };
  void scan_torch_tar(const std::vector<TorchTarPart>& parts);
  /// Decompressed bytes of one member (or wrapper): charged against the file's total and checked
  /// against the ratio limit. Errors become findings and return nullopt.
  std::optional<std::vector<std::uint8_t>> inflate(container::Codec codec, core::Bytes input, const std::string& where,
                                                   std::uint64_t* consumed = nullptr);
  bool charge_decompressed(std::uint64_t bytes, const std::string& where);
  std::uint64_t member_cap(std::uint64_t compressed) const;

  void add(analysis::Finding f) { report_.findings.push_back(std::move(f)); }
  void add(std::string rule, rules::Severity sev, analysis::Verdict impact, const std::string& where,
           std::uint64_t offset, std::string message);

  const rules::RuleSet& rules_;
  const ScanOptions& options_;
  FileReport& report_;
  std::chrono::steady_clock::time_point deadline_;
  std::uint64_t nested_depth_;
  std::uint64_t decompressed_total_ = 0;
  /// Size of the file run() was given (0 for a nested file's scan, which starts in scan_blob).
  std::uint64_t file_size_ = 0;
  /// Decompression layers around the blob being scanned (0: the file's own bytes).
  unsigned inflated_depth_ = 0;
  bool timed_out_ = false;
  /// Set while scanning a reading that is not the loader's (loader_reads is false meanwhile).
  bool quiet_loads_ = false;
  /// [begin, end) of every bytes/str value (>= 22 bytes) of the pickles run so far that is a view
  /// into the bytes they were read from: check_polyglot does not take an archive inside one for a
  /// polyglot.
  std::vector<std::pair<const std::uint8_t*, const std::uint8_t*>> bytes_values_;
  void note_bytes_values(const pickle::PickleRun& run, core::Bytes data);

  // ---- a torch zip's data.pkl run while its local headers are read (scan_zip.cpp) ----
  /// A run of run_pickle(bytes, 0, limits, deadline, hook) made before its turn, and its
  /// analysis as a torch zip's pickle named `member`: the next run_one of exactly those bytes
  /// from 0 with a joblib hook takes the run instead of running again, and the analysis if it
  /// names the member so too.
  struct EarlyRun {
    const std::uint8_t* data;
    std::size_t size;
    pickle::PickleRun run;
    std::string member;
    analysis::PickleAnalysis analysis;
  };
  std::optional<EarlyRun> early_run_;
  /// torch's data.pkl (its bytes and its name) as torch.load would find it from the central
  /// directory alone, if reading this archive's local headers is worth overlapping with its run
  /// (many headers, each a pread).
  std::optional<std::pair<core::Bytes, std::string_view>> early_pickle(core::Bytes data, const container::ZipLayout& torch_view) const;
  /// Runs and analyses `pickle` into early_run_, unless a joblib array's BUILD (whose hook has
  /// effects) or the deadline stopped it: then run_one runs it again in its turn.
  void run_early(core::Bytes pickle, std::string member);
};

}  // namespace brine::scan
