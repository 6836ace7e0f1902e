#include "container/numpy_dtype.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <optional>
#include <set>

namespace brine::container {

namespace {

using pylit::Kind;
using pylit::Value;
using Status = DtypeResolution::Status;

// The strings are stored in the rows, not pointed to: a table of pointers is relocated (written)
// by the dynamic loader at every start of the position-independent binary, 14 pages of it.
struct Row {
  char spelling_chars[24];  // NUL-terminated; the longest spelling has 21 characters
  char str_chars[8];        // the longest dtype.str has 7
  std::uint32_t itemsize;
  bool has_object;
  char kind;
  [[nodiscard]] constexpr std::string_view spelling() const { return spelling_chars; }
  [[nodiscard]] constexpr std::string_view str() const { return str_chars; }
};

// Every dtype string numpy accepted among tools/gen_numpy_dtype_table.py's candidates, sorted.
constexpr Row kRows[] = {
#include "container/numpy_dtype_table.inc"
};
// (A string longer than its array does not compile: C++ needs room for the NUL.)

DtypeResolution fail(Status st, std::string why) {
  DtypeResolution r;
  r.status = st;
  r.why = std::move(why);
  return r;
}

std::string quoted(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 60)) {
    const auto u = static_cast<unsigned char>(c);
    out += (u >= 0x20 && u < 0x7F && c != '\'') ? std::string(1, c) : fmt::format("\\x{:02x}", u);
  }
  return "'" + out + (s.size() > 60 ? "...'" : "'");
}

/// [<>|=](S|a|U|V)<n>: numpy's rule for sized flexible strings beyond the table (checked by the generator).
std::optional<NumpyDtype> flexible_sized(std::string_view s) {
  char order = 0;
  if (!s.empty() && (s[0] == '<' || s[0] == '>' || s[0] == '|' || s[0] == '=')) {
    order = s[0];
    s.remove_prefix(1);
  }
  if (s.size() < 2 || std::string_view("SaUV").find(s[0]) == std::string_view::npos || s[1] < '1' || s[1] > '9') return std::nullopt;
  std::uint64_t n = 0;
  for (char c : s.substr(1)) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
    if (n > (1u << 28)) return std::nullopt;  // far below numpy's int itemsize limit
  }
  NumpyDtype d;
  d.kind = s[0] == 'a' ? 'S' : s[0];
  d.itemsize = d.kind == 'U' ? n * 4 : n;
  d.str = d.kind == 'U' ? fmt::format("{}U{}", order == '>' ? '>' : '<', n) : fmt::format("|{}{}", d.kind, n);
  return d;
}

DtypeResolution with_shape(const NumpyDtype& base, const Value& shape);

DtypeResolution fields(const Value& descr);

}  // namespace

DtypeResolution numpy_dtype_from_string(std::string_view s) {
  const auto* end = std::end(kRows);
  const auto* it = std::lower_bound(std::begin(kRows), end, s, [](const Row& r, std::string_view k) { return r.spelling() < k; });
  DtypeResolution r;
  if (it != end && it->spelling() == s) {
    r.dtype.has_object = it->has_object;
    r.dtype.itemsize = it->itemsize;
    r.dtype.kind = it->kind;
    r.dtype.str = std::string(it->str());
    return r;
  }
  if (auto d = flexible_sized(s)) {
    r.dtype = std::move(*d);
    return r;
  }
  return fail(Status::kUnresolved, fmt::format("dtype string {} is not one brine resolves exactly", quoted(s)));
}

DtypeResolution numpy_dtype_from_descr(const Value& descr) {
  switch (descr.kind) {
    case Kind::kStr: return numpy_dtype_from_string(descr.text);
    case Kind::kTuple: {
      // numpy.dtype((descr_to_dtype(descr[0]), descr[1])); further items are ignored.
      if (descr.items.size() < 2) return fail(Status::kInvalid, "a dtype tuple with fewer than two items");
      auto base = numpy_dtype_from_descr(descr.items[0]);
      if (!base.ok()) return base;
      return with_shape(base.dtype, descr.items[1]);
    }
    case Kind::kList:
    case Kind::kDict:  // iterating a dict yields its keys
      return fields(descr);
    case Kind::kSet: return fail(Status::kUnresolved, "a set of fields (its iteration order is Python's hash order)");
    default: return fail(Status::kInvalid, "descr is not a valid dtype descriptor");
  }
}

