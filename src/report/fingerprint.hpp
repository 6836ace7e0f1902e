// The identity of a finding across runs: SARIF's partialFingerprints and scan baselines both key
// on it, so it is defined here once (docs/sarif.md, "Fingerprint").
#pragma once

#include <string>

#include "analysis/finding.hpp"
#include "scan/scanner.hpp"

namespace brine::report {

/// Name of the fingerprint in SARIF's `partialFingerprints` (bumped if the definition changes).
inline constexpr const char* kFingerprintName = "brineFinding/v1";

/// Lowercase hex SHA-256 over the tuple (file content, rule, global, member, offset), each field
/// length-prefixed so no two tuples share an encoding:
///   "brine-finding/1\n" then, per field, "<decimal byte length>:<bytes>\n"
/// The file content is named by `file.sha256`; a report without one (unreadable file, --no-hash)
/// uses "path:" + the path instead, so its fingerprint is only as stable as the path.
/// The path itself is not part of it (a moved or renamed file keeps its findings' identity); the
/// member is, because `offset` is relative to the member and two members can share an offset.
std::string finding_fingerprint(const scan::FileReport& file, const analysis::Finding& finding);

}  // namespace brine::report
