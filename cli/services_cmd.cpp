// autoctl services status|health|start NAME|stop NAME: the integration manager, through a running
// daemon (its own services and the ones it supervises live in its process).
#include "context.hpp"

#include <automation/core/json.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

namespace autoctl {

namespace bj = boost::json;
using automation::errc;

namespace {

struct ServicesOptions {
  std::string name, reason;
};

std::string str(const bj::object& o, std::string_view key) { return field_text(o, key); }

int run_services(Context& ctx, const std::string& action, const ServicesOptions& o) {
  if (!ctx.remote())
    return ctx.error(automation::fail(
        errc::invalid_argument,
        fmt::format("autoctl services {} asks a running daemon (its services live in its process): give --server URL (or remote.url)",
                    action)));
  if (action == "start" || action == "stop") {
    bj::object body;
    if (!o.reason.empty()) body["reason"] = o.reason;
    auto doc = ctx.api("POST", fmt::format("/api/v1/services/{}/{}", Context::encode(o.name), action), bj::value(body));
    if (!doc) return ctx.error(doc.error());
    if (ctx.global.json)
      ctx.print_json(*doc);
    else
      fmt::print("{} is {}{}\n", o.name, str(doc->as_object(), "state"), doc->at("changed").as_bool() ? "" : " (it already was)");
    return ex_ok;
  }
  if (action == "health") {
    auto doc = ctx.api("GET", "/api/v1/services/health");
    if (!doc) return ctx.error(doc.error());
    if (ctx.global.json) {
      ctx.print_json(*doc);
    } else {
      for (const auto& v : doc->at("services").as_array()) {
        const auto& s = v.as_object();
        fmt::print("{:<4} {:<14} {:<10} {:<8} {}\n", s.at("healthy").as_bool() ? "ok" : "FAIL", str(s, "name"), str(s, "kind"),
                   str(s, "state"), str(s, "reason"));
      }
    }
    return doc->at("healthy").as_bool() ? ex_ok : ex_no;
  }
  auto doc = ctx.api("GET", "/api/v1/status");
  if (!doc) return ctx.error(doc.error());
  if (ctx.global.json) {
    ctx.print_json(*doc);
  } else {
    const auto& d = doc->as_object();
    fmt::print("autoctl {} (pid {}), up {} s, {}\n", str(d, "version"), str(d, "pid"), str(d, "uptime_seconds"),
               d.at("ready").as_bool() ? "ready" : "not ready");
    for (const auto& [name, c] : d.at("components").as_object()) {
      const auto& o = c.as_object();
      fmt::print("  {:<12} {:<9} {}\n", std::string_view(name), str(o, "state"),
                 o.contains("stopped") ? str(o, "stopped") : str(o, "error"));
    }
    for (const auto& v : d.at("services").as_array()) {
      const auto& s = v.as_object();
      fmt::print("  {:<12} {:<9} supervised, pid {}, {} starts{}\n", str(s, "name"), str(s, "state"), str(s, "pid"), str(s, "starts"),
                 s.contains("last_exit") ? ", last exit: " + str(s, "last_exit") : "");
    }
  }
  return ex_ok;
}

}  // namespace

void register_services(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<ServicesOptions>();
  auto* cmd =
      app.add_subcommand("services", "The daemon's services and the ones it supervises: status, health, start, stop (needs --server)");
  cmd->require_subcommand(1);
  auto add = [&](const std::string& name, const std::string& help, bool named) {
    auto* sub = cmd->add_subcommand(name, help);
    if (named) {
      sub->add_option("name", o->name, "scheduler, healer, scaler, collector, registry, discovery, or a supervised service")->required();
      sub->add_option("--reason", o->reason, "Why, for the audit log");
    }
    sub->callback([&ctx, o, name] {
      ctx.remote_capable = true;
      ctx.run = [&ctx, o, name] { return run_services(ctx, name, *o); };
    });
  };
  add("status", "Every component's state and every supervised service's process (GET /api/v1/status)", false);
  add("health", "Whether each service does its job now; exit 1 when one does not", false);
  add("start", "Start a stopped service", true);
  add("stop", "Stop a service until it is started again or the daemon restarts (a supervised one is not healed meanwhile)", true);
  cmd->footer(
      "Examples:\n  autoctl --server http://127.0.0.1:8080 services health\n"
      "  autoctl --server http://127.0.0.1:8080 services stop scaler --reason \"load test\"");
}

}  // namespace autoctl
