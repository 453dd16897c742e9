#include <automation/storage/memory_store.hpp>

#include "storage/audit_match.hpp"
#include "storage/task_stats.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <mutex>

namespace automation::storage {

struct MemoryStore::State {
  std::mutex mu;
  std::vector<AuditRecord> audit;
  std::int64_t next_audit_id = 1;
  std::vector<TaskRecord> tasks;  // in id order
  std::int64_t next_task_id = 1;
  std::map<std::string, BreakerRecord, std::less<>> breakers;
};

namespace {
// Match SQLite's storage resolution so both backends return identical records.
TimePoint at_ms(TimePoint t) { return from_epoch_ms(to_epoch_ms(t)); }
Duration at_us(Duration d) { return std::chrono::duration_cast<Duration>(std::chrono::duration_cast<std::chrono::microseconds>(d)); }

bool in_range(const TaskRecord& r, const std::optional<TimePoint>& since, const std::optional<TimePoint>& until) {
  return (!since || r.started >= at_ms(*since)) && (!until || r.started < at_ms(*until));
}

// The records (kept in id order) that `keep` accepts, oldest or newest first, at most `limit` (0: all).
template <class R, class Keep>
std::vector<R> select(const std::vector<R>& all, bool newest_first, std::size_t limit, Keep&& keep) {
  std::vector<R> out;
  auto take = [&](const R& r) {
    if (!keep(r)) return true;
    out.push_back(r);
    return limit == 0 || out.size() < limit;
  };
  if (newest_first) {
    for (auto it = all.rbegin(); it != all.rend(); ++it)
      if (!take(*it)) break;
  } else {
    for (const auto& r : all)
      if (!take(r)) break;
  }
  return out;
}
}  // namespace

MemoryStore::MemoryStore() : state_(std::make_unique<State>()) {}
MemoryStore::~MemoryStore() = default;

Result<StoreInfo> MemoryStore::info() {
  std::lock_guard lock(state_->mu);
  StoreInfo info;
  info.backend = "memory";
  info.location = "memory:";
  info.schema_version = info.latest_schema_version = latest_schema_version();
  info.areas.push_back({"audit", "audit_log", static_cast<std::int64_t>(state_->audit.size())});
  info.areas.push_back({"tasks", "task_history", static_cast<std::int64_t>(state_->tasks.size())});
  info.areas.push_back({"breakers", "breaker_state", static_cast<std::int64_t>(state_->breakers.size())});
  return info;
}

Result<int> MemoryStore::schema_version() { return latest_schema_version(); }

Result<MigrationReport> MemoryStore::migrate() {
  MigrationReport r;
  r.from_version = r.to_version = latest_schema_version();
  return r;
}

Result<std::int64_t> MemoryStore::append_audit(std::span<const AuditRecord> records) {
  for (const auto& r : records)
    if (auto v = validate(r); !v) return v.error();
  std::lock_guard lock(state_->mu);
  std::int64_t last = 0;
  for (const auto& r : records) {
    auto& stored = state_->audit.emplace_back(r);
    stored.time = at_ms(r.time);
    stored.id = last = state_->next_audit_id++;
  }
  return last;
}

Result<std::vector<AuditRecord>> MemoryStore::query_audit(const AuditQuery& q) {
  std::lock_guard lock(state_->mu);
  return select(state_->audit, q.newest_first, q.limit, [&](const AuditRecord& r) { return detail::matches(r, q); });
}

Result<std::int64_t> MemoryStore::append_tasks(std::span<const TaskRecord> records) {
  for (const auto& r : records)
    if (auto v = validate(r); !v) return v.error();
  std::lock_guard lock(state_->mu);
  std::int64_t last = 0;
  for (const auto& r : records) {
    auto& stored = state_->tasks.emplace_back(r);
    stored.started = at_ms(r.started);
    stored.ended = at_ms(r.ended);
    stored.duration = at_us(r.duration);
    stored.id = last = state_->next_task_id++;
  }
  return last;
}

Result<std::vector<TaskRecord>> MemoryStore::query_tasks(const TaskQuery& q) {
  std::lock_guard lock(state_->mu);
  return select(state_->tasks, q.newest_first, q.limit, [&](const TaskRecord& r) {
    return in_range(r, q.since, q.until) && (!q.domain || r.domain == *q.domain) && (!q.action || r.action == *q.action) &&
           (!q.outcome || r.outcome == *q.outcome) && (!q.correlation_id || r.correlation_id == *q.correlation_id);
  });
}

Result<std::vector<TaskGroupStats>> MemoryStore::task_stats(const TaskStatsQuery& q) {
  std::lock_guard lock(state_->mu);
  detail::TaskStatsBuilder b;
  for (const auto& r : state_->tasks) {
    if (!in_range(r, q.since, q.until) || (q.domain && r.domain != *q.domain) || (q.action && r.action != *q.action)) continue;
    auto& g = b.group(detail::kind_hash(r.domain, r.action), [&](std::string& d, std::string& a) {
      d = r.domain;
      a = r.action;
    });
    const auto ph = detail::fnv1a(r.params);
    if (!b.knows_params(ph)) b.add_params(ph, r.params);
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(r.duration).count();
    b.add(g, r.outcome, us, r.impact ? &*r.impact : nullptr, ph, [&] { return std::string_view(r.error); });
  }
  return b.finish(q);
}

Result<std::int64_t> MemoryStore::prune_tasks(TimePoint before) {
  std::lock_guard lock(state_->mu);
  const auto cut = at_ms(before);
  return static_cast<std::int64_t>(std::erase_if(state_->tasks, [&](const TaskRecord& r) { return r.started < cut; }));
}

Result<std::optional<BreakerRecord>> MemoryStore::get_breaker(std::string_view name) {
  std::lock_guard lock(state_->mu);
  auto it = state_->breakers.find(name);
  if (it == state_->breakers.end()) return std::optional<BreakerRecord>();
  return std::optional<BreakerRecord>(it->second);
}

Result<std::vector<BreakerRecord>> MemoryStore::list_breakers() {
  std::lock_guard lock(state_->mu);
  std::vector<BreakerRecord> out;
  for (const auto& [name, r] : state_->breakers) out.push_back(r);
  return out;
}

Result<std::int64_t> MemoryStore::put_breaker(const BreakerRecord& r, std::optional<std::int64_t> expected_version) {
  if (auto v = validate(r); !v) return v.error();
  std::lock_guard lock(state_->mu);
  auto it = state_->breakers.find(r.name);
  const std::int64_t current = it == state_->breakers.end() ? 0 : it->second.version;
  if (expected_version && *expected_version != current)
    return fail(errc::conflict,
                fmt::format("breaker '{}' is at version {}, not {}: another writer changed it", r.name, current, *expected_version));
  BreakerRecord stored = r;
  stored.open_until = at_ms(r.open_until);
  stored.updated = at_ms(r.updated);
  stored.version = current + 1;
  state_->breakers.insert_or_assign(r.name, std::move(stored));
  return current + 1;
}

Result<bool> MemoryStore::delete_breaker(std::string_view name) {
  std::lock_guard lock(state_->mu);
  auto it = state_->breakers.find(name);
  if (it == state_->breakers.end()) return false;
  state_->breakers.erase(it);
  return true;
}

}  // namespace automation::storage
