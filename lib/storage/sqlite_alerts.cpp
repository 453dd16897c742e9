// SqliteStore's samples and alerts areas: sampled metric values, and the firing episodes of alert rules.
#include "storage/sqlite_impl.hpp"

#include <sqlite3.h>

namespace automation::storage {

namespace {

constexpr std::string_view kAlertColumns =
    "id, rule, labels, severity, state, summary, values_json, active_since_ms, fired_ms, resolved_ms, acknowledged_ms, acknowledged_by, "
    "ack_reason, notified_state, notified_ms, level, reopened, reason, updated_ms, version";

AlertRecord read_alert(const sq::Statement& st) {
  AlertRecord r;
  r.id = st.int64(0);
  r.rule = st.text(1);
  r.labels = st.text(2);
  r.severity = st.text(3);
  r.state = st.text(4);
  r.summary = st.text(5);
  r.values = st.text(6);
  r.active_since = from_epoch_ms(st.int64(7));
  r.fired = from_epoch_ms(st.int64(8));
  r.resolved = from_epoch_ms(st.int64(9));
  r.acknowledged = from_epoch_ms(st.int64(10));
  r.acknowledged_by = st.text(11);
  r.ack_reason = st.text(12);
  r.notified_state = st.text(13);
  r.notified = from_epoch_ms(st.int64(14));
  r.level = static_cast<int>(st.int64(15));
  r.reopened = static_cast<int>(st.int64(16));
  r.reason = st.text(17);
  r.updated = from_epoch_ms(st.int64(18));
  r.version = st.int64(19);
  return r;
}

// Binds ?1 rule, ?2 labels and ?3..?18 the fields an update writes, in kAlertColumns' order.
void bind_alert(sq::Statement& st, const AlertRecord& r) {
  st.bind(1, std::string_view(r.rule));
  st.bind(2, std::string_view(r.labels));
  st.bind(3, std::string_view(r.severity));
  st.bind(4, std::string_view(r.state));
  st.bind(5, std::string_view(r.summary));
  st.bind(6, std::string_view(r.values));
  st.bind(7, to_epoch_ms(r.active_since));
  st.bind(8, to_epoch_ms(r.fired));
  st.bind(9, to_epoch_ms(r.resolved));
  st.bind(10, to_epoch_ms(r.acknowledged));
  st.bind(11, std::string_view(r.acknowledged_by));
  st.bind(12, std::string_view(r.ack_reason));
  st.bind(13, std::string_view(r.notified_state));
  st.bind(14, to_epoch_ms(r.notified));
  st.bind(15, r.level);
  st.bind(16, r.reopened);
  st.bind(17, std::string_view(r.reason));
  st.bind(18, to_epoch_ms(r.updated));
}

bool unique_violation(sq::Connection& db) { return sqlite3_extended_errcode(db.get()) == SQLITE_CONSTRAINT_UNIQUE; }

// Inside the write transaction whose insert or update the alert_firing index refused: the conflict,
// naming the alert that is firing for the (rule, labels) of alert `id` (0: of `rule` and `labels`).
Error firing_conflict(sq::Connection& db, std::int64_t id, const std::string& rule, const std::string& labels) {
  auto st = id ? db.prepare(
                     "SELECT f.id, f.rule, f.labels FROM alert a JOIN alert f ON f.rule = a.rule AND f.labels = a.labels AND f.state = "
                     "'firing' WHERE a.id = ?1")
               : db.prepare("SELECT id, rule, labels FROM alert WHERE rule = ?2 AND labels = ?3 AND state = 'firing'");
  std::int64_t firing = 0;
  std::string shown_rule = rule, shown_labels = labels;
  if (st) {
    st->bind(1, id);
    st->bind(2, std::string_view(rule));
    st->bind(3, std::string_view(labels));
    if (auto row = st->step("find the firing alert"); row && *row) {
      firing = st->int64(0);
      shown_rule = st->text(1);
      shown_labels = st->text(2);
    }
  }
  return fail(errc::conflict, fmt::format("rule \"{}\" labels \"{}\": alert {} is firing already (one firing alert per rule and labels)",
                                          shown_rule, shown_labels, firing));
}

}  // namespace

Result<std::size_t> SqliteStore::append_metric_points(std::span<const MetricPoint> points) {
  for (const auto& p : points)
    if (auto v = validate(p); !v) return v.error();
  if (auto w = impl_->writable(); !w) return w.error();
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  if (points.empty()) return std::size_t{0};
  sq::Transaction tx(impl_->db);
  if (auto e = tx.begin(); !e) return with_context(e.error(), "append metric points");
  auto st = impl_->cached(
      "INSERT INTO metric_point (name, labels, time_ms, value) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name, labels, time_ms) DO UPDATE SET "
      "value = excluded.value");
  if (!st) return st.error();
  auto& q = **st;
  for (const auto& p : points) {
    q.reset();
    q.bind(1, std::string_view(p.name));
    q.bind(2, std::string_view(p.labels));
    q.bind(3, to_epoch_ms(p.time));
    q.bind(4, p.value);
    if (auto r = q.step("store a metric point"); !r) {
      q.reset();
      return with_context(r.error(), fmt::format("metric point {}{{{}}}", p.name, p.labels));
    }
  }
  q.reset();
  if (auto e = tx.commit(); !e) return e.error();
  return points.size();
}

Result<std::vector<MetricPoint>> SqliteStore::query_metric_points(const MetricQuery& q) {
  if (q.name.empty()) return fail(errc::invalid_argument, "metric query: \"name\" is required");
  std::lock_guard lock(impl_->mu);
  if (auto c = impl_->ensure_current(); !c) return c.error();
  // The primary key (name, time_ms, labels) gives the metric's window as one range.
  std::string sql = "SELECT labels, time_ms, value FROM metric_point WHERE name = ?1";
  if (q.labels) sql += " AND labels = ?2";
  if (q.since) sql += " AND time_ms >= ?3";
  if (q.until) sql += " AND time_ms < ?4";
  sql += q.newest_first ? " ORDER BY labels, time_ms DESC" : " ORDER BY labels, time_ms";
  if (q.limit) sql += fmt::format(" LIMIT {}", q.limit);
  auto st = impl_->db.prepare(sql);
  if (!st) return st.error();
  st->bind(1, std::string_view(q.name));
  if (q.labels) st->bind(2, std::string_view(*q.labels));
  if (q.since) st->bind(3, to_epoch_ms(*q.since));
  if (q.until) st->bind(4, to_epoch_ms(*q.until));
  std::vector<MetricPoint> out;
  for (;;) {
    auto row = st->step("query metric points");
    if (!row) return row.error();
    if (!*row) break;
    out.push_back(MetricPoint{q.name, st->text(0), from_epoch_ms(st->int64(1)), st->real(2)});
  }
  return out;
}

Result<std::int64_t> SqliteStore::prune_metric_points(TimePoint before) {
  return impl_->prune_in_chunks(
      "DELETE FROM metric_point WHERE (name, labels, time_ms) IN (SELECT name, labels, time_ms FROM metric_point WHERE time_ms < ?1 "
      "ORDER BY time_ms LIMIT ?2)",
      before, 10000, "prune metric points");
}

Result<std::int64_t> SqliteStore::create_alert(const AlertRecord& r) {
  if (auto v = validate(r); !v) return v.error();
  if (auto w = impl_->writable(); !w) return w.error();
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  sq::Transaction tx(impl_->db);
  if (auto e = tx.begin(); !e) return with_context(e.error(), "store an alert");
  auto st = impl_->db.prepare(
      "INSERT INTO alert (rule, labels, severity, state, summary, values_json, active_since_ms, fired_ms, resolved_ms, acknowledged_ms, "
      "acknowledged_by, ack_reason, notified_state, notified_ms, level, reopened, reason, updated_ms, version) VALUES (?1, ?2, ?3, ?4, "
      "?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, 1)");
  if (!st) return st.error();
  bind_alert(*st, r);
  if (auto e = st->step("store an alert"); !e) {
    if (!unique_violation(impl_->db)) return e.error();
    st->reset();
    return firing_conflict(impl_->db, 0, r.rule, r.labels);
  }
  const std::int64_t id = sqlite3_last_insert_rowid(impl_->db.get());
  st->reset();
  if (auto e = tx.commit(); !e) return e.error();
  return id;
}

Result<std::optional<AlertRecord>> SqliteStore::get_alert(std::int64_t id) {
  std::lock_guard lock(impl_->mu);
  if (auto c = impl_->ensure_current(); !c) return c.error();
  auto st = impl_->db.prepare(fmt::format("SELECT {} FROM alert WHERE id = ?1", kAlertColumns));
  if (!st) return st.error();
  st->bind(1, id);
  auto row = st->step("read an alert");
  if (!row) return row.error();
  if (!*row) return std::optional<AlertRecord>{};
  return std::optional<AlertRecord>(read_alert(*st));
}

Result<std::vector<AlertRecord>> SqliteStore::list_alerts(const AlertQuery& q) {
  std::lock_guard lock(impl_->mu);
  if (auto c = impl_->ensure_current(); !c) return c.error();
  std::string sql = fmt::format("SELECT {} FROM alert WHERE 1", kAlertColumns);
  if (q.state) sql += " AND state = ?1";
  if (q.rule) sql += " AND rule = ?2";
  if (q.labels) sql += " AND labels = ?3";
  if (q.since) sql += " AND fired_ms >= ?4";
  if (q.notice_owed) sql += " AND notified_state <> '' AND state <> notified_state";
  sql += q.newest_first ? " ORDER BY id DESC" : " ORDER BY id";
  if (q.limit) sql += fmt::format(" LIMIT {}", q.limit);
  auto st = impl_->db.prepare(sql);
  if (!st) return st.error();
  if (q.state) st->bind(1, std::string_view(*q.state));
  if (q.rule) st->bind(2, std::string_view(*q.rule));
  if (q.labels) st->bind(3, std::string_view(*q.labels));
  if (q.since) st->bind(4, to_epoch_ms(*q.since));
  std::vector<AlertRecord> out;
  for (;;) {
    auto row = st->step("list alerts");
    if (!row) return row.error();
    if (!*row) break;
    out.push_back(read_alert(*st));
  }
  return out;
}

Result<std::int64_t> SqliteStore::update_alert(const AlertRecord& r) {
  if (auto v = validate(r); !v) return v.error();
  if (auto w = impl_->writable(); !w) return w.error();
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  sq::Transaction tx(impl_->db);
  if (auto e = tx.begin(); !e) return with_context(e.error(), fmt::format("update alert {}", r.id));
  auto st = impl_->db.prepare(
      "UPDATE alert SET severity = ?3, state = ?4, summary = ?5, values_json = ?6, active_since_ms = ?7, fired_ms = ?8, resolved_ms = ?9, "
      "acknowledged_ms = ?10, acknowledged_by = ?11, ack_reason = ?12, notified_state = ?13, notified_ms = ?14, level = ?15, reopened = "
      "?16, reason = ?17, updated_ms = ?18, version = version + 1 WHERE id = ?19 AND version = ?20");
  if (!st) return st.error();
  bind_alert(*st, r);
  st->bind(19, r.id);
  st->bind(20, r.version);
  if (auto e = st->step("update an alert"); !e) {
    if (!unique_violation(impl_->db)) return e.error();
    st->reset();
    return firing_conflict(impl_->db, r.id, r.rule, r.labels);
  }
  if (sqlite3_changes(impl_->db.get()) == 1) {
    st->reset();
    if (auto e = tx.commit(); !e) return e.error();
    return r.version + 1;
  }
  auto q = impl_->db.prepare("SELECT version FROM alert WHERE id = ?1");
  if (!q) return q.error();
  q->bind(1, r.id);
  auto row = q->step("read an alert's version");
  if (!row) return row.error();
  if (!*row) return fail(errc::not_found, fmt::format("alert {} does not exist", r.id));
  return fail(errc::conflict, fmt::format("alert '{}' is at version {}, not {}: another writer changed it", r.id, q->int64(0), r.version));
}

Result<std::int64_t> SqliteStore::prune_alerts(TimePoint before) {
  if (auto w = impl_->writable(); !w) return w.error();
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  auto st = impl_->db.prepare("DELETE FROM alert WHERE state = 'resolved' AND resolved_ms < ?1");
  if (!st) return st.error();
  st->bind(1, to_epoch_ms(before));
  if (auto e = st->step("prune alerts"); !e) return e.error();
  return static_cast<std::int64_t>(sqlite3_changes(impl_->db.get()));
}

}  // namespace automation::storage
