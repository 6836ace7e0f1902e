#include "container/zip_archive.hpp"

#include <fmt/format.h>
#include <zip.h>

#include <algorithm>
#include <memory>

#include "core/mapped_file.hpp"

namespace brine::container {

using core::ErrorCode;

namespace {

/// libzip reads the archive through this source rather than zip_source_buffer: its reads go
/// through core::read_at, so the local headers a strict open checks (one per member, spread
/// over the whole file) are preaded from a mapped file instead of faulting the mapping in.
struct SourceState {
  explicit SourceState(core::Bytes d) : data(d), window(d) {}
  core::Bytes data;
  core::WindowReader window;  ///< libzip reads a header's fixed part, then its name: one pread
  std::uint64_t pos = 0;
  zip_error_t error{};
};

zip_int64_t source_callback(void* user, void* buf, zip_uint64_t len, zip_source_cmd_t cmd) {
  auto* s = static_cast<SourceState*>(user);
  switch (cmd) {
    case ZIP_SOURCE_OPEN:
      s->pos = 0;
      return 0;
    case ZIP_SOURCE_READ: {
      std::size_t n = 0;
      if (len <= 512) {
        const core::Bytes b = s->window.peek(s->pos, static_cast<std::size_t>(len));
        std::copy(b.begin(), b.end(), static_cast<std::uint8_t*>(buf));
        n = b.size();
      } else {
        n = core::read_at(s->data, s->pos, {static_cast<std::uint8_t*>(buf), static_cast<std::size_t>(len)});
      }
      s->pos += n;
      return static_cast<zip_int64_t>(n);
    }
    case ZIP_SOURCE_CLOSE:
      return 0;
    case ZIP_SOURCE_STAT: {
      if (len < sizeof(zip_stat_t)) {
        zip_error_set(&s->error, ZIP_ER_INVAL, 0);
        return -1;
      }
      auto* st = static_cast<zip_stat_t*>(buf);
      zip_stat_init(st);
      st->size = s->data.size();
      st->comp_size = s->data.size();
      st->comp_method = ZIP_CM_STORE;
      st->encryption_method = ZIP_EM_NONE;
      st->valid |= ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD | ZIP_STAT_ENCRYPTION_METHOD;
      return sizeof(zip_stat_t);
    }
    case ZIP_SOURCE_ERROR:
      return zip_error_to_data(&s->error, buf, len);
    case ZIP_SOURCE_FREE:
      std::unique_ptr<SourceState>{s};  // the source owned it since creation
      return 0;
    case ZIP_SOURCE_SEEK: {
      const zip_int64_t at = zip_source_seek_compute_offset(s->pos, s->data.size(), buf, len, &s->error);
      if (at < 0) return -1;
      s->pos = static_cast<std::uint64_t>(at);
      return 0;
    }
    case ZIP_SOURCE_TELL:
      return static_cast<zip_int64_t>(s->pos);
    case ZIP_SOURCE_SUPPORTS:
      return zip_source_make_command_bitmap(ZIP_SOURCE_OPEN, ZIP_SOURCE_READ, ZIP_SOURCE_CLOSE, ZIP_SOURCE_STAT,
                                            ZIP_SOURCE_ERROR, ZIP_SOURCE_FREE, ZIP_SOURCE_SEEK, ZIP_SOURCE_TELL,
                                            ZIP_SOURCE_SUPPORTS, -1);
    default:
      zip_error_set(&s->error, ZIP_ER_OPNOTSUPP, 0);
      return -1;
  }
}

}  // namespace

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
  auto state = std::make_unique<SourceState>(data);
  zip_error_init(&state->error);
  zip_source_t* src = zip_source_function_create(source_callback, state.get(), &error);
  if (src != nullptr) state.release();  // freed by ZIP_SOURCE_FREE
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
