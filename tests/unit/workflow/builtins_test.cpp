// The built-in catalog and actions: real backups, maintenance and cleanup.
#include <automation/metrics/aggregator.hpp>
#include <automation/storage/memory_store.hpp>
#include <automation/storage/sqlite_store.hpp>
#include <automation/testing/manual_clock.hpp>
#include <automation/workflow/builtins.hpp>

#include "support/http_server.hpp"
#include "support/temp_dir.hpp"
#include "support/workflow.hpp"

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <boost/json.hpp>

#include <filesystem>
#include <fstream>
#include <set>

using namespace automation;
using namespace automation::workflow;
using namespace std::chrono_literals;
using storage::RunState;
namespace fs = std::filesystem;

using test::drive;

namespace {
std::map<std::string, std::string> outputs(storage::Store& s, std::int64_t run, std::string_view step) {
  for (const auto& r : s.run_steps(run).value())
    if (r.step == step) {
      std::map<std::string, std::string> m;
      auto doc = boost::json::parse(r.outputs);
      for (const auto& kv : doc.as_object()) m[std::string(kv.key())] = std::string(kv.value().as_string());
      return m;
    }
  return {};
}

void set_mtime(const std::string& path, TimePoint t) {
  const auto ms = to_epoch_ms(t);
  timespec ts[2];
  ts[0].tv_sec = ts[1].tv_sec = ms / 1000;
  ts[0].tv_nsec = ts[1].tv_nsec = (ms % 1000) * 1'000'000;
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), ts, 0) == 0);
}
}  // namespace

TEST_CASE("builtins: every catalog entry loads and validates, and the seed names are there") {
  auto all = builtin_workflows();
  std::set<std::string> names;
  for (const auto& w : all) {
    CHECK(validate(w));
    names.insert(w.name);
  }
  for (const char* n : {"auto_backup", "auto_optimize", "database-maintenance", "cleanup-resources", "test-and-build", "deploy-production",
                        "setup-monitoring", "health_check", "auto_scale_check", "on_user_register", "on_content_publish"})
    CHECK(names.contains(n));
}

TEST_CASE("builtins: auto_backup makes a checked online copy of the store and keeps the newest N") {
  test::TempDir dir;
  auto store = storage::SqliteStore::open(dir.file("s.db")).value();
  testing::ManualClock clock;
  WorkflowEngine engine(*store, clock);
  REQUIRE(register_builtins(engine, *store));
  const std::string backups = dir.file("backups");
  std::vector<std::string> paths;
  for (int i = 0; i < 3; ++i) {
    auto id = engine.start("auto_backup", {.params = {{"dir", backups}, {"keep", "2"}}}).value();
    REQUIRE(drive(engine, [&] { return !engine.is_active(id); }));
    auto run = store->get_run(id).value().value();
    REQUIRE(run.state == RunState::succeeded);
    auto out = outputs(*store, id, "backup");
    paths.push_back(out["path"]);
    CHECK(std::stoll(out["bytes"]) > 0);
    CHECK(out["removed"] == (i == 2 ? "1" : "0"));
    clock.advance(6h);
  }
  CHECK_FALSE(fs::exists(paths[0]));
  REQUIRE(fs::exists(paths[2]));
  // The copy is a real database holding the runs recorded before it was taken.
  auto copy = storage::SqliteStore::open(paths[2], {.read_only = true}).value();
  CHECK(copy->check_integrity());
  CHECK(copy->get_run(2).value());
  // Memory stores cannot be backed up, and say so.
  storage::MemoryStore mem;
  WorkflowEngine e2(mem, clock);
  REQUIRE(register_builtins(e2, mem));
  auto id = e2.start("auto_backup", {.params = {{"dir", backups}}}).value();
  REQUIRE(drive(e2, [&] { return !e2.is_active(id); }));
  CHECK_THAT(mem.get_run(id).value()->reason, Catch::Contains("needs an SQLite store"));
}

