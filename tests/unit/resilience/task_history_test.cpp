#include <automation/core/json.hpp>
#include <automation/core/logging.hpp>
#include <automation/resilience/task_history.hpp>
#include <automation/storage/memory_store.hpp>
#include <automation/storage/sqlite_store.hpp>
#include <automation/testing/fault_injecting_store.hpp>
#include <automation/testing/manual_clock.hpp>

#include "support/temp_dir.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

using namespace automation;
using namespace automation::resilience;
using namespace std::chrono_literals;

namespace {

TaskRecord run(TimePoint started, std::string action, TaskOutcome o, Duration d, std::optional<double> impact = std::nullopt,
               std::string error = {}) {
  TaskRecord r;
  r.domain = "healer";
  r.action = std::move(action);
  r.outcome = o;
  r.started = started;
  r.ended = started + d;
  r.duration = d;
  r.impact = impact;
  r.error = std::move(error);
  return r;
}

}  // namespace

TEST_CASE("task history: statistics compare with the previous range of equal length", "[history]") {
  test::TempDir dir;
  const std::string uri = GENERATE(as<std::string>{}, "memory:", "sqlite");
  auto store = storage::open_store(uri == "memory:" ? uri : "sqlite:" + dir.file("h.db")).value();
  INFO(uri);
  testing::ManualClock clock(from_epoch_ms(1'700'000'000'000));
  TaskHistory h(*store, clock);
  const auto t0 = clock.now();
  // Previous day: 4 restarts, 2 succeed, durations 1,2,3,4 s, impact 1 and 3.
  // This day: 5 restarts, 4 succeed, durations 1,1,2,2,10 s, impact 2 and 4 and 6.
  std::vector<TaskRecord> v{
      run(t0 + 1h, "restart", TaskOutcome::success, 1s, 1.0),  run(t0 + 2h, "restart", TaskOutcome::failure, 2s, std::nullopt, "exit 1"),
      run(t0 + 3h, "restart", TaskOutcome::success, 3s, 3.0),  run(t0 + 4h, "restart", TaskOutcome::failure, 4s, std::nullopt, "exit 1"),
      run(t0 + 25h, "restart", TaskOutcome::success, 1s, 2.0), run(t0 + 26h, "restart", TaskOutcome::success, 1s, 4.0),
      run(t0 + 27h, "restart", TaskOutcome::success, 2s, 6.0), run(t0 + 28h, "restart", TaskOutcome::success, 2s),
      run(t0 + 29h, "restart", TaskOutcome::timeout, 10s),     run(t0 + 30h, "clear_cache", TaskOutcome::success, 1s),
  };
  REQUIRE(h.record(v));
  clock.set(t0 + 48h);
  auto report = h.stats({.since = t0 + 24h}).value();
  CHECK(report.until == t0 + 48h);  // until defaults to now
  CHECK(report.previous_since == t0);
  REQUIRE(report.groups.size() == 2);
  const auto& clear = report.groups[0];
  CHECK(clear.current.action == "clear_cache");
  CHECK_FALSE(clear.previous.has_value());  // no runs in the previous range
  CHECK_FALSE(clear.count.has_value());
  const auto& g = report.groups[1];
  CHECK(g.current.count == 5);
  CHECK(g.current.success_rate == Approx(0.8));
  CHECK(g.current.mean_duration == 3200ms);
  CHECK(g.current.p50_duration == 2s);
  CHECK(g.current.p95_duration == 10s);
  CHECK(*g.current.mean_impact == Approx(4.0));
  REQUIRE(g.previous.has_value());
  CHECK(g.previous->success_rate == Approx(0.5));
  REQUIRE(g.count.has_value());
  CHECK(g.count->previous == 4);
  CHECK(g.count->absolute == 1);
  CHECK(*g.count->relative == Approx(0.25));
  CHECK(g.success_rate->absolute == Approx(0.3));
  CHECK(*g.success_rate->relative == Approx(0.6));
  CHECK(g.mean_duration_ms->previous == Approx(2500));
  CHECK(g.mean_duration_ms->absolute == Approx(700));
  CHECK(g.p95_duration_ms->absolute == Approx(6000));
  CHECK(g.mean_impact->absolute == Approx(2.0));
  CHECK(*g.mean_impact->relative == Approx(1.0));
  REQUIRE(g.current.top_failures.size() == 1);
  CHECK(g.current.top_failures[0].reason == "timeout");

  auto whole = h.stats({}).value();  // no range: no comparison
  CHECK_FALSE(whole.previous_since.has_value());
  REQUIRE(whole.groups.size() == 2);
  CHECK(whole.groups[1].current.count == 9);
  CHECK_FALSE(whole.groups[1].previous.has_value());
  CHECK(h.stats({.since = t0, .until = t0}).error().is(errc::invalid_argument));

  auto text = json::dump(to_json(report));
  CHECK_THAT(text, Catch::Contains(R"("success_rate":{"previous":0.5,"absolute":0.30000000000000004)"));
}

