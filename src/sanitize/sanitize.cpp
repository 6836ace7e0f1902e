#include "sanitize/sanitize.hpp"

#include <fmt/format.h>
#include <fnmatch.h>
#include <sys/stat.h>

#include <algorithm>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>

#include "container/decompress.hpp"
#include "container/npy.hpp"
#include "container/sniff.hpp"
#include "container/zip_layout.hpp"
#include "core/mapped_file.hpp"
#include "core/text.hpp"
#include "sanitize/verify.hpp"

namespace brine::sanitize {

using core::ErrorCode;

namespace {

core::Error make_error(ErrorCode code, std::string member, std::uint64_t offset, std::string detail) {
  return core::Error{code, offset, std::move(member), {}, std::move(detail)};
}

/// Everything the tensors' byte views point into, kept alive until the output is written.
struct Holder {
  std::deque<std::vector<std::uint8_t>> buffers;
  std::vector<std::shared_ptr<const std::vector<std::uint8_t>>> records;  ///< decompressed storage records
  /// [begin, end) of every byte range above that outlives the scan, by begin.
  std::map<const std::uint8_t*, const std::uint8_t*> stable;
  /// Copies already made of bytes that did not outlive the scan: (begin, size) → copy.
  std::map<std::pair<const std::uint8_t*, std::size_t>, core::Bytes> copies;

  void keep(core::Bytes b) {
    if (!b.empty()) stable.emplace(b.data(), b.data() + b.size());
  }
  [[nodiscard]] bool is_stable(core::Bytes b) const {
    auto it = stable.upper_bound(b.data());
    if (it == stable.begin()) return false;
    --it;
    return b.data() >= it->first && b.data() + b.size() <= it->second;
  }
};

/// Converts what the scan reports the loader would build (scan::LoadedObject): sanitize has no
/// reader of its own. The objects arrive during the scan and refer to the scan's buffers, so the
/// tensors are extracted right away, and bytes that do not outlive the scan (decompressed data,
/// text the VM decoded) are copied into the Holder.
class Collector {
 public:
  Collector(const scan::Scanner& scanner, core::Bytes input, bool salvage, Holder& holder, Extraction& out, unsigned nested_depth = 0)
      : scanner_(scanner), salvage_(salvage), holder_(holder), out_(out), nested_depth_(nested_depth) {
    holder_.keep(input);
  }

  /// Scans `data` (the input, or a nested storage file) and extracts what its loader builds.
  scan::FileReport scan(core::Bytes data, const std::string& path) {
    scan::ScanOptions options = scanner_.options();
    options.on_pickle = nullptr;
    options.on_load = [this](const scan::LoadedObject& o) { take(o); };
    return scan::Scanner(scanner_.shared_rules(), options).scan_bytes(data, path);
  }

  [[nodiscard]] std::uint64_t objects() const { return objects_; }
  [[nodiscard]] std::uint64_t arrays_or_pickles() const { return arrays_or_pickles_; }

 private:
  const core::Limits& limits() const { return scanner_.options().limits; }

  void take(const scan::LoadedObject& o) {
    ++objects_;
    const std::size_t before = out_.tensors.size();
    const std::size_t owned_before = out_.owned.size();
    using Kind = scan::LoadedObject::Kind;
    switch (o.kind) {
      case Kind::kNotAnArray:
        out_.dropped.push_back(Dropped{o.root_name, "an archive member that is not a numpy array", 0});
        return;
      case Kind::kNpy:
        ++arrays_or_pickles_;
        npy_array(o);
        break;
      case Kind::kPickle:
      case Kind::kTorchZip:
      case Kind::kTorchLegacy: {
        ++arrays_or_pickles_;
        PickleInput in = input();
        in.run = o.run;
        in.member = o.member;
        in.root_name = o.root_name;
        if (o.raw_arrays != nullptr) in.raw_arrays = *o.raw_arrays;
        if (o.storages) {
          in.storages = [this, resolve = o.storages](std::string_view key) -> core::Result<StorageData> {
            BRINE_TRY_ASSIGN(auto record, resolve(key));
            if (record.owner) {
              holder_.keep(core::Bytes(record.owner->data(), record.owner->size()));
              holder_.records.push_back(record.owner);
            }
            return StorageData{record.bytes, record.member, record.big_endian};
          };
        }
        extract(in, scanner_.rules(), limits(), out_);
        break;
      }
    }
    for (std::size_t i = owned_before; i < out_.owned.size(); ++i) holder_.keep(core::Bytes(out_.owned[i]));
    for (std::size_t i = before; i < out_.tensors.size(); ++i) pin(out_.tensors[i]);
  }

