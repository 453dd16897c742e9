// The Numenta Anomaly Benchmark run: the AnomalyDetector over all 58 NAB series (365,551 points),
// scored with NAB's own rules (tests/support/nab.hpp) in its three profiles, beside NAB's windowed
// Gaussian baseline run on the same data in the same run. One iteration = the whole corpus.
#include "support/nab.hpp"

#include <automation/metrics/anomaly.hpp>

#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>

namespace {

const std::filesystem::path& nab_dir() {
  static const auto dir = nab::data_dir(AUTOMATION_SOURCE_DIR) / "nab";
  return dir;
}

const std::vector<nab::Series>& corpus() { return nab::corpus(AUTOMATION_SOURCE_DIR); }

void report(benchmark::State& state, const char* name, const std::vector<std::vector<double>>& scores, double fixed_threshold) {
  std::size_t points = 0;
  for (const auto& s : corpus()) points += s.value.size();
  state.counters["points_per_s"] = benchmark::Counter(static_cast<double>(points), benchmark::Counter::kIsIterationInvariantRate);
  for (const auto& p : {nab::kStandard, nab::kRewardLowFp, nab::kRewardLowFn}) {
    const auto best = nab::score(corpus(), scores, p);
    const auto r = fixed_threshold > 0 ? nab::score(corpus(), scores, p, fixed_threshold) : best;
    const std::string key = p.name == "standard" ? "standard" : p.name == "reward_low_FP_rate" ? "low_FP" : "low_FN";
    state.counters[key] = r.normalized;
    const bool baseline = std::string(name) == "windowedGaussian";
    std::fprintf(stderr,
                 "NAB %-16s %-18s score %6.2f (published %6.2f) threshold %.4f  windows %3zu/%zu detected, %3zu FN, "
                 "%4zu TP rows, %4zu FP rows; best threshold %.4f scores %.2f\n",
                 name, p.name.c_str(), r.normalized, baseline ? nab::published(nab_dir(), name, p.name) : NAN, r.threshold,
                 r.detected_windows, r.windows, r.windows - r.detected_windows, r.tp_rows, r.fp_rows, best.threshold, best.normalized);
  }
}

void BM_NAB_AnomalyDetector(benchmark::State& state) {
  std::vector<std::vector<double>> scores;
  for (auto _ : state) {
    scores = nab::detector_scores(corpus());
    benchmark::DoNotOptimize(scores.data());
  }
  report(state, "AnomalyDetector", scores, automation::metrics::AnomalyOptions{}.threshold);
}

void BM_NAB_WindowedGaussian(benchmark::State& state) {
  std::vector<std::vector<double>> scores;
  for (auto _ : state) {
    scores.clear();
    for (const auto& s : corpus()) scores.push_back(nab::windowed_gaussian(s));
    benchmark::DoNotOptimize(scores.data());
  }
  report(state, "windowedGaussian", scores, 0);
}

BENCHMARK(BM_NAB_AnomalyDetector)->Iterations(10)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_NAB_WindowedGaussian)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
