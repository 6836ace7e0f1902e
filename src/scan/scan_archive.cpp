// Compressed streams (gzip, bzip2, xz, lzma, zstd, lz4, zlib), tar and 7z archives (libarchive),
// and torch 0.1.x's tar checkpoint format. Every member is dispatched again by content; output
// is bounded per member, by compression ratio, and per file.
#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>

#include <cstring>
#include <map>
#include <memory>
#include <set>

#include "container/sniff.hpp"
#include "core/byte_reader.hpp"
#include "scan/file_scan.hpp"

namespace brine::scan {

using analysis::Verdict;
using rules::Severity;

std::uint64_t FileScan::member_cap(std::uint64_t compressed) const {
  return options_.limits.decompression_cap(compressed, decompressed_total_);
}

bool FileScan::charge_decompressed(std::uint64_t bytes, const std::string& where) {
  decompressed_total_ += bytes;
  if (decompressed_total_ <= options_.limits.max_total_decompressed) return true;
  add("limit:max-total-decompressed", Severity::kHigh, Verdict::kError, where, 0,
      fmt::format("more than {} bytes decompressed for this file", options_.limits.max_total_decompressed));
  return false;
}

std::optional<std::vector<std::uint8_t>> FileScan::inflate(container::Codec codec, core::Bytes input, const std::string& where,
                                                            std::uint64_t* consumed) {
  const std::uint64_t cap = member_cap(input.size());
  auto out = container::decompress(codec, input, cap);
  if (!out) {
    if (out.error().code == core::ErrorCode::kLimitExceeded) {
      const auto& l = options_.limits;
      const bool ratio = cap < l.max_member_bytes && cap < l.max_total_decompressed - std::min(l.max_total_decompressed, decompressed_total_);
      const bool total = cap >= l.max_total_decompressed - std::min(l.max_total_decompressed, decompressed_total_);
      add(ratio ? "limit:max-compression-ratio" : total ? "limit:max-total-decompressed" : "limit:max-member-bytes",
          Severity::kHigh, Verdict::kError, where, 0,
          ratio ? fmt::format("{} bytes of {} data decompress to more than {} (a decompression bomb)", input.size(),
                              container::codec_name(codec), cap)
                : out.error().detail);
    } else {
      add(analysis::error_finding(out.error(), where));
    }
    return std::nullopt;
  }
  if (!charge_decompressed(out->data.size(), where)) return std::nullopt;
  if (consumed != nullptr) *consumed = out->consumed;
  if (out->consumed < input.size()) {
    const std::uint64_t extra = input.size() - out->consumed;
    add("unapproved:trailing-data", Severity::kMedium, Verdict::kUnapproved, where, out->consumed,
        fmt::format("{} bytes follow the {} stream", extra, container::codec_name(codec)));
  }
  return std::move(out->data);
}

void FileScan::scan_compressed(container::Codec codec, core::Bytes data, const std::string& where, unsigned depth) {
  std::uint64_t consumed = 0;
  auto out = inflate(codec, data, where, &consumed);
  if (!out) return;
  const std::string inner = child(where, fmt::format("[{}]", container::codec_name(codec)));
  scan_blob(core::Bytes(out->data(), out->size()), inner, depth + 1);
  // Bytes after the stream (reported by inflate) may be another file glued on: look at them too.
  if (consumed < data.size()) scan_blob(data.subspan(consumed), child(where, fmt::format("[after-{}]", container::codec_name(codec))), depth + 1);
}

namespace {

/// One archive entry: a view into the input when libarchive hands the data out in place, else owned.
struct Entry {
  std::string name;
  std::vector<std::uint8_t> owned;
  core::Bytes bytes;
};

/// torch 0.1.x wrote checkpoints as a tar with exactly these members (torch.serialization legacy_load).
bool is_torch_tar(const std::vector<Entry>& entries) {
  std::set<std::string> names;
  for (const auto& e : entries) names.insert(e.name);
  return names.count("sys_info") && names.count("pickle") && names.count("storages") && names.count("tensors");
}

}  // namespace

void FileScan::scan_archive(core::Bytes data, const std::string& where, unsigned depth, std::string_view kind) {
  if (kind == "tar") {
    // A tar's magic is at offset 257; offset 0 is the first member's name, which pickle.load (and
    // torch.load, past a failed tar open) would read as opcodes: a tar/pickle polyglot.
    const std::uint64_t before = report_.pickles;
    const std::size_t findings_before = report_.findings.size();
    const std::string container = report_.container;
    scan_stream(data, where, /*first_is_probe=*/true);
    if (report_.pickles == before) {  // not a pickle: the probe leaves no trace
      report_.findings.resize(findings_before);
      report_.container = container;
      report_.recognized = true;
    } else {
      add("evasion:polyglot", Severity::kHigh, Verdict::kMalicious, where, 0,
          "the tar's first header is also a pickle: tar readers and pickle.load read different files");
    }
  }
  std::unique_ptr<archive, decltype(&archive_read_free)> a(archive_read_new(), &archive_read_free);
  if (kind == "7z") {
    archive_read_support_format_7zip(a.get());
  } else {
    archive_read_support_format_tar(a.get());
    archive_read_support_format_gnutar(a.get());
  }
  if (archive_read_open_memory(a.get(), data.data(), data.size()) != ARCHIVE_OK) {
    add("malformed:archive", Severity::kHigh, Verdict::kError, where, 0,
        fmt::format("{} archive cannot be opened: {}", kind, archive_error_string(a.get()) ? archive_error_string(a.get()) : "?"));
    return;
  }
  std::vector<Entry> entries;
  archive_entry* header = nullptr;
  std::uint64_t count = 0;
  for (;;) {
    if (out_of_time(where)) return;
    const int rc = archive_read_next_header(a.get(), &header);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
      add("malformed:archive", Severity::kHigh, Verdict::kError, where, 0,
          fmt::format("{} archive is corrupt after {} entries: {}", kind, count,
                      archive_error_string(a.get()) ? archive_error_string(a.get()) : "?"));
      break;
    }
    if (++count > options_.limits.max_archive_entries) {
      add("limit:max-archive-entries", Severity::kHigh, Verdict::kError, where, 0,
          fmt::format("more than {} entries", options_.limits.max_archive_entries));
      break;
    }
    if (archive_entry_filetype(header) != AE_IFREG) continue;
    Entry e;
    const char* path = archive_entry_pathname(header);
    e.name = path != nullptr ? path : "";
    const std::string member = child(where, e.name);
    // Read the data: in place if libarchive returns one block inside our buffer (plain tar), else copy.
    const void* block = nullptr;
    std::size_t len = 0;
    la_int64_t off = 0;
    bool failed = false;
    bool first = true;
    while (true) {
      const int r = archive_read_data_block(a.get(), &block, &len, &off);
      if (r == ARCHIVE_EOF) break;
      if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
        add("malformed:archive", Severity::kHigh, Verdict::kError, member, 0,
            fmt::format("cannot read the member: {}", archive_error_string(a.get()) ? archive_error_string(a.get()) : "?"));
        failed = true;
        break;
      }
      const auto* p = static_cast<const std::uint8_t*>(block);
      const bool inside = p >= data.data() && p + len <= data.data() + data.size();
      if (first && inside && off == 0 && e.owned.empty()) {
        e.bytes = core::Bytes(p, len);
        first = false;
        continue;
      }
      if (!e.bytes.empty()) {  // a second block: fall back to a copy
        e.owned.assign(e.bytes.begin(), e.bytes.end());
        e.bytes = {};
      }
      first = false;
      const std::uint64_t end = static_cast<std::uint64_t>(off) + len;
      if (end > member_cap(data.size()) || (kind == "7z" && !charge_decompressed(len, member))) {
        add("limit:max-member-bytes", Severity::kHigh, Verdict::kError, member, 0, "archive member is larger than the limit");
        failed = true;
        break;
      }
      if (e.owned.size() < end) e.owned.resize(end);  // sparse regions stay zero
      std::memcpy(e.owned.data() + off, p, len);
    }
    if (failed) continue;
    if (!e.owned.empty()) e.bytes = core::Bytes(e.owned.data(), e.owned.size());
    entries.push_back(std::move(e));
  }
  if (is_torch_tar(entries)) {
    if (where.empty()) report_.container = "torch-tar";
    std::map<std::string, core::Bytes> members;
    for (const auto& e : entries) members[e.name] = e.bytes;
    scan_torch_tar(members, where);
    return;
  }
  for (const auto& e : entries) {
    if (out_of_time(where)) return;
    if (where.empty()) report_.members.push_back(MemberInfo{e.name, "other", e.bytes.size(), false});
    const std::uint64_t before = report_.pickles;
    scan_blob(e.bytes, child(where, e.name), depth + 1);
    if (where.empty() && report_.pickles > before) {
      report_.members.back().scanned = true;
      report_.members.back().format = "pickle";
    }
  }
}

}  // namespace brine::scan

