// Incident timelines: what the store holds around a failed run or an alert, in time order, from
// every area that records something, and nothing from outside the window.
#include <automation/core/json.hpp>
#include <automation/intelligence/timeline.hpp>
#include <automation/storage/memory_store.hpp>
#include <automation/testing/manual_clock.hpp>

#include "support/catch_result.hpp"
#include "support/workflow.hpp"

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include <algorithm>

using namespace automation;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

const intelligence::TimelineEntry* find(const intelligence::Timeline& t, std::string_view kind) {
  for (const auto& e : t.entries)
    if (e.kind == kind) return &e;
  return nullptr;
}

}  // namespace

TEST_CASE("timeline: around a failed deploy, every area's records in time order, and nothing from outside the window") {
  storage::MemoryStore store;
  testing::ManualClock clock;
  const TimePoint t0 = clock.now();
  // Before the deploy: a failed backup task, a breaker opening, a database going unhealthy, a
  // scale-up; long before it, something the window leaves out.
  storage::TaskRecord task;
  task.domain = "backup";
  task.action = "nightly";
  task.outcome = storage::TaskOutcome::failure;
  task.error = "disk full";
  task.started = t0 - 4min;
  task.ended = t0 - 3min;
  task.duration = 1min;
  REQUIRE(store.append_tasks(std::span<const storage::TaskRecord>(&task, 1)));
  storage::EventRecord opened;
  opened.name = "breaker.opened";
  opened.time = t0 - 5min;
  opened.source = "breaker";
  opened.payload = R"({"breaker":"payments","from":"closed","to":"open","reason":"5 failures in a row"})";
  REQUIRE(store.append_event(opened));
  storage::EventRecord user;  // a host's own event is not part of the story
  user.name = "user.registered";
  user.time = t0 - 1min;
  user.source = "host";
  REQUIRE(store.append_event(user));
  storage::HealingRecord db;
  db.target = "db";
  db.time = t0 - 2min;
  db.kind = "state";
  db.state = "unhealthy";
  db.actor = "healer";
  db.reason = "probe sqlite failed 3 times: database is locked";
  db.updated = db.time;
  REQUIRE(store.append_healing(db));
  auto old = db;
  old.time = old.updated = t0 - 2h;
  REQUIRE(store.append_healing(old));
  storage::ScalingRecord up;
  up.resource = "web";
  up.action = "decide";
  up.time = up.updated = t0 - 1min;
  up.actor = "scaler";
  up.current = 2;
  up.recommended = up.desired = 4;
  up.reason = "StepUp";
  up.message = "cpu_usage 91 > 80";
  up.outcome = "applied";
  REQUIRE(store.append_scaling(up, std::nullopt));
  // The deploy itself fails.
  workflow::WorkflowEngine engine(store, clock);
  engine.register_callback("push", [](workflow::StepContext&) -> Result<void> { return fail(errc::io, "registry refused the image"); });
  REQUIRE(engine.register_workflow(test::parse(R"({"name":"deploy-web","steps":[{"id":"push","callback":"push"}]})")));
  const auto id = engine.start("deploy-web", {.trigger = "manual"}).value();
  REQUIRE(test::drive(engine, [&] { return !engine.is_active(id); }));
  // After it: an alert fires, an operator resets the breaker, someone fails to log in three times.
  storage::AlertRecord alert;
  alert.rule = "high_error_rate";
  alert.severity = "critical";
  alert.state = "firing";
  alert.summary = "error_rate 12 > 5 for 1m";
  alert.active_since = t0;
  alert.fired = t0 + 1min;
  alert.updated = alert.fired;
  const auto alert_id = store.create_alert(alert).value();
  std::vector<storage::AuditRecord> audit;
  for (int i = 0; i < 3; ++i)
    audit.push_back({0, t0 + 2min + std::chrono::seconds(i), "anonymous", "auth.failed", "api", "http 10.0.0.9:1",
                     storage::AuditOutcome::denied, "no token", "{}", ""});
  audit.push_back(
      {0, t0 + 3min, "user:alice", "breaker.reset", "breaker:payments", "cli", storage::AuditOutcome::success, "provider back", "{}", ""});
  REQUIRE(store.append_audit(audit));

  auto t = intelligence::timeline_for_run(store, id, clock.now());
  REQUIRE(t);
  CHECK(t->focus == fmt::format("run:{}", id));
  CHECK(t->from == t0 - 30min);
  CHECK(t->until == t0 + 10min);
  CHECK(std::is_sorted(t->entries.begin(), t->entries.end(), [](const auto& a, const auto& b) { return a.time < b.time; }));
  std::vector<std::string> kinds;
  for (const auto& e : t->entries) kinds.push_back(e.kind);
  CHECK(kinds == std::vector<std::string>{"breaker.opened", "task.failure", "health.unhealthy", "scale.up", "deploy.started",
                                          "deploy.failed", "alert.fired", "auth.failed", "breaker.reset"});
  const auto* failed = find(*t, "deploy.failed");
  REQUIRE(failed);
  CHECK(failed->focus);
  CHECK(failed->severity == "error");
  CHECK_THAT(failed->summary, Contains("registry refused the image"));
  CHECK_THAT(find(*t, "breaker.opened")->summary, Contains("payments closed -> open: 5 failures in a row"));
  CHECK_THAT(find(*t, "health.unhealthy")->summary, Contains("database is locked"));
  CHECK_THAT(find(*t, "scale.up")->summary, Contains("web 2 -> 4"));
  CHECK_THAT(find(*t, "auth.failed")->summary, Contains("3 failed authentications from http 10.0.0.9 "));  // one address, three connections
  CHECK_FALSE(find(*t, "breaker.opened")->focus);

  // Around the alert: the same story, with the alert in focus; a narrow range leaves the rest out.
  auto around_alert = intelligence::timeline_for_alert(store, alert_id, clock.now() + 5min, 1min, 1min);
  REQUIRE(around_alert);
  CHECK(around_alert->focus == fmt::format("alert:{}", alert_id));
  REQUIRE_FALSE(around_alert->entries.empty());
  CHECK(around_alert->entries.front().time >= t0 - 1min);
  CHECK(find(*around_alert, "alert.fired")->focus);
  CHECK_FALSE(find(*around_alert, "breaker.opened"));

  // The limit keeps the oldest entries and says how many it dropped; a bad range and unknown ids are errors.
  auto limited = intelligence::timeline(store, t0 - 1h, t0 + 1h, {.limit = 3});
  REQUIRE(limited);
  CHECK(limited->entries.size() == 3);
  CHECK(limited->dropped_after == 6);
  CHECK(limited->dropped_before == 0);
  CHECK_FALSE(limited->truncated);
  CHECK(limited->entries.front().kind == "breaker.opened");
  CHECK(intelligence::timeline(store, t0, t0).error().is(errc::invalid_argument));
  CHECK(intelligence::timeline_for_run(store, 999, clock.now()).error().is(errc::not_found));
  CHECK(intelligence::timeline_for_alert(store, 999, clock.now()).error().is(errc::not_found));
  auto doc = intelligence::to_json(*t);
  CHECK(doc.at("entries").as_array().size() == 9);
  CHECK(doc.at("entries").as_array()[5].at("focus") == true);
}

