// Symbolic values: what an unpickler would build, without building or calling anything.
//
// Values live in one ValueStore per pickle and are referred to by index (ValueRef). A memo GET
// or DUP shares the reference — exactly like CPython shares the object — so a GET/DUP bomb costs
// one stack slot per opcode, never a copy. Containers are mutable the way Python's are: an
// APPEND to a list reached through the memo changes every place that list appears.
//
// Calls are records: kCall nodes say "this callable would be called with these arguments at
// this offset"; the result is an opaque object that later opcodes may give state (BUILD) or
// items (SETITEM/APPEND), and those are recorded too.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <compare>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <optional>
#include <ranges>
#include <span>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/byte_reader.hpp"
#include "core/chunked_vector.hpp"
#include "core/pool.hpp"
#include "pickle/hash_index.hpp"
#include "pickle/opcode.hpp"

namespace brine::pickle {

using ValueRef = std::uint32_t;
inline constexpr ValueRef kNoValue = UINT32_MAX;

enum class Kind : std::uint8_t {
  kNone,
  kBool,
  kInt,        ///< fits in int64
  kBigInt,     ///< little-endian two's-complement bytes in `text`
  kFloat,
  kStr,        ///< WTF-8 text
  kBytes,
  kPy2Str,     ///< STRING/BINSTRING: the loader turns these bytes into str (or bytes with encoding='bytes')
  kByteArray,
  kTuple,
  kList,
  kDict,
  kSet,
  kFrozenSet,
  kGlobal,      ///< what find_class(module, name) returns
  kCall,        ///< the result of calling or instantiating something
  kPersistent,  ///< what persistent_load(pid) returns
  kExt,         ///< an EXT1/2/4 extension-registry reference
  kBuffer,      ///< an out-of-band buffer (NEXT_BUFFER)
};

std::string_view kind_name(Kind kind);

/// How a kCall came about.
enum class CallKind : std::uint8_t {
  kReduce,     ///< REDUCE: callable(*args)
  kNewObj,     ///< NEWOBJ: cls.__new__(cls, *args)
  kNewObjEx,   ///< NEWOBJ_EX: cls.__new__(cls, *args, **kwargs)
  kInst,       ///< INST: cls(*args) (or cls.__new__(cls) with no args)
  kObj,        ///< OBJ: same as INST, class from the stack
};

struct GlobalRec {
  std::string_view module;
  std::string_view name;
  std::uint64_t offset;
  Op op;                    ///< GLOBAL, STACK_GLOBAL or INST
  std::uint8_t protocol;    ///< the protocol in force when it was resolved (PROTO seen so far)
  bool resolved = true;     ///< false: STACK_GLOBAL operands were not constant strings
  ValueRef module_value = kNoValue;  ///< for unresolved STACK_GLOBALs: the operands
  ValueRef name_value = kNoValue;
};

struct CallRec {
  ValueRef callable;
  ValueRef args;                 ///< normally a kTuple; anything if the pickle put something else there
  ValueRef kwargs = kNoValue;    ///< NEWOBJ_EX only
  CallKind kind;
  Op op;
  std::uint64_t offset;
  ValueRef state = kNoValue;     ///< the last state BUILD gave the result, if any
};

struct PersistentRec {
  ValueRef pid;
  std::uint64_t offset;
  Op op;
};

/// One value, as the store's readers see it. Scalars are stored inline; containers and records
/// index a side table. Scalars read straight from the input (ValueStore::input_scalar) have no
/// stored Node: node() decodes one from their opcode's bytes on demand.
struct Node {
  Kind kind = Kind::kNone;
  bool readonly = false;       ///< READONLY_BUFFER applied
  bool unhashable = false;     ///< tuples: some item cannot be hashed
  std::uint32_t depth = 0;     ///< container nesting depth when last changed (scalars: 0)
  std::uint32_t aux = 0;       ///< index into the kind's side table
  union {
    std::int64_t i = 0;        ///< kBool, kInt, kExt (code); kTuple/kFrozenSet: cached hash
    double f;                  ///< kFloat
  };
  std::string_view text;       ///< kStr, kBytes, kPy2Str, kByteArray, kBigInt
  std::uint64_t offset = 0;    ///< offset of the opcode that created the value
};

/// The items of a tuple, list, set or frozenset, as ValueStore::items gives them: a view, read
/// like a span of refs. A list whose items are consecutive refs, first, first + 1, ... (what
/// MARK, scalars, APPENDS make: most of a large list) is kept as that run rather than one ref
/// per item (bench/README.md finding 20), and its view makes each ref from the run.
class Items {
 public:
  class iterator {
   public:
    using iterator_concept = std::random_access_iterator_tag;
    using iterator_category = std::random_access_iterator_tag;
    using value_type = ValueRef;
    using difference_type = std::ptrdiff_t;
    using reference = ValueRef;
    using pointer = void;
    iterator() = default;
    iterator(const ValueRef* data, ValueRef first, difference_type i) : data_(data), first_(first), i_(i) {}
    ValueRef operator*() const { return data_ != nullptr ? data_[i_] : static_cast<ValueRef>(first_ + i_); }
    ValueRef operator[](difference_type n) const { return *(*this + n); }
    iterator& operator++() { ++i_; return *this; }
    iterator operator++(int) { iterator t = *this; ++i_; return t; }
    iterator& operator--() { --i_; return *this; }
    iterator operator--(int) { iterator t = *this; --i_; return t; }
    iterator& operator+=(difference_type n) { i_ += n; return *this; }
    iterator& operator-=(difference_type n) { i_ -= n; return *this; }
    friend iterator operator+(iterator it, difference_type n) { return it += n; }
    friend iterator operator+(difference_type n, iterator it) { return it += n; }
    friend iterator operator-(iterator it, difference_type n) { return it -= n; }
    friend difference_type operator-(const iterator& a, const iterator& b) { return a.i_ - b.i_; }
    friend bool operator==(const iterator& a, const iterator& b) { return a.i_ == b.i_; }
    friend auto operator<=>(const iterator& a, const iterator& b) { return a.i_ <=> b.i_; }

