// Alert rules on the manual clock: conditions (AND/OR, durations, labels, staleness), the alert
// lifecycle (fire, dedup, cooldown, flapping, resolved notice), escalation and acknowledgement,
// events, and the collector that stores the samples they read.
#include <automation/core/json.hpp>
#include <automation/core/time.hpp>
#include <automation/metrics/alerts.hpp>
#include <automation/metrics/collector.hpp>
#include <automation/storage/memory_store.hpp>
#include <automation/testing/manual_clock.hpp>
#include <automation/workflow/engine.hpp>
#include <automation/workflow/scheduler.hpp>

#include "support/http_server.hpp"
#include "support/smtp_server.hpp"
#include "support/temp_dir.hpp"
#include "support/workflow.hpp"

#include <catch2/catch.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

#include <filesystem>

using namespace automation;
using namespace automation::metrics;
using namespace std::chrono;
namespace fs = std::filesystem;

namespace {

Series series(std::string name, std::string labels, TimePoint start, Duration step, std::vector<double> values) {
  Series s{std::move(name), std::move(labels), {}};
  for (std::size_t i = 0; i < values.size(); ++i) s.points.emplace_back(start + step * static_cast<int>(i), values[i]);
  return s;
}

std::vector<std::string> whats(const std::vector<AlertChange>& changes) {
  std::vector<std::string> out;
  for (const auto& c : changes) out.push_back(c.what);
  return out;
}

bool has(const std::vector<AlertChange>& changes, std::string_view what) {
  return std::any_of(changes.begin(), changes.end(), [&](const AlertChange& c) { return c.what == what; });
}

struct Fixture {
  testing::ManualClock clock;
  storage::MemoryStore store;

  void point(std::string name, double v, std::string labels = {}) {
    storage::MetricPoint p{std::move(name), std::move(labels), clock.now(), v};
    REQUIRE(store.append_metric_points({&p, 1}));
  }
  // One sample every 30 s for `d`, the metric at `v`, evaluating after each.
  std::vector<AlertChange> run(AlertManager& m, std::string name, double v, Duration d, std::string labels = {}) {
    std::vector<AlertChange> all;
    for (Duration t{}; t < d; t += seconds(30)) {
      clock.advance(seconds(30));
      point(name, v, labels);
      auto ch = m.evaluate();
      REQUIRE(ch);
      all.insert(all.end(), ch->begin(), ch->end());
    }
    return all;
  }
};

AlertRule rule(std::string name, std::string when, std::vector<std::string> notify = {}) {
  AlertRule r;
  r.name = std::move(name);
  r.condition = Condition::parse(when).value();
  for (const auto& t : notify) r.notify.push_back(parse_target(t).value());
  return r;
}

}  // namespace

TEST_CASE("alerts: conditions parse with AND, OR, NOT, durations, selectors and percent signs", "[alerts]") {
  auto c = Condition::parse("cpu_usage > 80 for 5m");
  REQUIRE(c);
  CHECK(c->metrics() == std::vector<std::string>{"cpu_usage"});
  CHECK(c->lookback() == minutes(5));
  // The issue's spelling: "and for 5m" applies to the rest of the conjunction.
  auto same = Condition::parse("cpu_usage > 80% AND for 5m");
  REQUIRE(same);
  CHECK(same->lookback() == minutes(5));
  auto complex = Condition::parse("(cpu_usage > 90 or memory_usage >= 85.5) and not disk_usage{mount=\"/data\", kind=ssd} < 1e1 for 1m");
  REQUIRE(complex);
  CHECK(complex->metrics() == std::vector<std::string>{"cpu_usage", "disk_usage", "memory_usage"});
  CHECK(complex->lookback() == minutes(1));
  auto nested = Condition::parse("(cpu_usage > 80 for 5m) for 10m or load1 > 4");
  REQUIRE(nested);
  CHECK(nested->lookback() == minutes(15));

  struct Bad {
    const char* text;
    const char* says;
  };
  for (const auto& [text, says] :
       {Bad{"cpu_usage >", "at 12: expected a number"}, Bad{"for 5m", "a condition before \"for\""},
        Bad{"cpu_usage > 80 and for 5m and for 1m", "one \"for\" over a whole \"and\""}, Bad{"cpu_usage > high", "expected a number"},
        Bad{"(cpu_usage > 1", "expected \")\""}, Bad{"cpu_usage = 1", "a comparison"}, Bad{"and > 1", "a metric name"},
        Bad{"cpu_usage > 80 for soon", "a duration after \"for\""}, Bad{"cpu_usage > 80 80", "\"and\", \"or\""},
        Bad{"disk_usage{mount=} > 1", "a label value"}, Bad{"cpu_usage > 80 for 0s", "longer than 0"}}) {
    INFO(text);
    auto r = Condition::parse(text);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == errc::invalid_argument);
    CHECK_THAT(r.error().message, Catch::Contains(says));
  }
}

