#include "report/disassembly.hpp"

#include <fmt/format.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "container/npy.hpp"
#include "container/sniff.hpp"
#include "container/zip_archive.hpp"
#include "core/text.hpp"
#include "pickle/arena.hpp"
#include "pickle/decoder.hpp"
#include "pickle/numbers.hpp"

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

class Lister {
 public:
  Lister(std::ostream& out, const DisasmOptions& options) : out_(out), options_(options) {}

  /// Lists consecutive pickles of one stream; `max_pickles` stops early (legacy torch files).
  bool stream(core::Bytes data, const std::string& member, std::uint64_t max_pickles = UINT64_MAX) {
    std::uint64_t pos = 0, count = 0;
    bool ok = true;
    while (pos < data.size() && count < max_pickles) {
      if (count > 0 && !looks_like_pickle(data, pos)) {
        note(member, pos, fmt::format("{} trailing bytes after STOP", data.size() - pos));
        break;
      }
      ++count;
      ok = one(data, pos, member) && ok;
      if (!last_stopped_) break;
      pos = last_end_;
    }
    if (count == max_pickles && last_stopped_ && pos < data.size()) note(member, pos, fmt::format("{} bytes of raw storage data follow", data.size() - pos));
    return ok;
  }

  void finish() {
    if (options_.json) out_ << json_.dump(1, ' ', false, json::error_handler_t::replace) << '\n';
  }

 private:
  bool looks_like_pickle(core::Bytes data, std::uint64_t pos) {
    pickle::StringArena arena;
    pickle::Decoder d(data, pos, arena, options_.limits);
    pickle::Instruction ins;
    return d.next(ins);
  }

  void note(const std::string& member, std::uint64_t pos, const std::string& text) {
    if (options_.json) {
      json_.push_back({{"member", member}, {"start", pos}, {"note", text}});
    } else {
      out_ << fmt::format("{}: {}\n", pos, core::display_text(text));
    }
  }

  bool one(core::Bytes data, std::uint64_t start, const std::string& member) {
    pickle::StringArena arena;
    pickle::Decoder decoder(data, start, arena, options_.limits);
    json instructions = json::array();
    if (!options_.json) out_ << fmt::format("--- pickle at offset {}{} ---\n", start, member.empty() ? "" : " in " + core::display_text(member));
    int indent = 0;
    last_stopped_ = false;
    std::uint64_t count = 0;
    std::string error;
    for (;;) {
      if (++count > options_.limits.max_opcodes) {
        error = fmt::format("more than {} opcodes", options_.limits.max_opcodes);
        break;
      }
      auto ins = decoder.next_result();
      if (!ins) {
        error = ins.error().describe();
        break;
      }
      if (options_.json) {
        instructions.push_back({{"offset", ins->offset}, {"op", std::string(pickle::name(ins->op))}, {"arg", arg_json(*ins)}});
      } else {
        if (consumes_mark(ins->op) && indent > 0) --indent;
        const std::uint8_t byte = pickle::info(ins->op).byte;
        const std::string code = byte >= 0x20 && byte < 0x7f ? std::string(1, static_cast<char>(byte)) : fmt::format("\\x{:02x}", byte);
        std::string line = fmt::format("{:>8}: {:<4} {}{:<16} {}", ins->offset, code, std::string(static_cast<std::size_t>(indent) * 4, ' '),
                                       pickle::name(ins->op), arg_text(*ins));
        if (ins->frame_violation) line += "   <- crosses a FRAME boundary";
        out_ << core::display_text(line) << '\n';
        if (ins->op == Op::MARK) ++indent;
      }
      if (ins->op == Op::STOP) {
        last_stopped_ = true;
        last_end_ = ins->end();
        break;
      }
    }
    if (options_.json) {
      json entry{{"member", member}, {"start", start}, {"instructions", std::move(instructions)}};
      if (!error.empty()) entry["error"] = error;
      json_.push_back(std::move(entry));
    } else if (!error.empty()) {
      out_ << "error: " << core::display_text(error) << '\n';
    }
    return error.empty();
  }

  std::ostream& out_;
  const DisasmOptions& options_;
  json json_ = json::array();
  bool last_stopped_ = false;
  std::uint64_t last_end_ = 0;
};

}  // namespace

bool write_disassembly(std::ostream& out, core::Bytes data, const std::string& path, const DisasmOptions& options) {
  Lister lister(out, options);
  bool ok = true;
  switch (container::sniff(data)) {
    case container::Format::kZip: {
      auto archive = container::ZipArchive::open(data);
      if (!archive) {
        out << "error: " << core::display_text(archive.error().describe()) << '\n';
        return false;
      }
      for (const auto& e : archive->entries()) {
        bool pickle_member = e.name.ends_with(".pkl") || e.name.ends_with(".debug_pkl");
        if (!pickle_member && e.size > 0) {
          auto head = archive->read_prefix(e, 2);
          pickle_member = head && container::sniff(core::Bytes(head->data(), head->size())) == container::Format::kPickle;
        }
        if (!pickle_member) continue;
        auto bytes = archive->read(e, options.limits.max_member_bytes);
        if (!bytes) {
          out << "error: " << core::display_text(bytes.error().describe()) << '\n';
          ok = false;
          continue;
        }
        ok = lister.stream(core::Bytes(bytes->data(), bytes->size()), e.name) && ok;
      }
      break;
    }
    case container::Format::kEmpty:
      out << core::display_text(path) << ": empty file\n";
      return false;
    case container::Format::kNpy: {
      auto header = container::parse_npy_header(data, options.limits.max_npy_header_bytes);
      if (!header) {
        out << "error: " << core::display_text(header.error().describe()) << '\n';
        return false;
      }
      if (!header->has_object) {
        out << fmt::format("{}: .npy array of dtype {}: no pickle\n", core::display_text(path), core::display_text(header->descr));
        return true;
      }
      // Offsets in this listing are relative to the pickle, which starts after the header.
      ok = lister.stream(data.subspan(header->data_offset), fmt::format("npy data at offset {}", header->data_offset));
      break;
    }
    default:
      ok = lister.stream(data, {}, container::is_torch_legacy_magic(data) ? 5 : UINT64_MAX);
  }
  lister.finish();
  return ok;
}

}  // namespace brine::report
