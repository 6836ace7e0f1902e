// JSON of one pickle run for `brine inspect --json` (schema: docs/inspect.md).
//
// The value graph can be deeper than any recursion limit (a list appended into a list after the
// outer one was nested elsewhere keeps no depth bound) and can share and cycle, so the writer
// walks it with an explicit task stack and writes each shared value once.
#include <fmt/format.h>

#include <bit>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "core/text.hpp"
#include "pickle/numbers.hpp"
#include "report/inspect.hpp"

namespace brine::report {

using pickle::CallKind;
using pickle::Event;
using pickle::Kind;
using pickle::Node;
using pickle::PickleRun;
using pickle::ValueRef;
using pickle::ValueStore;

namespace {

/// Strings and bytes at least this long are written once and referred to by id afterwards: a
/// memo GET of a long string repeated a million times must not repeat its text.
constexpr std::size_t kSharedTextBytes = 64;
/// Big integers wider than this are written as hex bytes: decimal conversion is quadratic.
constexpr std::size_t kMaxDecimalIntBytes = 2048;

std::string_view call_kind_name(CallKind k) {
  switch (k) {
    case CallKind::kReduce: return "reduce";
    case CallKind::kNewObj: return "newobj";
    case CallKind::kNewObjEx: return "newobj_ex";
    case CallKind::kInst: return "inst";
    case CallKind::kObj: return "obj";
  }
  return "?";
}

std::string_view event_name(Event::Kind k) {
  switch (k) {
    case Event::Kind::kGlobal: return "global";
    case Event::Kind::kCall: return "call";
    case Event::Kind::kBuild: return "build";
    case Event::Kind::kSetItem: return "setitem";
    case Event::Kind::kAppend: return "append";
    case Event::Kind::kPersistentLoad: return "persistent_load";
    case Event::Kind::kExtension: return "extension";
    case Event::Kind::kOutOfBandBuffer: return "buffer";
  }
  return "?";
}

/// Values Python may share between places (and that can be part of a cycle): they get an id.
bool has_identity(const ValueStore& v, ValueRef ref) {
  const Node& n = v.node(ref);
  switch (n.kind) {
    // The empty tuple and frozenset are excluded: CPython's empty tuple is one singleton, so
    // identity there says nothing about the pickle.
    case Kind::kTuple:
    case Kind::kFrozenSet: return !v.items(ref).empty();
    case Kind::kList:
    case Kind::kDict:
    case Kind::kSet:
    case Kind::kByteArray:
    case Kind::kCall:
    case Kind::kPersistent:
    case Kind::kBuffer: return true;
    case Kind::kStr:
    case Kind::kBytes:
    case Kind::kPy2Str: return n.text.size() >= kSharedTextBytes;
    default: return false;
  }
}

}  // namespace

/// Writes one run. Tasks are literal JSON text, a value, or a [key, value] pair; a value's
/// children are pushed in reverse so they pop in order. Items of an array carry their own
/// separator, so that past the output budget the rest of an array can be dropped (one
/// {"t":"elided"} marks the cut) and the JSON stays valid with output bounded by what is open.
class RunJson {
 public:
  RunJson(InspectJsonWriter& w, const PickleRun& run) : w_(w), run_(run), v_(run.values), written_(v_.size(), false) {
    for (std::uint32_t i = 0; i < run.events.size(); ++i) {
      const Event& e = run.events[i];
      if (e.kind == Event::Kind::kBuild || e.kind == Event::Kind::kSetItem || e.kind == Event::Kind::kAppend) {
        if (v_.node(e.subject).kind == Kind::kCall) by_subject_[e.subject].push_back(i);
      }
    }
  }

