#include "analysis/nested_bytes.hpp"

#include <fmt/format.h>

#include <array>
#include <utility>

#include "core/text.hpp"

namespace brine::analysis {

using pickle::Kind;
using pickle::ValueRef;

namespace {

/// encodings.aliases entries (CPython 3.11, /usr/lib/python3.11/encodings/aliases.py) that name
/// the three modelled codecs; the module names themselves are found by import, as the search
/// function does.
constexpr std::array<std::pair<std::string_view, Codec>, 30> kAliases = {{
    {"646", Codec::kAscii}, {"ansi_x3.4_1968", Codec::kAscii}, {"ansi_x3_4_1968", Codec::kAscii},
    {"ansi_x3.4_1986", Codec::kAscii}, {"cp367", Codec::kAscii}, {"csascii", Codec::kAscii},
    {"ibm367", Codec::kAscii}, {"iso646_us", Codec::kAscii}, {"iso_646.irv_1991", Codec::kAscii},
    {"iso_ir_6", Codec::kAscii}, {"us", Codec::kAscii}, {"us_ascii", Codec::kAscii},
    {"8859", Codec::kLatin1}, {"cp819", Codec::kLatin1}, {"csisolatin1", Codec::kLatin1},
    {"ibm819", Codec::kLatin1}, {"iso8859", Codec::kLatin1}, {"iso8859_1", Codec::kLatin1},
    {"iso_8859_1", Codec::kLatin1}, {"iso_8859_1_1987", Codec::kLatin1}, {"iso_ir_100", Codec::kLatin1},
    {"l1", Codec::kLatin1}, {"latin", Codec::kLatin1}, {"latin1", Codec::kLatin1},
    {"u8", Codec::kUtf8}, {"utf", Codec::kUtf8}, {"utf8", Codec::kUtf8},
    {"utf8_ucs2", Codec::kUtf8}, {"utf8_ucs4", Codec::kUtf8}, {"cp65001", Codec::kUtf8},
}};

/// Modules of the encodings package (utf_8.py, latin_1.py, ascii.py).
constexpr std::array<std::pair<std::string_view, Codec>, 3> kModules = {{
    {"utf_8", Codec::kUtf8}, {"latin_1", Codec::kLatin1}, {"ascii", Codec::kAscii},
}};

bool ascii_alnum(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

template <std::size_t N>
std::optional<Codec> find_in(const std::array<std::pair<std::string_view, Codec>, N>& table, std::string_view key) {
  for (const auto& [name, codec] : table) {
    if (name == key) return codec;
  }
  return std::nullopt;
}

/// The text of a str argument, as the loader has it. A protocol 0/1 STRING is a str only after
/// the unpickler decodes it with its `encoding` (ASCII for pickle.load, UTF-8 for torch.load):
/// only ASCII bytes read the same under every one.
std::optional<std::string_view> str_value(const pickle::ValueStore& v, ValueRef r) {
  const pickle::Node& n = v.node(r);
  if (n.kind == Kind::kStr) return n.text;
  if (n.kind == Kind::kPy2Str && core::is_ascii(n.text)) return n.text;
  return std::nullopt;
}

LoaderBytes not_computable(std::string why) {
  LoaderBytes b;
  b.why = std::move(why);
  return b;
}

/// encode(text, encoding='utf-8', errors='strict') with `args` = (text[, encoding[, errors]]).
LoaderBytes encode_call(const pickle::ValueStore& v, pickle::Items args, std::string_view callee) {
  if (args.empty() || args.size() > 3) return not_computable(fmt::format("{} with {} arguments", callee, args.size()));
  const auto text = str_value(v, args[0]);
  if (!text) return not_computable(fmt::format("{} of a {} that is not a str the same under every unpickler encoding", callee,
                                               pickle::kind_name(v.node(args[0]).kind)));
  std::string_view encoding = "utf-8";  // CPython's default, not latin-1
  std::string_view errors = "strict";
  if (args.size() >= 2) {
    auto e = str_value(v, args[1]);
    if (!e) return not_computable(fmt::format("{} with an encoding argument that is not a str", callee));
    encoding = *e;
  }
  if (args.size() == 3) {
    auto e = str_value(v, args[2]);
    if (!e) return not_computable(fmt::format("{} with an errors argument that is not a str", callee));
    errors = *e;
  }
  const auto codec = lookup_codec(encoding);
  if (!codec) {
    return not_computable(fmt::format("{} with encoding {}, which brine does not model (only utf-8, latin-1 and ascii)", callee,
                                      core::py_repr_str(encoding, 40)));
  }
  std::string why;
  auto data = encode_text(*text, *codec, errors, why);
  if (!data) return not_computable(fmt::format("{}: {}", callee, why));
  LoaderBytes b;
  b.computed = true;
  b.data = std::move(*data);
  return b;
}

}  // namespace

std::optional<Codec> lookup_codec(std::string_view name) {
  // codecs.lookup lowercases the name, then encodings.normalize_encoding turns every run of
  // characters other than alphanumerics and '.' into one '_' between kept characters. Its
  // isalnum() is Unicode's: a non-ASCII name is refused rather than modelled.
  std::string norm;
  bool punct = false;
  for (char c : name) {
    if (static_cast<unsigned char>(c) >= 0x80 || c == '\0') return std::nullopt;
    c = core::ascii_lower_char(c);
    if (ascii_alnum(c) || c == '.') {
      if (punct && !norm.empty()) norm += '_';
      norm += c;
      punct = false;
    } else {
      punct = true;
    }
  }
  // encodings.search_function: the alias of the name, or of the name with '.' as '_'; without
  // one, the name itself as a module of the encodings package (never one with a '.'). An alias
  // of a codec not modelled here is not one of ours even if the name is also a module's.
  std::string underscored = norm;
  for (char& c : underscored) c = c == '.' ? '_' : c;
  if (auto c = find_in(kAliases, norm)) return c;
  if (auto c = find_in(kAliases, underscored)) return c;
  if (norm.find('.') != std::string::npos) return std::nullopt;
  return find_in(kModules, norm);
}

std::optional<std::string> encode_text(std::string_view wtf8, Codec codec, std::string_view errors, std::string& why) {
  const std::string_view codec_name = codec == Codec::kUtf8 ? "utf-8" : codec == Codec::kLatin1 ? "latin-1" : "ascii";
  std::string out;
  out.reserve(wtf8.size());
  std::size_t pos = 0;
  while (pos < wtf8.size()) {
    const std::uint32_t cp = core::next_codepoint(wtf8, pos);
    const bool ok = codec == Codec::kUtf8 ? (cp < 0xD800 || cp > 0xDFFF) : codec == Codec::kLatin1 ? cp <= 0xFF : cp <= 0x7F;
    if (ok) {
      if (codec == Codec::kUtf8) {
        core::append_wtf8(out, cp);
      } else {
        out += static_cast<char>(cp);
      }
      continue;
    }
    // CPython looks the handler up only when a character fails: errors='anything' is harmless
    // on text that encodes. ignore drops each failing code point, replace writes one '?' each.
    if (errors == "ignore") continue;
    if (errors == "replace") {
      out += '?';
      continue;
    }
    if (errors == "strict") {
      why = fmt::format("the {} codec cannot encode U+{:04X}: the loader raises UnicodeEncodeError", codec_name, cp);
    } else {
      why = fmt::format("the {} codec meets U+{:04X} with errors={}, an error handler brine does not model", codec_name, cp,
                        core::py_repr_str(errors, 40));
    }
    return std::nullopt;
  }
  return out;
}

LoaderBytes loader_bytes(const pickle::ValueStore& v, ValueRef value, const std::function<std::string_view(ValueRef)>& callee_name,
                         const std::unordered_set<ValueRef>& mutated) {
  // bytes(bytes(...)) copies: unwrapped in a loop, a bounded number of times.
  constexpr int kMaxCopies = 16;
  ValueRef cur = value;
  for (int copies = 0; copies <= kMaxCopies; ++copies) {
    const pickle::Node& n = v.node(cur);
    if (mutated.count(cur) != 0) {
      return not_computable(fmt::format("the {} is changed by a BUILD, SETITEM or APPEND", pickle::kind_name(n.kind)));
    }
    switch (n.kind) {
      case Kind::kBytes:
      case Kind::kByteArray: {
        LoaderBytes b;
        b.computed = true;
        b.data = std::string(n.text);
        return b;
      }
      case Kind::kPy2Str: {
        // A STRING is bytes only under encoding='bytes'; every other encoding makes it a str,
        // which a loader of bytes rejects (TypeError) before reading anything.
        LoaderBytes b;
        b.computed = true;
        b.data = std::string(n.text);
        return b;
      }
      case Kind::kCall: {
        const std::string_view callee = callee_name(cur);
        const auto& c = v.call_rec(cur);
        if (callee.empty()) return not_computable("the result of calling something other than a named global");
        if (c.kind != pickle::CallKind::kReduce || c.kwargs != pickle::kNoValue || v.node(c.args).kind != Kind::kTuple) {
          return not_computable(fmt::format("{} called other than with a plain argument tuple (REDUCE)", callee));
        }
        const auto args = v.items(c.args);
        if (callee == "_codecs.encode" || callee == "codecs.encode") return encode_call(v, args, callee);
        if (callee == "builtins.bytes" || callee == "builtins.bytearray") {
          if (args.empty()) {
            LoaderBytes b;
            b.computed = true;
            return b;
          }
          if (args.size() >= 2) return encode_call(v, args, callee);  // bytes(str, encoding[, errors])
          const Kind k = v.node(args[0]).kind;
          if (k != Kind::kBytes && k != Kind::kByteArray && k != Kind::kPy2Str && k != Kind::kCall) {
            return not_computable(fmt::format("{} of a {}", callee, pickle::kind_name(k)));
          }
          cur = args[0];
          continue;
        }
        return not_computable(fmt::format("the result of {}(...), whose bytes brine does not compute", callee));
      }
      default: return not_computable(fmt::format("a {} value, not bytes", pickle::kind_name(n.kind)));
    }
  }
  return not_computable(fmt::format("more than {} nested bytes() copies", kMaxCopies));
}

}  // namespace brine::analysis