TEST_CASE("alerts: a trailing for covers its whole and, a for before an and covers its term", "[alerts]") {
  const auto t0 = testing::ManualClock::default_start();
  // queue high for ten minutes, nothing running only in the last sample.
  std::vector<double> running(21, 2.0);
  running.back() = 0;
  const std::vector<Series> s{series("queue", "", t0, seconds(30), std::vector<double>(21, 9.0)),
                              series("running", "", t0, seconds(30), running)};
  const auto at = t0 + minutes(10);
  // "A and B for 5m": the pair for five minutes (B only just began): no.
  CHECK_FALSE(evaluate(Condition::parse("queue > 5 and running == 0 for 5m").value(), s, at, minutes(5))[0].holds);
  CHECK(Condition::parse("queue > 5 and running == 0 for 5m").value().lookback() == minutes(5));
  // "A for 5m and B": A for five minutes, and B now: yes.
  CHECK(evaluate(Condition::parse("queue > 5 for 5m and running == 0").value(), s, at, minutes(5))[0].holds);
  // Two whole-chain durations are refused.
  auto twice = Condition::parse("queue > 5 and for 5m and running == 0 for 1m");
  REQUIRE_FALSE(twice);
  CHECK_THAT(twice.error().message, Catch::Contains("one \"for\" over a whole \"and\""));
  CHECK_FALSE(Condition::parse("disk_usage{mount=a,mount=b} > 1"));
  CHECK_FALSE(Condition::parse("disk_usage{mount=\"a,b\"} > 1"));
  CHECK_FALSE(Condition::parse(std::string_view("cpu_usage >+5").substr(0, 11)));  // ends at the operator
}

TEST_CASE("alerts: missing data is unknown, so not over it does not hold, and a gap breaks a duration", "[alerts]") {
  const auto t0 = testing::ManualClock::default_start();
  CHECK_FALSE(evaluate(Condition::parse("not up == 1").value(), {}, t0, minutes(5))[0].holds);
  const std::vector<Series> up{series("up", "", t0, seconds(30), {0, 0})};
  CHECK(evaluate(Condition::parse("not up == 1").value(), up, t0 + seconds(30), minutes(5))[0].holds);
  CHECK(evaluate(Condition::parse("up == 1 or not up == 1").value(), up, t0 + seconds(30), minutes(5))[0].holds);
  // Samples nine minutes apart with a staleness of five: never five minutes without a gap.
  const std::vector<Series> sparse{series("x", "", t0, minutes(9), {5, 5, 5})};
  CHECK_FALSE(evaluate(Condition::parse("x > 1 for 5m").value(), sparse, t0 + minutes(18), minutes(5))[0].holds);
  // Every 30 s: it holds.
  const std::vector<Series> dense{series("x", "", t0, seconds(30), std::vector<double>(37, 5.0))};
  CHECK(evaluate(Condition::parse("x > 1 for 5m").value(), dense, t0 + minutes(18), minutes(5))[0].holds);
}

TEST_CASE("alerts: a duration holds once every sample of the window held, and a break restarts it", "[alerts]") {
  const auto t0 = testing::ManualClock::default_start();
  const auto c = Condition::parse("cpu_usage > 80 for 5m").value();
  // Samples every 30 s: 50 for the first minute, then 90.
  std::vector<double> v(2, 50.0);
  v.resize(30, 90.0);
  const std::vector<Series> s{series("cpu_usage", "", t0, seconds(30), v)};
  // High since t0+1m: at t0+5m30s it has held 4.5 minutes, at t0+6m five.
  auto before = evaluate(c, s, t0 + seconds(330), minutes(5));
  REQUIRE(before.size() == 1);
  CHECK_FALSE(before[0].holds);
  auto at = evaluate(c, s, t0 + minutes(6), minutes(5));
  REQUIRE(at.size() == 1);
  CHECK(at[0].holds);
  CHECK(at[0].active_since == t0 + minutes(1));
  CHECK(at[0].values.at("cpu_usage").to_number<double>() == 90);
  CHECK_THAT(at[0].summary, Catch::Contains("cpu_usage = 90 since 2026-01-01T00:01:00Z"));

  // One low sample at t0+4m breaks the run: the window starts again at t0+4m30s.
  auto broken = v;
  broken[8] = 10;
  const std::vector<Series> b{series("cpu_usage", "", t0, seconds(30), broken)};
  CHECK_FALSE(evaluate(c, b, t0 + minutes(9), minutes(5))[0].holds);
  CHECK(evaluate(c, b, t0 + seconds(570), minutes(5))[0].holds);

  // Without a fresh sample (older than the staleness) nothing holds and the state says why.
  auto stale = evaluate(c, s, t0 + minutes(19) + seconds(31), minutes(5));
  CHECK_FALSE(stale[0].holds);
  CHECK(stale[0].stale);
  CHECK_THAT(stale[0].summary, Catch::Contains("no data since 2026-01-01T00:14:30Z"));
}

