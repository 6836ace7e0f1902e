// Decode-only baseline for benchmarking the VM: maps a raw pickle and runs brine's decoder over
// it, counting opcodes (no values, no memo, no analysis). Not part of the build; compile against
// a release build's library:
//   g++ -O2 -std=c++20 -Isrc -Ibuild-release tools/decode_count.cpp build-release/src/libbrine.a -lfmt -o /tmp/decode_count
#include <cstdio>

#include "core/mapped_file.hpp"
#include "pickle/decoder.hpp"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  auto file = brine::core::MappedFile::open(argv[1]);
  if (!file) return 2;
  brine::core::Limits limits;
  brine::pickle::StringArena arena;
  brine::pickle::Decoder dec(file->bytes(), 0, arena, limits);
  brine::pickle::Instruction ins;
  unsigned long n = 0;
  while (dec.next(ins)) {
    ++n;
    if (ins.op == brine::pickle::Op::STOP) break;
  }
  std::printf("%lu opcodes\n", n);
  return 0;
}
