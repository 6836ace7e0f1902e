// Compressed streams (gzip, bzip2, xz, lzma, zstd, lz4, zlib), tar and 7z archives (libarchive),
// and torch 0.1.x's tar checkpoint format. Every member is dispatched again by content; output
// is bounded per member, by compression ratio, and per file.
#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>

#include <cstring>
#include <memory>

#include "container/sniff.hpp"
#include "core/byte_reader.hpp"
#include "scan/file_scan.hpp"

namespace brine::scan {

using analysis::Verdict;
using rules::Severity;

std::uint64_t FileScan::member_cap(std::uint64_t compressed) const {
  // A nested layer's input came out of the file's own bytes: its ratio is taken against the
  // smaller of the two, so gzip-of-gzip stops at the 64 MiB floor, not at 1000x the middle layer
  // (which is itself ~1000x the file). Real nested data (a .pt.gz in a .tar.gz) does not compress
  // twice, so its middle layer is no bigger than the file and nothing changes for it.
  const bool nested = inflated_depth_ > 0;
  if (nested && file_size_ != 0) compressed = std::min(compressed, file_size_);
  return options_.limits.decompression_cap(compressed, decompressed_total_, nested);
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
      const bool ratio = inflated_depth_ > 0 && cap < l.max_member_bytes &&
                         cap < l.max_total_decompressed - std::min(l.max_total_decompressed, decompressed_total_);
      const bool total = cap >= l.max_total_decompressed - std::min(l.max_total_decompressed, decompressed_total_);
      add(ratio ? "limit:max-compression-ratio" : total ? "limit:max-total-decompressed" : "limit:max-member-bytes",
          Severity::kHigh, Verdict::kError, where, 0,
          ratio ? fmt::format("{} bytes of {} data, inside data that was itself decompressed (from a file of {} bytes), "
                              "decompress to more than {} (a nested decompression bomb)", input.size(),
                              container::codec_name(codec), file_size_, cap)
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
  ++inflated_depth_;  // what this output holds is decompressed again only under the ratio limit
  scan_blob(core::Bytes(out->data(), out->size()), inner, depth + 1);
  --inflated_depth_;
  // Bytes after the stream (reported by inflate) may be another file glued on: look at them too.
  if (consumed < data.size()) scan_blob(data.subspan(consumed), child(where, fmt::format("[after-{}]", container::codec_name(codec))), depth + 1);
}

using Entry = FileScan::ArchiveEntry;

void FileScan::scan_archive(core::Bytes data, const std::string& where, unsigned depth, std::string_view kind) {
  if (kind == "tar") return scan_tar(data, where, depth);
  std::vector<Entry> entries;
  if (!libarchive_entries(data, where, kind, entries)) return;
  for (const auto& e : entries) {
    if (out_of_time(where)) return;
    if (where.empty()) report_.members.push_back(MemberInfo{e.name, "other", e.bytes.size(), false});
    const std::uint64_t before = report_.pickles;
    ++inflated_depth_;  // 7z members come out of a decompressor
    scan_blob(e.bytes, child(where, e.name), depth + 1);
    --inflated_depth_;
    if (where.empty() && report_.pickles > before) {
      report_.members.back().scanned = true;
      report_.members.back().format = "pickle";
    }
  }
}

bool FileScan::libarchive_entries(core::Bytes data, const std::string& where, std::string_view kind, std::vector<Entry>& entries) {
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
    return false;
  }
  archive_entry* header = nullptr;
  std::uint64_t count = 0;
  for (;;) {
    if (out_of_time(where)) return false;
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
  return true;
}

}  // namespace brine::scan
