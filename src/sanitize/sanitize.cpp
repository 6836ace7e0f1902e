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
  std::deque<pickle::PickleRun> runs;
  std::uint64_t decompressed = 0;
};

/// Reads one input's containers and extracts its tensors.
class Reader {
 public:
  Reader(const rules::RuleSet& rules, const core::Limits& limits, bool salvage, Holder& holder, Extraction& out,
         unsigned nested_depth = 0)
      : salvage_(salvage), rules_(rules), limits_(limits), holder_(holder), out_(out),
        deadline_(std::chrono::steady_clock::now() + limits_.max_file_time), nested_depth_(nested_depth) {}

  core::Status read(core::Bytes data, const std::string& where, unsigned depth) {
    if (depth > limits_.max_container_depth) {
      return core::fail(make_error(ErrorCode::kLimitExceeded, where, 0, "max-container-depth"));
    }
    if (auto codec = container::sniff_codec(data)) {
      auto inflated = container::decompress(*codec, data, member_cap(data.size()));
      if (!inflated) {
        auto e = inflated.error();
        e.member = where;
        return core::fail(std::move(e));
      }
      holder_.decompressed += inflated->data.size();
      auto& buf = holder_.buffers.emplace_back(std::move(inflated->data));
      return read(core::Bytes(buf), fmt::format("{}[{}]", where.empty() ? "" : where + "!", container::codec_name(*codec)),
                  depth + 1);
    }
    const container::Format format = container::sniff(data);
    if (format != container::Format::kZip && container::sniff_archive(data)) {
      // torch.load reads a file tarfile opens as a tar, whatever else its bytes are.
      return core::fail(make_error(ErrorCode::kContainer, where, 0,
                                   "sanitize reads torch zip/legacy files, pickles, joblib and numpy files; not tar or 7z archives"));
    }
    switch (format) {
      case container::Format::kZip: return read_zip(data, where, depth);
      case container::Format::kNpy: return read_npy(data, where, "");
      case container::Format::kPickle:
      case container::Format::kMaybePickle:
        if (container::is_torch_legacy_magic(data)) return read_legacy(data, where);
        return read_pickle(data, where);
      case container::Format::kEmpty:
        return core::fail(make_error(ErrorCode::kNotAPickle, where, 0, "the file is empty"));
      default:
        if (container::sniff_archive(data)) {
          return core::fail(make_error(ErrorCode::kContainer, where, 0,
                                       "sanitize reads torch zip/legacy files, pickles, joblib and numpy files; not tar or 7z archives"));
        }
        return core::fail(make_error(ErrorCode::kNotAPickle, where, 0, "not a format sanitize reads"));
    }
  }

 private:
  /// Every pickle's inputs start like this: salvage mode, and a reader for nested storage files.
  PickleInput input() {
    PickleInput in;
    in.salvage = salvage_;
    in.nested_storage = [this](core::Bytes file, const std::string& where) -> core::Result<NestedStorage> {
      if (nested_depth_ + 1 > limits_.max_nested_depth) {
        return core::fail(make_error(ErrorCode::kLimitExceeded, where, 0, "max-nested-depth"));
      }
      Extraction inner;
      BRINE_TRY(Reader(rules_, limits_, salvage_, holder_, inner, nested_depth_ + 1).read(file, where, 0));
      if (inner.tensors.size() != 1 || !inner.tensors[0].name.empty()) {
        return core::fail(make_error(ErrorCode::kTypeError, where, 0, "the nested file does not hold exactly one storage"));
      }
      const auto& t = inner.tensors[0];
      return NestedStorage{StorageData{t.storage, t.source, t.big_endian}, t.dtype};
    };
    return in;
  }

  /// The same cap the scan applies (Limits::decompression_cap), so a bomb fails here as it fails there.
  std::uint64_t member_cap(std::uint64_t compressed) const {
    return limits_.decompression_cap(compressed, holder_.decompressed);
  }

  const pickle::PickleRun& run(core::Bytes data, std::uint64_t pos, const std::string& where,
                               const pickle::BuildHook* hook = nullptr) {
    return holder_.runs.emplace_back(pickle::run_pickle(data, pos, limits_, deadline_, hook));
  }

  core::Status check_run(const pickle::PickleRun& r, const std::string& where) {
    if (r.stopped) return {};
    // A pickle that fails never reaches STOP: the loader raises, there is no loaded object.
    core::Error e = r.error.value_or(make_error(ErrorCode::kNoStop, where, r.end, "the pickle does not end"));
    e.member = where;
    return core::fail(std::move(e));
  }