namespace {

DtypeResolution with_shape(const NumpyDtype& base, const Value& shape) {
  if (base.itemsize == 0 && base.flexible() && !base.structured && !base.subarray) {
    return fail(Status::kUnresolved, "an unsized flexible dtype in a tuple (numpy reads the second item as its size)");
  }
  std::vector<std::int64_t> dims;
  if (shape.is_int()) {
    if (shape.big) return fail(Status::kInvalid, "a sub-array dimension does not fit");
    dims.push_back(shape.integer);
    if (shape.integer == 1) return DtypeResolution{Status::kOk, base, {}};  // (type, 1): a deprecated synonym of type
  } else if (shape.kind == Kind::kTuple) {
    if (shape.items.empty()) return DtypeResolution{Status::kOk, base, {}};  // (type, ()) is type
    for (const auto& d : shape.items) {
      if (!d.is_int()) return fail(Status::kUnresolved, "a sub-array shape that is not all ints");
      if (d.big) return fail(Status::kInvalid, "a sub-array dimension does not fit");
      dims.push_back(d.integer);
    }
  } else {
    return fail(Status::kUnresolved, "a dtype tuple whose second item is not a shape");
  }
  if (dims.size() > 32) return fail(Status::kInvalid, "a sub-array with more than 32 dimensions");
  std::uint64_t n = 1;
  for (auto d : dims) {
    if (d < 0 || d > INT32_MAX) return fail(Status::kInvalid, "a negative or oversized sub-array dimension");
    const auto u = static_cast<std::uint64_t>(d);
    if (u != 0 && n > (1ull << 40) / u) return fail(Status::kInvalid, "a sub-array too large");
    n *= u;
  }
  DtypeResolution r;
  r.dtype.has_object = base.has_object;  // the sub-array descr copies its base's flags
  r.dtype.itemsize = base.itemsize * n;
  if (base.itemsize != 0 && r.dtype.itemsize / base.itemsize != n) return fail(Status::kInvalid, "a sub-array too large");
  r.dtype.kind = 'V';
  r.dtype.subarray = true;
  return r;
}

DtypeResolution fields(const Value& descr) {
  // The field entries in iteration order: list items, or dict keys.
  std::vector<const Value*> entries;
  for (std::size_t i = 0; i < descr.items.size(); i += descr.kind == Kind::kDict ? 2 : 1) entries.push_back(&descr.items[i]);
  DtypeResolution out;
  out.dtype.kind = 'V';
  out.dtype.structured = true;
  std::set<std::string> taken;  // names and str titles must all differ
  std::uint64_t offset = 0;
  for (const Value* f : entries) {
    // `name, descr_str[, shape] = field`: unpacking iterates the field.
    std::vector<Value> parts;
    if (f->kind == Kind::kStr) {
      // Each character is a one-character str.
      for (std::size_t i = 0; i < f->text.size();) {
        std::size_t n = 1;
        const auto lead = static_cast<unsigned char>(f->text[i]);
        if (lead >= 0xF0) n = 4; else if (lead >= 0xE0) n = 3; else if (lead >= 0xC0) n = 2;
        Value c;
        c.kind = Kind::kStr;
        c.text = f->text.substr(i, n);
        parts.push_back(std::move(c));
        i += n;
      }
    } else if (f->kind == Kind::kTuple || f->kind == Kind::kList) {
      parts = f->items;
    } else if (f->kind == Kind::kDict) {
      for (std::size_t i = 0; i < f->items.size(); i += 2) parts.push_back(f->items[i]);
    } else if (f->kind == Kind::kSet) {
      return fail(Status::kUnresolved, "a field given as a set (its iteration order is Python's hash order)");
    } else {
      return fail(Status::kInvalid, "a field that is not a sequence");
    }
    if (parts.size() != 2 && parts.size() != 3) return fail(Status::kInvalid, "a field with neither 2 nor 3 items");
    auto dt = numpy_dtype_from_descr(parts[1]);
    if (!dt.ok()) return dt;
    if (parts.size() == 3) {
      dt = with_shape(dt.dtype, parts[2]);
      if (!dt.ok()) return dt;
    }
    // Padding: name '' and a void type without names (plain V<n>, or any sub-array) is dropped.
    const bool is_void = dt.dtype.subarray || (dt.dtype.kind == 'V' && !dt.dtype.structured);
    const bool is_pad = parts[0].is_str("") && is_void && !dt.dtype.structured;
    if (!is_pad) {
      const Value* name = &parts[0];
      const Value* title = nullptr;
      if (name->kind == Kind::kTuple) {
        if (name->items.size() != 2) return fail(Status::kInvalid, "a (title, name) pair that is not a pair");
        title = &name->items[0];
        name = &name->items[1];
      }
      if (name->kind != Kind::kStr) return fail(Status::kUnresolved, "a field name that is not a str");
      if (name->text.empty()) return fail(Status::kUnresolved, "an empty field name");
      if (!taken.insert(name->text).second) return fail(Status::kInvalid, "a repeated field name");
      if (title != nullptr && title->kind != Kind::kNone) {
        if (title->kind != Kind::kStr) return fail(Status::kUnresolved, "a field title that is not a str");
        if (!taken.insert(title->text).second) return fail(Status::kInvalid, "a field title equal to a name or title");
      }
      out.dtype.has_object = out.dtype.has_object || dt.dtype.has_object;
    }
    offset += dt.dtype.itemsize;
    if (offset > (1ull << 40)) return fail(Status::kInvalid, "a structured dtype too large");
  }
  out.dtype.itemsize = offset;
  return out;
}

}  // namespace

}  // namespace brine::container
