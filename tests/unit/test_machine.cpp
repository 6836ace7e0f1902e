// The symbolic VM: stack, mark and memo semantics of _pickle.c, records instead of execution,
// and the limits.
#include <doctest/doctest.h>

#include <cstring>

#include "analysis/call_repr.hpp"
#include "helpers.hpp"
#include "pickle/decoder.hpp"

using namespace brine;
using pickle::Event;
using pickle::Kind;

namespace {
std::string root_repr(const pickle::PickleRun& r) {
  REQUIRE(r.stopped);
  return analysis::repr_value(r.values, r.root);
}
core::ErrorCode err(const pickle::PickleRun& r) {
  REQUIRE(r.error);
  return r.error->code;
}
}  // namespace

TEST_CASE("builds containers the way CPython does") {
  CHECK(root_repr(test::run("(I1\nI2\nl.")) == "[1, 2]");
  CHECK(root_repr(test::run("(I1\nt.")) == "(1,)");
  CHECK(root_repr(test::run("(S'a'\nI1\nd.")) == "{'a': 1}");
  CHECK(root_repr(test::run("]K\x01K\x02\x86\x86.")) == "([], (1, 2))");
  CHECK(root_repr(test::run("\x80\x04\x8f(K\x01K\x02K\x01\x90.")) == "{1, 2}");
  CHECK(root_repr(test::run("\x80\x04(K\x01\x91.")) == "frozenset({1})");
  CHECK(root_repr(test::run("}K\x01K\x02sK\x03K\x04s.")) == "{1: 2, 3: 4}");
  CHECK(root_repr(test::run("](K\x01K\x02" "e.")) == "[1, 2]");
}

TEST_CASE("dict keys follow Python equality: 1 == True == 1.0, a later value replaces") {
  auto r = test::run("}(K\x01K\x0a\x88K\x0bG\x3f\xf0\x00\x00\x00\x00\x00\x00K\x0cu.");
  CHECK(root_repr(r) == "{1: 12}");
  bool dup = false;
  for (auto& a : r.anomalies) dup = dup || a.kind == pickle::Anomaly::Kind::kDuplicateKey;
  CHECK(dup);
  CHECK(err(test::run("}]K\x01s.")) == core::ErrorCode::kTypeError);  // unhashable key
}

TEST_CASE("SETITEM on a list assigns by index; out of range raises") {
  CHECK(root_repr(test::run("(K\x01K\x02lK\x00K\x09s.")) == "[9, 2]");
  CHECK(root_repr(test::run("(K\x01K\x02lJ\xff\xff\xff\xffK\x09s.")) == "[1, 9]");
  CHECK(err(test::run("(K\x01lK\x05K\x09s.")) == core::ErrorCode::kTypeError);
}

TEST_CASE("memo GET shares the value instead of copying it") {
  // A list stored in the memo, fetched twice, then appended to: both references see the change.
  auto r = test::run("]q\x00h\x00h\x00K\x07" "a\x86.");
  CHECK(root_repr(r) == "([7], [7])");
  CHECK(r.values.items(r.root)[0] == r.values.items(r.root)[1]);
}

TEST_CASE("a GET/DUP bomb costs a stack slot per opcode, not a copy") {
  // A 1000-element list, then 20000 DUPs, then one LIST: the VM creates one list of references.
  std::string p = "(";
  for (int i = 0; i < 1000; ++i) p += "K\x01";
  p += "l";
  for (int i = 0; i < 20000; ++i) p += "2";
  p = "(" + p + "l.";
  auto r = test::run(p);
  REQUIRE(r.stopped);
  CHECK(r.values.size() < 1100);  // 1000 ints + 2 lists, not 20 million nodes
  CHECK(r.values.items(r.root).size() == 20001);
}

TEST_CASE("MEMOIZE uses the number of memo entries, like _pickle.c") {
  // PUT 5 then MEMOIZE stores at index 1 (one entry so far), so GET 1 finds the second value.
  auto r = test::run("\x80\x04K\x0aq\x05" "0K\x0b\x94" "0h\x01.");
  CHECK(root_repr(r) == "11");
}

