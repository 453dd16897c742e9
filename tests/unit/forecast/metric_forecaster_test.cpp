// MetricForecaster: forecasts of stored daily metrics, stored with their inputs, read back, compared
// with the actuals as they arrive, and the next forecast saying what changed.
#include <automation/core/json.hpp>
#include <automation/forecast/metric_forecaster.hpp>
#include <automation/metrics/aggregator.hpp>
#include <automation/storage/memory_store.hpp>
#include <automation/testing/manual_clock.hpp>

#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <cmath>

using namespace automation;
using namespace automation::forecast;
using namespace std::chrono;

namespace {

// Revenue of plan "pro" on each day from `first`: a rising level with a weekly shape.
void add_revenue(metrics::MetricsAggregator& agg, year_month_day first, int days_count, int offset = 0) {
  static constexpr double kShape[] = {0.8, 1.0, 1.1, 1.2, 1.1, 0.9, 0.7};
  std::vector<metrics::RevenueRecord> rows;
  for (int i = 0; i < days_count; ++i) {
    const year_month_day d{sys_days{first} + days{i}};
    const int t = offset + i;
    metrics::RevenueRecord r;
    r.date = d;
    r.plan = "pro";
    r.total_revenue = (1000 + 5.0 * t) * kShape[weekday{sys_days{d}}.c_encoding()];
    r.active_users = 200 + t;
    rows.push_back(r);
  }
  REQUIRE(agg.ingest_revenue(rows));
}

}  // namespace

TEST_CASE("metric forecasts: a stored daily metric is forecast, stored, scored as actuals arrive, and the next says what changed",
          "[forecast]") {
  storage::MemoryStore store;
  testing::ManualClock clock(sys_days{2026y / March / 1} + hours(12));
  metrics::MetricsAggregator agg(store, clock, {});
  add_revenue(agg, 2026y / January / 4, 56);  // to February 28
  Forecaster forecaster(clock);
  MetricForecaster mf(store, clock, forecaster);

  Options o;
  o.horizon = 14;
  auto first = mf.forecast("revenue", o, "test run");
  REQUIRE(first);
  CHECK(first->id > 0);
  CHECK(first->history.size() == 56);
  CHECK(first->history_first == 2026y / January / 4);
  CHECK(first->history_last == 2026y / February / 28);
  REQUIRE(first->days.size() == 14);
  CHECK(first->days.front() == 2026y / March / 1);
  CHECK(first->forecast.seasonality.period == 7);
  CHECK(first->forecast.seasonality.seasonal);
  CHECK_FALSE(first->previous);

  auto stored = store.list_forecasts({.metric = std::string("revenue")}).value();
  REQUIRE(stored.size() == 1);
  const auto& rec = stored[0];
  CHECK(rec.id == first->id);
  CHECK(rec.time_zone == "UTC");
  CHECK(rec.horizon == 14);
  CHECK(rec.method == std::string(to_string(first->forecast.method)));
  CHECK(rec.backend == "statistical");
  CHECK(rec.reason == "test run");
  const auto inputs = json::parse(rec.inputs).value().as_object();
  CHECK(inputs.at("first_day").as_string() == "2026-01-04");
  CHECK(inputs.at("points").to_number<int>() == 56);
  CHECK(inputs.at("scale").to_number<double>() > 0);
  // The stored document reads back as the forecast it was.
  auto back = forecast_from_json(json::parse(rec.document).value()).value();
  CHECK(back.mean == first->forecast.mean);
  REQUIRE(back.intervals.size() == 2);
  CHECK(back.intervals[1].level == 95);
  CHECK(back.intervals[1].upper == first->forecast.intervals[1].upper);
  CHECK(back.method == first->forecast.method);
  CHECK(back.seasonality.period == 7);

  // Forecasting only reads: no rollup is stored or claimed, no aggregation recorded.
  CHECK(store.list_rollups(0).value().empty());
  CHECK(store.query_tasks({.domain = std::string("metrics")}).value().empty());

  // Nothing to compare yet.
  auto none = mf.accuracy("revenue").value();
  CHECK(none.forecasts == 1);
  CHECK(none.scored == 0);
  CHECK(none.points == 0);
  CHECK(none.scores.at(0).note == "no complete day yet");

  // A week later, with its actuals: seven days are compared.
  add_revenue(agg, 2026y / March / 1, 7, 56);
  clock.advance(days(7));
  auto acc = mf.accuracy("revenue").value();
  CHECK(acc.scored == 1);
  CHECK(acc.points == 7);
  REQUIRE(acc.scores.size() == 1);
  CHECK(acc.scores[0].compared == 7);
  // The same figures by hand from the stored forecast and the actuals.
  const auto series = agg.daily_series("revenue", 2026y / March / 1, 2026y / March / 7).value();
  double abs = 0, smape = 0;
  int inside95 = 0;
  for (std::size_t k = 0; k < 7; ++k) {
    const double a = series[k].value();
    abs += std::abs(a - back.mean[k]);
    smape += 200 * std::abs(a - back.mean[k]) / (std::abs(a) + std::abs(back.mean[k]));
    inside95 += back.intervals[1].lower[k] <= a && a <= back.intervals[1].upper[k];
  }
  CHECK(acc.mae == Approx(abs / 7));
  CHECK(acc.smape == Approx(smape / 7));
  CHECK(acc.smape < 10);  // a regular series is forecast well
  REQUIRE(acc.mase);
  CHECK(*acc.mase == Approx(abs / 7 / inputs.at("scale").to_number<double>()));
  REQUIRE(acc.coverage.size() == 2);
  CHECK(acc.coverage[1].level == 95);
  CHECK(acc.coverage[1].share == Approx(inside95 / 7.0));
  CHECK(acc.coverage[1].days == 7);
  CHECK(acc.mase_points == 7);

  // The next forecast knows the previous one and says what changed.
  auto second = mf.forecast("revenue", o, "test run");
  REQUIRE(second);
  CHECK(second->previous == first->id);
  CHECK(second->history.size() == 63);
  // The change is read on the last day both forecasts predict: March 14 (the first ran March 1-14,
  // the second March 8-21).
  const auto change = std::find_if(second->insights.begin(), second->insights.end(), [](const Insight& i) { return i.kind == "change"; });
  REQUIRE(change != second->insights.end());
  CHECK_THAT(change->text, Catch::Contains("the forecast for 2026-03-14 moved"));
  CHECK(change->value == Approx(100 * (second->forecast.mean[6] - back.mean[13]) / std::abs(back.mean[13])));
  auto both = mf.accuracy("revenue").value();
  CHECK(both.forecasts == 2);
  CHECK(both.scored == 1);  // the new one has no actuals yet
  CHECK(both.scores[0].id == second->id);
  CHECK(both.scores[0].compared == 0);

  // users: the active users of the revenue records.
  auto users = mf.forecast("users", o, "test run");
  REQUIRE(users);
  CHECK(users->history.back() == 200 + 62);
}

