// WorkflowEngine: DAG order and parallelism, conditions, retries on the manual clock, process
// timeouts that kill a whole tree, outputs, compensation order, cancellation, durable history,
// recovery, concurrency keys, sub-workflows and HTTP steps.
#include <automation/core/ids.hpp>
#include <automation/storage/memory_store.hpp>
#include <automation/storage/sqlite_store.hpp>
#include <automation/testing/manual_clock.hpp>
#include <automation/workflow/engine.hpp>

#include "detail/http_client.hpp"
#include "support/catch_result.hpp"
#include "support/http_server.hpp"
#include "support/temp_dir.hpp"
#include "support/workflow.hpp"

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

using namespace automation;
using namespace automation::workflow;
using namespace std::chrono_literals;
using storage::RunState;

namespace {

using test::parse;

using test::drive;

struct Fixture {
  storage::MemoryStore store;
  testing::ManualClock clock;
  std::mutex mu;
  std::vector<std::string> calls;
  std::unique_ptr<WorkflowEngine> engine;

  explicit Fixture(WorkflowEngine::Options o = {}) {
    o.kill_grace = 2s;
    engine = std::make_unique<WorkflowEngine>(store, clock, std::move(o));
    engine->register_callback("record", [this](StepContext& c) {
      std::lock_guard lock(mu);
      calls.push_back(c.step);
      return Result<void>();
    });
    engine->register_callback("boom", [this](StepContext& c) -> Result<void> {
      std::lock_guard lock(mu);
      calls.push_back(c.step);
      return fail(errc::io, "boom in " + c.step);
    });
  }
  RunRecord run(std::int64_t id) { return store.get_run(id).value().value(); }
  std::vector<storage::StepRecord> steps(std::int64_t id) { return store.run_steps(id).value(); }
  storage::StepRecord step(std::int64_t id, std::string_view s) {
    for (auto& r : steps(id))
      if (r.step == s) return r;
    FAIL("no step " << s);
    return {};
  }
  RunRecord finish(std::int64_t id) {
    REQUIRE(drive(*engine, [&] { return !engine->is_active(id); }));
    return run(id);
  }
};

bool process_gone(pid_t pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

}  // namespace

TEST_CASE("engine: steps run in dependency order and every transition is recorded") {
  Fixture f;
  auto w = parse(R"json({"name":"dag","steps":[
    {"id":"d","callback":"record","needs":["b","c"]},
    {"id":"b","callback":"record","needs":"a"},
    {"id":"a","callback":"record"},
    {"id":"c","callback":"record","needs":"a"}]})json");
  REQUIRE(f.engine->register_workflow(w));
  auto id = f.engine->start("dag", {.trigger = "test"});
  REQUIRE(id);
  CHECK(f.run(*id).state == RunState::queued);
  auto r = f.finish(*id);
  CHECK(r.state == RunState::succeeded);
  CHECK(r.reason == "all steps succeeded");
  CHECK(r.trigger == "test");
  CHECK(r.owner.empty());
  CHECK(f.calls == std::vector<std::string>{"a", "b", "c", "d"});
  auto steps = f.steps(*id);
  REQUIRE(steps.size() == 4);
  for (const auto& s : steps) {
    CHECK(s.state == RunState::succeeded);
    CHECK(s.attempts == 1);
  }
  CHECK(f.store.run_attempts(*id, std::nullopt).value().size() == 4);
  // Each step and the run went to TaskHistory.
  auto tasks = f.store.query_tasks({.domain = "workflow", .limit = 0}).value();
  CHECK(tasks.size() == 5);
  CHECK(std::any_of(tasks.begin(), tasks.end(), [](const auto& t) { return t.action == "dag/d"; }));
  CHECK(std::any_of(tasks.begin(), tasks.end(), [](const auto& t) { return t.action == "dag"; }));
}

TEST_CASE("engine: independent steps run in parallel on the executor, up to the limit") {
  std::vector<std::thread> threads;
  std::mutex tmu;
  WorkflowEngine::Options o;
  o.max_parallel_steps = 2;
  o.executor = [&](std::function<void()> fn) {
    std::lock_guard lock(tmu);
    threads.emplace_back(std::move(fn));
  };
  Fixture f(o);
  std::atomic<int> running{0}, peak{0};
  std::mutex m;
  std::condition_variable cv;
  int arrived = 0;
  f.engine->register_callback("together", [&](StepContext&) -> Result<void> {
    const int now = ++running;
    int p = peak.load();
    while (now > p && !peak.compare_exchange_weak(p, now)) {
    }
    std::unique_lock lock(m);
    // Two at a time meet here; a third never runs alongside them. Each waits for its own pair to
    // be complete (not for an even count, which the next pair's first arrival can break before a
    // partner has woken up).
    const int pair_full = (arrived / 2 + 1) * 2;
    ++arrived;
    cv.notify_all();
    const bool met = cv.wait_for(lock, 10s, [&] { return arrived >= pair_full; });
    --running;
    return met ? Result<void>() : fail(errc::timeout, "no partner arrived");
  });
  auto w = parse(R"json({"name":"par","steps":[
    {"id":"a","callback":"together"},{"id":"b","callback":"together"},
    {"id":"c","callback":"together"},{"id":"d","callback":"together"}]})json");
  REQUIRE(f.engine->register_workflow(w));
  auto id = f.engine->start("par");
  auto r = f.finish(*id);
  {
    std::lock_guard lock(tmu);
    for (auto& t : threads) t.join();
  }
  CHECK(r.state == RunState::succeeded);
  CHECK(peak.load() == 2);
}

