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

int run_services(Context& ctx, const std::string& action, const ServicesOptions& o) {
  if (!ctx.remote())
    return ctx.error(automation::fail(
        errc::invalid_argument,
        fmt::format("autoctl services {} asks a running daemon (its services live in its process): give --server URL (or remote.url)",
                    action)));
  if (action == "start" || action == "stop") {
    bj::object body;
    if (!o.reason.empty()) body["reason"] = o.reason;
    return ctx.print_answer(
        ctx.api("POST", fmt::format("/api/v1/services/{}/{}", Context::encode(o.name), action), bj::value(body)), [&](const bj::object& d) {
          fmt::print("{} is {}{}\n", o.name, field_text(d, "state"), d.at("changed").as_bool() ? "" : " (it already was)");
        });
  }
  if (action == "health") {
    const auto doc = Context::object_of(ctx.api("GET", "/api/v1/services/health"));
    const int rc = ctx.print_document(doc, [](const bj::object& d) {
      for (const auto& v : d.at("services").as_array()) {
        const auto& s = v.as_object();
        fmt::print("{:<4} {:<14} {:<10} {:<8} {}\n", s.at("healthy").as_bool() ? "ok" : "FAIL", field_text(s, "name"),
                   field_text(s, "kind"), field_text(s, "state"), field_text(s, "reason"));
      }
    });
    return rc == ex_ok && !doc->at("healthy").as_bool() ? ex_no : rc;
  }
  return ctx.print_answer(ctx.api("GET", "/api/v1/status"), [](const bj::object& d) {
    fmt::print("autoctl {} (pid {}), up {} s, {}\n", field_text(d, "version"), field_text(d, "pid"), field_text(d, "uptime_seconds"),
               d.at("ready").as_bool() ? "ready" : "not ready");
    for (const auto& [name, c] : d.at("components").as_object()) {
      const auto& o = c.as_object();
      fmt::print("  {:<12} {:<9} {}\n", std::string_view(name), field_text(o, "state"),
                 o.contains("stopped") ? field_text(o, "stopped") : field_text(o, "error"));
    }
    for (const auto& v : d.at("services").as_array()) {
      const auto& s = v.as_object();
      fmt::print("  {:<12} {:<9} supervised, pid {}, {} starts{}\n", field_text(s, "name"), field_text(s, "state"), field_text(s, "pid"),
                 field_text(s, "starts"), s.contains("last_exit") ? ", last exit: " + field_text(s, "last_exit") : "");
    }
  });
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