TEST_CASE("the MARK fence: ordinary opcodes cannot reach below the last MARK") {
  // Two items on the stack, then MARK: TUPLE2 finds nothing above the fence.
  CHECK(err(test::run("K\x01K\x02(\x86.")) == core::ErrorCode::kStackUnderflow);
  CHECK(err(test::run("K\x01(2.")) == core::ErrorCode::kStackUnderflow);  // DUP cannot copy across it
  CHECK(err(test::run("]K\x01(a.")) == core::ErrorCode::kStackUnderflow);  // APPEND's list is below it
}

TEST_CASE("POP discards a MARK that is on top, as _pickle.c load_pop does") {
  auto r = test::run("K\x01(0.");
  REQUIRE(r.stopped);
  CHECK(root_repr(r) == "1");
}

TEST_CASE("underflows, missing marks and memo misses are errors at the right offset") {
  auto r = test::run("(R.");
  CHECK(err(r) == core::ErrorCode::kStackUnderflow);
  CHECK(r.error->offset == 1);
  CHECK(r.error->opcode == "REDUCE");
  CHECK(err(test::run("K\x01t.")) == core::ErrorCode::kMarkMissing);
  CHECK(err(test::run("h\x03.")) == core::ErrorCode::kMemoMiss);
  CHECK(err(test::run("(.")) == core::ErrorCode::kStackUnderflow);  // STOP cannot pop through the fence
  CHECK(err(test::run("(K\x01K\x02K\x03" "d.")) == core::ErrorCode::kTypeError);  // odd DICT
  CHECK(err(test::run("\x80\x06.")) == core::ErrorCode::kUnsupportedProtocol);
  CHECK(err(test::run("K\x01" "p-1\n.")) == core::ErrorCode::kBadMemoIndex);
  CHECK(err(test::run("NK\x01R.")) == core::ErrorCode::kTypeError);  // None is not callable
}

TEST_CASE("globals and calls are recorded, never executed") {
  auto r = test::run("cos\nsystem\n(S'echo hi'\ntR.");
  REQUIRE(r.stopped);
  REQUIRE(r.events.size() == 2);
  CHECK(r.events[0].kind == Event::Kind::kGlobal);
  CHECK(r.events[0].offset == 0);
  CHECK(r.events[1].kind == Event::Kind::kCall);
  CHECK(r.events[1].offset == 24);
  CHECK(analysis::repr_value(r.values, r.events[1].subject) == "os.system('echo hi')");
  const auto& g = r.values.global_rec(r.events[0].subject);
  CHECK(g.module == "os");
  CHECK(g.name == "system");
  CHECK(g.protocol == 0);
}

TEST_CASE("calls through calls reconstruct as nested Python") {
  auto r = test::run("cbuiltins\ngetattr\n(cbuiltins\n__import__\n(S'os'\ntRS'system'\ntR(S'id'\ntR.");
  REQUIRE(r.stopped);
  CHECK(analysis::repr_value(r.values, r.root) == "getattr(__import__('os'), 'system')('id')");
}

TEST_CASE("NEWOBJ, NEWOBJ_EX, INST, OBJ and BUILD are recorded with their kind") {
  auto r = test::run("\x80\x04\x8c\x01m\x8c\x01" "C\x93)\x81}(\x8c\x01x\x4b\x01u" "b.");
  REQUIRE(r.stopped);
  CHECK(analysis::repr_value(r.values, r.root) == "m.C.__new__(m.C)");
  bool build = false;
  for (auto& e : r.events) build = build || e.kind == Event::Kind::kBuild;
  CHECK(build);
  auto inst = test::run("(S'x'\nimod\nCls\n.");
  CHECK(analysis::repr_value(inst.values, inst.root) == "mod.Cls('x')");
  auto obj = test::run("(cmod\nCls\nK\x02o.");
  CHECK(analysis::repr_value(obj.values, obj.root) == "mod.Cls(2)");
  auto ex = test::run("\x80\x04\x8c\x01m\x8c\x01" "C\x93)}\x8c\x01k\x4b\x01s\x92.");
  CHECK(analysis::repr_value(ex.values, ex.root) == "m.C.__new__(m.C, **{'k': 1})");
}