TEST_CASE("task history: an execution measures itself on the clock and records why it ended", "[history]") {
  storage::MemoryStore store;
  testing::ManualClock clock(from_epoch_ms(1'700'000'000'000));
  TaskHistory h(store, clock);
  {
    CorrelationScope scope("0123456789abcdef0123456789abcdef");
    auto e = h.begin("scaler", "scale_up", R"({"to":4})");
    clock.advance(1500ms);
    REQUIRE(e.succeed(0.5));
    CHECK(e.succeed().error().is(errc::invalid_argument));  // only once
    auto f = h.begin("scaler", "scale_down");
    clock.advance(2s);
    Result<int> r = fail(errc::timeout, "metrics server did not answer");
    REQUIRE(f.finish(r));
    { auto dropped = h.begin("scaler", "noop"); }
  }
  auto all = h.list({.limit = 0, .newest_first = false}).value();
  REQUIRE(all.size() == 3);
  CHECK(all[0].duration == 1500ms);
  CHECK(all[0].params == R"({"to":4})");
  CHECK(all[0].impact == 0.5);
  CHECK(all[0].correlation_id == "0123456789abcdef0123456789abcdef");
  CHECK(all[1].outcome == TaskOutcome::timeout);
  CHECK(all[1].error == "metrics server did not answer");
  CHECK(all[2].outcome == TaskOutcome::cancelled);
  CHECK(all[2].error == "abandoned");
}

TEST_CASE("task history: a failed batch write keeps the records for the next flush", "[history]") {
  storage::MemoryStore inner;
  testing::FaultInjectingStore store(inner);
  testing::ManualClock clock(from_epoch_ms(1'700'000'000'000));
  TaskHistory h(store, clock, {.batch_size = 3, .max_buffered = 5});
  auto r = run(clock.now(), "restart", TaskOutcome::success, 1s);
  REQUIRE(h.add(r));
  REQUIRE(h.add(r));
  CHECK(h.buffered() == 2);
  store.fail_all_writes(errc::busy);
  auto full = h.add(r);  // the third triggers a write, which fails
  REQUIRE_FALSE(full);
  CHECK(full.error().is(errc::busy));
  CHECK_THAT(full.error().message, Catch::Contains("kept for the next flush"));
  CHECK(h.buffered() == 3);
  CHECK(h.add(r));  // no new attempt on every add while the store is down...
  CHECK(h.add(r));
  auto again = h.add(r);  // ...but once per batch: over max_buffered, the oldest is dropped and counted
  REQUIRE_FALSE(again);
  CHECK(again.error().is(errc::busy));
  CHECK(h.buffered() == 5);
  CHECK(h.dropped() == 1);
  store.clear();
  REQUIRE(h.flush());
  CHECK(h.buffered() == 0);
  CHECK(inner.query_tasks({.limit = 0}).value().size() == 5);
  auto bad = r;
  bad.domain.clear();
  CHECK(h.add(bad).error().is(errc::invalid_argument));
  CHECK(h.buffered() == 0);
}

TEST_CASE("task history: prune keeps the retention window", "[history]") {
  test::TempDir dir;
  auto store = storage::SqliteStore::open(dir.file("h.db")).value();
  testing::ManualClock clock(from_epoch_ms(1'700'000'000'000));
  TaskHistory h(*store, clock, {.retention = 24h * 90});
  const auto t0 = clock.now();
  std::vector<TaskRecord> v;
  for (int day = 0; day < 100; ++day) v.push_back(run(t0 + 24h * day, "restart", TaskOutcome::success, 1s));
  REQUIRE(h.record(v));
  clock.set(t0 + 24h * 100);
  CHECK(h.prune().value() == 10);  // days 0..9 are older than 90 days
  CHECK(h.list({.limit = 0}).value().size() == 90);
  CHECK(h.prune_older_than(24h * 10).value() == 80);
  CHECK(h.prune_older_than(-1h).error().is(errc::invalid_argument));
}
