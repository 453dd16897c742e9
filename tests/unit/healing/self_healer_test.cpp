// SelfHealer on the manual clock: thresholds and flapping, the ladder with verification and
// backoff, the restart budget across a crash loop of a real supervised process, exit codes that
// are not healed, dependencies, pause, dry runs; the probes against real servers, processes,
// files and databases; the seed strategies end to end.
#include <automation/core/json.hpp>
#include <automation/healing/self_healer.hpp>
#include <automation/storage/memory_store.hpp>
#include <automation/storage/sqlite_store.hpp>
#include <automation/testing/manual_clock.hpp>
#include <automation/workflow/builtins.hpp>
#include <automation/workflow/engine.hpp>

#include <sqlite3.h>
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <future>
#include <thread>

#include "support/catch_result.hpp"
#include "support/http_server.hpp"
#include "support/ports.hpp"
#include "support/temp_dir.hpp"
#include "support/workflow.hpp"

using namespace automation;
using namespace automation::healing;
using namespace std::chrono_literals;
namespace sd = automation::storage;

namespace {

/// A probe whose answer the test sets.
struct Switch {
  bool ok = true;
  int calls = 0;
  ProbeSpec probe(int failures = 3) {
    ProbeSpec p;
    p.kind = ProbeKind::callback;
    p.callback = [this]() -> Result<std::string> {
      ++calls;
      if (ok) return std::string("fine");
      return fail(errc::unavailable, "connection refused");
    };
    p.interval = 10s;
    p.failure_threshold = failures;
    return p;
  }
};

struct Fixture {
  testing::ManualClock clock;
  sd::MemoryStore store;
  std::vector<std::string> alerts;
  std::map<std::string, int> called;
  HealerOptions options() {
    HealerOptions o;
    o.alert = [this](const std::string& target, const std::string& what, const std::string&) { alerts.push_back(target + " " + what); };
    for (const char* name : {"a", "b"})
      o.callbacks[name] = [this, name]() -> Result<std::string> {
        ++called[name];
        return std::string("done ") + name;
      };
    return o;
  }
  std::vector<sd::HealingRecord> history(const std::string& target, const std::string& kind = {}) {
    sd::HealingQuery q;
    q.target = target;
    if (!kind.empty()) q.kind = kind;
    q.limit = 0;
    q.newest_first = false;
    return store.list_healing(q).value();
  }
  std::vector<std::string> events() {
    std::vector<std::string> out;
    for (const auto& e : store.list_events({}).value()) out.push_back(e.name);
    return out;
  }
};

TargetSpec target(const std::string& name, ProbeSpec probe, std::vector<HealStep> ladder) {
  TargetSpec t;
  t.name = name;
  t.liveness = std::move(probe);
  t.ladder = std::move(ladder);
  t.backoff.jitter = 0;
  t.backoff.initial = 10s;
  return t;
}

const TargetStatus& status_of(const std::vector<TargetStatus>& all, const std::string& name) {
  for (const auto& s : all)
    if (s.name == name) return s;
  throw std::runtime_error("no status for " + name);
}

/// One pass, which must not have failed for any target.
TickReport tick(SelfHealer& healer) {
  auto report = healer.tick();
  for (const auto& e : report.errors) FAIL_CHECK(e.message);
  return report;
}

void wait_dead(pid_t pid) {
  siginfo_t info{};
  ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT);
}

}  // namespace

