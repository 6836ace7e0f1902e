// Every resource limit brine applies to hostile input, in one place.
//
// Each limit has a default chosen so that real checkpoints never reach it, and a command-line
// flag (cli/scan_options.cpp) to change it. Hitting a limit stops the analysis of that pickle
// and is reported as a finding with verdict `error`: the file is never `clean`.
//
// Why these bound the work: every opcode consumes at least one input byte and does O(1)
// amortised work (except the container-building opcodes, whose cost is the number of stack
// items they consume, each of which was pushed by an earlier opcode), so the VM's time is linear
// in the opcodes it executes. Memory is bounded by the value-node and byte budgets: memo GET and
// DUP share a value instead of copying it, so they cost one stack slot, never a copy.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace brine::core {

struct Limits {
  /// Opcodes executed per pickle. A 2 GB data.pkl of a large model has far fewer; a pickle that
  /// needs more is a CPU-exhaustion attempt.
  std::uint64_t max_opcodes = 100'000'000;

  /// Items on the VM stack at once. CPython's pickler pushes a whole tuple before TUPLE, so this
  /// must exceed the longest tuple a real file holds.
  std::uint64_t max_stack_depth = 4'000'000;

  /// Open MARKs at once, and the nesting depth of containers built from the stack. CPython's
  /// pickler recurses once per level, so real files stay below its recursion limit (1000).
  std::uint64_t max_nesting = 10'000;

  /// Distinct memo entries per pickle (the memo is a hash map: a huge PUT index costs one entry).
  std::uint64_t max_memo_entries = 20'000'000;

  /// Symbolic values created per pickle (ints, strings, containers, calls...). Each costs ~48 bytes,
  /// so the default bounds the VM's heap to about 1.5 GB in the worst case.
  std::uint64_t max_value_nodes = 32'000'000;

  /// Bytes the VM copies out of the input (decoded protocol-0 text, big-integer conversions).
  /// Binary strings and bytes are views into the input and cost nothing here.
  std::uint64_t max_value_bytes = 1ull << 30;

  /// Length of one string, bytes or big-integer argument. Checked against the claimed length
  /// before anything is read, so a lying length prefix allocates nothing.
  std::uint64_t max_string_length = 4ull << 30;

  /// Pickles per file: raw streams can hold many consecutive pickles, zips many .pkl members.
  std::uint64_t max_pickles_per_file = 4096;

  /// Files nested inside files: bytes an approved loader deserializes (torch.storage._load_from_bytes)
  /// are scanned as files themselves, at most this deep.
  std::uint64_t max_nested_depth = 4;

  /// Tokens of one TorchScript source file (code/*.py of a torch.jit.save archive). Real model
  /// code has thousands; past this the file is reported unreadable, never clean.
  std::uint64_t max_torchscript_tokens = 4'000'000;

  /// Bytes of one .npy header. numpy's own default refuses headers over 10,000 characters unless
  /// allow_pickle=True (which object arrays need anyway); brine evaluates up to this many.
  std::uint64_t max_npy_header_bytes = 1u << 20;

  /// Containers inside containers (a zip in a tar in a gzip...).
  std::uint64_t max_container_depth = 8;

  /// Entries in one archive (zip central directory, local headers, tar, 7z). A checkpoint has one
  /// per tensor; tens of thousands of tiny entries are a CPU-exhaustion attempt past this.
  std::uint64_t max_archive_entries = 100'000;

  /// Decompressed / compressed size of a layer whose input was itself decompressed (gzip of gzip,
  /// a zip inside a compressed member), checked past 64 MiB. One layer of real data (zeros, masks,
  /// optimizer state) compresses by 10^3..10^6 just like a bomb does, so a single layer is bounded
  /// only by the absolute budgets below; compressed data compressed again at such a ratio is a bomb.
  std::uint64_t max_compression_ratio = 1000;

  /// Bytes decompressed for one file, over all its members and wrappers.
  std::uint64_t max_total_decompressed = 16ull << 30;

  /// Bytes read out of one container member to scan it (decompressed size of data.pkl...).
  std::uint64_t max_member_bytes = 4ull << 30;

  /// Values the sanitize walk visits per pickle (shared sub-objects are visited once). Past it,
  /// or past max_walk_depth, the rest of the graph is reported as a dropped value, never written.
  std::uint64_t max_walk_visits = 50'000'000;

  /// Nesting depth of the names the sanitize walk gives (model.layer.0.weight...). Real
  /// checkpoints stay in the tens; the walk uses an explicit stack, so any value is safe.
  std::uint64_t max_walk_depth = 512;

  /// Nesting depth of one metadata value the sanitize walk turns into JSON (a list of dicts of
  /// lists...), and of dict keys named by the JSON of keys inside them. Deeper values are dropped
  /// (a key gets a positional name instead). The JSON is built over an explicit stack.
  std::uint64_t max_metadata_depth = 64;

  /// Wall time for one file. The VM checks the clock every few thousand opcodes.
  std::chrono::milliseconds max_file_time{60'000};

  /// The most one compressed member of `compressed` bytes may inflate to, when `already` bytes
  /// of the file have been decompressed: the member cap, what is left of the file's total, and,
  /// for a `nested` layer (its input came out of another decompression), the ratio limit past a
  /// 64 MiB floor. The scan and sanitize both use it, so a bomb stops at the same point in each.
  [[nodiscard]] std::uint64_t decompression_cap(std::uint64_t compressed, std::uint64_t already, bool nested = false) const {
    constexpr std::uint64_t kRatioFloor = 64ull << 20;
    const std::uint64_t left = max_total_decompressed > already ? max_total_decompressed - already : 0;
    if (!nested) return std::min(max_member_bytes, left);
    std::uint64_t by_ratio = 0;
    if (__builtin_mul_overflow(compressed, std::max<std::uint64_t>(max_compression_ratio, 1), &by_ratio)) by_ratio = UINT64_MAX;
    return std::min({max_member_bytes, left, std::max(kRatioFloor, by_ratio)});
  }
};

}  // namespace brine::core
