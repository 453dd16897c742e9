// The Store contract: every backend must pass every case here identically.
#include <automation/storage/memory_store.hpp>
#include <automation/storage/sqlite_store.hpp>
#include <automation/testing/manual_clock.hpp>

#include "support/temp_dir.hpp"

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <set>
#include <thread>

using namespace automation;
using namespace automation::storage;
using namespace std::chrono_literals;

namespace {

struct MemoryBackend {
  std::unique_ptr<Store> store = std::make_unique<MemoryStore>();
};

struct SqliteBackend {
  test::TempDir dir;
  std::unique_ptr<Store> store = open_store("sqlite:" + dir.file("contract.db")).value();
};

AuditRecord record(TimePoint t, std::string actor, std::string action, std::string resource, AuditOutcome outcome = AuditOutcome::success) {
  AuditRecord r;
  r.time = t;
  r.actor = std::move(actor);
  r.action = std::move(action);
  r.resource = std::move(resource);
  r.origin = "test";
  r.outcome = outcome;
  r.reason = "because";
  r.details = R"({"n":1})";
  r.correlation_id = "abc";
  return r;
}

}  // namespace

TEMPLATE_TEST_CASE("contract: a new store is at the latest schema and empty", "[contract]", MemoryBackend, SqliteBackend) {
  TestType b;
  CHECK(b.store->schema_version().value() == latest_schema_version());
  auto info = b.store->info();
  REQUIRE(info);
  CHECK(info->schema_version == latest_schema_version());
  REQUIRE(info->areas.size() >= 1);
  CHECK(info->areas[0].area == "audit");
  CHECK(info->areas[0].rows == 0);
  auto m = b.store->migrate();
  REQUIRE(m);
  CHECK(m->applied.empty());
  CHECK(m->from_version == m->to_version);
}

TEMPLATE_TEST_CASE("contract: audit records round-trip with store-assigned increasing ids", "[contract]", MemoryBackend, SqliteBackend) {
  TestType b;
  testing::ManualClock clock;
  const auto t0 = clock.now() + 123ms;
  std::vector<AuditRecord> batch{record(t0, "user:alice", "store.migrate", "store"),
                                 record(t0 + 1s, "token:bot", "breaker.reset", "breaker:payments", AuditOutcome::failure)};
  batch[0].id = 999;  // ignored: the store assigns ids
  auto last = b.store->append_audit(batch);
  REQUIRE(last);
  auto all = b.store->query_audit({.limit = 0, .newest_first = false});
  REQUIRE(all);
  REQUIRE(all->size() == 2);
  CHECK(all->at(1).id == *last);
  CHECK(all->at(0).id < all->at(1).id);
  auto expected = batch;
  expected[0].id = all->at(0).id;
  expected[1].id = all->at(1).id;
  CHECK(all->at(0) == expected[0]);
  CHECK(all->at(1) == expected[1]);
  auto more = b.store->append_audit(std::vector{record(t0 + 2s, "user:bob", "config.set", "config")});
  REQUIRE(more);
  CHECK(*more > *last);
}

TEMPLATE_TEST_CASE("contract: audit queries filter by time range, actor, action, resource and outcome", "[contract]", MemoryBackend,
                   SqliteBackend) {
  TestType b;
  testing::ManualClock clock;
  const auto t0 = clock.now();
  std::vector<AuditRecord> batch;
  for (int i = 0; i < 10; ++i) {
    batch.push_back(record(t0 + std::chrono::minutes(i), i % 2 ? "user:alice" : "system:scheduler",
                           i < 5 ? "breaker.reset" : "store.migrate", i % 3 ? "breaker:payments" : "breaker:search",
                           i == 7 ? AuditOutcome::denied : AuditOutcome::success));
  }
  REQUIRE(b.store->append_audit(batch));
  auto count = [&](AuditQuery q) {
    q.limit = 0;
    return b.store->query_audit(q).value().size();
  };
  CHECK(count({}) == 10);
  CHECK(count({.since = t0 + 3min}) == 7);
  CHECK(count({.since = t0 + 3min, .until = t0 + 5min}) == 2);  // since inclusive, until exclusive
  CHECK(count({.actor = "user:alice"}) == 5);
  CHECK(count({.actor = "user:*"}) == 5);
  CHECK(count({.actor = "*"}) == 10);
  CHECK(count({.action = "store.*"}) == 5);
  CHECK(count({.resource = "breaker:search"}) == 4);
  CHECK(count({.resource = "breaker:*"}) == 10);
  CHECK(count({.resource = "breaker:"}) == 0);
  CHECK(count({.outcome = AuditOutcome::denied}) == 1);
  CHECK(count({.actor = "user:alice", .resource = "breaker:payments"}) == 3);
  auto newest = b.store->query_audit({.limit = 3, .newest_first = true}).value();
  REQUIRE(newest.size() == 3);
  CHECK(newest[0].time == t0 + 9min);
  CHECK(newest[2].time == t0 + 7min);
  auto oldest = b.store->query_audit({.limit = 2, .newest_first = false}).value();
  REQUIRE(oldest.size() == 2);
  CHECK(oldest[0].time == t0);
}

TEMPLATE_TEST_CASE("contract: invalid audit records are rejected whole and nothing is stored", "[contract]", MemoryBackend, SqliteBackend) {
  TestType b;
  testing::ManualClock clock;
  auto good = record(clock.now(), "user:a", "x.y", "r");
  auto bad_details = good;
  bad_details.details = "[1,2]";
  auto no_actor = good;
  no_actor.actor.clear();
  auto broken_json = good;
  broken_json.details = "{\"a\":";
  for (const auto& bad : {bad_details, no_actor, broken_json}) {
    auto r = b.store->append_audit(std::vector{good, bad});
    REQUIRE_FALSE(r);
    CHECK(r.error().is(errc::invalid_argument));
  }
  CHECK(b.store->query_audit({.limit = 0}).value().empty());
  auto r = b.store->append_audit(std::vector{no_actor});
  CHECK_THAT(r.error().message, Catch::Contains("\"actor\" must not be empty"));
}

TEMPLATE_TEST_CASE("contract: concurrent appenders lose nothing and ids are unique", "[contract]", MemoryBackend, SqliteBackend) {
  TestType b;
  testing::ManualClock clock;
  constexpr int kThreads = 4, kPerThread = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto r = b.store->append_audit(std::vector{record(clock.now(), "thread:" + std::to_string(t), "a.b", "r")});
        if (!r) FAIL_CHECK(r.error().message);
      }
    });
  }
  for (auto& t : threads) t.join();
  auto all = b.store->query_audit({.limit = 0}).value();
  CHECK(all.size() == kThreads * kPerThread);
  std::set<std::int64_t> ids;
  for (const auto& r : all) ids.insert(r.id);
  CHECK(ids.size() == all.size());
  CHECK(b.store->info().value().areas[0].rows == kThreads * kPerThread);
}

// ---- task history ------------------------------------------------------------------------------

namespace {

TaskRecord task(TimePoint started, std::string domain, std::string action, TaskOutcome outcome, Duration d, std::string params,
                std::string error = {}, std::optional<double> impact = std::nullopt) {
  TaskRecord r;
  r.domain = std::move(domain);
  r.action = std::move(action);
  r.params = std::move(params);
  r.outcome = outcome;
  r.error = std::move(error);
  r.started = started;
  r.ended = started + d;
  r.duration = d;
  r.impact = impact;
  r.correlation_id = "c1";
  return r;
}

// The hand-computed data set (see the expectations in the test below).
std::vector<TaskRecord> task_fixture(TimePoint t0) {
  using O = TaskOutcome;
  auto at = [&](int i) { return t0 + std::chrono::minutes(i); };
  return {
      task(at(0), "workflow", "deploy", O::success, 100ms, R"({"region":"eu","size":3})", {}, 1.0),
      task(at(1), "workflow", "deploy", O::success, 200ms, R"({"region":"eu","size":3})", {}, 3.0),
      task(at(2), "workflow", "deploy", O::failure, 300ms, R"({"region":"us","size":3})", "timeout talking to db"),
      task(at(3), "workflow", "deploy", O::success, 400ms, R"({"size":5,"region":"eu"})"),
      task(at(4), "workflow", "deploy", O::failure, 500ms, R"({"region":"us","size":5})", "timeout talking to db"),
      task(at(5), "workflow", "deploy", O::timeout, 600ms, R"({"region":"us","size":3})"),
      task(at(6), "workflow", "deploy", O::cancelled, 700ms, R"({"region":"eu","size":3})"),
      task(at(7), "workflow", "deploy", O::failure, 800ms, R"({"region":"us","size":3})", "disk full", 2.0),
      task(at(10), "scaler", "scale_up", O::success, 10ms, R"({"by":1})"),
      task(at(11), "scaler", "scale_up", O::success, 10ms, R"({"by":1})"),
  };
}

}  // namespace

TEMPLATE_TEST_CASE("contract: task records round-trip with store-assigned ids and filters", "[contract]", MemoryBackend, SqliteBackend) {
  TestType b;
  const auto t0 = from_epoch_ms(1'700'000'000'000);
  auto fixture = task_fixture(t0);
  fixture[0].duration = std::chrono::nanoseconds(1'234'567);  // stored to the microsecond
  auto last = b.store->append_tasks(fixture);
  REQUIRE(last);
  auto all = b.store->query_tasks({.limit = 0, .newest_first = false}).value();
  REQUIRE(all.size() == fixture.size());
  CHECK(all.back().id == *last);
  auto expected = fixture[0];
  expected.id = all[0].id;
  expected.duration = 1234us;
  CHECK(all[0] == expected);
  CHECK_FALSE(all[2].impact.has_value());
  CHECK(all[2].error == "timeout talking to db");
  auto count = [&](TaskQuery q) {
    q.limit = 0;
    return b.store->query_tasks(q).value().size();
  };
  CHECK(count({.domain = "workflow"}) == 8);
  CHECK(count({.domain = "workflow", .action = "deploy"}) == 8);
  CHECK(count({.action = "scale_up"}) == 2);
  CHECK(count({.outcome = TaskOutcome::failure}) == 3);
  CHECK(count({.since = t0 + 2min, .until = t0 + 5min}) == 3);
  CHECK(count({.correlation_id = "c1"}) == 10);
  CHECK(count({.correlation_id = "other"}) == 0);
  auto newest = b.store->query_tasks({.limit = 1}).value();
  REQUIRE(newest.size() == 1);
  CHECK(newest[0].action == "scale_up");
  auto info = b.store->info().value();
  auto area = std::find_if(info.areas.begin(), info.areas.end(), [](const AreaInfo& a) { return a.area == "tasks"; });
  REQUIRE(area != info.areas.end());
  CHECK(area->rows == 10);
}

TEMPLATE_TEST_CASE("contract: task statistics match hand-computed values", "[contract]", MemoryBackend, SqliteBackend) {
  TestType b;
  const auto t0 = from_epoch_ms(1'700'000'000'000);
  REQUIRE(b.store->append_tasks(task_fixture(t0)));
  auto stats = b.store->task_stats({}).value();
  REQUIRE(stats.size() == 2);
  const auto& s = stats[0];  // "scaler" sorts before "workflow"
  CHECK(s.domain == "scaler");
  CHECK(s.count == 2);
  CHECK(s.success_rate == 1.0);
  CHECK(s.p95_duration == 10ms);
  CHECK_FALSE(s.mean_impact.has_value());
  const auto& w = stats[1];
  CHECK(w.domain == "workflow");
  CHECK(w.action == "deploy");
  CHECK(w.count == 8);
  CHECK(w.successes == 3);
  CHECK(w.failures == 3);
  CHECK(w.timeouts == 1);
  CHECK(w.cancelled == 1);
  CHECK(w.success_rate == Approx(0.375));
  CHECK(w.mean_duration == 450ms);
  CHECK(w.p50_duration == 400ms);  // nearest rank: ceil(0.50 * 8) = 4th
  CHECK(w.p95_duration == 800ms);  // ceil(0.95 * 8) = 8th
  REQUIRE(w.mean_impact.has_value());
  CHECK(*w.mean_impact == Approx(2.0));
  CHECK(w.impact_samples == 3);
  REQUIRE(w.top_failures.size() == 3);
  CHECK(w.top_failures[0] == FailureReason{"timeout talking to db", 2});
  CHECK(w.top_failures[1] == FailureReason{"disk full", 1});
  CHECK(w.top_failures[2] == FailureReason{"timeout", 1});  // a timeout without an error text
  // region "eu": 4 runs, 3 successes; size 3: 6 runs, 2 successes; region "us" never succeeded and
  // size 5 has 2 runs, under the minimum support of 3.
  REQUIRE(w.success_params.size() == 2);
  CHECK(w.success_params[0].key == "region");
  CHECK(w.success_params[0].value == "\"eu\"");
  CHECK(w.success_params[0].support == 4);
  CHECK(w.success_params[0].successes == 3);
  CHECK(w.success_params[0].success_rate == Approx(0.75));
  CHECK(w.success_params[0].lift == Approx(2.0));
  CHECK(w.success_params[1].key == "size");
  CHECK(w.success_params[1].value == "3");
  CHECK(w.success_params[1].support == 6);
  CHECK(w.success_params[1].success_rate == Approx(1.0 / 3));

  auto limited = b.store->task_stats({.domain = "workflow", .top_failures = 1, .top_params = 1, .min_support = 1}).value();
  REQUIRE(limited.size() == 1);
  CHECK(limited[0].top_failures.size() == 1);
  REQUIRE(limited[0].success_params.size() == 1);
  CHECK(limited[0].success_params[0].value == "\"eu\"");  // eu 3/4 beats size 5 at 1/2
  auto ranged = b.store->task_stats({.since = t0 + 4min, .until = t0 + 8min}).value();
  REQUIRE(ranged.size() == 1);
  CHECK(ranged[0].count == 4);
  CHECK(ranged[0].successes == 0);
  CHECK(ranged[0].success_params.empty());
  CHECK(b.store->task_stats({.action = "scale_up"}).value().size() == 1);
  CHECK(b.store->task_stats({.domain = "nothing"}).value().empty());
}

TEMPLATE_TEST_CASE("contract: pruning deletes only older task records and invalid ones are refused", "[contract]", MemoryBackend,
                   SqliteBackend) {
  TestType b;
  const auto t0 = from_epoch_ms(1'700'000'000'000);
  REQUIRE(b.store->append_tasks(task_fixture(t0)));
  CHECK(b.store->prune_tasks(t0 + 2min).value() == 2);
  CHECK(b.store->prune_tasks(t0 + 2min).value() == 0);
  CHECK(b.store->query_tasks({.limit = 0}).value().size() == 8);
  auto good = task_fixture(t0)[0];
  auto bad_params = good;
  bad_params.params = "[1]";
  auto no_domain = good;
  no_domain.domain.clear();
  auto backwards = good;
  backwards.ended = good.started - 1s;
  for (const auto& bad : {bad_params, no_domain, backwards}) {
    auto r = b.store->append_tasks(std::vector{good, bad});
    REQUIRE_FALSE(r);
    CHECK(r.error().is(errc::invalid_argument));
  }
  CHECK(b.store->query_tasks({.limit = 0}).value().size() == 8);
  CHECK_THAT(b.store->append_tasks(std::vector{backwards}).error().message, Catch::Contains("\"ended\" is before \"started\""));
}

// ---- breakers ----------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("contract: breaker records are written by compare-and-set", "[contract]", MemoryBackend, SqliteBackend) {
  TestType b;
  const auto t0 = from_epoch_ms(1'700'000'000'000);
  BreakerRecord r{.name = "payments",
                  .state = "open",
                  .open_until = t0 + 60s,
                  .open_attempt = 1,
                  .reason = "consecutive_failures",
                  .details = R"({"failures":5})",
                  .updated = t0,
                  .updated_by = "pid 1"};
  CHECK_FALSE(b.store->get_breaker("payments").value().has_value());
  CHECK(b.store->put_breaker(r, 0).value() == 1);
  auto again = b.store->put_breaker(r, 0);
  REQUIRE_FALSE(again);
  CHECK(again.error().is(errc::conflict));
  auto got = b.store->get_breaker("payments").value();
  REQUIRE(got.has_value());
  auto expected = r;
  expected.version = 1;
  CHECK(*got == expected);
  r.state = "half_open";
  CHECK(b.store->put_breaker(r, 1).value() == 2);
  CHECK(b.store->put_breaker(r, 1).error().is(errc::conflict));
  CHECK(b.store->put_breaker(r, std::nullopt).value() == 3);  // unconditional
  auto other = r;
  other.name = "auth";
  CHECK(b.store->put_breaker(other, std::nullopt).value() == 1);
  auto all = b.store->list_breakers().value();
  REQUIRE(all.size() == 2);
  CHECK(all[0].name == "auth");
  CHECK(all[1].version == 3);
  auto bad = r;
  bad.state = "ajar";
  CHECK(b.store->put_breaker(bad, std::nullopt).error().is(errc::invalid_argument));
  CHECK(b.store->delete_breaker("auth").value());
  CHECK_FALSE(b.store->delete_breaker("auth").value());
  CHECK(b.store->list_breakers().value().size() == 1);
}

