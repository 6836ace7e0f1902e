// Element types of the tensors brine can extract, and how each maps to torch, numpy,
// safetensors and ONNX names. One table (dtype.cpp) is the single source of these facts.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace brine::tensor {

enum class DType : std::uint8_t {
  kF64, kF32, kF16, kBF16,
  kF8E4M3FN, kF8E5M2, kF8E4M3FNUZ, kF8E5M2FNUZ, kF8E8M0,
  kI8, kI16, kI32, kI64,
  kU8, kU16, kU32, kU64,
  kBool,
  kC64, kC128,
  kC32,      ///< torch.complex32: no safetensors or ONNX type
  kQInt8, kQUInt8, kQInt32,  ///< quantized: the integer representation (scale/zero point go to metadata)
};

struct DTypeInfo {
  DType dtype;
  std::string_view torch_name;       ///< "float32": what `GLOBAL torch <name>` names
  std::uint8_t size;                 ///< bytes per element
  std::uint8_t swap_unit;            ///< byte-swap granularity (complex: one component; 1 = never swap)
  std::string_view safetensors;      ///< "F32"; empty when safetensors has no such dtype
  int onnx;                          ///< TensorProto.DataType; 0 when ONNX has no such type
};

const DTypeInfo& info(DType d);
/// `torch.float32`, `torch.half` (aliases too): the dtype a `torch <name>` global stands for.
std::optional<DType> from_torch_dtype_name(std::string_view name);
/// Typed storage class name without module ("FloatStorage", "BFloat16Storage", "QUInt8Storage").
std::optional<DType> from_storage_class(std::string_view name);
/// A numpy type string without byte order ("f4", "i8", "b1", "c16", "u2"); `big_endian` is
/// filled from a leading '<', '>', '|', '=' when present.
std::optional<DType> from_numpy_typestr(std::string_view typestr, bool* big_endian = nullptr);
/// The dtype of a safetensors dtype string ("F32").
std::optional<DType> from_safetensors_name(std::string_view name);

}  // namespace brine::tensor
