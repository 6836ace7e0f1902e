#include "pickle/predecode.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "pickle/decoder.hpp"
#include "pickle/value.hpp"

namespace brine::pickle {

namespace {

constexpr std::uint8_t kFrameByte = 0x95;
constexpr std::uint8_t kProtoByte = 0x80;
/// A real frame holds up to ~64 KiB of opcodes (pickle's framing target); one far larger is
/// not taken as a frame by the search (the VM decodes such a pickle by itself).
constexpr std::uint64_t kMaxFrame = std::uint64_t{64} << 20;
/// How far the search for the first frame (or the next one, after a gap) looks.
constexpr std::uint64_t kSearch = std::uint64_t{1} << 20;
/// Frames hopped through after a candidate header before it is believed.
constexpr int kConfirmHops = 2;
/// The most frames listed (a pickle's frames hold ~64 KiB each: 4 GiB of them); later ones are
/// the VM's to decode.
constexpr std::uint32_t kMaxFrames = 1u << 16;
/// The most opcode lengths recorded (one byte each, reserved, touched only as written).
constexpr std::uint64_t kMaxLengths = std::uint64_t{1} << 30;
/// The most opcode lengths one frame keeps (a larger frame's later opcodes are the VM's to decode).
constexpr std::uint64_t kMaxLane = std::uint64_t{16} << 20;
/// The worker looks at the stop flag every this many opcodes (and at every frame).
constexpr std::uint64_t kStopCheck = 1u << 16;

std::uint64_t le64(const std::uint8_t* p) {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

void* reserve(std::uint64_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

}  // namespace

Predecoder::Predecoder(core::Bytes data, std::uint64_t max_string) : data_(data), max_string_(max_string) {}

Predecoder::~Predecoder() {
  stop_.store(true, std::memory_order_relaxed);
  task_.wait();
  if (lengths_ != nullptr) ::munmap(lengths_, lengths_cap_);
  if (runs_ != nullptr) ::munmap(runs_, std::uint64_t{runs_cap_} * sizeof(Run));
}

bool Predecoder::framed(core::Bytes data, std::uint64_t start) {
  // What pickle.dump writes at protocol 4 and up.
  return start < data.size() && data.size() - start >= 3 && data[start] == kProtoByte && data[start + 1] >= 4 &&
         data[start + 2] == kFrameByte;
}

bool Predecoder::start(std::uint64_t start) {
  // Started once, before the VM reads anything: the worker owns the record until it publishes.
  return task_.start([this, start] { work(start); });
}

std::uint64_t Predecoder::find_frame(std::uint64_t from) const {
  const std::uint64_t size = data_.size();
  const std::uint64_t last = std::min(size, from + kSearch);
  for (std::uint64_t q = from; q + 9 <= last; ++q) {
    const void* hit = std::memchr(data_.data() + q, kFrameByte, static_cast<std::size_t>(last - q));
    if (hit == nullptr) break;
    q = static_cast<std::uint64_t>(static_cast<const std::uint8_t*>(hit) - data_.data());
    // Believed if it and the frames after it chain up (or the chain reaches the end of the data).
    std::uint64_t h = q;
    int hops = 0;
    for (; hops <= kConfirmHops; ++hops) {
      if (h + 9 > size || data_[h] != kFrameByte) break;
      const std::uint64_t len = le64(data_.data() + h + 1);
      if (len == 0 || len > kMaxFrame || len > size - h - 9) break;
      h = h + 9 + len;
      if (h == size) {
        hops = kConfirmHops + 1;
        break;
      }
      h = next_frame(h);
      if (h == UINT64_MAX) break;
    }
    if (hops > kConfirmHops) return q;
  }
  return UINT64_MAX;
}

std::uint64_t Predecoder::next_frame(std::uint64_t end) const {
  const std::uint64_t size = data_.size();
  if (end + 9 > size) return UINT64_MAX;
  if (data_[end] == kFrameByte) return end;
  // pickle's framer writes a str or bytes of 64 KiB and more between frames: hop over it.
  const detail::FastOp f = detail::kFast[data_[end]];
  if (f.cls < detail::Fast::kBytes1 || f.cls > detail::Fast::kText4) return UINT64_MAX;
  const std::uint64_t count = le64(data_.data() + end + 1) & (f.width == 4 ? 0xFFFFFFFFu : 0xFFu);
  const std::uint64_t after = end + 1 + f.width + count;
  if (after + 9 > size || data_[after] != kFrameByte) return UINT64_MAX;
  return after;
}

bool Predecoder::list_frames(std::uint64_t start) {
  const std::uint64_t size = data_.size();
  std::vector<std::pair<std::uint64_t, std::uint64_t>> found;  // (begin, end)
  std::uint64_t header = start + 2;  // framed(): the FRAME right after PROTO
  while (header != UINT64_MAX && header + 9 <= size && data_[header] == kFrameByte && found.size() < kMaxFrames) {
    if (stop_.load(std::memory_order_relaxed)) return false;
    const std::uint64_t len = le64(data_.data() + header + 1);
    if (len > size - header - 9) break;  // the decoder reports it; no frame after it
    const std::uint64_t end = header + 9 + len;
    // A frame too small for a recorded run is left out (the VM decodes it by itself).
    if (len >= kMinRun) found.emplace_back(header + 9, end);
    std::uint64_t next = next_frame(end);
    if (next == UINT64_MAX && end < size) next = find_frame(end);
    header = next;
  }
  if (found.empty()) return false;
  frames_ = std::make_unique<Frame[]>(found.size());
  for (std::size_t i = 0; i < found.size(); ++i) {
    frames_[i].begin = found[i].first;
    frames_[i].end = found[i].second;
  }
  frame_count_.store(static_cast<std::uint32_t>(found.size()), std::memory_order_release);
  return true;
}

/// One frame being measured: work() measures two at a time, so that two chains of dependent
/// loads (each opcode's position comes from the one before) run side by side on one CPU.
struct Predecoder::Lane {
  std::uint32_t frame = 0;
  bool live = false;
  std::uint64_t pos = 0;
  std::uint64_t fast_limit = 0;
  std::uint64_t run_start = 0;
  std::uint32_t count = 0;  ///< opcodes in the open run
  std::uint64_t used = 0;   ///< lengths in the runs recorded so far
  std::uint64_t cap = 0;
  std::unique_ptr<std::uint8_t[]> lengths;  ///< the recorded runs' lengths, then the open run's
  std::vector<Run> runs;                    ///< first: an index into `lengths`

  void close_run() {
    // A short run is dropped: its lengths are written over by the next one.
    if (count >= kMinRun) {
      runs.push_back(Run{run_start, pos, static_cast<std::uint32_t>(used), count});
      used += count;
    }
    count = 0;
  }
};

void Predecoder::open(Lane& lane, std::uint32_t i) const {
  const Frame& f = frames_[i];
  lane.frame = i;
  lane.live = true;
  lane.runs.clear();
  lane.used = 0;
  lane.count = 0;
  lane.pos = lane.run_start = f.begin;
  // The decoder's fast limit inside this frame (Decoder::update_fast_limit): run_of_scalars takes
  // an opcode only if it starts and ends before it.
  const std::uint64_t size = data_.size();
  lane.fast_limit = std::min(f.end, size >= 9 ? size - 8 : 0);
  const std::uint64_t want = std::min(f.end - f.begin, kMaxLane);
  if (lane.cap < want) {
    lane.lengths = std::make_unique_for_overwrite<std::uint8_t[]>(static_cast<std::size_t>(want));
    lane.cap = want;
  }
}

inline bool Predecoder::step(Lane& lane) const {
  if (lane.pos >= lane.fast_limit) return false;
  const std::uint8_t* p = data_.data() + lane.pos;
  const detail::FastOp f = detail::kFast[p[0]];
  std::uint64_t end, text;
  std::uint8_t length;
  if (f.scalar) {
    // run_of_scalars' own test; an opcode it leaves (to next(), maybe an error) ends the lane.
    if (!detail::scalar_at(p, lane.pos, f, lane.fast_limit, max_string_, end, text)) return false;
    length = text >= ValueStore::kLongText || end - lane.pos > 0xFF ? 0 : static_cast<std::uint8_t>(end - lane.pos);
  } else if (f.op == Op::MEMOIZE && f.cls == detail::Fast::kNone) {
    end = lane.pos + 1;
    length = 1;
  } else {
    // Any other opcode ends the run; the next one starts after it. Measured as next_fast would
    // (fixed widths, or a counted length within the frame); anything else ends the lane.
    lane.close_run();
    std::uint64_t n;
    if (f.cls <= detail::Fast::kI4) {
      n = f.width;
    } else if (f.cls == detail::Fast::kF8) {
      n = 8;
    } else if (f.cls == detail::Fast::kBytes1 || f.cls == detail::Fast::kBytes4) {
      const std::uint64_t c = le64(p + 1) & (f.width == 4 ? 0xFFFFFFFFu : 0xFFu);
      if (c > max_string_) return false;
      n = f.width + c;
    } else {
      return false;
    }
    if (lane.pos + 1 + n > lane.fast_limit) return false;
    lane.pos += 1 + n;
    lane.run_start = lane.pos;
    return true;
  }
  if (lane.used + lane.count >= lane.cap) return false;
  lane.lengths[lane.used + lane.count++] = length;
  lane.pos = end;
  return true;
}

bool Predecoder::measure(Lane& a, Lane& b) {
  bool on_a = a.live, on_b = b.live;
  std::uint64_t since_check = 0;
  auto stopped = [&] {
    if (++since_check < kStopCheck) return false;
    since_check = 0;
    return stop_.load(std::memory_order_relaxed);
  };
  while (on_a && on_b) {
    on_a = step(a);
    on_b = step(b);
    if (stopped()) return false;
  }
  while (on_a) {
    on_a = step(a);
    if (stopped()) return false;
  }
  while (on_b) {
    on_b = step(b);
    if (stopped()) return false;
  }
  a.close_run();
  b.close_run();
  return true;
}

bool Predecoder::record(Lane& lane) {
  if (!lane.live) return true;
  if (lane.used > lengths_cap_ - lengths_used_ || lane.runs.size() > runs_cap_ - runs_used_) return false;
  Frame& f = frames_[lane.frame];
  std::memcpy(lengths_ + lengths_used_, lane.lengths.get(), static_cast<std::size_t>(lane.used));
  f.first_run = runs_used_;
  for (Run run : lane.runs) {
    run.first += static_cast<std::uint32_t>(lengths_used_);
    runs_[runs_used_++] = run;
  }
  f.run_count = runs_used_ - f.first_run;
  lengths_used_ += lane.used;
  f.measured.store(true, std::memory_order_release);
  return true;
}

void Predecoder::work(std::uint64_t start) {
  const std::uint64_t size = data_.size();
  if (start < size && list_frames(start)) {
    lengths_cap_ = std::min(size - start, kMaxLengths);
    runs_cap_ = static_cast<std::uint32_t>(lengths_cap_ / kMinRun + 1);
    lengths_ = static_cast<std::uint8_t*>(reserve(lengths_cap_));
    runs_ = static_cast<Run*>(reserve(std::uint64_t{runs_cap_} * sizeof(Run)));
  }
  if (lengths_ != nullptr && runs_ != nullptr) {
    // From the last frame back, two at a time, until the VM has reached the next one: the VM
    // decodes from the first frame on and takes over what is measured when it gets there.
    Lane a, b;
    for (std::uint32_t i = frames(); i > 0;) {
      const std::uint64_t vm = vm_pos_.load(std::memory_order_relaxed);
      if (frames_[i - 1].begin <= vm || stop_.load(std::memory_order_relaxed)) break;
      open(a, i - 1);
      b.live = false;
      if (i >= 2 && frames_[i - 2].begin > vm) open(b, i - 2);
      if (!measure(a, b) || !record(a) || !record(b)) break;
      i -= b.live ? 2 : 1;
    }
  }
  finished_.store(true, std::memory_order_release);
}

}  // namespace brine::pickle
