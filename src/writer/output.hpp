// What a writer receives: the tensors to write (already selected, renamed, deduplicated and
// bounds-checked) and the metadata entries that go with them.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/result.hpp"
#include "tensor/tensor.hpp"

namespace brine::writer {

struct DirectIo;

struct OutputModel {
  std::vector<const tensor::Tensor*> tensors;                  ///< unique names
  std::vector<std::pair<std::string, std::string>> metadata;   ///< unique keys, in order
};

struct WriteOptions {
  bool force = false;              ///< replace an existing output
  /// ONNX: tensor bytes go to a side file "<output>.data" when the model would exceed this
  /// (protobuf's 2 GiB message limit, with room for the graph); 0 forces external data.
  std::uint64_t onnx_inline_limit = (2ull << 30) - (64ull << 20);
  std::string producer_version;    ///< recorded as producer_version (ONNX)
  /// Outputs are written with O_DIRECT through this where the file system allows (null: the
  /// system's calls, system_direct_io()); tests substitute calls that refuse it.
  const DirectIo* direct_io = nullptr;
};

/// safetensors, exactly per the format: u64 LE header length, compact JSON header padded with
/// spaces to a multiple of 8, `__metadata__` first, tensors in the reference writer's order
/// (dtype alignment descending, then name), data contiguous from 0 to EOF.
core::Status write_safetensors(const OutputModel& model, const std::string& path, const WriteOptions& options);

/// ONNX ModelProto whose initializers are the tensors, each also a graph output.
core::Status write_onnx(const OutputModel& model, const std::string& path, const WriteOptions& options);

/// The format an output path's extension names: "safetensors" or "onnx"; empty if neither.
std::string format_from_extension(const std::string& path);

}  // namespace brine::writer
