#pragma once
// The workflow catalog as autoctl sees it (built-ins plus workflows_dir), and an engine wired to it.
#include "context.hpp"

#include <automation/workflow/engine.hpp>
#include <automation/workflow/scheduler.hpp>

#include <csignal>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace autoctl {

struct CatalogEntry {
  automation::workflow::WorkflowDefinition definition;
  std::string source;  // "built-in" or the file's path
};

struct Catalog {
  std::vector<CatalogEntry> entries;                // by name
  std::map<std::string, automation::Error> broken;  // files that do not load, by their stem
  std::vector<std::string> problems;                // the same, as lines for `list`
};

/// The schedules file in workflows_dir; every other *.json file there is a workflow.
inline constexpr const char* kSchedulesFile = "schedules.json";

/// The built-in catalog overridden by workflows_dir/NAME.json files.
automation::Result<Catalog> load_catalog(const Context& ctx);
/// A name from the catalog, or a path to a JSON file (contains '/' or ends in .json).
automation::Result<CatalogEntry> resolve_workflow(const Catalog& catalog, const std::string& target);
/// The store opened for writing and an engine on it with the built-in actions and the catalog
/// registered, after marking runs of dead engines interrupted (reported on stderr). The engine runs
/// on `clock` (default: the system clock), which must outlive it.
struct EngineHost {
  std::unique_ptr<automation::storage::Store> store;
  std::unique_ptr<automation::workflow::WorkflowEngine> engine;
};
automation::Result<EngineHost> open_engine(const Context& ctx, const Catalog& catalog, const automation::Clock* clock = nullptr);

/// The seed schedules overridden (by name) and extended by workflows_dir/schedules.json, with where
/// each came from ("built-in" or the file).
struct ScheduleEntry {
  automation::workflow::ScheduleDefinition definition;
  std::string source;
};
automation::Result<std::vector<ScheduleEntry>> load_schedules(const Context& ctx);

/// While alive, SIGINT and SIGTERM are caught (stop_signal() says which arrived, 0: none) instead of
/// killing the process, so a command can cancel its runs cleanly.
class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};
int stop_signal() noexcept;

/// An RFC 3339 time, or "-" for none (an empty optional or the epoch, which records use for "not yet").
std::string when(std::optional<automation::TimePoint> t);

/// Drives the engine until `run_id` is final, printing step transitions to stderr; the first
/// SIGINT/SIGTERM cancels the run. Prints the run's outcome; exit 0 when it succeeded, else 1.
int drive_run(Context& ctx, automation::workflow::WorkflowEngine& engine, automation::storage::Store& store, std::int64_t run_id);

}  // namespace autoctl
