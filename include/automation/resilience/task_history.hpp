#pragma once
/// TaskHistory: every automated execution recorded through the Store (domain, action, parameters,
/// outcome, error, duration, impact, start and end, correlation id), and what can be learned from
/// them: per (domain, action) over a time range the count, success rate, mean/p50/p95 duration,
/// mean impact, top failure reasons, the parameter values most associated with success, and the
/// change against the previous range of equal length. Retention by age.
/// Thread-safety: safe from several threads (the buffer has its own mutex; the Store is safe).
/// Needs: a Store and a Clock.
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>
#include <automation/storage/store.hpp>

#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace automation::resilience {

using storage::TaskOutcome;
using storage::TaskQuery;
using storage::TaskRecord;
using storage::TaskStatsQuery;

/// The change of a figure against the previous range.
struct Change {
  double previous = 0;
  double absolute = 0;             ///< current - previous
  std::optional<double> relative;  ///< absolute / |previous|; unset when previous is 0
};

struct TaskStatsEntry {
  storage::TaskGroupStats current;
  /// The same (domain, action) over the previous range; unset when it had no runs there or when
  /// the query has no start.
  std::optional<storage::TaskGroupStats> previous;
  std::optional<Change> count, success_rate, mean_duration_ms, p95_duration_ms, mean_impact;
};

struct TaskStatsReport {
  std::optional<TimePoint> since, until;    ///< the range (until defaults to now when since is set)
  std::optional<TimePoint> previous_since;  ///< the previous range is [previous_since, since)
  std::vector<TaskStatsEntry> groups;
};

/// JSON forms (times as ISO-8601 UTC, durations in milliseconds).
boost::json::value to_json(const TaskRecord& r);
boost::json::value to_json(const TaskStatsReport& r);

class TaskHistory {
 public:
  struct Options {
    Duration retention = std::chrono::hours(24 * 90);  ///< prune() deletes records older than this
    std::size_t batch_size = 1000;                     ///< add() flushes after this many adds since the last flush
    std::size_t max_buffered = 100000;                 ///< beyond this, add() drops the oldest (counted)
  };

  TaskHistory(storage::Store& store, const Clock& clock);
  TaskHistory(storage::Store& store, const Clock& clock, Options options);
  ~TaskHistory();  ///< flushes what is buffered (best effort)
  TaskHistory(const TaskHistory&) = delete;
  TaskHistory& operator=(const TaskHistory&) = delete;

  /// Writes records now, atomically. An empty correlation id takes the thread's current one.
  Result<std::int64_t> record(TaskRecord record);
  Result<std::int64_t> record(std::span<const TaskRecord> records);

  /// Buffers a record and writes the batch when it is full. Invalid input is refused at once; a
  /// failed write keeps the batch for the next flush (nothing is lost unless max_buffered overflows).
  Result<void> add(TaskRecord record);
  Result<void> flush();
  std::size_t buffered() const;
  std::uint64_t dropped() const;

  Result<std::vector<TaskRecord>> list(const TaskQuery& query);
  /// Statistics over [since, until) and, when since is set, the change against the range of equal
  /// length just before it.
  Result<TaskStatsReport> stats(TaskStatsQuery query);
  /// Deletes records that started more than `retention` before now.
  Result<std::int64_t> prune();
  Result<std::int64_t> prune_older_than(Duration age);

  /// Measures one execution on the clock and records it when finished. Dropped unfinished, it is
  /// recorded as cancelled ("abandoned").
  class Execution {
   public:
    Execution(Execution&&) noexcept;
    Execution& operator=(Execution&&) = delete;
    ~Execution();
    Result<std::int64_t> succeed(std::optional<double> impact = std::nullopt);
    Result<std::int64_t> fail(std::string error, TaskOutcome outcome = TaskOutcome::failure, std::optional<double> impact = std::nullopt);
    /// Records a Result: success when it holds a value, else its error message.
    template <class T>
    Result<std::int64_t> finish(const Result<T>& r, std::optional<double> impact = std::nullopt) {
      if (r) return succeed(impact);
      const Error e = r.error();
      return fail(e.message,
                  e.is(errc::timeout)     ? TaskOutcome::timeout
                  : e.is(errc::cancelled) ? TaskOutcome::cancelled
                                          : TaskOutcome::failure,
                  impact);
    }

   private:
    friend class TaskHistory;
    Execution(TaskHistory* h, TaskRecord r) : history_(h), record_(std::move(r)) {}
    Result<std::int64_t> finish_with(TaskOutcome o, std::string error, std::optional<double> impact);
    TaskHistory* history_;
    TaskRecord record_;
  };
  Execution begin(std::string domain, std::string action, std::string params_json = "{}");

  const Options& options() const noexcept { return options_; }

 private:
  storage::Store& store_;
  const Clock& clock_;
  Options options_;
  mutable std::mutex mu_;
  std::deque<TaskRecord> buffer_;
  std::size_t adds_since_flush_ = 0;
  std::uint64_t dropped_ = 0;
};

}  // namespace automation::resilience
