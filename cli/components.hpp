#pragma once
// The components as configured (healing targets, scaled resources), shared by their commands and by
// the daemon, with their records as JSON: one implementation for the CLI and the HTTP API.
#include "context.hpp"

#include <automation/forecast/forecaster.hpp>
#include <automation/healing/self_healer.hpp>
#include <automation/resilience/circuit_breaker.hpp>
#include <automation/scaling/resource_scaler.hpp>

#include <boost/json/object.hpp>

#include <memory>
#include <string>
#include <vector>

namespace autoctl {

/// The targets in effect: healing.targets_file when it exists, plus the seed strategies for what it
/// does not name (unless it says "seeds": false).
struct HealingSetup {
  automation::healing::HealingConfig config;
  std::vector<automation::healing::TargetSpec> targets;
  std::string source;
};
automation::Result<HealingSetup> healing_setup(const Context& ctx);

/// The configured resources (scaling.resources_file; none while it does not exist), the seed
/// thresholds filled in from thresholds.*.
struct ScalingSetup {
  std::vector<automation::scaling::ResourceConfig> configs;
  std::string source;
};
automation::Result<ScalingSetup> scaling_configs(const Context& ctx);

/// A scaler over `setup`'s resources with their actuators, on `store` (and a forecaster when a
/// resource is predictive).
struct Scaler {
  std::unique_ptr<automation::forecast::Forecaster> forecaster;
  std::unique_ptr<automation::scaling::ResourceScaler> scaler;
};
automation::Result<Scaler> make_scaler(const Context& ctx, automation::storage::Store& store, const ScalingSetup& setup,
                                       const automation::Clock& clock);

boost::json::object healing_record_json(const automation::storage::HealingRecord& r);
boost::json::object scaling_record_json(const automation::storage::ScalingRecord& r);
boost::json::object scaling_report_json(const automation::scaling::ResourceReport& rep);
boost::json::object alert_record_json(const automation::storage::AlertRecord& a);
boost::json::object audit_record_json(const automation::storage::AuditRecord& r);
/// A token's record, never its secret or hash.
boost::json::object token_record_json(const automation::storage::TokenRecord& t);

/// Closes (reset) or forces open a stored breaker by compare-and-set; every process sharing it
/// follows at its next poll. errc::not_found when resetting one that is not stored. The caller audits.
struct BreakerChange {
  std::string from, to;  ///< "none" when it was not stored
  std::int64_t version = 0;
};
automation::Result<BreakerChange> set_breaker(automation::storage::Store& store, const automation::Clock& clock, const std::string& name,
                                              automation::resilience::BreakerState to, const std::string& reason, const std::string& actor);

}  // namespace autoctl
