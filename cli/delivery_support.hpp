#pragma once
// What report delivery and alert notices share in autoctl: delivery settings and targets from the
// configuration, and the alert rules in effect.
#include "context.hpp"

#include <automation/forecast/forecaster.hpp>
#include <automation/metrics/alerts.hpp>
#include <automation/metrics/delivery.hpp>
#include <automation/workflow/builtins.hpp>

#include <boost/json/array.hpp>

#include <string>
#include <vector>

namespace autoctl {

// How a deliverer sends (SMTP, trusted CAs, who it acts for), from the configuration; no targets.
automation::Result<automation::metrics::DeliveryOptions> delivery_settings(const Context& ctx);

// The targets: those given (--target), else the configured directory, webhook and mailbox that are set.
automation::Result<std::vector<automation::metrics::DeliveryTarget>> delivery_targets(const Context& ctx,
                                                                                      const std::vector<std::string>& given);

// The alert rules in effect: alerts.rules_file when it exists, else the seed's thresholds notifying
// the configured webhook and mailbox. `source` says which.
struct AlertSetup {
  automation::metrics::AlertOptions options;
  std::string source;  // "file:alerts.json" or "defaults (thresholds.*)"
};
automation::Result<AlertSetup> alert_setup(const Context& ctx);

// The forecaster's backend: the LLM when llm.* (or OPENAI_*) configure one and not `statistical`.
automation::Result<automation::forecast::ForecasterOptions> forecaster_options(const Context& ctx, bool statistical);

// What the built-in metrics, report and forecast actions take from the configuration. A problem in
// the reports settings is a warning here and the error of the report and delivery actions; one in
// the LLM settings is a warning and forecasts are statistical. Neither stops unrelated workflows.
automation::workflow::BuiltinSettings builtin_settings(const Context& ctx, std::vector<std::string>& warnings);

// What an evaluation changed, as JSON and as text lines (alerts_cmd.cpp).
boost::json::array changes_json(const std::vector<automation::metrics::AlertChange>& changes);
void print_changes(const std::vector<automation::metrics::AlertChange>& changes);

}  // namespace autoctl
