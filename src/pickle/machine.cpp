#include "pickle/machine.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <memory>
#include <unordered_map>

#include "core/mapped_file.hpp"
#include "core/text.hpp"
#include "pickle/decoder.hpp"
#include "pickle/predecode.hpp"

namespace brine::pickle {

using core::ErrorCode;

std::string_view anomaly_name(Anomaly::Kind kind) {
  switch (kind) {
    case Anomaly::Kind::kFrameViolation: return "frame-violation";
    case Anomaly::Kind::kNoncanonical: return "noncanonical-encoding";
    case Anomaly::Kind::kProtoSwitch: return "proto-switch";
    case Anomaly::Kind::kProtoRepeat: return "proto-repeat";
    case Anomaly::Kind::kLeftoverStack: return "leftover-stack";
    case Anomaly::Kind::kDuplicateKey: return "duplicate-key";
    case Anomaly::Kind::kMemoOverwrite: return "memo-overwrite";
  }
  return "?";
}

namespace {

/// True for values CPython can never call (no literal type is callable).
bool is_literal(Kind k) {
  switch (k) {
    case Kind::kGlobal:
    case Kind::kCall:
    case Kind::kPersistent:
    case Kind::kExt:
    case Kind::kBuffer:
      return false;
    default:
      return true;
  }
}

/// The memo, as _pickle.c keeps it: index -> value, where MEMOIZE stores at the number of
/// entries set so far (memo_len) and a PUT to a set index replaces its value without counting.
/// Storage is dense for the indices picklers write (0, 1, 2, ...) and a hash map above the dense
/// part, so a PUT to index 4,000,000,000 costs one map entry, not a 4-billion-slot array.
/// Invariant: every sparse key is >= dense_.size(). Growing the dense part moves the sparse
/// entries it now covers into it, so an index has exactly one home and GET always finds what
/// the last PUT stored there (a value parked in the map must never be shadowed by an empty dense
/// slot, nor counted twice).
class Memo {
 public:
  [[nodiscard]] std::size_t size() const { return count_; }

  [[gnu::always_inline]] [[nodiscard]] ValueRef get(std::uint64_t idx) const {
    if (idx < dense_.size()) return dense_[idx];
    auto it = sparse_.find(idx);
    return it == sparse_.end() ? kNoValue : it->second;
  }

  /// Stores; returns true if the index already held a value.
  [[gnu::always_inline]] bool put(std::uint64_t idx, ValueRef v) {
    if (idx >= dense_.size() && idx < 4 * (count_ + 1) + 1024) [[unlikely]] grow_dense(idx);
    if (idx < dense_.size()) {
      const bool had = dense_[idx] != kNoValue;
      if (!had) ++count_;
      dense_[idx] = v;
      return had;
    }
    auto [it, inserted] = sparse_.try_emplace(idx, v);
    if (inserted) {
      ++count_;
    } else {
      it->second = v;
    }
    return !inserted;
  }

  /// Capacity for `n` dense entries (none is written: the size does not change).
  void reserve(std::size_t n) { dense_.reserve(pool_, n); }

 private:
  /// Makes `idx` dense. With entries in the map, the dense part at least doubles, so that
  /// migrating them stays amortised O(1). Without (the indices a pickler writes: 0, 1, 2, ...) it
  /// grows by kDenseStep slots: every slot made dense is written (kNoValue), and doubling would
  /// write, and keep resident, up to twice the memo's size (the array's capacity still doubles).
  [[gnu::noinline]] void grow_dense(std::uint64_t idx) {
    constexpr std::size_t kDenseStep = 4096;
    const std::size_t grown = sparse_.empty() ? dense_.size() + kDenseStep : 2 * dense_.size();
    const std::size_t new_size = std::max<std::size_t>(static_cast<std::size_t>(idx) + 1,
                                                       std::min<std::size_t>(grown, 4 * (count_ + 1) + 1024));
    dense_.resize(pool_, new_size, kNoValue);
    for (auto it = sparse_.begin(); it != sparse_.end();) {
      if (it->first < new_size) {
        dense_[it->first] = it->second;
        it = sparse_.erase(it);
      } else {
        ++it;
      }
    }
  }

  core::Pool pool_;  // first: dense_ lives in it
  core::PoolVec<ValueRef> dense_;
  std::unordered_map<std::uint64_t, ValueRef> sparse_;
  std::size_t count_ = 0;
};

/// What Machine::step does inline, per opcode; kExecute leaves it to Machine::execute.
enum class Inline : std::uint8_t { kExecute, kPushInput, kMemoize, kBinPut };
constexpr std::array<Inline, kOpCount> make_inline_table() {
  std::array<Inline, kOpCount> t{};
  // The binary scalars the decoder's next_scalar hands over without an Instruction.
  for (Op op : detail::kScalarOps) t[static_cast<std::size_t>(op)] = Inline::kPushInput;
  t[static_cast<std::size_t>(Op::MEMOIZE)] = Inline::kMemoize;
  t[static_cast<std::size_t>(Op::BINPUT)] = Inline::kBinPut;
  return t;
}
constexpr std::array<Inline, kOpCount> kInline = make_inline_table();
/// next_scalar's opcodes push one input scalar (ValueStore::input_scalar) and nothing else.
constexpr bool scalar_ops_are_input_scalars() {
  for (Op op : detail::kScalarOps) {
    if (detail::kInputKind[info(op).byte] == detail::kNotInput || detail::kFast[info(op).byte].cls == detail::Fast::kSlow) return false;
  }
  return true;
}
static_assert(scalar_ops_are_input_scalars());

class Machine {
 public:
  Machine(core::Bytes data, std::uint64_t start, const core::Limits& limits,
          std::chrono::steady_clock::time_point deadline, PickleRun& run, const BuildHook* after_build, Predecode predecode)
      : decoder_(data, start, run.arena, limits), limits_(limits), deadline_(deadline), run_(run), v_(run.values),
        after_build_(after_build), input_(data), populated_(start) {
    run_.start = start;
    if (predecode == Predecode::kBefore ? Predecoder::framed(data, start)
                                        : predecode == Predecode::kAuto && Predecoder::worth_a_thread(data, start)) {
      pre_ = std::make_unique<Predecoder>(data, limits.max_string_length);
      if (predecode == Predecode::kBefore) {
        pre_->run_here(start);
      } else if (!pre_->start(start)) {
        pre_.reset();
      }
      if (pre_) pre_next_ = 0;
      // A pickle this large has its value table and memo grow past a Pool slab: start them at
      // the first size that is a block of its own (core::Pool::kSlabShift), whose room they then
      // grow into in place, instead of copying them at every doubling up to there (about 2 MiB
      // each). Capacity only: memory is used as entries are written, a huge page at a time (the
      // stack is left to grow: it is seldom deep, and its first write would clear 2 MiB).
      constexpr std::size_t kStartEntries = (std::size_t{2} << 20) / sizeof(ValueRef);
      v_.reserve(kStartEntries);
      memo_.reserve(kStartEntries);
    }
  }

