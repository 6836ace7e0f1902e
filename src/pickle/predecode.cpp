#include "pickle/predecode.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "core/text.hpp"
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
/// The most bytes of one frame measured (a larger frame's later opcodes are the VM's to decode):
/// also how long the worker may go without looking at the stop flag (a few ms).
constexpr std::uint64_t kMaxLane = std::uint64_t{4} << 20;

std::uint64_t le64(const std::uint8_t* p) {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

/// What step() needs of an opcode byte, in one table entry: kRunFixed opcodes (binary ints,
/// floats, None/True/False and MEMOIZE) are their fixed length; kRunCounted ones (str, bytes,
/// LONG1) a fixed part and a 1- or 4-byte count; anything else ends the run. The same opcodes,
/// lengths and checks as run_of_scalars (detail::kScalarOps, scalar_at), in fewer steps.
enum : std::uint16_t {
  kRunFixed = 1u << 8,
  kRunCounted = 1u << 9,
  kWideCount = 1u << 10,  ///< 4-byte count (else 1 byte)
  kUtf8 = 1u << 11,       ///< str: the bytes must be UTF-8 (surrogates allowed)
  kTextLike = 1u << 12,   ///< str or bytes: a count of kLongText or more is a long text
  kMemo = 1u << 13,       ///< MEMOIZE: recorded as Predecoder::kMemoizeLength
};
constexpr std::array<std::uint16_t, 256> make_run_table() {
  std::array<std::uint16_t, 256> t{};
  for (std::size_t b = 0; b < 256; ++b) {
    const detail::FastOp f = detail::kFast[b];
    if (f.op == Op::MEMOIZE && f.cls == detail::Fast::kNone) {
      t[b] = kRunFixed | kMemo | 1;
    } else if (f.scalar && f.cls <= detail::Fast::kI4) {
      t[b] = static_cast<std::uint16_t>(kRunFixed | (1 + f.width));
    } else if (f.scalar && f.cls == detail::Fast::kF8) {
      t[b] = kRunFixed | 9;
    } else if (f.scalar) {  // the counted classes
      std::uint16_t e = static_cast<std::uint16_t>(kRunCounted | (1 + f.width));
      if (f.width == 4) e |= kWideCount;
      if (f.cls == detail::Fast::kText1 || f.cls == detail::Fast::kText4) e |= kUtf8;
      if (f.cls != detail::Fast::kLong1) e |= kTextLike;
      t[b] = e;
    }
  }
  return t;
}
constexpr std::array<std::uint16_t, 256> kRunTable = make_run_table();

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
  const std::uint64_t count = detail::counted_length(le64(data_.data() + end + 1), f.width == 4);
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
  std::uint64_t begin = 0;
  std::uint64_t limit = 0;  ///< opcodes are taken if they end by here (see open)
  std::uint64_t used = 0;   ///< lengths in the runs recorded so far
  std::uint64_t cap = 0;
  std::unique_ptr<std::uint8_t[]> lengths;  ///< the recorded runs' lengths, then the open run's
  std::vector<Run> runs;                    ///< first: an index into `lengths`
};

/// What changes with every opcode of a lane, in locals while measuring: in the Lane, every
/// length byte stored (a char store may alias anything) would reload them, and the position,
/// which each opcode's is computed from, would go through memory.
struct Predecoder::Cursor {
  std::uint64_t pos;
  std::uint64_t limit;
  std::uint64_t run_start;
  std::uint8_t* run;  ///< the open run's first length
  std::uint8_t* out;  ///< where its next length goes
};

namespace {

/// Ends the cursor's open run at its position, recording it in the lane if it is long enough
/// (a short run is dropped: its lengths are written over by the next one).
template <typename Lane, typename Cursor, typename Run>
[[gnu::always_inline]] inline void close_run(Lane& lane, Cursor& c) {
  const auto count = static_cast<std::uint32_t>(c.out - c.run);
  if (count >= Predecoder::kMinRun) {
    lane.runs.push_back(Run{c.run_start, c.pos, static_cast<std::uint32_t>(lane.used), count});
    lane.used += count;
    c.run = c.out;
  } else {
    c.out = c.run;
  }
}

}  // namespace

