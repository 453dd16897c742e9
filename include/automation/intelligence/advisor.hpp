#pragma once
/// The advisor: what the recorded history says could be automated or made more reliable, and how
/// the system is used. It reads the store (the audit log, TaskHistory, workflow runs with their
/// steps) and the current workflow definitions, and stores nothing of its own:
///   - suggestions, each with its evidence and a change that can be applied:
///       "automate"  a sequence of actions people repeat (from the audit log and the host's tasks)
///                   becomes a workflow, with a daily schedule when it happens at the same time
///                   (unless some step calls a callback the host has yet to register);
///       "schedule"  a workflow people start by hand at the same time every day gets a schedule;
///       "retry"     a step that fails now and then, and succeeds the next time, gets retries;
///       "timeout"   a step that times out often gets a timeout above what its successes take;
///       "breaker"   a step that fails in long runs (a dependency that is down) gets a circuit
///                   breaker (the step's "breaker"), so its attempts fail fast while it is open;
///   - insights: the power users, the busy hours and days, the workflows that fail most, and the
///     load of the next day by hour, forecast from the hourly activity with the Forecaster.
/// A suggestion's id is a hash of what it is about, so the same finding keeps its id between
/// calls; once applied, the premise no longer holds (the workflow exists, the step has retries)
/// and it is no longer suggested. Reliability numbers count only runs whose step had the same
/// settings as now, so a change is judged on the runs after it. See docs/intelligence.md.
/// Thread-safety: pure functions over a Store, which is safe from several threads.
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>
#include <automation/storage/store.hpp>
#include <automation/workflow/definition.hpp>
#include <automation/workflow/scheduler.hpp>

#include <boost/json/object.hpp>

#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace automation::forecast {
struct Forecast;
struct Options;
}  // namespace automation::forecast

namespace automation::intelligence {

struct Suggestion {
  std::string id;                ///< "sg-" and 12 hex digits, a hash of kind and subject
  std::string kind;              ///< "automate", "schedule", "retry", "timeout", "breaker"
  std::string subject;           ///< what it is about: "workflow:deploy/step:migrate", "sequence:workflow.run workflow:a > ..."
  std::string title;             ///< one line
  std::string explanation;       ///< why, in words, with the numbers
  boost::json::object evidence;  ///< the numbers
  /// What applying does: {"create_workflow": {definition}} (and "create_schedule": {schedule}),
  /// {"create_schedule": {schedule}}, or {"patch_step": {"workflow", "step", "set": {"retry": ...}}}.
  /// Empty for advice that cannot be applied here.
  boost::json::object change;
  double score = 0;  ///< ranks suggestions: higher first
  bool applicable() const noexcept { return !change.empty(); }
};

struct Insight {
  std::string kind;  ///< "power_user", "busy_hour", "busy_day", "failing_workflow", "load_forecast"
  std::string title;
  boost::json::object detail;
};

struct AdvisorOptions {
  Duration window = std::chrono::hours(24 * 30);  ///< how far back to read
  /// Actions by one actor further apart than this belong to different sessions.
  Duration session_gap = std::chrono::minutes(30);
  std::size_t min_occurrences = 3;   ///< a sequence or a habit seen fewer times is not suggested
  std::size_t max_sequence = 6;      ///< the longest sequence looked for
  std::size_t min_runs = 5;          ///< a step with fewer runs (at its current settings) is not judged
  double failure_rate = 0.2;         ///< a step failing in at least this share of its runs
  double timeout_rate = 0.1;         ///< a step timing out in at least this share of its runs
  std::size_t breaker_streak = 5;    ///< failures in a row that call for a breaker
  std::size_t max_records = 20'000;  ///< read at most this many records of each source
  std::string time_zone = "UTC";     ///< the zone of suggested cron schedules and of hours and days in insights
  /// Forecasts the hourly load (default: forecast::forecast, statistical). A host passes its
  /// Forecaster's forecast to use the LLM backend.
  std::function<Result<forecast::Forecast>(std::span<const double>, const forecast::Options&)> forecaster;
};

/// The suggestions, best first. `workflows` and `schedules` are the definitions that exist now
/// (the catalog and the schedules, built-in ones included).
Result<std::vector<Suggestion>> suggest(storage::Store& store, std::span<const workflow::WorkflowDefinition> workflows,
                                        std::span<const workflow::ScheduleDefinition> schedules, TimePoint now,
                                        const AdvisorOptions& options = {});

/// The insights, by kind.
Result<std::vector<Insight>> insights(storage::Store& store, TimePoint now, const AdvisorOptions& options = {});

/// What applying a suggestion produced: the definitions to register with a running engine and
/// scheduler, and the files written.
struct Applied {
  std::optional<workflow::WorkflowDefinition> workflow;  ///< new or patched
  std::optional<workflow::ScheduleDefinition> schedule;  ///< new
  std::vector<std::string> files;
  std::string summary;  ///< "created workflow suggested-3f9a0c1d2e4b in /etc/automation/workflows/suggested-3f9a0c1d2e4b.json"
};

/// Writes a suggestion's change into `workflows_dir`: a new workflow file (errc::already_exists
/// when the workflow or its file exists), a patched workflow (rewritten in the file `sources` says
/// it was loaded from, keeping its other keys; a workflow without a source is a built-in, and a
/// file of its name takes its place), a schedule added to schedules.json (errc::already_exists for
/// a name in use among `schedules`; errc::not_found when the workflow it would start is gone).
/// Everything is checked before anything is written; each file is replaced atomically, and when
/// one cannot be written the ones written before are put back. errc::invalid_argument for a
/// suggestion that cannot be applied, errc::config without a workflows_dir.
Result<Applied> apply(const Suggestion& suggestion, std::span<const workflow::WorkflowDefinition> workflows,
                      std::span<const workflow::ScheduleDefinition> schedules, const std::string& workflows_dir,
                      const std::map<std::string, std::string>& sources = {});

boost::json::object to_json(const Suggestion& suggestion);
boost::json::object to_json(const Insight& insight);

}  // namespace automation::intelligence