TEST_CASE("engine: at most max_parallel_steps are in flight and the others start as slots free") {
  std::deque<std::function<void()>> held;  // callbacks wait here until the test runs them
  WorkflowEngine::Options o;
  o.max_parallel_steps = 2;
  o.executor = [&](std::function<void()> fn) { held.push_back(std::move(fn)); };
  Fixture f(o);
  REQUIRE(f.engine->register_workflow(parse(R"json({"name":"wide","steps":[
    {"id":"a","callback":"record"},{"id":"b","callback":"record"},{"id":"c","callback":"record"},{"id":"d","callback":"record"}]})json")));
  auto id = f.engine->start("wide").value();
  f.engine->poll();
  CHECK(held.size() == 2);  // two independent steps started together, not four
  for (int done = 0; done < 4; ++done) {
    REQUIRE_FALSE(held.empty());
    auto fn = std::move(held.front());
    held.pop_front();
    fn();
    f.engine->poll();
    CHECK(held.size() == static_cast<std::size_t>(std::min(2, 4 - done - 1)));  // a freed slot is taken at once
  }
  CHECK(f.run(id).state == RunState::succeeded);
}

TEST_CASE("engine: conditions and skips follow success(), failure(), always() and expressions") {
  Fixture f;
  f.engine->register_callback("gen", [](StepContext& c) -> Result<void> {
    c.set_output("n", "12");
    return {};
  });
  auto w = parse(R"json({"name":"cond","params":{"env":{"default":"prod"}},"steps":[
    {"id":"ok","callback":"record"},
    {"id":"no_failure","callback":"record","needs":"ok","if":"failure()"},
    {"id":"success_after_bad","callback":"record","needs":"bad","if":"success()"},
    {"id":"gen","callback":"gen","outputs":["n"]},
    {"id":"big","callback":"record","needs":"gen","if":"steps.gen.outputs.n >= 10 && !(params.env == 'dev')"},
    {"id":"small","callback":"record","needs":"gen","if":"steps.gen.outputs.n < 10 || params.env == 'dev'"},
    {"id":"bad","callback":"boom","needs":"ok"},
    {"id":"after_bad","callback":"record","needs":"bad"},
    {"id":"on_failure","callback":"record","needs":"after_bad","if":"failure()"},
    {"id":"always","callback":"record","needs":"bad","if":"always()"},
    {"id":"prod_only","callback":"record","needs":"ok","if":"params.env == 'prod'"},
    {"id":"dev_only","callback":"record","needs":"ok","if":"params.env == 'dev'"},
    {"id":"soft","callback":"boom","continue_on_error":true},
    {"id":"after_soft","callback":"record","needs":"soft"}]})json");
  REQUIRE(f.engine->register_workflow(w));
  auto id = f.engine->start("cond");
  auto r = f.finish(*id);
  CHECK(r.state == RunState::failed);
  CHECK_THAT(r.reason, Catch::Contains("bad") && Catch::Contains("boom in bad"));
  CHECK(f.step(*id, "ok").state == RunState::succeeded);
  CHECK(f.step(*id, "bad").state == RunState::failed);
  CHECK(f.step(*id, "after_bad").state == RunState::skipped);
  CHECK_THAT(f.step(*id, "after_bad").reason, Catch::Contains("needs \"bad\", which failed"));
  CHECK(f.step(*id, "on_failure").state == RunState::succeeded);
  CHECK(f.step(*id, "always").state == RunState::succeeded);
  CHECK(f.step(*id, "prod_only").state == RunState::succeeded);
  CHECK(f.step(*id, "dev_only").state == RunState::skipped);
  CHECK_THAT(f.step(*id, "dev_only").reason, Catch::Contains("condition \"params.env == 'dev'\" is false"));
  CHECK(f.step(*id, "soft").state == RunState::failed);
  CHECK_THAT(f.step(*id, "soft").reason, Catch::Contains("continue_on_error"));
  CHECK(f.step(*id, "after_soft").state == RunState::succeeded);
  // failure() is false when nothing the step needs failed; success() is false when something did.
  CHECK(f.step(*id, "no_failure").state == RunState::skipped);
  CHECK_THAT(f.step(*id, "no_failure").reason, Catch::Contains("condition \"failure()\" is false"));
  CHECK(f.step(*id, "success_after_bad").state == RunState::skipped);
  // Outputs of earlier steps, numbers, && || and ! in expressions.
  CHECK(f.step(*id, "big").state == RunState::succeeded);
  CHECK(f.step(*id, "small").state == RunState::skipped);
}

