#pragma once
/// Insights: plain sentences about a rollup, each a structured record with the numbers behind it
/// ("Most popular feature: vocal-coach with 450 events (37.5 % of all events)").
///
/// derive_insights() is pure: it reads a Rollup (the period's figures and their changes against the
/// previous period) and the daily revenue records around it. MetricsAggregator::insights() gathers
/// both from the store. See docs/metrics.md.
#include <automation/core/error.hpp>
#include <automation/metrics/metrics.hpp>

#include <boost/json/object.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace automation::metrics {

enum class InsightKind {
  most_used_feature,   ///< the feature with the most events
  least_used_feature,  ///< the feature with the fewest events (when there are at least two)
  feature_mover,       ///< a feature whose events changed most against the previous period
  error_rate_spike,    ///< the error rate, overall or of a feature, rose sharply
  revenue_trend,       ///< the direction and size of the daily revenue's trend
  churn_change,        ///< the churn rate against the previous period
};
std::string_view to_string(InsightKind k) noexcept;

enum class InsightSeverity { info, notice, warning };
std::string_view to_string(InsightSeverity s) noexcept;

struct Insight {
  InsightKind kind = InsightKind::most_used_feature;
  InsightSeverity severity = InsightSeverity::info;
  std::string subject;             ///< the feature, "overall", or "revenue"/"churn"
  std::string sentence;            ///< one plain sentence
  std::string figure;              ///< the rollup figure it is about: "usage.feature.vocal-coach.events"
  double value = 0;                ///< the figure in the period
  std::optional<double> previous;  ///< the figure in the previous period, when known
  std::optional<double> relative;  ///< (value - previous) / previous, when previous is not 0
  boost::json::object numbers;     ///< every number the sentence uses, by name
};

boost::json::object to_json(const Insight& insight);

struct InsightOptions {
  std::size_t movers = 3;           ///< biggest movers reported
  double mover_min_relative = 0.2;  ///< a mover changed its events by at least this fraction (or appeared or vanished)
  std::uint64_t min_events = 10;    ///< events a feature needs to be a mover (now or before) or an error-rate spike (now)
  double spike_ratio = 2.0;         ///< an error-rate spike is at least this times the previous rate...
  double spike_min_rate = 0.05;     ///< ...and at least this rate
  double trend_flat = 0.02;         ///< a revenue trend changing less than this fraction over the days it spans is flat
  std::size_t trend_min_days = 28;  ///< days of revenue the trend is fitted over (at least two periods)
  double churn_min_change = 0.005;  ///< a churn-rate change (absolute) below this is steady

  /// errc::invalid_argument naming the first bad option.
  Result<void> validate() const;
};

/// The insights of `rollup`, in a fixed order: most and least used feature, movers (largest change
/// first), error-rate spikes (overall first), revenue trend, churn. `revenue` holds the records
/// the trend is fitted to (any dates; those in the trend window ending on the period's last date
/// are used). Needs valid options (see validate()).
std::vector<Insight> derive_insights(const Rollup& rollup, std::span<const RevenueRecord> revenue, const InsightOptions& options = {});

/// The number of days the revenue trend of `period` is fitted over: at least two periods and
/// options.trend_min_days, ending on period.last.
int trend_days(const Period& period, const InsightOptions& options = {});

}  // namespace automation::metrics
