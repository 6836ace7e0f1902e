#include "report/sanitize_report.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <nlohmann/json.hpp>

#include "core/text.hpp"

namespace brine::report {

using Json = nlohmann::ordered_json;

void write_sanitize_text(std::ostream& out_raw, const sanitize::SanitizeReport& r, bool verbose) {
  // Tensor names, members, globals and messages come from the input: every line is made safe for a
  // terminal (core::display_text) before it is written.
  struct SafeLines {
    std::ostream& os;
    SafeLines& operator<<(const std::string& text) {
      std::size_t from = 0;
      for (std::size_t nl; (nl = text.find('\n', from)) != std::string::npos; from = nl + 1) {
        os << core::display_text(std::string_view(text).substr(from, nl - from)) << '\n';
      }
      os << core::display_text(std::string_view(text).substr(from));
      return *this;
    }
  } out{out_raw};
  out << fmt::format("{}: {} ({})\n", r.input, analysis::verdict_name(r.scan.verdict), r.scan.container);
  for (const auto& f : r.scan.findings) {
    if (f.impact == analysis::Verdict::kClean && !verbose) continue;
    out << fmt::format("  {} {}  {}{}  at {}offset {} ({})\n", rules::severity_name(f.severity), f.rule, f.global,
                       f.call.empty() ? "" : "  " + f.call, f.member.empty() ? "" : f.member + " ", f.offset, f.opcode);
  }
  for (const auto& d : r.dropped) out << fmt::format("  dropped {}: {} (offset {})\n", d.name, d.reason, d.offset);
  if (r.written) {
    std::uint64_t bytes = 0;
    for (const auto& t : r.tensors) bytes += t.bytes;
    if (verbose) {
      for (const auto& t : r.tensors) out << fmt::format("  {} {} [{}] {} bytes from {}\n", t.name, t.dtype, fmt::join(t.shape, ", "), t.bytes, t.source);
    }
    for (const auto& [alias, kept] : r.aliases) out << fmt::format("  alias {} -> {}\n", alias, kept);
    out << fmt::format("wrote {} ({}): {} tensors, {} bytes of tensor data, {} metadata entries, {} aliases, {} values dropped{}\n",
                       r.output, r.format, r.tensors.size(), bytes, r.metadata.size(), r.aliases.size(), r.dropped.size(),
                       r.verified ? "; verified" : "");
  }
  if (r.error) out << "not written: " + r.error->describe() + "\n";
}

void write_sanitize_json(std::ostream& out, const sanitize::SanitizeReport& r) {
  Json j;
  j["input"] = r.input;
  j["output"] = r.output;
  j["format"] = r.format;
  j["container"] = r.scan.container;
  j["verdict"] = analysis::verdict_name(r.scan.verdict);
  j["written"] = r.written;
  j["verified"] = r.verified;
  Json tensors = Json::array();
  for (const auto& t : r.tensors) {
    tensors.push_back({{"name", t.name}, {"dtype", t.dtype}, {"shape", t.shape}, {"source", t.source}, {"offset", t.offset}, {"bytes", t.bytes}});
  }
  j["tensors"] = std::move(tensors);
  Json aliases = Json::object();
  for (const auto& [a, k] : r.aliases) aliases[a] = k;
  j["aliases"] = std::move(aliases);
  Json meta = Json::object();
  for (const auto& [k, v] : r.metadata) meta[k] = v;
  j["metadata"] = std::move(meta);
  Json dropped = Json::array();
  for (const auto& d : r.dropped) dropped.push_back({{"name", d.name}, {"reason", d.reason}, {"offset", d.offset}});
  j["dropped"] = std::move(dropped);
  Json findings = Json::array();
  for (const auto& f : r.scan.findings) {
    findings.push_back({{"rule", f.rule}, {"severity", rules::severity_name(f.severity)}, {"global", f.global}, {"call", f.call},
                        {"message", f.message}, {"member", f.member}, {"offset", f.offset}, {"opcode", f.opcode}});
  }
  j["findings"] = std::move(findings);
  j["error"] = r.error ? Json(r.error->describe()) : Json(nullptr);
  out << j.dump(2, ' ', false, Json::error_handler_t::replace) << '\n';
}

}  // namespace brine::report
