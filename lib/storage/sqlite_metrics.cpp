// SqliteStore's metrics area: usage blocks and their partials, daily revenue and stored rollups.
#include "storage/sqlite_impl.hpp"

#include <sqlite3.h>

#include <algorithm>

namespace automation::storage {

namespace {

UsageBlockRecord read_block(const sq::Statement& st, bool with_data) {
  UsageBlockRecord b;
  b.id = st.int64(0);
  b.key = st.text(1);
  b.source = st.text(2);
  b.first_row = st.int64(3);
  b.events = st.int64(4);
  b.first_time = from_epoch_ms(st.int64(5));
  b.last_time = from_epoch_ms(st.int64(6));
  b.recorded = from_epoch_ms(st.int64(7));
  if (with_data) b.data = st.blob(8);
  return b;
}

}  // namespace

Result<void> SqliteStore::Impl::insert_partial(std::string_view zone, std::int32_t day, std::int64_t block_id, std::string_view data) {
  auto st = cached("INSERT INTO usage_partial (time_zone, day, block_id, data) VALUES (?1, ?2, ?3, ?4)");
  if (!st) return st.error();
  (*st)->reset();
  (*st)->bind(1, zone);
  (*st)->bind(2, static_cast<std::int64_t>(day));
  (*st)->bind(3, block_id);
  (*st)->bind_blob_static(4, data);
  if (auto e = (*st)->step("store a usage partial"); !e) return e.error();
  return {};
}

Result<bool> SqliteStore::Impl::insert_partials(std::int64_t block_id, std::string_view zone,
                                                std::span<const UsagePartialRecord> partials) {
  auto mark = cached("INSERT OR IGNORE INTO usage_partial_zone (block_id, time_zone) VALUES (?1, ?2)");
  if (!mark) return mark.error();
  (*mark)->reset();
  (*mark)->bind(1, block_id);
  (*mark)->bind(2, zone);
  if (auto e = (*mark)->step("mark a block's partials"); !e) return e.error();
  if (sqlite3_changes(db.get()) == 0) return false;  // present already
  for (const auto& p : partials)
    if (auto e = insert_partial(zone, p.day, block_id, p.data); !e) return e.error();
  return true;
}

namespace {

constexpr std::string_view kRollupColumns =
    "time_zone, period, state, document, usage_watermark, revenue_digest, started_ms, computed_ms, owner, lease_until_ms, reason, version";

RollupRecord read_rollup(const sq::Statement& st) {
  RollupRecord r;
  r.time_zone = st.text(0);
  r.period = st.text(1);
  r.state = st.text(2);
  r.document = st.text(3);
  r.usage_watermark = st.int64(4);
  r.revenue_digest = st.text(5);
  r.started = from_epoch_ms(st.int64(6));
  r.computed = from_epoch_ms(st.int64(7));
  r.owner = st.text(8);
  r.lease_until = from_epoch_ms(st.int64(9));
  r.reason = st.text(10);
  r.version = st.int64(11);
  return r;
}

}  // namespace

Result<std::optional<std::int64_t>> SqliteStore::append_usage_block(const UsageBlockRecord& b, std::string_view time_zone,
                                                                    std::span<const UsagePartialRecord> partials) {
  if (auto v = validate(b); !v) return v.error();
  if (auto w = impl_->writable(); !w) return w.error();
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  sq::Transaction tx(impl_->db);
  if (auto e = tx.begin(); !e) return with_context(e.error(), "store a usage block");
  auto st = impl_->cached(
      "INSERT INTO usage_block (key, source, first_row, events, first_ms, last_ms, data, recorded_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
      "?7, ?8) ON CONFLICT (key) DO NOTHING");
  if (!st) return st.error();
  auto& q = **st;
  q.bind(1, std::string_view(b.key));
  q.bind(2, std::string_view(b.source));
  q.bind(3, b.first_row);
  q.bind(4, b.events);
  q.bind(5, to_epoch_ms(b.first_time));
  q.bind(6, to_epoch_ms(b.last_time));
  q.bind_blob_static(7, b.data);
  q.bind(8, to_epoch_ms(b.recorded));
  if (auto e = q.step("store a usage block"); !e) return e.error();
  if (sqlite3_changes(impl_->db.get()) == 0) return std::optional<std::int64_t>{};  // the key exists: roll back (nothing written)
  const std::int64_t id = sqlite3_last_insert_rowid(impl_->db.get());
  if (auto e = impl_->insert_partials(id, time_zone, partials); !e) return e.error();
  if (auto e = tx.commit(); !e) return e.error();
  return std::optional<std::int64_t>(id);
}

Result<std::vector<UsageBlockRecord>> SqliteStore::usage_blocks(const UsageBlockQuery& q) {
  std::lock_guard lock(impl_->mu);
  if (auto c = impl_->ensure_current(); !c) return c.error();
  std::string sql = fmt::format("SELECT id, key, source, first_row, events, first_ms, last_ms, recorded_ms{} FROM usage_block WHERE 1",
                                q.with_data ? ", data" : "");
  if (q.until) sql += " AND first_ms < ?1";
  if (q.since) sql += " AND last_ms >= ?2";
  if (q.source) sql += " AND source = ?3";
  if (q.first_row) sql += " AND first_row = ?4";
  if (q.id) sql += " AND id = ?5";
  // No ORDER BY: sorting by id would make SQLite walk the table in rowid order, reading each row's
  // data past recorded_ms; without it, the covering index usage_block_meta answers (sorted below).
  auto st = impl_->db.prepare(sql);
  if (!st) return st.error();
  if (q.until) st->bind(1, to_epoch_ms(*q.until));
  if (q.since) st->bind(2, to_epoch_ms(*q.since));
  if (q.source) st->bind(3, std::string_view(*q.source));
  if (q.first_row) st->bind(4, *q.first_row);
  if (q.id) st->bind(5, *q.id);
  std::vector<UsageBlockRecord> out;
  for (;;) {
    auto row = st->step("list usage blocks");
    if (!row) return row.error();
    if (!*row) break;
    out.push_back(read_block(*st, q.with_data));
  }
  std::sort(out.begin(), out.end(), [](const UsageBlockRecord& a, const UsageBlockRecord& b) { return a.id < b.id; });
  return out;
}

Result<std::vector<UsagePartialRecord>> SqliteStore::usage_partials(std::string_view time_zone, std::int32_t first_day,
                                                                    std::int32_t last_day) {
  std::lock_guard lock(impl_->mu);
  if (auto c = impl_->ensure_current(); !c) return c.error();
  auto st =
      impl_->cached("SELECT block_id, day, data FROM usage_partial WHERE time_zone = ?1 AND day BETWEEN ?2 AND ?3 ORDER BY day, block_id");
  if (!st) return st.error();
  auto& q = **st;
  q.bind(1, time_zone);
  q.bind(2, static_cast<std::int64_t>(first_day));
  q.bind(3, static_cast<std::int64_t>(last_day));
  std::vector<UsagePartialRecord> out;
  for (;;) {
    auto row = q.step("read usage partials");
    if (!row) return row.error();
    if (!*row) break;
    UsagePartialRecord p;
    p.block_id = q.int64(0);
    p.time_zone = std::string(time_zone);
    p.day = static_cast<std::int32_t>(q.int64(1));
    p.data = q.blob(2);
    out.push_back(std::move(p));
  }
  q.reset();
  return out;
}

Result<std::vector<std::int64_t>> SqliteStore::usage_blocks_without_partials(std::string_view time_zone, TimePoint since, TimePoint until) {
  std::lock_guard lock(impl_->mu);
  if (auto c = impl_->ensure_current(); !c) return c.error();
  auto st = impl_->cached(
      "SELECT id FROM usage_block b WHERE first_ms < ?2 AND last_ms >= ?1 AND NOT EXISTS (SELECT 1 FROM usage_partial_zone z WHERE "
      "z.block_id = b.id AND z.time_zone = ?3) ORDER BY id");
  if (!st) return st.error();
  auto& q = **st;
  q.bind(1, to_epoch_ms(since));
  q.bind(2, to_epoch_ms(until));
  q.bind(3, time_zone);
  std::vector<std::int64_t> out;
  for (;;) {
    auto row = q.step("find blocks without partials");
    if (!row) return row.error();
    if (!*row) break;
    out.push_back(q.int64(0));
  }
  q.reset();
  return out;
}

Result<void> SqliteStore::put_usage_partials(std::int64_t block_id, std::string_view time_zone,
                                             std::span<const UsagePartialRecord> partials) {
  if (auto w = impl_->writable(); !w) return w.error();
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  sq::Transaction tx(impl_->db);
  if (auto e = tx.begin(); !e) return with_context(e.error(), fmt::format("store the partials of usage block {}", block_id));
  auto exists = impl_->cached("SELECT 1 FROM usage_block WHERE id = ?1");
  if (!exists) return exists.error();
  (*exists)->bind(1, block_id);
  auto found = (*exists)->step("find a usage block");
  if (!found) return found.error();
  (*exists)->reset();
  if (!*found) return fail(errc::not_found, fmt::format("usage block {} does not exist", block_id));
  // Present already (another process stored them first, and may have compacted them since): kept.
  if (auto e = impl_->insert_partials(block_id, time_zone, partials); !e) return e.error();
  return tx.commit();
}

Result<bool> SqliteStore::compact_usage_partials(std::string_view time_zone, std::int32_t day, std::span<const std::int64_t> block_ids,
                                                 const std::string& data) {
  if (block_ids.empty()) return fail(errc::invalid_argument, "compact usage partials: no blocks");
  if (auto w = impl_->writable(); !w) return w.error();
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  sq::Transaction tx(impl_->db);
  if (auto e = tx.begin(); !e) return with_context(e.error(), fmt::format("compact the usage partials of day {}", day));
  auto del = impl_->cached("DELETE FROM usage_partial WHERE time_zone = ?1 AND day = ?2 AND block_id = ?3");
  if (!del) return del.error();
  for (auto id : block_ids) {
    (*del)->reset();
    (*del)->bind(1, time_zone);
    (*del)->bind(2, static_cast<std::int64_t>(day));
    (*del)->bind(3, id);
    if (auto e = (*del)->step("compact usage partials"); !e) return e.error();
    if (sqlite3_changes(impl_->db.get()) != 1) return false;  // gone: roll back
  }
  if (auto e = impl_->insert_partial(time_zone, day, *std::max_element(block_ids.begin(), block_ids.end()), data); !e)
    return with_context(e.error(), "store a compacted usage partial");
  if (auto e = tx.commit(); !e) return e.error();
  return true;
}

Result<RevenueUpsert> SqliteStore::upsert_revenue(std::span<const RevenueRow> rows) {
  for (const auto& r : rows)
    if (auto v = validate(r); !v) return v.error();
  if (auto w = impl_->writable(); !w) return w.error();
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  sq::Transaction tx(impl_->db);
  if (auto e = tx.begin(); !e) return with_context(e.error(), "store revenue");
  auto get =
      impl_->cached("SELECT total_revenue, new_subscribers, active_users, churn_count FROM revenue_daily WHERE day = ?1 AND plan = ?2");
  if (!get) return get.error();
  auto put = impl_->cached(
      "INSERT OR REPLACE INTO revenue_daily (day, plan, total_revenue, new_subscribers, active_users, churn_count, recorded_ms) VALUES "
      "(?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  if (!put) return put.error();
  RevenueUpsert out;
  for (const auto& r : rows) {
    (*get)->reset();
    (*get)->bind(1, static_cast<std::int64_t>(r.day));
    (*get)->bind(2, std::string_view(r.plan));
    auto found = (*get)->step("read revenue");
    if (!found) return found.error();
    if (*found) {
      const bool same = (*get)->real(0) == r.total_revenue && (*get)->int64(1) == r.new_subscribers && (*get)->int64(2) == r.active_users &&
                        (*get)->int64(3) == r.churn_count;
      (*get)->reset();
      if (same) {
        ++out.unchanged;
        continue;
      }
      ++out.updated;
    } else {
      (*get)->reset();
      ++out.inserted;
    }
    auto& q = **put;
    q.reset();
    q.bind(1, static_cast<std::int64_t>(r.day));
    q.bind(2, std::string_view(r.plan));
    q.bind(3, r.total_revenue);
    q.bind(4, r.new_subscribers);
    q.bind(5, r.active_users);
    q.bind(6, r.churn_count);
    q.bind(7, to_epoch_ms(r.recorded));
    if (auto e = q.step("store revenue"); !e) return e.error();
  }
  if (auto e = tx.commit(); !e) return e.error();
  return out;
}

Result<std::vector<RevenueRow>> SqliteStore::query_revenue(std::int32_t first_day, std::int32_t last_day) {
  std::lock_guard lock(impl_->mu);
  if (auto c = impl_->ensure_current(); !c) return c.error();
  auto st = impl_->cached(
      "SELECT day, plan, total_revenue, new_subscribers, active_users, churn_count, recorded_ms FROM revenue_daily WHERE day BETWEEN ?1 "
      "AND "
      "?2 ORDER BY day, plan");
  if (!st) return st.error();
  auto& q = **st;
  q.bind(1, static_cast<std::int64_t>(first_day));
  q.bind(2, static_cast<std::int64_t>(last_day));
  std::vector<RevenueRow> out;
  for (;;) {
    auto row = q.step("read revenue");
    if (!row) return row.error();
    if (!*row) break;
    RevenueRow r;
    r.day = static_cast<std::int32_t>(q.int64(0));
    r.plan = q.text(1);
    r.total_revenue = q.real(2);
    r.new_subscribers = q.int64(3);
    r.active_users = q.int64(4);
    r.churn_count = q.int64(5);
    r.recorded = from_epoch_ms(q.int64(6));
    out.push_back(std::move(r));
  }
  q.reset();
  return out;
}

Result<std::optional<RollupRecord>> SqliteStore::get_rollup(std::string_view time_zone, std::string_view period) {
  std::lock_guard lock(impl_->mu);
  if (auto c = impl_->ensure_current(); !c) return c.error();
  auto st = impl_->db.prepare(fmt::format("SELECT {} FROM metric_rollup WHERE time_zone = ?1 AND period = ?2", kRollupColumns));
  if (!st) return st.error();
  st->bind(1, time_zone);
  st->bind(2, period);
  auto row = st->step("read a rollup");
  if (!row) return row.error();
  if (!*row) return std::optional<RollupRecord>{};
  return std::optional<RollupRecord>(read_rollup(*st));
}

Result<std::vector<RollupRecord>> SqliteStore::list_rollups(std::size_t limit) {
  std::lock_guard lock(impl_->mu);
  if (auto c = impl_->ensure_current(); !c) return c.error();
  std::string sql =
      fmt::format("SELECT {} FROM metric_rollup ORDER BY computed_ms DESC, started_ms DESC, time_zone DESC, period DESC", kRollupColumns);
  if (limit) sql += fmt::format(" LIMIT {}", limit);
  auto st = impl_->db.prepare(sql);
  if (!st) return st.error();
  std::vector<RollupRecord> out;
  for (;;) {
    auto row = st->step("list rollups");
    if (!row) return row.error();
    if (!*row) break;
    out.push_back(read_rollup(*st));
  }
  return out;
}

Result<std::int64_t> SqliteStore::put_rollup(const RollupRecord& r, std::optional<std::int64_t> expected_version) {
  if (auto v = validate(r); !v) return v.error();
  if (auto w = impl_->writable(); !w) return w.error();
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  sq::Transaction tx(impl_->db);
  if (auto e = tx.begin(); !e) return with_context(e.error(), fmt::format("write rollup '{} {}'", r.time_zone, r.period));
  auto version = impl_->checked_version("metric_rollup", "rollup", "time_zone = ?1 AND period = ?2", {r.time_zone, r.period},
                                        r.time_zone + " " + r.period, expected_version);
  if (!version) return version.error();
  const std::int64_t current = *version;
  auto st = impl_->db.prepare(
      fmt::format("INSERT OR REPLACE INTO metric_rollup ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)", kRollupColumns));
  if (!st) return st.error();
  st->bind(1, std::string_view(r.time_zone));
  st->bind(2, std::string_view(r.period));
  st->bind(3, std::string_view(r.state));
  st->bind(4, std::string_view(r.document));
  st->bind(5, r.usage_watermark);
  st->bind(6, std::string_view(r.revenue_digest));
  st->bind(7, to_epoch_ms(r.started));
  st->bind(8, to_epoch_ms(r.computed));
  st->bind(9, std::string_view(r.owner));
  st->bind(10, to_epoch_ms(r.lease_until));
  st->bind(11, std::string_view(r.reason));
  st->bind(12, current + 1);
  if (auto e = st->step("write a rollup"); !e) return e.error();
  st = sq::Statement();
  if (auto e = tx.commit(); !e) return e.error();
  return current + 1;
}

}  // namespace automation::storage
