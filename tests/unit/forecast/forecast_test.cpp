#include <automation/forecast/forecast.hpp>

#include "support/m3.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <numeric>

using automation::errc;
using namespace automation::forecast;
using Catch::Matchers::Contains;

namespace {

Forecast run(const std::vector<double>& y, Method method, std::size_t h, std::size_t period = 1) {
  Options o;
  o.horizon = h;
  o.method = method;
  o.period = period;
  auto f = forecast(y, o);
  REQUIRE(f);
  REQUIRE(f->mean.size() == h);
  return *f;
}

std::vector<double> seasonal_series(std::size_t n, std::size_t m, double noise_amplitude) {
  // A level of 100 with a slow trend, a multiplicative cycle and a deterministic "noise".
  std::vector<double> y(n);
  for (std::size_t t = 0; t < n; ++t) {
    const double cycle = 1 + 0.3 * std::sin(2 * M_PI * static_cast<double>(t) / static_cast<double>(m));
    const double noise = noise_amplitude * std::sin(static_cast<double>(t * t) * 0.7);
    y[t] = (100 + 0.5 * static_cast<double>(t)) * cycle + noise;
  }
  return y;
}

}  // namespace

TEST_CASE("forecast: naive, seasonal naive and linear give the hand-computed values") {
  auto naive = run({4, 7, 5, 9}, Method::naive, 3);
  CHECK(naive.mean == std::vector<double>{9, 9, 9});
  CHECK(naive.method == Method::naive);

  auto snaive = run({1, 2, 3, 4, 5, 6, 7, 8}, Method::seasonal_naive, 6, 4);
  CHECK(snaive.mean == std::vector<double>{5, 6, 7, 8, 5, 6});

  auto linear = run({1, 3, 5, 7}, Method::linear, 2);
  CHECK(linear.mean[0] == Approx(9));
  CHECK(linear.mean[1] == Approx(11));
}

TEST_CASE("forecast: Holt continues an exact line and damped Holt bends it") {
  std::vector<double> line;
  for (int t = 1; t <= 20; ++t) line.push_back(2.0 * t);
  auto holt = run(line, Method::holt, 3);
  CHECK(holt.mean[0] == Approx(42).epsilon(1e-3));
  CHECK(holt.mean[2] == Approx(46).epsilon(1e-3));

  auto damped = run(line, Method::damped, 10);
  CHECK(damped.mean[0] > 40);
  for (std::size_t k = 1; k < 10; ++k) {
    CHECK(damped.mean[k] > damped.mean[k - 1]);                                                                   // still rising
    CHECK(damped.mean[k] - damped.mean[k - 1] <= damped.mean[k - 1] - (k > 1 ? damped.mean[k - 2] : 40) + 1e-9);  // slower
  }
  CHECK(damped.mean[9] < 60);
}

TEST_CASE("forecast: SES forecasts a flat line at its last level") {
  auto ses = run({10, 12, 11, 13, 12, 14, 13}, Method::ses, 4);
  CHECK(ses.mean[0] == ses.mean[3]);
  CHECK(ses.mean[0] > 10);
  CHECK(ses.mean[0] < 14);
  CHECK_THAT(ses.detail, Contains("ses(alpha="));
}

TEST_CASE("forecast: Theta on a line is half the trend added to the last value") {
  // The theta = 2 line of an exact line is the line itself; SES of it with alpha near 1 sits at the
  // last value, and the regression line continues: the mean of both.
  std::vector<double> line;
  for (int t = 0; t < 30; ++t) line.push_back(100 + 3.0 * t);
  auto theta = run(line, Method::theta, 4);
  for (std::size_t k = 0; k < 4; ++k) {
    const double regression = 100 + 3.0 * static_cast<double>(30 + k);
    CHECK(theta.mean[k] == Approx((regression + line.back()) / 2).epsilon(0.01));
  }
  auto otm = run(line, Method::optimised_theta, 4);
  CHECK_THAT(otm.detail, Contains("otm(theta="));
}

