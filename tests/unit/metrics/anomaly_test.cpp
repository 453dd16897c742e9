// AnomalyDetector: its signals on synthetic series, its errors, and its score on the Numenta Anomaly
// Benchmark with NAB's own scoring (tests/support/nab.hpp), which is itself checked by hand-computed
// cases and against the published score of NAB's windowed Gaussian baseline.
#include <automation/metrics/anomaly.hpp>

#include "support/nab.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <optional>
#include <vector>

using namespace automation;
using metrics::AnomalyDetector;
using metrics::AnomalyOptions;
using metrics::AnomalySignal;

namespace {

const std::filesystem::path& nab_dir() {
  static const auto dir = nab::data_dir(AUTOMATION_SOURCE_DIR) / "nab";
  return dir;
}

const std::vector<nab::Series>& corpus() { return nab::corpus(AUTOMATION_SOURCE_DIR); }

TimePoint at_minute(std::int64_t minutes) { return TimePoint(std::chrono::minutes(minutes)); }

/// A deterministic noise source in [-1, 1].
struct Noise {
  std::uint64_t state = 42;
  double operator()() {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<double>(state >> 11) / static_cast<double>(1ULL << 53) * 2.0 - 1.0;
  }
};

/// A daily pattern sampled every 5 minutes: 50 + 20 sin(time of day) + noise.
double daily(std::int64_t i, Noise& noise) {
  const double phase = 2.0 * M_PI * static_cast<double>(i % 288) / 288.0;
  return 50.0 + 20.0 * std::sin(phase) + noise();
}

}  // namespace

TEST_CASE("NAB scoring: a detection at a window's start scores 100, none scores 0") {
  nab::Series s;
  s.name = "synthetic.csv";
  for (std::int64_t i = 0; i < 2000; ++i) s.time.push_back(i * 300), s.value.push_back(0);
  s.windows = {{1000, 1099}};
  REQUIRE(nab::probation_rows(s.value.size()) == 300);
  const std::vector<nab::Series> one{s};
  auto with = [&](std::initializer_list<std::size_t> rows) {
    std::vector<double> scores(s.value.size(), 0.0);
    for (auto r : rows) scores[r] = 1.0;
    return nab::score(one, {scores}, nab::kStandard);
  };
  CHECK(with({1000}).normalized == Approx(100));
  CHECK(with({}).normalized == Approx(0));
  CHECK(with({100, 1000}).normalized == Approx(100));  // a detection in probation is not scored
  // A false positive before the first window costs A_FP = 0.11 of a raw score spanning 2.
  const auto fp = with({500, 1000});
  CHECK(fp.normalized == Approx(100 * (2 - 0.11) / 2));
  CHECK(fp.fp_rows == 1);
  CHECK(fp.detected_windows == 1);
  // At the window's last row the reward is scaledSigmoid(-1/100) / scaledSigmoid(-1).
  const double late = (2 / (1 + std::exp(-0.05)) - 1) / (2 / (1 + std::exp(-5.0)) - 1);
  CHECK(with({1099}).normalized == Approx(100 * (1 + late) / 2));
  // Only the earliest detection in a window counts.
  CHECK(with({1050, 1099}).normalized == Approx(with({1050}).normalized));
  // Just after the window a false positive costs almost nothing; far after it, the full A_FP.
  CHECK(with({1000, 1100}).normalized == Approx(100 * (2 - 0.11 * (1 - 2 / (1 + std::exp(5.0 / 99)))) / 2));
  CHECK(with({1000, 1999}).normalized == Approx(100 * (2 - 0.11) / 2).epsilon(0.001));
}

TEST_CASE("NAB scoring reproduces the published score of NAB's windowed Gaussian baseline") {
  std::vector<std::vector<double>> scores;
  for (const auto& s : corpus()) scores.push_back(nab::windowed_gaussian(s));
  const auto r = nab::score(corpus(), scores, nab::kStandard);
  CHECK(r.windows == 116);
  // 40.13 here against the published 39.65 (NAB's published runs predate its current sweeper).
  CHECK(r.normalized == Approx(nab::published(nab_dir(), "windowedGaussian")).margin(1.0));
  CHECK(r.normalized == Approx(40.13).margin(0.02));
}

