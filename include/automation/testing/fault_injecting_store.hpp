#pragma once
/// A Store decorator for tests: forwards to a real store, and on command fails the Nth write, answers
/// busy, or fails every write. A failed write is not forwarded, so the inner store is unchanged.
/// Thread-safety: as safe as the inner store; the fault settings are atomic.
#include <automation/storage/store.hpp>

#include <atomic>
#include <cstdint>
#include <functional>

namespace automation::testing {

class FaultInjectingStore final : public storage::Store {
 public:
  explicit FaultInjectingStore(storage::Store& inner) noexcept : inner_(inner) {}

  /// The n-th write from now (1 = the next one) fails with `code`; later writes succeed.
  void fail_nth_write(std::uint64_t n, errc code = errc::io) noexcept;
  /// Every write fails with `code` until clear() (errc::busy simulates a locked database).
  void fail_all_writes(errc code) noexcept;
  /// Every read fails with `code` until clear().
  void fail_all_reads(errc code) noexcept;
  void clear() noexcept;
  /// Calls `hook` with the operation's name before each write is forwarded (after fault injection
  /// let it through), so a test can interleave another writer on the inner store at an exact point.
  /// Set it before the store is shared between threads; an empty function removes it.
  void before_each_write(std::function<void(std::string_view op)> hook) { hook_ = std::move(hook); }

  std::uint64_t writes() const noexcept { return writes_.load(); }
  std::uint64_t reads() const noexcept { return reads_.load(); }
  std::uint64_t injected_failures() const noexcept { return injected_.load(); }

  std::string_view backend() const noexcept override { return inner_.backend(); }
  Result<storage::StoreInfo> info() override;
  Result<int> schema_version() override;
  Result<storage::MigrationReport> migrate() override;
  Result<std::int64_t> append_audit(std::span<const storage::AuditRecord> records) override;
  Result<std::vector<storage::AuditRecord>> query_audit(const storage::AuditQuery& query) override;
  Result<std::int64_t> append_tasks(std::span<const storage::TaskRecord> records) override;
  Result<std::vector<storage::TaskRecord>> query_tasks(const storage::TaskQuery& query) override;
  Result<std::vector<storage::TaskGroupStats>> task_stats(const storage::TaskStatsQuery& query) override;
  Result<std::int64_t> prune_tasks(TimePoint before) override;
  Result<std::optional<storage::BreakerRecord>> get_breaker(std::string_view name) override;
  Result<std::vector<storage::BreakerRecord>> list_breakers() override;
  Result<std::int64_t> put_breaker(const storage::BreakerRecord& record, std::optional<std::int64_t> expected_version) override;
  Result<bool> delete_breaker(std::string_view name) override;
  Result<std::int64_t> create_run(const storage::RunRecord& run, std::span<const storage::StepRecord> steps,
                                  const storage::FireRecord* fire) override;
  Result<std::int64_t> update_run(const storage::RunRecord& run, std::span<const storage::StepRecord> steps,
                                  std::span<const storage::AttemptRecord> attempts) override;
  Result<std::optional<storage::RunRecord>> get_run(std::int64_t id) override;
  Result<std::vector<storage::RunRecord>> list_runs(const storage::RunQuery& query) override;
  Result<std::vector<storage::StepRecord>> run_steps(std::int64_t run_id) override;
  Result<std::vector<storage::AttemptRecord>> run_attempts(std::int64_t run_id, std::optional<std::string_view> step) override;
  Result<std::int64_t> prune_runs(TimePoint before) override;
  Result<std::optional<storage::ScheduleRecord>> get_schedule(std::string_view name) override;
  Result<std::vector<storage::ScheduleRecord>> list_schedules() override;
  Result<std::int64_t> put_schedule(const storage::ScheduleRecord& record, std::optional<std::int64_t> expected_version) override;
  Result<bool> record_fire(const storage::FireRecord& fire) override;
  Result<std::vector<storage::FireRecord>> list_fires(std::string_view schedule, std::size_t limit) override;
  Result<std::vector<storage::FireRecord>> buffered_fires(std::string_view schedule) override;
  Result<std::int64_t> append_event(const storage::EventRecord& event) override;
  Result<std::int64_t> last_event_id() override;
  Result<std::vector<storage::EventRecord>> list_events(const storage::EventQuery& query) override;
  Result<std::int64_t> prune_events(TimePoint before) override;
  Result<std::optional<std::int64_t>> append_usage_block(const storage::UsageBlockRecord& block, std::string_view time_zone,
                                                         std::span<const storage::UsagePartialRecord> partials) override;
  Result<std::vector<storage::UsageBlockRecord>> usage_blocks(const storage::UsageBlockQuery& query) override;
  Result<std::vector<storage::UsagePartialRecord>> usage_partials(std::string_view time_zone, std::int32_t first_day,
                                                                  std::int32_t last_day) override;
  Result<std::vector<std::int64_t>> usage_blocks_without_partials(std::string_view time_zone, TimePoint since, TimePoint until) override;
  Result<void> put_usage_partials(std::int64_t block_id, std::string_view time_zone,
                                  std::span<const storage::UsagePartialRecord> partials) override;
  Result<bool> compact_usage_partials(std::string_view time_zone, std::int32_t day, std::span<const std::int64_t> block_ids,
                                      const std::string& data) override;
  Result<storage::RevenueUpsert> upsert_revenue(std::span<const storage::RevenueRow> rows) override;
  Result<std::vector<storage::RevenueRow>> query_revenue(std::int32_t first_day, std::int32_t last_day) override;
  Result<std::optional<storage::RollupRecord>> get_rollup(std::string_view time_zone, std::string_view period) override;
  Result<std::vector<storage::RollupRecord>> list_rollups(std::size_t limit) override;
  Result<std::int64_t> put_rollup(const storage::RollupRecord& record, std::optional<std::int64_t> expected_version) override;