  void run() {
    // The opcode count lives in a register; run_.opcodes is written back whenever run() leaves
    // (nothing reads it during the run).
    std::uint64_t opcodes = run_.opcodes;
    const std::uint64_t max_opcodes = limits_.max_opcodes;
    const std::uint64_t max_stack = limits_.max_stack_depth;
    const std::uint64_t max_values = limits_.max_value_nodes;
    const std::uint64_t max_memo = limits_.max_memo_entries;
    populate_ahead();
    for (;;) {
      ++opcodes;
      if (opcodes > max_opcodes || (opcodes & 0xFFF) == 0) [[unlikely]] {
        run_.opcodes = opcodes;
        if (decoder_.pos() + kPopulateMargin > populated_) populate_ahead();
        if (pre_) pre_->vm_at(decoder_.pos());
        if (opcodes > max_opcodes) {
          fail_at(decoder_.pos(), ErrorCode::kLimitExceeded, {}, fmt::format("max-opcodes: more than {} opcodes", max_opcodes));
          return;
        }
        if (std::chrono::steady_clock::now() > deadline_) {
          fail_at(decoder_.pos(), ErrorCode::kTimeout, {}, "max-time: the file's time budget is spent");
          return;
        }
      }
      // Most opcodes of a large pickle: binary scalars (one value and one stack item each) and
      // the MEMOIZEs after them, decoded in a run without an Instruction, up to the opcode
      // before the next periodic check (so the checks above fall where they would one opcode at
      // a time). A scalar cannot stop the run or add decoded bytes: it adds one stack item and
      // one value, so the run is cut short before the stack or value budget could be crossed,
      // and the scalar that crosses one is next()'s below, which reports it. A MEMOIZE that
      // could fail or has no item is left to step().
      const std::uint64_t budget_room = std::min(max_stack - std::min<std::uint64_t>(stack_.size(), max_stack),
                                                 max_values - std::min<std::uint64_t>(v_.size(), max_values));
      const std::uint64_t room =
          std::min<std::uint64_t>(budget_room, 1 + std::min<std::uint64_t>(0xFFF - (opcodes & 0xFFF), max_opcodes - opcodes));
      // Where the Predecoder has measured the run ahead on another CPU, it is taken from there.
      std::uint64_t taken = decoder_.pos() >= pre_next_ ? take_predecoded(room, max_memo) : 0;
      if (taken == 0) {
        taken = decoder_.run_of_scalars(
            room,
            [&](std::uint64_t at, Op, std::uint64_t text) {
              push(v_.input_scalar(at, static_cast<std::size_t>(text)));
              return Decoder::Take::kNext;
            },
            [&](std::uint64_t at) {
              return memoize_in_run(at, kNoValue, max_memo) ? Decoder::Take::kNext : Decoder::Take::kLeave;
            });
      }
      if (taken != 0) [[likely]] {
        opcodes += taken - 1;  // `opcodes` counted the first of them already
        continue;
      }
      if (!decoder_.next(ins_)) [[unlikely]] {
        run_.opcodes = opcodes;
        run_.error = decoder_.error();
        run_.end = run_.error->offset;
        return;
      }
      if (ins_.frame_violation || ins_.noncanonical) [[unlikely]] encoding_anomalies();
      if (kInline[static_cast<std::size_t>(ins_.op)] == Inline::kPushInput) [[likely]] {
        // A binary scalar: one value, one stack item. It cannot stop the run or add decoded
        // bytes, so only the stack and value budgets can be crossed.
        push(v_.input_scalar(ins_.offset, text_size(ins_.arg)));
        if (stack_.size() > max_stack || v_.size() > max_values) [[unlikely]] {
          if (!check_budgets()) {
            run_.opcodes = opcodes;
            return;
          }
        }
        continue;
      }
      if (!step(ins_)) [[unlikely]] {
        run_.opcodes = opcodes;
        run_.end = ins_.offset;
        return;
      }
      if (run_.stopped) [[unlikely]] {
        run_.opcodes = opcodes;
        run_.end = ins_.end();
        return;
      }
      if (stack_.size() > limits_.max_stack_depth || v_.size() > limits_.max_value_nodes ||
          run_.arena.bytes() > limits_.max_value_bytes) [[unlikely]] {
        if (!check_budgets()) {
          run_.opcodes = opcodes;
          return;
        }
      }
    }
  }