TEST_CASE("engine: retries wait on the clock with the policy's backoff") {
  Fixture f;
  int calls = 0;
  f.engine->register_callback("flaky", [&](StepContext& c) -> Result<void> {
    ++calls;
    CHECK(c.attempt == calls);
    if (calls < 3) return fail(errc::unavailable, fmt::format("try {} failed", calls));
    c.set_output("tries", std::to_string(calls));
    return {};
  });
  auto w = parse(R"json({"name":"retry","steps":[
    {"id":"s","callback":"flaky","outputs":["tries"],"retry":{"max_attempts":3,"initial_delay":"10s","multiplier":3}}]})json");
  REQUIRE(f.engine->register_workflow(w));
  auto id = f.engine->start("retry");
  auto p = f.engine->poll();
  CHECK(calls == 1);
  REQUIRE(p.next_timer);
  CHECK(*p.next_timer <= f.clock.now() + 10s);
  CHECK(f.step(*id, "s").state == RunState::queued);
  CHECK_THAT(f.step(*id, "s").reason, Catch::Contains("try 1 failed") && Catch::Contains("retry"));
  f.clock.advance(9s);
  f.engine->poll();
  CHECK(calls == 1);  // not yet
  f.clock.advance(1s);
  f.engine->poll();
  CHECK(calls == 2);
  f.clock.advance(29s);
  f.engine->poll();
  CHECK(calls == 2);
  f.clock.advance(1s);
  f.engine->poll();
  CHECK(calls == 3);
  auto r = f.run(*id);
  CHECK(r.state == RunState::succeeded);
  auto s = f.step(*id, "s");
  CHECK(s.attempts == 3);
  CHECK(s.reason == "succeeded on attempt 3");
  CHECK(s.outputs == R"({"tries":"3"})");
  auto attempts = f.store.run_attempts(*id, std::string_view("s")).value();
  REQUIRE(attempts.size() == 3);
  CHECK(attempts[0].state == RunState::failed);
  CHECK(attempts[0].error == "try 1 failed");
  CHECK(attempts[1].started == attempts[0].ended + 10s);
  CHECK(attempts[2].state == RunState::succeeded);
}

TEST_CASE("engine: a command's outputs feed later steps and its logs are kept per attempt") {
  Fixture f;
  std::string seen;
  f.engine->register_callback("check", [&](StepContext& c) {
    seen = c.with.at("v");
    return Result<void>();
  });
  auto w = parse(R"json({"name":"outs","params":{"who":{"default":"world"}},"steps":[
    {"id":"gen","run":["sh","-c","echo hello ${{ params.who }}; echo version=1.2.3; echo junk=1; echo oops >&2"],"outputs":["version"]},
    {"id":"use","run":["sh","-c","echo got=$0","${{ steps.gen.outputs.version }}"],"needs":"gen","outputs":["got"]},
    {"id":"cb","callback":"check","with":{"v":"${{ steps.use.outputs.got }}"},"needs":"use"}]})json");
  REQUIRE(f.engine->register_workflow(w));
  auto id = f.engine->start("outs");
  auto r = f.finish(*id);
  CHECK(r.state == RunState::succeeded);
  CHECK(f.step(*id, "gen").outputs == R"({"version":"1.2.3"})");
  CHECK(f.step(*id, "gen").exit_code == 0);
  CHECK(seen == "1.2.3");
  auto a = f.store.run_attempts(*id, std::string_view("gen")).value();
  REQUIRE(a.size() == 1);
  CHECK(a[0].stdout_text == "hello world\nversion=1.2.3\njunk=1\n");
  CHECK(a[0].stderr_text == "oops\n");
  CHECK(a[0].pid > 0);
}

TEST_CASE("engine: a failing command fails its step with the exit status and logs are bounded") {
  WorkflowEngine::Options o;
  o.max_log_bytes = 100;
  Fixture f(o);
  auto w = parse(R"json({"name":"fails","steps":[
    {"id":"s","run":["sh","-c","i=0; while [ $i -lt 50 ]; do echo line-$i; i=$((i+1)); done; exit 3"]},
    {"id":"missing","run":["no-such-program-xyz"]}]})json");
  REQUIRE(f.engine->register_workflow(w));
  auto id = f.engine->start("fails");
  auto r = f.finish(*id);
  CHECK(r.state == RunState::failed);
  auto s = f.step(*id, "s");
  CHECK(s.exit_code == 3);
  CHECK_THAT(s.reason, Catch::Contains("exit 3"));
  auto a = f.store.run_attempts(*id, std::string_view("s")).value();
  CHECK_THAT(a[0].stdout_text, Catch::StartsWith("[... ") && Catch::EndsWith("line-49\n"));
  CHECK(a[0].stdout_text.size() < 160);
  CHECK_THAT(f.step(*id, "missing").reason, Catch::Contains("cannot run \"no-such-program-xyz\""));
}

TEST_CASE("engine: a timeout sends SIGTERM, then SIGKILL to the whole process group, and confirms it is gone") {
  test::TempDir dir;
  Fixture f;
  const std::string pids = dir.file("pids");
  // The shell and its background child ignore SIGTERM, so only the SIGKILL after the grace ends them.
  auto w = parse(fmt::format(R"json({{"name":"slow","steps":[
    {{"id":"s","shell":"trap '' TERM; sleep 300 & echo $$ $! > {}; wait","timeout":"5s",
      "retry":{{"max_attempts":1}}}}]}})json",
                             pids));
  REQUIRE(f.engine->register_workflow(w));
  auto id = f.engine->start("slow");
  REQUIRE(drive(*f.engine, [&] { return std::ifstream(pids).peek() != EOF; }));
  pid_t shell = 0, child = 0;
  REQUIRE(drive(*f.engine, [&] {
    std::ifstream in(pids);
    return static_cast<bool>(in >> shell >> child);
  }));
  CHECK(f.step(*id, "s").state == RunState::running);
  f.clock.advance(5s);
  f.engine->poll();  // SIGTERM, ignored
  f.engine->wait(100ms);
  f.engine->poll();
  CHECK_FALSE(process_gone(shell));
  CHECK(f.engine->is_active(*id));
  f.clock.advance(2s);  // the grace
  auto r = f.finish(*id);
  CHECK(r.state == RunState::failed);
  auto s = f.step(*id, "s");
  CHECK(s.state == RunState::timed_out);
  CHECK_THAT(s.reason, Catch::Contains("timed out after 5s") && Catch::Contains("SIGKILL"));
  CHECK(process_gone(shell));
  CHECK(process_gone(child));
}

