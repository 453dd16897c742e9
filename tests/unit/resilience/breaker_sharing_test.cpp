// Persistence and sharing of circuit breakers through the Store, and the registry.
#include <automation/resilience/breaker_registry.hpp>
#include <automation/storage/memory_store.hpp>
#include <automation/storage/sqlite_store.hpp>
#include <automation/testing/fault_injecting_store.hpp>
#include <automation/testing/manual_clock.hpp>

#include "support/breaker.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <latch>
#include <thread>

using namespace automation;
using namespace automation::resilience;
using namespace std::chrono_literals;

namespace {

// Two "payments" breakers in shared mode on one SQLite file through two connections, as two
// processes would have them.
struct SharedPair {
  test::TempDir dir;
  std::unique_ptr<storage::SqliteStore> store_a = storage::SqliteStore::open(dir.file("b.db")).value();
  std::unique_ptr<storage::SqliteStore> store_b = storage::SqliteStore::open(dir.file("b.db")).value();
  testing::ManualClock clock;
  CircuitBreaker a{"payments", BreakerConfig::seed_preset(), clock};
  CircuitBreaker b{"payments", BreakerConfig::seed_preset(), clock};
  SharedPair() {
    REQUIRE(a.share(*store_a, {.mode = SharingMode::shared, .poll_interval = 1s, .owner = "A"}));
    REQUIRE(b.share(*store_b, {.mode = SharingMode::shared, .poll_interval = 1s, .owner = "B"}));
  }
  auto parts() { return std::tie(store_a, store_b, clock, a, b); }
};

}  // namespace

TEST_CASE("breaker sharing: two instances on one SQLite file see one breaker", "[breaker][sharing]") {
  SharedPair pair;
  auto [store_a, store_b, clock, a, b] = pair.parts();  // references into the pair
  CHECK(a.sharing_status().version == 1);               // A created the record, B adopted it (same state)
  CHECK(b.sharing_status().version == 1);

  test::fail_n(a, 5);  // A trips and publishes
  CHECK(a.current_state() == BreakerState::open);
  auto rec = store_b->get_breaker("payments").value();
  REQUIRE(rec);
  CHECK(rec->state == "open");
  CHECK(rec->reason == "consecutive_failures");
  CHECK(rec->updated_by == "A");
  CHECK(rec->open_until == clock.now() + 60s);

  CHECK(b.try_acquire().admitted());  // B has not looked yet (poll interval)
  clock.advance(1s);
  auto rejected = b.try_acquire();  // B looks at the store and adopts the open state
  CHECK_FALSE(rejected);
  CHECK(rejected.retry_after() == 59s);
  CHECK(b.current_state() == BreakerState::open);
  CHECK(b.last_reason() == "shared:consecutive_failures");
  CHECK(b.open_attempt() == 1);

  // After the open period both go half-open; B's probes close it, and A adopts that.
  clock.advance(60s);
  test::succeed_n(b, 2);
  CHECK(b.current_state() == BreakerState::closed);
  clock.advance(1s);
  CHECK(a.state() == BreakerState::closed);
  CHECK(a.last_reason() == "shared:half_open_probes_succeeded");
  CHECK(a.open_attempt() == 0);

  // A manual force-open written to the store by someone else (autoctl) reaches both.
  auto cur = store_a->get_breaker("payments").value().value();
  cur.state = "forced_open";
  cur.reason = "forced_open";
  cur.updated_by = "user:alice";
  REQUIRE(store_a->put_breaker(cur, cur.version));
  clock.advance(1s);
  CHECK_FALSE(a.try_acquire());
  CHECK_FALSE(b.try_acquire());
  CHECK(a.current_state() == BreakerState::forced_open);
  CHECK(b.current_state() == BreakerState::forced_open);
}

TEST_CASE("breaker sharing: the first writer wins a race and the loser adopts its state", "[breaker][sharing]") {
  storage::MemoryStore store;
  testing::ManualClock clock;
  CircuitBreaker a("x", BreakerConfig::seed_preset(), clock);
  CircuitBreaker b("x", BreakerConfig::seed_preset(), clock);
  REQUIRE(a.share(store, {.poll_interval = 10s, .owner = "A"}));
  REQUIRE(b.share(store, {.poll_interval = 10s, .owner = "B"}));
  REQUIRE(a.force_open());  // published at version 2
  // B has not seen it; its own transition conflicts and B adopts A's state instead.
  REQUIRE(b.disable());
  CHECK(b.current_state() == BreakerState::forced_open);
  CHECK(b.sharing_status().conflicts == 1);
  CHECK(store.get_breaker("x").value()->state == "forced_open");
  CHECK(store.get_breaker("x").value()->updated_by == "A");
}

