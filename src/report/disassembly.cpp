#include "report/disassembly.hpp"

#include <fmt/format.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <vector>

#include "analysis/finding.hpp"
#include "core/text.hpp"
#include "pickle/arena.hpp"
#include "pickle/decoder.hpp"
#include "pickle/machine.hpp"
#include "pickle/numbers.hpp"
#include "scan/scanner.hpp"

namespace brine::report {

namespace {

using nlohmann::json;
using pickle::Arg;
using pickle::Op;

bool consumes_mark(Op op) {
  switch (op) {
    case Op::APPENDS: case Op::LIST: case Op::TUPLE: case Op::DICT: case Op::SETITEMS:
    case Op::ADDITEMS: case Op::FROZENSET: case Op::POP_MARK: case Op::INST: case Op::OBJ:
      return true;
    default:
      return false;
  }
}

std::string arg_text(const pickle::Instruction& ins) {
  const Arg& a = ins.arg;
  switch (a.kind) {
    case Arg::Kind::kNone: return {};
    case Arg::Kind::kInt: return std::to_string(a.i);
    case Arg::Kind::kBool: return a.i ? "True" : "False";
    case Arg::Kind::kBigInt:
      return a.a.size() <= 4096 ? pickle::le_bytes_to_decimal(a.a) : fmt::format("<int of {} bytes>", a.a.size());
    case Arg::Kind::kFloat: return pickle::float_repr(a.f);
    case Arg::Kind::kBytes: return core::py_repr_bytes(a.a, 200);
    case Arg::Kind::kText: return core::py_repr_str(a.a, 200);
    case Arg::Kind::kPair: return core::py_repr_str(std::string(a.a) + " " + std::string(a.b), 200);
  }
  return {};
}

json arg_json(const pickle::Instruction& ins) {
  const Arg& a = ins.arg;
  switch (a.kind) {
    case Arg::Kind::kNone: return nullptr;
    case Arg::Kind::kInt: return json{{"int", std::to_string(a.i)}};
    case Arg::Kind::kBool: return json{{"bool", a.i != 0}};
    case Arg::Kind::kBigInt: return json{{"int", pickle::le_bytes_to_decimal(a.a)}};
    case Arg::Kind::kFloat: {
      std::uint64_t bits;
      std::memcpy(&bits, &a.f, sizeof bits);
      return json{{"float_bits", fmt::format("{:016x}", bits)}};
    }
    case Arg::Kind::kBytes: return json{{"bytes", core::hex(a.a)}};
    case Arg::Kind::kText: return json{{"str", core::hex(a.a)}};
    case Arg::Kind::kPair: return json{{"pair", {core::hex(a.a), core::hex(a.b)}}};
  }
  return nullptr;
}

/// Lists the runs the scan hands over, in the order it ran them.
class Lister {
 public:
  Lister(std::ostream& out, const DisasmOptions& options) : out_(out), options_(options) {}

  void run(const std::string& member, core::Bytes data, const pickle::PickleRun& run) {
    Instance& in = instance(member, data);
    in.runs.push_back(Span{run.start, run.end, run.stopped, run.jumps});
    ok_ = list(in, data, run) && ok_;
  }

  /// Notes the bytes of each member no run read as opcodes, then writes the JSON document.
  void finish() {
    for (const auto& in : instances_) notes(in);
    if (options_.json) out_ << json_.dump(1, ' ', false, json::error_handler_t::replace) << '\n';
  }

  [[nodiscard]] bool ok() const { return ok_; }

 private:
  struct Span {
    std::uint64_t start = 0, end = 0;
    bool stopped = false;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> jumps;
  };
  /// One byte sequence the scan ran pickles from. A zip may hold two entries of the same name
  /// with different bytes: each is its own instance (numbered in the listing).
  struct Instance {
    std::string member;
    unsigned index = 0;            ///< how many instances of this member name came before
    const std::uint8_t* id = nullptr;  ///< identity only, never dereferenced (the bytes are gone)
    std::uint64_t size = 0;
    std::vector<Span> runs;
  };

