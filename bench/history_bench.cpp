// TaskHistory: batched appends into SQLite and statistics over 1,000,000 records, each beside a
// raw sqlite3 baseline doing the same work without the library (inserts; a bare scan of the rows).
#include <automation/resilience/task_history.hpp>
#include <automation/storage/sqlite_store.hpp>
#include <automation/testing/manual_clock.hpp>

#include "raw_sqlite.hpp"
#include "support/temp_dir.hpp"

#include <benchmark/benchmark.h>
#include <sqlite3.h>

#include <memory>

using namespace automation;
using namespace automation::storage;

namespace {

const char* kActions[] = {"deploy-production", "test-and-build", "database-maintenance", "cleanup-resources",
                          "auto_backup",       "health_check",   "auto_optimize",        "scale_up",
                          "scale_down",        "restart"};

std::vector<TaskRecord> make_batch(std::size_t n, std::size_t offset) {
  std::vector<TaskRecord> batch(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t k = offset + i;
    auto& r = batch[i];
    r.domain = k % 3 ? "workflow" : "healer";
    r.action = kActions[k % 10];
    r.params = k % 7 == 0 ? R"({"region":"us","size":5})" : R"({"region":"eu","size":3})";
    r.outcome = k % 10 == 3 ? TaskOutcome::failure : TaskOutcome::success;
    if (r.outcome == TaskOutcome::failure) r.error = k % 20 == 3 ? "timeout talking to db" : "exit status 1";
    r.started = from_epoch_ms(1767225600000 + static_cast<std::int64_t>(k) * 1000);
    r.duration = std::chrono::milliseconds(50 + static_cast<std::int64_t>(k % 997));
    r.ended = r.started + r.duration;
    if (k % 2) r.impact = static_cast<double>(k % 5);
    r.correlation_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  }
  return batch;
}

void BM_TaskHistory_AppendBatch(benchmark::State& state) {
  test::TempDir dir;
  auto store = SqliteStore::open(dir.file("bench.db")).value();
  const auto batch = make_batch(static_cast<std::size_t>(state.range(0)), 0);
  for (auto _ : state) {
    auto r = store->append_tasks(batch);
    if (!r) state.SkipWithError(r.error().message.c_str());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_TaskHistory_AppendBatch)->Arg(100)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);

// Baseline: the same rows into the same table through a raw prepared statement, without
// validation (the JSON check of params) or hashing.
void BM_TaskHistory_RawSqliteInsert(benchmark::State& state) {
  test::TempDir dir;
  { auto s = SqliteStore::open(dir.file("raw.db")).value(); }  // same schema
  bench::RawSqlite raw(dir.file("raw.db"));
  auto* st = raw.prepare(
      "INSERT INTO task_history (domain, action, kind_hash, params, params_hash, outcome, error, started_ms, ended_ms, "
      "duration_us, impact, correlation_id) VALUES (?1, ?2, 0, ?3, 0, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
  const auto batch = make_batch(static_cast<std::size_t>(state.range(0)), 0);
  for (auto _ : state) {
    if (!raw.ok()) break;
    raw.exec("BEGIN IMMEDIATE");
    for (const auto& r : batch) {
      raw.text(st, 1, r.domain);
      raw.text(st, 2, r.action);
      raw.text(st, 3, r.params);
      raw.text(st, 4, to_string(r.outcome));
      raw.text(st, 5, r.error);
      sqlite3_bind_int64(st, 6, to_epoch_ms(r.started));
      sqlite3_bind_int64(st, 7, to_epoch_ms(r.ended));
      sqlite3_bind_int64(st, 8, std::chrono::duration_cast<std::chrono::microseconds>(r.duration).count());
      if (r.impact) {
        sqlite3_bind_double(st, 9, *r.impact);
      } else {
        sqlite3_bind_null(st, 9);
      }
      raw.text(st, 10, r.correlation_id);
      raw.step_done(st);
    }
    raw.exec("COMMIT");
  }
  if (!raw.ok()) state.SkipWithError(raw.error().c_str());
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_TaskHistory_RawSqliteInsert)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);

// One database of 1,000,000 records, built once and shared by the statistics benchmarks.
struct MillionFixture {
  test::TempDir dir;
  std::unique_ptr<SqliteStore> store;
  std::string error;  // why the fixture is unusable (the benchmarks skip)
  MillionFixture() {
    store = SqliteStore::open(dir.file("million.db")).value();
    for (std::size_t off = 0; off < 1'000'000 && error.empty(); off += 10'000)
      if (auto r = store->append_tasks(make_batch(10'000, off)); !r) error = r.error().message;
  }
  static MillionFixture& get() {
    static MillionFixture f;
    return f;
  }
};

void BM_TaskHistory_Stats1M(benchmark::State& state) {
  auto& f = MillionFixture::get();
  if (!f.error.empty()) return state.SkipWithError(f.error.c_str());
  testing::ManualClock clock(from_epoch_ms(1767225600000 + 1'000'000'000));
  resilience::TaskHistory h(*f.store, clock);
  std::size_t groups = 0;
  for (auto _ : state) {
    auto r = h.stats({});
    if (!r) {
      state.SkipWithError(r.error().message.c_str());
      break;
    }
    groups = r->groups.size();
    benchmark::DoNotOptimize(r);
  }
  state.counters["groups"] = static_cast<double>(groups);
  state.SetItemsProcessed(state.iterations() * 1'000'000);
}
BENCHMARK(BM_TaskHistory_Stats1M)->Unit(benchmark::kMillisecond)->Iterations(5);

// With a range covering the whole table and the comparison with the previous range (two passes,
// the second over an empty range).
void BM_TaskHistory_Stats1M_Ranged(benchmark::State& state) {
  auto& f = MillionFixture::get();
  if (!f.error.empty()) return state.SkipWithError(f.error.c_str());
  const auto t0 = from_epoch_ms(1767225600000);
  testing::ManualClock clock(t0 + std::chrono::seconds(1'000'000));
  resilience::TaskHistory h(*f.store, clock);
  for (auto _ : state) {
    auto r = h.stats({.since = t0});
    if (!r) {
      state.SkipWithError(r.error().message.c_str());
      break;
    }
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations() * 1'000'000);
}
BENCHMARK(BM_TaskHistory_Stats1M_Ranged)->Unit(benchmark::kMillisecond)->Iterations(5);

// Baseline: SQLite alone aggregating the same rows (count, successes, mean duration and impact per
// action), which computes less than the library (no percentiles, failure reasons or parameters).
void BM_TaskHistory_RawSqliteGroupBy1M(benchmark::State& state) {
  auto& f = MillionFixture::get();
  if (!f.error.empty()) return state.SkipWithError(f.error.c_str());
  bench::RawSqlite raw(f.store->path(), true);
  auto* st = raw.prepare(
      "SELECT domain, action, count(*), sum(outcome = 'success'), avg(duration_us), avg(impact) FROM task_history "
      "GROUP BY domain, action");
  for (auto _ : state) {
    if (!raw.ok()) break;
    benchmark::DoNotOptimize(raw.count_rows(st));
  }
  if (!raw.ok()) state.SkipWithError(raw.error().c_str());
  state.SetItemsProcessed(state.iterations() * 1'000'000);
}
BENCHMARK(BM_TaskHistory_RawSqliteGroupBy1M)->Unit(benchmark::kMillisecond)->Iterations(5);

}  // namespace