TEST_CASE("healer: unhealthy after the failure threshold, the ladder climbed with verification and growing backoff, then quarantine",
          "[healing]") {
  Fixture f;
  Switch api;
  SelfHealer healer(f.store, f.clock, f.options());
  REQUIRE(healer.add(target(
      "api", api.probe(),
      {HealStep{.kind = ActionKind::callback, .callback = "a", .verify = 30s},
       HealStep{.kind = ActionKind::callback, .callback = "b", .verify = 30s}, HealStep{.kind = ActionKind::alert, .verify = 60s}})));
  tick(healer);
  CHECK(status_of(healer.status(), "api").state == "healthy");
  api.ok = false;
  for (int i = 0; i < 2; ++i) {
    f.clock.advance(10s);
    tick(healer);
    CHECK(status_of(healer.status(), "api").state == "healthy");  // 1 and 2 failures: not yet
  }
  f.clock.advance(10s);
  tick(healer);
  // Third failure: unhealthy, announced once, and the first step runs at once.
  CHECK(f.called["a"] == 1);
  CHECK(f.alerts == std::vector<std::string>{"api unhealthy"});
  auto s = status_of(healer.status(), "api");
  CHECK(s.state == "healing");
  CHECK_THAT(f.history("api", "state").at(1).reason, Catch::Contains("failed 3 times in a row: connection refused"));
  // During the verification wait nothing else runs, however often it is probed.
  for (int i = 0; i < 3; ++i) {
    f.clock.advance(10s);
    tick(healer);
  }
  CHECK(f.called["b"] == 0);
  // Verification over (30 s), then the backoff's first delay (10 s) before step 2.
  f.clock.advance(10s);
  tick(healer);
  CHECK(f.called["b"] == 1);
  // Step 3 waits 30 s of verification and then 20 s: the delay doubles.
  f.clock.advance(40s);
  tick(healer);
  CHECK(f.alerts.size() == 1);
  f.clock.advance(10s);
  tick(healer);
  CHECK(f.alerts == std::vector<std::string>{"api unhealthy", "api alert"});
  // After the last step's verification: quarantined, announced; nothing more runs.
  f.clock.advance(60s);
  tick(healer);
  CHECK(status_of(healer.status(), "api").state == "quarantined");
  CHECK(f.alerts.back() == "api quarantined");
  f.clock.advance(10min);
  tick(healer);
  CHECK(f.called["a"] == 1);
  auto actions = f.history("api", "action");
  REQUIRE(actions.size() == 4);
  CHECK(actions[0].action == "callback");
  CHECK(actions[0].outcome == "succeeded");
  CHECK_THAT(actions[0].detail, Catch::Contains("done a"));
  CHECK(actions[1].time - actions[0].time == 40s);
  CHECK(actions[2].time - actions[1].time == 50s);
  CHECK(actions[3].action == "quarantine");
  CHECK_THAT(actions[3].reason, Catch::Contains("still unhealthy after all 3 healing steps"));
  // Healthy again: out of quarantine, announced; events went out only on changes.
  api.ok = true;
  f.clock.advance(10s);
  tick(healer);
  CHECK(status_of(healer.status(), "api").state == "healthy");
  CHECK(f.events() == std::vector<std::string>{"health.unhealthy", "health.alert", "health.quarantined", "health.healthy"});
}

TEST_CASE("healer: a step that fixes it ends the episode, and the backoff resets only after a healthy period", "[healing]") {
  Fixture f;
  Switch api;
  SelfHealer healer(f.store, f.clock, f.options());
  auto t = target("api", api.probe(1), {HealStep{.kind = ActionKind::callback, .callback = "a", .verify = 30s}});
  t.backoff.reset_after = 10min;
  REQUIRE(healer.add(t));
  api.ok = false;
  tick(healer);
  CHECK(f.called["a"] == 1);
  api.ok = true;
  f.clock.advance(10s);
  tick(healer);
  auto s = status_of(healer.status(), "api");
  CHECK(s.state == "healthy");
  CHECK_THAT(s.reason, Catch::Contains("healed after callback a"));
  CHECK(s.attempt == 1);
  // Down again a minute later: the second attempt waits its backoff (10 s after the first's verification).
  f.clock.advance(50s);
  api.ok = false;
  tick(healer);
  CHECK(f.called["a"] == 2);  // 30 s verify + 10 s delay had passed since the first attempt
  api.ok = true;
  f.clock.advance(10s);
  tick(healer);
  // Healthy for the whole reset period: the next episode starts from the first delay again.
  for (int i = 0; i < 61; ++i) {
    f.clock.advance(10s);
    tick(healer);
  }
  CHECK(status_of(healer.status(), "api").attempt == 0);
}

TEST_CASE("healer: flapping is unhealthy even without consecutive failures", "[healing]") {
  Fixture f;
  Switch api;
  SelfHealer healer(f.store, f.clock, f.options());
  auto p = api.probe(3);
  p.flap_window = 6;
  p.flap_failures = 3;
  REQUIRE(healer.add(target("api", p, {HealStep{.kind = ActionKind::wait, .verify = 1min}})));
  for (int i = 0; i < 6; ++i) {
    api.ok = i % 2 == 0;
    tick(healer);
    f.clock.advance(10s);
  }
  auto s = status_of(healer.status(), "api");
  CHECK(s.state == "healing");
  CHECK_THAT(f.history("api", "state").back().reason + f.history("api", "state").at(1).reason,
             Catch::Contains("flapping: 3 of the last 6"));
}

