// The advisor: suggestions mined from a seeded history (the expected sequences, habits and
// reliability findings, with their numbers), applying them to a workflows directory, and the
// insights on who, when and how much.
#include <automation/core/files.hpp>
#include <automation/core/json.hpp>
#include <automation/intelligence/advisor.hpp>
#include <automation/storage/memory_store.hpp>
#include <automation/testing/manual_clock.hpp>

#include "support/catch_result.hpp"
#include "support/temp_dir.hpp"
#include "support/workflow.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>

using namespace automation;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;
namespace bj = boost::json;
namespace st = automation::storage;

namespace {

void audit(st::Store& store, TimePoint t, std::string actor, std::string action, std::string resource) {
  st::AuditRecord a;
  a.time = t;
  a.actor = std::move(actor);
  a.action = std::move(action);
  a.resource = std::move(resource);
  a.origin = "test";
  REQUIRE(store.append_audit(std::span<const st::AuditRecord>(&a, 1)));
}

void task(st::Store& store, TimePoint t, std::string domain, std::string action) {
  st::TaskRecord r;
  r.domain = std::move(domain);
  r.action = std::move(action);
  r.started = t;
  r.ended = t + 1s;
  r.duration = 1s;
  REQUIRE(store.append_tasks(std::span<const st::TaskRecord>(&r, 1)));
}

const intelligence::Suggestion* find(const std::vector<intelligence::Suggestion>& v, std::string_view kind, std::string_view subject_part) {
  for (const auto& s : v)
    if (s.kind == kind && s.subject.find(subject_part) != std::string::npos) return &s;
  return nullptr;
}

// A finished run of `def` whose steps ended as given (state, seconds it took, reason).
struct StepEnd {
  std::string step;
  st::RunState state;
  double seconds;
  std::string reason;
};
void record_run(st::Store& store, const workflow::WorkflowDefinition& def, TimePoint t, std::vector<StepEnd> ends) {
  st::RunRecord run;
  run.workflow = def.name;
  run.definition = workflow::to_json(def);
  run.queued_at = run.started_at = t;
  run.ended_at = t + 1min;
  run.trigger = "schedule:test";
  const bool ok = std::all_of(ends.begin(), ends.end(), [](const StepEnd& e) { return e.state == st::RunState::succeeded; });
  run.state = ok ? st::RunState::succeeded : st::RunState::failed;
  std::vector<st::StepRecord> steps;
  for (const auto& e : ends) {
    st::StepRecord s;
    s.step = e.step;
    s.state = e.state;
    s.attempts = 1;
    s.started = t;
    s.ended = t + std::chrono::duration_cast<Duration>(std::chrono::duration<double>(e.seconds));
    s.reason = e.reason;
    steps.push_back(std::move(s));
  }
  REQUIRE(store.create_run(run, steps, nullptr));
}

}  // namespace

