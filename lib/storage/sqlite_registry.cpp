// SqliteStore's registry area: the nodes of the registry, written by compare-and-set on their
// version, and the history of discovery scans.
#include "storage/sqlite_impl.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <limits>

namespace automation::storage {

namespace {

// The columns read_node() and read_scan() read, in their order; string literals, because the
// statement cache keys on the SQL text's address.
#define AUTOMATION_NODE_COLUMNS                                                                                                   \
  "id, kind, address, source, services, depends_on, labels, state, reason, registered_ms, last_seen_ms, state_since_ms, ttl_ms, " \
  "updated_by, version"
#define AUTOMATION_SCAN_COLUMNS "id, started_ms, finished_ms, actor, reason, targets, found, added, lost, error"

NodeRecord read_node(const sq::Statement& st) {
  NodeRecord r;
  r.id = st.text(0);
  r.kind = st.text(1);
  r.address = st.text(2);
  r.source = st.text(3);
  r.services = st.text(4);
  r.depends_on = st.text(5);
  r.labels = st.text(6);
  r.state = st.text(7);
  r.reason = st.text(8);
  r.registered = from_epoch_ms(st.int64(9));
  r.last_seen = from_epoch_ms(st.int64(10));
  r.state_since = from_epoch_ms(st.int64(11));
  r.ttl = Millis(st.int64(12));
  r.updated_by = st.text(13);
  r.version = st.int64(14);
  return r;
}

ScanRecord read_scan(const sq::Statement& st) {
  ScanRecord r;
  r.id = st.int64(0);
  r.started = from_epoch_ms(st.int64(1));
  r.finished = from_epoch_ms(st.int64(2));
  r.actor = st.text(3);
  r.reason = st.text(4);
  r.targets = st.text(5);
  r.found = st.text(6);
  r.added = static_cast<int>(st.int64(7));
  r.lost = static_cast<int>(st.int64(8));
  r.error = st.text(9);
  return r;
}

}  // namespace

Result<std::optional<NodeRecord>> SqliteStore::get_node(std::string_view id) {
  std::lock_guard lock(impl_->mu);
  if (auto c = impl_->ensure_current(); !c) return c.error();
  auto st = impl_->cached("SELECT " AUTOMATION_NODE_COLUMNS " FROM registry_nodes WHERE id = ?1");
  if (!st) return st.error();
  auto& q = **st;
  q.bind(1, id);
  auto row = q.step("read a node");
  std::optional<NodeRecord> out;
  if (row && *row) out = read_node(q);
  q.reset();
  if (!row) return row.error();
  return out;
}

Result<std::vector<NodeRecord>> SqliteStore::list_nodes() {
  std::lock_guard lock(impl_->mu);
  if (auto c = impl_->ensure_current(); !c) return c.error();
  auto st = impl_->cached("SELECT " AUTOMATION_NODE_COLUMNS " FROM registry_nodes ORDER BY id");
  if (!st) return st.error();
  auto& q = **st;
  std::vector<NodeRecord> out;
  for (;;) {
    auto row = q.step("list nodes");
    if (!row) {
      q.reset();
      return row.error();
    }
    if (!*row) break;
    out.push_back(read_node(q));
  }
  q.reset();
  return out;
}

Result<std::int64_t> SqliteStore::put_node(const NodeRecord& r, std::optional<std::int64_t> expected_version) {
  if (auto v = validate(r); !v) return v.error();
  if (auto w = impl_->writable(); !w) return w.error();
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  // BEGIN IMMEDIATE holds the write lock from here, so no other process writes between the
  // comparison and the write.
  sq::Transaction tx(impl_->db);
  if (auto e = tx.begin(); !e) return with_context(e.error(), fmt::format("write node \"{}\"", r.id));
  auto cur = impl_->checked_version("registry_nodes", "node", "id = ?1", {r.id}, r.id, expected_version);
  if (!cur) return cur.error();
  const std::int64_t next = *cur + 1;
  auto st = impl_->cached(
      "INSERT INTO registry_nodes (id, kind, address, source, services, depends_on, labels, state, reason, registered_ms, last_seen_ms, "
      "state_since_ms, ttl_ms, updated_by, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) "
      "ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, address = excluded.address, source = excluded.source, services = "
      "excluded.services, depends_on = excluded.depends_on, labels = excluded.labels, state = excluded.state, reason = excluded.reason, "
      "registered_ms = excluded.registered_ms, last_seen_ms = excluded.last_seen_ms, state_since_ms = excluded.state_since_ms, ttl_ms = "
      "excluded.ttl_ms, updated_by = excluded.updated_by, version = excluded.version");
  if (!st) return st.error();
  auto& q = **st;
  q.bind(1, std::string_view(r.id));
  q.bind(2, std::string_view(r.kind));
  q.bind(3, std::string_view(r.address));
  q.bind(4, std::string_view(r.source));
  q.bind(5, std::string_view(r.services));
  q.bind(6, std::string_view(r.depends_on));
  q.bind(7, std::string_view(r.labels));
  q.bind(8, std::string_view(r.state));
  q.bind(9, std::string_view(r.reason));
  q.bind(10, to_epoch_ms(r.registered));
  q.bind(11, to_epoch_ms(r.last_seen));
  q.bind(12, to_epoch_ms(r.state_since));
  q.bind(13, static_cast<std::int64_t>(r.ttl.count()));
  q.bind(14, std::string_view(r.updated_by));
  q.bind(15, next);
  auto done = q.step("write a node");
  q.reset();
  if (!done) return with_context(done.error(), fmt::format("node \"{}\"", r.id));
  if (auto e = tx.commit(); !e) return e.error();
  return next;
}

Result<bool> SqliteStore::delete_node(std::string_view id) {
  if (auto w = impl_->writable(); !w) return w.error();
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  auto st = impl_->cached("DELETE FROM registry_nodes WHERE id = ?1");
  if (!st) return st.error();
  auto& q = **st;
  q.bind(1, id);
  auto done = q.step("delete a node");
  const int changed = done ? sqlite3_changes(impl_->db.get()) : 0;
  q.reset();
  if (!done) return with_context(done.error(), fmt::format("node \"{}\"", id));
  return changed > 0;
}

Result<std::int64_t> SqliteStore::append_scan(const ScanRecord& r) {
  if (auto v = validate(r); !v) return v.error();
  if (auto w = impl_->writable(); !w) return w.error();
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  sq::Transaction tx(impl_->db);
  if (auto e = tx.begin(); !e) return with_context(e.error(), fmt::format("store a discovery scan by {}", r.actor));
  auto st = impl_->cached(
      "INSERT INTO discovery_scans (started_ms, finished_ms, actor, reason, targets, found, added, lost, error) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
  if (!st) return st.error();
  auto& q = **st;
  q.bind(1, to_epoch_ms(r.started));
  q.bind(2, to_epoch_ms(r.finished));
  q.bind(3, std::string_view(r.actor));
  q.bind(4, std::string_view(r.reason));
  q.bind(5, std::string_view(r.targets));
  q.bind(6, std::string_view(r.found));
  q.bind(7, r.added);
  q.bind(8, r.lost);
  q.bind(9, std::string_view(r.error));
  if (auto e = q.step("store a discovery scan"); !e) {
    q.reset();
    return with_context(e.error(), fmt::format("discovery scan by {}", r.actor));
  }
  const std::int64_t id = sqlite3_last_insert_rowid(impl_->db.get());
  q.reset();
  if (auto e = tx.commit(); !e) return e.error();
  return id;
}

Result<std::vector<ScanRecord>> SqliteStore::list_scans(std::size_t limit, std::int64_t before_id) {
  std::lock_guard lock(impl_->mu);
  if (auto c = impl_->ensure_current(); !c) return c.error();
  auto st = impl_->cached("SELECT " AUTOMATION_SCAN_COLUMNS " FROM discovery_scans WHERE id < ?1 ORDER BY id DESC LIMIT ?2");
  if (!st) return st.error();
  auto& q = **st;
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  q.bind(1, before_id > 0 ? before_id : kMax);
  // LIMIT -1: no limit.
  q.bind(2, limit == 0 ? std::int64_t{-1} : static_cast<std::int64_t>(std::min<std::uint64_t>(limit, kMax)));
  std::vector<ScanRecord> out;
  for (;;) {
    auto row = q.step("list discovery scans");
    if (!row) {
      q.reset();
      return row.error();
    }
    if (!*row) break;
    out.push_back(read_scan(q));
  }
  q.reset();
  return out;
}

Result<std::int64_t> SqliteStore::prune_scans(TimePoint before) {
  return impl_->prune_in_chunks(
      "DELETE FROM discovery_scans WHERE id IN (SELECT id FROM discovery_scans WHERE started_ms < ?1 ORDER BY started_ms LIMIT ?2)", before,
      10000, "prune discovery scans");
}

}  // namespace automation::storage