TEST_CASE("healer: a dependant waits silently while its dependency is down, and is healed after it", "[healing]") {
  Fixture f;
  Switch db, api;
  SelfHealer healer(f.store, f.clock, f.options());
  REQUIRE(healer.add(target("db", db.probe(1), {HealStep{.kind = ActionKind::callback, .callback = "a", .verify = 30s}})));
  auto t = target("api", api.probe(1), {HealStep{.kind = ActionKind::callback, .callback = "b", .verify = 30s}});
  t.depends_on = {"db"};
  REQUIRE(healer.add(t));
  auto cycle = target("db2", db.probe(1), {});
  cycle.depends_on = {"nowhere"};
  CHECK_THAT(healer.add(cycle).error().message, Catch::Contains("depends on \"nowhere\", which is not added"));

  db.ok = api.ok = false;
  tick(healer);
  CHECK(f.called["a"] == 1);
  CHECK(f.called["b"] == 0);
  CHECK(f.alerts == std::vector<std::string>{"db unhealthy"});  // api's alarm is silenced
  CHECK(status_of(healer.status(), "api").waiting_for == std::vector<std::string>{"db"});
  CHECK_THAT(f.history("api", "state").back().detail, Catch::Contains("waiting_for"));
  // The root heals; the dependant is healed next, in the same pass.
  db.ok = true;
  f.clock.advance(10s);
  tick(healer);
  CHECK(status_of(healer.status(), "db").state == "healthy");
  CHECK(f.called["b"] == 1);
}

TEST_CASE("healer: an operator's pause wins until it ends or is resumed, and a dry run only records the plan", "[healing]") {
  Fixture f;
  Switch api;
  SelfHealer healer(f.store, f.clock, f.options());
  REQUIRE(healer.add(target("api", api.probe(1), {HealStep{.kind = ActionKind::callback, .callback = "a", .verify = 30s}})));
  REQUIRE(healer.pause("api", f.clock.now() + 1h, "user:alice", "maintenance window"));
  api.ok = false;
  tick(healer);
  auto s = status_of(healer.status(), "api");
  CHECK(s.state == "paused");
  CHECK(s.paused_by == "user:alice");
  CHECK(f.called["a"] == 0);
  CHECK(f.alerts.empty());
  // Another healer on the store resumes it (autoctl heal resume): this one sees it at its next pass.
  SelfHealer other(f.store, f.clock, f.options());
  REQUIRE(other.add(target("api", api.probe(1), {})));
  REQUIRE(other.resume("api", "user:alice", "done"));
  f.clock.advance(10s);
  tick(healer);
  CHECK(f.called["a"] == 1);
  // A maintenance window that ends by itself.
  api.ok = true;
  f.clock.advance(10s);
  tick(healer);
  REQUIRE(healer.pause("api", f.clock.now() + 30s, "user:alice", "deploy"));
  api.ok = false;
  f.clock.advance(10s);
  tick(healer);
  CHECK(f.called["a"] == 1);
  f.clock.advance(30s);
  tick(healer);
  CHECK(f.called["a"] == 2);
  CHECK(healer.pause("nope", {}, "user:alice", "").error().code == errc::not_found);

  Fixture g;
  Switch web;
  SelfHealer dry(g.store, g.clock, g.options());
  auto t = target("web", web.probe(1), {HealStep{.kind = ActionKind::callback, .callback = "a", .verify = 30s}});
  t.dry_run = true;
  REQUIRE(dry.add(t));
  web.ok = false;
  tick(dry);
  CHECK(g.called["a"] == 0);
  auto plan = g.history("web", "action");
  REQUIRE(plan.size() == 1);
  CHECK(plan[0].outcome == "dry-run");
  CHECK(plan[0].dry_run);
  CHECK_THAT(plan[0].detail, Catch::Contains("callback a"));
}

