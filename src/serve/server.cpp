#include "serve/server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "analysis/analyzer.hpp"
#include "core/mapped_file.hpp"
#include "report/report.hpp"
#include "report/sanitize_report.hpp"
#include "sanitize/sanitize.hpp"
#include "scan/scanner.hpp"
#include "serve/metrics.hpp"
#include "serve/spool.hpp"
#include "serve/work_pool.hpp"

namespace brine::serve {

namespace {

using Clock = std::chrono::steady_clock;

/// What one request did, gathered on its connection thread (one request per thread at a time)
/// and turned into the access-log line and the metrics once the answer is written.
struct RequestContext {
  Clock::time_point start;
  std::uint64_t bytes_in = 0, bytes_out = 0;
  int status = 0;              ///< 0: no request was read (a kept-alive connection just closed)
  std::string method, path, remote, name, rules, sha256, verdict, error;
  bool deadline_hit = false;   ///< the request ran out of time while reading or writing
  bool close = false;          ///< answer, then close the connection (body left unread, or draining)
};
thread_local RequestContext t_request;
/// Set while the accept thread answers a connection no slot was free for.
thread_local bool t_reject_connection = false;

int remaining_ms(Clock::time_point deadline, std::chrono::milliseconds cap) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::clamp<std::int64_t>(std::min(left, cap).count(), 0, INT32_MAX));
}

bool wait_fd(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  for (;;) {
    const int n = ::poll(&p, 1, timeout_ms);
    if (n < 0 && errno == EINTR) continue;
    return n > 0;
  }
}

/// A connection's socket, read and written under one deadline for the whole request: each call
/// waits at most until the deadline (and at most the idle gap), so a client that sends or reads
/// a byte a second is cut off when the request's time is up, not when its bytes stop.
class DeadlineStream final : public httplib::Stream {
 public:
  DeadlineStream(int fd, Clock::time_point deadline, std::chrono::milliseconds gap) : fd_(fd), deadline_(deadline), gap_(gap) {}

