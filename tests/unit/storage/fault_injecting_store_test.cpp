#include <automation/storage/memory_store.hpp>
#include <automation/testing/fault_injecting_store.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace automation;
using namespace automation::storage;

namespace {
AuditRecord rec() {
  AuditRecord r;
  r.actor = "a";
  r.action = "b";
  r.resource = "c";
  return r;
}
}  // namespace

TEST_CASE("FaultInjectingStore fails exactly the Nth write and leaves the inner store unchanged") {
  MemoryStore inner;
  testing::FaultInjectingStore store(inner);
  store.fail_nth_write(2, errc::io);
  CHECK(store.append_audit(std::vector{rec()}));
  auto second = store.append_audit(std::vector{rec()});
  REQUIRE_FALSE(second);
  CHECK(second.error().is(errc::io));
  CHECK_THAT(second.error().message, Catch::Contains("injected"));
  CHECK(store.append_audit(std::vector{rec()}));
  CHECK(inner.query_audit({.limit = 0}).value().size() == 2);
  CHECK(store.writes() == 3);
  CHECK(store.injected_failures() == 1);
}

TEST_CASE("FaultInjectingStore answers busy for every write until cleared and reads can fail too") {
  MemoryStore inner;
  testing::FaultInjectingStore store(inner);
  store.fail_all_writes(errc::busy);
  for (int i = 0; i < 3; ++i) CHECK(store.append_audit(std::vector{rec()}).error().is(errc::busy));
  CHECK(store.migrate().error().is(errc::busy));
  CHECK(store.query_audit({}).value().empty());
  store.fail_all_reads(errc::unavailable);
  CHECK(store.query_audit({}).error().is(errc::unavailable));
  CHECK(store.info().error().is(errc::unavailable));
  store.clear();
  CHECK(store.append_audit(std::vector{rec()}));
  CHECK(store.query_audit({}).value().size() == 1);
  CHECK(store.backend() == "memory");
}

TEST_CASE("FaultInjectingStore fails samples and alerts writes and reads like the others") {
  MemoryStore inner;
  testing::FaultInjectingStore store(inner);
  const std::vector<MetricPoint> points{{"cpu_usage", "", TimePoint(std::chrono::seconds(60)), 42}};
  AlertRecord alert;
  alert.rule = "cpu_high";
  alert.severity = "warning";
  alert.state = "firing";
  store.fail_all_writes(errc::busy);
  CHECK(store.append_metric_points(points).error().is(errc::busy));
  CHECK(store.prune_metric_points(TimePoint(std::chrono::hours(1))).error().is(errc::busy));
  CHECK(store.create_alert(alert).error().is(errc::busy));
  CHECK(store.update_alert(alert).error().is(errc::busy));
  CHECK(store.prune_alerts(TimePoint(std::chrono::hours(1))).error().is(errc::busy));
  CHECK(inner.query_metric_points({.name = "cpu_usage"}).value().empty());
  CHECK(inner.list_alerts({}).value().empty());
  CHECK(store.injected_failures() == 5);
  store.clear();
  CHECK(store.append_metric_points(points).value() == 1);
  const auto id = store.create_alert(alert).value();
  store.fail_all_reads(errc::unavailable);
  CHECK(store.query_metric_points({.name = "cpu_usage"}).error().is(errc::unavailable));
  CHECK(store.get_alert(id).error().is(errc::unavailable));
  CHECK(store.list_alerts({}).error().is(errc::unavailable));
  store.clear();
  CHECK(store.query_metric_points({.name = "cpu_usage"}).value().size() == 1);
  CHECK(store.get_alert(id).value()->rule == "cpu_high");
  CHECK(store.writes() == 7);
  CHECK(store.reads() == 5);
}