TEST_CASE("healer: a real supervised process killed is restarted, a crash loop spends the budget, exit codes that are not healed",
          "[healing]") {
  Fixture f;
  test::TempDir dir;
  Supervisor supervisor(f.clock);
  REQUIRE(supervisor.add({.name = "worker", .command = {"sleep", "600"}, .log_file = dir.path() / "worker.log", .stop_timeout = 5s}));
  auto first = supervisor.start("worker");
  REQUIRE(first);
  auto o = f.options();
  o.supervisor = &supervisor;
  SelfHealer healer(f.store, f.clock, o);
  auto seeds = seed_targets({.services = {"worker"}});
  auto t = seeds.back();
  REQUIRE(t.name == "worker");
  t.ladder = {HealStep{.kind = ActionKind::restart, .verify = 5s}};
  t.backoff.jitter = 0;
  t.budget = {.restarts = 2, .window = 15min};
  REQUIRE(healer.add(t));
  tick(healer);
  CHECK(status_of(healer.status(), "worker").state == "healthy");

  // Killed: noticed at the next probe and restarted as a new process.
  pid_t pid = first->pid;
  for (int crash = 1; crash <= 2; ++crash) {
    ::kill(pid, SIGKILL);
    wait_dead(pid);
    f.clock.advance(30s);
    tick(healer);
    auto st = supervisor.status("worker");
    REQUIRE(st);
    REQUIRE(st->running);
    CHECK(st->pid != pid);
    CHECK(::kill(st->pid, 0) == 0);
    pid = st->pid;
    // It starts fine: healthy again at the next probe (a brief success does not reset the budget).
    f.clock.advance(30s);
    tick(healer);
    CHECK(status_of(healer.status(), "worker").state == "healthy");
  }
  // The third crash within 15 minutes: the budget of 2 restarts is spent.
  ::kill(pid, SIGKILL);
  wait_dead(pid);
  f.clock.advance(30s);
  tick(healer);
  auto s = status_of(healer.status(), "worker");
  CHECK(s.state == "quarantined");
  CHECK_THAT(s.reason, Catch::Contains("the restart budget is spent: 2 restarts within 15m"));
  CHECK_FALSE(supervisor.status("worker")->running);
  CHECK(f.alerts.back() == "worker quarantined");

  // A service that exits with a code it must not be healed for is left down, saying so once.
  REQUIRE(supervisor.add({.name = "batch", .command = {"sh", "-c", "exit 3"}}));
  REQUIRE(supervisor.start("batch"));
  auto b = seed_targets({.services = {"batch"}}).back();
  b.no_heal_exit_codes = {3};
  REQUIRE(healer.add(b));
  auto st = supervisor.status("batch");
  while (st && st->running) st = supervisor.status("batch");  // a real exit, observed
  REQUIRE(st);
  CHECK(st->exit_code == 3);
  for (int i = 0; i < 3; ++i) {
    f.clock.advance(30s);
    tick(healer);
  }
  CHECK(f.history("batch", "action").empty());
  CHECK_THAT(status_of(healer.status(), "batch").reason, Catch::Contains("exited with code 3, which is not healed"));
  CHECK(supervisor.status("batch")->starts == 1);
}

TEST_CASE("probes: real HTTP, TCP, process, pidfile, command, disk, memory and SQLite checks", "[healing]") {
  test::TempDir dir;
  test::HttpServer server([](const std::string& req) {
    return req.find("GET /down") == 0 ? test::HttpReply{503, "{\"status\":\"down\"}"} : test::HttpReply{200, "{\"status\":\"ok\"}"};
  });
  ProbeSpec p;
  p.kind = ProbeKind::http;
  p.url = server.url() + "/health";
  p.expect_body = "\"ok\"";
  CHECK(run_probe(p).ok);
  p.url = server.url() + "/down";
  auto r = run_probe(p);
  CHECK_FALSE(r.ok);
  CHECK_THAT(r.detail, Catch::Contains("status 503"));
  p.expect_status = {503};
  p.expect_body.clear();
  CHECK(run_probe(p).ok);

  ProbeSpec tcp{.kind = ProbeKind::tcp, .port = server.port()};
  CHECK(run_probe(tcp).ok);
  tcp.port = test::free_port();  // a port nothing listens on
  r = run_probe(tcp);
  CHECK_FALSE(r.ok);
  CHECK_THAT(r.detail, Catch::Contains("refused"));

  ProbeSpec proc{.kind = ProbeKind::process, .pid = static_cast<int>(::getpid())};
  CHECK(run_probe(proc).ok);
  proc.pid = 0;
  proc.pidfile = test::write_file(dir.file("app.pid"), std::to_string(::getpid()) + "\n");
  CHECK(run_probe(proc).ok);
  test::write_file(proc.pidfile, "nonsense");
  CHECK_THAT(run_probe(proc).detail, Catch::Contains("is not a pid"));
  proc.pidfile.clear();
  proc.process_name = "no-such-process-x";
  CHECK_FALSE(run_probe(proc).ok);

  ProbeSpec cmd{.kind = ProbeKind::command, .command = {"sh", "-c", "echo degraded >&2; exit 2"}};
  r = run_probe(cmd);
  CHECK_FALSE(r.ok);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.detail, Catch::Contains("exit 2: degraded"));

  ProbeSpec disk{.kind = ProbeKind::disk, .path = dir.path().string(), .max_percent = 100};
  CHECK(run_probe(disk).ok);
  disk.max_percent = 0.0001;
  CHECK_THAT(run_probe(disk).detail, Catch::Contains("used (limit 0.0%)"));
  ProbeSpec mem{.kind = ProbeKind::memory, .max_percent = 100};
  CHECK(run_probe(mem).ok);

  // SQLite: writable, then locked by another connection's write transaction.
  const auto db_path = dir.file("app.db");
  { auto s = sd::SqliteStore::open(db_path).value(); }
  ProbeSpec db{.kind = ProbeKind::sqlite, .database = db_path, .timeout = 100ms};
  CHECK(run_probe(db).ok);
  sqlite3* other = nullptr;
  REQUIRE(sqlite3_open(db_path.c_str(), &other) == SQLITE_OK);
  REQUIRE(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK);
  r = run_probe(db);
  CHECK_FALSE(r.ok);
  CHECK_THAT(r.detail, Catch::Contains("locked"));
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  db.database = dir.file("missing.db");
  CHECK_THAT(run_probe(db).detail, Catch::Contains("does not exist"));

  CHECK_THAT(ProbeSpec{.kind = ProbeKind::tcp}.validate().error().message, Catch::Contains("port"));
}

