// scan -> sanitize --salvage -> re-read: any input's extracted tensors are written as safetensors
// and as ONNX (to memory-backed temporary files) and verified against the source, so a view that
// reads outside its bytes, a writer that disagrees with its own length computations, or a reader
// that disagrees with the writer, all stop the fuzzer.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "fuzz_common.hpp"
#include "sanitize/sanitize.hpp"
#include "sanitize/verify.hpp"
#include "writer/output.hpp"

namespace {
std::string temp_base() {
  const char* dir = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  return std::string(dir) + "/brine-fuzz-" + std::to_string(::getpid());
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace brine;
  const core::Bytes bytes(data, size);
  (void)fuzz::scanner().scan_bytes(bytes, "fuzz");
  auto extracted = sanitize::extract_bytes(bytes, fuzz::scanner(), /*salvage=*/true);
  writer::OutputModel model;
  std::uint64_t total = 0;
  for (auto& t : extracted.extraction.tensors) {
    if (!tensor::check_bounds(t)) __builtin_trap();  // extraction only yields checked views
    if (t.name.empty()) t.name = "tensor";
    total += t.nbytes();
  }
  if (total > (64u << 20)) return 0;  // keep each exec fast; bounds were checked above
  // Unique names, as sanitize_file makes them.
  for (std::size_t i = 0; i < extracted.extraction.tensors.size(); ++i) {
    auto& t = extracted.extraction.tensors[i];
    t.name += "#" + std::to_string(i);
    model.tensors.push_back(&t);
  }
  if (model.tensors.empty()) return 0;
  static const std::string base = temp_base();
  writer::WriteOptions options;
  options.force = true;
  const std::string st = base + ".safetensors", onnx = base + ".onnx";
  std::vector<const tensor::Tensor*> st_tensors;
  for (const auto* t : model.tensors) {
    if (!tensor::info(t->dtype).safetensors.empty()) st_tensors.push_back(t);
  }
  writer::OutputModel st_model{st_tensors, {{"format", "pt"}}};
  if (!st_tensors.empty()) {
    if (!writer::write_safetensors(st_model, st, options) || !sanitize::verify_safetensors(st_model, st)) __builtin_trap();
  }
  std::vector<const tensor::Tensor*> onnx_tensors;
  for (const auto* t : model.tensors) {
    if (tensor::info(t->dtype).onnx != 0) onnx_tensors.push_back(t);
  }
  writer::OutputModel onnx_model{onnx_tensors, {}};
  if (!onnx_tensors.empty()) {
    options.onnx_inline_limit = size % 2 == 0 ? 0 : options.onnx_inline_limit;  // both layouts
    if (!writer::write_onnx(onnx_model, onnx, options) || !sanitize::verify_onnx(onnx_model, onnx)) __builtin_trap();
  }
  std::remove(st.c_str());
  std::remove(onnx.c_str());
  std::remove((onnx + ".data").c_str());
  return 0;
}