 private:
  /// A large input is a mapped file: instead of a page fault every few pages as the decoder walks
  /// it, its pages are mapped in ahead of the decoder, a window at a time. The window starts
  /// small and doubles while the decoder keeps reaching its end, so a short pickle followed by
  /// tensor bytes (a legacy torch.save file) maps in little it will not read; after a jump past
  /// it (joblib's arrays, which the loader reads itself) it starts small again.
  static constexpr std::uint64_t kPopulateFirst = std::uint64_t{256} << 10;
  static constexpr std::uint64_t kPopulateMax = std::uint64_t{8} << 20;
  static constexpr std::uint64_t kPopulateMargin = std::uint64_t{64} << 10;  ///< refill when the decoder is this close
  [[gnu::noinline]] void populate_ahead() {
    if (input_.size() <= core::MappedFile::kReadThreshold || populated_ >= input_.size()) return;  // smaller: read, not mapped
    // Past the window (a loader-read array was jumped over): start small again, as at the start.
    if (decoder_.pos() > populated_) window_ = kPopulateFirst;
    const std::uint64_t from = std::max(populated_, decoder_.pos());
    std::uint64_t to = std::min<std::uint64_t>(input_.size(), from + window_);
    // The Predecoder faults in the frames it measures, from the last one back: not twice.
    if (pre_) to = std::min(to, std::max(from, pre_->reached()));
    if (to <= from) return;
    core::populate_for_reading(input_.subspan(from, to - from));
    populated_ = to;
    window_ = std::min(window_ * 2, kPopulateMax);
  }

  /// A MEMOIZE in a run of scalars, stored as step() would; false (left to step(), which reports
  /// it) when there is no item above the MARK or the memo is full. `top`: the item to store, if
  /// take_predecoded wrote it and it is not on the stack yet; kNoValue: the stack's top.
  [[gnu::always_inline]] bool memoize_in_run(std::uint64_t at, ValueRef top, std::uint64_t max_memo) {
    if ((top == kNoValue && stack_.size() <= fence()) || memo_.size() >= max_memo) [[unlikely]] return false;
    const std::uint64_t idx = memo_.size();
    if (memo_.put(idx, top == kNoValue ? stack_.back() : top)) [[unlikely]] {
      ins_.offset = at;  // what the anomaly names
      ins_.op = Op::MEMOIZE;
      memo_overwrite(idx);
    }
    return true;
  }

  /// At most `room` opcodes of the Predecoder's run at the decoder's position, if it has one
  /// there: what run_of_scalars would take, without measuring each opcode in a chain. Returns
  /// how many were taken (0: none; run_of_scalars then decodes).
  [[gnu::noinline]] std::uint64_t take_predecoded(std::uint64_t room, std::uint64_t max_memo) {
    const std::uint64_t pos = decoder_.pos();
    if (!find_predecoded(pos)) return 0;
    const Predecoder::Run& r = pre_->run(pre_run_);
    if (!ValueStore::input_slot_fits(r.end)) {  // past 2 GiB input scalars are Nodes: run_of_scalars'
      pre_next_ = r.end;
      return 0;
    }
    const std::uint8_t* const lengths = pre_->lengths() + r.first;
    const std::uint32_t i0 = pre_i_;
    const std::uint32_t last = static_cast<std::uint32_t>(std::min<std::uint64_t>(r.count, i0 + room));
    // The values and stack items are written in place and counted at the end: the sizes stay in
    // registers (a push per opcode loaded and stored both sizes, a chain through memory).
    const ValueRef first = static_cast<ValueRef>(v_.size());
    std::uint32_t* const slots = v_.input_scalar_space(last - i0);
    ValueRef* const items = stack_.space(stack_pool_, last - i0);
    std::uint32_t* slot = slots;
    ValueRef* item = items;
    ValueRef ref = first;
    std::uint64_t at = pos;
    const std::uint8_t* length = lengths + i0;
    const std::uint8_t* const stop = lengths + last;
    for (; length != stop; ++length) {
      if (*length == Predecoder::kMemoizeLength) {
        // This batch's last scalar, if any, is the top of the stack.
        if (!memoize_in_run(at, slot == slots ? kNoValue : ref - 1, max_memo)) [[unlikely]] break;
        at += 1;
        continue;
      }
      std::uint64_t end, text;
      if (!scalar_end(*length, at, end, text)) [[unlikely]] break;  // never: the Predecoder measured it alike
      if (text >= ValueStore::kLongText) [[unlikely]] v_.add_long_text(ref);
      *slot++ = ValueStore::input_slot(at);
      *item++ = ref++;
      at = end;
    }
    v_.add_input_scalars(static_cast<std::size_t>(slot - slots));
    stack_.grow_into(static_cast<std::size_t>(item - items));
    const auto i = static_cast<std::uint32_t>(length - lengths);
    run_.predecoded += i - i0;
    decoder_.advance_to(at);
    pre_i_ = i;
    pre_pos_ = at;
    pre_next_ = at;
    return i - i0;
  }