TEST_CASE("healer seeds: a disk over its limit runs the real cleanup-resources workflow, the database locked waits and retries",
          "[healing]") {
  test::TempDir dir;
  auto store = sd::SqliteStore::open(dir.file("s.db")).value();
  testing::ManualClock clock(SystemClock::instance().now());
  workflow::WorkflowEngine engine(*store, clock);
  REQUIRE(workflow::register_builtins(engine, *store));
  const auto junk = dir.file("tmp/old.log");
  test::write_file(junk, std::string(4096, 'x'));
  HealerOptions o;
  std::vector<std::int64_t> runs;
  o.start_workflow = [&](const std::string& name, const std::map<std::string, std::string>& params, const std::string& reason) {
    auto p = params;
    p["dirs"] = dir.file("tmp");
    auto id = engine.start(name, {.params = p, .trigger = "healer: " + reason});
    if (id) runs.push_back(*id);
    return id;
  };
  SelfHealer healer(*store, clock, o);
  auto seeds = seed_targets({.database = dir.file("s.db"), .data_directory = dir.path().string(), .disk_limit = 0.0001});
  for (auto& t : seeds) REQUIRE(healer.add(t));
  clock.advance(8 * 24h);  // the file is 8 days old now
  tick(healer);
  REQUIRE(runs.size() == 1);
  REQUIRE(test::drive(engine, [&] { return !engine.is_active(runs[0]); }));
  CHECK(store->get_run(runs[0]).value()->state == sd::RunState::succeeded);
  CHECK_FALSE(std::filesystem::exists(junk));
  auto disk = status_of(healer.status(), "disk");
  CHECK(disk.state == "healing");

  // The database locked by another writer: the seed waits and retries, then alerts.
  sqlite3* other = nullptr;
  REQUIRE(sqlite3_open(dir.file("s.db").c_str(), &other) == SQLITE_OK);
  sqlite3_busy_timeout(other, 5000);
  REQUIRE(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK);
  // (the healer's own records need the lock too: release it before the healer writes)
  ProbeSpec probe = seeds.front().liveness;
  probe.timeout = 50ms;
  auto r = run_probe(probe);
  CHECK_FALSE(r.ok);
  CHECK_THAT(r.detail, Catch::Contains("locked"));
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  CHECK(seeds.front().name == "database");
  CHECK(seeds.front().ladder.front().kind == ActionKind::wait);
  CHECK(seeds[1].ladder.front().callback == "clear_caches");  // memory: the built-in heap trim, then an alert
}

TEST_CASE("healer: readiness is announced but never healed", "[healing]") {
  Fixture f;
  Switch live, ready;
  SelfHealer healer(f.store, f.clock, f.options());
  auto t = target("api", live.probe(1), {HealStep{.kind = ActionKind::callback, .callback = "a"}});
  t.readiness = ready.probe(2);
  REQUIRE(healer.add(t));
  tick(healer);
  ready.ok = false;
  for (int i = 0; i < 2; ++i) {
    f.clock.advance(10s);
    tick(healer);
  }
  auto s = status_of(healer.status(), "api");
  CHECK(s.state == "healthy");
  CHECK_FALSE(s.ready);
  CHECK(f.called["a"] == 0);
  ready.ok = true;
  f.clock.advance(10s);
  tick(healer);
  CHECK(status_of(healer.status(), "api").ready);
  CHECK(f.events() == std::vector<std::string>{"health.not_ready", "health.ready"});
}

