// Scheduler on a ManualClock: cron and interval fires, overlap policies, catch-up, jitter, pause and
// resume, pause after failures, host and library events, loop protection, restarts, and two
// schedulers on one database firing each fire exactly once.
#include <automation/core/time.hpp>
#include <automation/resilience/circuit_breaker.hpp>
#include <automation/storage/memory_store.hpp>
#include <automation/storage/sqlite_store.hpp>
#include <automation/testing/manual_clock.hpp>
#include <automation/workflow/engine.hpp>
#include <automation/workflow/scheduler.hpp>

#include "support/breaker.hpp"
#include "support/catch_result.hpp"
#include "support/temp_dir.hpp"
#include "support/workflow.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <deque>
#include <functional>
#include <map>
#include <set>

using namespace automation;
using namespace automation::workflow;
using namespace std::chrono_literals;
using storage::RunState;

namespace {

TimePoint ManualClockStart() { return testing::ManualClock::default_start(); }

using test::parse;

ScheduleDefinition sched(std::string name, std::string workflow) {
  ScheduleDefinition s;
  s.name = std::move(name);
  s.workflow = std::move(workflow);
  return s;
}

// An engine whose callbacks wait in a queue until the test runs them, so a run stays "running" for
// as long as the test wants.
struct Host {
  storage::Store& store;
  testing::ManualClock& clock;
  std::deque<std::function<void()>> pending;
  std::vector<std::string> calls;
  std::vector<std::string> payloads;
  bool fail_next = false;
  std::unique_ptr<WorkflowEngine> engine;
  std::unique_ptr<Scheduler> scheduler;

  Host(storage::Store& s, testing::ManualClock& c, bool held, Scheduler::Options so = {}) : store(s), clock(c) {
    WorkflowEngine::Options o;
    if (held) o.executor = [this](std::function<void()> fn) { pending.push_back(std::move(fn)); };
    engine = std::make_unique<WorkflowEngine>(store, clock, std::move(o));
    engine->register_callback("work", [this](StepContext& c) -> Result<void> {
      calls.push_back(c.workflow);
      if (auto it = c.params.find("payload"); it != c.params.end()) payloads.push_back(it->second);
      if (fail_next) return fail(errc::io, "work failed");
      return {};
    });
    REQUIRE(engine->register_workflow(parse(R"({"name":"job","steps":[{"id":"a","callback":"work"}]})")));
    REQUIRE(engine->register_workflow(
        parse(R"({"name":"handler","params":{"payload":{"default":"{}"}},"steps":[{"id":"a","callback":"work"}]})")));
    scheduler = std::make_unique<Scheduler>(*engine, std::move(so));
  }
  // Runs the oldest held callback, then polls.
  void run_one() {
    REQUIRE_FALSE(pending.empty());
    auto fn = std::move(pending.front());
    pending.pop_front();
    fn();
    scheduler->poll();
  }
  // Runs held callbacks (and polls) until nothing is pending.
  void release() {
    for (int i = 0; i < 100; ++i) {
      scheduler->poll();
      if (pending.empty()) return;
      auto fn = std::move(pending.front());
      pending.pop_front();
      fn();
      engine->wait(10ms);
    }
  }
  std::vector<storage::FireRecord> fires(std::string_view name) {
    auto f = store.list_fires(name, 0).value();
    std::reverse(f.begin(), f.end());  // oldest first
    return f;
  }
  std::vector<RunRecord> runs() {
    storage::RunQuery q;
    q.newest_first = false;
    q.limit = 0;
    return store.list_runs(q).value();
  }
};

std::vector<std::string> outcomes(const std::vector<storage::FireRecord>& fs) {
  std::vector<std::string> out;
  for (const auto& f : fs) out.push_back(f.outcome);
  return out;
}

}  // namespace

