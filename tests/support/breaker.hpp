#pragma once
// Driving a circuit breaker in tests: n admitted calls that all fail or all succeed.
#include <automation/resilience/circuit_breaker.hpp>

#include <catch2/catch.hpp>

namespace automation::test {

inline void fail_n(resilience::CircuitBreaker& cb, int n) {
  for (int i = 0; i < n; ++i) {
    auto p = cb.try_acquire();
    REQUIRE(p);
    p.failure();
  }
}

inline void succeed_n(resilience::CircuitBreaker& cb, int n) {
  for (int i = 0; i < n; ++i) {
    auto p = cb.try_acquire();
    REQUIRE(p);
    p.success();
  }
}

}  // namespace automation::test
