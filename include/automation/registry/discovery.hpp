#pragma once
/// Discovery: scans hosts and ports for HTTP services and registers what answers as a node of
/// kind "http" and source "discovered" (id "http-HOST-PORT"). A discovered node that stops
/// answering is marked down with the scan's reason; one that answers again is up. Every scan is
/// recorded in the store (targets, what answered with its status and Server header, what was new,
/// what was lost) and raises "discovery.service.found" and "discovery.service.lost" events. A
/// registered node is never overwritten by a scan. See docs/registry.md.
/// Thread-safety: scans may run from any thread; two at once each record their own scan.
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>
#include <automation/storage/store.hpp>

#include <boost/json/fwd.hpp>

#include <atomic>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace automation::registry {

struct DiscoveryOptions {
  std::vector<std::string> hosts{"127.0.0.1"};
  std::vector<int> ports{3000, 3001, 8000, 8080, 5000};
  std::string path = "/";  ///< what a probe asks for; any HTTP answer counts, whatever its status
  Millis timeout{1000};    ///< per address
  /// Raises an event (default: workflow::emit_event on the store, source "discovery").
  std::function<Result<std::int64_t>(std::string name, const boost::json::object& payload)> emit;
};

/// errc::invalid_argument for no hosts, no ports, a port outside 1..65535, a bad host (a name, an
/// IPv4 or an IPv6 address, short enough to name a node) or path, or a timeout of 0.
Result<void> validate(const DiscoveryOptions& options);

/// The node id a scan gives HOST:PORT: "http-" then the host with every character outside
/// [A-Za-z0-9.-] as '-', then "-PORT".
std::string discovered_node_id(std::string_view host, int port);

class Discovery {
 public:
  /// validate(options)'s errors.
  static Result<Discovery> create(storage::Store& store, const Clock& clock, DiscoveryOptions options = {});

  /// Probes every host:port once and records the scan. `cancel` stops it between addresses (the
  /// scan is still recorded, with error "cancelled"); a node that cannot be stored is named in the
  /// scan's error and the others are stored. Errors: the store could not list the nodes or record
  /// the scan.
  Result<storage::ScanRecord> scan(std::string_view actor, std::string_view reason, const std::atomic<bool>* cancel = nullptr);
  /// The discovered nodes, by id.
  Result<std::vector<storage::NodeRecord>> services();
  const DiscoveryOptions& options() const noexcept { return options_; }

 private:
  Discovery(storage::Store& store, const Clock& clock, DiscoveryOptions options);
  storage::Store* store_;
  const Clock* clock_;
  DiscoveryOptions options_;
};

}  // namespace automation::registry