TEST_CASE("healer: the backoff's delays are jittered within their bounds and never beyond the cap", "[healing]") {
  Fixture f;
  Switch api;
  auto o = f.options();
  o.seed = 42;
  SelfHealer healer(f.store, f.clock, o);
  std::vector<HealStep> ladder(8, HealStep{.kind = ActionKind::wait, .verify = 0s});
  auto t = target("api", api.probe(1), ladder);
  t.backoff = {.initial = 10s, .cap = 40s, .multiplier = 2, .jitter = 0.5};
  t.liveness.interval = 1s;
  REQUIRE(healer.add(t));
  api.ok = false;
  for (int i = 0; i < 400; ++i) {
    tick(healer);
    f.clock.advance(1s);
  }
  auto actions = f.history("api", "action");
  REQUIRE(actions.size() >= 6);
  std::vector<double> gaps;
  for (std::size_t i = 1; i < actions.size(); ++i)
    gaps.push_back(std::chrono::duration<double>(actions[i].time - actions[i - 1].time).count());
  // Unjittered: 10, 20, 40, 40, ... seconds; with +-50 % (and a tick of 1 s): 5..16, 10..31, then up to the cap.
  CHECK(gaps[0] >= 5);
  CHECK(gaps[0] <= 16);
  CHECK(gaps[1] >= 10);
  CHECK(gaps[1] <= 31);
  bool jittered = false;
  for (double g : gaps) {
    CHECK(g <= 41);
    jittered = jittered || (g != 10 && g != 20 && g != 40);
  }
  CHECK(jittered);
}

TEST_CASE("healer: a resume after a spent budget starts a new one, and a restarted healer keeps the quarantine", "[healing]") {
  Fixture f;
  Supervisor supervisor(f.clock);
  REQUIRE(supervisor.add({.name = "worker", .command = {"sleep", "600"}}));
  REQUIRE(supervisor.start("worker"));
  auto o = f.options();
  o.supervisor = &supervisor;
  auto t = seed_targets({.services = {"worker"}}).back();
  t.ladder = {HealStep{.kind = ActionKind::restart, .verify = 5s}};
  t.budget = {.restarts = 1, .window = 1h};
  t.backoff.jitter = 0;
  auto crash = [&] {
    auto st = supervisor.status("worker");
    REQUIRE(st);
    REQUIRE(st->running);
    ::kill(st->pid, SIGKILL);
    wait_dead(st->pid);
  };
  {
    SelfHealer healer(f.store, f.clock, o);
    REQUIRE(healer.add(t));
    tick(healer);
    crash();
    f.clock.advance(30s);
    tick(healer);  // restarted: the budget of 1 is used
    f.clock.advance(30s);
    tick(healer);
    crash();
    f.clock.advance(30s);
    tick(healer);
    CHECK(status_of(healer.status(), "worker").state == "quarantined");
  }
  // A new healer (a restarted daemon) picks the quarantine up without announcing it again.
  f.alerts.clear();
  SelfHealer again(f.store, f.clock, o);
  REQUIRE(again.add(t));
  CHECK(status_of(again.status(), "worker").state == "quarantined");
  f.clock.advance(30s);
  tick(again);
  CHECK(status_of(again.status(), "worker").state == "quarantined");
  CHECK(f.alerts.empty());
  // The operator resumes it: a new budget, and it is restarted at once.
  REQUIRE(again.resume("worker", "user:alice", "fixed the config"));
  f.clock.advance(1s);
  tick(again);
  auto st = supervisor.status("worker");
  REQUIRE(st);
  CHECK(st->running);
  CHECK(st->starts == 3);
  CHECK(status_of(again.status(), "worker").state == "healing");
}

