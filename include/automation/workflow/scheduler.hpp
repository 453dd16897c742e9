#pragma once
/// Scheduler: starts workflow runs on cron expressions, plain intervals and events.
///
/// A schedule names a workflow, its parameters and one trigger: a cron expression or natural form
/// ("every 6 hours", "daily at 02:00") read in the schedule's IANA time zone; a plain interval
/// aligned to the Unix epoch (plus an offset); or an event name ("user.registered", a prefix
/// pattern "workflow.*", or "*") with optional payload filters. Events come from the host
/// (emit()), from `autoctl emit`, and from the library itself: every run that ends emits
/// "workflow.<state>" (WorkflowEngine::Options::emit_run_events) and watch() turns a circuit
/// breaker's transitions into "breaker.opened", "breaker.half_open" and "breaker.closed".
/// Events are stored, so a scheduler in another process, or one started later (within the
/// catch-up window), sees them too.
///
/// Exactly once: each fire is keyed by (schedule, nominal fire time, event id) in the store and the
/// run is created in the same transaction as its key (Store::create_run). Fire times are computed
/// the same way in every process, so neither a restart nor a second process on the same database
/// runs a fire twice; the loser of a race records nothing and moves on.
///
/// Per schedule:
/// - overlap policy, when a run this schedule started is still queued or running: skip the fire;
///   buffer_one (keep one fire to start when the run ends; more are skipped); buffer_all (keep
///   them all, started one at a time, in order); cancel_other (cancel the running ones and start
///   this fire once they have ended); allow_all (start anyway). Buffered fires are claimed in the
///   store, so they survive a restart and only one process starts each.
/// - catch-up window: a fire found late by at most this much (the host was down or busy) still
///   runs; older ones are recorded once as missed, with how many and when. Default 1 minute.
/// - jitter: each fire waits a pseudo-random delay in [0, jitter), derived from the schedule's
///   name and the fire time, so every process agrees on it.
/// - pause and resume (persisted, so they reach every process), and pause after N consecutive
///   failed runs, with the reason recorded.
/// Every fire, skip, buffer, miss, pause and resume records why it happened (fire records,
/// schedule state, the audit trail).
///
/// Like the engine, the scheduler is passive: the host calls poll() (which also polls the engine)
/// and wait(). Thread-safety: call it from the engine's thread; emit() may be called from any
/// thread. Needs: a WorkflowEngine (and through it the Store and the Clock).
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>
#include <automation/storage/store.hpp>
#include <automation/workflow/engine.hpp>

#include <boost/json/fwd.hpp>
#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace automation::resilience {
class CircuitBreaker;
}

namespace automation::workflow {

enum class OverlapPolicy : std::uint8_t { skip, buffer_one, buffer_all, cancel_other, allow_all };
std::string_view to_string(OverlapPolicy p) noexcept;
Result<OverlapPolicy> parse_overlap_policy(std::string_view text);

enum class TriggerKind : std::uint8_t { cron, interval, event };
std::string_view to_string(TriggerKind k) noexcept;

struct ScheduleDefinition {
  std::string name;  ///< letters, digits, '-', '_' and '.'
  std::string description;
  std::string workflow;
  std::map<std::string, std::string> params;
  // Exactly one trigger:
  std::string cron;            ///< a cron expression or natural form (see cron.hpp)
  Duration interval{};         ///< fires at epoch + offset + k * interval
  Duration interval_offset{};  ///< less than the interval
  std::string event;           ///< an event name, a prefix pattern "name.*", or "*"
  /// Top-level payload fields that must equal these values (strings as is, other JSON as text).
  std::map<std::string, std::string> event_filter;

  std::string time_zone = "UTC";  ///< for cron triggers
  OverlapPolicy overlap = OverlapPolicy::skip;
  Duration catch_up = std::chrono::minutes(1);
  Duration jitter{};
  int pause_after_failures = 0;  ///< 0: never
  bool paused = false;           ///< the state it starts in the first time a store sees it
  std::string paused_reason;

