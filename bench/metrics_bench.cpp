// MetricsAggregator speed, each beside a baseline measured in the same run:
//  - CSV ingest into SQLite (events/s) vs a prepared INSERT per event (pre-parsed rows, one
//    transaction): the ceiling of a row-per-event design;
//  - daily, weekly and monthly rollups over 10,000,000 stored events vs the sqlite3 shell running
//    the equivalent GROUP BY queries on the same events in a plain table.
#include <automation/core/clock.hpp>
#include <automation/metrics/aggregator.hpp>
#include <automation/metrics/report.hpp>
#include <automation/storage/sqlite_store.hpp>
#include <automation/testing/manual_clock.hpp>

#include "raw_sqlite.hpp"
#include "support/temp_dir.hpp"

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>

using namespace automation;
using namespace automation::metrics;
using namespace std::chrono;

namespace {

constexpr std::int64_t kNov1 = 1'793'491'200'000;  // 2026-11-01T00:00:00Z
constexpr std::int64_t kDayMs = 86'400'000;

// A deterministic event stream: 30 days of November 2026 in time order, 100,000 users, 40
// features, 5 event types, 2 % errors, durations from 1 ms to 10 s.
struct Generator {
  std::uint64_t state = 42;
  std::int64_t n, i = 0;
  explicit Generator(std::int64_t total) : n(total) {}
  std::uint64_t next() {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return state >> 33;
  }
  struct Row {
    std::int64_t ms;
    std::string user, feature, type, error;
    std::int64_t duration_us;
  };
  void fill(Row& r) {
    r.ms = kNov1 + (30 * kDayMs) * i / n + static_cast<std::int64_t>(next() % 1000);
    ++i;
    r.user = fmt::format("user-{}", next() % 100000);
    r.feature = fmt::format("feature-{:02}", next() % 40);
    static const char* kTypes[] = {"start", "complete", "click", "view", "share"};
    r.type = kTypes[next() % 5];
    const auto e = next() % 100;
    r.error = e < 2 ? fmt::format("E{}", 400 + e) : "";
    r.duration_us = static_cast<std::int64_t>(1000 + next() % 10'000'000);
  }
};

// The baselines' plain table and its prepared INSERT.
constexpr const char* kRawTable = "CREATE TABLE events (ts INTEGER, user TEXT, feature TEXT, type TEXT, duration_us INTEGER, error TEXT)";
constexpr const char* kRawInsert = "INSERT INTO events VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
void insert_row(bench::RawSqlite& raw, sqlite3_stmt* ins, const Generator::Row& r) {
  sqlite3_bind_int64(ins, 1, r.ms);
  raw.text(ins, 2, r.user);
  raw.text(ins, 3, r.feature);
  raw.text(ins, 4, r.type);
  sqlite3_bind_int64(ins, 5, r.duration_us);
  raw.text(ins, 6, r.error);
  raw.step_done(ins);
}

std::string iso(std::int64_t ms) { return format_timestamp(from_epoch_ms(ms)); }

// ---- ingest ------------------------------------------------------------------------------------

constexpr std::int64_t kIngestRows = 1'000'000;

struct IngestData {
  test::TempDir dir;
  std::string csv = dir.file("events.csv");
  std::vector<Generator::Row> rows;
  IngestData() {
    Generator g(kIngestRows);
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(csv.c_str(), "wb"), &std::fclose);
    fmt::print(f.get(), "timestamp,userId,featureKey,eventType,duration,errorCode\n");
    rows.resize(kIngestRows);
    for (auto& r : rows) {
      g.fill(r);
      fmt::print(f.get(), "{},{},{},{},{:.3f},{}\n", iso(r.ms), r.user, r.feature, r.type, static_cast<double>(r.duration_us) / 1000.0,
                 r.error);
    }
  }
};
IngestData& ingest_data() {
  static IngestData d;
  return d;
}

void BM_MetricsIngestCsv(benchmark::State& state) {
  auto& d = ingest_data();
  testing::ManualClock clock(from_epoch_ms(kNov1));
  for (auto _ : state) {
    state.PauseTiming();
    const auto db = d.dir.file("ingest.db");
    for (auto suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db + suffix);
    auto store = storage::open_store("sqlite:" + db).value();
    MetricsAggregator agg(*store, clock);
    state.ResumeTiming();
    auto r = agg.ingest_file(RecordKind::events, d.csv);
    if (!r || r->events.stored != static_cast<std::uint64_t>(kIngestRows)) {
      state.SkipWithError(r ? "not every row was stored" : r.error().message.c_str());
      return;
    }
  }
  state.SetItemsProcessed(state.iterations() * kIngestRows);
}
BENCHMARK(BM_MetricsIngestCsv)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

