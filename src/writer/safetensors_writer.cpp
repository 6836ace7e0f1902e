// safetensors output (huggingface/safetensors format): the reference reader rejects headers over
// 100 MB, offsets that do not start at 0 or leave gaps, sizes that disagree with dtype x shape,
// and bytes after the last tensor; this writer produces none of those.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>

#include "core/text.hpp"
#include "writer/atomic_file.hpp"
#include "writer/output.hpp"

namespace brine::writer {

namespace {

constexpr std::uint64_t kMaxHeader = 100'000'000;

/// The reference writer's dtype order (increasing alignment); it lays tensors out in the
/// reverse of this order so every tensor starts aligned to its element size.
int alignment_rank(std::string_view st) {
  static constexpr std::array<std::string_view, 22> kOrder{
      "BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ",
      "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64", "F64", "I64", "U64"};
  for (std::size_t i = 0; i < kOrder.size(); ++i) {
    if (kOrder[i] == st) return static_cast<int>(i);
  }
  return -1;
}

class FileSink : public tensor::ByteSink {
 public:
  explicit FileSink(AtomicFile& f) : file_(f) {}
  core::Status write(core::Bytes bytes) override { return file_.write(bytes); }
  core::Result<std::uint64_t> copy_from_file(int fd, std::uint64_t offset, std::uint64_t n) override {
    return file_.copy_from_file(fd, offset, n);
  }

 private:
  AtomicFile& file_;
};

}  // namespace

std::string format_from_extension(const std::string& path) {
  if (core::ends_with_ascii_ci(path, ".safetensors")) return "safetensors";
  if (core::ends_with_ascii_ci(path, ".onnx")) return "onnx";
  return {};
}

core::Status write_safetensors(const OutputModel& model, const std::string& path, const WriteOptions& options) {
  std::vector<const tensor::Tensor*> order = model.tensors;
  for (const auto* t : order) {
    const auto& di = tensor::info(t->dtype);
    if (di.safetensors.empty()) {
      return core::fail(core::ErrorCode::kUsage, t->offset,
                        fmt::format("tensor '{}': dtype {} has no safetensors type", t->name, di.torch_name));
    }
    if (t->name == "__metadata__") {
      return core::fail(core::ErrorCode::kUsage, t->offset, "a tensor named '__metadata__' cannot be written to safetensors");
    }
  }
  std::stable_sort(order.begin(), order.end(), [](const tensor::Tensor* a, const tensor::Tensor* b) {
    const int ra = alignment_rank(tensor::info(a->dtype).safetensors), rb = alignment_rank(tensor::info(b->dtype).safetensors);
    if (ra != rb) return ra > rb;
    return a->name < b->name;
  });

  // ordered_json keeps insertion order: __metadata__ first, then tensors in offset order.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!model.metadata.empty()) {
    auto& meta = header["__metadata__"];
    meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : model.metadata) meta[k] = v;
  }
  std::uint64_t at = 0;
  for (const auto* t : order) {
    const std::uint64_t n = t->nbytes();
    header[t->name] = {{"dtype", tensor::info(t->dtype).safetensors}, {"shape", t->shape}, {"data_offsets", {at, at + n}}};
    at += n;
  }
  std::string text = header.dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::ordered_json::error_handler_t::replace);
  text.append((8 - text.size() % 8) % 8, ' ');
  if (text.size() > kMaxHeader) {
    return core::fail(core::ErrorCode::kLimitExceeded, 0,
                      fmt::format("safetensors header would be {} bytes (the format allows {})", text.size(), kMaxHeader));
  }

  BRINE_TRY_ASSIGN(AtomicFile file, AtomicFile::create(path, options.force, options.direct_io != nullptr ? options.direct_io : &system_direct_io()));
  std::array<std::uint8_t, 8> size_le{};
  for (int i = 0; i < 8; ++i) size_le[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(text.size() >> (8 * i));
  BRINE_TRY(file.write(core::Bytes(size_le.data(), size_le.size())));
  BRINE_TRY(file.write(text));
  FileSink sink(file);
  for (const auto* t : order) {
    const std::uint64_t before = file.written();
    BRINE_TRY(tensor::write_contiguous_le(*t, sink));
    if (file.written() - before != t->nbytes()) {
      return core::fail(core::ErrorCode::kIo, t->offset, fmt::format("tensor '{}': wrote {} bytes, expected {}", t->name,
                                                                      file.written() - before, t->nbytes()));
    }
  }
  return file.commit();
}

}  // namespace brine::writer
