#pragma once
/// SelfHealer: health targets, each with a liveness probe (and optionally a readiness probe) and a
/// healing ladder, healed so that it cannot loop.
///
///  - A target becomes unhealthy after `failure_threshold` consecutive failed probes (or when its
///    flap detection trips) and healthy after `success_threshold` successes. Readiness is shown
///    and announced but never healed.
///  - Healing climbs the ladder: each step (restart a supervised service, run a command, trigger a
///    workflow, call a host callback, wait, alert, quarantine) is followed by its verification
///    wait; still unhealthy, the next step follows after an exponential backoff with a cap and
///    jitter. The backoff is reset only after the target stayed healthy for `reset_after`.
///  - Restarts are budgeted per window (per target), counted from the healing history so that a
///    crash loop that starts fine and dies seconds later, or a restarted healer, cannot reset it; a
///    spent budget or an exhausted ladder escalates: an alert, and the target is quarantined until
///    it is healthy again or an operator resumes it (which starts a new budget).
///  - A step is verified by a probe taken after its verification wait; a step that fails (or whose
///    hook throws) is counted and backed off like any other.
///  - A healer that starts picks up the recorded state: a quarantine stays, an episode goes on.
///  - A supervised service that exited with a code in `no_heal_exit_codes`, or that was stopped on
///    purpose, is not healed.
///  - One action in flight per target. Targets depend on others (a DAG): while a dependency is
///    unhealthy a dependant is not healed and its alarms are silenced; roots are healed first and
///    dependants after, in order; when a root that was restarted is healthy again, its dependants
///    with a service are restarted, in order.
///  - An operator's pause (or maintenance window, a pause with an end) always wins; it is stored,
///    so `autoctl heal pause` reaches a running daemon.
///  - Alerts and events (health.unhealthy, health.healthy, health.quarantined, ...) only on a
///    change of state. Every change and every step is a healing record with its reason; a dry run
///    records the plan it would carry out.
///
/// Thread-safety: all methods may be called from any thread; passes are serialized. Needs a Store
/// and a Clock (and the Supervisor, when given), outliving it.
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>
#include <automation/healing/probe.hpp>
#include <automation/healing/supervisor.hpp>
#include <automation/storage/store.hpp>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace automation::healing {

enum class ActionKind : std::uint8_t { restart, command, workflow, callback, wait, alert, quarantine };
std::string_view to_string(ActionKind kind) noexcept;
Result<ActionKind> parse_action_kind(std::string_view text);

struct HealStep {
  ActionKind kind = ActionKind::wait;
  std::string service;                          ///< restart: the supervised service (default: the target's)
  std::vector<std::string> command;             ///< command: argv, no shell
  std::string workflow;                         ///< workflow: its name ("cleanup-resources")
  std::map<std::string, std::string> params;    ///< workflow: its parameters
  std::string callback;                         ///< callback: one registered with the healer ("clear_caches")
  Duration verify = std::chrono::seconds(30);   ///< the verification wait after the step
  Duration timeout = std::chrono::seconds(60);  ///< command
  std::string describe() const;                 ///< "restart web", "workflow cleanup-resources", ...
};

struct Backoff {
  Duration initial = std::chrono::seconds(10);  ///< the delay before the second attempt
  Duration cap = std::chrono::minutes(5);
  double multiplier = 2;
  double jitter = 0.1;                              ///< +- this fraction of each delay
  Duration reset_after = std::chrono::minutes(10);  ///< healthy this long resets the delays
};

struct Budget {
  int restarts = 3;  ///< restarts allowed per window (0: none)
  Duration window = std::chrono::minutes(15);
};

struct TargetSpec {
  std::string name;  ///< storage::is_resource_name
  std::string description;
  ProbeSpec liveness;
  std::optional<ProbeSpec> readiness;
  std::string service;  ///< the supervised service it is about (restart steps, exit codes)
  std::vector<HealStep> ladder;
  Backoff backoff;
  Budget budget;
  std::vector<int> no_heal_exit_codes;  ///< a service that exited with one of these is left down
  std::vector<std::string> depends_on;
  bool dry_run = false;
  Result<void> validate() const;
};

/// A target's state now.
struct TargetStatus {
  std::string name;
  std::string state;  ///< "unknown", "healthy", "unhealthy", "healing", "quarantined", "paused"
  std::string reason;
  TimePoint since{};
  bool ready = true;  ///< the readiness probe's verdict (true without one)
  std::optional<ProbeResult> last_probe;
  TimePoint last_probe_time{};
  int consecutive_failures = 0, consecutive_successes = 0;
  int attempt = 0;                        ///< healing attempts since the backoff was last reset
  int step = 0;                           ///< the next ladder step of this episode
  std::optional<TimePoint> next_action;   ///< when the next step may run
  std::optional<TimePoint> paused_until;  ///< paused (TimePoint::max(): until resumed)
  std::string paused_by;
  std::vector<std::string> waiting_for;  ///< unhealthy dependencies
  std::string error;                     ///< why the last pass over it failed (a store error), "" when it did not
};

/// What one pass wrote, and what went wrong (one target's error does not stop the others).
struct TickReport {
  std::vector<storage::HealingRecord> records;
  std::vector<Error> errors;
};