TEST_CASE("healer: when a restarted root cause is healthy again its dependants are restarted, in order", "[healing]") {
  Fixture f;
  Supervisor supervisor(f.clock);
  for (const char* name : {"db", "api", "web"}) REQUIRE(supervisor.add({.name = name, .command = {"sleep", "600"}}));
  for (const char* name : {"db", "api", "web"}) REQUIRE(supervisor.start(name));
  auto o = f.options();
  o.supervisor = &supervisor;
  SelfHealer healer(f.store, f.clock, o);
  auto seeds = seed_targets({.services = {"db", "api", "web"}});
  std::vector<TargetSpec> targets;
  for (auto& t : seeds)
    if (!t.service.empty()) {
      t.ladder = {HealStep{.kind = ActionKind::restart, .verify = 5s}};
      if (t.name == "api") t.depends_on = {"db"};
      if (t.name == "web") t.depends_on = {"api"};
      targets.push_back(t);
    }
  std::reverse(targets.begin(), targets.end());  // given dependants first: add_all orders them
  REQUIRE(healer.add_all(targets));
  CHECK(healer.targets() == std::vector<std::string>{"db", "api", "web"});
  tick(healer);
  const auto api_pid = supervisor.status("api")->pid;
  const auto db_pid = supervisor.status("db")->pid;
  ::kill(db_pid, SIGKILL);
  wait_dead(db_pid);
  f.clock.advance(30s);
  tick(healer);  // db restarted
  CHECK(supervisor.status("db")->pid != db_pid);
  f.clock.advance(30s);
  tick(healer);  // db healthy: api restarted after it
  CHECK(supervisor.status("api")->pid != api_pid);
  auto actions = f.history("api", "action");
  REQUIRE(actions.size() == 1);
  CHECK_THAT(actions[0].reason, Catch::Contains("db was restarted and is healthy again"));
  CHECK(f.history("web", "action").empty());  // web depends on api, not on db

  auto cyclic = seed_targets({.services = {"db"}}).back();
  cyclic.name = "x";
  cyclic.depends_on = {"y"};
  auto other = cyclic;
  other.name = "y";
  other.depends_on = {"x"};
  auto r = healer.add_all({cyclic, other});
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("x, y form a cycle"));
}

TEST_CASE("healer: a hook that throws is a failed step, backed off like any other, and a service stopped on purpose is left alone",
          "[healing]") {
  Fixture f;
  Switch api;
  auto o = f.options();
  o.callbacks["boom"] = []() -> Result<std::string> { throw std::runtime_error("boom"); };
  Supervisor supervisor(f.clock);
  REQUIRE(supervisor.add({.name = "batch", .command = {"sleep", "600"}}));
  REQUIRE(supervisor.start("batch"));
  o.supervisor = &supervisor;
  SelfHealer healer(f.store, f.clock, o);
  REQUIRE(healer.add(target("api", api.probe(1),
                            {HealStep{.kind = ActionKind::callback, .callback = "boom", .verify = 30s},
                             HealStep{.kind = ActionKind::callback, .callback = "a", .verify = 30s}})));
  auto batch = seed_targets({.services = {"batch"}}).back();
  REQUIRE(healer.add(batch));
  api.ok = false;
  tick(healer);
  tick(healer);  // at once again: nothing more runs
  auto actions = f.history("api", "action");
  REQUIRE(actions.size() == 1);
  CHECK(actions[0].outcome == "failed");
  CHECK(actions[0].error == "it threw: boom");
  f.clock.advance(10s);  // a failed step is not verified, only backed off (10 s)
  tick(healer);
  CHECK(f.called["a"] == 1);

  REQUIRE(supervisor.stop("batch"));
  CHECK(supervisor.status("batch")->stopped);
  for (int i = 0; i < 3; ++i) {
    f.clock.advance(30s);
    tick(healer);
  }
  CHECK(f.history("batch", "action").empty());
  CHECK_THAT(status_of(healer.status(), "batch").reason, Catch::Contains("stopped on purpose"));
}