TEST_CASE("engine: a failed run compensates succeeded steps in reverse order, then runs finally steps") {
  Fixture f;
  auto w = parse(R"json({"name":"saga","steps":[
    {"id":"a","callback":"record","compensate":{"callback":"record"}},
    {"id":"b","callback":"record","needs":"a","compensate":{"callback":"record"}},
    {"id":"c","callback":"record","needs":"b","compensate":{"callback":"record"}},
    {"id":"d","callback":"boom","needs":"c","compensate":{"callback":"record"}},
    {"id":"cleanup","callback":"record","finally":true}]})json");
  REQUIRE(f.engine->register_workflow(w));
  auto id = f.engine->start("saga");
  auto r = f.finish(*id);
  CHECK(r.state == RunState::failed);
  CHECK_THAT(r.reason, Catch::Contains("3 compensations ran"));
  CHECK(f.calls == std::vector<std::string>{"a", "b", "c", "d", "c.compensate", "b.compensate", "a.compensate", "cleanup"});
  CHECK(f.step(*id, "c.compensate").state == RunState::succeeded);
  CHECK(f.step(*id, "cleanup").state == RunState::succeeded);
}

TEST_CASE("engine: a successful run does not compensate, and finally steps still run") {
  Fixture f;
  auto w = parse(R"json({"name":"ok","steps":[
    {"id":"a","callback":"record","compensate":{"callback":"record"}},
    {"id":"z","callback":"record","finally":true}]})json");
  REQUIRE(f.engine->register_workflow(w));
  auto r = f.finish(f.engine->start("ok").value());
  CHECK(r.state == RunState::succeeded);
  CHECK(f.calls == std::vector<std::string>{"a", "z"});
}

TEST_CASE("engine: cancelling a run stops its process, skips what is left and runs finally steps") {
  Fixture f;
  auto w = parse(R"json({"name":"long","steps":[
    {"id":"s","run":["sleep","300"]},
    {"id":"next","callback":"record","needs":"s"},
    {"id":"fin","callback":"record","finally":true}]})json");
  REQUIRE(f.engine->register_workflow(w));
  auto id = f.engine->start("long").value();
  f.engine->poll();
  CHECK(f.step(id, "s").state == RunState::running);
  REQUIRE(f.engine->cancel(id, "operator asked"));
  auto r = f.finish(id);
  CHECK(r.state == RunState::cancelled);
  CHECK(r.reason == "operator asked");
  CHECK(f.step(id, "s").state == RunState::cancelled);
  CHECK_THAT(f.step(id, "s").reason, Catch::Contains("SIGTERM"));
  CHECK(f.step(id, "next").state == RunState::cancelled);
  CHECK(f.step(id, "fin").state == RunState::succeeded);
  CHECK(f.calls == std::vector<std::string>{"fin"});
  CHECK(f.engine->cancel(id, "again").error().is(errc::conflict));
  // Every step outcome, including the one that never started, is in TaskHistory.
  auto next = f.store.query_tasks({.action = "long/next"}).value();
  REQUIRE(next.size() == 1);
  CHECK(next[0].outcome == storage::TaskOutcome::cancelled);
  CHECK(f.store.query_tasks({.action = "long/s"}).value().at(0).outcome == storage::TaskOutcome::cancelled);
}

TEST_CASE("engine: a run past its deadline is timed out") {
  Fixture f;
  auto w = parse(R"json({"name":"dl","deadline":"1m","steps":[{"id":"s","run":["sleep","300"]}]})json");
  REQUIRE(f.engine->register_workflow(w));
  auto id = f.engine->start("dl").value();
  f.engine->poll();
  f.clock.advance(61s);
  auto r = f.finish(id);
  CHECK(r.state == RunState::timed_out);
  CHECK_THAT(r.reason, Catch::Contains("deadline of 1m"));
}

TEST_CASE("engine: parameters are checked and rendered") {
  Fixture f;
  auto w = parse(R"json({"name":"p","params":{"need":{"description":"required one"},"opt":{"default":"x"}},
    "steps":[{"id":"s","callback":"record"}]})json");
  REQUIRE(f.engine->register_workflow(w));
  auto missing = f.engine->start("p");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().is(errc::invalid_argument));
  CHECK_THAT(missing.error().message, Catch::Contains("parameter \"need\" is required (required one)"));
  auto unknown = f.engine->start("p", {.params = {{"need", "1"}, {"typo", "2"}}});
  REQUIRE_FALSE(unknown);
  CHECK_THAT(unknown.error().message, Catch::Contains("unknown parameter \"typo\""));
  auto nf = f.engine->start("nope");
  CHECK(nf.error().is(errc::not_found));
  auto id = f.engine->start("p", {.params = {{"need", "1"}}});
  REQUIRE(id);
  CHECK(f.run(*id).params == R"({"need":"1","opt":"x"})");
}

