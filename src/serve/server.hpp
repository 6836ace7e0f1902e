// `brine serve`: scan and sanitize over HTTP, for a registry that gatekeeps uploads
// (docs/serve.md). The file is the request body; it is streamed to a private temp file, scanned by
// the same Scanner the command line uses, and answered with the same JSON report.
//
// Every request is bounded: its body (413), its time (the deadline covers reading the request
// and writing the answer), the scan's own limits, and the temp disk all requests hold together.
// Work is bounded too: a fixed pool of scan workers behind a bounded queue (429 when full), and
// a fixed set of connection slots (429 at once when all are taken).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/limits.hpp"
#include "core/result.hpp"
#include "rules/rule_loader.hpp"

namespace brine::serve {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                          ///< 0: any free port (bind() returns it)
  unsigned workers = 2;                     ///< scans or sanitizes run at once
  std::size_t queue = 64;                   ///< scans that may wait for a worker
  unsigned connections = 64;                ///< connections served at once (uploads in progress)
  std::size_t pending_connections = 256;    ///< accepted connections waiting for a slot
  std::uint64_t max_body = 4ull << 30;      ///< bytes of one upload
  std::uint64_t max_temp = 16ull << 30;     ///< temp disk all requests hold at once
  std::chrono::milliseconds request_timeout{300'000};
  std::chrono::milliseconds idle_timeout{5'000};  ///< a kept-alive connection with no new request
  std::string temp_dir = "/tmp";
  std::string token;                        ///< empty: no authentication
  rules::RuleOptions rules;                 ///< the rules every request uses
  std::vector<std::string> packs;           ///< what a request may add with ?rules= (names or files)
  core::Limits limits;                      ///< the scan's limits, per request
  /// Receives one JSON line per request (the access log); called from connection threads, one at a time.
  std::function<void(std::string_view line)> access_log;
};

class Server {
  struct Impl;

 public:
  /// Loads the rules (the base set and each allowed pack, so a bad pack fails at start-up).
  static core::Result<std::unique_ptr<Server>> create(ServeOptions options);

  /// Only create() can make the key: a Server always starts with its rules loaded.
  class Passkey {
    Passkey() = default;
    friend class Server;
  };
  Server(Passkey, std::unique_ptr<Impl> impl);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds the listening socket; the port it got.
  core::Result<int> bind();
  /// Serves until shutdown() has been called and every accepted request is answered.
  void run();
  /// Starts a graceful shutdown (call it from a normal thread, not a signal handler): readyz
  /// turns 503, new requests get 503, accepted ones finish. Idempotent.
  void shutdown();

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace brine::serve