   private:
    const ValueRef* data_ = nullptr;
    ValueRef first_ = 0;
    difference_type i_ = 0;
  };

  Items() = default;
  Items(std::span<const ValueRef> refs) : data_(refs.data()), size_(refs.size()) {}  // NOLINT: a span is a view of items
  /// The run first, first + 1, ..., first + n - 1.
  static Items run(ValueRef first, std::size_t n) {
    Items items;
    items.first_ = first;
    items.size_ = n;
    return items;
  }
  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] bool empty() const { return size_ == 0; }
  ValueRef operator[](std::size_t i) const { return data_ != nullptr ? data_[i] : static_cast<ValueRef>(first_ + i); }
  [[nodiscard]] ValueRef front() const { return (*this)[0]; }
  [[nodiscard]] ValueRef back() const { return (*this)[size_ - 1]; }
  /// The items from `offset` on (at most `count` of them), as std::span::subspan.
  [[nodiscard]] Items subspan(std::size_t offset, std::size_t count = SIZE_MAX) const {
    const std::size_t n = std::min(count, size_ - offset);
    return data_ != nullptr ? Items(std::span<const ValueRef>(data_ + offset, n)) : run(first_ + static_cast<ValueRef>(offset), n);
  }
  /// The first `count` items (count <= size()), as std::span::first.
  [[nodiscard]] Items first(std::size_t count) const { return subspan(0, count); }
  [[nodiscard]] iterator begin() const { return {data_, first_, 0}; }
  [[nodiscard]] iterator end() const { return {data_, first_, static_cast<std::ptrdiff_t>(size_)}; }

 private:
  const ValueRef* data_ = nullptr;  ///< nullptr: the run first_, first_ + 1, ... (or no items)
  ValueRef first_ = 0;
  std::size_t size_ = 0;
};

static_assert(std::random_access_iterator<Items::iterator>);

}  // namespace brine::pickle

/// Items is a view: its iterators do not point into it, so they outlive it (as a span's do).
template <>
inline constexpr bool std::ranges::enable_borrowed_range<brine::pickle::Items> = true;

