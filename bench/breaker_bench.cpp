// CircuitBreaker overhead against a direct call of the same function in the same binary.
// Published anchors: resilience4j ~320 ns and 272 B per call, Polly v8 ~138 ns, gobreaker ~200 ns.
#include <automation/core/clock.hpp>
#include <automation/resilience/circuit_breaker.hpp>

#include "alloc_counter.hpp"

#include <benchmark/benchmark.h>

using namespace automation;
using namespace automation::resilience;

namespace {

// The protected work: cheap and opaque to the optimizer.
[[gnu::noinline]] int protected_call(int x) {
  benchmark::DoNotOptimize(x);
  return x + 1;
}

void report_allocations(benchmark::State& state, std::uint64_t before) {
  // The allocation counter is process-wide: each of N threads sees every thread's allocations, and
  // the per-thread values are summed, so divide by N.
  state.counters["allocs_per_call"] =
      benchmark::Counter(static_cast<double>(bench::g_allocations.load() - before) / state.threads(), benchmark::Counter::kAvgIterations);
}

void BM_DirectCall_Baseline(benchmark::State& state) {
  int x = 0;
  const auto before = bench::g_allocations.load();
  for (auto _ : state) x = protected_call(x);
  report_allocations(state, before);
}
BENCHMARK(BM_DirectCall_Baseline);
BENCHMARK(BM_DirectCall_Baseline)->Threads(8);

CircuitBreaker& closed_breaker() {
  static CircuitBreaker cb("bench-closed", BreakerConfig{}, SystemClock::instance());
  return cb;
}

// Admitted calls through `cb`, each reported a success.
void run_closed(benchmark::State& state, CircuitBreaker& cb) {
  int x = 0;
  const auto before = bench::g_allocations.load();
  for (auto _ : state) {
    auto p = cb.try_acquire();
    if (!p) {
      state.SkipWithError("rejected: the breaker is not closed");
      break;
    }
    x = protected_call(x);
    p.success();
  }
  report_allocations(state, before);
}

void BM_Breaker_ClosedAdmitted(benchmark::State& state) { run_closed(state, closed_breaker()); }
BENCHMARK(BM_Breaker_ClosedAdmitted);
BENCHMARK(BM_Breaker_ClosedAdmitted)->Threads(8);

// A time-based window records under the breaker's mutex (the count window is lock-free).
void BM_Breaker_ClosedAdmitted_TimeWindow(benchmark::State& state) {
  static CircuitBreaker cb(
      "bench-closed-time",
      [] {
        BreakerConfig c;
        c.window = BreakerConfig::Window::time;
        c.window_size = 10;
        return c;
      }(),
      SystemClock::instance());
  run_closed(state, cb);
}
BENCHMARK(BM_Breaker_ClosedAdmitted_TimeWindow);
BENCHMARK(BM_Breaker_ClosedAdmitted_TimeWindow)->Threads(8);

CircuitBreaker& open_breaker() {
  static CircuitBreaker* cb = [] {
    BreakerConfig c;
    c.open_duration.base = std::chrono::hours(24);
    c.open_duration.max = std::chrono::hours(24);
    auto* b = new CircuitBreaker("bench-open", c, SystemClock::instance());
    if (!b->transition_to(BreakerState::open, "bench")) std::abort();  // cannot happen from closed
    return b;
  }();
  return *cb;
}

void BM_Breaker_Rejected(benchmark::State& state) {
  auto& cb = open_breaker();
  const auto before = bench::g_allocations.load();
  for (auto _ : state) {
    auto p = cb.try_acquire();
    if (p) {
      state.SkipWithError("admitted: the breaker is not open");
      break;
    }
    benchmark::DoNotOptimize(p.retry_after());
  }
  report_allocations(state, before);
}
BENCHMARK(BM_Breaker_Rejected);
BENCHMARK(BM_Breaker_Rejected)->Threads(8);

void BM_Breaker_ForcedOpenRejected(benchmark::State& state) {
  static CircuitBreaker cb("bench-forced", BreakerConfig{}, SystemClock::instance());
  static const bool forced = cb.force_open().has_value();
  if (!forced) return state.SkipWithError("force_open failed");
  const auto before = bench::g_allocations.load();
  for (auto _ : state) {
    auto p = cb.try_acquire();
    if (p) {
      state.SkipWithError("admitted: the breaker is not forced open");
      break;
    }
  }
  report_allocations(state, before);
}
BENCHMARK(BM_Breaker_ForcedOpenRejected);

}  // namespace
