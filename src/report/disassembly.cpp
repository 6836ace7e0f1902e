#include "report/disassembly.hpp"

#include <fmt/format.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include <map>
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
    auto [it, fresh] = members_.try_emplace(member);
    MemberState& state = it->second;
    if (fresh) order_.push_back(member);
    // Bytes between two runs of the same member data were not read as opcodes by the scan.
    if (!fresh && state.last_stopped && state.size == data.size() && run.start > state.last_end) {
      note(member, state.last_end, run.start, fmt::format("{} bytes between two pickles are not read as opcodes", run.start - state.last_end));
    }
    ok_ = list(member, data, run) && ok_;
    state.size = data.size();
    state.last_end = run.end;
    state.last_stopped = run.stopped;
  }

  /// Notes the bytes after each member's last STOP, then writes the JSON document.
  void finish() {
    for (const auto& member : order_) {
      const MemberState& s = members_.at(member);
      if (s.last_stopped && s.last_end < s.size) {
        note(member, s.last_end, s.size, fmt::format("{} bytes after the last STOP are not read as opcodes", s.size - s.last_end));
      }
    }
    if (options_.json) out_ << json_.dump(1, ' ', false, json::error_handler_t::replace) << '\n';
  }

  [[nodiscard]] bool ok() const { return ok_; }
  [[nodiscard]] std::uint64_t runs() const { return runs_; }

 private:
  struct MemberState {
    std::uint64_t size = 0;
    std::uint64_t last_end = 0;
    bool last_stopped = false;
  };

  void note(const std::string& member, std::uint64_t start, std::uint64_t end, const std::string& text) {
    if (options_.json) {
      json_.push_back({{"member", member}, {"start", start}, {"end", end}, {"note", text}});
    } else {
      out_ << fmt::format("--- {} (offsets {} to {}){} ---\n", text, start, end, member.empty() ? "" : " in " + core::display_text(member));
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
  /// run stopped), resuming at a jump's `to` where the run did. Returns false if the run stopped
  /// on an error, or the listing cannot follow the run (a brine bug, reported, never silent).
  bool list(const std::string& member, core::Bytes data, const pickle::PickleRun& run) {
    ++runs_;
    pickle::StringArena arena;
    pickle::Decoder decoder(data, run.start, arena, options_.limits);
    json instructions = json::array(), jumps = json::array();
    if (!options_.json) out_ << fmt::format("--- pickle at offset {}{} ---\n", run.start, member.empty() ? "" : " in " + core::display_text(member));
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
        pickle::Instruction probe;
        error_kind = decoder.next(probe) ? "execute" : "decode";
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
      if (options_.json) {
        instructions.push_back({{"offset", ins.offset}, {"op", std::string(pickle::name(ins.op))}, {"arg", arg_json(ins)}});
      } else {
        line(ins, indent);
      }
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
      json entry{{"member", member}, {"start", run.start}, {"end", run.end}, {"instructions", std::move(instructions)}, {"jumps", std::move(jumps)}};
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
  std::map<std::string, MemberState> members_;
  std::vector<std::string> order_;  ///< members in the order of their first run
  std::uint64_t runs_ = 0;
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
  return lister.ok() && !data.empty() && report.recognized;
}

}  // namespace brine::report