void BM_MetricsIngestBaselineInsertPerEvent(benchmark::State& state) {
  auto& d = ingest_data();
  for (auto _ : state) {
    state.PauseTiming();
    const auto db = d.dir.file("baseline.db");
    for (auto suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db + suffix);
    { std::unique_ptr<std::FILE, int (*)(std::FILE*)> touch(std::fopen(db.c_str(), "wb"), &std::fclose); }
    bench::RawSqlite raw(db);
    raw.exec(kRawTable);
    auto* ins = raw.prepare(kRawInsert);
    state.ResumeTiming();
    raw.exec("BEGIN");
    for (const auto& r : d.rows) {
      insert_row(raw, ins, r);
    }
    raw.exec("COMMIT");
    if (!raw.ok()) {
      state.SkipWithError(raw.error().c_str());
      return;
    }
  }
  state.SetItemsProcessed(state.iterations() * kIngestRows);
}
BENCHMARK(BM_MetricsIngestBaselineInsertPerEvent)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

// ---- rollups over 10M events -------------------------------------------------------------------

constexpr std::int64_t kRollupEvents = 10'000'000;

// Events loaded into `pristine` (each day's partials still one per block, as right after loading),
// and a copy, `db`, whose days a first rollup has compacted (as the nightly daily job leaves them).
struct RollupData {
  test::TempDir dir;
  std::string pristine = dir.file("pristine.db"), db = dir.file("metrics.db"), raw_db = dir.file("raw.db");
  std::unique_ptr<storage::Store> store;
  testing::ManualClock clock{from_epoch_ms(kNov1 + 31 * kDayMs)};
  std::string error;
  RollupData() {
    auto loading = storage::open_store("sqlite:" + pristine).value();
    MetricsAggregator agg(*loading, clock);
    { std::unique_ptr<std::FILE, int (*)(std::FILE*)> touch(std::fopen(raw_db.c_str(), "wb"), &std::fclose); }
    bench::RawSqlite raw(raw_db);
    raw.exec(kRawTable);
    auto* ins = raw.prepare(kRawInsert);
    raw.exec("BEGIN");
    Generator g(kRollupEvents);
    Generator::Row r;
    std::vector<UsageEvent> batch;
    for (std::int64_t i = 0; i < kRollupEvents; ++i) {
      g.fill(r);
      batch.push_back({from_epoch_ms(r.ms), r.user, r.feature, r.type, microseconds(r.duration_us), r.error});
      insert_row(raw, ins, r);
      if (batch.size() == 65536 || i + 1 == kRollupEvents) {
        if (auto s = agg.ingest(batch); !s) error = s.error().message;
        batch.clear();
      }
    }
    raw.exec("COMMIT");
    raw.exec("CREATE INDEX events_ts ON events (ts)");
    if (!raw.ok()) error = raw.error();
    loading.reset();  // closes it (checkpointing the WAL), so the file alone is the database
    std::filesystem::copy_file(pristine, db);
    store = storage::open_store("sqlite:" + db).value();
    if (auto r = MetricsAggregator(*store, clock).compute(month_of(year{2026} / November / 1)); !r) error = r.error().message;
  }
};
// The shared data, or nullptr (the benchmark skipped with the reason) when it could not be built.
RollupData* rollup_data(benchmark::State& state) {
  static RollupData d;
  if (!d.error.empty()) {
    state.SkipWithError(d.error.c_str());
    return nullptr;
  }
  return &d;
}

const Period kPeriods[] = {day_of(year{2026} / November / 18), week_of(year{2026} / November / 18), month_of(year{2026} / November / 1)};

void BM_MetricsRollup(benchmark::State& state) {
  auto* data = rollup_data(state);
  if (!data) return;
  auto& d = *data;
  const auto& p = kPeriods[state.range(0)];
  MetricsAggregator agg(*d.store, d.clock);
  std::uint64_t events = 0;
  for (auto _ : state) {
    auto r = agg.compute(p);
    if (!r) {
      state.SkipWithError(r.error().message.c_str());
      return;
    }
    events = r->usage.events;
  }
  state.SetLabel(fmt::format("{} {} events", p.key(), events));
  state.counters["events"] = static_cast<double>(events);
}
BENCHMARK(BM_MetricsRollup)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