TEST_CASE("healer seeds: a locked database waits and retries, memory clears caches then alerts, an exhausted pool is recycled",
          "[healing]") {
  Fixture f;
  test::TempDir dir;
  const auto db_path = dir.file("app.db");
  { auto s = sd::SqliteStore::open(db_path).value(); }
  bool pool_ok = false;
  int recycled = 0;
  auto o = f.options();
  o.callbacks["connection_pool"] = [&]() -> Result<std::string> {
    if (pool_ok) return std::string("3 of 10 connections in use");
    return fail(errc::unavailable, "10 of 10 connections in use, 7 waiting");
  };
  o.callbacks["recycle_connections"] = [&]() -> Result<std::string> {
    ++recycled;
    pool_ok = true;
    return std::string("10 connections recycled");
  };
  o.start_workflow = [](const std::string&, const std::map<std::string, std::string>&, const std::string&) -> Result<std::int64_t> {
    return 1;
  };
  SelfHealer healer(f.store, f.clock, o);
  auto seeds = seed_targets(
      {.database = db_path, .data_directory = dir.path().string(), .connection_pool = true, .memory_limit = 0.0001, .disk_limit = 100});
  for (auto& t : seeds) {
    t.liveness.timeout = 50ms;
    t.backoff.jitter = 0;
  }
  REQUIRE(healer.add_all(seeds));
  sqlite3* other = nullptr;
  REQUIRE(sqlite3_open(db_path.c_str(), &other) == SQLITE_OK);
  REQUIRE(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK);
  for (int i = 0; i < 3; ++i) {
    tick(healer);
    f.clock.advance(30s);
  }
  // The database: unhealthy after two failed probes; it waits 5 s, looks again, waits 30 s.
  auto db = f.history("database", "action");
  REQUIRE(db.size() == 2);
  CHECK(db[0].action == "wait");
  CHECK(db[1].action == "wait");
  CHECK_THAT(db[1].detail, Catch::Contains("30s"));
  CHECK_THAT(f.history("database", "state").at(0).reason, Catch::Contains("locked"));
  // The pool: recycled by the host's callback, and healthy at the next probe.
  CHECK(recycled == 1);
  // Memory: the built-in cache clearing (the heap returned to the system) ran.
  auto memory = f.history("memory", "action");
  REQUIRE(memory.size() == 1);
  CHECK(memory[0].action == "callback");
  CHECK(memory[0].outcome == "succeeded");
  CHECK_THAT(memory[0].detail, Catch::Contains("malloc_trim"));
  // The lock goes away: the database heals after its wait.
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  for (int i = 0; i < 3; ++i) {
    tick(healer);
    f.clock.advance(30s);
  }
  auto all = healer.status();
  CHECK(status_of(all, "database").state == "healthy");
  CHECK_THAT(status_of(all, "database").reason, Catch::Contains("healed after wait"));
  CHECK(status_of(all, "connection-pool").state == "healthy");
  CHECK_THAT(status_of(all, "connection-pool").reason, Catch::Contains("healed after callback recycle_connections"));
  // Memory is still over its (tiny) limit: its ladder goes on to the alert.
  for (int i = 0; i < 4; ++i) {
    tick(healer);
    f.clock.advance(30s);
  }
  memory = f.history("memory", "action");
  REQUIRE(memory.size() >= 2);
  CHECK(memory[1].action == "alert");
  CHECK(std::find(f.alerts.begin(), f.alerts.end(), "memory alert") != f.alerts.end());
}

TEST_CASE("supervisor: stopping an exited service marks it stopped on purpose, a stop does not hold up status, start waits for it",
          "[healing]") {
  Fixture f;
  test::TempDir dir;
  Supervisor supervisor(f.clock);
  REQUIRE(supervisor.add({.name = "once", .command = {"true"}, .log_file = dir.path() / "once.log"}));
  REQUIRE(supervisor.start("once"));
  // It exits by itself: not stopped on purpose, so a healer would restart it...
  for (int i = 0; i < 500 && supervisor.status("once")->running; ++i) std::this_thread::sleep_for(10ms);  // the real process's exit
  REQUIRE_FALSE(supervisor.status("once")->running);
  CHECK_FALSE(supervisor.status("once")->stopped);
  // ...until an operator stops it: then it is left alone, with no process to signal.
  auto stopped = supervisor.stop("once");
  REQUIRE(stopped);
  CHECK(stopped->stopped);
  CHECK(supervisor.status("once")->stopped);

  // A service slow to stop (it ignores SIGTERM for its whole grace): status answers meanwhile.
  REQUIRE(supervisor.add({.name = "stubborn",
                          .command = {"sh", "-c", "trap '' TERM; while :; do sleep 0.05; done"},
                          .log_file = dir.path() / "stubborn.log",
                          .stop_timeout = 1s}));
  REQUIRE(supervisor.start("stubborn"));
  std::this_thread::sleep_for(100ms);  // the shell sets its trap
  auto stopping = std::async(std::launch::async, [&] { return supervisor.stop("stubborn"); });
  for (int i = 0; i < 100 && supervisor.start("stubborn").error().message.find("being stopped") == std::string::npos; ++i)
    std::this_thread::sleep_for(5ms);
  auto busy = supervisor.start("stubborn");
  REQUIRE_FALSE(busy);
  CHECK(busy.error().is(errc::busy));
  // status() answers while that stop still waits out its grace (which the service makes it use whole).
  CHECK(supervisor.status("stubborn")->running);
  CHECK(stopping.wait_for(0s) == std::future_status::timeout);
  auto done = stopping.get();
  REQUIRE(done);
  CHECK_FALSE(done->running);
  CHECK(done->stopped);
  CHECK_THAT(done->exit, Catch::Contains("stopped"));
}
