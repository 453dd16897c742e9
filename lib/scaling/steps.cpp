#include <automation/scaling/steps.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <climits>
#include <cmath>

namespace automation::scaling {

namespace {

std::string number(double v) { return fmt::format("{:.6g}", v); }

std::string band_text(const StepBand& b) {
  std::string cond;
  if (b.above && b.below)
    cond = fmt::format("{} < {} < {}", number(*b.above), b.metric, number(*b.below));
  else if (b.above)
    cond = fmt::format("{} > {}", b.metric, number(*b.above));
  else if (b.below)
    cond = fmt::format("{} < {}", b.metric, number(*b.below));
  switch (b.adjustment) {
    case StepAdjustment::change:
      return fmt::format("{}: {:+g}", cond, b.amount);
    case StepAdjustment::percent:
      return fmt::format("{}: {:+g} %", cond, b.amount);
    case StepAdjustment::exact:
      return fmt::format("{}: set {:g}", cond, b.amount);
  }
  return cond;
}

int to_int(double v) { return static_cast<int>(std::clamp(v, static_cast<double>(INT_MIN), static_cast<double>(INT_MAX))); }

// The size a band proposes for `current`; a percent step moves at least one member.
int proposal(const StepBand& b, int current) {
  switch (b.adjustment) {
    case StepAdjustment::change:
      return to_int(static_cast<double>(current) + b.amount);
    case StepAdjustment::percent: {
      const double raw = static_cast<double>(current) * (1 + b.amount / 100.0);
      const int moved = b.amount > 0 ? to_int(std::ceil(raw)) : to_int(std::floor(raw));
      return b.amount > 0 ? std::max(moved, current + 1) : std::min(moved, current - 1);
    }
    case StepAdjustment::exact:
      return to_int(b.amount);
  }
  return current;
}

}  // namespace

Result<void> StepOptions::validate() const {
  auto bad = [](std::string what) { return fail(errc::invalid_argument, std::move(what)); };
  if (min_replicas < 0) return bad(fmt::format("min_replicas {} is negative", min_replicas));
  if (max_replicas < std::max(min_replicas, 1))
    return bad(fmt::format("max_replicas {} is below min_replicas {} (or 1)", max_replicas, min_replicas));
  for (std::size_t i = 0; i < bands.size(); ++i) {
    const auto& b = bands[i];
    const auto where = fmt::format("band {} ({})", i + 1, b.metric.empty() ? "no metric" : b.metric);
    if (b.metric.empty()) return bad(where + ": a metric is needed");
    if (!b.above && !b.below) return bad(where + ": needs above, below or both");
    if (b.above && b.below && *b.above >= *b.below)
      return bad(where + fmt::format(": above {} is not below {}", number(*b.above), number(*b.below)));
    if (!std::isfinite(b.amount)) return bad(where + ": the amount is not a number");
    if (b.adjustment != StepAdjustment::exact && b.amount == 0) return bad(where + ": a change of 0 does nothing");
    if (b.adjustment == StepAdjustment::percent && b.amount <= -100) return bad(where + ": a percent step must be above -100");
    if (b.adjustment == StepAdjustment::exact && (b.amount < min_replicas || b.amount > max_replicas || b.amount != std::floor(b.amount)))
      return bad(where + fmt::format(": an exact size must be a whole number from {} to {}", min_replicas, max_replicas));
  }
  return {};
}

StepOptions seed_steps(double cpu_high, double cpu_low, double memory_high, std::optional<double> queue_high) {
  StepOptions o;
  o.bands = {{"cpu_usage", cpu_high, std::nullopt, StepAdjustment::change, 1},
             {"memory_usage", memory_high, std::nullopt, StepAdjustment::change, 1},
             {"cpu_usage", std::nullopt, cpu_low, StepAdjustment::change, -1}};
  if (queue_high) o.bands.push_back({"queue_depth", *queue_high, std::nullopt, StepAdjustment::change, 1});
  return o;
}

StepDecision decide_steps(int current, const std::map<std::string, double>& values, const StepOptions& o) {
  StepDecision d;
  d.current = current;
  const int lo = o.min_replicas, hi = o.max_replicas;
  if (current > hi || current < lo) {
    d.desired = current > hi ? hi : lo;
    d.reason = current > hi ? "TooManyReplicas" : "TooFewReplicas";
    d.message = fmt::format("the current size {} is outside {}..{}", current, lo, hi);
    return d;
  }
  std::optional<int> up, down;
  std::vector<std::string> missing;
  for (const auto& b : o.bands) {
    const auto it = values.find(b.metric);
    if (it == values.end() || !std::isfinite(it->second)) {
      if (std::find(missing.begin(), missing.end(), b.metric) == missing.end()) missing.push_back(b.metric);
      continue;
    }
    const double v = it->second;
    const bool holds = (!b.above || v > *b.above) && (!b.below || v < *b.below);
    if (!holds) continue;
    const int p = proposal(b, current);
    d.held.push_back(fmt::format("{} = {} ({})", b.metric, number(v), band_text(b)));
    if (p > current) up = std::max(up.value_or(p), p);
    if (p < current) down = std::max(down.value_or(p), p);  // the gentlest step down
  }
  if (up) {
    d.desired = std::min(*up, hi);
    d.reason = *up > hi ? "TooManyReplicas" : "StepUp";
  } else if (down && !missing.empty()) {
    d.desired = current;
    d.reason = "MissingMetrics";
    d.message = fmt::format("no scale-down while {} has no value", fmt::join(missing, ", "));
    return d;
  } else if (down) {
    d.desired = std::max(*down, lo);
    d.reason = *down < lo ? "TooFewReplicas" : "StepDown";
  } else {
    d.desired = current;
    d.reason = "NoBand";
  }
  d.message = d.held.empty() ? std::string("no band holds") : fmt::format("{}", fmt::join(d.held, "; "));
  return d;
}

}  // namespace automation::scaling