TEST_CASE("engine: a concurrency key queues, skips or cancels conflicting runs") {
  Fixture f;
  auto make = [&](std::string policy) {
    return parse(fmt::format(R"json({{"name":"deploy-{0}","params":{{"env":{{}}}},
      "concurrency":{{"key":"deploy-${{{{ params.env }}}}","on_conflict":"{0}"}},
      "steps":[{{"id":"s","run":["sleep","300"]}}]}})json",
                             policy));
  };
  SECTION("queue") {
    REQUIRE(f.engine->register_workflow(make("queue")));
    auto a = f.engine->start("deploy-queue", {.params = {{"env", "prod"}}}).value();
    auto b = f.engine->start("deploy-queue", {.params = {{"env", "prod"}}}).value();
    auto c = f.engine->start("deploy-queue", {.params = {{"env", "dev"}}}).value();
    f.engine->poll();
    CHECK(f.run(a).state == RunState::running);
    CHECK(f.run(b).state == RunState::queued);
    CHECK_THAT(f.run(b).reason, Catch::Contains("waits for run 1"));
    CHECK(f.run(c).state == RunState::running);
    REQUIRE(f.engine->cancel(a, "done with it"));
    REQUIRE(drive(*f.engine, [&] { return f.run(b).state == RunState::running; }));
    f.engine->cancel(b, "x");
    f.engine->cancel(c, "x");
    f.finish(b);
    f.finish(c);
  }
  SECTION("skip") {
    REQUIRE(f.engine->register_workflow(make("skip")));
    auto a = f.engine->start("deploy-skip", {.params = {{"env", "prod"}}}).value();
    auto b = f.engine->start("deploy-skip", {.params = {{"env", "prod"}}});
    REQUIRE_FALSE(b);
    CHECK(b.error().is(errc::busy));
    f.engine->cancel(a, "x");
    f.finish(a);
  }
  SECTION("cancel_running") {
    REQUIRE(f.engine->register_workflow(make("cancel_running")));
    auto a = f.engine->start("deploy-cancel_running", {.params = {{"env", "prod"}}}).value();
    f.engine->poll();
    auto b = f.engine->start("deploy-cancel_running", {.params = {{"env", "prod"}}}).value();
    REQUIRE(drive(*f.engine, [&] { return f.run(b).state == RunState::running; }));
    CHECK(f.run(a).state == RunState::cancelled);
    CHECK_THAT(f.run(a).reason, Catch::Contains("superseded"));
    f.engine->cancel(b, "x");
    f.finish(b);
  }
}

TEST_CASE("engine: max_concurrent_runs holds a second run queued until the first ends") {
  Fixture f;
  auto w = parse(R"json({"name":"one","max_concurrent_runs":1,"steps":[{"id":"s","run":["sleep","300"]}]})json");
  REQUIRE(f.engine->register_workflow(w));
  auto a = f.engine->start("one").value();
  auto b = f.engine->start("one").value();
  f.engine->poll();
  CHECK(f.run(a).state == RunState::running);
  CHECK(f.run(b).state == RunState::queued);
  f.engine->poll();
  CHECK(f.run(b).state == RunState::queued);
  REQUIRE(f.engine->cancel(a, "make room"));
  REQUIRE(drive(*f.engine, [&] { return f.run(b).state == RunState::running; }));
  CHECK(f.run(a).state == RunState::cancelled);
  f.engine->cancel(b, "done");
  f.finish(b);
}

TEST_CASE("engine: when runs wait for a slot, the higher priority starts first") {
  WorkflowEngine::Options o;
  o.max_active_runs = 1;
  Fixture f(o);
  REQUIRE(f.engine->register_workflow(parse(R"json({"name":"low","priority":1,"steps":[{"id":"low","callback":"record"}]})json")));
  REQUIRE(f.engine->register_workflow(parse(R"json({"name":"high","priority":9,"steps":[{"id":"high","callback":"record"}]})json")));
  auto low = f.engine->start("low").value();  // queued first
  auto high = f.engine->start("high").value();
  f.finish(low);
  f.finish(high);
  CHECK(f.calls == std::vector<std::string>{"high", "low"});
}

TEST_CASE("engine: a timed-out attempt is retried when the policy allows it") {
  test::TempDir dir;
  Fixture f;
  const std::string marker = dir.file("tried");
  auto w = parse(fmt::format(R"json({{"name":"retry-timeout","steps":[
    {{"id":"s","shell":"if [ -f {0} ]; then echo second; else touch {0}; exec sleep 300; fi","timeout":"5s",
      "retry":{{"max_attempts":2,"initial_delay":"1s"}}}}]}})json",
                             marker));
  REQUIRE(f.engine->register_workflow(w));
  auto id = f.engine->start("retry-timeout").value();
  REQUIRE(drive(*f.engine, [&] { return std::filesystem::exists(marker); }));
  f.clock.advance(5s);  // SIGTERM ends the sleep
  REQUIRE(drive(*f.engine, [&] { return f.step(id, "s").state == RunState::queued; }));
  CHECK_THAT(f.step(id, "s").reason, Catch::Contains("timed out after 5s"));
  f.clock.advance(1s);
  auto r = f.finish(id);
  CHECK(r.state == RunState::succeeded);
  auto attempts = f.store.run_attempts(id, std::string_view("s")).value();
  REQUIRE(attempts.size() == 2);
  CHECK(attempts[0].state == RunState::timed_out);
  CHECK(attempts[1].stdout_text == "second\n");
}

