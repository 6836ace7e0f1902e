#include "container/zip_archive.hpp"

#include <fmt/format.h>
#include <zip.h>

#include <algorithm>

namespace brine::container {

using core::ErrorCode;

struct ZipArchive::Handle {
  zip_t* za = nullptr;
  ~Handle() {
    if (za != nullptr) zip_discard(za);
  }
};

ZipArchive::ZipArchive(ZipArchive&&) noexcept = default;
ZipArchive& ZipArchive::operator=(ZipArchive&&) noexcept = default;
ZipArchive::~ZipArchive() = default;


core::Result<ZipArchive> ZipArchive::open(core::Bytes data, bool strict) {
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* src = zip_source_buffer_create(data.data(), data.size(), 0, &error);
  if (src == nullptr) {
    std::string text = zip_error_strerror(&error);
    zip_error_fini(&error);
    return core::fail(core::Error{ErrorCode::kContainer, 0, {}, {}, "zip: " + text});
  }
  zip_t* za = zip_open_from_source(src, ZIP_RDONLY | (strict ? ZIP_CHECKCONS : 0), &error);
  if (za == nullptr) {
    std::string text = zip_error_strerror(&error);
    zip_error_fini(&error);
    zip_source_free(src);
    return core::fail(core::Error{ErrorCode::kContainer, 0, {}, {}, "zip: " + text});
  }
  zip_error_fini(&error);
  ZipArchive archive;
  archive.handle_ = std::make_unique<Handle>();
  archive.handle_->za = za;
  const zip_int64_t n = zip_get_num_entries(za, 0);
  for (zip_int64_t i = 0; i < n; ++i) {
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(za, static_cast<zip_uint64_t>(i), 0, &st) != 0) {
      return core::fail(core::Error{ErrorCode::kContainer, 0, {}, {}, fmt::format("zip: entry {} cannot be read", i)});
    }
    ZipEntry e;
    e.index = static_cast<std::uint64_t>(i);
    e.name = (st.valid & ZIP_STAT_NAME) != 0 && st.name != nullptr ? st.name : "";
    e.size = (st.valid & ZIP_STAT_SIZE) != 0 ? st.size : 0;
    e.compressed_size = (st.valid & ZIP_STAT_COMP_SIZE) != 0 ? st.comp_size : 0;
    e.method = (st.valid & ZIP_STAT_COMP_METHOD) != 0 ? st.comp_method : 0;
    e.encrypted = (st.valid & ZIP_STAT_ENCRYPTION_METHOD) != 0 && st.encryption_method != ZIP_EM_NONE;
    archive.entries_.push_back(std::move(e));
  }
  return archive;
}

core::Result<std::vector<std::uint8_t>> ZipArchive::read_prefix(const ZipEntry& entry, std::uint64_t n) const {
  zip_file_t* f = zip_fopen_index(handle_->za, entry.index, 0);
  if (f == nullptr) {
    return core::fail(core::Error{ErrorCode::kContainer, 0, entry.name, {},
                                  fmt::format("cannot open member: {}", zip_strerror(handle_->za))});
  }
  // Grow with what actually arrives, never with what the header claims.
  std::vector<std::uint8_t> out;
  std::uint8_t chunk[1 << 16];
  while (out.size() < n) {
    const auto want = static_cast<zip_uint64_t>(std::min<std::uint64_t>(sizeof chunk, n - out.size()));
    const zip_int64_t r = zip_fread(f, chunk, want);
    if (r < 0) {
      std::string text = zip_error_strerror(zip_file_get_error(f));
      zip_fclose(f);
      return core::fail(core::Error{ErrorCode::kContainer, out.size(), entry.name, {}, "cannot read member: " + text});
    }
    if (r == 0) break;
    out.insert(out.end(), chunk, chunk + r);
  }
  zip_fclose(f);
  return out;
}

core::Result<std::vector<std::uint8_t>> ZipArchive::read(const ZipEntry& entry, std::uint64_t max_bytes) const {
  if (entry.size > max_bytes) {
    return core::fail(core::Error{ErrorCode::kLimitExceeded, 0, entry.name, {},
                                  fmt::format("max-member-bytes: member claims {} bytes, limit {}", entry.size, max_bytes)});
  }
  // Read one byte more than claimed: a member that decompresses to more than its header says
  // is caught instead of trusted.
  auto data = read_prefix(entry, entry.size + 1);
  if (!data) return data;
  if (data->size() != entry.size) {
    return core::fail(core::Error{ErrorCode::kContainer, 0, entry.name, {},
                                  fmt::format("member holds {}{} bytes but its header says {}",
                                              data->size() > entry.size ? "more than " : "", data->size(), entry.size)});
  }
  return data;
}

}  // namespace brine::container