TEST_CASE(
    "advisor: a sequence done by hand every morning is suggested as a workflow with a daily schedule, and applying it creates both once") {
  st::MemoryStore store;
  testing::ManualClock clock;
  const TimePoint day0 = clock.now();  // 2026-01-01T00:00:00Z
  // alice, on four mornings at about 09:00: build, deploy, verify.
  for (int d = 0; d < 4; ++d) {
    const TimePoint t = day0 + std::chrono::hours(24 * d) + 9h + std::chrono::minutes(d * 5);
    audit(store, t, "user:alice", "workflow.run", "workflow:build");
    audit(store, t + 2min, "user:alice", "workflow.run", "workflow:deploy");
    audit(store, t + 4min, "user:alice", "workflow.run", "workflow:verify");
    audit(store, t + 3h, "user:alice", "workflow.run", "workflow:report");  // a later session, alone
  }
  // bob does things in no repeated order; the system's actions and token management never count.
  audit(store, day0 + 10h, "user:bob", "schedule.pause", "schedule:nightly");
  audit(store, day0 + 10h + 1min, "user:bob", "workflow.run", "workflow:build");
  audit(store, day0 + 34h, "user:bob", "breaker.reset", "breaker:payments");
  for (int i = 0; i < 5; ++i) {
    audit(store, day0 + std::chrono::hours(i), "system:scheduler", "workflow.run", "workflow:a");
    audit(store, day0 + std::chrono::hours(i) + 1min, "system:scheduler", "workflow.run", "workflow:b");
  }
  // The host's billing tasks: export then send, three evenings.
  for (int d = 0; d < 3; ++d) {
    task(store, day0 + std::chrono::hours(24 * d + 18), "billing", "export");
    task(store, day0 + std::chrono::hours(24 * d + 18) + 1min, "billing", "send");
  }
  clock.set(day0 + std::chrono::hours(24 * 5));

  std::vector<workflow::WorkflowDefinition> workflows{test::parse(R"({"name":"report","steps":[{"id":"make","run":["true"]}]})")};
  std::vector<workflow::ScheduleDefinition> schedules;
  auto got = intelligence::suggest(store, workflows, schedules, clock.now());
  REQUIRE(got);
  const auto* seq = find(*got, "automate", "workflow.run workflow:build > workflow.run workflow:deploy > workflow.run workflow:verify");
  REQUIRE(seq);
  CHECK(seq->evidence.at("occurrences") == bj::value(4));
  CHECK(seq->evidence.at("daily_at") == bj::value("09:05"));
  CHECK(seq->evidence.at("by").as_array() == bj::array{"user:alice"});
  CHECK_THAT(seq->explanation, Contains("4 times"));
  // Its parts are not suggested on their own: they only occur inside it.
  for (const auto& s : *got) CHECK(s.subject != "sequence:workflow.run workflow:build > workflow.run workflow:deploy");
  for (const auto& s : *got) CHECK(s.subject.find("workflow:a") == std::string::npos);  // the scheduler's runs
  const auto* billing = find(*got, "automate", "task billing/export > task billing/send");
  REQUIRE(billing);
  CHECK(billing->evidence.at("occurrences") == bj::value(3));
  // Its steps call callbacks the host has yet to register: no schedule until it has.
  CHECK(billing->evidence.at("daily_at") == bj::value("18:00"));
  CHECK_FALSE(billing->change.contains("create_schedule"));
  CHECK_THAT(billing->explanation, Contains("no schedule is added while it needs callbacks"));
  CHECK_THAT(billing->explanation, Contains("export, send"));
  // report: started by hand daily at 12:00-12:15, never scheduled.
  const auto* report = find(*got, "schedule", "workflow:report");
  REQUIRE(report);
  CHECK(report->evidence.at("daily_at") == bj::value("12:05"));
  // The same history gives the same ids.
  auto again = intelligence::suggest(store, workflows, schedules, clock.now());
  REQUIRE(again);
  REQUIRE(find(*again, "automate", "workflow:verify"));
  CHECK(find(*again, "automate", "workflow:verify")->id == seq->id);

  test::TempDir dir;
  auto applied = intelligence::apply(*seq, workflows, schedules, dir.path().string());
  REQUIRE(applied);
  REQUIRE(applied->workflow);
  const auto& w = *applied->workflow;
  CHECK(w.name == "auto-" + seq->id.substr(3));
  REQUIRE(w.steps.size() == 3);
  CHECK(w.steps[0].action.kind == workflow::StepKind::workflow);
  CHECK(w.steps[0].action.name == "build");
  CHECK(w.steps[1].action.kind == workflow::StepKind::workflow);
  CHECK(w.steps[1].action.name == "deploy");
  CHECK(w.steps[2].needs == std::vector<std::string>{"step2"});
  REQUIRE(applied->schedule);
  CHECK(applied->schedule->cron == "5 9 * * *");
  CHECK(applied->schedule->workflow == w.name);
  REQUIRE(applied->files.size() == 2);
  // What was written loads back as a workflow and a schedule file.
  auto loaded = workflow::load_workflow_file((dir.path() / (w.name + ".json")).string());
  REQUIRE(loaded);
  CHECK(loaded->steps.size() == 3);
  auto loaded_schedules = workflow::load_schedules_file((dir.path() / "schedules.json").string());
  REQUIRE(loaded_schedules);
  REQUIRE(loaded_schedules->size() == 1);

  // Once the workflow exists the sequence is no longer suggested; applying again is refused.
  workflows.push_back(w);
  schedules.push_back(*applied->schedule);
  auto after = intelligence::suggest(store, workflows, schedules, clock.now());
  REQUIRE(after);
  for (const auto& x : *after) CHECK(x.id != seq->id);
  auto twice = intelligence::apply(*seq, workflows, schedules, dir.path().string());
  REQUIRE_FALSE(twice);
  CHECK(twice.error().is(errc::already_exists));

  // Applying the schedule suggestion adds to schedules.json, keeping what is there.
  auto sched = intelligence::apply(*report, workflows, schedules, dir.path().string());
  REQUIRE(sched);
  CHECK(workflow::load_schedules_file((dir.path() / "schedules.json").string())->size() == 2);
}

