#include <automation/storage/sqlite_store.hpp>

#include "storage/schema.hpp"
#include "storage/task_stats.hpp"
#include "support/temp_dir.hpp"

#include <fmt/format.h>
#include <sqlite3.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

using namespace automation;
using namespace automation::storage;
namespace fs = std::filesystem;

namespace {

// Raw sqlite3 access, independent of the code under test.
void raw_exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  INFO((err ? err : ""));
  sqlite3_free(err);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

std::string raw_text(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
  std::string out;
  if (sqlite3_step(st) == SQLITE_ROW) out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

AuditRecord rec(std::string actor = "user:t") {
  AuditRecord r;
  r.actor = std::move(actor);
  r.action = "test.write";
  r.resource = "store";
  return r;
}

}  // namespace

TEST_CASE("a new database gets WAL, the schema, STRICT tables and our application id") {
  test::TempDir dir;
  const auto path = dir.file("sub/dir/a.db");  // parent directories are created
  auto store = SqliteStore::open(path);
  REQUIRE(store);
  CHECK(fs::exists(path));
  auto info = (*store)->info().value();
  CHECK(info.journal_mode == "wal");
  CHECK(info.synchronous == "normal");
  CHECK(info.schema_version == latest_schema_version());
  CHECK(info.files.at(0).path == path);
  CHECK(info.files.at(0).bytes > 0);
  store->reset();
  CHECK(raw_text(path, "PRAGMA application_id") == std::to_string(storage::detail::kApplicationId));
  CHECK(raw_text(path, "SELECT strict FROM pragma_table_list WHERE name = 'audit_log'") == "1");
}

TEST_CASE("synchronous FULL is selectable") {
  test::TempDir dir;
  OpenOptions o;
  o.synchronous = Synchronous::full;
  auto store = SqliteStore::open(dir.file("f.db"), o);
  REQUIRE(store);
  CHECK((*store)->info().value().synchronous == "full");
}

TEST_CASE("times are stored as epoch milliseconds UTC and the audit log is append-only") {
  test::TempDir dir;
  const auto path = dir.file("a.db");
  {
    auto store = SqliteStore::open(path).value();
    auto r = rec();
    r.time = from_epoch_ms(1767225600123);
    REQUIRE(store->append_audit(std::vector{r}));
  }
  CHECK(raw_text(path, "SELECT ts_ms FROM audit_log") == "1767225600123");
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  CHECK(sqlite3_exec(db, "UPDATE audit_log SET actor = 'mallory'", nullptr, nullptr, &err) != SQLITE_OK);
  CHECK_THAT(std::string(err ? err : ""), Catch::Contains("append-only"));
  sqlite3_free(err);
  sqlite3_close(db);
}

TEST_CASE("a database from a newer version is refused with schema_too_new and left byte-for-byte untouched") {
  test::TempDir dir;
  const auto path = dir.file("new.db");
  { REQUIRE(SqliteStore::open(path)); }
  raw_exec(path, "PRAGMA user_version = 99; PRAGMA journal_mode = DELETE;");
  const auto before = test::read_file(path);
  auto store = SqliteStore::open(path);
  REQUIRE_FALSE(store);
  CHECK(store.error().is(errc::schema_too_new));
  CHECK_THAT(store.error().message, Catch::Contains("99"));
  CHECK_THAT(store.error().message, Catch::Contains("not modified"));
  CHECK(test::read_file(path) == before);
  CHECK(raw_text(path, "PRAGMA journal_mode") == "delete");  // we did not switch it to WAL
}

TEST_CASE("a file that is not SQLite is refused with corrupt and not modified") {
  test::TempDir dir;
  const auto path = dir.file("junk.db");
  std::ofstream(path) << "this is not a database, it is a CSV,1,2,3\n" << std::string(5000, 'x');
  const auto before = test::read_file(path);
  auto store = SqliteStore::open(path);
  REQUIRE_FALSE(store);
  CHECK(store.error().is(errc::corrupt));
  CHECK_THAT(store.error().message, Catch::Contains("junk.db"));
  CHECK_THAT(store.error().message, Catch::Contains("not an SQLite database"));
  CHECK(test::read_file(path) == before);
}

TEST_CASE("another application's SQLite database is refused and not modified") {
  test::TempDir dir;
  const auto path = dir.file("other.db");
  raw_exec(path, "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers VALUES (1, 'x');");
  const auto before = test::read_file(path);
  auto store = SqliteStore::open(path);
  REQUIRE_FALSE(store);
  CHECK(store.error().is(errc::corrupt));
  CHECK_THAT(store.error().message, Catch::Contains("another application"));
  CHECK(test::read_file(path) == before);
}

TEST_CASE("a damaged database is detected by the integrity check") {
  test::TempDir dir;
  const auto path = dir.file("damaged.db");
  {
    auto store = SqliteStore::open(path).value();
    std::vector<AuditRecord> many(2000, rec());
    REQUIRE(store->append_audit(many));
  }
  raw_exec(path, "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE;");
  // Overwrite the middle of the file (table and index pages) with garbage, keeping the header.
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096 * 3);
    const std::string junk(4096 * 4, '\x5a');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  auto store = SqliteStore::open(path, {.migrate = false});
  if (!store) {
    CHECK(store.error().is(errc::corrupt));
  } else {
    auto check = (*store)->check_integrity();
    REQUIRE_FALSE(check);
    CHECK(check.error().is(errc::corrupt));
    CHECK_THAT(check.error().message, Catch::Contains("damaged.db"));
  }
}

