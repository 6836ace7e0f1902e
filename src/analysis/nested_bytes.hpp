// The bytes an approved loader function deserializes (a rules entry with "loads": "argN", e.g.
// torch.storage._load_from_bytes(b) runs torch.load on b), computed as CPython computes them, or
// the reason they cannot be.
//
// Pickle protocols <= 2 write bytes as _codecs.encode(str, 'latin1'), but the call is CPython's
// _codecs.encode(obj, encoding='utf-8', errors='strict'): with one argument it encodes UTF-8, and
// the encoding name goes through codecs.lookup (lowercased, encodings.normalize_encoding, then
// encodings.aliases). Only codecs modelled exactly here are computed: utf_8, latin_1 and ascii
// with errors strict, ignore or replace. Anything else is "not computable", never a guess.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>

#include "pickle/value.hpp"

namespace brine::analysis {

enum class Codec : std::uint8_t { kUtf8, kLatin1, kAscii };

/// The codec CPython's codecs.lookup(name) finds, if it is one of the three modelled here.
std::optional<Codec> lookup_codec(std::string_view name);

/// str.encode as _codecs.encode does it, for text given as WTF-8 (a pickled str may hold lone
/// surrogates). Returns nullopt and sets `why` when CPython would raise or the error handler is
/// not one modelled exactly (strict, ignore, replace).
std::optional<std::string> encode_text(std::string_view wtf8, Codec codec, std::string_view errors, std::string& why);

struct LoaderBytes {
  bool computed = false;
  std::string data;  ///< when computed
  std::string why;   ///< when not: what could not be established
};

/// The bytes `value` is when a loader receives it: a bytes or (unmutated) bytearray literal, a
/// protocol 0/1 string (bytes only under encoding='bytes', the one reading in which a loader gets
/// bytes from it), or a call of _codecs.encode / builtins.bytes / builtins.bytearray whose
/// arguments are such values. `callee_name(call)` is the loader name of a call's resolved callable.
LoaderBytes loader_bytes(const pickle::ValueStore& values, pickle::ValueRef value,
                         const std::function<std::string_view(pickle::ValueRef)>& callee_name,
                         const std::unordered_set<pickle::ValueRef>& mutated);

}  // namespace brine::analysis