TEST_CASE("scheduler: a cron schedule fires at each due time exactly once, never early") {
  storage::MemoryStore store;
  testing::ManualClock clock;  // 2026-01-01T00:00:00Z
  Host h(store, clock, false);
  auto s = sched("every5", "job");
  s.cron = "every 5 minutes";
  REQUIRE(h.scheduler->add(s));
  auto r = h.scheduler->poll();
  CHECK(h.calls.empty());  // nothing before now is caught up for a new schedule
  REQUIRE(r.next_timer);
  CHECK(*r.next_timer == clock.now() + 5min);
  clock.advance(5min - 1ms);
  h.scheduler->poll();
  CHECK(h.calls.empty());
  for (int i = 0; i < 12; ++i) {
    clock.set(ManualClockStart() + (i + 1) * 5min);
    h.scheduler->poll();
    h.scheduler->poll();  // a second poll at the same time fires nothing more
  }
  CHECK(h.calls.size() == 12);
  auto fires = h.fires("every5");
  REQUIRE(fires.size() == 12);
  CHECK(fires[0].fire_time == ManualClockStart() + 5min);
  CHECK(fires[0].outcome == "started");
  CHECK(fires[0].run_id != 0);
  CHECK(fires[0].reason.find("every 5 minutes") != std::string::npos);
  for (const auto& run : h.runs()) {
    CHECK(run.trigger == "schedule:every5");
    CHECK(run.state == RunState::succeeded);
  }
  auto taken = h.scheduler->take_fires();
  CHECK(taken.size() == 12);
  CHECK(h.scheduler->take_fires().empty());
  CHECK(store.get_schedule("every5").value()->last_fire == ManualClockStart() + 60min);
}

TEST_CASE("scheduler: interval triggers are aligned to the epoch plus their offset") {
  storage::MemoryStore store;
  testing::ManualClock clock(ManualClockStart() + 7min);
  Host h(store, clock, false);
  auto s = sched("iv", "job");
  s.interval = 10min;
  s.interval_offset = 3min;
  REQUIRE(h.scheduler->add(s));
  CHECK(next_fire_time(s, clock.now()) == ManualClockStart() + 13min);
  CHECK(next_fire_time(s, ManualClockStart() + 13min) == ManualClockStart() + 23min);
  clock.set(ManualClockStart() + 33min);
  h.scheduler->poll();
  auto fires = h.fires("iv");
  REQUIRE(fires.size() == 2);
  CHECK(fires[0].fire_time == ManualClockStart() + 23min);  // 13 and 23 are late: missed (catch-up is 1 minute)
  CHECK(fires[0].outcome == "missed");
  CHECK(fires[0].reason.find("2 fires from 2026-01-01T00:13:00Z to 2026-01-01T00:23:00Z missed") != std::string::npos);
  CHECK(fires[1].fire_time == ManualClockStart() + 33min);
  CHECK(fires[1].outcome == "started");
}

TEST_CASE("scheduler: after downtime, fires inside the catch-up window run and older ones are recorded once as missed") {
  storage::MemoryStore store;
  testing::ManualClock clock;
  auto s = sched("hourly", "job");
  s.cron = "@hourly";
  s.catch_up = 2h;
  s.overlap = OverlapPolicy::buffer_all;
  {
    Host first(store, clock, false);
    REQUIRE(first.scheduler->add(s));
    first.scheduler->poll();
  }
  clock.advance(5h + 10min);  // down from 00:00 to 05:10
  Host h(store, clock, false);
  REQUIRE(h.scheduler->add(s));
  h.scheduler->poll();
  auto fires = h.fires("hourly");
  REQUIRE(outcomes(fires) == std::vector<std::string>{"missed", "started", "started"});
  CHECK(fires[0].fire_time == ManualClockStart() + 3h);
  CHECK(fires[0].reason.find("3 fires from 2026-01-01T01:00:00Z to 2026-01-01T03:00:00Z missed") != std::string::npos);
  CHECK(fires[1].fire_time == ManualClockStart() + 4h);
  CHECK(fires[1].reason.find("late") != std::string::npos);
  CHECK(fires[2].fire_time == ManualClockStart() + 5h);
  CHECK(h.calls.size() == 2);
}

