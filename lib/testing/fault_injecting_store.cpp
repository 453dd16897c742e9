#include <automation/testing/fault_injecting_store.hpp>

#include <fmt/format.h>

namespace automation::testing {

void FaultInjectingStore::fail_nth_write(std::uint64_t n, errc code) noexcept {
  fail_at_code_.store(static_cast<int>(code));
  fail_at_.store(n == 0 ? 0 : writes_.load() + n);
}
void FaultInjectingStore::fail_all_writes(errc code) noexcept { all_writes_code_.store(static_cast<int>(code)); }
void FaultInjectingStore::fail_all_reads(errc code) noexcept { all_reads_code_.store(static_cast<int>(code)); }
void FaultInjectingStore::clear() noexcept {
  fail_at_.store(0);
  all_writes_code_.store(0);
  all_reads_code_.store(0);
}

Result<void> FaultInjectingStore::before_write(std::string_view op) {
  const auto n = ++writes_;
  int code = all_writes_code_.load();
  if (!code && fail_at_.load() == n) code = fail_at_code_.load();
  if (code) {
    ++injected_;
    return fail(static_cast<errc>(code), fmt::format("injected fault: {} (write #{})", op, n));
  }
  return {};
}

Result<void> FaultInjectingStore::before_read(std::string_view op) {
  const auto n = ++reads_;
  if (int code = all_reads_code_.load()) {
    ++injected_;
    return fail(static_cast<errc>(code), fmt::format("injected fault: {} (read #{})", op, n));
  }
  return {};
}

Result<storage::StoreInfo> FaultInjectingStore::info() {
  if (auto r = before_read("info"); !r) return r.error();
  return inner_.info();
}
Result<int> FaultInjectingStore::schema_version() {
  if (auto r = before_read("schema_version"); !r) return r.error();
  return inner_.schema_version();
}
Result<storage::MigrationReport> FaultInjectingStore::migrate() {
  if (auto r = before_write("migrate"); !r) return r.error();
  return inner_.migrate();
}
Result<std::int64_t> FaultInjectingStore::append_audit(std::span<const storage::AuditRecord> records) {
  if (auto r = before_write("append_audit"); !r) return r.error();
  return inner_.append_audit(records);
}
Result<std::vector<storage::AuditRecord>> FaultInjectingStore::query_audit(const storage::AuditQuery& q) {
  if (auto r = before_read("query_audit"); !r) return r.error();
  return inner_.query_audit(q);
}

Result<std::int64_t> FaultInjectingStore::append_tasks(std::span<const storage::TaskRecord> records) {
  if (auto r = before_write("append_tasks"); !r) return r.error();
  return inner_.append_tasks(records);
}
Result<std::vector<storage::TaskRecord>> FaultInjectingStore::query_tasks(const storage::TaskQuery& q) {
  if (auto r = before_read("query_tasks"); !r) return r.error();
  return inner_.query_tasks(q);
}
Result<std::vector<storage::TaskGroupStats>> FaultInjectingStore::task_stats(const storage::TaskStatsQuery& q) {
  if (auto r = before_read("task_stats"); !r) return r.error();
  return inner_.task_stats(q);
}
Result<std::int64_t> FaultInjectingStore::prune_tasks(TimePoint before) {
  if (auto r = before_write("prune_tasks"); !r) return r.error();
  return inner_.prune_tasks(before);
}
Result<std::optional<storage::BreakerRecord>> FaultInjectingStore::get_breaker(std::string_view name) {
  if (auto r = before_read("get_breaker"); !r) return r.error();
  return inner_.get_breaker(name);
}
Result<std::vector<storage::BreakerRecord>> FaultInjectingStore::list_breakers() {
  if (auto r = before_read("list_breakers"); !r) return r.error();
  return inner_.list_breakers();
}
Result<std::int64_t> FaultInjectingStore::put_breaker(const storage::BreakerRecord& record, std::optional<std::int64_t> expected_version) {
  if (auto r = before_write("put_breaker"); !r) return r.error();
  return inner_.put_breaker(record, expected_version);
}
Result<bool> FaultInjectingStore::delete_breaker(std::string_view name) {
  if (auto r = before_write("delete_breaker"); !r) return r.error();
  return inner_.delete_breaker(name);
}

}  // namespace automation::testing
