// autoctl forecast --metric NAME | --input FILE.csv --horizon H [--frequency M] [--method NAME] [--levels 80,95]
//                  [--column NAME] [--date-column NAME] [--fill-gaps]
#include "context.hpp"
#include "delivery_support.hpp"
#include "series_input.hpp"

#include <automation/core/json.hpp>
#include <automation/core/time.hpp>
#include <automation/forecast/forecast.hpp>
#include <automation/forecast/forecaster.hpp>
#include <automation/forecast/metric_forecaster.hpp>
#include <automation/metrics/aggregator.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <optional>

namespace autoctl {

namespace {

using automation::errc;
using automation::fail;
using automation::Result;
using automation::TimePoint;
namespace fc = automation::forecast;

struct ForecastOptions : SeriesInput {
  std::string metric;
  std::string method = "auto", levels = "80,95";
  std::size_t horizon = 30;
  std::optional<std::size_t> frequency;
  bool statistical = false;
};

// The step between dates: calendar months (1, 3 or 12) when every date falls on the same day of
// its month (or every one on its month's last day) that many months after the previous, else the
// median gap. The seasonal period follows from it when not given.
struct Step {
  int months = 0;
  bool month_end = false;
  automation::Millis fixed{0};
  std::size_t period = 0;
  std::string name = "irregular";
};

Step infer_step(const std::vector<TimePoint>& dates) {
  using namespace std::chrono;
  if (dates.size() < 2) return {};
  auto is_last = [](const year_month_day& d) { return d.day() == (d.year() / d.month() / last).day(); };
  int months_apart = -1;
  bool month_end = true;
  for (std::size_t i = 1; i < dates.size() && months_apart != 0; ++i) {
    const auto day_a = floor<days>(dates[i - 1]), day_b = floor<days>(dates[i]);
    const year_month_day a{day_a}, b{day_b};
    month_end = month_end && is_last(a) && is_last(b);
    const bool same_day = a.day() == b.day() || (is_last(a) && is_last(b));
    const int gap = (static_cast<int>(b.year()) - static_cast<int>(a.year())) * 12 +
                    (static_cast<int>(static_cast<unsigned>(b.month())) - static_cast<int>(static_cast<unsigned>(a.month())));
    if (!same_day || dates[i] - day_b != dates[i - 1] - day_a || (months_apart != -1 && gap != months_apart))
      months_apart = 0;
    else
      months_apart = gap;
  }
  if (months_apart == 1) return {1, month_end, {}, 12, "monthly"};
  if (months_apart == 3) return {3, month_end, {}, 4, "quarterly"};
  if (months_apart == 12) return {12, month_end, {}, 1, "yearly"};
  std::vector<std::int64_t> gaps;
  for (std::size_t i = 1; i < dates.size(); ++i) gaps.push_back(duration_cast<automation::Millis>(dates[i] - dates[i - 1]).count());
  std::nth_element(gaps.begin(), gaps.begin() + static_cast<std::ptrdiff_t>(gaps.size() / 2), gaps.end());
  const automation::Millis median(gaps[gaps.size() / 2]);
  if (median == days(1)) return {0, false, median, 7, "daily"};
  if (median == days(7)) return {0, false, median, 52, "weekly"};
  if (median == hours(1)) return {0, false, median, 24, "hourly"};
  return {0, false, median, 0, fmt::format("every {}", automation::format_duration(median))};
}

TimePoint advance(TimePoint from, const Step& step, std::size_t k) {
  if (step.months == 0) return from + step.fixed * static_cast<std::int64_t>(k);
  using namespace std::chrono;
  const auto day = floor<days>(from);
  year_month_day ymd{day};
  ymd += months(step.months * static_cast<int>(k));
  if (step.month_end || !ymd.ok()) ymd = ymd.year() / ymd.month() / last;  // Jan 31 + 1 month = Feb 28/29
  return TimePoint(sys_days{ymd}) + (from - day);
}

// A date alone at midnight UTC, else the full timestamp.
std::string format_date(TimePoint t) {
  const std::string text = automation::format_timestamp(t);
  return t == std::chrono::floor<std::chrono::days>(t) ? text.substr(0, 10) : text;
}

Result<std::vector<double>> parse_levels(const std::string& text) {
  std::vector<double> levels;
  std::size_t start = 0;
  while (start <= text.size()) {
    const auto comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    double v = 0;
    auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size() || !(v > 0 && v < 100))
      return fail(errc::invalid_argument, fmt::format("--levels: '{}' is not a percentage in (0, 100)", item));
    levels.push_back(v);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return levels;
}

Result<fc::Options> forecast_options(const ForecastOptions& o) {
  auto method = fc::parse_method(o.method);
  if (!method) return automation::with_context(method.error(), "--method");
  auto levels = parse_levels(o.levels);
  if (!levels) return levels.error();
  fc::Options options;
  options.horizon = o.horizon;
  options.method = *method;
  options.levels = *levels;
  options.period = o.frequency.value_or(0);
  options.gaps = o.fill_gaps ? fc::Gaps::interpolate : fc::Gaps::reject;
  return options;
}

boost::json::array insights_json(const std::vector<fc::Insight>& insights) {
  boost::json::array ins;
  for (const auto& i : insights) ins.push_back({{"kind", i.kind}, {"text", i.text}, {"value", i.value}});
  return ins;
}

void print_forecast(const fc::Forecast& f, const std::vector<std::string>& dates, const std::string& observations,
                    const std::vector<fc::Insight>& insights) {
  std::string head = fmt::format("{:>5}  {:<20} {:>12}", "step", dates.empty() ? "" : "date", "forecast");
  for (const auto& iv : f.intervals)
    head += fmt::format("  {:>12} {:>12}", fmt::format("lo{:g}", iv.level), fmt::format("hi{:g}", iv.level));
  fmt::print("{}\n", head);
  for (std::size_t k = 0; k < f.mean.size(); ++k) {
    std::string row = fmt::format("{:>5}  {:<20} {:>12.6g}", k + 1, dates.empty() ? "" : dates[k], f.mean[k]);
    for (const auto& iv : f.intervals) row += fmt::format("  {:>12.6g} {:>12.6g}", iv.lower[k], iv.upper[k]);
    fmt::print("{}\n", row);
  }
  fmt::print("\nbackend: {}: {}\n", f.backend, f.why);
  fmt::print("method: {} ({})\nseasonality: {}\nobservations: {}\n", fc::to_string(f.method), f.detail, f.seasonality.reason, observations);
  for (const auto& note : f.notes) fmt::print("note: {}\n", note);
  for (const auto& i : insights) fmt::print("insight: {}\n", i.text);
}

int run_metric_forecast(Context& ctx, const ForecastOptions& o) {
  if (!o.column.empty() || !o.date_column.empty() || o.fill_gaps)
    return ctx.error(automation::Error{errc::invalid_argument, "--column, --date-column and --fill-gaps go with --input"});
  auto options = forecast_options(o);
  if (!options) return ctx.error(options.error());
  auto backend = forecaster_options(ctx, o.statistical);
  if (!backend) return ctx.error(backend.error());
  auto zone = automation::TimeZone::locate(ctx.config.time_zone);
  if (!zone) return ctx.error(automation::with_context(zone.error(), "time_zone"));
  // A forecast reads (and stores) daily rollups, and is stored itself.
  auto store = ctx.open_store(Context::Access::write);
  if (!store) return ctx.error(store.error());
  auto& clock = automation::SystemClock::instance();
  fc::Forecaster forecaster(clock, *backend);
  fc::MetricForecaster metrics(**store, clock, forecaster, {.time_zone = *zone});
  auto m = metrics.forecast(o.metric, *options, fmt::format("autoctl forecast --metric by {}", ctx.actor()));
  if (!m) return ctx.error(automation::with_context(m.error(), "--metric"));
  std::vector<std::string> dates;
  for (const auto& d : m->days) dates.push_back(automation::metrics::format_date(d));
  if (ctx.global.json) {
    auto doc = fc::to_json(m->forecast, dates);
    doc["metric"] = m->metric;
    doc["id"] = m->id;
    doc["history"] = boost::json::object{{"first_day", automation::metrics::format_date(m->history_first)},
                                         {"last_day", automation::metrics::format_date(m->history_last)},
                                         {"days", m->history.size()}};
    doc["previous"] = automation::json::or_null(m->previous);
    doc["insights"] = insights_json(m->insights);
    ctx.print_json(doc);
    return ex_ok;
  }
  fmt::print("{}: {} days to {}, from {} to {} ({} days); stored as forecast {}\n\n", m->metric, m->days.size(),
             dates.empty() ? "" : dates.back(), automation::metrics::format_date(m->history_first),
             automation::metrics::format_date(m->history_last), m->history.size(), m->id);
  print_forecast(m->forecast, dates, fmt::format("{}, daily", m->forecast.observations), m->insights);
  return ex_ok;
}

int run_forecast(Context& ctx, const ForecastOptions& o) {
  if (o.metric.empty() == o.input.empty())
    return ctx.error(automation::Error{errc::invalid_argument, "choose one of --metric (stored data) and --input FILE.csv"});
  if (!o.metric.empty()) return run_metric_forecast(ctx, o);
  auto series = read_series(o);
  if (!series) return ctx.error(series.error());
  auto opts = forecast_options(o);
  if (!opts) return ctx.error(opts.error());
  const Step step = infer_step(series->dates);
  auto options = *opts;
  options.period = o.frequency.value_or(step.period);
  auto backend = forecaster_options(ctx, o.statistical);
  if (!backend) return ctx.error(backend.error());
  fc::Forecaster forecaster(automation::SystemClock::instance(), *backend);
  auto f = forecaster.forecast(series->values, options);
  if (!f) return ctx.error(automation::with_context(f.error(), o.input));
  std::vector<std::string> dates;
  if (series->dates.size() >= 2)
    for (std::size_t k = 1; k <= o.horizon; ++k) dates.push_back(format_date(advance(series->dates.back(), step, k)));
  const auto insights = fc::insights(*f, series->values, "the series");

  if (ctx.global.json) {
    auto doc = fc::to_json(*f, dates);
    doc["input"] = o.input;
    if (!series->dates.empty()) doc["step"] = step.name;
    doc["insights"] = insights_json(insights);
    ctx.print_json(doc);
    return ex_ok;
  }
  print_forecast(*f, dates, fmt::format("{}{}", f->observations, series->dates.empty() ? "" : fmt::format(", {}", step.name)), insights);
  return ex_ok;
}

struct AccuracyOptions {
  std::string metric;
  std::size_t limit = 30;
};

boost::json::array coverage_json(const std::vector<fc::LevelCoverage>& coverage) {
  boost::json::array out;
  for (const auto& c : coverage) out.push_back(boost::json::object{{"level", c.level}, {"coverage", c.share}, {"days", c.days}});
  return out;
}

boost::json::array coverage_json(const std::vector<std::pair<double, double>>& coverage) {
  boost::json::array out;
  for (const auto& [level, share] : coverage) out.push_back(boost::json::object{{"level", level}, {"coverage", share}});
  return out;
}

int run_accuracy(Context& ctx, const AccuracyOptions& o) {
  auto zone = automation::TimeZone::locate(ctx.config.time_zone);
  if (!zone) return ctx.error(automation::with_context(zone.error(), "time_zone"));
  auto store = ctx.open_store(Context::Access::write);  // actuals come from daily rollups, stored when missing
  if (!store) return ctx.error(store.error());
  auto& clock = automation::SystemClock::instance();
  fc::Forecaster forecaster(clock);
  fc::MetricForecaster metrics(**store, clock, forecaster, {.time_zone = *zone});
  std::vector<std::string> names;
  if (!o.metric.empty()) {
    names.push_back(o.metric);
  } else {
    for (const auto& f : automation::metrics::daily_figures()) {
      auto any = (*store)->list_forecasts({.metric = std::string(f.name), .limit = 1});
      if (!any) return ctx.error(any.error());
      if (!any->empty()) names.emplace_back(f.name);
    }
  }
  boost::json::array all;
  for (const auto& name : names) {
    auto a = metrics.accuracy(name, o.limit);
    if (!a) return ctx.error(automation::with_context(a.error(), "--metric"));
    if (ctx.global.json) {
      boost::json::array scores;
      for (const auto& s : a->scores)
        scores.push_back(boost::json::object{{"id", s.id},
                                             {"created", automation::format_timestamp(s.created)},
                                             {"method", s.method},
                                             {"backend", s.backend},
                                             {"first_day", automation::metrics::format_date(s.first_day)},
                                             {"horizon", s.horizon},
                                             {"compared", s.compared},
                                             {"mae", s.mae},
                                             {"smape", s.smape},
                                             {"mase", automation::json::or_null(s.mase)},
                                             {"coverage", coverage_json(s.coverage)},
                                             {"note", s.note}});
      all.push_back(boost::json::object{{"metric", a->metric},
                                        {"forecasts", a->forecasts},
                                        {"scored", a->scored},
                                        {"points", a->points},
                                        {"mae", a->mae},
                                        {"smape", a->smape},
                                        {"mase", automation::json::or_null(a->mase)},
                                        {"mase_points", a->mase_points},
                                        {"coverage", coverage_json(a->coverage)},
                                        {"scores", std::move(scores)}});
      continue;
    }
    if (a->forecasts == 0) {
      fmt::print("{}: no stored forecasts (autoctl forecast --metric {})\n", a->metric, a->metric);
      continue;
    }
    if (a->points == 0) {
      fmt::print("{}: {} stored forecast{}, none with a complete predicted day yet\n", a->metric, a->forecasts,
                 a->forecasts == 1 ? "" : "s");
      continue;
    }
    std::string cov;
    for (const auto& c : a->coverage)
      cov += fmt::format(", {:g} % interval covered {:.1f} %{}", c.level, 100 * c.share,
                         c.days == a->points ? "" : fmt::format(" (of {} days)", c.days));
    fmt::print("{}: {} forecast{} scored over {} day{}: sMAPE {:.2f} %, MAE {:.6g}, MASE {}{}\n", a->metric, a->scored,
               a->scored == 1 ? "" : "s", a->points, a->points == 1 ? "" : "s", a->smape, a->mae,
               a->mase ? fmt::format("{:.3f}", *a->mase) : "n/a", cov);
    for (const auto& s : a->scores) {
      fmt::print("  #{:<4} {} {:<12} {:<11} from {} ({} days): ", s.id, automation::format_timestamp(s.created), s.method, s.backend,
                 automation::metrics::format_date(s.first_day), s.horizon);
      if (s.compared == 0) {
        fmt::print("{}\n", s.note);
        continue;
      }
      fmt::print("{} compared, sMAPE {:.2f} %, MASE {}", s.compared, s.smape, s.mase ? fmt::format("{:.3f}", *s.mase) : "n/a");
      for (const auto& [level, share] : s.coverage) fmt::print(", {:g} %: {:.0f} %", level, 100 * share);
      fmt::print("\n");
    }
  }
  if (ctx.global.json)
    ctx.print_json(boost::json::object{{"accuracy", std::move(all)}});
  else if (names.empty())
    fmt::print("no stored forecasts (autoctl forecast --metric revenue|users|usage)\n");
  return ex_ok;
}

}  // namespace

void register_forecast(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<ForecastOptions>();
  auto* cmd = app.add_subcommand("forecast", "Forecast a series with prediction intervals");
  cmd->add_option("--input", o->input, "CSV file with a value column and optionally a date column");
  cmd->add_option("--metric", o->metric,
                  "A stored daily metric: revenue, users (active users), usage (events), or any of autoctl anomalies' metrics; the "
                  "forecast is stored for autoctl forecast accuracy");
  cmd->add_option("--horizon", o->horizon, "Steps to forecast (default 30)")->check(CLI::Range(1, 100000));
  cmd->add_option("--frequency", o->frequency, "Seasonal period (12 monthly, 7 daily, 1 none; default: from the dates, else detected)")
      ->check(CLI::Range(1, 10000));
  std::string methods;
  for (auto m : fc::all_methods()) methods += (methods.empty() ? "" : "|") + std::string(fc::to_string(m));
  cmd->add_option("--method", o->method, "Method: " + methods + " (default auto)");
  cmd->add_option("--levels", o->levels, "Interval levels in percent, comma-separated (default 80,95)");
  cmd->add_option("--column", o->column, "The value column (default: value, y, amount, total, count, or the only other column)");
  cmd->add_option("--date-column", o->date_column, "The date column (default: date, timestamp, time, ds, day, month or period)");
  cmd->add_flag("--fill-gaps", o->fill_gaps, "Interpolate empty or NA values instead of refusing the file");
  cmd->add_flag("--statistical", o->statistical, "Do not ask the LLM backend even when AUTOMATION_LLM_* configure one");
  cmd->footer(
      "Examples:\n  autoctl forecast --metric revenue --horizon 30\n  autoctl forecast accuracy\n  autoctl forecast --input sales.csv "
      "--horizon 12\n  autoctl forecast --input daily.csv --horizon 30 "
      "--method theta --levels 90 --json\n  AUTOMATION_LLM_BASE_URL=https://api.openai.com/v1 AUTOMATION_LLM_MODEL=gpt-4o-mini "
      "OPENAI_API_KEY=... autoctl forecast --input sales.csv\n\nMethods and the LLM backend are described in docs/forecasting.md.");
  cmd->callback([&ctx, o, cmd] {
    if (cmd->get_subcommands().empty()) {
      ctx.run = [&ctx, o] { return run_forecast(ctx, *o); };
    } else if (!o->metric.empty() || !o->input.empty()) {  // "forecast --metric x accuracy": the option is accuracy's
      ctx.run = [&ctx] {
        return ctx.error(
            automation::Error{errc::invalid_argument, "options go after the subcommand: autoctl forecast accuracy --metric M"});
      };
    }
  });

  auto a = std::make_shared<AccuracyOptions>();
  auto* acc = cmd->add_subcommand("accuracy", "How the stored forecasts did against the actuals so far (running accuracy per metric)");
  acc->add_option("--metric", a->metric, "Only this metric (default: every metric with stored forecasts)");
  acc->add_option("--limit", a->limit, "The newest N forecasts of each metric (default 30)");
  acc->callback([&ctx, a] { ctx.run = [&ctx, a] { return run_accuracy(ctx, *a); }; });
}

}  // namespace autoctl
