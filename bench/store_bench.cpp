// Audit appends through SqliteStore against raw sqlite3 doing the same inserts (the baseline).
#include <automation/storage/sqlite_store.hpp>

#include "raw_sqlite.hpp"
#include "support/temp_dir.hpp"

#include <benchmark/benchmark.h>
#include <sqlite3.h>

using namespace automation;
using namespace automation::storage;

namespace {

std::vector<AuditRecord> make_batch(std::size_t n) {
  std::vector<AuditRecord> batch(n);
  for (std::size_t i = 0; i < n; ++i) {
    auto& r = batch[i];
    r.time = from_epoch_ms(1767225600000 + static_cast<std::int64_t>(i));
    r.actor = "system:scheduler";
    r.action = "workflow.run";
    r.resource = "workflow:health_check";
    r.origin = "bench";
    r.reason = "scheduled every 5m";
    r.details = R"({"attempt":1})";
    r.correlation_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  }
  return batch;
}

void BM_SqliteStore_AppendAudit(benchmark::State& state) {
  test::TempDir dir;
  auto store = SqliteStore::open(dir.file("bench.db")).value();
  const auto batch = make_batch(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    auto r = store->append_audit(batch);
    if (!r) state.SkipWithError(r.error().message.c_str());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_SqliteStore_AppendAudit)->Arg(1)->Arg(100)->Arg(1000)->Unit(benchmark::kMicrosecond);

// Baseline: the same schema and rows through a raw prepared statement in one transaction.
void BM_RawSqlite_Insert(benchmark::State& state) {
  test::TempDir dir;
  { auto s = SqliteStore::open(dir.file("raw.db")).value(); }  // same schema and pragmas
  bench::RawSqlite raw(dir.file("raw.db"));
  auto* st = raw.prepare(
      "INSERT INTO audit_log (ts_ms, actor, action, resource, origin, outcome, reason, details, correlation_id) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
  const auto batch = make_batch(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    if (!raw.ok()) break;
    raw.exec("BEGIN IMMEDIATE");
    for (const auto& r : batch) {
      sqlite3_bind_int64(st, 1, to_epoch_ms(r.time));
      raw.text(st, 2, r.actor);
      raw.text(st, 3, r.action);
      raw.text(st, 4, r.resource);
      raw.text(st, 5, r.origin);
      raw.text(st, 6, "success");
      raw.text(st, 7, r.reason);
      raw.text(st, 8, r.details);
      raw.text(st, 9, r.correlation_id);
      raw.step_done(st);
    }
    raw.exec("COMMIT");
  }
  if (!raw.ok()) state.SkipWithError(raw.error().c_str());
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_RawSqlite_Insert)->Arg(1)->Arg(100)->Arg(1000)->Unit(benchmark::kMicrosecond);

void BM_SqliteStore_QueryAudit(benchmark::State& state) {
  test::TempDir dir;
  auto store = SqliteStore::open(dir.file("q.db")).value();
  const auto batch = make_batch(1000);
  for (int i = 0; i < 100; ++i)
    if (auto r = store->append_audit(batch); !r) return state.SkipWithError(r.error().message.c_str());
  for (auto _ : state) {
    auto r = store->query_audit({.resource = "workflow:*", .limit = static_cast<std::size_t>(state.range(0))});
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_SqliteStore_QueryAudit)->Arg(100)->Arg(1000)->Unit(benchmark::kMicrosecond);

}  // namespace