TEST_CASE("builtins: auto_optimize prunes expired history and vacuums") {
  test::TempDir dir;
  auto store = storage::SqliteStore::open(dir.file("s.db")).value();
  testing::ManualClock clock;
  std::vector<storage::TaskRecord> old(2000);
  for (auto& t : old) {
    t.domain = "x";
    t.action = "y";
    t.params = R"({"pad":")" + std::string(200, 'p') + R"("})";
    t.started = t.ended = clock.now() - std::chrono::hours(24 * 100);
  }
  REQUIRE(store->append_tasks(old));
  storage::EventRecord old_event, new_event;
  old_event.name = new_event.name = "user.registered";
  old_event.time = clock.now() - std::chrono::hours(24 * 40);
  new_event.time = clock.now() - std::chrono::hours(1);
  REQUIRE(store->append_event(old_event));
  REQUIRE(store->append_event(new_event));
  for (auto ended : {clock.now() - 40 * 24h, clock.now() - 1h}) {
    RunRecord run;
    run.workflow = "old";
    run.state = RunState::succeeded;
    run.queued_at = run.started_at = run.ended_at = ended;
    REQUIRE(store->create_run(run, {}, nullptr));
  }
  for (auto updated : {clock.now() - 40 * 24h, clock.now() - 1h}) {
    storage::DeliveryRecord d;
    d.key = std::to_string(to_epoch_ms(updated));
    d.subject = "report:daily";
    d.target = "file:/tmp/x";
    d.state = "delivered";
    d.created = updated;
    REQUIRE(store->enqueue_delivery(d));
  }
  std::vector<storage::MetricPoint> points;
  for (auto t : {clock.now() - 40 * 24h, clock.now() - 31 * 24h, clock.now() - 1h}) points.push_back({"cpu_usage", "", t, 42.0});
  REQUIRE(store->append_metric_points(points));
  for (auto resolved : {clock.now() - 40 * 24h, clock.now() - 1h}) {
    storage::AlertRecord a;
    a.rule = "cpu_high";
    a.severity = "warning";
    a.state = "resolved";
    a.fired = resolved - 1h;
    a.resolved = resolved;
    REQUIRE(store->create_alert(a));
  }
  storage::AlertRecord firing;  // firing for 40 days: kept however old
  firing.rule = "disk_full";
  firing.severity = "critical";
  firing.state = "firing";
  firing.fired = clock.now() - 40 * 24h;
  REQUIRE(store->create_alert(firing));
  // Forecasts are kept as long as task history (90 days), not the run retention.
  for (auto age : {100 * 24h, 40 * 24h, 1h}) {
    storage::ForecastRecord f;
    f.metric = "revenue";
    f.time_zone = "UTC";
    f.created = clock.now() - age;
    f.reason = fmt::format("made {} h ago", age.count());
    f.horizon = 7;
    f.method = "theta";
    f.backend = "statistical";
    REQUIRE(store->append_forecast(f));
  }
  // Scaling and healing records go with the run retention, but for each resource's newest thresholds record.
  for (auto [action, age] :
       {std::pair{"thresholds", 50 * 24h}, std::pair{"thresholds", 45 * 24h}, std::pair{"decide", 40 * 24h}, std::pair{"decide", 1h}}) {
    storage::ScalingRecord r;
    r.resource = "web";
    r.action = action;
    r.time = clock.now() - age;
    r.outcome = "unchanged";
    REQUIRE(store->append_scaling(r, std::nullopt));
  }
  for (auto age : {40 * 24h, 31 * 24h, 1h}) {
    storage::HealingRecord r;
    r.target = "db";
    r.kind = "state";
    r.state = "healthy";
    r.time = clock.now() - age;
    REQUIRE(store->append_healing(r));
  }
  for (auto age : {40 * 24h, 1h}) {  // discovery scans go with the run retention too
    storage::ScanRecord scan;
    scan.started = scan.finished = clock.now() - age;
    scan.actor = "discovery";
    REQUIRE(store->append_scan(scan));
  }
  WorkflowEngine engine(*store, clock);
  REQUIRE(register_builtins(engine, *store));
  auto id = engine.start("auto_optimize").value();
  REQUIRE(drive(engine, [&] { return !engine.is_active(id); }));
  REQUIRE(store->get_run(id).value()->state == RunState::succeeded);
  auto out = outputs(*store, id, "optimize");
  CHECK(out["tasks_pruned"] == "2000");
  CHECK(out["events_pruned"] == "1");
  CHECK(out["runs_pruned"] == "1");
  CHECK(out["deliveries_pruned"] == "1");
  CHECK(store->list_deliveries({}).value().size() == 1);
  CHECK(out["points_pruned"] == "2");
  CHECK(store->query_metric_points({.name = "cpu_usage"}).value().size() == 1);
  CHECK(out["alerts_pruned"] == "1");
  auto alerts = store->list_alerts({}).value();
  REQUIRE(alerts.size() == 2);
  CHECK(alerts[0].rule == "disk_full");
  CHECK(alerts[1].rule == "cpu_high");  // the one resolved an hour ago
  CHECK(out["forecasts_pruned"] == "1");
  auto forecasts = store->list_forecasts({}).value();
  REQUIRE(forecasts.size() == 2);
  CHECK(forecasts[1].reason == "made 960 h ago");
  CHECK(out["scaling_pruned"] == "2");
  auto scaling = store->list_scaling({}).value();
  REQUIRE(scaling.size() == 2);
  CHECK(scaling[0].action == "decide");
  CHECK(scaling[1].action == "thresholds");
  CHECK(to_epoch_ms(scaling[1].time) == to_epoch_ms(clock.now() - 45 * 24h));
  CHECK(out["healing_pruned"] == "2");
  CHECK(store->list_healing({}).value().size() == 1);
  CHECK(out["scans_pruned"] == "1");
  CHECK(store->list_scans(0, 0).value().size() == 1);
  CHECK(store->get_run(1).value() == std::nullopt);
  CHECK(store->get_run(2).value());
  // ANALYZE ran (statistics exist) and VACUUM left no free pages, on the file itself.
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open_v2(dir.file("s.db").c_str(), &raw, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  auto scalar = [&](const char* sql) {
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(raw, sql, -1, &st, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    const auto v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
  };
  CHECK(scalar("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'") == 1);
  CHECK(scalar("PRAGMA freelist_count") == 0);
  sqlite3_close(raw);
  CHECK(store->list_events({.name = "user.registered"}).value().size() == 1);
  CHECK(std::stoll(out["bytes_after"]) < std::stoll(out["bytes_before"]));
}

TEST_CASE("builtins: cleanup-resources deletes only regular files older than the age and reports the bytes") {
  test::TempDir dir;
  storage::MemoryStore store;
  testing::ManualClock clock;
  WorkflowEngine engine(store, clock);
  REQUIRE(register_builtins(engine, store));
  fs::create_directories(dir.path() / "a" / "deep");
  fs::create_directories(dir.path() / "b");
  auto write = [&](const std::string& rel, std::size_t n, Duration age) {
    const std::string p = (dir.path() / rel).string();
    std::ofstream(p) << std::string(n, 'x');
    set_mtime(p, clock.now() - age);
    return p;
  };
  const auto old1 = write("a/old.log", 100, 8 * 24h);
  const auto old2 = write("a/deep/old.bin", 50, 30 * 24h);
  const auto fresh = write("a/new.log", 10, 24h);
  const auto other = write("b/old.txt", 7, 10 * 24h);
  // Links inside a scanned directory, themselves old: neither they nor what they point at go.
  const auto file_link = dir.path() / "a" / "link-to-other";
  const auto dir_link = dir.path() / "a" / "link-to-b";
  fs::create_symlink(other, file_link);
  fs::create_directory_symlink(dir.path() / "b", dir_link);
  for (const auto& l : {file_link, dir_link}) {
    const auto t = std::chrono::duration_cast<std::chrono::seconds>((clock.now() - 40 * 24h).time_since_epoch()).count();
    timespec ts[2] = {{t, 0}, {t, 0}};
    REQUIRE(::utimensat(AT_FDCWD, l.c_str(), ts, AT_SYMLINK_NOFOLLOW) == 0);
  }
  const std::string dirs = (dir.path() / "a").string() + ", " + (dir.path() / "missing").string();
  SECTION("dry run") {
    auto id = engine.start("cleanup-resources", {.params = {{"dirs", dirs}, {"dry_run", "true"}}}).value();
    REQUIRE(drive(engine, [&] { return !engine.is_active(id); }));
    CHECK(outputs(store, id, "cleanup")["files"] == "2");
    CHECK(outputs(store, id, "cleanup")["bytes_freed"] == "0");
    CHECK(fs::exists(old1));
    CHECK(fs::exists(old2));
  }
  SECTION("for real") {
    auto id = engine.start("cleanup-resources", {.params = {{"dirs", dirs}}}).value();
    REQUIRE(drive(engine, [&] { return !engine.is_active(id); }));
    REQUIRE(store.get_run(id).value()->state == RunState::succeeded);
    auto out = outputs(store, id, "cleanup");
    CHECK(out["files"] == "2");
    CHECK(out["bytes_freed"] == "150");
    CHECK_FALSE(fs::exists(old1));
    CHECK_FALSE(fs::exists(old2));
    CHECK(fs::exists(fresh));
    CHECK(fs::exists(other));  // not a listed directory, and reached only through links
    CHECK(fs::is_symlink(file_link));
    CHECK(fs::is_symlink(dir_link));
    auto logs = store.run_attempts(id, std::nullopt).value();
    CHECK_THAT(logs[0].stdout_text, Catch::Contains("missing: not a directory; skipped"));
  }
}

TEST_CASE("builtins: hourly-resource-check sums up the last hour of samples against the thresholds and emits resource.high") {
  storage::MemoryStore store;
  testing::ManualClock clock;
  WorkflowEngine engine(store, clock);
  BuiltinSettings settings;
  settings.cpu_high = 80;
  settings.disk_high = 90;
  REQUIRE(register_builtins(engine, store, settings));
  SECTION("no samples: it says where they come from, and succeeds") {
    auto id = engine.start("hourly-resource-check", {}).value();
    REQUIRE(drive(engine, [&] { return !engine.is_active(id); }));
    REQUIRE(store.get_run(id).value()->state == RunState::succeeded);
    CHECK(outputs(store, id, "check")["samples"] == "0");
    CHECK_THAT(store.run_attempts(id, std::nullopt).value()[0].stdout_text, Catch::Contains("is the collector running"));
  }
  SECTION("a CPU peak and one full disk of two: above, with an event; older samples are left out") {
    std::vector<storage::MetricPoint> points;
    const double cpu[] = {40, 50, 95, 45};
    for (int i = 0; i < 4; ++i) points.push_back({"cpu_usage", "", clock.now() - std::chrono::minutes(50 - 10 * i), cpu[i]});
    points.push_back({"cpu_usage", "", clock.now() - 2h, 99});  // outside the hour
    points.push_back({"memory_usage", "", clock.now() - 5min, 60});
    points.push_back({"disk_usage", "mount=/", clock.now() - 5min, 50});
    points.push_back({"disk_usage", "mount=/data", clock.now() - 5min, 93});
    REQUIRE(store.append_metric_points(points));
    auto id = engine.start("hourly-resource-check", {}).value();
    REQUIRE(drive(engine, [&] { return !engine.is_active(id); }));
    REQUIRE(store.get_run(id).value()->state == RunState::succeeded);
    auto out = outputs(store, id, "check");
    CHECK(out["samples"] == "7");
    CHECK(out["cpu_mean"] == "57.5");
    CHECK(out["cpu_max"] == "95.0");
    CHECK(out["memory_max"] == "60.0");
    CHECK(out["disk_max"] == "93.0");
    CHECK(out["above"] == "cpu_usage,disk_usage{mount=/data}");
    auto events = store.list_events({.name = "resource.high"}).value();
    REQUIRE(events.size() == 1);
    CHECK_THAT(events[0].payload, Catch::Contains("mount=/data"));
  }
}

TEST_CASE("builtins: the seed jobs aggregate yesterday, deliver last week's report, update forecasts and retry deliveries") {
  using namespace std::chrono;
  test::TempDir dir;
  storage::MemoryStore store;
  testing::ManualClock clock(sys_days{2026y / March / 2} + 30min);  // a Monday, just after midnight UTC
  metrics::MetricsAggregator agg(store, clock, {});
  std::vector<metrics::UsageEvent> events;
  for (int i = 0; i < 3; ++i) {
    metrics::UsageEvent e;
    e.time = sys_days{2026y / March / 1} + hours(10 + i);
    e.user_id = fmt::format("u{}", i % 2);
    e.feature = "vocal-coach";
    e.event_type = "start";
    events.push_back(e);
  }
  REQUIRE(agg.ingest(events));
  std::vector<metrics::RevenueRecord> revenue;
  for (int d = 0; d < 28; ++d) {
    metrics::RevenueRecord r;
    r.date = year_month_day{sys_days{2026y / February / 2} + days{d}};
    r.plan = "pro";
    r.total_revenue = 100 + d + 10 * (d % 7 == 0);
    r.active_users = 50 + d;
    revenue.push_back(r);
  }
  REQUIRE(agg.ingest_revenue(revenue));

  BuiltinSettings settings;
  settings.reports.targets = {metrics::parse_target("file:" + dir.file("reports") + "/").value()};
  settings.reports.targets[0].format = metrics::ReportFormat::markdown;
  WorkflowEngine engine(store, clock);
  REQUIRE(register_builtins(engine, store, settings));
  auto run = [&](const std::string& name, std::map<std::string, std::string> params = {}) {
    auto id = engine.start(name, {.params = std::move(params)}).value();
    REQUIRE(drive(engine, [&] { return !engine.is_active(id); }));
    return id;
  };

  const auto agg_run = run("daily-metrics-aggregation");
  CHECK(store.get_run(agg_run).value()->state == RunState::succeeded);
  auto out = outputs(store, agg_run, "aggregate");
  CHECK(out["period"] == "2026-03-01");
  CHECK(out["events"] == "3");
  CHECK(out["unique_users"] == "2");
  CHECK(store.get_rollup("UTC", "2026-03-01").value()->state == "done");

  const auto report_run = run("weekly-report-generation");
  CHECK(store.get_run(report_run).value()->state == RunState::succeeded);
  out = outputs(store, report_run, "report");
  CHECK(out["report"] == "weekly-2026-W09");
  CHECK(out["delivered"] == "1");
  CHECK(fs::exists(fs::path(dir.file("reports")) / "weekly-2026-W09.md"));
  // Run again: the same report is not sent twice.
  const auto again = run("weekly-report-generation");
  CHECK(outputs(store, again, "report")["deliveries"] == "1");
  CHECK(store.list_deliveries({.limit = 0}).value().size() == 1);

  const auto fc_run = run("forecast-update", {{"horizon", "7"}});
  CHECK(store.get_run(fc_run).value()->state == RunState::succeeded);
  out = outputs(store, fc_run, "forecast");
  CHECK_THAT(out["forecasts"], Catch::Matches("revenue:\\d+,users:\\d+"));
  CHECK_THAT(out["skipped"], Catch::Contains("usage: usage has data on one day"));  // one day of events: too short
  CHECK(store.list_forecasts({.metric = std::string("revenue")}).value().at(0).horizon == 7);
  CHECK_THAT(store.list_forecasts({}).value().at(0).reason, Catch::Contains("workflow forecast-update run"));

  const auto retry_run = run("delivery-retry");
  CHECK(outputs(store, retry_run, "retry")["attempted"] == "0");

  // The same day's forecast is not made twice (a catch-up, a manual run).
  const auto twice = run("forecast-update", {{"horizon", "7"}});
  CHECK(outputs(store, twice, "forecast")["forecasts"].empty());
  CHECK_THAT(outputs(store, twice, "forecast")["skipped"], Catch::Contains("was made today"));
  CHECK(store.list_forecasts({.metric = std::string("revenue"), .limit = 0}).value().size() == 1);

  // A delivery given up fails the run (a rerun would not send the same report again).
  test::HttpServer refusing(400, "bad payload");
  BuiltinSettings hooked;
  hooked.reports.targets = {metrics::parse_target("webhook:" + refusing.url()).value()};
  storage::MemoryStore other;
  REQUIRE(metrics::MetricsAggregator(other, clock, {}).ingest_revenue(revenue));
  WorkflowEngine hooked_engine(other, clock);
  REQUIRE(register_builtins(hooked_engine, other, hooked));
  auto refused = hooked_engine.start("weekly-report-generation").value();
  REQUIRE(drive(hooked_engine, [&] { return !hooked_engine.is_active(refused); }));
  CHECK(other.get_run(refused).value()->state == RunState::failed);
  CHECK_THAT(other.run_attempts(refused, std::nullopt).value().back().error, Catch::Contains("was given up"));

  // Without report targets the report job has nothing to do; with a configuration problem it fails, saying which.
  storage::MemoryStore bare;
  WorkflowEngine plain(bare, clock);
  REQUIRE(register_builtins(plain, bare));
  auto id = plain.start("weekly-report-generation", {.params = {{"date", "2026-02-25"}}}).value();
  REQUIRE(drive(plain, [&] { return !plain.is_active(id); }));
  CHECK(bare.get_run(id).value()->state == RunState::succeeded);
  CHECK(outputs(bare, id, "report")["deliveries"] == "0");
  BuiltinSettings broken;
  broken.reports_problem = "reports.smtp_port: 25.5 is not a whole number";
  storage::MemoryStore third;
  WorkflowEngine broken_engine(third, clock);
  REQUIRE(register_builtins(broken_engine, third, broken));
  for (const char* job : {"weekly-report-generation", "delivery-retry"}) {
    auto r = broken_engine.start(job).value();
    REQUIRE(drive(broken_engine, [&] { return !broken_engine.is_active(r); }));
    CHECK(third.get_run(r).value()->state == RunState::failed);
    CHECK_THAT(third.run_attempts(r, std::nullopt).value().back().error, Catch::Contains("reports.smtp_port: 25.5 is not a whole number"));
  }
  // A bad period is refused by name.
  auto bad = plain.start("daily-metrics-aggregation", {.params = {{"period", "hourly"}}}).value();
  REQUIRE(drive(plain, [&] { return !plain.is_active(bad); }));
  CHECK_THAT(bare.run_attempts(bad, std::nullopt).value().back().error, Catch::Contains("period must be daily, weekly or monthly"));
}