TEST_CASE(
    "advisor: steps that fail and recover get retries, steps that time out get a longer timeout, long failure streaks get a breaker, "
    "each with its numbers") {
  st::MemoryStore store;
  testing::ManualClock clock;
  const TimePoint t0 = clock.now();
  auto sync = test::parse(
      R"({"name":"sync","steps":[{"id":"fetch","run":["true"]},{"id":"upload","run":["true"],"timeout":"10s","needs":["fetch"]}]})");
  auto pull = test::parse(R"({"name":"pull","steps":[{"id":"get","run":["true"]}]})");
  // sync: fetch fails every third run and the next run succeeds; upload times out in 3 of 10.
  for (int i = 0; i < 10; ++i) {
    const auto fetch = i % 3 == 1 ? StepEnd{"fetch", st::RunState::failed, 1, "exit 7: connection reset"}
                                  : StepEnd{"fetch", st::RunState::succeeded, 1, ""};
    const auto upload = i % 4 == 3 ? StepEnd{"upload", st::RunState::timed_out, 10, "timed out after 10s"}
                                   : StepEnd{"upload", st::RunState::succeeded, 6.0 + 0.25 * i, ""};
    record_run(store, sync, t0 + std::chrono::hours(i), {fetch, upload});
  }
  // pull: six failures in a row.
  for (int i = 0; i < 8; ++i)
    record_run(
        store, pull, t0 + std::chrono::hours(i),
        {i < 6 ? StepEnd{"get", st::RunState::failed, 1, "exit 1: 503 from upstream"} : StepEnd{"get", st::RunState::succeeded, 1, ""}});
  clock.set(t0 + 24h);
  std::vector<workflow::WorkflowDefinition> workflows{sync, pull};
  std::vector<workflow::ScheduleDefinition> schedules;
  auto got = intelligence::suggest(store, workflows, schedules, clock.now());
  REQUIRE(got);

  const auto* retry = find(*got, "retry", "workflow:sync/step:fetch");
  REQUIRE(retry);
  CHECK(retry->evidence.at("runs") == bj::value(10));
  CHECK(retry->evidence.at("failed") == bj::value(3));
  CHECK(retry->evidence.at("recovered_next_run") == bj::value(3));
  CHECK(retry->evidence.at("top_reason") == bj::value("exit 7: connection reset"));
  CHECK_THAT(retry->explanation, Contains("3 of its 10 runs"));
  const auto* timeout = find(*got, "timeout", "workflow:sync/step:upload");
  REQUIRE(timeout);
  CHECK(timeout->evidence.at("timed_out") == bj::value(2));
  // successes took up to 6 + 0.25 * 9 = 8.25 s: twice that is 16.5 s, above 1.5 x 10 s.
  CHECK(timeout->change.at("patch_step").as_object().at("set").as_object().at("timeout") == bj::value("17s"));
  const auto* breaker = find(*got, "breaker", "workflow:pull/step:get");
  REQUIRE(breaker);
  CHECK(breaker->evidence.at("longest_failure_streak") == bj::value(6));
  REQUIRE(breaker->applicable());
  CHECK_FALSE(find(*got, "retry", "workflow:pull"));  // retrying a dependency that is down only adds load

  test::TempDir dir;
  // The breaker goes on the step (pull is a built-in here: a file of its name takes its place).
  auto guarded = intelligence::apply(*breaker, workflows, schedules, dir.path().string());
  REQUIRE(guarded);
  REQUIRE(guarded->workflow);
  CHECK(guarded->workflow->step("get")->breaker == "pull.get");
  CHECK(workflow::load_workflow_file((dir.path() / "pull.json").string())->step("get")->breaker == "pull.get");
  std::filesystem::remove(dir.path() / "pull.json");  // the built-in case is told again below
  // Advice that changes nothing cannot be applied.
  intelligence::Suggestion advice = *breaker;
  advice.change = {};
  auto refused = intelligence::apply(advice, workflows, schedules, dir.path().string());
  REQUIRE_FALSE(refused);
  CHECK(refused.error().is(errc::invalid_argument));
  // sync comes from a file: applying the retry rewrites that file's step, keeping the rest.
  const std::string file = (dir.path() / "sync-workflow.json").string();
  REQUIRE(write_file_atomically(
      file,
      R"({"name":"sync","description":"kept","steps":[{"id":"fetch","run":["true"]},{"id":"upload","run":["true"],"timeout":"10s","needs":["fetch"]}]})"));
  // Another file holding a workflow of that name (one the catalog did not load it from) is left alone.
  const std::string other = (dir.path() / "sync.json").string();
  REQUIRE(write_file_atomically(other, R"({"name":"sync","steps":[{"id":"fetch","run":["false"]}]})"));
  const std::map<std::string, std::string> sources{{"sync", file}};
  auto applied = intelligence::apply(*retry, workflows, schedules, dir.path().string(), sources);
  REQUIRE(applied);
  REQUIRE(applied->files == std::vector<std::string>{file});
  CHECK_FALSE(workflow::load_workflow_file(other)->step("fetch")->retry);
  auto patched = workflow::load_workflow_file(file);
  REQUIRE(patched);
  CHECK(patched->description == "kept");
  REQUIRE(patched->step("fetch")->retry);
  CHECK(patched->step("fetch")->retry->max_attempts == 3);
  auto t2 = intelligence::apply(*timeout, workflows, schedules, dir.path().string(), sources);
  REQUIRE(t2);
  CHECK(t2->files == std::vector<std::string>{file});
  patched = workflow::load_workflow_file(file);
  REQUIRE(patched);
  CHECK(patched->step("upload")->timeout == std::chrono::seconds(17));
  CHECK(patched->step("fetch")->retry);
  // With the new settings, the old runs no longer count: nothing more is suggested for those steps.
  workflows[0] = *patched;
  auto after = intelligence::suggest(store, workflows, schedules, clock.now());
  REQUIRE(after);
  CHECK_FALSE(find(*after, "retry", "workflow:sync/step:fetch"));
  CHECK_FALSE(find(*after, "timeout", "workflow:sync/step:upload"));

  // A workflow with no file (a built-in): the change goes to a file of its name, which takes its place.
  st::MemoryStore store2;
  for (int i = 0; i < 10; ++i)
    record_run(store2, pull, t0 + std::chrono::hours(i),
               {i % 2 ? StepEnd{"get", st::RunState::failed, 1, "flaky"} : StepEnd{"get", st::RunState::succeeded, 1, ""}});
  auto flaky = intelligence::suggest(store2, workflows, schedules, clock.now());
  REQUIRE(flaky);
  const auto* pull_retry = find(*flaky, "retry", "workflow:pull/step:get");
  REQUIRE(pull_retry);
  auto built_in = intelligence::apply(*pull_retry, workflows, schedules, dir.path().string());
  REQUIRE(built_in);
  REQUIRE(built_in->files == std::vector<std::string>{(dir.path() / "pull.json").string()});
  CHECK(workflow::load_workflow_file((dir.path() / "pull.json").string())->step("get")->retry->max_attempts == 3);
}

