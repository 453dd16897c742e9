// autoctl anomalies --metric M [--from D --to D] | --input FILE.csv [--column C] [--date-column D]
//                   [--learning N] [--threshold T] [--all]
#include "context.hpp"
#include "series_input.hpp"

#include <automation/core/time.hpp>
#include <automation/metrics/aggregator.hpp>
#include <automation/metrics/anomaly.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

#include <algorithm>
#include <optional>

namespace autoctl {
namespace mx = automation::metrics;
using automation::errc;
using automation::Result;
using automation::TimePoint;
using namespace std::chrono;

namespace {

struct AnomaliesOptions : SeriesInput {
  std::string metric, from, to;
  std::optional<std::size_t> learning;
  std::optional<double> threshold;
  bool all = false;
};

std::string metric_names() {
  std::string names;
  for (const auto& f : mx::daily_figures()) names += fmt::format("{}{}", names.empty() ? "" : ", ", f.name);
  return names;
}

/// One value per local day from the stored events and revenue (days without data count as 0).
Result<Series> stored_series(Context& ctx, const AnomaliesOptions& o, automation::TimeZone zone) {
  if (auto f = mx::daily_figure(o.metric); !f) return automation::with_context(f.error(), "--metric");
  const auto today = zone.local_date(automation::SystemClock::instance().now());
  year_month_day first{sys_days{today} - days{90}}, last{sys_days{today} - days{1}};
  if (!o.from.empty()) {
    auto d = mx::parse_date(o.from);
    if (!d) return automation::with_context(d.error(), "--from");
    first = *d;
  }
  if (!o.to.empty()) {
    auto d = mx::parse_date(o.to);
    if (!d) return automation::with_context(d.error(), "--to");
    last = *d;
  }
  if (sys_days{last} < sys_days{first}) return automation::fail(errc::invalid_argument, "--to is before --from");
  if ((sys_days{last} - sys_days{first}).count() >= 3660)
    return automation::fail(errc::invalid_argument, "--from/--to spans more than 3,660 days");
  auto store = ctx.open_store(Context::Access::write);
  if (!store) return store.error();
  mx::MetricsAggregator agg(**store, automation::SystemClock::instance(), {.time_zone = zone});
  auto values = agg.daily_series(o.metric, first, last);
  if (!values) return values.error();
  Series s;
  for (const auto& v : *values) s.values.push_back(v.value_or(0.0));  // days without data count as 0
  for (auto d = sys_days{first}; d <= sys_days{last}; d += days{1}) s.dates.push_back(zone.start_of_day(year_month_day{d}));
  return s;
}

boost::json::object to_json(const mx::AnomalyScore& a, bool dated) {
  boost::json::object o{{"value", a.value},       {"score", a.score},           {"raw_score", a.raw_score},          {"anomaly", a.anomaly},
                        {"learning", a.learning}, {"suppressed", a.suppressed}, {"signal", mx::to_string(a.signal)}, {"why", a.why()}};
  if (dated) o["time"] = automation::format_timestamp(a.time);
  return o;
}

int run_anomalies(Context& ctx, const AnomaliesOptions& o) {
  if (o.metric.empty() == o.input.empty())
    return ctx.error(automation::Error{errc::invalid_argument, "choose one of --metric (stored data) and --input FILE"});
  if (!o.input.empty() && (!o.from.empty() || !o.to.empty()))
    return ctx.error(automation::Error{errc::invalid_argument, "--from/--to go with --metric"});
  if (!o.metric.empty() && (!o.column.empty() || !o.date_column.empty()))
    return ctx.error(automation::Error{errc::invalid_argument, "--column/--date-column go with --input"});
  auto zone = automation::TimeZone::locate(ctx.config.time_zone);
  if (!zone) return ctx.error(automation::with_context(zone.error(), "time_zone"));
  auto series = o.metric.empty() ? read_series(o) : stored_series(ctx, o, *zone);
  if (!series) return ctx.error(series.error());
  const bool dated = !series->dates.empty();
  const std::size_t n = series->values.size();

  mx::AnomalyOptions opt;
  opt.time_zone = *zone;
  opt.learning_points = o.learning.value_or(mx::default_learning_points(n));
  if (o.threshold) opt.threshold = *o.threshold;
  std::vector<mx::SeriesPoint> points(n);
  for (std::size_t i = 0; i < n; ++i) {
    // Without dates the points are taken two days apart: sampled less often than daily, a series
    // has no day or week to compare with, so no calendar signal sees made-up dates.
    points[i] = {dated ? series->dates[i] : TimePoint(days(2 * static_cast<long>(i))), series->values[i]};
  }
  auto detected = mx::detect_anomalies(points, opt);
  if (!detected) return ctx.error(automation::with_context(detected.error(), o.metric.empty() ? o.input : o.metric));
  const auto& scores = *detected;
  const auto label = [&](std::size_t i) {
    return dated ? (o.metric.empty() ? automation::format_timestamp(scores[i].time) : mx::format_date(zone->local_date(scores[i].time)))
                 : fmt::format("#{}", i + 1);
  };

  if (ctx.global.json) {
    boost::json::array found, all;
    for (std::size_t i = 0; i < n; ++i) {
      if (!o.all && !scores[i].anomaly) continue;
      auto doc = to_json(scores[i], dated);
      doc["index"] = i;
      if (scores[i].anomaly) found.push_back(doc);
      if (o.all) all.push_back(std::move(doc));
    }
    boost::json::object out{{"source", o.metric.empty() ? o.input : "metric:" + o.metric},
                            {"points", n},
                            {"learning_points", opt.learning_points},
                            {"threshold", opt.threshold},
                            {"anomalies", std::move(found)}};
    if (o.all) out["scores"] = std::move(all);
    ctx.print_json(out);
    return ex_ok;
  }
  const auto count = static_cast<std::size_t>(std::count_if(scores.begin(), scores.end(), [](const auto& s) { return s.anomaly; }));
  fmt::print("{}: {} points, learning from the first {}, threshold {:.2f}: {} {}\n", o.metric.empty() ? o.input : o.metric, n,
             std::min(opt.learning_points, n), opt.threshold, count, count == 1 ? "anomaly" : "anomalies");
  if (n <= opt.learning_points) fmt::print("  every point was used to learn; give more data or a smaller --learning\n");
  for (std::size_t i = 0; i < n; ++i) {
    if (!o.all && !scores[i].anomaly) continue;
    fmt::print("  {:<25} {:>12.6g} score {:.3f}  {}\n", label(i), scores[i].value, scores[i].score,
               scores[i].learning ? "learning" : scores[i].why());
  }
  return ex_ok;
}

}  // namespace

void register_anomalies(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<AnomaliesOptions>();
  o->gap_hint = "remove the row or fill the value in (the detector scores every point it is given)";
  auto* cmd = app.add_subcommand("anomalies", "Find anomalies in a stored daily metric or in a series from a CSV file");
  cmd->add_option("--metric", o->metric, "A stored daily metric: " + metric_names());
  cmd->add_option("--from", o->from, "First day for --metric (default: 90 days ago)");
  cmd->add_option("--to", o->to, "Last day for --metric (default: yesterday)");
  cmd->add_option("--input", o->input, "CSV file with a value column and optionally a date/timestamp column");
  cmd->add_option("--column", o->column, "The value column of --input");
  cmd->add_option("--date-column", o->date_column, "The date column of --input");
  cmd->add_option("--learning", o->learning, "Points to learn from before scoring (default 15 % of the series, at most 750)")
      ->check(CLI::Range(2, 10'000'000));
  cmd->add_option("--threshold", o->threshold, "Score at or above which a point is an anomaly (default 0.5)")
      ->check(CLI::Range(0.000001, 1.0));
  cmd->add_flag("--all", o->all, "Print every point's score, not only the anomalies");
  cmd->callback([&ctx, o] { ctx.run = [&ctx, o] { return run_anomalies(ctx, *o); }; });
}

}  // namespace autoctl