TEST_CASE("scheduler: overlap policies decide what a fire does while the previous run is active") {
  storage::MemoryStore store;
  testing::ManualClock clock;
  // A schedule every minute; the first run is held (its callback waits) while more fires come.
  auto add_every_minute = [](Host& h, OverlapPolicy p) {
    auto s = sched("ov", "job");
    s.interval = 1min;
    s.overlap = p;
    REQUIRE(h.scheduler->add(s));
  };
  auto fire = [&](Host& h, int n) {
    for (int i = 0; i < n; ++i) {
      clock.advance(1min);
      h.scheduler->poll();
    }
  };
  SECTION("skip") {
    Host h(store, clock, true);
    add_every_minute(h, OverlapPolicy::skip);
    fire(h, 3);
    CHECK(outcomes(h.fires("ov")) == std::vector<std::string>{"started", "skipped", "skipped"});
    CHECK(h.fires("ov")[1].reason.find("overlap skip: run 1 is still running") != std::string::npos);
    h.release();
    CHECK(h.calls.size() == 1);
  }
  SECTION("buffer_one") {
    Host h(store, clock, true);
    add_every_minute(h, OverlapPolicy::buffer_one);
    fire(h, 3);
    CHECK(outcomes(h.fires("ov")) == std::vector<std::string>{"started", "buffered", "skipped"});
    h.release();
    CHECK(h.calls.size() == 2);
    CHECK(outcomes(h.fires("ov")) == std::vector<std::string>{"started", "started", "skipped"});
    CHECK(h.fires("ov")[1].reason.find("buffered fire started") != std::string::npos);
  }
  SECTION("buffer_all") {
    Host h(store, clock, true);
    add_every_minute(h, OverlapPolicy::buffer_all);
    fire(h, 3);
    CHECK(outcomes(h.fires("ov")) == std::vector<std::string>{"started", "buffered", "buffered"});
    // One at a time, in fire order: each run ends before the next buffered fire starts.
    CHECK(h.pending.size() == 1);
    h.run_one();
    CHECK(h.pending.size() == 1);
    CHECK(outcomes(h.fires("ov")) == std::vector<std::string>{"started", "started", "buffered"});
    h.run_one();
    CHECK(h.pending.size() == 1);
    CHECK(outcomes(h.fires("ov")) == std::vector<std::string>{"started", "started", "started"});
    h.release();
    CHECK(h.calls.size() == 3);
    auto runs = h.runs();
    REQUIRE(runs.size() == 3);
    CHECK(h.fires("ov")[1].run_id == runs[1].id);
  }
  SECTION("cancel_other") {
    Host h(store, clock, true);
    add_every_minute(h, OverlapPolicy::cancel_other);
    fire(h, 2);
    // The new fire waits for the cancelled run to end instead of running beside it.
    CHECK(outcomes(h.fires("ov")) == std::vector<std::string>{"started", "buffered"});
    CHECK(h.fires("ov")[1].reason.find("cancelled run 1") != std::string::npos);
    CHECK(h.runs().size() == 1);
    h.release();
    auto runs = h.runs();
    REQUIRE(runs.size() == 2);
    CHECK(runs[0].state == RunState::cancelled);
    CHECK(runs[0].reason.find("cancelled by schedule ov (overlap cancel_other)") != std::string::npos);
    CHECK(runs[1].state == RunState::succeeded);
    CHECK(outcomes(h.fires("ov")) == std::vector<std::string>{"started", "started"});
  }
  SECTION("allow_all") {
    Host h(store, clock, true);
    add_every_minute(h, OverlapPolicy::allow_all);
    fire(h, 3);
    CHECK(outcomes(h.fires("ov")) == std::vector<std::string>{"started", "started", "started"});
    CHECK(h.pending.size() == 3);  // all three running at once
    h.release();
  }
}

TEST_CASE("scheduler: a buffered fire waits while its schedule is paused and starts after the resume") {
  storage::MemoryStore store;
  testing::ManualClock clock;
  Host h(store, clock, true);
  auto s = sched("ov", "job");
  s.interval = 1min;
  s.overlap = OverlapPolicy::buffer_one;
  REQUIRE(h.scheduler->add(s));
  clock.advance(1min);
  h.scheduler->poll();
  clock.advance(1min);
  h.scheduler->poll();
  REQUIRE(outcomes(h.fires("ov")) == std::vector<std::string>{"started", "buffered"});
  REQUIRE(h.scheduler->pause("ov", "maintenance"));
  h.release();  // run 1 ends while paused
  CHECK(h.calls.size() == 1);
  CHECK(outcomes(h.fires("ov")) == std::vector<std::string>{"started", "buffered"});
  REQUIRE(h.scheduler->resume("ov", "done"));
  h.release();
  CHECK(h.calls.size() == 2);
  CHECK(outcomes(h.fires("ov")) == std::vector<std::string>{"started", "started"});
}

