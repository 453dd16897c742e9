#pragma once
// Usage events for the metrics tests: `count` events of `feature` on `date` (10:00:00 UTC on, one a
// second), by `users` users in turn, the first `errors` of them failed with E500, each lasting
// 10 + i ms when `durations`.
#include <automation/core/time.hpp>
#include <automation/metrics/metrics.hpp>

#include <fmt/format.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace automation::test {

inline void add_events(std::vector<metrics::UsageEvent>& out, std::string_view date, const std::string& feature, int count, int errors,
                       int users, bool durations) {
  for (int i = 0; i < count; ++i)
    out.push_back({parse_timestamp(fmt::format("{}T10:{:02}:{:02}Z", date, i / 60 % 60, i % 60)).value(), fmt::format("u{}", i % users),
                   feature, "start", durations ? std::optional<Duration>(std::chrono::milliseconds(10 + i)) : std::nullopt,
                   i < errors ? "E500" : ""});
}

}  // namespace automation::test