  Instance& instance(const std::string& member, core::Bytes data) {
    unsigned same_name = 0;
    for (auto it = instances_.rbegin(); it != instances_.rend(); ++it) {
      if (it->member != member) continue;
      if (same_name == 0 && it->id == data.data() && it->size == data.size()) return *it;
      ++same_name;
    }
    instances_.push_back(Instance{member, same_name, data.data(), data.size(), {}});
    return instances_.back();
  }

  /// Gaps between the instance's top-level runs and the bytes after its last STOP. A run that
  /// starts inside another run's jump (a pickle joblib loads from the middle of array data) is
  /// part of that region, not of the member's sequence of pickles.
  void notes(const Instance& in) {
    std::vector<const Span*> top;
    for (const auto& r : in.runs) {
      bool embedded = false;
      for (const auto& other : in.runs) {
        for (const auto& [from, to] : other.jumps) embedded = embedded || (&other != &r && from <= r.start && r.start < to);
      }
      if (!embedded) top.push_back(&r);
    }
    std::stable_sort(top.begin(), top.end(), [](const Span* a, const Span* b) { return a->start < b->start; });
    for (std::size_t i = 0; i < top.size(); ++i) {
      if (!top[i]->stopped) return;  // what follows a failed run was never reached
      const std::uint64_t until = i + 1 < top.size() ? top[i + 1]->start : in.size;
      if (until <= top[i]->end) continue;
      note(in, top[i]->end, until,
           fmt::format("{} bytes {} are not read as opcodes", until - top[i]->end, i + 1 < top.size() ? "between two pickles" : "after the last STOP"));
    }
  }

  static std::string where(const Instance& in) {
    std::string w = in.member.empty() ? "" : " in " + core::display_text(in.member);
    if (in.index > 0) w += fmt::format(" (copy {} of that name)", in.index + 1);
    return w;
  }

  void note(const Instance& in, std::uint64_t start, std::uint64_t end, const std::string& text) {
    if (options_.json) {
      json_.push_back({{"member", in.member}, {"instance", in.index}, {"start", start}, {"end", end}, {"note", text}});
    } else {
      out_ << fmt::format("--- {} (offsets {} to {}){} ---\n", text, start, end, where(in));
    }
  }

  void emit(const pickle::Instruction& ins, json& instructions, int& indent) {
    if (options_.json) {
      instructions.push_back({{"offset", ins.offset}, {"op", std::string(pickle::name(ins.op))}, {"arg", arg_json(ins)}});
    } else {
      line(ins, indent);
    }
  }

  void line(const pickle::Instruction& ins, int& indent) {
    if (consumes_mark(ins.op) && indent > 0) --indent;
    const std::uint8_t byte = pickle::info(ins.op).byte;
    const std::string code = byte >= 0x20 && byte < 0x7f ? std::string(1, static_cast<char>(byte)) : fmt::format("\\x{:02x}", byte);
    std::string text = fmt::format("{:>8}: {:<4} {}{:<16} {}", ins.offset, code, std::string(static_cast<std::size_t>(indent) * 4, ' '),
                                   pickle::name(ins.op), arg_text(ins));
    if (ins.frame_violation) text += "   <- crosses a FRAME boundary";
    out_ << core::display_text(text) << '\n';
    if (ins.op == Op::MARK) ++indent;
  }

