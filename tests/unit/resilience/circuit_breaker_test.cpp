#include <automation/resilience/circuit_breaker.hpp>
#include <automation/testing/manual_clock.hpp>

#include "support/breaker.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <barrier>
#include <latch>
#include <thread>

using namespace automation;
using namespace automation::resilience;
using namespace std::chrono_literals;

namespace {

struct Recorder {
  std::mutex mu;
  std::vector<std::tuple<BreakerEventType, BreakerState, BreakerState, std::string>> events;
  void attach(CircuitBreaker& cb) {
    cb.subscribe([this](const BreakerEvent& e) {
      std::lock_guard lock(mu);
      events.emplace_back(e.type, e.from, e.to, std::string(e.reason));
    });
  }
  int count(BreakerEventType t) {
    std::lock_guard lock(mu);
    return static_cast<int>(std::count_if(events.begin(), events.end(), [t](const auto& e) { return std::get<0>(e) == t; }));
  }
  std::vector<std::string> transitions() {
    std::lock_guard lock(mu);
    std::vector<std::string> out;
    for (const auto& [t, from, to, reason] : events)
      if (t == BreakerEventType::state_transition)
        out.push_back(std::string(to_string(from)) + "->" + std::string(to_string(to)) + ":" + reason);
    return out;
  }
};

using test::fail_n;
using test::succeed_n;

BreakerConfig rate_config(std::uint32_t window, std::uint32_t min_calls, double threshold) {
  BreakerConfig c;
  c.window_size = window;
  c.minimum_calls = min_calls;
  c.failure_rate_threshold = threshold;
  c.open_duration.base = 10s;
  return c;
}

}  // namespace

TEST_CASE("breaker: the seed preset opens after 5 consecutive failures, half-opens after 60 s, closes after 2 successes") {
  testing::ManualClock clock;
  CircuitBreaker cb("payments", BreakerConfig::seed_preset(), clock);
  Recorder rec;
  rec.attach(cb);
  fail_n(cb, 4);
  succeed_n(cb, 1);  // a success breaks the run
  fail_n(cb, 4);
  CHECK(cb.state() == BreakerState::closed);
  fail_n(cb, 1);
  CHECK(cb.state() == BreakerState::open);
  CHECK(cb.last_reason() == "consecutive_failures");
  auto rejected = cb.try_acquire();
  REQUIRE_FALSE(rejected);
  CHECK(rejected.retry_after() == 60s);
  CHECK(rejected.rejected_state() == BreakerState::open);
  clock.advance(59s);
  CHECK_FALSE(cb.try_acquire());
  CHECK(cb.try_acquire().retry_after() == 1s);
  clock.advance(1s);
  CHECK(cb.state() == BreakerState::half_open);
  auto probe = cb.try_acquire();
  REQUIRE(probe);
  CHECK_FALSE(cb.try_acquire());  // one probe at a time
  probe.success();
  CHECK(cb.state() == BreakerState::half_open);
  succeed_n(cb, 1);
  CHECK(cb.state() == BreakerState::closed);
  CHECK(rec.transitions() == std::vector<std::string>{"closed->open:consecutive_failures", "open->half_open:open_duration_elapsed",
                                                      "half_open->closed:half_open_probes_succeeded"});
  CHECK(rec.count(BreakerEventType::not_permitted) == 4);
  CHECK(rec.count(BreakerEventType::error) == 9);
  CHECK(rec.count(BreakerEventType::success) == 3);
  const auto c = cb.counters();
  CHECK(c.failures == 9);
  CHECK(c.successes == 3);
  CHECK(c.not_permitted == 4);
  CHECK(c.transitions == 3);
}

