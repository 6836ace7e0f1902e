#include "tensor/dtype.hpp"

#include <array>

namespace brine::tensor {

namespace {

// One row per DType, in enum order. ONNX numbers: onnx.proto TensorProto.DataType.
constexpr std::array<DTypeInfo, 24> kTable{{
    {DType::kF64, "float64", 8, 8, "F64", 11},
    {DType::kF32, "float32", 4, 4, "F32", 1},
    {DType::kF16, "float16", 2, 2, "F16", 10},
    {DType::kBF16, "bfloat16", 2, 2, "BF16", 16},
    {DType::kF8E4M3FN, "float8_e4m3fn", 1, 1, "F8_E4M3", 17},
    {DType::kF8E5M2, "float8_e5m2", 1, 1, "F8_E5M2", 19},
    {DType::kF8E4M3FNUZ, "float8_e4m3fnuz", 1, 1, "F8_E4M3FNUZ", 18},
    {DType::kF8E5M2FNUZ, "float8_e5m2fnuz", 1, 1, "F8_E5M2FNUZ", 20},
    {DType::kF8E8M0, "float8_e8m0fnu", 1, 1, "F8_E8M0", 24},
    {DType::kI8, "int8", 1, 1, "I8", 3},
    {DType::kI16, "int16", 2, 2, "I16", 5},
    {DType::kI32, "int32", 4, 4, "I32", 6},
    {DType::kI64, "int64", 8, 8, "I64", 7},
    {DType::kU8, "uint8", 1, 1, "U8", 2},
    {DType::kU16, "uint16", 2, 2, "U16", 4},
    {DType::kU32, "uint32", 4, 4, "U32", 12},
    {DType::kU64, "uint64", 8, 8, "U64", 13},
    {DType::kBool, "bool", 1, 1, "BOOL", 9},
    {DType::kC64, "complex64", 8, 4, "C64", 14},
    {DType::kC128, "complex128", 16, 8, "", 15},
    {DType::kC32, "complex32", 4, 2, "", 0},
    // Quantized storages hold the integer representation; it is written as that integer type.
    {DType::kQInt8, "qint8", 1, 1, "I8", 3},
    {DType::kQUInt8, "quint8", 1, 1, "U8", 2},
    {DType::kQInt32, "qint32", 4, 4, "I32", 6},
}};

struct Alias {
  std::string_view name;
  DType dtype;
};

// torch's dtype attributes, including the aliases torch.float, torch.half, torch.long...
constexpr std::array<Alias, 14> kTorchAliases{{
    {"double", DType::kF64}, {"float", DType::kF32}, {"half", DType::kF16}, {"long", DType::kI64},
    {"int", DType::kI32}, {"short", DType::kI16}, {"cdouble", DType::kC128}, {"cfloat", DType::kC64},
    {"chalf", DType::kC32}, {"complex32", DType::kC32}, {"float8_e4m3fn", DType::kF8E4M3FN},
    {"float8_e5m2", DType::kF8E5M2}, {"float8_e8m0fnu", DType::kF8E8M0}, {"bfloat16", DType::kBF16},
}};

constexpr std::array<Alias, 15> kStorageClasses{{
    {"DoubleStorage", DType::kF64}, {"FloatStorage", DType::kF32}, {"HalfStorage", DType::kF16},
    {"BFloat16Storage", DType::kBF16}, {"LongStorage", DType::kI64}, {"IntStorage", DType::kI32},
    {"ShortStorage", DType::kI16}, {"CharStorage", DType::kI8}, {"ByteStorage", DType::kU8},
    {"BoolStorage", DType::kBool}, {"ComplexFloatStorage", DType::kC64}, {"ComplexDoubleStorage", DType::kC128},
    {"QInt8Storage", DType::kQInt8}, {"QUInt8Storage", DType::kQUInt8}, {"QInt32Storage", DType::kQInt32},
}};

}  // namespace

const DTypeInfo& info(DType d) { return kTable[static_cast<std::size_t>(d)]; }

std::optional<DType> from_torch_dtype_name(std::string_view name) {
  for (const auto& row : kTable) {
    if (row.torch_name == name) return row.dtype;
  }
  for (const auto& a : kTorchAliases) {
    if (a.name == name) return a.dtype;
  }
  return std::nullopt;
}

std::optional<DType> from_storage_class(std::string_view name) {
  for (const auto& a : kStorageClasses) {
    if (a.name == name) return a.dtype;
  }
  return std::nullopt;
}

std::optional<DType> from_numpy_typestr(std::string_view s, bool* big_endian) {
  bool big = false;
  if (!s.empty() && (s[0] == '<' || s[0] == '>' || s[0] == '|' || s[0] == '=')) {
    big = s[0] == '>';
    s.remove_prefix(1);
  }
  if (big_endian != nullptr) *big_endian = big;
  struct NumpyName {
    std::string_view name;
    DType dtype;
  };
  static constexpr std::array<NumpyName, 16> kNames{{
      {"f8", DType::kF64}, {"f4", DType::kF32}, {"f2", DType::kF16}, {"i1", DType::kI8}, {"i2", DType::kI16},
      {"i4", DType::kI32}, {"i8", DType::kI64}, {"u1", DType::kU8}, {"u2", DType::kU16}, {"u4", DType::kU32},
      {"u8", DType::kU64}, {"b1", DType::kBool}, {"c8", DType::kC64}, {"c16", DType::kC128},
      {"?", DType::kBool}, {"b", DType::kI8},
  }};
  for (const auto& n : kNames) {
    if (n.name == s) return n.dtype;
  }
  return std::nullopt;
}

std::optional<DType> from_safetensors_name(std::string_view name) {
  for (const auto& row : kTable) {
    // Quantized rows share their integer type's name; the plain integer type wins.
    if (row.safetensors == name && row.dtype < DType::kQInt8) return row.dtype;
  }
  return std::nullopt;
}

}  // namespace brine::tensor
