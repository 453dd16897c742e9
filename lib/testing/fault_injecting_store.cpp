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
  if (hook_) hook_(op);
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
Result<std::int64_t> FaultInjectingStore::create_run(const storage::RunRecord& run, std::span<const storage::StepRecord> steps,
                                                     const storage::FireRecord* fire) {
  if (auto r = before_write("create_run"); !r) return r.error();
  return inner_.create_run(run, steps, fire);
}
Result<std::int64_t> FaultInjectingStore::update_run(const storage::RunRecord& run, std::span<const storage::StepRecord> steps,
                                                     std::span<const storage::AttemptRecord> attempts) {
  if (auto r = before_write("update_run"); !r) return r.error();
  return inner_.update_run(run, steps, attempts);
}
Result<std::optional<storage::RunRecord>> FaultInjectingStore::get_run(std::int64_t id) {
  if (auto r = before_read("get_run"); !r) return r.error();
  return inner_.get_run(id);
}
Result<std::vector<storage::RunRecord>> FaultInjectingStore::list_runs(const storage::RunQuery& query) {
  if (auto r = before_read("list_runs"); !r) return r.error();
  return inner_.list_runs(query);
}
Result<std::vector<storage::StepRecord>> FaultInjectingStore::run_steps(std::int64_t run_id) {
  if (auto r = before_read("run_steps"); !r) return r.error();
  return inner_.run_steps(run_id);
}
Result<std::vector<storage::AttemptRecord>> FaultInjectingStore::run_attempts(std::int64_t run_id, std::optional<std::string_view> step) {
  if (auto r = before_read("run_attempts"); !r) return r.error();
  return inner_.run_attempts(run_id, step);
}
Result<std::int64_t> FaultInjectingStore::prune_runs(TimePoint before) {
  if (auto r = before_write("prune_runs"); !r) return r.error();
  return inner_.prune_runs(before);
}
Result<std::optional<storage::ScheduleRecord>> FaultInjectingStore::get_schedule(std::string_view name) {
  if (auto r = before_read("get_schedule"); !r) return r.error();
  return inner_.get_schedule(name);
}
Result<std::vector<storage::ScheduleRecord>> FaultInjectingStore::list_schedules() {
  if (auto r = before_read("list_schedules"); !r) return r.error();
  return inner_.list_schedules();
}
Result<std::int64_t> FaultInjectingStore::put_schedule(const storage::ScheduleRecord& record,
                                                       std::optional<std::int64_t> expected_version) {
  if (auto r = before_write("put_schedule"); !r) return r.error();
  return inner_.put_schedule(record, expected_version);
}
Result<bool> FaultInjectingStore::record_fire(const storage::FireRecord& fire) {
  if (auto r = before_write("record_fire"); !r) return r.error();
  return inner_.record_fire(fire);
}
Result<std::vector<storage::FireRecord>> FaultInjectingStore::list_fires(std::string_view schedule, std::size_t limit) {
  if (auto r = before_read("list_fires"); !r) return r.error();
  return inner_.list_fires(schedule, limit);
}
Result<std::vector<storage::FireRecord>> FaultInjectingStore::buffered_fires(std::string_view schedule) {
  if (auto r = before_read("buffered_fires"); !r) return r.error();
  return inner_.buffered_fires(schedule);
}
Result<std::int64_t> FaultInjectingStore::last_event_id() {
  if (auto r = before_read("last_event_id"); !r) return r.error();
  return inner_.last_event_id();
}
Result<std::int64_t> FaultInjectingStore::append_event(const storage::EventRecord& event) {
  if (auto r = before_write("append_event"); !r) return r.error();
  return inner_.append_event(event);
}
Result<std::vector<storage::EventRecord>> FaultInjectingStore::list_events(const storage::EventQuery& query) {
  if (auto r = before_read("list_events"); !r) return r.error();
  return inner_.list_events(query);
}
Result<std::int64_t> FaultInjectingStore::prune_events(TimePoint before) {
  if (auto r = before_write("prune_events"); !r) return r.error();
  return inner_.prune_events(before);
}

