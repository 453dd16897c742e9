#pragma once
/// WorkflowEngine: runs workflow definitions step by step with durable history in the Store.
///
/// Steps whose needs are final run in parallel up to `max_parallel_steps` per engine: commands as
/// real processes, each in its own process group (on timeout SIGTERM, a grace period, then SIGKILL
/// to the group, and the engine checks the group is gone); C++ callbacks and built-in actions
/// in-process (inline, or on an executor the host passes); sub-workflows as child runs. Retries
/// follow the step's RetryPolicy on the clock; outputs come from stdout lines `NAME=value`;
/// compensations run in reverse order when a run fails; finally steps always run.
///
/// The engine is passive (DESIGN.md §2): it starts no thread and no timer. The host calls poll(),
/// which does everything that can be done now without blocking, and wait() to block until a
/// process or a callback has news or the next deadline. run_to_completion() is the loop of both.
/// Every state change of a run, a step or an attempt is written to the Store before the steps
/// that depend on it start; every step and run outcome also goes to TaskHistory.
///
/// Crash recovery: each run names its owner (pid, start time, host) and holds a lease the engine
/// renews. recover() finds runs whose owner is gone, kills their orphaned process groups, marks
/// them interrupted, and (when asked to adopt them) resumes or restarts them as their definition's
/// on_interrupt says.
///
/// Thread-safety: call the engine from one thread at a time; cancel() and wake() may be called from
/// any thread. Needs: a Store, a Clock, optionally a TaskHistory and an executor.
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>
#include <automation/resilience/task_history.hpp>
#include <automation/storage/store.hpp>
#include <automation/workflow/definition.hpp>

#include <boost/json/object.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace automation::resilience {
class BreakerRegistry;
}

namespace automation::workflow {

using storage::RunRecord;
using storage::RunState;

/// What an in-process step (callback or action) sees and may produce.
class StepContext {
 public:
  std::int64_t run_id = 0;
  std::string workflow, step;
  int attempt = 1;
  std::map<std::string, std::string> params;  ///< the run's parameters
  std::map<std::string, std::string> with;    ///< the step's rendered `with` arguments
  std::map<std::string, std::string> env;     ///< workflow and step env, rendered
  TimePoint deadline{};                       ///< when the step times out (epoch 0: no timeout)
  const Clock* clock = nullptr;

  /// Sets an output (`${{ steps.ID.outputs.NAME }}` later); only declared names are kept.
  void set_output(std::string name, std::string value) { outputs_[std::move(name)] = std::move(value); }
  /// Appends a line to the attempt's log (bounded like a command's stdout).
  void log(std::string_view line) {
    log_.append(line);
    log_.push_back('\n');
  }
  /// True once the run is cancelled or the step timed out: a long callback should stop.
  bool cancelled() const noexcept { return cancel_ && *cancel_; }

  const std::map<std::string, std::string>& outputs() const noexcept { return outputs_; }
  const std::string& log_text() const noexcept { return log_; }

 private:
  friend class WorkflowEngine;
  std::map<std::string, std::string> outputs_;
  std::string log_;
  std::shared_ptr<const std::atomic<bool>> cancel_;  // shared: a step on an executor may outlive its attempt
};

/// A C++ step: Result<void> (an error fails the attempt with its code and message).
using StepFunction = std::function<Result<void>(StepContext&)>;

struct StartOptions {
  std::map<std::string, std::string> params;
  std::string trigger = "manual";
  std::string correlation_id;  ///< empty: the thread's current one, or a new one
  std::int64_t parent_run_id = 0;
  const storage::FireRecord* fire = nullptr;  ///< create the run only if this fire is new
  /// The depth of the event that caused this run (-1: none); its own workflow.* event gets depth + 1.
  int event_depth = -1;
};

/// Why a poll() returned and what comes next.
struct PollResult {
  std::size_t active_runs = 0;          ///< runs this engine is running or has queued
  std::size_t running_steps = 0;        ///< steps in flight (processes, callbacks, child runs)
  std::optional<TimePoint> next_timer;  ///< the earliest retry, timeout, kill or lease renewal
};

struct RecoveryReport {
  std::vector<std::int64_t> interrupted;  ///< runs marked interrupted (owner gone)
  std::vector<std::int64_t> adopted;      ///< of those, resumed by this engine
  std::vector<std::int64_t> restarted;    ///< new runs started for restart policies
  std::vector<std::string> killed;        ///< orphaned process groups killed ("run 3 step build pid 4242")
};

class WorkflowEngine {
 public:
  struct Options {
    std::size_t max_parallel_steps = 8;               ///< steps in flight at once, over all runs
    std::size_t max_active_runs = 64;                 ///< runs started at once; the rest wait queued by priority
    Duration kill_grace = std::chrono::seconds(10);   ///< SIGTERM to SIGKILL on a timeout or cancel
    std::size_t max_log_bytes = 64 * 1024;            ///< per stream and attempt: the last bytes are kept
    std::size_t max_output_bytes = 4096;              ///< per output value
    Duration lease = std::chrono::seconds(60);        ///< renewed every third of it while a run is active
    Duration cancel_check = std::chrono::seconds(1);  ///< how often cancel requests from other processes are read
    std::string owner;                                ///< default: "pid N (start T) on HOST"
    /// Runs in-process steps elsewhere (a thread pool); empty: inline on the polling thread. Work
    /// still running when the engine is destroyed finishes harmlessly (its result is dropped).
    std::function<void(std::function<void()>)> executor;
    /// Steps and runs are also recorded here; null: an internal TaskHistory on the same store.
    resilience::TaskHistory* history = nullptr;
    /// The breakers of steps that name one ("breaker"); null: the engine's own registry on the
    /// same store, breakers shared with every process on it, configured as
    /// BreakerConfig::seed_preset() (open after 5 failures in a row, half-open after 60 s).
    resilience::BreakerRegistry* breakers = nullptr;
    /// The environment commands start from (default: this process's).
    std::optional<std::map<std::string, std::string>> base_env;
    /// Appends an event "workflow.<state>" (succeeded, failed, cancelled, timed_out) to the store
    /// when a run ends, with payload {run_id, workflow, state, reason, trigger}, so schedules can
    /// react to it (in this process or another).
    bool emit_run_events = true;
  };

