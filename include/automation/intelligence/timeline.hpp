#pragma once
/// Incident timelines: for a failed workflow run, an alert, or any time range, what happened around
/// it across the store, in time order, to start a post-incident review. It reads what the
/// components already record: workflow runs (deploys among them: a workflow whose name contains
/// "deploy"), failed tasks, circuit breaker transitions (their events), health changes and healing
/// steps (the healing records), scaling changes and policy changes, alerts, and the audit trail's
/// actions (failed logins are summed up per address). Nothing is stored. See docs/intelligence.md.
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
  TimePoint from{}, until{};           ///< [from, until), whole milliseconds
  std::string focus;                   ///< "run:12", "alert:3", or "" for a plain range
  std::vector<TimelineEntry> entries;  ///< oldest first
  /// Entries left out by the limit: around a focus those farthest from it in time, before and
  /// after; in a plain range the latest.
  std::size_t dropped_before = 0, dropped_after = 0;
  /// A source had more records in the window than a timeline reads (10 x limit, at least 1000):
  /// some may be missing; narrow the window.
  bool truncated = false;
};

struct TimelineOptions {
  std::size_t limit = 500;  ///< at most this many entries (>= 1)
  /// How long before the window a run (queued) or an alert (fired) may have begun and still have
  /// its end inside the window told.
  Duration look_back = std::chrono::hours(24);
};

/// Everything recorded in [from, until). errc::invalid_argument when until <= from or limit is 0.
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