TEST_CASE("STACK_GLOBAL takes its operands from the real stack, memo included") {
  // Strings put in the memo early, fetched with GET much later: no look-back guessing.
  auto r = test::run("\x80\x04\x8c\x02os\x94\x8c\x06system\x94" "00" "N0h\x00h\x01\x93.");
  REQUIRE(r.stopped);
  const auto& g = r.values.global_rec(r.root);
  CHECK(g.resolved);
  CHECK(g.module == "os");
  CHECK(g.name == "system");
  CHECK(g.op == pickle::Op::STACK_GLOBAL);
}

TEST_CASE("STACK_GLOBAL with a computed operand is unresolved; with bytes it is a type error") {
  auto r = test::run("\x80\x04\x8c\x01m\x8c\x01" "f\x93)R\x8c\x01x\x93.");
  REQUIRE(r.stopped);
  CHECK_FALSE(r.values.global_rec(r.root).resolved);
  CHECK(err(test::run("\x80\x04\x43\x02os\x8c\x01x\x93.")) == core::ErrorCode::kTypeError);
}

TEST_CASE("PROTO records the protocol in force for each global") {
  auto r = test::run("\x80\x02" "ca\nb\n0\x80\x04" "ca\nb\n.");
  REQUIRE(r.stopped);
  CHECK(r.values.global_rec(r.root).protocol == 4);
  bool switched = false;
  for (auto& a : r.anomalies) switched = switched || a.kind == pickle::Anomaly::Kind::kProtoSwitch;
  CHECK(switched);
}

TEST_CASE("leftover stack at STOP and a frame violation are anomalies") {
  auto r = test::run("K\x01K\x02.");
  REQUIRE(r.stopped);
  REQUIRE_FALSE(r.anomalies.empty());
  CHECK(r.anomalies[0].kind == pickle::Anomaly::Kind::kLeftoverStack);
}

TEST_CASE("persistent loads, EXT codes and out-of-band buffers are recorded") {
  auto r = test::run("\x80\x05(\x8c\x07storage\x8c\x01kK\x01tQ\x82\x07\x97\x87.");
  REQUIRE(r.stopped);
  std::vector<Event::Kind> kinds;
  for (auto& e : r.events) kinds.push_back(e.kind);
  CHECK(kinds == std::vector<Event::Kind>{Event::Kind::kPersistentLoad, Event::Kind::kExtension, Event::Kind::kOutOfBandBuffer});
  CHECK(err(test::run(std::string_view("\x82\x00.", 3))) == core::ErrorCode::kBadArgument);  // EXT code 0
}

TEST_CASE("a payload before a malformed opcode is still recorded") {
  auto r = test::run("cos\nsystem\n(S'id'\ntR\xff");
  CHECK(err(r) == core::ErrorCode::kUnknownOpcode);
  CHECK(r.error->offset == 20);
  CHECK(r.events.size() == 2);
}

TEST_CASE("limits stop the run with a named limit") {
  core::Limits l;
  l.max_opcodes = 10;
  std::string many(50, 'N');
  auto r = test::run(many + ".", l);
  CHECK(err(r) == core::ErrorCode::kLimitExceeded);
  CHECK(r.error->detail.starts_with("max-opcodes"));

  core::Limits s;
  s.max_stack_depth = 5;
  CHECK(test::run(many + ".", s).error->detail.starts_with("max-stack"));

  core::Limits n;
  n.max_nesting = 3;
  CHECK(test::run("((((((.", n).error->detail.starts_with("max-nesting"));
  CHECK(test::run("]]]]]]aaaaa.", n).error->detail.starts_with("max-nesting"));

  core::Limits m;
  m.max_memo_entries = 2;
  CHECK(test::run("Nq\x00q\x01q\x02.", m).error->detail.starts_with("max-memo"));

  core::Limits v;
  v.max_value_nodes = 3;
  CHECK(test::run("NNNNN.", v).error->detail.starts_with("max-values"));

  core::Limits t;
  t.max_file_time = std::chrono::milliseconds(0);
  std::string long_run(10000, 'N');
  auto timed = pickle::run_pickle(test::bytes(long_run), 0, t, std::chrono::steady_clock::now());
  CHECK(timed.error->code == core::ErrorCode::kTimeout);
}