namespace brine::pickle {

namespace detail {
/// What an input scalar's opcode byte makes (kNotInput: not an input scalar; kDecode: LONG1/
/// LONG4, int or big int depending on the bytes).
inline constexpr auto kNotInput = static_cast<Kind>(0xFF);
inline constexpr auto kDecode = static_cast<Kind>(0xFE);
constexpr std::array<Kind, 256> make_input_kinds() {
  std::array<Kind, 256> t{};
  for (auto& k : t) k = kNotInput;
  auto set = [&t](Op op, Kind k) { t[info(op).byte] = k; };
  for (Op op : {Op::BININT, Op::BININT1, Op::BININT2}) set(op, Kind::kInt);
  for (Op op : {Op::LONG1, Op::LONG4}) set(op, kDecode);
  for (Op op : {Op::SHORT_BINSTRING, Op::BINSTRING}) set(op, Kind::kPy2Str);
  for (Op op : {Op::SHORT_BINBYTES, Op::BINBYTES, Op::BINBYTES8}) set(op, Kind::kBytes);
  set(Op::BYTEARRAY8, Kind::kByteArray);
  for (Op op : {Op::SHORT_BINUNICODE, Op::BINUNICODE, Op::BINUNICODE8}) set(op, Kind::kStr);
  set(Op::BINFLOAT, Kind::kFloat);
  for (Op op : {Op::NEWTRUE, Op::NEWFALSE}) set(op, Kind::kBool);
  set(Op::NONE, Kind::kNone);
  set(Op::NEXT_BUFFER, Kind::kBuffer);
  for (Op op : {Op::EXT1, Op::EXT2, Op::EXT4}) set(op, Kind::kExt);
  return t;
}
inline constexpr std::array<Kind, 256> kInputKind = make_input_kinds();
/// Width of the length prefix of the opcodes that make str, bytes, bytearray or py2 str input
/// scalars (their text follows it); 0 for every other byte.
constexpr std::array<std::uint8_t, 256> make_text_widths() {
  std::array<std::uint8_t, 256> t{};
  for (Op op : {Op::SHORT_BINSTRING, Op::SHORT_BINBYTES, Op::SHORT_BINUNICODE}) t[info(op).byte] = 1;
  for (Op op : {Op::BINSTRING, Op::BINBYTES, Op::BINUNICODE}) t[info(op).byte] = 4;
  for (Op op : {Op::BINBYTES8, Op::BINUNICODE8, Op::BYTEARRAY8}) t[info(op).byte] = 8;
  return t;
}
inline constexpr std::array<std::uint8_t, 256> kTextWidth = make_text_widths();
}  // namespace detail

class ValueStore {
 public:
  ValueStore() = default;
  /// `input`: the bytes the pickle is decoded from (offsets are relative to it); input_scalar()
  /// values are read from it, so it must outlive the store (string values view it anyway).
  explicit ValueStore(core::Bytes input) : input_(input) {}
  /// Texts at least this long are listed as they are created (for_each_text); input_scalar's
  /// text_size only decides this.
  static constexpr std::size_t kLongText = 16;