  /// Moves the cursor over the Predecoder's frames and runs to the opcode at `pos`; true if a
  /// run has it, in the frame the decoder is in. Otherwise sets pre_next_, the next position
  /// worth asking about.
  bool find_predecoded(std::uint64_t pos) {
    constexpr std::uint64_t kRecheck = 16 << 10;  // while the frame ahead is not measured yet
    const bool finished = pre_->finished();       // (before frames(): final once it is true)
    const std::uint32_t frames = pre_->frames();
    if (frames == 0) {
      pre_next_ = finished ? UINT64_MAX : pos + kRecheck;
      return false;
    }
    for (;;) {
      if (pre_frame_ >= frames) {
        pre_next_ = UINT64_MAX;
        return false;
      }
      const Predecoder::Frame& f = pre_->frame(pre_frame_);
      if (f.end <= pos) {
        next_predecoded_frame();
        continue;
      }
      if (pos < f.begin) {
        pre_next_ = f.begin;
        return false;
      }
      if (!f.done()) {
        // Being measured, or never to be (the measuring stopped): decode on meanwhile.
        pre_next_ = pre_->finished() && !f.done() ? f.end : pos + kRecheck;
        return false;
      }
      if (f.end != decoder_.frame_end()) {  // not the frame the VM is in: not its stream
        pre_next_ = f.end;
        next_predecoded_frame();
        return false;
      }
      if (pre_run_ == kNoRun) {
        pre_run_ = f.first_run;
        pre_i_ = 0;
      }
      for (; pre_run_ < f.first_run + f.run_count; ++pre_run_, pre_i_ = 0) {
        const Predecoder::Run& r = pre_->run(pre_run_);
        if (r.end <= pos) continue;
        if (pre_i_ == 0) pre_pos_ = r.start;
        if (pos < pre_pos_) {
          pre_next_ = pre_pos_;
          return false;
        }
        // Inside the run: walk to pos (the VM stopped short of the run's end, or decoded on its own).
        const std::uint8_t* const lengths = pre_->lengths() + r.first;
        while (pre_pos_ < pos && pre_i_ < r.count) {
          const std::uint8_t code = lengths[pre_i_];
          std::uint64_t end = pre_pos_ + 1, text;
          if (code != Predecoder::kMemoizeLength && !scalar_end(code, pre_pos_, end, text)) break;
          pre_pos_ = end;
          ++pre_i_;
        }
        if (pre_pos_ == pos && pre_i_ < r.count) return true;
        // pos is not one of its opcodes: not the VM's stream; try the next run.
      }
      pre_next_ = f.end;
      next_predecoded_frame();
      return false;
    }
  }
  /// Where the scalar opcode at `at` ends, from its Predecoder length code (not kMemoizeLength):
  /// the code itself, or for kMeasureLength what the decoder measures; `text` is its text's
  /// size then (0 otherwise). False if the decoder cannot measure it.
  bool scalar_end(std::uint8_t code, std::uint64_t at, std::uint64_t& end, std::uint64_t& text) const {
    end = at + code;
    text = 0;
    return code != Predecoder::kMeasureLength || decoder_.measure_scalar(at, end, text);
  }
  void next_predecoded_frame() {
    ++pre_frame_;
    pre_run_ = kNoRun;
    pre_i_ = 0;
  }

  [[gnu::noinline]] void encoding_anomalies() {
    if (ins_.frame_violation) {
      anomaly(Anomaly::Kind::kFrameViolation,
              ins_.op == Op::FRAME ? "a FRAME begins before the previous frame ends"
                                   : "the opcode runs past the end of its FRAME");
    }
    if (ins_.noncanonical) anomaly(Anomaly::Kind::kNoncanonical, "argument text is not in the form CPython's pickler writes");
  }

  /// The size of a str/bytes argument, which decides whether its value is a long text.
  static std::size_t text_size(const Arg& a) {
    return a.kind == Arg::Kind::kText || a.kind == Arg::Kind::kBytes ? a.a.size() : 0;
  }

  /// The opcodes that make up nearly all of a large pickle (binary scalars and memo stores),
  /// inline in the loop; execute() handles every opcode, these included, and all errors.
  bool step(const Instruction& ins) {
    const Inline what = kInline[static_cast<std::size_t>(ins.op)];
    if (what == Inline::kPushInput) [[likely]] {
      push(v_.input_scalar(ins.offset, text_size(ins.arg)));
      return true;
    }
    if (what == Inline::kMemoize) {
      if (stack_.size() > fence()) return memo_put(memo_.size());
    } else if (what == Inline::kBinPut) {
      if (stack_.size() > fence()) return memo_put(static_cast<std::uint64_t>(ins.arg.i));  // one unsigned byte
    }
    return execute(ins);
  }

  // ---- errors and records ----
  void fail_at(std::uint64_t offset, ErrorCode code, std::string_view op, std::string detail) {
    run_.error = core::Error{code, offset, {}, std::string(op), std::move(detail)};
    run_.end = offset;
  }
  bool fail(ErrorCode code, std::string detail) {
    fail_at(ins_.offset, code, name(ins_.op), std::move(detail));
    return false;
  }
  bool underflow(std::size_t need) {
    return fail(ErrorCode::kStackUnderflow,
                fmt::format("needs {} item(s) above the current MARK, has {}", need, stack_.size() - fence()));
  }
  void anomaly(Anomaly::Kind kind, std::string detail) {
    run_.anomalies.push_back(Anomaly{kind, ins_.offset, ins_.op, std::move(detail)});
  }
  void event(Event::Kind kind, ValueRef subject, ValueRef arg = kNoValue, ValueRef arg2 = kNoValue) {
    run_.events.push_back(Event{kind, ins_.op, ins_.offset, subject, arg, arg2});
    run_.effects = true;
  }

  bool check_budgets() {
    if (stack_.size() > limits_.max_stack_depth) {
      return fail(ErrorCode::kLimitExceeded, fmt::format("max-stack: more than {} stack items", limits_.max_stack_depth));
    }
    if (v_.size() > limits_.max_value_nodes) {
      return fail(ErrorCode::kLimitExceeded, fmt::format("max-values: more than {} values", limits_.max_value_nodes));
    }
    if (run_.arena.bytes() > limits_.max_value_bytes) {
      return fail(ErrorCode::kLimitExceeded, fmt::format("max-value-bytes: more than {} decoded bytes", limits_.max_value_bytes));
    }
    return true;
  }

  bool check_depth(ValueRef ref) {
    if (v_.node(ref).depth > limits_.max_nesting) {
      return fail(ErrorCode::kLimitExceeded, fmt::format("max-nesting: containers nested deeper than {}", limits_.max_nesting));
    }
    return true;
  }

  // ---- stack ----
  [[nodiscard]] std::size_t fence() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(ValueRef v) { stack_.push_back(stack_pool_, v); }
  /// Pops one item above the fence; false (with an underflow error) if there is none.
  bool pop(ValueRef& out) {
    if (stack_.size() <= fence()) return underflow(1);
    out = stack_.back();
    stack_.pop_back();
    return true;
  }
  /// marker(): pops the top MARK and returns the stack size it recorded.
  bool marker(std::size_t& out) {
    if (marks_.empty()) return fail(ErrorCode::kMarkMissing, "could not find MARK");
    out = marks_.back();
    marks_.pop_back();
    return true;
  }
  ValueRef make_tuple_from(std::size_t start) {
    const ValueRef t = v_.tuple(ins_.offset, stack_.data() + start, stack_.size() - start);
    stack_.resize(stack_pool_, start, 0);
    return t;
  }