TEST_CASE("a run of scalars stops at the one that crosses the stack or value budget, which the error names") {
  // 6,000 BININT1s (2 bytes each, so scalar k is at offset 2k) decoded in runs: the run is cut
  // before the budget could be crossed, and the crossing scalar is reported where it is, with
  // the opcodes counted up to it, as one opcode at a time would.
  std::string ints;
  for (int k = 0; k < 6000; ++k) ints += std::string("K") + static_cast<char>(k & 0x7F);
  auto crossed_at = [&](const core::Limits& limits, std::uint64_t budget, std::string_view limit) {
    const auto r = test::run(ints + ".", limits);
    REQUIRE(r.error);
    CHECK(r.error->detail.starts_with(limit));
    CHECK(r.error->offset == 2 * budget);
    CHECK(r.error->opcode == "BININT1");
    CHECK(r.opcodes == budget + 1);
  };
  for (const std::uint64_t budget : {1ull, 4095ull, 4096ull, 4097ull, 5000ull}) {
    CAPTURE(budget);
    core::Limits stack;
    stack.max_stack_depth = budget;
    crossed_at(stack, budget, "max-stack");
    core::Limits values;
    values.max_value_nodes = budget;
    crossed_at(values, budget, "max-values");
  }
}

TEST_CASE("a list's nesting counts a container among appended scalars, wherever it was made") {
  // APPENDS of scalars skips the items' nodes (all input scalars made after the last container);
  // a container fetched from the memo among them still counts. The list made first is memoized
  // and popped.
  core::Limits one;
  one.max_nesting = 1;
  std::string scalars;
  for (int k = 0; k < 300; ++k) scalars += std::string("K") + static_cast<char>(k & 0x7F);
  const std::string first("]q\x00" "0", 4);  // (sized: the string has a NUL)
  const std::string get("h\x00", 2);
  CHECK_FALSE(test::run(first + "](" + scalars + "e.", one).error);  // depth 1
  const auto nested = test::run(first + "](" + scalars + get + scalars + "e.", one);  // [.., [], ..]: depth 2
  REQUIRE(nested.error);
  CHECK(nested.error->detail.starts_with("max-nesting"));
  // The same through a list made at once from the stack (LIST after a MARK).
  CHECK_FALSE(test::run(first + "(" + scalars + "l.", one).error);
  const auto made = test::run(first + "(" + scalars + get + "l.", one);
  REQUIRE(made.error);
  CHECK(made.error->detail.starts_with("max-nesting"));
}

TEST_CASE("a sparse memo index costs one entry, not an array that size") {
  auto r = test::run("Nr\xff\xff\xff\xffj\xff\xff\xff\xff.");
  CHECK(r.stopped);
}

TEST_CASE("recursive structures print without looping") {
  auto r = test::run("]q\x00h\x00" "a.");
  CHECK(root_repr(r) == "[<cycle>]");
}

namespace {
/// A pickle that PUTs 1 at sparse index 1100, fills indices 0..21, then grows the dense memo past
/// 1100 with a PUT at `grow_at`, followed by `tail`.
std::string straddle(std::uint32_t grow_at, const std::string& tail) {
  auto u32 = [](std::uint32_t v) { return std::string{static_cast<char>(v & 0xFF), static_cast<char>((v >> 8) & 0xFF), static_cast<char>((v >> 16) & 0xFF), static_cast<char>(v >> 24)}; };
  std::string p = "\x80\x04K\x01r" + u32(1100) + "0";
  for (int i = 0; i < 22; ++i) p += std::string("K\x00q", 3) + static_cast<char>(i) + "0";
  p += "K\x02r" + u32(grow_at) + "0" + tail;
  return p;
}
}  // namespace