  WorkflowEngine(storage::Store& store, const Clock& clock);
  WorkflowEngine(storage::Store& store, const Clock& clock, Options options);
  ~WorkflowEngine();  ///< kills what is still running and marks those runs interrupted
  WorkflowEngine(const WorkflowEngine&) = delete;
  WorkflowEngine& operator=(const WorkflowEngine&) = delete;

  /// Registers (or replaces) a workflow after validating it.
  Result<void> register_workflow(WorkflowDefinition definition);
  const WorkflowDefinition* workflow(std::string_view name) const;
  std::vector<std::string> workflow_names() const;
  /// Registers the function behind `"callback": NAME` steps.
  void register_callback(std::string name, StepFunction fn);
  /// Registers a built-in action (`"action": {"name": NAME}`).
  void register_action(std::string name, StepFunction fn);
  bool has_action(std::string_view name) const;

  /// Queues a run of a registered workflow; its steps start at the next poll(). Missing required
  /// parameters and unknown ones are errc::invalid_argument; a fire already recorded is
  /// errc::conflict. With a concurrency key whose policy is skip, a conflicting start is
  /// errc::busy.
  Result<std::int64_t> start(std::string_view workflow, StartOptions options = {});
  /// Queues a run of a definition that is not registered (a file).
  Result<std::int64_t> start(const WorkflowDefinition& definition, StartOptions options = {});
  /// Continues an interrupted run in this engine (finished steps keep their outcome).
  Result<void> resume(std::int64_t run_id, std::string reason = "resumed");

  /// Cancels a run: this engine's at its next poll (processes get SIGTERM, then SIGKILL after the
  /// grace; compensations and finally steps run), another live engine's through the store, and a
  /// run whose owner is gone at once. Thread-safe.
  Result<void> cancel(std::int64_t run_id, std::string reason);

  /// Does all that can be done now without blocking.
  PollResult poll();
  /// Blocks up to `max` (real time) until a process or callback has news, wake() is called, or the
  /// next timer is due. Returns at once when a timer is already due.
  void wait(std::chrono::milliseconds max);
  /// Wakes a wait() from another thread.
  void wake();
  /// poll() and wait() until the run is final (and its children); the run's record.
  Result<RunRecord> run_to_completion(std::int64_t run_id);
  /// Whether this engine has the run in hand.
  bool is_active(std::int64_t run_id) const;
  /// Calls `fn` with the final record of every run this engine finishes (succeeded, failed,
  /// cancelled, timed out), on the polling thread, after the record is stored. `fn` must not call
  /// back into the engine; queue the work instead. Listeners cannot be removed.
  void on_run_finished(std::function<void(const RunRecord&)> fn);

  /// Finds runs whose owner is gone (its process is dead on this host, or its lease expired),
  /// kills their orphaned process groups on this host, and marks them interrupted. With `adopt`,
  /// applies each run's on_interrupt policy in this engine.
  Result<RecoveryReport> recover(bool adopt);

  const std::string& owner() const noexcept;
  storage::Store& store() noexcept;
  const Clock& clock() const noexcept;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

/// JSON forms for the CLI and the HTTP API (times ISO-8601 UTC, durations in milliseconds; params
/// and outputs as objects).
boost::json::object to_json(const RunRecord& r);
boost::json::object to_json(const storage::StepRecord& s);
boost::json::object to_json(const storage::AttemptRecord& a);

/// Whether the owner named in a run record is alive: on this host, its process (pid and start
/// time) still exists; on another host, its lease has not expired at `now`.
bool owner_alive(const RunRecord& run, TimePoint now);
/// This process's owner string: "pid N (start T) on HOST".
std::string this_process_owner();

}  // namespace automation::workflow
