#include "report/fingerprint.hpp"

#include <string_view>

#include "core/sha256.hpp"

namespace brine::report {

namespace {
void field(std::string& out, std::string_view value) {
  out += std::to_string(value.size());
  out += ':';
  out += value;
  out += '\n';
}
}  // namespace

std::string finding_fingerprint(const scan::FileReport& file, const analysis::Finding& finding) {
  std::string tuple = "brine-finding/1\n";
  field(tuple, file.sha256.empty() ? "path:" + file.path : file.sha256);
  field(tuple, finding.rule);
  field(tuple, finding.global);
  field(tuple, finding.member);
  field(tuple, std::to_string(finding.offset));
  return core::sha256_hex(core::as_bytes(tuple));
}

}  // namespace brine::report