  // --- creation ---
  /// True for the opcodes whose value is a scalar fully determined by the opcode's own bytes in
  /// the input (binary ints, floats, strings, bytes, None/True/False, NEXT_BUFFER, EXT codes).
  static bool input_scalar_op(Op op) { return detail::kInputKind[info(op).byte] != detail::kNotInput; }
  /// The value of the input_scalar_op opcode at `offset` of the input, which the decoder has
  /// already read and validated there. Costs one 4-byte slot: node() decodes it when asked, and
  /// its text is a view into the input, exactly as the decoder's argument was. (Past 2 GiB into
  /// the input an offset does not fit a slot: the value is stored as the Node node() would give.)
  ValueRef input_scalar(std::uint64_t offset) { return input_scalar(offset, input_text_size(offset)); }
  /// The same, for a caller that has the decoded instruction: `text_size` is the size of its
  /// text argument for the str/bytes/bytearray/py2 str opcodes (the decoder's Arg::a), 0 for the
  /// others. It only decides whether the value joins the long texts (for_each_text).
  ValueRef input_scalar(std::uint64_t offset, std::size_t text_size) {
    if (offset < kMaxInputOffset) [[likely]] {
      const ValueRef ref = push_slot(input_slot(offset));
      if (text_size >= kLongText) [[unlikely]] long_texts_.push_back(ref);
      return ref;
    }
    return push(input_node(offset));
  }
  /// Many input scalars at once (Machine::take_predecoded), for opcodes at offsets below
  /// kMaxInputOffset: the caller writes input_slot(offset) for each at [0, k) of
  /// input_scalar_space(n) (k <= n), then add_input_scalars(k) makes them the values size(),
  /// size() + 1, ... A text of kLongText bytes or more among them is named by add_long_text.
  [[nodiscard]] static constexpr std::uint32_t input_slot(std::uint64_t offset) {
    return (static_cast<std::uint32_t>(offset) << 1) | kInputTag;
  }
  [[nodiscard]] static constexpr bool input_slot_fits(std::uint64_t offset) { return offset < kMaxInputOffset; }
  std::uint32_t* input_scalar_space(std::size_t n) { return slots_.space(pool_, n); }
  void add_input_scalars(std::size_t k) { slots_.grow_into(k); }
  /// Capacity for `n` values (a size hint for a large pickle).
  void reserve(std::size_t n) { slots_.reserve(pool_, n); }
  void add_long_text(ValueRef ref) { long_texts_.push_back(ref); }
  ValueRef scalar(Kind kind, std::uint64_t offset, std::int64_t i = 0, double f = 0, std::string_view text = {});
  ValueRef tuple(std::uint64_t offset, const ValueRef* items, std::size_t n);
  ValueRef list(std::uint64_t offset, const ValueRef* items, std::size_t n);
  ValueRef dict(std::uint64_t offset);
  ValueRef set(std::uint64_t offset, bool frozen);
  ValueRef global(GlobalRec rec);
  ValueRef call(CallRec rec);
  ValueRef persistent(PersistentRec rec);

  // --- containers (Python semantics) ---
  /// Appends to a kList.
  void list_extend(ValueRef list, const ValueRef* items, std::size_t n);
  /// list[index] = value on a kList (index already bounds-checked).
  void list_set(ValueRef list, std::size_t index, ValueRef value);
  /// d[key] = value on a kDict; returns false if the key is unhashable (the loader raises).
  /// Sets `replaced` when the key was already present (CPython keeps the first key object).
  bool dict_set(ValueRef dict, ValueRef key, ValueRef value, bool& replaced);
  /// Adds to a kSet/kFrozenSet under construction; false if the item is unhashable.
  bool set_add(ValueRef set, ValueRef item);

  // --- access ---
  /// The value (by value: input scalars are decoded from the input).
  [[nodiscard]] Node node(ValueRef ref) const {
    const std::uint32_t s = slots_[ref];
    return (s & kInputTag) != 0 ? input_node(s >> 1) : nodes_[s >> 1];
  }
  [[nodiscard]] Kind kind(ValueRef ref) const {
    const std::uint32_t s = slots_[ref];
    return (s & kInputTag) != 0 ? input_kind(s >> 1) : nodes_[s >> 1].kind;
  }
  /// True for a value that holds no other value and is no record (no container, global, call
  /// or persistent load): walkers of the object graph can skip it.
  [[nodiscard]] bool leaf(ValueRef ref) const {
    if (is_input(ref)) return true;
    switch (stored(ref).kind) {
      case Kind::kTuple: case Kind::kList: case Kind::kDict: case Kind::kSet: case Kind::kFrozenSet:
      case Kind::kGlobal: case Kind::kCall: case Kind::kPersistent:
        return false;
      default:
        return true;
    }
  }
  /// Marks a READONLY_BUFFER result (a stored scalar).
  void set_readonly(ValueRef ref) { stored(ref).readonly = true; }
  /// Number of values created (what max-values counts).
  [[nodiscard]] std::size_t size() const { return slots_.size(); }
  /// Number of values with a stored Node (all but the input scalars).
  [[nodiscard]] std::size_t stored_size() const { return nodes_.size(); }
  /// Items of a kTuple, kList, kSet or kFrozenSet.
  [[nodiscard]] Items items(ValueRef ref) const;
  /// Entries of a kDict, in insertion order.
  [[nodiscard]] std::span<const std::pair<ValueRef, ValueRef>> entries(ValueRef ref) const;
  [[nodiscard]] const GlobalRec& global_rec(ValueRef ref) const { return globals_[stored(ref).aux]; }
  [[nodiscard]] const CallRec& call_rec(ValueRef ref) const { return calls_[stored(ref).aux]; }
  /// Records the state BUILD gives a call's result.
  void set_call_state(ValueRef call, ValueRef state) { calls_[stored(call).aux].state = state; }
  [[nodiscard]] const PersistentRec& persistent_rec(ValueRef ref) const { return persistents_[stored(ref).aux]; }