TEST_CASE("alerts: labelled series are separate instances and unlabelled ones apply to each", "[alerts]") {
  const auto t0 = testing::ManualClock::default_start();
  const std::vector<Series> s{series("disk_usage", "mount=/", t0, seconds(30), {50, 50}),
                              series("disk_usage", "mount=/data", t0, seconds(30), {95, 96}),
                              series("cpu_usage", "", t0, seconds(30), {85, 85})};
  auto disk = evaluate(Condition::parse("disk_usage > 90").value(), s, t0 + seconds(30), minutes(5));
  REQUIRE(disk.size() == 2);
  CHECK(disk[0].labels == "mount=/");
  CHECK_FALSE(disk[0].holds);
  CHECK(disk[1].labels == "mount=/data");
  CHECK(disk[1].holds);
  CHECK(disk[1].values.at("disk_usage").to_number<double>() == 96);

  auto both = evaluate(Condition::parse("disk_usage > 90 and cpu_usage > 80").value(), s, t0 + seconds(30), minutes(5));
  REQUIRE(both.size() == 2);
  CHECK_FALSE(both[0].holds);
  CHECK(both[1].holds);
  CHECK(both[1].values.at("cpu_usage").to_number<double>() == 85);

  auto either = evaluate(Condition::parse("disk_usage > 99 or cpu_usage > 80").value(), s, t0 + seconds(30), minutes(5));
  CHECK((either[0].holds && either[1].holds));

  auto selected = evaluate(Condition::parse("disk_usage{mount=/} > 40 and not cpu_usage < 80").value(), s, t0 + seconds(30), minutes(5));
  REQUIRE(selected.size() == 1);
  CHECK(selected[0].labels == "mount=/");
  CHECK(selected[0].holds);

  // No series at all: one unlabelled instance, stale.
  auto none = evaluate(Condition::parse("queue_depth > 5").value(), {}, t0, minutes(5));
  REQUIRE(none.size() == 1);
  CHECK(none[0].stale);
  CHECK_FALSE(none[0].holds);
}

TEST_CASE("alerts: rules files are checked, with every problem named", "[alerts]") {
  auto good = parse_alert_rules(R"({"channels": {"ops": "webhook:https://hooks.example/T1/secret", "oncall": "email:oncall@example.com"},
    "rules": [{"name": "high-cpu", "when": "cpu_usage > 80 for 5m", "severity": "critical", "cooldown": "10m",
               "notify": ["ops", "file:/tmp/alerts/"], "event": "cpu.high",
               "escalate": [{"after": "15m", "notify": ["oncall"]}, {"after": "1h", "notify": ["email:cto@example.com"]}]}]})",
                                "alerts.json");
  REQUIRE(good);
  REQUIRE(good->rules.size() == 1);
  const auto& r = good->rules[0];
  CHECK(r.severity == Severity::critical);
  CHECK(r.cooldown == minutes(10));
  REQUIRE(r.notify.size() == 2);
  CHECK(r.notify[0].kind == TargetKind::webhook);
  CHECK(r.notify[1].kind == TargetKind::file);
  REQUIRE(r.escalate.size() == 2);
  CHECK(r.escalate[0].after == minutes(15));
  CHECK(r.escalate[1].targets[0].destination == "cto@example.com");
  CHECK(r.event == "cpu.high");

  auto bad = parse_alert_rules(R"({"channels": {"x": "ftp://nope"}, "extra": 1,
    "rules": [{"name": "a b", "when": "cpu >"}, {"name": "dup", "when": "x > 1", "severity": "loud"},
              {"name": "dup", "when": "x > 1", "notify": ["nobody"], "escalate": [{"after": "0s", "notify": []}], "colour": "red"}]})",
                               "alerts.json");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == errc::config);
  const auto& m = bad.error().message;
  for (const char* says :
       {"alerts.json: channels.x: delivery target", "unknown key \"extra\"", "rules[0]: name: expected letters",
        "rules[0]: when: condition", "rules[1] (dup): severity \"loud\"", "rules[2] (dup): a rule with this name exists already",
        "\"nobody\" is neither a channel nor a target", "escalate[0]: after: expected a duration longer than 0",
        "escalate[0]: notify: expected at least one target", "rules[2] (dup): unknown key \"colour\""}) {
    INFO(says);
    CHECK_THAT(m, Catch::Contains(says));
  }
  CHECK_FALSE(parse_alert_rules("[]", "x.json"));
  CHECK_FALSE(parse_alert_rules("{", "x.json"));

  const auto seed = default_alert_rules();
  REQUIRE(seed.rules.size() == 3);
  CHECK(seed.rules[0].condition.text() == "cpu_usage > 80 for 5m");
  CHECK(seed.rules[1].condition.text() == "memory_usage > 85 for 5m");
  CHECK(seed.rules[2].condition.text() == "disk_usage > 90 for 1m");
  CHECK(seed.rules[2].severity == Severity::critical);
  CHECK(default_alert_rules(70.5).rules[0].condition.text() == "cpu_usage > 70.5 for 5m");
}