TEST_CASE("memo indices that straddle the dense and sparse storage resolve as in _pickle.c") {
  // CPython (checked with pickle.loads): the value PUT at 1100 before the dense part covered it is
  // still there after, and re-PUTting 1100 does not count a new entry, so MEMOIZE stores at 23.
  auto u32 = [](std::uint32_t v) { return std::string{static_cast<char>(v & 0xFF), static_cast<char>((v >> 8) & 0xFF), static_cast<char>((v >> 16) & 0xFF), static_cast<char>(v >> 24)}; };
  // (The pickles are kept alive: a run's values are read from its input.)
  const std::string got_pickle = straddle(1110, "j" + u32(1100) + ".");
  auto got = test::run(got_pickle);  // GET 1100 after the dense part grew over it
  REQUIRE(got.stopped);
  CHECK(root_repr(got) == "1");
  const std::string counted_pickle = straddle(1100, "K\x03\x94" "0h\x17.");
  auto counted = test::run(counted_pickle);  // re-PUT 1100, then MEMOIZE + GET 23
  REQUIRE(counted.stopped);
  CHECK(root_repr(counted) == "3");
}

namespace {
/// What Machine::execute stored for a binary scalar opcode before input scalars: the kind by
/// opcode, the number or the text from the decoder's argument.
pickle::Node expected_scalar(const pickle::Instruction& ins) {
  using pickle::Op;
  pickle::Node n;
  n.offset = ins.offset;
  const pickle::Arg& a = ins.arg;
  switch (ins.op) {
    case Op::BININT: case Op::BININT1: case Op::BININT2: case Op::LONG1: case Op::LONG4:
      if (a.kind == pickle::Arg::Kind::kBigInt) {
        n.kind = Kind::kBigInt;
        n.text = a.a;
      } else {
        n.kind = Kind::kInt;
        n.i = a.i;
      }
      break;
    case Op::SHORT_BINSTRING: case Op::BINSTRING: n.kind = Kind::kPy2Str; n.text = a.a; break;
    case Op::SHORT_BINBYTES: case Op::BINBYTES: case Op::BINBYTES8: n.kind = Kind::kBytes; n.text = a.a; break;
    case Op::BYTEARRAY8: n.kind = Kind::kByteArray; n.text = a.a; break;
    case Op::SHORT_BINUNICODE: case Op::BINUNICODE: case Op::BINUNICODE8: n.kind = Kind::kStr; n.text = a.a; break;
    case Op::BINFLOAT: n.kind = Kind::kFloat; n.f = a.f; break;
    case Op::NONE: n.kind = Kind::kNone; break;
    case Op::NEWTRUE: n.kind = Kind::kBool; n.i = 1; break;
    case Op::NEWFALSE: n.kind = Kind::kBool; n.i = 0; break;
    case Op::NEXT_BUFFER: n.kind = Kind::kBuffer; break;
    case Op::EXT1: case Op::EXT2: case Op::EXT4: n.kind = Kind::kExt; n.i = a.i; break;
    default: FAIL("not an input scalar opcode");
  }
  return n;
}
}  // namespace