TEMPLATE_TEST_CASE("contract: concurrent compare-and-set writers never lose an update", "[contract]", MemoryBackend, SqliteBackend) {
  TestType b;
  constexpr int kThreads = 4, kPerThread = 25;
  std::atomic<int> conflicts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread;) {
        auto cur = b.store->get_breaker("x");
        if (!cur) {
          FAIL_CHECK(cur.error().message);
          return;
        }
        const std::int64_t v = *cur ? (*cur)->version : 0;
        BreakerRecord r{.name = "x", .state = "closed", .reason = std::to_string(v)};
        auto w = b.store->put_breaker(r, v);
        if (w) {
          ++i;
        } else if (w.error().is(errc::conflict)) {
          ++conflicts;
        } else {
          FAIL_CHECK(w.error().message);
          return;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(b.store->get_breaker("x").value()->version == kThreads * kPerThread);
}

// ---- workflow runs and schedules ---------------------------------------------------------------

namespace {
RunRecord a_run(std::string workflow, TimePoint queued) {
  RunRecord r;
  r.workflow = std::move(workflow);
  r.definition = R"({"name":"x"})";
  r.params = R"({"env":"prod"})";
  r.trigger = "manual";
  r.correlation_id = "c1";
  r.priority = 3;
  r.concurrency_key = "deploy-prod";
  r.queued_at = queued;
  r.reason = "queued by a test";
  return r;
}
StepRecord a_step(std::string id, RunState s = RunState::queued) {
  StepRecord st;
  st.step = std::move(id);
  st.state = s;
  return st;
}
}  // namespace

TEMPLATE_TEST_CASE("contract: a run and its steps round-trip and updates are compare-and-set", "[contract][workflow]", MemoryBackend,
                   SqliteBackend) {
  TestType b;
  const auto t0 = TimePoint(1'700'000'000'123ms);
  std::vector<StepRecord> steps{a_step("build"), a_step("test"), a_step("deploy")};
  auto id = b.store->create_run(a_run("deploy", t0), steps, nullptr);
  REQUIRE(id);
  auto run = b.store->get_run(*id).value();
  REQUIRE(run);
  CHECK(run->id == *id);
  CHECK(run->version == 1);
  CHECK(run->workflow == "deploy");
  CHECK(run->params == R"({"env":"prod"})");
  CHECK(run->queued_at == t0);
  CHECK(run->priority == 3);
  CHECK(run->concurrency_key == "deploy-prod");
  CHECK(run->state == RunState::queued);

  RunRecord u = *run;
  u.state = RunState::running;
  u.started_at = t0 + 5ms;
  u.owner = "pid 1 on h";
  u.lease_until = t0 + 60s;
  StepRecord build = a_step("build", RunState::succeeded);
  build.attempts = 1;
  build.started = t0 + 5ms;
  build.ended = t0 + 9ms;
  build.exit_code = 0;
  build.outputs = R"({"artifact":"a.tar"})";
  AttemptRecord att;
  att.step = "build";
  att.attempt = 1;
  att.state = RunState::succeeded;
  att.started = t0 + 5ms;
  att.ended = t0 + 9ms;
  att.exit_code = 0;
  att.stdout_text = "artifact=a.tar\n";
  att.stderr_text = "warn\n";
  att.pid = 4242;
  att.pid_start = 77;
  auto v2 = b.store->update_run(u, std::vector{build, a_step("build.compensate")}, std::vector{att});
  REQUIRE(v2);
  CHECK(*v2 == 2);

  // A second writer holding version 1 loses and changes nothing.
  RunRecord stale = u;
  stale.state = RunState::failed;
  auto lost = b.store->update_run(stale, std::vector{a_step("test", RunState::failed)}, {});
  REQUIRE_FALSE(lost);
  CHECK(lost.error().is(errc::conflict));
  stale.id = 999;
  CHECK(b.store->update_run(stale, {}, {}).error().is(errc::not_found));

  auto now = b.store->get_run(*id).value().value();
  CHECK(now.state == RunState::running);
  CHECK(now.version == 2);
  CHECK(now.owner == "pid 1 on h");
  CHECK(now.lease_until == t0 + 60s);
  auto st = b.store->run_steps(*id).value();
  REQUIRE(st.size() == 4);
  CHECK(st[0] == [&] {
    auto e = build;
    e.run_id = *id;
    return e;
  }());
  CHECK(st[1].step == "test");
  CHECK(st[1].state == RunState::queued);
  CHECK(st[3].step == "build.compensate");
  auto attempts = b.store->run_attempts(*id, std::nullopt).value();
  REQUIRE(attempts.size() == 1);
  att.run_id = *id;
  CHECK(attempts[0] == att);
  CHECK(b.store->run_attempts(*id, std::string_view("test")).value().empty());

  // Attempts upsert by (step, attempt) and list in step order then attempt.
  AttemptRecord t2 = att;
  t2.step = "test";
  t2.attempt = 2;
  AttemptRecord t1 = t2;
  t1.attempt = 1;
  t1.state = RunState::failed;
  t1.exit_code = std::nullopt;
  now.state = RunState::succeeded;
  now.ended_at = t0 + 1s;
  REQUIRE(b.store->update_run(now, {}, std::vector{t2, t1}));
  attempts = b.store->run_attempts(*id, std::nullopt).value();
  REQUIRE(attempts.size() == 3);
  CHECK(attempts[1].step == "test");
  CHECK(attempts[1].attempt == 1);
  CHECK_FALSE(attempts[1].exit_code);
  CHECK(attempts[2].attempt == 2);

  // Bad input is refused with what and where.
  auto bad = a_run("", t0);
  CHECK(b.store->create_run(bad, {}, nullptr).error().is(errc::invalid_argument));
  bad = a_run("x", t0);
  bad.params = "[1]";
  auto e = b.store->create_run(bad, {}, nullptr);
  REQUIRE_FALSE(e);
  CHECK_THAT(e.error().message, Catch::Contains("params"));
  CHECK(b.store->list_runs({}).value().size() == 1);
}

TEMPLATE_TEST_CASE("contract: runs are listed by workflow, state, time and parent, and pruned when finished", "[contract][workflow]",
                   MemoryBackend, SqliteBackend) {
  TestType b;
  const auto t0 = TimePoint(1'700'000'000'000ms);
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 6; ++i) {
    auto r = a_run(i % 2 ? "odd" : "even", t0 + std::chrono::minutes(i));
    r.parent_run_id = i == 5 ? 1 : 0;
    ids.push_back(b.store->create_run(r, {}, nullptr).value());
  }
  CHECK(ids == std::vector<std::int64_t>{1, 2, 3, 4, 5, 6});
  // Finish runs 1 and 2.
  for (std::int64_t id : {1, 2}) {
    auto r = b.store->get_run(id).value().value();
    r.state = id == 1 ? RunState::succeeded : RunState::failed;
    r.ended_at = t0 + std::chrono::minutes(10 * id);
    REQUIRE(b.store->update_run(r, {}, {}));
  }
  RunQuery q;
  q.workflow = "even";
  auto even = b.store->list_runs(q).value();
  REQUIRE(even.size() == 3);
  CHECK(even[0].id == 5);
  q.newest_first = false;
  q.limit = 2;
  even = b.store->list_runs(q).value();
  REQUIRE(even.size() == 2);
  CHECK(even[0].id == 1);
  RunQuery active;
  active.states = {RunState::queued, RunState::running};
  CHECK(b.store->list_runs(active).value().size() == 4);
  RunQuery range;
  range.since = t0 + 2min;
  range.until = t0 + 4min;
  auto in_range = b.store->list_runs(range).value();
  REQUIRE(in_range.size() == 2);
  CHECK(in_range[0].id == 4);
  RunQuery children;
  children.parent_run_id = 1;
  REQUIRE(b.store->list_runs(children).value().size() == 1);

  // Pruning removes finished runs ended before the cut, never active ones.
  CHECK(b.store->prune_runs(t0 + 15min).value() == 1);
  CHECK_FALSE(b.store->get_run(1).value());
  CHECK(b.store->get_run(2).value());
  CHECK(b.store->prune_runs(t0 + 1000min).value() == 1);
  CHECK(b.store->list_runs({}).value().size() == 4);
}

TEMPLATE_TEST_CASE("contract: a schedule fire happens once per (schedule, time), with its run or without", "[contract][workflow]",
                   MemoryBackend, SqliteBackend) {
  TestType b;
  const auto t0 = TimePoint(1'700'000'000'000ms);
  FireRecord f;
  f.schedule = "nightly";
  f.fire_time = t0;
  f.outcome = "started";
  f.reason = "cron 0 2 * * *";
  f.recorded = t0 + 3ms;
  auto id = b.store->create_run(a_run("backup", t0), {}, &f);
  REQUIRE(id);
  auto again = b.store->create_run(a_run("backup", t0), {}, &f);
  REQUIRE_FALSE(again);
  CHECK(again.error().is(errc::conflict));
  CHECK(b.store->list_runs({}).value().size() == 1);  // the losing run was not created

  FireRecord skip = f;
  skip.fire_time = t0 + 1h;
  skip.outcome = "skipped";
  skip.reason = "overlap: run 1 still running";
  CHECK(b.store->record_fire(skip).value());
  CHECK_FALSE(b.store->record_fire(skip).value());
  FireRecord other = f;
  other.schedule = "nightly-2";
  CHECK(b.store->record_fire(other).value());
  skip.outcome = "maybe";
  CHECK(b.store->record_fire(skip).error().is(errc::invalid_argument));

  auto fires = b.store->list_fires("nightly", 0).value();
  REQUIRE(fires.size() == 2);
  CHECK(fires[0].fire_time == t0 + 1h);
  CHECK(fires[0].run_id == 0);
  CHECK(fires[1].run_id == *id);
  CHECK(fires[1].recorded == t0 + 3ms);
  CHECK(b.store->list_fires("nightly", 1).value().size() == 1);
  CHECK(b.store->list_fires("none", 0).value().empty());
}

TEMPLATE_TEST_CASE("contract: a buffered fire is claimed by exactly one run and events are part of the key", "[contract][workflow]",
                   MemoryBackend, SqliteBackend) {
  TestType b;
  const auto t0 = TimePoint(1'700'000'000'000ms);
  FireRecord f;
  f.schedule = "sync";
  f.fire_time = t0;
  f.outcome = "buffered";
  f.reason = "overlap buffer_one: run 7 still running";
  f.recorded = t0;
  CHECK(b.store->record_fire(f).value());
  CHECK_FALSE(b.store->record_fire(f).value());  // a second process buffering the same fire loses
  FireRecord later = f;
  later.fire_time = t0 + 1min;
  CHECK(b.store->record_fire(later).value());
  auto waiting = b.store->buffered_fires("sync").value();
  REQUIRE(waiting.size() == 2);
  CHECK(waiting[0].fire_time == t0);  // oldest first
  CHECK(waiting[1].fire_time == t0 + 1min);
  CHECK(b.store->buffered_fires("other").value().empty());

  FireRecord start = f;
  start.outcome = "started";
  start.reason = "buffered fire started: run 7 ended";
  start.recorded = t0 + 5s;
  auto id = b.store->create_run(a_run("sync", t0), {}, &start);
  REQUIRE(id);
  auto twice = b.store->create_run(a_run("sync", t0), {}, &start);
  CHECK(twice.error().is(errc::conflict));
  auto fires = b.store->list_fires("sync", 0).value();
  REQUIRE(fires.size() == 2);
  CHECK(fires[1].outcome == "started");
  CHECK(fires[1].run_id == *id);
  CHECK(fires[1].recorded == t0 + 5s);
  REQUIRE(b.store->buffered_fires("sync").value().size() == 1);  // the claimed one is no longer waiting

  // Two events in the same millisecond are two fires; the same event twice is one.
  FireRecord e1 = start;
  e1.fire_time = t0 + 1h;
  e1.event_id = 10;
  FireRecord e2 = e1;
  e2.event_id = 11;
  REQUIRE(b.store->create_run(a_run("sync", t0), {}, &e1));
  REQUIRE(b.store->create_run(a_run("sync", t0), {}, &e2));
  CHECK(b.store->create_run(a_run("sync", t0), {}, &e2).error().is(errc::conflict));
  FireRecord missed = f;
  missed.fire_time = t0 - 1h;
  missed.outcome = "missed";
  CHECK(b.store->record_fire(missed).value());
  CHECK(b.store->create_run(a_run("sync", t0), {}, &missed).error().is(errc::conflict));
  fires = b.store->list_fires("sync", 0).value();
  REQUIRE(fires.size() == 5);
  CHECK(fires[0].event_id == 11);
  CHECK(fires[1].event_id == 10);
  CHECK(fires[4].outcome == "missed");
  CHECK(b.store->list_runs({}).value().size() == 3);
}

TEMPLATE_TEST_CASE("contract: events get increasing ids that survive a prune and are listed by id, name and time", "[contract][workflow]",
                   MemoryBackend, SqliteBackend) {
  TestType b;
  const auto t0 = TimePoint(1'700'000'000'000ms);
  auto event = [&](std::string name, TimePoint t, std::string payload = "{}") {
    EventRecord e;
    e.name = std::move(name);
    e.time = t;
    e.payload = std::move(payload);
    e.source = "host";
    e.correlation_id = "c-1";
    return e;
  };
  CHECK(b.store->last_event_id().value() == 0);
  const auto a = b.store->append_event(event("user.registered", t0, R"({"user":"ada"})")).value();
  const auto c = b.store->append_event(event("content.published", t0 + 1s)).value();
  auto d_event = event("user.registered", t0 + 2s);
  d_event.depth = 2;
  const auto d = b.store->append_event(d_event).value();
  CHECK(a < c);
  CHECK(c < d);
  auto all = b.store->list_events({}).value();
  REQUIRE(all.size() == 3);
  CHECK(all[0].id == a);
  CHECK(all[0].payload == R"({"user":"ada"})");
  CHECK(all[0].time == t0);
  CHECK(all[0].source == "host");
  CHECK(all[0].correlation_id == "c-1");
  CHECK(all[2].depth == 2);
  CHECK(b.store->list_events({.after_id = a}).value().size() == 2);
  auto users = b.store->list_events({.name = "user.registered"}).value();
  REQUIRE(users.size() == 2);
  CHECK(users[1].id == d);
  CHECK(b.store->list_events({.since = t0 + 1s}).value().size() == 2);
  CHECK(b.store->list_events({.limit = 1}).value().size() == 1);

  CHECK(b.store->prune_events(t0 + 2s).value() == 2);
  const auto e = b.store->append_event(event("user.registered", t0 + 3s)).value();
  CHECK(e > d);  // never reused
  CHECK(b.store->last_event_id().value() == e);
  CHECK(b.store->prune_events(t0 + 1h).value() == 2);
  CHECK(b.store->last_event_id().value() == e);  // pruned or not
  CHECK(b.store->list_events({}).value().empty());

  CHECK(b.store->append_event(event("", t0)).error().is(errc::invalid_argument));
  CHECK(b.store->append_event(event("user registered", t0)).error().is(errc::invalid_argument));
  CHECK(b.store->append_event(event("x", t0, "[1]")).error().is(errc::invalid_argument));
}

TEMPLATE_TEST_CASE("contract: schedule state is compare-and-set", "[contract][workflow]", MemoryBackend, SqliteBackend) {
  TestType b;
  ScheduleRecord s;
  s.name = "hourly";
  s.paused = true;
  s.reason = "paused after 3 consecutive failures";
  s.consecutive_failures = 3;
  s.last_fire = TimePoint(1'700'000'000'000ms);
  s.last_event_id = 42;
  s.updated_by = "test";
  CHECK(b.store->put_schedule(s, 0).value() == 1);
  CHECK(b.store->put_schedule(s, 0).error().is(errc::conflict));
  CHECK(b.store->put_schedule(s, 1).value() == 2);
  auto got = b.store->get_schedule("hourly").value().value();
  CHECK(got.paused);
  CHECK(got.consecutive_failures == 3);
  CHECK(got.last_fire == s.last_fire);
  CHECK(got.last_event_id == 42);
  CHECK(got.version == 2);
  CHECK_FALSE(b.store->get_schedule("nope").value());
  s.name = "a";
  REQUIRE(b.store->put_schedule(s, std::nullopt));
  auto all = b.store->list_schedules().value();
  REQUIRE(all.size() == 2);
  CHECK(all[0].name == "a");
  s.name = "";
  CHECK(b.store->put_schedule(s, std::nullopt).error().is(errc::invalid_argument));
}

TEMPLATE_TEST_CASE("contract: two writers race for each fire and exactly one wins", "[contract][workflow]", SqliteBackend) {
  TestType b;
  auto second = open_store("sqlite:" + b.dir.file("contract.db")).value();
  std::atomic<int> wins{0}, conflicts{0};
  auto race = [&](Store& s) {
    for (int i = 0; i < 50; ++i) {
      FireRecord f;
      f.schedule = "s";
      f.fire_time = TimePoint(std::chrono::minutes(i));
      f.outcome = "started";
      auto r = s.create_run(a_run("w", f.fire_time), {}, &f);
      if (r)
        ++wins;
      else if (r.error().is(errc::conflict))
        ++conflicts;
    }
  };
  std::thread t1([&] { race(*b.store); });
  std::thread t2([&] { race(*second); });
  t1.join();
  t2.join();
  CHECK(wins == 50);
  CHECK(conflicts == 50);
  CHECK(b.store->list_runs({.limit = 0}).value().size() == 50);
}

// ---- metrics area ------------------------------------------------------------------------------

namespace {
UsageBlockRecord usage_block(std::string key, std::int64_t first_ms, std::int64_t last_ms, std::string source = "api",
                             std::int64_t first_row = 0) {
  UsageBlockRecord b;
  b.key = std::move(key);
  b.source = std::move(source);
  b.first_row = first_row;
  b.events = 2;
  b.first_time = from_epoch_ms(first_ms);
  b.last_time = from_epoch_ms(last_ms);
  b.data = std::string("\0\1blob", 6);
  b.recorded = from_epoch_ms(5);
  return b;
}
}  // namespace

TEMPLATE_TEST_CASE("contract: usage blocks append once per key, with their partials", "[contract]", MemoryBackend, SqliteBackend) {
  TestType b;
  auto& s = *b.store;
  const std::vector<UsagePartialRecord> parts{{0, "UTC", 10, std::string("p\0a", 3)}, {0, "UTC", 11, "pb"}};
  auto id1 = s.append_usage_block(usage_block("k1", 1000, 2000), "UTC", parts);
  REQUIRE(id1);
  REQUIRE(*id1);
  auto dup = s.append_usage_block(usage_block("k1", 1000, 2000), "UTC", parts);
  REQUIRE(dup);
  CHECK_FALSE(*dup);  // the key exists: nothing stored
  auto id2 = s.append_usage_block(usage_block("k2", 5000, 9000, "file:/x.csv", 2), "UTC", {});
  REQUIRE(id2);
  CHECK(**id2 > **id1);

  auto all = s.usage_blocks({}).value();
  REQUIRE(all.size() == 2);
  CHECK(all[0].key == "k1");
  CHECK(all[0].data.empty());  // without data unless asked
  CHECK(s.usage_blocks({.id = **id1, .with_data = true}).value().at(0).data == std::string("\0\1blob", 6));
  // Overlap with [since, until): first_time < until and last_time >= since.
  CHECK(s.usage_blocks({.since = from_epoch_ms(2000), .until = from_epoch_ms(5000)}).value().size() == 1);
  CHECK(s.usage_blocks({.since = from_epoch_ms(2001), .until = from_epoch_ms(5001)}).value().at(0).key == "k2");
  CHECK(s.usage_blocks({.source = "file:/x.csv", .first_row = 2}).value().size() == 1);
  CHECK(s.usage_blocks({.source = "file:/x.csv", .first_row = 0}).value().empty());

  auto p = s.usage_partials("UTC", 10, 11).value();
  REQUIRE(p.size() == 2);
  CHECK(p[0] == UsagePartialRecord{**id1, "UTC", 10, std::string("p\0a", 3)});
  CHECK(s.usage_partials("UTC", 11, 20).value().size() == 1);
  CHECK(s.usage_partials("Europe/Berlin", 0, 100).value().empty());
  // Both blocks have their UTC partials (the second has none); neither has Berlin's.
  CHECK(s.usage_blocks_without_partials("UTC", from_epoch_ms(0), from_epoch_ms(10000)).value().empty());
  CHECK(s.usage_blocks_without_partials("Europe/Berlin", from_epoch_ms(0), from_epoch_ms(10000)).value() ==
        std::vector<std::int64_t>{**id1, **id2});
  REQUIRE(s.put_usage_partials(**id2, "Europe/Berlin", std::vector<UsagePartialRecord>{{0, "", 12, "b"}}));
  CHECK(s.usage_blocks_without_partials("Europe/Berlin", from_epoch_ms(0), from_epoch_ms(10000)).value() ==
        std::vector<std::int64_t>{**id1});
  CHECK(s.usage_partials("Europe/Berlin", 12, 12).value().at(0).block_id == **id2);
  // Present already (another process got there first): kept as they are.
  REQUIRE(s.put_usage_partials(**id2, "Europe/Berlin", std::vector<UsagePartialRecord>{{0, "", 13, "other"}}));
  CHECK(s.usage_partials("Europe/Berlin", 0, 100).value().size() == 1);
  CHECK(s.put_usage_partials(999, "UTC", {}).error().code == errc::not_found);

  // Compaction replaces a day's partials by one, once.
  REQUIRE(s.append_usage_block(usage_block("k3", 1000, 1500), "UTC", std::vector<UsagePartialRecord>{{0, "UTC", 10, "pc"}}).value());
  auto day10 = s.usage_partials("UTC", 10, 10).value();
  REQUIRE(day10.size() == 2);
  const std::vector<std::int64_t> ids{day10[0].block_id, day10[1].block_id};
  CHECK(s.compact_usage_partials("UTC", 10, ids, "merged").value());
  auto after = s.usage_partials("UTC", 10, 10).value();
  REQUIRE(after.size() == 1);
  CHECK(after[0].data == "merged");
  CHECK(after[0].block_id == ids[1]);
  CHECK_FALSE(s.compact_usage_partials("UTC", 10, ids, "again").value());  // one of them is gone
  CHECK(s.usage_partials("UTC", 10, 10).value().at(0).data == "merged");
  const auto areas = s.info().value().areas;
  auto usage = std::find_if(areas.begin(), areas.end(), [](const AreaInfo& a) { return a.area == "usage events"; });
  REQUIRE(usage != areas.end());
  CHECK(usage->table == "usage_block");
  CHECK(usage->rows == 3);  // k1, k2, k3
}