TEST_CASE("AnomalyDetector scores above 70 on the Numenta Anomaly Benchmark at its default threshold") {
  const auto scores = nab::detector_scores(corpus());
  const auto fixed = nab::score(corpus(), scores, nab::kStandard, AnomalyOptions{}.threshold);
  const auto best = nab::score(corpus(), scores, nab::kStandard);
  INFO("standard " << fixed.normalized << ", optimised threshold " << best.threshold << " scores " << best.normalized << ", windows "
                   << fixed.detected_windows << "/" << fixed.windows << ", FP rows " << fixed.fp_rows);
  CHECK(fixed.normalized > 70.0);
  CHECK(fixed.normalized > nab::published(nab_dir(), "numenta"));
  CHECK(best.normalized - fixed.normalized < 1.0);  // the default threshold is near the best one
  CHECK(nab::score(corpus(), scores, nab::kRewardLowFn, AnomalyOptions{}.threshold).normalized >
        nab::published(nab_dir(), "numenta", "reward_low_FN_rate"));
}

TEST_CASE("AnomalyDetector: a value beyond the range seen is a new extreme, and one incident alerts once") {
  AnomalyOptions o;
  o.learning_points = 600;
  AnomalyDetector d(o);
  Noise noise;
  std::int64_t i = 0;
  for (; i < 1000; ++i) {
    auto r = d.update(at_minute(5 * i), daily(i, noise));
    REQUIRE(r);
    CHECK(r->learning == (i < 600));
    CHECK_FALSE(r->anomaly);
  }
  auto spike = d.update(at_minute(5 * i), 120.0);
  REQUIRE(spike);
  CHECK(spike->anomaly);
  CHECK(spike->score == 1.0);
  CHECK(spike->signal == AnomalySignal::new_extreme);
  CHECK(spike->why().find("above the highest value seen before") != std::string::npos);
  ++i;
  // A second spike soon after is suppressed: scored 0, flagged, not counted.
  auto again = d.update(at_minute(5 * i), 140.0);
  REQUIRE(again);
  CHECK_FALSE(again->anomaly);
  CHECK(again->suppressed);
  CHECK(again->score == 0);
  CHECK(again->raw_score == 1.0);
  CHECK(d.anomalies() == 1);
  // After the suppression period (learning / 5 points) a new extreme alerts again.
  for (++i; i < 1000 + 2 + 120; ++i) REQUIRE(d.update(at_minute(5 * i), daily(i, noise)));
  auto later = d.update(at_minute(5 * i), -40.0);
  REQUIRE(later);
  CHECK(later->anomaly);
  CHECK(later->why().find("below the lowest") != std::string::npos);
  CHECK(d.anomalies() == 2);
}

TEST_CASE("AnomalyDetector: the first change of a series constant so far is a new extreme, at that point") {
  AnomalyOptions o;
  o.learning_points = 20;
  AnomalyDetector d(o);
  for (std::int64_t i = 0; i < 100; ++i) {
    auto r = d.update(at_minute(1440 * i), 0.0);
    REQUIRE(r);
    CHECK_FALSE(r->anomaly);
  }
  auto first = d.update(at_minute(1440 * 100), 50.0);
  REQUIRE(first);
  CHECK(first->anomaly);
  CHECK(first->signal == AnomalySignal::new_extreme);
}