TEST_CASE("metric forecasts: unknown metrics and metrics without data are refused clearly", "[forecast]") {
  storage::MemoryStore store;
  testing::ManualClock clock(sys_days{2026y / March / 1} + hours(12));
  Forecaster forecaster(clock);
  MetricForecaster mf(store, clock, forecaster);
  auto unknown = mf.forecast("profit", {}, "x");
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().code == errc::invalid_argument);
  CHECK_THAT(unknown.error().message, Catch::Contains("unknown metric \"profit\" (use events, unique_users"));
  auto empty = mf.forecast("usage", {}, "x");
  REQUIRE_FALSE(empty);
  CHECK(empty.error().code == errc::invalid_argument);
  CHECK_THAT(empty.error().message, Catch::Contains("usage has no data up to 2026-02-28 (a forecast needs at least 2 days"));
  CHECK(store.list_forecasts({}).value().empty());
  CHECK(mf.accuracy("profit").error().code == errc::invalid_argument);
  auto nothing = mf.accuracy("usage").value();
  CHECK(nothing.forecasts == 0);
  CHECK_FALSE(forecast_from_json(json::parse(R"({"method":"theta"})").value()));
  CHECK_FALSE(forecast_from_json(json::parse(R"({"method":"nope","predictions":[]})").value()));
}

TEST_CASE("metric forecasts: the history runs from the first to the last day with data, zones and unreadable records are kept apart",
          "[forecast]") {
  storage::MemoryStore store;
  testing::ManualClock clock(sys_days{2026y / March / 1} + hours(12));
  metrics::MetricsAggregator agg(store, clock, {});
  add_revenue(agg, 2026y / January / 4, 54);  // to February 26: the 27th and 28th not ingested yet
  Forecaster forecaster(clock);
  MetricForecaster mf(store, clock, forecaster);
  Options o;
  o.horizon = 7;
  auto f = mf.forecast("revenue", o, "x").value();
  CHECK(f.history_last == 2026y / February / 26);
  CHECK(f.history.size() == 54);
  CHECK(f.days.front() == 2026y / February / 27);  // the forecast covers the days not in yet
  // churn is 0 on every day with revenue records: a series of zeros, not "no data".
  auto churn = mf.forecast("churn", o, "x");
  REQUIRE(churn);
  CHECK(churn->history.size() == 54);
  CHECK(mf.forecast(
              "revenue",
              [] {
                Options big;
                big.horizon = 20000;
                return big;
              }(),
              "x")
            .error()
            .code == errc::invalid_argument);

  // A forecast made in another zone is neither "previous" nor scored here; an unreadable one is noted.
  auto other = store.list_forecasts({.metric = std::string("revenue")}).value().at(0);
  other.time_zone = "Asia/Tokyo";
  REQUIRE(store.append_forecast(other));
  auto broken = store.list_forecasts({.metric = std::string("revenue"), .time_zone = std::string("UTC")}).value().at(0);
  broken.document = R"({"method":"theta","predictions":[{"value":1}]})";
  const auto broken_id = store.append_forecast(broken).value();
  clock.advance(days(3));
  add_revenue(agg, 2026y / February / 27, 3, 54);
  auto a = mf.accuracy("revenue").value();
  CHECK(a.forecasts == 2);  // UTC only
  REQUIRE(a.scores.size() == 2);
  CHECK(a.scores[0].id == broken_id);
  CHECK_THAT(a.scores[0].note, Catch::Contains("cannot be read: stored forecast: prediction 1 has no intervals"));
  CHECK(a.scored == 1);
  CHECK(a.points == 3);  // February 27, 28 and March 1
}
