#include "registry_support.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include "detail/names.hpp"

#include <charconv>

namespace autoctl {

namespace rg = automation::registry;
namespace st = automation::storage;
namespace bj = boost::json;
using automation::errc;
using automation::Result;
namespace detail = automation::detail;

Result<rg::DiscoveryOptions> discovery_options(const automation::Config& config) {
  rg::DiscoveryOptions o;
  o.hosts.clear();
  for (const auto h : detail::comma_list(config.discovery.hosts)) o.hosts.emplace_back(h);
  o.ports.clear();
  for (const auto p : detail::comma_list(config.discovery.ports)) {
    int port = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
    if (ec != std::errc{} || end != p.data() + p.size() || port < 1 || port > 65535)
      return automation::fail(errc::config, fmt::format("discovery.ports: \"{}\" is not a port (1..65535)", p));
    o.ports.push_back(port);
  }
  o.timeout = config.discovery.timeout;
  if (auto ok = rg::validate(o); !ok)
    return automation::fail(errc::config, ok.error().message + " (discovery.hosts, discovery.ports, discovery.timeout)");
  return o;
}

rg::RegistryOptions registry_options(const automation::Config& config) {
  rg::RegistryOptions o;
  o.default_ttl = config.registry.default_ttl;
  return o;
}

Result<bj::object> nodes_json(st::Store& store) {
  auto all = store.list_nodes();
  if (!all) return all.error();
  bj::array nodes;
  std::size_t up = 0;
  for (const auto& n : *all) {
    up += n.state == "up";
    nodes.push_back(rg::to_json(n));
  }
  return bj::object{{"nodes", std::move(nodes)}, {"up", up}, {"down", all->size() - up}};
}

Result<bj::object> node_json(st::Store& store, const std::string& id) {
  auto n = store.get_node(id);
  if (!n) return n.error();
  if (!*n) return automation::fail(errc::not_found, fmt::format("no node \"{}\" in the registry", id));
  return rg::to_json(**n);
}

Result<bj::object> topology_json(rg::Registry& registry) {
  auto t = registry.topology();
  if (!t) return t.error();
  return rg::to_json(*t);
}

Result<bj::object> register_node_json(rg::Registry& registry, const std::string& id, const bj::object& body, const std::string& actor) {
  auto r = rg::parse_registration(id, body);
  if (!r) return r.error();
  auto n = registry.register_node(*r, actor);
  if (!n) return n.error();
  return rg::to_json(*n);
}

Result<bj::object> heartbeat_json(rg::Registry& registry, const std::string& id, const std::string& actor) {
  auto n = registry.heartbeat(id, actor);
  if (!n) return n.error();
  return rg::to_json(*n);
}

Result<bj::object> remove_node_json(rg::Registry& registry, const std::string& id) {
  auto removed = registry.deregister(id);
  if (!removed) return removed.error();
  if (!*removed) return automation::fail(errc::not_found, fmt::format("no node \"{}\" in the registry", id));
  return bj::object{{"removed", id}};
}

Result<bj::object> discovered_json(st::Store& store) {
  auto all = store.list_nodes();
  if (!all) return all.error();
  bj::array out;
  for (const auto& n : *all)
    if (n.source == "discovered") out.push_back(rg::to_json(n));
  return bj::object{{"discovered", std::move(out)}};
}

Result<bj::object> scans_json(st::Store& store, std::size_t limit, std::int64_t before) {
  auto scans = store.list_scans(limit + 1, before);
  if (!scans) return scans.error();
  const bool more = scans->size() > limit;
  if (more) scans->resize(limit);
  bj::array out;
  for (const auto& s : *scans) out.push_back(rg::to_json(s));
  return bj::object{{"scans", std::move(out)}, {"next_before", more ? bj::value(scans->back().id) : bj::value(nullptr)}};
}

}  // namespace autoctl
