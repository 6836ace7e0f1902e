// Measures the FRAMEs of a large protocol-4/5 pickle on a second CPU, from the last one back,
// while the VM works forward from the first: they meet where their speeds say.
//
// Why: decoding is a chain of dependent loads (an opcode's byte, its table entry, then the next
// opcode's position), ~4 ns an opcode on this project's VM, and a 2M-opcode pickle spends most of
// its scan in it (bench/README.md finding 21). A FRAME gives its frame's length, so where every
// frame starts is known by hopping from header to header, without decoding the opcodes between:
// the frames can be measured apart from the VM, and two at a time (two chains side by side).
//
// What it records: per frame, the runs of opcodes Decoder::run_of_scalars would take (binary
// scalars and MEMOIZE), as one byte per opcode (its length, or a code: see kMeasureLength). The VM takes a run only at
// one of its opcodes, in the frame its own decoder is in (the same end, hence the same limits),
// so what it takes is exactly what run_of_scalars would take there. A frame found by a search
// (after the chain of headers breaks) may be a guess; its runs are then never at the VM's
// position in the VM's frame, and are not taken.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/byte_reader.hpp"
#include "core/side_task.hpp"

namespace brine::pickle {

class Predecoder {
 public:
  /// A run of scalars and MEMOIZEs inside one frame.
  struct Run {
    std::uint64_t start = 0;  ///< offset of its first opcode
    std::uint64_t end = 0;    ///< offset just past its last opcode
    std::uint32_t first = 0;  ///< index of its first opcode's length in lengths()
    std::uint32_t count = 0;  ///< opcodes
  };
  /// A frame, and its runs once done() (runs first_run .. first_run + run_count - 1, in order).
  struct Frame {
    std::uint64_t begin = 0;  ///< its first opcode (just past the FRAME opcode)
    std::uint64_t end = 0;    ///< where the FRAME says it ends
    std::uint32_t first_run = 0;
    std::uint32_t run_count = 0;
    std::atomic<bool> measured{false};
    [[nodiscard]] bool done() const { return measured.load(std::memory_order_acquire); }
  };
  /// What lengths() holds for an opcode: its length (1 to 254) if it is a scalar the VM can take
  /// as it is; kMeasureLength if the VM must measure it itself (a text of ValueStore::kLongText
  /// bytes and more, which the VM lists, or an opcode of 255 bytes and more); kMemoizeLength for
  /// a MEMOIZE (one byte), so that the VM tells it apart without reading the opcode.
  static constexpr std::uint8_t kMeasureLength = 0;
  static constexpr std::uint8_t kMemoizeLength = 255;
  /// Runs shorter than this are not recorded: the VM decodes them as fast by itself.
  static constexpr std::uint32_t kMinRun = 32;
  /// An input smaller than this is not worth a second thread (Predecode::kAuto).
  static constexpr std::uint64_t kMinInput = std::uint64_t{2} << 20;

  /// `data` must outlive the Predecoder; `max_string` is the decoder's limit (it decides which
  /// str/bytes opcodes run_of_scalars takes).
  Predecoder(core::Bytes data, std::uint64_t max_string);
  ~Predecoder();
  Predecoder(const Predecoder&) = delete;
  Predecoder& operator=(const Predecoder&) = delete;

  /// True if the pickle at `start` is framed from its first opcode (PROTO 4 or 5, then FRAME).
  static bool framed(core::Bytes data, std::uint64_t start);
  /// True if a VM decoding the pickle at `start` starts a Predecoder (Predecode::kAuto): it is
  /// framed and kMinInput or more.
  static bool worth_a_thread(core::Bytes data, std::uint64_t start) {
    return framed(data, start) && data.size() - start >= kMinInput;
  }

  /// Measures the frames of the pickle at `start` on a second CPU; false if no thread could be
  /// had (nothing is measured then).
  bool start(std::uint64_t start);
  /// The same on the calling thread, every frame (tests: all of them are done before the VM runs).
  void run_here(std::uint64_t start) { work(start); }

  // --- the VM's side (one thread) ---
  /// Frames listed so far: 0 until the list is complete, then all of them (frame(i) is valid below it).
  [[nodiscard]] std::uint32_t frames() const { return frame_count_.load(std::memory_order_acquire); }
  [[nodiscard]] const Frame& frame(std::uint32_t i) const { return frames_[i]; }
  /// True once no more frames will be measured (one not done by then never will be).
  [[nodiscard]] bool finished() const { return finished_.load(std::memory_order_acquire); }
  [[nodiscard]] const Run& run(std::uint32_t i) const { return runs_[i]; }
  [[nodiscard]] const std::uint8_t* lengths() const { return lengths_; }
  /// The start of the lowest frame being measured: from there to the end, the worker has faulted
  /// the input's pages in (or is doing it), so the VM need not map them in ahead of itself.
  [[nodiscard]] std::uint64_t reached() const { return reached_.load(std::memory_order_relaxed); }
  /// Where the VM is: the frames it has reached are its own, and the work stops there.
  void vm_at(std::uint64_t pos) { vm_pos_.store(pos, std::memory_order_relaxed); }

 private:
  struct Lane;
  struct Cursor;
  void work(std::uint64_t start);
  /// Lists the frames of the pickle at `start` by hopping from header to header; false if none.
  bool list_frames(std::uint64_t start);
  /// The first plausible frame header at or after `from`, or UINT64_MAX.
  [[nodiscard]] std::uint64_t find_frame(std::uint64_t from) const;
  /// The header of the frame after the one ending at `end` (hopping over one unframed opcode,
  /// where the pickler writes a large str or bytes), or UINT64_MAX.
  [[nodiscard]] std::uint64_t next_frame(std::uint64_t end) const;
  /// Starts `lane` on frame `i`.
  void open(Lane& lane, std::uint32_t i) const;
  static bool step(Lane& lane, Cursor& cursor, const std::uint8_t* base, std::uint64_t max_string);
  /// Measures the two lanes' frames side by side; false if told to stop.
  bool measure(Lane& a, Lane& b);
  /// Records a lane's runs and marks its frame done; false when the reservation is full.
  bool record(Lane& lane);

  core::Bytes data_;
  std::uint64_t max_string_;
  std::unique_ptr<Frame[]> frames_;
  std::uint8_t* lengths_ = nullptr;  ///< one byte per recorded opcode (a reservation, touched as written)
  std::uint64_t lengths_cap_ = 0;
  std::uint64_t lengths_used_ = 0;
  Run* runs_ = nullptr;
  std::uint32_t runs_cap_ = 0;
  std::uint32_t runs_used_ = 0;
  std::atomic<std::uint32_t> frame_count_{0};
  std::atomic<bool> finished_{false};
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> vm_pos_{0};
  std::atomic<std::uint64_t> reached_{UINT64_MAX};
  core::SideTask task_;
};

}  // namespace brine::pickle