TEST_CASE("breaker: a failed probe reopens, and the open-attempt counter grows until a close resets it") {
  testing::ManualClock clock;
  auto cfg = BreakerConfig::seed_preset();
  cfg.open_duration.kind = OpenDuration::Kind::exponential;
  cfg.open_duration.base = 10s;
  cfg.open_duration.max = 35s;
  CircuitBreaker cb("x", cfg, clock);
  fail_n(cb, 5);
  CHECK(cb.open_attempt() == 1);
  CHECK(cb.open_until() == clock.now() + 10s);
  clock.advance(10s);
  fail_n(cb, 1);  // the probe fails
  CHECK(cb.last_reason() == "half_open_probe_failed");
  CHECK(cb.open_attempt() == 2);
  CHECK(cb.open_until() == clock.now() + 20s);
  clock.advance(20s);
  fail_n(cb, 1);
  CHECK(cb.open_until() == clock.now() + 35s);  // 40 s capped at 35 s
  clock.advance(35s);
  succeed_n(cb, 2);
  CHECK(cb.state() == BreakerState::closed);
  CHECK(cb.open_attempt() == 0);
  fail_n(cb, 5);
  CHECK(cb.open_until() == clock.now() + 10s);  // back to the first step
}

TEST_CASE("breaker: failure-rate threshold is inclusive and waits for the minimum number of calls") {
  testing::ManualClock clock;
  CircuitBreaker cb("rate", rate_config(10, 4, 50), clock);
  fail_n(cb, 3);
  CHECK(cb.state() == BreakerState::closed);  // 3 < minimum 4
  succeed_n(cb, 1);                           // 3/4 = 75%
  CHECK(cb.state() == BreakerState::open);
  CHECK(cb.last_reason() == "failure_rate_exceeded");

  CircuitBreaker exact("exact", rate_config(4, 4, 50), clock);
  succeed_n(exact, 2);
  fail_n(exact, 1);
  CHECK(exact.state() == BreakerState::closed);
  fail_n(exact, 1);  // exactly 50% trips (inclusive)
  CHECK(exact.state() == BreakerState::open);
}

TEST_CASE("breaker: the minimum number of calls is clamped to a count window's size") {
  testing::ManualClock clock;
  CircuitBreaker cb("clamp", rate_config(5, 100, 60), clock);
  succeed_n(cb, 2);
  fail_n(cb, 3);  // 3/5 = 60% with only 5 calls: min 100 was clamped to 5
  CHECK(cb.state() == BreakerState::open);
}

TEST_CASE("breaker: the count window forgets calls older than the last N") {
  testing::ManualClock clock;
  CircuitBreaker cb("ring", rate_config(4, 4, 75), clock);
  fail_n(cb, 2);
  succeed_n(cb, 2);  // 50%
  CHECK(cb.snapshot().failures == 2);
  succeed_n(cb, 2);  // the two failures fall out
  CHECK(cb.snapshot().calls == 4);
  CHECK(cb.snapshot().failures == 0);
  fail_n(cb, 2);
  CHECK(cb.state() == BreakerState::closed);  // 2/4
  fail_n(cb, 1);                              // 3/4 = 75%
  CHECK(cb.state() == BreakerState::open);
}

TEST_CASE("breaker: a time window evicts old buckets") {
  testing::ManualClock clock(TimePoint(std::chrono::seconds(1'000'000)));
  auto cfg = rate_config(5, 4, 50);
  cfg.window = BreakerConfig::Window::time;
  cfg.bucket_width = 1s;  // 5 buckets of 1 s
  CircuitBreaker cb("time", cfg, clock);
  fail_n(cb, 2);
  clock.advance(3s);
  CHECK(cb.snapshot().failures == 2);
  succeed_n(cb, 1);
  clock.advance(2s);  // the failures' bucket is now 5 s old: gone
  const auto s = cb.snapshot();
  CHECK(s.calls == 1);
  CHECK(s.failures == 0);
  fail_n(cb, 1);
  CHECK(cb.state() == BreakerState::closed);  // 2 calls < minimum 4
  clock.advance(1h);
  CHECK(cb.snapshot().calls == 0);
  fail_n(cb, 3);
  CHECK(cb.state() == BreakerState::closed);
  succeed_n(cb, 1);  // 3 of 4 failed
  CHECK(cb.state() == BreakerState::open);
}

