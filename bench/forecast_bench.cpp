// The M3 competition run: every one of the 3,003 series forecast by a method, scored with the M4
// definitions per category and overall. Naive2 (naive on seasonally adjusted data) is the baseline
// of the same run, and OWA is computed against it. One iteration = all series on one core.
#include "support/m3.hpp"

#include <benchmark/benchmark.h>

#include <cstdio>

namespace {

using automation::forecast::Method;

const std::vector<m3::Series>& series() {
  static const auto all = m3::load(m3::data_dir(AUTOMATION_SOURCE_DIR) / "m3" / "m3.csv");
  return all;
}

void run_m3(benchmark::State& state, Method method) {
  const auto& all = series();
  std::map<std::string, m3::Totals> result;
  for (auto _ : state) result = m3::evaluate(all, method);
  for (const auto& [category, t] : result) {
    const std::string prefix = category == "ALL" ? "" : category.substr(0, 1) + "_";
    state.counters[prefix + "sMAPE"] = t.mean_smape();
    state.counters[prefix + "MASE"] = t.mean_mase();
    if (category == "ALL") {
      state.counters["OWA"] = t.owa();
      state.counters["cov95"] = t.coverage();
      state.counters["MSIS"] = t.mean_msis();
      state.counters["ms_per_series"] = 1000 * t.seconds / static_cast<double>(t.n);
    }
  }
  // The full table (the counters above only carry the headline figures).
  std::fprintf(stderr, "M3 %-12s %-10s %5s %7s %7s %6s %6s %7s %8s\n", std::string(to_string(method)).c_str(), "category", "n", "sMAPE",
               "MASE", "OWA", "cov95", "MSIS", "ms/ser");
  for (const auto& [category, t] : result)
    std::fprintf(stderr, "M3 %-12s %-10s %5zu %7.2f %7.3f %6.3f %6.1f %7.2f %8.3f\n", std::string(to_string(method)).c_str(),
                 category.c_str(), t.n, t.mean_smape(), t.mean_mase(), t.owa(), t.coverage(), t.mean_msis(),
                 1000 * t.seconds / static_cast<double>(t.n));
}

void BM_M3_Naive2(benchmark::State& s) { run_m3(s, Method::naive); }
void BM_M3_SES(benchmark::State& s) { run_m3(s, Method::ses); }
void BM_M3_Damped(benchmark::State& s) { run_m3(s, Method::damped); }
void BM_M3_Theta(benchmark::State& s) { run_m3(s, Method::theta); }
void BM_M3_OptimisedTheta(benchmark::State& s) { run_m3(s, Method::optimised_theta); }
void BM_M3_ETS(benchmark::State& s) { run_m3(s, Method::ets); }
void BM_M3_HoltWintersMultiplicative(benchmark::State& s) { run_m3(s, Method::holt_winters_multiplicative); }
void BM_M3_Auto(benchmark::State& s) { run_m3(s, Method::automatic); }

BENCHMARK(BM_M3_Naive2)->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK(BM_M3_SES)->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK(BM_M3_Damped)->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK(BM_M3_Theta)->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK(BM_M3_OptimisedTheta)->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK(BM_M3_ETS)->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK(BM_M3_HoltWintersMultiplicative)->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK(BM_M3_Auto)->Iterations(1)->Unit(benchmark::kSecond);

}  // namespace