TEST_CASE("input scalars: every binary scalar opcode reads back as the decoder's argument, 4 bytes a value") {
  using pickle::Op;
  const std::string samples[] = {
      std::string("J\xff\xff\xff\xff", 5), std::string("J\x00\x00\x00\x80", 5), std::string("K\xff", 2),
      std::string("M\xff\xff", 3), std::string("\x8a\x00", 2), std::string("\x8a\x01\xff", 3),
      std::string("\x8a\x09\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11),                 // -1, redundant sign bytes
      std::string("\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x80\x00", 11),                 // 2**63: a big int
      std::string("\x8b\x02\x00\x00\x00\x34\x12", 7), std::string("\x8b\x09\x00\x00\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09", 14),
      std::string("U\x03" "abc", 5), std::string("T\x02\x00\x00\x00\xe9z", 7), std::string("C\x00", 2),
      std::string("B\x01\x00\x00\x00\x00", 6), std::string("\x8e\x02\x00\x00\x00\x00\x00\x00\x00xy", 11),
      std::string("\x96\x01\x00\x00\x00\x00\x00\x00\x00z", 10), std::string("\x8c\x02\xc3\xa9", 4),
      std::string("X\x03\x00\x00\x00\xed\xa0\x80", 8),                                    // a lone surrogate (surrogatepass)
      std::string("\x8d\x01\x00\x00\x00\x00\x00\x00\x00q", 10), std::string("G\x80\x00\x00\x00\x00\x00\x00\x00", 9),
      std::string("G\x7f\xf8\x00\x00\x00\x00\x00\x01", 9), std::string("G\x3f\xf0\x00\x00\x00\x00\x00\x00", 9),
      "N", "\x88", "\x89", "\x97", std::string("\x82\xff", 2), std::string("\x83\x01\x02", 3),
      std::string("\x84\xff\xff\xff\x7f", 5),
  };
  // Each sample alone before STOP (the decoder's reference path: fewer than 9 bytes left) and
  // followed by bytes after STOP (its fast path).
  for (const std::string& sample : samples)
  for (const std::string& s : {sample, sample + std::string(".", 1) + std::string(16, 'N')}) {
    CAPTURE(s);
    const std::string data = std::string("\x80\x05", 2) + s + ".";
    pickle::StringArena arena;
    const core::Limits limits;
    pickle::Decoder d(test::bytes(data), 2, arena, limits);
    pickle::Instruction ins;
    REQUIRE(d.next(ins));
    REQUIRE(pickle::ValueStore::input_scalar_op(ins.op));
    const pickle::Node want = expected_scalar(ins);
    auto r = test::run(data);
    REQUIRE(r.stopped);
    const pickle::Node got = r.values.node(r.root);
    CHECK(got.kind == want.kind);
    CHECK(r.values.kind(r.root) == want.kind);
    CHECK(got.offset == want.offset);
    CHECK(got.text.data() == want.text.data());
    CHECK(got.text.size() == want.text.size());
    if (want.kind == Kind::kFloat) {
      CHECK(std::memcmp(&got.f, &want.f, sizeof got.f) == 0);
    } else {
      CHECK(got.i == want.i);
    }
    CHECK(!got.readonly);
    CHECK(got.depth == 0);
    CHECK(r.values.leaf(r.root));
    CHECK(r.values.hashable(r.root) == (want.kind != Kind::kByteArray));
    CHECK(r.values.stored_size() == 0);  // no Node was stored for it
  }
  // Protocol-0 text scalars are decoded into the arena: they keep a stored Node.
  auto r = test::run("I12\n.");
  CHECK(r.values.stored_size() == 1);
  CHECK(r.values.node(r.root).i == 12);
}

TEST_CASE("input scalars keep Python equality and identity in dicts, sets and the memo") {
  // 1 (BININT1) == True == 1.0 (BINFLOAT) as dict keys; 'a' (SHORT_BINUNICODE) == b'a'-less py2 'a'.
  auto r = test::run("\x80\x04}(K\x01K\x0a\x88K\x0bG\x3f\xf0\x00\x00\x00\x00\x00\x00K\x0c\x8c\x01" "aK\x0dU\x01" "aK\x0eu.");
  CHECK(root_repr(r) == "{1: 12, 'a': 14}");
  // A GET shares the value; two equal literals stay two values.
  auto m = test::run("\x80\x04(\x8c\x01x\x94h\x00\x8c\x01xt.");
  REQUIRE(m.stopped);
  const auto items = m.values.items(m.root);
  REQUIRE(items.size() == 3);
  CHECK(items[0] == items[1]);
  CHECK(items[0] != items[2]);
  CHECK(m.values.equal(items[0], items[2]));
  CHECK(m.values.hash(items[0]) == m.values.hash(items[2]));
}

TEST_CASE("a list built from scalar runs reads back item by item, also after SETITEMS replaces one") {
  std::string ints;
  for (int k = 0; k < 3; ++k) ints += std::string("K") + static_cast<char>(k);
  // [0, 1, 2] by APPENDS, then [0, 1, 2, 0, 1, 2] by a second APPENDS: one run of six refs.
  CHECK(root_repr(test::run("](" + ints + "e(" + ints + "e.")) == "[0, 1, 2, 0, 1, 2]");
  // list[1] = 9 through SETITEMS on the list (the run is written out first).
  CHECK(root_repr(test::run("](" + ints + "e(K\x01K\x09u.")) == "[0, 9, 2]");
  // A memo GET of an earlier item breaks the run: the items stay in order.
  CHECK(root_repr(test::run("](K\x07q\x01K\x08" + std::string("h\x01", 2) + "K\x05" "e.")) == "[7, 8, 7, 5]");
}