  // ---- the opcodes ----
  bool execute(const Instruction& ins) {
    const std::uint64_t off = ins.offset;
    const Arg& a = ins.arg;
    if (ValueStore::input_scalar_op(ins.op)) {
      // Binary scalars: the value is its opcode's bytes, read again from the input on demand
      // (8 bytes per value instead of a Node). EXT needs its code checked first.
      if ((ins.op == Op::EXT1 || ins.op == Op::EXT2 || ins.op == Op::EXT4) && a.i <= 0) {
        return fail(ErrorCode::kBadArgument, "EXT specifies code <= 0");
      }
      const ValueRef v = v_.input_scalar(off, text_size(a));
      if (ins.op == Op::NEXT_BUFFER) event(Event::Kind::kOutOfBandBuffer, v);
      if (ins.op == Op::EXT1 || ins.op == Op::EXT2 || ins.op == Op::EXT4) event(Event::Kind::kExtension, v);
      push(v);
      return true;
    }
    switch (ins.op) {
      case Op::BININT: case Op::BININT1: case Op::BININT2: case Op::LONG1: case Op::LONG4:
      case Op::BINSTRING: case Op::SHORT_BINSTRING: case Op::BINBYTES: case Op::SHORT_BINBYTES: case Op::BINBYTES8:
      case Op::BYTEARRAY8: case Op::NEXT_BUFFER: case Op::NONE: case Op::NEWTRUE: case Op::NEWFALSE:
      case Op::SHORT_BINUNICODE: case Op::BINUNICODE: case Op::BINUNICODE8: case Op::BINFLOAT:
      case Op::EXT1: case Op::EXT2: case Op::EXT4:
        break;  // input scalars, above
      case Op::INT:
      case Op::LONG:
        if (a.kind == Arg::Kind::kBool) {
          push(v_.scalar(Kind::kBool, off, a.i));
        } else if (a.kind == Arg::Kind::kBigInt) {
          push(v_.scalar(Kind::kBigInt, off, 0, 0, a.a));
        } else {
          push(v_.scalar(Kind::kInt, off, a.i));
        }
        return true;
      case Op::STRING:
        push(v_.scalar(Kind::kPy2Str, off, 0, 0, a.a));
        return true;
      case Op::READONLY_BUFFER: {
        if (stack_.size() <= fence()) return underflow(1);
        const ValueRef top = stack_.back();
        const Kind k = v_.node(top).kind;
        if (k == Kind::kByteArray || k == Kind::kBuffer) {
          const Node copy = v_.node(top);
          stack_.back() = v_.scalar(k, off, 0, 0, copy.text);
          v_.set_readonly(stack_.back());
        } else if (is_literal(k) && k != Kind::kBytes) {
          return fail(ErrorCode::kTypeError, fmt::format("memoryview() of a {} value", kind_name(k)));
        }
        return true;
      }
      case Op::UNICODE:
        push(v_.scalar(Kind::kStr, off, 0, 0, a.a));
        return true;
      case Op::FLOAT:
        push(v_.scalar(Kind::kFloat, off, 0, a.f));
        return true;
      case Op::EMPTY_LIST: push(v_.list(off, nullptr, 0)); return true;
      case Op::EMPTY_TUPLE: push(v_.tuple(off, nullptr, 0)); return true;
      case Op::EMPTY_DICT: push(v_.dict(off)); return true;
      case Op::EMPTY_SET: push(v_.set(off, false)); return true;
      case Op::APPEND:
        if (stack_.size() < 1 || stack_.size() - 1 <= fence()) return underflow(2);
        return do_append(stack_.size() - 1);
      case Op::APPENDS: {
        std::size_t x;
        if (!marker(x)) return false;
        return do_append(x);
      }
      case Op::LIST: {
        std::size_t i;
        if (!marker(i)) return false;
        const ValueRef l = v_.list(off, stack_.data() + i, stack_.size() - i);
        stack_.resize(stack_pool_, i, 0);
        push(l);
        return check_depth(l);
      }
      case Op::TUPLE: {
        std::size_t i;
        if (!marker(i)) return false;
        const ValueRef t = make_tuple_from(i);
        push(t);
        return check_depth(t);
      }
      case Op::TUPLE1:
      case Op::TUPLE2:
      case Op::TUPLE3: {
        const std::size_t n = ins.op == Op::TUPLE1 ? 1 : ins.op == Op::TUPLE2 ? 2 : 3;
        if (stack_.size() < n || stack_.size() - n < fence()) return underflow(n);
        const ValueRef t = make_tuple_from(stack_.size() - n);
        push(t);
        return check_depth(t);
      }
      case Op::DICT: {
        std::size_t i;
        if (!marker(i)) return false;
        if ((stack_.size() - i) % 2 != 0) return fail(ErrorCode::kTypeError, "odd number of items for DICT");
        const ValueRef d = v_.dict(off);
        for (std::size_t k = i + 1; k < stack_.size(); k += 2) {
          if (!dict_set(d, stack_[k - 1], stack_[k])) return false;
        }
        stack_.resize(stack_pool_, i, 0);
        push(d);
        return check_depth(d);
      }
      case Op::SETITEM:
        if (stack_.size() < 2) return underflow(3);
        return do_setitems(stack_.size() - 2);
      case Op::SETITEMS: {
        std::size_t x;
        if (!marker(x)) return false;
        return do_setitems(x);
      }
      case Op::ADDITEMS: {
        std::size_t mark;
        if (!marker(mark)) return false;
        return do_additems(mark);
      }
      case Op::FROZENSET: {
        std::size_t i;
        if (!marker(i)) return false;
        const ValueRef s = v_.set(off, true);
        for (std::size_t k = i; k < stack_.size(); ++k) {
          if (!v_.set_add(s, stack_[k])) return fail(ErrorCode::kTypeError, "unhashable item in FROZENSET");
        }
        stack_.resize(stack_pool_, i, 0);
        push(s);
        return check_depth(s);
      }
      case Op::POP:
        if (!marks_.empty() && marks_.back() == stack_.size()) {
          marks_.pop_back();  // _pickle.c: POP with a MARK on top discards the MARK
        } else {
          if (stack_.size() <= fence()) return underflow(1);
          stack_.pop_back();
        }
        return true;
      case Op::DUP:
        if (stack_.size() <= fence()) return underflow(1);
        push(stack_.back());
        return true;
      case Op::MARK:
        if (marks_.size() >= limits_.max_nesting) {
          return fail(ErrorCode::kLimitExceeded, fmt::format("max-nesting: more than {} open MARKs", limits_.max_nesting));
        }
        marks_.push_back(stack_.size());
        return true;
      case Op::POP_MARK: {
        std::size_t i;
        if (!marker(i)) return false;
        stack_.resize(stack_pool_, i, 0);
        return true;
      }
      case Op::GET:
      case Op::BINGET:
      case Op::LONG_BINGET: {
        const ValueRef v = a.i < 0 ? kNoValue : memo_.get(static_cast<std::uint64_t>(a.i));
        if (v == kNoValue) return fail(ErrorCode::kMemoMiss, fmt::format("memo value not found at index {}", a.i));
        push(v);
        return true;
      }
      case Op::PUT:
      case Op::BINPUT:
      case Op::LONG_BINPUT:
        if (stack_.size() <= fence()) return underflow(1);
        if (a.i < 0) return fail(ErrorCode::kBadMemoIndex, "negative PUT argument");
        return memo_put(static_cast<std::uint64_t>(a.i));
      case Op::MEMOIZE:
        if (stack_.size() <= fence()) return underflow(1);
        return memo_put(memo_.size());
      case Op::GLOBAL: {
        const ValueRef g = v_.global(GlobalRec{a.a, a.b, off, Op::GLOBAL, run_.protocol});
        event(Event::Kind::kGlobal, g);
        push(g);
        return true;
      }
      case Op::STACK_GLOBAL: {
        ValueRef name_v, module_v;
        if (!pop(name_v) || !pop(module_v)) return false;
        auto module = v_.as_text(module_v);
        auto qualname = v_.as_text(name_v);
        GlobalRec rec{{}, {}, off, Op::STACK_GLOBAL, run_.protocol};
        if (module && qualname) {
          rec.module = *module;
          rec.name = *qualname;
        } else {
          for (ValueRef operand : {module_v, name_v}) {
            const Kind k = v_.node(operand).kind;
            if (is_literal(k) && k != Kind::kPy2Str && k != Kind::kStr) {
              return fail(ErrorCode::kTypeError, fmt::format("STACK_GLOBAL requires str, got {}", kind_name(k)));
            }
          }
          // A name computed at load time (a call's result, a persistent object...), or a
          // py2 string whose meaning depends on the loader's encoding: not knowable statically.
          rec.resolved = false;
          rec.module = module.value_or(std::string_view{});
          rec.name = qualname.value_or(std::string_view{});
          rec.module_value = module_v;
          rec.name_value = name_v;
        }
        const ValueRef g = v_.global(rec);
        event(Event::Kind::kGlobal, g);
        push(g);
        return true;
      }
      case Op::REDUCE: {
        ValueRef args, callable;
        if (!pop(args) || !pop(callable)) return false;
        const Kind ck = v_.node(callable).kind;
        if (is_literal(ck)) return fail(ErrorCode::kTypeError, fmt::format("'{}' object is not callable", kind_name(ck)));
        const Kind ak = v_.node(args).kind;
        if (is_literal(ak) && ak != Kind::kTuple) {
          return fail(ErrorCode::kTypeError, fmt::format("REDUCE argument list must be a tuple, not {}", kind_name(ak)));
        }
        push_call(CallRec{callable, args, kNoValue, CallKind::kReduce, Op::REDUCE, off});
        return true;
      }
      case Op::BUILD: {
        if (stack_.size() < 2 || stack_.size() - 2 < fence()) return underflow(2);
        const ValueRef state = stack_.back();
        stack_.pop_back();
        const ValueRef inst = stack_.back();
        return do_build(inst, state);
      }
      case Op::INST: {
        std::size_t i;
        if (!marker(i)) return false;
        const ValueRef cls = v_.global(GlobalRec{a.a, a.b, off, Op::INST, run_.protocol});
        event(Event::Kind::kGlobal, cls);
        const ValueRef args = make_tuple_from(i);
        push_call(CallRec{cls, args, kNoValue, CallKind::kInst, Op::INST, off});
        return true;
      }
      case Op::OBJ: {
        std::size_t i;
        if (!marker(i)) return false;
        if (stack_.size() < i + 1) return underflow(1);
        const ValueRef args = make_tuple_from(i + 1);
        ValueRef cls;
        if (!pop(cls)) return false;
        const Kind ck = v_.node(cls).kind;
        if (is_literal(ck)) return fail(ErrorCode::kTypeError, fmt::format("'{}' object is not callable", kind_name(ck)));
        push_call(CallRec{cls, args, kNoValue, CallKind::kObj, Op::OBJ, off});
        return true;
      }
      case Op::NEWOBJ:
      case Op::NEWOBJ_EX: {
        ValueRef kwargs = kNoValue, args, cls;
        if (ins.op == Op::NEWOBJ_EX && !pop(kwargs)) return false;
        if (!pop(args) || !pop(cls)) return false;
        const std::string_view opname = name(ins.op);
        if (is_literal(v_.node(cls).kind)) {
          return fail(ErrorCode::kTypeError, fmt::format("{} class argument must be a type, not {}", opname, kind_name(v_.node(cls).kind)));
        }
        if (is_literal(v_.node(args).kind) && v_.node(args).kind != Kind::kTuple) {
          return fail(ErrorCode::kTypeError, fmt::format("{} args argument must be a tuple, not {}", opname, kind_name(v_.node(args).kind)));
        }
        if (kwargs != kNoValue && is_literal(v_.node(kwargs).kind) && v_.node(kwargs).kind != Kind::kDict) {
          return fail(ErrorCode::kTypeError, fmt::format("NEWOBJ_EX kwargs argument must be a dict, not {}", kind_name(v_.node(kwargs).kind)));
        }
        push_call(CallRec{cls, args, kwargs, ins.op == Op::NEWOBJ ? CallKind::kNewObj : CallKind::kNewObjEx, ins.op, off});
        return true;
      }
      case Op::PROTO: {
        if (a.i > 5) return fail(ErrorCode::kUnsupportedProtocol, fmt::format("unsupported pickle protocol: {}", a.i));
        if (ins.offset != run_.start) {
          const bool changes = static_cast<std::uint8_t>(a.i) != run_.protocol;
          anomaly(changes ? Anomaly::Kind::kProtoSwitch : Anomaly::Kind::kProtoRepeat,
                  fmt::format("PROTO {} after the start of the pickle (protocol was {})", a.i, run_.protocol));
        }
        run_.protocol = static_cast<std::uint8_t>(a.i);
        return true;
      }
      case Op::FRAME:
        return true;  // the decoder checked its length against the input
      case Op::PERSID: {
        const ValueRef pid = v_.scalar(Kind::kStr, off, 0, 0, a.a);
        const ValueRef obj = v_.persistent(PersistentRec{pid, off, Op::PERSID});
        event(Event::Kind::kPersistentLoad, obj);
        push(obj);
        return true;
      }
      case Op::BINPERSID: {
        ValueRef pid;
        if (!pop(pid)) return false;
        const ValueRef obj = v_.persistent(PersistentRec{pid, off, Op::BINPERSID});
        event(Event::Kind::kPersistentLoad, obj);
        push(obj);
        return true;
      }
      case Op::STOP: {
        ValueRef value;
        if (!pop(value)) return false;
        run_.root = value;
        run_.stopped = true;
        if (!stack_.empty() || !marks_.empty()) {
          anomaly(Anomaly::Kind::kLeftoverStack,
                  fmt::format("{} item(s) and {} MARK(s) left on the stack at STOP", stack_.size(), marks_.size()));
        }
        return true;
      }
    }
    return fail(ErrorCode::kUnknownOpcode, "opcode not handled");
  }