TEST_CASE("scheduler: a buffered fire survives a restart and is started once the old run is gone") {
  test::TempDir dir;
  testing::ManualClock clock;
  const auto db = dir.file("s.db");
  auto s = sched("ov", "job");
  s.interval = 1min;
  s.overlap = OverlapPolicy::buffer_one;
  {
    auto store = storage::SqliteStore::open(db).value();
    Host h(*store, clock, true);
    REQUIRE(h.scheduler->add(s));
    clock.advance(1min);
    h.scheduler->poll();
    clock.advance(1min);
    h.scheduler->poll();
    CHECK(outcomes(h.fires("ov")) == std::vector<std::string>{"started", "buffered"});
    // The host stops with run 1 still running: the engine marks it interrupted.
  }
  auto store = storage::SqliteStore::open(db).value();
  Host h(*store, clock, false);
  REQUIRE(h.scheduler->add(s));
  h.scheduler->poll();
  auto fires = h.fires("ov");
  REQUIRE(fires.size() == 2);
  CHECK(fires[1].outcome == "started");
  CHECK(fires[1].fire_time == ManualClockStart() + 2min);
  CHECK(h.calls.size() == 1);
  CHECK(store->get_run(fires[1].run_id).value()->state == RunState::succeeded);
}

TEST_CASE("scheduler: jitter delays each fire by the same amount in every process, within the bound") {
  storage::MemoryStore store;
  testing::ManualClock clock;
  auto s = sched("j", "job");
  s.cron = "@hourly";
  s.jitter = 10min;
  Host a(store, clock, false);
  REQUIRE(a.scheduler->add(s));
  auto first = a.scheduler->poll().next_timer;
  storage::MemoryStore other;
  Host b(other, clock, false);
  REQUIRE(b.scheduler->add(s));
  CHECK(b.scheduler->poll().next_timer == first);
  REQUIRE(first);
  CHECK(*first >= ManualClockStart() + 1h);
  CHECK(*first < ManualClockStart() + 1h + 10min);
  std::set<TimePoint> delays;
  for (int i = 0; i < 6; ++i) {
    clock.set(ManualClockStart() + (i + 1) * 1h);
    auto t = a.scheduler->poll().next_timer;
    REQUIRE(t);
    delays.insert(TimePoint(*t - ManualClockStart() - (i + 1) * 1h));
    clock.set(*t - 1ms);
    a.scheduler->poll();
    CHECK(a.calls.size() == static_cast<std::size_t>(i));  // not before nominal + jitter
    clock.set(*t);
    a.scheduler->poll();
    CHECK(a.calls.size() == static_cast<std::size_t>(i + 1));
  }
  CHECK(delays.size() > 1);                                     // not a constant offset
  CHECK(a.fires("j")[0].fire_time == ManualClockStart() + 1h);  // the key is the nominal time
}

TEST_CASE("scheduler: pause and resume, also from another process, and nothing paused is caught up") {
  storage::MemoryStore store;
  testing::ManualClock clock;
  Host h(store, clock, false);
  auto s = sched("p", "job");
  s.interval = 10min;
  s.catch_up = 1h;
  REQUIRE(h.scheduler->add(s));
  REQUIRE(h.scheduler->pause("p", "maintenance window", "user:ada"));
  clock.advance(30min);
  h.scheduler->poll();
  CHECK(h.calls.empty());
  auto rec = store.get_schedule("p").value().value();
  CHECK(rec.paused);
  CHECK(rec.reason == "maintenance window");
  CHECK(rec.updated_by == "user:ada");
  REQUIRE(h.scheduler->resume("p", "", "user:ada"));
  h.scheduler->poll();
  CHECK(h.calls.empty());  // the three paused fires are not caught up
  clock.advance(10min);
  h.scheduler->poll();
  CHECK(h.calls.size() == 1);

  // Another process pauses it through the store; the scheduler sees it at its next refresh.
  REQUIRE(pause_schedule(store, "p", "paused from the CLI", "user:bob", clock.now()));
  clock.advance(10min);
  h.scheduler->poll();
  CHECK(h.calls.size() == 1);
  auto audit = store.query_audit({}).value();
  std::vector<std::string> actions;
  for (const auto& a : audit) actions.push_back(a.action + " " + a.resource + " " + a.actor);
  CHECK(std::count(actions.begin(), actions.end(), "schedule.pause schedule:p user:ada") == 1);
  CHECK(std::count(actions.begin(), actions.end(), "schedule.resume schedule:p user:ada") == 1);
  CHECK(std::count(actions.begin(), actions.end(), "schedule.pause schedule:p user:bob") == 1);

  // A manual fire works while paused.
  auto fired = h.scheduler->fire("p", "user:ada");
  REQUIRE(fired);
  CHECK(fired->outcome == "started");
  CHECK(fired->reason == "fired by user:ada");
  h.scheduler->poll();
  CHECK(h.calls.size() == 2);
  CHECK(h.scheduler->fire("nope").error().is(errc::not_found));
}

