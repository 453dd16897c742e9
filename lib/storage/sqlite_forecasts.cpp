// SqliteStore's forecasts area: stored forecasts of daily metrics, kept to compare with the actuals.
#include "storage/sqlite_impl.hpp"

#include <sqlite3.h>

namespace automation::storage {

namespace {

constexpr std::string_view kForecastColumns =
    "id, metric, time_zone, created_ms, first_day, horizon, method, backend, document, inputs, reason";

ForecastRecord read_forecast(const sq::Statement& st) {
  ForecastRecord r;
  r.id = st.int64(0);
  r.metric = st.text(1);
  r.time_zone = st.text(2);
  r.created = from_epoch_ms(st.int64(3));
  r.first_day = static_cast<std::int32_t>(st.int64(4));
  r.horizon = static_cast<std::int32_t>(st.int64(5));
  r.method = st.text(6);
  r.backend = st.text(7);
  r.document = st.text(8);
  r.inputs = st.text(9);
  r.reason = st.text(10);
  return r;
}

}  // namespace

Result<std::int64_t> SqliteStore::append_forecast(const ForecastRecord& r) {
  if (auto v = validate(r); !v) return v.error();
  if (auto w = impl_->writable(); !w) return w.error();
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  sq::Transaction tx(impl_->db);
  if (auto e = tx.begin(); !e) return with_context(e.error(), "store a forecast");
  auto st = impl_->cached(
      "INSERT INTO forecast (metric, time_zone, created_ms, first_day, horizon, method, backend, document, inputs, reason) VALUES (?1, "
      "?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
  if (!st) return st.error();
  auto& q = **st;
  q.bind(1, std::string_view(r.metric));
  q.bind(2, std::string_view(r.time_zone));
  q.bind(3, to_epoch_ms(r.created));
  q.bind(4, static_cast<std::int64_t>(r.first_day));
  q.bind(5, static_cast<std::int64_t>(r.horizon));
  q.bind(6, std::string_view(r.method));
  q.bind(7, std::string_view(r.backend));
  q.bind(8, std::string_view(r.document));
  q.bind(9, std::string_view(r.inputs));
  q.bind(10, std::string_view(r.reason));
  if (auto e = q.step("store a forecast"); !e) {
    q.reset();
    return with_context(e.error(), fmt::format("forecast of {}", r.metric));
  }
  const std::int64_t id = sqlite3_last_insert_rowid(impl_->db.get());
  q.reset();
  if (auto e = tx.commit(); !e) return e.error();
  return id;
}

Result<std::optional<ForecastRecord>> SqliteStore::get_forecast(std::int64_t id) {
  std::lock_guard lock(impl_->mu);
  if (auto c = impl_->ensure_current(); !c) return c.error();
  auto st = impl_->db.prepare(fmt::format("SELECT {} FROM forecast WHERE id = ?1", kForecastColumns));
  if (!st) return st.error();
  st->bind(1, id);
  auto row = st->step("read a forecast");
  if (!row) return row.error();
  if (!*row) return std::optional<ForecastRecord>{};
  return std::optional<ForecastRecord>(read_forecast(*st));
}

Result<std::vector<ForecastRecord>> SqliteStore::list_forecasts(const ForecastQuery& q) {
  std::lock_guard lock(impl_->mu);
  if (auto c = impl_->ensure_current(); !c) return c.error();
  std::string sql = fmt::format("SELECT {} FROM forecast WHERE 1", kForecastColumns);
  if (q.metric) sql += " AND metric = ?1";
  if (q.since) sql += " AND created_ms >= ?2";
  if (q.time_zone) sql += " AND time_zone = ?3";
  sql += q.newest_first ? " ORDER BY id DESC" : " ORDER BY id";
  if (q.limit) sql += fmt::format(" LIMIT {}", q.limit);
  auto st = impl_->db.prepare(sql);
  if (!st) return st.error();
  if (q.metric) st->bind(1, std::string_view(*q.metric));
  if (q.since) st->bind(2, to_epoch_ms(*q.since));
  if (q.time_zone) st->bind(3, std::string_view(*q.time_zone));
  std::vector<ForecastRecord> out;
  for (;;) {
    auto row = st->step("list forecasts");
    if (!row) return row.error();
    if (!*row) break;
    out.push_back(read_forecast(*st));
  }
  return out;
}

Result<std::int64_t> SqliteStore::prune_forecasts(TimePoint before) {
  // Smaller chunks: a forecast carries its document and inputs.
  return impl_->prune_in_chunks(
      "DELETE FROM forecast WHERE id IN (SELECT id FROM forecast WHERE created_ms < ?1 ORDER BY created_ms LIMIT ?2)", before, 1000,
      "prune forecasts");
}

}  // namespace automation::storage