// The monthly rollup right after loading, when it also merges each day's per-block partials.
void BM_MetricsRollupFirstAfterLoad(benchmark::State& state) {
  auto* data = rollup_data(state);
  if (!data) return;
  auto& d = *data;
  const auto fresh = d.dir.file("fresh.db");
  for (auto _ : state) {
    state.PauseTiming();
    for (auto suffix : {"", "-wal", "-shm"}) std::filesystem::remove(fresh + suffix);
    std::filesystem::copy_file(d.pristine, fresh);
    auto store = storage::open_store("sqlite:" + fresh).value();
    MetricsAggregator agg(*store, d.clock);
    state.ResumeTiming();
    auto r = agg.compute(kPeriods[2]);
    if (!r) {
      state.SkipWithError(r.error().message.c_str());
      return;
    }
  }
  state.SetLabel(kPeriods[2].key());
}
BENCHMARK(BM_MetricsRollupFirstAfterLoad)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

// The same figures (per feature: events, distinct users, errors, mean duration; per event type;
// distinct users overall) for the period and the one before it, by the sqlite3 shell.
void BM_MetricsRollupBaselineSqliteShell(benchmark::State& state) {
  auto* data = rollup_data(state);
  if (!data) return;
  auto& d = *data;
  const auto& p = kPeriods[state.range(0)];
  std::string sql;
  for (const auto& q : {p, p.previous()}) {
    const auto b = sys_days{q.first}.time_since_epoch().count() * kDayMs;
    const auto e = (sys_days{q.last}.time_since_epoch().count() + 1) * kDayMs;
    const auto where = fmt::format("WHERE ts >= {} AND ts < {}", b, e);
    sql += fmt::format(
        "SELECT feature, count(*), count(DISTINCT user), sum(error <> ''), avg(duration_us) FROM events {0} GROUP BY feature; "
        "SELECT type, count(*) FROM events {0} GROUP BY type; SELECT count(DISTINCT user) FROM events {0};",
        where);
  }
  const auto cmd = fmt::format("sqlite3 -readonly '{}' \"{}\" > /dev/null", d.raw_db, sql);
  for (auto _ : state)
    if (std::system(cmd.c_str()) != 0) {
      state.SkipWithError("the sqlite3 shell failed (is the sqlite3 package installed?)");
      return;
    }
  state.SetLabel(p.key());
}
BENCHMARK(BM_MetricsRollupBaselineSqliteShell)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

// ---- reports from stored rollups ---------------------------------------------------------------

// A weekly (1) or monthly (2) report over the 10M events once its rollups are stored, as the
// weekly-report job finds them after the nightly daily job: the period's rollup and the daily
// rollups of its trend window are read and checked current, the insights derived. Rendering the
// HTML page is measured separately below.
void BM_MetricsReport(benchmark::State& state) {
  auto* data = rollup_data(state);
  if (!data) return;
  auto& d = *data;
  const auto& p = kPeriods[state.range(0)];
  MetricsAggregator agg(*d.store, d.clock);
  if (auto warm = agg.report(p); !warm) {  // stores what is missing
    state.SkipWithError(warm.error().message.c_str());
    return;
  }
  std::size_t days = 0;
  for (auto _ : state) {
    auto r = agg.report(p);
    if (!r) {
      state.SkipWithError(r.error().message.c_str());
      return;
    }
    days = r->days.size();
  }
  state.SetLabel(fmt::format("{}, {} days", p.key(), days));
}
BENCHMARK(BM_MetricsReport)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

// Baseline: the same figures with nothing stored, each rollup computed from the partials.
void BM_MetricsReportBaselineRecomputed(benchmark::State& state) {
  auto* data = rollup_data(state);
  if (!data) return;
  auto& d = *data;
  const auto& p = kPeriods[state.range(0)];
  MetricsAggregator agg(*d.store, d.clock);
  for (auto _ : state) {
    auto r = agg.compute(p);
    if (!r) {
      state.SkipWithError(r.error().message.c_str());
      return;
    }
    const auto last = sys_days{p.last};
    for (auto day = last - days{report_days(p) - 1}; day <= last; day += days{1}) {
      auto one = agg.compute(day_of(year_month_day{day}));
      if (!one) {
        state.SkipWithError(one.error().message.c_str());
        return;
      }
      benchmark::DoNotOptimize(one->usage.events);
    }
  }
  state.SetLabel(p.key());
}
BENCHMARK(BM_MetricsReportBaselineRecomputed)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_MetricsReportRenderHtml(benchmark::State& state) {
  auto* data = rollup_data(state);
  if (!data) return;
  auto& d = *data;
  MetricsAggregator agg(*d.store, d.clock);
  auto r = agg.report(kPeriods[2]);
  if (!r) {
    state.SkipWithError(r.error().message.c_str());
    return;
  }
  std::size_t bytes = 0;
  for (auto _ : state) bytes = render(*r, ReportFormat::html).size();
  state.SetLabel(fmt::format("{}: {} bytes", kPeriods[2].key(), bytes));
}
BENCHMARK(BM_MetricsReportRenderHtml)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