Result<std::optional<std::int64_t>> FaultInjectingStore::append_usage_block(const storage::UsageBlockRecord& block,
                                                                            std::string_view time_zone,
                                                                            std::span<const storage::UsagePartialRecord> partials) {
  if (auto r = before_write("append_usage_block"); !r) return r.error();
  return inner_.append_usage_block(block, time_zone, partials);
}
Result<std::vector<storage::UsageBlockRecord>> FaultInjectingStore::usage_blocks(const storage::UsageBlockQuery& query) {
  if (auto r = before_read("usage_blocks"); !r) return r.error();
  return inner_.usage_blocks(query);
}
Result<std::vector<storage::UsagePartialRecord>> FaultInjectingStore::usage_partials(std::string_view time_zone, std::int32_t first_day,
                                                                                     std::int32_t last_day) {
  if (auto r = before_read("usage_partials"); !r) return r.error();
  return inner_.usage_partials(time_zone, first_day, last_day);
}
Result<std::vector<std::int64_t>> FaultInjectingStore::usage_blocks_without_partials(std::string_view time_zone, TimePoint since,
                                                                                     TimePoint until) {
  if (auto r = before_read("usage_blocks_without_partials"); !r) return r.error();
  return inner_.usage_blocks_without_partials(time_zone, since, until);
}
Result<void> FaultInjectingStore::put_usage_partials(std::int64_t block_id, std::string_view time_zone,
                                                     std::span<const storage::UsagePartialRecord> partials) {
  if (auto r = before_write("put_usage_partials"); !r) return r.error();
  return inner_.put_usage_partials(block_id, time_zone, partials);
}
Result<bool> FaultInjectingStore::compact_usage_partials(std::string_view time_zone, std::int32_t day,
                                                         std::span<const std::int64_t> block_ids, const std::string& data) {
  if (auto r = before_write("compact_usage_partials"); !r) return r.error();
  return inner_.compact_usage_partials(time_zone, day, block_ids, data);
}
Result<storage::RevenueUpsert> FaultInjectingStore::upsert_revenue(std::span<const storage::RevenueRow> rows) {
  if (auto r = before_write("upsert_revenue"); !r) return r.error();
  return inner_.upsert_revenue(rows);
}
Result<std::vector<storage::RevenueRow>> FaultInjectingStore::query_revenue(std::int32_t first_day, std::int32_t last_day) {
  if (auto r = before_read("query_revenue"); !r) return r.error();
  return inner_.query_revenue(first_day, last_day);
}
Result<std::optional<storage::RollupRecord>> FaultInjectingStore::get_rollup(std::string_view time_zone, std::string_view period) {
  if (auto r = before_read("get_rollup"); !r) return r.error();
  return inner_.get_rollup(time_zone, period);
}
Result<std::vector<storage::RollupRecord>> FaultInjectingStore::list_rollups(std::size_t limit) {
  if (auto r = before_read("list_rollups"); !r) return r.error();
  return inner_.list_rollups(limit);
}
Result<std::int64_t> FaultInjectingStore::put_rollup(const storage::RollupRecord& record, std::optional<std::int64_t> expected_version) {
  if (auto r = before_write("put_rollup"); !r) return r.error();
  return inner_.put_rollup(record, expected_version);
}