  void push_call(CallRec rec) {
    const ValueRef c = v_.call(rec);
    event(Event::Kind::kCall, c);
    push(c);
  }

  [[gnu::always_inline]] bool memo_put(std::uint64_t idx) {
    if (memo_.size() >= limits_.max_memo_entries && memo_.get(idx) == kNoValue) [[unlikely]] return memo_full();
    if (memo_.put(idx, stack_.back())) [[unlikely]] memo_overwrite(idx);
    return true;
  }
  [[gnu::noinline]] bool memo_full() {
    return fail(ErrorCode::kLimitExceeded, fmt::format("max-memo: more than {} memo entries", limits_.max_memo_entries));
  }
  [[gnu::noinline]] void memo_overwrite(std::uint64_t idx) {
    anomaly(Anomaly::Kind::kMemoOverwrite, fmt::format("memo index {} is stored twice", idx));
  }

  bool dict_set(ValueRef d, ValueRef key, ValueRef value) {
    bool replaced = false;
    if (!v_.dict_set(d, key, value, replaced)) {
      return fail(ErrorCode::kTypeError, fmt::format("unhashable type: '{}' used as a dict key", kind_name(v_.node(key).kind)));
    }
    if (replaced) anomaly(Anomaly::Kind::kDuplicateKey, "a dict key is set twice; the first value is built and dropped");
    return true;
  }