TEST_CASE("breaker: slow calls trip the slow-call-rate rule with an inclusive duration threshold") {
  testing::ManualClock clock;
  BreakerConfig cfg;
  cfg.window_size = 4;
  cfg.minimum_calls = 4;
  cfg.failure_rate_threshold.reset();
  cfg.slow_call_rate_threshold = 50;
  cfg.slow_call_duration = 2s;
  CircuitBreaker cb("slow", cfg, clock);
  Recorder rec;
  rec.attach(cb);
  cb.try_acquire().success(1999ms);
  cb.try_acquire().success(1s);
  cb.try_acquire().success(2s);  // exactly the threshold: slow
  CHECK(cb.snapshot().slow_calls == 1);
  auto p = cb.try_acquire();
  clock.advance(3s);
  p.success();  // measured by the breaker's clock: 3 s, slow
  CHECK(cb.state() == BreakerState::open);
  CHECK(cb.last_reason() == "slow_call_rate_exceeded");
  CHECK(rec.count(BreakerEventType::slow_call_rate_exceeded) == 1);
  CHECK(cb.counters().slow == 2);
}

TEST_CASE("breaker: a user predicate over the window can trip it") {
  testing::ManualClock clock;
  BreakerConfig cfg;
  cfg.failure_rate_threshold.reset();
  cfg.trip_predicate = [](const WindowSnapshot& s) { return s.failures >= 2 && s.calls <= 3; };
  CircuitBreaker cb("pred", cfg, clock);
  fail_n(cb, 1);
  succeed_n(cb, 1);
  CHECK(cb.state() == BreakerState::closed);
  fail_n(cb, 1);
  CHECK(cb.state() == BreakerState::open);
  CHECK(cb.last_reason() == "predicate");
}

TEST_CASE("breaker: an outcome can ask to open for a duration or until a time") {
  testing::ManualClock clock;
  BreakerConfig cfg;
  cfg.failure_rate_threshold.reset();
  CircuitBreaker cb("ratelimited", cfg, clock);
  cb.try_acquire().failure_open_for(90s);
  CHECK(cb.state() == BreakerState::open);
  CHECK(cb.last_reason() == "open_requested_by_outcome");
  CHECK(cb.try_acquire().retry_after() == 90s);
  cb.reset();
  const auto until = clock.now() + 5min;
  cb.try_acquire().failure_open_until(until);
  CHECK(cb.open_until() == until);
}

TEST_CASE("breaker: ignored outcomes are neutral, cancellation is ignored by default, a classifier decides") {
  testing::ManualClock clock;
  CircuitBreaker cb("neutral", rate_config(4, 1, 50), clock);
  cb.try_acquire().ignore();
  { auto dropped = cb.try_acquire(); }  // dropped unreported: ignored
  const Error cancelled(errc::cancelled, "client went away");
  cb.try_acquire().record(&cancelled);
  CHECK(cb.snapshot().calls == 0);
  CHECK(cb.counters().ignored == 3);
  CHECK(cb.state() == BreakerState::closed);

  auto cfg = rate_config(4, 1, 50);
  cfg.classifier = [](const Error* e, Duration) {
    return e && e->is(errc::not_found) ? Outcome::success : e ? Outcome::failure : Outcome::success;
  };
  CircuitBreaker classified("classified", cfg, clock);
  const Error missing(errc::not_found, "404");
  classified.try_acquire().record(&missing);
  CHECK(classified.snapshot().failures == 0);
  const Error down(errc::unavailable, "503");
  classified.try_acquire().record(&down);
  CHECK(classified.state() == BreakerState::open);
}