TEMPLATE_TEST_CASE("contract: revenue rows upsert by day and plan", "[contract]", MemoryBackend, SqliteBackend) {
  TestType b;
  auto& s = *b.store;
  std::vector<RevenueRow> rows{{20000, "pro", 10.5, 1, 2, 3, from_epoch_ms(1)},
                               {20000, "basic", 1, 0, 0, 0, from_epoch_ms(1)},
                               {20001, "pro", 2, 0, 0, 0, from_epoch_ms(1)}};
  auto u = s.upsert_revenue(rows).value();
  CHECK(u.inserted == 3);
  rows[0].total_revenue = 11;
  rows[0].recorded = from_epoch_ms(2);
  u = s.upsert_revenue(rows).value();
  CHECK(u.updated == 1);
  CHECK(u.unchanged == 2);
  auto got = s.query_revenue(20000, 20000).value();
  REQUIRE(got.size() == 2);
  CHECK(got[0].plan == "basic");  // by day, then plan
  CHECK(got[1] == rows[0]);
  CHECK(s.query_revenue(19000, 30000).value().size() == 3);
  // A batch with a bad row stores none of its rows, not even the valid new one before it.
  rows.push_back({20003, "pro", 5, 0, 0, 0, from_epoch_ms(3)});
  rows.push_back({20002, "", 1, 0, 0, 0, {}});
  CHECK_FALSE(s.upsert_revenue(rows));
  CHECK(s.query_revenue(20002, 20003).value().empty());  // all or none
}

TEMPLATE_TEST_CASE("contract: rollups compare-and-set on their version", "[contract]", MemoryBackend, SqliteBackend) {
  TestType b;
  auto& s = *b.store;
  RollupRecord r;
  r.time_zone = "UTC";
  r.period = "2026-11-23";
  r.state = "running";
  r.owner = "me";
  r.started = from_epoch_ms(1000);
  r.lease_until = from_epoch_ms(61000);
  CHECK(s.put_rollup(r, 0).value() == 1);
  CHECK(s.put_rollup(r, 0).error().code == errc::conflict);
  r.state = "done";
  r.document = R"({"a":1})";
  r.usage_watermark = 7;
  r.revenue_digest = "abc/1";
  r.computed = from_epoch_ms(2000);
  CHECK(s.put_rollup(r, 1).value() == 2);
  auto got = s.get_rollup("UTC", "2026-11-23").value();
  REQUIRE(got);
  r.version = 2;
  CHECK(*got == r);
  CHECK_FALSE(s.get_rollup("Europe/Berlin", "2026-11-23").value());
  RollupRecord other = r;
  other.period = "2026-W48";
  other.computed = from_epoch_ms(3000);
  REQUIRE(s.put_rollup(other, std::nullopt));
  auto list = s.list_rollups(10).value();
  REQUIRE(list.size() == 2);
  CHECK(list[0].period == "2026-W48");  // newest computed first
  CHECK(s.list_rollups(1).value().size() == 1);
  r.state = "bogus";
  CHECK(s.put_rollup(r, std::nullopt).error().code == errc::invalid_argument);
}

TEMPLATE_TEST_CASE("contract: deliveries are stored once per key and updated by compare-and-set", "[contract]", MemoryBackend,
                   SqliteBackend) {
  TestType b;
  auto& s = *b.store;
  DeliveryRecord d;
  d.key = "k1";
  d.subject = "report:weekly-2026-W48";
  d.target = "webhook:http://127.0.0.1:9/hook";
  d.content_type = "application/json";
  d.body = R"({"text":"hi"})";
  d.state = "pending";
  d.next_attempt = from_epoch_ms(5000);
  d.reason = "test";
  d.created = from_epoch_ms(1000);
  auto first = s.enqueue_delivery(d).value();
  CHECK(first.created);
  auto again = s.enqueue_delivery(d).value();
  CHECK_FALSE(again.created);
  CHECK(again.id == first.id);
  DeliveryRecord other = d;
  other.key = "k2";
  other.subject = "alert:1";
  other.next_attempt = from_epoch_ms(2000);
  auto second = s.enqueue_delivery(other).value();
  CHECK(second.id > first.id);

  auto got = s.get_delivery(first.id).value();
  REQUIRE(got);
  d.id = first.id;
  d.updated = d.created;
  d.version = 1;
  CHECK(*got == d);
  CHECK_FALSE(s.get_delivery(999).value());

  // Lists: newest first without bodies by default; due ones oldest due first.
  auto all = s.list_deliveries({}).value();
  REQUIRE(all.size() == 2);
  CHECK(all[0].id == second.id);
  CHECK(all[0].body.empty());
  CHECK(s.list_deliveries({.with_body = true}).value()[1].body == d.body);
  auto due = s.list_deliveries({.due_by = from_epoch_ms(5000)}).value();
  REQUIRE(due.size() == 2);
  CHECK(due[0].id == second.id);  // due at 2 s, before the first's 5 s
  CHECK(s.list_deliveries({.due_by = from_epoch_ms(4999)}).value().size() == 1);
  CHECK(s.list_deliveries({.subject = std::string("alert:1")}).value().size() == 1);
  CHECK(s.list_deliveries({.state = std::string("delivered")}).value().empty());

  // Compare-and-set: the second writer with the same version loses.
  DeliveryRecord claim = *got;
  claim.attempts = 1;
  claim.next_attempt = from_epoch_ms(65000);
  claim.updated = from_epoch_ms(6000);
  CHECK(s.update_delivery(claim).value() == 2);
  CHECK(s.update_delivery(claim).error().code == errc::conflict);
  claim.id = 999;
  CHECK(s.update_delivery(claim).error().code == errc::not_found);
  auto done = s.get_delivery(first.id).value().value();
  CHECK(done.attempts == 1);
  CHECK(done.next_attempt == from_epoch_ms(65000));
  CHECK(done.version == 2);
  // A claimed delivery is not due until its claim runs out.
  done.next_attempt = from_epoch_ms(6000);
  done.claimed_until = from_epoch_ms(8000);
  done.version = s.update_delivery(done).value();
  CHECK(s.get_delivery(first.id).value()->claimed_until == from_epoch_ms(8000));
  CHECK(s.list_deliveries({.due_by = from_epoch_ms(7999)}).value().size() == 1);  // the other one only
  CHECK(s.list_deliveries({.due_by = from_epoch_ms(8000)}).value().size() == 2);
  done.claimed_until = {};
  done.state = "delivered";
  done.updated = from_epoch_ms(7000);
  CHECK(s.update_delivery(done).value() == 4);
  done.state = "lost";
  CHECK(s.update_delivery(done).error().code == errc::invalid_argument);

  // Pruning removes finished deliveries only.
  CHECK(s.prune_deliveries(from_epoch_ms(7000)).value() == 0);
  CHECK(s.prune_deliveries(from_epoch_ms(7001)).value() == 1);
  CHECK(s.list_deliveries({}).value().size() == 1);
  DeliveryRecord bad = d;
  bad.key = "";
  CHECK(s.enqueue_delivery(bad).error().code == errc::invalid_argument);
}

// ---- samples and alerts ------------------------------------------------------------------------

namespace {
std::int64_t area_rows(Store& s, std::string_view area) {
  const auto areas = s.info().value().areas;
  auto it = std::find_if(areas.begin(), areas.end(), [&](const AreaInfo& a) { return a.area == area; });
  REQUIRE(it != areas.end());
  return it->rows;
}
}  // namespace

TEMPLATE_TEST_CASE("contract: metric points replace by name, labels and time and are read by series then time", "[contract]", MemoryBackend,
                   SqliteBackend) {
  TestType b;
  auto& s = *b.store;
  const auto t0 = TimePoint(1'700'000'000'000ms);
  auto at = [&](int sec) { return t0 + std::chrono::seconds(sec); };
  const std::vector<MetricPoint> batch{
      {"disk_usage", "mount=/var", at(0), 10}, {"disk_usage", "mount=/", at(10), 21}, {"disk_usage", "mount=/", at(0), 20},
      {"disk_usage", "mount=/", at(20), 22},   {"cpu_usage", "", at(0), 50.5},        {"disk_usage", "mount=/var", at(10), 11},
  };
  CHECK(s.append_metric_points(batch).value() == 6);
  CHECK(s.append_metric_points({}).value() == 0);
  CHECK(area_rows(s, "samples") == 6);

  // Ordered by labels, then time.
  auto all = s.query_metric_points({.name = "disk_usage"}).value();
  REQUIRE(all.size() == 5);
  CHECK(all[0] == MetricPoint{"disk_usage", "mount=/", at(0), 20});
  CHECK(all[1] == MetricPoint{"disk_usage", "mount=/", at(10), 21});
  CHECK(all[2] == MetricPoint{"disk_usage", "mount=/", at(20), 22});
  CHECK(all[3] == MetricPoint{"disk_usage", "mount=/var", at(0), 10});
  CHECK(all[4] == MetricPoint{"disk_usage", "mount=/var", at(10), 11});
  CHECK(s.query_metric_points({.name = "cpu_usage"}).value() == std::vector<MetricPoint>{{"cpu_usage", "", at(0), 50.5}});

  // A point whose key is stored replaces its value (times are kept to the millisecond).
  CHECK(s.append_metric_points(std::vector<MetricPoint>{{"disk_usage", "mount=/", at(10) + 400us, 25}}).value() == 1);
  auto root = s.query_metric_points({.name = "disk_usage", .labels = "mount=/"}).value();
  REQUIRE(root.size() == 3);
  CHECK(root[1] == MetricPoint{"disk_usage", "mount=/", at(10), 25});
  CHECK(area_rows(s, "samples") == 6);

  // Filters: labels exactly, since inclusive, until exclusive.
  CHECK(s.query_metric_points({.name = "disk_usage", .since = at(10)}).value().size() == 3);
  auto window = s.query_metric_points({.name = "disk_usage", .since = at(10), .until = at(20)}).value();
  REQUIRE(window.size() == 2);
  CHECK(window[0].labels == "mount=/");
  CHECK(window[1].labels == "mount=/var");
  CHECK(s.query_metric_points({.name = "disk_usage", .labels = "mount=/var", .until = at(10)}).value().size() == 1);
  CHECK(s.query_metric_points({.name = "disk_usage", .labels = "mount=/home"}).value().empty());
  CHECK(s.query_metric_points({.name = "disk_usage", .labels = ""}).value().empty());
  CHECK(s.query_metric_points({.name = "cpu_usage", .labels = ""}).value().size() == 1);
  CHECK(s.query_metric_points({.name = "memory_usage"}).value().empty());
  CHECK(s.query_metric_points({.name = "disk"}).value().empty());  // names match exactly
  CHECK(s.query_metric_points({}).error().is(errc::invalid_argument));

  // Newest first within each series (series still by labels); the limit caps the total.
  auto newest = s.query_metric_points({.name = "disk_usage", .newest_first = true}).value();
  REQUIRE(newest.size() == 5);
  CHECK(newest[0].time == at(20));
  CHECK(newest[2].time == at(0));
  CHECK(newest[2].labels == "mount=/");
  CHECK(newest[3] == MetricPoint{"disk_usage", "mount=/var", at(10), 11});
  CHECK(newest[4].time == at(0));
  auto capped = s.query_metric_points({.name = "disk_usage", .limit = 4, .newest_first = true}).value();
  REQUIRE(capped.size() == 4);
  CHECK(capped[3] == newest[3]);
  auto first_two = s.query_metric_points({.name = "disk_usage", .limit = 2}).value();
  REQUIRE(first_two.size() == 2);
  CHECK(first_two[1].time == at(10));
  CHECK(s.query_metric_points({.name = "disk_usage", .labels = "mount=/var", .limit = 1, .newest_first = true}).value() ==
        std::vector<MetricPoint>{{"disk_usage", "mount=/var", at(10), 11}});

  // Pruning deletes points strictly older than the cut, of every metric.
  CHECK(s.prune_metric_points(at(0)).value() == 0);
  CHECK(s.prune_metric_points(at(10)).value() == 3);
  CHECK(s.prune_metric_points(at(10)).value() == 0);
  CHECK(s.query_metric_points({.name = "disk_usage"}).value().size() == 3);
  CHECK(s.query_metric_points({.name = "cpu_usage"}).value().empty());
  CHECK(s.prune_metric_points(at(3600)).value() == 3);
  CHECK(area_rows(s, "samples") == 0);
}

TEMPLATE_TEST_CASE("contract: an invalid metric point is refused with its whole batch", "[contract]", MemoryBackend, SqliteBackend) {
  TestType b;
  auto& s = *b.store;
  const MetricPoint good{"cpu_usage", "host=a", TimePoint(1'700'000'000'000ms), 1};
  auto with = [&](auto change) {
    MetricPoint p = good;
    change(p);
    return p;
  };
  std::vector<MetricPoint> bad;
  for (std::string name : {"", "9lives", "cpu-usage", "cpu usage", "cpu.usage", "é"})
    bad.push_back(with([&](MetricPoint& p) { p.name = name; }));
  for (std::string labels : {"host", "host=", "=a", "host=a,host=b", "host=a,", ",host=a", "host=a=b", "host=a,b", "host={a}", "host=\"a\"",
                             "host=a\tb", "host=a\nb", "host=a\x7f", "9k=v", "k-1=v", " host=a"})
    bad.push_back(with([&](MetricPoint& p) { p.labels = labels; }));
  for (double value : {std::nan(""), std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity()})
    bad.push_back(with([&](MetricPoint& p) { p.value = value; }));
  for (const auto& p : bad) {
    INFO("name \"" << p.name << "\" labels \"" << p.labels << "\" value " << p.value);
    auto r = s.append_metric_points(std::vector{good, p});
    REQUIRE_FALSE(r);
    CHECK(r.error().is(errc::invalid_argument));
  }
  CHECK(s.query_metric_points({.name = "cpu_usage"}).value().empty());  // nothing of any batch was stored

  auto message = [&](const MetricPoint& p) { return s.append_metric_points(std::vector{p}).error().message; };
  CHECK_THAT(message(with([](MetricPoint& p) { p.name = "9lives"; })), Catch::Contains("\"9lives\"") && Catch::Contains("[A-Za-z_]"));
  CHECK_THAT(message(with([](MetricPoint& p) { p.labels = "host=a,host=b"; })), Catch::Contains("\"host\" appears twice"));
  CHECK_THAT(message(with([](MetricPoint& p) { p.labels = "host=a,b"; })), Catch::Contains("\"b\" is not key=value"));
  CHECK_THAT(message(with([](MetricPoint& p) { p.labels = "host={a}"; })), Catch::Contains("'{'"));
  CHECK_THAT(message(with([](MetricPoint& p) { p.value = std::nan(""); })),
             Catch::Contains("cpu_usage") && Catch::Contains("not a finite"));

  CHECK_THAT(message(with([](MetricPoint& p) { p.labels = "mount=/,host=a"; })), Catch::Contains("keys must be in order"));

  // Label values may hold anything else; negative and zero values are fine.
  const std::vector<MetricPoint> fine{with([](MetricPoint& p) { p.labels = "host=web-1.example:9100,mount=/var/lib"; }),
                                      with([](MetricPoint& p) { p.labels = "_k=a b/ü;x"; }), with([](MetricPoint& p) {
                                        p.labels = "";
                                        p.value = -3.5;
                                      }),
                                      with([](MetricPoint& p) { p.name = "_Cpu9"; })};
  CHECK(s.append_metric_points(fine).value() == 4);
  CHECK(s.query_metric_points({.name = "cpu_usage"}).value().size() == 3);
}

namespace {
AlertRecord an_alert(std::string rule, std::string labels, std::string state, TimePoint fired) {
  AlertRecord a;
  a.rule = std::move(rule);
  a.labels = std::move(labels);
  a.severity = "warning";
  a.state = std::move(state);
  a.summary = "cpu_usage 93.2 > 80 for 5m";
  a.values = R"({"cpu_usage":93.2})";
  a.active_since = fired - 5min;
  a.fired = fired;
  if (a.state == "resolved") a.resolved = fired + 10min;
  a.reason = "the condition held for 5m";
  a.updated = fired;
  return a;
}
}  // namespace