  Result<storage::Enqueued> enqueue_delivery(const storage::DeliveryRecord& record) override;
  Result<std::optional<storage::DeliveryRecord>> get_delivery(std::int64_t id) override;
  Result<std::vector<storage::DeliveryRecord>> list_deliveries(const storage::DeliveryQuery& query) override;
  Result<std::int64_t> update_delivery(const storage::DeliveryRecord& record) override;
  Result<std::int64_t> prune_deliveries(TimePoint before) override;

  Result<std::size_t> append_metric_points(std::span<const storage::MetricPoint> points) override;
  Result<std::vector<storage::MetricPoint>> query_metric_points(const storage::MetricQuery& query) override;
  Result<std::int64_t> prune_metric_points(TimePoint before) override;
  Result<std::int64_t> create_alert(const storage::AlertRecord& record) override;
  Result<std::optional<storage::AlertRecord>> get_alert(std::int64_t id) override;
  Result<std::vector<storage::AlertRecord>> list_alerts(const storage::AlertQuery& query) override;
  Result<std::int64_t> update_alert(const storage::AlertRecord& record) override;
  Result<std::int64_t> prune_alerts(TimePoint before) override;

  Result<std::int64_t> append_forecast(const storage::ForecastRecord& record) override;
  Result<std::optional<storage::ForecastRecord>> get_forecast(std::int64_t id) override;
  Result<std::vector<storage::ForecastRecord>> list_forecasts(const storage::ForecastQuery& query) override;
  Result<std::int64_t> prune_forecasts(TimePoint before) override;

  Result<std::int64_t> append_scaling(const storage::ScalingRecord& record, std::optional<std::int64_t> after) override;
  Result<void> finish_scaling(std::int64_t id, std::string_view outcome, std::string_view error, TimePoint updated) override;
  Result<std::vector<storage::ScalingRecord>> list_scaling(const storage::ScalingQuery& query) override;
  Result<std::int64_t> prune_scaling(TimePoint before) override;

  Result<std::int64_t> append_healing(const storage::HealingRecord& record) override;
  Result<void> finish_healing(std::int64_t id, std::string_view outcome, std::string_view error, std::string_view detail,
                              TimePoint updated) override;
  Result<std::vector<storage::HealingRecord>> list_healing(const storage::HealingQuery& query) override;
  Result<std::int64_t> prune_healing(TimePoint before) override;

  Result<void> create_token(const storage::TokenRecord& record) override;
  Result<std::optional<storage::TokenRecord>> get_token(std::string_view id) override;
  Result<std::vector<storage::TokenRecord>> list_tokens(bool include_revoked) override;
  Result<storage::TokenRecord> revoke_token(std::string_view id_or_name, TimePoint time, std::string_view by,
                                            std::string_view reason) override;
  Result<void> touch_token(std::string_view id, TimePoint time, std::string_view from) override;

  Result<std::optional<storage::NodeRecord>> get_node(std::string_view id) override;
  Result<std::vector<storage::NodeRecord>> list_nodes() override;
  Result<std::int64_t> put_node(const storage::NodeRecord& record, std::optional<std::int64_t> expected_version) override;
  Result<bool> delete_node(std::string_view id) override;
  Result<std::int64_t> append_scan(const storage::ScanRecord& record) override;
  Result<std::vector<storage::ScanRecord>> list_scans(std::size_t limit, std::int64_t before_id) override;
  Result<std::int64_t> prune_scans(TimePoint before) override;

 private:
  Result<void> before_write(std::string_view op);
  Result<void> before_read(std::string_view op);

  storage::Store& inner_;
  std::atomic<std::uint64_t> writes_{0}, reads_{0}, injected_{0};
  std::atomic<std::uint64_t> fail_at_{0};  // absolute write number to fail; 0 = none
  std::atomic<int> fail_at_code_{0};
  std::atomic<int> all_writes_code_{0};
  std::atomic<int> all_reads_code_{0};
  std::function<void(std::string_view)> hook_;
};

}  // namespace automation::testing