  /// True for kinds Python can hash (tuples only if all their items can).
  [[nodiscard]] bool hashable(ValueRef ref) const;
  /// Python == for hashable values (numbers across int/bool/float, str vs ASCII py2 str,
  /// tuples item by item); other values compare by identity.
  [[nodiscard]] bool equal(ValueRef a, ValueRef b) const;
  [[nodiscard]] std::uint64_t hash(ValueRef ref) const;

  /// Calls fn(text) for every str, bytes, bytearray and py2 str value whose text is at least
  /// `min_size` bytes, in creation order: what node(ref).text is for each of them, without
  /// decoding a Node per value (an input scalar is recognised from its opcode byte and length).
  ///
  /// From kLongText bytes up, only the values recorded as long texts when they were created are
  /// looked at (a big pickle's millions of short strings and ints are not read again).
  template <typename F>
  void for_each_text(std::size_t min_size, F&& fn) const {
    if (min_size >= kLongText) {
      for (const ValueRef ref : long_texts_) {
        if (const auto t = text_of_slot(slots_[ref]); t && t->size() >= min_size) fn(*t);
      }
      return;
    }
    const std::uint32_t* slots = slots_.data();
    const std::size_t count = slots_.size();
    for (std::size_t ref = 0; ref < count; ++ref) {
      if (const auto t = text_of_slot(slots[ref]); t && t->size() >= min_size) fn(*t);
    }
  }

  /// The value as text if it is a str (or a py2 str that every encoding reads the same way).
  [[nodiscard]] std::optional<std::string_view> as_text(ValueRef ref) const;

 private:
  // Arrays that grow as items arrive live in pool_ (huge pages once large; see core/pool.hpp).
  struct Sequence {
    core::PoolVec<ValueRef> items;  ///< empty while run_size is not 0
    HashIndex index;  // sets only
    /// Lists only: while not 0, the items are the run run_first, run_first + 1, ... (see Items).
    ValueRef run_first = 0;
    std::size_t run_size = 0;
  };
  /// True if items[k] == items[0] + k for every k < n (n > 0).
  static bool consecutive(const ValueRef* items, std::size_t n) {
    // Differences OR-ed together, no early exit: a loop that stopped at the first difference
    // cost 145 M instructions against 131 M on the p4 pickle (bench/README.md finding 20).
    ValueRef differ = 0;
    for (std::size_t k = 0; k < n; ++k) differ |= (items[k] - static_cast<ValueRef>(k)) ^ items[0];
    return differ == 0;
  }
  /// A list kept as a run gets its items written out (before one is replaced or a non-run
  /// follows).
  void write_out_run(Sequence& seq);
  /// Adds items to a list's sequence (extending or starting a run where they allow it) and gives
  /// the depth of the deepest of them: LIST and APPEND/APPENDS both.
  std::uint32_t add_list_items(Sequence& seq, const ValueRef* items, std::size_t n);
  struct Mapping {
    core::PoolVec<std::pair<ValueRef, ValueRef>> entries;
    HashIndex index;
  };
  /// A slot holds either (opcode offset << 1) | kInputTag (an input scalar) or (index into
  /// nodes_) << 1: 4 bytes per value, the largest table of a big pickle.
  static constexpr std::uint32_t kInputTag = 1;
  static constexpr std::uint64_t kMaxInputOffset = std::uint64_t{1} << 31;

