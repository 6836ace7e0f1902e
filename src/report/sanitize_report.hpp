// Reports of `brine sanitize`: what was written, aliased, put into metadata and dropped (and why),
// with the scan's findings — text for people, JSON for tools.
#pragma once

#include <ostream>

#include "sanitize/sanitize.hpp"

namespace brine::report {

void write_sanitize_text(std::ostream& out, const sanitize::SanitizeReport& r, bool verbose);
/// {"input", "output", "format", "verdict", "written", "verified", "tensors": [...], "aliases": {...},
///  "metadata": {...}, "dropped": [...], "findings": [...], "error"}
void write_sanitize_json(std::ostream& out, const sanitize::SanitizeReport& r);

}  // namespace brine::report