TEST_CASE("breaker: half-open admits exactly its probes, frees dropped permits and expires leases") {
  testing::ManualClock clock;
  auto cfg = BreakerConfig::seed_preset();
  cfg.half_open_max_concurrent = 2;
  cfg.half_open_successes_to_close = 3;
  cfg.permit_lease = 30s;
  CircuitBreaker cb("probes", cfg, clock);
  fail_n(cb, 5);
  clock.advance(60s);
  auto a = cb.try_acquire();
  auto b = cb.try_acquire();
  REQUIRE(a);
  REQUIRE(b);
  auto c = cb.try_acquire();
  CHECK_FALSE(c);
  CHECK(c.retry_after() == 30s);  // the earliest lease expiry
  { auto drop = std::move(a); }   // reported as ignored: frees a slot
  auto d = cb.try_acquire();
  REQUIRE(d);
  clock.advance(30s);  // b and d's leases expire
  auto e = cb.try_acquire();
  REQUIRE(e);
  b.success();  // too late: stale, dropped
  d.failure();  // too late: stale, must not reopen the breaker
  CHECK(cb.state() == BreakerState::half_open);
  CHECK(cb.counters().stale == 2);
  e.success();
  succeed_n(cb, 2);
  CHECK(cb.state() == BreakerState::closed);
  // Each of the 11 admissions is counted once: 5 failures to trip, a dropped, b and d freed when
  // their leases ran out (their late reports are only counted as stale), e and 2 more successes.
  const auto n = cb.counters();
  CHECK(n.failures == 5);
  CHECK(n.ignored == 3);
  CHECK(n.successes == 3);
  CHECK(n.successes + n.failures + n.ignored == 11);
}

TEST_CASE("breaker: results from an older state generation are dropped") {
  testing::ManualClock clock;
  CircuitBreaker cb("gen", BreakerConfig::seed_preset(), clock);
  auto old = cb.try_acquire();
  const auto g = cb.generation();
  fail_n(cb, 5);
  CHECK(cb.generation() == g + 1);
  clock.advance(60s);
  succeed_n(cb, 2);
  CHECK(cb.state() == BreakerState::closed);
  old.failure();  // from the first closed period
  CHECK(cb.snapshot().calls == 0);
  CHECK(cb.counters().stale == 1);
}

TEST_CASE("breaker: rate-based half-open decides after K probes") {
  testing::ManualClock clock;
  auto cfg = rate_config(10, 2, 50);
  cfg.half_open_decision = BreakerConfig::HalfOpenDecision::rate;
  cfg.half_open_probes = 4;
  cfg.half_open_max_concurrent = 4;
  CircuitBreaker cb("k", cfg, clock);
  fail_n(cb, 2);
  clock.advance(10s);
  std::vector<Permit> probes;
  for (int i = 0; i < 4; ++i) probes.push_back(cb.try_acquire());
  for (auto& p : probes) REQUIRE(p);
  CHECK_FALSE(cb.try_acquire());  // never more than K probes
  probes[0].failure();
  probes[1].success();
  probes[2].success();
  CHECK(cb.state() == BreakerState::half_open);
  probes[3].success();  // 1/4 = 25% < 50%
  CHECK(cb.state() == BreakerState::closed);
  CHECK(cb.last_reason() == "half_open_failure_rate_below_threshold");
}

TEST_CASE("breaker: a maximum wait in half-open reopens an undecided breaker") {
  testing::ManualClock clock;
  auto cfg = BreakerConfig::seed_preset();
  cfg.max_half_open_wait = 2min;
  cfg.permit_lease = 10min;
  CircuitBreaker cb("wait", cfg, clock);
  fail_n(cb, 5);
  clock.advance(60s);
  auto hung = cb.try_acquire();
  REQUIRE(hung);
  clock.advance(2min);
  CHECK(cb.state() == BreakerState::open);
  CHECK(cb.last_reason() == "half_open_timeout");
}

