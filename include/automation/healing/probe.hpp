#pragma once
/// Health probes (kubelet's, monit's): an HTTP(S) GET with the expected status and body, a TCP
/// connect, a process alive (by pid, pidfile, name, or a supervised service), a command's exit
/// code, disk and memory usage under a limit, an SQLite database that takes a write lock, and a C++
/// callback. Each carries its schedule (interval, initial delay), its timeout, its failure and
/// success thresholds and X-of-Y flap detection, which the SelfHealer applies.
///
/// Thread-safety: run_probe() may be called from any thread.
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace automation::healing {

enum class ProbeKind : std::uint8_t { http, tcp, process, command, disk, memory, sqlite, callback };
std::string_view to_string(ProbeKind kind) noexcept;
/// errc::invalid_argument listing the kinds.
Result<ProbeKind> parse_probe_kind(std::string_view text);

struct ProbeSpec {
  ProbeKind kind = ProbeKind::callback;
  // http: GET url; healthy when the status is one of expect_status (empty: 200-399) and the body
  // contains expect_body (when given).
  std::string url;
  std::vector<int> expect_status;
  std::string expect_body;
  std::string ca_file;
  // tcp: a connection to host:port is accepted.
  std::string host = "127.0.0.1";
  int port = 0;
  // process: alive (and not a zombie), by one of: pid, pidfile, process name (/proc/PID/comm), or
  // a service of the healer's Supervisor.
  int pid = 0;
  std::string pidfile;
  std::string process_name;
  std::string service;
  // command: exits 0 (argv, no shell).
  std::vector<std::string> command;
  // disk: the file system holding `path` is used below max_percent; memory: used (total less
  // available) below max_percent.
  std::string path = "/";
  double max_percent = 90;
  // sqlite: the database file exists and a write transaction can begin within the timeout.
  std::string database;
  // callback: healthy when it returns a value (a detail), unhealthy with its error. Either the
  // function, or the name of one registered with the SelfHealer (JSON configurations).
  std::function<Result<std::string>()> callback;
  std::string callback_name;

  Duration timeout = std::chrono::seconds(5);
  Duration interval = std::chrono::seconds(30);
  Duration initial_delay{};
  int failure_threshold = 3;  ///< consecutive failures that make the target unhealthy
  int success_threshold = 1;  ///< consecutive successes that make it healthy again
  /// Flapping: unhealthy too when at least flap_failures of the last flap_window results failed
  /// (0: off), however they alternate.
  int flap_window = 0;
  int flap_failures = 0;

  /// errc::invalid_argument naming the field.
  Result<void> validate() const;
  /// "GET http://127.0.0.1:8080/health", "tcp 127.0.0.1:5432", "disk / below 90%", ...
  std::string describe() const;
};

struct ProbeResult {
  bool ok = false;
  std::string detail;            ///< what it saw: "200 in 3 ms", "disk / 93.1% used (limit 90%)", the error
  std::optional<int> exit_code;  ///< a command's exit code; a supervised service's last exit code
  Duration took{};
};

/// Runs the probe once (a process probe of a `service` needs the SelfHealer's Supervisor and fails
/// here). Never throws; a probe that cannot run is a failure saying why.
ProbeResult run_probe(const ProbeSpec& probe);

}  // namespace automation::healing
