#pragma once
/// What stands between a scaling decision and the resource: cooldowns between actions (the seeds'
/// 5 minutes; a scale-out ends a scale-in cooldown, as AWS step scaling), activation and scaling to
/// and from zero (KEDA's activation threshold and cooldown period), and a fallback size after
/// consecutive metric failures (KEDA's fallback).
///
/// Thread-safety: each gate is for one thread at a time; they take the time as an argument.
#include <automation/core/clock.hpp>

#include <optional>
#include <string>

namespace automation::scaling {

/// Cooldowns between actions: after a scale-up, further scale-ups wait `up` and scale-downs wait
/// `down`; after a scale-down, scale-downs wait `down`, while a scale-up may go at once (and ends
/// the scale-down cooldown).
class Cooldowns {
 public:
  Cooldowns(Duration up = std::chrono::minutes(5), Duration down = std::chrono::minutes(5)) : up_(up), down_(down) {}

  /// Until when a change from `current` to `desired` must wait (nullopt: it may go now).
  std::optional<TimePoint> blocked_until(int current, int desired, TimePoint now) const;
  /// Records a change made at `now`.
  void applied(int from, int to, TimePoint now);

 private:
  Duration up_, down_;
  std::optional<TimePoint> last_up_, last_down_;
};

/// Scaling to and from zero. A resource is active while any of its metrics is above its
/// activation threshold. At 0 it is woken to `wake_to` (at least 1) as soon as it is active; above
/// 0 it is put to sleep (0) once it has been inactive for `cooldown` (KEDA's cooldownPeriod, 300 s).
/// In between, the ordinary decision (HPA or steps, with a minimum of at least 1) applies.
class Activation {
 public:
  explicit Activation(Duration cooldown = std::chrono::minutes(5), int wake_to = 1)
      : cooldown_(cooldown), wake_to_(wake_to < 1 ? 1 : wake_to) {}

  struct Override {
    int size = 0;
    std::string reason;  ///< "Activated" or "Deactivated"
    std::string message;
  };
  /// The size to set instead of the ordinary decision, if any. `active`: whether any metric is above
  /// its activation threshold now.
  std::optional<Override> check(int current, bool active, TimePoint now);
  /// Restores when a metric was last seen active (by an earlier scaler).
  void restore(TimePoint last_active) { last_active_ = last_active; }

 private:
  Duration cooldown_;
  int wake_to_;
  std::optional<TimePoint> last_active_;
};

/// After `threshold` consecutive decisions whose metrics could not be read, the resource is set
/// to `size` (KEDA's fallback) until a read succeeds again.
class Fallback {
 public:
  Fallback(int threshold, int size) : threshold_(threshold < 1 ? 1 : threshold), size_(size < 0 ? 0 : size) {}

  /// Records whether this decision's metrics were read; the fallback size while `threshold` or
  /// more reads in a row have failed.
  std::optional<int> record(bool read_ok);
  int failures() const noexcept { return failures_; }
  /// Restores the count of consecutive failed reads (recorded by an earlier scaler).
  void restore(int failures) { failures_ = failures < 0 ? 0 : failures; }

 private:
  int threshold_, size_;
  int failures_ = 0;
};

}  // namespace automation::scaling
