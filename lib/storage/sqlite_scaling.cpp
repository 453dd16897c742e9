// SqliteStore's scaling and healing areas: the history of scaling decisions and of health targets,
// from which the scaler and the healer rebuild their state.
#include "storage/history_check.hpp"
#include "storage/sqlite_impl.hpp"

#include <sqlite3.h>

namespace automation::storage {

namespace {

constexpr std::string_view kScalingColumns =
    "id, resource, action, time_ms, actor, current_size, recommended_size, desired_size, reason, message, inputs, active, metrics_ok, "
    "dry_run, outcome, error, updated_ms";

ScalingRecord read_scaling(const sq::Statement& st) {
  ScalingRecord r;
  r.id = st.int64(0);
  r.resource = st.text(1);
  r.action = st.text(2);
  r.time = from_epoch_ms(st.int64(3));
  r.actor = st.text(4);
  r.current = static_cast<int>(st.int64(5));
  r.recommended = static_cast<int>(st.int64(6));
  r.desired = static_cast<int>(st.int64(7));
  r.reason = st.text(8);
  r.message = st.text(9);
  r.inputs = st.text(10);
  r.active = st.int64(11) != 0;
  r.metrics_ok = st.int64(12) != 0;
  r.dry_run = st.int64(13) != 0;
  r.outcome = st.text(14);
  r.error = st.text(15);
  r.updated = from_epoch_ms(st.int64(16));
  return r;
}

constexpr std::string_view kHealingColumns =
    "id, target, time_ms, kind, state, action, step, attempt, actor, reason, detail, dry_run, outcome, error, updated_ms";

HealingRecord read_healing(const sq::Statement& st) {
  HealingRecord r;
  r.id = st.int64(0);
  r.target = st.text(1);
  r.time = from_epoch_ms(st.int64(2));
  r.kind = st.text(3);
  r.state = st.text(4);
  r.action = st.text(5);
  r.step = static_cast<int>(st.int64(6));
  r.attempt = static_cast<int>(st.int64(7));
  r.actor = st.text(8);
  r.reason = st.text(9);
  r.detail = st.text(10);
  r.dry_run = st.int64(11) != 0;
  r.outcome = st.text(12);
  r.error = st.text(13);
  r.updated = from_epoch_ms(st.int64(14));
  return r;
}

// Inside the write transaction of a finish whose UPDATE changed nothing: not_found for an unknown id,
// else the conflict naming the record's outcome.
Error not_pending(sq::Connection& db, std::string_view table, std::string_view what, std::int64_t id) {
  auto st = db.prepare(fmt::format("SELECT outcome FROM {} WHERE id = ?1", table));
  if (!st) return st.error();
  st->bind(1, id);
  auto row = st->step(fmt::format("read a {} record", what));
  if (!row) return row.error();
  if (!*row) return fail(errc::not_found, fmt::format("{} record {} does not exist", what, id));
  const auto outcome = st->text(0);
  return fail(errc::conflict, fmt::format("{} record {} is not pending (its outcome is \"{}\"): another writer finished it, or it "
                                          "never was pending",
                                          what, id, outcome));
}

}  // namespace

Result<std::int64_t> SqliteStore::append_scaling(const ScalingRecord& r, std::optional<std::int64_t> after) {
  if (auto v = validate(r); !v) return v.error();
  if (auto w = impl_->writable(); !w) return w.error();
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  // BEGIN IMMEDIATE holds the write lock from here, so no other process appends between the
  // comparison and the insert.
  sq::Transaction tx(impl_->db);
  if (auto e = tx.begin(); !e) return with_context(e.error(), fmt::format("store a scaling record of {}", r.resource));
  if (after) {
    auto newest = impl_->cached("SELECT coalesce(max(id), 0) FROM scaling_record WHERE resource = ?1");
    if (!newest) return newest.error();
    auto& q = **newest;
    q.bind(1, std::string_view(r.resource));
    auto row = q.step("read the newest scaling record");
    if (!row) {
      q.reset();
      return row.error();
    }
    const std::int64_t current = *row ? q.int64(0) : 0;
    q.reset();
    if (current != *after)
      return fail(errc::conflict, fmt::format("resource \"{}\": the newest scaling record is {}, not {}: another writer recorded one first",
                                              r.resource, current, *after));
  }
  auto st = impl_->cached(
      "INSERT INTO scaling_record (resource, action, time_ms, actor, current_size, recommended_size, desired_size, reason, message, "
      "inputs, active, metrics_ok, dry_run, outcome, error, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
      "?14, ?15, ?16)");
  if (!st) return st.error();
  auto& q = **st;
  q.bind(1, std::string_view(r.resource));
  q.bind(2, std::string_view(r.action));
  q.bind(3, to_epoch_ms(r.time));
  q.bind(4, std::string_view(r.actor));
  q.bind(5, r.current);
  q.bind(6, r.recommended);
  q.bind(7, r.desired);
  q.bind(8, std::string_view(r.reason));
  q.bind(9, std::string_view(r.message));
  q.bind(10, std::string_view(r.inputs));
  q.bind(11, static_cast<int>(r.active));
  q.bind(12, static_cast<int>(r.metrics_ok));
  q.bind(13, static_cast<int>(r.dry_run));
  q.bind(14, std::string_view(r.outcome));
  q.bind(15, std::string_view(r.error));
  q.bind(16, to_epoch_ms(r.updated));
  if (auto e = q.step("store a scaling record"); !e) {
    q.reset();
    return with_context(e.error(), fmt::format("scaling record of {}", r.resource));
  }
  const std::int64_t id = sqlite3_last_insert_rowid(impl_->db.get());
  q.reset();
  if (auto e = tx.commit(); !e) return e.error();
  return id;
}

Result<void> SqliteStore::finish_scaling(std::int64_t id, std::string_view outcome, std::string_view error, TimePoint updated) {
  if (auto v = detail::check_scaling_finish(id, outcome); !v) return v.error();
  if (auto w = impl_->writable(); !w) return w.error();
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  sq::Transaction tx(impl_->db);
  if (auto e = tx.begin(); !e) return with_context(e.error(), fmt::format("finish scaling record {}", id));
  auto st = impl_->cached("UPDATE scaling_record SET outcome = ?2, error = ?3, updated_ms = ?4 WHERE id = ?1 AND outcome = 'pending'");
  if (!st) return st.error();
  auto& q = **st;
  q.bind(1, id);
  q.bind(2, outcome);
  q.bind(3, error);
  q.bind(4, to_epoch_ms(updated));
  auto done = q.step("finish a scaling record");
  const int changed = done ? sqlite3_changes(impl_->db.get()) : 0;
  q.reset();
  if (!done) return with_context(done.error(), fmt::format("scaling record {}", id));
  if (changed != 1) return not_pending(impl_->db, "scaling_record", "scaling", id);
  return tx.commit();
}

Result<std::vector<ScalingRecord>> SqliteStore::list_scaling(const ScalingQuery& q) {
  std::lock_guard lock(impl_->mu);
  if (auto c = impl_->ensure_current(); !c) return c.error();
  std::string sql = fmt::format("SELECT {} FROM scaling_record WHERE 1", kScalingColumns);
  if (q.resource) sql += " AND resource = ?1";
  if (q.action) sql += " AND action = ?2";
  if (q.outcome) sql += " AND outcome = ?3";
  if (q.since) sql += " AND time_ms >= ?4";
  if (q.changes_only) sql += " AND (desired_size <> current_size OR action IN ('scale-up', 'scale-down', 'restart'))";
  sql += q.newest_first ? " ORDER BY id DESC" : " ORDER BY id";
  if (q.limit) sql += fmt::format(" LIMIT {}", q.limit);
  auto st = impl_->db.prepare(sql);
  if (!st) return st.error();
  if (q.resource) st->bind(1, std::string_view(*q.resource));
  if (q.action) st->bind(2, std::string_view(*q.action));
  if (q.outcome) st->bind(3, std::string_view(*q.outcome));
  if (q.since) st->bind(4, to_epoch_ms(*q.since));
  std::vector<ScalingRecord> out;
  for (;;) {
    auto row = st->step("list scaling records");
    if (!row) return row.error();
    if (!*row) break;
    out.push_back(read_scaling(*st));
  }
  return out;
}

Result<std::int64_t> SqliteStore::prune_scaling(TimePoint before) {
  // Each chunk spares the resources' newest thresholds records as they are then (the partial index).
  return impl_->prune_in_chunks(
      "DELETE FROM scaling_record WHERE id IN (SELECT id FROM scaling_record WHERE time_ms < ?1 AND id NOT IN (SELECT max(id) FROM "
      "scaling_record WHERE action = 'thresholds' GROUP BY resource) ORDER BY time_ms LIMIT ?2)",
      before, 10000, "prune scaling records");
}

Result<std::int64_t> SqliteStore::append_healing(const HealingRecord& r) {
  if (auto v = validate(r); !v) return v.error();
  if (auto w = impl_->writable(); !w) return w.error();
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  sq::Transaction tx(impl_->db);
  if (auto e = tx.begin(); !e) return with_context(e.error(), fmt::format("store a healing record of {}", r.target));
  auto st = impl_->cached(
      "INSERT INTO healing_record (target, time_ms, kind, state, action, step, attempt, actor, reason, detail, dry_run, outcome, error, "
      "updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)");
  if (!st) return st.error();
  auto& q = **st;
  q.bind(1, std::string_view(r.target));
  q.bind(2, to_epoch_ms(r.time));
  q.bind(3, std::string_view(r.kind));
  q.bind(4, std::string_view(r.state));
  q.bind(5, std::string_view(r.action));
  q.bind(6, r.step);
  q.bind(7, r.attempt);
  q.bind(8, std::string_view(r.actor));
  q.bind(9, std::string_view(r.reason));
  q.bind(10, std::string_view(r.detail));
  q.bind(11, static_cast<int>(r.dry_run));
  q.bind(12, std::string_view(r.outcome));
  q.bind(13, std::string_view(r.error));
  q.bind(14, to_epoch_ms(r.updated));
  if (auto e = q.step("store a healing record"); !e) {
    q.reset();
    return with_context(e.error(), fmt::format("healing record of {}", r.target));
  }
  const std::int64_t id = sqlite3_last_insert_rowid(impl_->db.get());
  q.reset();
  if (auto e = tx.commit(); !e) return e.error();
  return id;
}

Result<void> SqliteStore::finish_healing(std::int64_t id, std::string_view outcome, std::string_view error, std::string_view detail,
                                         TimePoint updated) {
  if (auto v = detail::check_healing_finish(id, outcome, detail); !v) return v.error();
  if (auto w = impl_->writable(); !w) return w.error();
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  sq::Transaction tx(impl_->db);
  if (auto e = tx.begin(); !e) return with_context(e.error(), fmt::format("finish healing record {}", id));
  auto st = impl_->cached(
      "UPDATE healing_record SET outcome = ?2, error = ?3, detail = CASE WHEN ?4 = '' THEN detail ELSE ?4 END, updated_ms = ?5 WHERE id = "
      "?1 AND outcome = 'pending'");
  if (!st) return st.error();
  auto& q = **st;
  q.bind(1, id);
  q.bind(2, outcome);
  q.bind(3, error);
  q.bind(4, detail);
  q.bind(5, to_epoch_ms(updated));
  auto done = q.step("finish a healing record");
  const int changed = done ? sqlite3_changes(impl_->db.get()) : 0;
  q.reset();
  if (!done) return with_context(done.error(), fmt::format("healing record {}", id));
  if (changed != 1) return not_pending(impl_->db, "healing_record", "healing", id);
  return tx.commit();
}

Result<std::vector<HealingRecord>> SqliteStore::list_healing(const HealingQuery& q) {
  std::lock_guard lock(impl_->mu);
  if (auto c = impl_->ensure_current(); !c) return c.error();
  std::string sql = fmt::format("SELECT {} FROM healing_record WHERE 1", kHealingColumns);
  if (q.target) sql += " AND target = ?1";
  if (q.kind) sql += " AND kind = ?2";
  if (q.action) sql += " AND action = ?3";
  if (q.since) sql += " AND time_ms >= ?4";
  sql += q.newest_first ? " ORDER BY id DESC" : " ORDER BY id";
  if (q.limit) sql += fmt::format(" LIMIT {}", q.limit);
  auto st = impl_->db.prepare(sql);
  if (!st) return st.error();
  if (q.target) st->bind(1, std::string_view(*q.target));
  if (q.kind) st->bind(2, std::string_view(*q.kind));
  if (q.action) st->bind(3, std::string_view(*q.action));
  if (q.since) st->bind(4, to_epoch_ms(*q.since));
  std::vector<HealingRecord> out;
  for (;;) {
    auto row = st->step("list healing records");
    if (!row) return row.error();
    if (!*row) break;
    out.push_back(read_healing(*st));
  }
  return out;
}

Result<std::int64_t> SqliteStore::prune_healing(TimePoint before) {
  return impl_->prune_in_chunks(
      "DELETE FROM healing_record WHERE id IN (SELECT id FROM healing_record WHERE time_ms < ?1 ORDER BY time_ms LIMIT ?2)", before, 10000,
      "prune healing records");
}

}  // namespace automation::storage