TEST_CASE("engine: a sub-workflow step runs a child run and takes its outcome") {
  Fixture f;
  REQUIRE(f.engine->register_workflow(parse(R"json({"name":"child","params":{"x":{}},"steps":[
    {"id":"c","callback":"record","if":"params.x == 'go'"}]})json")));
  REQUIRE(f.engine->register_workflow(parse(R"json({"name":"failing-child","steps":[{"id":"c","callback":"boom"}]})json")));
  REQUIRE(f.engine->register_workflow(parse(R"json({"name":"parent","steps":[
    {"id":"sub","workflow":{"name":"child","with":{"x":"go"}}},
    {"id":"bad","workflow":{"name":"failing-child"},"needs":"sub"}]})json")));
  auto id = f.engine->start("parent").value();
  auto r = f.finish(id);
  CHECK(r.state == RunState::failed);
  CHECK(f.step(id, "sub").state == RunState::succeeded);
  CHECK(f.step(id, "bad").state == RunState::failed);
  storage::RunQuery q;
  q.parent_run_id = id;
  auto children = f.store.list_runs(q).value();
  REQUIRE(children.size() == 2);
  CHECK(children[1].workflow == "child");
  CHECK(children[1].trigger == fmt::format("workflow:{}/sub", id));
  CHECK(children[1].correlation_id == r.correlation_id);
  CHECK(f.calls == std::vector<std::string>{"c", "c"});
}

TEST_CASE("engine: a run whose engine died is marked interrupted and resumed without redoing finished steps") {
  Fixture f;
  REQUIRE(f.engine->register_workflow(parse(R"json({"name":"r","steps":[
    {"id":"a","callback":"record"},{"id":"b","callback":"record","needs":"a"}]})json")));
  // What a killed engine leaves behind: a running run owned by a dead process, step a done.
  RunRecord rec;
  rec.workflow = "r";
  rec.definition = to_json(*f.engine->workflow("r"));
  rec.state = RunState::running;
  rec.trigger = "manual";
  rec.owner = "pid 999999 (start 1) on " + host_name();
  rec.lease_until = f.clock.now() + 1h;
  std::vector<storage::StepRecord> steps(2);
  steps[0].step = "a";
  steps[0].state = RunState::succeeded;
  steps[0].attempts = 1;
  steps[1].step = "b";
  steps[1].state = RunState::running;
  steps[1].attempts = 1;
  auto id = f.store.create_run(rec, steps, nullptr).value();
  CHECK_FALSE(owner_alive(f.run(id), f.clock.now()));

  auto report = f.engine->recover(false);
  REQUIRE(report);
  CHECK(report->interrupted == std::vector<std::int64_t>{id});
  CHECK(f.run(id).state == RunState::interrupted);
  CHECK_THAT(f.run(id).reason, Catch::Contains("pid 999999") && Catch::Contains("is gone"));
  CHECK(f.step(id, "b").state == RunState::interrupted);
  CHECK(f.engine->recover(false)->interrupted.empty());  // once

  REQUIRE(f.engine->resume(id, "resumed by the test"));
  auto r = f.finish(id);
  CHECK(r.state == RunState::succeeded);
  CHECK(f.calls == std::vector<std::string>{"b"});  // a is not redone
  CHECK(f.step(id, "b").attempts == 2);
  CHECK(f.engine->resume(id).error().is(errc::conflict));
}

TEST_CASE("engine: recover(adopt) resumes a dead owner's run and leaves a live owner's run alone") {
  Fixture f;
  REQUIRE(f.engine->register_workflow(parse(R"json({"name":"r","steps":[{"id":"a","callback":"record"}]})json")));
  RunRecord rec;
  rec.workflow = "r";
  rec.definition = to_json(*f.engine->workflow("r"));
  rec.state = RunState::running;
  rec.owner = "pid 1 (start 5) on some-other-host";
  rec.lease_until = f.clock.now() + 30s;  // another host: alive until its lease expires
  auto id = f.store.create_run(rec, std::vector<storage::StepRecord>(1, storage::StepRecord{.step = "a"}), nullptr).value();
  CHECK(f.engine->recover(true)->interrupted.empty());
  f.clock.advance(31s);
  auto report = f.engine->recover(true).value();
  CHECK(report.interrupted == std::vector<std::int64_t>{id});
  CHECK(report.adopted == std::vector<std::int64_t>{id});
  CHECK_THAT(f.run(id).reason, Catch::Contains("resumed by"));
  CHECK(f.finish(id).state == RunState::succeeded);
}

TEST_CASE("engine: cancel through the store reaches a run no engine owns") {
  Fixture f;
  RunRecord rec;
  rec.workflow = "orphan";
  rec.state = RunState::running;
  rec.owner = "pid 999999 (start 1) on nowhere";
  auto id =
      f.store.create_run(rec, std::vector<storage::StepRecord>(1, storage::StepRecord{.step = "a", .state = RunState::running}), nullptr)
          .value();
  REQUIRE(f.engine->cancel(id, "cleanup"));
  CHECK(f.run(id).state == RunState::cancelled);
  CHECK(f.step(id, "a").state == RunState::cancelled);
  CHECK(f.engine->cancel(12345, "x").error().is(errc::not_found));
}

