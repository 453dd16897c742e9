#pragma once
/// MetricsCollector: samples system metrics (/proc), application metrics (the store's queues) and a
/// host's own gauges, and appends them to the store's samples area, all with one time, so alert
/// rules, anomaly detection and charts read the same series. A daemon calls collect() every
/// `interval` (and AlertManager::evaluate() after it); `autoctl metrics collect` does the same from
/// a terminal or cron.
///
/// Thread-safety: one thread at a time. Needs a Store and a Clock, both outliving it.
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>
#include <automation/metrics/system.hpp>
#include <automation/storage/store.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace automation::metrics {

/// Application metrics read from the store at `now`: workflow_queue_depth (runs waiting to start),
/// workflows_running, deliveries_pending (reports and notices waiting to be sent) and
/// alerts_firing.
Result<std::vector<MetricPoint>> application_metrics(storage::Store& store, TimePoint now);

/// A host's own gauges ("ai_queue_depth", "db_pool_in_use"): the points to store; their times are
/// set to the sample's.
using MetricSource = std::function<Result<std::vector<MetricPoint>>()>;

struct CollectorOptions {
  Duration interval = std::chrono::seconds(30);  ///< how often a loop calls collect() (see next_due())
  bool system = true;                            ///< sample /proc
  SystemCollectorOptions system_options;
  bool application = true;                                    ///< application_metrics()
  std::vector<std::pair<std::string, MetricSource>> sources;  ///< named, for warnings
};

/// What one collect() stored.
struct Collection {
  TimePoint time{};
  std::size_t points = 0;
  std::optional<SystemSample> system;  ///< when system metrics were sampled
  std::vector<std::string> warnings;   ///< sources that failed and values left out, with why
};

class MetricsCollector {
 public:
  MetricsCollector(storage::Store& store, const Clock& clock, CollectorOptions options = {});

  const CollectorOptions& options() const noexcept { return options_; }

  /// Takes a /proc reading without storing it, so that the next collect() measures CPU usage (and
  /// network rates) over the time in between rather than since boot.
  Result<void> prime();

  /// Samples every source and appends the points atomically. A failing source is a warning and
  /// the others are still stored; CPU usage since boot (the first reading without prime()) is left
  /// out with a warning. errc from the store when it refuses the points.
  Result<Collection> collect();

  /// When the next collect() is due: `interval` after the last one (now when there was none).
  TimePoint next_due() const;

 private:
  storage::Store& store_;
  const Clock& clock_;
  CollectorOptions options_;
  SystemCollector system_;
  std::optional<TimePoint> last_;
};

}  // namespace automation::metrics
