#include <automation/core/json.hpp>
#include <automation/core/time.hpp>
#include <automation/forecast/metric_forecaster.hpp>
#include <automation/metrics/aggregator.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <map>

namespace automation::forecast {

namespace bj = boost::json;
using namespace std::chrono;

namespace {

using metrics::date_of_day;
using metrics::day_number;

// MASE's scale: the mean absolute difference at lag `period` (lag 1 when the history is not longer).
std::optional<double> scale_of(std::span<const double> h, std::size_t period) {
  const std::size_t lag = period > 1 && h.size() > period ? period : 1;
  if (h.size() <= lag) return std::nullopt;
  double sum = 0;
  for (std::size_t i = lag; i < h.size(); ++i) sum += std::abs(h[i] - h[i - lag]);
  const double s = sum / static_cast<double>(h.size() - lag);
  if (s == 0) return std::nullopt;
  return s;
}

bj::array insights_json(const std::vector<Insight>& in) {
  bj::array out;
  for (const auto& i : in) out.push_back(bj::object{{"kind", i.kind}, {"text", i.text}, {"value", i.value}});
  return out;
}

}  // namespace

MetricForecaster::MetricForecaster(storage::Store& store, const Clock& clock, Forecaster& forecaster, MetricForecastOptions options)
    : store_(store), clock_(clock), forecaster_(forecaster), options_(std::move(options)) {}

Result<MetricForecast> MetricForecaster::forecast(std::string_view metric, Options options, std::string_view reason) {
  if (auto f = metrics::daily_figure(metric); !f) return f.error();
  if (options_.history_days < 2 || options_.history_days > 3660)
    return fail(errc::invalid_argument, fmt::format("forecast history of {} days: expected 2 to 3,660", options_.history_days));
  const auto today = options_.time_zone.local_date(clock_.now());
  const year_month_day last{sys_days{today} - days{1}};
  const year_month_day first{sys_days{last} - days{static_cast<int>(options_.history_days) - 1}};
  if (options.horizon > 10000) return fail(errc::invalid_argument, fmt::format("a horizon of {} days: at most 10,000", options.horizon));
  metrics::MetricsAggregator agg(store_, clock_, {.time_zone = options_.time_zone});
  auto values = agg.daily_series(metric, first, last);
  if (!values) return values.error();
  // From the first to the last day with data: before it the business (or the ingest) had not begun,
  // after it the data has not arrived yet (a day not yet ingested is not a day of 0).
  const auto has = [](const std::optional<double>& v) { return v.has_value(); };
  const auto begin = std::find_if(values->begin(), values->end(), has);
  const auto end = std::find_if(values->rbegin(), values->rend(), has).base();
  const auto n = begin < end ? static_cast<std::size_t>(end - begin) : 0;
  if (n < 2)
    return fail(errc::invalid_argument,
                fmt::format("{} has {} up to {} (a forecast needs at least 2 days; ingest events or revenue first)", metric,
                            n == 0   ? std::string("no data")
                            : n == 1 ? std::string("data on one day")
                                     : fmt::format("{} days of data", n),
                            metrics::format_date(last)));
  MetricForecast out;
  out.metric = std::string(metric);
  for (auto it = begin; it != end; ++it) out.history.push_back(it->value_or(0.0));
  const auto trailing = static_cast<int>(values->end() - end);
  out.history_last = year_month_day{sys_days{last} - days{trailing}};
  out.history_first = year_month_day{sys_days{out.history_last} - days{static_cast<int>(n) - 1}};
  if (options.period == 0) options.period = 7;  // daily data: a weekly cycle, tested before it is used

  // The metric's previous forecast, for "what changed since".
  std::optional<Forecast> previous;
  std::optional<storage::ForecastRecord> previous_record;
  auto before = store_.list_forecasts({.metric = std::string(metric), .time_zone = options_.time_zone.name(), .limit = 1});
  if (!before) return before.error();
  if (!before->empty()) {
    if (auto doc = json::parse(before->front().document); doc)
      if (auto f = forecast_from_json(*doc); f) {
        previous = std::move(*f);
        previous_record = before->front();
        out.previous = before->front().id;
      }
  }

  auto f = forecaster_.forecast(out.history, options);
  if (!f) return with_context(f.error(), fmt::format("forecasting {}", metric));
  out.forecast = std::move(*f);
  std::vector<std::string> dates;
  for (std::size_t k = 1; k <= out.forecast.mean.size(); ++k) {
    out.days.push_back(year_month_day{sys_days{out.history_last} + days{static_cast<int>(k)}});
    dates.push_back(metrics::format_date(out.days.back()));
  }
  out.insights = insights(out.forecast, out.history, metric);
  // What changed: both forecasts' values for the last day they share (the ends of their horizons
  // are different days when they began on different days or look different distances ahead).
  if (previous && !previous->mean.empty()) {
    const auto first = day_number(out.days.front());
    const auto prev_first = previous_record->first_day;
    const auto last = std::min<std::int64_t>(first + static_cast<std::int64_t>(out.forecast.mean.size()) - 1,
                                             prev_first + static_cast<std::int64_t>(previous->mean.size()) - 1);
    if (last >= first && last >= prev_first) {
      const double before = previous->mean[static_cast<std::size_t>(last - prev_first)];
      const double now = out.forecast.mean[static_cast<std::size_t>(last - first)];
      const double moved = before != 0 ? 100 * (now - before) / std::abs(before) : 0.0;
      out.insights.push_back(
          {"change",
           fmt::format("since the last forecast ({}, {}), the forecast for {} moved {:+.1f} % ({:.6g} to {:.6g}); method "
                       "now {}",
                       previous_record->method, format_timestamp(previous_record->created),
                       metrics::format_date(date_of_day(static_cast<std::int32_t>(last))), moved, before, now,
                       to_string(out.forecast.method)),
           moved});
    }
  }

  storage::ForecastRecord r;
  r.metric = out.metric;
  r.time_zone = options_.time_zone.name();
  r.created = clock_.now();
  r.first_day = day_number(out.days.front());
  r.horizon = static_cast<std::int32_t>(out.days.size());
  r.method = std::string(to_string(out.forecast.method));
  r.backend = out.forecast.backend;
  auto doc = to_json(out.forecast, dates);
  doc["insights"] = insights_json(out.insights);
  r.document = json::dump(doc);
  bj::array levels;
  for (const double l : options.levels) levels.push_back(l);
  const auto scale = scale_of(out.history, options.period);
  r.inputs = json::dump(bj::object{{"first_day", metrics::format_date(out.history_first)},
                                   {"last_day", metrics::format_date(out.history_last)},
                                   {"points", n},
                                   {"period", options.period},
                                   {"method", std::string(to_string(options.method))},
                                   {"levels", std::move(levels)},
                                   {"scale", json::or_null(scale)},
                                   {"last_value", out.history.back()}});
  r.reason = std::string(reason);
  auto id = store_.append_forecast(r);
  if (!id) return with_context(id.error(), fmt::format("storing the forecast of {}", metric));
  out.id = *id;
  return out;
}

Result<MetricAccuracy> MetricForecaster::accuracy(std::string_view metric, std::size_t limit) {
  if (auto f = metrics::daily_figure(metric); !f) return f.error();
  MetricAccuracy out;
  out.metric = std::string(metric);
  const auto zone = options_.time_zone.name();
  auto records = store_.list_forecasts({.metric = std::string(metric), .time_zone = zone, .limit = limit});
  if (!records) return records.error();
  out.forecasts = records->size();
  const auto last = day_number(year_month_day{sys_days{options_.time_zone.local_date(clock_.now())} - days{1}});
  // One read of the actuals for every day any of them predicted that is complete now.
  std::int32_t lo = last + 1;
  for (const auto& r : *records) lo = std::min(lo, r.first_day);
  lo = std::max(lo, last - 3659);
  std::vector<std::optional<double>> actual;
  if (lo <= last) {
    metrics::MetricsAggregator agg(store_, clock_, {.time_zone = options_.time_zone});
    auto v = agg.daily_series(metric, date_of_day(lo), date_of_day(last));
    if (!v) return v.error();
    actual = std::move(*v);
  }
  double abs_sum = 0, smape_sum = 0, scaled_sum = 0;
  std::map<double, std::pair<std::size_t, std::size_t>> inside;  // level -> (inside, compared)
  for (const auto& r : *records) {
    ForecastScore s;
    s.id = r.id;
    s.created = r.created;
    s.method = r.method;
    s.backend = r.backend;
    s.first_day = date_of_day(r.first_day);
    s.horizon = static_cast<std::size_t>(r.horizon);
    auto doc = json::parse(r.document);
    auto f = doc ? forecast_from_json(*doc) : Result<Forecast>(doc.error());
    if (!f) {
      s.note = "cannot be read: " + f.error().message;
      out.scores.push_back(std::move(s));
      continue;
    }
    std::optional<double> scale;
    if (auto in = json::parse(r.inputs); in && in->is_object())
      if (const auto* sc = in->as_object().if_contains("scale"); sc && sc->is_number() && sc->to_number<double>() > 0)
        scale = sc->to_number<double>();
    double abs = 0, sm = 0;
    std::vector<std::size_t> hits(f->intervals.size(), 0);
    const auto to = std::min<std::int64_t>(last, std::int64_t{r.first_day} + r.horizon - 1);
    for (std::int64_t d = std::max(r.first_day, lo); d <= to; ++d) {
      const auto k = static_cast<std::size_t>(d - r.first_day);
      const auto& a = actual[static_cast<std::size_t>(d - lo)];
      if (k >= f->mean.size() || !a) continue;  // a day without data has no actual
      const double p = f->mean[k];
      abs += std::abs(*a - p);
      sm += std::abs(*a) + std::abs(p) == 0 ? 0.0 : 200.0 * std::abs(*a - p) / (std::abs(*a) + std::abs(p));
      for (std::size_t j = 0; j < f->intervals.size(); ++j)
        if (f->intervals[j].lower[k] <= *a && *a <= f->intervals[j].upper[k]) ++hits[j];
      ++s.compared;
    }
    if (s.compared == 0) {
      s.note = r.first_day > last ? "no complete day yet" : "no actuals for its days yet";
      out.scores.push_back(std::move(s));
      continue;
    }
    const auto c = static_cast<double>(s.compared);
    s.mae = abs / c;
    s.smape = sm / c;
    if (scale) s.mase = s.mae / *scale;
    for (std::size_t j = 0; j < f->intervals.size(); ++j) {
      s.coverage.emplace_back(f->intervals[j].level, static_cast<double>(hits[j]) / c);
      auto& [in, n] = inside[f->intervals[j].level];
      in += hits[j];
      n += s.compared;
    }
    ++out.scored;
    out.points += s.compared;
    abs_sum += abs;
    smape_sum += sm;
    if (scale) {
      scaled_sum += abs / *scale;
      out.mase_points += s.compared;
    }
    out.scores.push_back(std::move(s));
  }
  if (out.points) {
    out.mae = abs_sum / static_cast<double>(out.points);
    out.smape = smape_sum / static_cast<double>(out.points);
    if (out.mase_points) out.mase = scaled_sum / static_cast<double>(out.mase_points);
    for (const auto& [level, counts] : inside)
      out.coverage.push_back({level, static_cast<double>(counts.first) / static_cast<double>(counts.second), counts.second});
  }
  return out;
}

}  // namespace automation::forecast