TEST_CASE("engine: on_interrupt restart starts a new run with the same parameters, and fail leaves the run interrupted") {
  Fixture f;
  REQUIRE(f.engine->register_workflow(parse(R"json({"name":"again","on_interrupt":"restart","params":{"v":{"default":"1"}},
    "steps":[{"id":"a","callback":"record"}]})json")));
  REQUIRE(f.engine->register_workflow(parse(R"json({"name":"stop","on_interrupt":"fail","steps":[{"id":"a","callback":"record"}]})json")));
  auto dead_run = [&](const char* name, std::string params) {
    RunRecord rec;
    rec.workflow = name;
    rec.definition = to_json(*f.engine->workflow(name));
    rec.params = std::move(params);
    rec.state = RunState::running;
    rec.correlation_id = "corr-1";
    rec.owner = "pid 999999 (start 1) on " + host_name();
    return f.store.create_run(rec, std::vector<storage::StepRecord>(1, storage::StepRecord{.step = "a"}), nullptr).value();
  };
  const auto restarted = dead_run("again", R"({"v":"7"})");
  const auto failed = dead_run("stop", "{}");
  auto report = f.engine->recover(true).value();
  CHECK(report.interrupted.size() == 2);
  CHECK(report.adopted.empty());
  REQUIRE(report.restarted.size() == 1);
  const auto fresh = report.restarted[0];
  CHECK(f.run(restarted).state == RunState::interrupted);  // the old run stays as it was left
  CHECK(f.run(failed).state == RunState::interrupted);
  auto n = f.finish(fresh);
  CHECK(n.state == RunState::succeeded);
  CHECK(n.trigger == fmt::format("restart:{}", restarted));
  CHECK(n.params == R"({"v":"7"})");
  CHECK(n.correlation_id == "corr-1");
  CHECK(f.calls == std::vector<std::string>{"a"});  // only the restarted workflow ran
}

TEST_CASE("engine: history is durable on SQLite and the definition stored with the run loads back") {
  test::TempDir dir;
  auto store = storage::SqliteStore::open(dir.file("w.db")).value();
  testing::ManualClock clock;
  WorkflowEngine e(*store, clock);
  auto w = parse(R"json({"name":"dur","params":{"v":{"default":"1"}},"env":{"A":"b"},"deadline":"1h","on_interrupt":"restart",
    "steps":[{"id":"s","run":["true"],"retry":{"max_attempts":2,"initial_delay":"1s"},"timeout":"30s","env":{"X":"${{ params.v }}"},
              "compensate":{"run":["true"]},"outputs":["o"]},
             {"id":"h","http":{"method":"POST","url":"http://127.0.0.1:1/x","body":{"a":1},"expect_status":[200]},"needs":"s","if":"always()"}]})json");
  REQUIRE(e.register_workflow(w));
  auto stored = parse_workflow(to_json(w), "round trip");
  REQUIRE(stored);
  CHECK(to_json(*stored) == to_json(w));
  auto id = e.start("dur").value();
  REQUIRE(drive(e, [&] { return !e.is_active(id); }));
  auto r = store->get_run(id).value().value();
  CHECK(r.state == RunState::failed);  // nothing listens on port 1
  CHECK(store->run_steps(id).value()[0].state == RunState::succeeded);
  CHECK_THAT(store->run_steps(id).value()[1].reason, Catch::Contains("127.0.0.1:1"));
  auto loaded = parse_workflow(r.definition, "stored");
  REQUIRE(loaded);
  CHECK(to_json(*loaded) == to_json(w));
  // Another connection (a later process) reads the same history.
  auto reopened = storage::SqliteStore::open(dir.file("w.db")).value();
  CHECK(reopened->get_run(id).value().value() == r);
  CHECK(reopened->run_steps(id).value() == store->run_steps(id).value());
  CHECK(reopened->run_attempts(id, std::nullopt).value() == store->run_attempts(id, std::nullopt).value());
  CHECK_FALSE(reopened->run_attempts(id, std::nullopt).value().empty());
}

TEST_CASE("engine: an http step sends the rendered request to a real server and checks the status") {
  test::HttpServer ok(201, "created");
  test::HttpServer bad(503, "down");
  Fixture f;
  auto w = parse(fmt::format(R"json({{"name":"hook","params":{{"env":{{"default":"prod"}}}},"steps":[
    {{"id":"post","http":{{"method":"POST","url":"http://127.0.0.1:{}/deploy/${{{{ params.env }}}}",
      "headers":{{"X-Token":"t-1"}},"body":{{"env":"${{{{ params.env }}}}"}},"expect_status":[201]}}}},
    {{"id":"down","http":{{"url":"http://127.0.0.1:{}/health"}},"needs":"post"}}]}})json",
                             ok.port(), bad.port()));
  REQUIRE(f.engine->register_workflow(w));
  auto id = f.engine->start("hook").value();
  auto r = f.finish(id);
  CHECK(r.state == RunState::failed);
  auto post = f.step(id, "post");
  CHECK(post.state == RunState::succeeded);
  CHECK(post.outputs == R"({"body":"created","status":"201"})");
  auto reqs = ok.requests();
  REQUIRE(reqs.size() == 1);
  CHECK_THAT(reqs[0], Catch::StartsWith("POST /deploy/prod HTTP/1.1") && Catch::Contains("X-Token: t-1") &&
                          Catch::Contains("application/json") && Catch::EndsWith(R"({"env":"prod"})"));
  CHECK(f.step(id, "down").state == RunState::failed);
  CHECK_THAT(f.step(id, "down").reason, Catch::Contains("answered 503"));
}

