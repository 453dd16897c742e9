#include <automation/core/json.hpp>
#include <automation/registry/discovery.hpp>
#include <automation/workflow/scheduler.hpp>

#include "detail/http_client.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <automation/core/logging.hpp>

#include <arpa/inet.h>

#include <algorithm>
#include <map>

namespace automation::registry {

namespace bj = boost::json;
using storage::NodeRecord;

std::string discovered_node_id(std::string_view host, int port) {
  std::string id = "http-";
  for (char c : host) id += std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ? c : '-';
  return id + "-" + std::to_string(port);
}

namespace {

// A host name or an IPv4 address ([A-Za-z0-9.-]), or an IPv6 address.
bool plain_host(const std::string& h) {
  if (h.empty() || h.size() > 253) return false;
  if (h.find(':') != std::string::npos) {
    in6_addr a{};
    return ::inet_pton(AF_INET6, h.c_str(), &a) == 1;
  }
  return std::all_of(h.begin(), h.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-'; });
}

std::string address_of(const std::string& host, int port) {
  return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
}

struct Probe {
  std::string host;
  int port = 0;
  std::string address;
  bool answered = false;
  int status = 0;
  std::string server;
  std::string error;
};

}  // namespace

Result<void> validate(const DiscoveryOptions& options) {
  if (options.hosts.empty()) return fail(errc::invalid_argument, "discovery: no hosts to scan");
  if (options.ports.empty()) return fail(errc::invalid_argument, "discovery: no ports to scan");
  for (const auto& h : options.hosts) {
    if (!plain_host(h)) return fail(errc::invalid_argument, fmt::format("discovery: invalid host \"{}\" (a name or an IP address)", h));
    if (!storage::is_resource_name(discovered_node_id(h, 65535)))
      return fail(errc::invalid_argument,
                  fmt::format("discovery: host \"{}\" is too long to name a node (at most about 85 characters)", h));
  }
  for (int p : options.ports)
    if (p < 1 || p > 65535) return fail(errc::invalid_argument, fmt::format("discovery: port {} is outside 1..65535", p));
  if (options.path.empty() || options.path.front() != '/')
    return fail(errc::invalid_argument, fmt::format("discovery: path \"{}\" must start with /", options.path));
  if (options.timeout <= Millis(0)) return fail(errc::invalid_argument, "discovery: timeout must be more than 0");
  return {};
}

Result<Discovery> Discovery::create(storage::Store& store, const Clock& clock, DiscoveryOptions options) {
  if (auto ok = validate(options); !ok) return ok.error();
  return Discovery(store, clock, std::move(options));
}

Discovery::Discovery(storage::Store& store, const Clock& clock, DiscoveryOptions options)
    : store_(&store), clock_(&clock), options_(std::move(options)) {
  if (!options_.emit)
    options_.emit = [store = store_, clock = clock_](std::string name, const bj::object& payload) {
      return workflow::emit_event(*store, std::move(name), payload, "discovery", clock->now());
    };
}

Result<storage::ScanRecord> Discovery::scan(std::string_view actor, std::string_view reason, const std::atomic<bool>* cancel) {
  storage::ScanRecord scan;
  scan.started = clock_->now();
  scan.actor = std::string(actor);
  scan.reason = std::string(reason);
  const std::atomic<bool> never{false};
  std::vector<Probe> probes;
  bj::array targets;
  for (const auto& host : options_.hosts)
    for (int port : options_.ports) {
      Probe p{host, port, address_of(host, port)};
      targets.push_back(bj::value(p.address));
      probes.push_back(std::move(p));
    }
  scan.targets = json::dump(targets);

  std::size_t tried = 0;
  for (auto& p : probes) {
    if (cancel && cancel->load()) {
      scan.error = "cancelled";
      break;
    }
    detail::HttpCall call;
    call.url = fmt::format("http://{}{}", p.address, options_.path);
    call.timeout = options_.timeout;
    auto answer = detail::perform_http(call, cancel ? *cancel : never);
    ++tried;
    if (answer) {
      p.answered = true;
      p.status = answer->status;
      p.server = answer->server;
    } else {
      p.error = answer.error().message;
    }
  }

  auto existing = store_->list_nodes();
  if (!existing) return existing.error();
  std::vector<std::string> problems;
  std::map<std::string, const NodeRecord*> by_id;
  for (const auto& n : *existing) by_id.emplace(n.id, &n);
  const TimePoint now = clock_->now();
  bj::array found;
  std::vector<std::pair<std::string, NodeRecord>> events;
  for (std::size_t i = 0; i < tried; ++i) {
    const auto& p = probes[i];
    const std::string id = discovered_node_id(p.host, p.port);
    const auto it = by_id.find(id);
    const NodeRecord* old = it == by_id.end() ? nullptr : it->second;
    if (!p.answered) {
      if (!old || old->source != "discovered" || old->state != "up") continue;
      NodeRecord n = *old;
      n.state = "down";
      n.state_since = now;
      n.reason = fmt::format("did not answer discovery: {}", p.error);
      n.updated_by = std::string(actor);
      auto v = store_->put_node(n, old->version);
      if (!v) {
        if (!v.error().is(errc::conflict)) problems.push_back(fmt::format("{}: {}", id, v.error().message));
        continue;  // a conflict: another writer (a heartbeat, a scan) got there first
      }
      ++scan.lost;
      events.emplace_back("discovery.service.lost", std::move(n));
      continue;
    }
    bj::object entry{{"address", p.address}, {"status", p.status}, {"server", p.server}, {"node", id}, {"new", old == nullptr}};
    if (old && old->source != "discovered") {
      entry["registered"] = true;  // a node that registered itself under this id: the scan leaves it alone
      found.push_back(std::move(entry));
      continue;
    }
    NodeRecord n;
    n.id = id;
    n.kind = "http";
    n.address = p.address;
    n.source = "discovered";
    bj::object service{{"name", "http"}, {"port", p.port}, {"url", fmt::format("http://{}{}", p.address, options_.path)}};
    n.services = json::dump(bj::array{service});
    bj::object labels{{"status", std::to_string(p.status)}};
    if (!p.server.empty()) labels["server"] = p.server;
    n.labels = json::dump(labels);
    n.state = "up";
    n.reason = fmt::format("answered HTTP {} to discovery", p.status);
    n.registered = old ? old->registered : now;
    n.last_seen = now;
    n.state_since = old && old->state == "up" ? old->state_since : now;
    n.updated_by = std::string(actor);
    auto v = store_->put_node(n, old ? old->version : 0);
    if (!v && !v.error().is(errc::conflict)) problems.push_back(fmt::format("{}: {}", id, v.error().message));
    if (v && !old) ++scan.added;
    if (v && (!old || old->state != "up")) events.emplace_back("discovery.service.found", n);
    found.push_back(std::move(entry));
  }
  scan.found = json::dump(found);
  scan.finished = clock_->now();
  if (!problems.empty()) {
    // The scan is recorded all the same, with what could not be stored.
    const auto text = fmt::format("could not store {} node(s): {}", problems.size(), fmt::join(problems, "; "));
    scan.error = scan.error.empty() ? text : scan.error + "; " + text;
  }
  auto id = store_->append_scan(scan);
  if (!id) return id.error();
  scan.id = *id;
  for (const auto& [name, n] : events) {
    bj::object payload{{"node", n.id}, {"address", n.address}, {"state", n.state}, {"reason", n.reason}, {"scan", scan.id}};
    if (auto e = options_.emit(name, payload); !e)
      log(LogLevel::warn, "discovery",
          fmt::format("scan {}: event {} for {} could not be stored: {}", scan.id, name, n.id, e.error().message));
  }
  return scan;
}

Result<std::vector<NodeRecord>> Discovery::services() {
  auto all = store_->list_nodes();
  if (!all) return all.error();
  std::erase_if(*all, [](const NodeRecord& n) { return n.source != "discovered"; });
  return all;
}

}  // namespace automation::registry
