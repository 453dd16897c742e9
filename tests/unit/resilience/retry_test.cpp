#include <automation/core/json.hpp>
#include <automation/resilience/retry.hpp>
#include <automation/testing/manual_clock.hpp>

#include <catch2/catch.hpp>

using namespace automation;
using namespace automation::resilience;
using namespace std::chrono_literals;

namespace {
struct ClockSleeper final : Sleeper {
  testing::ManualClock& clock;
  std::vector<Millis> slept;
  explicit ClockSleeper(testing::ManualClock& c) : clock(c) {}
  void sleep_for(Millis d) override {
    slept.push_back(d);
    clock.advance(d);
  }
};

std::vector<Millis> delays(const RetryPolicy& p, int failures) {
  RetryState s(p, TimePoint{});
  std::vector<Millis> out;
  for (int i = 0; i < failures; ++i) {
    auto d = s.on_failure(Error(errc::io, "x"), TimePoint{});
    if (!d.retry) break;
    out.push_back(d.delay);
  }
  return out;
}
}  // namespace

TEST_CASE("retry: fixed, exponential and linear backoff with a cap") {
  RetryPolicy p;
  p.max_attempts = 6;
  p.initial_delay = 100ms;
  p.max_delay = 1s;
  p.backoff = Backoff::fixed;
  CHECK(delays(p, 10) == std::vector<Millis>{100ms, 100ms, 100ms, 100ms, 100ms});
  p.backoff = Backoff::exponential;
  CHECK(delays(p, 10) == std::vector<Millis>{100ms, 200ms, 400ms, 800ms, 1s});
  p.backoff = Backoff::linear;
  p.increment = 300ms;
  CHECK(delays(p, 10) == std::vector<Millis>{100ms, 400ms, 700ms, 1s, 1s});
}

TEST_CASE("retry: jitter is seeded so a replay reproduces the delays") {
  RetryPolicy p;
  p.max_attempts = 8;
  p.initial_delay = 1s;
  p.max_delay = 1h;
  p.jitter = 0.5;
  p.seed = 7;
  const auto a = delays(p, 10), b = delays(p, 10);
  CHECK(a == b);
  p.seed = 8;
  CHECK(delays(p, 10) != a);
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto base = p.base_delay(static_cast<int>(i) + 2);
    CHECK(a[i] >= base / 2);
    CHECK(a[i] <= base * 3 / 2);
  }
}

TEST_CASE("retry: non-retryable errors and a retry_on predicate stop at once, with a reason") {
  RetryPolicy p;
  p.max_attempts = 5;
  RetryState s(p, TimePoint{});
  auto d = s.on_failure(Error(errc::invalid_argument, "bad input"), TimePoint{});
  CHECK_FALSE(d.retry);
  CHECK(d.reason == RetryReason::non_retryable);
  CHECK_THAT(d.explanation, Catch::Contains("invalid_argument"));
  p.retry_on = [](const Error& e) { return e.is(errc::busy); };
  RetryState s2(p, TimePoint{});
  CHECK(s2.on_failure(Error(errc::busy, ""), TimePoint{}).retry);
  CHECK(s2.on_failure(Error(errc::io, ""), TimePoint{}).reason == RetryReason::non_retryable);
}

TEST_CASE("retry: attempts are exhausted and the deadline is respected") {
  RetryPolicy p;
  p.max_attempts = 3;
  p.initial_delay = 1s;
  RetryState s(p, TimePoint{});
  CHECK(s.on_failure(Error(errc::io, ""), TimePoint{}).retry);
  CHECK(s.on_failure(Error(errc::io, ""), TimePoint{}).retry);
  auto last = s.on_failure(Error(errc::io, ""), TimePoint{});
  CHECK(last.reason == RetryReason::attempts_exhausted);
  CHECK(last.explanation == "gave up after 3 attempts");

  p.max_attempts = 100;
  p.deadline = 5s;
  testing::ManualClock clock;
  ClockSleeper sleeper(clock);
  int calls = 0;
  auto r = retry_call(p, clock, sleeper, [&]() -> Result<int> {
    ++calls;
    return fail(errc::timeout, "slow peer");
  });
  REQUIRE_FALSE(r);
  CHECK(r.error().is(errc::timeout));
  CHECK_THAT(r.error().message, Catch::Contains("deadline"));
  CHECK(sleeper.slept == std::vector<Millis>{1s, 2s});  // 1+2 = 3 s; the next 4 s would pass 5 s
  CHECK(calls == 3);
}

TEST_CASE("retry: retry_call returns the first success") {
  testing::ManualClock clock;
  ClockSleeper sleeper(clock);
  int calls = 0;
  auto r = retry_call(RetryPolicy::standard(), clock, sleeper, [&]() -> Result<int> {
    if (++calls < 3) return fail(errc::busy, "locked");
    return 42;
  });
  REQUIRE(r);
  CHECK(*r == 42);
  CHECK(sleeper.slept == std::vector<Millis>{1s, 2s});
}

TEST_CASE("retry: policies load from JSON and bad JSON names the key") {
  auto p = RetryPolicy::from_json(json::parse(R"({"max_attempts": 5, "backoff": "linear", "initial_delay": "2s",
      "increment": "1s", "max_delay": "10s", "jitter": 0.1, "seed": 3, "deadline": "1m", "non_retryable": ["not_found"]})")
                                      .value());
  REQUIRE(p);
  CHECK(p->max_attempts == 5);
  CHECK(p->backoff == Backoff::linear);
  CHECK(p->base_delay(3) == 3s);
  CHECK(p->deadline == std::optional<Millis>(1min));
  CHECK(p->non_retryable == std::vector<errc>{errc::not_found});
  CHECK(RetryPolicy::from_json(boost::json::value(p->to_json())).value().to_json() == p->to_json());
  auto bad = RetryPolicy::from_json(json::parse(R"({"max_attemps": 5})").value(), "steps[2].retry");
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message, Catch::Contains("steps[2].retry.max_attemps: unknown key (did you mean \"max_attempts\"?)"));
  auto bad2 = RetryPolicy::from_json(json::parse(R"({"initial_delay": "soon"})").value());
  CHECK_THAT(bad2.error().message, Catch::Contains("retry.initial_delay"));
  auto bad3 = RetryPolicy::from_json(json::parse(R"({"jitter": 2})").value());
  CHECK_THAT(bad3.error().message, Catch::Contains("jitter must be in [0, 1]"));
  auto bad4 = RetryPolicy::from_json(json::parse(R"({"non_retryable": ["nope"]})").value());
  CHECK_THAT(bad4.error().message, Catch::Contains("unknown error code \"nope\""));
  // Out-of-range numbers are errors, never exceptions or silent truncation.
  for (const char* text : {R"({"max_attempts": 4294967297})", R"({"max_attempts": 18446744073709551615})", R"({"max_attempts": 0})"}) {
    auto r = RetryPolicy::from_json(json::parse(text).value());
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("retry.max_attempts: expected an integer from 1 to"));
  }
  CHECK_THAT(RetryPolicy::from_json(json::parse(R"({"seed": -1})").value()).error().message,
             Catch::Contains("retry.seed: expected a non-negative integer"));
  CHECK(RetryPolicy::from_json(json::parse(R"({"seed": 18446744073709551615})").value()).value().seed == 18446744073709551615u);
}