TEST_CASE("missing databases: read-only and no-create opens say not_found and create nothing") {
  test::TempDir dir;
  const auto path = dir.file("missing.db");
  auto ro = SqliteStore::open(path, {.read_only = true});
  REQUIRE_FALSE(ro);
  CHECK(ro.error().is(errc::not_found));
  auto nc = SqliteStore::open(path, {.create_if_missing = false});
  REQUIRE_FALSE(nc);
  CHECK(nc.error().is(errc::not_found));
  CHECK_FALSE(fs::exists(path));
  auto dirpath = SqliteStore::open(dir.path().string());
  REQUIRE_FALSE(dirpath);
  CHECK(dirpath.error().is(errc::invalid_argument));
}

TEST_CASE("opening without migrating leaves an old database alone until migrate() is called") {
  test::TempDir dir;
  const auto path = dir.file("old.db");
  auto store = SqliteStore::open(path, {.migrate = false}).value();
  CHECK(store->schema_version().value() == 0);
  auto write = store->append_audit(std::vector{rec()});
  REQUIRE_FALSE(write);
  CHECK(write.error().is(errc::unavailable));
  CHECK_THAT(write.error().message, Catch::Contains("autoctl store migrate"));
  CHECK(pending_migrations(0).size() == static_cast<std::size_t>(latest_schema_version()));
  auto report = store->migrate().value();
  CHECK(report.from_version == 0);
  CHECK(report.to_version == latest_schema_version());
  CHECK(report.applied.size() == static_cast<std::size_t>(latest_schema_version()));
  CHECK(store->append_audit(std::vector{rec()}));
  CHECK(store->migrate().value().applied.empty());
}

TEST_CASE("read-only stores refuse writes with permission_denied") {
  test::TempDir dir;
  const auto path = dir.file("ro.db");
  { REQUIRE(SqliteStore::open(path)); }
  auto store = SqliteStore::open(path, {.read_only = true}).value();
  CHECK(store->query_audit({}).value().empty());
  CHECK(store->append_audit(std::vector{rec()}).error().is(errc::permission_denied));
  CHECK(store->migrate().error().is(errc::permission_denied));
}

TEST_CASE("two connections migrating one new file at once apply each migration once") {
  test::TempDir dir;
  const auto path = dir.file("race.db");
  std::vector<std::unique_ptr<SqliteStore>> stores(4);
  std::vector<std::string> errors(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      auto s = SqliteStore::open(path);
      if (s) {
        stores[i] = std::move(s.value());
      } else {
        errors[i] = s.error().message;
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < 4; ++i) {
    INFO(errors[i]);
    REQUIRE(stores[i]);
  }
  CHECK(stores[0]->schema_version().value() == latest_schema_version());
  REQUIRE(stores[1]->append_audit(std::vector{rec("one")}));
  REQUIRE(stores[2]->append_audit(std::vector{rec("two")}));
  CHECK(stores[3]->query_audit({.limit = 0}).value().size() == 2);
}

TEST_CASE("a writer blocked past busy_timeout gets errc::busy and nothing is written") {
  test::TempDir dir;
  const auto path = dir.file("busy.db");
  auto store = SqliteStore::open(path, {.busy_timeout = std::chrono::milliseconds(50)}).value();
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
  auto r = store->append_audit(std::vector{rec()});
  REQUIRE_FALSE(r);
  CHECK(r.error().is(errc::busy));
  CHECK_THAT(r.error().message, Catch::Contains("try again"));
  sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  CHECK(store->query_audit({}).value().empty());
  CHECK(store->append_audit(std::vector{rec()}));
}

TEST_CASE("open_store parses URIs") {
  test::TempDir dir;
  CHECK(open_store("memory:").value()->backend() == "memory");
  CHECK(open_store("sqlite:" + dir.file("u.db")).value()->backend() == "sqlite");
  CHECK(open_store(dir.file("bare.db")).value()->backend() == "sqlite");
  auto bad = open_store("postgres://host/db");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().is(errc::invalid_argument));
  CHECK_THAT(bad.error().message, Catch::Contains("postgres://host/db"));
  CHECK_FALSE(open_store("sqlite:"));
}

