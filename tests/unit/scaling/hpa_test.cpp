// The HPA's decision on the manual clock: tolerance edges, missing and unready members, several
// metrics and failing ones, bounds, stabilization windows and rate policies with their history.
#include <automation/scaling/hpa.hpp>
#include <automation/testing/manual_clock.hpp>

#include <catch2/catch.hpp>

using namespace automation;
using namespace automation::scaling;
using namespace std::chrono_literals;

namespace {

MetricReading cpu(std::vector<std::optional<double>> values, double target = 60, std::vector<bool> ready = {}) {
  MetricReading m;
  m.name = "cpu_usage";
  m.target = target;
  for (std::size_t i = 0; i < values.size(); ++i)
    m.members.push_back({"m" + std::to_string(i), values[i], i < ready.size() ? bool(ready[i]) : true});
  return m;
}

MetricReading queue(std::optional<double> total, double per_member = 5) {
  MetricReading m;
  m.name = "queue_depth";
  m.kind = MetricKind::total;
  m.target = per_member;
  m.total = total;
  return m;
}

HpaOptions wide(int lo = 1, int hi = 100) {
  HpaOptions o;
  o.min_replicas = lo;
  o.max_replicas = hi;
  return o;
}

}  // namespace

TEST_CASE("hpa: a metric proposes ceil(ratio x ready members), within the tolerance it stays, <= at the edge", "[scaling]") {
  const Tolerance t{0.25, 0.25};
  auto p = propose(3, cpu({90, 90, 90}), t);
  CHECK(p.valid);
  CHECK(p.ratio == 1.5);
  CHECK(p.replicas == 5);  // ceil(1.5 x 3) = 5
  CHECK_THAT(p.detail, Catch::Contains("ceil(1.500 x 3) = 5"));
  // Exactly at the tolerance (100 / 80 = 1.25): no change; just past it: scale.
  CHECK(propose(3, cpu({100, 100, 100}, 80), t).replicas == 3);
  CHECK(propose(3, cpu({100.01, 100, 100}, 80), t).replicas == 4);
  CHECK(propose(4, cpu({60, 60, 60, 60}, 80), t).replicas == 4);  // 0.75: the down edge
  CHECK(propose(4, cpu({59.9, 60, 60, 60}, 80), t).replicas == 3);
  // Per direction.
  CHECK(propose(4, cpu({60, 60, 60, 60}, 80), {0.25, 0.1}).replicas == 3);
  // The default tolerance is 0.1, tested as the HPA does: 1 - 0.1 <= ratio <= 1 + 0.1, so 66 / 60 (1.1
  // in doubles) stays, where |1 - ratio| <= 0.1 would not.
  CHECK(propose(10, cpu(std::vector<std::optional<double>>(10, 66.0), 60), {}).replicas == 10);
  CHECK(propose(10, cpu(std::vector<std::optional<double>>(10, 67.0), 60), {}).replicas == 12);  // 1.117: ceil(11.17)
  // Members are counted, not keyed: unnamed members are three.
  MetricReading unnamed{.name = "cpu_usage", .target = 60, .members = {{"", 90.0}, {"", 90.0}, {"", 90.0}}};
  CHECK(propose(3, unnamed, {}).replicas == 5);
  // A negative value is no reading.
  CHECK_FALSE(propose(3, cpu({90, -5, 90}), {}).valid);
}

