#include "workflow_support.hpp"

#include <automation/workflow/builtins.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

namespace autoctl {

namespace wf = automation::workflow;
namespace fs = std::filesystem;

automation::Result<Catalog> load_catalog(const Context& ctx) {
  Catalog c;
  for (auto& w : wf::builtin_workflows()) c.entries.push_back({std::move(w), "built-in"});
  const std::string& dir = ctx.config.workflows_dir;
  std::error_code ec;
  if (!dir.empty() && fs::is_directory(dir, ec)) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.is_regular_file() && e.path().extension() == ".json") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      auto w = wf::load_workflow_file(f.string());
      if (!w) {
        c.broken.emplace(f.stem().string(), w.error());
        c.problems.push_back(w.error().message);
        continue;
      }
      auto it = std::find_if(c.entries.begin(), c.entries.end(), [&](const CatalogEntry& e) { return e.definition.name == w->name; });
      if (it != c.entries.end())
        *it = {std::move(w.value()), f.string()};
      else
        c.entries.push_back({std::move(w.value()), f.string()});
    }
  }
  std::sort(c.entries.begin(), c.entries.end(), [](const auto& a, const auto& b) { return a.definition.name < b.definition.name; });
  return c;
}

automation::Result<CatalogEntry> resolve_workflow(const Catalog& catalog, const std::string& target) {
  if (target.find('/') != std::string::npos || target.ends_with(".json")) {
    auto w = wf::load_workflow_file(target);
    if (!w) return w.error();
    return CatalogEntry{std::move(w.value()), target};
  }
  for (const auto& e : catalog.entries)
    if (e.definition.name == target) return e;
  if (auto it = catalog.broken.find(target); it != catalog.broken.end()) return it->second;
  std::vector<std::string> names;
  for (const auto& e : catalog.entries) names.push_back(e.definition.name);
  return automation::fail(automation::errc::not_found, fmt::format("no workflow named \"{}\" (known: {}; or give a path to a JSON file)",
                                                                   target, fmt::join(names, ", ")));
}

automation::Result<std::unique_ptr<wf::WorkflowEngine>> make_engine(const Context& ctx, automation::storage::Store& store,
                                                                    const Catalog& catalog) {
  auto engine = std::make_unique<wf::WorkflowEngine>(store, automation::SystemClock::instance());
  wf::register_builtin_actions(*engine, store);
  for (const auto& e : catalog.entries)
    if (auto r = engine->register_workflow(e.definition); !r) return r.error();
  auto report = engine->recover(false);
  if (!report) return report.error();
  if (!ctx.global.quiet) {
    for (auto id : report->interrupted)
      fmt::print(
          stderr,
          "autoctl: run {} was left running by an engine that is gone; marked interrupted (`autoctl workflow resume {}` continues it)\n",
          id, id);
    for (const auto& k : report->killed) fmt::print(stderr, "autoctl: killed an orphaned process group: {}\n", k);
  }
  return engine;
}

}  // namespace autoctl
