// ResourceScaler over named resources on the manual clock: the pipeline (metrics from stored
// samples, HPA or steps, activation, fallback, cooldowns), history that survives a restart, dry
// runs, manual actions, policies changed at run time, predictive mode, and the record of each.
#include <automation/core/json.hpp>
#include <automation/forecast/forecaster.hpp>
#include <automation/scaling/resource_scaler.hpp>
#include <automation/storage/memory_store.hpp>
#include <automation/testing/manual_clock.hpp>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <cmath>

#include "support/catch_result.hpp"

using namespace automation;
using namespace automation::scaling;
using namespace std::chrono_literals;
namespace sd = automation::storage;

namespace {

/// A resource whose size is an int, counting the resizes asked of it.
struct Fake {
  int size = 1;
  int resizes = 0;
  int restarts = 0;
  std::string last_reason;
  bool fail = false;
  std::unique_ptr<Actuator> actuator() {
    Callbacks c;
    c.size = [this]() -> Result<int> { return size; };
    c.resize = [this](int n, const std::string& why) -> Result<void> {
      if (fail) return automation::fail(errc::unavailable, "the pool refused");
      size = n;
      ++resizes;
      last_reason = why;
      return {};
    };
    c.restart = [this](const std::string&) -> Result<void> {
      ++restarts;
      return {};
    };
    return std::make_unique<CallbackActuator>(std::move(c));
  }
};

struct Fixture {
  testing::ManualClock clock;
  sd::MemoryStore store;
  void sample(const std::string& name, double value, const std::string& labels = "") {
    sd::MetricPoint p{name, labels, clock.now(), value};
    REQUIRE(store.append_metric_points(std::span(&p, 1)));
  }
  void system(double cpu, double memory) {
    sample("cpu_usage", cpu);
    sample("memory_usage", memory);
  }
  std::vector<sd::ScalingRecord> history(const std::string& resource) {
    sd::ScalingQuery q;
    q.resource = resource;
    q.limit = 0;
    q.newest_first = false;
    auto r = store.list_scaling(q);
    REQUIRE(r);
    return *r;
  }
};

ResourceSpec steps_spec(std::string name = "web") {
  ResourceSpec s;
  s.name = std::move(name);
  s.policy.mode = PolicyMode::steps;  // the seeds' thresholds
  s.policy.max_replicas = 5;
  return s;
}

ResourceSpec queue_spec() {
  ResourceSpec s;
  s.name = "ai-workers";
  s.policy.mode = PolicyMode::hpa;
  s.policy.max_replicas = 20;
  s.policy.metrics = {MetricSpec{.name = "queue_depth", .kind = MetricKind::total, .target = 5}};
  s.cooldown_up = s.cooldown_down = 0s;
  return s;
}

}  // namespace

TEST_CASE("scaler: the seed thresholds scale up with the reason recorded, then the cooldown holds the next change", "[scaling][scaler]") {
  Fixture f;
  Fake web;
  ResourceScaler scaler(f.store, f.clock);
  REQUIRE(scaler.add(steps_spec(), web.actuator()));
  f.system(91, 40);
  auto r = scaler.evaluate("web");
  REQUIRE(r);
  CHECK(r->outcome == "applied");
  CHECK(r->reason == "StepUp");
  CHECK(r->current == 1);
  CHECK(r->desired == 2);
  CHECK_THAT(r->message, Catch::Contains("cpu_usage = 91"));
  CHECK(web.size == 2);
  CHECK_THAT(web.last_reason, Catch::Contains("StepUp"));
  // The inputs say what it read.
  auto inputs = json::parse(r->inputs);
  REQUIRE(inputs);
  CHECK(inputs->at("mode") == "steps");
  CHECK(inputs->at("readings").as_array().size() == 2);

  // A minute later CPU is still high: the 5-minute cooldown holds the scale-up, and says until when.
  f.clock.advance(1min);
  f.system(95, 40);
  r = scaler.evaluate("web");
  REQUIRE(r);
  CHECK(r->outcome == "blocked");
  CHECK(r->reason == "ScaleUpCooldown");
  CHECK_THAT(r->message, Catch::Contains("held until 2026-01-01T00:05:00Z"));
  CHECK(web.size == 2);
  // After the cooldown it goes.
  f.clock.advance(4min);
  f.system(95, 40);
  r = scaler.evaluate("web");
  REQUIRE(r);
  CHECK(r->outcome == "applied");
  CHECK(web.size == 3);
  // Low CPU: the scale-down waits for the down cooldown after the scale-up.
  f.clock.advance(1min);
  f.system(5, 40);
  r = scaler.evaluate("web");
  REQUIRE(r);
  CHECK(r->reason == "ScaleDownCooldown");
  f.clock.advance(4min);
  f.system(5, 40);
  r = scaler.evaluate("web");
  REQUIRE(r);
  CHECK(r->reason == "StepDown");
  CHECK(web.size == 2);
  // Nothing holds: the evaluation is recorded anyway, as unchanged.
  f.clock.advance(10min);
  f.system(50, 40);
  r = scaler.evaluate("web");
  REQUIRE(r);
  CHECK(r->outcome == "unchanged");
  CHECK(r->reason == "NoBand");
  CHECK(f.history("web").size() == 6);
}