TEST_CASE("task statistics from SQLite's hourly rollups and edge records equal memory's over any range") {
  test::TempDir dir;
  auto sqlite = SqliteStore::open(dir.file("p.db")).value();
  auto memory = open_store("memory:").value();
  const auto t0 = from_epoch_ms(1'700'000'000'000 - 1'700'000'000'000 % 3'600'000 + 1'234'567);  // 20 min into an hour
  auto row = [&](int k, std::chrono::seconds at) {
    TaskRecord r;
    r.domain = k % 3 ? "workflow" : "healer";
    r.action = "a" + std::to_string(k % 7);
    r.params = k % 5 ? R"({"region":"eu"})" : R"({"region":"us","size":2})";
    r.outcome = k % 11 == 0 ? TaskOutcome::failure : k % 13 == 0 ? TaskOutcome::timeout : TaskOutcome::success;
    if (r.outcome == TaskOutcome::failure) r.error = k % 2 ? "exit 1" : "exit 2";
    r.started = t0 + at;
    r.duration = std::chrono::microseconds((k * 7919) % 1000 * 1013 + k % 17);  // beyond 3 digits: quantized
    r.ended = r.started + r.duration;
    if (k % 4) r.impact = k % 10;
    return r;
  };
  std::vector<TaskRecord> rows;
  for (int k = 0; k < 3001; ++k) rows.push_back(row(k, std::chrono::seconds(k * 7)));  // ~5.8 hours
  // In batches that end mid-hour, so rollups are merged across appends.
  for (std::size_t i = 0; i < rows.size(); i += 700) {
    const std::span<const TaskRecord> batch(rows.data() + i, std::min<std::size_t>(700, rows.size() - i));
    REQUIRE(sqlite->append_tasks(batch));
    REQUIRE(memory->append_tasks(batch));
  }
  auto same = [](const std::vector<TaskGroupStats>& a, const std::vector<TaskGroupStats>& b) {
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      INFO(a[i].domain << "/" << a[i].action);
      CHECK(a[i].domain == b[i].domain);
      CHECK(a[i].action == b[i].action);
      CHECK(a[i].count == b[i].count);
      CHECK(a[i].successes == b[i].successes);
      CHECK(a[i].timeouts == b[i].timeouts);
      CHECK(a[i].mean_duration == b[i].mean_duration);
      CHECK(a[i].p50_duration == b[i].p50_duration);
      CHECK(a[i].p95_duration == b[i].p95_duration);
      CHECK(a[i].mean_impact.value_or(-1) == Approx(b[i].mean_impact.value_or(-1)));
      CHECK(a[i].top_failures == b[i].top_failures);
      REQUIRE(a[i].success_params.size() == b[i].success_params.size());
      for (std::size_t j = 0; j < a[i].success_params.size(); ++j) {
        CHECK(a[i].success_params[j].value == b[i].success_params[j].value);
        CHECK(a[i].success_params[j].support == b[i].success_params[j].support);
      }
    }
  };
  const auto hour = std::chrono::hours(1);
  const auto h0 = t0 - std::chrono::milliseconds(1'234'567);  // the first record's hour
  const std::vector<TaskStatsQuery> queries{
      {},
      {.since = t0 + std::chrono::seconds(100), .until = t0 + std::chrono::seconds(20000)},  // edges and whole hours
      {.since = t0 + std::chrono::seconds(100), .until = t0 + std::chrono::seconds(300)},    // inside one hour
      {.since = h0 + hour, .until = h0 + 4 * hour},                                          // exactly whole hours
      {.since = h0 + hour},
      {.until = h0 + 3 * hour + std::chrono::seconds(1)},
      {.domain = "healer"},
      {.since = t0 + std::chrono::seconds(5000), .domain = "workflow", .action = "a3"},
  };
  auto compare_all = [&](SqliteStore& s) {
    int nonempty = 0;
    for (const auto& q : queries) {
      auto m = memory->task_stats(q).value();
      nonempty += !m.empty();
      same(s.task_stats(q).value(), m);
    }
    return nonempty;
  };
  CHECK(compare_all(*sqlite) == static_cast<int>(queries.size()));
  // A late record into an hour that already has a rollup.
  const auto late = row(3, std::chrono::seconds(3 * 3600));
  REQUIRE(sqlite->append_tasks(std::span(&late, 1)));
  REQUIRE(memory->append_tasks(std::span(&late, 1)));
  CHECK(compare_all(*sqlite) == static_cast<int>(queries.size()));
  // Pruning mid-hour: whole hours lose their rollups and the cut hour is recomputed.
  const auto cut = h0 + hour + std::chrono::minutes(25);
  CHECK(sqlite->prune_tasks(cut).value() == memory->prune_tasks(cut).value());
  CHECK(compare_all(*sqlite) == static_cast<int>(queries.size()) - 1);  // the range inside the first hour is gone
  // A database from before the rollups: the migration builds them from the records.
  sqlite.reset();
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(dir.file("p.db").c_str(), &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db,
                       "DROP TABLE discovery_scans; DROP TABLE registry_nodes; DROP TABLE api_token; DROP TABLE healing_record; "
                       "DROP TABLE scaling_record; DROP TABLE forecast; DROP TABLE alert; DROP TABLE metric_point; DROP TABLE delivery; "
                       "DROP TABLE task_rollup; "
                       "DROP TABLE workflow_attempt; DROP TABLE workflow_step; DROP TABLE workflow_run; DROP TABLE schedule_state; "
                       "DROP TABLE schedule_fire; DROP TABLE event; DROP TABLE metric_rollup; DROP TABLE revenue_daily; "
                       "DROP TABLE usage_partial_zone; DROP TABLE usage_partial; DROP TABLE usage_block; PRAGMA user_version = 2;",
                       nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  auto migrated = SqliteStore::open(dir.file("p.db")).value();
  CHECK(migrated->schema_version().value() == latest_schema_version());
  CHECK(compare_all(*migrated) == static_cast<int>(queries.size()) - 1);
}