TEST_CASE("breaker: manual control follows the table of legal transitions with one event per real transition") {
  testing::ManualClock clock;
  CircuitBreaker cb("manual", BreakerConfig::seed_preset(), clock);
  Recorder rec;
  rec.attach(cb);
  auto illegal = cb.transition_to(BreakerState::half_open);
  REQUIRE_FALSE(illegal);
  CHECK(illegal.error().is(errc::invalid_argument));
  CHECK_THAT(illegal.error().message, Catch::Contains("closed -> half_open"));
  REQUIRE(cb.transition_to(BreakerState::closed));  // no-op
  CHECK(rec.transitions().empty());

  REQUIRE(cb.force_open());
  REQUIRE(cb.force_open());  // no second event
  auto r = cb.try_acquire();
  CHECK_FALSE(r);
  CHECK(r.retry_after() == Duration::zero());
  clock.advance(24h);
  CHECK(cb.state() == BreakerState::forced_open);  // never half-opens by itself

  REQUIRE(cb.metrics_only());
  CHECK_FALSE(cb.transition_to(BreakerState::open));
  CHECK_FALSE(cb.transition_to(BreakerState::half_open));
  fail_n(cb, 10);
  CHECK(cb.state() == BreakerState::metrics_only);  // records, never trips
  CHECK(cb.snapshot().failures == 10);

  REQUIRE(cb.disable());
  fail_n(cb, 10);
  CHECK(cb.snapshot().calls == 0);
  CHECK(cb.state() == BreakerState::disabled);

  REQUIRE(cb.transition_to(BreakerState::closed));
  CHECK(rec.transitions() == std::vector<std::string>{"closed->forced_open:forced_open", "forced_open->metrics_only:metrics_only",
                                                      "metrics_only->disabled:disabled", "disabled->closed:manual"});
  CHECK(cb.counters().transitions == 4);
}

TEST_CASE("breaker: metrics-only emits rate-exceeded events without transitioning") {
  testing::ManualClock clock;
  CircuitBreaker cb("mo", rate_config(4, 2, 50), clock);
  Recorder rec;
  rec.attach(cb);
  REQUIRE(cb.metrics_only());
  fail_n(cb, 2);
  CHECK(rec.count(BreakerEventType::failure_rate_exceeded) == 1);
  CHECK(cb.state() == BreakerState::metrics_only);
}

TEST_CASE("breaker: reset empties the window, emits reset, and lifetime counters survive") {
  testing::ManualClock clock;
  CircuitBreaker cb("reset", BreakerConfig::seed_preset(), clock);
  Recorder rec;
  rec.attach(cb);
  fail_n(cb, 4);  // one short of tripping: only reset() can empty this window
  cb.reset();
  CHECK(cb.snapshot().calls == 0);
  fail_n(cb, 4);  // the failures in a row start over too
  CHECK(cb.state() == BreakerState::closed);
  CHECK(cb.snapshot().calls == 4);
  fail_n(cb, 1);
  CHECK(cb.state() == BreakerState::open);
  cb.reset();
  CHECK(cb.state() == BreakerState::closed);
  CHECK(cb.open_attempt() == 0);
  CHECK(cb.snapshot().calls == 0);
  CHECK(cb.counters().failures == 9);
  CHECK(rec.count(BreakerEventType::reset) == 2);
  CHECK(rec.transitions().back() == "open->closed:reset");
  cb.reset();  // closed already: a reset event but no transition
  CHECK(rec.count(BreakerEventType::reset) == 3);
  CHECK(rec.count(BreakerEventType::state_transition) == 2);
}

TEST_CASE("breaker: open durations: linear, custom function and seeded jitter") {
  testing::ManualClock clock;
  auto cfg = BreakerConfig::seed_preset();
  cfg.consecutive_failures = 1;
  cfg.open_duration.kind = OpenDuration::Kind::linear;
  cfg.open_duration.base = 10s;
  cfg.open_duration.increment = 5s;
  CircuitBreaker lin("lin", cfg, clock);
  std::vector<Duration> got;
  for (int i = 0; i < 3; ++i) {
    fail_n(lin, 1);
    got.push_back(*lin.open_until() - clock.now());
    clock.advance(got.back());
  }
  CHECK(got == std::vector<Duration>{10s, 15s, 20s});

  cfg.open_duration.kind = OpenDuration::Kind::custom;
  cfg.open_duration.custom = [](const OpenDurationContext& c) {
    return std::chrono::seconds(7 * c.attempt + static_cast<int>(c.failures));
  };
  CircuitBreaker custom("custom", cfg, clock);
  fail_n(custom, 1);
  CHECK(*custom.open_until() - clock.now() == 8s);  // 7*1 + 1 failure

  auto jittered = [&](std::uint64_t seed) {
    auto c = BreakerConfig::seed_preset();
    c.consecutive_failures = 1;
    c.open_duration.jitter = 0.5;
    c.open_duration.seed = seed;
    CircuitBreaker j("j", c, clock);
    fail_n(j, 1);
    return *j.open_until() - clock.now();
  };
  const auto d1 = jittered(42), d2 = jittered(42), d3 = jittered(43);
  CHECK(d1 == d2);
  CHECK(d1 != d3);
  CHECK(d1 >= 30s);
  CHECK(d1 <= 90s);
}