TEST_CASE("forecast: Holt-Winters follows a seasonal pattern") {
  std::vector<double> y;
  const double season[] = {10, -5, 20, -25};
  for (int t = 0; t < 40; ++t) y.push_back(200 + 2.0 * t + season[t % 4]);
  auto hw = run(y, Method::holt_winters_additive, 8, 4);
  for (std::size_t k = 0; k < 8; ++k)
    CHECK(hw.mean[k] == Approx(200 + 2.0 * static_cast<double>(40 + k) + season[(40 + k) % 4]).epsilon(0.02));
  auto hwm = run(y, Method::holt_winters_multiplicative, 8, 4);
  CHECK(hwm.mean[2] > hwm.mean[1]);  // the peak position stays the peak
  CHECK(hwm.mean[3] < hwm.mean[0]);
}

TEST_CASE("forecast: seasonality is tested, detected and used") {
  const auto y = seasonal_series(96, 12, 1.0);
  auto given = detect_seasonality(y, 12);
  CHECK(given.seasonal);
  CHECK(given.period == 12);
  CHECK(given.indices.size() == 12);
  CHECK(given.multiplicative);
  CHECK_THAT(given.reason, Contains("exceeds the 90 % bound"));

  auto detected = detect_seasonality(y, 0);
  CHECK(detected.period == 12);
  CHECK(detected.seasonal);

  std::vector<double> weekly;  // daily data with a weekly cycle
  for (int t = 0; t < 70; ++t) weekly.push_back(50 + (t % 7 == 5 || t % 7 == 6 ? 30 : 0) + (t % 3));
  CHECK(detect_seasonality(weekly, 0).period == 7);

  std::vector<double> noise;
  for (int t = 0; t < 60; ++t) noise.push_back(100 + std::fmod(t * 7919.0, 13.0));
  auto none = detect_seasonality(noise, 12);
  CHECK_FALSE(none.seasonal);
  CHECK(none.period == 1);

  auto too_short = detect_seasonality(seasonal_series(20, 12, 0), 12);
  CHECK_FALSE(too_short.seasonal);
  CHECK_THAT(too_short.reason, Contains("at least 36 values"));

  // The combination works on the adjusted series and puts the season back.
  Options o;
  o.horizon = 12;
  o.period = 12;
  auto f = forecast(y, o);
  REQUIRE(f);
  CHECK_THAT(f->detail, Contains("seasonally adjusted"));
  const auto peak = std::max_element(f->mean.begin(), f->mean.end()) - f->mean.begin();
  CHECK(std::abs(static_cast<double>(peak) - 3.0) <= 1.0);  // sin peaks at t = 99 (= 96 + 3)
}

TEST_CASE("forecast: intervals contain the mean, nest by level and widen with the horizon") {
  const auto y = seasonal_series(60, 12, 8.0);
  Options o;
  o.horizon = 24;
  o.levels = {50, 80, 95};
  for (Method m : all_methods()) {
    o.method = m;
    o.period = 12;
    auto f = forecast(y, o);
    REQUIRE(f);
    INFO(to_string(m));
    REQUIRE(f->intervals.size() == 3);
    CHECK(f->intervals[2].level == 95);
    for (std::size_t k = 0; k < o.horizon; ++k) {
      CHECK(f->intervals[0].lower[k] <= f->mean[k]);
      CHECK(f->intervals[0].upper[k] >= f->mean[k]);
      CHECK(f->intervals[1].lower[k] <= f->intervals[0].lower[k]);
      CHECK(f->intervals[2].lower[k] <= f->intervals[1].lower[k]);
      CHECK(f->intervals[1].upper[k] >= f->intervals[0].upper[k]);
      CHECK(f->intervals[2].upper[k] >= f->intervals[1].upper[k]);
    }
    const auto width = [&](std::size_t k) { return (f->intervals[2].upper[k] - f->intervals[2].lower[k]) / f->mean[k]; };
    CHECK(width(23) > width(0));
  }
}

