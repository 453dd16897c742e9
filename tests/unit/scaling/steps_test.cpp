// Threshold/step scaling with the seeds' thresholds, cooldowns, activation to and from zero and the fallback size, on the manual clock.
#include <automation/scaling/gates.hpp>
#include <automation/scaling/steps.hpp>
#include <automation/testing/manual_clock.hpp>

#include <catch2/catch.hpp>

using namespace automation;
using namespace automation::scaling;
using namespace std::chrono_literals;

TEST_CASE("steps: the seed thresholds scale up on high CPU or memory, down on low CPU, never down with a metric missing", "[scaling]") {
  const auto seed = seed_steps();
  REQUIRE(seed.validate());
  auto d = decide_steps(3, {{"cpu_usage", 91}, {"memory_usage", 40}}, seed);
  CHECK(d.desired == 4);
  CHECK(d.reason == "StepUp");
  CHECK_THAT(d.message, Catch::Contains("cpu_usage = 91 (cpu_usage > 80: +1)"));
  // Exactly at the threshold is not above it.
  CHECK(decide_steps(3, {{"cpu_usage", 80}, {"memory_usage", 40}}, seed).reason == "NoBand");
  CHECK(decide_steps(3, {{"cpu_usage", 50}, {"memory_usage", 86}}, seed).desired == 4);
  // Low CPU but high memory: up wins.
  d = decide_steps(3, {{"cpu_usage", 10}, {"memory_usage", 90}}, seed);
  CHECK(d.desired == 4);
  CHECK(d.held.size() == 2);
  d = decide_steps(3, {{"cpu_usage", 10}, {"memory_usage", 40}}, seed);
  CHECK(d.desired == 2);
  CHECK(d.reason == "StepDown");
  // A missing memory reading blocks the scale-down (not a scale-up).
  d = decide_steps(3, {{"cpu_usage", 10}}, seed);
  CHECK(d.desired == 3);
  CHECK(d.reason == "MissingMetrics");
  CHECK_THAT(d.message, Catch::Contains("memory_usage has no value"));
  CHECK(decide_steps(3, {{"cpu_usage", 95}}, seed).desired == 4);
  // Bounds: up to the maximum, down to the minimum, and corrected at once.
  CHECK(decide_steps(10, {{"cpu_usage", 95}, {"memory_usage", 40}}, seed).reason == "TooManyReplicas");
  CHECK(decide_steps(10, {{"cpu_usage", 95}, {"memory_usage", 40}}, seed).desired == 10);
  CHECK(decide_steps(1, {{"cpu_usage", 5}, {"memory_usage", 40}}, seed).desired == 1);
  CHECK(decide_steps(14, {}, seed).desired == 10);
  // The AI workers: a queue deeper than 5.
  CHECK(decide_steps(2, {{"cpu_usage", 50}, {"memory_usage", 40}, {"queue_depth", 6}}, seed_steps(80, 20, 85, 5)).desired == 3);
}

TEST_CASE("steps: bands by change, percent and exact size, the largest step up and the gentlest step down", "[scaling]") {
  StepOptions o;
  o.min_replicas = 1;
  o.max_replicas = 50;
  o.bands = {{"rpm", 1000, 5000, StepAdjustment::percent, 50},        // 1000 < rpm < 5000: +50 %
             {"rpm", 5000, std::nullopt, StepAdjustment::exact, 40},  // rpm > 5000: 40
             {"rpm", std::nullopt, 100, StepAdjustment::change, -2},  // rpm < 100: -2
             {"rpm", std::nullopt, 300, StepAdjustment::percent, -25}};
  REQUIRE(o.validate());
  CHECK(decide_steps(4, {{"rpm", 2000}}, o).desired == 6);
  CHECK(decide_steps(1, {{"rpm", 2000}}, o).desired == 2);  // +50 % of 1 still moves one member
  CHECK(decide_steps(4, {{"rpm", 9000}}, o).desired == 40);
  CHECK(decide_steps(8, {{"rpm", 50}}, o).desired == 6);    // -2 and -25 % (6): the gentler is 6 either way
  CHECK(decide_steps(12, {{"rpm", 50}}, o).desired == 10);  // -2 (10) beats -25 % (9)
  CHECK(decide_steps(12, {{"rpm", 200}}, o).desired == 9);  // only -25 %

  auto bad = [](StepBand b, const char* says) {
    StepOptions x;
    x.bands = {b};
    auto v = x.validate();
    REQUIRE_FALSE(v);
    CHECK_THAT(v.error().message, Catch::Contains(says));
  };
  bad({"", 1, std::nullopt}, "a metric is needed");
  bad({"x", std::nullopt, std::nullopt}, "needs above, below or both");
  bad({"x", 5, 5}, "above 5 is not below 5");
  bad({"x", 5, std::nullopt, StepAdjustment::change, 0}, "a change of 0 does nothing");
  bad({"x", 5, std::nullopt, StepAdjustment::exact, 11}, "an exact size must be a whole number from 1 to 10");
  bad({"x", 5, std::nullopt, StepAdjustment::percent, -100}, "above -100");
}