TEST_CASE("scaler: samples older than the staleness are missing, and a missing metric never scales down", "[scaling][scaler]") {
  Fixture f;
  Fake web;
  web.size = 3;
  ResourceScaler scaler(f.store, f.clock);
  REQUIRE(scaler.add(steps_spec(), web.actuator()));
  f.system(5, 40);
  f.clock.advance(3min);  // older than the 2-minute staleness
  f.sample("cpu_usage", 5);
  auto r = scaler.evaluate("web");
  REQUIRE(r);
  CHECK(r->reason == "MissingMetrics");
  CHECK(r->metrics_ok);  // cpu_usage was read: enough to decide, not to scale down
  CHECK(web.size == 3);
  auto inputs = json::parse(r->inputs);
  REQUIRE(inputs);
  CHECK_THAT(json::dump(inputs->at("readings")), Catch::Contains("no sample of memory_usage within 2m"));
}

TEST_CASE("scaler: the HPA decision on a queue, its windows rebuilt from the history by a restarted scaler", "[scaling][scaler]") {
  Fixture f;
  Fake ai;
  {
    ResourceScaler scaler(f.store, f.clock);
    REQUIRE(scaler.add(queue_spec(), ai.actuator()));
    f.sample("queue_depth", 23);
    auto r = scaler.evaluate("ai-workers");
    REQUIRE(r);
    CHECK(r->desired == 5);  // ceil(23 / 5)
    CHECK(r->reason == "DesiredWithinRange");
    CHECK(ai.size == 5);
    // The queue drains: the 300 s scale-down window holds the highest recent recommendation.
    f.clock.advance(60s);
    f.sample("queue_depth", 4);
    r = scaler.evaluate("ai-workers");
    REQUIRE(r);
    CHECK(r->reason == "ScaleDownStabilized");
    CHECK(r->recommended == 1);
    CHECK(r->desired == 5);
  }
  // A new scaler (a restarted daemon, the next cron run) over the same store decides the same way:
  // the window is not seeded again, it is what was recorded.
  ResourceScaler again(f.store, f.clock);
  REQUIRE(again.add(queue_spec(), ai.actuator()));
  f.clock.advance(60s);
  f.sample("queue_depth", 4);
  auto r = again.evaluate("ai-workers");
  REQUIRE(r);
  CHECK(r->reason == "ScaleDownStabilized");
  CHECK(ai.size == 5);
  // Once the recommendation of 5 is 300 s old, the size follows the queue down.
  f.clock.advance(181s);
  f.sample("queue_depth", 4);
  r = again.evaluate("ai-workers");
  REQUIRE(r);
  CHECK(r->desired == 1);
  CHECK(r->outcome == "applied");
  CHECK(ai.size == 1);
}

TEST_CASE("scaler: the first evaluation ever seeds the scale-down window with the current size", "[scaling][scaler]") {
  Fixture f;
  Fake ai;
  ai.size = 6;
  ResourceScaler scaler(f.store, f.clock);
  REQUIRE(scaler.add(queue_spec(), ai.actuator()));
  f.sample("queue_depth", 0);
  auto r = scaler.evaluate("ai-workers");
  REQUIRE(r);
  CHECK(r->reason == "ScaleDownStabilized");
  CHECK(ai.size == 6);
}