  /// Re-decodes one run from run.start: every instruction before run.end (through STOP when the
  /// run stopped; through the opcode the VM refused when it failed executing one), resuming at a
  /// jump's `to` where the run did. Returns false if the run stopped
  /// on an error, or the listing cannot follow the run (a brine bug, reported, never silent).
  bool list(const Instance& in, core::Bytes data, const pickle::PickleRun& run) {
    pickle::StringArena arena;
    pickle::Decoder decoder(data, run.start, arena, options_.limits);
    json instructions = json::array(), jumps = json::array();
    if (!options_.json) out_ << fmt::format("--- pickle at offset {}{} ---\n", run.start, where(in));
    int indent = 0;
    std::size_t next_jump = 0;
    std::uint64_t count = 0;
    std::string error, error_kind;
    bool stopped = false;
    for (;;) {
      while (next_jump < run.jumps.size() && decoder.pos() == run.jumps[next_jump].first) {
        const auto [from, to] = run.jumps[next_jump++];
        if (options_.json) {
          jumps.push_back({{"from", from}, {"to", to}});
        } else {
          out_ << fmt::format("{:>8}: raw array data [{}, {}) read by joblib; decoding resumes at {}\n", from, from, to, to);
        }
        decoder.seek(to);
      }
      if (run.error && decoder.pos() == run.end) {
        error = run.error->describe();
        // The VM fails on the opcode at run.end: it did not decode ("decode"), or it decoded and
        // the VM refused to execute it ("execute": listed, since the VM read it), or the VM
        // stopped before reading it (a limit checked between opcodes: "limit").
        pickle::Instruction failed;
        if (!decoder.next(failed)) {
          error_kind = "decode";
        } else if (!run.error->opcode.empty() && run.error->opcode == pickle::name(failed.op)) {
          error_kind = "execute";
          emit(failed, instructions, indent);
        } else {
          error_kind = "limit";
        }
        break;
      }
      // The VM counts every opcode it read, including the one it failed on: more is a mismatch.
      if (++count > run.opcodes) {
        error = fmt::format("brine bug: the listing passed the run's {} opcodes without reaching its end at offset {}", run.opcodes, run.end);
        break;
      }
      pickle::Instruction ins;
      if (!decoder.next(ins)) {
        error = fmt::format("brine bug: the listing fails at offset {} ({}) where the run did not", ins.offset, decoder.error().describe());
        break;
      }
      emit(ins, instructions, indent);
      if (ins.op == Op::STOP) {
        if (!run.stopped || ins.end() != run.end || next_jump != run.jumps.size()) {
          error = fmt::format("brine bug: the listing reaches STOP at offset {}, the run ended at {}", ins.offset, run.end);
        }
        stopped = error.empty();
        break;
      }
    }
    if (error.empty() && !stopped) error = "brine bug: the listing ended without STOP or error";
    if (options_.json) {
      json entry{{"member", in.member}, {"instance", in.index}, {"start", run.start}, {"end", run.end}, {"instructions", std::move(instructions)}, {"jumps", std::move(jumps)}};
      if (!error.empty()) {
        entry["error"] = error;
        if (!error_kind.empty()) entry["error_kind"] = error_kind;
      }
      json_.push_back(std::move(entry));
    } else if (!error.empty()) {
      out_ << "error: " << core::display_text(error) << '\n';
    }
    return error.empty();
  }

  std::ostream& out_;
  const DisasmOptions& options_;
  json json_ = json::array();
  std::vector<Instance> instances_;  ///< in the order of their first run
  bool ok_ = true;
};

/// The scan's verdict and findings after the listings: what the analyst reads the opcodes for.
void write_summary(std::ostream& out, const scan::FileReport& report) {
  out << fmt::format("=== scan of {}: {} ({}, {} pickle(s), {} opcode(s)) ===\n", core::display_text(report.path),
                     analysis::verdict_name(report.verdict), core::display_text(report.container), report.pickles, report.opcodes);
  for (const auto& f : report.findings) {
    out << fmt::format("  {:<10} {} {}@{}: {}\n", analysis::verdict_name(f.impact), core::display_text(f.rule),
                       f.member.empty() ? std::string() : core::display_text(f.member) + " ", f.offset, core::display_text(f.message));
  }
}

}  // namespace

bool write_disassembly(std::ostream& out, core::Bytes data, const std::string& path,
                       std::shared_ptr<const rules::RuleSet> rules, const DisasmOptions& options) {
  Lister lister(out, options);
  scan::ScanOptions scan_options;
  scan_options.limits = options.limits;
  scan_options.compute_sha256 = false;
  scan_options.on_pickle = [&](const std::string& member, core::Bytes bytes, const pickle::PickleRun& run) { lister.run(member, bytes, run); };
  const scan::Scanner scanner(std::move(rules), scan_options);
  const scan::FileReport report = scanner.scan_bytes(data, path);
  lister.finish();
  if (!options.json) {
    if (data.empty()) out << core::display_text(path) << ": empty file\n";
    write_summary(out, report);
  }
  // Exit 0 only when everything was read: every run reached STOP and the scan hit no error (an
  // unreadable container, a limit, a file no loader reads).
  bool scan_error = data.empty() || !report.recognized;
  for (const auto& f : report.findings) scan_error = scan_error || f.impact == analysis::Verdict::kError;
  return lister.ok() && !scan_error;
}

}  // namespace brine::report