  core::Status read_pickle(core::Bytes data, const std::string& where) {
    PickleInput in = input();
    const pickle::BuildHook hook = joblib_array_hook(data, limits_, in.raw_arrays);
    const auto& r = run(data, 0, where, &hook);
    BRINE_TRY(check_run(r, where));
    in.run = &r;
    in.member = where;
    extract(in, rules_, limits_, out_);
    return {};
  }

  /// Legacy torch stream: magic, protocol, sys_info, the object, the storage keys, then each
  /// storage as an int64 LE element count and its bytes, in key-list order.
  core::Status read_legacy(core::Bytes data, const std::string& where) {
    std::uint64_t pos = 0;
    const pickle::PickleRun* main_run = nullptr;
    const pickle::PickleRun* keys_run = nullptr;
    for (int i = 0; i < 5; ++i) {
      if (pos >= data.size()) return core::fail(make_error(ErrorCode::kTruncated, where, pos, "legacy torch file ends early"));
      const auto& r = run(data, pos, where);
      BRINE_TRY(check_run(r, where));
      if (i == 3) main_run = &r;
      if (i == 4) keys_run = &r;
      pos = r.end;
    }
    // Element sizes by key, from the persistent ids of the object pickle.
    std::map<std::string, std::uint64_t> elsize;
    const auto& mv = main_run->values;
    for (const auto& e : main_run->events) {
      if (e.kind != pickle::Event::Kind::kPersistentLoad) continue;
      const auto pid = mv.persistent_rec(e.subject).pid;
      if (mv.node(pid).kind != pickle::Kind::kTuple || mv.items(pid).size() < 3) continue;
      const auto t = mv.items(pid);
      auto key = mv.as_text(t[2]);
      if (!key || mv.node(t[1]).kind != pickle::Kind::kGlobal || !mv.global_rec(t[1]).resolved) continue;
      const auto& g = mv.global_rec(t[1]);
      std::uint64_t es = 1;
      if (auto dt = tensor::from_storage_class(g.name)) es = tensor::info(*dt).size;
      elsize.emplace(std::string(*key), es);
    }
    const auto& kv = keys_run->values;
    if (kv.node(keys_run->root).kind != pickle::Kind::kList) {
      return core::fail(make_error(ErrorCode::kTypeError, where, keys_run->start, "the storage-key pickle is not a list"));
    }
    auto storages = std::make_shared<std::map<std::string, StorageData>>();
    core::ByteReader reader(data, pos);
    for (pickle::ValueRef key_ref : kv.items(keys_run->root)) {
      auto key = kv.as_text(key_ref);
      if (!key) return core::fail(make_error(ErrorCode::kTypeError, where, reader.pos(), "a storage key is not a string"));
      auto it = elsize.find(std::string(*key));
      if (it == elsize.end()) {
        return core::fail(make_error(ErrorCode::kTypeError, where, reader.pos(),
                                     fmt::format("storage '{}' is listed but no tensor uses it: its element size is unknown", *key)));
      }
      const std::uint64_t at = reader.pos();
      auto count = reader.uint_le(8);
      std::uint64_t bytes = 0;
      if (!count || __builtin_mul_overflow(*count, it->second, &bytes) || bytes > reader.remaining()) {
        return core::fail(make_error(ErrorCode::kTruncated, where, at, fmt::format("storage '{}' runs past the end of the file", *key)));
      }
      // torch reads the storages in key-list order into the storage cached for each key
      // (_set_from_file): a key listed twice is read twice, and the later bytes are the ones kept.
      // Its size must match the first reading, or torch raises "storage has wrong size".
      StorageData read{data.subspan(reader.pos(), bytes), fmt::format("{}@{}", where, reader.pos()), false};
      if (auto [it2, fresh] = storages->try_emplace(std::string(*key), read); !fresh) {
        if (it2->second.bytes.size() != bytes) {
          return core::fail(make_error(ErrorCode::kTypeError, where, at,
                                       fmt::format("storage '{}' is listed twice with different sizes: torch.load fails", *key)));
        }
        it2->second = read;
      }
      reader.seek(reader.pos() + bytes);
    }
    PickleInput in = input();
    in.run = main_run;
    in.member = where;
    in.storages = [storages, where](std::string_view key) -> core::Result<StorageData> {
      auto it = storages->find(std::string(key));
      if (it == storages->end()) return core::fail(ErrorCode::kContainer, 0, fmt::format("storage '{}' is not in the file", key));
      return it->second;
    };
    extract(in, rules_, limits_, out_);
    return {};
  }

