#pragma once
/// AnomalyDetector: a streaming anomaly detector for one metric series (error rate, revenue, a system
/// metric, ...). Each point gets a score in [0, 1]; a point at or above the threshold is an anomaly.
///
/// Five signals are watched, each scored against its own recent history:
/// - new_extreme: the value leaves the range seen so far by more than `extreme_tolerance` of it;
/// - deviation:   the value is far from the recent level, the value one day earlier and the value
///                one week earlier (so daily and weekly seasonality are not mistaken for anomalies);
/// - sequence:    the value's level (the seen range cut into `levels` bands) after the last
///                `context` levels is a transition rarely or never seen;
/// - time_of_day: the value's level has never been seen at this time of day (the daily
///                pattern learnt in `day_buckets` slots; only for series sampled at least every 6 h);
/// - time_of_week: the value is outside the range of the values seen at this time of the week by
///                more than a band (day_buckets slots per weekday; one per weekday for series
///                sampled less often than every 6 h), judged once the slot has had three weeks of
///                points; only for series sampled between every 3 s and daily.
/// The sampling interval is taken from the first 8 intervals; the day and week lags need it.
/// A signal's raw surprise is averaged over
/// the last `averaging` points and turned into a likelihood against that average's distribution over the last `history` points; the score
/// is -log10(1 - likelihood) / 10, so 0.5 means a one-in-100,000 event. After an anomaly, further points are suppressed (score 0,
/// `suppressed` set) for `suppress_points` points, so one incident raises one alert. On the Numenta Anomaly Benchmark it scores 73.1
/// (standard profile); see docs/benchmarks.md and docs/metrics.md.
///
/// Thread-safety: one detector per series; not safe for concurrent update().
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>
#include <automation/core/time.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace automation::metrics {

enum class AnomalySignal { none, new_extreme, deviation, sequence, time_of_day, time_of_week };
std::string_view to_string(AnomalySignal s) noexcept;

struct AnomalyOptions {
  double threshold = 0.5;             ///< a score at or above this is an anomaly (0 < t <= 1)
  std::size_t learning_points = 750;  ///< points learnt from before any score (2..1,000,000)
  std::size_t suppress_points = 0;    ///< points after an anomaly that cannot raise another; 0 = learning/5
  double extreme_tolerance = 0.02;    ///< fraction of the seen range a new extreme must exceed it by
  std::size_t levels = 5;             ///< bands the seen range is cut into for the sequence signal (2..16)
  std::size_t context = 2;            ///< preceding levels a transition is keyed by (1..3)
  std::size_t averaging = 10;         ///< points a raw surprise is averaged over (1..1000)
  std::size_t history = 8640;         ///< points the likelihood's distribution is estimated over
  std::size_t day_buckets = 48;       ///< time-of-day slots (0 disables the time_of_day and time_of_week signals; <= 1440)
  TimeZone time_zone;                 ///< the zone times of day are in (default UTC)

  /// errc::invalid_argument naming the first bad option.
  Result<void> validate() const;
};

struct AnomalyScore {
  TimePoint time{};
  double value = 0;
  double score = 0;                            ///< [0, 1]; 0 while learning and while suppressed
  double raw_score = 0;                        ///< the score before suppression
  bool anomaly = false;                        ///< score >= threshold
  bool learning = false;                       ///< within the first learning_points points
  bool suppressed = false;                     ///< raw_score >= threshold, but within suppress_points of the last anomaly
  AnomalySignal signal = AnomalySignal::none;  ///< the strongest signal
  double expected = 0;                         ///< the recent level the value was compared with
  double day_ago = 0;                          ///< the value one day earlier (NaN when unknown)
  double week_ago = 0;                         ///< the value one week earlier (NaN when unknown)

  /// A sentence saying what was unusual: "anomaly: value 97.2 is above the highest value seen before (81)".
  std::string why() const;
};

class AnomalyDetector {
 public:
  /// Throws automation::Exception (invalid_argument) when the options are invalid; use create() to
  /// get the error as a value.
  explicit AnomalyDetector(AnomalyOptions options = {});
  static Result<AnomalyDetector> create(AnomalyOptions options);
  AnomalyDetector(AnomalyDetector&&) noexcept;
  AnomalyDetector& operator=(AnomalyDetector&&) noexcept;
  ~AnomalyDetector();

  /// Scores the next point. Points are taken in arrival order: a time before the previous point's
  /// is accepted (collectors repeat hours) and only places the point in its time of day. Errors
  /// (errc::invalid_argument, the detector unchanged): a value that is not finite.
  Result<AnomalyScore> update(TimePoint time, double value);

  const AnomalyOptions& options() const noexcept;
  std::size_t points() const noexcept;     ///< points seen so far
  std::size_t anomalies() const noexcept;  ///< anomalies reported so far

 private:
  struct State;
  std::unique_ptr<State> s_;
};

struct SeriesPoint {
  TimePoint time{};
  double value = 0;
};

/// Points to learn from for a series of `n` points when nothing else is known: the Numenta Anomaly
/// Benchmark's probationary period, 15 % of the series, at most 750 (and at least 2).
std::size_t default_learning_points(std::size_t n) noexcept;

/// Runs a fresh detector over a whole series (in time order); the first error stops it, naming the
/// point's index.
Result<std::vector<AnomalyScore>> detect_anomalies(std::span<const SeriesPoint> series, const AnomalyOptions& options = {});

}  // namespace automation::metrics