TEST_CASE("scheduler: a schedule pauses itself after N consecutive failed runs, and a success resets the count") {
  storage::MemoryStore store;
  testing::ManualClock clock;
  Host h(store, clock, false);
  auto s = sched("flaky", "job");
  s.interval = 1min;
  s.pause_after_failures = 3;
  REQUIRE(h.scheduler->add(s));
  h.fail_next = true;
  for (int i = 0; i < 2; ++i) {
    clock.advance(1min);
    h.scheduler->poll();
  }
  CHECK(store.get_schedule("flaky").value()->consecutive_failures == 2);
  h.fail_next = false;
  clock.advance(1min);
  h.scheduler->poll();
  CHECK(store.get_schedule("flaky").value()->consecutive_failures == 0);
  h.fail_next = true;
  for (int i = 0; i < 5; ++i) {
    clock.advance(1min);
    h.scheduler->poll();
  }
  auto rec = store.get_schedule("flaky").value().value();
  CHECK(rec.paused);
  CHECK(rec.consecutive_failures == 3);
  CHECK(rec.reason.find("paused after 3 consecutive failures (last: run 6 failed") != std::string::npos);
  CHECK(h.calls.size() == 6);  // 2 + 1 + 3, then paused
  auto audit = store.query_audit({}).value();
  REQUIRE(audit.size() == 1);
  CHECK(audit[0].action == "schedule.pause");
  CHECK(audit[0].actor == "system:scheduler");
}

TEST_CASE("scheduler: events start runs with their payload, by name, prefix and filter, each exactly once") {
  storage::MemoryStore store;
  testing::ManualClock clock;
  Host h(store, clock, false);
  auto exact = sched("on-register", "handler");
  exact.event = "user.registered";
  auto pro = sched("on-pro", "handler");
  pro.event = "user.*";
  pro.event_filter = {{"plan", "pro"}};
  REQUIRE(h.scheduler->add(exact));
  REQUIRE(h.scheduler->add(pro));
  REQUIRE(h.scheduler->emit("user.registered", {{"user", "ada"}, {"plan", "free"}}));
  REQUIRE(h.scheduler->emit("user.upgraded", {{"user", "ada"}, {"plan", "pro"}}));
  REQUIRE(h.scheduler->emit("order.placed", {{"plan", "pro"}}));
  h.scheduler->poll();
  h.scheduler->poll();
  CHECK(h.calls.size() == 2);
  REQUIRE(h.payloads.size() == 2);
  CHECK(h.payloads[0] == R"({"user":"ada","plan":"free"})");
  CHECK(h.payloads[1] == R"({"user":"ada","plan":"pro"})");
  auto f = h.fires("on-register");
  REQUIRE(f.size() == 1);
  CHECK(f[0].event_id == 1);
  CHECK(f[0].reason.find("event user.registered #1 from host") != std::string::npos);
  CHECK(h.fires("on-pro").size() == 1);
  CHECK(store.get_schedule("on-register").value()->last_event_id >= 1);

  // A second scheduler on the same store (another process) sees the same events and fires none again.
  Host other(store, clock, false);
  REQUIRE(other.scheduler->add(exact));
  REQUIRE(other.scheduler->add(pro));
  other.scheduler->poll();
  CHECK(other.calls.empty());
  CHECK(h.fires("on-register").size() == 1);
}

TEST_CASE("scheduler: events emitted while no scheduler ran are handled within the catch-up window only") {
  storage::MemoryStore store;
  testing::ManualClock clock;
  auto event = [&](std::string name) {
    storage::EventRecord e;
    e.name = std::move(name);
    e.time = clock.now();
    e.source = "cli:ada";
    return store.append_event(e).value();
  };
  event("content.published");  // two hours before the scheduler starts: too old
  clock.advance(1h + 50min);
  event("content.published");  // ten minutes before: handled
  clock.advance(10min);
  Host h(store, clock, false);
  auto s = sched("on-publish", "handler");
  s.event = "content.published";
  s.catch_up = 1h;
  REQUIRE(h.scheduler->add(s));
  h.scheduler->poll();
  CHECK(h.calls.size() == 1);
  auto f = h.fires("on-publish");
  REQUIRE(f.size() == 1);
  CHECK(f[0].event_id == 2);

  // A schedule with a shorter window records the event it is too late for, once, as missed.
  auto strict = sched("on-publish-strict", "handler");
  strict.event = "content.published";
  strict.catch_up = 5min;
  REQUIRE(h.scheduler->add(strict));
  h.scheduler->poll();
  h.scheduler->poll();
  CHECK(h.calls.size() == 1);
  auto m = h.fires("on-publish-strict");
  REQUIRE(m.size() == 1);
  CHECK(m[0].outcome == "missed");
  CHECK(m[0].event_id == 2);
  CHECK(m[0].reason.find("1 event up to content.published #2 missed") != std::string::npos);
}