TEST_CASE("scaler: the seed of the first decision holds the scale-down window for its whole length", "[scaling][scaler]") {
  Fixture f;
  Fake ai;
  ai.size = 6;
  ResourceScaler scaler(f.store, f.clock);
  // A manual action before the first decision does not count as one.
  REQUIRE(scaler.scale_to("ai-workers", 6, "user:x").error().code == errc::not_found);
  REQUIRE(scaler.add(queue_spec(), ai.actuator()));
  for (int i = 0; i < 20; ++i) {
    f.sample("queue_depth", 0);
    auto r = scaler.evaluate("ai-workers");
    REQUIRE(r);
    CHECK(r->reason == "ScaleDownStabilized");
    f.clock.advance(15s);
  }
  CHECK(ai.size == 6);         // 285 s of recommendations of 1 against the seed of 6
  f.sample("queue_depth", 0);  // 300 s: the seed has left the window
  auto r = scaler.evaluate("ai-workers");
  REQUIRE(r);
  CHECK(r->desired == 1);
}

TEST_CASE("scaler: an action under way (pending) makes others busy, and counts for the cooldowns", "[scaling][scaler]") {
  Fixture f;
  Fake web;
  ResourceScaler scaler(f.store, f.clock);
  REQUIRE(scaler.add(steps_spec(), web.actuator()));
  sd::ScalingRecord other;
  other.resource = "web";
  other.action = "scale-up";
  other.time = other.updated = f.clock.now();
  other.actor = "user:bob";
  other.current = 1;
  other.recommended = other.desired = 3;
  other.reason = "Manual";
  other.outcome = "pending";
  REQUIRE(f.store.append_scaling(other, std::nullopt));
  f.system(95, 40);
  auto r = scaler.evaluate("web");
  REQUIRE_FALSE(r);
  CHECK(r.error().code == errc::busy);
  CHECK_THAT(r.error().message, Catch::Contains("scale-up by user:bob is under way"));
  CHECK(scaler.scale_by("web", 1, "user:alice").error().code == errc::busy);
  CHECK(web.resizes == 0);
  // Ten minutes later the process that wrote it is taken for dead: the size is what the actuator says.
  f.clock.advance(10min + 1s);
  f.system(95, 40);
  r = scaler.evaluate("web");
  REQUIRE(r);
  CHECK(r->outcome == "applied");
}

TEST_CASE(
    "scaler: with activation, an outage of the metrics never puts a resource to sleep, and the fallback waits for all of them to fail",
    "[scaling][scaler]") {
  Fixture f;
  Fake ai;
  ai.size = 3;
  auto spec = queue_spec();
  spec.policy.min_replicas = 0;
  spec.policy.metrics.push_back(MetricSpec{.name = "cpu_usage", .kind = MetricKind::per_member, .target = 60});
  spec.activation = ResourceSpec::ActivationOptions{.cooldown = 5min};
  spec.fallback = ResourceSpec::FallbackOptions{.after = 2, .size = 2};
  ResourceScaler scaler(f.store, f.clock);
  REQUIRE(scaler.add(spec, ai.actuator()));
  // Only the CPU is read, and high: no fallback, whatever the queue metric does.
  for (int i = 0; i < 4; ++i) {
    f.sample("cpu_usage", 90);
    auto r = scaler.evaluate("ai-workers");
    REQUIRE(r);
    CHECK(r->reason != "Fallback");
    f.clock.advance(1min);
  }
  const int size = ai.size;
  CHECK(size >= 3);
  // Nothing read for ten minutes: never Deactivated; the fallback after two evaluations.
  std::string reasons;
  for (int i = 0; i < 10; ++i) {
    f.clock.advance(1min);
    auto r = scaler.evaluate("ai-workers");
    REQUIRE(r);
    reasons += r->reason + " ";
  }
  CHECK_THAT(reasons, !Catch::Contains("Deactivated"));
  CHECK_THAT(reasons, Catch::Contains("Fallback"));
  CHECK(ai.size == 2);
}