Result<storage::Enqueued> FaultInjectingStore::enqueue_delivery(const storage::DeliveryRecord& record) {
  if (auto r = before_write("enqueue_delivery"); !r) return r.error();
  return inner_.enqueue_delivery(record);
}
Result<std::optional<storage::DeliveryRecord>> FaultInjectingStore::get_delivery(std::int64_t id) {
  if (auto r = before_read("get_delivery"); !r) return r.error();
  return inner_.get_delivery(id);
}
Result<std::vector<storage::DeliveryRecord>> FaultInjectingStore::list_deliveries(const storage::DeliveryQuery& query) {
  if (auto r = before_read("list_deliveries"); !r) return r.error();
  return inner_.list_deliveries(query);
}
Result<std::int64_t> FaultInjectingStore::update_delivery(const storage::DeliveryRecord& record) {
  if (auto r = before_write("update_delivery"); !r) return r.error();
  return inner_.update_delivery(record);
}
Result<std::int64_t> FaultInjectingStore::prune_deliveries(TimePoint before) {
  if (auto r = before_write("prune_deliveries"); !r) return r.error();
  return inner_.prune_deliveries(before);
}

Result<std::size_t> FaultInjectingStore::append_metric_points(std::span<const storage::MetricPoint> points) {
  if (auto r = before_write("append_metric_points"); !r) return r.error();
  return inner_.append_metric_points(points);
}
Result<std::vector<storage::MetricPoint>> FaultInjectingStore::query_metric_points(const storage::MetricQuery& query) {
  if (auto r = before_read("query_metric_points"); !r) return r.error();
  return inner_.query_metric_points(query);
}
Result<std::int64_t> FaultInjectingStore::prune_metric_points(TimePoint before) {
  if (auto r = before_write("prune_metric_points"); !r) return r.error();
  return inner_.prune_metric_points(before);
}

Result<std::int64_t> FaultInjectingStore::create_alert(const storage::AlertRecord& record) {
  if (auto r = before_write("create_alert"); !r) return r.error();
  return inner_.create_alert(record);
}
Result<std::optional<storage::AlertRecord>> FaultInjectingStore::get_alert(std::int64_t id) {
  if (auto r = before_read("get_alert"); !r) return r.error();
  return inner_.get_alert(id);
}
Result<std::vector<storage::AlertRecord>> FaultInjectingStore::list_alerts(const storage::AlertQuery& query) {
  if (auto r = before_read("list_alerts"); !r) return r.error();
  return inner_.list_alerts(query);
}
Result<std::int64_t> FaultInjectingStore::update_alert(const storage::AlertRecord& record) {
  if (auto r = before_write("update_alert"); !r) return r.error();
  return inner_.update_alert(record);
}
Result<std::int64_t> FaultInjectingStore::prune_alerts(TimePoint before) {
  if (auto r = before_write("prune_alerts"); !r) return r.error();
  return inner_.prune_alerts(before);
}

Result<std::int64_t> FaultInjectingStore::append_forecast(const storage::ForecastRecord& record) {
  if (auto r = before_write("append_forecast"); !r) return r.error();
  return inner_.append_forecast(record);
}
Result<std::optional<storage::ForecastRecord>> FaultInjectingStore::get_forecast(std::int64_t id) {
  if (auto r = before_read("get_forecast"); !r) return r.error();
  return inner_.get_forecast(id);
}
Result<std::vector<storage::ForecastRecord>> FaultInjectingStore::list_forecasts(const storage::ForecastQuery& query) {
  if (auto r = before_read("list_forecasts"); !r) return r.error();
  return inner_.list_forecasts(query);
}
Result<std::int64_t> FaultInjectingStore::prune_forecasts(TimePoint before) {
  if (auto r = before_write("prune_forecasts"); !r) return r.error();
  return inner_.prune_forecasts(before);
}

Result<std::int64_t> FaultInjectingStore::append_scaling(const storage::ScalingRecord& record, std::optional<std::int64_t> after) {
  if (auto r = before_write("append_scaling"); !r) return r.error();
  return inner_.append_scaling(record, after);
}
Result<void> FaultInjectingStore::finish_scaling(std::int64_t id, std::string_view outcome, std::string_view error, TimePoint updated) {
  if (auto r = before_write("finish_scaling"); !r) return r.error();
  return inner_.finish_scaling(id, outcome, error, updated);
}
Result<std::vector<storage::ScalingRecord>> FaultInjectingStore::list_scaling(const storage::ScalingQuery& query) {
  if (auto r = before_read("list_scaling"); !r) return r.error();
  return inner_.list_scaling(query);
}
Result<std::int64_t> FaultInjectingStore::prune_scaling(TimePoint before) {
  if (auto r = before_write("prune_scaling"); !r) return r.error();
  return inner_.prune_scaling(before);
}