  /// Makes the tensor's bytes outlive the scan.
  void pin(tensor::Tensor& t) {
    if (t.storage.empty() || holder_.is_stable(t.storage)) return;
    const auto key = std::make_pair(t.storage.data(), t.storage.size());
    auto it = holder_.copies.find(key);
    if (it == holder_.copies.end()) {
      auto& copy = holder_.buffers.emplace_back(t.storage.begin(), t.storage.end());
      it = holder_.copies.emplace(key, core::Bytes(copy)).first;
    }
    t.storage = it->second;
  }

  /// Every pickle's inputs start like this: salvage mode, and a reader for nested storage files.
  PickleInput input() {
    PickleInput in;
    in.salvage = salvage_;
    in.nested_storage = [this](core::Bytes file, const std::string& where) -> core::Result<NestedStorage> {
      if (nested_depth_ + 1 > limits().max_nested_depth) {
        return core::fail(make_error(ErrorCode::kLimitExceeded, where, 0, "max-nested-depth"));
      }
      // The nested file as the scan reads it (torch.load of the bytes): its one storage.
      Extraction inner;
      Collector nested(scanner_, {}, salvage_, holder_, inner, nested_depth_ + 1);
      const scan::FileReport report = nested.scan(file, where);
      if (inner.tensors.size() != 1 || !inner.tensors[0].name.empty()) {
        std::string why = "the nested file does not hold exactly one storage";
        for (const auto& f : report.findings) {
          if (f.impact == analysis::Verdict::kError) {
            why = f.message;
            break;
          }
        }
        return core::fail(make_error(ErrorCode::kTypeError, where, 0, why));
      }
      const auto& t = inner.tensors[0];
      return NestedStorage{StorageData{t.storage, t.source, t.big_endian}, t.dtype};
    };
    return in;
  }

  /// An .npy array (or npz member) from the header the scan parsed and judged.
  void npy_array(const scan::LoadedObject& o) {
    const container::NpyHeader& header = *o.npy;
    const std::string& name = o.root_name;
    const std::string label = name.empty() ? "(root)" : name;
    if (!header.unresolved.empty()) {
      out_.dropped.push_back(Dropped{label, "a .npy header brine cannot read exactly: " + header.unresolved, 0});
      return;
    }
    if (header.has_object) {
      out_.dropped.push_back(Dropped{label, "an object array: its elements are pickled Python objects", header.data_offset});
      return;
    }
    bool big = false;
    auto dtype = header.dtype.str.empty() ? std::nullopt : tensor::from_numpy_typestr(header.dtype.str, &big);
    if (!dtype) {
      out_.dropped.push_back(Dropped{label, fmt::format("numpy dtype {} is not converted", header.descr), 0});
      return;
    }
    for (auto dim : header.shape) {
      if (dim < 0) {
        out_.dropped.push_back(Dropped{label, "a .npy array with a negative dimension", 0});
        return;
      }
    }
    tensor::Tensor t;
    t.name = name;
    t.dtype = *dtype;
    t.big_endian = big;
    t.shape = header.shape;
    t.strides.resize(t.shape.size());
    std::int64_t acc = 1;
    for (std::size_t k = 0; k < t.shape.size(); ++k) {
      const std::size_t i = header.fortran_order ? k : t.shape.size() - 1 - k;
      t.strides[i] = acc;
      if (__builtin_mul_overflow(acc, std::max<std::int64_t>(t.shape[i], 1), &acc)) {
        out_.dropped.push_back(Dropped{label, "the .npy shape overflows", 0});
        return;
      }
    }
    t.storage = o.data.subspan(header.data_offset);
    t.source = o.member.empty() ? "(npy data)" : o.member;
    t.offset = header.data_offset;
    t.storage_key = o.member + "#npy";
    if (auto ok = tensor::check_bounds(t); !ok) {
      // numpy.load fails on an array whose data is cut short: nothing to write for it.
      out_.dropped.push_back(Dropped{label, "the .npy data is shorter than its header says: " + ok.error().detail, header.data_offset});
      return;
    }
    out_.tensors.push_back(std::move(t));
  }