TEST_CASE("alerts: an alert fires once, notifies, emits events and sends a resolved notice", "[alerts]") {
  Fixture fx;
  test::HttpServer hook(200, "ok");
  AlertOptions o;
  auto r = rule("high-cpu", "cpu_usage > 80 for 5m", {"webhook:" + hook.url() + "/hook/SECRET"});
  r.event = "cpu.high";
  o.rules.rules.push_back(r);
  AlertManager m(fx.store, fx.clock, o);

  // Samples from t0+30s on: at t0+5m it has held four and a half minutes, pending, nothing fires.
  auto early = fx.run(m, "cpu_usage", 95, seconds(300));
  CHECK(early.empty());
  CHECK(hook.bodies().empty());
  // At five minutes it fires, is notified and emits its events.
  auto fired = fx.run(m, "cpu_usage", 95, seconds(30));
  CHECK(whats(fired) == std::vector<std::string>{"fired", "notified", "emitted", "emitted"});
  auto firing = fx.store.list_alerts({.state = std::string("firing")}).value();
  REQUIRE(firing.size() == 1);
  const auto id = firing[0].id;
  CHECK(firing[0].rule == "high-cpu");
  CHECK(firing[0].severity == "warning");
  CHECK(firing[0].level == 1);
  CHECK(firing[0].notified_state == "firing");
  CHECK(firing[0].active_since == testing::ManualClock::default_start() + seconds(30));
  CHECK_THAT(firing[0].reason, Catch::Contains("cpu_usage > 80 for 5m: cpu_usage = 95"));
  REQUIRE(hook.bodies().size() == 1);
  const auto body = json::parse(hook.bodies()[0]).value().as_object();
  CHECK_THAT(std::string(body.at("text").as_string()), Catch::Contains("*FIRING* high-cpu (warning)"));
  CHECK_THAT(std::string(body.at("text").as_string()), Catch::Contains(fmt::format("autoctl alerts ack {}", id)));
  auto events = fx.store.list_events({}).value();
  REQUIRE(events.size() == 2);
  CHECK(events[0].name == "alert.firing");
  CHECK(events[1].name == "cpu.high");
  CHECK(events[0].source == "alerts");
  const auto payload = json::parse(events[0].payload).value().as_object();
  CHECK(payload.at("rule").as_string() == "high-cpu");
  CHECK(payload.at("alert").to_number<std::int64_t>() == id);
  // Still high: the same alert (deduplicated), nothing sent again.
  auto still = fx.run(m, "cpu_usage", 97, minutes(10));
  CHECK(still.empty());
  CHECK(fx.store.list_alerts({}).value().size() == 1);
  CHECK(hook.bodies().size() == 1);
  CHECK_THAT(fx.store.get_alert(id).value()->summary, Catch::Contains("cpu_usage = 97"));

  // It clears: resolved, and (the cooldown long over) the resolution is notified at once.
  auto cleared = fx.run(m, "cpu_usage", 20, seconds(30));
  CHECK(whats(cleared) == std::vector<std::string>{"resolved", "notified", "emitted"});
  const auto a = fx.store.get_alert(id).value().value();
  CHECK(a.state == "resolved");
  CHECK(a.notified_state == "resolved");
  CHECK_THAT(a.reason, Catch::Contains("cleared: cpu_usage > 80 for 5m: cpu_usage = 20"));
  REQUIRE(hook.bodies().size() == 2);
  CHECK_THAT(hook.bodies()[1], Catch::Contains("*RESOLVED* high-cpu"));
  CHECK(fx.store.list_events({}).value().back().name == "alert.resolved");
  // The secret in the webhook's path stays out of what is recorded.
  for (const auto& t : fx.store.query_tasks({.domain = std::string("alerts"), .limit = 0}).value()) {
    CHECK(t.params.find("SECRET") == std::string::npos);
    CHECK(t.error.find("SECRET") == std::string::npos);
  }
  CHECK(fx.store.query_tasks({.domain = std::string("alerts"), .action = std::string("fire")}).value().size() == 1);
  CHECK(fx.store.query_tasks({.domain = std::string("alerts"), .action = std::string("deliver.webhook")}).value().size() == 2);
}

