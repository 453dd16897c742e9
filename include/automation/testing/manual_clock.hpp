#pragma once
/// A Clock that moves only when told to: set() and advance(). For tests and simulations.
/// Thread-safety: now(), set() and advance() may be called concurrently.
#include <automation/core/clock.hpp>

#include <atomic>

namespace automation::testing {

class ManualClock final : public Clock {
 public:
  /// Starts at `start` (default: 2026-01-01T00:00:00Z, so tests never depend on the real date).
  explicit ManualClock(TimePoint start = default_start()) noexcept : now_(start.time_since_epoch().count()) {}

  TimePoint now() const noexcept override { return TimePoint(Duration(now_.load(std::memory_order_acquire))); }
  void set(TimePoint t) noexcept { now_.store(t.time_since_epoch().count(), std::memory_order_release); }
  /// Moves time forward (or backward, for a negative d) and returns the new now.
  TimePoint advance(Duration d) noexcept { return TimePoint(Duration(now_.fetch_add(d.count(), std::memory_order_acq_rel) + d.count())); }
  static TimePoint default_start() noexcept { return TimePoint(std::chrono::seconds(1767225600)); }

 private:
  std::atomic<Duration::rep> now_;
};

}  // namespace automation::testing
