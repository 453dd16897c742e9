// Core helpers against the closest standard-library baseline.
#include <automation/core/logging.hpp>
#include <automation/core/time.hpp>

#include <detail/log.hpp>

#include <benchmark/benchmark.h>

#include <charconv>
#include <string_view>

using namespace automation;

namespace {

void BM_ParseDuration(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(parse_duration("1h30m15s"));
}
BENCHMARK(BM_ParseDuration);

// Baseline: parsing one integer with std::from_chars.
void BM_FromChars_Baseline(benchmark::State& state) {
  std::string_view s = "5415";
  for (auto _ : state) {
    int v = 0;
    std::from_chars(s.data(), s.data() + s.size(), v);
    benchmark::DoNotOptimize(v);
  }
}
BENCHMARK(BM_FromChars_Baseline);

void BM_ParseTimestamp(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(parse_timestamp("2026-11-23T07:31:12.250+01:00"));
}
BENCHMARK(BM_ParseTimestamp);

// A log call below the configured level must cost next to nothing (no formatting happens).
void BM_LogFiltered(benchmark::State& state) {
  configure_logging({.level = LogLevel::warn, .sink = [](std::string_view) {}});
  int n = 42;
  for (auto _ : state) detail::logf(LogLevel::debug, "bench", "value {}", n);
}
BENCHMARK(BM_LogFiltered);

void BM_LogJsonToSink(benchmark::State& state) {
  std::size_t bytes = 0;
  configure_logging({.level = LogLevel::info, .sink = [&bytes](std::string_view line) { bytes += line.size(); }});
  CorrelationScope scope;
  int n = 42;
  for (auto _ : state) detail::logf(LogLevel::info, "bench", "value {}", n);
  benchmark::DoNotOptimize(bytes);
}
BENCHMARK(BM_LogJsonToSink);

}  // namespace