TEST_CASE("AnomalyDetector: a regular daily pattern raises nothing, a day that breaks it does") {
  AnomalyOptions o;
  o.learning_points = 750;
  AnomalyDetector d(o);
  Noise noise;
  std::size_t before = 0;
  std::int64_t i = 0;
  for (; i < 288 * 10; ++i) {
    auto r = d.update(at_minute(5 * i), daily(i, noise));
    REQUIRE(r);
    before += r->anomaly;
  }
  CHECK(before == 0);
  // On day 11 the value stays at its midnight level through the morning peak: every value is
  // inside the range seen, but not at this time of day.
  bool found = false;
  AnomalySignal signal = AnomalySignal::none;
  for (; i < 288 * 10 + 144; ++i) {
    auto r = d.update(at_minute(5 * i), 50.0 + noise());
    REQUIRE(r);
    if (r->anomaly && !found) found = true, signal = r->signal;
  }
  CHECK(found);
  CHECK(signal == AnomalySignal::time_of_day);
}

namespace {

/// Midnight UTC of the Monday `day` days after 1970-01-05 (a Monday), plus `minutes`.
TimePoint monday_plus(std::int64_t day, std::int64_t minutes = 0) { return at_minute((4 + day) * 1440 + minutes); }
bool weekend(std::int64_t day) { return day % 7 >= 5; }

}  // namespace

TEST_CASE("AnomalyDetector: a daily series with a weekly pattern raises nothing, weekdays at the weekend level do") {
  // Weekdays about 100, weekends about 40, for 26 weeks; four of them learnt.
  AnomalyOptions o;
  o.learning_points = 28;
  AnomalyDetector d(o);
  Noise noise;
  std::int64_t day = 0;
  std::vector<double> values;
  for (; day < 26 * 7; ++day) {
    values.push_back((weekend(day) ? 40.0 : 100.0) + 4 * noise());
    auto r = d.update(monday_plus(day), values.back());
    REQUIRE(r);
    CHECK_FALSE(r->anomaly);
    // The sampling interval is known after 8 intervals; the values before it seed the lag.
    if (day >= 8) CHECK(r->week_ago == values[static_cast<std::size_t>(day - 7)]);
    CHECK(std::isnan(r->day_ago));  // a daily series has no time of day
  }
  // Wednesday and Thursday of week 27 look like a weekend: inside the range, but not on those days.
  std::optional<metrics::AnomalyScore> found;
  for (; day < 27 * 7; ++day) {
    const bool broken = day % 7 == 2 || day % 7 == 3;
    auto r = d.update(monday_plus(day), (broken || weekend(day) ? 40.0 : 100.0) + 4 * noise());
    REQUIRE(r);
    if (r->anomaly && !found) found = *r;
  }
  REQUIRE(found);
  CHECK(found->time <= monday_plus(26 * 7 + 3));
  CHECK(found->signal == AnomalySignal::time_of_week);
  CHECK(found->why().find("not been seen at this time of the week") != std::string::npos);
}

TEST_CASE("AnomalyDetector: an hourly series with quiet weekends raises nothing, a Monday as quiet as a Sunday does") {
  // Weekdays follow a daily curve between 50 and 90, weekends stay near 45; three weeks learnt.
  const auto value = [](std::int64_t hour, Noise& noise) {
    const std::int64_t day = hour / 24;
    return (weekend(day) ? 45.0 : 50.0 + 40.0 * std::sin(M_PI * static_cast<double>(hour % 24) / 24.0)) + 3 * noise();
  };
  AnomalyOptions o;
  o.learning_points = 3 * 7 * 24;
  AnomalyDetector d(o);
  Noise noise;
  std::int64_t hour = 0;
  std::vector<double> values;
  for (; hour < 12 * 7 * 24; ++hour) {
    values.push_back(value(hour, noise));
    auto r = d.update(monday_plus(0, 60 * hour), values.back());
    REQUIRE(r);
    CHECK_FALSE(r->anomaly);
    if (hour >= 24) CHECK(r->day_ago == values[static_cast<std::size_t>(hour - 24)]);
    if (hour >= 7 * 24) CHECK(r->week_ago == values[static_cast<std::size_t>(hour - 7 * 24)]);
  }
  std::optional<metrics::AnomalyScore> found;
  for (; hour < 12 * 7 * 24 + 24; ++hour) {
    auto r = d.update(monday_plus(0, 60 * hour), 45.0 + 3 * noise());
    REQUIRE(r);
    if (r->anomaly && !found) found = *r;
  }
  REQUIRE(found);
  CHECK(found->signal == AnomalySignal::time_of_week);
  CHECK(std::isfinite(found->day_ago));
  CHECK(std::isfinite(found->week_ago));
}