TEST_CASE("breaker sharing: a snapshot is restored at start with the open period it had", "[breaker][sharing]") {
  test::TempDir dir;
  testing::ManualClock clock;
  {
    auto store = storage::SqliteStore::open(dir.file("b.db")).value();
    CircuitBreaker b("search", BreakerConfig::seed_preset(), clock);
    REQUIRE(b.share(*store, {.mode = SharingMode::snapshot}));
    test::fail_n(b, 5);
    REQUIRE(b.publish_now());
  }
  clock.advance(10s);
  auto store = storage::SqliteStore::open(dir.file("b.db")).value();
  CircuitBreaker b("search", BreakerConfig::seed_preset(), clock);
  std::vector<std::string> transitions;
  b.subscribe([&](const BreakerEvent& e) {
    if (e.type == BreakerEventType::state_transition) transitions.push_back(std::string(e.reason));
  });
  REQUIRE(b.share(*store, {.mode = SharingMode::snapshot}));
  CHECK(transitions == std::vector<std::string>{"restored:consecutive_failures"});
  auto p = b.try_acquire();
  CHECK_FALSE(p);
  CHECK(p.retry_after() == 50s);
  auto rec = store->get_breaker("search").value().value();
  auto status = status_from_record(rec).value();
  CHECK(status.state == BreakerState::open);
  CHECK(status.counters.failures == 5);  // the writer's lifetime counters
}

TEST_CASE("breaker sharing: with the store unavailable the breaker goes on locally and says so", "[breaker][sharing]") {
  storage::MemoryStore inner;
  testing::FaultInjectingStore store(inner);
  testing::ManualClock clock;
  CircuitBreaker b("x", BreakerConfig::seed_preset(), clock);
  store.fail_all_reads(errc::unavailable);
  store.fail_all_writes(errc::unavailable);
  auto r = b.share(store, {.poll_interval = 1s});
  REQUIRE_FALSE(r);
  CHECK(r.error().is(errc::unavailable));
  CHECK_FALSE(b.sharing_status().store_ok);
  CHECK_THAT(b.sharing_status().last_error, Catch::Contains("injected fault"));
  test::fail_n(b, 5);  // works locally: trips
  CHECK(b.current_state() == BreakerState::open);
  CHECK_FALSE(inner.get_breaker("x").value().has_value());
  store.clear();
  clock.advance(1s);
  (void)b.try_acquire();  // the next poll publishes what it could not write
  CHECK(b.sharing_status().store_ok);
  auto rec = inner.get_breaker("x").value();
  REQUIRE(rec);
  CHECK(rec->state == "open");
}

TEST_CASE("breaker registry: per-key configuration, a size cap that evicts only idle closed breakers", "[breaker][registry]") {
  testing::ManualClock clock;
  BreakerRegistry reg(clock, {.max_breakers = 3});
  auto strict = BreakerConfig::seed_preset();
  strict.consecutive_failures = 1;
  REQUIRE(reg.configure("payments:*", strict));
  auto exact = BreakerConfig::seed_preset();
  exact.consecutive_failures = 3;
  REQUIRE(reg.configure("payments:eu", exact));
  CHECK(reg.configure("bad", BreakerConfig{.window_size = 0}).error().is(errc::invalid_argument));

  auto us = reg.get("payments:us").value();
  CHECK(us->config().consecutive_failures == 1u);
  CHECK(reg.get("payments:eu").value()->config().consecutive_failures == 3u);
  CHECK(reg.get("search").value()->config().failure_rate_threshold == 50.0);  // defaults
  CHECK(reg.get("payments:us").value() == us);
  CHECK(reg.size() == 3);

  test::fail_n(*us, 1);  // open, and still held by `us`
  // Full: "payments:eu" and "search" are idle and closed; the least recently used goes.
  auto d = reg.get("d");
  REQUIRE(d);
  CHECK(reg.evictions() == 1);
  CHECK(reg.find("payments:eu") == nullptr);
  CHECK(reg.find("search") != nullptr);
  us.reset();  // nobody holds it now, but it is open: never evicted
  auto e = reg.get("e");
  REQUIRE(e);
  CHECK(reg.find("search") == nullptr);
  CHECK(reg.find("payments:us") != nullptr);
  auto held = reg.get("f");  // d and e are held by the test, payments:us is open
  REQUIRE_FALSE(held);
  CHECK(held.error().is(errc::busy));
  CHECK_THAT(held.error().message, Catch::Contains("none idle and closed"));
  CHECK(reg.get("").error().is(errc::invalid_argument));
  CHECK(reg.remove("d"));
  CHECK(reg.list().size() == 2);
}