  bool is_readable() const override { return wait(POLLIN); }
  bool is_writable() const override { return wait(POLLOUT, kAnswerGrace); }
  ssize_t read(char* ptr, size_t size) override {
    if (!wait(POLLIN)) return -1;
    for (;;) {
      const ssize_t n = ::recv(fd_, ptr, size, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n > 0) t_request.bytes_in += static_cast<std::uint64_t>(n);
      return n;
    }
  }
  ssize_t write(const char* ptr, size_t size) override {
    // The answer gets a little longer than the request had, so a 408 still reaches the client;
    // a client that reads slowly is cut off all the same.
    if (!wait(POLLOUT, kAnswerGrace)) return -1;
    for (;;) {
      const ssize_t n = ::send(fd_, ptr, size, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n > 0) t_request.bytes_out += static_cast<std::uint64_t>(n);
      return n;
    }
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override { address(::getpeername, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { address(::getsockname, ip, port); }
  socket_t socket() const override { return fd_; }

 private:
  static constexpr std::chrono::milliseconds kAnswerGrace{2'000};

  bool wait(short events, std::chrono::milliseconds grace = {}) const {
    const auto until = deadline_ + grace;
    if (Clock::now() >= until) {
      t_request.deadline_hit = true;
      return false;
    }
    const bool deadline_bound = until - Clock::now() <= gap_;  // the wait ends at the deadline, not after a gap
    if (wait_fd(fd_, events, remaining_ms(until, gap_))) return true;
    if (deadline_bound) t_request.deadline_hit = true;
    return false;
  }
  template <typename F>
  void address(F get, std::string& ip, int& port) const {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    ip.clear();
    port = 0;
    if (get(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return;
    char text[INET6_ADDRSTRLEN] = {};
    if (addr.ss_family == AF_INET) {
      const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
      ::inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
      port = ntohs(a->sin_port);
    } else if (addr.ss_family == AF_INET6) {
      const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
      ::inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
      port = ntohs(a->sin6_port);
    }
    ip = text;
  }

  int fd_;
  Clock::time_point deadline_;
  std::chrono::milliseconds gap_;
};

/// The connection slots: a fixed set of threads and a bounded line of accepted connections. A
/// connection that finds the line full is answered 429 on the accepting thread at once (a write
/// of a few bytes to a fresh socket does not block), so no connection waits without bound.
class ConnectionSlots final : public httplib::TaskQueue {
 public:
  ConnectionSlots(unsigned threads, std::size_t pending) : pending_cap_(pending) {
    for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
  }
  void enqueue(std::function<void()> fn) override {
    {
      const std::lock_guard<std::mutex> guard(lock_);
      if (!stopping_ && jobs_.size() < pending_cap_) {
        jobs_.push_back(std::move(fn));
        wake_.notify_one();
        return;
      }
    }
    t_reject_connection = true;
    fn();
    t_reject_connection = false;
  }
  void shutdown() override {
    {
      const std::lock_guard<std::mutex> guard(lock_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> guard(lock_);
        wake_.wait(guard, [this] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty()) return;  // accepted connections are served before the slots close
        fn = std::move(jobs_.front());
        jobs_.pop_front();
      }
      fn();
    }
  }
  const std::size_t pending_cap_;
  std::mutex lock_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

std::string utc_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, ms);
}

/// Compares without an early exit, so the time taken does not tell how much of a token matched.
bool same_secret(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

void answer_error(httplib::Response& res, int status, std::string_view message) {
  res.status = status;
  nlohmann::json body = {{"status", status}, {"error", message}};
  res.set_content(body.dump() + "\n", "application/json");
  t_request.error = std::string(message);
}

/// Ends the connection after this answer: used whenever the request's body was not read to its
/// end (what is left of it must not be taken for the next request) and while draining.
void close_after(httplib::Response& res) {
  res.set_header("Connection", "close");
  t_request.close = true;
}

/// The body's declared length: nullopt when there is none (chunked, or no body); an error when
/// the header is not one plain decimal number (two differing lengths are a smuggling attempt).
core::Result<std::optional<std::uint64_t>> content_length(const httplib::Request& req) {
  const std::size_t count = req.get_header_value_count("Content-Length");
  if (count == 0) return std::optional<std::uint64_t>{};
  const std::string text = req.get_header_value("Content-Length");
  for (std::size_t i = 1; i < count; ++i) {
    if (req.get_header_value("Content-Length", i) != text) return core::fail(core::ErrorCode::kUsage, 0, "two lengths");
  }
  if (text.empty() || text.size() > 19 || text.find_first_not_of("0123456789") != std::string::npos) {
    return core::fail(core::ErrorCode::kUsage, 0, "not a number");
  }
  return std::optional<std::uint64_t>{std::stoull(text)};
}

/// True when a request carries a body (a length above zero, or chunked).
bool has_body(const httplib::Request& req) {
  if (req.has_header("Transfer-Encoding")) return true;
  const std::string n = req.get_header_value("Content-Length");
  return !n.empty() && n.find_first_not_of('0') != std::string::npos;
}

}  // namespace

struct Server::Impl {
  class Http final : public httplib::Server {
   public:
    explicit Http(Impl& impl) : impl_(impl) {}
    /// The library listens with a backlog of 5, so a burst of clients would wait out SYN
    /// retransmits (a second or more) before they are even accepted; listen() again raises it.
    void widen_backlog() { ::listen(svr_sock_, SOMAXCONN); }

   private:
    // Replaces the library's connection loop (same keep-alive rules) to read each request through
    // a DeadlineStream, and to account for every request it serves.
    bool process_and_close_socket(socket_t sock) override {
      if (t_reject_connection) {
        impl_.metrics.record_rejected_connection();
        static constexpr std::string_view kBody = "{\"status\":429,\"error\":\"every connection slot is taken\"}\n";
        static const std::string kBusy = fmt::format(
            "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\n"
            "Content-Length: {}\r\n\r\n{}", kBody.size(), kBody);
        [[maybe_unused]] const auto sent = ::send(sock, kBusy.data(), kBusy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        ::shutdown(sock, SHUT_RDWR);
        ::close(sock);
        return false;
      }
      bool ok = true;
      for (std::size_t left = keep_alive_max_count_; left > 0; --left) {
        // Wait for the next request in short steps, so a stop does not wait out idle connections.
        const auto idle_until = Clock::now() + impl_.options.idle_timeout;
        bool readable = false;
        while (!readable && svr_sock_ != INVALID_SOCKET && Clock::now() < idle_until) {
          readable = wait_fd(sock, POLLIN, std::min(100, remaining_ms(idle_until, impl_.options.idle_timeout)));
        }
        if (!readable) break;
        t_request = RequestContext{};
        t_request.start = Clock::now();
        DeadlineStream stream(sock, t_request.start + impl_.options.request_timeout, std::chrono::milliseconds(60'000));
        bool closed = false;
        ok = process_request(stream, left == 1 || impl_.draining.load(), closed, nullptr);
        impl_.finish_request();
        if (!ok || closed || t_request.close) break;
      }
      ::shutdown(sock, SHUT_RDWR);
      ::close(sock);
      return ok;
    }
    Impl& impl_;
  };

  explicit Impl(ServeOptions o)
      : options(std::move(o)), budget(options.max_temp), pool(options.workers, options.queue), http(*this) {}

  ServeOptions options;
  Metrics metrics;
  DiskBudget budget;
  WorkPool pool;
  Http http;
  std::atomic<bool> draining{false};
  std::atomic<std::uint64_t> in_flight{0};
  std::mutex log_lock;
  std::mutex scanners_lock;
  std::map<std::string, std::shared_ptr<const scan::Scanner>> scanners;  ///< by the packs a request chose

  core::Result<std::shared_ptr<const scan::Scanner>> scanner_for(const std::vector<std::string>& packs);
  void route();
  void handle_upload(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader, bool sanitize);
  void finish_request();
  Gauges gauges() const {
    Gauges g;
    g.in_flight = in_flight.load();
    g.queue_depth = pool.queued();
    g.queue_capacity = pool.capacity();
    g.workers_busy = pool.busy();
    g.workers = pool.workers();
    g.temp_bytes = budget.used();
    g.temp_capacity = budget.capacity();
    g.draining = draining.load();
    return g;
  }
};

core::Result<std::shared_ptr<const scan::Scanner>> Server::Impl::scanner_for(const std::vector<std::string>& packs) {
  std::string key;
  for (const auto& p : packs) key += p + '\n';
  const std::lock_guard<std::mutex> guard(scanners_lock);
  if (auto it = scanners.find(key); it != scanners.end()) return it->second;
  rules::RuleOptions ro = options.rules;
  ro.rule_files.insert(ro.rule_files.end(), packs.begin(), packs.end());
  auto loaded = rules::load_rules(ro);
  if (!loaded) return core::fail(loaded.error());
  scan::ScanOptions so;
  so.limits = options.limits;
  so.compute_sha256 = true;
  auto scanner = std::make_shared<const scan::Scanner>(*loaded, so);
  // The allowlist is fixed at start-up, but its combinations grow as 2^packs: past a few hundred
  // cached sets a rare combination is loaded for its request and not kept.
  constexpr std::size_t kMaxCachedRuleSets = 256;
  if (scanners.size() < kMaxCachedRuleSets) scanners.emplace(key, scanner);
  return scanner;
}

void Server::Impl::finish_request() {
  RequestContext& r = t_request;
  if (r.status == 0 && r.deadline_hit) r.status = 408;  // cut off before a request line or its headers were in
  if (r.status == 0) return;  // nothing was asked (a kept-alive connection closed)
  const double seconds = std::chrono::duration<double>(Clock::now() - r.start).count();
  metrics.record_request(endpoint_of(r.path), r.status, r.bytes_in, r.bytes_out, seconds);
  if (!options.access_log) return;
  nlohmann::json line = {{"time", utc_now()},      {"remote", r.remote},      {"method", r.method},
                         {"path", r.path},         {"status", r.status},      {"bytes_in", r.bytes_in},
                         {"bytes_out", r.bytes_out}, {"seconds", seconds}};
  if (!r.name.empty()) line["name"] = r.name;
  if (!r.rules.empty()) line["rules"] = r.rules;
  if (!r.verdict.empty()) line["verdict"] = r.verdict;
  if (!r.sha256.empty()) line["sha256"] = r.sha256;
  if (!r.error.empty()) line["error"] = r.error;
  if (r.deadline_hit) line["timed_out"] = true;
  // Request text can hold any bytes: replaced, never a reason to drop the line.
  const std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const std::lock_guard<std::mutex> guard(log_lock);
  options.access_log(text);
}

void Server::Impl::route() {
  http.set_payload_max_length(options.max_body);  // a Content-Length over it: 413 before any body is read
  http.set_keep_alive_max_count(100);
  http.set_tcp_nodelay(true);  // the headers and the body go out as two writes: no Nagle wait between them
  // The library owns (and deletes) the queue this returns: its API takes a raw pointer.
  http.new_task_queue = [this] { return new ConnectionSlots(options.connections, options.pending_connections); };

  http.set_logger([](const httplib::Request& req, const httplib::Response& res) {
    t_request.status = res.status;
    t_request.method = req.method;
    t_request.path = req.path.size() > 256 ? req.path.substr(0, 256) : req.path;
    t_request.remote = fmt::format("{}:{}", req.remote_addr, req.remote_port);
  });

  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    const bool probe = req.path == "/healthz" || req.path == "/readyz";
    if (!probe && !options.token.empty()) {
      const std::string auth = req.get_header_value("Authorization");
      if (!auth.starts_with("Bearer ") || !same_secret(std::string_view(auth).substr(7), options.token)) {
        answer_error(res, 401, "a valid bearer token is required");
        res.set_header("WWW-Authenticate", "Bearer");
        close_after(res);
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    const bool upload = req.method == "POST" && (req.path == "/v1/scan" || req.path == "/v1/sanitize");
    if (!upload && has_body(req)) {
      // Only the upload endpoints read bodies; anywhere else the library would buffer it in memory.
      answer_error(res, 413, "this endpoint takes no body");
      close_after(res);
      return httplib::Server::HandlerResponse::Handled;
    }
    if (draining.load() && !probe && req.path != "/metrics") {
      answer_error(res, 503, "the service is shutting down");
      res.set_header("Retry-After", "1");
      close_after(res);
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  http.Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
  http.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    if (draining.load()) {
      res.status = 503;
      res.set_content("draining\n", "text/plain");
    } else {
      res.set_content("ready\n", "text/plain");
    }
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics.render(gauges()), "text/plain; version=0.0.4; charset=utf-8");
  });
  http.Post("/v1/scan", [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
    handle_upload(req, res, reader, false);
  });
  http.Post("/v1/sanitize", [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
    handle_upload(req, res, reader, true);
  });
  http.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    // Statuses the library sets itself (404, 413, 400 for a malformed request) get a JSON body too.
    if (res.body.empty()) {
      const int status = res.status;
      answer_error(res, status, status == 404 ? "no such endpoint" : status == 413 ? "the body is over the size limit"
                                                                                  : "malformed request");
    }
  });
}

namespace {

/// The request's choice of rule packs (?rules= or X-Brine-Rules, comma-separated), each of which
/// must be on the allowlist; returned in allowlist order, each once.
core::Result<std::vector<std::string>> chosen_packs(const httplib::Request& req, const std::vector<std::string>& allowed) {
  std::string spec = req.has_param("rules") ? req.get_param_value("rules") : req.get_header_value("X-Brine-Rules");
  std::vector<bool> on(allowed.size(), false);
  std::size_t start = 0;
  while (start <= spec.size()) {
    std::size_t end = spec.find(',', start);
    if (end == std::string::npos) end = spec.size();
    std::string_view item(spec.data() + start, end - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) {
      const auto it = std::find(allowed.begin(), allowed.end(), item);
      if (it == allowed.end()) {
        return core::fail(core::ErrorCode::kUsage, 0,
                          fmt::format("rule pack '{}' is not one this service offers", std::string(item.substr(0, 100))));
      }
      on[static_cast<std::size_t>(it - allowed.begin())] = true;
    }
    start = end + 1;
  }
  std::vector<std::string> packs;
  for (std::size_t i = 0; i < allowed.size(); ++i) {
    if (on[i]) packs.push_back(allowed[i]);
  }
  return packs;
}

std::string file_name_of(const httplib::Request& req) {
  std::string name = req.has_param("name") ? req.get_param_value("name") : req.get_header_value("X-Brine-Filename");
  if (name.empty()) name = "upload";
  if (name.size() > 1024) name.resize(1024);
  return name;
}

/// A flag that is on for "1", "true" or "yes".
bool flag_param(const httplib::Request& req, const char* key) {
  const std::string v = req.get_param_value(key);
  return v == "1" || v == "true" || v == "yes";
}

}  // namespace

void Server::Impl::handle_upload(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader,
                                 bool sanitize) {
  in_flight.fetch_add(1);
  struct Leave {
    std::atomic<std::uint64_t>& n;
    ~Leave() { n.fetch_sub(1); }
  } leave{in_flight};

  // Everything that can be refused without the body is refused before reading it.
  auto packs = chosen_packs(req, options.packs);
  if (!packs) {
    close_after(res);
    return answer_error(res, 400, packs.error().detail);
  }
  for (const auto& p : *packs) t_request.rules += (t_request.rules.empty() ? "" : ",") + p;
  std::string to;
  if (sanitize) {
    to = req.get_param_value("to");
    if (to.empty()) to = "safetensors";
    if (to != "safetensors" && to != "onnx") {
      close_after(res);
      return answer_error(res, 400, "to= must be safetensors or onnx");
    }
  }
  t_request.name = file_name_of(req);
  const auto length = content_length(req);
  if (length && length->value_or(0) > options.max_body) {
    close_after(res);  // refused unread: the library would otherwise read the whole body to discard it
    return answer_error(res, 413, fmt::format("the body is over the size limit ({} bytes)", options.max_body));
  }
  if (!pool.has_room()) {
    close_after(res);
    res.set_header("Retry-After", "1");
    return answer_error(res, 429, "the scan queue is full");
  }
  auto spool = RequestSpool::create(options.temp_dir, budget);
  if (!spool) {
    close_after(res);
    return answer_error(res, 500, "cannot make a temp file");
  }
  if (!length) {
    close_after(res);
    return answer_error(res, 400, "Content-Length is not one decimal number");
  }
  const bool sized = length->has_value();
  const std::uint64_t claimed = length->value_or(0);
  if (sized) {
    if (!spool->reserve(claimed)) {
      close_after(res);
      res.set_header("Retry-After", "1");
      return answer_error(res, 429, "the temp disk budget is in use by other uploads");
    }
  }

  // ---- the body, to the private file ----
  bool over_size = false, over_budget = false, disk_error = false;
  const bool received = reader([&](const char* data, std::size_t size) {
    if (size > options.max_body - std::min(options.max_body, spool->upload_size())) {
      over_size = true;
      return false;
    }
    if (!sized && !spool->reserve(size)) {  // chunked: charged as it arrives
      over_budget = true;
      return false;
    }
    if (sized && spool->upload_size() + size > claimed) return false;
    if (!spool->append(data, size)) {
      disk_error = true;
      return false;
    }
    return true;
  });
  if (!received) {
    close_after(res);
    if (over_size) return answer_error(res, 413, fmt::format("the body is over the size limit ({} bytes)", options.max_body));
    if (over_budget) {
      res.set_header("Retry-After", "1");
      return answer_error(res, 429, "the temp disk budget is in use by other uploads");
    }
    if (disk_error) return answer_error(res, 500, "cannot write the upload to temp disk");
    if (t_request.deadline_hit) return answer_error(res, 408, "the request took longer than the request time-out");
    return answer_error(res, 400, "the body ended before its stated length");
  }

  auto scanner = scanner_for(*packs);
  if (!scanner) {
    close_after(res);
    return answer_error(res, 500, scanner.error().detail);
  }

  // ---- the scan (or sanitize), on a worker ----
  struct Outcome {
    int status = 200;
    std::string body, content_type = "application/json";
    std::string verdict, sha256;
    analysis::Verdict v = analysis::Verdict::kClean;
    int output_fd = -1;        ///< sanitize: the written file, to stream back
    std::uint64_t output_size = 0;
  };
  std::promise<Outcome> promise;
  auto done = promise.get_future();
  const std::string name = t_request.name;
  RequestSpool& sp = *spool;
  const scan::Scanner& sc = **scanner;
  const bool salvage = flag_param(req, "salvage"), verify = flag_param(req, "verify");
  auto work = [&] {
    Outcome out;
    if (!sanitize) {
      auto file = core::MappedFile::open(sp.upload_path());
      scan::FileReport report;
      if (file) {
        report = sc.scan_bytes(file->bytes(), name);
      } else {
        report.path = name;
        report.verdict = analysis::Verdict::kError;
        report.findings.push_back(analysis::error_finding(file.error(), {}));
      }
      std::ostringstream json;
      report::write_json(json, {report}, report::summarize({report}, 0, report.seconds));
      out.body = json.str();
      out.v = report.verdict;
      out.sha256 = report.sha256;
    } else {
      sanitize::SanitizeOptions so;
      so.format = to;
      so.output = sp.output_path(to == "onnx" ? "output.onnx" : "output.safetensors");
      so.input_name = name;
      so.salvage = salvage;
      so.verify = verify;
      so.max_output_bytes = options.max_body;
      so.admit_output = [&sp](std::uint64_t bytes) { return sp.reserve(bytes + (1u << 20)); };  // + the header's room
      so.write.producer_version = BRINE_VERSION;
      auto report = sanitize::sanitize_file(sp.upload_path(), sc, so);
      out.v = report.scan.verdict;
      out.sha256 = report.scan.sha256;
      const bool external = ::access((so.output + ".data").c_str(), F_OK) == 0;
      if (report.written && !external) {
        const int fd = ::open(so.output.c_str(), O_RDONLY | O_CLOEXEC);
        const off_t size = fd >= 0 ? ::lseek(fd, 0, SEEK_END) : -1;
        if (size >= 0) {
          out.output_fd = fd;
          out.output_size = static_cast<std::uint64_t>(size);
        } else if (fd >= 0) {
          ::close(fd);
        }
      }
      if (out.output_fd < 0) {
        if (report.written) {
          report.written = false;
          report.error = core::Error{core::ErrorCode::kLimitExceeded, 0, {}, {},
                                     external ? "the ONNX model needs external data (over 2 GiB): ask for to=safetensors"
                                              : "the output could not be read back"};
        }
        std::ostringstream json;
        report::write_sanitize_json(json, report);
        out.body = json.str();
        out.status = 422;
      }
    }
    out.verdict = std::string(analysis::verdict_name(out.v));
    return out;
  };
  auto job = [&] {
    try {
      promise.set_value(work());
    } catch (...) {  // out of memory, most likely: the request fails, the worker and the service go on
      Outcome failed;
      failed.status = 500;
      failed.body = "{\"status\":500,\"error\":\"the scan failed inside the service\"}\n";
      failed.v = analysis::Verdict::kError;
      failed.verdict = "error";
      promise.set_value(std::move(failed));
    }
  };
  if (!pool.try_submit(job)) {
    close_after(res);
    res.set_header("Retry-After", "1");
    return answer_error(res, 429, "the scan queue is full");
  }
  Outcome out = done.get();
  metrics.record_verdict(out.v);
  t_request.verdict = out.verdict;
  t_request.sha256 = out.sha256;
  res.set_header("X-Brine-Verdict", out.verdict);
  if (out.output_fd < 0) {
    res.status = out.status;
    res.set_content(std::move(out.body), out.content_type);
    return;
  }
  // The converted file, streamed from the private directory; the spool (and with it the file
  // and its budget) lives until the library has sent it or given up.
  auto held = std::make_shared<RequestSpool>(std::move(*spool));
  const int fd = out.output_fd;
  res.status = 200;
  res.set_content_provider(
      out.output_size, "application/octet-stream",
      [fd, held](std::size_t offset, std::size_t want, httplib::DataSink& sink) {
        std::vector<char> buf(std::min<std::size_t>(want, 1 << 18));
        const ssize_t n = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(offset));
        if (n <= 0) return false;
        return sink.write(buf.data(), static_cast<std::size_t>(n));
      },
      [fd, held](bool) { ::close(fd); });
}

core::Result<std::unique_ptr<Server>> Server::create(ServeOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  // Every rule set a request can ask for is loaded once here: a bad pack stops the start-up, not a request.
  if (auto base = impl->scanner_for({}); !base) return core::fail(base.error());
  for (const auto& pack : impl->options.packs) {
    if (auto s = impl->scanner_for({pack}); !s) return core::fail(s.error());
  }
  impl->route();
  return std::make_unique<Server>(Passkey{}, std::move(impl));
}

Server::Server(Passkey, std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() = default;

core::Result<int> Server::bind() {
  const auto& o = impl_->options;
  if (o.port == 0) {
    const int port = impl_->http.bind_to_any_port(o.host);
    if (port <= 0) return core::fail(core::ErrorCode::kIo, 0, fmt::format("cannot listen on {}", o.host));
    impl_->http.widen_backlog();
    return port;
  }
  if (!impl_->http.bind_to_port(o.host, o.port)) {
    return core::fail(core::ErrorCode::kIo, 0, fmt::format("cannot listen on {}:{}", o.host, o.port));
  }
  impl_->http.widen_backlog();
  return o.port;
}

void Server::run() {
  if (impl_->draining.load()) return impl_->pool.shutdown();  // stopped before it started
  impl_->http.listen_after_bind();  // returns after stop(), once every accepted connection is served
  impl_->pool.shutdown();
}

void Server::shutdown() {
  if (impl_->draining.exchange(true)) return;
  impl_->http.stop();
}

}  // namespace brine::serve
