#pragma once
// How delays grow with the attempt number, shared by retry backoff and breaker open durations.
#include <algorithm>
#include <cmath>
#include <random>

namespace automation::resilience::detail {

enum class Growth { fixed, exponential, linear };

/// The delay of attempt n (1 = the first): base, base * multiplier^(n-1) or base + increment * (n-1),
/// capped at `max`.
inline double grown_delay(Growth g, double base, double multiplier, double increment, int n, double max) noexcept {
  double d = base;
  if (g == Growth::exponential) d = base * std::pow(multiplier, n - 1);
  if (g == Growth::linear) d = base + increment * (n - 1);
  return std::min(d, max);
}

/// `d` drawn uniformly from [d*(1-j), d*(1+j)] with a seeded generator (j = 0: unchanged), capped at `max`.
inline double jittered(double d, double jitter, std::mt19937_64& rng, double max) {
  if (jitter > 0) d *= std::uniform_real_distribution<double>(1.0 - jitter, 1.0 + jitter)(rng);
  return std::min(d, max);
}

}  // namespace automation::resilience::detail