  TriggerKind kind() const noexcept;
  /// "cron 0 0 */6 * * * (every 6 hours) in UTC", "every 90s", "event user.registered".
  std::string trigger_text() const;
};

/// Checks a definition on its own (trigger, expression, zone, durations); every problem listed.
Result<void> validate(const ScheduleDefinition& s);
/// One schedule from JSON (keys: name, description, workflow, params, cron, interval, offset,
/// event, filter, time_zone, overlap, catch_up, jitter, pause_after_failures, paused,
/// paused_reason); problems are reported with their JSON path under `path`.
Result<ScheduleDefinition> parse_schedule(const boost::json::value& v, std::string_view path = "$");
/// A file: {"schedules": [...]} or a bare array.
Result<std::vector<ScheduleDefinition>> parse_schedules(std::string_view text, std::string_view source);
Result<std::vector<ScheduleDefinition>> load_schedules_file(const std::string& path);
boost::json::object to_json(const ScheduleDefinition& s);

/// The seed schedules: auto_backup every 6 hours, health_check every 5 minutes, auto_optimize daily
/// at 02:00, auto_scale_check every 10 minutes, daily-metrics-aggregation daily at 00:00,
/// weekly-report-generation Mondays at 09:00, forecast-update daily at 06:00, delivery-retry every
/// 10 minutes, on_user_register on user.registered and on_content_publish on content.published.
/// The metrics, report and forecast seeds fire at their times of day in `time_zone` (the
/// configuration's, so that "yesterday" is the zone's); the others in UTC, as before, so a process
/// with another zone never moves them (every process sharing a store must share its zone).
std::vector<ScheduleDefinition> builtin_schedules(std::string_view time_zone = "UTC");

/// The first nominal fire strictly after `after` for a time trigger (nullopt for events, @reboot,
/// an expression that never fires, or an invalid definition).
std::optional<TimePoint> next_fire_time(const ScheduleDefinition& s, TimePoint after);
/// Whether an event name matches a schedule's pattern and its payload the filter.
bool event_matches(const ScheduleDefinition& s, std::string_view name, const boost::json::object& payload);

/// Pause and resume through the store alone (the CLI, another process): compare-and-set on the
/// schedule's state, plus an audit record ("schedule.pause", "schedule.resume"). Resuming clears
/// the failure count and moves the schedule's last fire to `now`, so the paused time is not caught
/// up. The returned record is the new state.
Result<storage::ScheduleRecord> pause_schedule(storage::Store& store, std::string_view name, std::string reason, std::string actor,
                                               TimePoint now);
Result<storage::ScheduleRecord> resume_schedule(storage::Store& store, std::string_view name, std::string reason, std::string actor,
                                                TimePoint now);

/// Stores an event through the store alone (the CLI, another process) with the thread's correlation
/// id (or a new one); returns its id. A Scheduler's emit() does the same and wakes it.
Result<std::int64_t> emit_event(storage::Store& store, std::string name, const boost::json::object& payload, std::string source,
                                TimePoint now, int depth = 0);

/// What happened to one fire.
struct FireResult {
  std::string schedule;
  TimePoint fire_time{};
  std::int64_t event_id = 0;
  std::string outcome;  ///< started, skipped, buffered, missed, or taken (another process had it)
  std::int64_t run_id = 0;
  std::string reason;
};

struct ScheduleStatus {
  ScheduleDefinition definition;
  storage::ScheduleRecord record;      ///< version 0: not in the store yet
  std::optional<TimePoint> next_fire;  ///< nominal; empty for events and paused schedules
  std::size_t buffered = 0;            ///< fires waiting for a run to end
};

class Scheduler {
 public:
  struct Options {
    std::string actor = "system:scheduler";  ///< names the scheduler in audit records and schedule state
    /// How often schedule state (pauses from other processes) and new events are read. emit() in
    /// this process is seen at the next poll.
    Duration refresh = std::chrono::seconds(1);
    /// Missed fires older than this are counted but not enumerated one by one.
    std::size_t max_missed_scan = 10'000;
    /// Events this deep (an event caused by a run an event started, and so on) fire nothing: a
    /// loop between schedules stops here, recorded as skipped.
    int max_event_depth = 8;
  };

  explicit Scheduler(WorkflowEngine& engine);
  Scheduler(WorkflowEngine& engine, Options options);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  /// Adds (or replaces) a schedule after validating it against the engine's workflows (the workflow
  /// must be registered and the parameters declared). A schedule the store has never seen gets a
  /// state starting now: nothing before now is caught up.
  Result<void> add(ScheduleDefinition definition);
  bool remove(std::string_view name);
  const ScheduleDefinition* schedule(std::string_view name) const;
  std::vector<std::string> names() const;
  Result<std::vector<ScheduleStatus>> list();

  Result<void> pause(std::string_view name, std::string reason, std::string actor = {});
  Result<void> resume(std::string_view name, std::string reason, std::string actor = {});
  /// Fires now, through the overlap policy, paused or not (fire time: now; reason: "fired by ACTOR").
  Result<FireResult> fire(std::string_view name, std::string actor = {});

  /// Stores an event (time: now) and wakes the scheduler; returns its id. The payload is a JSON
  /// object; `depth` counts how many event-triggered runs led to it (0 for the host). Thread-safe.
  Result<std::int64_t> emit(std::string name, boost::json::object payload = {}, std::string source = "host", int depth = 0);
  /// Emits breaker.opened, breaker.half_open and breaker.closed (payload: breaker, from, to,
  /// reason) for the breaker's transitions until the scheduler is destroyed.
  void watch(std::shared_ptr<resilience::CircuitBreaker> breaker);

  /// Fires what is due (time triggers, new events, buffered fires whose run ended), then polls the
  /// engine. next_timer also covers the next fire and the next refresh.
  PollResult poll();
  /// engine.wait(), bounded by the next fire and `max` (real time).
  void wait(std::chrono::milliseconds max);
  /// The fires handled since the last call (for hosts that print or count them).
  std::vector<FireResult> take_fires();

  WorkflowEngine& engine() noexcept;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

boost::json::object to_json(const FireResult& f);
boost::json::object to_json(const storage::FireRecord& f);

}  // namespace automation::workflow
