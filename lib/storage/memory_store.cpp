#include <automation/storage/memory_store.hpp>

#include "storage/audit_match.hpp"

#include <mutex>

namespace automation::storage {

struct MemoryStore::State {
  std::mutex mu;
  std::vector<AuditRecord> audit;
  std::int64_t next_audit_id = 1;
};

MemoryStore::MemoryStore() : state_(std::make_unique<State>()) {}
MemoryStore::~MemoryStore() = default;

Result<StoreInfo> MemoryStore::info() {
  std::lock_guard lock(state_->mu);
  StoreInfo info;
  info.backend = "memory";
  info.location = "memory:";
  info.schema_version = info.latest_schema_version = latest_schema_version();
  info.areas.push_back({"audit", "audit_log", static_cast<std::int64_t>(state_->audit.size())});
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
    // Match SQLite's storage resolution so both backends return identical records.
    stored.time = from_epoch_ms(to_epoch_ms(r.time));
    stored.id = last = state_->next_audit_id++;
  }
  return last;
}

Result<std::vector<AuditRecord>> MemoryStore::query_audit(const AuditQuery& q) {
  std::lock_guard lock(state_->mu);
  std::vector<AuditRecord> out;
  auto take = [&](const AuditRecord& r) {
    if (!detail::matches(r, q)) return true;
    out.push_back(r);
    return q.limit == 0 || out.size() < q.limit;
  };
  if (q.newest_first) {
    for (auto it = state_->audit.rbegin(); it != state_->audit.rend(); ++it)
      if (!take(*it)) break;
  } else {
    for (const auto& r : state_->audit)
      if (!take(r)) break;
  }
  return out;
}

}  // namespace automation::storage