struct HealerOptions {
  Supervisor* supervisor = nullptr;  ///< for restart steps and service probes
  /// Starts a workflow run for a workflow step; returns its id.
  std::function<Result<std::int64_t>(const std::string& workflow, const std::map<std::string, std::string>& params,
                                     const std::string& reason)>
      start_workflow;
  /// Host callbacks by name, for callback probes and steps ("clear_caches", "recycle_connections").
  std::map<std::string, std::function<Result<std::string>()>> callbacks;
  /// Called on a change of state worth an alert (unhealthy, healthy again, quarantined) and by
  /// alert steps, never for a silenced target.
  std::function<void(const std::string& target, const std::string& what, const std::string& reason)> alert;
  bool emit_events = true;  ///< health.<what> events in the store
  std::uint64_t seed = 0;   ///< for the backoff's jitter (0: a random one, so hosts spread apart)
};

class SelfHealer {
 public:
  SelfHealer(storage::Store& store, const Clock& clock, HealerOptions options = {});
  ~SelfHealer();
  SelfHealer(const SelfHealer&) = delete;
  SelfHealer& operator=(const SelfHealer&) = delete;

  /// errc::invalid_argument for an invalid spec, a callback or service that is not registered, an
  /// unknown dependency or a cycle (dependencies must be added first); errc::already_exists.
  Result<void> add(TargetSpec spec);
  /// Adds several, dependencies first whatever their order; errc::invalid_argument naming a cycle
  /// or an unknown dependency (nothing is added then), or the first target add() refuses (those
  /// before it stay added).
  Result<void> add_all(std::vector<TargetSpec> specs);
  std::vector<std::string> targets() const;

  /// One pass over every target, dependencies first: runs the probes that are due, changes states,
  /// carries out the healing steps that are due. Returns the records it wrote and the errors of
  /// targets whose pass failed (a store error); the other targets' passes go on.
  TickReport tick();
  /// When the next probe or step is due (nullopt without targets).
  std::optional<TimePoint> next_due() const;

  /// An operator's pause of one target, until `until` (nullopt: until resumed); stored, so it
  /// reaches every healer on the store. Resume ends it.
  Result<storage::HealingRecord> pause(std::string_view target, std::optional<TimePoint> until, const std::string& actor,
                                       const std::string& reason);
  Result<storage::HealingRecord> resume(std::string_view target, const std::string& actor, const std::string& reason);

  std::vector<TargetStatus> status() const;

 private:
  struct Target;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The seeds' healing strategies as targets: the store's database locked -> wait and retry;
/// memory above 90 % -> the "clear_caches" callback, then an alert; the disk holding
/// `data_directory` above 90 % -> the cleanup-resources workflow, then an alert; and, for each
/// supervised service, down -> restart it (twice, then alert and quarantine). With
/// `connection_pool`, the "connection_pool" callback probe and the "recycle_connections" callback.
struct SeedOptions {
  std::string database;        ///< the SQLite store file (empty: no database target)
  std::string data_directory;  ///< whose disk is watched (empty: "/")
  std::vector<std::string> services;
  bool connection_pool = false;
  double memory_limit = 90, disk_limit = 90;
};
std::vector<TargetSpec> seed_targets(const SeedOptions& options);

/// A healing file (healing.targets_file):
///   {"seeds": true,
///    "services": [{"name": "api", "command": ["python3", "-m", "http.server", "8001"], "environment": {},
///                  "working_directory": "", "stop_timeout": "10s"}],
///    "targets": [{"name": "api", "service": "api", "description": "...",
///                 "liveness": {"type": "http", "url": "http://127.0.0.1:8001/", "status": [200], "body": "ok",
///                              "interval": "30s", "timeout": "5s", "initial_delay": "10s",
///                              "failure_threshold": 3, "success_threshold": 1, "flap": {"window": 10, "failures": 5}},
///                 "readiness": {...},
///                 "ladder": [{"action": "restart", "verify": "30s"}, {"action": "command", "command": [...], "timeout": "1m"},
///                            {"action": "workflow", "workflow": "cleanup-resources", "params": {...}},
///                            {"action": "callback", "callback": "clear_caches"}, {"action": "wait", "verify": "1m"},
///                            {"action": "alert"}, {"action": "quarantine"}],
///                 "backoff": {"initial": "10s", "cap": "5m", "multiplier": 2, "jitter": 0.1, "reset_after": "10m"},
///                 "budget": {"restarts": 3, "window": "15m"}, "no_heal_exit_codes": [0], "depends_on": ["database"],
///                 "dry_run": false}]}
/// Probe types: http (url, status, body, ca_file), tcp (host, port), process (pid, pidfile, name,
/// service), command (command), disk (path, max_percent), memory (max_percent), sqlite (database),
/// callback (callback). "seeds" (default true) adds the seed strategies for targets the file does
/// not name. Relative paths are relative to `base_directory`; services log to
/// <log_directory>/<name>.log. errc::invalid_argument naming `origin`, the target and the field.
struct HealingConfig {
  bool seeds = true;
  std::vector<ServiceSpec> services;
  std::vector<TargetSpec> targets;
};
Result<HealingConfig> parse_healing(std::string_view text, std::string_view origin, const std::filesystem::path& base_directory,
                                    const std::filesystem::path& log_directory);

}  // namespace automation::healing
