#pragma once
/// The node registry: hosts, daemons and services register themselves (with the services they run
/// and what they depend on) and send heartbeats; a node whose heartbeats stop for longer than its
/// ttl is marked down and a "registry.node.down" event is raised, with the reason recorded on the
/// node. The topology lists the nodes, their services, and the dependency edges between them,
/// each edge with the state of what it points at. Discovery (discovery.hpp) adds the HTTP services
/// a scan finds. Everything lives in the store's registry area, so several processes share it.
/// See docs/registry.md.
/// Thread-safety: all methods may be called from any thread (writes are compare-and-set on the
/// node's version). Needs a Store and a Clock that outlive it.
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>
#include <automation/storage/store.hpp>

#include <boost/json/fwd.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace automation::registry {

/// A service a node runs.
struct ServiceInfo {
  std::string name;                     ///< is_resource_name
  std::optional<int> port;              ///< 1..65535
  std::string url;                      ///< where it answers, if it has one
  std::vector<std::string> depends_on;  ///< "node" or "node/service"
};

/// What a node says about itself when it registers.
struct Registration {
  std::string id;  ///< is_resource_name
  std::string kind = "service";
  std::string address;
  std::vector<ServiceInfo> services;
  std::vector<std::string> depends_on;  ///< node ids
  std::map<std::string, std::string> labels;
  std::optional<Millis>
      ttl;  ///< how long without a heartbeat before it is down (default: RegistryOptions::default_ttl; 0: never; at most 365 days)
};

/// Reads a registration from JSON ({"kind", "address", "services": [{"name", "port", "url",
/// "depends_on"}], "depends_on", "labels", "ttl": "30s" or seconds, at most 365 days}); errors name the field.
Result<Registration> parse_registration(std::string_view id, const boost::json::object& body);

struct RegistryOptions {
  Millis default_ttl{30'000};
  /// Raises an event (default: workflow::emit_event on the store, source "registry", which a
  /// Scheduler on the store reads at its next poll). A failure to store one is logged; expire()
  /// also returns it with the node.
  std::function<Result<std::int64_t>(std::string name, const boost::json::object& payload)> emit;
};

/// A node whose state changed.
struct Transition {
  std::string node;
  std::string from, to;  ///< "" (new), "up", "down"
  std::string reason;
  std::string event_error;  ///< why its event could not be stored ("" when it was)
};

/// A dependency: node -> node, or node/service -> node[/service].
struct Edge {
  std::string from, to;
  bool resolved = false;  ///< the node (and service) it names is registered
  std::string state;      ///< the state of the node it points at ("up", "down"; "" when unresolved)
};

struct Topology {
  std::vector<storage::NodeRecord> nodes;  ///< by id
  std::vector<Edge> edges;                 ///< by from, then to
  std::size_t up = 0, down = 0;
};

class Registry {
 public:
  Registry(storage::Store& store, const Clock& clock, RegistryOptions options = {});

  /// Registers a node, or replaces what a registered one says about itself; it is up from now.
  /// Raises "registry.node.registered" for a new node and "registry.node.up" for one that was down.
  Result<storage::NodeRecord> register_node(const Registration& registration, std::string_view actor);
  /// A heartbeat: the node is seen now, and up again if it was down ("registry.node.up").
  /// errc::not_found for a node that never registered.
  Result<storage::NodeRecord> heartbeat(std::string_view id, std::string_view actor);
  /// Removes a node; false when there was none.
  Result<bool> deregister(std::string_view id);
  /// Marks down every up node whose last heartbeat is older than its ttl, with the reason on the
  /// node, and raises "registry.node.down" for each. Returns those it marked.
  Result<std::vector<Transition>> expire();
  Result<std::vector<storage::NodeRecord>> nodes();
  Result<Topology> topology();

 private:
  storage::Store& store_;
  const Clock& clock_;
  RegistryOptions options_;
};

boost::json::object to_json(const storage::NodeRecord& node);
boost::json::object to_json(const Topology& topology);
boost::json::object to_json(const storage::ScanRecord& scan);

}  // namespace automation::registry