  void write(const std::string& member) {
    std::string head = "{\"member\":";
    json_text(head, member);
    head += fmt::format(",\"start\":{},\"end\":{},\"stopped\":{},\"protocol\":{},\"opcodes\":{},\"effects\":{}", run_.start,
                        run_.end, run_.stopped, run_.protocol, run_.opcodes, run_.effects);
    head += ",\"error\":";
    if (run_.error) {
      const auto& e = *run_.error;
      head += fmt::format("{{\"code\":\"{}\",\"offset\":{},\"opcode\":", core::error_slug(e.code), e.offset);
      json_text(head, e.opcode);
      head += ",\"message\":";
      json_text(head, e.describe());
      head += '}';
    } else {
      head += "null";
    }
    head += ",\"anomalies\":[";
    for (std::size_t i = 0; i < run_.anomalies.size() && head.size() < (1u << 20); ++i) {
      const auto& a = run_.anomalies[i];
      head += fmt::format("{}{{\"kind\":\"{}\",\"offset\":{},\"op\":\"{}\",\"detail\":", i ? "," : "", pickle::anomaly_name(a.kind),
                          a.offset, pickle::name(a.op));
      json_text(head, a.detail);
      head += '}';
    }
    head += "],\"root\":";
    w_.emit(head);
    if (run_.root == pickle::kNoValue) {
      w_.emit("null");
    } else {
      value(run_.root);
    }
    w_.emit(",\"events\":[");
    for (std::size_t i = 0; i < run_.events.size(); ++i) {
      if (i) w_.emit(",");
      if (w_.over_budget()) {
        w_.truncated_ = true;
        w_.emit("{\"event\":\"elided\"}");
        break;
      }
      event(run_.events[i]);
    }
    w_.emit("]");
    w_.emit(w_.truncated_ ? ",\"truncated\":true}" : ",\"truncated\":false}");
  }

 private:
  struct Task {
    enum class Kind : std::uint8_t { kLiteral, kValue, kPair } kind;
    ValueRef a = pickle::kNoValue;  ///< the value, or the pair's key
    ValueRef b = pickle::kNoValue;  ///< the pair's value
    std::string_view literal;
    bool item = false;              ///< an array item: `comma` says whether one precedes it
    bool comma = false;
  };

  static void json_text(std::string& out, std::string_view s) {
    if (!core::append_json_string(out, s)) core::append_json_string(out, "<" + core::hex(s) + ">");
  }

  void event(const Event& e) {
    w_.emit(fmt::format("{{\"event\":\"{}\",\"op\":\"{}\",\"offset\":{},\"subject\":", event_name(e.kind), pickle::name(e.op), e.offset));
    value(e.subject);
    switch (e.kind) {
      case Event::Kind::kBuild:
        w_.emit(",\"state\":");
        value(e.arg);
        break;
      case Event::Kind::kSetItem:
        w_.emit(",\"key\":");
        value(e.arg);
        w_.emit(",\"value\":");
        value(e.arg2);
        break;
      case Event::Kind::kAppend:
        w_.emit(",\"items\":");
        value(e.arg);
        break;
      default: break;
    }
    w_.emit("}");
  }

  /// Writes one value and everything under it.
  void value(ValueRef root) {
    stack_.clear();
    val(root);
    while (!stack_.empty()) {
      const Task t = stack_.back();
      stack_.pop_back();
      if (t.kind == Task::Kind::kLiteral) {
        w_.emit(t.literal);
        continue;
      }
      if (w_.over_budget()) {
        // The rest of an array is dropped; the first cut item, and any value a field or an
        // empty array needs, becomes the marker.
        if (t.item && t.comma) {
          if (!w_.truncated_) w_.emit(",{\"t\":\"elided\"}");
          w_.truncated_ = true;
          continue;
        }
        w_.truncated_ = true;
        w_.emit("{\"t\":\"elided\"}");
        continue;
      }
      if (t.item && t.comma) w_.emit(",");
      if (t.kind == Task::Kind::kPair) {
        stack_.push_back({Task::Kind::kLiteral, {}, {}, "]"});
        val(t.b);
        stack_.push_back({Task::Kind::kLiteral, {}, {}, ","});
        val(t.a);
        w_.emit("[");
        continue;
      }
      node(t.a);
    }
  }

