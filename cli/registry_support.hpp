#pragma once
// The node registry and discovery as the command and the API use them: one implementation, each
// operation's answer as the JSON document both print or send (docs/registry.md).
#include "context.hpp"

#include <automation/registry/discovery.hpp>
#include <automation/registry/registry.hpp>

#include <boost/json/object.hpp>

#include <cstdint>
#include <string>

namespace autoctl {

/// discovery.hosts, .ports and .timeout as options; errc::config naming the key for a bad list.
automation::Result<automation::registry::DiscoveryOptions> discovery_options(const automation::Config& config);
automation::registry::RegistryOptions registry_options(const automation::Config& config);

/// {"nodes": [...], "up": N, "down": N}
automation::Result<boost::json::object> nodes_json(automation::storage::Store& store);
/// One node; errc::not_found.
automation::Result<boost::json::object> node_json(automation::storage::Store& store, const std::string& id);
/// {"nodes": [...], "edges": [...], "up", "down"}
automation::Result<boost::json::object> topology_json(automation::registry::Registry& registry);
/// Registers (or registers again) node `id` from a JSON body (see registry::parse_registration).
automation::Result<boost::json::object> register_node_json(automation::registry::Registry& registry, const std::string& id,
                                                           const boost::json::object& body, const std::string& actor);
/// A heartbeat for node `id` (errc::not_found when it never registered): the node.
automation::Result<boost::json::object> heartbeat_json(automation::registry::Registry& registry, const std::string& id,
                                                       const std::string& actor);
/// Removes node `id`: {"removed": id}; errc::not_found when there is none.
automation::Result<boost::json::object> remove_node_json(automation::registry::Registry& registry, const std::string& id);
/// {"discovered": [...]}: the nodes scans found.
automation::Result<boost::json::object> discovered_json(automation::storage::Store& store);
/// {"scans": [...], "next_before": ID or null}: the newest `limit` scans with an id below `before` (0: the newest).
automation::Result<boost::json::object> scans_json(automation::storage::Store& store, std::size_t limit, std::int64_t before);

}  // namespace autoctl
