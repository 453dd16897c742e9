// autoctl forecast --input FILE.csv --horizon H [--frequency M] [--method NAME] [--levels 80,95]
//                  [--column NAME] [--date-column NAME] [--fill-gaps]
#include "context.hpp"
#include "series_input.hpp"

#include <automation/core/time.hpp>
#include <automation/forecast/forecast.hpp>
#include <automation/forecast/forecaster.hpp>

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

int run_forecast(Context& ctx, const ForecastOptions& o) {
  auto series = read_series(o);
  if (!series) return ctx.error(series.error());
  auto method = fc::parse_method(o.method);
  if (!method) return ctx.error(automation::with_context(method.error(), "--method"));
  auto levels = parse_levels(o.levels);
  if (!levels) return ctx.error(levels.error());
  const Step step = infer_step(series->dates);
  fc::Options options;
  options.horizon = o.horizon;
  options.method = *method;
  options.levels = *levels;
  options.period = o.frequency.value_or(step.period);
  options.gaps = o.fill_gaps ? fc::Gaps::interpolate : fc::Gaps::reject;
  fc::ForecasterOptions backend;
  if (!o.statistical) {
    automation::Environment openai;
    for (const char* name : {"OPENAI_BASE_URL", "OPENAI_API_KEY"})
      if (const char* v = std::getenv(name)) openai.emplace(name, v);
    auto llm = fc::LlmConfig::from_config(ctx.config, openai);
    if (!llm) return ctx.error(llm.error());
    backend.llm = *llm;
  }
  fc::Forecaster forecaster(automation::SystemClock::instance(), backend);
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
    boost::json::array ins;
    for (const auto& i : insights) ins.push_back({{"kind", i.kind}, {"text", i.text}, {"value", i.value}});
    doc["insights"] = std::move(ins);
    ctx.print_json(doc);
    return ex_ok;
  }
  std::string head = fmt::format("{:>5}  {:<20} {:>12}", "step", dates.empty() ? "" : "date", "forecast");
  for (const auto& iv : f->intervals)
    head += fmt::format("  {:>12} {:>12}", fmt::format("lo{:g}", iv.level), fmt::format("hi{:g}", iv.level));
  fmt::print("{}\n", head);
  for (std::size_t k = 0; k < f->mean.size(); ++k) {
    std::string row = fmt::format("{:>5}  {:<20} {:>12.6g}", k + 1, dates.empty() ? "" : dates[k], f->mean[k]);
    for (const auto& iv : f->intervals) row += fmt::format("  {:>12.6g} {:>12.6g}", iv.lower[k], iv.upper[k]);
    fmt::print("{}\n", row);
  }
  fmt::print("\nbackend: {}: {}\n", f->backend, f->why);
  fmt::print("method: {} ({})\nseasonality: {}\nobservations: {}{}\n", fc::to_string(f->method), f->detail, f->seasonality.reason,
             f->observations, series->dates.empty() ? "" : fmt::format(", {}", step.name));
  for (const auto& note : f->notes) fmt::print("note: {}\n", note);
  for (const auto& i : insights) fmt::print("insight: {}\n", i.text);
  return ex_ok;
}

}  // namespace

void register_forecast(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<ForecastOptions>();
  auto* cmd = app.add_subcommand("forecast", "Forecast a series with prediction intervals");
  cmd->add_option("--input", o->input, "CSV file with a value column and optionally a date column")->required();
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
      "Examples:\n  autoctl forecast --input sales.csv --horizon 12\n  autoctl forecast --input daily.csv --horizon 30 "
      "--method theta --levels 90 --json\n  AUTOMATION_LLM_BASE_URL=https://api.openai.com/v1 AUTOMATION_LLM_MODEL=gpt-4o-mini "
      "OPENAI_API_KEY=... autoctl forecast --input sales.csv\n\nMethods and the LLM backend are described in docs/forecasting.md.");
  cmd->callback([&ctx, o] { ctx.run = [&ctx, o] { return run_forecast(ctx, *o); }; });
}

}  // namespace autoctl
