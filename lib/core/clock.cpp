#include <automation/core/clock.hpp>

namespace automation {

SystemClock& SystemClock::instance() noexcept {
  static SystemClock clock;
  return clock;
}

}  // namespace automation
