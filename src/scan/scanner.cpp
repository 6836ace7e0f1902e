#include "scan/scanner.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <map>

#include "container/sniff.hpp"
#include "core/mapped_file.hpp"
#include "core/sha256.hpp"
#include "core/text.hpp"
#include "pickle/predecode.hpp"
#include "scan/file_scan.hpp"
#include "tensor/dtype.hpp"

namespace brine::scan {

using analysis::Finding;
using analysis::Verdict;
using rules::Severity;

std::uint64_t storage_element_size(std::string_view type) {
  const auto dot = type.rfind('.');
  const std::string_view module = dot == std::string_view::npos ? std::string_view{} : type.substr(0, dot);
  if (module != "torch" && module != "torch.cuda" && module != "torch.storage") return 0;
  const std::string_view name = type.substr(dot + 1);
  if (auto dtype = tensor::from_storage_class(name)) return tensor::info(*dtype).size;
  // Storages sanitize has no tensor type for, but whose records the scan still checks: packed
  // quantized ones (several values per byte) and untyped ones (sizes in bytes).
  static constexpr std::string_view kByteSized[] = {"QUInt4x2Storage", "QUInt2x4Storage", "UntypedStorage", "_UntypedStorage"};
  return std::find(std::begin(kByteSized), std::end(kByteSized), name) != std::end(kByteSized) ? 1 : 0;
}

namespace {

/// Extensions that promise a format that is not a pickle container. A model file dressed as one
/// (a pickle named .json, a zip named .safetensors) is a disguise: some tools skip or mis-route
/// files by extension (CVE-2025-10155).
bool data_extension(std::string_view path) {
  static constexpr std::string_view kData[] = {
      ".json", ".txt", ".md", ".csv", ".tsv", ".yaml", ".yml", ".xml", ".html", ".toml", ".ini", ".cfg",
      ".safetensors", ".onnx", ".gguf", ".ggml", ".h5", ".hdf5", ".tflite", ".msgpack", ".png", ".jpg",
      ".jpeg", ".gif", ".wav", ".mp3", ".parquet", ".arrow", ".py", ".sh", ".model", ".spm", ".vocab",
  };
  const auto slash = path.find_last_of('/');
  const std::string name = core::ascii_lower(path.substr(slash == std::string_view::npos ? 0 : slash + 1));
  for (auto ext : kData) {
    if (name.size() > ext.size() && name.ends_with(ext)) return true;
  }
  return false;
}

}  // namespace

Scanner::Scanner(std::shared_ptr<const rules::RuleSet> rules, ScanOptions options)
    : rules_(std::move(rules)), options_(options) {}

FileReport Scanner::scan_bytes(core::Bytes data, std::string path) const {
  const auto start = std::chrono::steady_clock::now();
  FileReport report;
  report.path = std::move(path);
  report.size = data.size();
  if (options_.compute_sha256) report.sha256 = core::sha256_hex(data);
  FileScan(*rules_, options_, report, start + options_.limits.max_file_time, 0).run(data);
  if (report.recognized && report.pickles > 0 && data_extension(report.path)) {
    Finding f;
    f.rule = "unapproved:extension-mismatch";
    f.severity = Severity::kMedium;
    f.impact = Verdict::kUnapproved;
    f.message = fmt::format("the name says a data format, the content is a {} a loader would unpickle", report.container);
    report.findings.push_back(std::move(f));
  }
  std::stable_sort(report.findings.begin(), report.findings.end(), [](const Finding& a, const Finding& b) {
    if (a.impact != b.impact) return a.impact > b.impact;
    if (a.severity != b.severity) return a.severity > b.severity;
    if (a.member != b.member) return a.member < b.member;
    return a.offset < b.offset;
  });
  report.verdict = analysis::verdict_of(report.findings);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

FileReport Scanner::scan_path(const std::string& path) const {
  auto file = path == "-" ? core::MappedFile::read_stream(0, options_.limits.max_member_bytes) : core::MappedFile::open(path);
  if (!file) {
    FileReport report;
    report.path = path;
    report.container = "unreadable";
    report.findings.push_back(analysis::error_finding(file.error(), {}));
    report.findings.back().rule = "io:unreadable";
    report.findings.back().message = file.error().detail;
    report.verdict = Verdict::kError;
    return report;
  }
  if (reads_whole(file->bytes())) file->read_whole();  // same bytes, read at once (a hint: may decline)
  return scan_bytes(file->bytes(), path);
}

bool Scanner::reads_whole(core::Bytes bytes) {
  // A raw pickle is decoded from its first byte to its last STOP, so reading it costs no byte a
  // scan would skip, unless it carries bulk data its loader reads past the stream: a legacy
  // torch.save file (tensors after the pickles) or a joblib file (arrays inside the stream,
  // announced by NumpyArrayWrapper before the first one). Bounded: a miss reads at most this much.
  constexpr std::uint64_t kMaxRead = std::uint64_t{64} << 20;
  constexpr std::size_t kLookAhead = std::size_t{64} << 10;
  // A large framed pickle stays mapped: its frames are measured from the end on a second CPU
  // while the VM decodes from the start (pickle::Predecoder), each faulting in its own part,
  // where reading the whole file first would keep both waiting for the copy.
  if (pickle::Predecoder::worth_a_thread(bytes, 0)) return false;
  if (bytes.size() > kMaxRead || container::sniff(bytes) != container::Format::kPickle || container::is_torch_legacy_magic(bytes)) {
    return false;
  }
  const std::string_view head = core::as_chars(bytes.first(std::min<std::size_t>(bytes.size(), kLookAhead)));
  return head.find("NumpyArrayWrapper") == std::string_view::npos && head.find("numpy_pickle") == std::string_view::npos;
}

}  // namespace brine::scan
