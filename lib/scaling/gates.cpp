#include <automation/core/time.hpp>
#include <automation/scaling/gates.hpp>

#include <fmt/format.h>

#include <algorithm>

namespace automation::scaling {

std::optional<TimePoint> Cooldowns::blocked_until(int current, int desired, TimePoint now) const {
  std::optional<TimePoint> until;
  if (desired > current) {
    if (last_up_ && now < *last_up_ + up_) until = *last_up_ + up_;
  } else if (desired < current) {
    // A scale-down waits for the down cooldown after either kind of change.
    for (const auto& last : {last_up_, last_down_})
      if (last && now < *last + down_) until = std::max(until.value_or(*last + down_), *last + down_);
  }
  return until;
}

void Cooldowns::applied(int from, int to, TimePoint now) {
  if (to > from) {
    last_up_ = now;
    last_down_.reset();  // a scale-out ends a scale-in cooldown
  } else if (to < from) {
    last_down_ = now;
  }
}

std::optional<Activation::Override> Activation::check(int current, bool active, TimePoint now) {
  if (active) last_active_ = now;
  if (current == 0) {
    if (!active) return std::nullopt;
    return Override{wake_to_, "Activated", fmt::format("a metric is above its activation threshold: from 0 to {}", wake_to_)};
  }
  if (active) return std::nullopt;
  // Inactive: asleep once the cooldown since it was last active has passed (a scaler that has never
  // seen it active counts from its first check).
  if (!last_active_) last_active_ = now;
  if (now - *last_active_ < cooldown_) return std::nullopt;
  return Override{0, "Deactivated",
                  fmt::format("no metric above its activation threshold since {} ({} ago)", format_timestamp(*last_active_),
                              format_duration(std::chrono::duration_cast<Millis>(now - *last_active_)))};
}

std::optional<int> Fallback::record(bool read_ok) {
  failures_ = read_ok ? 0 : failures_ + 1;
  if (failures_ >= threshold_) return size_;
  return std::nullopt;
}

}  // namespace automation::scaling
