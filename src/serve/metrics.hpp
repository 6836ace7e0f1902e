// The service's counters, in Prometheus' text exposition format (version 0.0.4).
//
// Label values come from fixed sets (the endpoints the service routes, the status codes it
// sends, the four verdicts), never from the request: a client cannot grow the series count.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "analysis/finding.hpp"

namespace brine::serve {

enum class Endpoint : std::uint8_t { kScan, kSanitize, kHealthz, kReadyz, kMetrics, kOther };
inline constexpr std::size_t kEndpointCount = 6;
std::string_view endpoint_name(Endpoint e);
Endpoint endpoint_of(std::string_view path);

/// Instantaneous values the renderer reads from the server when scraped.
struct Gauges {
  std::uint64_t in_flight = 0;       ///< requests being received, queued, scanned or answered
  std::uint64_t queue_depth = 0;     ///< scans waiting for a worker
  std::uint64_t queue_capacity = 0;
  std::uint64_t workers_busy = 0;
  std::uint64_t workers = 0;
  std::uint64_t temp_bytes = 0;      ///< disk reserved by uploads and outputs in progress
  std::uint64_t temp_capacity = 0;
  bool draining = false;
};

class Metrics {
 public:
  /// Upper bounds (seconds) of the latency histogram's buckets; +Inf is implied.
  static constexpr std::array<double, 14> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                      0.25,  0.5,    1,     2.5,  5,    10,   60};

  void record_request(Endpoint e, int status, std::uint64_t bytes_in, std::uint64_t bytes_out, double seconds);
  void record_verdict(analysis::Verdict v);
  void record_rejected_connection() { rejected_connections_.fetch_add(1, std::memory_order_relaxed); }

  [[nodiscard]] std::string render(const Gauges& gauges) const;

 private:
  /// Status codes the service sends get their own series; anything else is counted as "other".
  static constexpr std::array<int, 13> kStatuses = {200, 400, 401, 404, 405, 408, 413, 414, 422, 429, 431, 500, 503};
  static std::size_t status_slot(int status);

  struct PerEndpoint {
    std::array<std::uint64_t, kStatuses.size() + 1> by_status{};
    std::array<std::uint64_t, kBuckets.size() + 1> buckets{};  ///< non-cumulative; the last is +Inf
    double seconds_sum = 0;
    std::uint64_t count = 0;
  };
  mutable std::mutex lock_;
  std::array<PerEndpoint, kEndpointCount> endpoints_{};
  std::array<std::uint64_t, 4> verdicts_{};
  std::uint64_t bytes_in_ = 0, bytes_out_ = 0;
  std::atomic<std::uint64_t> rejected_connections_{0};
};

}  // namespace brine::serve
