// pickle::Predecoder: the runs it measures on a second CPU are taken by the VM only where they
// are exactly what the VM's own decoder would take, so a run is the same with and without it.
#include <doctest/doctest.h>

#include <bit>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "helpers.hpp"
#include "pickle/predecode.hpp"

using namespace brine;

namespace {

std::uint64_t next_random(std::uint64_t& s) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

void put_le(std::string& out, std::uint64_t v, int width) {
  for (int i = 0; i < width; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
}

/// One binary scalar opcode of a random kind, with the odd cases the decoder must treat apart:
/// texts of 16 bytes and more (long texts), non-ASCII UTF-8, LONG1 of
/// up to 255 bytes, strings and bytes past 255 bytes (longer than one length byte says).
std::string random_scalar(std::uint64_t& seed) {
  std::string op;
  const std::uint64_t r = next_random(seed);
  switch (r % 14) {
    case 0: op = "K"; put_le(op, r >> 8, 1); break;
    case 1: op = "M"; put_le(op, r >> 8, 2); break;
    case 2: op = "J"; put_le(op, r >> 8, 4); break;
    case 3: {
      const std::uint64_t n = (r >> 8) % 7 == 0 ? 255 : (r >> 16) % 20;
      op = "\x8a";
      op += static_cast<char>(n);
      for (std::uint64_t i = 0; i < n; ++i) op += static_cast<char>(next_random(seed));
      break;
    }
    case 4: op = "G"; put_le(op, r, 8); break;
    case 5: case 6: {
      // SHORT_BINUNICODE: ASCII of 0..30 bytes, sometimes UTF-8 or a surrogate (which pickle accepts).
      std::string text(static_cast<std::size_t>((r >> 8) % 31), 'a');
      for (auto& c : text) c = static_cast<char>('a' + next_random(seed) % 26);
      const std::uint64_t twist = (r >> 20) % 10;
      if (twist == 0 && text.size() >= 2) text.replace(0, 2, "\xc3\xa9");
      if (twist == 2 && text.size() >= 3) text.replace(0, 3, "\xed\xa0\x80");
      op = "\x8c";
      op += static_cast<char>(text.size());
      op += text;
      break;
    }
    case 7: {
      const std::size_t n = (r >> 8) % 5 == 0 ? 300 : static_cast<std::size_t>((r >> 16) % 40);
      op = "X";
      put_le(op, n, 4);
      op += std::string(n, 'x');
      break;
    }
    case 8: {
      const std::size_t n = static_cast<std::size_t>((r >> 8) % 24);
      op = "C";
      op += static_cast<char>(n);
      op += std::string(n, '\x95');  // FRAME's byte inside data: the frame search must not believe it
      break;
    }
    case 9: {
      const std::size_t n = (r >> 8) % 4 == 0 ? 400 : static_cast<std::size_t>((r >> 16) % 20);
      op = "B";
      put_le(op, n, 4);
      op += std::string(n, '\x94');
      break;
    }
    case 10: op = "N"; break;
    case 11: op = "\x88"; break;
    case 12: op = "\x89"; break;
    default: op = "J"; put_le(op, 0x80000000u | (r >> 8), 4); break;
  }
  return op;
}

/// The opcodes of a random protocol-4 pickle: lists of runs of scalars (each MEMOIZEd or not)
/// appended to a list, with memo GETs, PUTs over used indices, dicts, tuples and POPs among them.
std::vector<std::string> random_ops(std::uint64_t& seed, std::size_t chunks) {
  std::vector<std::string> ops = {"]", "\x94"};
  std::uint64_t memoized = 1;  // MEMOIZEs so far: GET and PUT use indices below it
  auto used_index = [&](std::uint64_t q) { return static_cast<char>(q % std::min<std::uint64_t>(memoized, 256)); };
  for (std::size_t c = 0; c < chunks; ++c) {
    const std::uint64_t r = next_random(seed);
    ops.push_back("(");
    const std::size_t items = static_cast<std::size_t>(r % 200);
    const bool busy = (r >> 32) % 2 == 0;  // with memo GETs, dicts, tuples, PUTs and POPs among the scalars
    for (std::size_t i = 0; i < items; ++i) {
      const std::uint64_t q = busy ? next_random(seed) : next_random(seed) | 1;
      if (!busy) {
        ops.push_back(random_scalar(seed));
        if ((q >> 24) % 2 == 0) {
          ops.push_back("\x94");
          ++memoized;
        }
        continue;
      }
      if (q % 97 == 0) {
        ops.push_back("}");
        ops.push_back("(");
        ops.push_back(random_scalar(seed));
        ops.push_back(random_scalar(seed));
        ops.push_back("u");
      } else if (q % 89 == 0) {
        ops.push_back(std::string("h") + used_index(q >> 8));  // BINGET
      } else if (q % 37 == 0) {
        std::string get = "j";  // LONG_BINGET of one of the last 50 MEMOIZEs
        put_le(get, memoized - 1 - (q >> 8) % std::min<std::uint64_t>(memoized, 50), 4);
        ops.push_back(get);
      } else if (q % 83 == 0) {
        ops.push_back(random_scalar(seed));
        ops.push_back(random_scalar(seed));
        ops.push_back("\x86");
      } else {
        ops.push_back(random_scalar(seed));
      }
      if (q % 79 == 0) ops.push_back(std::string("q") + used_index(q >> 16));  // BINPUT over a used index
      if ((q >> 24) % 2 == 0) {
        ops.push_back("\x94");
        ++memoized;
      }
      if (q % 211 == 0) ops.push_back("0");  // POP
    }
    ops.push_back("e");
  }
  ops.push_back(".");
  return ops;
}

/// The ops framed as pickle's framer does (a FRAME every ~`frame_bytes`, a large str or bytes
/// between frames), with `twists` adding what it never writes: an opcode cut by its frame's end.
std::string frame_ops(const std::vector<std::string>& ops, std::uint64_t& seed, std::size_t frame_bytes, bool twists) {
  std::string out = "\x80\x04";
  std::string frame;
  auto flush = [&] {
    if (frame.empty()) return;
    std::size_t len = frame.size();
    if (twists && next_random(seed) % 5 == 0 && len > 3) len -= 1 + next_random(seed) % 2;  // ends inside an opcode
    out += '\x95';
    put_le(out, len, 8);
    out += frame;
    frame.clear();
  };
  for (const std::string& op : ops) {
    if (op.size() >= 256 && (op[0] == 'X' || op[0] == 'B') && next_random(seed) % 2 == 0) {
      flush();
      out += op;  // written between frames, as pickle's framer writes a large str or bytes
      continue;
    }
    frame += op;
    if (frame.size() >= frame_bytes) flush();
  }
  flush();
  return out;
}

/// Everything a run produced, as text: every value (kind, offset, scalar fields, text, items,
/// entries), the long texts, events, anomalies, the error and the counts.
std::string dump(const pickle::PickleRun& r) {
  std::string out = fmt::format("stopped {} end {} opcodes {} root {} protocol {} effects {}\n", r.stopped, r.end, r.opcodes,
                                r.root, r.protocol, r.effects);
  if (r.error) out += fmt::format("error {} at {} op {} : {}\n", static_cast<int>(r.error->code), r.error->offset, r.error->opcode, r.error->detail);
  const pickle::ValueStore& v = r.values;
  for (pickle::ValueRef ref = 0; ref < v.size(); ++ref) {
    const pickle::Node n = v.node(ref);
    std::uint64_t fbits;
    std::memcpy(&fbits, &n.f, 8);
    out += fmt::format("{} k{} o{} i{} f{} d{} r{} t[{}]", ref, static_cast<int>(n.kind), n.offset, n.i, fbits, n.depth,
                       n.readonly, n.text);
    if (n.kind == pickle::Kind::kTuple || n.kind == pickle::Kind::kList || n.kind == pickle::Kind::kSet ||
        n.kind == pickle::Kind::kFrozenSet) {
      out += " items";
      for (const pickle::ValueRef item : v.items(ref)) out += fmt::format(" {}", item);
    } else if (n.kind == pickle::Kind::kDict) {
      out += " entries";
      for (const auto& [key, value] : v.entries(ref)) out += fmt::format(" {}:{}", key, value);
    }
    out += '\n';
  }
  v.for_each_text(pickle::ValueStore::kLongText, [&](std::string_view t) { out += fmt::format("long [{}]\n", t); });
  for (const auto& e : r.events) {
    out += fmt::format("event {} {} {} {} {} {}\n", static_cast<int>(e.kind), static_cast<int>(e.op), e.offset, e.subject, e.arg, e.arg2);
  }
  for (const auto& a : r.anomalies) out += fmt::format("anomaly {} {} {} {}\n", static_cast<int>(a.kind), a.offset, static_cast<int>(a.op), a.detail);
  return out;
}

pickle::PickleRun run_with(const std::string& data, const core::Limits& limits, pickle::Predecode mode) {
  return pickle::run_pickle(test::bytes(data), 0, limits, std::chrono::steady_clock::now() + std::chrono::seconds(60), nullptr, mode);
}

/// Limits that cut runs short at random points: few memo entries, a small stack or value
/// budget, few opcodes, short strings.
core::Limits random_limits(std::uint64_t& seed) {
  core::Limits l;
  const std::uint64_t r = next_random(seed);
  switch (r % 6) {
    case 0: l.max_memo_entries = 1 + (r >> 8) % 3000; break;
    case 1: l.max_stack_depth = 1 + (r >> 8) % 600; break;
    case 2: l.max_value_nodes = 1 + (r >> 8) % 20000; break;
    case 3: l.max_opcodes = 1 + (r >> 8) % 30000; break;
    case 4: l.max_string_length = (r >> 8) % 40; break;
    default: break;
  }
  return l;
}

}  // namespace

TEST_CASE("a run is the same with the Predecoder's runs as without, on random framed pickles and limits") {
  std::uint64_t seed = 20261206;
  std::uint64_t predecoded = 0, opcodes = 0;
  int used = 0;
  for (int i = 0; i < 300; ++i) {
    std::vector<std::string> ops = random_ops(seed, 20 + next_random(seed) % 60);
    if (i % 10 == 1) ops[next_random(seed) % ops.size()] = "\x8c\x03a\xffb";  // invalid UTF-8: the run stops there
    if (i % 10 == 2) {  // MEMOIZE with no item above the MARK, in a run long enough to be recorded
      std::string op = "(\x94";
      for (int k = 0; k < 40; ++k) op += "K\x05";
      ops.insert(ops.end() - 1 - next_random(seed) % (ops.size() / 3), op);
    }
    const std::size_t frame_bytes = 64 + next_random(seed) % 4000;
    const bool twists = i % 3 == 0;
    const std::string data = frame_ops(ops, seed, frame_bytes, twists);
    const core::Limits limits = i % 4 == 0 ? core::Limits{} : random_limits(seed);
    const pickle::PickleRun plain = run_with(data, limits, pickle::Predecode::kOff);
    const pickle::PickleRun pre = run_with(data, limits, pickle::Predecode::kBefore);
    CAPTURE(i);
    CAPTURE(frame_bytes);
    REQUIRE(plain.predecoded == 0);
    REQUIRE(dump(pre) == dump(plain));
    predecoded += pre.predecoded;
    opcodes += pre.opcodes;
    used += pre.predecoded != 0;
  }
  // The comparison is not vacuous: most pickles took runs from the Predecoder, and most of all
  // opcodes came from them.
  CHECK(used > 200);
  CHECK(predecoded * 3 > opcodes);
}

TEST_CASE("after a break in the chain of frame headers a search finds the next frame; frames it wrongly believes are not used") {
  std::uint64_t seed = 77;
  std::string data = frame_ops(random_ops(seed, 120), seed, 2000, false);
  // Between two frames about half-way: a BINBYTES8 (no hop over it: the chain of headers breaks
  // and a search for the next frame starts), then a BINBYTES holding a pickle of its own whose
  // frames chain up, so that the search believes them.
  std::uint64_t fake_seed = 5;
  const std::string fake = frame_ops(random_ops(fake_seed, 40), fake_seed, 500, false).substr(2);
  std::string inserted = "\x8e";
  put_le(inserted, 300, 8);
  inserted += std::string(300, 'A');
  inserted += "B";
  put_le(inserted, fake.size(), 4);
  inserted += fake;
  std::size_t cut = 2;
  for (std::size_t at = 2; at < data.size() && at <= data.size() / 2;) {
    std::uint64_t len = 0;
    if (data[at] == '\x95') {
      cut = at;
      std::memcpy(&len, data.data() + at + 1, 8);
      at += 9 + len;
    } else {  // a large str or bytes between frames
      std::memcpy(&len, data.data() + at + 1, 4);
      at += 5 + len;
    }
  }
  REQUIRE(cut > 2);
  REQUIRE(data[cut] == '\x95');
  data.insert(cut, inserted);
  const std::uint64_t fake_begin = cut + 9 + 300 + 5, fake_end = fake_begin + fake.size();

  pickle::Predecoder p(test::bytes(data), core::Limits{}.max_string_length);
  p.run_here(0);
  REQUIRE(p.finished());
  bool before = false, believed = false, after = false;
  for (std::uint32_t i = 0; i < p.frames(); ++i) {
    const auto& f = p.frame(i);
    CHECK(f.done());
    if (f.end <= cut) before = true;
    if (f.begin > fake_begin && f.end <= fake_end) believed = true;
    if (f.begin > fake_end) after = true;
  }
  CHECK(before);
  CHECK(believed);  // it believed the fake frames (they chain up)...
  CHECK(after);     // ...and went on to the real ones after them

  const pickle::PickleRun plain = run_with(data, {}, pickle::Predecode::kOff);
  const pickle::PickleRun pre = run_with(data, {}, pickle::Predecode::kBefore);
  REQUIRE(plain.stopped);
  CHECK(dump(pre) == dump(plain));  // ...but the VM took only the real frames' runs
  CHECK(pre.predecoded * 3 > pre.opcodes);
}

TEST_CASE("on a large framed pickle the second CPU's runs give the same result") {
  std::uint64_t seed = 4242;
  std::string data;
  for (std::size_t chunks = 500; data.size() < pickle::Predecoder::kMinInput + (1u << 20); chunks *= 2) {
    data = frame_ops(random_ops(seed, chunks), seed, 64 << 10, false);
  }
  const pickle::PickleRun plain = run_with(data, {}, pickle::Predecode::kOff);
  REQUIRE(plain.stopped);
  const std::string expected = dump(plain);
  for (int i = 0; i < 3; ++i) {
    const pickle::PickleRun pre = run_with(data, {}, pickle::Predecode::kAuto);
    CHECK(dump(pre) == expected);
  }
  // Under limits that stop it, too.
  core::Limits few;
  few.max_opcodes = plain.opcodes * 3 / 4;
  const std::string cut = dump(run_with(data, few, pickle::Predecode::kOff));
  CHECK(dump(run_with(data, few, pickle::Predecode::kAuto)) == cut);
  CHECK(dump(run_with(data, few, pickle::Predecode::kBefore)) == cut);
}

TEST_CASE("a run measured in a frame the VM is not in is not taken, even where its opcodes line up") {
  // A FRAME header inside a bytes payload of a real frame R, found by the search after a break
  // in the chain of headers (R's own header is not believed: the chain breaks right after R),
  // whose frame reaches past R's end: measured from there, the Predecoder lines up with R's
  // opcodes after the payload, but under the wrong frame it takes the opcode that crosses R's end
  // as fine, where the VM reports a frame violation.
  auto frame = [](const std::string& content, std::uint64_t claimed) {
    std::string f = "\x95";
    put_le(f, claimed, 8);
    return f + content;
  };
  std::string breaker = "\x8e";  // BINBYTES8: the hop over an unframed opcode does not take it
  put_le(breaker, 4, 8);
  breaker += "AAAA";
  std::string ints;
  for (int i = 0; i < 40; ++i) ints += "K\x07";
  const std::string crossing = "J\x01\x02\x03\x04";
  std::string filler;
  for (int i = 0; i < 100; ++i) filler += "K\x01";
  const std::string frame0 = frame(std::string("]") + "(" + filler, 2 + filler.size());
  const std::string frame_s = frame(ints, ints.size());
  const std::string frame_t = frame("e.", 2);
  // R: SHORT_BINBYTES(0x95, fake length, 'N'), the ints, then an int R's length cuts.
  const std::uint64_t r_header = 2 + frame0.size() + breaker.size();
  const std::uint64_t q = r_header + 9 + 2;  // the fake header, in the payload
  const std::uint64_t s_header = r_header + 9 + 2 + 10 + ints.size() + crossing.size() + breaker.size();
  std::string fake = "\x95";
  put_le(fake, s_header - (q + 9), 8);  // its frame ends where S's header is
  fake += "N";
  const std::string body = std::string("C") + static_cast<char>(fake.size()) + fake + ints + crossing;
  const std::string data = std::string("\x80\x04") + frame0 + breaker + frame(body, body.size() - 2) + breaker + frame_s + frame_t;
  REQUIRE(static_cast<std::uint8_t>(data[q]) == 0x95);
  REQUIRE(static_cast<std::uint8_t>(data[s_header]) == 0x95);

  pickle::Predecoder p(test::bytes(data), core::Limits{}.max_string_length);
  p.run_here(0);
  REQUIRE(p.frames() == 3);  // frame 0, the fake one, S (T is too small to hold a run)
  CHECK(p.frame(1).begin == q + 9);
  REQUIRE(p.frame(1).run_count == 1);
  CHECK(p.run(p.frame(1).first_run).end == q + 9 + 1 + ints.size() + crossing.size());

  const pickle::PickleRun plain = run_with(data, {}, pickle::Predecode::kOff);
  REQUIRE(plain.stopped);
  REQUIRE(plain.anomalies.size() == 1);
  CHECK(plain.anomalies[0].kind == pickle::Anomaly::Kind::kFrameViolation);
  const pickle::PickleRun pre = run_with(data, {}, pickle::Predecode::kBefore);
  CHECK(dump(pre) == dump(plain));
  CHECK(pre.predecoded > 0);  // frame 0's and S's runs
}