namespace brine::scan {

// torch.serialization.legacy_load (the 0.1.x tar format), member by member. Each record is a
// pickle followed by raw data whose length the pickle or a fixed header gives; the raw data is
// skipped by those lengths, bounds-checked, and every pickle is scanned.
void FileScan::scan_torch_tar(const std::map<std::string, core::Bytes>& members, const std::string& where) {
  for (const auto& [name, bytes] : members) {
    report_.members.push_back(MemberInfo{child(where, name), "other", bytes.size(), false});
  }
  auto walk_fail = [&](const std::string& member, std::uint64_t at, std::string why) {
    add("malformed:torch-tar", Severity::kHigh, Verdict::kError, member, at, std::move(why));
  };
  // A pickle at `pos` of a member; false if it did not reach STOP (the error is a finding).
  auto one = [&](core::Bytes data, std::uint64_t& pos, const std::string& member, pickle::PickleRun& out,
                 analysis::PersistentIds ids = analysis::PersistentIds::kTorch) {
    if (pos >= data.size()) {
      walk_fail(member, pos, "the member ends before the next pickle");
      return false;
    }
    if (!take_pickle_budget(member, pos)) return false;
    out = run_one(data, pos, member, nullptr, ids);
    if (!out.stopped) return false;
    pos = out.end;
    return true;
  };
  auto int_root = [](const pickle::PickleRun& r) -> std::optional<std::int64_t> {
    const auto& n = r.values.node(r.root);
    if (n.kind != pickle::Kind::kInt) return std::nullopt;
    return n.i;
  };
  for (const auto& [name, data] : members) {
    const std::string member = child(where, name);
    std::uint64_t pos = 0;
    pickle::PickleRun run;
    if (name == "sys_info") {
      if (one(data, pos, member, run)) scan_after_stop(data, pos, member, nullptr);
    } else if (name == "pickle") {
      if (one(data, pos, member, run, analysis::PersistentIds::kTorchTar)) scan_after_stop(data, pos, member, nullptr);
    } else if (name == "storages" || name == "tensors") {
      if (!one(data, pos, member, run)) continue;
      auto count = int_root(run);
      if (!count || *count < 0) {
        walk_fail(member, 0, "the record count is not a non-negative int");
        continue;
      }
      core::ByteReader r(data);
      bool ok = true;
      for (std::int64_t i = 0; i < *count && ok; ++i) {
        pickle::PickleRun rec;
        if (!(ok = one(data, pos, member, rec))) break;
        const auto& v = rec.values;
        const auto items = v.items(rec.root);
        r.seek(pos);
        if (name == "storages") {
          // (key, location, storage_type) then int64 numel and numel * element size bytes
          std::uint64_t elem = 0;
          if (items.size() == 3 && v.node(items[2]).kind == pickle::Kind::kGlobal && v.global_rec(items[2]).resolved) {
            const auto& g = v.global_rec(items[2]);
            elem = storage_element_size(rules_.resolve(g.module, g.name, g.protocol).loader_name);
          }
          auto numel = r.uint_le(8);
          if (elem == 0 || !numel || *numel > (1ull << 62) / elem || *numel * elem > r.remaining()) {
            walk_fail(member, pos, "a storage record has no known element size or claims more data than the member holds");
            ok = false;
            break;
          }
          r.seek(r.pos() + *numel * elem);
        } else {
          // (key, storage_id, tensor_type) then int32 ndim, 4 skipped bytes, sizes, strides, offset
          auto ndim = r.i32_le();
          if (!ndim || *ndim < 0 || *ndim > 64 || !r.bytes(4) || !r.bytes(16ull * static_cast<std::uint64_t>(*ndim) + 8)) {
            walk_fail(member, pos, "a tensor record is cut off or has an impossible number of dimensions");
            ok = false;
            break;
          }
        }
        pos = r.pos();
      }
      if (ok && name == "storages") {
        pickle::PickleRun views;  // the list of storage views
        if (one(data, pos, member, views)) scan_after_stop(data, pos, member, nullptr);
      } else if (ok && pos < data.size()) {
        scan_after_stop(data, pos, member, nullptr);
      }
    } else {
      scan_blob(data, member, 1);
    }
  }
}

}  // namespace brine::scan