TEST_CASE("FaultInjectingStore fails forecast writes and reads like the others") {
  MemoryStore inner;
  testing::FaultInjectingStore store(inner);
  ForecastRecord forecast;
  forecast.metric = "revenue";
  forecast.time_zone = "UTC";
  forecast.created = TimePoint(std::chrono::hours(2));
  forecast.horizon = 7;
  forecast.method = "theta";
  forecast.backend = "statistical";
  store.fail_all_writes(errc::busy);
  CHECK(store.append_forecast(forecast).error().is(errc::busy));
  CHECK(store.prune_forecasts(TimePoint(std::chrono::hours(3))).error().is(errc::busy));
  CHECK(inner.list_forecasts({}).value().empty());
  CHECK(store.injected_failures() == 2);
  store.clear();
  const auto id = store.append_forecast(forecast).value();
  store.fail_all_reads(errc::unavailable);
  CHECK(store.get_forecast(id).error().is(errc::unavailable));
  CHECK(store.list_forecasts({}).error().is(errc::unavailable));
  store.clear();
  CHECK(store.get_forecast(id).value()->metric == "revenue");
  CHECK(store.list_forecasts({.metric = "revenue"}).value().size() == 1);
  CHECK(store.prune_forecasts(TimePoint(std::chrono::hours(3))).value() == 1);
  CHECK(inner.list_forecasts({}).value().empty());
  CHECK(store.writes() == 4);
  CHECK(store.reads() == 4);
}

TEST_CASE("FaultInjectingStore fails scaling and healing writes and reads like the others") {
  MemoryStore inner;
  testing::FaultInjectingStore store(inner);
  ScalingRecord scaling;
  scaling.resource = "web";
  scaling.action = "decide";
  scaling.time = TimePoint(std::chrono::hours(2));
  scaling.outcome = "pending";
  HealingRecord healing;
  healing.target = "db";
  healing.kind = "action";
  healing.state = "healing";
  healing.action = "restart";
  healing.time = TimePoint(std::chrono::hours(2));
  healing.outcome = "pending";
  std::vector<std::string> hooked;
  store.before_each_write([&](std::string_view op) { hooked.emplace_back(op); });

  store.fail_all_writes(errc::busy);
  CHECK(store.append_scaling(scaling, std::nullopt).error().is(errc::busy));
  CHECK(store.append_healing(healing).error().is(errc::busy));
  CHECK(store.prune_scaling(TimePoint(std::chrono::hours(3))).error().is(errc::busy));
  CHECK(store.prune_healing(TimePoint(std::chrono::hours(3))).error().is(errc::busy));
  CHECK(inner.list_scaling({}).value().empty());
  CHECK(inner.list_healing({}).value().empty());
  store.clear();
  const auto scaling_id = store.append_scaling(scaling, 0).value();
  const auto healing_id = store.append_healing(healing).value();
  store.fail_all_writes(errc::io);
  CHECK(store.finish_scaling(scaling_id, "applied", "", TimePoint(std::chrono::hours(3))).error().is(errc::io));
  CHECK(store.finish_healing(healing_id, "succeeded", "", "", TimePoint(std::chrono::hours(3))).error().is(errc::io));
  CHECK(inner.list_scaling({}).value().at(0).outcome == "pending");  // a failed write is not forwarded
  CHECK(inner.list_healing({}).value().at(0).outcome == "pending");
  CHECK(store.injected_failures() == 6);
  store.clear();
  store.fail_all_reads(errc::unavailable);
  CHECK(store.list_scaling({}).error().is(errc::unavailable));
  CHECK(store.list_healing({}).error().is(errc::unavailable));
  store.clear();
  REQUIRE(store.finish_scaling(scaling_id, "applied", "", TimePoint(std::chrono::hours(3))));
  REQUIRE(store.finish_healing(healing_id, "succeeded", "", R"({"exit_code":0})", TimePoint(std::chrono::hours(3))));
  CHECK(store.list_scaling({.resource = "web"}).value().at(0).outcome == "applied");
  CHECK(store.list_healing({.target = "db"}).value().at(0).detail == R"({"exit_code":0})");
  CHECK(store.prune_scaling(TimePoint(std::chrono::hours(3))).value() == 1);
  CHECK(store.prune_healing(TimePoint(std::chrono::hours(3))).value() == 1);
  CHECK(hooked ==
        std::vector<std::string>{"append_scaling", "append_healing", "finish_scaling", "finish_healing", "prune_scaling", "prune_healing"});
  CHECK(store.writes() == 12);
  CHECK(store.reads() == 4);
}