  /// do_append(x): items stack[x:] go to stack[x-1].
  bool do_append(std::size_t x) {
    const std::size_t len = stack_.size();
    if (x > len || x <= fence()) return underflow(1);
    if (len == x) return true;
    const ValueRef target = stack_[x - 1];
    const Kind k = v_.node(target).kind;
    if (k == Kind::kList) {
      v_.list_extend(target, stack_.data() + x, len - x);
      stack_.resize(stack_pool_, x, 0);
      return check_depth(target);
    }
    if (is_literal(k)) return fail(ErrorCode::kTypeError, fmt::format("'{}' object has no attribute 'extend' or 'append'", kind_name(k)));
    const ValueRef items = v_.list(ins_.offset, stack_.data() + x, len - x);
    stack_.resize(stack_pool_, x, 0);
    event(Event::Kind::kAppend, target, items);
    return true;
  }

  /// do_setitems(x): key/value pairs stack[x:] go into stack[x-1].
  bool do_setitems(std::size_t x) {
    const std::size_t len = stack_.size();
    if (x > len || x <= fence()) return underflow(1);
    if (len == x) return true;
    if ((len - x) % 2 != 0) return fail(ErrorCode::kTypeError, "odd number of items for SETITEMS");
    const ValueRef target = stack_[x - 1];
    const Kind k = v_.node(target).kind;
    if (k == Kind::kDict) {
      for (std::size_t i = x + 1; i < len; i += 2) {
        if (!dict_set(target, stack_[i - 1], stack_[i])) return false;
      }
      stack_.resize(stack_pool_, x, 0);
      return check_depth(target);
    }
    if (k == Kind::kList) {
      // list.__setitem__: an int index within range replaces an item.
      for (std::size_t i = x + 1; i < len; i += 2) {
        const Node& key = v_.node(stack_[i - 1]);
        const auto items = v_.items(target);
        if (key.kind != Kind::kInt && key.kind != Kind::kBool) {
          return fail(ErrorCode::kTypeError, fmt::format("list indices must be integers, not {}", kind_name(key.kind)));
        }
        const auto n = static_cast<std::int64_t>(items.size());
        const std::int64_t idx = key.i < 0 ? key.i + n : key.i;
        if (idx < 0 || idx >= n) return fail(ErrorCode::kTypeError, "list assignment index out of range");
        v_.list_set(target, static_cast<std::size_t>(idx), stack_[i]);
      }
      stack_.resize(stack_pool_, x, 0);
      return true;
    }
    if (is_literal(k)) return fail(ErrorCode::kTypeError, fmt::format("'{}' object does not support item assignment", kind_name(k)));
    for (std::size_t i = x + 1; i < len; i += 2) event(Event::Kind::kSetItem, target, stack_[i - 1], stack_[i]);
    stack_.resize(stack_pool_, x, 0);
    return true;
  }

