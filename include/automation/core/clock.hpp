#pragma once
/// Time as an injected dependency. Every component takes a `Clock&` and never reads the system time
/// itself, so a test harness can drive it with testing::ManualClock and never sleep.
/// Thread-safety: implementations must allow now() from any thread.
#include <chrono>
#include <cstdint>

namespace automation {

using TimePoint = std::chrono::system_clock::time_point;
using Duration = std::chrono::system_clock::duration;
using Millis = std::chrono::milliseconds;

/// The source of "now".
class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const noexcept = 0;
  /// A cheaper "now" that may lag now() by a few milliseconds (never runs ahead of it), for hot
  /// paths that only compare against deadlines. Defaults to now().
  virtual TimePoint coarse_now() const noexcept { return now(); }
};

/// The real wall clock (std::chrono::system_clock).
class SystemClock final : public Clock {
 public:
  TimePoint now() const noexcept override { return std::chrono::system_clock::now(); }
  /// CLOCK_REALTIME_COARSE: the last timer tick (1-4 ms resolution), a few ns to read.
  TimePoint coarse_now() const noexcept override;
  /// A process-wide instance, for hosts that do not want to own one.
  static SystemClock& instance() noexcept;
};

/// Milliseconds since the Unix epoch, UTC: the unit every store persists.
inline std::int64_t to_epoch_ms(TimePoint t) noexcept { return std::chrono::duration_cast<Millis>(t.time_since_epoch()).count(); }
inline TimePoint from_epoch_ms(std::int64_t ms) noexcept { return TimePoint(Millis(ms)); }

}  // namespace automation
