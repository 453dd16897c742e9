#pragma once
/// The pluggable storage interface. Operations are coarse and domain-level, grouped by area (meta,
/// audit, task history, breakers, workflow runs, schedules, metrics, deliveries, samples, alerts, forecasts, scaling, healing, tokens), and
/// every one is written to stay correct when several processes share one database: appends get store-assigned ids, updates use
/// compare-and-set on a version, "exactly once" uses unique keys, and claims carry an owner and a lease. Thread-safety: every Store
/// implementation is safe to call from several threads.
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace automation::storage {

// ---- meta area ---------------------------------------------------------------------------------

struct FileInfo {
  std::string path;
  std::int64_t bytes = 0;
};

struct AreaInfo {
  std::string area;   ///< "audit", ...
  std::string table;  ///< the table (or collection) holding it
  std::int64_t rows = 0;
};

struct StoreInfo {
  std::string backend;   ///< "sqlite" or "memory"
  std::string location;  ///< the database path, or "memory:"
  int schema_version = 0;
  int latest_schema_version = 0;
  std::vector<FileInfo> files;  ///< the database file, its -wal and -shm (those that exist)
  std::vector<AreaInfo> areas;
  std::string journal_mode;  ///< "wal" for SQLite
  std::string synchronous;   ///< "normal" or "full" for SQLite
};

struct MigrationReport {
  int from_version = 0;
  int to_version = 0;
  std::vector<std::string> applied;  ///< "2: add the audit area", in order
};

/// The schema version this build writes; a database with a higher one is refused (schema_too_new).
int latest_schema_version() noexcept;
/// The migrations a database at `from_version` still needs, as "N: description", in order.
std::vector<std::string> pending_migrations(int from_version);

// ---- audit area --------------------------------------------------------------------------------

enum class AuditOutcome { success, failure, denied };
std::string_view to_string(AuditOutcome o) noexcept;
Result<AuditOutcome> parse_audit_outcome(std::string_view text);

/// One mutating action: who did what to which resource, when, from where, how it ended and why.
struct AuditRecord {
  std::int64_t id = 0;  ///< assigned by the store on append; increases with append order
  TimePoint time{};
  std::string actor;     ///< "user:alice", "token:deploy-bot", "system:scheduler"
  std::string action;    ///< dotted verb: "store.migrate", "breaker.reset"
  std::string resource;  ///< "store", "breaker:payments"
  std::string origin;    ///< "cli pid=4242 host=web1", "http 127.0.0.1:51234"
  AuditOutcome outcome = AuditOutcome::success;
  std::string reason;          ///< why it was done, or why it failed / was denied
  std::string details = "{}";  ///< a JSON object with the inputs
  std::string correlation_id;

  friend bool operator==(const AuditRecord&, const AuditRecord&) = default;
};

/// Filters are ANDed. `resource` and `actor` match exactly, or by prefix when they end in '*'.
struct AuditQuery {
  std::optional<TimePoint> since;  ///< inclusive
  std::optional<TimePoint> until;  ///< exclusive
  std::optional<std::string> actor;
  std::optional<std::string> action;
  std::optional<std::string> resource;
  std::optional<AuditOutcome> outcome;
  std::size_t limit = 100;   ///< at most this many records (0: no limit)
  bool newest_first = true;  ///< order by id descending (else ascending)
};

/// Checks a record before it is stored (non-empty actor/action/resource, details a JSON object).
/// Every backend calls this, so all of them reject the same input with the same message.
Result<void> validate(const AuditRecord& record);

// ---- task history area -------------------------------------------------------------------------

enum class TaskOutcome : std::uint8_t { success, failure, timeout, cancelled };
std::string_view to_string(TaskOutcome o) noexcept;
Result<TaskOutcome> parse_task_outcome(std::string_view text);

/// One execution of an automated task. Times are stored to the millisecond, durations to the
/// microsecond.
struct TaskRecord {
  std::int64_t id = 0;        ///< assigned by the store on append
  std::string domain;         ///< "workflow", "scaler", "healer", "metrics", ...
  std::string action;         ///< "deploy-production", "scale_up", "restart", ...
  std::string params = "{}";  ///< a JSON object with the inputs
  TaskOutcome outcome = TaskOutcome::success;
  std::string error;  ///< why it failed (empty on success)
  TimePoint started{};
  TimePoint ended{};
  Duration duration{0};          ///< usually ended - started; may exclude queueing
  std::optional<double> impact;  ///< an impact score chosen by the caller (e.g. 0..1 or a saving)
  std::string correlation_id;

  friend bool operator==(const TaskRecord&, const TaskRecord&) = default;
};

/// Filters are ANDed; the time range applies to `started`.
struct TaskQuery {
  std::optional<TimePoint> since;  ///< inclusive
  std::optional<TimePoint> until;  ///< exclusive
  std::optional<std::string> domain;
  std::optional<std::string> action;
  std::optional<TaskOutcome> outcome;
  std::optional<std::string> correlation_id;
  std::size_t limit = 100;   ///< 0: no limit
  bool newest_first = true;  ///< by id
};

struct TaskStatsQuery {
  std::optional<TimePoint> since;  ///< inclusive, on `started`
  std::optional<TimePoint> until;  ///< exclusive
  std::optional<std::string> domain;
  std::optional<std::string> action;
  std::size_t top_failures = 5;   ///< failure reasons kept per group
  std::size_t top_params = 5;     ///< parameter values kept per group
  std::uint64_t min_support = 3;  ///< runs a parameter value needs before it is reported
};

struct FailureReason {
  std::string reason;  ///< the error text ("timeout" for a timeout without one)
  std::uint64_t count = 0;
  friend bool operator==(const FailureReason&, const FailureReason&) = default;
};

/// A top-level parameter value and how runs with it ended.
struct ParamAssociation {
  std::string key;
  std::string value;            ///< compact JSON: "\"eu-west\"", "3", "true"
  std::uint64_t support = 0;    ///< runs with this value
  std::uint64_t successes = 0;  ///< of which succeeded
  double success_rate = 0;      ///< successes / support, 0..1
  double lift = 0;              ///< success_rate / the group's success rate
};

/// Statistics of one (domain, action) over a range. Percentiles are nearest-rank over durations
/// rounded down to three significant digits (less than 1 % low, exact under 1 ms); the mean is exact.
struct TaskGroupStats {
  std::string domain, action;
  std::uint64_t count = 0, successes = 0, failures = 0, timeouts = 0, cancelled = 0;
  double success_rate = 0;  ///< successes / count, 0..1
  Duration mean_duration{0}, p50_duration{0}, p95_duration{0};
  std::optional<double> mean_impact;  ///< over the records that have one
  std::uint64_t impact_samples = 0;
  std::vector<FailureReason> top_failures;       ///< most frequent first, ties by text
  std::vector<ParamAssociation> success_params;  ///< highest success rate first, then support
};

Result<void> validate(const TaskRecord& record);

// ---- breaker area ------------------------------------------------------------------------------

/// The persisted state of a named circuit breaker. `version` increases by one on every write, so
/// writers coordinate by compare-and-set.
struct BreakerRecord {
  std::string name;
  std::string state;  ///< "closed", "open", "half_open", "forced_open", "disabled", "metrics_only"
  TimePoint open_until{};
  int open_attempt = 0;
  std::string reason;          ///< why it is in this state
  std::string details = "{}";  ///< a JSON object: the writer's window and counters
  TimePoint updated{};
  std::string updated_by;  ///< "pid 4242 on web1", "user:alice"
  std::int64_t version = 0;

  friend bool operator==(const BreakerRecord&, const BreakerRecord&) = default;
};

Result<void> validate(const BreakerRecord& record);

// ---- workflow area -----------------------------------------------------------------------------

/// The state of a workflow run, a step or an attempt. queued: waiting to start (a step waiting for
/// its needs or a retry); the last six are final, except that an interrupted run may be resumed.
enum class RunState : std::uint8_t { queued, running, succeeded, failed, skipped, cancelled, timed_out, interrupted };
std::string_view to_string(RunState s) noexcept;
Result<RunState> parse_run_state(std::string_view text);
/// Every state but queued and running.
constexpr bool is_final(RunState s) noexcept { return s != RunState::queued && s != RunState::running; }

/// One run of a workflow. `workflow`, `definition`, `params`, `trigger`, `correlation_id`,
/// `priority`, `concurrency_key`, `parent_run_id` and `queued_at` are fixed when the run is created;
/// the rest changes through update_run, which bumps `version` (compare-and-set).
struct RunRecord {
  std::int64_t id = 0;  ///< assigned by the store
  std::string workflow;
  std::string definition = "{}";  ///< the definition as run (JSON), so a resume runs the same steps
  std::string params = "{}";      ///< a JSON object of strings
  RunState state = RunState::queued;
  std::string trigger;  ///< "manual", "schedule:NAME", "event:NAME", "workflow:RUN/STEP", "resume:RUN"
  std::string correlation_id;
  int priority = 0;
  std::string concurrency_key;
  std::int64_t parent_run_id = 0;                   ///< the run whose step started this one (0: none)
  TimePoint queued_at{}, started_at{}, ended_at{};  ///< epoch 0: not yet
  std::string reason;                               ///< why it ended as it did (or is waiting)
  std::string owner;                                ///< the engine running it: "pid 4242 (start 123456) on web1"; empty when none
  TimePoint lease_until{};
  bool cancel_requested = false;
  std::string cancel_reason;
  std::int64_t version = 0;

  friend bool operator==(const RunRecord&, const RunRecord&) = default;
};

struct StepRecord {
  std::int64_t run_id = 0;
  std::string step;  ///< the step id; a compensation is "ID.compensate"
  RunState state = RunState::queued;
  int attempts = 0;
  TimePoint started{}, ended{};
  std::optional<int> exit_code;
  std::string outputs = "{}";  ///< a JSON object of strings
  std::string reason;

  friend bool operator==(const StepRecord&, const StepRecord&) = default;
};

struct AttemptRecord {
  std::int64_t run_id = 0;
  std::string step;
  int attempt = 1;
  RunState state = RunState::running;
  TimePoint started{}, ended{};
  std::optional<int> exit_code;
  std::string stdout_text, stderr_text;  ///< bounded by the engine
  std::string error;
  std::int64_t pid = 0;        ///< a command's process (group leader); 0 for in-process steps
  std::int64_t pid_start = 0;  ///< its start time in clock ticks since boot, to tell a reused pid apart

  friend bool operator==(const AttemptRecord&, const AttemptRecord&) = default;
};

/// Filters are ANDed; the time range applies to `queued_at`.
struct RunQuery {
  std::optional<std::string> workflow;
  std::vector<RunState> states;  ///< any of these (empty: all)
  std::optional<TimePoint> since, until;
  std::optional<std::int64_t> parent_run_id;
  std::size_t limit = 100;   ///< 0: no limit
  bool newest_first = true;  ///< by id
};

/// The persisted state of a schedule (its definition lives in code or configuration).
struct ScheduleRecord {
  std::string name;
  bool paused = false;
  std::string reason;  ///< why it is paused (or was resumed)
  int consecutive_failures = 0;
  TimePoint last_fire{};           ///< the latest fire time handled (started, skipped, buffered or missed)
  std::int64_t last_event_id = 0;  ///< event schedules: the newest event handled
  TimePoint updated{};
  std::string updated_by;
  std::int64_t version = 0;

  friend bool operator==(const ScheduleRecord&, const ScheduleRecord&) = default;
};

/// One fire of a schedule, unique per (schedule, fire_time, event_id): the key that makes fires
/// exactly-once.
struct FireRecord {
  std::string schedule;
  TimePoint fire_time{};      ///< the nominal time (for an event, the emit time)
  std::int64_t event_id = 0;  ///< the event that caused it (0: a time trigger or a manual fire)
  std::int64_t run_id = 0;
  std::string outcome;  ///< "started", "skipped", "buffered" (claimed, to start later) or "missed"
  std::string reason;
  TimePoint recorded{};

  friend bool operator==(const FireRecord&, const FireRecord&) = default;
};

/// An event emitted by the host ("user.registered") or by the library ("workflow.failed",
/// "breaker.opened"); event schedules start runs for the ones they match.
struct EventRecord {
  std::int64_t id = 0;  ///< assigned by the store, increasing, never reused
  std::string name;     ///< letters, digits and . _ - : (no spaces)
  TimePoint time{};
  std::string payload = "{}";  ///< a JSON object
  std::string source;          ///< who emitted it: "host", "cli:alice", "workflow", "breaker"
  std::string correlation_id;
  int depth = 0;  ///< 0 from the host; n + 1 for an event caused by a run an event of depth n started

  friend bool operator==(const EventRecord&, const EventRecord&) = default;
};

/// Events with id > after_id, oldest first; filters are ANDed.
struct EventQuery {
  std::int64_t after_id = 0;
  std::optional<std::string> name;  ///< exact name
  std::optional<TimePoint> since;   ///< time >= since
  std::size_t limit = 1000;         ///< 0: no limit
};

Result<void> validate(const RunRecord& record);
Result<void> validate(const StepRecord& record);
Result<void> validate(const AttemptRecord& record);
Result<void> validate(const ScheduleRecord& record);
Result<void> validate(const FireRecord& record);
Result<void> validate(const EventRecord& record);
/// An event's name: letters, digits and . _ - : (not empty). Schedules' patterns and alert rules'
/// events are checked with it too.
bool is_event_name(std::string_view name) noexcept;

// ---- metrics area ------------------------------------------------------------------------------

/// A block of usage events in the library's columnar encoding (docs/metrics.md); stores keep
/// `data` as an opaque blob. `key` is unique: appending a block whose key exists stores nothing.
struct UsageBlockRecord {
  std::int64_t id = 0;                  ///< assigned by the store, increasing
  std::string key;                      ///< the content hash, or the caller's key
  std::string source;                   ///< "api", "file:/abs/path.csv"
  std::int64_t first_row = 0;           ///< the source row of the first event
  std::int64_t events = 0;              ///< >= 1
  TimePoint first_time{}, last_time{};  ///< the earliest and latest event, both inclusive
  std::string data;                     ///< empty when listed without data
  TimePoint recorded{};

  friend bool operator==(const UsageBlockRecord&, const UsageBlockRecord&) = default;
};

/// The aggregate of one block's events on one local day (days since 1970-01-01) in one time zone.
struct UsagePartialRecord {
  std::int64_t block_id = 0;
  std::string time_zone;
  std::int32_t day = 0;
  std::string data;

  friend bool operator==(const UsagePartialRecord&, const UsagePartialRecord&) = default;
};

/// Blocks overlapping [since, until), oldest id first; filters are ANDed.
struct UsageBlockQuery {
  std::optional<std::int64_t> id;
  std::optional<TimePoint> since, until;
  std::optional<std::string> source;
  std::optional<std::int64_t> first_row;
  bool with_data = false;
};

/// One plan's revenue on one date (days since 1970-01-01); (day, plan) is the key.
struct RevenueRow {
  std::int32_t day = 0;
  std::string plan;
  double total_revenue = 0;
  std::int64_t new_subscribers = 0, active_users = 0, churn_count = 0;
  TimePoint recorded{};  ///< when it was last written

  friend bool operator==(const RevenueRow&, const RevenueRow&) = default;
};

struct RevenueUpsert {
  std::uint64_t inserted = 0, updated = 0, unchanged = 0;
};

/// A stored rollup of one period in one time zone; compare-and-set on `version`.
struct RollupRecord {
  std::string time_zone;
  std::string period;                ///< Period::key(): "2026-11-23", "2026-W48", "2026-11", "A..B"
  std::string state;                 ///< "running", "done" or "failed"
  std::string document = "{}";       ///< the rollup as JSON (state done)
  std::int64_t usage_watermark = 0;  ///< the newest block id it read
  std::string revenue_digest;        ///< a hash of the revenue rows it read
  TimePoint started{}, computed{};
  std::string owner;  ///< who runs it (state running)
  TimePoint lease_until{};
  std::string reason;  ///< why it was computed, or why it failed
  std::int64_t version = 0;

  friend bool operator==(const RollupRecord&, const RollupRecord&) = default;
};

Result<void> validate(const UsageBlockRecord& record);
Result<void> validate(const RevenueRow& row);
Result<void> validate(const RollupRecord& record);

// ---- delivery area -----------------------------------------------------------------------------

/// One message (a rendered report, an alert notice) to one target, stored before the first attempt
/// so that it is never lost, and retried until delivered. `key` is unique: enqueueing a message
/// whose key exists stores nothing. `version` increases on every update (compare-and-set).
struct DeliveryRecord {
  std::int64_t id = 0;        ///< assigned by the store, increasing
  std::string key;            ///< the caller's idempotency key (e.g. a hash of subject, target and body)
  std::string subject;        ///< what it delivers: "report:weekly-2026-W48", "alert:12"
  std::string target;         ///< where: "file:/srv/reports", "webhook:https://hooks.example/T1", "email:ops@example.com"
  std::string content_type;   ///< of the body: "text/html; charset=utf-8", "application/json", "message/rfc822"
  std::string body;           ///< empty when listed without bodies
  std::string state;          ///< "pending", "delivered" or "failed" (gave up; retried only when asked)
  int attempts = 0;           ///< attempts made
  TimePoint next_attempt{};   ///< pending: when it is due
  TimePoint claimed_until{};  ///< while later than now, a sender is attempting it (epoch 0: unclaimed)
  std::string last_error;     ///< why the last attempt failed (empty after a success)
  std::string reason;         ///< why it is delivered: "autoctl report --deliver by alice", "schedule weekly-report"
  TimePoint created{}, updated{};
  std::int64_t version = 0;

  friend bool operator==(const DeliveryRecord&, const DeliveryRecord&) = default;
};

/// Filters are ANDed.
struct DeliveryQuery {
  std::optional<std::string> state;
  std::optional<std::string> subject;
  std::optional<TimePoint> due_by;  ///< next_attempt <= due_by and claimed_until <= due_by (oldest due first)
  std::size_t limit = 100;          ///< 0: no limit
  bool newest_first = true;         ///< by id (ignored with due_by)
  bool with_body = false;
};

struct Enqueued {
  std::int64_t id = 0;
  bool created = false;  ///< false: a delivery with the key existed (id is its id)
};

Result<void> validate(const DeliveryRecord& record);

// ---- samples and alerts area -------------------------------------------------------------------

/// One sampled value of a metric series: "cpu_usage", or "disk_usage" with labels "mount=/".
/// (name, labels, time) is the key: appending a point whose key exists replaces its value.
struct MetricPoint {
  std::string name;    ///< [A-Za-z_][A-Za-z0-9_]*
  std::string labels;  ///< "key=value" pairs joined by ',' (empty: none); keys as names, values without ',' '=' '{' '}' '"'
  TimePoint time{};    ///< stored to the millisecond
  double value = 0;    ///< finite

  friend bool operator==(const MetricPoint&, const MetricPoint&) = default;
};

/// Points of one metric, ordered by labels then time (newest first within a series when asked);
/// filters are ANDed.
struct MetricQuery {
  std::string name;                   ///< required
  std::optional<std::string> labels;  ///< exactly these labels
  std::optional<TimePoint> since;     ///< inclusive
  std::optional<TimePoint> until;     ///< exclusive
  std::size_t limit = 0;              ///< at most this many points in all (0: no limit)
  bool newest_first = false;          ///< within each series
};

/// One firing episode of an alert rule for one instance (label set): from when the rule's condition
/// held long enough until it cleared. At most one alert per (rule, labels) is firing at a time;
/// `version` increases on every update (compare-and-set).
struct AlertRecord {
  std::int64_t id = 0;          ///< assigned by the store, increasing, never reused
  std::string rule;             ///< the rule's name
  std::string labels;           ///< the instance, as MetricPoint::labels ("" for a rule over unlabelled metrics)
  std::string severity;         ///< "info", "warning" or "critical"
  std::string state;            ///< "firing" or "resolved"
  std::string summary;          ///< what holds (or held): "cpu_usage 93.2 > 80 for 5m"
  std::string values = "{}";    ///< a JSON object: the latest value of each metric of the condition
  TimePoint active_since{};     ///< since when the condition has held (its `for` counted from here)
  TimePoint fired{};            ///< when it began firing
  TimePoint resolved{};         ///< when it cleared (epoch 0 while firing)
  TimePoint acknowledged{};     ///< epoch 0: not acknowledged
  std::string acknowledged_by;  ///< "user:alice"
  std::string ack_reason;
  std::string notified_state;  ///< the state last notified: "", "firing" or "resolved"
  TimePoint notified{};        ///< when it was last notified (epoch 0: never)
  int level = 0;               ///< notification levels reached: 0 none, 1 the rule's targets, 2 its first escalation, ...
  int reopened = 0;            ///< times it fired again before its resolution was notified (flapping)
  std::string reason;          ///< why it is in its state
  TimePoint updated{};
  std::int64_t version = 0;

  friend bool operator==(const AlertRecord&, const AlertRecord&) = default;
};

/// Filters are ANDed.
struct AlertQuery {
  std::optional<std::string> state;
  std::optional<std::string> rule;
  std::optional<std::string> labels;  ///< exact
  std::optional<TimePoint> since;     ///< fired >= since
  std::size_t limit = 100;            ///< 0: no limit
  bool newest_first = true;           ///< by id
  bool notice_owed = false;           ///< only alerts notified in a state they have left (the change is not notified yet)
};

Result<void> validate(const MetricPoint& point);
Result<void> validate(const AlertRecord& record);

// ---- forecasts area ----------------------------------------------------------------------------

/// One stored forecast of a daily metric: what was predicted for which days, by which method, from
/// which history, so it can be compared with the actuals as they arrive.
struct ForecastRecord {
  std::int64_t id = 0;    ///< assigned by the store, increasing, never reused
  std::string metric;     ///< "revenue", "users", "usage", "error_rate", ...
  std::string time_zone;  ///< the zone its days are in
  TimePoint created{};
  std::int32_t first_day = 0;   ///< the first predicted day (days since 1970-01-01); step i is first_day + i
  std::int32_t horizon = 0;     ///< predicted days, >= 1
  std::string method;           ///< the statistical method ("theta", "auto", ...)
  std::string backend;          ///< "statistical" or "llm"
  std::string document = "{}";  ///< a JSON object: the forecast (mean, intervals, seasonality, why, ...)
  std::string inputs = "{}";    ///< a JSON object: the history it was made from (days, points, scale, ...)
  std::string reason;           ///< why it was made: "autoctl forecast by alice", "schedule forecast-update"

  friend bool operator==(const ForecastRecord&, const ForecastRecord&) = default;
};

/// Filters are ANDed.
struct ForecastQuery {
  std::optional<std::string> metric;
  std::optional<std::string> time_zone;  ///< exact
  std::optional<TimePoint> since;        ///< created >= since
  std::size_t limit = 100;               ///< 0: no limit
  bool newest_first = true;              ///< by id
};

Result<void> validate(const ForecastRecord& record);

// ---- scaling area ------------------------------------------------------------------------------

/// Names of scaled resources and health targets: [A-Za-z0-9][A-Za-z0-9_.-]*, at most 100 characters.
bool is_resource_name(std::string_view name) noexcept;
/// errc::invalid_argument unless is_resource_name: "invalid <kind> name "x" (use [A-Za-z0-9][A-Za-z0-9_.-]*, at most 100 characters)".
Result<void> check_resource_name(std::string_view kind, std::string_view name);

/// One scaling decision or action on a named resource: every evaluation of the scaler (whether it
/// changed the size or not), every manual action, every dry run, every change of thresholds. The
/// scaler rebuilds its stabilization windows, rate-policy history, cooldowns, activation and
/// fallback counters from these records, so a restarted daemon or a cron `autoctl scale tick`
/// decides as one long-running process would.
struct ScalingRecord {
  std::int64_t id = 0;   ///< assigned by the store, increasing, never reused
  std::string resource;  ///< is_resource_name
  /// "decide" (an evaluation by the scaler), "scale-up", "scale-down", "restart" (manual actions),
  /// "thresholds" (its policy changed at run time; `inputs` holds the new policy)
  std::string action;
  TimePoint time{};
  std::string actor;          ///< "scaler", "user:alice", "schedule hourly-resource-check"
  int current = 0;            ///< the size before (>= 0)
  int recommended = 0;        ///< what the metrics proposed (>= 0)
  int desired = 0;            ///< what it decided to set (>= 0)
  std::string reason;         ///< the reason code: "ScaleUpLimit", "StepUp", "Manual", "CooldownActive", ...
  std::string message;        ///< why, in words
  std::string inputs = "{}";  ///< a JSON object: the metrics, proposals, forecast, policy it used
  bool active = false;        ///< whether any metric was above its activation threshold
  bool metrics_ok = true;     ///< whether its metrics could be read
  bool dry_run = false;
  /// "pending" (claimed, the action under way), "applied", "unchanged" (nothing to change),
  /// "blocked" (a cooldown or pause held it), "failed", "dry-run" (it would have applied)
  std::string outcome;
  std::string error;  ///< why it failed
  TimePoint updated{};

  friend bool operator==(const ScalingRecord&, const ScalingRecord&) = default;
};

/// Filters are ANDed.
struct ScalingQuery {
  std::optional<std::string> resource;
  std::optional<std::string> action;
  std::optional<std::string> outcome;
  std::optional<TimePoint> since;  ///< time >= since
  bool changes_only = false;       ///< only records with desired != current or a manual action
  std::size_t limit = 100;         ///< 0: no limit
  bool newest_first = true;        ///< by id
};

Result<void> validate(const ScalingRecord& record);

// ---- healing area ------------------------------------------------------------------------------

/// One event in the life of a health target: a change of its state, a healing step (planned,
/// carried out, verified), an operator's pause or resume. The healer rebuilds its restart budget
/// and backoff from these records.
struct HealingRecord {
  std::int64_t id = 0;  ///< assigned by the store, increasing, never reused
  std::string target;   ///< is_resource_name
  TimePoint time{};
  std::string kind;           ///< "state" (the target's state changed), "action" (a healing step), "pause", "resume"
  std::string state;          ///< the target's state after it: "unknown", "healthy", "unhealthy", "healing", "quarantined", "paused"
  std::string action;         ///< for kind "action": "restart", "command", "workflow", "callback", "wait", "alert", "quarantine"
  int step = 0;               ///< the ladder step (0 for other kinds)
  int attempt = 0;            ///< which healing attempt of the current episode (0 for other kinds)
  std::string actor;          ///< "healer", "user:alice"
  std::string reason;         ///< why: "probe http failed 3 times: status 503", "dependency db is unhealthy"
  std::string detail = "{}";  ///< a JSON object: probe results, the plan, the command's output
  bool dry_run = false;
  /// "pending", "succeeded", "failed", "skipped" (pause, budget, dependency), "dry-run"; "" for
  /// kinds other than "action"
  std::string outcome;
  std::string error;
  TimePoint updated{};

  friend bool operator==(const HealingRecord&, const HealingRecord&) = default;
};

/// Filters are ANDed.
struct HealingQuery {
  std::optional<std::string> target;
  std::optional<std::string> kind;
  std::optional<std::string> action;
  std::optional<TimePoint> since;  ///< time >= since
  std::size_t limit = 100;         ///< 0: no limit
  bool newest_first = true;        ///< by id
};

Result<void> validate(const HealingRecord& record);

// ---- tokens area -------------------------------------------------------------------------------

/// An API bearer token. The secret is never stored: only its SHA-256 (lowercase hex). A token is
/// presented as "<id>.<secret>"; `id` is public (it appears in lists and audit records).
struct TokenRecord {
  std::string id;           ///< unique, [a-z0-9_]{3,64} (e.g. "atk_3f9a0c1d2e4b5a6f")
  std::string name;         ///< what it is for: 1..100 printable characters; unique among tokens not revoked
  std::string role;         ///< "viewer", "operator" or "admin"
  std::string secret_hash;  ///< 64 lowercase hex characters
  TimePoint created{};
  std::string created_by;      ///< not empty
  TimePoint expires{};         ///< epoch 0: never
  TimePoint revoked{};         ///< epoch 0: not revoked
  std::string revoked_by;      ///< not empty when revoked; empty otherwise
  std::string revoke_reason;   ///< empty unless revoked
  TimePoint last_used{};       ///< epoch 0: never used
  std::string last_used_from;  ///< the source address of that use

  friend bool operator==(const TokenRecord&, const TokenRecord&) = default;
};

/// Checks a token before it is stored: the spelling of id, name, role and secret_hash, a non-empty
/// created_by, a non-empty revoked_by when revoked, and neither revoked_by nor revoke_reason when
/// not. Times count to the millisecond, as stored: `revoked` within 1 ms of epoch 0 is "not revoked".
Result<void> validate(const TokenRecord& record);
/// Checks revoke_token's arguments before anything is read: `by` not empty, and `time` at least a
/// millisecond after epoch 0 (which means "not revoked").
Result<void> check_token_revocation(std::string_view id_or_name, TimePoint time, std::string_view by);

// ---- registry area -----------------------------------------------------------------------------

/// A node of the registry: a host, daemon or service that registers itself and sends heartbeats,
/// or an HTTP service a discovery scan found. `version` increases by one on every write, so
/// writers coordinate by compare-and-set.
struct NodeRecord {
  std::string id;       ///< is_resource_name
  std::string kind;     ///< what it is: "host", "daemon", "service", "http" (found by a scan); 1..64 printable characters
  std::string address;  ///< where it is reached: "10.0.0.7", "127.0.0.1:8080", "http://..."; may be empty
  std::string source;   ///< "registered" (it or an operator registered it) or "discovered" (a scan found it)
  /// a JSON array of objects, each with "name" (a string) and optionally "port", "url" and
  /// "depends_on" (an array of "node" or "node/service" strings)
  std::string services = "[]";
  std::string depends_on = "[]";  ///< a JSON array of node ids this node needs
  std::string labels = "{}";      ///< a JSON object of strings
  std::string state;              ///< "up" or "down"
  std::string reason;             ///< why it is in its state: "heartbeat", "no heartbeat for 90 s (ttl 30 s)"
  TimePoint registered{};
  TimePoint last_seen{};    ///< the last heartbeat, or the last scan that found it
  TimePoint state_since{};  ///< when `state` last changed
  Millis ttl{0};            ///< down once last_seen + ttl has passed; 0: never expires
  std::string updated_by;   ///< "node web1", "user:alice", "discovery", "registry"
  std::int64_t version = 0;

  friend bool operator==(const NodeRecord&, const NodeRecord&) = default;
};

/// Checks a node before it is stored: the id, a kind of 1..64 printable characters, source and state
/// from their lists, `services`, `depends_on` and `labels` of the JSON shapes above, a ttl from 0 to 365 days,
/// an address of at most 512 characters.
Result<void> validate(const NodeRecord& record);

/// One discovery scan: which addresses it tried and what answered.
struct ScanRecord {
  std::int64_t id = 0;  ///< assigned by the store, increasing, never reused
  TimePoint started{};
  TimePoint finished{};        ///< >= started
  std::string actor;           ///< "discovery" (the daemon's own scan), "user:alice"
  std::string reason;          ///< why it ran: "every 5m", "requested"
  std::string targets = "[]";  ///< a JSON array of the "host:port" strings it tried
  /// a JSON array of objects, one per address that answered HTTP: "address", "status", "server", "node", "new"
  std::string found = "[]";
  int added = 0;      ///< nodes it registered for the first time
  int lost = 0;       ///< discovered nodes up before that did not answer
  std::string error;  ///< why it could not finish; empty when it did

  friend bool operator==(const ScanRecord&, const ScanRecord&) = default;
};

Result<void> validate(const ScanRecord& record);

// ---- the interface -----------------------------------------------------------------------------

class Store {
 public:
  virtual ~Store() = default;

  /// "sqlite" or "memory".
  virtual std::string_view backend() const noexcept = 0;

  // meta
  virtual Result<StoreInfo> info() = 0;
  virtual Result<int> schema_version() = 0;
  /// Applies pending migrations in order, each in its own transaction; a no-op when current.
  virtual Result<MigrationReport> migrate() = 0;

  // audit
  /// Appends records atomically (all or none) and returns the id given to the last one.
  /// Ids and times of the input are ignored/kept respectively: the store assigns ids.
  virtual Result<std::int64_t> append_audit(std::span<const AuditRecord> records) = 0;
  virtual Result<std::vector<AuditRecord>> query_audit(const AuditQuery& query) = 0;

  // task history
  /// Appends records atomically (all or none) and returns the id given to the last one.
  virtual Result<std::int64_t> append_tasks(std::span<const TaskRecord> records) = 0;
  virtual Result<std::vector<TaskRecord>> query_tasks(const TaskQuery& query) = 0;
  /// Statistics per (domain, action), ordered by domain then action.
  virtual Result<std::vector<TaskGroupStats>> task_stats(const TaskStatsQuery& query) = 0;
  /// Deletes the records that started before `before`; returns how many.
  virtual Result<std::int64_t> prune_tasks(TimePoint before) = 0;

  // breakers
  virtual Result<std::optional<BreakerRecord>> get_breaker(std::string_view name) = 0;
  /// Ordered by name.
  virtual Result<std::vector<BreakerRecord>> list_breakers() = 0;
  /// Writes `record` if the stored version is `expected_version` (0: no record yet) and returns the
  /// new version (expected_version + 1); errc::conflict, changing nothing, when another writer got
  /// there first. Without `expected_version` the write is unconditional. record.version is ignored.
  virtual Result<std::int64_t> put_breaker(const BreakerRecord& record, std::optional<std::int64_t> expected_version) = 0;
  /// Removes a record; false when there was none.
  virtual Result<bool> delete_breaker(std::string_view name) = 0;

  // workflow runs
  /// Creates a run and its step rows atomically and returns the run's id. With `fire`, the fire
  /// record (its run_id set to the new run) is inserted in the same transaction, or claims a fire
  /// with that key recorded as "buffered"; errc::conflict, creating nothing, when that (schedule,
  /// fire_time, event_id) is already recorded with any other outcome.
  virtual Result<std::int64_t> create_run(const RunRecord& run, std::span<const StepRecord> steps, const FireRecord* fire) = 0;
  /// Writes the run's changing fields if its stored version is `run.version`, and upserts the step
  /// and attempt rows, in one transaction; returns the new version. errc::conflict, writing nothing,
  /// when another writer changed the run first; errc::not_found for an unknown run.
  virtual Result<std::int64_t> update_run(const RunRecord& run, std::span<const StepRecord> steps,
                                          std::span<const AttemptRecord> attempts) = 0;
  virtual Result<std::optional<RunRecord>> get_run(std::int64_t id) = 0;
  virtual Result<std::vector<RunRecord>> list_runs(const RunQuery& query) = 0;
  /// The run's steps in creation order.
  virtual Result<std::vector<StepRecord>> run_steps(std::int64_t run_id) = 0;
  /// The run's attempts (of one step when given), in order of step creation then attempt.
  virtual Result<std::vector<AttemptRecord>> run_attempts(std::int64_t run_id, std::optional<std::string_view> step) = 0;
  /// Deletes finished runs (with their steps and attempts) that ended before `before`; returns how many.
  virtual Result<std::int64_t> prune_runs(TimePoint before) = 0;

  // schedules
  virtual Result<std::optional<ScheduleRecord>> get_schedule(std::string_view name) = 0;
  virtual Result<std::vector<ScheduleRecord>> list_schedules() = 0;
  /// Compare-and-set as put_breaker.
  virtual Result<std::int64_t> put_schedule(const ScheduleRecord& record, std::optional<std::int64_t> expected_version) = 0;
  /// Inserts the fire if its (schedule, fire_time, event_id) is new; false, changing nothing, when
  /// it exists.
  virtual Result<bool> record_fire(const FireRecord& fire) = 0;
  /// Newest fire time first (then newest event).
  virtual Result<std::vector<FireRecord>> list_fires(std::string_view schedule, std::size_t limit) = 0;
  /// The schedule's fires recorded as "buffered" (claimed, not started yet), oldest first.
  virtual Result<std::vector<FireRecord>> buffered_fires(std::string_view schedule) = 0;

  // events
  /// Appends an event and returns its id (ids increase and are never reused, even after a prune).
  virtual Result<std::int64_t> append_event(const EventRecord& event) = 0;
  virtual Result<std::vector<EventRecord>> list_events(const EventQuery& query) = 0;
  /// The id the newest event got (0: none yet); pruned or not, since ids are never reused.
  virtual Result<std::int64_t> last_event_id() = 0;
  /// Deletes events older than `before`; returns how many.
  virtual Result<std::int64_t> prune_events(TimePoint before) = 0;

  // metrics
  /// Appends a block with its partials for `time_zone` atomically and returns its id; nothing (and
  /// no error) when a block with the same key exists.
  virtual Result<std::optional<std::int64_t>> append_usage_block(const UsageBlockRecord& block, std::string_view time_zone,
                                                                 std::span<const UsagePartialRecord> partials) = 0;
  virtual Result<std::vector<UsageBlockRecord>> usage_blocks(const UsageBlockQuery& query) = 0;
  /// Partials of `time_zone` for days first_day..last_day, by day then block id.
  virtual Result<std::vector<UsagePartialRecord>> usage_partials(std::string_view time_zone, std::int32_t first_day,
                                                                 std::int32_t last_day) = 0;
  /// Ids of blocks overlapping [since, until) whose partials for `time_zone` were never stored.
  virtual Result<std::vector<std::int64_t>> usage_blocks_without_partials(std::string_view time_zone, TimePoint since, TimePoint until) = 0;
  /// Stores a block's partials for `time_zone` and marks them present, atomically; nothing changes
  /// when they are present already (stored by another process). not_found for an unknown block.
  virtual Result<void> put_usage_partials(std::int64_t block_id, std::string_view time_zone,
                                          std::span<const UsagePartialRecord> partials) = 0;
  /// Replaces the partials of `time_zone` and `day` from blocks `block_ids` by one holding their
  /// merged `data` (kept under the largest of the ids), atomically; false, changing nothing, when any
  /// of them is gone (another process compacted them first).
  virtual Result<bool> compact_usage_partials(std::string_view time_zone, std::int32_t day, std::span<const std::int64_t> block_ids,
                                              const std::string& data) = 0;
  /// Inserts or replaces rows by (day, plan) atomically; a row equal to the stored one is unchanged.
  virtual Result<RevenueUpsert> upsert_revenue(std::span<const RevenueRow> rows) = 0;
  /// Rows for days first_day..last_day, by day then plan.
  virtual Result<std::vector<RevenueRow>> query_revenue(std::int32_t first_day, std::int32_t last_day) = 0;
  virtual Result<std::optional<RollupRecord>> get_rollup(std::string_view time_zone, std::string_view period) = 0;
  /// Newest computed (then started) first.
  virtual Result<std::vector<RollupRecord>> list_rollups(std::size_t limit) = 0;
  /// Compare-and-set as put_breaker, keyed by (time_zone, period).
  virtual Result<std::int64_t> put_rollup(const RollupRecord& record, std::optional<std::int64_t> expected_version) = 0;

  // deliveries
  /// Stores a delivery (its id, version, created and updated are assigned here: version 1, both
  /// times record.created); nothing when one with the same key exists.
  virtual Result<Enqueued> enqueue_delivery(const DeliveryRecord& record) = 0;
  virtual Result<std::optional<DeliveryRecord>> get_delivery(std::int64_t id) = 0;
  virtual Result<std::vector<DeliveryRecord>> list_deliveries(const DeliveryQuery& query) = 0;
  /// Writes state, attempts, next_attempt, claimed_until, last_error and updated if the stored version is
  /// record.version, and returns the new version; errc::conflict, writing nothing, when another
  /// writer changed it first; errc::not_found for an unknown id. The rest is fixed at enqueue.
  virtual Result<std::int64_t> update_delivery(const DeliveryRecord& record) = 0;
  /// Deletes delivered and failed deliveries last updated before `before`; returns how many.
  virtual Result<std::int64_t> prune_deliveries(TimePoint before) = 0;

  // samples
  /// Appends points atomically (all or none, each validated); a point whose (name, labels, time)
  /// is stored replaces its value. Returns how many were given.
  virtual Result<std::size_t> append_metric_points(std::span<const MetricPoint> points) = 0;
  virtual Result<std::vector<MetricPoint>> query_metric_points(const MetricQuery& query) = 0;
  /// Deletes points older than `before`; returns how many.
  virtual Result<std::int64_t> prune_metric_points(TimePoint before) = 0;

  // alerts
  /// Stores a new alert (its id, and version 1, are assigned here) and returns its id;
  /// errc::conflict, storing nothing, when `record` is firing and a firing alert with the same
  /// (rule, labels) exists.
  virtual Result<std::int64_t> create_alert(const AlertRecord& record) = 0;
  virtual Result<std::optional<AlertRecord>> get_alert(std::int64_t id) = 0;
  virtual Result<std::vector<AlertRecord>> list_alerts(const AlertQuery& query) = 0;
  /// Writes every field but id, rule and labels if the stored version is record.version, and returns
  /// the new version; errc::conflict, writing nothing, when another writer changed it first or when
  /// it would make a second firing alert for its (rule, labels); errc::not_found for an unknown id.
  virtual Result<std::int64_t> update_alert(const AlertRecord& record) = 0;
  /// Deletes alerts resolved before `before`; returns how many.
  virtual Result<std::int64_t> prune_alerts(TimePoint before) = 0;

  // forecasts
  /// Stores a forecast (its id is assigned here) and returns its id.
  virtual Result<std::int64_t> append_forecast(const ForecastRecord& record) = 0;
  virtual Result<std::optional<ForecastRecord>> get_forecast(std::int64_t id) = 0;
  virtual Result<std::vector<ForecastRecord>> list_forecasts(const ForecastQuery& query) = 0;
  /// Deletes forecasts created before `before`; returns how many.
  virtual Result<std::int64_t> prune_forecasts(TimePoint before) = 0;

  // scaling
  /// Stores a record (its id is assigned here) if the newest record of its resource has the id
  /// `after` (0: it has none), and returns its id; errc::conflict, storing nothing, when another
  /// writer recorded one first. Without `after` it is stored unconditionally.
  virtual Result<std::int64_t> append_scaling(const ScalingRecord& record, std::optional<std::int64_t> after) = 0;
  /// Sets the outcome, error and updated time of a "pending" record; errc::not_found for an unknown
  /// id, errc::conflict when it is no longer pending, errc::invalid_argument for "pending" or an
  /// unknown outcome.
  virtual Result<void> finish_scaling(std::int64_t id, std::string_view outcome, std::string_view error, TimePoint updated) = 0;
  virtual Result<std::vector<ScalingRecord>> list_scaling(const ScalingQuery& query) = 0;
  /// Deletes records older than `before`, except each resource's newest "thresholds" record;
  /// returns how many.
  virtual Result<std::int64_t> prune_scaling(TimePoint before) = 0;

  // healing
  /// Stores a record (its id is assigned here) and returns its id.
  virtual Result<std::int64_t> append_healing(const HealingRecord& record) = 0;
  /// As finish_scaling, for healing records of kind "action"; a non-empty `detail` (a JSON object)
  /// replaces the record's detail.
  virtual Result<void> finish_healing(std::int64_t id, std::string_view outcome, std::string_view error, std::string_view detail,
                                      TimePoint updated) = 0;
  virtual Result<std::vector<HealingRecord>> list_healing(const HealingQuery& query) = 0;
  /// Deletes records older than `before`; returns how many.
  virtual Result<std::int64_t> prune_healing(TimePoint before) = 0;

  // tokens
  /// Stores a new token; errc::already_exists when the id exists or a token not revoked has the name.
  virtual Result<void> create_token(const TokenRecord& record) = 0;
  /// The token with this id (nullopt: none).
  virtual Result<std::optional<TokenRecord>> get_token(std::string_view id) = 0;
  /// Tokens by creation time (then id), oldest first; revoked ones only when asked.
  virtual Result<std::vector<TokenRecord>> list_tokens(bool include_revoked) = 0;
  /// Revokes the token whose id is `id_or_name`, or else the unrevoked token with that name; returns it as revoked.
  /// errc::not_found when there is none; errc::conflict when it is already revoked (by name: when only
  /// revoked tokens have it); errc::invalid_argument when check_token_revocation refuses the arguments.
  virtual Result<TokenRecord> revoke_token(std::string_view id_or_name, TimePoint time, std::string_view by, std::string_view reason) = 0;
  /// Records a use: sets last_used/last_used_from, but only when `time` is later than the stored last_used
  /// (so concurrent users never move it back). errc::not_found for an unknown id.
  virtual Result<void> touch_token(std::string_view id, TimePoint time, std::string_view from) = 0;

  // registry
  virtual Result<std::optional<NodeRecord>> get_node(std::string_view id) = 0;
  /// Ordered by id.
  virtual Result<std::vector<NodeRecord>> list_nodes() = 0;
  /// Writes `record` if the stored version is `expected_version` (0: no record yet) and returns the
  /// new version (expected_version + 1); errc::conflict, changing nothing, when another writer got
  /// there first. Without `expected_version` the write is unconditional. record.version is ignored.
  virtual Result<std::int64_t> put_node(const NodeRecord& record, std::optional<std::int64_t> expected_version) = 0;
  /// Removes a node; false when there was none.
  virtual Result<bool> delete_node(std::string_view id) = 0;
  /// Stores a scan and returns its id.
  virtual Result<std::int64_t> append_scan(const ScanRecord& record) = 0;
  /// The newest scans first (by id), at most `limit` (0: all); only those with id < before_id when it is > 0.
  virtual Result<std::vector<ScanRecord>> list_scans(std::size_t limit, std::int64_t before_id) = 0;
  /// Deletes scans that started before `before`; returns how many.
  virtual Result<std::int64_t> prune_scans(TimePoint before) = 0;
};

enum class Synchronous { normal, full };

struct OpenOptions {
  bool create_if_missing = true;  ///< else errc::not_found for a missing database file
  bool migrate = true;            ///< apply pending migrations on open
  bool read_only = false;         ///< open without any write (implies no create, no migrate)
  Synchronous synchronous = Synchronous::normal;
  Millis busy_timeout{5000};
};

/// Opens a store by URI: "sqlite:PATH" (a relative PATH is relative to the working directory;
/// missing parent directories are created) or "memory:". errc::invalid_argument for any other form.
Result<std::unique_ptr<Store>> open_store(std::string_view uri, const OpenOptions& options = {});
/// The database file of an SQLite store URI ("sqlite:PATH" or a bare path), nullopt for any other.
std::optional<std::string> sqlite_path(std::string_view uri);

}  // namespace automation::storage