TEST_CASE("http client: query-only targets, any verb, HEAD without a body, and bad hosts named") {
  test::HttpServer server(200, "a body that HEAD must not wait for");
  const std::atomic<bool> no{false};
  automation::detail::HttpCall call;
  call.url = "http://127.0.0.1:" + std::to_string(server.port()) + "?x=1";
  REQUIRE(automation::detail::perform_http(call, no));
  call.method = "PURGE";
  REQUIRE(automation::detail::perform_http(call, no));
  call.method = "HEAD";
  auto head = automation::detail::perform_http(call, no);
  REQUIRE(head);
  CHECK(head->body.empty());
  const auto requests = server.requests();
  REQUIRE(requests.size() == 3);
  CHECK(requests[0].rfind("GET /?x=1 HTTP/1.1", 0) == 0);
  CHECK(requests[1].rfind("PURGE /?x=1 HTTP/1.1", 0) == 0);
  CHECK(requests[2].rfind("HEAD /?x=1 HTTP/1.1", 0) == 0);

  call.url = "http://[::1/x";
  CHECK_THAT(automation::detail::perform_http(call, no).error().message, Catch::Contains("unclosed '['"));
  call.url = "https://[::1]:0/x";
  CHECK_THAT(automation::detail::perform_http(call, no).error().message, Catch::Contains("bad port \"0\""));
  call.url = "http://:80/";
  CHECK_THAT(automation::detail::perform_http(call, no).error().message, Catch::Contains("has no host"));
}

TEST_CASE(
    "engine: a step's breaker opens after 5 failures in a row, then its attempts are not made until it half-opens, and it is shared "
    "through the store") {
  Fixture f;
  int calls = 0;
  bool down = true;
  f.engine->register_callback("upstream", [&](StepContext&) -> Result<void> {
    ++calls;
    if (down) return fail(errc::unavailable, "upstream is down");
    return {};
  });
  REQUIRE(
      f.engine->register_workflow(parse(R"json({"name":"pull","steps":[{"id":"get","callback":"upstream","breaker":"upstream"}]})json")));
  for (int i = 0; i < 5; ++i) CHECK(f.finish(*f.engine->start("pull")).state == RunState::failed);
  CHECK(calls == 5);
  // Open: the sixth run's attempt is not made, and says why.
  auto refused = f.finish(*f.engine->start("pull"));
  CHECK(refused.state == RunState::failed);
  CHECK(calls == 5);
  CHECK_THAT(f.step(refused.id, "get").reason, Catch::Contains("breaker upstream is open: the attempt was not made"));
  // Every process on the store sees it: the stored record is open.
  auto stored = f.store.get_breaker("upstream").value();
  REQUIRE(stored);
  CHECK(stored->state == "open");
  // After its open duration a probe goes through; two successes close it.
  down = false;
  f.clock.advance(61s);
  CHECK(f.finish(*f.engine->start("pull")).state == RunState::succeeded);
  CHECK(f.finish(*f.engine->start("pull")).state == RunState::succeeded);
  CHECK(calls == 7);
  CHECK(f.store.get_breaker("upstream").value()->state == "closed");
}

TEST_CASE("definition: a step's breaker is read, written back, and a bad name is refused with its path, parsed or built in C++") {
  auto w = parse(R"json({"name":"x","steps":[{"id":"a","run":["true"],"breaker":"payments:eu"}]})json");
  CHECK(w.steps[0].breaker == "payments:eu");
  auto again = parse_workflow(to_json(w));
  REQUIRE(again);
  CHECK(again->steps[0].breaker == "payments:eu");
  auto bad = parse_workflow(R"json({"name":"x","steps":[{"id":"a","run":["true"],"breaker":"no spaces"}]})json");
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message, Catch::Contains("$.steps[0].breaker"));
  w.steps[0].breaker = std::string(101, 'b');  // built in C++
  auto checked = validate(w);
  REQUIRE_FALSE(checked);
  CHECK_THAT(checked.error().message, Catch::Contains("$.steps[0].breaker"));
}

TEST_CASE("engine: a retry after a breaker's refusal waits until it may admit again, and a failure on the engine's side is not counted") {
  Fixture f;
  int calls = 0;
  f.engine->register_callback("down", [&](StepContext&) -> Result<void> {
    ++calls;
    return fail(errc::unavailable, "down");
  });
  // A callback nobody registered fails the step five times without touching the breaker.
  REQUIRE(f.engine->register_workflow(parse(R"json({"name":"typo","steps":[{"id":"s","callback":"dwon","breaker":"svc"}]})json")));
  for (int i = 0; i < 5; ++i) CHECK(f.finish(*f.engine->start("typo")).state == RunState::failed);
  REQUIRE(f.store.get_breaker("svc").value());
  CHECK(f.store.get_breaker("svc").value()->state == "closed");
  // Five real failures open it; a run with retries then waits for it rather than spending them.
  REQUIRE(f.engine->register_workflow(parse(R"json({"name":"pull","steps":[{"id":"s","callback":"down","breaker":"svc"}]})json")));
  for (int i = 0; i < 5; ++i) CHECK(f.finish(*f.engine->start("pull")).state == RunState::failed);
  CHECK(f.store.get_breaker("svc").value()->state == "open");
  REQUIRE(f.engine->register_workflow(parse(
      R"json({"name":"patient","steps":[{"id":"s","callback":"down","breaker":"svc","retry":{"max_attempts":2,"initial_delay":"1s"}}]})json")));
  auto id = f.engine->start("patient");
  f.engine->poll();
  CHECK(calls == 5);  // refused, not called
  CHECK(f.step(*id, "s").state == RunState::queued);
  f.clock.advance(2s);  // past the policy's 1 s: still waiting for the breaker's 60 s
  f.engine->poll();
  CHECK(calls == 5);
  CHECK(f.step(*id, "s").state == RunState::queued);
  f.clock.advance(59s);  // half-open: the retry is the probe
  CHECK(f.finish(*id).state == RunState::failed);
  CHECK(calls == 6);
  CHECK(f.step(*id, "s").attempts == 2);
}