TEMPLATE_TEST_CASE("contract: alerts are created, read, listed and updated by compare-and-set", "[contract]", MemoryBackend,
                   SqliteBackend) {
  TestType b;
  auto& s = *b.store;
  const auto t0 = TimePoint(1'700'000'000'000ms);
  auto a = an_alert("cpu_high", "host=a", "firing", t0);
  a.id = 77;  // ignored: the store assigns ids and versions
  a.version = 9;
  const auto id1 = s.create_alert(a).value();
  auto got = s.get_alert(id1).value();
  REQUIRE(got);
  auto expected = a;
  expected.id = id1;
  expected.version = 1;
  CHECK(*got == expected);
  CHECK_FALSE(s.get_alert(id1 + 100).value());

  // One firing alert per (rule, labels); other labels, other rules and resolved alerts are fine.
  auto second = s.create_alert(an_alert("cpu_high", "host=a", "firing", t0 + 1min));
  REQUIRE_FALSE(second);
  CHECK(second.error().is(errc::conflict));
  CHECK_THAT(second.error().message, Catch::Contains(fmt::format("alert {} is firing", id1)));
  const auto id2 = s.create_alert(an_alert("cpu_high", "host=b", "firing", t0 + 1min)).value();
  const auto id3 = s.create_alert(an_alert("cpu_high", "", "firing", t0 + 2min)).value();
  auto critical = an_alert("cpu_critical", "host=a", "firing", t0 + 3min);
  critical.severity = "critical";
  const auto id4 = s.create_alert(critical).value();
  const auto id5 = s.create_alert(an_alert("cpu_high", "host=a", "resolved", t0 - 1h)).value();
  CHECK(id1 < id2);
  CHECK(id2 < id3);
  CHECK(id3 < id4);
  CHECK(id4 < id5);
  CHECK(area_rows(s, "alerts") == 5);

  // Lists: filters are ANDed, newest first by id unless asked, limit 0 = all.
  auto ids = [&](const AlertQuery& q) {
    std::vector<std::int64_t> out;
    for (const auto& r : s.list_alerts(q).value()) out.push_back(r.id);
    return out;
  };
  CHECK(ids({}) == std::vector<std::int64_t>{id5, id4, id3, id2, id1});
  CHECK(ids({.limit = 2, .newest_first = false}) == std::vector<std::int64_t>{id1, id2});
  CHECK(ids({.limit = 0, .newest_first = false}).size() == 5);
  CHECK(ids({.limit = 1}) == std::vector<std::int64_t>{id5});
  CHECK(ids({.state = "firing"}) == std::vector<std::int64_t>{id4, id3, id2, id1});
  CHECK(ids({.state = "resolved"}) == std::vector<std::int64_t>{id5});
  CHECK(ids({.rule = "cpu_high"}) == std::vector<std::int64_t>{id5, id3, id2, id1});
  CHECK(ids({.rule = "cpu_high", .labels = "host=a"}) == std::vector<std::int64_t>{id5, id1});
  CHECK(ids({.state = "firing", .rule = "cpu_high", .labels = "host=a"}) == std::vector<std::int64_t>{id1});
  CHECK(ids({.labels = ""}) == std::vector<std::int64_t>{id3});
  CHECK(ids({.since = t0 + 1min}) == std::vector<std::int64_t>{id4, id3, id2});  // fired at or after
  CHECK(ids({.since = t0 + 1min, .limit = 2, .newest_first = false}) == std::vector<std::int64_t>{id2, id3});
  CHECK(ids({.rule = "mem_high"}).empty());
  CHECK(s.list_alerts({.rule = "cpu_critical"}).value().at(0) == s.get_alert(id4).value().value());
  // A notice is owed when the alert left the state it was last notified in (never notified: none).
  CHECK(ids({.notice_owed = true}).empty());
  auto owed = s.get_alert(id5).value().value();
  owed.notified_state = "firing";  // resolved since
  REQUIRE(s.update_alert(owed));
  auto settled = s.get_alert(id4).value().value();
  settled.notified_state = "firing";
  REQUIRE(s.update_alert(settled));
  CHECK(ids({.notice_owed = true}) == std::vector<std::int64_t>{id5});
  CHECK(ids({.state = "resolved", .rule = "cpu_high", .notice_owed = true}) == std::vector<std::int64_t>{id5});
  owed = s.get_alert(id5).value().value();
  owed.notified_state = "";
  REQUIRE(s.update_alert(owed));
  settled = s.get_alert(id4).value().value();
  settled.notified_state = "";
  REQUIRE(s.update_alert(settled));

  // Compare-and-set: the second writer with the same version loses.
  auto notice = *got;
  notice.notified_state = "firing";
  notice.notified = t0 + 1s;
  notice.level = 1;
  notice.updated = t0 + 1s;
  CHECK(s.update_alert(notice).value() == 2);
  auto stale = s.update_alert(notice);
  REQUIRE_FALSE(stale);
  CHECK(stale.error().is(errc::conflict));
  CHECK_THAT(stale.error().message, Catch::Contains("at version 2, not 1"));
  auto unknown = notice;
  unknown.id = id5 + 100;
  CHECK(s.update_alert(unknown).error().is(errc::not_found));
  auto stored = s.get_alert(id1).value().value();
  CHECK(stored.version == 2);
  CHECK(stored.level == 1);
  CHECK(stored.notified_state == "firing");
  CHECK(stored.notified == t0 + 1s);

  // Every field but id, rule and labels is written.
  auto ack = stored;
  ack.rule = "renamed";
  ack.labels = "host=z";
  ack.severity = "critical";
  ack.summary = "cpu_usage 99 > 80 for 5m";
  ack.values = R"({"cpu_usage":99})";
  ack.acknowledged = t0 + 2s;
  ack.acknowledged_by = "user:alice";
  ack.ack_reason = "looking into it";
  ack.level = 2;
  ack.reopened = 1;
  ack.reason = "escalated";
  ack.updated = t0 + 2s + 300us;
  CHECK(s.update_alert(ack).value() == 3);
  auto after = s.get_alert(id1).value().value();
  auto want = ack;
  want.rule = "cpu_high";
  want.labels = "host=a";
  want.updated = t0 + 2s;  // to the millisecond
  want.version = 3;
  CHECK(after == want);

  // Invalid records are refused and change nothing.
  auto invalid = [&](auto change) {
    auto r = after;
    change(r);
    auto u = s.update_alert(r);
    CHECK(u.error().is(errc::invalid_argument));
    auto c = s.create_alert(r);
    CHECK(c.error().is(errc::invalid_argument));
    return u ? std::string() : u.error().message;
  };
  CHECK_THAT(invalid([](AlertRecord& r) { r.severity = "page"; }), Catch::Contains("severity") && Catch::Contains("\"page\""));
  CHECK_THAT(invalid([](AlertRecord& r) { r.state = "open"; }), Catch::Contains("\"open\""));
  CHECK_THAT(invalid([](AlertRecord& r) { r.notified_state = "sent"; }), Catch::Contains("\"sent\""));
  CHECK_THAT(invalid([](AlertRecord& r) { r.rule = ""; }), Catch::Contains("\"rule\" must not be empty"));
  CHECK_THAT(invalid([](AlertRecord& r) { r.level = -1; }), Catch::Contains("level"));
  CHECK_THAT(invalid([](AlertRecord& r) { r.reopened = -1; }), Catch::Contains("reopened"));
  CHECK_THAT(invalid([](AlertRecord& r) { r.values = "[1]"; }), Catch::Contains("JSON object"));
  invalid([](AlertRecord& r) { r.values = "{\"a\":"; });
  CHECK_THAT(invalid([](AlertRecord& r) { r.labels = "host"; }), Catch::Contains("not key=value"));
  CHECK_THAT(invalid([](AlertRecord& r) { r.resolved = r.fired; }), Catch::Contains("a firing alert has no resolution time"));
  CHECK_THAT(invalid([](AlertRecord& r) { r.state = "resolved"; }), Catch::Contains("a resolved alert needs its resolution time"));
  CHECK_THAT(invalid([](AlertRecord& r) { r.acknowledged_by.clear(); }), Catch::Contains("needs acknowledged_by"));
  CHECK(s.get_alert(id1).value().value() == after);
  CHECK(area_rows(s, "alerts") == 5);
}

TEMPLATE_TEST_CASE("contract: a resolved alert fires again only when no other alert fires for its rule and labels", "[contract]",
                   MemoryBackend, SqliteBackend) {
  TestType b;
  auto& s = *b.store;
  const auto t0 = TimePoint(1'700'000'000'000ms);
  const auto id1 = s.create_alert(an_alert("disk_full", "mount=/", "firing", t0)).value();
  auto first = s.get_alert(id1).value().value();
  first.state = "resolved";
  first.resolved = t0 + 1min;
  first.version = s.update_alert(first).value();
  const auto id2 = s.create_alert(an_alert("disk_full", "mount=/", "firing", t0 + 2min)).value();

  // Re-opening the first while the second fires: conflict, and nothing is written.
  auto reopen = first;
  reopen.state = "firing";
  reopen.resolved = {};
  reopen.reopened = 1;
  auto r = s.update_alert(reopen);
  REQUIRE_FALSE(r);
  CHECK(r.error().is(errc::conflict));
  CHECK_THAT(r.error().message, Catch::Contains(fmt::format("alert {} is firing", id2)));
  CHECK(s.get_alert(id1).value().value() == first);
  // A firing alert may be updated and stay firing.
  auto second = s.get_alert(id2).value().value();
  second.level = 1;
  second.version = s.update_alert(second).value();
  CHECK(second.version == 2);
  // Once the second resolves, the first may fire again, and then no third may.
  second.state = "resolved";
  second.resolved = t0 + 3min;
  CHECK(s.update_alert(second).value() == 3);
  CHECK(s.update_alert(reopen).value() == 3);
  CHECK(s.get_alert(id1).value()->reopened == 1);
  CHECK(s.list_alerts({.state = "firing"}).value().size() == 1);
  auto third = s.create_alert(an_alert("disk_full", "mount=/", "firing", t0 + 4min));
  REQUIRE_FALSE(third);
  CHECK(third.error().is(errc::conflict));
  CHECK_THAT(third.error().message, Catch::Contains(fmt::format("alert {} is firing", id1)));
  CHECK(s.list_alerts({}).value().size() == 2);
}

TEMPLATE_TEST_CASE("contract: pruning deletes resolved alerts only and alert ids are never reused", "[contract]", MemoryBackend,
                   SqliteBackend) {
  TestType b;
  auto& s = *b.store;
  const auto t0 = TimePoint(1'700'000'000'000ms);
  auto resolved_at = [&](TimePoint resolved) {
    auto a = an_alert("cpu_high", "host=a", "resolved", resolved - 10min);
    a.resolved = resolved;
    return s.create_alert(a).value();
  };
  const auto firing = s.create_alert(an_alert("cpu_high", "host=a", "firing", t0 - 1000h)).value();
  resolved_at(t0);
  const auto last = resolved_at(t0 + 2h);
  CHECK(s.prune_alerts(t0).value() == 0);  // resolved strictly before the cut
  CHECK(s.prune_alerts(t0 + 1ms).value() == 1);
  CHECK(s.prune_alerts(t0 + 1000h).value() == 1);
  CHECK(s.prune_alerts(t0 + 1000h).value() == 0);
  auto left = s.list_alerts({}).value();
  REQUIRE(left.size() == 1);
  CHECK(left[0].id == firing);  // firing alerts stay however old
  const auto next = s.create_alert(an_alert("cpu_high", "host=b", "firing", t0)).value();
  CHECK(next > last);  // the newest id was pruned, and is not given again
  CHECK(area_rows(s, "alerts") == 2);
}

TEMPLATE_TEST_CASE("contract: two writers race to fire each alert and exactly one wins", "[contract]", SqliteBackend) {
  TestType b;
  auto second = open_store("sqlite:" + b.dir.file("contract.db")).value();
  std::atomic<int> wins{0}, conflicts{0};
  auto race = [&](Store& s) {
    for (int i = 0; i < 50; ++i) {
      auto r = s.create_alert(an_alert("cpu_high", fmt::format("host={}", i), "firing", TimePoint(std::chrono::minutes(i))));
      if (r)
        ++wins;
      else if (r.error().is(errc::conflict))
        ++conflicts;
    }
  };
  std::thread t1([&] { race(*b.store); });
  std::thread t2([&] { race(*second); });
  t1.join();
  t2.join();
  CHECK(wins == 50);
  CHECK(conflicts == 50);
  CHECK(b.store->list_alerts({.state = "firing", .limit = 0}).value().size() == 50);
}

// ---- forecasts ---------------------------------------------------------------------------------

namespace {
ForecastRecord a_forecast(std::string metric, TimePoint created, std::int32_t first_day = 20000, std::int32_t horizon = 7) {
  ForecastRecord f;
  f.metric = std::move(metric);
  f.time_zone = "Europe/Berlin";
  f.created = created;
  f.first_day = first_day;
  f.horizon = horizon;
  f.method = "theta";
  f.backend = "statistical";
  f.document = R"({"mean":[1.5,2.5],"lower":[1,2],"upper":[2,3],"why":"weekly seasonality"})";
  f.inputs = R"({"days":56,"points":56,"scale":1})";
  f.reason = "autoctl forecast by alice";
  return f;
}
}  // namespace

TEMPLATE_TEST_CASE("contract: forecasts round-trip with store-assigned ids and are listed by metric and creation time", "[contract]",
                   MemoryBackend, SqliteBackend) {
  TestType b;
  auto& s = *b.store;
  const auto t0 = TimePoint(1'700'000'000'000ms);
  auto first = a_forecast("revenue", t0 + 250us);
  first.id = 77;  // ignored: the store assigns ids
  const auto id1 = s.append_forecast(first).value();
  auto got = s.get_forecast(id1).value();
  REQUIRE(got);
  auto expected = first;
  expected.id = id1;
  expected.created = t0;  // to the millisecond
  CHECK(*got == expected);
  CHECK_FALSE(s.get_forecast(id1 + 100).value());
  CHECK_FALSE(s.get_forecast(0).value());

  auto llm = a_forecast("users", t0 + 1h, 20001, 30);
  llm.backend = "llm";
  llm.method = "auto";
  llm.document = "{}";
  llm.inputs = "{}";
  llm.reason = "";
  const auto id2 = s.append_forecast(llm).value();
  auto utc = a_forecast("revenue", t0 + 2h);
  utc.time_zone = "UTC";
  const auto id3 = s.append_forecast(utc).value();
  const auto id4 = s.append_forecast(a_forecast("error_rate", t0 + 3h, -5, 1)).value();
  const auto id5 = s.append_forecast(a_forecast("revenue", t0 - 1h)).value();  // created earlier, appended later
  CHECK(id1 < id2);
  CHECK(id2 < id3);
  CHECK(id3 < id4);
  CHECK(id4 < id5);
  CHECK(area_rows(s, "forecasts") == 5);
  auto stored_llm = s.get_forecast(id2).value().value();
  CHECK(stored_llm.backend == "llm");
  CHECK(stored_llm.horizon == 30);
  CHECK(stored_llm.first_day == 20001);
  CHECK(stored_llm.reason.empty());
  CHECK(s.get_forecast(id4).value()->first_day == -5);

  // Lists: filters are ANDed, newest first by id unless asked, limit 0 = all.
  auto ids = [&](const ForecastQuery& q) {
    std::vector<std::int64_t> out;
    for (const auto& r : s.list_forecasts(q).value()) out.push_back(r.id);
    return out;
  };
  CHECK(ids({}) == std::vector<std::int64_t>{id5, id4, id3, id2, id1});
  CHECK(ids({.limit = 2}) == std::vector<std::int64_t>{id5, id4});
  CHECK(ids({.limit = 2, .newest_first = false}) == std::vector<std::int64_t>{id1, id2});
  CHECK(ids({.limit = 0, .newest_first = false}) == std::vector<std::int64_t>{id1, id2, id3, id4, id5});
  CHECK(ids({.metric = "revenue"}) == std::vector<std::int64_t>{id5, id3, id1});
  CHECK(ids({.metric = "revenue", .limit = 1}) == std::vector<std::int64_t>{id5});
  CHECK(ids({.metric = "revenue", .newest_first = false}) == std::vector<std::int64_t>{id1, id3, id5});
  CHECK(ids({.metric = "rev"}).empty());  // metrics match exactly
  CHECK(ids({.metric = "cpu_usage"}).empty());
  CHECK(ids({.since = t0 + 1h}) == std::vector<std::int64_t>{id4, id3, id2});  // created at or after
  CHECK(ids({.since = t0}) == std::vector<std::int64_t>{id4, id3, id2, id1});  // id1 was created at t0 + 250 us, stored as t0
  CHECK(ids({.since = t0 + 1ms}) == std::vector<std::int64_t>{id4, id3, id2});
  CHECK(ids({.metric = "revenue", .since = t0}) == std::vector<std::int64_t>{id3, id1});
  CHECK(ids({.metric = "revenue", .since = t0, .limit = 1, .newest_first = false}) == std::vector<std::int64_t>{id1});
  CHECK(ids({.metric = "users", .since = t0 + 2h}).empty());
  CHECK(ids({.metric = "revenue", .time_zone = "UTC"}) == std::vector<std::int64_t>{id3});
  CHECK(ids({.metric = "revenue", .time_zone = "Europe/Berlin"}) == std::vector<std::int64_t>{id5, id1});
  CHECK(ids({.time_zone = "Asia/Tokyo"}).empty());
  const auto listed = s.list_forecasts({.metric = "users"}).value();
  REQUIRE(listed.size() == 1);
  CHECK(listed[0] == stored_llm);
}

TEMPLATE_TEST_CASE("contract: an invalid forecast is refused with a message naming it and nothing is stored", "[contract]", MemoryBackend,
                   SqliteBackend) {
  TestType b;
  auto& s = *b.store;
  const auto good = a_forecast("revenue", TimePoint(1'700'000'000'000ms));
  auto refused = [&](auto change) {
    ForecastRecord f = good;
    change(f);
    auto r = s.append_forecast(f);
    REQUIRE_FALSE(r);
    CHECK(r.error().is(errc::invalid_argument));
    return r.error().message;
  };
  CHECK_THAT(refused([](ForecastRecord& f) { f.metric = ""; }), Catch::Contains("\"metric\" must not be empty"));
  for (std::string metric : {"9lives", "rev-enue", "rev enue", "rev.enue", "é"})
    CHECK_THAT(refused([&](ForecastRecord& f) { f.metric = metric; }),
               Catch::Contains(fmt::format("\"{}\"", metric)) && Catch::Contains("[A-Za-z_][A-Za-z0-9_]*"));
  CHECK_THAT(refused([](ForecastRecord& f) { f.time_zone = ""; }),
             Catch::Contains("\"time_zone\" must not be empty") && Catch::Contains("\"revenue\""));
  CHECK_THAT(refused([](ForecastRecord& f) { f.horizon = 0; }), Catch::Contains("horizon") && Catch::Contains("(not 0)"));
  CHECK_THAT(refused([](ForecastRecord& f) { f.horizon = -3; }), Catch::Contains("(not -3)"));
  CHECK_THAT(refused([](ForecastRecord& f) { f.horizon = 10001; }), Catch::Contains("1 to 10000") && Catch::Contains("(not 10001)"));
  CHECK_THAT(refused([](ForecastRecord& f) { f.method = ""; }), Catch::Contains("\"method\" must not be empty"));
  CHECK_THAT(refused([](ForecastRecord& f) { f.backend = ""; }), Catch::Contains("statistical or llm") && Catch::Contains("(not \"\")"));
  CHECK_THAT(refused([](ForecastRecord& f) { f.backend = "LLM"; }), Catch::Contains("(not \"LLM\")"));
  CHECK_THAT(refused([](ForecastRecord& f) { f.document = "[1,2]"; }), Catch::Contains("\"document\"") && Catch::Contains("JSON object"));
  CHECK_THAT(refused([](ForecastRecord& f) { f.document = ""; }), Catch::Contains("forecast") && Catch::Contains("\"revenue\""));
  CHECK_THAT(refused([](ForecastRecord& f) { f.document = "{\"mean\":"; }), Catch::Contains("\"revenue\""));
  CHECK_THAT(refused([](ForecastRecord& f) { f.inputs = "42"; }), Catch::Contains("\"inputs\"") && Catch::Contains("JSON object"));
  CHECK_THAT(refused([](ForecastRecord& f) { f.inputs = "not json"; }), Catch::Contains("\"revenue\""));
  CHECK(s.list_forecasts({.limit = 0}).value().empty());
  CHECK(area_rows(s, "forecasts") == 0);

  // The bounds themselves, any first day and an empty reason are fine.
  auto fine = [&](auto change) {
    ForecastRecord f = good;
    change(f);
    return s.append_forecast(f).has_value();
  };
  CHECK(fine([](ForecastRecord& f) { f.horizon = 1; }));
  CHECK(fine([](ForecastRecord& f) { f.horizon = 10000; }));
  CHECK(fine([](ForecastRecord& f) { f.metric = "_Revenue9"; }));
  CHECK(fine([](ForecastRecord& f) {
    f.first_day = -1;
    f.reason = "";
  }));
  CHECK(s.list_forecasts({.limit = 0}).value().size() == 4);
}

