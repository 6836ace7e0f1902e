#include "sanitize/verify.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <tuple>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "core/mapped_file.hpp"

namespace brine::sanitize {

using core::ErrorCode;

namespace {

core::Unexpected mismatch(const std::string& path, std::string detail) {
  return core::fail(ErrorCode::kIo, 0, fmt::format("verify {}: {}", path, detail));
}

/// Compares the bytes it receives with an expected region.
class CompareSink : public tensor::ByteSink {
 public:
  explicit CompareSink(core::Bytes expected) : expected_(expected) {}
  core::Status write(core::Bytes b) override {
    if (b.size() > expected_.size() - at_ || std::memcmp(b.data(), expected_.data() + at_, b.size()) != 0) {
      return core::fail(ErrorCode::kIo, at_, "bytes differ");
    }
    at_ += b.size();
    return {};
  }
  [[nodiscard]] bool complete() const { return at_ == expected_.size(); }

 private:
  core::Bytes expected_;
  std::uint64_t at_ = 0;
};

core::Status compare(const tensor::Tensor& t, core::Bytes written, const std::string& path) {
  if (written.size() != t.nbytes()) {
    return mismatch(path, fmt::format("tensor '{}' has {} bytes, expected {}", t.name, written.size(), t.nbytes()));
  }
  CompareSink sink(written);
  if (auto ok = tensor::write_contiguous_le(t, sink); !ok || !sink.complete()) {
    return mismatch(path, fmt::format("tensor '{}' differs from the source", t.name));
  }
  return {};
}

// ---- a minimal protobuf wire reader (enough to walk ModelProto without copying tensor bytes) ----
struct Wire {
  core::Bytes data;
  std::uint64_t pos = 0;
  bool ok = true;

  [[nodiscard]] bool more() const { return ok && pos < data.size(); }
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos >= data.size()) break;
      const std::uint8_t b = data[pos++];
      v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) return v;
    }
    ok = false;
    return 0;
  }
  /// Next field: number, wire type, and for length-delimited fields the payload.
  bool next(std::uint32_t& field, std::uint32_t& type, core::Bytes& payload, std::uint64_t& value) {
    const std::uint64_t key = varint();
    if (!ok) return false;
    field = static_cast<std::uint32_t>(key >> 3);
    type = static_cast<std::uint32_t>(key & 7);
    switch (type) {
      case 0: value = varint(); return ok;
      case 1: if (data.size() - pos < 8) return ok = false; pos += 8; return true;
      case 5: if (data.size() - pos < 4) return ok = false; pos += 4; return true;
      case 2: {
        const std::uint64_t n = varint();
        if (!ok || n > data.size() - pos) return ok = false;
        payload = data.subspan(pos, n);
        pos += n;
        return true;
      }
      default: return ok = false;
    }
  }
};

struct OnnxTensor {
  std::vector<std::int64_t> dims;
  int data_type = 0;
  core::Bytes raw;
  bool has_raw = false;
  bool external = false;
  std::map<std::string, std::string> external_data;
};

bool parse_tensor(core::Bytes bytes, std::string& name, OnnxTensor& t) {
  Wire w{bytes};
  std::uint32_t f = 0, type = 0;
  core::Bytes p;
  std::uint64_t v = 0;
  while (w.more() && w.next(f, type, p, v)) {
    if (f == 1 && type == 0) t.dims.push_back(static_cast<std::int64_t>(v));
    if (f == 1 && type == 2) {  // packed dims
      Wire d{p};
      while (d.more()) t.dims.push_back(static_cast<std::int64_t>(d.varint()));
    }
    if (f == 2 && type == 0) t.data_type = static_cast<int>(v);
    if (f == 8 && type == 2) name = std::string(core::as_chars(p));
    if (f == 9 && type == 2) { t.raw = p; t.has_raw = true; }
    if (f == 14 && type == 0) t.external = v == 1;
    if (f == 13 && type == 2) {
      Wire e{p};
      std::string key, value;
      std::uint32_t ef = 0, et = 0;
      core::Bytes ep;
      std::uint64_t ev = 0;
      while (e.more() && e.next(ef, et, ep, ev)) {
        if (ef == 1 && et == 2) key = std::string(core::as_chars(ep));
        if (ef == 2 && et == 2) value = std::string(core::as_chars(ep));
      }
      t.external_data[key] = value;
    }
  }
  return w.ok;
}

}  // namespace