TEST_CASE("alerts: a firing alert starts a workflow through an event schedule (high CPU scales a service)", "[alerts]") {
  Fixture fx;
  workflow::WorkflowEngine engine(fx.store, fx.clock);
  std::vector<std::string> payloads;
  engine.register_callback("scale", [&payloads](workflow::StepContext& c) -> Result<void> {
    payloads.push_back(c.params.at("payload"));
    return {};
  });
  REQUIRE(engine.register_workflow(
      test::parse(R"({"name":"scale-web","params":{"payload":{"default":"{}"}},"steps":[{"id":"up","callback":"scale"}]})")));
  workflow::Scheduler scheduler(engine);
  workflow::ScheduleDefinition on_cpu;
  on_cpu.name = "scale-on-cpu";
  on_cpu.workflow = "scale-web";
  on_cpu.event = "alert.firing";
  on_cpu.event_filter = {{"rule", "high-cpu"}};
  REQUIRE(scheduler.add(on_cpu));

  AlertOptions o;
  o.rules = default_alert_rules();
  o.emit = [&scheduler](std::string name, const boost::json::object& payload) {
    return scheduler.emit(std::move(name), payload, "alerts");
  };
  AlertManager m(fx.store, fx.clock, o);
  fx.run(m, "memory_usage", 99, minutes(6));  // high-memory fires: no workflow
  scheduler.poll();
  CHECK(payloads.empty());
  fx.run(m, "cpu_usage", 99, minutes(6));
  scheduler.poll();
  scheduler.poll();
  REQUIRE(payloads.size() == 1);
  const auto payload = json::parse(payloads[0]).value().as_object();
  CHECK(payload.at("rule").as_string() == "high-cpu");
  CHECK(payload.at("state").as_string() == "firing");
  CHECK(payload.at("values").at("cpu_usage").to_number<double>() == 99);
  auto runs = fx.store.list_runs({.workflow = std::string("scale-web")}).value();
  REQUIRE(runs.size() == 1);
  CHECK(runs[0].trigger == "schedule:scale-on-cpu");
  CHECK(runs[0].state == storage::RunState::succeeded);
}

TEST_CASE("alerts: a flapping condition folds into one alert and the cooldown holds its resolution", "[alerts]") {
  Fixture fx;
  test::HttpServer hook(200, "ok");
  AlertOptions o;
  auto r = rule("queue", "workflow_queue_depth > 5", {"webhook:" + hook.url()});
  r.cooldown = minutes(5);
  o.rules.rules.push_back(r);
  AlertManager m(fx.store, fx.clock, o);

  CHECK(whats(fx.run(m, "workflow_queue_depth", 9, seconds(30))) == std::vector<std::string>{"fired", "notified", "emitted"});
  const auto id = fx.store.list_alerts({}).value().at(0).id;
  // Clears a minute later: resolved, but the notice waits for the cooldown.
  fx.run(m, "workflow_queue_depth", 9, seconds(30));
  auto cleared = fx.run(m, "workflow_queue_depth", 1, seconds(30));
  CHECK(whats(cleared) == std::vector<std::string>{"resolved", "notice-held"});
  CHECK_THAT(cleared[1].detail, Catch::Contains("until 2026-01-01T00:05:30Z"));
  // Back up before the cooldown ends: the same alert fires again, and nobody heard it had cleared.
  auto again = fx.run(m, "workflow_queue_depth", 8, seconds(30));
  CHECK(whats(again) == std::vector<std::string>{"reopened"});
  auto a = fx.store.get_alert(id).value().value();
  CHECK(a.state == "firing");
  CHECK(a.reopened == 1);
  CHECK(a.resolved == TimePoint{});
  CHECK(fx.store.list_alerts({}).value().size() == 1);
  // Clears for good: the resolution goes out when the cooldown ends, once.
  std::vector<AlertChange> later = fx.run(m, "workflow_queue_depth", 0, minutes(6));
  CHECK(std::count_if(later.begin(), later.end(), [](const AlertChange& c) { return c.what == "notified"; }) == 1);
  a = fx.store.get_alert(id).value().value();
  CHECK(a.notified_state == "resolved");
  CHECK(a.notified == testing::ManualClock::default_start() + seconds(330));
  REQUIRE(hook.bodies().size() == 2);

  // A new episode after the resolution was announced is a new alert, announced at once: a firing
  // is never held, so no episode goes unnoticed.
  auto next = fx.run(m, "workflow_queue_depth", 7, seconds(30));
  CHECK(whats(next) == std::vector<std::string>{"fired", "notified", "emitted"});
  auto newest = fx.store.list_alerts({.limit = 1}).value().at(0);
  CHECK(newest.id != id);
  CHECK(newest.notified_state == "firing");
  CHECK(hook.bodies().size() == 3);
}

