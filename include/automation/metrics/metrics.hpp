#pragma once
/// Usage and revenue records, reporting periods and the rollups MetricsAggregator computes.
/// Plain values; every function here is pure and safe from any thread.
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>
#include <automation/core/time.hpp>

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace automation::metrics {

/// One use of a product feature (the seed's UsageEvent).
struct UsageEvent {
  TimePoint time{};
  std::string user_id;
  std::string feature;               ///< featureKey: "vocal-coach"
  std::string event_type;            ///< "start", "complete", "click", ...
  std::optional<Duration> duration;  ///< how long it took (stored to the microsecond)
  std::string error_code;            ///< empty: no error
};

/// One plan's revenue figures for one calendar date (the seed's RevenueMetric). (date, plan) is the
/// key: loading a record again replaces the stored one.
struct RevenueRecord {
  std::chrono::year_month_day date{};
  std::string plan;
  double total_revenue = 0;
  std::int64_t new_subscribers = 0;
  std::int64_t active_users = 0;  ///< on that date
  std::int64_t churn_count = 0;

  friend bool operator==(const RevenueRecord&, const RevenueRecord&) = default;
};

/// Checks a record (non-empty user, feature and event type, a non-negative duration; a valid
/// date, a plan, finite non-negative figures). The message names the field.
Result<void> validate(const UsageEvent& event);
Result<void> validate(const RevenueRecord& record);

// ---- periods -----------------------------------------------------------------------------------

enum class Granularity : std::uint8_t { day, week, month, range };
std::string_view to_string(Granularity g) noexcept;

/// A span of local calendar dates, both ends inclusive. Weeks are ISO weeks (Monday to Sunday).
struct Period {
  Granularity granularity = Granularity::day;
  std::chrono::year_month_day first{}, last{};

  /// "2026-11-23", "2026-W48" (ISO week-year and week), "2026-11" or "2026-11-01..2026-11-15".
  std::string key() const;
  /// The period just before: the day, ISO week or month before, or a range of the same length.
  Period previous() const;
  int days() const;

  friend bool operator==(const Period&, const Period&) = default;
};

Period day_of(std::chrono::year_month_day date);
Period week_of(std::chrono::year_month_day date);
Period month_of(std::chrono::year_month_day date);
/// The day, ISO week or month containing `date` (a range granularity gives the day).
Period period_of(Granularity granularity, std::chrono::year_month_day date);
/// Days since 1970-01-01, as the store keeps dates, and back.
std::int32_t day_number(std::chrono::year_month_day date);
std::chrono::year_month_day date_of_day(std::int32_t day);
/// errc::invalid_argument when `last` is before `first` or either date is invalid.
Result<Period> date_range(std::chrono::year_month_day first, std::chrono::year_month_day last);
/// Parses a key as printed by Period::key(), a date "2026-11-23" being a day.
Result<Period> parse_period(std::string_view text);
/// "2026-11-23" -> a date; errc::invalid_argument naming the text otherwise.
Result<std::chrono::year_month_day> parse_date(std::string_view text);
std::string format_date(std::chrono::year_month_day date);

// ---- rollups -----------------------------------------------------------------------------------

/// Duration figures are milliseconds. Percentiles are nearest-rank over durations rounded down to
/// three significant digits (less than 1 % low); the mean is exact.
struct DurationStats {
  std::uint64_t count = 0;  ///< events that carried a duration
  double mean_ms = 0, p50_ms = 0, p95_ms = 0;
  friend bool operator==(const DurationStats&, const DurationStats&) = default;
};

struct FeatureUsage {
  std::string feature;
  std::uint64_t events = 0, errors = 0;
  double error_rate = 0;  ///< errors / events
  DurationStats duration;
  friend bool operator==(const FeatureUsage&, const FeatureUsage&) = default;
};

struct NamedCount {
  std::string name;
  std::uint64_t count = 0;
  friend bool operator==(const NamedCount&, const NamedCount&) = default;
};

struct UsageSummary {
  std::uint64_t events = 0, unique_users = 0, errors = 0;
  double error_rate = 0;
  DurationStats duration;
  std::vector<FeatureUsage> features;   ///< most events first, then by name
  std::vector<NamedCount> event_types;  ///< most first, then by name
  std::vector<NamedCount> error_codes;  ///< most first, then by name
  friend bool operator==(const UsageSummary&, const UsageSummary&) = default;
};

struct PlanRevenue {
  std::string plan;
  double revenue = 0;
  std::int64_t new_subscribers = 0, active_users = 0, churn_count = 0;
  friend bool operator==(const PlanRevenue&, const PlanRevenue&) = default;
};

/// Revenue and subscribers over a period. active_users is the level on the period's last date with
/// records; churn_rate is churn_count over the active users on the first such date;
/// revenue_per_active_user is the revenue over the mean active users of the dates with records.
struct RevenueSummary {
  int days = 0;  ///< dates with records
  double total_revenue = 0;
  std::int64_t new_subscribers = 0, active_users = 0, churn_count = 0;
  std::optional<double> churn_rate, revenue_per_active_user;
  std::vector<PlanRevenue> plans;  ///< most revenue first, then by name (active_users as above)
  friend bool operator==(const RevenueSummary&, const RevenueSummary&) = default;
};

/// A figure against the previous period. `relative` is absolute / previous (absent when previous is 0).
struct Change {
  std::string figure;  ///< "usage.events", "usage.feature.vocal-coach.events", "revenue.plan.pro.revenue", ...
  double value = 0, previous = 0, absolute = 0;
  std::optional<double> relative;
  friend bool operator==(const Change&, const Change&) = default;
};

/// The aggregates of one period in one time zone, and how they came about.
struct Rollup {
  Period period;
  std::string time_zone;
  TimePoint begin{}, end{};  ///< the instants the period covers, [begin, end)
  UsageSummary usage;
  RevenueSummary revenue;
  std::vector<Change> changes;  ///< every figure against the previous period
  TimePoint computed{};
  std::int64_t partials_read = 0;  ///< stored per-day aggregates read (after compaction: about one per day)
  bool reused = false;             ///< true: the stored rollup was current and returned as it was
  std::string why;                 ///< why it was computed, or reused
  friend bool operator==(const Rollup&, const Rollup&) = default;
};

/// The change of `figure` ("usage.events", "revenue.plan.pro.revenue", ...) in rollup.changes, or
/// nullptr when it has none.
const Change* find_change(const Rollup& rollup, std::string_view figure);

boost::json::object to_json(const Rollup& rollup);
/// Reads what to_json wrote; errc::invalid_argument naming the field otherwise.
Result<Rollup> rollup_from_json(const boost::json::value& v);

}  // namespace automation::metrics
