#include "serve/metrics.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace brine::serve {

std::string_view endpoint_name(Endpoint e) {
  switch (e) {
    case Endpoint::kScan: return "scan";
    case Endpoint::kSanitize: return "sanitize";
    case Endpoint::kHealthz: return "healthz";
    case Endpoint::kReadyz: return "readyz";
    case Endpoint::kMetrics: return "metrics";
    case Endpoint::kOther: return "other";
  }
  return "other";
}

Endpoint endpoint_of(std::string_view path) {
  if (path == "/v1/scan") return Endpoint::kScan;
  if (path == "/v1/sanitize") return Endpoint::kSanitize;
  if (path == "/healthz") return Endpoint::kHealthz;
  if (path == "/readyz") return Endpoint::kReadyz;
  if (path == "/metrics") return Endpoint::kMetrics;
  return Endpoint::kOther;
}

std::size_t Metrics::status_slot(int status) {
  const auto* it = std::find(kStatuses.begin(), kStatuses.end(), status);
  return static_cast<std::size_t>(it - kStatuses.begin());  // kStatuses.size() for "other"
}

void Metrics::record_request(Endpoint e, int status, std::uint64_t bytes_in, std::uint64_t bytes_out, double seconds) {
  std::size_t bucket = 0;
  while (bucket < kBuckets.size() && seconds > kBuckets[bucket]) ++bucket;
  const std::lock_guard<std::mutex> guard(lock_);
  auto& p = endpoints_[static_cast<std::size_t>(e)];
  ++p.by_status[status_slot(status)];
  ++p.buckets[bucket];
  p.seconds_sum += seconds;
  ++p.count;
  bytes_in_ += bytes_in;
  bytes_out_ += bytes_out;
}

void Metrics::record_verdict(analysis::Verdict v) {
  const auto slot = std::min<std::size_t>(static_cast<std::size_t>(v), verdicts_.size() - 1);
  const std::lock_guard<std::mutex> guard(lock_);
  ++verdicts_[slot];
}

std::string Metrics::render(const Gauges& g) const {
  std::string out;
  auto line = [&out](std::string_view text) {
    out += text;
    out += '\n';
  };
  const std::lock_guard<std::mutex> guard(lock_);

  line("# HELP brine_http_requests_total Requests answered, by endpoint and status code.");
  line("# TYPE brine_http_requests_total counter");
  for (std::size_t e = 0; e < kEndpointCount; ++e) {
    const auto name = endpoint_name(static_cast<Endpoint>(e));
    for (std::size_t s = 0; s <= kStatuses.size(); ++s) {
      const auto n = endpoints_[e].by_status[s];
      if (n == 0) continue;
      const std::string code = s < kStatuses.size() ? std::to_string(kStatuses[s]) : "other";
      line(fmt::format("brine_http_requests_total{{endpoint=\"{}\",code=\"{}\"}} {}", name, code, n));
    }
  }

  line("# HELP brine_http_request_duration_seconds Time from the request's first byte to its last response byte.");
  line("# TYPE brine_http_request_duration_seconds histogram");
  for (std::size_t e = 0; e < kEndpointCount; ++e) {
    const auto name = endpoint_name(static_cast<Endpoint>(e));
    const auto& p = endpoints_[e];
    std::uint64_t cumulative = 0;
    for (std::size_t b = 0; b < kBuckets.size(); ++b) {
      cumulative += p.buckets[b];
      line(fmt::format("brine_http_request_duration_seconds_bucket{{endpoint=\"{}\",le=\"{}\"}} {}", name, kBuckets[b], cumulative));
    }
    cumulative += p.buckets[kBuckets.size()];
    line(fmt::format("brine_http_request_duration_seconds_bucket{{endpoint=\"{}\",le=\"+Inf\"}} {}", name, cumulative));
    line(fmt::format("brine_http_request_duration_seconds_sum{{endpoint=\"{}\"}} {}", name, p.seconds_sum));
    line(fmt::format("brine_http_request_duration_seconds_count{{endpoint=\"{}\"}} {}", name, p.count));
  }

  line("# HELP brine_verdicts_total Verdicts given to uploaded files (scan and sanitize).");
  line("# TYPE brine_verdicts_total counter");
  for (std::size_t v = 0; v < verdicts_.size(); ++v) {
    line(fmt::format("brine_verdicts_total{{verdict=\"{}\"}} {}", analysis::verdict_name(static_cast<analysis::Verdict>(v)),
                     verdicts_[v]));
  }

  line("# HELP brine_http_received_bytes_total Bytes read from clients (request lines, headers and bodies).");
  line("# TYPE brine_http_received_bytes_total counter");
  line(fmt::format("brine_http_received_bytes_total {}", bytes_in_));
  line("# HELP brine_http_sent_bytes_total Bytes written to clients.");
  line("# TYPE brine_http_sent_bytes_total counter");
  line(fmt::format("brine_http_sent_bytes_total {}", bytes_out_));
  line("# HELP brine_rejected_connections_total Connections answered 429 at once because every connection slot was taken.");
  line("# TYPE brine_rejected_connections_total counter");
  line(fmt::format("brine_rejected_connections_total {}", rejected_connections_.load(std::memory_order_relaxed)));

  auto gauge = [&](std::string_view name, std::string_view help, std::uint64_t value) {
    line(fmt::format("# HELP {} {}", name, help));
    line(fmt::format("# TYPE {} gauge", name));
    line(fmt::format("{} {}", name, value));
  };
  gauge("brine_in_flight_requests", "Requests being received, queued, scanned or answered.", g.in_flight);
  gauge("brine_queue_depth", "Scans waiting for a worker.", g.queue_depth);
  gauge("brine_queue_capacity", "Scans that may wait before uploads are refused with 429.", g.queue_capacity);
  gauge("brine_workers_busy", "Workers scanning or sanitizing now.", g.workers_busy);
  gauge("brine_workers", "Scans or sanitizes run at once.", g.workers);
  gauge("brine_temp_bytes", "Temporary disk reserved by uploads and outputs in progress.", g.temp_bytes);
  gauge("brine_temp_capacity_bytes", "Temporary disk the service may use at once.", g.temp_capacity);
  gauge("brine_draining", "1 after SIGTERM: in-flight requests finish, new ones get 503.", g.draining ? 1 : 0);
  return out;
}

}  // namespace brine::serve