TEST_CASE("alerts: unacknowledged alerts escalate by email, and an acknowledgement stops that", "[alerts]") {
  Fixture fx;
  test::HttpServer hook(200, "ok");
  test::SmtpServer smtp;
  AlertOptions o;
  auto r = rule("disk-full", "disk_usage > 90", {"webhook:" + hook.url()});
  r.severity = Severity::critical;
  r.escalate.push_back({minutes(10), {parse_target("email:oncall@example.com").value()}});
  r.escalate.push_back({minutes(30), {parse_target("email:cto@example.com").value()}});
  o.rules.rules.push_back(r);
  o.delivery.smtp.host = "127.0.0.1";
  o.delivery.smtp.port = smtp.port();
  AlertManager m(fx.store, fx.clock, o);

  auto first = fx.run(m, "disk_usage", 95, seconds(30), "mount=/data");
  CHECK(whats(first) == std::vector<std::string>{"fired", "notified", "emitted"});
  auto second = fx.run(m, "disk_usage", 95, seconds(30), "mount=/srv");
  CHECK(has(second, "fired"));
  auto alerts = fx.store.list_alerts({.newest_first = false}).value();
  REQUIRE(alerts.size() == 2);
  CHECK(alerts[0].labels == "mount=/data");
  CHECK(alerts[1].labels == "mount=/srv");
  // Acknowledge the second one.
  auto acked = m.acknowledge(alerts[1].id, "user:alice", "looking at it");
  REQUIRE(acked);
  CHECK(acked->acknowledged_by == "user:alice");
  CHECK(m.acknowledge(alerts[1].id, "user:bob", "me too").value().acknowledged_by == "user:alice");  // once
  CHECK(m.acknowledge(999, "user:alice", "").error().code == errc::not_found);
  auto audit = fx.store.query_audit({.action = std::string("alert.ack")}).value();
  REQUIRE(audit.size() == 1);
  CHECK(audit[0].actor == "user:alice");
  CHECK(audit[0].resource == fmt::format("alert:{}", alerts[1].id));
  CHECK(audit[0].reason == "looking at it");

  // Ten minutes after the first fired, it escalates to the on-call mailbox; the acknowledged one does not.
  std::vector<AlertChange> all;
  for (int i = 0; i < 20; ++i) {
    fx.clock.advance(seconds(30));
    fx.point("disk_usage", 95, "mount=/data");
    fx.point("disk_usage", 95, "mount=/srv");
    auto ch = m.evaluate().value();
    all.insert(all.end(), ch.begin(), ch.end());
  }
  REQUIRE(std::count_if(all.begin(), all.end(), [](const AlertChange& c) { return c.what == "escalated"; }) == 1);
  const auto esc = *std::find_if(all.begin(), all.end(), [](const AlertChange& c) { return c.what == "escalated"; });
  CHECK(esc.alert == alerts[0].id);
  CHECK_THAT(esc.detail, Catch::Contains("level 2: alert"));
  CHECK_THAT(esc.detail, Catch::Contains("not acknowledged 10m after it fired"));
  auto mails = smtp.mails();
  REQUIRE(mails.size() == 1);
  CHECK(mails[0].to == std::vector<std::string>{"oncall@example.com"});
  CHECK_THAT(mails[0].data, Catch::Contains("Subject: [FIRING critical] disk-full {mount=/data} (escalated, level 2)"));
  CHECK(fx.store.get_alert(alerts[0].id).value()->level == 2);
  CHECK(fx.store.get_alert(alerts[1].id).value()->level == 1);

  // Acknowledged now: no third level at 30 minutes.
  REQUIRE(m.acknowledge(alerts[0].id, "user:bob", ""));
  fx.run(m, "disk_usage", 95, minutes(25), "mount=/data");
  CHECK(smtp.mails().size() == 1);
  // Its resolution reaches both levels that heard of it: the webhook and the on-call mailbox.
  auto resolved = fx.run(m, "disk_usage", 50, seconds(30), "mount=/data");
  CHECK(has(resolved, "resolved"));
  REQUIRE(smtp.mails().size() == 2);
  CHECK_THAT(smtp.mails()[1].data, Catch::Contains("Subject: [RESOLVED] disk-full {mount=/data}"));
  // Two firings, the resolution of /srv (no samples for it since the acknowledgement: no data) and of /data.
  REQUIRE(hook.bodies().size() == 4);
  CHECK_THAT(hook.bodies()[2], Catch::Contains("*RESOLVED* disk-full {mount=/srv}"));
}

TEST_CASE("alerts: a failed notice is kept and retried by a later evaluation", "[alerts]") {
  Fixture fx;
  int calls = 0;
  test::HttpServer hook([&calls](const std::string&) { return test::HttpReply{++calls == 1 ? 503 : 200, "x"}; });
  AlertOptions o;
  o.rules.rules.push_back(rule("high-load", "load1 > 4", {"webhook:" + hook.url()}));
  AlertManager m(fx.store, fx.clock, o);
  auto first = fx.run(m, "load1", 8, seconds(30));
  CHECK(has(first, "notified"));
  auto pending = fx.store.list_deliveries({.state = std::string("pending")}).value();
  REQUIRE(pending.size() == 1);
  CHECK(pending[0].subject.rfind("alert:", 0) == 0);
  // A report deliverer (the delivery-retry job, autoctl report retry) leaves alert notices to the
  // alert manager: its breaker and its task-history domain are the alerts' own.
  fx.clock.advance(minutes(2));
  ReportDeliverer reports(fx.store, fx.clock, {});
  CHECK(reports.retry_due().value().empty());
  CHECK(calls == 1);
  fx.clock.advance(-minutes(2));
  // The retry policy waits a minute; the next evaluations after that send it.
  fx.run(m, "load1", 8, minutes(2));
  CHECK(calls == 2);
  CHECK(fx.store.list_deliveries({.state = std::string("delivered")}).value().size() == 1);
}

