#pragma once
/// The seed catalog of workflows and the built-in actions that do real work on our own resources.
///
/// Actions (`"action": {"name": ..., "with": {...}}`):
///   backup       SQLite online backup of the store into `dir` (default var/backups), an integrity
///                check of the copy, and only the newest `keep` (default 7) copies kept.
///                Outputs: path, bytes, removed.
///   db_maintenance  WAL checkpoint, ANALYZE, VACUUM (`vacuum`, default true), and pruning of task
///                history and forecasts older than `task_retention` (default 90d), and of finished
///                runs, events, finished deliveries, metric points and resolved alerts older than
///                `run_retention` (default 30d). Outputs: bytes_before, bytes_after, tasks_pruned,
///                runs_pruned, events_pruned, deliveries_pruned, points_pruned, alerts_pruned,
///                forecasts_pruned.
///   cleanup      Deletes regular files older than `older_than` (default 7d) under each directory in
///                `dirs` (comma-separated), recursively, never following symlinks; `dry_run` lists
///                only. Outputs: files, bytes_freed.
/// Workflows: auto_backup, auto_optimize, database-maintenance, cleanup-resources (real work), and
/// the templates test-and-build, deploy-production, setup-monitoring, health_check,
/// auto_scale_check, on_user_register and on_content_publish, whose commands come from parameters
/// (documented defaults in docs/workflows.md).
/// Thread-safety: the actions may run on any thread; each opens its own SQLite connection.
#include <automation/storage/store.hpp>
#include <automation/workflow/definition.hpp>
#include <automation/workflow/engine.hpp>

#include <string>
#include <vector>

namespace automation::workflow {

/// The catalog, parsed and validated.
std::vector<WorkflowDefinition> builtin_workflows();

/// Registers the actions above on `engine`; they act on `store` (backup and maintenance need an
/// SQLite store; on another backend they fail with errc::config saying so).
void register_builtin_actions(WorkflowEngine& engine, storage::Store& store);

/// Registers the catalog and the actions.
Result<void> register_builtins(WorkflowEngine& engine, storage::Store& store);

}  // namespace automation::workflow