TEST_CASE("scheduler: events that came while a schedule was paused are not run after the resume") {
  storage::MemoryStore store;
  testing::ManualClock clock;
  auto s = sched("on-publish", "handler");
  s.event = "content.published";
  s.catch_up = 24h;
  {
    Host first(store, clock, false);
    REQUIRE(first.scheduler->add(s));
    first.scheduler->poll();
  }
  // No scheduler runs (cron-driven `schedule tick`): pause, an event, resume, all through the store.
  REQUIRE(pause_schedule(store, "on-publish", "quiet hours", "user:ada", clock.now()));
  storage::EventRecord e;
  e.name = "content.published";
  e.time = clock.now();
  REQUIRE(store.append_event(e));
  clock.advance(1min);
  REQUIRE(resume_schedule(store, "on-publish", "", "user:ada", clock.now()));
  Host h(store, clock, false);
  REQUIRE(h.scheduler->add(s));
  h.scheduler->poll();
  CHECK(h.calls.empty());
  CHECK(h.fires("on-publish").empty());
  REQUIRE(h.scheduler->emit("content.published", {{"id", "after"}}));  // one after the resume runs
  h.scheduler->poll();
  CHECK(h.payloads == std::vector<std::string>{R"({"id":"after"})"});
}

TEST_CASE("scheduler: a stream of emits does not hold back the refresh that brings another process's pause") {
  storage::MemoryStore store;
  testing::ManualClock clock;
  Host h(store, clock, false);
  auto s = sched("iv", "job");
  s.interval = 10s;
  REQUIRE(h.scheduler->add(s));
  h.scheduler->poll();
  REQUIRE(pause_schedule(store, "iv", "paused elsewhere", "user:bob", clock.now()));
  for (int i = 0; i < 20; ++i) {  // an event every 200 ms, faster than the 1 s refresh
    REQUIRE(h.scheduler->emit("noise", {}));
    clock.advance(200ms);
    h.scheduler->poll();
  }
  CHECK(h.calls.empty());
}

TEST_CASE("scheduler: the library's own events trigger schedules, and an event loop stops at the depth limit") {
  storage::MemoryStore store;
  testing::ManualClock clock;
  Scheduler::Options so;
  so.max_event_depth = 3;
  Host h(store, clock, false, so);
  // on-failure runs "job" whenever any workflow fails; "job" fails too, so each run causes another.
  auto on_failure = sched("on-failure", "job");
  on_failure.event = "workflow.failed";
  on_failure.overlap = OverlapPolicy::allow_all;
  REQUIRE(h.scheduler->add(on_failure));
  h.fail_next = true;
  REQUIRE(h.engine->start("job"));  // a manual run fails: workflow.failed at depth 0
  for (int i = 0; i < 10; ++i) {
    clock.advance(1s);
    h.scheduler->poll();
  }
  // Depth 0 -> run, its failure at depth 1 -> run, depth 2 -> run, depth 3 -> refused.
  CHECK(h.calls.size() == 4);
  auto f = h.fires("on-failure");
  REQUIRE(f.size() == 4);
  CHECK(outcomes(f) == std::vector<std::string>{"started", "started", "started", "skipped"});
  CHECK(f[3].reason.find("max_event_depth 3") != std::string::npos);
  auto events = store.list_events({.name = "workflow.failed"}).value();
  REQUIRE(events.size() == 4);
  CHECK(events[0].depth == 0);
  CHECK(events[3].depth == 3);
  auto payload = boost::json::parse(events[0].payload).as_object();
  CHECK(payload.at("workflow").as_string() == "job");
  CHECK(payload.at("state").as_string() == "failed");
}

