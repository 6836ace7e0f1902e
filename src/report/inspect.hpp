// `brine inspect`: everything the symbolic VM built from each pickle, not just the verdict.
//
//   JSON (docs/inspect.md): the result as a tree with every value's type and exact content, and
//   every import, call, BUILD, item assignment and persistent load in execution order. Values
//   that Python would share (a memo GET of a list, an object used twice) are written once with
//   an "id" and referred to as {"ref": id} afterwards, so shared and cyclic structures are exact
//   and the output stays proportional to the input, not to the object graph's unfolding.
//   tests/inspect_vs_cpython.py compares this with what CPython's unpickler builds.
//
//   Text: a Python-like reconstruction for people triaging a file — one statement per import,
//   call, BUILD, item assignment and persistent load, in the order a loader would run them,
//   with earlier results named (_v1, _v2...), then the result.
//
// Both are bounded: the JSON by an output budget (past it, values become {"t": "elided"} and the
// pickle says "truncated": true), the text by a length per statement.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "pickle/machine.hpp"

namespace brine::report {

/// Writes JSON for one file's pickles to a stream, keeping the whole output within a budget.
class InspectJsonWriter {
 public:
  InspectJsonWriter(std::ostream& out, std::uint64_t max_output_bytes) : out_(out), budget_(max_output_bytes) {}

  /// One pickle run as a JSON object (callers place the separators).
  void write_run(const std::string& member, const pickle::PickleRun& run);
  /// Raw JSON text (structure around the runs), flushed in order with them.
  void raw(std::string_view text);
  void flush();
  [[nodiscard]] bool truncated() const { return truncated_; }

 private:
  friend class RunJson;
  void emit(std::string_view text);
  [[nodiscard]] bool over_budget() const { return written_ + buf_.size() > budget_; }

  std::ostream& out_;
  std::string buf_;
  std::uint64_t written_ = 0;
  std::uint64_t budget_;
  bool truncated_ = false;
};

struct InspectTextOptions {
  std::size_t max_statement_chars = 2000;  ///< each printed statement, then "..."
};

/// The Python-like reconstruction of one pickle run.
void write_run_text(std::ostream& out, const std::string& member, const pickle::PickleRun& run,
                    const InspectTextOptions& options = {});

}  // namespace brine::report