TEST_CASE("breaker: a throwing subscriber is isolated and others still get every event") {
  testing::ManualClock clock;
  CircuitBreaker cb("subs", BreakerConfig::seed_preset(), clock);
  cb.subscribe([](const BreakerEvent&) { throw std::runtime_error("bad subscriber"); });
  Recorder rec;
  rec.attach(cb);
  CHECK_NOTHROW(fail_n(cb, 5));
  CHECK(rec.count(BreakerEventType::error) == 5);
  CHECK(rec.count(BreakerEventType::state_transition) == 1);
  CHECK(cb.subscriber_failures() == 6);
}

TEST_CASE("breaker: execute() runs admitted calls and rejects with unavailable when open") {
  testing::ManualClock clock;
  CircuitBreaker cb("exec", BreakerConfig::seed_preset(), clock);
  int calls = 0;
  for (int i = 0; i < 5; ++i) {
    auto r = cb.execute([&]() -> Result<int> {
      ++calls;
      return fail(errc::io, "down");
    });
    CHECK(r.error().is(errc::io));
  }
  auto rejected = cb.execute([&]() -> Result<int> {
    ++calls;
    return 1;
  });
  CHECK(calls == 5);
  REQUIRE_FALSE(rejected);
  CHECK(rejected.error().is(errc::unavailable));
  CHECK_THAT(rejected.error().message, Catch::Contains("'exec' is open") && Catch::Contains("retry after 60000ms"));
}

TEST_CASE("breaker: invalid configuration is refused at construction naming the breaker") {
  testing::ManualClock clock;
  BreakerConfig cfg;
  cfg.failure_rate_threshold = 150;
  CHECK_THROWS_WITH(CircuitBreaker("bad", cfg, clock), Catch::Contains("bad") && Catch::Contains("failure_rate_threshold"));
  BreakerConfig zero;
  zero.window_size = 0;
  CHECK_FALSE(zero.validate());
}

