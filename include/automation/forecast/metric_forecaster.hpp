#pragma once
/// MetricForecaster: forecasts of the stored daily metrics (revenue, users, usage and every other
/// daily figure of the MetricsAggregator's rollups), stored with their method and inputs so that
/// each can be compared with the actuals as they arrive (running accuracy per metric) and the next
/// forecast can say what changed since.
///
/// Thread-safety: one thread at a time. Needs a Store, a Clock and a Forecaster, all outliving it.
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>
#include <automation/core/time.hpp>
#include <automation/forecast/forecast.hpp>
#include <automation/forecast/forecaster.hpp>
#include <automation/storage/store.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace automation::forecast {

struct MetricForecastOptions {
  TimeZone time_zone;              ///< the zone of the days (the configuration's time_zone)
  std::size_t history_days = 365;  ///< the history read: at most this many complete days before today
};

/// A forecast of a daily metric, as stored.
struct MetricForecast {
  std::int64_t id = 0;  ///< the stored record
  std::string metric;
  std::chrono::year_month_day history_first{}, history_last{};  ///< the days it was made from
  std::vector<double> history;
  std::vector<std::chrono::year_month_day> days;  ///< the predicted days, one per step (history_last + 1, ...)
  Forecast forecast;
  std::vector<Insight> insights;         ///< trend, seasonality, certainty, and what changed since `previous`
  std::optional<std::int64_t> previous;  ///< the metric's forecast before this one
};

/// How one stored forecast did on the days that have actuals so far.
struct ForecastScore {
  std::int64_t id = 0;
  TimePoint created{};
  std::string method, backend;
  std::chrono::year_month_day first_day{};
  std::size_t horizon = 0, compared = 0;            ///< predicted days, and those with an actual so far
  double mae = 0, smape = 0;                        ///< over the compared days (sMAPE in percent, M4's definition)
  std::optional<double> mase;                       ///< scaled by the history's mean absolute seasonal difference (none when that is 0)
  std::vector<std::pair<double, double>> coverage;  ///< per level: the share of actuals inside the interval
  std::string note;                                 ///< why it was not scored: no complete day yet, no actuals, unreadable
};

/// How often the actuals fell inside the intervals of one level, over every forecast that had it.
struct LevelCoverage {
  double level = 0;
  double share = 0;      ///< inside / days
  std::size_t days = 0;  ///< compared days of forecasts with this level
};

/// The running accuracy of a metric's stored forecasts: every compared day of every forecast, pooled.
struct MetricAccuracy {
  std::string metric;
  std::size_t forecasts = 0;  ///< stored forecasts read
  std::size_t scored = 0;     ///< of which had at least one day with an actual
  std::size_t points = 0;     ///< compared days in all
  double mae = 0, smape = 0;
  std::optional<double> mase;           ///< over the compared days of forecasts with a MASE scale
  std::size_t mase_points = 0;          ///< those days
  std::vector<LevelCoverage> coverage;  ///< every level any scored forecast had, in order
  std::vector<ForecastScore> scores;    ///< per forecast, newest first
};

class MetricForecaster {
 public:
  MetricForecaster(storage::Store& store, const Clock& clock, Forecaster& forecaster, MetricForecastOptions options = {});

  /// Forecasts `metric` (metrics::daily_figure(): revenue, users, usage, ...) from its daily values up
  /// to yesterday (the last complete day in the zone), from its first to its last day with data (days
  /// in between without data count as 0), with `options` (a period of 0 means 7: daily data with a
  /// weekly cycle), and stores it with `reason`. errc::invalid_argument for an unknown metric, a
  /// horizon over 10,000, or fewer than 2 days from the first to the last day with data.
  Result<MetricForecast> forecast(std::string_view metric, Options options, std::string_view reason);

  /// The stored forecasts of `metric` made in this zone (the newest `limit`; 0: all) against the
  /// actuals of the days that are complete now. A stored forecast that cannot be read is listed with
  /// a note and not scored. errc::invalid_argument for an unknown metric.
  Result<MetricAccuracy> accuracy(std::string_view metric, std::size_t limit = 30);

 private:
  storage::Store& store_;
  const Clock& clock_;
  Forecaster& forecaster_;
  MetricForecastOptions options_;
};

}  // namespace automation::forecast