TEST_CASE("scaler: a dry run decides and records exactly the same and never calls the actuator", "[scaling][scaler]") {
  Fixture f;
  Fake web;
  auto spec = steps_spec();
  spec.dry_run = true;
  ResourceScaler scaler(f.store, f.clock);
  REQUIRE(scaler.add(spec, web.actuator()));
  f.system(91, 40);
  auto r = scaler.evaluate("web");
  REQUIRE(r);
  CHECK(r->outcome == "dry-run");
  CHECK(r->dry_run);
  CHECK(r->desired == 2);
  CHECK(web.resizes == 0);
  CHECK(f.history("web").size() == 1);
  // explain: the same decision without a record.
  auto e = scaler.evaluate("web", {.dry_run = true, .record = false});
  REQUIRE(e);
  CHECK(e->desired == 2);
  CHECK(e->id == 0);
  CHECK(f.history("web").size() == 1);
}

TEST_CASE("scaler: manual scale-up, scale-down and restart are recorded with the actor and kept within the bounds", "[scaling][scaler]") {
  Fixture f;
  Fake web;
  ResourceScaler scaler(f.store, f.clock);
  REQUIRE(scaler.add(steps_spec(), web.actuator()));
  auto r = scaler.scale_by("web", 2, "user:alice", "launch day");
  REQUIRE(r);
  CHECK(r->action == "scale-up");
  CHECK(r->outcome == "applied");
  CHECK(r->actor == "user:alice");
  CHECK_THAT(r->message, Catch::Contains("scale-up from 1 to 3 by user:alice: launch day"));
  CHECK(web.size == 3);
  r = scaler.scale_to("web", 9, "user:alice");
  REQUIRE(r);
  CHECK(r->desired == 5);
  CHECK_THAT(r->message, Catch::Contains("asked for 9, kept within [1, 5]"));
  auto at_max = scaler.scale_by("web", 1, "user:alice");
  REQUIRE_FALSE(at_max);
  CHECK(at_max.error().code == errc::invalid_argument);
  CHECK_THAT(at_max.error().message, Catch::Contains("at its maximum of 5"));
  r = scaler.restart("web", "user:bob", "new config");
  REQUIRE(r);
  CHECK(r->action == "restart");
  CHECK(web.restarts == 1);
  // A manual scale-up starts the cooldown: the scaler does not undo it at once.
  f.system(5, 40);
  r = scaler.evaluate("web");
  REQUIRE(r);
  CHECK(r->reason == "ScaleDownCooldown");
  CHECK(web.size == 5);
  // An actuator that fails: recorded as failed with its error.
  web.fail = true;
  r = scaler.scale_by("web", -1, "user:alice");
  REQUIRE(r);
  CHECK(r->outcome == "failed");
  CHECK(r->error == "the pool refused");
  CHECK(web.size == 5);
  auto unknown = scaler.scale_by("db", 1, "user:alice");
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().code == errc::not_found);
  CHECK_THAT(unknown.error().message, Catch::Contains("configured: web"));
}

TEST_CASE("scaler: thresholds changed at run time apply to every later evaluation, in any scaler, until reset", "[scaling][scaler]") {
  Fixture f;
  Fake web;
  ResourceScaler scaler(f.store, f.clock);
  REQUIRE(scaler.add(steps_spec(), web.actuator()));
  auto policy = steps_spec().policy;
  policy.bands = seed_steps(70, 30, 75).bands;  // the other seed's 70/30 and 75
  REQUIRE(scaler.set_policy("web", policy, "user:alice", "the other seed"));
  f.system(72, 40);
  // Another scaler over the same store (the daemon, after `autoctl scale thresholds set`).
  Fake web2;
  ResourceScaler other(f.store, f.clock);
  REQUIRE(other.add(steps_spec(), web2.actuator()));
  auto r = other.evaluate("web");
  REQUIRE(r);
  CHECK(r->reason == "StepUp");
  auto inputs = json::parse(r->inputs);
  REQUIRE(inputs);
  CHECK_THAT(std::string(inputs->at("policy_source").as_string()), Catch::StartsWith("changed by user:alice"));
  auto rep = other.report("web");
  REQUIRE(rep);
  CHECK(rep->spec.policy.bands.front().above == 70);
  REQUIRE(other.reset_policy("web", "user:alice"));
  rep = other.report("web");
  REQUIRE(rep);
  CHECK(rep->policy_source == "configuration");
  // An invalid policy is refused, naming the problem.
  policy.max_replicas = 0;
  auto bad = scaler.set_policy("web", policy, "user:alice");
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message, Catch::Contains("\"max\""));
}