TEST_CASE("cooldowns: 5 minutes between actions, and a scale-out cancels a scale-in cooldown", "[scaling]") {
  testing::ManualClock clock;
  const auto t0 = clock.now();
  Cooldowns c;  // 5 minutes each way
  CHECK_FALSE(c.blocked_until(3, 4, t0));
  c.applied(3, 4, t0);
  CHECK(c.blocked_until(4, 5, t0 + 1min) == t0 + 5min);  // another scale-out waits
  CHECK(c.blocked_until(4, 3, t0 + 4min) == t0 + 5min);  // so does a scale-in
  CHECK_FALSE(c.blocked_until(4, 5, t0 + 5min));
  CHECK_FALSE(c.blocked_until(4, 4, t0 + 1min));  // no change is never blocked
  c.applied(4, 3, t0 + 6min);
  CHECK(c.blocked_until(3, 2, t0 + 8min) == t0 + 11min);  // scale-ins wait for each other
  CHECK_FALSE(c.blocked_until(3, 4, t0 + 7min));          // a scale-out may go at once...
  c.applied(3, 4, t0 + 7min);
  CHECK(c.blocked_until(4, 3, t0 + 9min) == t0 + 12min);  // ...and the scale-in waits from it, not from the old one
  Cooldowns fast(1min, 10min);
  fast.applied(1, 2, t0);
  CHECK_FALSE(fast.blocked_until(2, 3, t0 + 1min));
  CHECK(fast.blocked_until(2, 1, t0 + 1min) == t0 + 10min);
}

TEST_CASE("activation: woken from 0 when a metric passes its activation threshold, put to sleep after the cooldown", "[scaling]") {
  testing::ManualClock clock;
  const auto t0 = clock.now();
  Activation a(5min, 2);
  CHECK_FALSE(a.check(0, false, t0));  // asleep and nothing to do
  auto o = a.check(0, true, t0 + 1min);
  REQUIRE(o);
  CHECK(o->size == 2);
  CHECK(o->reason == "Activated");
  CHECK_FALSE(a.check(2, true, t0 + 2min));   // active: the ordinary decision applies
  CHECK_FALSE(a.check(2, false, t0 + 6min));  // inactive for 4 minutes: not yet
  o = a.check(2, false, t0 + 7min);
  REQUIRE(o);
  CHECK(o->size == 0);
  CHECK(o->reason == "Deactivated");
  CHECK_THAT(o->message, Catch::Contains("since 2026-01-01T00:02:00Z (5m ago)"));
  // A scaler that never saw it active counts the cooldown from its first look.
  Activation fresh;
  CHECK_FALSE(fresh.check(3, false, t0));
  CHECK_FALSE(fresh.check(3, false, t0 + 4min));
  CHECK(fresh.check(3, false, t0 + 5min)->size == 0);
}

TEST_CASE("fallback: after N consecutive failed reads the fallback size, until a read succeeds", "[scaling]") {
  Fallback f(3, 6);
  CHECK_FALSE(f.record(false));
  CHECK_FALSE(f.record(false));
  CHECK(f.record(false) == 6);
  CHECK(f.record(false) == 6);
  CHECK(f.failures() == 4);
  CHECK_FALSE(f.record(true));
  CHECK(f.failures() == 0);
  CHECK_FALSE(f.record(false));
}