  core::Result<core::Bytes> member_bytes(core::Bytes data, const container::ZipCentral& e, const std::string& where) {
    auto local = container::parse_local_header(data, e.local_offset);
    if (!local) return core::fail(make_error(ErrorCode::kContainer, where, e.local_offset, "no local header for " + e.name));
    // miniz: data after the local header's name and extra field, sizes from the central directory.
    if (local->data_offset > data.size() || e.compressed_size > data.size() - local->data_offset) {
      return core::fail(make_error(ErrorCode::kTruncated, where, local->data_offset, e.name + " runs past the end of the archive"));
    }
    if (e.method == 0) return data.subspan(local->data_offset, e.compressed_size);
    auto bytes = container::zip_member_data(data, local->data_offset, e.compressed_size, e.method, member_cap(e.compressed_size));
    if (!bytes) {
      auto err = bytes.error();
      err.member = where + "!" + e.name;
      return core::fail(std::move(err));
    }
    holder_.decompressed += bytes->size();
    return core::Bytes(holder_.buffers.emplace_back(std::move(*bytes)));
  }

  core::Status read_zip(core::Bytes data, const std::string& where, unsigned depth) {
    auto layout = container::parse_zip_layout(data, limits_.max_archive_entries, container::ZipReader::kMiniz);
    if (!layout) {
      auto e = layout.error();
      e.member = where;
      return core::fail(std::move(e));
    }
    const auto& central = layout->central;
    std::map<std::string, const container::ZipCentral*> by_lower;
    for (const auto& e : central) by_lower.emplace(core::ascii_lower(e.name), &e);
    std::string prefix;
    if (!central.empty()) {
      const auto slash = central[0].name.find('/');
      if (slash != std::string::npos) prefix = central[0].name.substr(0, slash + 1);
    }
    auto find = [&](const std::string& record) -> const container::ZipCentral* {
      auto it = by_lower.find(core::ascii_lower(prefix + record));
      return it == by_lower.end() ? nullptr : it->second;
    };
    const auto* data_pkl = prefix.empty() ? nullptr : find("data.pkl");
    const auto* constants_pkl = prefix.empty() ? nullptr : find("constants.pkl");
    if (data_pkl != nullptr || constants_pkl != nullptr) {
      bool big = false;
      if (const auto* bo = find("byteorder")) {
        BRINE_TRY_ASSIGN(auto text, member_bytes(data, *bo, where));
        const auto s = core::as_chars(text);
        if (s.starts_with("big")) big = true;
        else if (!s.starts_with("little")) {
          return core::fail(make_error(ErrorCode::kContainer, where, bo->local_offset, "the byteorder record is neither 'little' nor 'big'"));
        }
      }
      struct Part {
        const container::ZipCentral* pkl;
        const char* dir;
        const char* root;
      };
      for (const Part& part : {Part{data_pkl, "data/", ""}, Part{constants_pkl, "constants/", "constants"}}) {
        const auto* pkl = part.pkl;
        const std::string dir = part.dir, root = part.root;
        if (pkl == nullptr) continue;
        const std::string member = where.empty() ? pkl->name : where + "!" + pkl->name;
        BRINE_TRY_ASSIGN(auto bytes, member_bytes(data, *pkl, where));
        const auto& r = run(bytes, 0, member);
        BRINE_TRY(check_run(r, member));
        PickleInput in = input();
        in.run = &r;
        in.member = member;
        in.root_name = root;
        const std::string storage_dir = dir;
        in.storages = [this, data, find, storage_dir, where, big](std::string_view key) -> core::Result<StorageData> {
          const auto* e = find(storage_dir + std::string(key));
          if (e == nullptr) return core::fail(ErrorCode::kContainer, 0, fmt::format("storage record {}{} is missing", storage_dir, key));
          BRINE_TRY_ASSIGN(auto record, member_bytes(data, *e, where));
          return StorageData{record, where.empty() ? e->name : where + "!" + e->name, big};
        };
        extract(in, rules_, limits_, out_);
      }
      return {};
    }
    // npz: every member an .npy array named after the member.
    bool any = false;
    for (const auto& e : central) {
      if (e.name.ends_with("/")) continue;
      BRINE_TRY_ASSIGN(auto bytes, member_bytes(data, e, where));
      const std::string member = where.empty() ? e.name : where + "!" + e.name;
      if (!container::is_npy(bytes)) {
        out_.dropped.push_back(Dropped{e.name, "an archive member that is not a numpy array", e.local_offset});
        continue;
      }
      std::string name = e.name;
      if (name.ends_with(".npy")) name.resize(name.size() - 4);
      BRINE_TRY(read_npy(bytes, member, name));
      any = true;
    }
    if (!any) return core::fail(make_error(ErrorCode::kContainer, where, 0, "a zip that is neither a torch checkpoint nor an npz of arrays"));
    (void)depth;
    return {};
  }