TEST_CASE("scaler: after N consecutive failed reads the fallback size applies, and a good read ends it", "[scaling][scaler]") {
  Fixture f;
  Fake ai;
  ai.size = 4;
  auto spec = queue_spec();
  spec.fallback = ResourceSpec::FallbackOptions{.after = 3, .size = 2};
  ResourceScaler scaler(f.store, f.clock);
  REQUIRE(scaler.add(spec, ai.actuator()));
  for (int i = 0; i < 2; ++i) {
    auto r = scaler.evaluate("ai-workers");
    REQUIRE(r);
    CHECK(r->reason == "FailedGetExternalMetric");
    CHECK(ai.size == 4);
    f.clock.advance(30s);
  }
  auto r = scaler.evaluate("ai-workers");
  REQUIRE(r);
  CHECK(r->reason == "Fallback");
  CHECK_THAT(r->message, Catch::Contains("3 times in a row"));
  CHECK(ai.size == 2);
  f.clock.advance(30s);
  f.sample("queue_depth", 30);
  r = scaler.evaluate("ai-workers");
  REQUIRE(r);
  CHECK(r->reason != "Fallback");
  CHECK(ai.size == 6);
}

TEST_CASE("scaler: activation scales to zero after the cooldown without activity and wakes at once", "[scaling][scaler]") {
  Fixture f;
  Fake ai;
  ai.size = 2;
  auto spec = queue_spec();
  spec.policy.min_replicas = 0;
  spec.activation = ResourceSpec::ActivationOptions{.cooldown = 5min, .wake_to = 1};
  ResourceScaler scaler(f.store, f.clock);
  REQUIRE(scaler.add(spec, ai.actuator()));
  f.sample("queue_depth", 0);
  auto r = scaler.evaluate("ai-workers");
  REQUIRE(r);
  CHECK_FALSE(r->active);
  CHECK(ai.size == 2);
  for (int i = 0; i < 5; ++i) {
    f.clock.advance(1min);
    f.sample("queue_depth", 0);
    r = scaler.evaluate("ai-workers");
    REQUIRE(r);
  }
  CHECK(r->reason == "Deactivated");
  CHECK(ai.size == 0);
  f.clock.advance(1min);
  f.sample("queue_depth", 0);
  r = scaler.evaluate("ai-workers");
  REQUIRE(r);
  CHECK(r->reason == "Inactive");
  f.clock.advance(1min);
  f.sample("queue_depth", 3);
  r = scaler.evaluate("ai-workers");
  REQUIRE(r);
  CHECK(r->reason == "Activated");
  CHECK(ai.size == 1);
}

TEST_CASE("scaler: another writer recording first makes the evaluation busy, and nothing is done", "[scaling][scaler]") {
  Fixture f;
  Fake web;
  ResourceScaler scaler(f.store, f.clock);
  // The metric source runs between reading the history and recording the decision: another
  // process records its own decision there.
  auto interfere = [&](const ResourceSpec&, const ResourceStatus&) {
    sd::ScalingRecord other;
    other.resource = "web";
    other.action = "decide";
    other.time = other.updated = f.clock.now();
    other.actor = "scaler";
    other.current = other.recommended = other.desired = 1;
    other.reason = "NoBand";
    other.outcome = "unchanged";
    REQUIRE(f.store.append_scaling(other, std::nullopt));
    return std::vector<MetricReading>{{.name = "cpu_usage", .kind = MetricKind::total, .target = 1, .total = 95},
                                      {.name = "memory_usage", .kind = MetricKind::total, .target = 1, .total = 40}};
  };
  REQUIRE(scaler.add(steps_spec(), web.actuator(), interfere));
  auto r = scaler.evaluate("web");
  REQUIRE_FALSE(r);
  CHECK(r.error().code == errc::busy);
  CHECK(web.resizes == 0);
}

