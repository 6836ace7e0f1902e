// `brine serve`'s run: starts the server (serve/server.hpp) with the parsed flags, handles the
// signals that stop it, and writes the access log. Linked only into brine-serve.
#include "cli/cmd_serve.hpp"

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <atomic>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "core/text.hpp"

namespace brine::cli {

namespace {

/// "HOST:PORT", "[V6]:PORT" or ":PORT" (loopback).
bool parse_listen(const std::string& text, std::string& host, int& port) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) return false;
  host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "127.0.0.1";
  const std::string p = text.substr(colon + 1);
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos) return false;
  port = std::stoi(p);
  return port <= 65535;
}

/// The token: the file's first line, without surrounding white space.
bool read_token(const std::string& path, std::string& token) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::getline(in, token);
  const auto first = token.find_first_not_of(" \t\r\n");
  const auto last = token.find_last_not_of(" \t\r\n");
  token = first == std::string::npos ? "" : token.substr(first, last - first + 1);
  return !token.empty();
}

}  // namespace

int ServeCommand::run(const rules::RuleOptions& rules, const core::Limits& limits) {
  serve::ServeOptions o = options_;
  if (!parse_listen(listen_, o.host, o.port)) {
    std::cerr << "brine: --listen wants HOST:PORT, not " << core::display_text(listen_) << '\n';
    return 2;
  }
  if (!token_file_.empty() && !read_token(token_file_, o.token)) {
    std::cerr << "brine: cannot read a token from " << core::display_text(token_file_) << '\n';
    return 2;
  }
  const std::string host = o.host;
  o.request_timeout = std::chrono::milliseconds(static_cast<std::int64_t>(request_timeout_ * 1000));
  o.rules = rules;
  o.limits = limits;

  std::ofstream log_file;
  if (access_log_ == "-") {
    o.access_log = [](std::string_view line) {
      std::cout << line << '\n';
      std::cout.flush();
    };
  } else if (access_log_ != "none") {
    log_file.open(access_log_, std::ios::binary | std::ios::app);
    if (!log_file) {
      std::cerr << "brine: cannot write " << core::display_text(access_log_) << '\n';
      return 2;
    }
    o.access_log = [&log_file](std::string_view line) {
      log_file << line << '\n';
      log_file.flush();
    };
  }

  // SIGTERM and SIGINT go to one thread (blocked everywhere else, before any thread starts):
  // the first starts the drain, a second ends the process at once.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);  // a client that goes away is a failed send, not a dead service

  auto server = serve::Server::create(std::move(o));
  if (!server) {
    std::cerr << "brine: " << core::display_text(server.error().detail) << '\n';
    return 2;
  }
  auto port = (*server)->bind();
  if (!port) {
    std::cerr << "brine: " << core::display_text(port.error().detail) << '\n';
    return 2;
  }
  serve::Server* s = server->get();
  std::atomic<bool> finished{false};
  std::thread waiter([&stop_signals, &finished, s] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    if (finished.load()) return;
    std::cerr << "brine: draining (signal " << sig << "): in-flight requests finish, new ones get 503\n";
    s->shutdown();
    sigwait(&stop_signals, &sig);
    if (finished.load()) return;
    std::_Exit(128 + sig);  // a second signal: stop now
  });
  std::cerr << fmt::format("brine: listening on http://{}:{}\n", host.find(':') == std::string::npos ? host : "[" + host + "]", *port);
  std::cerr.flush();
  s->run();
  finished.store(true);
  pthread_kill(waiter.native_handle(), SIGTERM);  // blocked, so it only wakes the waiter
  waiter.join();
  std::cerr << "brine: stopped\n";
  return 0;
}

int serve_main(char** /*argv*/, ServeCommand& command, const rules::RuleOptions& rules, const core::Limits& limits) {
  return command.run(rules, limits);
}

}  // namespace brine::cli