core::Status verify_safetensors(const writer::OutputModel& model, const std::string& path) {
  auto file = core::MappedFile::open(path);
  if (!file) return mismatch(path, file.error().describe());
  const core::Bytes b = file->bytes();
  if (b.size() < 8) return mismatch(path, "shorter than 8 bytes");
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | b[static_cast<std::size_t>(i)];
  if (n > 100'000'000 || n > b.size() - 8 || n % 8 != 0) return mismatch(path, "bad header length");
  const auto header = nlohmann::json::parse(core::as_chars(b.subspan(8, n)), nullptr, /*allow_exceptions=*/false);
  if (!header.is_object()) return mismatch(path, "the header is not a JSON object");
  const core::Bytes buffer = b.subspan(8 + n);
  std::vector<std::tuple<std::uint64_t, std::uint64_t, std::string>> ranges;  // begin, end, name
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    const auto& off = entry.value("data_offsets", nlohmann::json::array());
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned()) {
      return mismatch(path, "bad data_offsets for " + name);
    }
    ranges.emplace_back(off[0].get<std::uint64_t>(), off[1].get<std::uint64_t>(), name);
  }
  std::sort(ranges.begin(), ranges.end());
  std::uint64_t at = 0;
  for (const auto& [begin, end, name] : ranges) {
    if (begin != at || end < begin) return mismatch(path, "offsets are not contiguous at " + name);
    at = end;
  }
  if (at != buffer.size()) return mismatch(path, "the data does not end at the end of the file");
  if (ranges.size() != model.tensors.size()) return mismatch(path, "tensor count differs");
  for (const auto* t : model.tensors) {
    if (!header.contains(t->name)) return mismatch(path, "missing tensor " + t->name);
    const auto& e = header[t->name];
    if (e.value("dtype", "") != tensor::info(t->dtype).safetensors) return mismatch(path, "dtype differs for " + t->name);
    if (e.value("shape", nlohmann::json::array()) != nlohmann::json(t->shape)) return mismatch(path, "shape differs for " + t->name);
    const auto begin = e["data_offsets"][0].get<std::uint64_t>(), end = e["data_offsets"][1].get<std::uint64_t>();
    BRINE_TRY(compare(*t, buffer.subspan(begin, end - begin), path));
    file->release(buffer.subspan(begin, end - begin));
  }
  return {};
}

core::Status verify_onnx(const writer::OutputModel& model, const std::string& path) {
  auto file = core::MappedFile::open(path);
  if (!file) return mismatch(path, file.error().describe());
  std::map<std::string, OnnxTensor> found;
  Wire m{file->bytes()};
  std::uint32_t f = 0, type = 0;
  core::Bytes p;
  std::uint64_t v = 0;
  while (m.more() && m.next(f, type, p, v)) {
    if (f != 7 || type != 2) continue;  // ModelProto.graph
    Wire g{p};
    std::uint32_t gf = 0, gt = 0;
    core::Bytes gp;
    std::uint64_t gv = 0;
    while (g.more() && g.next(gf, gt, gp, gv)) {
      if (gf != 5 || gt != 2) continue;  // GraphProto.initializer
      std::string name;
      OnnxTensor t;
      if (!parse_tensor(gp, name, t)) return mismatch(path, "a malformed initializer");
      if (!found.emplace(name, t).second) return mismatch(path, "duplicate initializer " + name);
    }
    if (!g.ok) return mismatch(path, "a malformed graph");
  }
  if (!m.ok) return mismatch(path, "malformed protobuf");
  if (found.size() != model.tensors.size()) return mismatch(path, "initializer count differs");
  std::map<std::string, core::MappedFile> side_files;
  const auto dir = std::filesystem::path(path).parent_path();
  for (const auto* t : model.tensors) {
    auto it = found.find(t->name);
    if (it == found.end()) return mismatch(path, "missing initializer " + t->name);
    const auto& o = it->second;
    if (o.data_type != tensor::info(t->dtype).onnx) return mismatch(path, "data type differs for " + t->name);
    if (o.dims != t->shape) return mismatch(path, "dims differ for " + t->name);
    core::Bytes bytes = o.raw;
    if (o.external) {
      const auto loc = o.external_data.count("location") ? o.external_data.at("location") : "";
      if (loc.empty() || loc.find('/') != std::string::npos) return mismatch(path, "bad external location for " + t->name);
      if (!side_files.count(loc)) {
        auto side = core::MappedFile::open((dir / loc).string());
        if (!side) return mismatch(path, side.error().describe());
        side_files.emplace(loc, std::move(*side));
      }
      const core::Bytes all = side_files.at(loc).bytes();
      auto number = [&](const char* key) -> std::uint64_t {
        auto it2 = o.external_data.find(key);
        std::uint64_t n = UINT64_MAX;
        if (it2 != o.external_data.end()) std::from_chars(it2->second.data(), it2->second.data() + it2->second.size(), n);
        return n;
      };
      const std::uint64_t off = number("offset"), len = number("length");
      if (off > all.size() || len > all.size() - off) return mismatch(path, "external data out of range for " + t->name);
      bytes = all.subspan(off, len);
      BRINE_TRY(compare(*t, bytes, path));
      side_files.at(loc).release(bytes);
      continue;
    } else if (t->numel() > 0 && !o.has_raw) {
      return mismatch(path, "no raw_data for " + t->name);
    }
    BRINE_TRY(compare(*t, bytes, path));
    file->release(bytes);
  }
  return {};
}

}  // namespace brine::sanitize