TEST_CASE("forecast: degenerate input gets a clear error or a documented fallback") {
  Options o;
  o.horizon = 3;
  CHECK(forecast(std::vector<double>{}, o).error().message == "the history is empty: nothing to forecast from");
  auto zero = o;
  zero.horizon = 0;
  CHECK(forecast(std::vector<double>{1, 2}, zero).error().is(errc::invalid_argument));
  auto bad_level = o;
  bad_level.levels = {95, 100};
  CHECK_THAT(forecast(std::vector<double>{1, 2}, bad_level).error().message, Contains("levels: 100"));

  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto gap = forecast(std::vector<double>{1, 2, nan, 4, 5}, o);
  REQUIRE_FALSE(gap);
  CHECK_THAT(gap.error().message, Contains("index 2 is missing"));
  CHECK_THAT(forecast(std::vector<double>{1, std::numeric_limits<double>::infinity()}, o).error().message, Contains("index 1"));
  auto filled_options = o;
  filled_options.gaps = Gaps::interpolate;
  filled_options.method = Method::naive;
  auto filled = forecast(std::vector<double>{1, 2, nan, nan, 5, nan}, filled_options);
  REQUIRE(filled);
  CHECK(filled->mean[0] == 5);  // the trailing gap repeats the last value
  CHECK_THAT(filled->notes.at(0), Contains("3 missing value(s) filled"));

  auto constant = run({7, 7, 7, 7, 7, 7}, Method::automatic, 3);
  CHECK(constant.method == Method::naive);
  CHECK(constant.mean == std::vector<double>{7, 7, 7});
  CHECK(constant.intervals[1].lower[2] == 7);
  CHECK_THAT(constant.notes.at(0), Contains("constant"));

  // Two values: too few for the forecaster's own errors; the spread of the change is used instead.
  auto two = run({10, 12}, Method::automatic, 3);
  CHECK(two.intervals[1].upper[0] > two.mean[0]);
  CHECK(two.intervals[1].upper[2] - two.intervals[1].lower[2] > two.intervals[1].upper[0] - two.intervals[1].lower[0]);
  CHECK_THAT(two.notes.back(), Contains("the spread of the changes"));

  auto no_detection = o;
  no_detection.max_detected_period = 1;
  CHECK_THAT(forecast(std::vector<double>{1, 2, 3}, no_detection).error().message, Contains("max_detected_period"));

  auto one = run({42}, Method::automatic, 2);
  CHECK(one.method == Method::naive);
  CHECK(one.mean == std::vector<double>{42, 42});
  CHECK_THAT(one.notes.at(0), Contains("at least 2 values"));

  auto short_hw = run({1, 2, 3, 4, 5}, Method::holt_winters_additive, 2, 4);
  CHECK(short_hw.method == Method::damped);
  CHECK_THAT(short_hw.notes.at(0), Contains("hw_additive needs at least 10 values"));

  // Values at or below zero: additive seasonality, absolute (symmetric) intervals, no multiplicative HW.
  std::vector<double> negative;
  for (int t = 0; t < 48; ++t) negative.push_back(-5 + 10 * std::sin(t * M_PI / 6) + 0.1 * t);
  auto f = run(negative, Method::automatic, 6, 12);
  CHECK(f.seasonality.seasonal);
  CHECK_FALSE(f.seasonality.multiplicative);
  const auto& iv = f.intervals[1];
  CHECK(iv.upper[0] - f.mean[0] == Approx(f.mean[0] - iv.lower[0]));
  auto hwm = run(negative, Method::holt_winters_multiplicative, 6, 12);
  CHECK(hwm.method == Method::holt_winters_additive);
  CHECK(hwm.seasonality.seasonal);  // a seasonal method given a period reports that season
  CHECK(hwm.seasonality.period == 12);
  CHECK_THAT(hwm.seasonality.reason, Contains("period 12 given to hw_multiplicative"));
}

TEST_CASE("forecast: method names round-trip and unknown ones are named") {
  for (Method m : all_methods()) CHECK(parse_method(to_string(m)).value() == m);
  CHECK_THAT(parse_method("arima").error().message, Contains("unknown method \"arima\" (use auto, combination,"));
}

