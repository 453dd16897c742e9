#pragma once
/// The seed catalog of workflows and the built-in actions that do real work on our own resources.
///
/// Actions (`"action": {"name": ..., "with": {...}}`):
///   backup       SQLite online backup of the store into `dir` (default var/backups), an integrity
///                check of the copy, and only the newest `keep` (default 7) copies kept.
///                Outputs: path, bytes, removed.
///   db_maintenance  WAL checkpoint, ANALYZE, VACUUM (`vacuum`, default true), and pruning of task
///                history and forecasts older than `task_retention` (default 90d), and of finished
///                runs, events, finished deliveries, metric points, resolved alerts, scaling records
///                (but each resource's newest thresholds record) and healing records older than
///                `run_retention` (default 30d). Outputs: bytes_before, bytes_after, tasks_pruned,
///                runs_pruned, events_pruned, deliveries_pruned, points_pruned, alerts_pruned,
///                forecasts_pruned, scaling_pruned, healing_pruned.
///   cleanup      Deletes regular files older than `older_than` (default 7d) under each directory in
///                `dirs` (comma-separated), recursively, never following symlinks; `dry_run` lists
///                only. Outputs: files, bytes_freed.
///   aggregate    The rollup of `period` (daily, weekly or monthly; default daily) containing `date`
///                (default: the last complete one) in the settings' zone, stored (`force` recomputes
///                it). Outputs: period, events, unique_users, revenue, why.
///   report       The report of `period` (default weekly, last complete) delivered to the settings'
///                targets; a delivery left pending is stored for retry_deliveries. Outputs: report,
///                deliveries, delivered, pending, failed.
///   retry_deliveries  Attempts the stored deliveries that are due. Outputs: attempted, delivered,
///                pending, failed.
///   forecast_metrics  Forecasts each of `metrics` (default revenue,users,usage) `horizon` (30) days
///                ahead and stores it (a metric without data is skipped, saying so). Outputs:
///                forecasts ("revenue:12,users:13"), skipped.
///   resource_check  The stored cpu_usage, memory_usage and disk_usage samples of the last `window`
///                (1h) against the settings' limits; logs each series' mean and peak and appends the
///                event resource.high (payload: the series above and their peaks) when one went
///                above. Outputs: samples, cpu_mean, cpu_max, memory_max, disk_max, above.
/// Workflows: auto_backup, auto_optimize, database-maintenance, cleanup-resources,
/// daily-metrics-aggregation, weekly-report-generation, forecast-update, hourly-resource-check, delivery-retry (real work), and
/// the templates test-and-build, deploy-production, setup-monitoring, health_check,
/// auto_scale_check, on_user_register and on_content_publish, whose commands come from parameters
/// (documented defaults in docs/workflows.md).
/// Thread-safety: the actions may run on any thread; each opens its own SQLite connection.
#include <automation/core/time.hpp>
#include <automation/forecast/forecaster.hpp>
#include <automation/metrics/delivery.hpp>
#include <automation/storage/store.hpp>
#include <automation/workflow/definition.hpp>
#include <automation/workflow/engine.hpp>

#include <string>
#include <vector>

namespace automation::workflow {

/// The catalog, parsed and validated.
std::vector<WorkflowDefinition> builtin_workflows();

/// What the metrics, report and forecast actions take from the configuration.
struct BuiltinSettings {
  TimeZone time_zone;                ///< of calendar periods and days (the configuration's time_zone)
  metrics::DeliveryOptions reports;  ///< report targets and how they are sent (no targets: report skips, saying so)
  /// Why reports cannot be sent (a configuration problem), returned by report and retry_deliveries
  /// rather than sending with half the settings; empty when they can.
  std::string reports_problem;
  forecast::ForecasterOptions forecaster;  ///< the LLM backend, if any
  /// resource_check's limits in percent (the configuration's thresholds.*).
  double cpu_high = 80, memory_high = 85, disk_high = 90;
};

/// Registers the actions above on `engine`; they act on `store` (backup and maintenance need an
/// SQLite store; on another backend they fail with errc::config saying so).
void register_builtin_actions(WorkflowEngine& engine, storage::Store& store, BuiltinSettings settings = {});

/// Registers the catalog and the actions.
Result<void> register_builtins(WorkflowEngine& engine, storage::Store& store, BuiltinSettings settings = {});

}  // namespace automation::workflow