TEST_CASE("advisor: insights name the power users, the busy hour and day, the failing workflows and forecast the hourly load") {
  st::MemoryStore store;
  testing::ManualClock clock;
  const TimePoint day0 = clock.now();  // a Thursday
  // Two weeks of tasks: 1 an hour, 10 at 14:00.
  for (int h = 0; h < 24 * 14; ++h) {
    const int n = h % 24 == 14 ? 10 : 1;
    for (int k = 0; k < n; ++k) task(store, day0 + std::chrono::hours(h) + std::chrono::minutes(k), "api", "call");
  }
  for (int i = 0; i < 6; ++i) audit(store, day0 + std::chrono::hours(i), "user:alice", "workflow.run", "workflow:x");
  audit(store, day0, "user:bob", "breaker.reset", "breaker:y");
  auto sync = test::parse(R"({"name":"sync","steps":[{"id":"fetch","run":["true"]}]})");
  for (int i = 0; i < 6; ++i)
    record_run(store, sync, day0 + std::chrono::hours(i),
               {StepEnd{"fetch", i < 3 ? st::RunState::failed : st::RunState::succeeded, 1, "x"}});
  clock.set(day0 + std::chrono::hours(24 * 14));
  auto got = intelligence::insights(store, clock.now());
  REQUIRE(got);
  auto find_kind = [&](std::string_view kind) -> const intelligence::Insight* {
    for (const auto& i : *got)
      if (i.kind == kind) return &i;
    return nullptr;
  };
  const auto* power = find_kind("power_user");
  REQUIRE(power);
  CHECK(power->detail.at("actor") == bj::value("user:alice"));
  CHECK(power->detail.at("actions") == bj::value(6));
  const auto* hour = find_kind("busy_hour");
  REQUIRE(hour);
  CHECK(hour->detail.at("hour") == bj::value(14));
  REQUIRE(find_kind("busy_day"));
  const auto* failing = find_kind("failing_workflow");
  REQUIRE(failing);
  CHECK(failing->detail.at("workflow") == bj::value("sync"));
  CHECK(failing->detail.at("failed") == bj::value(3));
  const auto* load = find_kind("load_forecast");
  REQUIRE(load);
  CHECK(load->detail.at("period") == bj::value(24));
  CHECK(load->detail.at("hourly").as_array().size() == 24);
  // The forecast's peak is at 14:00.
  CHECK_THAT(std::string(load->detail.at("peak").as_object().at("hour").as_string()), Contains("T14:00:00"));
  CHECK(load->detail.at("peak").as_object().at("value").as_double() > 5.0);
}
