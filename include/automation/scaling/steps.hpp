#pragma once
/// Threshold/step scaling: the seeds' "CPU above 80 % scales up, below 20 % down; memory above
/// 85 % up; a queue deeper than 5 scales the AI workers". Cooldowns are in gates.hpp.
///
/// Thread-safety: pure functions.
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace automation::scaling {

enum class StepAdjustment : std::uint8_t {
  change,   ///< add `amount` members (negative: remove)
  percent,  ///< change by `amount` percent of the current size, at least one member
  exact,    ///< set the size to `amount`
};

/// A band of one metric: it holds while the value is above `above` (exclusive) and, when given,
/// below `below` (exclusive); or, with only `below`, while it is below.
struct StepBand {
  std::string metric;
  std::optional<double> above, below;
  StepAdjustment adjustment = StepAdjustment::change;
  double amount = 1;
};

struct StepOptions {
  int min_replicas = 1;
  int max_replicas = 10;
  std::vector<StepBand> bands;
  /// errc::invalid_argument naming the band for a band without a metric or bounds, bounds that
  /// hold nowhere (above >= below), a percent or change of 0, an exact size outside [min, max].
  Result<void> validate() const;
};

/// The seeds' thresholds (percent): cpu_usage above `cpu_high` +1, memory_usage above
/// `memory_high` +1, cpu_usage below `cpu_low` -1; and, when `queue_high` is given, queue_depth above
/// it +1.
StepOptions seed_steps(double cpu_high = 80, double cpu_low = 20, double memory_high = 85, std::optional<double> queue_high = {});

struct StepDecision {
  int current = 0, desired = 0;
  /// StepUp, StepDown, NoBand, MissingMetrics (a band's metric has no value: no scale-down),
  /// TooManyReplicas, TooFewReplicas (corrected into the bounds).
  std::string reason;
  std::string message;            ///< which bands held, with the values: "cpu_usage 91 > 80: +1"
  std::vector<std::string> held;  ///< each band that held, as in the message
};

/// Every band that holds proposes a size; any proposal above the current size wins (the largest),
/// else the largest proposal below it, unless a band's metric has no value (then no scale-down).
/// The result is kept within [min, max], and a size outside them is corrected at once.
StepDecision decide_steps(int current, const std::map<std::string, double>& values, const StepOptions& options);

}  // namespace automation::scaling