  core::Status read_npy(core::Bytes data, const std::string& where, const std::string& name) {
    auto header = container::parse_npy_header(data, limits_.max_npy_header_bytes);
    if (!header) {
      auto e = header.error();
      e.member = where;
      return core::fail(std::move(e));
    }
    const std::string label = name.empty() ? "(root)" : name;
    if (!header->unresolved.empty()) {
      out_.dropped.push_back(Dropped{label, "a .npy header brine cannot read exactly: " + header->unresolved, 0});
      return {};
    }
    if (header->has_object) {
      out_.dropped.push_back(Dropped{label, "an object array: its elements are pickled Python objects", header->data_offset});
      return {};
    }
    // The same parsed header the scan judged: its dtype, shape and order.
    bool big = false;
    auto dtype = header->dtype.str.empty() ? std::nullopt : tensor::from_numpy_typestr(header->dtype.str, &big);
    if (!dtype) {
      out_.dropped.push_back(Dropped{label, fmt::format("numpy dtype {} is not converted", header->descr), 0});
      return {};
    }
    const bool fortran = header->fortran_order;
    std::vector<std::int64_t> shape = header->shape;
    for (auto dim : shape) {
      if (dim < 0) {
        out_.dropped.push_back(Dropped{label, "a .npy array with a negative dimension", 0});
        return {};
      }
    }
    tensor::Tensor t;
    t.name = name;
    t.dtype = *dtype;
    t.big_endian = big;
    t.shape = shape;
    t.strides.resize(shape.size());
    std::int64_t acc = 1;
    for (std::size_t k = 0; k < shape.size(); ++k) {
      const std::size_t i = fortran ? k : shape.size() - 1 - k;
      t.strides[i] = acc;
      if (__builtin_mul_overflow(acc, std::max<std::int64_t>(shape[i], 1), &acc)) {
        return core::fail(make_error(ErrorCode::kContainer, where, 0, "the .npy shape overflows"));
      }
    }
    t.storage = data.subspan(header->data_offset);
    t.source = where.empty() ? "(npy data)" : where;
    t.offset = header->data_offset;
    t.storage_key = where + "#npy";
    if (auto ok = tensor::check_bounds(t); !ok) {
      return core::fail(make_error(ErrorCode::kTruncated, where, header->data_offset, ok.error().detail));
    }
    out_.tensors.push_back(std::move(t));
    return {};
  }

  bool salvage_;
  const rules::RuleSet& rules_;
  const core::Limits& limits_;
  Holder& holder_;
  Extraction& out_;
  std::chrono::steady_clock::time_point deadline_;
  unsigned nested_depth_;
};

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

std::string view_key(const tensor::Tensor& t) {
  return fmt::format("{}|{}|{}|{}|{}|{}{}", t.storage_key, tensor::info(t.dtype).torch_name, t.storage_offset,
                     fmt::join(t.shape, ","), fmt::join(t.strides, ","), t.conj ? "c" : "", t.neg ? "n" : "");
}

}  // namespace

ExtractedFile extract_bytes(core::Bytes data, const scan::Scanner& scanner, bool salvage) {
  ExtractedFile out;
  auto holder = std::make_shared<Holder>();
  Reader reader(scanner.rules(), scanner.options().limits, salvage, *holder, out.extraction);
  if (auto ok = reader.read(data, "", 0); !ok) out.error = ok.error();
  out.keep_alive = std::move(holder);
  return out;
}

SanitizeReport sanitize_file(const std::string& input, const scan::Scanner& scanner, const SanitizeOptions& options) {
  SanitizeReport report;
  report.input = input;
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

  report.scan = scanner.scan_bytes(data, input);
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

  ExtractedFile extracted = extract_bytes(data, scanner, options.salvage);
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
