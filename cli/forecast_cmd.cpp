// autoctl forecast --input FILE.csv --horizon H [--frequency M] [--method NAME] [--levels 80,95]
//                  [--column NAME] [--date-column NAME] [--fill-gaps]
#include "context.hpp"

#include <automation/core/time.hpp>
#include <automation/forecast/forecast.hpp>
#include <automation/forecast/forecaster.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>

namespace autoctl {

namespace {

using automation::errc;
using automation::Error;
using automation::fail;
using automation::Result;
using automation::TimePoint;
namespace fc = automation::forecast;

struct ForecastOptions {
  std::string input, column, date_column, method = "auto", levels = "80,95";
  std::size_t horizon = 30;
  std::size_t frequency = 0;
  bool frequency_given = false;
  bool fill_gaps = false;
  bool statistical = false;
};

struct Series {
  std::vector<double> values;
  std::vector<TimePoint> dates;  // empty without a date column
};

std::vector<std::string> split_csv(const std::string& line) {
  // Plain CSV: commas separate, double quotes may enclose a cell ("" is a quote inside one).
  std::vector<std::string> cells(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"')
        cells.back() += '"', ++i;
      else if (c == '"')
        quoted = false;
      else
        cells.back() += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      cells.emplace_back();
    } else if (c != '\r') {
      cells.back() += c;
    }
  }
  for (auto& cell : cells) {
    const auto b = cell.find_first_not_of(" \t"), e = cell.find_last_not_of(" \t");
    cell = b == std::string::npos ? "" : cell.substr(b, e - b + 1);
  }
  return cells;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

Result<Series> read_series(const ForecastOptions& o) {
  std::ifstream in(o.input);
  if (!in) return fail(errc::not_found, fmt::format("{}: cannot open the file", o.input));
  std::string line;
  if (!std::getline(in, line)) return fail(errc::invalid_argument, fmt::format("{}: the file is empty", o.input));
  const auto header = split_csv(line);
  auto find = [&](const std::vector<std::string>& names) -> std::optional<std::size_t> {
    for (const auto& name : names)
      for (std::size_t i = 0; i < header.size(); ++i)
        if (lower(header[i]) == lower(name)) return i;
    return std::nullopt;
  };
  std::optional<std::size_t> value_col, date_col;
  if (!o.column.empty()) {
    value_col = find({o.column});
    if (!value_col) return fail(errc::invalid_argument, fmt::format("{}:1: no column '{}' in the header", o.input, o.column));
  }
  if (!o.date_column.empty()) {
    date_col = find({o.date_column});
    if (!date_col) return fail(errc::invalid_argument, fmt::format("{}:1: no column '{}' in the header", o.input, o.date_column));
  } else {
    date_col = find({"date", "timestamp", "time", "ds", "day", "month", "period"});
  }
  if (!value_col) value_col = find({"value", "y", "amount", "total", "count"});
  if (!value_col && header.size() == 1) value_col = 0;
  if (!value_col && header.size() == 2 && date_col) value_col = 1 - *date_col;
  if (!value_col)
    return fail(errc::invalid_argument,
                fmt::format("{}:1: which column holds the values? name it with --column (columns: {})", o.input, fmt::join(header, ", ")));
  Series s;
  std::size_t line_no = 1;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto cells = split_csv(line);
    const auto where = fmt::format("{}:{}", o.input, line_no);
    if (cells.size() <= std::max(*value_col, date_col.value_or(0)))
      return fail(errc::invalid_argument, fmt::format("{}: {} cell(s), the header has {}", where, cells.size(), header.size()));
    const std::string& cell = cells[*value_col];
    double v = std::numeric_limits<double>::quiet_NaN();
    if (cell.empty() || lower(cell) == "na" || lower(cell) == "nan") {
      if (!o.fill_gaps)
        return fail(errc::invalid_argument, fmt::format("{}: the value is missing; pass --fill-gaps to interpolate missing values", where));
    } else {
      auto [end, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), v);
      if (ec != std::errc() || end != cell.data() + cell.size() || !std::isfinite(v))
        return fail(errc::invalid_argument, fmt::format("{}: '{}' in column '{}' is not a number", where, cell, header[*value_col]));
    }
    if (date_col) {
      auto t = automation::parse_timestamp(cells[*date_col]);
      if (!t) return fail(errc::invalid_argument, fmt::format("{}: column '{}': {}", where, header[*date_col], t.error().message));
      if (!s.dates.empty() && *t <= s.dates.back())
        return fail(errc::invalid_argument,
                    fmt::format("{}: {} is not after the previous row's date; sort the file by date", where, cells[*date_col]));
      s.dates.push_back(*t);
    }
    s.values.push_back(v);
  }
  if (s.values.empty()) return fail(errc::invalid_argument, fmt::format("{}: no data rows after the header", o.input));
  return s;
}

// The step between dates: calendar months (1, 3 or 12) when the dates fall on month boundaries
// that far apart, else the median gap. The seasonal period follows from it when not given.
struct Step {
  int months = 0;
  automation::Millis fixed{0};
  std::size_t period = 0;
  std::string name = "irregular";
};

Step infer_step(const std::vector<TimePoint>& dates) {
  Step step;
  if (dates.size() < 2) return step;
  std::vector<std::int64_t> gaps;
  for (std::size_t i = 1; i < dates.size(); ++i)
    gaps.push_back(std::chrono::duration_cast<automation::Millis>(dates[i] - dates[i - 1]).count());
  std::nth_element(gaps.begin(), gaps.begin() + static_cast<std::ptrdiff_t>(gaps.size() / 2), gaps.end());
  const std::int64_t median = gaps[gaps.size() / 2];
  constexpr std::int64_t day = 86'400'000, hour = 3'600'000;
  const double days = static_cast<double>(median) / static_cast<double>(day);
  if (days >= 28 && days <= 31)
    step = {1, {}, 12, "monthly"};
  else if (days >= 89 && days <= 92)
    step = {3, {}, 4, "quarterly"};
  else if (days >= 365 && days <= 366)
    step = {12, {}, 1, "yearly"};
  else if (median == day)
    step = {0, automation::Millis(median), 7, "daily"};
  else if (median == 7 * day)
    step = {0, automation::Millis(median), 52, "weekly"};
  else if (median == hour)
    step = {0, automation::Millis(median), 24, "hourly"};
  else
    step = {0, automation::Millis(median), 0, fmt::format("every {}", automation::format_duration(automation::Millis(median)))};
  return step;
}

TimePoint advance(TimePoint from, const Step& step, std::size_t k) {
  if (step.months == 0) return from + step.fixed * static_cast<std::int64_t>(k);
  using namespace std::chrono;
  const auto day = floor<days>(from);
  const auto time_of_day = from - day;
  year_month_day ymd{day};
  ymd += months(step.months * static_cast<int>(k));
  if (!ymd.ok()) ymd = ymd.year() / ymd.month() / last;  // Jan 31 + 1 month = Feb 28/29
  return TimePoint(sys_days{ymd}) + time_of_day;
}

std::string format_date(TimePoint t) {
  using namespace std::chrono;
  const auto day = floor<days>(t);
  if (t == day) {
    const year_month_day ymd{day};
    return fmt::format("{:04}-{:02}-{:02}", static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                       static_cast<unsigned>(ymd.day()));
  }
  return automation::format_timestamp(t);
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
  options.period = o.frequency_given ? o.frequency : step.period;
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
  if (!series->dates.empty() && step.fixed.count() + step.months > 0)
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
      ->check(CLI::Range(1, 10000))
      ->each([o](const std::string&) { o->frequency_given = true; });
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