void Predecoder::open(Lane& lane, std::uint32_t i) const {
  const Frame& f = frames_[i];
  lane.frame = i;
  lane.live = true;
  lane.runs.clear();
  lane.used = 0;
  lane.begin = f.begin;
  const std::uint64_t want = std::min(f.end - f.begin, kMaxLane);
  if (lane.cap < want) {
    lane.lengths = std::make_unique_for_overwrite<std::uint8_t[]>(static_cast<std::size_t>(want));
    lane.cap = want;
  }
  // The decoder's fast limit inside this frame (Decoder::update_fast_limit): run_of_scalars takes
  // an opcode only if it starts and ends before it. Past `cap` bytes into a frame the lane stops
  // (its opcodes are the VM's to decode): every opcode has a byte, so `cap` lengths always fit.
  const std::uint64_t size = data_.size();
  lane.limit = std::min({f.end, size >= 9 ? size - 8 : 0, f.begin + lane.cap});
}

/// Measures one opcode of a lane's frame; false when the lane is done with it.
[[gnu::always_inline]] inline bool Predecoder::step(Lane& lane, Cursor& c, const std::uint8_t* base, std::uint64_t max_string) {
  if (c.pos >= c.limit) return false;
  const std::uint8_t* p = base + c.pos;
  const std::uint16_t e = kRunTable[p[0]];
  std::uint64_t end;
  std::uint8_t length;
  if (e & kRunFixed) {
    length = (e & kMemo) ? kMemoizeLength : static_cast<std::uint8_t>(e);
    end = c.pos + (e & 0xFF);
    if (end > c.limit) return false;  // (a limit below the frame's, from `cap`, only ends the lane sooner)
  } else if (e & kRunCounted) {
    // run_of_scalars' own checks (scalar_at); an opcode it leaves (to next(), maybe an error)
    // ends the lane.
    const std::uint64_t count = detail::counted_length(le64(p + 1), (e & kWideCount) != 0);
    end = c.pos + (e & 0xFF) + count;
    if (end > c.limit || count > max_string) return false;
    if ((e & kUtf8) && !detail::ascii_words_padded(p + (e & 0xFF), count) &&
        !core::valid_utf8(std::string_view(reinterpret_cast<const char*>(p + (e & 0xFF)), static_cast<std::size_t>(count)),
                          core::Utf8Mode::kSurrogatePass)) {
      return false;
    }
    length = ((e & kTextLike) && count >= ValueStore::kLongText) || end - c.pos >= kMemoizeLength ? kMeasureLength
                                                                                                    : static_cast<std::uint8_t>(end - c.pos);
  } else {
    // Any other opcode ends the run; the next one starts after it. Measured as next_fast would
    // (fixed widths, or a counted length within the frame); anything else ends the lane.
    const detail::FastOp f = detail::kFast[p[0]];
    close_run<Lane, Cursor, Run>(lane, c);
    std::uint64_t n;
    if (f.cls <= detail::Fast::kI4) {
      n = f.width;
    } else if (f.cls == detail::Fast::kF8) {
      n = 8;
    } else if (f.cls == detail::Fast::kBytes1 || f.cls == detail::Fast::kBytes4) {
      const std::uint64_t count = detail::counted_length(le64(p + 1), f.width == 4);
      if (count > max_string) return false;
      n = f.width + count;
    } else {
      return false;
    }
    if (c.pos + 1 + n > c.limit) return false;
    c.pos += 1 + n;
    c.run_start = c.pos;
    return true;
  }
  *c.out++ = length;
  c.pos = end;
  return true;
}

bool Predecoder::measure(Lane& a, Lane& b) {
  // No look at the stop flag in here: a lane ends within kMaxLane bytes (a few ms).
  const std::uint8_t* const base = data_.data();
  const std::uint64_t max_string = max_string_;
  Cursor ca, cb;
  for (auto [lane, c] : {std::pair<Lane*, Cursor*>{&a, &ca}, std::pair<Lane*, Cursor*>{&b, &cb}}) {
    c->pos = lane->begin;
    c->run_start = lane->begin;
    c->limit = lane->live ? lane->limit : lane->begin;
    c->run = c->out = lane->lengths.get();
  }
  bool on_a = a.live, on_b = b.live;
  while (on_a && on_b) {
    on_a = step(a, ca, base, max_string);
    on_b = step(b, cb, base, max_string);
  }
  while (on_a) on_a = step(a, ca, base, max_string);
  while (on_b) on_b = step(b, cb, base, max_string);
  close_run<Lane, Cursor, Run>(a, ca);
  close_run<Lane, Cursor, Run>(b, cb);
  return !stop_.load(std::memory_order_relaxed);
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
      reached_.store(frames_[b.live ? i - 2 : i - 1].begin, std::memory_order_relaxed);
      if (!measure(a, b) || !record(a) || !record(b)) break;
      i -= b.live ? 2 : 1;
    }
  }
  finished_.store(true, std::memory_order_release);
}

}  // namespace brine::pickle
