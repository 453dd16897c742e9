#include <automation/core/clock.hpp>

#include <time.h>

namespace automation {

SystemClock& SystemClock::instance() noexcept {
  static SystemClock clock;
  return clock;
}

TimePoint SystemClock::coarse_now() const noexcept {
  timespec ts{};
  if (clock_gettime(CLOCK_REALTIME_COARSE, &ts) != 0) return now();
  return TimePoint(std::chrono::duration_cast<Duration>(std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec)));
}

}  // namespace automation