TEST_CASE("breaker registry: persisted breakers and the Prometheus export", "[breaker][registry]") {
  storage::MemoryStore store;
  testing::ManualClock clock;
  {
    BreakerRegistry reg(clock, {.defaults = BreakerConfig::seed_preset(), .store = &store, .sharing = {.mode = SharingMode::shared}});
    test::fail_n(*reg.get("a\"b").value(), 5);
    test::succeed_n(*reg.get("ok").value(), 3);
    REQUIRE(reg.publish_all());
    std::vector<BreakerStatus> all;
    for (const auto& b : reg.list()) all.push_back(b->status());
    const auto text = to_prometheus(all);
    CHECK_THAT(text, Catch::Contains("# TYPE automation_circuit_breaker_state gauge"));
    CHECK_THAT(text, Catch::Contains(R"(automation_circuit_breaker_state{name="a\"b",state="open"} 1)"));
    CHECK_THAT(text, Catch::Contains(R"(automation_circuit_breaker_calls_total{name="ok",kind="successful"} 3)"));
    CHECK_THAT(text, Catch::Contains(R"(automation_circuit_breaker_calls_total{name="a\"b",kind="failed"} 5)"));
  }
  BreakerRegistry again(clock, {.defaults = BreakerConfig::seed_preset(), .store = &store, .sharing = {.mode = SharingMode::shared}});
  CHECK(again.get("a\"b").value()->current_state() == BreakerState::open);
  CHECK(store.list_breakers().value().size() == 2);
}

TEST_CASE("breaker sharing: a restart goes on counting where the window stopped", "[breaker][sharing]") {
  test::TempDir dir;
  testing::ManualClock clock;
  auto time_cfg = BreakerConfig{};
  time_cfg.window = BreakerConfig::Window::time;
  time_cfg.window_size = 10;
  time_cfg.bucket_width = 1s;
  time_cfg.minimum_calls = 4;
  time_cfg.failure_rate_threshold = 50;
  {
    auto store = storage::SqliteStore::open(dir.file("b.db")).value();
    CircuitBreaker count("count", BreakerConfig::seed_preset(), clock);
    CircuitBreaker time("time", time_cfg, clock);
    REQUIRE(count.share(*store, {.mode = SharingMode::snapshot}));
    REQUIRE(time.share(*store, {.mode = SharingMode::snapshot}));
    test::succeed_n(count, 1);
    test::fail_n(count, 4);  // one short of the seed preset's 5
    test::succeed_n(time, 2);
    test::fail_n(time, 1);
    REQUIRE(count.publish_now());
    REQUIRE(time.publish_now());
  }
  auto store = storage::SqliteStore::open(dir.file("b.db")).value();
  CircuitBreaker count("count", BreakerConfig::seed_preset(), clock);
  CircuitBreaker time("time", time_cfg, clock);
  REQUIRE(count.share(*store, {.mode = SharingMode::snapshot}));
  REQUIRE(time.share(*store, {.mode = SharingMode::snapshot}));
  CHECK(count.snapshot().calls == 5);
  CHECK(count.snapshot().failures == 4);
  test::fail_n(count, 1);
  CHECK(count.current_state() == BreakerState::open);
  CHECK(count.last_reason() == "consecutive_failures");
  CHECK(time.snapshot().calls == 3);
  test::fail_n(time, 1);  // 2 of 4 failed: 50 %
  CHECK(time.current_state() == BreakerState::open);

  // A different window shape starts empty instead of guessing.
  {
    CircuitBreaker first("shape", BreakerConfig::seed_preset(), clock);
    REQUIRE(first.share(*store, {.mode = SharingMode::snapshot}));
    test::fail_n(first, 3);
    REQUIRE(first.publish_now());
  }
  auto other = BreakerConfig::seed_preset();
  other.window_size = 7;
  CircuitBreaker same("shape", BreakerConfig::seed_preset(), clock);
  CircuitBreaker reshaped("shape", other, clock);
  REQUIRE(same.share(*store, {.mode = SharingMode::none}));
  REQUIRE(same.share(*store, {.mode = SharingMode::snapshot}));
  REQUIRE(reshaped.share(*store, {.mode = SharingMode::snapshot}));
  CHECK(same.snapshot().failures == 3);
  CHECK(reshaped.snapshot().calls == 0);
}