TEST_CASE("scheduler: a watched circuit breaker's transitions become events") {
  storage::MemoryStore store;
  testing::ManualClock clock;
  Host h(store, clock, false);
  auto on_open = sched("on-open", "handler");
  on_open.event = "breaker.opened";
  REQUIRE(h.scheduler->add(on_open));
  resilience::BreakerConfig cfg;
  cfg.minimum_calls = 2;
  cfg.window_size = 2;
  auto breaker = std::make_shared<resilience::CircuitBreaker>("payments", cfg, clock);
  h.scheduler->watch(breaker);
  test::fail_n(*breaker, 2);
  REQUIRE(breaker->state() == resilience::BreakerState::open);
  h.scheduler->poll();
  REQUIRE(h.payloads.size() == 1);
  auto p = boost::json::parse(h.payloads[0]).as_object();
  CHECK(p.at("breaker").as_string() == "payments");
  CHECK(p.at("to").as_string() == "open");
}

TEST_CASE("scheduler: two schedulers on one SQLite database fire every fire exactly once") {
  test::TempDir dir;
  testing::ManualClock clock;
  auto store_a = storage::SqliteStore::open(dir.file("s.db")).value();
  auto store_b = storage::SqliteStore::open(dir.file("s.db")).value();
  // Neither rereads the other's state between fires, so both reach every fire and race for its key.
  Scheduler::Options so;
  so.refresh = 24h;
  Host a(*store_a, clock, false, so);
  Host b(*store_b, clock, false, so);
  auto s = sched("tick", "job");
  s.cron = "* * * * *";
  s.overlap = OverlapPolicy::allow_all;
  REQUIRE(a.scheduler->add(s));
  REQUIRE(b.scheduler->add(s));
  for (int i = 0; i < 30; ++i) {
    clock.advance(1min);
    if (i % 2) {
      a.scheduler->poll();
      b.scheduler->poll();
    } else {
      b.scheduler->poll();
      a.scheduler->poll();
    }
  }
  CHECK(a.calls.size() + b.calls.size() == 30);
  CHECK_FALSE(a.calls.empty());
  CHECK_FALSE(b.calls.empty());
  auto fires = a.fires("tick");
  REQUIRE(fires.size() == 30);
  std::set<std::int64_t> runs;
  for (const auto& f : fires) {
    CHECK(f.outcome == "started");
    runs.insert(f.run_id);
  }
  CHECK(runs.size() == 30);
  CHECK(a.runs().size() == 30);
  std::map<std::string, int> outcomes_seen;
  for (auto* h : {&a, &b})
    for (const auto& f : h->scheduler->take_fires()) ++outcomes_seen[f.outcome];
  CHECK(outcomes_seen["started"] == 30);
  CHECK(outcomes_seen["taken"] == 29);  // every fire but the first, which b had stored before a first read the state

  // A restart whose state write was lost (it starts from an older last fire) runs nothing again.
  auto rec = store_a->get_schedule("tick").value().value();
  rec.last_fire = ManualClockStart() + 25min;
  REQUIRE(store_a->put_schedule(rec, rec.version));
  Host c(*store_a, clock, false);
  REQUIRE(c.scheduler->add(s));
  c.scheduler->poll();
  CHECK(c.calls.empty());
  CHECK(a.runs().size() == 30);
  auto again = c.scheduler->take_fires();
  REQUIRE_FALSE(again.empty());
  for (const auto& f : again) CHECK(f.outcome == "taken");
}

TEST_CASE("scheduler: @reboot fires once when the scheduler starts, and schedules follow their time zone across DST") {
  storage::MemoryStore store;
  // 2026-03-08 is the spring-forward day in New York: 02:30 does not exist and runs at 03:00 EDT.
  testing::ManualClock clock(parse_timestamp("2026-03-08T05:00:00Z").value());  // 00:00 EST
  Host h(store, clock, false);
  auto boot = sched("boot", "job");
  boot.cron = "@reboot";
  auto nightly = sched("nightly", "job");
  nightly.cron = "daily at 02:30";
  nightly.time_zone = "America/New_York";
  REQUIRE(h.scheduler->add(boot));
  REQUIRE(h.scheduler->add(nightly));
  h.scheduler->poll();
  clock.set(parse_timestamp("2026-03-08T07:00:00Z").value());  // 03:00 EDT
  h.scheduler->poll();
  auto f = h.fires("nightly");
  REQUIRE(f.size() == 1);
  CHECK(f[0].fire_time == parse_timestamp("2026-03-08T07:00:00Z").value());
  auto boots = h.fires("boot");
  REQUIRE(boots.size() == 1);  // once per scheduler start, not per poll
  CHECK(boots[0].fire_time == parse_timestamp("2026-03-08T05:00:00Z").value());
  // Another scheduler starting (another process, a restart) fires it again, at its own start.
  Host second(store, clock, false);
  REQUIRE(second.scheduler->add(boot));
  second.scheduler->poll();
  CHECK(h.fires("boot").size() == 2);
}

