#pragma once
/// Reports: a period's rollup with its changes, the daily figures of the days around it and its
/// insights, rendered as JSON, Markdown or a self-contained HTML page with SVG charts (daily trend
/// lines, per-feature and per-plan bars).
///
/// MetricsAggregator::report() gathers a Report from the store (the period's stored rollup and the
/// stored daily rollups, computing and storing those that are missing or stale); the renderers are
/// pure. ReportDeliverer (delivery.hpp) sends a report to files, webhooks and mailboxes. See
/// docs/metrics.md.
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>
#include <automation/metrics/insights.hpp>
#include <automation/metrics/metrics.hpp>

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace automation::metrics {

/// One day's headline figures, from its daily rollup.
struct DayFigures {
  std::chrono::year_month_day date{};
  std::uint64_t events = 0, unique_users = 0, errors = 0;
  double error_rate = 0;
  bool has_revenue = false;  ///< revenue records exist for the date
  double revenue = 0;
  std::int64_t new_subscribers = 0, active_users = 0, churn_count = 0;

  friend bool operator==(const DayFigures&, const DayFigures&) = default;
};

struct Report {
  Period period;
  std::string time_zone;
  TimePoint generated{};
  Rollup rollup;                  ///< the period's figures and their changes against the previous period
  std::vector<DayFigures> days;   ///< the trend window: the period's days, at least 14, ending on its last day
  std::vector<Insight> insights;  ///< as MetricsAggregator::insights() derives them

  /// "Weekly report 2026-W48", "Report 2026-11-01..2026-11-15".
  std::string title() const;
  /// A name for files and deliveries: "weekly-2026-W48", "daily-2026-11-23", "range-2026-11-01..2026-11-15".
  std::string key() const;
};

/// Days in the trend window of `period`: its own days, at least 14.
int report_days(const Period& period);

enum class ReportFormat { json, markdown, html };
std::string_view to_string(ReportFormat f) noexcept;
/// "json", "md" or "markdown", "html"; errc::invalid_argument naming the text otherwise.
Result<ReportFormat> parse_report_format(std::string_view text);
/// "json", "md", "html".
std::string_view file_extension(ReportFormat f) noexcept;
/// "application/json", "text/markdown; charset=utf-8", "text/html; charset=utf-8".
std::string_view media_type(ReportFormat f) noexcept;

boost::json::object to_json(const Report& report);
/// The report in `format`: JSON (to_json, pretty), Markdown (tables of the figures, features, plans
/// and days, and the insights), or one self-contained HTML page (inline CSS and SVG; no script, no
/// external resource).
std::string render(const Report& report, ReportFormat format);
/// A short plain-text summary for a chat message (Slack mrkdwn): the title, the headline figures with
/// their changes, and the insights.
std::string render_summary(const Report& report);

}  // namespace automation::metrics
