// autoctl registry list|show|register|heartbeat|remove|topology|expire and
// autoctl discovery scan|services|history: the node registry and HTTP service discovery.
#include "context.hpp"
#include "registry_support.hpp"

#include <automation/core/files.hpp>
#include <automation/core/json.hpp>
#include <automation/core/time.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

namespace autoctl {

namespace rg = automation::registry;
namespace st = automation::storage;
namespace bj = boost::json;
using automation::errc;
using automation::Result;

namespace {

struct RegistryOptions {
  std::string id, kind, address, ttl, body;
  std::vector<std::string> services, depends_on, labels;
  std::vector<std::string> hosts;
  std::vector<int> ports;
  std::size_t limit = 20;
  std::int64_t before = 0;
};

std::string text(const bj::object& o, std::string_view key) { return field_text(o, key, "-"); }

void print_node_line(const bj::object& n) {
  fmt::print("{:<28} {:<8} {:<5} {:<22} {:<20} {}\n", text(n, "id"), text(n, "kind"), text(n, "state"), text(n, "address"),
             text(n, "last_seen"), text(n, "reason"));
}

void print_nodes(const bj::object& doc, std::string_view key) {
  const auto& nodes = doc.at(key).as_array();
  if (nodes.empty()) {
    fmt::print("no nodes\n");
    return;
  }
  fmt::print("{:<28} {:<8} {:<5} {:<22} {:<20} {}\n", "NODE", "KIND", "STATE", "ADDRESS", "LAST SEEN", "REASON");
  for (const auto& n : nodes) print_node_line(n.as_object());
}

void print_node(const bj::object& n) {
  fmt::print("node {} ({}, {}): {} since {}: {}\n", text(n, "id"), text(n, "kind"), text(n, "source"), text(n, "state"),
             text(n, "state_since"), text(n, "reason"));
  fmt::print("  address {}, last seen {}, ttl {} ms, registered {}, by {}\n", text(n, "address"), text(n, "last_seen"), text(n, "ttl_ms"),
             text(n, "registered"), text(n, "updated_by"));
  for (const auto& s : n.at("services").as_array()) fmt::print("  service {}\n", automation::json::dump(s));
  if (!n.at("depends_on").as_array().empty()) fmt::print("  depends on {}\n", automation::json::dump(n.at("depends_on")));
}

void print_topology(const bj::object& t) {
  fmt::print("{} nodes up, {} down\n", text(t, "up"), text(t, "down"));
  for (const auto& n : t.at("nodes").as_array()) {
    const auto& o = n.as_object();
    std::vector<std::string> services;
    for (const auto& s : o.at("services").as_array())
      if (s.is_object()) services.push_back(text(s.as_object(), "name"));
    fmt::print("  {} [{}] {}\n", text(o, "id"), text(o, "state"), fmt::join(services, ", "));
  }
  for (const auto& e : t.at("edges").as_array()) {
    const auto& o = e.as_object();
    fmt::print("  {} -> {} ({})\n", text(o, "from"), text(o, "to"), o.at("resolved").as_bool() ? text(o, "state") : "not registered");
  }
}

void print_scan(const bj::object& s) {
  const auto& found = s.at("found").as_array();
  fmt::print("scan {} by {} ({}): tried {} addresses, {} answered, {} new, {} lost{}\n", text(s, "id"), text(s, "actor"), text(s, "reason"),
             s.at("targets").as_array().size(), found.size(), text(s, "added"), text(s, "lost"),
             text(s, "error") == "" ? "" : ", " + text(s, "error"));
  for (const auto& f : found) {
    const auto& o = f.as_object();
    fmt::print("  {} HTTP {} {} -> {}{}\n", text(o, "address"), text(o, "status"), text(o, "server"), text(o, "node"),
               o.contains("registered") ? " (registered, left alone)"
               : o.at("new").as_bool()  ? " (new)"
                                        : "");
  }
}

const std::string kNodes = "/api/v1/automation/registry/nodes/";

Result<bj::object> registration_body(const RegistryOptions& o) {
  bj::object body;
  if (!o.body.empty()) {
    std::string textual = o.body;
    if (textual.starts_with("@")) {
      auto file = automation::read_file(textual.substr(1));
      if (!file) return automation::with_context(file.error(), "--body");
      textual = *file;
    }
    auto v = automation::json::parse(textual, "--body");
    if (!v) return v.error();
    if (!v->is_object()) return automation::fail(errc::invalid_argument, "--body must be a JSON object");
    body = v->as_object();
  }
  if (!o.kind.empty()) body["kind"] = o.kind;
  if (!o.address.empty()) body["address"] = o.address;
  if (!o.ttl.empty()) body["ttl"] = o.ttl;
  if (!o.depends_on.empty()) body["depends_on"] = bj::value_from(o.depends_on);
  if (!o.services.empty()) {
    bj::array services = body.contains("services") && body.at("services").is_array() ? body.at("services").as_array() : bj::array{};
    for (const auto& spec : o.services) {
      bj::object s;
      const auto colon = spec.find(':');
      s["name"] = spec.substr(0, colon);
      if (colon != std::string::npos) {
        try {
          s["port"] = std::stoi(spec.substr(colon + 1));
        } catch (const std::exception&) {
          return automation::fail(errc::invalid_argument, fmt::format("--service {}: the port after ':' is not a number", spec));
        }
      }
      services.push_back(std::move(s));
    }
    body["services"] = std::move(services);
  }
  if (!o.labels.empty()) {
    bj::object labels = body.contains("labels") && body.at("labels").is_object() ? body.at("labels").as_object() : bj::object{};
    for (const auto& l : o.labels) {
      const auto eq = l.find('=');
      if (eq == std::string::npos) return automation::fail(errc::invalid_argument, fmt::format("--label {}: expected KEY=VALUE", l));
      labels[l.substr(0, eq)] = l.substr(eq + 1);
    }
    body["labels"] = std::move(labels);
  }
  return body;
}

int run_registry(Context& ctx, const std::string& action, const RegistryOptions& o) {
  const std::string path = kNodes + Context::encode(o.id);
  if (ctx.remote()) {
    if (action == "list")
      return ctx.print_answer(ctx.api("GET", "/api/v1/automation/registry/nodes"), [](auto& d) { print_nodes(d, "nodes"); });
    if (action == "show") return ctx.print_answer(ctx.api("GET", path), print_node);
    if (action == "topology") return ctx.print_answer(ctx.api("GET", "/api/v1/automation/registry/topology"), print_topology);
    if (action == "heartbeat") return ctx.print_answer(ctx.api("POST", path + "/heartbeat"), print_node);
    if (action == "remove") return ctx.print_api(ctx.api("DELETE", path));
    if (action == "register") {
      auto body = registration_body(o);
      if (!body) return ctx.error(body.error());
      return ctx.print_answer(ctx.api("POST", path, bj::value(*body)), print_node);
    }
  }
  const bool writes = action == "register" || action == "heartbeat" || action == "remove" || action == "expire";
  auto store = writes ? ctx.open_store(Context::Access::write) : ctx.open_store_or_empty();
  if (!store) return ctx.error(store.error());
  const auto& clock = automation::SystemClock::instance();
  rg::Registry registry(**store, clock, registry_options(ctx.config));
  if (action == "list") return ctx.print_document(nodes_json(**store), [](auto& d) { print_nodes(d, "nodes"); });
  if (action == "show") return ctx.print_document(node_json(**store, o.id), print_node);
  if (action == "topology") return ctx.print_document(topology_json(registry), print_topology);
  if (action == "heartbeat") return ctx.print_document(heartbeat_json(registry, o.id, ctx.actor()), print_node);
  if (action == "register") {
    auto body = registration_body(o);
    if (!body) return ctx.error(body.error());
    auto n = register_node_json(registry, o.id, *body, ctx.actor());
    ctx.audit(**store, "registry.register", "node:" + o.id, n ? st::AuditOutcome::success : st::AuditOutcome::failure,
              n ? "registered from the command line" : n.error().message, bj::object{{"registration", *body}});
    return ctx.print_document(n, print_node);
  }
  if (action == "remove") {
    auto removed = remove_node_json(registry, o.id);
    if (removed) ctx.audit(**store, "registry.remove", "node:" + o.id, st::AuditOutcome::success, "removed from the command line", {});
    return ctx.print_document(removed, [&](auto&) { fmt::print("node {} removed\n", o.id); });
  }
  // expire
  auto down = registry.expire();
  if (!down) return ctx.error(down.error());
  bj::array marked;
  for (const auto& t : *down) marked.push_back(bj::object{{"node", t.node}, {"reason", t.reason}});
  if (!down->empty())
    ctx.audit(**store, "registry.expire", "registry", st::AuditOutcome::success, fmt::format("{} silent nodes marked down", down->size()),
              bj::object{{"down", marked}});
  return ctx.print_document(Result<bj::object>(bj::object{{"down", std::move(marked)}}), [](const bj::object& d) {
    const auto& list = d.at("down").as_array();
    if (list.empty()) fmt::print("every node with a ttl has sent a heartbeat in time\n");
    for (const auto& t : list) fmt::print("{} is down: {}\n", text(t.as_object(), "node"), text(t.as_object(), "reason"));
  });
}

int run_discovery(Context& ctx, const std::string& action, const RegistryOptions& o) {
  if (ctx.remote()) {
    if (!o.hosts.empty() || !o.ports.empty())
      return ctx.error(
          automation::fail(errc::invalid_argument, "--host and --port scan from here; the daemon scans what its discovery.* says"));
    if (action == "scan") return ctx.print_answer(ctx.api("POST", "/api/v1/automation/discovery/scan"), print_scan);
    if (action == "services")
      return ctx.print_answer(ctx.api("GET", "/api/v1/automation/discovery/services"), [](auto& d) { print_nodes(d, "discovered"); });
    return ctx.print_answer(
        ctx.api("GET", "/api/v1/automation/discovery/history" +
                           Context::query({{"limit", std::to_string(o.limit)}, {"before", o.before ? std::to_string(o.before) : ""}})),
        [](const bj::object& d) {
          for (const auto& s : d.at("scans").as_array()) print_scan(s.as_object());
        });
  }
  auto store = action == "scan" ? ctx.open_store(Context::Access::write) : ctx.open_store_or_empty();
  if (!store) return ctx.error(store.error());
  if (action == "services") return ctx.print_document(discovered_json(**store), [](auto& d) { print_nodes(d, "discovered"); });
  if (action == "history")
    return ctx.print_document(scans_json(**store, o.limit, o.before), [](const bj::object& d) {
      if (d.at("scans").as_array().empty()) fmt::print("no scans yet\n");
      for (const auto& s : d.at("scans").as_array()) print_scan(s.as_object());
    });
  auto options = discovery_options(ctx.config);
  if (!options) return ctx.error(options.error());
  if (!o.hosts.empty()) options->hosts = o.hosts;
  if (!o.ports.empty()) options->ports = o.ports;
  auto d = rg::Discovery::create(**store, automation::SystemClock::instance(), *options);
  if (!d) return ctx.error(d.error());
  auto scan = d->scan(ctx.actor(), "requested from the command line");
  ctx.audit(**store, "discovery.scan", "discovery", scan ? st::AuditOutcome::success : st::AuditOutcome::failure,
            scan ? fmt::format("scan {} from the command line", scan->id) : scan.error().message,
            bj::object{{"hosts", bj::value_from(options->hosts)}, {"ports", bj::value_from(options->ports)}});
  if (!scan) return ctx.error(scan.error());
  return ctx.print_document(Result<bj::object>(rg::to_json(*scan)), print_scan);
}

}  // namespace

void register_registry(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<RegistryOptions>();
  auto* cmd = app.add_subcommand("registry", "Nodes and their services: registrations, heartbeats, expiry and the topology");
  cmd->require_subcommand(1);
  auto add = [&](const std::string& name, const std::string& help, bool id, bool remote) {
    auto* sub = cmd->add_subcommand(name, help);
    if (id) sub->add_option("id", o->id, "The node's id")->required();
    sub->callback([&ctx, o, name, remote] {
      ctx.remote_capable = remote;
      ctx.run = [&ctx, o, name] { return run_registry(ctx, name, *o); };
    });
    return sub;
  };
  add("list", "Every node with its state and why", false, true);
  add("show", "One node", true, true);
  add("topology", "The nodes, their services and the dependency edges between them, each with the state of what it points at", false, true);
  add("heartbeat", "A heartbeat for a registered node (it is up, and seen now)", true, true);
  add("remove", "Remove a node from the registry", true, true);
  add("expire", "Mark down every node silent for longer than its ttl (the daemon does this every registry.check_interval)", false, false);
  auto* reg = add("register", "Register a node, or replace what the registry says about it", true, true);
  reg->add_option("--kind", o->kind, "What it is: host, daemon, service (default: service)");
  reg->add_option("--address", o->address, "Where it is reached");
  reg->add_option("--ttl", o->ttl, "How long without a heartbeat before it is down (default: registry.default_ttl; 0: never)");
  reg->add_option("--service", o->services, "A service it runs: NAME or NAME:PORT (repeatable)");
  reg->add_option("--depends-on", o->depends_on, "A node it needs (repeatable)");
  reg->add_option("--label", o->labels, "KEY=VALUE (repeatable)");
  reg->add_option("--body", o->body, "The whole registration as JSON, or @FILE (docs/registry.md); the options above add to it");
  cmd->footer(
      "Examples:\n  autoctl registry register web1 --kind host --address 10.0.0.7 --service api:8080 --depends-on db --ttl 30s\n"
      "  autoctl --server http://127.0.0.1:8080 registry heartbeat web1\n  autoctl registry topology");

  auto* disc = app.add_subcommand("discovery", "Scan hosts and ports for HTTP services and register what answers");
  disc->require_subcommand(1);
  auto dsub = [&](const std::string& name, const std::string& help) {
    auto* sub = disc->add_subcommand(name, help);
    sub->callback([&ctx, o, name] {
      ctx.remote_capable = true;
      ctx.run = [&ctx, o, name] { return run_discovery(ctx, name, *o); };
    });
    return sub;
  };
  auto* scan = dsub("scan", "Scan now (discovery.hosts x discovery.ports, or --host and --port) and record the scan");
  scan->add_option("--host", o->hosts, "A host to scan instead of discovery.hosts (repeatable)");
  scan->add_option("--port", o->ports, "A port to scan instead of discovery.ports (repeatable)")->check(CLI::Range(1, 65535));
  dsub("services", "The nodes scans found, with their state");
  auto* history = dsub("history", "The scans, newest first");
  history->add_option("--limit", o->limit, "At most this many")->capture_default_str()->check(CLI::Range(1, 1000));
  history->add_option("--before", o->before, "Only scans with an id below this (the previous page's next_before)");
}

}  // namespace autoctl
