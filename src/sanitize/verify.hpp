// --verify: re-read a written output, independently of the writer, and compare every tensor's
// dtype, shape and bytes with what the source yields. The output is memory-mapped and compared
// piece by piece, so verification needs no more memory than writing did.
#pragma once

#include <string>

#include "core/result.hpp"
#include "writer/output.hpp"

namespace brine::sanitize {

/// Re-validates the safetensors structure (header size, JSON, contiguous offsets ending at EOF)
/// and compares each tensor.
core::Status verify_safetensors(const writer::OutputModel& model, const std::string& path);

/// Walks the ModelProto's wire format (graph initializers, inline raw_data or external data) and
/// compares each tensor.
core::Status verify_onnx(const writer::OutputModel& model, const std::string& path);

}  // namespace brine::sanitize