TEST_CASE("timeline: the window's edges, records that began before it, a limit around the focus, and what scaling and breakers say") {
  storage::MemoryStore store;
  testing::ManualClock clock;
  const TimePoint t0 = clock.now();
  auto event = [&](std::string name, TimePoint at) {
    storage::EventRecord e;
    e.name = std::move(name);
    e.time = at;
    e.source = "breaker";
    e.payload = R"({"breaker":"payments","from":"closed","to":"forced_open","reason":"maintenance"})";
    REQUIRE(store.append_event(e));
  };
  event("breaker.forced_open", t0);
  event("breaker.closed", t0 + 10min);
  // A task that began before the window and failed inside it; one that began inside and failed after.
  storage::TaskRecord long_task;
  long_task.domain = "backup";
  long_task.action = "full";
  long_task.outcome = storage::TaskOutcome::timeout;
  long_task.started = t0 - 2h;
  long_task.ended = t0 + 1min;
  long_task.duration = 2h + 1min;
  auto late_task = long_task;
  late_task.action = "late";
  late_task.started = t0 + 9min;
  late_task.ended = t0 + 20min;
  late_task.duration = 11min;
  REQUIRE(store.append_tasks(std::vector<storage::TaskRecord>{long_task, late_task}));
  // A scale-up a cooldown held, and a policy change.
  storage::ScalingRecord held;
  held.resource = "web";
  held.action = "decide";
  held.time = held.updated = t0 + 2min;
  held.actor = "scaler";
  held.current = 2;
  held.recommended = held.desired = 3;
  held.reason = "CooldownActive";
  held.message = "held by the scale-up cooldown";
  held.outcome = "blocked";
  REQUIRE(store.append_scaling(held, std::nullopt));
  auto policy = held;
  policy.action = "thresholds";
  policy.time = policy.updated = t0 + 3min;
  policy.actor = "user:alice";
  policy.current = policy.recommended = policy.desired = 0;
  policy.reason = "Manual";
  policy.message = "bands set: cpu_usage>70:+1";
  policy.outcome = "applied";
  policy.inputs = R"({"policy":{}})";
  REQUIRE(store.append_scaling(policy, std::nullopt));

  auto t = intelligence::timeline(store, t0, t0 + 10min);  // [from, until)
  REQUIRE(t);
  std::vector<std::string> kinds;
  for (const auto& e : t->entries) kinds.push_back(e.kind);
  CHECK(kinds == std::vector<std::string>{"breaker.forced_open", "task.timeout", "scale.up.blocked", "scale.policy"});
  CHECK(t->entries[0].severity == "error");  // a forced-open breaker refuses every call
  CHECK_THAT(t->entries[3].summary, Contains("bands set"));
  // One millisecond earlier the forced-open event is out; one later the closing is in.
  auto shifted = intelligence::timeline(store, t0 + 1ms, t0 + 10min + 1ms);
  REQUIRE(shifted);
  CHECK(shifted->entries.front().kind == "task.timeout");
  CHECK(shifted->entries.back().kind == "breaker.closed");

  // Around a run with a small limit: the run's entries and those nearest it stay.
  workflow::WorkflowEngine engine(store, clock);
  engine.register_callback("ok", [](workflow::StepContext&) -> Result<void> { return {}; });
  REQUIRE(engine.register_workflow(test::parse(R"({"name":"sync","steps":[{"id":"s","callback":"ok"}]})")));
  clock.set(t0 + 2min + 30s);
  const auto id = engine.start("sync", {}).value();
  REQUIRE(test::drive(engine, [&] { return !engine.is_active(id); }));
  auto around = intelligence::timeline_for_run(store, id, clock.now(), 30min, 30min, {.limit = 4});
  REQUIRE(around);
  std::vector<std::string> near;
  for (const auto& e : around->entries) near.push_back(e.kind);
  CHECK(near == std::vector<std::string>{"scale.up.blocked", "run.started", "run.succeeded", "scale.policy"});
  CHECK(around->dropped_before == 2);
  CHECK(around->dropped_after == 2);  // the closing at +10 min and the late task at +20 min
  CHECK(intelligence::timeline(store, t0, t0 + 1h, {.limit = 0}).error().is(errc::invalid_argument));
}
