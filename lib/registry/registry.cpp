#include <automation/core/json.hpp>
#include <automation/core/logging.hpp>
#include <automation/core/time.hpp>
#include <automation/registry/discovery.hpp>
#include <automation/registry/registry.hpp>
#include <automation/workflow/scheduler.hpp>

#include "detail/json_fields.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <algorithm>
#include <set>

namespace automation::registry {

namespace bj = boost::json;
using storage::NodeRecord;

namespace {

constexpr double kMaxTtlSeconds = 365.0 * 86400;

// A compare-and-set write loses to a concurrent one now and then; reread and redo it this often.
constexpr int kWriteTries = 5;

bj::array services_json(const std::vector<ServiceInfo>& services) {
  bj::array out;
  for (const auto& s : services) {
    bj::object o{{"name", s.name}};
    if (s.port) o["port"] = *s.port;
    if (!s.url.empty()) o["url"] = s.url;
    if (!s.depends_on.empty()) o["depends_on"] = bj::value_from(s.depends_on);
    out.push_back(std::move(o));
  }
  return out;
}

}  // namespace

Result<Registration> parse_registration(std::string_view id, const bj::object& body) {
  Registration r;
  r.id = std::string(id);
  if (auto ok = storage::check_resource_name("node", id); !ok) return ok.error();
  auto f = detail::Fields::of(body, fmt::format("node \"{}\"", id));
  if (!f) return f.error();
  TRY_ASSIGN(r.kind, f->string("kind"));
  TRY_ASSIGN(r.address, f->string("address"));
  TRY_ASSIGN(r.depends_on, f->strings("depends_on"));
  auto labels = f->string_map("labels");
  if (!labels) return labels.error();
  r.labels = std::move(*labels);
  if (const auto* t = body.if_contains("ttl"); t && t->is_number() && t->to_number<double>() > kMaxTtlSeconds)
    return f->bad("ttl", "must be at most 365 days");
  auto ttl = f->duration("ttl");
  if (!ttl) return ttl.error();
  if (*ttl && **ttl > std::chrono::seconds(static_cast<long>(kMaxTtlSeconds))) return f->bad("ttl", "must be at most 365 days");
  if (*ttl) r.ttl = std::chrono::duration_cast<Millis>(**ttl);
  if (const auto* services = f->get("services")) {
    if (!services->is_array()) return f->bad("services", fmt::format("must be an array of objects, not {}", json::type_name(*services)));
    std::size_t i = 0;
    for (const auto& v : services->as_array()) {
      auto sf = detail::Fields::of(v, fmt::format("node \"{}\": services[{}]", id, i++));
      if (!sf) return sf.error();
      ServiceInfo s;
      TRY_ASSIGN(s.name, sf->string("name"));
      if (s.name.empty()) return sf->bad("name", "is required");
      if (auto ok = storage::check_resource_name("service", s.name); !ok) return with_context(ok.error(), sf->where());
      auto port = sf->integer("port");
      if (!port) return port.error();
      if (*port && (**port < 1 || **port > 65535)) return sf->bad("port", "must be 1..65535");
      s.port = *port;
      TRY_ASSIGN(s.url, sf->string("url"));
      TRY_ASSIGN(s.depends_on, sf->strings("depends_on"));
      if (auto ok = sf->no_others(); !ok) return ok.error();
      r.services.push_back(std::move(s));
    }
  }
  if (auto ok = f->no_others(); !ok) return ok.error();
  return r;
}

Registry::Registry(storage::Store& store, const Clock& clock, RegistryOptions options)
    : store_(store), clock_(clock), options_(std::move(options)) {
  if (!options_.emit)
    options_.emit = [store = &store, clock = &clock](std::string name, const bj::object& payload) {
      return workflow::emit_event(*store, std::move(name), payload, "registry", clock->now());
    };
}

namespace {

// Raises an event about a node. The node's state is stored already, so a failure to store the
// event is the event's: logged, and returned ("" when it was stored).
std::string raise(const RegistryOptions& options, std::string_view name, const NodeRecord& node, std::string_view from) {
  bj::object payload{
      {"node", node.id},  {"kind", node.kind},     {"address", node.address}, {"from", from},
      {"to", node.state}, {"reason", node.reason}, {"source", node.source},   {"last_seen", json::time_or_null(node.last_seen)}};
  auto e = options.emit(std::string(name), payload);
  if (e) return {};
  const auto text = fmt::format("event {} for node {} could not be stored: {}", name, node.id, e.error().message);
  log(LogLevel::warn, "registry", text);
  return text;
}

}  // namespace

Result<NodeRecord> Registry::register_node(const Registration& registration, std::string_view actor) {
  for (int attempt = 0; attempt < kWriteTries; ++attempt) {
    auto old = store_.get_node(registration.id);
    if (!old) return old.error();
    const TimePoint now = clock_.now();
    NodeRecord n;
    n.id = registration.id;
    n.kind = registration.kind;
    n.address = registration.address;
    n.source = "registered";
    n.services = json::dump(services_json(registration.services));
    n.depends_on = json::dump(bj::value_from(registration.depends_on));
    n.labels = json::dump(bj::value_from(registration.labels));
    n.state = "up";
    n.reason = *old ? "registered again" : "registered";
    n.registered = *old ? (*old)->registered : now;
    n.last_seen = now;
    n.state_since = *old && (*old)->state == "up" ? (*old)->state_since : now;
    n.ttl = registration.ttl.value_or(options_.default_ttl);
    n.updated_by = std::string(actor);
    auto version = store_.put_node(n, *old ? (*old)->version : 0);
    if (!version) {
      if (version.error().is(errc::conflict)) continue;
      return version.error();
    }
    n.version = *version;
    if (!*old)
      raise(options_, "registry.node.registered", n, "");
    else if ((*old)->state != "up")
      raise(options_, "registry.node.up", n, (*old)->state);
    return n;
  }
  return fail(errc::conflict, fmt::format("node \"{}\" kept changing while it was registered; try again", registration.id));
}

Result<NodeRecord> Registry::heartbeat(std::string_view id, std::string_view actor) {
  for (int attempt = 0; attempt < kWriteTries; ++attempt) {
    auto old = store_.get_node(id);
    if (!old) return old.error();
    if (!*old) return fail(errc::not_found, fmt::format("no node \"{}\": register it before it sends heartbeats", id));
    NodeRecord n = **old;
    const std::string was = n.state;
    const TimePoint now = clock_.now();
    n.last_seen = now;
    if (n.state != "up") {
      n.state = "up";
      n.state_since = now;
      n.reason = "heartbeat after being down";
    } else {
      n.reason = "heartbeat";
    }
    n.updated_by = std::string(actor);
    auto version = store_.put_node(n, (*old)->version);
    if (!version) {
      if (version.error().is(errc::conflict)) continue;
      return version.error();
    }
    n.version = *version;
    if (was != "up") raise(options_, "registry.node.up", n, was);
    return n;
  }
  return fail(errc::conflict, fmt::format("node \"{}\" kept changing during its heartbeat; try again", id));
}

Result<bool> Registry::deregister(std::string_view id) { return store_.delete_node(id); }

Result<std::vector<Transition>> Registry::expire() {
  auto all = store_.list_nodes();
  if (!all) return all.error();
  std::vector<Transition> out;
  const TimePoint now = clock_.now();
  for (auto& n : *all) {
    if (n.state != "up" || n.ttl <= Millis(0) || n.last_seen + n.ttl > now) continue;
    const auto silent = std::chrono::duration_cast<Millis>(now - n.last_seen);
    NodeRecord down = n;
    down.state = "down";
    down.state_since = now;
    down.reason = fmt::format("no heartbeat for {} (ttl {})", format_duration(silent), format_duration(n.ttl));
    down.updated_by = "registry";
    auto version = store_.put_node(down, n.version);
    if (!version) {
      if (version.error().is(errc::conflict)) continue;  // a heartbeat got there first: it is up
      return version.error();
    }
    down.version = *version;
    auto event_error = raise(options_, "registry.node.down", down, "up");
    out.push_back({down.id, "up", "down", down.reason, std::move(event_error)});
  }
  return out;
}

Result<std::vector<NodeRecord>> Registry::nodes() { return store_.list_nodes(); }

Result<Topology> Registry::topology() {
  auto all = store_.list_nodes();
  if (!all) return all.error();
  Topology t;
  std::map<std::string, const NodeRecord*, std::less<>> by_id;
  std::set<std::string, std::less<>> services;  // "node/service"
  std::vector<bj::value> parsed(all->size());
  for (std::size_t i = 0; i < all->size(); ++i) {
    const auto& n = (*all)[i];
    by_id.emplace(n.id, &n);
    (n.state == "up" ? t.up : t.down) += 1;
    auto s = json::parse(n.services, "services");
    if (s && s->is_array()) {
      parsed[i] = std::move(*s);
      for (const auto& e : parsed[i].as_array())
        if (const auto* name = e.as_object().if_contains("name"); name && name->is_string())
          services.insert(n.id + "/" + std::string(name->as_string()));
    }
  }
  auto edge = [&](std::string from, const std::string& to) {
    Edge e{std::move(from), to, false, ""};
    const auto slash = to.find('/');
    const auto node = by_id.find(std::string_view(to).substr(0, slash));
    if (node != by_id.end() && (slash == std::string::npos || services.contains(to))) {
      e.resolved = true;
      e.state = node->second->state;
    }
    t.edges.push_back(std::move(e));
  };
  for (std::size_t i = 0; i < all->size(); ++i) {
    const auto& n = (*all)[i];
    if (auto deps = json::parse(n.depends_on, "depends_on"); deps && deps->is_array())
      for (const auto& d : deps->as_array())
        if (d.is_string()) edge(n.id, std::string(d.as_string()));
    if (!parsed[i].is_array()) continue;
    for (const auto& s : parsed[i].as_array()) {
      const auto& o = s.as_object();
      const auto* name = o.if_contains("name");
      const auto* deps = o.if_contains("depends_on");
      if (!name || !name->is_string() || !deps || !deps->is_array()) continue;
      for (const auto& d : deps->as_array())
        if (d.is_string()) edge(n.id + "/" + std::string(name->as_string()), std::string(d.as_string()));
    }
  }
  std::sort(t.edges.begin(), t.edges.end(), [](const Edge& a, const Edge& b) { return std::tie(a.from, a.to) < std::tie(b.from, b.to); });
  t.nodes = std::move(*all);
  return t;
}

bj::object to_json(const NodeRecord& n) {
  return bj::object{{"id", n.id},
                    {"kind", n.kind},
                    {"address", n.address},
                    {"source", n.source},
                    {"state", n.state},
                    {"reason", n.reason},
                    {"services", json::object_or_text(n.services)},
                    {"depends_on", json::object_or_text(n.depends_on)},
                    {"labels", json::object_or_text(n.labels)},
                    {"registered", json::time_or_null(n.registered)},
                    {"last_seen", json::time_or_null(n.last_seen)},
                    {"state_since", json::time_or_null(n.state_since)},
                    {"ttl_ms", n.ttl.count()},
                    {"updated_by", n.updated_by},
                    {"version", n.version}};
}

bj::object to_json(const Topology& t) {
  bj::array nodes, edges;
  for (const auto& n : t.nodes) nodes.push_back(to_json(n));
  for (const auto& e : t.edges)
    edges.push_back(bj::object{
        {"from", e.from}, {"to", e.to}, {"resolved", e.resolved}, {"state", e.state.empty() ? bj::value() : bj::value(e.state)}});
  return bj::object{{"nodes", std::move(nodes)}, {"edges", std::move(edges)}, {"up", t.up}, {"down", t.down}};
}

bj::object to_json(const storage::ScanRecord& s) {
  return bj::object{{"id", s.id},
                    {"started", json::time_or_null(s.started)},
                    {"finished", json::time_or_null(s.finished)},
                    {"actor", s.actor},
                    {"reason", s.reason},
                    {"targets", json::object_or_text(s.targets)},
                    {"found", json::object_or_text(s.found)},
                    {"added", s.added},
                    {"lost", s.lost},
                    {"error", s.error}};
}

}  // namespace automation::registry
