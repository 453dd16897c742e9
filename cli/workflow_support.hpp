#pragma once
// The workflow catalog as autoctl sees it (built-ins plus workflows_dir), and an engine wired to it.
#include "context.hpp"

#include <automation/workflow/engine.hpp>

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

/// The built-in catalog overridden by workflows_dir/NAME.json files.
automation::Result<Catalog> load_catalog(const Context& ctx);
/// A name from the catalog, or a path to a JSON file (contains '/' or ends in .json).
automation::Result<CatalogEntry> resolve_workflow(const Catalog& catalog, const std::string& target);
/// An engine on `store` with the built-in actions and the catalog registered, after marking runs of
/// dead engines interrupted (reported on stderr).
automation::Result<std::unique_ptr<automation::workflow::WorkflowEngine>> make_engine(const Context& ctx, automation::storage::Store& store,
                                                                                      const Catalog& catalog);

}  // namespace autoctl