TEMPLATE_TEST_CASE("contract: pruning deletes forecasts created before the cut and forecast ids are never reused", "[contract]",
                   MemoryBackend, SqliteBackend) {
  TestType b;
  auto& s = *b.store;
  const auto t0 = TimePoint(1'700'000'000'000ms);
  const auto old = s.append_forecast(a_forecast("revenue", t0 - 100h)).value();
  const auto at_cut = s.append_forecast(a_forecast("users", t0)).value();
  const auto last = s.append_forecast(a_forecast("revenue", t0 + 2h)).value();
  CHECK(s.prune_forecasts(t0 - 100h).value() == 0);  // created strictly before the cut
  CHECK(s.prune_forecasts(t0).value() == 1);
  CHECK_FALSE(s.get_forecast(old).value());
  CHECK(s.prune_forecasts(t0 + 1ms).value() == 1);
  CHECK_FALSE(s.get_forecast(at_cut).value());
  CHECK(s.prune_forecasts(t0 + 1ms).value() == 0);
  CHECK(s.get_forecast(last).value());
  CHECK(s.prune_forecasts(t0 + 1000h).value() == 1);
  CHECK(area_rows(s, "forecasts") == 0);
  const auto next = s.append_forecast(a_forecast("revenue", t0)).value();
  CHECK(next > last);  // the newest id was pruned, and is not given again
  CHECK(s.list_forecasts({}).value().size() == 1);

  // Many at once (more than SQLite deletes per chunk), keeping the newer ones of every metric.
  for (int i = 0; i < 2500; ++i) REQUIRE(s.append_forecast(a_forecast(i % 2 ? "revenue" : "users", t0 - 1000h + std::chrono::minutes(i))));
  CHECK(s.prune_forecasts(t0 - 1000h + 2400min).value() == 2400);
  CHECK(s.list_forecasts({.limit = 0}).value().size() == 101);
  CHECK(s.list_forecasts({.metric = "users", .limit = 0}).value().size() == 50);
  CHECK(s.list_forecasts({.since = t0 - 1000h, .limit = 0}).value().size() == 101);
}

// ---- scaling -----------------------------------------------------------------------------------

namespace {
ScalingRecord a_scaling(std::string resource, std::string action, TimePoint time, int current = 2, int desired = 2,
                        std::string outcome = "unchanged") {
  ScalingRecord r;
  r.resource = std::move(resource);
  r.action = std::move(action);
  r.time = time;
  r.actor = "scaler";
  r.current = current;
  r.recommended = desired;
  r.desired = desired;
  r.reason = desired > current ? "StepUp" : desired < current ? "StepDown" : "NoChange";
  r.message = "cpu_usage 71 is within 50..80";
  r.inputs = R"({"cpu_usage":71})";
  r.active = true;
  r.outcome = std::move(outcome);
  r.updated = time;
  return r;
}

std::vector<std::int64_t> scaling_ids(Store& s, const ScalingQuery& q) {
  std::vector<std::int64_t> out;
  for (const auto& r : s.list_scaling(q).value()) out.push_back(r.id);
  return out;
}
}  // namespace

TEMPLATE_TEST_CASE("contract: scaling records round-trip with store-assigned ids and are listed by every filter", "[contract][scaling]",
                   MemoryBackend, SqliteBackend) {
  TestType b;
  auto& s = *b.store;
  const auto t0 = TimePoint(1'700'000'000'000ms);
  // Every field set to something other than its default.
  ScalingRecord full;
  full.id = 77;  // ignored: the store assigns ids
  full.resource = "web-1.prod_eu";
  full.action = "scale-up";
  full.time = t0 + 250us;
  full.actor = "user:alice";
  full.current = 3;
  full.recommended = 7;
  full.desired = 5;
  full.reason = "ScaleUpLimit";
  full.message = "cpu_usage 93 > 80; limited to +2 per minute";
  full.inputs = R"({"cpu_usage":93,"policy":{"max":10}})";
  full.active = true;
  full.metrics_ok = false;
  full.dry_run = true;
  full.outcome = "dry-run";
  full.error = "the actuator was not called";
  full.updated = t0 + 1s + 999us;
  const auto id1 = s.append_scaling(full, std::nullopt).value();
  auto expected = full;
  expected.id = id1;
  expected.time = t0;  // to the millisecond
  expected.updated = t0 + 1s;
  const auto listed = s.list_scaling({}).value();
  REQUIRE(listed.size() == 1);
  CHECK(listed[0] == expected);
  CHECK(area_rows(s, "scaling") == 1);

  const auto id2 = s.append_scaling(a_scaling("web-1.prod_eu", "decide", t0 + 1min), std::nullopt).value();  // no change
  const auto id3 = s.append_scaling(a_scaling("web-1.prod_eu", "decide", t0 + 2min, 2, 4, "applied"), std::nullopt).value();
  const auto id4 = s.append_scaling(a_scaling("api", "decide", t0 + 3min, 4, 3, "blocked"), std::nullopt).value();
  const auto id5 = s.append_scaling(a_scaling("api", "restart", t0 + 4min, 3, 3, "pending"), std::nullopt).value();  // a manual action
  const auto id6 = s.append_scaling(a_scaling("api", "thresholds", t0 - 1h), std::nullopt).value();  // earlier time, appended later
  const auto id7 = s.append_scaling(a_scaling("api", "scale-down", t0 + 5min, 3, 3, "failed"), std::nullopt).value();
  CHECK(id1 < id2);
  CHECK(id2 < id3);
  CHECK(id3 < id4);
  CHECK(id4 < id5);
  CHECK(id5 < id6);
  CHECK(id6 < id7);
  CHECK(area_rows(s, "scaling") == 7);

  using Ids = std::vector<std::int64_t>;
  CHECK(scaling_ids(s, {}) == Ids{id7, id6, id5, id4, id3, id2, id1});
  CHECK(scaling_ids(s, {.limit = 2}) == Ids{id7, id6});
  CHECK(scaling_ids(s, {.limit = 2, .newest_first = false}) == Ids{id1, id2});
  CHECK(scaling_ids(s, {.limit = 0, .newest_first = false}) == Ids{id1, id2, id3, id4, id5, id6, id7});
  CHECK(scaling_ids(s, {.resource = "api"}) == Ids{id7, id6, id5, id4});
  CHECK(scaling_ids(s, {.resource = "web-1.prod_eu", .newest_first = false}) == Ids{id1, id2, id3});
  CHECK(scaling_ids(s, {.resource = "web"}).empty());  // resources match exactly
  CHECK(scaling_ids(s, {.action = "decide"}) == Ids{id4, id3, id2});
  CHECK(scaling_ids(s, {.resource = "api", .action = "decide"}) == Ids{id4});
  CHECK(scaling_ids(s, {.action = "thresholds"}) == Ids{id6});
  CHECK(scaling_ids(s, {.outcome = "pending"}) == Ids{id5});
  CHECK(scaling_ids(s, {.outcome = "dry-run"}) == Ids{id1});
  CHECK(scaling_ids(s, {.resource = "web-1.prod_eu", .outcome = "unchanged"}) == Ids{id2});
  CHECK(scaling_ids(s, {.since = t0}) == Ids{id7, id5, id4, id3, id2, id1});  // id1 at t0 + 250 us, stored as t0
  CHECK(scaling_ids(s, {.since = t0 + 1ms}) == Ids{id7, id5, id4, id3, id2});
  CHECK(scaling_ids(s, {.since = t0 + 3min, .newest_first = false}) == Ids{id4, id5, id7});
  // Changes: desired != current, or a manual action (even one that changed nothing).
  CHECK(scaling_ids(s, {.changes_only = true}) == Ids{id7, id5, id4, id3, id1});
  CHECK(scaling_ids(s, {.resource = "api", .action = "decide", .changes_only = true}) == Ids{id4});
  CHECK(scaling_ids(s, {.resource = "web-1.prod_eu", .changes_only = true, .limit = 1}) == Ids{id3});
  CHECK(scaling_ids(s, {.resource = "api", .outcome = "failed", .since = t0 + 5min, .changes_only = true}) == Ids{id7});
  CHECK(scaling_ids(s, {.resource = "api", .outcome = "unchanged", .changes_only = true}).empty());  // the thresholds record
  CHECK(scaling_ids(s, {.resource = "db"}).empty());
  auto thresholds = a_scaling("api", "thresholds", t0 - 1h);
  thresholds.id = id6;
  CHECK(s.list_scaling({.action = "thresholds"}).value().at(0) == thresholds);
}

TEMPLATE_TEST_CASE("contract: a scaling record with `after` is stored only when its resource's newest record is `after`",
                   "[contract][scaling]", MemoryBackend, SqliteBackend) {
  TestType b;
  auto& s = *b.store;
  const auto t0 = TimePoint(1'700'000'000'000ms);
  // Another resource's records do not matter.
  const auto other = s.append_scaling(a_scaling("api", "decide", t0), std::nullopt).value();
  const auto first = s.append_scaling(a_scaling("web", "decide", t0), 0).value();  // 0: it has none yet
  auto again = s.append_scaling(a_scaling("web", "decide", t0 + 1min), 0);
  REQUIRE_FALSE(again);
  CHECK(again.error().is(errc::conflict));
  CHECK_THAT(again.error().message, Catch::Contains("\"web\"") &&
                                        Catch::Contains(fmt::format("newest scaling record is {}, not 0", first)) &&
                                        Catch::Contains("another writer"));
  auto stale = s.append_scaling(a_scaling("web", "decide", t0 + 1min), other);  // the newest record, but of another resource
  REQUIRE_FALSE(stale);
  CHECK(stale.error().is(errc::conflict));
  CHECK(s.list_scaling({.resource = "web"}).value().size() == 1);  // a conflict stores nothing
  CHECK(area_rows(s, "scaling") == 2);

  const auto second = s.append_scaling(a_scaling("web", "scale-up", t0 + 1min, 2, 3, "pending"), first).value();
  CHECK(second > first);
  CHECK(s.append_scaling(a_scaling("web", "decide", t0 + 2min), first).error().is(errc::conflict));  // no longer the newest
  // api's history is unaffected by web's records.
  const auto other2 = s.append_scaling(a_scaling("api", "decide", t0 + 2min), other).value();
  CHECK(s.append_scaling(a_scaling("web", "decide", t0 + 2min), other2).error().is(errc::conflict));
  const auto third = s.append_scaling(a_scaling("web", "decide", t0 + 2min), second).value();
  CHECK(s.append_scaling(a_scaling("db", "decide", t0 + 2min), 0).value() > third);
  CHECK(s.append_scaling(a_scaling("db", "decide", t0 + 3min), std::nullopt).has_value());  // without `after`: unconditional
  CHECK(scaling_ids(s, {.resource = "web"}) == std::vector<std::int64_t>{third, second, first});
  CHECK(area_rows(s, "scaling") == 7);
  // An invalid record is refused as such, whatever `after` says.
  CHECK(s.append_scaling(a_scaling("web", "bogus", t0), 0).error().is(errc::invalid_argument));
}

TEMPLATE_TEST_CASE("contract: two writers racing with `after` never both append after the same record", "[contract][scaling]",
                   SqliteBackend) {
  TestType b;
  auto second = open_store("sqlite:" + b.dir.file("contract.db")).value();
  std::atomic<int> wins{0}, conflicts{0};
  auto race = [&](Store& s) {
    for (int i = 0; i < 60; ++i) {
      const auto newest = s.list_scaling({.resource = "web", .limit = 1}).value();
      const std::int64_t after = newest.empty() ? 0 : newest[0].id;
      auto r = a_scaling("web", "decide", TimePoint(std::chrono::minutes(i)));
      r.inputs = fmt::format(R"({{"after":{}}})", after);
      auto appended = s.append_scaling(r, after);
      if (appended)
        ++wins;
      else if (appended.error().is(errc::conflict))
        ++conflicts;
    }
  };
  std::thread t1([&] { race(*b.store); });
  std::thread t2([&] { race(*second); });
  t1.join();
  t2.join();
  CHECK(wins + conflicts == 120);
  const auto records = b.store->list_scaling({.limit = 0, .newest_first = false}).value();
  CHECK(records.size() == static_cast<std::size_t>(wins.load()));
  // Each record was appended after the one before it: a chain, no fork.
  std::int64_t previous = 0;
  for (const auto& r : records) {
    CHECK(r.inputs == fmt::format(R"({{"after":{}}})", previous));
    previous = r.id;
  }
}

TEMPLATE_TEST_CASE("contract: finishing a scaling record sets its outcome once, while it is pending", "[contract][scaling]", MemoryBackend,
                   SqliteBackend) {
  TestType b;
  auto& s = *b.store;
  const auto t0 = TimePoint(1'700'000'000'000ms);
  const auto pending = s.append_scaling(a_scaling("web", "scale-up", t0, 2, 4, "pending"), std::nullopt).value();
  const auto done = s.append_scaling(a_scaling("web", "decide", t0 + 1min), std::nullopt).value();
  auto before = s.list_scaling({.limit = 0, .newest_first = false}).value();

  auto refused = [&](std::string_view outcome) {
    auto r = s.finish_scaling(pending, outcome, "", t0 + 1h);
    REQUIRE_FALSE(r);
    CHECK(r.error().is(errc::invalid_argument));
    return r.error().message;
  };
  CHECK_THAT(refused("pending"), Catch::Contains(fmt::format("scaling record {}", pending)) && Catch::Contains("(not \"pending\")") &&
                                     Catch::Contains("applied, unchanged, blocked, failed or dry-run"));
  CHECK_THAT(refused("done"), Catch::Contains("(not \"done\")"));
  CHECK_THAT(refused(""), Catch::Contains("(not \"\")"));
  auto unknown = s.finish_scaling(done + 100, "applied", "", t0);
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().is(errc::not_found));
  CHECK_THAT(unknown.error().message, Catch::Contains(fmt::format("scaling record {} does not exist", done + 100)));
  auto finished = s.finish_scaling(done, "applied", "", t0);  // appended as unchanged: never pending
  REQUIRE_FALSE(finished);
  CHECK(finished.error().is(errc::conflict));
  CHECK_THAT(finished.error().message,
             Catch::Contains(fmt::format("scaling record {} is not pending", done)) && Catch::Contains("\"unchanged\""));
  CHECK(s.list_scaling({.limit = 0, .newest_first = false}).value() == before);  // nothing changed

  REQUIRE(s.finish_scaling(pending, "failed", "kubectl: connection refused", t0 + 90s + 500us));
  auto expected = before[0];
  expected.outcome = "failed";
  expected.error = "kubectl: connection refused";
  expected.updated = t0 + 90s;
  auto after = s.list_scaling({.limit = 0, .newest_first = false}).value();
  REQUIRE(after.size() == 2);
  CHECK(after[0] == expected);
  CHECK(after[1] == before[1]);
  auto twice = s.finish_scaling(pending, "applied", "", t0 + 2h);  // another writer finished it first
  REQUIRE_FALSE(twice);
  CHECK(twice.error().is(errc::conflict));
  CHECK_THAT(twice.error().message, Catch::Contains("\"failed\""));
  CHECK(s.list_scaling({.outcome = "failed"}).value().at(0) == expected);
  for (std::string outcome : {"applied", "unchanged", "blocked", "failed", "dry-run"}) {
    const auto id = s.append_scaling(a_scaling("api", "decide", t0, 1, 2, "pending"), std::nullopt).value();
    CHECK(s.finish_scaling(id, outcome, "", t0));
    CHECK(s.list_scaling({.resource = "api", .limit = 1}).value().at(0).outcome == outcome);
  }
}

