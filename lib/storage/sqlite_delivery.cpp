// SqliteStore's delivery area: messages to targets, stored before the first attempt and retried.
#include "storage/sqlite_impl.hpp"

#include <sqlite3.h>

namespace automation::storage {

namespace {

constexpr std::string_view kDeliveryColumns =
    "id, key, subject, target, content_type, state, attempts, next_attempt_ms, claimed_until_ms, last_error, reason, created_ms, "
    "updated_ms, version";

DeliveryRecord read_delivery(const sq::Statement& st, bool with_body) {
  DeliveryRecord r;
  r.id = st.int64(0);
  r.key = st.text(1);
  r.subject = st.text(2);
  r.target = st.text(3);
  r.content_type = st.text(4);
  r.state = st.text(5);
  r.attempts = static_cast<int>(st.int64(6));
  r.next_attempt = from_epoch_ms(st.int64(7));
  r.claimed_until = from_epoch_ms(st.int64(8));
  r.last_error = st.text(9);
  r.reason = st.text(10);
  r.created = from_epoch_ms(st.int64(11));
  r.updated = from_epoch_ms(st.int64(12));
  r.version = st.int64(13);
  if (with_body) r.body = st.text(14);
  return r;
}

}  // namespace

Result<Enqueued> SqliteStore::enqueue_delivery(const DeliveryRecord& r) {
  if (auto v = validate(r); !v) return v.error();
  if (auto w = impl_->writable(); !w) return w.error();
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  auto st = impl_->db.prepare(
      "INSERT INTO delivery (key, subject, target, content_type, body, state, attempts, next_attempt_ms, claimed_until_ms, last_error, "
      "reason, created_ms, updated_ms, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?12, ?9, ?10, ?11, ?11, 1) ON CONFLICT (key) DO "
      "NOTHING");
  if (!st) return st.error();
  st->bind(1, std::string_view(r.key));
  st->bind(2, std::string_view(r.subject));
  st->bind(3, std::string_view(r.target));
  st->bind(4, std::string_view(r.content_type));
  st->bind(5, std::string_view(r.body));
  st->bind(6, std::string_view(r.state));
  st->bind(7, static_cast<std::int64_t>(r.attempts));
  st->bind(8, to_epoch_ms(r.next_attempt));
  st->bind(9, std::string_view(r.last_error));
  st->bind(10, std::string_view(r.reason));
  st->bind(11, to_epoch_ms(r.created));
  st->bind(12, to_epoch_ms(r.claimed_until));
  if (auto e = st->step("store a delivery"); !e) return e.error();
  if (sqlite3_changes(impl_->db.get()) == 1) return Enqueued{sqlite3_last_insert_rowid(impl_->db.get()), true};
  auto q = impl_->db.prepare("SELECT id FROM delivery WHERE key = ?1");
  if (!q) return q.error();
  q->bind(1, std::string_view(r.key));
  auto row = q->step("find a delivery by key");
  if (!row) return row.error();
  if (!*row) return fail(errc::internal, fmt::format("delivery key {} neither inserted nor found", r.key));
  return Enqueued{q->int64(0), false};
}

Result<std::optional<DeliveryRecord>> SqliteStore::get_delivery(std::int64_t id) {
  std::lock_guard lock(impl_->mu);
  if (auto c = impl_->ensure_current(); !c) return c.error();
  auto st = impl_->db.prepare(fmt::format("SELECT {}, body FROM delivery WHERE id = ?1", kDeliveryColumns));
  if (!st) return st.error();
  st->bind(1, id);
  auto row = st->step("read a delivery");
  if (!row) return row.error();
  if (!*row) return std::optional<DeliveryRecord>{};
  return std::optional<DeliveryRecord>(read_delivery(*st, true));
}

Result<std::vector<DeliveryRecord>> SqliteStore::list_deliveries(const DeliveryQuery& q) {
  std::lock_guard lock(impl_->mu);
  if (auto c = impl_->ensure_current(); !c) return c.error();
  std::string sql = fmt::format("SELECT {}{} FROM delivery WHERE 1", kDeliveryColumns, q.with_body ? ", body" : "");
  if (q.state) sql += " AND state = ?1";
  if (q.subject) sql += " AND subject = ?2";
  if (q.due_by) sql += " AND next_attempt_ms <= ?3 AND claimed_until_ms <= ?3";
  sql += q.due_by ? " ORDER BY next_attempt_ms, id" : q.newest_first ? " ORDER BY id DESC" : " ORDER BY id";
  if (q.limit) sql += fmt::format(" LIMIT {}", q.limit);
  auto st = impl_->db.prepare(sql);
  if (!st) return st.error();
  if (q.state) st->bind(1, std::string_view(*q.state));
  if (q.subject) st->bind(2, std::string_view(*q.subject));
  if (q.due_by) st->bind(3, to_epoch_ms(*q.due_by));
  std::vector<DeliveryRecord> out;
  for (;;) {
    auto row = st->step("list deliveries");
    if (!row) return row.error();
    if (!*row) break;
    out.push_back(read_delivery(*st, q.with_body));
  }
  return out;
}

Result<std::int64_t> SqliteStore::update_delivery(const DeliveryRecord& r) {
  if (auto v = validate(r); !v) return v.error();
  if (auto w = impl_->writable(); !w) return w.error();
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  auto st = impl_->db.prepare(
      "UPDATE delivery SET state = ?1, attempts = ?2, next_attempt_ms = ?3, claimed_until_ms = ?8, last_error = ?4, updated_ms = ?5, "
      "version = version + 1 WHERE id = ?6 AND version = ?7");
  if (!st) return st.error();
  st->bind(1, std::string_view(r.state));
  st->bind(2, static_cast<std::int64_t>(r.attempts));
  st->bind(3, to_epoch_ms(r.next_attempt));
  st->bind(4, std::string_view(r.last_error));
  st->bind(5, to_epoch_ms(r.updated));
  st->bind(6, r.id);
  st->bind(7, r.version);
  st->bind(8, to_epoch_ms(r.claimed_until));
  if (auto e = st->step("update a delivery"); !e) return e.error();
  if (sqlite3_changes(impl_->db.get()) == 1) return r.version + 1;
  auto q = impl_->db.prepare("SELECT version FROM delivery WHERE id = ?1");
  if (!q) return q.error();
  q->bind(1, r.id);
  auto row = q->step("read a delivery's version");
  if (!row) return row.error();
  if (!*row) return fail(errc::not_found, fmt::format("delivery {} does not exist", r.id));
  return fail(errc::conflict,
              fmt::format("delivery '{}' is at version {}, not {}: another writer changed it", r.id, q->int64(0), r.version));
}

Result<std::int64_t> SqliteStore::prune_deliveries(TimePoint before) {
  if (auto w = impl_->writable(); !w) return w.error();
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  auto st = impl_->db.prepare("DELETE FROM delivery WHERE state <> 'pending' AND updated_ms < ?1");
  if (!st) return st.error();
  st->bind(1, to_epoch_ms(before));
  if (auto e = st->step("prune deliveries"); !e) return e.error();
  return static_cast<std::int64_t>(sqlite3_changes(impl_->db.get()));
}

}  // namespace automation::storage
