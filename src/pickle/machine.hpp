// The symbolic pickle virtual machine.
//
// It implements the stack, mark stack and memo semantics of CPython 3.11's _pickle.c for every
// opcode of protocols 0-5 — including the "fence" that keeps opcodes from reaching below the
// current MARK, POP discarding a MARK, MEMOIZE indexing by the number of memo entries, and the
// protocol-dependent behaviour of find_class — but it never executes anything: globals, calls,
// BUILDs, method calls through SETITEM/APPEND on non-builtin objects, persistent loads and
// extension codes become Events recording what would happen, with which values, at which offset.
//
// A run stops at STOP, at the first input error, or at a limit. Whatever happened before a
// failure is kept: a payload that runs before a malformed opcode is still in `events`.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/byte_reader.hpp"
#include "core/error.hpp"
#include "core/limits.hpp"
#include "pickle/arena.hpp"
#include "pickle/value.hpp"

namespace brine::pickle {

struct Event {
  enum class Kind : std::uint8_t {
    kGlobal,           ///< subject: the kGlobal node (GLOBAL, STACK_GLOBAL, INST)
    kCall,             ///< subject: the kCall node (REDUCE, NEWOBJ, NEWOBJ_EX, INST, OBJ)
    kBuild,            ///< subject: the object given state; arg: the state
    kSetItem,          ///< subject[arg] = arg2 on an object that is not a plain dict/list
    kAppend,           ///< subject.extend/append/add(arg) on an object that is not a plain list/set; arg: a list of the items
    kPersistentLoad,   ///< subject: the kPersistent node
    kExtension,        ///< subject: the kExt node
    kOutOfBandBuffer,  ///< subject: the kBuffer node
  };
  Kind kind;
  Op op;
  std::uint64_t offset;
  ValueRef subject;
  ValueRef arg = kNoValue;
  ValueRef arg2 = kNoValue;
};

/// Something CPython would accept but a strict reader, or CPython's own pickler, would not.
struct Anomaly {
  enum class Kind : std::uint8_t {
    kFrameViolation,   ///< an opcode crosses a FRAME end (pickle.py rejects, _pickle.c accepts)
    kNoncanonical,     ///< a protocol-0 argument written in a form no pickler emits
    kProtoSwitch,      ///< PROTO after the start of the stream, changing the protocol
    kProtoRepeat,      ///< PROTO after the start of the stream, same protocol
    kLeftoverStack,    ///< STOP left items or MARKs behind
    kDuplicateKey,     ///< a dict literal sets the same key twice (the first value is built, then dropped)
    kMemoOverwrite,    ///< PUT to a memo index that is already set
  };
  Kind kind;
  std::uint64_t offset;
  Op op;
  std::string detail;
};

struct PickleRun {
  std::uint64_t start = 0;           ///< offset of the first opcode
  std::uint64_t end = 0;             ///< offset just past STOP (or where decoding stopped)
  StringArena arena;                 ///< owns decoded text; values point into it or the input
  ValueStore values;
  std::vector<Event> events;
  std::vector<Anomaly> anomalies;
  std::optional<core::Error> error;  ///< why the run stopped before STOP (input error or limit)
  ValueRef root = kNoValue;          ///< what STOP returned
  /// Where a BuildHook moved decoding: (just past BUILD, where decoding resumed), in order. The
  /// bytes in between were read by the loader itself (joblib array data), not as opcodes.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> jumps;
  std::uint64_t opcodes = 0;
  std::uint64_t predecoded = 0;      ///< of them, taken from a Predecoder's runs (a statistic)
  std::uint8_t protocol = 0;         ///< protocol in force at the end (PROTO), 0 if none
  bool stopped = false;              ///< reached STOP
  bool effects = false;              ///< something was imported, called, built or loaded
};

/// Loaders that read raw bytes out of the middle of a pickle stream (joblib's NumpyUnpickler
/// reads array data right after the BUILD of a NumpyArrayWrapper) are modelled by a hook the
/// VM calls after every BUILD on an object.
struct BuildHookResult {
  std::optional<std::uint64_t> resume_at;  ///< continue decoding here instead of after BUILD
  std::optional<core::Error> error;        ///< the loader would fail reading those bytes
};
/// `pos` is just past BUILD; `frame_end` is the end of the FRAME BUILD was read from (0 outside
/// frames), where pickle.py's buffered file position is.
using BuildHook = std::function<BuildHookResult(const ValueStore& values, ValueRef inst, ValueRef state, std::uint64_t pos,
                                                std::uint64_t frame_end)>;

/// Whether a framed pickle's frames are measured on a second CPU while the VM runs
/// (pickle::Predecoder). The run's result is the same either way.
enum class Predecode : std::uint8_t {
  kAuto,    ///< when the pickle is large (Predecoder::kMinInput) and framed, on a second thread
  kOff,     ///< never
  kBefore,  ///< whenever it is framed, all of its frames, on the calling thread before the run
            ///< (tests: every run it records is there when the VM gets there)
};

/// Runs one pickle from `start` until STOP. `data` must outlive the run: its text values view
/// it, and its binary scalars are read from it (ValueStore::input_scalar). `deadline` bounds wall time (limits.max_file_time
/// is applied by the caller across all pickles of a file).
PickleRun run_pickle(core::Bytes data, std::uint64_t start, const core::Limits& limits,
                     std::chrono::steady_clock::time_point deadline, const BuildHook* after_build = nullptr,
                     Predecode predecode = Predecode::kAuto);

std::string_view anomaly_name(Anomaly::Kind kind);

}  // namespace brine::pickle