TEST_CASE("hpa: missing and unready members are dampened as the HPA does", "[scaling]") {
  // Scale-down: a missing member counts as using the target: (20 + 20 + 50) / 3 = 30 -> 0.6 -> 2.
  auto down = propose(3, cpu({20, 20, std::nullopt}, 50), {});
  CHECK(down.replicas == 2);
  CHECK_THAT(down.detail, Catch::Contains("1 missing taken as the target"));
  // Scale-up: a missing member counts as 0: (90 + 90 + 0) / 3 = 60 -> 1.0 -> no change.
  CHECK(propose(3, cpu({90, 90, std::nullopt}), {}).replicas == 3);
  // An unready member is left out of the mean, and taken as 0 on a scale-up.
  CHECK(propose(3, cpu({90, 90, 500}, 60, {true, true, false}), {}).replicas == 3);    // 1.5 -> 1.0 with it at 0
  CHECK(propose(3, cpu({120, 120, 500}, 60, {true, true, false}), {}).replicas == 4);  // 2.0 -> 1.333: ceil(4.0)
  // On a scale-down an unready member is simply not counted: (20 + 20) / 2 = 0.4 -> ceil(0.8) = 1.
  CHECK(propose(3, cpu({20, 20, 500}, 50, {true, true, false}), {}).replicas == 1);
  // A fill-in that reverses the direction keeps the size: 1.2 over the ready, 0.8 with the missing at 0.
  CHECK(propose(3, cpu({72, 72, std::nullopt}, 60), {}).replicas == 3);
  // At a ratio of exactly 1 missing members are left out: no change.
  CHECK(propose(3, cpu({60, 60, std::nullopt}), {}).replicas == 3);
  // A member without a value is missing even when it is not ready: (20 + 20 + 50) / 3 -> 2.
  CHECK(propose(3, cpu({20, 20, std::nullopt}, 50, {true, true, false}), {}).replicas == 2);
  // No ready member with a value: no proposal.
  auto none = propose(2, cpu({std::nullopt, 10}, 60, {true, false}), {});
  CHECK_FALSE(none.valid);
  CHECK_THAT(none.detail, Catch::Contains("no ready member has a value (1 not ready, 1 missing)"));
  // A total against a per-member target: ceil(total / target), unless within the tolerance.
  CHECK(propose(2, queue(30), {}).replicas == 6);
  CHECK(propose(6, queue(31), {}).replicas == 6);  // 31 / 30 = 1.033
  CHECK(propose(2, queue(0), {}).replicas == 0);
  CHECK(propose(0, queue(5), {}).replicas == 1);  // from 0 the ratio is infinite: ceil(5 / 5)
  CHECK_FALSE(propose(2, queue(std::nullopt), {}).valid);
}

TEST_CASE("hpa: several metrics take the largest proposal, and a failing one never lets it scale down", "[scaling]") {
  testing::ManualClock clock;
  HpaScaler s(clock, wide(), 3);
  clock.advance(10min);  // past the scale-down window's seed
  auto failing = queue(std::nullopt);
  failing.error = "the queue's API answered 503";
  const std::vector<MetricReading> up{cpu({90, 90, 90}), failing};
  auto d = s.decide(3, up);
  CHECK(d.desired == 5);  // scaling up on the metric that works is allowed
  CHECK(d.reason == "DesiredWithinRange");
  const std::vector<MetricReading> down{cpu({10, 10, 10}), failing};
  d = s.decide(3, down);
  CHECK(d.desired == 3);
  CHECK(d.reason == "FailedGetExternalMetric");
  CHECK_THAT(d.message, Catch::Contains("queue_depth: the queue's API answered 503"));
  const std::vector<MetricReading> all_failing{failing, cpu({std::nullopt, std::nullopt, std::nullopt})};
  d = s.decide(3, all_failing);
  CHECK(d.desired == 3);
  CHECK(d.reason == "FailedGetExternalMetric");
  const std::vector<MetricReading> both{cpu({10, 10, 10}), queue(40)};
  d = s.decide(3, both);
  CHECK(d.recommended == 8);  // the queue wants 8, the CPU 1
  REQUIRE(d.proposals.size() == 2);
  CHECK(d.proposals[0].replicas == 1);
  CHECK(s.decide(3, {}).reason == "FailedGetPodsMetric");
}