  const scan::Scanner& scanner_;
  bool salvage_;
  Holder& holder_;
  Extraction& out_;
  unsigned nested_depth_;
  std::uint64_t objects_ = 0;
  std::uint64_t arrays_or_pickles_ = 0;
};

/// Why nothing could be extracted from a scanned file whose loader builds nothing brine converts.
core::Error nothing_loaded(const scan::FileReport& report, std::uint64_t objects) {
  if (report.container == "tar" || report.container == "7z") {
    return make_error(ErrorCode::kContainer, "", 0, "sanitize reads torch zip/legacy files, pickles, joblib and numpy files; not tar or 7z archives");
  }
  for (const auto& f : report.findings) {
    if (f.impact == analysis::Verdict::kError) return make_error(ErrorCode::kContainer, f.member, f.offset, f.message);
  }
  if (objects != 0) return make_error(ErrorCode::kContainer, "", 0, "a zip that is neither a torch checkpoint nor an npz of arrays");
  return make_error(ErrorCode::kNotAPickle, "", 0, "not a format sanitize reads");
}

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

std::string view_key(const tensor::Tensor& t) {
  return fmt::format("{}|{}|{}|{}|{}|{}{}", t.storage_key, tensor::info(t.dtype).torch_name, t.storage_offset,
                     fmt::join(t.shape, ","), fmt::join(t.strides, ","), t.conj ? "c" : "", t.neg ? "n" : "");
}

}  // namespace

ExtractedFile extract_bytes(core::Bytes data, const scan::Scanner& scanner, bool salvage, scan::FileReport* report,
                            const std::string& path) {
  ExtractedFile out;
  auto holder = std::make_shared<Holder>();
  Collector collector(scanner, data, salvage, *holder, out.extraction);
  scan::FileReport scanned = collector.scan(data, path);
  if (collector.arrays_or_pickles() == 0) out.error = nothing_loaded(scanned, collector.objects());
  out.keep_alive = std::move(holder);
  if (report != nullptr) *report = std::move(scanned);
  return out;
}

SanitizeReport sanitize_file(const std::string& input, const scan::Scanner& scanner, const SanitizeOptions& options) {
  SanitizeReport report;
  const std::string& input_name = options.input_name.empty() ? input : options.input_name;
  report.input = input_name;
  report.output = options.output;
  report.format = options.format;
  auto fail = [&](core::Error e) {
    report.error = std::move(e);
    return std::move(report);
  };
  if (options.output == input || same_file(options.output, input)) {
    return fail(make_error(ErrorCode::kUsage, "", 0, "the output is the input file: sanitize never overwrites its input"));
  }
  auto file = core::MappedFile::open(input);
  if (!file) return fail(file.error());
  const core::Bytes data = file->bytes();

  // One scan: its verdict decides, and what it reports the loader builds is what gets written.
  ExtractedFile extracted = extract_bytes(data, scanner, options.salvage, &report.scan, input_name);
  if (report.scan.verdict != analysis::Verdict::kClean && !options.salvage) {
    // Unapproved or malicious: a policy refusal (exit 1). An `error` verdict: unreadable input (exit 2).
    report.refused = report.scan.verdict != analysis::Verdict::kError;
    return fail(make_error(ErrorCode::kUsage, "", 0,
                           fmt::format("the scan verdict is {}: nothing written (--salvage writes the tensors of approved "
                                       "rebuild calls from such a file)", analysis::verdict_name(report.scan.verdict))));
  }

  // A limit the scan hit would be hit again reading the tensors (and a file that needs more than
  // the limits allow is not one to convert unattended): refused even when salvaging.
  for (const auto& f : report.scan.findings) {
    if (f.rule.starts_with("limit:")) {
      return fail(make_error(ErrorCode::kLimitExceeded, f.member, f.offset, fmt::format("the scan hit a limit ({}): nothing written", f.rule)));
    }
  }

  if (extracted.error) return fail(*extracted.error);
  Extraction& ex = extracted.extraction;
  for (auto& t : ex.tensors) {
    if (!t.storage.empty() && t.storage.data() >= data.data() && t.storage.data() + t.storage.size() <= data.data() + data.size()) {
      t.mapping = &*file;
    }
  }

  // ---- names: bare object, prefix, selection ----
  auto rename = [&](std::string name) -> std::optional<std::string> {
    if (name.empty()) name = options.bare_name;
    if (!options.strip_prefix.empty() && name.starts_with(options.strip_prefix)) name.erase(0, options.strip_prefix.size());
    if (!options.select.empty()) {
      bool keep = false;
      for (const auto& g : options.select) keep = keep || ::fnmatch(g.c_str(), name.c_str(), 0) == 0;
      if (!keep) return std::nullopt;
    }
    if (name.empty()) name = options.bare_name;
    return name;
  };

  // Containers reached twice (memo): every tensor under the first name also has the second.
  std::vector<tensor::Tensor> extra;
  for (const auto& [alias, first] : ex.object_aliases) {
    for (const auto& t : ex.tensors) {
      if (t.name.starts_with(first + ".")) {
        tensor::Tensor copy = t;
        copy.name = alias + t.name.substr(first.size());
        extra.push_back(std::move(copy));
      }
    }
  }
  for (auto& t : extra) ex.tensors.push_back(std::move(t));

  std::vector<const tensor::Tensor*> kept;
  std::set<std::string> names;          // every tensor name, written or aliased
  std::set<std::string> written_names;
  std::unordered_map<std::string, std::string> by_view;  // view key -> kept name
  for (auto& t : ex.tensors) {
    auto name = rename(t.name);
    if (!name) continue;
    t.name = *name;
    if (!names.insert(t.name).second) {
      report.dropped.push_back(Dropped{t.name, "another value already has this name", t.offset});
      continue;
    }
    if (options.dedupe) {
      auto [it, inserted] = by_view.emplace(view_key(t), t.name);
      if (!inserted) {
        report.aliases.emplace_back(t.name, it->second);
        continue;
      }
    }
    kept.push_back(&t);
    written_names.insert(t.name);
  }

  // ---- metadata: format, aliases, non-tensor leaves ----
  std::set<std::string> keys;
  auto meta = [&](std::string k, std::string v, bool is_leaf) {
    if (!keys.insert(k).second || written_names.count(k) != 0) {
      if (is_leaf) report.dropped.push_back(Dropped{k, "its name is already used in the output", 0});
      return;
    }
    report.metadata.emplace_back(std::move(k), std::move(v));
  };
  if (options.format == "safetensors") meta("format", "pt", false);
  for (const auto& [alias, kept_name] : report.aliases) meta(alias, kept_name, false);
  for (auto& leaf : ex.leaves) {
    auto name = rename(leaf.name);
    if (!name) continue;
    meta(*name, std::move(leaf.json), true);
  }
  for (auto& d : ex.dropped) report.dropped.push_back(std::move(d));

  for (const auto* t : kept) {
    report.tensors.push_back(WrittenTensor{t->name, std::string(tensor::info(t->dtype).torch_name), t->shape, t->source,
                                           t->offset, t->nbytes()});
  }
  if (kept.empty()) {
    return fail(make_error(ErrorCode::kUsage, "", 0, "no tensors to write (see the dropped values)"));
  }

  // Output size: counted before anything is written, so an overlapping-view bomb fills no disk.
  std::uint64_t tensor_bytes = 0;
  for (const auto* t : kept) {
    const std::uint64_t n = t->nbytes();
    tensor_bytes = n > UINT64_MAX - tensor_bytes ? UINT64_MAX : tensor_bytes + n;  // saturates
  }
  const std::uint64_t max_output = options.max_output_bytes != 0 ? options.max_output_bytes
                                                                 : std::max<std::uint64_t>(1ull << 30, data.size() * 8);
  if (tensor_bytes > max_output) {
    return fail(make_error(ErrorCode::kLimitExceeded, "", 0,
                           fmt::format("max-output-bytes: the tensors to write hold {} bytes, the limit is {}", tensor_bytes, max_output)));
  }
  if (options.admit_output && !options.admit_output(tensor_bytes)) {
    return fail(make_error(ErrorCode::kLimitExceeded, "", 0,
                           fmt::format("the tensors to write hold {} bytes: more than the temp disk free for them", tensor_bytes)));
  }

  writer::OutputModel model;
  model.tensors = kept;
  model.metadata = report.metadata;
  auto written = options.format == "onnx" ? writer::write_onnx(model, options.output, options.write)
                                          : writer::write_safetensors(model, options.output, options.write);
  if (!written) return fail(written.error());
  report.written = true;
  if (options.verify) {
    auto ok = options.format == "onnx" ? verify_onnx(model, options.output) : verify_safetensors(model, options.output);
    if (!ok) return fail(ok.error());
    report.verified = true;
  }
  return report;
}

}  // namespace brine::sanitize