TEST_CASE("alerts: instances that lose their series resolve, and stale data resolves saying since when", "[alerts]") {
  Fixture fx;
  AlertOptions o;
  o.staleness = minutes(2);
  o.rules.rules.push_back(rule("disk", "disk_usage > 90"));
  AlertManager m(fx.store, fx.clock, o);
  CHECK(whats(fx.run(m, "disk_usage", 99, seconds(30), "mount=/mnt")) == std::vector<std::string>{"fired", "notified", "emitted"});
  fx.clock.advance(minutes(3));
  auto ch = m.evaluate().value();
  REQUIRE(has(ch, "resolved"));
  CHECK_THAT(fx.store.list_alerts({}).value().at(0).reason, Catch::Contains("disk_usage > 90: no data for {mount=/mnt} in the last 2m"));

  // A rule with a duration still reads the last point, and says since when there is none fresh.
  Fixture later;
  AlertOptions lo;
  lo.staleness = minutes(2);
  lo.rules.rules.push_back(rule("disk-for", "disk_usage > 90 for 1m"));
  AlertManager lm(later.store, later.clock, lo);
  CHECK(has(later.run(lm, "disk_usage", 99, minutes(2), "mount=/mnt"), "fired"));
  later.clock.advance(seconds(150));
  REQUIRE(has(lm.evaluate().value(), "resolved"));
  CHECK_THAT(later.store.list_alerts({}).value().at(0).reason,
             Catch::Contains("disk_usage > 90 for 1m: no data since 2026-01-01T00:02:00Z"));
}

