// The Python-like reconstruction `brine inspect` prints: what a loader would do, statement by
// statement, in order. Reading it should tell a person what a payload does without running it.
#include <fmt/format.h>

#include <set>
#include <utility>

#include "analysis/call_repr.hpp"
#include "core/text.hpp"
#include "report/inspect.hpp"

namespace brine::report {

using pickle::Event;
using pickle::Kind;
using pickle::ValueRef;

namespace {

class TextRun {
 public:
  TextRun(std::ostream& out, const pickle::PickleRun& run, const InspectTextOptions& options)
      : out_(out), run_(run), v_(run.values) {
    limits_.max_chars = options.max_statement_chars;
    limits_.max_items = 64;
    limits_.max_string = 200;
    limits_.max_depth = 12;
  }

  void write(const std::string& member) {
    // Strings from the input (member names, globals, errors) pass through core::display_text.
    out_ << fmt::format("# {} pickle at bytes {}..{}, protocol {}, {} opcodes{}\n", member.empty() ? "the file's" : core::display_text(member),
                        run_.start, run_.end, run_.protocol, run_.opcodes, run_.stopped ? "" : ", did not reach STOP");
    for (const Event& e : run_.events) statement(e);
    if (run_.root != pickle::kNoValue) {
      line(fmt::format("result = {}", expr(run_.root)), "STOP", run_.end == 0 ? 0 : run_.end - 1);
    }
    if (run_.error) out_ << "# stopped: " << core::display_text(run_.error->describe()) << '\n';
    for (const auto& a : run_.anomalies) {
      out_ << fmt::format("# note @{} {}: {} {}\n", a.offset, pickle::name(a.op), pickle::anomaly_name(a.kind), core::display_text(a.detail));
    }
  }

 private:
  /// A value as an expression: its name if it has one, else spelled out.
  std::string expr(ValueRef ref) {
    if (ref == pickle::kNoValue) return "<nothing>";
    if (auto it = names_.find(ref); it != names_.end()) return it->second;
    return analysis::repr_value_named(v_, ref, names_, limits_);
  }

  void line(const std::string& raw, std::string_view op, std::uint64_t offset) {
    const std::string code = core::display_text(raw);
    out_ << code;
    const std::size_t width = code.size() < 60 ? 60 - code.size() : 1;
    out_ << std::string(width, ' ') << fmt::format("# @{} {}\n", offset, op);
  }

  void statement(const Event& e) {
    const std::string_view op = pickle::name(e.op);
    switch (e.kind) {
      case Event::Kind::kGlobal: {
        const auto& g = v_.global_rec(e.subject);
        if (!g.resolved) {
          line(fmt::format("# import {}", analysis::global_display(v_, e.subject)), op, e.offset);
          return;
        }
        // find_class imports the module, then walks the dotted name: the import is the effect.
        if (!imported_.insert({std::string(g.module), std::string(g.name)}).second) return;
        line(fmt::format("import {}  # -> {}", g.module, analysis::global_display(v_, e.subject)), op, e.offset);
        return;
      }
      case Event::Kind::kCall: {
        const std::string name = fmt::format("_v{}", ++calls_);
        line(fmt::format("{} = {}", name, analysis::repr_value_named(v_, e.subject, names_, limits_)), op, e.offset);
        names_.emplace(e.subject, name);
        return;
      }
      case Event::Kind::kPersistentLoad: {
        const std::string name = fmt::format("_p{}", ++persistent_);
        line(fmt::format("{} = persistent_load({})", name, expr(v_.persistent_rec(e.subject).pid)), op, e.offset);
        names_.emplace(e.subject, name);
        return;
      }
      case Event::Kind::kBuild:
        line(fmt::format("{}.__setstate__({})", expr(e.subject), expr(e.arg)), op, e.offset);
        return;
      case Event::Kind::kSetItem:
        line(fmt::format("{}[{}] = {}", expr(e.subject), expr(e.arg), expr(e.arg2)), op, e.offset);
        return;
      case Event::Kind::kAppend:
        line(fmt::format("{}.{}({})", expr(e.subject), e.op == pickle::Op::ADDITEMS ? "update" : "extend", expr(e.arg)), op,
             e.offset);
        return;
      case Event::Kind::kExtension:
        line(fmt::format("{} = copyreg extension {}", expr(e.subject), v_.node(e.subject).i), op, e.offset);
        return;
      case Event::Kind::kOutOfBandBuffer:
        line("<next out-of-band buffer>", op, e.offset);
        return;
    }
  }

  std::ostream& out_;
  const pickle::PickleRun& run_;
  const pickle::ValueStore& v_;
  analysis::ReprLimits limits_;
  analysis::ValueNames names_;
  std::set<std::pair<std::string, std::string>> imported_;
  unsigned calls_ = 0, persistent_ = 0;
};

}  // namespace

void write_run_text(std::ostream& out, const std::string& member, const pickle::PickleRun& run, const InspectTextOptions& options) {
  TextRun(out, run, options).write(member);
}

}  // namespace brine::report
