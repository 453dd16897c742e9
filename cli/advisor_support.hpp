#pragma once
// The advisor as the command and the API use it: the definitions it judges against, its options
// from the configuration, and its answers as the JSON documents both print or send
// (docs/intelligence.md).
#include "context.hpp"
#include "workflow_support.hpp"

#include <automation/intelligence/advisor.hpp>

#include <boost/json/object.hpp>

#include <map>
#include <string>
#include <vector>

namespace autoctl {

struct Definitions {
  std::vector<automation::workflow::WorkflowDefinition> workflows;
  std::vector<automation::workflow::ScheduleDefinition> schedules;
  std::map<std::string, std::string> sources;  ///< workflow name -> the file it was loaded from (built-ins have none)
};
Definitions definitions_of(const Catalog& catalog, const std::vector<ScheduleEntry>& schedules);

/// time_zone from the configuration, and the load forecast made by a Forecaster with the
/// configured LLM backend (llm.*; statistical without one, or when llm.* does not validate).
automation::intelligence::AdvisorOptions advisor_options(const Context& ctx);

/// {"as_of", "suggestions": [...]}, only those of `kind` when it is not empty.
automation::Result<boost::json::object> suggestions_json(automation::storage::Store& store, const Definitions& defs,
                                                         automation::TimePoint now, const automation::intelligence::AdvisorOptions& options,
                                                         const std::string& kind);
/// The suggestion with this id among those the history gives now; errc::not_found saying why one
/// may be gone (applied, or its premise no longer holds).
automation::Result<automation::intelligence::Suggestion> find_suggestion(automation::storage::Store& store, const Definitions& defs,
                                                                         automation::TimePoint now,
                                                                         const automation::intelligence::AdvisorOptions& options,
                                                                         const std::string& id);
/// {"as_of", "insights": [...]}
automation::Result<boost::json::object> insights_json(automation::storage::Store& store, automation::TimePoint now,
                                                      const automation::intelligence::AdvisorOptions& options);
/// What applying did: {"id", "kind", "title", "summary", "files", "workflow", "schedule"}.
boost::json::object applied_json(const automation::intelligence::Suggestion& s, const automation::intelligence::Applied& a);

}  // namespace autoctl