TEST_CASE("alerts: the collector stores system and application metrics with one time", "[alerts]") {
  testing::ManualClock clock;
  storage::MemoryStore store;
  const auto proc = fs::path(AUTOMATION_SOURCE_DIR) / "tests/unit/metrics/proc";
  CollectorOptions o;
  o.system_options.proc_root = (proc / "a").string();
  o.system_options.disk_usage = [](const Mount& mnt) -> Result<DiskUsage> {
    return DiskUsage{mnt.mount_point, mnt.device, mnt.fs_type, 100, 95, 5, 95.0};
  };
  o.sources.emplace_back("pool", [] {
    return Result<std::vector<MetricPoint>>(std::vector<MetricPoint>{{"db_pool_in_use", "pool=main", {}, 7}});
  });
  o.sources.emplace_back("broken", [] { return Result<std::vector<MetricPoint>>(fail(errc::unavailable, "pool stats refused")); });
  o.sources.emplace_back("bad", [] { return Result<std::vector<MetricPoint>>(std::vector<MetricPoint>{{"bad name", "", {}, 1}}); });
  storage::RunRecord run;
  run.workflow = "w";
  run.trigger = "manual";
  run.queued_at = clock.now();
  REQUIRE(store.create_run(run, {}, nullptr));
  MetricsCollector c(store, clock, o);
  CHECK(c.next_due() == clock.now());

  auto first = c.collect();
  REQUIRE(first);
  // The first reading measures CPU since boot: left out, and said so.
  CHECK(store.query_metric_points({.name = "cpu_usage"}).value().empty());
  CHECK(std::any_of(first->warnings.begin(), first->warnings.end(), [](const std::string& w) { return w.rfind("cpu_usage:", 0) == 0; }));
  CHECK(
      std::any_of(first->warnings.begin(), first->warnings.end(), [](const std::string& w) { return w == "broken: pool stats refused"; }));
  CHECK(std::any_of(first->warnings.begin(), first->warnings.end(), [](const std::string& w) { return w.rfind("bad: ", 0) == 0; }));
  CHECK(c.next_due() == clock.now() + seconds(30));
  auto queue = store.query_metric_points({.name = "workflow_queue_depth"}).value();
  REQUIRE(queue.size() == 1);
  CHECK(queue[0].value == 1);
  CHECK(queue[0].time == clock.now());
  CHECK(store.query_metric_points({.name = "workflows_running"}).value().at(0).value == 0);
  CHECK(store.query_metric_points({.name = "alerts_firing"}).value().at(0).value == 0);
  CHECK(store.query_metric_points({.name = "db_pool_in_use", .labels = std::string("pool=main")}).value().at(0).value == 7);
  CHECK(store.query_metric_points({.name = "memory_usage"}).value().size() == 1);
  auto disks = store.query_metric_points({.name = "disk_usage"}).value();
  REQUIRE_FALSE(disks.empty());
  CHECK(disks[0].labels.rfind("mount=", 0) == 0);

  // Primed with the captured files a, then sampled over b (10 s later): the CPU usage in between.
  test::TempDir dir;
  fs::copy(proc / "a", dir.path(), fs::copy_options::recursive);
  CollectorOptions primed_options = o;
  primed_options.system_options.proc_root = dir.path().string();
  MetricsCollector primed(store, clock, primed_options);
  REQUIRE(primed.prime());
  fs::copy(proc / "b", dir.path(), fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  clock.advance(seconds(10));
  auto second = primed.collect();
  REQUIRE(second);
  CHECK_FALSE(second->system->cpu_since_boot);
  auto cpu = store.query_metric_points({.name = "cpu_usage"}).value();
  REQUIRE(cpu.size() == 1);
  CHECK(cpu[0].value == Approx(second->system->cpu_usage));
  CHECK(cpu[0].time == clock.now());

  // The disk rule over those samples fires for every mount.
  AlertOptions ao;
  ao.rules = default_alert_rules();
  ao.rules.rules.back().condition = Condition::parse("disk_usage > 90").value();
  AlertManager alerts(store, clock, ao);
  auto changes = alerts.evaluate().value();
  CHECK(static_cast<std::size_t>(std::count_if(changes.begin(), changes.end(), [](const AlertChange& ch) { return ch.what == "fired"; })) ==
        disks.size());
}

TEST_CASE("alerts: an alert whose rule is no longer configured is resolved after a grace, telling its targets", "[alerts]") {
  Fixture fx;
  test::HttpServer hook(200, "ok");
  AlertOptions o;
  o.rules.rules.push_back(rule("old", "load1 > 1", {"webhook:" + hook.url()}));
  AlertManager m(fx.store, fx.clock, o);
  CHECK(has(fx.run(m, "load1", 5, seconds(30)), "fired"));
  const auto id = fx.store.list_alerts({}).value().at(0).id;

  // Another process with another rule set (the seed's) leaves it alone while it is kept up to date.
  AlertOptions other;
  other.rules = default_alert_rules();
  AlertManager elsewhere(fx.store, fx.clock, other);
  for (int i = 0; i < 130; ++i) {  // an hour and more, both evaluating every 30 s
    fx.clock.advance(seconds(30));
    fx.point("load1", 5);
    REQUIRE(m.evaluate());
    auto ch = elsewhere.evaluate().value();
    CHECK_FALSE(has(ch, "resolved"));
  }
  CHECK(fx.store.get_alert(id).value()->state == "firing");

  // Nobody evaluates "old" any more: an hour later the other process resolves it.
  fx.clock.advance(minutes(59));
  CHECK_FALSE(has(elsewhere.evaluate().value(), "resolved"));
  fx.clock.advance(minutes(2));
  auto ch = elsewhere.evaluate().value();
  CHECK(whats(ch) == std::vector<std::string>{"resolved", "notified", "emitted"});
  auto a = fx.store.get_alert(id).value().value();
  CHECK(a.state == "resolved");
  CHECK(a.notified_state == "resolved");
  CHECK_THAT(a.reason, Catch::Contains("rule old is no longer configured (not evaluated since"));
  REQUIRE(hook.bodies().size() == 2);  // its firing's webhook hears of the resolution
  CHECK_THAT(hook.bodies()[1], Catch::Contains("*RESOLVED* old"));
  CHECK(fx.store.list_events({}).value().back().name == "alert.resolved");
  CHECK(fx.store.list_alerts({.notice_owed = true}).value().empty());
}

TEST_CASE("alerts: rules a manager cannot serve are refused when it is made", "[alerts]") {
  Fixture fx;
  auto refused = [&](AlertOptions o, std::string_view says) {
    INFO(says);
    try {
      AlertManager m(fx.store, fx.clock, std::move(o));
      FAIL("accepted");
    } catch (const Exception& e) {
      CHECK(e.error().code == errc::invalid_argument);
      CHECK_THAT(std::string(e.what()), Catch::Contains(std::string(says)));
    }
  };
  AlertOptions twice;
  twice.rules.rules = {rule("a", "x > 1"), rule("a", "y > 1")};
  refused(twice, "alert rule a: defined twice");
  AlertOptions mail;
  mail.rules.rules = {rule("m", "x > 1", {"email:ops@example.com"})};
  refused(mail, "alert rule m: email target ops@example.com needs an SMTP server");
  AlertOptions empty;
  empty.rules.rules.emplace_back().name = "nothing";
  refused(empty, "alert rule nothing: no condition");
  AlertOptions bad_name;
  bad_name.rules.rules = {rule("has space", "x > 1")};
  refused(bad_name, "alert rule \"has space\"");
}
