#include "pickle/value.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "core/text.hpp"
#include "pickle/numbers.hpp"

namespace brine::pickle {

std::string_view kind_name(Kind kind) {
  switch (kind) {
    case Kind::kNone: return "None";
    case Kind::kBool: return "bool";
    case Kind::kInt: return "int";
    case Kind::kBigInt: return "int";
    case Kind::kFloat: return "float";
    case Kind::kStr: return "str";
    case Kind::kBytes: return "bytes";
    case Kind::kPy2Str: return "str";
    case Kind::kByteArray: return "bytearray";
    case Kind::kTuple: return "tuple";
    case Kind::kList: return "list";
    case Kind::kDict: return "dict";
    case Kind::kSet: return "set";
    case Kind::kFrozenSet: return "frozenset";
    case Kind::kGlobal: return "global";
    case Kind::kCall: return "object";
    case Kind::kPersistent: return "persistent object";
    case Kind::kExt: return "extension object";
    case Kind::kBuffer: return "buffer";
  }
  return "?";
}

namespace {
constexpr std::uint64_t mix(std::uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}
std::uint64_t hash_bytes(std::string_view s, std::uint64_t seed) {
  std::uint64_t h = 0xcbf29ce484222325ULL ^ seed;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return mix(h);
}
enum : std::uint64_t { kTagNone = 1, kTagNum = 2, kTagStr = 3, kTagBytes = 4, kTagPy2 = 5, kTagGlobal = 6, kTagId = 7, kTagBig = 8, kTagFloat = 9 };

/// Integral value of a number node if it is one (bool, int, integral float in int64 range).
std::optional<std::int64_t> integral(const Node& n) {
  if (n.kind == Kind::kBool || n.kind == Kind::kInt) return n.i;
  if (n.kind == Kind::kFloat && std::isfinite(n.f) && std::floor(n.f) == n.f && n.f >= -9.2e18 && n.f <= 9.2e18) {
    return static_cast<std::int64_t>(n.f);
  }
  return std::nullopt;
}
}  // namespace

ValueRef ValueStore::push(const Node& n) {
  // A slot holds a node index in 31 bits. 2^31 stored nodes would be 96 GiB of them; stop
  // before the index could wrap rather than alias another value.
  if (nodes_.size() >= (std::size_t{1} << 31)) throw std::length_error("more than 2^31 stored values in one pickle");
  nodes_.push_back(n);
  const ValueRef ref = push_slot(static_cast<std::uint32_t>(nodes_.size() - 1) << 1);
  inputs_from_ = ref + 1;
  const bool text = n.kind == Kind::kStr || n.kind == Kind::kBytes || n.kind == Kind::kPy2Str || n.kind == Kind::kByteArray;
  if (text && n.text.size() >= kLongText) long_texts_.push_back(ref);
  return ref;
}

namespace {
std::uint64_t read_le(const std::uint8_t* p, unsigned width) {
  std::uint64_t v = 0;
  for (unsigned k = 0; k < width; ++k) v |= static_cast<std::uint64_t>(p[k]) << (8 * k);
  return v;
}
/// Width of the length prefix of a counted string/bytes opcode, 0 for other opcodes.
unsigned counted_width(Op op) {
  switch (op) {
    case Op::SHORT_BINSTRING: case Op::SHORT_BINBYTES: case Op::SHORT_BINUNICODE: case Op::LONG1: return 1;
    case Op::BINSTRING: case Op::BINBYTES: case Op::BINUNICODE: case Op::LONG4: return 4;
    case Op::BINBYTES8: case Op::BINUNICODE8: case Op::BYTEARRAY8: return 8;
    default: return 0;
  }
}
}  // namespace

// The decoder read and checked these bytes when the opcode ran (lengths against the input,
// UTF-8, ...), so reading them again cannot fail; this yields what Machine::execute stored for
// the same argument before input scalars existed (see test_machine.cpp, "input scalars").
Node ValueStore::input_node(std::uint64_t offset) const {
  const std::uint8_t* p = input_.data() + offset;
  const Op op = *op_from_byte(p[0]);  // an opcode the decoder read here
  Node n;
  n.offset = offset;
  if (const unsigned w = counted_width(op); w != 0) {
    const std::uint64_t len = read_le(p + 1, w);
    n.text = std::string_view(reinterpret_cast<const char*>(p + 1 + w), static_cast<std::size_t>(len));
    switch (op) {
      case Op::LONG1:
      case Op::LONG4:
        if (auto small = le_bytes_to_int64(n.text)) {
          n.kind = Kind::kInt;
          n.i = *small;
          n.text = {};
        } else {
          n.kind = Kind::kBigInt;
        }
        break;
      case Op::SHORT_BINSTRING: case Op::BINSTRING: n.kind = Kind::kPy2Str; break;
      case Op::SHORT_BINBYTES: case Op::BINBYTES: case Op::BINBYTES8: n.kind = Kind::kBytes; break;
      case Op::BYTEARRAY8: n.kind = Kind::kByteArray; break;
      default: n.kind = Kind::kStr; break;  // the UNICODE family
    }
    return n;
  }
  switch (op) {
    case Op::BININT: n.kind = Kind::kInt; n.i = static_cast<std::int32_t>(static_cast<std::uint32_t>(read_le(p + 1, 4))); break;
    case Op::BININT1: n.kind = Kind::kInt; n.i = p[1]; break;
    case Op::BININT2: n.kind = Kind::kInt; n.i = static_cast<std::int64_t>(read_le(p + 1, 2)); break;
    case Op::BINFLOAT: {
      std::uint64_t bits = 0;
      for (unsigned k = 0; k < 8; ++k) bits = (bits << 8) | p[1 + k];
      n.kind = Kind::kFloat;
      std::memcpy(&n.f, &bits, sizeof bits);
      break;
    }
    case Op::NEWTRUE: n.kind = Kind::kBool; n.i = 1; break;
    case Op::NEWFALSE: n.kind = Kind::kBool; n.i = 0; break;
    case Op::NEXT_BUFFER: n.kind = Kind::kBuffer; break;
    case Op::EXT1: n.kind = Kind::kExt; n.i = p[1]; break;
    case Op::EXT2: n.kind = Kind::kExt; n.i = static_cast<std::int64_t>(read_le(p + 1, 2)); break;
    case Op::EXT4: n.kind = Kind::kExt; n.i = static_cast<std::int32_t>(static_cast<std::uint32_t>(read_le(p + 1, 4))); break;
    default: n.kind = Kind::kNone; break;  // NONE
  }
  return n;
}

ValueRef ValueStore::scalar(Kind kind, std::uint64_t offset, std::int64_t i, double f, std::string_view text) {
  Node n;
  n.kind = kind;
  n.offset = offset;
  if (kind == Kind::kFloat) {
    n.f = f;
  } else {
    n.i = i;
  }
  n.text = text;
  return push(n);
}

ValueRef ValueStore::tuple(std::uint64_t offset, const ValueRef* items, std::size_t n) {
  Node node;
  node.kind = Kind::kTuple;
  node.offset = offset;
  node.aux = static_cast<std::uint32_t>(sequences_.size());
  auto& seq = sequences_.emplace_back();
  seq.items.append(pool_, items, n);
  std::uint64_t h = mix(0x7475706c65ULL + n);
  std::uint32_t depth = 0;
  for (std::size_t k = 0; k < n; ++k) {
    depth = std::max(depth, this->depth(items[k]));
    if (!hashable(items[k])) node.unhashable = true;
    if (!node.unhashable) h = mix(h ^ (hash(items[k]) + 0x9e3779b97f4a7c15ULL + (h << 6)));
  }
  node.depth = depth + 1;
  node.i = static_cast<std::int64_t>(h);
  return push(node);
}

ValueRef ValueStore::list(std::uint64_t offset, const ValueRef* items, std::size_t n) {
  Node node;
  node.kind = Kind::kList;
  node.offset = offset;
  node.aux = static_cast<std::uint32_t>(sequences_.size());
  // The items go in before the list's own node is pushed: all_input_scalars compares them with
  // the values made so far.
  node.depth = add_list_items(sequences_.emplace_back(), items, n) + 1;
  return push(node);
}

ValueRef ValueStore::dict(std::uint64_t offset) {
  Node node;
  node.kind = Kind::kDict;
  node.offset = offset;
  node.depth = 1;
  node.aux = static_cast<std::uint32_t>(mappings_.size());
  mappings_.emplace_back();
  return push(node);
}

ValueRef ValueStore::set(std::uint64_t offset, bool frozen) {
  Node node;
  node.kind = frozen ? Kind::kFrozenSet : Kind::kSet;
  node.offset = offset;
  node.depth = 1;
  node.aux = static_cast<std::uint32_t>(sequences_.size());
  node.i = static_cast<std::int64_t>(mix(0x66726f7aULL));
  sequences_.emplace_back();
  return push(node);
}

template <typename Table, typename Rec>
ValueRef ValueStore::record(Kind kind, Table& table, Rec rec) {
  Node node;
  node.kind = kind;
  node.offset = rec.offset;
  node.aux = static_cast<std::uint32_t>(table.size());
  table.push_back(std::move(rec));
  return push(node);
}

ValueRef ValueStore::global(GlobalRec rec) { return record(Kind::kGlobal, globals_, rec); }
ValueRef ValueStore::call(CallRec rec) { return record(Kind::kCall, calls_, rec); }
ValueRef ValueStore::persistent(PersistentRec rec) { return record(Kind::kPersistent, persistents_, rec); }

void ValueStore::list_extend(ValueRef list, const ValueRef* items, std::size_t n) {
  Node& node = stored(list);
  if (n == 0) return;
  node.depth = std::max(node.depth, add_list_items(sequences_[node.aux], items, n) + 1);
}

std::uint32_t ValueStore::add_list_items(Sequence& seq, const ValueRef* items, std::size_t n) {
  if (n == 0) return 0;
  const bool run = consecutive(items, n);
  if (run && seq.run_size != 0 && items[0] == seq.run_first + seq.run_size) {
    seq.run_size += n;  // the run goes on
  } else if (run && seq.run_size == 0 && seq.items.empty()) {
    seq.run_first = items[0];  // an empty list's first items start a run
    seq.run_size = n;
  } else {
    write_out_run(seq);
    seq.items.append(pool_, items, n);
  }
  // Input scalars have depth 0. (A run's lowest ref is its first.)
  if (run ? items[0] >= inputs_from_ : all_input_scalars(items, n)) return 0;
  std::uint32_t deepest = 0;
  for (std::size_t k = 0; k < n; ++k) {
    const std::uint32_t slot = slots_[items[k]];
    if ((slot & kInputTag) == 0) deepest = std::max(deepest, nodes_[slot >> 1].depth);
  }
  return deepest;
}

void ValueStore::write_out_run(Sequence& seq) {
  if (seq.run_size == 0) return;
  seq.items.resize(pool_, seq.run_size, 0);
  for (std::size_t k = 0; k < seq.run_size; ++k) seq.items[k] = seq.run_first + static_cast<ValueRef>(k);
  seq.run_size = 0;
}

void ValueStore::list_set(ValueRef list, std::size_t index, ValueRef value) {
  Node& node = stored(list);
  write_out_run(sequences_[node.aux]);
  sequences_[node.aux].items[index] = value;
  node.depth = std::max(node.depth, depth(value) + 1);
}

bool ValueStore::dict_set(ValueRef dict, ValueRef key, ValueRef value, bool& replaced) {
  replaced = false;
  if (!hashable(key)) return false;
  const std::uint64_t h = hash(key);
  Node& node = stored(dict);
  auto& map = mappings_[node.aux];
  std::uint32_t found = UINT32_MAX;
  map.index.find(h, map.entries.size(), [&](std::uint32_t pos) {
    if (!equal(map.entries[pos].first, key)) return false;
    found = pos;
    return true;
  });
  if (found != UINT32_MAX) {
    map.entries[found].second = value;
    replaced = true;
    node.depth = std::max(node.depth, depth(value) + 1);
    return true;
  }
  map.entries.push_back(pool_, {key, value});
  map.index.insert(h, static_cast<std::uint32_t>(map.entries.size() - 1), map.entries.size(),
                   [&](std::size_t i) { return hash(map.entries[i].first); });
  node.depth = std::max({node.depth, depth(value) + 1, depth(key) + 1});
  return true;
}

bool ValueStore::set_add(ValueRef set, ValueRef item) {
  if (!hashable(item)) return false;
  const std::uint64_t h = hash(item);
  Node& node = stored(set);
  auto& seq = sequences_[node.aux];
  const bool present = seq.index.find(h, seq.items.size(), [&](std::uint32_t pos) { return equal(seq.items[pos], item); });
  if (present) return true;
  seq.items.push_back(pool_, item);
  seq.index.insert(h, static_cast<std::uint32_t>(seq.items.size() - 1), seq.items.size(),
                   [&](std::size_t i) { return hash(seq.items[i]); });
  node.i = static_cast<std::int64_t>(static_cast<std::uint64_t>(node.i) ^ mix(h));  // order-independent
  node.depth = std::max(node.depth, depth(item) + 1);
  return true;
}

Items ValueStore::items(ValueRef ref) const {
  if (is_input(ref)) return {};
  const Node& n = stored(ref);
  switch (n.kind) {
    case Kind::kTuple:
    case Kind::kList:
    case Kind::kSet:
    case Kind::kFrozenSet: {
      const Sequence& seq = sequences_[n.aux];
      if (seq.run_size != 0) return Items::run(seq.run_first, seq.run_size);
      return std::span<const ValueRef>(seq.items);
    }
    default:
      return {};
  }
}

std::span<const std::pair<ValueRef, ValueRef>> ValueStore::entries(ValueRef ref) const {
  if (is_input(ref)) return {};
  const Node& n = stored(ref);
  if (n.kind != Kind::kDict) return {};
  return mappings_[n.aux].entries;
}

bool ValueStore::hashable(ValueRef ref) const {
  if (is_input(ref)) return input_kind(slots_[ref] >> 1) != Kind::kByteArray;
  const Node& n = stored(ref);
  switch (n.kind) {
    case Kind::kList:
    case Kind::kDict:
    case Kind::kSet:
    case Kind::kByteArray:
      return false;
    case Kind::kTuple:
      return !n.unhashable;
    default:
      return true;
  }
}

std::uint64_t ValueStore::hash(ValueRef ref) const {
  const Node n = node(ref);
  switch (n.kind) {
    case Kind::kNone: return mix(kTagNone);
    case Kind::kBool:
    case Kind::kInt:
      return mix(kTagNum ^ mix(static_cast<std::uint64_t>(n.i)));
    case Kind::kFloat:
      if (auto v = integral(n)) return mix(kTagNum ^ mix(static_cast<std::uint64_t>(*v)));
      {
        std::uint64_t bits;
        std::memcpy(&bits, &n.f, sizeof bits);
        return mix(kTagFloat ^ bits);
      }
    case Kind::kBigInt: return hash_bytes(n.text, kTagBig);
    case Kind::kStr: return hash_bytes(n.text, kTagStr);
    case Kind::kPy2Str: return hash_bytes(n.text, core::is_ascii(n.text) ? kTagStr : kTagPy2);
    case Kind::kBytes: return hash_bytes(n.text, kTagBytes);
    case Kind::kTuple:
    case Kind::kFrozenSet:
      return static_cast<std::uint64_t>(n.i);
    case Kind::kGlobal: {
      const GlobalRec& g = globals_[n.aux];
      if (!g.resolved) return mix(kTagId ^ ref);
      return hash_bytes(g.name, hash_bytes(g.module, kTagGlobal));
    }
    default:
      return mix(kTagId ^ ref);
  }
}

bool ValueStore::equal(ValueRef a, ValueRef b) const {
  if (a == b) return true;
  {
    // Fast path for the usual keys (str, int): no worklist.
    const Node na = node(a);
    const Node nb = node(b);
    if (na.kind == Kind::kStr && nb.kind == Kind::kStr) return na.text == nb.text;
    if (na.kind == Kind::kInt && nb.kind == Kind::kInt) return na.i == nb.i;
  }
  // Explicit worklist: tuples nest, and nesting comes from the input.
  std::vector<std::pair<ValueRef, ValueRef>> work{{a, b}};
  while (!work.empty()) {
    auto [x, y] = work.back();
    work.pop_back();
    if (x == y) continue;
    const Node nx = node(x);
    const Node ny = node(y);
    const auto ix = integral(nx), iy = integral(ny);
    if (ix && iy) {
      if (*ix != *iy) return false;
      continue;
    }
    if (nx.kind == Kind::kFloat && ny.kind == Kind::kFloat) {
      if (!(nx.f == ny.f)) return false;
      continue;
    }
    auto text_kind = [](const Node& n) {
      if (n.kind == Kind::kStr) return 1;
      if (n.kind == Kind::kPy2Str) return core::is_ascii(n.text) ? 1 : 2;
      return 0;
    };
    if (text_kind(nx) != 0 || text_kind(ny) != 0) {
      if (text_kind(nx) != text_kind(ny) || nx.text != ny.text) return false;
      continue;
    }
    if (nx.kind != ny.kind) return false;
    switch (nx.kind) {
      case Kind::kNone: continue;
      case Kind::kBigInt:
      case Kind::kBytes:
        if (nx.text != ny.text) return false;
        continue;
      case Kind::kTuple: {
        const auto& ia = sequences_[nx.aux].items;
        const auto& ib = sequences_[ny.aux].items;
        if (ia.size() != ib.size() || nx.i != ny.i) return false;
        for (std::size_t k = 0; k < ia.size(); ++k) work.emplace_back(ia[k], ib[k]);
        continue;
      }
      case Kind::kFrozenSet: {
        const auto& sa = sequences_[nx.aux];
        const auto& sb = sequences_[ny.aux];
        if (sa.items.size() != sb.items.size() || nx.i != ny.i) return false;
        for (ValueRef item : sa.items) {
          const bool found = sb.index.find(hash(item), sb.items.size(), [&](std::uint32_t pos) { return equal(sb.items[pos], item); });
          if (!found) return false;
        }
        continue;
      }
      case Kind::kGlobal: {
        const GlobalRec& ga = globals_[nx.aux];
        const GlobalRec& gb = globals_[ny.aux];
        if (!ga.resolved || !gb.resolved || ga.module != gb.module || ga.name != gb.name) return false;
        continue;
      }
      default:
        return false;  // identity only, and x != y
    }
  }
  return true;
}

std::optional<std::string_view> ValueStore::as_text(ValueRef ref) const {
  const Node n = node(ref);
  if (n.kind == Kind::kStr) return n.text;
  if (n.kind == Kind::kPy2Str && core::is_ascii(n.text)) return n.text;
  return std::nullopt;
}

}  // namespace brine::pickle