TEST_CASE("AnomalyDetector: time of day follows the configured zone across a DST change") {
  // Office hours in New York: high from 09:00 to 17:00 local time, low otherwise. When DST starts
  // (2026-03-08) the pattern moves an hour earlier in UTC; in the local zone it does not move.
  const auto ny = TimeZone::locate("America/New_York").value();
  auto run = [&](const TimeZone& zone) {
    AnomalyOptions o;
    o.time_zone = zone;
    AnomalyDetector d(o);
    Noise noise;
    const TimePoint start = parse_timestamp("2026-02-01T05:00:00Z").value();
    std::size_t by_time_of_day = 0;
    for (std::int64_t i = 0; i < 288 * 42; ++i) {
      const TimePoint t = start + std::chrono::minutes(5 * i);
      const auto local = ny.to_local(t);
      const auto hour = std::chrono::floor<std::chrono::hours>(local - std::chrono::floor<std::chrono::days>(local));
      const double v = (hour.count() >= 9 && hour.count() < 17 ? 100.0 : 10.0) + noise();
      auto r = d.update(t, v);
      REQUIRE(r);
      by_time_of_day += r->anomaly && (r->signal == AnomalySignal::time_of_day || r->signal == AnomalySignal::time_of_week);
    }
    return by_time_of_day;
  };
  CHECK(run(ny) == 0);
  CHECK(run(TimeZone()) > 0);
}

TEST_CASE("AnomalyDetector: bad options and bad values are refused, naming what is wrong") {
  auto with = [](auto change) {
    AnomalyOptions o;
    change(o);
    return AnomalyDetector::create(o);
  };
  auto r = with([](AnomalyOptions& o) { o.threshold = 0; });
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("threshold 0") != std::string::npos);
  CHECK(with([](AnomalyOptions& o) { o.levels = 20; }).error().message.find("levels 20") != std::string::npos);
  CHECK(with([](AnomalyOptions& o) { o.context = 0; }).error().message.find("context 0") != std::string::npos);
  CHECK(with([](AnomalyOptions& o) { o.learning_points = 1; }).error().message.find("learning_points") != std::string::npos);
  CHECK(with([](AnomalyOptions& o) { o.day_buckets = 2000; }).error().is(errc::invalid_argument));
  AnomalyOptions bad;
  bad.averaging = 0;
  CHECK_THROWS_AS(AnomalyDetector(bad), Exception);

  AnomalyDetector d;
  REQUIRE(d.update(at_minute(0), 1.0));
  auto nan = d.update(at_minute(5), std::nan(""));
  REQUIRE_FALSE(nan);
  CHECK(nan.error().is(errc::invalid_argument));
  CHECK(nan.error().message.find("1970-01-01T00:05:00Z") != std::string::npos);
  CHECK(d.points() == 1);
  // A repeated or earlier time is accepted (collectors repeat hours).
  CHECK(d.update(at_minute(0), 2.0));
  CHECK(d.points() == 2);

  std::vector<metrics::SeriesPoint> series{{at_minute(0), 1.0}, {at_minute(5), INFINITY}};
  auto all = metrics::detect_anomalies(series);
  REQUIRE_FALSE(all);
  CHECK(all.error().message.find("point 1") != std::string::npos);
  series[1].value = 2.0;
  auto ok = metrics::detect_anomalies(series);
  REQUIRE(ok);
  CHECK(ok->size() == 2);
  CHECK(ok->at(0).learning);
}