  void lit(std::string_view s) { stack_.push_back({Task::Kind::kLiteral, {}, {}, s}); }
  void val(ValueRef r) { stack_.push_back({Task::Kind::kValue, r}); }
  void item(ValueRef r, bool comma) { stack_.push_back({Task::Kind::kValue, r, {}, {}, true, comma}); }
  void pair(ValueRef k, ValueRef v, bool comma) { stack_.push_back({Task::Kind::kPair, k, v, {}, true, comma}); }

  /// Pushes, in reverse, the items then `close` (the caller has written or pushes the opening).
  void push_items(pickle::Items items, std::string_view close) {
    lit(close);
    for (std::size_t i = items.size(); i-- > 0;) item(items[i], i != 0);
  }

  void node(ValueRef ref) {
    if (ref >= v_.size()) {
      w_.emit("null");
      return;
    }
    const Node& n = v_.node(ref);
    const bool identity = has_identity(v_, ref);
    if (identity && written_[ref]) {
      w_.emit(fmt::format("{{\"ref\":{}}}", ref));
      return;
    }
    if (identity) written_[ref] = true;
    std::string out = fmt::format("{{\"t\":\"{}\"", type_tag(n.kind));
    if (identity) out += fmt::format(",\"id\":{}", ref);
    switch (n.kind) {
      case Kind::kNone: break;
      case Kind::kBool: out += n.i ? ",\"v\":true" : ",\"v\":false"; break;
      case Kind::kInt: out += fmt::format(",\"v\":\"{}\"", n.i); break;
      case Kind::kBigInt:
        if (n.text.size() <= kMaxDecimalIntBytes) {
          out += fmt::format(",\"v\":\"{}\"", pickle::le_bytes_to_decimal(n.text));
        } else {
          out += fmt::format(",\"le_hex\":\"{}\"", core::hex(n.text));
        }
        break;
      case Kind::kFloat:
        out += fmt::format(",\"v\":\"{}\",\"bits\":\"{:016x}\"", pickle::float_repr(n.f), std::bit_cast<std::uint64_t>(n.f));
        break;
      case Kind::kStr:
        out += ",\"v\":";
        if (!core::append_json_string(out, n.text)) {
          out.resize(out.size() - 4);
          out += fmt::format("wtf8_hex\":\"{}\"", core::hex(n.text));
        }
        break;
      case Kind::kBytes:
      case Kind::kPy2Str:
      case Kind::kByteArray:
        out += fmt::format(",\"hex\":\"{}\"", core::hex(n.text));
        if (n.readonly) out += ",\"readonly\":true";
        break;
      case Kind::kTuple:
      case Kind::kList:
      case Kind::kSet:
      case Kind::kFrozenSet:
        out += ",\"items\":[";
        push_items(v_.items(ref), "]}");
        w_.emit(out);
        return;
      case Kind::kDict: {
        out += ",\"items\":[";
        auto entries = v_.entries(ref);
        lit("]}");
        for (std::size_t i = entries.size(); i-- > 0;) pair(entries[i].first, entries[i].second, i != 0);
        w_.emit(out);
        return;
      }
      case Kind::kGlobal: {
        const auto& g = v_.global_rec(ref);
        out += fmt::format(",\"op\":\"{}\",\"offset\":{},\"protocol\":{}", pickle::name(g.op), g.offset, g.protocol);
        if (g.resolved) {
          out += ",\"module\":";
          json_text(out, g.module);
          out += ",\"name\":";
          json_text(out, g.name);
          out += '}';
          break;
        }
        // STACK_GLOBAL whose operands were not constant strings: the operands themselves.
        out += ",\"resolved\":false,\"module\":";
        lit("}");
        if (g.name_value != pickle::kNoValue) val(g.name_value); else lit("null");
        lit(",\"name\":");
        if (g.module_value != pickle::kNoValue) val(g.module_value); else lit("null");
        w_.emit(out);
        return;
      }
      case Kind::kCall: {
        const auto& c = v_.call_rec(ref);
        out += fmt::format(",\"kind\":\"{}\",\"op\":\"{}\",\"offset\":{},\"callable\":", call_kind_name(c.kind), pickle::name(c.op), c.offset);
        push_call_tail(ref, c);
        w_.emit(out);
        return;
      }
      case Kind::kPersistent: {
        const auto& p = v_.persistent_rec(ref);
        out += fmt::format(",\"op\":\"{}\",\"offset\":{},\"pid\":", pickle::name(p.op), p.offset);
        lit("}");
        val(p.pid);
        w_.emit(out);
        return;
      }
      case Kind::kExt: out += fmt::format(",\"code\":{}", n.i); break;
      case Kind::kBuffer:
        if (n.readonly) out += ",\"readonly\":true";
        break;
    }
    if (out.back() != '}') out += '}';
    w_.emit(out);
  }