TEST_CASE("breaker: under contention half-open never over-admits and every call is counted exactly once") {
  testing::ManualClock clock;
  auto cfg = BreakerConfig::seed_preset();
  cfg.half_open_max_concurrent = 3;
  cfg.half_open_successes_to_close = 1'000'000;  // stay half-open for the whole test
  CircuitBreaker cb("stress", cfg, clock);
  fail_n(cb, 5);
  clock.advance(60s);
  REQUIRE(cb.state() == BreakerState::half_open);
  std::atomic<int> in_flight{0}, max_in_flight{0}, admitted{0}, rejected{0};
  constexpr int kThreads = 8, kIterations = 2000;
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kIterations; ++i) {
        auto p = cb.try_acquire();
        if (!p) {
          ++rejected;
          continue;
        }
        ++admitted;
        const int now = ++in_flight;
        int prev = max_in_flight.load();
        while (now > prev && !max_in_flight.compare_exchange_weak(prev, now)) {
        }
        for (int k = 0; k < 3; ++k) std::this_thread::yield();  // hold the slot, so over-admission would show
        --in_flight;                                            // leave before reporting: the slot is freed by the report
        if ((i + t) % 3 == 0) {
          p.ignore();
        } else {
          p.success();
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(max_in_flight.load() <= 3);
  CHECK(admitted.load() > 0);
  const auto c = cb.counters();
  CHECK(c.successes + c.ignored == static_cast<std::uint64_t>(admitted.load()));
  CHECK(c.not_permitted == static_cast<std::uint64_t>(rejected.load()));
  CHECK(cb.state() == BreakerState::half_open);
  // No slot leaked: exactly three probes fit now.
  auto p1 = cb.try_acquire(), p2 = cb.try_acquire(), p3 = cb.try_acquire(), p4 = cb.try_acquire();
  CHECK((p1 && p2 && p3));
  CHECK_FALSE(p4);
}

TEST_CASE("breaker: under contention in the closed state counts are exact and the breaker trips exactly once") {
  // With a subscriber every report takes the locked path; without one, the lock-free path.
  for (const bool subscribed : {true, false}) {
    INFO("subscribed: " << subscribed);
    testing::ManualClock clock;
    auto cfg = rate_config(1000, 1000, 100);  // only trips when the window is all failures
    CircuitBreaker cb("closed-stress", cfg, clock);
    Recorder rec;
    if (subscribed) rec.attach(cb);
    constexpr int kThreads = 8, kIterations = 5000;
    std::barrier phase(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        // Phase 1: every thread alternates, so any 1000 calls in a row hold at most 500 + 8
        // failures, whatever the interleaving: it never trips.
        for (int i = 0; i < kIterations; ++i) {
          auto p = cb.try_acquire();
          if (!p) continue;
          if ((i + t) % 2) {
            p.success();
          } else {
            p.failure();
          }
        }
        phase.arrive_and_wait();
        // Phase 2: only failures; the first 1000 fill the window and trip it, the rest are refused.
        for (int i = 0; i < kIterations; ++i) {
          auto p = cb.try_acquire();
          if (p) p.failure();
        }
      });
    }
    for (auto& th : threads) th.join();
    const auto c = cb.counters();
    CHECK(cb.current_state() == BreakerState::open);
    CHECK(c.transitions == 1);  // the clock never moves, so it never half-opens
    CHECK(c.successes == static_cast<std::uint64_t>(kThreads / 2 * kIterations));
    CHECK(c.successes + c.failures + c.not_permitted + c.stale == static_cast<std::uint64_t>(2 * kThreads * kIterations));
    CHECK(c.not_permitted > 0);
    if (subscribed) {
      CHECK(rec.count(BreakerEventType::state_transition) == 1);
      CHECK(rec.count(BreakerEventType::success) == static_cast<int>(c.successes));
      CHECK(rec.count(BreakerEventType::error) == static_cast<int>(c.failures));
    }
  }
}

TEST_CASE("breaker: the lock-free count window is exact once recorders stop, even with resets racing them") {
  testing::ManualClock clock;
  BreakerConfig cfg;
  cfg.window_size = 64;
  cfg.minimum_calls = 64;
  cfg.failure_rate_threshold.reset();  // never trips: the window alone is under test
  cfg.slow_call_duration = 10ms;
  CircuitBreaker cb("lock-free-window", cfg, clock);  // no subscriber: the lock-free path
  constexpr int kThreads = 8, kIterations = 20000;
  std::latch start(kThreads + 1);
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kIterations; ++i) {
        auto p = cb.try_acquire();
        const bool slow = (i + t) % 3 == 0;
        if ((i + t) % 2) {
          p.success(slow ? 20ms : 1ms);
        } else {
          p.failure(slow ? 20ms : 1ms);
        }
      }
    });
  }
  std::thread resetter([&] {
    start.arrive_and_wait();
    while (!stop.load()) cb.reset();
  });
  for (auto& th : threads) th.join();
  stop = true;
  resetter.join();
  // Every call is counted once, as an outcome or as stale (reported after a reset it raced).
  const auto c = cb.counters();
  CHECK(c.successes + c.failures + c.stale == static_cast<std::uint64_t>(kThreads * kIterations));
  // The aggregates track the ring exactly: after N more calls of one kind nothing else is left.
  succeed_n(cb, 64);
  auto s = cb.snapshot();
  CHECK(s.calls == 64);
  CHECK(s.failures == 0);
  CHECK(s.slow_calls == 0);
  CHECK(s.slow_failures == 0);
  for (int i = 0; i < 64; ++i) cb.try_acquire().failure(20ms);
  s = cb.snapshot();
  CHECK(s.calls == 64);
  CHECK(s.failures == 64);
  CHECK(s.slow_calls == 64);
  CHECK(s.slow_failures == 64);
  cb.reset();
  s = cb.snapshot();
  CHECK(s.calls == 0);
  CHECK(s.failures == 0);
}

