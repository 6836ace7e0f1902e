// `brine serve`'s flags, and the hand-over to the program that serves (brine-serve).
//
// The HTTP server lives in its own program so that `brine` itself does not load cpp-httplib and
// its TLS and compression libraries on every start (a pre-commit hook starts brine once per
// commit; a CI job once per file list). `brine serve` parses and checks its flags here, so
// `--help` and usage errors need nothing else, then replaces itself with brine-serve, which
// parses the same command line with the same code and serves.
#include "cli/cmd_serve.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <system_error>
#include <thread>

#include <CLI/CLI.hpp>

#include "core/text.hpp"

namespace brine::cli {

void ServeCommand::add_to(CLI::App& serve) {
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  options_.workers = cores;
  const char* tmp = std::getenv("TMPDIR");
  options_.temp_dir = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  serve.add_option("--listen", listen_, "HOST:PORT to listen on ([::1]:PORT for IPv6; port 0 picks a free one)")
      ->capture_default_str();
  serve.add_option("--workers", options_.workers, "scans or sanitizes run at once")->capture_default_str()
      ->check(CLI::Range(1u, 1024u));
  serve.add_option("--queue", options_.queue, "uploads that may wait for a worker; past it new uploads get 429")
      ->capture_default_str()->check(CLI::Range(std::size_t{0}, std::size_t{1'000'000}));
  serve.add_option("--connections", options_.connections, "connections served at once (each upload in progress holds one)")
      ->capture_default_str()->check(CLI::Range(1u, 10'000u));
  serve.add_option("--pending-connections", options_.pending_connections,
                   "accepted connections that may wait for one of --connections; past it they get 429 at once")
      ->capture_default_str()->check(CLI::Range(std::size_t{0}, std::size_t{1'000'000}));
  serve.add_option("--max-body", options_.max_body, "bytes of one upload (413 past it); suffixes KiB MiB GiB")
      ->transform(CLI::AsSizeValue(false))->capture_default_str();
  serve.add_option("--max-temp", options_.max_temp,
                   "temp disk all requests hold at once: uploads and sanitize outputs (429 when full); suffixes KiB MiB GiB")
      ->transform(CLI::AsSizeValue(false))->capture_default_str();
  serve.add_option("--request-timeout", request_timeout_,
                   "seconds one request may take to arrive and to be answered (408, or the connection is closed)")
      ->capture_default_str()->check(CLI::Range(0.01, 1e6));
  serve.add_option("--temp-dir", options_.temp_dir, "where private per-request directories are made (default $TMPDIR or /tmp)");
  serve.add_option("--token-file", token_file_,
                   "require 'Authorization: Bearer TOKEN' (the file's first line) on every endpoint but /healthz and /readyz");
  serve.add_option("--rule-pack", options_.packs,
                   "a rule pack (name or file) a request may enable with ?rules= or X-Brine-Rules; repeatable (the allowlist)")
      ->allow_extra_args(false);
  serve.add_option("--access-log", access_log_, "one JSON line per request to FILE (- stdout, none: off)")->capture_default_str();
}

std::vector<std::string> serve_program_candidates() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  const auto dir = self.parent_path();
  // Beside brine (a build tree), or in the libexec folder of the prefix brine is installed under
  // (also inside a DESTDIR staging tree, which is why this is not an absolute configured path).
  std::vector<std::string> out{(dir / "brine-serve").string()};
  const std::filesystem::path bindir = BRINE_BINDIR, libexecdir = BRINE_LIBEXECDIR;
  if (bindir.is_relative() && libexecdir.is_relative() && dir.filename() == bindir.filename()) {
    auto root = dir;
    for (auto it = bindir.begin(); it != bindir.end(); ++it) root = root.parent_path();
    out.push_back((root / libexecdir / "brine-serve").string());
  }
  return out;
}

int exec_serve_program(char** argv) {
  const auto candidates = serve_program_candidates();
  int error = ENOENT;
  for (const auto& path : candidates) {
    ::execv(path.c_str(), argv);  // returns only on failure
    if (errno != ENOENT) error = errno;
  }
  std::cerr << "brine: serve runs as the program brine-serve, installed with brine; it cannot be started ("
            << (candidates.empty() ? std::string("no path to brine itself") : core::display_text(candidates.front()))
            << "): " << std::strerror(error) << '\n';
  return 2;
}

}  // namespace brine::cli
