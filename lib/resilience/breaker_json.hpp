#pragma once
// The JSON of a breaker's window and lifetime counters, one form for stored records and exports.
#include <automation/resilience/circuit_breaker.hpp>

#include <boost/json/object.hpp>

namespace automation::resilience::detail {

inline boost::json::object window_json(const WindowSnapshot& w) {
  return {{"calls", w.calls}, {"failures", w.failures}, {"slow_calls", w.slow_calls}, {"slow_failures", w.slow_failures}};
}

inline boost::json::object counters_json(const BreakerCounters& c) {
  return {{"successes", c.successes},         {"failures", c.failures}, {"ignored", c.ignored},        {"slow", c.slow},
          {"not_permitted", c.not_permitted}, {"stale", c.stale},       {"transitions", c.transitions}};
}

}  // namespace automation::resilience::detail