TEMPLATE_TEST_CASE("contract: pruning scaling records keeps each resource's newest thresholds record", "[contract][scaling]", MemoryBackend,
                   SqliteBackend) {
  TestType b;
  auto& s = *b.store;
  const auto t0 = TimePoint(1'700'000'000'000ms);
  const auto web_old_thresholds = s.append_scaling(a_scaling("web", "thresholds", t0 - 10h), std::nullopt).value();
  const auto web_thresholds = s.append_scaling(a_scaling("web", "thresholds", t0 - 5h), std::nullopt).value();
  s.append_scaling(a_scaling("web", "decide", t0 - 4h), std::nullopt).value();
  const auto api_thresholds = s.append_scaling(a_scaling("api", "thresholds", t0 - 9h), std::nullopt).value();
  const auto api_new = s.append_scaling(a_scaling("api", "decide", t0), std::nullopt).value();
  s.append_scaling(a_scaling("db", "scale-up", t0 - 1ms, 1, 2, "applied"), std::nullopt).value();
  CHECK(s.prune_scaling(t0 - 10h).value() == 0);  // strictly before the cut
  CHECK(s.prune_scaling(t0).value() == 3);
  CHECK(scaling_ids(s, {}) == std::vector<std::int64_t>{api_new, api_thresholds, web_thresholds});
  CHECK(s.prune_scaling(t0 + 1000h).value() == 1);  // api_new; the thresholds records stay however old
  CHECK(scaling_ids(s, {}) == std::vector<std::int64_t>{api_thresholds, web_thresholds});
  // A newer thresholds record of web: the older one may go now.
  const auto web_new_thresholds = s.append_scaling(a_scaling("web", "thresholds", t0 + 1h), std::nullopt).value();
  CHECK(web_new_thresholds > api_new);  // ids are never reused
  CHECK(web_old_thresholds < web_thresholds);
  CHECK(s.prune_scaling(t0).value() == 1);
  CHECK(scaling_ids(s, {}) == std::vector<std::int64_t>{web_new_thresholds, api_thresholds});
  CHECK(area_rows(s, "scaling") == 2);

  // Many at once (more than SQLite deletes per chunk): the kept thresholds record is among the oldest.
  const auto cut = t0 - 2000h + 10'040min;
  for (int i = 0; i < 10'050; ++i)
    REQUIRE(s.append_scaling(a_scaling("bulk", "decide", t0 - 2000h + std::chrono::minutes(i)), std::nullopt));
  const auto bulk_thresholds = s.append_scaling(a_scaling("bulk", "thresholds", t0 - 3000h), std::nullopt).value();
  CHECK(s.prune_scaling(cut).value() == 10'040);
  CHECK(s.list_scaling({.resource = "bulk", .limit = 0}).value().size() == 11);
  CHECK(scaling_ids(s, {.resource = "bulk", .action = "thresholds"}) == std::vector<std::int64_t>{bulk_thresholds});
  CHECK(area_rows(s, "scaling") == 13);
}

TEMPLATE_TEST_CASE("contract: an invalid scaling record is refused with a message naming the field and nothing is stored",
                   "[contract][scaling]", MemoryBackend, SqliteBackend) {
  TestType b;
  auto& s = *b.store;
  const auto good = a_scaling("web", "decide", TimePoint(1'700'000'000'000ms));
  auto refused = [&](auto change) {
    ScalingRecord r = good;
    change(r);
    auto appended = s.append_scaling(r, std::nullopt);
    REQUIRE_FALSE(appended);
    CHECK(appended.error().is(errc::invalid_argument));
    CHECK_THAT(appended.error().message, Catch::Contains("scaling record"));
    return appended.error().message;
  };
  CHECK_THAT(refused([](ScalingRecord& r) { r.resource = ""; }), Catch::Contains("\"resource\" must not be empty"));
  for (std::string name : {std::string("-web"), std::string("we b"), std::string("web/1"), std::string("_web"), std::string(".web"),
                           std::string("wéb"), std::string(101, 'a')})
    CHECK_THAT(refused([&](ScalingRecord& r) { r.resource = name; }),
               Catch::Contains("\"resource\" must match [A-Za-z0-9][A-Za-z0-9_.-]*") && Catch::Contains(fmt::format("\"{}\"", name)));
  CHECK_THAT(refused([](ScalingRecord& r) { r.action = ""; }), Catch::Contains("\"action\" must be") && Catch::Contains("(not \"\")"));
  CHECK_THAT(refused([](ScalingRecord& r) { r.action = "scale_up"; }),
             Catch::Contains("decide, scale-up, scale-down, restart or thresholds") && Catch::Contains("(not \"scale_up\")"));
  CHECK_THAT(refused([](ScalingRecord& r) { r.current = -1; }), Catch::Contains("\"current\" must not be negative (not -1)"));
  CHECK_THAT(refused([](ScalingRecord& r) { r.recommended = -2; }), Catch::Contains("\"recommended\" must not be negative (not -2)"));
  CHECK_THAT(refused([](ScalingRecord& r) { r.desired = -3; }), Catch::Contains("\"desired\" must not be negative (not -3)"));
  CHECK_THAT(refused([](ScalingRecord& r) { r.outcome = ""; }), Catch::Contains("\"outcome\" must be") && Catch::Contains("(not \"\")"));
  CHECK_THAT(refused([](ScalingRecord& r) { r.outcome = "ok"; }),
             Catch::Contains("pending, applied, unchanged, blocked, failed or dry-run") && Catch::Contains("(not \"ok\")"));
  CHECK_THAT(refused([](ScalingRecord& r) { r.inputs = "[1]"; }), Catch::Contains("\"inputs\"") && Catch::Contains("JSON object"));
  CHECK_THAT(refused([](ScalingRecord& r) { r.inputs = ""; }), Catch::Contains("\"web\""));
  CHECK_THAT(refused([](ScalingRecord& r) { r.inputs = "{\"a\":"; }), Catch::Contains("\"web\""));
  CHECK(s.list_scaling({.limit = 0}).value().empty());
  CHECK(area_rows(s, "scaling") == 0);

  // The bounds themselves are fine.
  auto fine = [&](auto change) {
    ScalingRecord r = good;
    change(r);
    return s.append_scaling(r, std::nullopt).has_value();
  };
  CHECK(fine([](ScalingRecord& r) { r.resource = std::string(100, 'a'); }));
  CHECK(fine([](ScalingRecord& r) { r.resource = "9web_1.a-b"; }));
  CHECK(fine([](ScalingRecord& r) {
    r.current = r.recommended = r.desired = 0;
    r.actor = r.reason = r.message = "";
  }));
  CHECK(s.list_scaling({.limit = 0}).value().size() == 3);
}

// ---- healing -----------------------------------------------------------------------------------

namespace {
HealingRecord a_healing(std::string target, std::string kind, TimePoint time, std::string action = "", std::string outcome = "") {
  HealingRecord r;
  r.target = std::move(target);
  r.kind = std::move(kind);
  r.time = time;
  r.state = r.kind == "action" ? "healing" : r.kind == "pause" ? "paused" : "unhealthy";
  r.action = std::move(action);
  r.outcome = std::move(outcome);
  if (r.kind == "action") {
    r.step = 1;
    r.attempt = 1;
  }
  r.actor = "healer";
  r.reason = "probe http failed 3 times: status 503";
  r.detail = R"({"status":503})";
  r.updated = time;
  return r;
}

std::vector<std::int64_t> healing_ids(Store& s, const HealingQuery& q) {
  std::vector<std::int64_t> out;
  for (const auto& r : s.list_healing(q).value()) out.push_back(r.id);
  return out;
}
}  // namespace

TEMPLATE_TEST_CASE("contract: healing records round-trip with store-assigned ids and are listed by every filter", "[contract][healing]",
                   MemoryBackend, SqliteBackend) {
  TestType b;
  auto& s = *b.store;
  const auto t0 = TimePoint(1'700'000'000'000ms);
  HealingRecord full;
  full.id = 77;  // ignored
  full.target = "db.primary-1";
  full.time = t0 + 250us;
  full.kind = "action";
  full.state = "quarantined";
  full.action = "quarantine";
  full.step = 3;
  full.attempt = 2;
  full.actor = "user:alice";
  full.reason = "restart budget spent";
  full.detail = R"({"plan":["restart","quarantine"]})";
  full.dry_run = true;
  full.outcome = "dry-run";
  full.error = "not carried out";
  full.updated = t0 + 2s + 999us;
  const auto id1 = s.append_healing(full).value();
  auto expected = full;
  expected.id = id1;
  expected.time = t0;
  expected.updated = t0 + 2s;
  const auto listed = s.list_healing({}).value();
  REQUIRE(listed.size() == 1);
  CHECK(listed[0] == expected);
  CHECK(area_rows(s, "healing") == 1);

  const auto id2 = s.append_healing(a_healing("db.primary-1", "state", t0 + 1min)).value();
  const auto id3 = s.append_healing(a_healing("db.primary-1", "action", t0 + 2min, "restart", "pending")).value();
  const auto id4 = s.append_healing(a_healing("api", "pause", t0 + 3min)).value();
  const auto id5 = s.append_healing(a_healing("api", "action", t0 - 1h, "command", "succeeded")).value();  // earlier, appended later
  const auto id6 = s.append_healing(a_healing("api", "resume", t0 + 4min)).value();
  CHECK(id1 < id2);
  CHECK(id2 < id3);
  CHECK(id3 < id4);
  CHECK(id4 < id5);
  CHECK(id5 < id6);
  CHECK(area_rows(s, "healing") == 6);

  using Ids = std::vector<std::int64_t>;
  CHECK(healing_ids(s, {}) == Ids{id6, id5, id4, id3, id2, id1});
  CHECK(healing_ids(s, {.limit = 2}) == Ids{id6, id5});
  CHECK(healing_ids(s, {.limit = 2, .newest_first = false}) == Ids{id1, id2});
  CHECK(healing_ids(s, {.limit = 0, .newest_first = false}) == Ids{id1, id2, id3, id4, id5, id6});
  CHECK(healing_ids(s, {.target = "api"}) == Ids{id6, id5, id4});
  CHECK(healing_ids(s, {.target = "db"}).empty());  // targets match exactly
  CHECK(healing_ids(s, {.kind = "action"}) == Ids{id5, id3, id1});
  CHECK(healing_ids(s, {.target = "db.primary-1", .kind = "action", .newest_first = false}) == Ids{id1, id3});
  CHECK(healing_ids(s, {.kind = "pause"}) == Ids{id4});
  CHECK(healing_ids(s, {.action = "restart"}) == Ids{id3});
  CHECK(healing_ids(s, {.target = "api", .action = "restart"}).empty());
  CHECK(healing_ids(s, {.action = ""}) == Ids{id6, id4, id2});  // the records that are not actions
  CHECK(healing_ids(s, {.since = t0}) == Ids{id6, id4, id3, id2, id1});
  CHECK(healing_ids(s, {.since = t0 + 1ms}) == Ids{id6, id4, id3, id2});
  CHECK(healing_ids(s, {.target = "api", .kind = "resume", .action = "", .since = t0 + 4min, .limit = 1}) == Ids{id6});
  CHECK(healing_ids(s, {.target = "api", .since = t0 + 5min}).empty());
  auto command = a_healing("api", "action", t0 - 1h, "command", "succeeded");
  command.id = id5;
  CHECK(s.list_healing({.action = "command"}).value().at(0) == command);
}

TEMPLATE_TEST_CASE("contract: finishing a healing action sets its outcome once, while it is pending", "[contract][healing]", MemoryBackend,
                   SqliteBackend) {
  TestType b;
  auto& s = *b.store;
  const auto t0 = TimePoint(1'700'000'000'000ms);
  const auto pending = s.append_healing(a_healing("db", "action", t0, "restart", "pending")).value();
  const auto state = s.append_healing(a_healing("db", "state", t0)).value();
  const auto other = s.append_healing(a_healing("db", "action", t0, "command", "pending")).value();
  const auto before = s.list_healing({.limit = 0, .newest_first = false}).value();

  auto refused = [&](std::string_view outcome, std::string_view detail = "") {
    auto r = s.finish_healing(pending, outcome, "", detail, t0 + 1h);
    REQUIRE_FALSE(r);
    CHECK(r.error().is(errc::invalid_argument));
    return r.error().message;
  };
  CHECK_THAT(refused("pending"), Catch::Contains(fmt::format("healing record {}", pending)) && Catch::Contains("(not \"pending\")") &&
                                     Catch::Contains("succeeded, failed, skipped or dry-run"));
  CHECK_THAT(refused("applied"), Catch::Contains("(not \"applied\")"));
  CHECK_THAT(refused(""), Catch::Contains("(not \"\")"));
  CHECK_THAT(refused("succeeded", "[1]"), Catch::Contains("\"detail\"") && Catch::Contains("JSON object"));
  CHECK_THAT(refused("succeeded", "{"), Catch::Contains(fmt::format("healing record {}", pending)));
  auto unknown = s.finish_healing(other + 100, "succeeded", "", "", t0);
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().is(errc::not_found));
  CHECK_THAT(unknown.error().message, Catch::Contains(fmt::format("healing record {} does not exist", other + 100)));
  auto not_action = s.finish_healing(state, "succeeded", "", "", t0);  // a state record has no outcome to set
  REQUIRE_FALSE(not_action);
  CHECK(not_action.error().is(errc::conflict));
  CHECK_THAT(not_action.error().message, Catch::Contains(fmt::format("healing record {} is not pending", state)));
  CHECK(s.list_healing({.limit = 0, .newest_first = false}).value() == before);

  // An empty detail keeps the record's; a JSON object replaces it.
  REQUIRE(s.finish_healing(pending, "failed", "exit status 1", "", t0 + 30s + 700us));
  REQUIRE(s.finish_healing(other, "succeeded", "", R"({"exit_code":0,"stdout":"ok"})", t0 + 40s));
  auto expected_pending = before[0];
  expected_pending.outcome = "failed";
  expected_pending.error = "exit status 1";
  expected_pending.updated = t0 + 30s;
  auto expected_other = before[2];
  expected_other.outcome = "succeeded";
  expected_other.detail = R"({"exit_code":0,"stdout":"ok"})";
  expected_other.updated = t0 + 40s;
  const auto after = s.list_healing({.limit = 0, .newest_first = false}).value();
  REQUIRE(after.size() == 3);
  CHECK(after[0] == expected_pending);
  CHECK(after[1] == before[1]);
  CHECK(after[2] == expected_other);
  auto twice = s.finish_healing(pending, "succeeded", "", "{}", t0 + 1h);
  REQUIRE_FALSE(twice);
  CHECK(twice.error().is(errc::conflict));
  CHECK_THAT(twice.error().message, Catch::Contains("\"failed\""));
  CHECK(s.list_healing({.limit = 0, .newest_first = false}).value() == after);
  for (std::string outcome : {"succeeded", "failed", "skipped", "dry-run"}) {
    const auto id = s.append_healing(a_healing("api", "action", t0, "wait", "pending")).value();
    CHECK(s.finish_healing(id, outcome, "", "", t0));
    CHECK(s.list_healing({.target = "api", .limit = 1}).value().at(0).outcome == outcome);
  }
}

TEMPLATE_TEST_CASE("contract: pruning deletes healing records older than the cut and their ids are never reused", "[contract][healing]",
                   MemoryBackend, SqliteBackend) {
  TestType b;
  auto& s = *b.store;
  const auto t0 = TimePoint(1'700'000'000'000ms);
  s.append_healing(a_healing("db", "state", t0 - 100h)).value();
  const auto at_cut = s.append_healing(a_healing("db", "action", t0, "restart", "pending")).value();
  const auto last = s.append_healing(a_healing("api", "pause", t0 + 2h)).value();
  CHECK(s.prune_healing(t0 - 100h).value() == 0);  // strictly before the cut
  CHECK(s.prune_healing(t0).value() == 1);
  CHECK(healing_ids(s, {}) == std::vector<std::int64_t>{last, at_cut});
  CHECK(s.prune_healing(t0 + 1ms).value() == 1);
  CHECK(s.prune_healing(t0 + 1000h).value() == 1);
  CHECK(area_rows(s, "healing") == 0);
  CHECK(s.append_healing(a_healing("db", "resume", t0)).value() > last);
}

TEMPLATE_TEST_CASE("contract: an invalid healing record is refused with a message naming the field and nothing is stored",
                   "[contract][healing]", MemoryBackend, SqliteBackend) {
  TestType b;
  auto& s = *b.store;
  const auto good = a_healing("db", "action", TimePoint(1'700'000'000'000ms), "restart", "pending");
  auto refused = [&](auto change) {
    HealingRecord r = good;
    change(r);
    auto appended = s.append_healing(r);
    REQUIRE_FALSE(appended);
    CHECK(appended.error().is(errc::invalid_argument));
    CHECK_THAT(appended.error().message, Catch::Contains("healing record"));
    return appended.error().message;
  };
  CHECK_THAT(refused([](HealingRecord& r) { r.target = ""; }), Catch::Contains("\"target\" must not be empty"));
  for (std::string name : {std::string("-db"), std::string("d b"), std::string("db:1"), std::string("wéb"), std::string(101, 'd')})
    CHECK_THAT(refused([&](HealingRecord& r) { r.target = name; }),
               Catch::Contains("\"target\" must match [A-Za-z0-9][A-Za-z0-9_.-]*") && Catch::Contains(fmt::format("\"{}\"", name)));
  CHECK_THAT(refused([](HealingRecord& r) { r.kind = ""; }), Catch::Contains("\"kind\" must be state, action, pause or resume (not \"\")"));
  CHECK_THAT(refused([](HealingRecord& r) { r.kind = "probe"; }), Catch::Contains("(not \"probe\")"));
  CHECK_THAT(refused([](HealingRecord& r) { r.state = ""; }),
             Catch::Contains("\"state\" must be unknown, healthy, unhealthy, healing, quarantined or paused (not \"\")"));
  CHECK_THAT(refused([](HealingRecord& r) { r.state = "down"; }), Catch::Contains("(not \"down\")"));
  CHECK_THAT(refused([](HealingRecord& r) { r.action = ""; }),
             Catch::Contains("\"action\" must be restart, command, workflow, callback, wait, alert or quarantine (not \"\")"));
  CHECK_THAT(refused([](HealingRecord& r) { r.action = "reboot"; }), Catch::Contains("(not \"reboot\")"));
  CHECK_THAT(refused([](HealingRecord& r) { r.outcome = ""; }),
             Catch::Contains("\"outcome\" must be pending, succeeded, failed, skipped or dry-run (not \"\")"));
  CHECK_THAT(refused([](HealingRecord& r) { r.outcome = "applied"; }), Catch::Contains("(not \"applied\")"));
  CHECK_THAT(refused([](HealingRecord& r) {
               r.kind = "state";
               r.action = "";
               r.outcome = "pending";
             }),
             Catch::Contains("\"outcome\" must be empty for a record of kind state (not \"pending\")"));
  CHECK_THAT(refused([](HealingRecord& r) {
               r.kind = "pause";
               r.outcome = "";
             }),
             Catch::Contains("\"action\" must be empty for a record of kind pause (not \"restart\")"));
  CHECK_THAT(refused([](HealingRecord& r) { r.step = -1; }), Catch::Contains("\"step\" must not be negative (not -1)"));
  CHECK_THAT(refused([](HealingRecord& r) { r.attempt = -2; }), Catch::Contains("\"attempt\" must not be negative (not -2)"));
  CHECK_THAT(refused([](HealingRecord& r) { r.detail = "\"x\""; }), Catch::Contains("\"detail\"") && Catch::Contains("JSON object"));
  CHECK_THAT(refused([](HealingRecord& r) { r.detail = ""; }), Catch::Contains("\"db\""));
  CHECK(s.list_healing({.limit = 0}).value().empty());
  CHECK(area_rows(s, "healing") == 0);

  auto fine = [&](auto change) {
    HealingRecord r = good;
    change(r);
    return s.append_healing(r).has_value();
  };
  CHECK(fine([](HealingRecord& r) { r.target = std::string(100, 'd'); }));
  for (std::string kind : {"state", "pause", "resume"})
    CHECK(fine([&](HealingRecord& r) {
      r.kind = kind;
      r.action = r.outcome = "";
      r.step = r.attempt = 0;
    }));
  for (std::string outcome : {"succeeded", "failed", "skipped", "dry-run"}) CHECK(fine([&](HealingRecord& r) { r.outcome = outcome; }));
  CHECK(s.list_healing({.limit = 0}).value().size() == 8);
}

// ---- tokens ------------------------------------------------------------------------------------

namespace {
// The SHA-256 of "test": the store keeps hashes only.
constexpr std::string_view kHash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

TokenRecord a_token(std::string id, std::string name, TimePoint created, std::string role = "operator") {
  TokenRecord t;
  t.id = std::move(id);
  t.name = std::move(name);
  t.role = std::move(role);
  t.secret_hash = std::string(kHash);
  t.created = created;
  t.created_by = "user:alice";
  return t;
}

std::vector<std::string> token_ids(Store& s, bool include_revoked) {
  std::vector<std::string> out;
  for (const auto& t : s.list_tokens(include_revoked).value()) out.push_back(t.id);
  return out;
}
}  // namespace

TEMPLATE_TEST_CASE("contract: tokens round-trip with every field and are read by id", "[contract][tokens]", MemoryBackend, SqliteBackend) {
  TestType b;
  auto& s = *b.store;
  const auto t0 = TimePoint(1'700'000'000'000ms);
  // Every field set to something other than its default.
  TokenRecord full;
  full.id = "atk_3f9a0c1d2e4b5a6f";
  full.name = "deploy bot (prod) — «eu»";
  full.role = "admin";
  full.secret_hash = std::string(kHash);
  full.created = t0 + 250us;
  full.created_by = "user:alice";
  full.expires = t0 + 24h + 999us;
  full.last_used = t0 + 1h + 1us;
  full.last_used_from = "203.0.113.7:51234";
  REQUIRE(s.create_token(full));
  auto expected = full;
  expected.created = t0;  // to the millisecond
  expected.expires = t0 + 24h;
  expected.last_used = t0 + 1h;
  CHECK(s.get_token(full.id).value() == expected);
  CHECK(s.list_tokens(false).value() == std::vector{expected});
  CHECK(area_rows(s, "tokens") == 1);

  // One stored revoked (an import): every revocation field round-trips too.
  auto revoked = a_token("atk_old", "deploy bot (prod) — «eu»", t0 - 24h, "viewer");
  revoked.revoked = t0 - 1h + 5us;
  revoked.revoked_by = "user:bob";
  revoked.revoke_reason = "leaked in a CI log";
  REQUIRE(s.create_token(revoked));
  revoked.revoked = t0 - 1h;
  CHECK(s.get_token("atk_old").value() == revoked);
  CHECK(area_rows(s, "tokens") == 2);

  CHECK_FALSE(s.get_token("atk_none").value().has_value());
  CHECK_FALSE(s.get_token("").value().has_value());
  CHECK_FALSE(s.get_token("deploy bot (prod) — «eu»").value().has_value());  // by id only
}

TEMPLATE_TEST_CASE("contract: a token id is unique and a name is unique among the tokens not revoked", "[contract][tokens]", MemoryBackend,
                   SqliteBackend) {
  TestType b;
  auto& s = *b.store;
  const auto t0 = TimePoint(1'700'000'000'000ms);
  REQUIRE(s.create_token(a_token("atk_a", "deploy", t0)));
  auto same_id = s.create_token(a_token("atk_a", "other", t0 + 1min, "viewer"));
  REQUIRE_FALSE(same_id);
  CHECK(same_id.error().is(errc::already_exists));
  CHECK_THAT(same_id.error().message, Catch::Contains("token \"atk_a\" already exists"));
  auto same_name = s.create_token(a_token("atk_b", "deploy", t0 + 1min));
  REQUIRE_FALSE(same_name);
  CHECK(same_name.error().is(errc::already_exists));
  CHECK_THAT(same_name.error().message, Catch::Contains("already named \"deploy\"") && Catch::Contains("\"atk_a\""));
  CHECK(token_ids(s, true) == std::vector<std::string>{"atk_a"});  // a refusal stores nothing
  CHECK(s.get_token("atk_a").value()->name == "deploy");
  // Names are compared exactly.
  REQUIRE(s.create_token(a_token("atk_c", "Deploy", t0 + 2min)));
  REQUIRE(s.create_token(a_token("atk_d", "deploy ", t0 + 3min)));

  // A revoked token's name may be taken again, and then only once.
  REQUIRE(s.revoke_token("atk_a", t0 + 1h, "user:bob", "rotated"));
  REQUIRE(s.create_token(a_token("atk_b", "deploy", t0 + 2h)));
  auto third = s.create_token(a_token("atk_e", "deploy", t0 + 3h));
  REQUIRE_FALSE(third);
  CHECK(third.error().is(errc::already_exists));
  CHECK_THAT(third.error().message, Catch::Contains("already named \"deploy\"") && Catch::Contains("\"atk_b\""));
  // A revoked token's id stays taken.
  auto revoked_id = s.create_token(a_token("atk_a", "fresh", t0 + 3h));
  REQUIRE_FALSE(revoked_id);
  CHECK(revoked_id.error().is(errc::already_exists));
  // A token stored revoked does not hold its name.
  auto imported = a_token("atk_f", "deploy", t0 + 4h);
  imported.revoked = t0 + 5h;
  imported.revoked_by = "user:bob";
  REQUIRE(s.create_token(imported));
  CHECK(token_ids(s, true) == std::vector<std::string>{"atk_a", "atk_c", "atk_d", "atk_b", "atk_f"});
  CHECK(area_rows(s, "tokens") == 5);
}

TEMPLATE_TEST_CASE("contract: tokens are listed by creation time then id and revoked ones only when asked", "[contract][tokens]",
                   MemoryBackend, SqliteBackend) {
  TestType b;
  auto& s = *b.store;
  const auto t0 = TimePoint(1'700'000'000'000ms);
  CHECK(s.list_tokens(true).value().empty());
  REQUIRE(s.create_token(a_token("atk_c", "third", t0 + 2min)));
  REQUIRE(s.create_token(a_token("atk_b", "second", t0 + 700us)));  // the same millisecond as atk_a, as stored
  REQUIRE(s.create_token(a_token("atk_a", "first", t0)));
  REQUIRE(s.create_token(a_token("atk_d", "older", t0 - 1h, "viewer")));
  using Ids = std::vector<std::string>;
  CHECK(token_ids(s, false) == Ids{"atk_d", "atk_a", "atk_b", "atk_c"});
  CHECK(token_ids(s, true) == Ids{"atk_d", "atk_a", "atk_b", "atk_c"});
  const auto revoked = s.revoke_token("atk_b", t0 + 1h, "user:bob", "").value();
  REQUIRE(s.revoke_token("older", t0 + 1h, "user:bob", "unused"));
  CHECK(token_ids(s, false) == Ids{"atk_a", "atk_c"});
  CHECK(token_ids(s, true) == Ids{"atk_d", "atk_a", "atk_b", "atk_c"});
  CHECK(s.list_tokens(true).value().at(2) == revoked);
  auto c = a_token("atk_c", "third", t0 + 2min);
  CHECK(s.list_tokens(false).value().at(1) == c);
  REQUIRE(s.revoke_token("atk_a", t0 + 1h, "user:bob", ""));
  REQUIRE(s.revoke_token("atk_c", t0 + 1h, "user:bob", ""));
  CHECK(s.list_tokens(false).value().empty());
  CHECK(token_ids(s, true).size() == 4);
}

TEMPLATE_TEST_CASE("contract: a token is revoked once, by id or by the name of the token not revoked", "[contract][tokens]", MemoryBackend,
                   SqliteBackend) {
  TestType b;
  auto& s = *b.store;
  const auto t0 = TimePoint(1'700'000'000'000ms);
  REQUIRE(s.create_token(a_token("atk_a", "deploy", t0)));
  REQUIRE(s.create_token(a_token("atk_b", "ci", t0 + 1min, "viewer")));
  REQUIRE(s.create_token(a_token("atk_c", "atk_a", t0 + 2min)));  // named like another token's id

  // By id: the id wins over a name.
  const auto by_id = s.revoke_token("atk_a", t0 + 1h + 999us, "user:bob", "rotated");
  REQUIRE(by_id);
  auto expected = a_token("atk_a", "deploy", t0);
  expected.revoked = t0 + 1h;  // to the millisecond
  expected.revoked_by = "user:bob";
  expected.revoke_reason = "rotated";
  CHECK(*by_id == expected);
  CHECK(s.get_token("atk_a").value() == expected);
  CHECK(s.get_token("atk_c").value()->revoked == TimePoint{});
  auto twice = s.revoke_token("atk_a", t0 + 2h, "user:carol", "again");
  REQUIRE_FALSE(twice);
  CHECK(twice.error().is(errc::conflict));
  CHECK_THAT(twice.error().message,
             Catch::Contains("token \"atk_a\"") && Catch::Contains("already revoked") && Catch::Contains("user:bob"));
  CHECK(s.get_token("atk_a").value() == expected);  // unchanged

  // By name.
  const auto by_name = s.revoke_token("ci", t0 + 2h, "user:carol", "");
  REQUIRE(by_name);
  CHECK(by_name->id == "atk_b");
  CHECK(by_name->revoked == t0 + 2h);
  CHECK(by_name->revoked_by == "user:carol");
  CHECK(s.get_token("atk_b").value() == *by_name);
  // Only revoked tokens have the name now.
  auto name_twice = s.revoke_token("ci", t0 + 3h, "user:carol", "");
  REQUIRE_FALSE(name_twice);
  CHECK(name_twice.error().is(errc::conflict));
  CHECK_THAT(name_twice.error().message, Catch::Contains("token \"atk_b\"") && Catch::Contains("already revoked"));
  // A new token of that name is the one revoked by name.
  REQUIRE(s.create_token(a_token("atk_d", "ci", t0 + 3h)));
  CHECK(s.revoke_token("ci", t0 + 4h, "user:carol", "").value().id == "atk_d");
  CHECK(s.get_token("atk_b").value() == *by_name);

  auto unknown = s.revoke_token("nope", t0 + 4h, "user:carol", "");
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().is(errc::not_found));
  CHECK_THAT(unknown.error().message, Catch::Contains("no token has the id or name \"nope\""));

  // The arguments are checked first: who revokes it, and a time that is not "never".
  auto no_one = s.revoke_token("atk_c", t0 + 4h, "", "");
  REQUIRE_FALSE(no_one);
  CHECK(no_one.error().is(errc::invalid_argument));
  CHECK_THAT(no_one.error().message, Catch::Contains("\"atk_c\"") && Catch::Contains("\"by\" must not be empty"));
  for (TimePoint never : {TimePoint{}, TimePoint(500us), TimePoint(-1s)}) {
    auto at_zero = s.revoke_token("atk_c", never, "user:carol", "");
    REQUIRE_FALSE(at_zero);
    CHECK(at_zero.error().is(errc::invalid_argument));
    CHECK_THAT(at_zero.error().message, Catch::Contains("after epoch 0"));
  }
  CHECK(s.revoke_token("nope", TimePoint{}, "user:carol", "").error().is(errc::invalid_argument));
  CHECK(s.get_token("atk_c").value()->revoked == TimePoint{});
  CHECK(token_ids(s, false) == std::vector<std::string>{"atk_c"});
}

