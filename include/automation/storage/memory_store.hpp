#pragma once
/// An in-memory Store for tests and ephemeral hosts. Same contract as SqliteStore (the contract test
/// suite runs against both); data lives as long as the object.
/// Thread-safety: all operations are serialized by an internal mutex.
#include <automation/storage/store.hpp>

#include <memory>

namespace automation::storage {

class MemoryStore final : public Store {
 public:
  MemoryStore();
  ~MemoryStore() override;

  std::string_view backend() const noexcept override { return "memory"; }
  Result<StoreInfo> info() override;
  Result<int> schema_version() override;
  Result<MigrationReport> migrate() override;
  Result<std::int64_t> append_audit(std::span<const AuditRecord> records) override;
  Result<std::vector<AuditRecord>> query_audit(const AuditQuery& query) override;
  Result<std::int64_t> append_tasks(std::span<const TaskRecord> records) override;
  Result<std::vector<TaskRecord>> query_tasks(const TaskQuery& query) override;
  Result<std::vector<TaskGroupStats>> task_stats(const TaskStatsQuery& query) override;
  Result<std::int64_t> prune_tasks(TimePoint before) override;
  Result<std::optional<BreakerRecord>> get_breaker(std::string_view name) override;
  Result<std::vector<BreakerRecord>> list_breakers() override;
  Result<std::int64_t> put_breaker(const BreakerRecord& record, std::optional<std::int64_t> expected_version) override;
  Result<bool> delete_breaker(std::string_view name) override;
  Result<std::int64_t> create_run(const RunRecord& run, std::span<const StepRecord> steps, const FireRecord* fire) override;
  Result<std::int64_t> update_run(const RunRecord& run, std::span<const StepRecord> steps,
                                  std::span<const AttemptRecord> attempts) override;
  Result<std::optional<RunRecord>> get_run(std::int64_t id) override;
  Result<std::vector<RunRecord>> list_runs(const RunQuery& query) override;
  Result<std::vector<StepRecord>> run_steps(std::int64_t run_id) override;
  Result<std::vector<AttemptRecord>> run_attempts(std::int64_t run_id, std::optional<std::string_view> step) override;
  Result<std::int64_t> prune_runs(TimePoint before) override;
  Result<std::optional<ScheduleRecord>> get_schedule(std::string_view name) override;
  Result<std::vector<ScheduleRecord>> list_schedules() override;
  Result<std::int64_t> put_schedule(const ScheduleRecord& record, std::optional<std::int64_t> expected_version) override;
  Result<bool> record_fire(const FireRecord& fire) override;
  Result<std::vector<FireRecord>> list_fires(std::string_view schedule, std::size_t limit) override;
  Result<std::vector<FireRecord>> buffered_fires(std::string_view schedule) override;
  Result<std::int64_t> append_event(const EventRecord& event) override;
  Result<std::int64_t> last_event_id() override;
  Result<std::vector<EventRecord>> list_events(const EventQuery& query) override;
  Result<std::int64_t> prune_events(TimePoint before) override;
  Result<std::optional<std::int64_t>> append_usage_block(const UsageBlockRecord& block, std::string_view time_zone,
                                                         std::span<const UsagePartialRecord> partials) override;
  Result<std::vector<UsageBlockRecord>> usage_blocks(const UsageBlockQuery& query) override;
  Result<std::vector<UsagePartialRecord>> usage_partials(std::string_view time_zone, std::int32_t first_day,
                                                         std::int32_t last_day) override;
  Result<std::vector<std::int64_t>> usage_blocks_without_partials(std::string_view time_zone, TimePoint since, TimePoint until) override;
  Result<void> put_usage_partials(std::int64_t block_id, std::string_view time_zone, std::span<const UsagePartialRecord> partials) override;
  Result<bool> compact_usage_partials(std::string_view time_zone, std::int32_t day, std::span<const std::int64_t> block_ids,
                                      const std::string& data) override;
  Result<RevenueUpsert> upsert_revenue(std::span<const RevenueRow> rows) override;
  Result<std::vector<RevenueRow>> query_revenue(std::int32_t first_day, std::int32_t last_day) override;
  Result<std::optional<RollupRecord>> get_rollup(std::string_view time_zone, std::string_view period) override;
  Result<std::vector<RollupRecord>> list_rollups(std::size_t limit) override;
  Result<std::int64_t> put_rollup(const RollupRecord& record, std::optional<std::int64_t> expected_version) override;

  Result<Enqueued> enqueue_delivery(const DeliveryRecord& record) override;
  Result<std::optional<DeliveryRecord>> get_delivery(std::int64_t id) override;
  Result<std::vector<DeliveryRecord>> list_deliveries(const DeliveryQuery& query) override;
  Result<std::int64_t> update_delivery(const DeliveryRecord& record) override;
  Result<std::int64_t> prune_deliveries(TimePoint before) override;

  Result<std::size_t> append_metric_points(std::span<const MetricPoint> points) override;
  Result<std::vector<MetricPoint>> query_metric_points(const MetricQuery& query) override;
  Result<std::int64_t> prune_metric_points(TimePoint before) override;
  Result<std::int64_t> create_alert(const AlertRecord& record) override;
  Result<std::optional<AlertRecord>> get_alert(std::int64_t id) override;
  Result<std::vector<AlertRecord>> list_alerts(const AlertQuery& query) override;
  Result<std::int64_t> update_alert(const AlertRecord& record) override;
  Result<std::int64_t> prune_alerts(TimePoint before) override;

  Result<std::int64_t> append_forecast(const ForecastRecord& record) override;
  Result<std::optional<ForecastRecord>> get_forecast(std::int64_t id) override;
  Result<std::vector<ForecastRecord>> list_forecasts(const ForecastQuery& query) override;
  Result<std::int64_t> prune_forecasts(TimePoint before) override;

  Result<std::int64_t> append_scaling(const ScalingRecord& record, std::optional<std::int64_t> after) override;
  Result<void> finish_scaling(std::int64_t id, std::string_view outcome, std::string_view error, TimePoint updated) override;
  Result<std::vector<ScalingRecord>> list_scaling(const ScalingQuery& query) override;
  Result<std::int64_t> prune_scaling(TimePoint before) override;

  Result<std::int64_t> append_healing(const HealingRecord& record) override;
  Result<void> finish_healing(std::int64_t id, std::string_view outcome, std::string_view error, std::string_view detail,
                              TimePoint updated) override;
  Result<std::vector<HealingRecord>> list_healing(const HealingQuery& query) override;
  Result<std::int64_t> prune_healing(TimePoint before) override;

  Result<void> create_token(const TokenRecord& record) override;
  Result<std::optional<TokenRecord>> get_token(std::string_view id) override;
  Result<std::vector<TokenRecord>> list_tokens(bool include_revoked) override;
  Result<TokenRecord> revoke_token(std::string_view id_or_name, TimePoint time, std::string_view by, std::string_view reason) override;
  Result<void> touch_token(std::string_view id, TimePoint time, std::string_view from) override;

  Result<std::optional<NodeRecord>> get_node(std::string_view id) override;
  Result<std::vector<NodeRecord>> list_nodes() override;
  Result<std::int64_t> put_node(const NodeRecord& record, std::optional<std::int64_t> expected_version) override;
  Result<bool> delete_node(std::string_view id) override;
  Result<std::int64_t> append_scan(const ScanRecord& record) override;
  Result<std::vector<ScanRecord>> list_scans(std::size_t limit, std::int64_t before_id) override;
  Result<std::int64_t> prune_scans(TimePoint before) override;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace automation::storage