TEST_CASE("breaker: a window over the size limit is refused") {
  testing::ManualClock clock;
  BreakerConfig cfg;
  cfg.window_size = BreakerConfig::kMaxWindowSize + 1;
  CHECK_THROWS_WITH(CircuitBreaker("huge", cfg, clock), Catch::Contains("window_size must be at most"));
}

TEST_CASE("breaker: execute() can classify the returned value and the duration, not only the error") {
  testing::ManualClock clock;
  CircuitBreaker cb("by-value", BreakerConfig::seed_preset(), clock);
  std::vector<Duration> seen;
  // A negative value is a failure even though the call "succeeded"; the classifier sees the time
  // the call took on the breaker's clock.
  auto classify = [&](const Result<int>& r, Duration elapsed) {
    seen.push_back(elapsed);
    return r && *r >= 0 ? Outcome::success : Outcome::failure;
  };
  for (int i = 0; i < 4; ++i) {
    auto r = cb.execute(
        [&]() -> Result<int> {
          clock.advance(2s);
          return -1;
        },
        classify);
    REQUIRE(r);  // the caller still gets the value
    CHECK(*r == -1);
  }
  CHECK(cb.current_state() == BreakerState::closed);
  CHECK(cb.execute([]() -> Result<int> { return 7; }, classify).value() == 7);  // a success ends the run of failures
  for (int i = 0; i < 5; ++i) (void)cb.execute([]() -> Result<int> { return -2; }, classify);
  CHECK(cb.current_state() == BreakerState::open);
  CHECK(cb.counters().failures == 9);
  CHECK(cb.counters().successes == 1);
  REQUIRE(seen.size() == 10);
  CHECK(seen[0] == 2s);
  CHECK(seen[9] == 0s);
  // Rejected while open, without calling the function or the classifier.
  bool called = false;
  auto rejected = cb.execute(
      [&]() -> Result<int> {
        called = true;
        return 1;
      },
      classify);
  REQUIRE_FALSE(rejected);
  CHECK(rejected.error().is(errc::unavailable));
  CHECK_FALSE(called);
  CHECK(seen.size() == 10);
  // A throwing classifier falls back to the result's own verdict.
  cb.reset();
  (void)cb.execute([]() -> Result<int> { return 1; }, [](const Result<int>&, Duration) -> Outcome { throw std::runtime_error("bug"); });
  CHECK(cb.counters().successes == 2);
}

TEST_CASE("breaker: an expired probe is counted the same whether its late report or the lease check comes first") {
  testing::ManualClock clock;
  auto cfg = BreakerConfig::seed_preset();
  cfg.permit_lease = 10s;
  for (const bool report_first : {true, false}) {
    CircuitBreaker cb("lease", cfg, clock);
    fail_n(cb, 5);
    clock.advance(60s);
    auto p = cb.try_acquire();
    REQUIRE(p);
    clock.advance(11s);
    if (!report_first) CHECK(cb.state() == BreakerState::half_open);  // the lease check frees the slot first
    p.success();
    const auto c = cb.counters();
    INFO("report first: " << report_first);
    CHECK(c.ignored == 1);
    CHECK(c.stale == 1);
    CHECK(c.successes == 0);
    CHECK(c.failures + c.successes + c.ignored == 6);  // each admission once
  }
}