TEST_CASE("scheduler: definitions are validated with JSON paths, and add() checks the workflow and its parameters") {
  auto bad = parse_schedules(R"({"schedules":[
    {"name":"a","workflow":"job","cron":"61 * * * *"},
    {"name":"b","workflow":"job","cron":"@daily","interval":"1h"},
    {"name":"c","workflow":"job","interval":"1h","offset":"2h","overlap":"sometimes","time_zone":"Mars/Olympus"},
    {"name":"a","workflow":"job","event":"user registered","filter":{"plan":"pro"}},
    {"name":"d","workflow":"job","cron":"@daily","colour":"red"}
  ]})",
                             "schedules.json");
  REQUIRE_FALSE(bad);
  const auto& m = bad.error().message;
  INFO(m);
  CHECK(m.find("$.schedules[0].cron: cron \"61 * * * *\": minute field \"61\"") != std::string::npos);
  CHECK(m.find("$.schedules[1]: has more than one trigger") != std::string::npos);
  CHECK(m.find("$.schedules[2].offset: must be at least 0 and less than the interval (1h)") != std::string::npos);
  CHECK(m.find("$.schedules[2].overlap") != std::string::npos);
  CHECK(m.find("$.schedules[2].time_zone") != std::string::npos);
  CHECK(m.find("$.schedules[3].name: schedule \"a\" is defined twice") != std::string::npos);
  CHECK(m.find("$.schedules[3].event") != std::string::npos);
  CHECK(m.find("$.schedules[4]: unknown key \"colour\"") != std::string::npos);

  auto good = parse_schedules(R"([{"name":"job","cron":"daily at 03:00","time_zone":"Europe/Berlin","overlap":"buffer_one",
    "catch_up":"2h","jitter":"30s","pause_after_failures":2,"params":{"n":3}}])",
                              "inline");
  REQUIRE(good);
  REQUIRE(good->size() == 1);
  const auto& g = (*good)[0];
  CHECK(g.workflow == "job");  // defaults to the schedule's name
  CHECK(g.overlap == OverlapPolicy::buffer_one);
  CHECK(g.catch_up == 2h);
  CHECK(g.params.at("n") == "3");
  CHECK(g.trigger_text() == "cron 0 0 3 * * * (daily at 03:00) in Europe/Berlin");
  auto round = parse_schedule(boost::json::value(to_json(g)));
  REQUIRE(round);
  CHECK(round->cron == g.cron);
  CHECK(round->jitter == 30s);

  storage::MemoryStore store;
  testing::ManualClock clock;
  Host h(store, clock, false);
  auto s = sched("x", "jobb");
  s.cron = "@daily";
  auto r = h.scheduler->add(s);
  CHECK(r.error().is(errc::not_found));
  CHECK(r.error().message.find("did you mean \"job\"") != std::string::npos);
  s.workflow = "job";
  s.params = {{"size", "3"}};
  CHECK(h.scheduler->add(s).error().message.find("has no parameter \"size\"") != std::string::npos);

  // The seeds are valid against the built-in catalog's names.
  std::set<std::string> names;
  for (const auto& seed : builtin_schedules()) {
    REQUIRE(validate(seed));
    names.insert(seed.name);
  }
  CHECK(names == std::set<std::string>{"auto_backup", "health_check", "auto_optimize", "auto_scale_check", "daily-metrics-aggregation",
                                       "weekly-report-generation", "forecast-update", "delivery-retry", "hourly-resource-check",
                                       "on_user_register", "on_content_publish"});
  for (const auto& seed : builtin_schedules("Europe/Berlin")) {
    const bool local =
        seed.name == "daily-metrics-aggregation" || seed.name == "weekly-report-generation" || seed.name == "forecast-update";
    INFO(seed.name);
    CHECK(seed.time_zone == (local ? "Europe/Berlin" : "UTC"));
  }
}