TEST_CASE("hpa: outside the bounds the size is corrected at once, and the bounds cap a proposal", "[scaling]") {
  testing::ManualClock clock;
  HpaScaler s(clock, wide(2, 10), 12);
  const std::vector<MetricReading> m{cpu({60, 60})};
  auto d = s.decide(12, m);
  CHECK(d.desired == 10);
  CHECK(d.reason == "TooManyReplicas");
  d = s.decide(1, m);
  CHECK(d.desired == 2);
  CHECK(d.reason == "TooFewReplicas");
  const std::vector<MetricReading> hot{cpu(std::vector<std::optional<double>>(8, 600.0))};
  d = s.decide(8, hot);  // wants 80; the rate allows 16
  CHECK(d.desired == 10);
  CHECK(d.reason == "TooManyReplicas");
  clock.advance(10min);
  const std::vector<MetricReading> idle{cpu({0, 0, 0})};
  d = s.decide(3, idle);
  CHECK(d.desired == 2);
  CHECK(d.reason == "TooFewReplicas");
  CHECK(d.scaling_limited == "TooFewReplicas");

  // A correction leaves the windows alone: a scale-up right after it is not held back by it.
  HpaOptions o = wide(2, 10);
  o.behavior.up.stabilization = 60s;
  o.behavior.down.stabilization = 0s;  // and no seed
  testing::ManualClock c2;
  HpaScaler fresh(c2, o, 1);
  CHECK(fresh.decide(1, m).desired == 2);
  c2.advance(1s);
  const std::vector<MetricReading> busy{cpu({120, 120})};
  d = fresh.decide(2, busy);
  CHECK(d.desired == 4);
  CHECK(d.able_to_scale == "ReadyForNewScale");
  // A resource at 0 with a minimum above it is switched off.
  d = fresh.decide(0, busy);
  CHECK(d.desired == 0);
  CHECK(d.reason == "ScalingDisabled");
}

TEST_CASE("hpa: the scale-down window keeps the highest recent recommendation, seeded with the size at start", "[scaling]") {
  testing::ManualClock clock;
  HpaScaler s(clock, wide(), 5);
  const std::vector<MetricReading> low{cpu({12, 12, 12, 12, 12})};  // wants 1
  clock.advance(30s);
  auto d = s.decide(5, low);
  CHECK(d.recommended == 1);
  CHECK(d.desired == 5);  // the seed (5, at start) is in the window
  CHECK(d.reason == "ScaleDownStabilized");
  // A spike inside the window holds the size up after it has passed.
  clock.advance(2min);
  const std::vector<MetricReading> spike{cpu({48, 48, 48, 48, 48})};  // wants 4
  CHECK(s.decide(5, spike).desired == 5);
  clock.advance(3min);  // 5m30s after the start: the seed is out; the 4 of 2m30s is in
  d = s.decide(5, low);
  CHECK(d.desired == 4);
  CHECK(d.reason == "ScaleDownStabilized");
  clock.advance(3min);
  d = s.decide(5, low);
  CHECK(d.desired == 1);
  CHECK(d.reason == "DesiredWithinRange");

  // A scale-up window keeps the lowest recent recommendation.
  HpaOptions o = wide();
  o.behavior.up.stabilization = 60s;
  testing::ManualClock c2;
  HpaScaler up(c2, o, 2);
  const std::vector<MetricReading> hot{cpu({120, 120})};  // wants 4
  c2.advance(10s);
  d = up.decide(2, hot);
  CHECK(d.desired == 2);  // the seed's 2 is within the minute
  CHECK(d.reason == "ScaleUpStabilized");
  c2.advance(61s);
  CHECK(up.decide(2, hot).desired == 4);
}