TEST_CASE("migration 5 keeps the fires and schedule state of a version 4 database") {
  test::TempDir dir;
  const auto path = dir.file("v4.db");
  std::string sql;
  for (const auto& m : storage::detail::migrations())
    if (m.version <= 4) sql += m.sql;
  sql +=
      "INSERT INTO schedule_state VALUES ('nightly', 1, 'paused by ada', 2, 1700000000000, 1700000000001, 'user:ada', 3);"
      "INSERT INTO schedule_fire VALUES ('nightly', 1700000000000, 7, 'started', 'cron 0 2 * * *', 1700000000002);"
      "INSERT INTO schedule_fire VALUES ('nightly', 1700000060000, 0, 'buffered', 'overlap', 1700000060002);"
      "PRAGMA user_version = 4;" +
      fmt::format("PRAGMA application_id = {};", storage::detail::kApplicationId);
  raw_exec(path, sql);
  auto store = SqliteStore::open(path).value();
  CHECK(store->schema_version().value() == latest_schema_version());
  auto rec = store->get_schedule("nightly").value().value();
  CHECK(rec.paused);
  CHECK(rec.reason == "paused by ada");
  CHECK(rec.consecutive_failures == 2);
  CHECK(rec.version == 3);
  CHECK(rec.last_event_id == 0);
  auto fires = store->list_fires("nightly", 0).value();
  REQUIRE(fires.size() == 2);
  CHECK(fires[1].run_id == 7);
  CHECK(fires[1].event_id == 0);
  CHECK(fires[1].reason == "cron 0 2 * * *");
  CHECK(fires[0].outcome == "buffered");
}

TEST_CASE("migration 9 adds the scaling and healing areas to a version 8 database and keeps its data") {
  test::TempDir dir;
  const auto path = dir.file("v8.db");
  std::string sql;
  for (const auto& m : storage::detail::migrations())
    if (m.version <= 8) sql += m.sql;
  sql +=
      "INSERT INTO forecast (metric, time_zone, created_ms, first_day, horizon, method, backend, document, inputs, reason) VALUES "
      "('revenue', 'UTC', 1700000000000, 20000, 7, 'theta', 'statistical', '{}', '{}', 'kept');"
      "PRAGMA user_version = 8;" +
      fmt::format("PRAGMA application_id = {};", storage::detail::kApplicationId);
  raw_exec(path, sql);
  CHECK(pending_migrations(8) == std::vector<std::string>{"9: scaling and healing history", "10: api tokens", "11: registry"});
  {
    // Opened without migrating, the new areas say the schema is behind instead of failing on a missing table.
    auto old = SqliteStore::open(path, {.migrate = false}).value();
    CHECK(old->schema_version().value() == 8);
    CHECK(old->list_scaling({}).error().is(errc::unavailable));
    HealingRecord h;
    h.target = "db";
    h.kind = "state";
    h.state = "healthy";
    CHECK(old->append_healing(h).error().is(errc::unavailable));
    auto info = old->info().value();
    auto area = [&](std::string_view name) {
      return std::find_if(info.areas.begin(), info.areas.end(), [&](const AreaInfo& a) { return a.area == name; });
    };
    REQUIRE(area("scaling") != info.areas.end());
    CHECK(area("scaling")->rows == 0);
    CHECK(area("healing")->table == "healing_record");
  }
  auto store = SqliteStore::open(path).value();
  CHECK(store->schema_version().value() == latest_schema_version());
  CHECK(store->list_forecasts({}).value().at(0).reason == "kept");
  for (const char* table : {"scaling_record", "healing_record"})
    CHECK(raw_text(path, fmt::format("SELECT strict FROM pragma_table_list WHERE name = '{}'", table)) == "1");
  for (const char* index : {"scaling_record_resource", "scaling_record_time", "healing_record_target", "healing_record_time"})
    CHECK(raw_text(path, fmt::format("SELECT name FROM sqlite_master WHERE type = 'index' AND name = '{}'", index)) == index);
  ScalingRecord r;
  r.resource = "web";
  r.action = "decide";
  r.time = TimePoint(std::chrono::milliseconds(1'700'000'000'123));
  r.outcome = "pending";
  const auto id = store->append_scaling(r, 0).value();
  CHECK(raw_text(path, fmt::format("SELECT time_ms FROM scaling_record WHERE id = {}", id)) == "1700000000123");
  // The CHECK constraints hold what validate() holds, for writers that bypass the library.
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  for (const char* bad :
       {"INSERT INTO scaling_record (resource, action, time_ms, actor, current_size, recommended_size, desired_size, reason, message, "
        "inputs, active, metrics_ok, dry_run, outcome, error, updated_ms) VALUES ('-web', 'decide', 0, '', 0, 0, 0, '', '', '{}', 0, 1, 0, "
        "'pending', '', 0)",
        "INSERT INTO scaling_record (resource, action, time_ms, actor, current_size, recommended_size, desired_size, reason, message, "
        "inputs, active, metrics_ok, dry_run, outcome, error, updated_ms) VALUES ('web', 'decide', 0, '', -1, 0, 0, '', '', '{}', 0, 1, 0, "
        "'pending', '', 0)",
        "INSERT INTO healing_record (target, time_ms, kind, state, action, step, attempt, actor, reason, detail, dry_run, outcome, error, "
        "updated_ms) VALUES ('db', 0, 'state', 'healthy', 'restart', 0, 0, '', '', '{}', 0, '', '', 0)",
        "INSERT INTO healing_record (target, time_ms, kind, state, action, step, attempt, actor, reason, detail, dry_run, outcome, error, "
        "updated_ms) VALUES ('db', 0, 'action', 'healing', 'restart', 0, 0, '', '', '{}', 0, '', '', 0)"}) {
    INFO(bad);
    CHECK(sqlite3_exec(db, bad, nullptr, nullptr, nullptr) == SQLITE_CONSTRAINT);
  }
  sqlite3_close(db);
}