  bool do_additems(std::size_t mark) {
    const std::size_t len = stack_.size();
    if (mark > len || mark <= fence()) return underflow(1);
    if (len == mark) return true;
    const ValueRef target = stack_[mark - 1];
    const Kind k = v_.node(target).kind;
    if (k == Kind::kSet) {
      for (std::size_t i = mark; i < len; ++i) {
        if (!v_.set_add(target, stack_[i])) return fail(ErrorCode::kTypeError, "unhashable item in ADDITEMS");
      }
      stack_.resize(stack_pool_, mark, 0);
      return check_depth(target);
    }
    if (is_literal(k)) return fail(ErrorCode::kTypeError, fmt::format("'{}' object has no attribute 'add'", kind_name(k)));
    const ValueRef items = v_.list(ins_.offset, stack_.data() + mark, len - mark);
    stack_.resize(stack_pool_, mark, 0);
    event(Event::Kind::kAppend, target, items);
    return true;
  }

  bool do_build(ValueRef inst, ValueRef state) {
    const Kind k = v_.node(inst).kind;
    if (!is_literal(k)) {
      event(Event::Kind::kBuild, inst, state);
      if (k == Kind::kCall) v_.set_call_state(inst, state);
      if (after_build_ != nullptr && *after_build_) {
        BuildHookResult r = (*after_build_)(v_, inst, state, decoder_.pos(), decoder_.frame_end());
        if (r.error) {
          run_.error = std::move(*r.error);
          return false;
        }
        if (r.resume_at) {
          run_.jumps.emplace_back(decoder_.pos(), *r.resume_at);
          decoder_.seek(*r.resume_at);
        }
      }
      return true;
    }
    // Built-in values have no __setstate__ and no __dict__: only an empty state is a no-op.
    const Node& s = v_.node(state);
    bool empty = s.kind == Kind::kNone;  // (literal targets: no hook, they are never wrappers)
    if (s.kind == Kind::kTuple) {
      auto parts = v_.items(state);
      if (parts.size() == 2 && v_.node(parts[0]).kind == Kind::kNone) {
        const Node& slots = v_.node(parts[1]);
        if (slots.kind != Kind::kDict) return fail(ErrorCode::kTypeError, "slot state is not a dictionary");
        empty = v_.entries(parts[1]).empty();
      }
    }
    if (!empty) return fail(ErrorCode::kTypeError, fmt::format("BUILD cannot set state on a {} value", kind_name(k)));
    return true;
  }

  Decoder decoder_;
  const core::Limits& limits_;
  std::chrono::steady_clock::time_point deadline_;
  PickleRun& run_;
  ValueStore& v_;
  const BuildHook* after_build_;
  Instruction ins_;
  core::Pool stack_pool_;  // before stack_, which lives in it
  /// A PoolVec, not a std::vector: its push_back is inline (vector's was a call per opcode).
  core::PoolVec<ValueRef> stack_;
  std::vector<std::size_t> marks_;
  Memo memo_;
  core::Bytes input_;
  std::uint64_t populated_;  ///< input_ is mapped in up to here (populate_ahead)
  std::uint64_t window_ = kPopulateFirst;
  // The Predecoder, if one was started, and the cursor over its frames and runs: frame
  // pre_frame_, its run pre_run_ (kNoRun: not looked at yet), the run's opcode pre_i_, at offset
  // pre_pos_ (valid once pre_i_ > 0). pre_next_: the position from which take_predecoded is
  // worth a try.
  static constexpr std::uint32_t kNoRun = UINT32_MAX;
  std::unique_ptr<Predecoder> pre_;
  std::uint32_t pre_frame_ = 0;
  std::uint32_t pre_run_ = kNoRun;
  std::uint32_t pre_i_ = 0;
  std::uint64_t pre_pos_ = 0;
  std::uint64_t pre_next_ = UINT64_MAX;
};

}  // namespace

PickleRun run_pickle(core::Bytes data, std::uint64_t start, const core::Limits& limits,
                     std::chrono::steady_clock::time_point deadline, const BuildHook* after_build, Predecode predecode) {
  PickleRun run;
  run.values = ValueStore(data);
  // Events grow one by one as calls are met; a doubling vector would copy them over and over
  // into fresh pages (a 1,024-tensor checkpoint: ~110 first-touch faults in the copies). One
  // reservation sized from the input instead: capacity only, a hint that the input can never
  // make large. At most 8,192 events (256 KiB): it comes from the huge-page heap (core/
  // heap_pages.hpp), where even untouched capacity moves later blocks into another 2 MiB page
  // (65,536 of them cost a plain-data 10 MB pickle 2 MiB of resident memory); beyond it, copies
  // within the huge-page heap are cheap.
  const std::uint64_t input = start < data.size() ? data.size() - start : 0;
  run.events.reserve(static_cast<std::size_t>(std::clamp<std::uint64_t>(input / 16, 64, std::uint64_t{1} << 13)));
  Machine(data, start, limits, deadline, run, after_build, predecode).run();
  return run;
}

}  // namespace brine::pickle