TEST_CASE("hpa: rate policies limit each period by the scale events applied in it", "[scaling]") {
  testing::ManualClock clock;
  HpaScaler s(clock, wide(1, 100), 2);
  const std::vector<MetricReading> hot{cpu({600, 600})};  // wants 20
  auto d = s.decide(2, hot);
  CHECK(d.recommended == 20);
  CHECK(d.desired == 6);  // the larger of +4 members and +100 %
  CHECK(d.reason == "ScaleUpLimit");
  s.applied(2, 6);
  clock.advance(5s);
  const std::vector<MetricReading> hotter{cpu(std::vector<std::optional<double>>(6, 600.0))};  // wants 60
  d = s.decide(6, hotter);
  CHECK(d.desired == 6);  // the period began at 2: 2 + 4 = 6, 2 x 2 = 4
  CHECK(d.reason == "ScaleUpLimit");
  clock.advance(11s);  // the event is out of the 15 s period
  d = s.decide(6, hotter);
  CHECK(d.desired == 12);  // max(6 + 4, 6 x 2)

  // select min: the smaller change.
  HpaOptions o = wide(1, 100);
  o.behavior.up.select = SelectPolicy::min;
  testing::ManualClock c2;
  HpaScaler least(c2, o, 2);
  CHECK(least.decide(2, hot).desired == 4);  // min(2 + 4, 2 x 2)

  // Scale-down policies: 1 member per minute; disabled keeps the size.
  HpaOptions slow = wide();
  slow.behavior.down.stabilization = 0s;
  slow.behavior.down.policies = {{PolicyKind::members, 1, 60s}};
  testing::ManualClock c3;
  HpaScaler gentle(c3, slow, 5);
  const std::vector<MetricReading> idle{cpu({1, 1, 1, 1, 1})};
  d = gentle.decide(5, idle);
  CHECK(d.desired == 4);
  CHECK(d.reason == "ScaleDownLimit");
  gentle.applied(5, 4);
  c3.advance(30s);
  CHECK(gentle.decide(4, idle).desired == 4);  // the minute began at 5: 5 - 1 = 4
  c3.advance(31s);
  CHECK(gentle.decide(4, idle).desired == 3);
  // The period's start counts both directions: after 4 -> 8, 2 members a minute may go from 4.
  testing::ManualClock c4;
  HpaScaler mixed(c4, slow, 4);
  mixed.applied(4, 8);
  c4.advance(5s);
  const std::vector<MetricReading> quiet{cpu({1, 1, 1, 1, 1, 1, 1, 1})};
  CHECK(mixed.decide(8, quiet).desired == 3);  // start 8 + 0 - 4 = 4, less 1 member: 3 (the members policy)
  // And after 10 -> 5, the default up policies start from 10: +100 % allows 20.
  testing::ManualClock c5;
  HpaScaler back(c5, wide(1, 100), 10);
  back.applied(10, 5);
  c5.advance(5s);
  const std::vector<MetricReading> surge{cpu(std::vector<std::optional<double>>(5, 600.0))};  // wants 50
  d = back.decide(5, surge);
  CHECK(d.desired == 20);
  CHECK(d.reason == "ScaleUpLimit");
  slow.behavior.down.select = SelectPolicy::disabled;
  HpaScaler frozen(c3, slow, 5);
  d = frozen.decide(5, idle);
  CHECK(d.desired == 5);
  CHECK(d.reason == "ScaleDownLimit");
  CHECK(d.message == "scaling down is disabled");
}

TEST_CASE("hpa: invalid options are refused by name", "[scaling]") {
  auto bad = [](auto change, const char* says) {
    HpaOptions o;
    change(o);
    auto v = o.validate();
    REQUIRE_FALSE(v);
    CHECK_THAT(v.error().message, Catch::Contains(says));
  };
  bad([](HpaOptions& o) { o.max_replicas = 0; }, "max_replicas 0 is below min_replicas 1");
  bad([](HpaOptions& o) { o.min_replicas = -1; }, "min_replicas -1 is negative");
  bad([](HpaOptions& o) { o.tolerance.up = -0.1; }, "tolerances");
  bad([](HpaOptions& o) { o.behavior.down.policies[0].value = 0; }, "scale-down policy value 0 must be from 1 to 1,000,000");
  bad([](HpaOptions& o) { o.behavior.up.policies[0].value = 2'000'000; }, "scale-up policy value 2000000");
  bad([](HpaOptions& o) { o.behavior.up.policies.clear(); }, "scale-up rules need a policy");
  testing::ManualClock clock;
  HpaOptions o;
  o.max_replicas = 0;
  CHECK_THROWS_AS(HpaScaler(clock, o, 1), Exception);
}