  /// True if every one of the n refs is an input scalar created after the last stored node, so
  /// none has a Node to look at: one pass over the refs, without a slot load each (a big list's
  /// APPENDS of scalars; bench/README.md finding 20).
  [[nodiscard]] bool all_input_scalars(const ValueRef* items, std::size_t n) const {
    ValueRef lowest = kNoValue;
    for (std::size_t k = 0; k < n; ++k) lowest = std::min(lowest, items[k]);
    return lowest >= inputs_from_;
  }
  ValueRef push_slot(std::uint32_t slot) {
    slots_.push_back(pool_, slot);
    return static_cast<ValueRef>(slots_.size() - 1);
  }
  ValueRef push(const Node& n);
  /// The stored node of a value that is not an input scalar (containers, records, any value
  /// that was not created by input_scalar).
  [[nodiscard]] const Node& stored(ValueRef ref) const { return nodes_[slots_[ref] >> 1]; }
  [[nodiscard]] Node& stored(ValueRef ref) { return nodes_[slots_[ref] >> 1]; }
  [[nodiscard]] bool is_input(ValueRef ref) const { return (slots_[ref] & kInputTag) != 0; }
  [[nodiscard]] std::uint32_t depth(ValueRef ref) const { return is_input(ref) ? 0 : stored(ref).depth; }
  [[nodiscard]] Node input_node(std::uint64_t offset) const;
  /// Size of the text of the input scalar at `offset` (0 for opcodes without text).
  [[nodiscard]] std::size_t input_text_size(std::uint64_t offset) const {
    static_assert(std::endian::native == std::endian::little, "length prefixes are read in place");
    const unsigned width = detail::kTextWidth[input_[offset]];
    if (width == 0) return 0;
    std::uint64_t len = 0;
    std::memcpy(&len, input_.data() + offset + 1, width);  // little-endian; checked by the decoder
    return static_cast<std::size_t>(len);
  }
  /// The text of the value in slot `s` if it is a str, bytes, bytearray or py2 str (node(ref).text
  /// for those), else nothing. An input scalar is read from its opcode byte and length prefix,
  /// which the decoder checked, without decoding a Node.
  [[nodiscard]] std::optional<std::string_view> text_of_slot(std::uint32_t s) const {
    if ((s & kInputTag) != 0) {
      const std::uint64_t offset = s >> 1;
      const unsigned width = detail::kTextWidth[input_[offset]];
      if (width == 0) return std::nullopt;
      return std::string_view(reinterpret_cast<const char*>(input_.data() + offset + 1 + width), input_text_size(offset));
    }
    const Node& n = nodes_[s >> 1];
    const bool text = n.kind == Kind::kStr || n.kind == Kind::kBytes || n.kind == Kind::kPy2Str || n.kind == Kind::kByteArray;
    if (!text) return std::nullopt;
    return n.text;
  }
  [[nodiscard]] Kind input_kind(std::uint64_t offset) const {
    const Kind k = detail::kInputKind[input_[offset]];
    return k == detail::kDecode ? input_node(offset).kind : k;
  }
  /// A node for a record kept in a side table (globals, calls, persistent loads).
  template <typename Table, typename Rec>
  ValueRef record(Kind kind, Table& table, Rec rec);

  core::Pool pool_;                               // first: the arrays below live in it
  core::Bytes input_;
  core::PoolVec<std::uint32_t> slots_;            // one per value
  core::ChunkedVector<Node> nodes_;               // values that are not input scalars
  core::ChunkedVector<Sequence, 12> sequences_;   // tuples, lists, sets
  core::ChunkedVector<Mapping, 12> mappings_;
  core::ChunkedVector<GlobalRec, 10> globals_;
  core::ChunkedVector<CallRec, 12> calls_;
  core::ChunkedVector<PersistentRec, 10> persistents_;
  /// Every value from this ref on is an input scalar (one past the last value with a stored Node).
  ValueRef inputs_from_ = 0;
  /// Values whose text has at least kLongText bytes, in creation order.
  std::vector<ValueRef> long_texts_;
};

}  // namespace brine::pickle