TEST_CASE("scaler: predictive mode scales ahead of a rising load and says which forecast drove it", "[scaling][scaler]") {
  Fixture f;
  Fake web;
  web.size = 2;
  auto spec = steps_spec();
  spec.name = "api";
  spec.policy.mode = PolicyMode::hpa;
  spec.policy.metrics = {MetricSpec{.name = "requests_per_minute", .kind = MetricKind::total, .target = 100}};
  spec.cooldown_up = spec.cooldown_down = 0s;
  spec.predictive = PredictiveOptions{.metric = "requests_per_minute", .horizon = 10min, .step = 1min, .history = 2h, .level = 80};
  // An hour of a load rising by 3 requests per minute every minute, now at 195: two members are
  // enough for now (195 / 200 is within the tolerance), not in ten minutes.
  for (int i = 0; i < 60; ++i) {
    f.sample("requests_per_minute", 195 - 3 * (59 - i));
    f.clock.advance(1min);
  }
  f.clock.advance(-1min);
  forecast::Forecaster forecaster(f.clock);
  ResourceScaler scaler(f.store, f.clock, &forecaster);
  REQUIRE(scaler.add(spec, web.actuator()));
  auto r = scaler.evaluate("api");
  REQUIRE(r);
  // The load now needs 2; ten minutes ahead it needs 3.
  CHECK(r->desired >= 3);
  CHECK_THAT(r->message, Catch::Contains("driven by the forecast of requests_per_minute"));
  auto inputs = json::parse(r->inputs);
  REQUIRE(inputs);
  const auto& fc = inputs->at("forecast").as_object();
  CHECK(fc.at("points").to_number<int>() == 60);
  CHECK(fc.at("upper").to_number<double>() > 220);
  // Without a forecaster it decides on the current load and says why there was no forecast.
  Fake web2;
  web2.size = 2;
  ResourceScaler blind(f.store, f.clock);
  spec.name = "api2";
  REQUIRE(blind.add(spec, web2.actuator()));
  r = blind.evaluate("api2");
  REQUIRE(r);
  CHECK(r->desired == 2);
  inputs = json::parse(r->inputs);
  REQUIRE(inputs);
  CHECK_THAT(json::dump(inputs->at("forecast")), Catch::Contains("no forecaster"));
}

TEST_CASE("scaler: policies read from JSON with errors naming the field, and written back", "[scaling][scaler]") {
  auto doc = json::parse(R"({"mode": "hpa", "min": 2, "max": 8,
      "metrics": [{"name": "cpu_usage", "target": 60}, {"name": "queue_depth", "kind": "total", "target": 5}],
      "behavior": {"scale_down": {"stabilization": "10m", "policies": [{"type": "members", "value": 1, "period": "1m"}]}}})");
  REQUIRE(doc);
  auto p = parse_policy(*doc, "test");
  REQUIRE(p);
  CHECK(p->min_replicas == 2);
  CHECK(p->metrics.size() == 2);
  CHECK(p->behavior.down.stabilization == 10min);
  CHECK(p->behavior.up.policies.size() == 2);  // the default kept
  auto again = parse_policy(to_json(*p), "again");
  REQUIRE(again);
  CHECK(json::dump(to_json(*again)) == json::dump(to_json(*p)));

  auto bad = [](const char* text, const char* says) {
    auto d = json::parse(text);
    REQUIRE(d);
    auto r = parse_policy(*d, "policy.json");
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains(says));
  };
  bad(R"({"mode": "fast"})", "\"mode\" must be hpa or steps");
  bad(R"({"mode": "hpa"})", "at least one metric");
  bad(R"({"mode": "hpa", "metrics": [{"name": "x", "target": -1}]})", "\"target\" must be a positive number");
  bad(R"({"bands": [{"metric": "cpu_usage", "above": 80}]})", "exactly one of \"change\"");
  bad(R"({"bands": [], "colour": 1})", "unknown field \"colour\"");
  bad(R"({"mode": "hpa", "metrics": [{"name": "x", "target": 1}], "behavior": {"scale_up": {"select": "most"}}})",
      "must be max, min or disabled");
}