TEST_CASE("breaker sharing: one-shot processes close a half-open breaker together", "[breaker][sharing]") {
  storage::MemoryStore store;
  testing::ManualClock clock;
  auto one_shot = [&](bool ok) {  // what `autoctl breaker run` does in each process
    CircuitBreaker b("x", BreakerConfig::seed_preset(), clock);
    REQUIRE(b.share(store, {.mode = SharingMode::shared}));
    auto p = b.try_acquire();
    if (p) ok ? p.success() : p.failure();
    REQUIRE(b.publish_now());
    return b.current_state();
  };
  for (int i = 0; i < 4; ++i) CHECK(one_shot(false) == BreakerState::closed);
  CHECK(one_shot(false) == BreakerState::open);
  clock.advance(61s);
  CHECK(one_shot(true) == BreakerState::half_open);  // the first of two probe successes
  CHECK(one_shot(true) == BreakerState::closed);
  CHECK(store.get_breaker("x").value()->reason == "half_open_probes_succeeded");
}

TEST_CASE("breaker sharing: a failed publish is retried at the next poll, not on every call", "[breaker][sharing]") {
  storage::MemoryStore inner;
  testing::FaultInjectingStore store(inner);
  testing::ManualClock clock;
  CircuitBreaker b("x", BreakerConfig::seed_preset(), clock);
  REQUIRE(b.share(store, {.poll_interval = 5s}));
  store.fail_all_writes(errc::busy);
  const auto before = store.writes();
  test::fail_n(b, 5);  // trips: one publish attempt, which fails
  CHECK(store.writes() == before + 1);
  for (int i = 0; i < 20; ++i) {
    CHECK_FALSE(b.try_acquire());
    (void)b.state();
  }
  CHECK(store.writes() == before + 1);  // calls did not wait on the store
  CHECK_FALSE(b.sharing_status().store_ok);
  store.clear();
  clock.advance(5s);
  (void)b.try_acquire();
  CHECK(store.writes() == before + 2);
  CHECK(b.sharing_status().store_ok);
  CHECK(inner.get_breaker("x").value()->state == "open");
}

TEST_CASE("breaker sharing: re-publishing an adopted reset does not reset the others again", "[breaker][sharing]") {
  storage::MemoryStore store;
  testing::ManualClock clock;
  CircuitBreaker a("x", BreakerConfig::seed_preset(), clock);
  CircuitBreaker b("x", BreakerConfig::seed_preset(), clock);
  REQUIRE(a.share(store, {.poll_interval = 1s}));
  REQUIRE(b.share(store, {.poll_interval = 1s}));
  a.reset();  // published as "reset"
  clock.advance(1s);
  CHECK(b.state() == BreakerState::closed);
  CHECK(b.last_reason() == "shared:reset");
  test::fail_n(a, 3);        // a counts 3 failures in a row locally
  REQUIRE(b.publish_now());  // writes "shared:reset", which is not a new reset
  clock.advance(1s);
  CHECK(a.state() == BreakerState::closed);  // a adopts b's record...
  CHECK(a.sharing_status().version == store.get_breaker("x").value()->version);
  CHECK(a.snapshot().failures == 3);  // ...and keeps its window
  test::fail_n(a, 2);                 // 5 in a row: a trips
  CHECK(a.current_state() == BreakerState::open);
}

TEST_CASE("breaker sharing: no lock is held while a protected call runs", "[breaker][sharing]") {
  // A call admitted by A is still running (its thread waits) while everything else happens: other
  // calls on A, a second instance tripping and publishing, A adopting that, status, a reset and a
  // publish. Were any lock of the breaker or its store held across the call, this would hang.
  SharedPair pair;
  auto [store_a, store_b, clock, a, b] = pair.parts();  // references into the pair
  std::latch admitted(1), finish(1);
  bool was_admitted = false;  // checked on the main thread (Catch2 assertions are not thread-safe)
  std::thread call([&] {
    auto p = a.try_acquire();
    was_admitted = p.admitted();
    admitted.count_down();
    finish.wait();  // the protected call runs until the main thread is done
    p.success();    // from an older generation by now: dropped as stale
  });
  admitted.wait();
  CHECK(was_admitted);
  test::succeed_n(a, 3);
  test::fail_n(b, 5);  // B trips and publishes by compare-and-set
  CHECK(b.current_state() == BreakerState::open);
  REQUIRE(a.sync_now());  // A adopts it
  CHECK(a.current_state() == BreakerState::open);
  CHECK(a.status().state == BreakerState::open);
  a.reset();
  REQUIRE(a.publish_now());
  REQUIRE(b.sync_now());
  CHECK(b.current_state() == BreakerState::closed);
  finish.count_down();
  call.join();
  CHECK(a.counters().stale == 1);
  CHECK(a.counters().successes == 3);
}