TEST_CASE("forecast: accuracy uses the M4 definitions") {
  const std::vector<double> insample{10, 12, 11, 13};  // mean |x_t - x_{t-1}| = (2 + 1 + 2) / 3
  const std::vector<double> actual{14, 10};
  const std::vector<double> mean{12, 12};
  Interval iv{95, {11, 11}, {13, 13}};
  auto a = accuracy(insample, actual, mean, 1, &iv);
  CHECK(a.smape == Approx(100.0 / 2 * (2 * 2.0 / 26 + 2 * 2.0 / 22)));
  CHECK(a.mase == Approx(2.0 / (5.0 / 3)));
  // MSIS: width 2 each step plus 40 * 1 for each miss, averaged, over the scale.
  CHECK(a.msis == Approx((2 + 40 + 2 + 40) / 2.0 / (5.0 / 3)));
  CHECK(a.coverage == 0);

  // A constant history has no scale: MASE and MSIS are not numbers rather than a perfect 0.
  auto flat = accuracy(std::vector<double>{5, 5, 5}, actual, mean, 1, &iv);
  CHECK(std::isnan(flat.mase));
  CHECK(std::isnan(flat.msis));
  CHECK(flat.smape == Approx(a.smape));
}

TEST_CASE("forecast: insights name the trend, the season, the certainty and the change") {
  const auto y = seasonal_series(96, 12, 1.0);
  Options o;
  o.horizon = 12;
  o.period = 12;
  auto f = forecast(y, o).value();
  auto list = insights(f, y, "revenue");
  REQUIRE(list.size() == 3);
  CHECK(list[0].kind == "trend");
  CHECK_THAT(list[0].text, Contains("revenue is trending upward"));
  CHECK(list[0].value > 0);
  CHECK(list[1].kind == "seasonality");
  CHECK(list[1].value == 12);
  CHECK(list[2].kind == "certainty");
  CHECK_THAT(list[2].text, Contains("95 % interval at step 12"));

  auto previous = f;
  for (double& v : previous.mean) v *= 0.9;
  // Missing values at the end of the history (filled for the forecast) do not poison the trend.
  auto gappy = y;
  gappy.back() = std::numeric_limits<double>::quiet_NaN();
  auto filled_trend = insights(f, gappy, "revenue").at(0);
  CHECK(std::isfinite(filled_trend.value));
  CHECK_THAT(filled_trend.text, Contains("trending upward"));

  // A horizon that is not whole seasons is set against the same points of the last cycle, so where
  // it falls in the cycle does not turn a rising series "downward".
  const auto daily = seasonal_series(98, 7, 0.0);
  for (std::size_t horizon = 1; horizon <= 15; ++horizon) {
    Options d;
    d.horizon = horizon;
    d.period = 7;
    const auto fd = forecast(daily, d).value();
    REQUIRE(fd.seasonality.seasonal);
    const auto trend = insights(fd, daily, "usage").at(0);
    INFO(trend.text);
    CHECK_THAT(trend.text, Contains("usage is trending upward") && Contains("on the same points of the last cycle of 7"));
  }

  auto with_change = insights(f, y, "revenue", &previous);
  REQUIRE(with_change.size() == 4);
  CHECK(with_change[3].kind == "change");
  CHECK(with_change[3].value == Approx(100.0 / 0.9 - 100));
}

TEST_CASE("forecast: a subset of M3 keeps its accuracy and calibration (regression bound)") {
  // Every 10th series of the competition (301 of 3,003). The bounds pin today's figures with a
  // small margin: sMAPE 12.76, MASE 1.387, OWA 0.860, 95 % coverage 94.3 %.
  const auto series = m3::load(m3::data_dir(AUTOMATION_SOURCE_DIR) / "m3" / "m3.csv");
  REQUIRE(series.size() == 3003);
  const auto combination = m3::evaluate(series, Method::automatic, 10).at("ALL");
  const auto theta = m3::evaluate(series, Method::theta, 10).at("ALL");
  CHECK(combination.n == 301);
  CHECK(combination.mean_smape() < 12.9);
  CHECK(combination.mean_mase() < 1.40);
  CHECK(combination.owa() < 0.87);
  CHECK(combination.owa() < theta.owa());
  CHECK(combination.coverage() > 92.0);
  CHECK(combination.coverage() < 97.0);
  CHECK(combination.mean_msis() < 12.7);
}
