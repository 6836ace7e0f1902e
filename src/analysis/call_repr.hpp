// Readable Python-like reconstructions of symbolic values and calls, for reports:
// os.system('echo hi'), getattr(__import__('os'), 'system')('id'), OrderedDict().
//
// Output is bounded: long strings, big containers, deep nesting and cycles are elided, so a
// hostile pickle cannot make a report line arbitrarily long or the printer recurse without end.
#pragma once

#include <string>
#include <unordered_map>

#include "pickle/value.hpp"

namespace brine::analysis {

struct ReprLimits {
  std::size_t max_chars = 300;   ///< whole output, then "..."
  std::size_t max_items = 8;     ///< per container
  std::size_t max_string = 80;   ///< characters of one str/bytes
  unsigned max_depth = 6;
};

/// The value as Python source would write it.
std::string repr_value(const pickle::ValueStore& values, pickle::ValueRef ref, const ReprLimits& limits = {});

/// Names given to values already shown (`brine inspect` names each call's result _v1, _v2...).
using ValueNames = std::unordered_map<pickle::ValueRef, std::string>;
/// Like repr_value, but values in `names` print as their name — except `ref` itself, which is
/// spelled out (it is the value being defined).
std::string repr_value_named(const pickle::ValueStore& values, pickle::ValueRef ref, const ValueNames& names,
                             const ReprLimits& limits = {});
/// A global's display name: `eval` for builtins, `os.system` otherwise.
std::string global_display(const pickle::ValueStore& values, pickle::ValueRef global);

}  // namespace brine::analysis