TEMPLATE_TEST_CASE("contract: touching a token moves its last use forward only", "[contract][tokens]", MemoryBackend, SqliteBackend) {
  TestType b;
  auto& s = *b.store;
  const auto t0 = TimePoint(1'700'000'000'000ms);
  const auto token = a_token("atk_a", "deploy", t0);
  REQUIRE(s.create_token(token));
  REQUIRE(s.create_token(a_token("atk_b", "other", t0)));
  auto last_use = [&](std::string_view id) {
    const auto t = s.get_token(id).value().value();
    return std::pair(t.last_used, t.last_used_from);
  };
  using Use = std::pair<TimePoint, std::string>;
  CHECK(last_use("atk_a") == Use{TimePoint{}, ""});
  REQUIRE(s.touch_token("atk_a", t0 + 1min + 300us, "10.0.0.1:5000"));
  CHECK(last_use("atk_a") == Use{t0 + 1min, "10.0.0.1:5000"});
  REQUIRE(s.touch_token("atk_a", t0 + 30s, "10.0.0.2:5000"));  // earlier: a slower request of another user
  CHECK(last_use("atk_a") == Use{t0 + 1min, "10.0.0.1:5000"});
  REQUIRE(s.touch_token("atk_a", t0 + 1min, "10.0.0.3:5000"));          // the same time is not later
  REQUIRE(s.touch_token("atk_a", t0 + 1min + 900us, "10.0.0.3:5000"));  // nor is the same millisecond
  CHECK(last_use("atk_a") == Use{t0 + 1min, "10.0.0.1:5000"});
  REQUIRE(s.touch_token("atk_a", t0 + 1min + 1ms, "[2001:db8::1]:443"));
  CHECK(last_use("atk_a") == Use{t0 + 1min + 1ms, "[2001:db8::1]:443"});
  CHECK(last_use("atk_b") == Use{TimePoint{}, ""});  // other tokens are untouched
  // Nothing but the last use changes.
  auto expected = token;
  expected.last_used = t0 + 1min + 1ms;
  expected.last_used_from = "[2001:db8::1]:443";
  CHECK(s.get_token("atk_a").value() == expected);
  // A revoked token's uses are still recorded (say, a refused attempt).
  REQUIRE(s.revoke_token("atk_a", t0 + 1h, "user:bob", ""));
  REQUIRE(s.touch_token("atk_a", t0 + 2h, "10.0.0.9:1"));
  CHECK(last_use("atk_a") == Use{t0 + 2h, "10.0.0.9:1"});

  auto unknown = s.touch_token("atk_none", t0 + 3h, "10.0.0.1:1");
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().is(errc::not_found));
  CHECK_THAT(unknown.error().message, Catch::Contains("token \"atk_none\" does not exist"));
  CHECK(s.touch_token("atk_none", TimePoint{}, "").error().is(errc::not_found));  // also when the time would change nothing
}

TEMPLATE_TEST_CASE("contract: an invalid token is refused with a message naming the field and nothing is stored", "[contract][tokens]",
                   MemoryBackend, SqliteBackend) {
  TestType b;
  auto& s = *b.store;
  const auto good = a_token("atk_good", "deploy", TimePoint(1'700'000'000'000ms));
  auto refused = [&](auto change) {
    TokenRecord r = good;
    change(r);
    auto created = s.create_token(r);
    REQUIRE_FALSE(created);
    CHECK(created.error().is(errc::invalid_argument));
    CHECK_THAT(created.error().message, Catch::StartsWith("token \""));
    return created.error().message;
  };
  for (std::string id : {std::string(""), std::string("ab"), std::string("ATK_1"), std::string("atk-1"), std::string("atk.1"),
                         std::string("atk 1"), std::string("atké"), std::string(65, 'a')})
    CHECK_THAT(refused([&](TokenRecord& r) { r.id = id; }),
               Catch::Contains("\"id\" must match [a-z0-9_]{3,64}") && Catch::Contains(fmt::format("(not \"{}\")", id)));
  CHECK_THAT(refused([](TokenRecord& r) { r.name = ""; }), Catch::Contains("\"name\" must not be empty"));
  CHECK_THAT(refused([](TokenRecord& r) { r.name = std::string(101, 'n'); }),
             Catch::Contains("\"name\" must have at most 100 characters (not 101)"));
  for (std::string name : {std::string("two\nlines"), std::string("tab\there"), std::string("bell\a"), std::string("del\x7f"),
                           std::string("bad \xff utf-8"), std::string("c1 \xc2\x85")})
    CHECK_THAT(refused([&](TokenRecord& r) { r.name = name; }), Catch::Contains("\"name\" must be printable"));
  for (std::string role : {"", "root", "Admin", "viewer "})
    CHECK_THAT(refused([&](TokenRecord& r) { r.role = role; }),
               Catch::Contains("\"role\" must be viewer, operator or admin") && Catch::Contains(fmt::format("(not \"{}\")", role)));
  const std::string upper = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08";
  for (std::string hash : {std::string(""), std::string(kHash.substr(1)), std::string(kHash) + "0", upper,
                           std::string(kHash.substr(0, 63)) + "g", std::string("test")}) {
    const auto message = refused([&](TokenRecord& r) { r.secret_hash = hash; });
    CHECK_THAT(message, Catch::Contains("\"secret_hash\" must be a SHA-256 as 64 lowercase hex characters"));
    if (!hash.empty()) CHECK_THAT(message, !Catch::Contains(hash));  // a mixed-up secret is never echoed
  }
  CHECK_THAT(refused([](TokenRecord& r) { r.created_by = ""; }), Catch::Contains("\"created_by\" must not be empty"));
  CHECK_THAT(refused([](TokenRecord& r) { r.revoked = TimePoint(1'700'000'000'000ms); }),
             Catch::Contains("\"revoked_by\" must not be empty for a revoked token"));
  CHECK_THAT(refused([](TokenRecord& r) { r.revoked_by = "user:bob"; }), Catch::Contains("\"revoked_by\" must be empty"));
  CHECK_THAT(refused([](TokenRecord& r) {
               r.revoked = TimePoint(400us);  // epoch 0 as stored
               r.revoked_by = "user:bob";
             }),
             Catch::Contains("\"revoked_by\" must be empty"));
  CHECK_THAT(refused([](TokenRecord& r) { r.revoke_reason = "why"; }), Catch::Contains("\"revoke_reason\" must be empty"));
  CHECK(s.list_tokens(true).value().empty());
  CHECK(area_rows(s, "tokens") == 0);

  // The bounds themselves are fine.
  auto fine = [&](auto change) {
    TokenRecord r = good;
    change(r);
    return s.create_token(r).has_value();
  };
  CHECK(fine([](TokenRecord& r) { r.id = "abc"; }));
  CHECK(fine([](TokenRecord& r) {
    r.id = std::string(64, 'z');
    r.name = std::string(100, 'n');
  }));
  CHECK(fine([](TokenRecord& r) {
    r.id = "atk_0_9";
    r.name = "";
    for (int i = 0; i < 100; ++i) r.name += "é";  // characters, not bytes
    r.role = "viewer";
  }));
  CHECK(fine([](TokenRecord& r) {
    r.id = "atk_admin";
    r.name = "x";
    r.role = "admin";
  }));
  CHECK(s.list_tokens(true).value().size() == 4);
}

TEMPLATE_TEST_CASE("contract: two writers racing for token names leave one token of each not revoked and the newest use",
                   "[contract][tokens]", SqliteBackend) {
  TestType b;
  auto second = open_store("sqlite:" + b.dir.file("contract.db")).value();
  const auto t0 = TimePoint(1'700'000'000'000ms);
  REQUIRE(b.store->create_token(a_token("atk_shared", "shared", t0)));
  std::atomic<int> created{0}, refused{0}, touched{0};
  auto race = [&](Store& s, std::string_view writer) {
    for (int i = 0; i < 40; ++i) {
      auto r = s.create_token(a_token(fmt::format("atk_{}_{}", writer, i), fmt::format("name {}", i), t0 + std::chrono::minutes(i)));
      if (r)
        ++created;
      else if (r.error().is(errc::already_exists))
        ++refused;
      // Both record uses of one token, in opposite orders: the newest stays, whoever writes last.
      const int minute = writer == "a" ? i : 39 - i;
      if (s.touch_token("atk_shared", t0 + std::chrono::minutes(minute), writer)) ++touched;
    }
  };
  std::thread t1([&] { race(*b.store, "a"); });
  std::thread t2([&] { race(*second, "b"); });
  t1.join();
  t2.join();
  CHECK(created == 40);
  CHECK(refused == 40);
  CHECK(touched == 80);
  const auto tokens = b.store->list_tokens(false).value();
  REQUIRE(tokens.size() == 41);
  std::set<std::string> names;
  for (const auto& t : tokens) names.insert(t.name);
  CHECK(names.size() == 41);
  const auto shared = b.store->get_token("atk_shared").value().value();
  CHECK(shared.last_used == t0 + 39min);
}

// ---- registry ----------------------------------------------------------------------------------

namespace {
NodeRecord a_node(std::string id, TimePoint seen) {
  NodeRecord n;
  n.id = std::move(id);
  n.kind = "host";
  n.address = "10.0.0.7";
  n.source = "registered";
  n.state = "up";
  n.reason = "heartbeat";
  n.registered = seen;
  n.last_seen = seen;
  n.state_since = seen;
  n.ttl = 30s;
  n.updated_by = "node " + n.id;
  return n;
}

ScanRecord a_scan(TimePoint started, std::string reason = "every 5m") {
  ScanRecord s;
  s.started = started;
  s.finished = started + 2s;
  s.actor = "discovery";
  s.reason = std::move(reason);
  s.targets = R"(["127.0.0.1:8080"])";
  return s;
}

std::vector<std::string> node_ids(Store& s) {
  std::vector<std::string> out;
  for (const auto& n : s.list_nodes().value()) out.push_back(n.id);
  return out;
}

std::vector<std::int64_t> scan_ids(Store& s, std::size_t limit, std::int64_t before_id) {
  std::vector<std::int64_t> out;
  for (const auto& r : s.list_scans(limit, before_id).value()) out.push_back(r.id);
  return out;
}
}  // namespace

TEMPLATE_TEST_CASE("contract: nodes round-trip with every field and are listed by id", "[contract][registry]", MemoryBackend,
                   SqliteBackend) {
  TestType b;
  auto& s = *b.store;
  const auto t0 = TimePoint(1'700'000'000'000ms);
  CHECK(s.list_nodes().value().empty());
  CHECK_FALSE(s.get_node("web1").value().has_value());
  // Every field set to something other than its default.
  NodeRecord full;
  full.id = "web1";
  full.kind = "http";
  full.address = "http://10.0.0.7:8080/";
  full.source = "discovered";
  full.services = R"([{"name":"api","port":8080,"url":"http://10.0.0.7:8080/api","depends_on":["db1","cache/redis"]},{"name":"metrics"}])";
  full.depends_on = R"(["db1"])";
  full.labels = R"({"zone":"eu-1","team":"payments — «core»"})";
  full.state = "down";
  full.reason = "no heartbeat for 90 s (ttl 30 s)";
  full.registered = t0 + 250us;
  full.last_seen = t0 + 1h + 999us;
  full.state_since = t0 + 2h + 1us;
  full.ttl = 30'500ms;
  full.updated_by = "registry";
  full.version = 42;  // ignored: the store sets it
  REQUIRE(s.put_node(full, 0).value() == 1);
  auto expected = full;
  expected.registered = t0;  // to the millisecond
  expected.last_seen = t0 + 1h;
  expected.state_since = t0 + 2h;
  expected.version = 1;
  CHECK(s.get_node("web1").value() == expected);
  CHECK(s.list_nodes().value() == std::vector{expected});
  CHECK(area_rows(s, "nodes") == 1);

  // Listed by id, whatever the order they were written in (ids compare as bytes: upper case first).
  for (std::string id : {"web2", "db1", "Zeta", "api.1", "db1-replica", "a_b"}) REQUIRE(s.put_node(a_node(id, t0), std::nullopt));
  CHECK(node_ids(s) == std::vector<std::string>{"Zeta", "a_b", "api.1", "db1", "db1-replica", "web1", "web2"});
  CHECK(s.list_nodes().value().at(3) == [&] {
    auto n = a_node("db1", t0);
    n.version = 1;
    return n;
  }());
  CHECK(area_rows(s, "nodes") == 7);
  CHECK_FALSE(s.get_node("WEB1").value().has_value());  // ids are compared exactly
  CHECK_FALSE(s.get_node("").value().has_value());
}