Result<std::int64_t> FaultInjectingStore::append_healing(const storage::HealingRecord& record) {
  if (auto r = before_write("append_healing"); !r) return r.error();
  return inner_.append_healing(record);
}
Result<void> FaultInjectingStore::finish_healing(std::int64_t id, std::string_view outcome, std::string_view error, std::string_view detail,
                                                 TimePoint updated) {
  if (auto r = before_write("finish_healing"); !r) return r.error();
  return inner_.finish_healing(id, outcome, error, detail, updated);
}
Result<std::vector<storage::HealingRecord>> FaultInjectingStore::list_healing(const storage::HealingQuery& query) {
  if (auto r = before_read("list_healing"); !r) return r.error();
  return inner_.list_healing(query);
}
Result<std::int64_t> FaultInjectingStore::prune_healing(TimePoint before) {
  if (auto r = before_write("prune_healing"); !r) return r.error();
  return inner_.prune_healing(before);
}

Result<void> FaultInjectingStore::create_token(const storage::TokenRecord& record) {
  if (auto r = before_write("create_token"); !r) return r.error();
  return inner_.create_token(record);
}
Result<std::optional<storage::TokenRecord>> FaultInjectingStore::get_token(std::string_view id) {
  if (auto r = before_read("get_token"); !r) return r.error();
  return inner_.get_token(id);
}
Result<std::vector<storage::TokenRecord>> FaultInjectingStore::list_tokens(bool include_revoked) {
  if (auto r = before_read("list_tokens"); !r) return r.error();
  return inner_.list_tokens(include_revoked);
}
Result<storage::TokenRecord> FaultInjectingStore::revoke_token(std::string_view id_or_name, TimePoint time, std::string_view by,
                                                               std::string_view reason) {
  if (auto r = before_write("revoke_token"); !r) return r.error();
  return inner_.revoke_token(id_or_name, time, by, reason);
}
Result<void> FaultInjectingStore::touch_token(std::string_view id, TimePoint time, std::string_view from) {
  if (auto r = before_write("touch_token"); !r) return r.error();
  return inner_.touch_token(id, time, from);
}

Result<std::optional<storage::NodeRecord>> FaultInjectingStore::get_node(std::string_view id) {
  if (auto r = before_read("get_node"); !r) return r.error();
  return inner_.get_node(id);
}
Result<std::vector<storage::NodeRecord>> FaultInjectingStore::list_nodes() {
  if (auto r = before_read("list_nodes"); !r) return r.error();
  return inner_.list_nodes();
}
Result<std::int64_t> FaultInjectingStore::put_node(const storage::NodeRecord& record, std::optional<std::int64_t> expected_version) {
  if (auto r = before_write("put_node"); !r) return r.error();
  return inner_.put_node(record, expected_version);
}
Result<bool> FaultInjectingStore::delete_node(std::string_view id) {
  if (auto r = before_write("delete_node"); !r) return r.error();
  return inner_.delete_node(id);
}
Result<std::int64_t> FaultInjectingStore::append_scan(const storage::ScanRecord& record) {
  if (auto r = before_write("append_scan"); !r) return r.error();
  return inner_.append_scan(record);
}
Result<std::vector<storage::ScanRecord>> FaultInjectingStore::list_scans(std::size_t limit, std::int64_t before_id) {
  if (auto r = before_read("list_scans"); !r) return r.error();
  return inner_.list_scans(limit, before_id);
}
Result<std::int64_t> FaultInjectingStore::prune_scans(TimePoint before) {
  if (auto r = before_write("prune_scans"); !r) return r.error();
  return inner_.prune_scans(before);
}

}  // namespace automation::testing
