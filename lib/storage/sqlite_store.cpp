#include <automation/storage/sqlite_store.hpp>

#include <detail/log.hpp>
#include <detail/sqlite.hpp>
#include "storage/schema.hpp"
#include "storage/sqlite_impl.hpp"
#include "storage/task_stats.hpp"

#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <variant>

namespace automation::storage {

namespace fs = std::filesystem;
namespace sq = automation::detail::sqlite;
using automation::detail::logf;

Result<std::int64_t> SqliteStore::Impl::checked_version(std::string_view table, std::string_view what, std::string_view where,
                                                        std::initializer_list<std::string_view> keys, std::string_view shown,
                                                        std::optional<std::int64_t> expected) {
  auto cur = db.prepare(fmt::format("SELECT version FROM {} WHERE {}", table, where));
  if (!cur) return cur.error();
  int i = 0;
  for (auto k : keys) cur->bind(++i, k);
  auto row = cur->step(fmt::format("read the {} version", what));
  if (!row) return row.error();
  const std::int64_t current = *row ? cur->int64(0) : 0;
  if (expected && *expected != current)
    return fail(errc::conflict,
                fmt::format("{} '{}' is at version {}, not {}: another writer changed it", what, shown, current, *expected));
  return current;
}

SqliteStore::SqliteStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SqliteStore::~SqliteStore() = default;

void SqliteStore::observe_statements(std::function<void(std::chrono::nanoseconds)> observer) {
  std::lock_guard lock(impl_->mu);
  impl_->observer = std::move(observer);
  if (!impl_->observer) {
    sqlite3_trace_v2(impl_->db.get(), 0, nullptr, nullptr);
    return;
  }
  sqlite3_trace_v2(
      impl_->db.get(), SQLITE_TRACE_PROFILE,
      [](unsigned, void* ctx, void*, void* x) -> int {
        // x: the statement's run time in nanoseconds (sqlite3_int64).
        static_cast<Impl*>(ctx)->observer(std::chrono::nanoseconds(*static_cast<sqlite3_int64*>(x)));
        return 0;
      },
      impl_.get());
}

const std::string& SqliteStore::path() const noexcept { return impl_->path; }

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::string& path, const OpenOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->options = options;
  const bool read_only = options.read_only;
  std::error_code ec;
  const bool exists = fs::exists(path, ec);
  if (!exists && (read_only || !options.create_if_missing)) return fail(errc::not_found, fmt::format("database {} does not exist", path));
  if (exists && fs::is_directory(path, ec)) return fail(errc::invalid_argument, fmt::format("database path {} is a directory", path));
  if (!exists) {
    const auto parent = fs::path(path).parent_path();
    if (!parent.empty()) {
      fs::create_directories(parent, ec);
      if (ec) return fail(errc::io, fmt::format("cannot create directory {} for the database: {}", parent.string(), ec.message()));
    }
  }
  const int flags = (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX;
  if (auto r = impl->db.open(path, flags); !r) return r.error();
  sqlite3_busy_timeout(impl->db.get(), static_cast<int>(options.busy_timeout.count()));

  // Identify the file before writing anything to it: a foreign or newer database stays untouched.
  // One read transaction, so a concurrent creator's migration is seen either entirely or not at all.
  sq::Transaction read(impl->db);
  if (auto r = read.begin("BEGIN"); !r) return r.error();
  auto version = impl->db.scalar_int("PRAGMA user_version", "read the schema version");
  if (!version) {
    if (version.error().is(errc::corrupt))
      return fail(errc::corrupt, fmt::format("{} is not an SQLite database or is damaged ({})", path, version.error().message));
    return with_context(version.error(), fmt::format("open {}", path));
  }
  auto app_id = impl->db.scalar_int("PRAGMA application_id", "read the application id");
  if (!app_id) return app_id.error();
  auto tables = impl->db.scalar_int("SELECT count(*) FROM sqlite_schema", "list tables");
  if (!tables) {
    if (tables.error().is(errc::corrupt)) return fail(errc::corrupt, fmt::format("{} is damaged: {}", path, tables.error().message));
    return tables.error();
  }
  if (*app_id != detail::kApplicationId && (*app_id != 0 || *tables > 0 || *version > 0))
    return fail(errc::corrupt, fmt::format("{} is an SQLite database of another application (application_id {}, {} schema objects); "
                                           "refusing to use it",
                                           path, *app_id, *tables));
  (void)read.commit();
  impl->version = static_cast<int>(*version);
  if (impl->version > latest_schema_version())
    return fail(errc::schema_too_new, fmt::format("database {} has schema version {}, newer than this build's {}; upgrade automation "
                                                  "(the file was not modified)",
                                                  path, impl->version, latest_schema_version()));

  if (!read_only) {
    // Switching to WAL needs an exclusive lock and SQLite answers BUSY at once (no busy handler)
    // when a concurrent opener holds a lock, so retry within busy_timeout. Once WAL, it persists.
    const auto deadline = std::chrono::steady_clock::now() + options.busy_timeout;
    for (;;) {
      auto mode = impl->db.scalar_text("PRAGMA journal_mode", "read journal_mode");
      if (mode && *mode == "wal") break;
      if (mode) mode = impl->db.scalar_text("PRAGMA journal_mode = WAL", "enable WAL");
      if (mode && *mode == "wal") break;
      if (mode) return fail(errc::io, fmt::format("{}: cannot enable WAL (journal_mode stays {})", path, *mode));
      if (!mode.error().is(errc::busy) || std::chrono::steady_clock::now() >= deadline) return mode.error();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  const char* sync = options.synchronous == Synchronous::full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL";
  if (auto r = impl->db.exec(sync, "set synchronous"); !r) return r.error();
  if (auto r = impl->db.exec("PRAGMA foreign_keys = ON", "enable foreign keys"); !r) return r.error();

  if (!read_only && options.migrate) {
    std::lock_guard lock(impl->mu);
    if (auto r = impl->migrate_locked(); !r) return r.error();
  }
  logf(LogLevel::debug, "store", "opened {} (schema version {}{})", path, impl->version, read_only ? ", read-only" : "");
  return std::unique_ptr<SqliteStore>(new SqliteStore(std::move(impl)));
}

Result<int> SqliteStore::schema_version() {
  std::lock_guard lock(impl_->mu);
  auto v = impl_->db.scalar_int("PRAGMA user_version", "read the schema version");
  if (!v) return v.error();
  impl_->version = static_cast<int>(*v);
  return impl_->version;
}

Result<MigrationReport> SqliteStore::migrate() {
  if (impl_->options.read_only) return fail(errc::permission_denied, fmt::format("database {} was opened read-only", impl_->path));
  std::lock_guard lock(impl_->mu);
  return impl_->migrate_locked();
}

Result<StoreInfo> SqliteStore::info() {
  std::lock_guard lock(impl_->mu);
  StoreInfo info;
  info.backend = "sqlite";
  info.location = impl_->path;
  auto v = impl_->db.scalar_int("PRAGMA user_version", "read the schema version");
  if (!v) return v.error();
  info.schema_version = impl_->version = static_cast<int>(*v);
  info.latest_schema_version = latest_schema_version();
  for (const char* suffix : {"", "-wal", "-shm"}) {
    const std::string p = impl_->path + suffix;
    std::error_code ec;
    const auto size = fs::file_size(p, ec);
    if (!ec) info.files.push_back({p, static_cast<std::int64_t>(size)});
  }
  auto mode = impl_->db.scalar_text("PRAGMA journal_mode", "read journal_mode");
  if (!mode) return mode.error();
  info.journal_mode = *mode;
  auto sync = impl_->db.scalar_int("PRAGMA synchronous", "read synchronous");
  if (!sync) return sync.error();
  info.synchronous = *sync == 2 ? "full" : *sync == 1 ? "normal" : *sync == 3 ? "extra" : "off";
  struct AreaTable {
    const char* area;
    const char* table;
    int since_version;
  };
  static constexpr AreaTable kAreas[] = {{"audit", "audit_log", 1},
                                         {"tasks", "task_history", 2},
                                         {"breakers", "breaker_state", 2},
                                         {"workflow runs", "workflow_run", 4},
                                         {"schedules", "schedule_state", 4},
                                         {"usage events", "usage_block", 6},
                                         {"revenue", "revenue_daily", 6},
                                         {"rollups", "metric_rollup", 6},
                                         {"deliveries", "delivery", 7},
                                         {"samples", "metric_point", 8},
                                         {"alerts", "alert", 8},
                                         {"forecasts", "forecast", 8},
                                         {"scaling", "scaling_record", 9},
                                         {"healing", "healing_record", 9},
                                         {"tokens", "api_token", 10},
                                         {"nodes", "registry_nodes", 11},
                                         {"scans", "discovery_scans", 11}};
  for (const auto& a : kAreas) {
    std::int64_t rows = 0;
    if (info.schema_version >= a.since_version) {
      auto n = impl_->db.scalar_int(fmt::format("SELECT count(*) FROM {}", a.table), fmt::format("count {}", a.table));
      if (!n) return n.error();
      rows = *n;
    }
    info.areas.push_back({a.area, a.table, rows});
  }
  return info;
}

Result<void> SqliteStore::check_integrity() {
  std::lock_guard lock(impl_->mu);
  auto st = impl_->db.prepare("PRAGMA quick_check");
  if (!st) return st.error();
  std::vector<std::string> problems;
  for (;;) {
    auto row = st->step("integrity check");
    if (!row) return fail(errc::corrupt, fmt::format("{}: integrity check failed: {}", impl_->path, row.error().message));
    if (!*row) break;
    auto line = st->text(0);
    if (line != "ok") problems.push_back(std::move(line));
  }
  if (!problems.empty()) return fail(errc::corrupt, fmt::format("{} is damaged: {}", impl_->path, fmt::join(problems, "; ")));
  return {};
}

Result<std::int64_t> SqliteStore::append_audit(std::span<const AuditRecord> records) {
  for (const auto& r : records)
    if (auto v = validate(r); !v) return v.error();
  if (impl_->options.read_only) return fail(errc::permission_denied, fmt::format("database {} was opened read-only", impl_->path));
  std::lock_guard lock(impl_->mu);
  if (auto r = impl_->ensure_current(); !r) return r.error();
  if (records.empty()) return 0;
  if (!impl_->insert_audit) {
    auto st = impl_->db.prepare(
        "INSERT INTO audit_log (ts_ms, actor, action, resource, origin, outcome, reason, details, correlation_id) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
    if (!st) return st.error();
    impl_->insert_audit = std::move(st.value());
  }
  sq::Transaction tx(impl_->db);
  if (auto r = tx.begin(); !r) return with_context(r.error(), "append audit records");
  auto& st = impl_->insert_audit;
  for (const auto& r : records) {
    st.reset();
    st.bind(1, to_epoch_ms(r.time));
    st.bind(2, r.actor);
    st.bind(3, r.action);
    st.bind(4, r.resource);
    st.bind(5, r.origin);
    st.bind(6, to_string(r.outcome));
    st.bind(7, r.reason);
    st.bind(8, r.details);
    st.bind(9, r.correlation_id);
    auto s = st.step("insert audit record");
    st.reset();
    if (!s) return s.error();
  }
  const std::int64_t last = sqlite3_last_insert_rowid(impl_->db.get());
  if (auto r = tx.commit(); !r) return r.error();
  return last;
}

namespace {

// A WHERE clause with numbered parameters.
struct Filter {
  std::string sql;
  int n = 0;
  std::vector<std::pair<int, std::variant<std::int64_t, std::string>>> binds;

  void add(std::string_view lhs_op, std::variant<std::int64_t, std::string> v) {
    sql += fmt::format(" AND {} ?{}", lhs_op, ++n);
    binds.emplace_back(n, std::move(v));
  }
  void apply(sq::Statement& st) const {
    for (const auto& [i, v] : binds) {
      if (const auto* x = std::get_if<std::int64_t>(&v)) {
        st.bind(i, *x);
      } else {
        st.bind(i, std::string_view(std::get<std::string>(v)));
      }
    }
  }
};

std::int64_t to_us(Duration d) { return std::chrono::duration_cast<std::chrono::microseconds>(d).count(); }
Duration from_us(std::int64_t us) { return std::chrono::duration_cast<Duration>(std::chrono::microseconds(us)); }

// Hash columns are stored as signed 64-bit integers.
std::int64_t as_column(std::uint64_t h) { return static_cast<std::int64_t>(h); }

Filter task_filter(const std::optional<TimePoint>& since, const std::optional<TimePoint>& until, const std::optional<std::string>& domain,
                   const std::optional<std::string>& action) {
  Filter f;
  if (since) f.add("started_ms >=", to_epoch_ms(*since));
  if (until) f.add("started_ms <", to_epoch_ms(*until));
  if (domain && action) {
    f.add("kind_hash =", as_column(detail::kind_hash(*domain, *action)));
    f.add("domain =", *domain);
    f.add("action =", *action);
  } else if (domain) {
    f.add("domain =", *domain);
  } else if (action) {
    f.add("action =", *action);
  }
  return f;
}

}  // namespace

namespace {

// Several rows per INSERT statement: SQLite's per-statement overhead dominates single-row inserts
// (measured: 50 rows per statement inserts about 1.7x faster than one).
constexpr int kTaskRowsPerInsert = 50;
constexpr int kTaskColumns = 12;

std::string task_insert_sql(int rows) {
  std::string sql =
      "INSERT INTO task_history (domain, action, kind_hash, params, params_hash, outcome, error, started_ms, ended_ms, duration_us, "
      "impact, correlation_id) VALUES ";
  for (int r = 0; r < rows; ++r) {
    sql += r ? ",(" : "(";
    for (int c = 1; c <= kTaskColumns; ++c) sql += fmt::format("{}?{}", c > 1 ? "," : "", r * kTaskColumns + c);
    sql += ')';
  }
  return sql;
}

// A record's (domain, action) and params hashes, computed once for the row and its rollup.
struct TaskHashes {
  std::uint64_t kind, params;
};

void bind_task(sq::Statement& st, int row, const TaskRecord& r, TaskHashes h) {
  const int o = row * kTaskColumns;
  // The records outlive the step, so SQLite need not copy the texts.
  auto text = [&](int i, std::string_view v) { sqlite3_bind_text(st.get(), o + i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC); };
  text(1, r.domain);
  text(2, r.action);
  st.bind(o + 3, as_column(h.kind));
  text(4, r.params);
  st.bind(o + 5, as_column(h.params));
  text(6, to_string(r.outcome));
  text(7, r.error);
  st.bind(o + 8, to_epoch_ms(r.started));
  st.bind(o + 9, to_epoch_ms(r.ended));
  st.bind(o + 10, to_us(r.duration));
  if (r.impact) {
    st.bind(o + 11, *r.impact);
  } else {
    st.bind_null(o + 11);
  }
  text(12, r.correlation_id);
}

}  // namespace

namespace {

// Feeds the rows of one prepared scan (kStatsColumns) into the builder `pick(started_ms)` returns;
// a null builder stops the scan.
template <class Pick>
Result<void> scan_tasks(sq::Statement& st, Pick&& pick) {
  for (;;) {
    auto row = st.step("scan task records");
    if (!row) return row.error();
    if (!*row) return {};
    detail::TaskStatsBuilder* b = pick(st.int64(9));
    if (!b) return {};
    auto& g = b->group(static_cast<std::uint64_t>(st.int64(0)), [&](std::string& d, std::string& a) {
      d = st.text(5);
      a = st.text(6);
    });
    auto outcome = parse_task_outcome(st.text_view(1));
    if (!outcome) return fail(errc::corrupt, fmt::format("task record outcome: {}", outcome.error().message));
    double impact = 0;
    const bool has_impact = !st.is_null(3);
    if (has_impact) impact = st.real(3);
    const auto ph = static_cast<std::uint64_t>(st.int64(4));
    if (!b->knows_params(ph)) b->add_params(ph, st.text(7));
    b->add(g, *outcome, st.int64(2), has_impact ? &impact : nullptr, ph, [&] { return st.text_view(8); });
  }
}

constexpr const char* kStatsColumns =
    "SELECT kind_hash, outcome, duration_us, impact, params_hash, domain, action, params, error, started_ms ";

constexpr std::int64_t kHourMs = 3'600'000;
std::int64_t hour_floor(std::int64_t ms) { return ms - (((ms % kHourMs) + kHourMs) % kHourMs); }
std::int64_t hour_ceil(std::int64_t ms) { return hour_floor(ms) == ms ? ms : hour_floor(ms) + kHourMs; }

Result<void> rebuild_rollups(sq::Connection& db, RollupStatements& rs, std::int64_t from, std::int64_t to);

// Adds (merge = true) or writes (merge = false) the rollups of each hour's builder. Under a write
// transaction. A stored rollup that does not parse is derived data: its hour is recomputed from the
// records (which the transaction already holds) rather than refusing the append.
Result<void> write_rollups(sq::Connection& db, RollupStatements& rs, std::map<std::int64_t, detail::TaskStatsBuilder>& hours, bool merge) {
  for (auto [st, sql] : {std::pair{&rs.get, "SELECT data FROM task_rollup WHERE hour_ms = ?1 AND kind_hash = ?2"},
                         std::pair{&rs.put,
                                   "INSERT INTO task_rollup (hour_ms, kind_hash, domain, action, data) VALUES (?1, ?2, ?3, ?4, ?5) "
                                   "ON CONFLICT (hour_ms, kind_hash) DO UPDATE SET data = excluded.data"}}) {
    if (*st) continue;
    auto p = db.prepare(sql);
    if (!p) return p.error();
    *st = std::move(p.value());
  }
  auto& get = rs.get;
  auto& put = rs.put;
  std::vector<std::int64_t> damaged;
  for (auto& [hour, b] : hours) {
    for (const auto kind : b.kinds()) {
      const auto* g = b.find(kind);
      if (merge) {
        get.reset();
        get.bind(1, hour);
        get.bind(2, as_column(kind));
        auto row = get.step("read a task rollup");
        if (!row) return row.error();
        if (*row) {
          if (auto r = b.add_rollup(kind, g->domain, g->action, get.text_view(0)); !r) {
            logf(LogLevel::warn, "store", "{}: recomputing the hour from the records", r.error().message);
            damaged.push_back(hour);
            break;
          }
        }
      }
      const std::string data = b.rollup_json(kind);
      put.reset();
      put.bind(1, hour);
      put.bind(2, as_column(kind));
      put.bind(3, std::string_view(g->domain));
      put.bind(4, std::string_view(g->action));
      put.bind(5, std::string_view(data));
      if (auto r = put.step("write a task rollup"); !r) return r.error();
    }
  }
  get.reset();
  put.reset();
  for (const auto hour : damaged)
    if (auto r = rebuild_rollups(db, rs, hour, hour + kHourMs); !r) return r;
  return {};
}

// Recomputes the rollups of the hours in [from, to) from the records, one hour in memory at a time.
// Under a write transaction.
Result<void> rebuild_rollups(sq::Connection& db, RollupStatements& rs, std::int64_t from, std::int64_t to) {
  auto del = db.prepare("DELETE FROM task_rollup WHERE hour_ms >= ?1 AND hour_ms < ?2");
  if (!del) return del.error();
  del->bind(1, from);
  del->bind(2, to);
  if (auto r = del->step("delete task rollups"); !r) return r.error();
  auto st = db.prepare(std::string(kStatsColumns) + "FROM task_history WHERE started_ms >= ?1 AND started_ms < ?2 ORDER BY started_ms");
  if (!st) return st.error();
  st->bind(1, from);
  st->bind(2, to);
  std::map<std::int64_t, detail::TaskStatsBuilder> hours;
  Result<void> written;
  auto r = scan_tasks(*st, [&](std::int64_t started) -> detail::TaskStatsBuilder* {
    const std::int64_t h = hour_floor(started);
    if (!hours.empty() && hours.begin()->first != h) {
      written = write_rollups(db, rs, hours, false);
      if (!written) return nullptr;
      hours.clear();
    }
    return &hours[h];
  });
  if (!r) return r.error();
  if (!written) return written.error();
  return write_rollups(db, rs, hours, false);
}

}  // namespace

Result<std::int64_t> SqliteStore::append_tasks(std::span<const TaskRecord> records) {
  for (const auto& r : records)
    if (auto v = validate(r); !v) return v.error();
  if (auto w = impl_->writable(); !w) return w.error();
  std::lock_guard lock(impl_->mu);
  if (auto r = impl_->ensure_current(); !r) return r.error();
  if (records.empty()) return 0;
  for (auto [st, rows] : {std::pair{&impl_->insert_task, 1}, std::pair{&impl_->insert_tasks_multi, kTaskRowsPerInsert}}) {
    if (*st) continue;
    auto p = impl_->db.prepare(task_insert_sql(rows));
    if (!p) return p.error();
    *st = std::move(p.value());
  }
  // The rollup of each hour and (domain, action) the records touch, and their hashes, in one pass.
  std::vector<TaskHashes> hashes;
  hashes.reserve(records.size());
  std::map<std::int64_t, detail::TaskStatsBuilder> hours;
  for (const auto& r : records) {
    const TaskHashes h{detail::kind_hash(r.domain, r.action), detail::fnv1a(r.params)};
    hashes.push_back(h);
    auto& b = hours[hour_floor(to_epoch_ms(r.started))];
    auto& g = b.group(h.kind, [&](std::string& d, std::string& a) {
      d = r.domain;
      a = r.action;
    });
    if (!b.knows_params(h.params)) b.add_params(h.params, r.params);
    b.add(g, r.outcome, to_us(r.duration), r.impact ? &*r.impact : nullptr, h.params, [&] { return std::string_view(r.error); });
  }
  sq::Transaction tx(impl_->db);
  if (auto r = tx.begin(); !r) return with_context(r.error(), "append task records");
  std::size_t i = 0;
  for (; i + kTaskRowsPerInsert <= records.size(); i += kTaskRowsPerInsert) {
    auto& st = impl_->insert_tasks_multi;
    for (int row = 0; row < kTaskRowsPerInsert; ++row) {
      const auto k = i + static_cast<std::size_t>(row);
      bind_task(st, row, records[k], hashes[k]);
    }
    auto s = st.step("insert task records");
    st.reset();
    if (!s) return s.error();
  }
  for (; i < records.size(); ++i) {
    auto& st = impl_->insert_task;
    bind_task(st, 0, records[i], hashes[i]);
    auto s = st.step("insert task record");
    st.reset();
    if (!s) return s.error();
  }
  const std::int64_t last = sqlite3_last_insert_rowid(impl_->db.get());
  if (auto r = write_rollups(impl_->db, impl_->rollup, hours, true); !r) return with_context(r.error(), "append task records");
  if (auto r = tx.commit(); !r) return r.error();
  return last;
}

Result<std::vector<TaskRecord>> SqliteStore::query_tasks(const TaskQuery& q) {
  std::lock_guard lock(impl_->mu);
  if (auto r = impl_->ensure_current(); !r) return r.error();
  Filter f = task_filter(q.since, q.until, q.domain, q.action);
  if (q.outcome) f.add("outcome =", std::string(to_string(*q.outcome)));
  if (q.correlation_id) f.add("correlation_id =", *q.correlation_id);
  std::string sql =
      "SELECT id, domain, action, params, outcome, error, started_ms, ended_ms, duration_us, impact, correlation_id FROM task_history "
      "WHERE 1=1" +
      f.sql + (q.newest_first ? " ORDER BY id DESC" : " ORDER BY id ASC");
  if (q.limit) sql += fmt::format(" LIMIT {}", q.limit);
  auto st = impl_->db.prepare(sql);
  if (!st) return st.error();
  f.apply(*st);
  std::vector<TaskRecord> out;
  for (;;) {
    auto row = st->step("query task records");
    if (!row) return row.error();
    if (!*row) break;
    TaskRecord r;
    r.id = st->int64(0);
    r.domain = st->text(1);
    r.action = st->text(2);
    r.params = st->text(3);
    auto outcome = parse_task_outcome(st->text_view(4));
    if (!outcome) return fail(errc::corrupt, fmt::format("task record {}: {}", r.id, outcome.error().message));
    r.outcome = *outcome;
    r.error = st->text(5);
    r.started = from_epoch_ms(st->int64(6));
    r.ended = from_epoch_ms(st->int64(7));
    r.duration = from_us(st->int64(8));
    if (!st->is_null(9)) r.impact = st->real(9);
    r.correlation_id = st->text(10);
    out.push_back(std::move(r));
  }
  return out;
}

Result<std::int64_t> SqliteStore::Impl::prune_in_chunks(std::string_view sql, TimePoint before, std::int64_t chunk, std::string_view what) {
  if (auto w = writable(); !w) return w.error();
  std::lock_guard lock(mu);
  if (auto e = ensure_current(); !e) return e.error();
  auto st = db.prepare(sql);
  if (!st) return st.error();
  std::int64_t total = 0;
  for (;;) {
    st->reset();
    st->bind(1, to_epoch_ms(before));
    st->bind(2, chunk);
    if (auto e = st->step(what); !e) return with_context(e.error(), fmt::format("{} (after pruning {})", what, total));
    const std::int64_t n = sqlite3_changes(db.get());
    total += n;
    if (n < chunk) return total;
  }
}

Result<void> SqliteStore::Impl::fill_task_rollups() {
  std::int64_t from = 0, to = 0;
  {
    auto bounds = db.prepare("SELECT min(started_ms), max(started_ms) FROM task_history");
    if (!bounds) return bounds.error();
    if (auto row = bounds->step("size the task history"); !row) return row.error();
    if (bounds->is_null(0)) return {};
    from = hour_floor(bounds->int64(0));
    to = hour_floor(bounds->int64(1)) + kHourMs;
  }
  return rebuild_rollups(db, rollup, from, to);
}

Result<std::vector<TaskGroupStats>> SqliteStore::task_stats(const TaskStatsQuery& q) {
  std::lock_guard lock(impl_->mu);
  if (auto r = impl_->ensure_current(); !r) return r.error();
  // One read transaction, so the rollups and the records agree.
  sq::Transaction read(impl_->db);  // ends (rolls back) when the statements are done
  if (auto r = read.begin("BEGIN"); !r) return with_context(r.error(), "task statistics");
  // Whole hours come from the rollups; the records before the first whole hour and after the last
  // are read raw through the time index.
  const std::optional<std::int64_t> lo = q.since ? std::optional(to_epoch_ms(*q.since)) : std::nullopt;
  const std::optional<std::int64_t> hi = q.until ? std::optional(to_epoch_ms(*q.until)) : std::nullopt;
  if (lo && hi && *hi <= *lo) return std::vector<TaskGroupStats>{};
  const std::int64_t first = lo ? hour_ceil(*lo) : std::numeric_limits<std::int64_t>::min();
  const std::int64_t last = hi ? hour_floor(*hi) : std::numeric_limits<std::int64_t>::max();
  detail::TaskStatsBuilder b;
  auto raw = [&](std::optional<std::int64_t> from, std::optional<std::int64_t> to) -> Result<void> {
    const Filter f = task_filter(from ? std::optional(from_epoch_ms(*from)) : std::nullopt,
                                 to ? std::optional(from_epoch_ms(*to)) : std::nullopt, q.domain, q.action);
    auto st = impl_->db.prepare(std::string(kStatsColumns) + "FROM task_history WHERE 1=1" + f.sql);
    if (!st) return st.error();
    f.apply(*st);
    return scan_tasks(*st, [&](std::int64_t) { return &b; });
  };
  if (first >= last) {
    if (auto r = raw(lo, hi); !r) return r.error();
    return b.finish(q);
  }
  Filter f = task_filter(std::nullopt, std::nullopt, q.domain, q.action);
  f.add("hour_ms >=", first);
  f.add("hour_ms <", last);
  auto st = impl_->db.prepare("SELECT kind_hash, domain, action, data FROM task_rollup WHERE 1=1" + f.sql);
  if (!st) return st.error();
  f.apply(*st);
  for (;;) {
    auto row = st->step("read task rollups");
    if (!row) return row.error();
    if (!*row) break;
    if (auto r = b.add_rollup(static_cast<std::uint64_t>(st->int64(0)), st->text_view(1), st->text_view(2), st->text_view(3)); !r)
      return r.error();
  }
  if (lo && *lo < first) {
    if (auto r = raw(lo, first); !r) return r.error();
  }
  if (hi && last < *hi) {
    if (auto r = raw(last, hi); !r) return r.error();
  }
  return b.finish(q);
}

Result<std::int64_t> SqliteStore::prune_tasks(TimePoint before) {
  if (auto w = impl_->writable(); !w) return w.error();
  std::lock_guard lock(impl_->mu);
  if (auto r = impl_->ensure_current(); !r) return r.error();
  // In chunks, each its own transaction, so other writers are never locked out for long. Each
  // chunk keeps the rollups in step within its transaction: the rollups of hours wholly before
  // the cut go (records about to be pruned may leave the statistics a chunk early; pruned ones
  // never stay), and the hour the cut falls in is recomputed whenever the chunk deletes from it.
  auto chunk = impl_->db.prepare(
      "DELETE FROM task_history WHERE id IN (SELECT id FROM task_history WHERE started_ms < ?1 ORDER BY started_ms LIMIT ?2)");
  if (!chunk) return chunk.error();
  auto old_rollups = impl_->db.prepare("DELETE FROM task_rollup WHERE hour_ms < ?1");
  if (!old_rollups) return old_rollups.error();
  auto in_cut_hour = impl_->db.prepare("SELECT EXISTS (SELECT 1 FROM task_history WHERE started_ms >= ?1 AND started_ms < ?2)");
  if (!in_cut_hour) return in_cut_hour.error();
  constexpr int kChunk = 10000;
  const std::int64_t cut = to_epoch_ms(before), cut_hour = hour_floor(cut);
  std::int64_t total = 0;
  auto one_chunk = [&]() -> Result<int> {
    sq::Transaction tx(impl_->db);
    if (auto r = tx.begin(); !r) return r.error();
    old_rollups->reset();
    old_rollups->bind(1, cut_hour);
    if (auto r = old_rollups->step("prune task rollups"); !r) return r.error();
    in_cut_hour->reset();
    in_cut_hour->bind(1, cut_hour);
    in_cut_hour->bind(2, cut);
    if (auto r = in_cut_hour->step("look for records in the cut hour"); !r) return r.error();
    const bool touches_cut_hour = in_cut_hour->int64(0) != 0;
    in_cut_hour->reset();
    chunk->reset();
    chunk->bind(1, cut);
    chunk->bind(2, std::int64_t{kChunk});
    if (auto r = chunk->step("prune task records"); !r) return r.error();
    const int n = sqlite3_changes(impl_->db.get());
    if (touches_cut_hour) {
      if (auto r = rebuild_rollups(impl_->db, impl_->rollup, cut_hour, cut_hour + kHourMs); !r) return r.error();
    }
    if (auto r = tx.commit(); !r) return r.error();
    return n;
  };
  for (;;) {
    auto n = one_chunk();
    if (!n) return with_context(n.error(), fmt::format("prune task records (after pruning {})", total));
    total += *n;
    if (*n < kChunk) return total;
  }
}

namespace {
constexpr const char* kBreakerColumns = "name, state, open_until_ms, open_attempt, reason, details, updated_ms, updated_by, version";

BreakerRecord read_breaker(const sq::Statement& st) {
  BreakerRecord r;
  r.name = st.text(0);
  r.state = st.text(1);
  r.open_until = from_epoch_ms(st.int64(2));
  r.open_attempt = static_cast<int>(st.int64(3));
  r.reason = st.text(4);
  r.details = st.text(5);
  r.updated = from_epoch_ms(st.int64(6));
  r.updated_by = st.text(7);
  r.version = st.int64(8);
  return r;
}
}  // namespace

Result<std::optional<BreakerRecord>> SqliteStore::get_breaker(std::string_view name) {
  std::lock_guard lock(impl_->mu);
  if (auto r = impl_->ensure_current(); !r) return r.error();
  auto st = impl_->db.prepare(fmt::format("SELECT {} FROM breaker_state WHERE name = ?1", kBreakerColumns));
  if (!st) return st.error();
  st->bind(1, name);
  auto row = st->step("read breaker state");
  if (!row) return row.error();
  if (!*row) return std::optional<BreakerRecord>();
  return std::optional<BreakerRecord>(read_breaker(*st));
}

Result<std::vector<BreakerRecord>> SqliteStore::list_breakers() {
  std::lock_guard lock(impl_->mu);
  if (auto r = impl_->ensure_current(); !r) return r.error();
  auto st = impl_->db.prepare(fmt::format("SELECT {} FROM breaker_state ORDER BY name", kBreakerColumns));
  if (!st) return st.error();
  std::vector<BreakerRecord> out;
  for (;;) {
    auto row = st->step("list breaker states");
    if (!row) return row.error();
    if (!*row) break;
    out.push_back(read_breaker(*st));
  }
  return out;
}

Result<std::int64_t> SqliteStore::put_breaker(const BreakerRecord& r, std::optional<std::int64_t> expected_version) {
  if (auto v = validate(r); !v) return v.error();
  if (auto w = impl_->writable(); !w) return w.error();
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  sq::Transaction tx(impl_->db);
  if (auto e = tx.begin(); !e) return with_context(e.error(), fmt::format("write breaker '{}'", r.name));
  auto cur = impl_->checked_version("breaker_state", "breaker", r.name, expected_version);
  if (!cur) return cur.error();
  const std::int64_t current = *cur;
  auto st = impl_->db.prepare(fmt::format(
      "INSERT INTO breaker_state ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (name) DO UPDATE SET state = excluded.state, "
      "open_until_ms = excluded.open_until_ms, open_attempt = excluded.open_attempt, reason = excluded.reason, details = "
      "excluded.details, updated_ms = excluded.updated_ms, updated_by = excluded.updated_by, version = excluded.version",
      kBreakerColumns));
  if (!st) return st.error();
  st->bind(1, std::string_view(r.name));
  st->bind(2, std::string_view(r.state));
  st->bind(3, to_epoch_ms(r.open_until));
  st->bind(4, r.open_attempt);
  st->bind(5, std::string_view(r.reason));
  st->bind(6, std::string_view(r.details));
  st->bind(7, to_epoch_ms(r.updated));
  st->bind(8, std::string_view(r.updated_by));
  st->bind(9, current + 1);
  if (auto e = st->step("write breaker state"); !e) return e.error();
  st = sq::Statement();
  if (auto e = tx.commit(); !e) return e.error();
  return current + 1;
}

Result<bool> SqliteStore::delete_breaker(std::string_view name) {
  if (auto w = impl_->writable(); !w) return w.error();
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  auto st = impl_->db.prepare("DELETE FROM breaker_state WHERE name = ?1");
  if (!st) return st.error();
  st->bind(1, name);
  if (auto e = st->step("delete breaker state"); !e) return e.error();
  return sqlite3_changes(impl_->db.get()) > 0;
}

Result<std::vector<AuditRecord>> SqliteStore::query_audit(const AuditQuery& q) {
  std::lock_guard lock(impl_->mu);
  if (auto r = impl_->ensure_current(); !r) return r.error();
  Filter f;
  // An exact match, or a prefix match when the pattern ends in '*'.
  auto text_filter = [&](std::string_view column, const std::optional<std::string>& pattern) {
    if (!pattern) return;
    const std::string& p = *pattern;
    if (!p.empty() && p.back() == '*') {
      f.add(fmt::format("substr({}, 1, {}) =", column, p.size() - 1), p.substr(0, p.size() - 1));
    } else {
      f.add(fmt::format("{} =", column), p);
    }
  };
  if (q.since) f.add("ts_ms >=", to_epoch_ms(*q.since));
  if (q.until) f.add("ts_ms <", to_epoch_ms(*q.until));
  text_filter("actor", q.actor);
  text_filter("action", q.action);
  text_filter("resource", q.resource);
  if (q.outcome) f.add("outcome =", std::string(to_string(*q.outcome)));
  std::string sql = "SELECT id, ts_ms, actor, action, resource, origin, outcome, reason, details, correlation_id FROM audit_log WHERE 1=1" +
                    f.sql + (q.newest_first ? " ORDER BY id DESC" : " ORDER BY id ASC");
  if (q.limit) sql += fmt::format(" LIMIT {}", q.limit);
  auto st = impl_->db.prepare(sql);
  if (!st) return st.error();
  f.apply(*st);
  std::vector<AuditRecord> out;
  for (;;) {
    auto row = st->step("query audit records");
    if (!row) return row.error();
    if (!*row) break;
    AuditRecord r;
    r.id = st->int64(0);
    r.time = from_epoch_ms(st->int64(1));
    r.actor = st->text(2);
    r.action = st->text(3);
    r.resource = st->text(4);
    r.origin = st->text(5);
    auto outcome = parse_audit_outcome(st->text(6));
    if (!outcome) return fail(errc::corrupt, fmt::format("audit record {}: {}", r.id, outcome.error().message));
    r.outcome = *outcome;
    r.reason = st->text(7);
    r.details = st->text(8);
    r.correlation_id = st->text(9);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace automation::storage