  /// callable, args, kwargs, then what later opcodes did to the object: every BUILD's state,
  /// every item assignment and every appended item, in order.
  void push_call_tail(ValueRef ref, const pickle::CallRec& c) {
    std::vector<const Event*> builds, setitems, appends;
    if (auto it = by_subject_.find(ref); it != by_subject_.end()) {
      for (std::uint32_t i : it->second) {
        const Event& e = run_.events[i];
        (e.kind == Event::Kind::kBuild ? builds : e.kind == Event::Kind::kSetItem ? setitems : appends).push_back(&e);
      }
    }
    lit("}");
    if (!appends.empty()) {
      // Each APPEND(S)/ADDITEMS event holds a fresh list of its items: written flat.
      lit("]");
      // pushed last-first; the comma goes on every item but the very first
      std::size_t remaining = 0;
      for (const Event* e : appends) remaining += v_.items(e->arg).size();
      for (std::size_t a = appends.size(); a-- > 0;) {
        auto items = v_.items(appends[a]->arg);
        for (std::size_t i = items.size(); i-- > 0;) item(items[i], --remaining != 0);
      }
      lit(",\"appended\":[");
    }
    if (!setitems.empty()) {
      lit("]");
      for (std::size_t i = setitems.size(); i-- > 0;) pair(setitems[i]->arg, setitems[i]->arg2, i != 0);
      lit(",\"setitems\":[");
    }
    if (!builds.empty()) {
      lit("]");
      for (std::size_t i = builds.size(); i-- > 0;) item(builds[i]->arg, i != 0);
      lit(",\"builds\":[");
    }
    if (c.kwargs != pickle::kNoValue) {
      val(c.kwargs);
      lit(",\"kwargs\":");
    }
    val(c.args);
    lit(",\"args\":");
    val(c.callable);
  }

  static std::string_view type_tag(Kind k) {
    switch (k) {
      case Kind::kNone: return "none";
      case Kind::kBool: return "bool";
      case Kind::kInt:
      case Kind::kBigInt: return "int";
      case Kind::kFloat: return "float";
      case Kind::kStr: return "str";
      case Kind::kBytes: return "bytes";
      case Kind::kPy2Str: return "str8";
      case Kind::kByteArray: return "bytearray";
      case Kind::kTuple: return "tuple";
      case Kind::kList: return "list";
      case Kind::kDict: return "dict";
      case Kind::kSet: return "set";
      case Kind::kFrozenSet: return "frozenset";
      case Kind::kGlobal: return "global";
      case Kind::kCall: return "object";
      case Kind::kPersistent: return "persistent";
      case Kind::kExt: return "ext";
      case Kind::kBuffer: return "buffer";
    }
    return "?";
  }

  InspectJsonWriter& w_;
  const PickleRun& run_;
  const ValueStore& v_;
  std::vector<bool> written_;
  std::unordered_map<ValueRef, std::vector<std::uint32_t>> by_subject_;
  std::vector<Task> stack_;
};

void InspectJsonWriter::write_run(const std::string& member, const PickleRun& run) { RunJson(*this, run).write(member); }

void InspectJsonWriter::raw(std::string_view text) { emit(text); }

void InspectJsonWriter::emit(std::string_view text) {
  buf_ += text;
  if (buf_.size() >= (1u << 20)) flush();
}

void InspectJsonWriter::flush() {
  out_.write(buf_.data(), static_cast<std::streamsize>(buf_.size()));
  written_ += buf_.size();
  buf_.clear();
}

}  // namespace brine::report
