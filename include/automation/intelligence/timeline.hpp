#pragma once
/// Incident timelines: for a failed workflow run, an alert, or any time range, what happened around
/// it across the store, in time order, to start a post-incident review. It reads what the
/// components already record: workflow runs (deploys among them: a workflow whose name contains
/// "deploy"), failed tasks, circuit breaker transitions and health changes (their events), healing
/// steps, scaling changes, alerts, and the audit trail's actions (failed logins are summed up, not
/// listed one by one). Nothing is stored.
/// Thread-safety: pure functions over a Store, which is safe from several threads.
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>
#include <automation/storage/store.hpp>

#include <boost/json/object.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace automation::intelligence {

struct TimelineEntry {
  TimePoint time{};
  std::string source;    ///< "workflow", "task", "breaker", "health", "scaling", "alert", "audit"
  std::string kind;      ///< "run.failed", "deploy.succeeded", "breaker.opened", "health.unhealthy", "scale.up", "alert.fired", ...
  std::string subject;   ///< "run:12", "breaker:payments", "target:db", "resource:web", "alert:3"
  std::string severity;  ///< "info", "warning" or "error"
  std::string summary;   ///< one line, with the recorded reason
  bool focus = false;    ///< the run or alert the timeline was asked for
};

struct Timeline {
  TimePoint from{}, until{};           ///< [from, until)
  std::string focus;                   ///< "run:12", "alert:3", or "" for a plain range
  std::vector<TimelineEntry> entries;  ///< oldest first
  std::size_t dropped = 0;             ///< entries beyond the limit (the oldest are kept)
};

struct TimelineOptions {
  std::size_t limit = 500;  ///< at most this many entries
};

/// Everything recorded in [from, until). errc::invalid_argument when until <= from.
Result<Timeline> timeline(storage::Store& store, TimePoint from, TimePoint until, TimelineOptions options = {});
/// Around a workflow run: from `before` ahead of its start (or queueing) to `after` past its end (or
/// `now` while it runs). errc::not_found for an unknown run.
Result<Timeline> timeline_for_run(storage::Store& store, std::int64_t run_id, TimePoint now, Duration before = std::chrono::minutes(30),
                                  Duration after = std::chrono::minutes(10), TimelineOptions options = {});
/// Around an alert: from `before` ahead of the time its condition began to `after` past its
/// resolution (or `now` while it fires). errc::not_found for an unknown alert.
Result<Timeline> timeline_for_alert(storage::Store& store, std::int64_t alert_id, TimePoint now, Duration before = std::chrono::minutes(30),
                                    Duration after = std::chrono::minutes(10), TimelineOptions options = {});

boost::json::object to_json(const Timeline& timeline);

}  // namespace automation::intelligence