TEST_CASE("FaultInjectingStore fails token writes and reads like the others") {
  MemoryStore inner;
  testing::FaultInjectingStore store(inner);
  TokenRecord token;
  token.id = "atk_1";
  token.name = "deploy";
  token.role = "operator";
  token.secret_hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
  token.created = TimePoint(std::chrono::hours(2));
  token.created_by = "user:alice";
  std::vector<std::string> hooked;
  store.before_each_write([&](std::string_view op) { hooked.emplace_back(op); });

  store.fail_all_writes(errc::busy);
  CHECK(store.create_token(token).error().is(errc::busy));
  CHECK(inner.list_tokens(true).value().empty());
  store.clear();
  REQUIRE(store.create_token(token));
  store.fail_all_writes(errc::io);
  CHECK(store.touch_token("atk_1", TimePoint(std::chrono::hours(3)), "10.0.0.1:1").error().is(errc::io));
  CHECK(store.revoke_token("atk_1", TimePoint(std::chrono::hours(3)), "user:bob", "").error().is(errc::io));
  CHECK(inner.get_token("atk_1").value() == token);  // a failed write is not forwarded
  CHECK(store.injected_failures() == 3);
  store.clear();
  store.fail_all_reads(errc::unavailable);
  CHECK(store.get_token("atk_1").error().is(errc::unavailable));
  CHECK(store.list_tokens(false).error().is(errc::unavailable));
  store.clear();
  REQUIRE(store.touch_token("atk_1", TimePoint(std::chrono::hours(3)), "10.0.0.1:1"));
  CHECK(store.revoke_token("deploy", TimePoint(std::chrono::hours(4)), "user:bob", "rotated").value().id == "atk_1");
  CHECK(store.get_token("atk_1").value()->last_used_from == "10.0.0.1:1");
  CHECK(store.list_tokens(false).value().empty());
  CHECK(store.list_tokens(true).value().size() == 1);
  CHECK(hooked == std::vector<std::string>{"create_token", "touch_token", "revoke_token"});
  CHECK(store.writes() == 6);
  CHECK(store.reads() == 5);
  CHECK(store.injected_failures() == 5);
}

TEST_CASE("FaultInjectingStore fails registry writes and reads like the others") {
  MemoryStore inner;
  testing::FaultInjectingStore store(inner);
  NodeRecord node;
  node.id = "web1";
  node.kind = "host";
  node.source = "registered";
  node.state = "up";
  node.registered = node.last_seen = node.state_since = TimePoint(std::chrono::hours(2));
  node.updated_by = "node web1";
  ScanRecord scan;
  scan.started = scan.finished = TimePoint(std::chrono::hours(2));
  scan.actor = "discovery";
  std::vector<std::string> hooked;
  store.before_each_write([&](std::string_view op) { hooked.emplace_back(op); });

  store.fail_all_writes(errc::busy);
  CHECK(store.put_node(node, 0).error().is(errc::busy));
  CHECK(store.append_scan(scan).error().is(errc::busy));
  CHECK(inner.list_nodes().value().empty());
  CHECK(inner.list_scans(0, 0).value().empty());
  store.clear();
  REQUIRE(store.put_node(node, 0).value() == 1);
  const auto scan_id = store.append_scan(scan).value();
  store.fail_all_writes(errc::io);
  CHECK(store.put_node(node, 1).error().is(errc::io));
  CHECK(store.delete_node("web1").error().is(errc::io));
  CHECK(store.prune_scans(TimePoint(std::chrono::hours(3))).error().is(errc::io));
  CHECK(inner.get_node("web1").value()->version == 1);  // a failed write is not forwarded
  CHECK(inner.list_scans(0, 0).value().size() == 1);
  CHECK(store.injected_failures() == 5);
  store.clear();
  store.fail_all_reads(errc::unavailable);
  CHECK(store.get_node("web1").error().is(errc::unavailable));
  CHECK(store.list_nodes().error().is(errc::unavailable));
  CHECK(store.list_scans(0, 0).error().is(errc::unavailable));
  store.clear();
  CHECK(store.put_node(node, 1).value() == 2);
  CHECK(store.get_node("web1").value()->version == 2);
  CHECK(store.list_nodes().value().size() == 1);
  CHECK(store.list_scans(1, 0).value().at(0).id == scan_id);
  CHECK(store.prune_scans(TimePoint(std::chrono::hours(3))).value() == 1);
  CHECK(store.delete_node("web1").value());
  CHECK(hooked == std::vector<std::string>{"put_node", "append_scan", "put_node", "prune_scans", "delete_node"});
  CHECK(store.writes() == 10);
  CHECK(store.reads() == 6);
  CHECK(store.injected_failures() == 8);
}
