// The decode-only baseline of bench/goals.sh: brine's pickle decoder (src/pickle/decoder.hpp)
// alone over a file, counting opcodes. No values, no stack, no rules: the least any scan that
// reads every opcode must do. A `brine scan` of the same file is compared with this.
//
//   decode_only FILE        prints "<opcodes> opcodes, <streams> pickle stream(s)"
//
// The file is read like brine reads it (core::MappedFile), and every pickle stream in it is
// decoded up to its STOP, one after another, as a scan of a raw pickle file does.
#include <cstdio>

#include "core/limits.hpp"
#include "core/mapped_file.hpp"
#include "pickle/arena.hpp"
#include "pickle/decoder.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: decode_only FILE\n");
    return 2;
  }
  auto file = brine::core::MappedFile::open(argv[1]);
  if (!file) {
    std::fprintf(stderr, "decode_only: %s\n", file.error().detail.c_str());
    return 2;
  }
  const brine::core::Limits limits;
  brine::pickle::StringArena arena;
  brine::pickle::Decoder decoder(file->bytes(), 0, arena, limits);
  std::uint64_t opcodes = 0, streams = 0;
  brine::pickle::Instruction ins;
  while (!decoder.at_end()) {
    if (!decoder.next(ins)) {
      std::fprintf(stderr, "decode_only: %s at offset %llu\n", decoder.error().detail.c_str(),
                   static_cast<unsigned long long>(decoder.error().offset));
      return 1;
    }
    ++opcodes;
    if (ins.op == brine::pickle::Op::STOP) ++streams;
  }
  std::printf("%llu opcodes, %llu pickle stream(s)\n", static_cast<unsigned long long>(opcodes),
              static_cast<unsigned long long>(streams));
  return 0;
}
