// A tensor as brine extracts it: where its storage bytes are, and how the view over them reads.
//
// Nothing here owns tensor bytes: `storage` points into the memory-mapped input (or into a
// decompressed member the source keeps alive), so extracting a 10 GB checkpoint costs no copy.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/byte_reader.hpp"
#include "core/mapped_file.hpp"
#include "core/result.hpp"
#include "tensor/dtype.hpp"

namespace brine::tensor {

struct Tensor {
  std::string name;                   ///< dotted path in the loaded object ("state_dict.fc.weight")
  DType dtype = DType::kF32;
  std::vector<std::int64_t> shape;
  std::vector<std::int64_t> strides;  ///< in elements, one per dim (row-major when contiguous)
  std::int64_t storage_offset = 0;    ///< in elements
  core::Bytes storage;                ///< the whole storage, as stored (maybe big-endian)
  bool big_endian = false;            ///< storage bytes are big-endian: swap per swap_unit on output
  bool conj = false;                  ///< complex: negate imaginary parts on output (torch 2.x conj bit)
  bool neg = false;                   ///< negate every element on output (torch 2.x neg bit)
  std::string storage_key;            ///< identifies the storage for tie detection ("archive/data/0")
  std::string source;                 ///< container member holding the storage, for messages
  std::uint64_t offset = 0;           ///< offset of the rebuild call in its pickle, for messages
  /// The mapping `storage` lies in, if any: pages already copied are released as writing goes,
  /// so resident memory stays flat however large the model is.
  const core::MappedFile* mapping = nullptr;

  [[nodiscard]] std::uint64_t numel() const;
  /// Bytes of the contiguous little-endian output.
  [[nodiscard]] std::uint64_t nbytes() const { return numel() * info(dtype).size; }
  /// Row-major strides, native byte order, no conj/neg: the output is a plain copy of storage bytes.
  [[nodiscard]] bool is_plain_contiguous() const;
};

/// Checks that every element the view reads lies inside the storage (overflow-safe).
core::Status check_bounds(const Tensor& t);

/// Receives the output bytes of one tensor in order, in pieces of any size.
class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual core::Status write(core::Bytes bytes) = 0;
  /// Takes up to `n` bytes of the open file `fd` from `offset` without them being read into this
  /// process (a file sink: copy_file_range), and returns how many it took. 0 (the default): this
  /// sink needs the bytes themselves (a comparison), which then arrive through write().
  virtual core::Result<std::uint64_t> copy_from_file(int fd, std::uint64_t offset, std::uint64_t n) {
    (void)fd, (void)offset, (void)n;
    return std::uint64_t{0};
  }
};

/// Writes the tensor's logical elements, row-major, little-endian, conj/neg applied. Contiguous
/// tensors are copied straight from the storage: file to file by the kernel when the storage
/// lies in a mapped input and the sink takes file ranges, else from the mapping in pieces whose
/// pages are released as they go. Others go through a bounded staging buffer, so memory does
/// not grow with the tensor. check_bounds must have passed.
core::Status write_contiguous_le(const Tensor& t, ByteSink& sink);

}  // namespace brine::tensor
