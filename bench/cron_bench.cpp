// CronExpression::next() for common expressions, in UTC and in a zone with DST, against a baseline
// that scans minute by minute (what a naive scheduler does) for the same expression.
#include <automation/core/time.hpp>
#include <automation/workflow/cron.hpp>

#include <benchmark/benchmark.h>

using namespace automation;
using automation::workflow::CronExpression;

namespace {

const TimePoint kStart = parse_timestamp("2026-11-23T07:31:12Z").value();

void run_next(benchmark::State& state, const char* expr, const char* zone) {
  const auto e = CronExpression::parse(expr).value();
  const auto tz = TimeZone::locate(zone).value();
  TimePoint t = kStart;
  for (auto _ : state) {
    auto n = e.next(t, tz);
    benchmark::DoNotOptimize(n);
    // Walk forward so every call starts from a different time (and never runs off the calendar).
    t = n ? *n : kStart;
    if (t > kStart + std::chrono::hours(24 * 365 * 20)) t = kStart;
  }
}

void BM_CronNext_Every5Min_UTC(benchmark::State& s) { run_next(s, "*/5 * * * *", "UTC"); }
void BM_CronNext_Daily0300_Berlin(benchmark::State& s) { run_next(s, "0 3 * * *", "Europe/Berlin"); }
void BM_CronNext_Weekdays0830_NewYork(benchmark::State& s) { run_next(s, "30 8 * * MON-FRI", "America/New_York"); }
void BM_CronNext_Every5Min_NewYork(benchmark::State& s) { run_next(s, "*/5 * * * *", "America/New_York"); }
void BM_CronNext_LastFriday_UTC(benchmark::State& s) { run_next(s, "0 0 ? * 5L", "UTC"); }
void BM_CronNext_Natural_UTC(benchmark::State& s) { run_next(s, "mondays at 09:00", "UTC"); }
BENCHMARK(BM_CronNext_Every5Min_UTC);
BENCHMARK(BM_CronNext_Daily0300_Berlin);
BENCHMARK(BM_CronNext_Weekdays0830_NewYork);
BENCHMARK(BM_CronNext_Every5Min_NewYork);
BENCHMARK(BM_CronNext_LastFriday_UTC);
BENCHMARK(BM_CronNext_Natural_UTC);

// Baseline: "0 3 * * *" in Europe/Berlin found by stepping one minute at a time through local
// time (TimeZone::to_local) until hour 3, minute 0 matches.
void BM_CronNext_MinuteScan_Baseline(benchmark::State& state) {
  const auto tz = TimeZone::locate("Europe/Berlin").value();
  TimePoint t = kStart;
  for (auto _ : state) {
    TimePoint c = std::chrono::floor<std::chrono::minutes>(t) + std::chrono::minutes(1);
    for (;; c += std::chrono::minutes(1)) {
      const auto local = std::chrono::floor<std::chrono::minutes>(tz.to_local(c)).time_since_epoch().count();
      const auto minute_of_day = ((local % 1440) + 1440) % 1440;
      if (minute_of_day == 3 * 60) break;
    }
    benchmark::DoNotOptimize(c);
    t = c;
  }
}
BENCHMARK(BM_CronNext_MinuteScan_Baseline);

void BM_CronParse(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(CronExpression::parse("*/5 9-17 * * MON-FRI"));
}
BENCHMARK(BM_CronParse);

}  // namespace
