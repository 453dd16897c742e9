#pragma once
// SqliteStore's state, shared by the files implementing its areas (sqlite_store.cpp,
// sqlite_workflow.cpp).
#include <automation/storage/sqlite_store.hpp>

#include <detail/log.hpp>
#include <detail/sqlite.hpp>
#include "storage/schema.hpp"

#include <fmt/format.h>

#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace automation::storage {

namespace sq = automation::detail::sqlite;

// The task rollup statements, prepared on first use (see write_rollups).
struct RollupStatements {
  sq::Statement get, put;
};

struct SqliteStore::Impl {
  std::string path;
  std::function<void(std::chrono::nanoseconds)> observer;  // observe_statements()
  OpenOptions options;
  sq::Connection db;
  std::mutex mu;
  int version = 0;
  sq::Statement insert_audit;
  sq::Statement insert_task;
  sq::Statement insert_tasks_multi;  // kTaskRowsPerInsert rows per statement
  RollupStatements rollup;
  // Statements prepared once per schema version, by their SQL text (the workflow area's).
  std::unordered_map<std::string_view, sq::Statement> cache;

  // The cached statement for `sql` (a string literal: it is the key), reset and ready to bind.
  Result<sq::Statement*> cached(std::string_view sql) {
    auto it = cache.find(sql);
    if (it == cache.end()) {
      auto st = db.prepare(sql);
      if (!st) return st.error();
      it = cache.emplace(sql, std::move(st.value())).first;
    }
    it->second.reset();
    return &it->second;
  }

  Result<void> writable() const {
    if (options.read_only) return fail(errc::permission_denied, fmt::format("database {} was opened read-only", path));
    return {};
  }

  // Operations of an area need the schema that created it; a database opened without migrating
  // may be behind (another process may have migrated it since, so look again before refusing).
  Result<void> ensure_current() {
    if (version >= latest_schema_version()) return {};
    auto v = db.scalar_int("PRAGMA user_version", "read the schema version");
    if (!v) return v.error();
    version = static_cast<int>(*v);
    if (version >= latest_schema_version()) return {};
    return fail(errc::unavailable, fmt::format("database {} has schema version {}, this build needs {}: run `autoctl store migrate`", path,
                                               version, latest_schema_version()));
  }

  // Deletes with `sql` (binding ?1 = before in epoch ms, ?2 = the chunk size) until a chunk deletes
  // fewer rows than `chunk`: each chunk its own (autocommit) transaction, so that pruning a
  // long-unpruned store never holds other writers out for long. Returns the rows deleted.
  Result<std::int64_t> prune_in_chunks(std::string_view sql, TimePoint before, std::int64_t chunk, std::string_view what);
  Result<void> fill_task_rollups();
  // Inside a write transaction: marks a block's partials for a zone present and stores them; false
  // (nothing written) when they were present already.
  Result<bool> insert_partials(std::int64_t block_id, std::string_view zone, std::span<const UsagePartialRecord> partials);
  // Inside a write transaction: stores one partial.
  Result<void> insert_partial(std::string_view zone, std::int32_t day, std::int64_t block_id, std::string_view data);
  Result<void> upsert_steps(std::int64_t run_id, std::span<const StepRecord> steps);
  // Binds ?1..?7 = schedule, fire_ms, event_id, run_id, outcome, reason, recorded_ms.
  static void bind_fire(sq::Statement& q, const FireRecord& f);
  // Inside a write transaction: the stored version of row `name` of `table` (0: none), or
  // errc::conflict when it is not `expected` (no expectation: any version).
  Result<std::int64_t> checked_version(std::string_view table, std::string_view what, const std::string& name,
                                       std::optional<std::int64_t> expected) {
    return checked_version(table, what, "name = ?1", {name}, name, expected);
  }
  // The same for a row selected by `where` with `keys` bound as ?1, ?2, ...; `shown` names it in
  // the conflict message.
  Result<std::int64_t> checked_version(std::string_view table, std::string_view what, std::string_view where,
                                       std::initializer_list<std::string_view> keys, std::string_view shown,
                                       std::optional<std::int64_t> expected);

  Result<MigrationReport> migrate_locked() {
    MigrationReport report;
    auto cur = db.scalar_int("PRAGMA user_version", "read the schema version");
    if (!cur) return cur.error();
    report.from_version = static_cast<int>(*cur);
    for (const auto& m : detail::migrations()) {
      if (m.version <= report.from_version) continue;
      sq::Transaction tx(db);
      if (auto r = tx.begin(); !r) return with_context(r.error(), fmt::format("migrate {} to version {}", path, m.version));
      // Another process may have applied it while we waited for the lock.
      auto now = db.scalar_int("PRAGMA user_version", "read the schema version");
      if (!now) return now.error();
      if (*now >= m.version) {
        (void)tx.commit();
        continue;
      }
      if (auto r = db.exec(m.sql, fmt::format("apply migration {} ({})", m.version, m.description)); !r) return r.error();
      if (m.version == 1) {
        if (auto r = db.exec(fmt::format("PRAGMA application_id = {}", detail::kApplicationId), "set application_id"); !r) return r.error();
      }
      if (m.version == 3) {
        if (auto r = fill_task_rollups(); !r) return r.error();
      }
      if (auto r = db.exec(fmt::format("PRAGMA user_version = {}", m.version), "set user_version"); !r) return r.error();
      if (auto r = tx.commit(); !r) return r.error();
      report.applied.push_back(fmt::format("{}: {}", m.version, m.description));
      automation::detail::logf(LogLevel::info, "store", "applied migration {} ({}) to {}", m.version, m.description, path);
    }
    auto v = db.scalar_int("PRAGMA user_version", "read the schema version");
    if (!v) return v.error();
    version = report.to_version = static_cast<int>(*v);
    // Statements prepared against an older schema are dropped.
    insert_audit = {};
    insert_task = {};
    insert_tasks_multi = {};
    rollup = {};
    cache.clear();
    return report;
  }
};

}  // namespace automation::storage