TEST_CASE("migration 10 adds the tokens area to a version 9 database and keeps its data") {
  test::TempDir dir;
  const auto path = dir.file("v9.db");
  std::string sql;
  for (const auto& m : storage::detail::migrations())
    if (m.version <= 9) sql += m.sql;
  sql +=
      "INSERT INTO scaling_record (resource, action, time_ms, actor, current_size, recommended_size, desired_size, reason, message, "
      "inputs, active, metrics_ok, dry_run, outcome, error, updated_ms) VALUES ('web', 'decide', 1700000000000, 'scaler', 2, 3, 3, "
      "'StepUp', 'kept', '{}', 1, 1, 0, 'applied', '', 1700000000000);"
      "INSERT INTO healing_record (target, time_ms, kind, state, action, step, attempt, actor, reason, detail, dry_run, outcome, error, "
      "updated_ms) VALUES ('db', 1700000000000, 'state', 'healthy', '', 0, 0, 'healer', 'kept', '{}', 0, '', '', 1700000000000);"
      "PRAGMA user_version = 9;" +
      fmt::format("PRAGMA application_id = {};", storage::detail::kApplicationId);
  raw_exec(path, sql);
  CHECK(pending_migrations(9) == std::vector<std::string>{"10: api tokens", "11: registry"});
  TokenRecord t;
  t.id = "atk_3f9a0c1d2e4b5a6f";
  t.name = "deploy";
  t.role = "operator";
  t.secret_hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
  t.created = TimePoint(std::chrono::milliseconds(1'700'000'000'123));
  t.created_by = "user:alice";
  {
    // Opened without migrating, the new area says the schema is behind instead of failing on a missing table.
    auto old = SqliteStore::open(path, {.migrate = false}).value();
    CHECK(old->schema_version().value() == 9);
    CHECK(old->list_tokens(true).error().is(errc::unavailable));
    CHECK(old->get_token(t.id).error().is(errc::unavailable));
    CHECK(old->create_token(t).error().is(errc::unavailable));
    CHECK(old->revoke_token(t.id, t.created, "user:bob", "").error().is(errc::unavailable));
    CHECK(old->touch_token(t.id, t.created, "10.0.0.1:1").error().is(errc::unavailable));
    auto info = old->info().value();
    auto area = std::find_if(info.areas.begin(), info.areas.end(), [&](const AreaInfo& a) { return a.area == "tokens"; });
    REQUIRE(area != info.areas.end());
    CHECK(area->table == "api_token");
    CHECK(area->rows == 0);
  }
  auto store = SqliteStore::open(path).value();
  CHECK(store->schema_version().value() == latest_schema_version());
  CHECK(store->list_scaling({}).value().at(0).message == "kept");
  CHECK(store->list_healing({}).value().at(0).reason == "kept");
  CHECK(raw_text(path, "SELECT strict FROM pragma_table_list WHERE name = 'api_token'") == "1");
  for (const char* index : {"api_token_live_name", "api_token_created"})
    CHECK(raw_text(path, fmt::format("SELECT name FROM sqlite_master WHERE type = 'index' AND name = '{}'", index)) == index);
  // The name index is unique among the tokens not revoked only.
  CHECK(raw_text(path, "SELECT sql FROM sqlite_master WHERE name = 'api_token_live_name'") ==
        "CREATE UNIQUE INDEX api_token_live_name ON api_token (name) WHERE revoked_ms = 0");
  REQUIRE(store->create_token(t));
  CHECK(raw_text(path, "SELECT created_ms FROM api_token WHERE id = 'atk_3f9a0c1d2e4b5a6f'") == "1700000000123");
  CHECK(raw_text(path, "SELECT revoked_ms || ',' || last_used_ms || ',' || expires_ms FROM api_token") == "0,0,0");
  auto info = store->info().value();
  CHECK(std::find_if(info.areas.begin(), info.areas.end(), [](const AreaInfo& a) { return a.area == "tokens"; })->rows == 1);

  // The CHECK constraints and the partial unique index hold what validate() and create_token hold, for
  // writers that bypass the library.
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  const std::string hash = "'9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'";
  auto insert = [&](std::string id, std::string name, std::string role, std::string secret_hash, std::string created_by,
                    std::string revoked) {
    return fmt::format(
        "INSERT INTO api_token (id, name, role, secret_hash, created_ms, created_by, expires_ms, revoked_ms, revoked_by, revoke_reason, "
        "last_used_ms, last_used_from) VALUES ({}, {}, {}, {}, 0, {}, 0, {}, '', '', 0, '')",
        id, name, role, secret_hash, created_by, revoked);
  };
  for (const auto& bad : {insert("'atk_3f9a0c1d2e4b5a6f'", "'other'", "'viewer'", hash, "'u'", "0"),  // the id exists
                          insert("'atk_x'", "'deploy'", "'viewer'", hash, "'u'", "0"),                // a live token has the name
                          insert("'AT'", "'x'", "'viewer'", hash, "'u'", "0"), insert("'atk-x'", "'x'", "'viewer'", hash, "'u'", "0"),
                          insert("'atk_x'", "''", "'viewer'", hash, "'u'", "0"), insert("'atk_x'", "'x'", "'root'", hash, "'u'", "0"),
                          insert("'atk_x'", "'x'", "'viewer'", "'ABC'", "'u'", "0"), insert("'atk_x'", "'x'", "'viewer'", hash, "''", "0"),
                          insert("'atk_x'", "'x'", "'viewer'", hash, "'u'", "5")}) {  // revoked without revoked_by
    INFO(bad);
    CHECK(sqlite3_exec(db, bad.c_str(), nullptr, nullptr, nullptr) == SQLITE_CONSTRAINT);
  }
  // A revoked token's name is free again.
  CHECK(sqlite3_exec(db, "UPDATE api_token SET revoked_ms = 5, revoked_by = 'u'", nullptr, nullptr, nullptr) == SQLITE_OK);
  CHECK(sqlite3_exec(db, insert("'atk_x'", "'deploy'", "'viewer'", hash, "'u'", "0").c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  CHECK(store->list_tokens(false).value().at(0).id == "atk_x");
  CHECK(store->list_tokens(true).value().size() == 2);
}

TEST_CASE("migration 11 adds the registry area to a version 10 database and keeps its data") {
  test::TempDir dir;
  const auto path = dir.file("v10.db");
  std::string sql;
  for (const auto& m : storage::detail::migrations())
    if (m.version <= 10) sql += m.sql;
  sql +=
      "INSERT INTO api_token (id, name, role, secret_hash, created_ms, created_by, expires_ms, revoked_ms, revoked_by, revoke_reason, "
      "last_used_ms, last_used_from) VALUES ('atk_kept', 'deploy', 'operator', "
      "'9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08', 1700000000000, 'user:alice', 0, 0, '', '', 0, '');"
      "PRAGMA user_version = 10;" +
      fmt::format("PRAGMA application_id = {};", storage::detail::kApplicationId);
  raw_exec(path, sql);
  CHECK(pending_migrations(10) == std::vector<std::string>{"11: registry"});
  NodeRecord n;
  n.id = "web1";
  n.kind = "host";
  n.address = "10.0.0.7";
  n.source = "registered";
  n.services = R"([{"name":"api","port":8080}])";
  n.state = "up";
  n.registered = TimePoint(std::chrono::milliseconds(1'700'000'000'123));
  n.last_seen = n.state_since = n.registered;
  n.ttl = std::chrono::milliseconds(30'500);
  n.updated_by = "node web1";
  ScanRecord scan;
  scan.started = TimePoint(std::chrono::milliseconds(1'700'000'000'456));
  scan.finished = scan.started + std::chrono::seconds(2);
  scan.actor = "discovery";
  {
    // Opened without migrating, the new area says the schema is behind instead of failing on a missing table.
    auto old = SqliteStore::open(path, {.migrate = false}).value();
    CHECK(old->schema_version().value() == 10);
    CHECK(old->get_node("web1").error().is(errc::unavailable));
    CHECK(old->list_nodes().error().is(errc::unavailable));
    CHECK(old->put_node(n, 0).error().is(errc::unavailable));
    CHECK(old->delete_node("web1").error().is(errc::unavailable));
    CHECK(old->append_scan(scan).error().is(errc::unavailable));
    CHECK(old->list_scans(0, 0).error().is(errc::unavailable));
    CHECK(old->prune_scans(scan.started).error().is(errc::unavailable));
    auto info = old->info().value();
    auto area = [&](std::string_view name) {
      return std::find_if(info.areas.begin(), info.areas.end(), [&](const AreaInfo& a) { return a.area == name; });
    };
    REQUIRE(area("nodes") != info.areas.end());
    CHECK(area("nodes")->table == "registry_nodes");
    CHECK(area("nodes")->rows == 0);
    REQUIRE(area("scans") != info.areas.end());
    CHECK(area("scans")->table == "discovery_scans");
    CHECK(area("scans")->rows == 0);
  }
  auto store = SqliteStore::open(path).value();
  CHECK(store->schema_version().value() == latest_schema_version());
  CHECK(store->get_token("atk_kept").value()->name == "deploy");
  for (const char* table : {"registry_nodes", "discovery_scans"})
    CHECK(raw_text(path, fmt::format("SELECT strict FROM pragma_table_list WHERE name = '{}'", table)) == "1");
  CHECK(raw_text(path, "SELECT wr FROM pragma_table_list WHERE name = 'registry_nodes'") == "1");  // WITHOUT ROWID
  CHECK(raw_text(path, "SELECT sql FROM sqlite_master WHERE name = 'discovery_scans_started'") ==
        "CREATE INDEX discovery_scans_started ON discovery_scans (started_ms)");
  REQUIRE(store->put_node(n, 0).value() == 1);
  CHECK(raw_text(path,
                 "SELECT registered_ms || ',' || last_seen_ms || ',' || state_since_ms || ',' || ttl_ms || ',' || version FROM "
                 "registry_nodes WHERE id = 'web1'") == "1700000000123,1700000000123,1700000000123,30500,1");
  const auto id = store->append_scan(scan).value();
  CHECK(raw_text(path, fmt::format("SELECT started_ms || ',' || finished_ms FROM discovery_scans WHERE id = {}", id)) ==
        "1700000000456,1700000002456");
  auto info = store->info().value();
  CHECK(std::find_if(info.areas.begin(), info.areas.end(), [](const AreaInfo& a) { return a.area == "nodes"; })->rows == 1);
  CHECK(std::find_if(info.areas.begin(), info.areas.end(), [](const AreaInfo& a) { return a.area == "scans"; })->rows == 1);

  // The CHECK constraints hold what validate() holds, for writers that bypass the library.
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  auto node = [](std::string id, std::string kind, std::string source, std::string services, std::string labels, std::string state,
                 std::string ttl, std::string updated_by) {
    return fmt::format(
        "INSERT INTO registry_nodes (id, kind, address, source, services, depends_on, labels, state, reason, registered_ms, last_seen_ms, "
        "state_since_ms, ttl_ms, updated_by, version) VALUES ({}, {}, '', {}, {}, '[]', {}, {}, '', 0, 0, 0, {}, {}, 1)",
        id, kind, source, services, labels, state, ttl, updated_by);
  };
  auto scan_row = [](std::string started, std::string finished, std::string actor, std::string targets, std::string found,
                     std::string added) {
    return fmt::format(
        "INSERT INTO discovery_scans (started_ms, finished_ms, actor, reason, targets, found, added, lost, error) VALUES ({}, {}, {}, '', "
        "{}, {}, {}, 0, '')",
        started, finished, actor, targets, found, added);
  };
  for (const auto& bad :
       {node("'web1'", "'host'", "'registered'", "'[]'", "'{}'", "'up'", "0", "'u'"),  // the id exists
        node("'-web'", "'host'", "'registered'", "'[]'", "'{}'", "'up'", "0", "'u'"),
        node("'w'", "''", "'registered'", "'[]'", "'{}'", "'up'", "0", "'u'"),
        node("'w'", "'host'", "'found'", "'[]'", "'{}'", "'up'", "0", "'u'"),
        node("'w'", "'host'", "'registered'", "'{}'", "'{}'", "'up'", "0", "'u'"),
        node("'w'", "'host'", "'registered'", "'[]'", "'[]'", "'up'", "0", "'u'"),
        node("'w'", "'host'", "'registered'", "'[]'", "'{}'", "'gone'", "0", "'u'"),
        node("'w'", "'host'", "'registered'", "'[]'", "'{}'", "'up'", "-1", "'u'"),
        node("'w'", "'host'", "'registered'", "'[]'", "'{}'", "'up'", "0", "''"), scan_row("10", "9", "'discovery'", "'[]'", "'[]'", "0"),
        scan_row("10", "10", "''", "'[]'", "'[]'", "0"), scan_row("10", "10", "'discovery'", "'{}'", "'[]'", "0"),
        scan_row("10", "10", "'discovery'", "'[]'", "'nope'", "0"), scan_row("10", "10", "'discovery'", "'[]'", "'[]'", "-1")}) {
    INFO(bad);
    CHECK(sqlite3_exec(db, bad.c_str(), nullptr, nullptr, nullptr) == SQLITE_CONSTRAINT);
  }
  // Ids of pruned scans are never reused (AUTOINCREMENT).
  CHECK(sqlite3_exec(db, "DELETE FROM discovery_scans", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  CHECK(store->append_scan(scan).value() > id);
  CHECK(store->list_nodes().value().at(0) == [&] {
    auto stored = n;
    stored.version = 1;
    return stored;
  }());
}

TEST_CASE("task durations are quantized to three significant digits, exact below a millisecond") {
  using storage::detail::quantize_us;
  CHECK(quantize_us(0) == 0);
  CHECK(quantize_us(999) == 999);
  CHECK(quantize_us(1000) == 1000);
  CHECK(quantize_us(1234) == 1230);
  CHECK(quantize_us(987'654) == 987'000);
  CHECK(quantize_us(720'000'000) == 720'000'000);
  CHECK(quantize_us(123'456'789'012) == 123'000'000'000);
}

TEST_CASE("a task rollup keeps the most frequent failure texts and never truncates counts") {
  test::TempDir dir;
  auto sqlite = SqliteStore::open(dir.file("caps.db")).value();
  const auto t0 = from_epoch_ms(1'700'002'800'000);  // on an hour
  std::vector<TaskRecord> rows;
  for (int k = 0; k < 160; ++k) {
    TaskRecord r;
    r.domain = "workflow";
    r.action = "deploy";
    r.outcome = TaskOutcome::failure;
    r.error = k < 150 ? "request " + std::to_string(k) + " failed" : "disk full";  // 150 unique texts, one 10 times
    r.started = t0 + std::chrono::seconds(k);
    r.ended = r.started;
    rows.push_back(std::move(r));
  }
  REQUIRE(sqlite->append_tasks(rows));
  const auto s = sqlite->task_stats({.since = t0, .until = t0 + std::chrono::hours(1), .top_failures = 3}).value();  // one whole hour
  REQUIRE(s.size() == 1);
  CHECK(s[0].count == 160);
  CHECK(s[0].failures == 160);
  REQUIRE_FALSE(s[0].top_failures.empty());
  CHECK(s[0].top_failures[0] == FailureReason{"disk full", 10});
}

TEST_CASE("a rollup that does not parse is recomputed from the records instead of refusing the append") {
  test::TempDir dir;
  auto sqlite = SqliteStore::open(dir.file("damaged.db")).value();
  const auto t0 = from_epoch_ms(1'700'002'800'000);  // on an hour
  auto record = [&](int k) {
    TaskRecord r;
    r.domain = "backup";
    r.action = "nightly";
    r.outcome = k % 2 ? TaskOutcome::success : TaskOutcome::failure;
    r.error = r.outcome == TaskOutcome::failure ? "disk full" : "";
    r.started = t0 + std::chrono::minutes(k);
    r.ended = r.started;
    r.duration = std::chrono::seconds(k);
    return r;
  };
  std::vector<TaskRecord> rows{record(1), record(2), record(3)};
  REQUIRE(sqlite->append_tasks(rows));
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(dir.file("damaged.db").c_str(), &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "UPDATE task_rollup SET data = '{\"n\": \"many\"}'", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  const auto more = record(4);
  REQUIRE(sqlite->append_tasks(std::span(&more, 1)));  // the damaged rollup does not lose this record
  const auto s = sqlite->task_stats({.since = t0, .until = t0 + std::chrono::hours(1)}).value();  // whole hour: rollups only
  REQUIRE(s.size() == 1);
  CHECK(s[0].count == 4);
  CHECK(s[0].failures == 2);
  CHECK(s[0].mean_duration == std::chrono::milliseconds(2500));
  REQUIRE(s[0].top_failures.size() == 1);
  CHECK(s[0].top_failures[0] == FailureReason{"disk full", 2});
  CHECK(sqlite->query_tasks({.limit = 0}).value().size() == 4);
}

TEST_CASE("observe_statements reports every statement's run time until it is cleared") {
  test::TempDir dir;
  auto store = SqliteStore::open(dir.file("a.db"));
  REQUIRE(store);
  std::vector<std::chrono::nanoseconds> seen;
  (*store)->observe_statements([&](std::chrono::nanoseconds d) { seen.push_back(d); });
  AuditRecord r;
  r.time = TimePoint(std::chrono::seconds(1767225600));
  r.actor = "user:a";
  r.action = "x.y";
  r.resource = "r";
  REQUIRE((*store)->append_audit(std::span<const AuditRecord>(&r, 1)));
  REQUIRE((*store)->query_audit({}));
  REQUIRE(seen.size() >= 2);
  for (auto d : seen) CHECK((d >= std::chrono::nanoseconds(0) && d < std::chrono::seconds(10)));  // nanoseconds, not ms or s
  const auto n = seen.size();
  (*store)->observe_statements({});
  REQUIRE((*store)->query_audit({}));
  CHECK(seen.size() == n);
}