TEMPLATE_TEST_CASE("contract: nodes are written by compare-and-set on their version", "[contract][registry]", MemoryBackend,
                   SqliteBackend) {
  TestType b;
  auto& s = *b.store;
  const auto t0 = TimePoint(1'700'000'000'000ms);
  auto n = a_node("web1", t0);
  CHECK(s.put_node(n, 0).value() == 1);  // 0: there is no record yet
  auto versioned = [](NodeRecord r, std::int64_t v) {
    r.version = v;
    return r;
  };
  const auto v1 = versioned(n, 1);
  CHECK(s.get_node("web1").value() == v1);

  // A second creator loses, and changes nothing.
  auto other = a_node("web1", t0 + 1min);
  other.address = "10.0.0.8";
  auto again = s.put_node(other, 0);
  REQUIRE_FALSE(again);
  CHECK(again.error().is(errc::conflict));
  CHECK_THAT(again.error().message, Catch::Contains("node 'web1' is at version 1, not 0"));
  CHECK(s.get_node("web1").value() == v1);

  // A heartbeat at the current version wins; a stale writer then conflicts and changes nothing.
  auto beat = n;
  beat.last_seen = t0 + 10s;
  CHECK(s.put_node(beat, 1).value() == 2);
  auto stale = n;
  stale.state = "down";
  stale.reason = "no heartbeat for 90 s (ttl 30 s)";
  auto lost = s.put_node(stale, 1);
  REQUIRE_FALSE(lost);
  CHECK(lost.error().is(errc::conflict));
  CHECK_THAT(lost.error().message, Catch::Contains("node 'web1' is at version 2, not 1"));
  CHECK(s.get_node("web1").value() == versioned(beat, 2));
  auto ahead = s.put_node(stale, 3);
  REQUIRE_FALSE(ahead);
  CHECK(ahead.error().is(errc::conflict));
  CHECK(s.get_node("web1").value() == versioned(beat, 2));

  // Unconditional writes replace whatever is there and still count versions.
  CHECK(s.put_node(stale, std::nullopt).value() == 3);
  CHECK(s.get_node("web1").value() == versioned(stale, 3));
  CHECK(s.put_node(a_node("db1", t0), std::nullopt).value() == 1);  // and create

  // Expecting a version of a node that does not exist creates nothing.
  auto missing = s.put_node(a_node("ghost", t0), 4);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().is(errc::conflict));
  CHECK_THAT(missing.error().message, Catch::Contains("node 'ghost' is at version 0, not 4"));
  CHECK(node_ids(s) == std::vector<std::string>{"db1", "web1"});
}

TEMPLATE_TEST_CASE("contract: a deleted node is gone and may be registered again from version 0", "[contract][registry]", MemoryBackend,
                   SqliteBackend) {
  TestType b;
  auto& s = *b.store;
  const auto t0 = TimePoint(1'700'000'000'000ms);
  REQUIRE(s.put_node(a_node("web1", t0), 0));
  REQUIRE(s.put_node(a_node("web1", t0), 1));
  REQUIRE(s.put_node(a_node("web2", t0), 0));
  CHECK(s.delete_node("web1").value());
  CHECK_FALSE(s.get_node("web1").value().has_value());
  CHECK_FALSE(s.delete_node("web1").value());
  CHECK_FALSE(s.delete_node("nope").value());
  CHECK(node_ids(s) == std::vector<std::string>{"web2"});
  CHECK(s.put_node(a_node("web1", t0 + 1h), 2).error().is(errc::conflict));
  CHECK(s.put_node(a_node("web1", t0 + 1h), 0).value() == 1);
  CHECK(s.get_node("web1").value()->registered == t0 + 1h);
  CHECK(area_rows(s, "nodes") == 2);
}

TEMPLATE_TEST_CASE("contract: an invalid node is refused with a message naming the field and nothing is written", "[contract][registry]",
                   MemoryBackend, SqliteBackend) {
  TestType b;
  auto& s = *b.store;
  const auto t0 = TimePoint(1'700'000'000'000ms);
  const auto good = a_node("web1", t0);
  auto refused = [&](auto change) {
    NodeRecord r = good;
    change(r);
    for (std::optional<std::int64_t> expected : {std::optional<std::int64_t>(), std::optional<std::int64_t>(0)}) {
      auto put = s.put_node(r, expected);
      REQUIRE_FALSE(put);
      CHECK(put.error().is(errc::invalid_argument));
    }
    return s.put_node(r, std::nullopt).error().message;
  };
  using Catch::Contains;
  using Catch::StartsWith;
  for (std::string id : {std::string(""), std::string("-web"), std::string(".web"), std::string("web 1"), std::string("web/1"),
                         std::string("wéb"), std::string(101, 'a')})
    CHECK_THAT(refused([&](NodeRecord& r) { r.id = id; }), StartsWith("invalid node name \""));
  CHECK_THAT(refused([](NodeRecord& r) { r.kind = ""; }), StartsWith("node \"web1\": kind must not be empty"));
  CHECK_THAT(refused([](NodeRecord& r) { r.kind = std::string(65, 'k'); }), Contains("kind must have at most 64 characters (not 65)"));
  CHECK_THAT(refused([](NodeRecord& r) { r.kind = "host\n"; }), Contains("kind must be printable"));
  CHECK_THAT(refused([](NodeRecord& r) { r.kind = "\xff"; }), Contains("kind must be printable"));
  CHECK_THAT(refused([](NodeRecord& r) { r.address = std::string(513, 'a'); }),
             Contains("address must have at most 512 characters (not 513)"));
  CHECK_THAT(refused([](NodeRecord& r) { r.source = "found"; }),
             Contains("node \"web1\": source must be registered or discovered (not \"found\")"));
  CHECK_THAT(refused([](NodeRecord& r) { r.state = "unknown"; }), Contains("node \"web1\": state must be up or down (not \"unknown\")"));
  CHECK_THAT(refused([](NodeRecord& r) { r.state = ""; }), Contains("state must be up or down"));
  // services: a JSON array of objects with a string "name"; port, url and depends_on have their own shapes.
  const std::string services_shape = "node \"web1\": services must be a JSON array of objects with a string \"name\"";
  for (std::string services : {R"()", R"([)", R"({"name":"api"})", R"("api")", R"(["api"])", R"([{"port":80}])", R"([{"name":7}])",
                               R"([{"name":""}])", R"([{"name":"api"},null])"})
    CHECK_THAT(refused([&](NodeRecord& r) { r.services = services; }), StartsWith(services_shape));
  for (std::string port : {"0", "65536", "-1", "80.5", R"("80")", "null", "true"})
    CHECK_THAT(refused([&](NodeRecord& r) { r.services = R"([{"name":"api","port":)" + port + "}]"; }),
               Contains("node \"web1\": service \"api\" (services[0]): port must be an integer from 1 to 65535"));
  CHECK_THAT(refused([](NodeRecord& r) { r.services = R"([{"name":"a"},{"name":"b","url":5}])"; }),
             Contains("service \"b\" (services[1]): url must be a string (not a number)"));
  for (std::string needs : {R"("db1")", R"({"db1":1})", R"([1])", R"([""])", R"(["db1",null])"})
    CHECK_THAT(refused([&](NodeRecord& r) { r.services = R"([{"name":"api","depends_on":)" + needs + "}]"; }),
               Contains("service \"api\" (services[0]): depends_on must be a JSON array of \"node\" or \"node/service\" strings"));
  for (std::string needs : {R"()", R"("db1")", R"({})", R"([1])", R"([""])", R"([["db1"]])"})
    CHECK_THAT(refused([&](NodeRecord& r) { r.depends_on = needs; }), StartsWith("node \"web1\": depends_on must be a JSON array"));
  for (std::string labels : {R"()", R"([])", R"("zone=eu")", R"({"zone":1})", R"({"zone":null})", R"({"a":"b","zone":{"x":"y"}})"})
    CHECK_THAT(refused([&](NodeRecord& r) { r.labels = labels; }), StartsWith("node \"web1\": labels must be a JSON object of strings"));
  CHECK_THAT(refused([](NodeRecord& r) { r.ttl = -1ms; }), Contains("node \"web1\": ttl must not be negative (not -1 ms)"));
  CHECK_THAT(refused([](NodeRecord& r) { r.updated_by = ""; }), Contains("node \"web1\": updated_by must not be empty"));
  CHECK(s.list_nodes().value().empty());
  CHECK(area_rows(s, "nodes") == 0);

  // A refused update leaves the stored node and its version alone.
  REQUIRE(s.put_node(good, 0).value() == 1);
  auto broken = good;
  broken.state = "gone";
  CHECK(s.put_node(broken, 1).error().is(errc::invalid_argument));
  CHECK(s.get_node("web1").value()->version == 1);
  CHECK(s.get_node("web1").value()->state == "up");

  // The bounds themselves are fine, and so are keys the store does not know.
  auto fine = [&](std::string id, auto change) {
    NodeRecord r = good;
    r.id = std::move(id);
    change(r);
    return s.put_node(r, std::nullopt).has_value();
  };
  CHECK(fine("a", [](NodeRecord& r) { r.kind = std::string(64, 'k'); }));
  CHECK(fine("b", [](NodeRecord& r) {
    r.kind = "";
    for (int i = 0; i < 64; ++i) r.kind += "é";  // characters, not bytes
  }));
  CHECK(fine(std::string(100, 'c'), [](NodeRecord& r) { r.address = std::string(512, 'a'); }));
  CHECK(fine("d", [](NodeRecord& r) {
    r.address = "";
    r.ttl = 0ms;
    r.source = "discovered";
    r.state = "down";
  }));
  CHECK(fine("e", [](NodeRecord& r) {
    r.services = R"([{"name":"a","port":1},{"name":"b","port":65535,"url":"","depends_on":[]},{"name":"a","tls":true}])";
    r.depends_on = R"(["web1","db.2"])";
    r.labels = R"({"zone":"","":"empty key"})";
  }));
  CHECK(s.list_nodes().value().size() == 6);
}

TEMPLATE_TEST_CASE("contract: discovery scans get increasing ids and are listed newest first, by limit and before an id",
                   "[contract][registry]", MemoryBackend, SqliteBackend) {
  TestType b;
  auto& s = *b.store;
  const auto t0 = TimePoint(1'700'000'000'000ms);
  using Ids = std::vector<std::int64_t>;
  CHECK(s.list_scans(0, 0).value().empty());
  // Every field set to something other than its default.
  ScanRecord full;
  full.id = 99;  // ignored: the store assigns it
  full.started = t0 + 250us;
  full.finished = t0 + 3s + 999us;
  full.actor = "user:alice";
  full.reason = "requested";
  full.targets = R"(["127.0.0.1:8080","10.0.0.7:9090"])";
  full.found = R"([{"address":"127.0.0.1:8080","status":200,"server":"nginx","node":"web1","new":true}])";
  full.added = 1;
  full.lost = 2;
  full.error = "10.0.0.7:9090: connection refused";
  const auto first = s.append_scan(full).value();
  CHECK(first >= 1);
  auto expected = full;
  expected.id = first;
  expected.started = t0;  // to the millisecond
  expected.finished = t0 + 3s;
  CHECK(s.list_scans(0, 0).value() == std::vector{expected});
  CHECK(area_rows(s, "scans") == 1);

  Ids ids{first};
  for (int i = 1; i < 6; ++i) {
    // Started out of order: ids follow the appends, not the times.
    const auto id = s.append_scan(a_scan(t0 + std::chrono::minutes(i % 2 == 0 ? i : -i), fmt::format("scan {}", i))).value();
    CHECK(id > ids.back());
    ids.push_back(id);
  }
  const Ids newest_first(ids.rbegin(), ids.rend());
  CHECK(scan_ids(s, 0, 0) == newest_first);
  CHECK(scan_ids(s, 2, 0) == Ids{ids[5], ids[4]});
  CHECK(scan_ids(s, 100, 0) == newest_first);
  CHECK(scan_ids(s, 0, ids[3]) == Ids{ids[2], ids[1], ids[0]});
  CHECK(scan_ids(s, 2, ids[3]) == Ids{ids[2], ids[1]});
  CHECK(scan_ids(s, 0, ids[5] + 1000) == newest_first);
  CHECK(scan_ids(s, 0, ids[0]).empty());
  CHECK(scan_ids(s, 0, -5) == newest_first);  // before_id <= 0: no bound
  // Paging through with before_id visits each scan once.
  Ids paged;
  for (std::int64_t before = 0;;) {
    const auto page = scan_ids(s, 4, before);
    if (page.empty()) break;
    paged.insert(paged.end(), page.begin(), page.end());
    before = page.back();
  }
  CHECK(paged == newest_first);
  const auto third = s.list_scans(1, ids[3]).value().at(0);
  CHECK(third.reason == "scan 2");
  CHECK(third.started == t0 + 2min);
  CHECK(third.finished == t0 + 2min + 2s);
  CHECK(third.targets == R"(["127.0.0.1:8080"])");
  CHECK(third.found == "[]");
  CHECK(s.list_scans(0, ids[1]).value() == std::vector{expected});
  CHECK(area_rows(s, "scans") == 6);
}

TEMPLATE_TEST_CASE("contract: discovery scans are pruned by start time and their ids are never reused", "[contract][registry]",
                   MemoryBackend, SqliteBackend) {
  TestType b;
  auto& s = *b.store;
  const auto t0 = TimePoint(1'700'000'000'000ms);
  const auto a = s.append_scan(a_scan(t0 + 10min)).value();
  const auto b1 = s.append_scan(a_scan(t0)).value();
  const auto c = s.append_scan(a_scan(t0 + 5min + 500us)).value();
  const auto d = s.append_scan(a_scan(t0 + 20min)).value();
  CHECK(s.prune_scans(t0).value() == 0);                 // started at the cut: kept
  CHECK(s.prune_scans(t0 + 5min + 999us).value() == 1);  // the same millisecond as c's start: c is kept
  CHECK(scan_ids(s, 0, 0) == std::vector<std::int64_t>{d, c, a});
  CHECK(s.prune_scans(t0 + 15min).value() == 2);
  CHECK(scan_ids(s, 0, 0) == std::vector<std::int64_t>{d});
  CHECK(b1 < c);
  CHECK(s.prune_scans(t0 + 1h).value() == 1);
  CHECK(s.list_scans(0, 0).value().empty());
  CHECK(area_rows(s, "scans") == 0);
  const auto e = s.append_scan(a_scan(t0)).value();
  CHECK(e > d);
}

TEMPLATE_TEST_CASE("contract: an invalid discovery scan is refused with a message naming the field and nothing is stored",
                   "[contract][registry]", MemoryBackend, SqliteBackend) {
  TestType b;
  auto& s = *b.store;
  const auto t0 = TimePoint(1'700'000'000'000ms);
  const auto good = a_scan(t0);
  auto refused = [&](auto change) {
    ScanRecord r = good;
    change(r);
    auto appended = s.append_scan(r);
    REQUIRE_FALSE(appended);
    CHECK(appended.error().is(errc::invalid_argument));
    CHECK_THAT(appended.error().message, Catch::StartsWith("discovery scan (actor \""));
    return appended.error().message;
  };
  using Catch::Contains;
  CHECK_THAT(refused([](ScanRecord& r) { r.actor = ""; }), Contains("actor must not be empty"));
  CHECK_THAT(refused([&](ScanRecord& r) { r.finished = t0 - 1ms; }), Contains("finished (1699999999999 ms) must not be before started"));
  for (std::string targets : {R"()", R"({})", R"("127.0.0.1:80")", R"([80])", R"([""])", R"(["a:1",["b:2"]])"})
    CHECK_THAT(refused([&](ScanRecord& r) { r.targets = targets; }), Contains("targets must be a JSON array of \"host:port\" strings"));
  for (std::string found : {R"()", R"({})", R"([1])", R"(["127.0.0.1:80"])", R"([{},null])"})
    CHECK_THAT(refused([&](ScanRecord& r) { r.found = found; }), Contains("found must be a JSON array of objects"));
  CHECK_THAT(refused([](ScanRecord& r) { r.added = -1; }), Contains("added must not be negative (not -1)"));
  CHECK_THAT(refused([](ScanRecord& r) { r.lost = -2; }), Contains("lost must not be negative (not -2)"));
  CHECK(s.list_scans(0, 0).value().empty());
  CHECK(area_rows(s, "scans") == 0);

  // The bounds themselves are fine.
  auto fine = [&](auto change) {
    ScanRecord r = good;
    change(r);
    return s.append_scan(r).has_value();
  };
  CHECK(fine([&](ScanRecord& r) { r.finished = r.started; }));
  CHECK(fine([&](ScanRecord& r) {
    r.started = t0 + 900us;  // the same millisecond as stored
    r.finished = t0 + 100us;
  }));
  CHECK(fine([](ScanRecord& r) {
    r.targets = "[]";
    r.found = R"([{}])";
    r.reason = "";
    r.error = "";
  }));
  CHECK(s.list_scans(0, 0).value().size() == 3);
}

TEMPLATE_TEST_CASE("contract: two writers racing to update one node by compare-and-set lose no update", "[contract][registry]",
                   SqliteBackend) {
  TestType b;
  auto second = open_store("sqlite:" + b.dir.file("contract.db")).value();
  const auto t0 = TimePoint(1'700'000'000'000ms);
  REQUIRE(b.store->put_node(a_node("web1", t0), 0));
  constexpr int kPerWriter = 30;
  std::atomic<int> written{0}, conflicts{0}, failures{0};
  auto race = [&](Store& s, std::string_view writer) {
    for (int done = 0; done < kPerWriter;) {
      auto cur = s.get_node("web1");
      if (!cur || !*cur) {
        ++failures;
        return;
      }
      auto n = **cur;
      n.updated_by = std::string(writer);
      n.last_seen = t0 + std::chrono::seconds(n.version);
      auto w = s.put_node(n, n.version);
      if (w) {
        ++done;
        ++written;
      } else if (w.error().is(errc::conflict)) {
        ++conflicts;
      } else {
        ++failures;
        return;
      }
    }
  };
  std::thread t1([&] { race(*b.store, "a"); });
  std::thread t2([&] { race(*second, "b"); });
  t1.join();
  t2.join();
  CHECK(failures == 0);
  CHECK(written == 2 * kPerWriter);
  const auto n = b.store->get_node("web1").value().value();
  CHECK(n.version == 1 + 2 * kPerWriter);
  CHECK(n.last_seen == t0 + std::chrono::seconds(2 * kPerWriter));
}
