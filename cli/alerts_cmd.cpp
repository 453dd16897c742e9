// autoctl alerts list | ack ID | rules | evaluate
#include "components.hpp"
#include "context.hpp"
#include "delivery_support.hpp"

#include <automation/core/json.hpp>
#include <automation/core/time.hpp>
#include <automation/metrics/alerts.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <boost/json.hpp>

namespace autoctl {
namespace mx = automation::metrics;
namespace st = automation::storage;
using automation::errc;

namespace {

struct ListOptions {
  std::string state = "firing";
  std::string rule;
  std::size_t limit = 50;
};

int run_list(Context& ctx, const ListOptions& o) {
  if (o.state != "firing" && o.state != "resolved" && o.state != "all")
    return ctx.error(automation::fail(errc::invalid_argument, fmt::format("--state: \"{}\" is not firing, resolved or all", o.state)));
  auto store = ctx.open_store(Context::Access::read);
  if (!store) return ctx.error(store.error());
  st::AlertQuery q;
  if (o.state != "all") q.state = o.state;
  if (!o.rule.empty()) q.rule = o.rule;
  q.limit = o.limit;
  auto list = (*store)->list_alerts(q);
  if (!list) return ctx.error(list.error());
  if (ctx.global.json) {
    boost::json::array items;
    for (const auto& a : *list) items.push_back(alert_record_json(a));
    ctx.print_json(boost::json::object{{"alerts", std::move(items)}});
    return ex_ok;
  }
  if (list->empty()) {
    fmt::print("{}\n", o.state == "all" ? "no alerts" : fmt::format("no {} alerts", o.state));
    return ex_ok;
  }
  for (const auto& a : *list) {
    const auto instance = a.labels.empty() ? std::string() : "{" + a.labels + "}";
    fmt::print("#{:<4} {:<8} {:<8} {}{}  since {}", a.id, a.state, a.severity, a.rule, instance, automation::format_timestamp(a.fired));
    if (a.state == "resolved") fmt::print(", resolved {}", automation::format_timestamp(a.resolved));
    if (a.acknowledged != automation::TimePoint{})
      fmt::print(", acknowledged by {}", a.acknowledged_by);
    else if (a.state == "firing")
      fmt::print(", not acknowledged (level {})", a.level);
    fmt::print("\n      {}\n", a.summary);
  }
  return ex_ok;
}

int run_ack(Context& ctx, std::int64_t id, const std::string& reason) {
  // Acknowledging needs no rules: it works even while the rules file is broken, mid-incident.
  auto store = ctx.open_store(Context::Access::write);
  if (!store) return ctx.error(store.error());
  mx::AlertManager alerts(**store, automation::SystemClock::instance(), {});
  auto a = alerts.acknowledge(id, ctx.actor(), reason);
  if (!a) return ctx.error(a.error());
  if (ctx.global.json) {
    ctx.print_json(alert_record_json(*a));
  } else {
    fmt::print("alert {} ({}) acknowledged by {} at {}\n", a->id, a->rule, a->acknowledged_by,
               automation::format_timestamp(a->acknowledged));
  }
  return ex_ok;
}

boost::json::array targets_json(const std::vector<mx::DeliveryTarget>& targets) {
  boost::json::array out;
  for (const auto& t : targets)
    out.push_back(boost::json::value(mx::shown_target(fmt::format("{}:{}", mx::to_string(t.kind), t.destination))));
  return out;
}

int run_rules(Context& ctx) {
  auto setup = alert_setup(ctx);
  if (!setup) return ctx.error(setup.error());
  const auto& rules = setup->options.rules.rules;
  if (ctx.global.json) {
    boost::json::array items;
    for (const auto& r : rules) {
      boost::json::array esc;
      for (const auto& e : r.escalate)
        esc.push_back(boost::json::object{{"after", automation::format_duration(std::chrono::duration_cast<automation::Millis>(e.after))},
                                          {"notify", targets_json(e.targets)}});
      items.push_back(
          boost::json::object{{"name", r.name},
                              {"when", r.condition.text()},
                              {"severity", std::string(mx::to_string(r.severity))},
                              {"description", r.description},
                              {"cooldown", automation::format_duration(std::chrono::duration_cast<automation::Millis>(r.cooldown))},
                              {"notify", targets_json(r.notify)},
                              {"escalate", std::move(esc)},
                              {"event", r.event}});
    }
    ctx.print_json(boost::json::object{{"source", setup->source}, {"rules", std::move(items)}});
    return ex_ok;
  }
  fmt::print("rules from {}\n", setup->source);
  for (const auto& r : rules) {
    fmt::print("{:<14} {:<8} {}  (cooldown {})\n", r.name, mx::to_string(r.severity), r.condition.text(),
               automation::format_duration(std::chrono::duration_cast<automation::Millis>(r.cooldown)));
    std::vector<std::string> shown;
    for (const auto& t : targets_json(r.notify)) shown.emplace_back(t.as_string());
    fmt::print("               notify: {}\n", shown.empty() ? "nobody (events only)" : fmt::format("{}", fmt::join(shown, ", ")));
    for (const auto& e : r.escalate) {
      std::vector<std::string> to;
      for (const auto& t : targets_json(e.targets)) to.emplace_back(t.as_string());
      fmt::print("               after {} unacknowledged: {}\n",
                 automation::format_duration(std::chrono::duration_cast<automation::Millis>(e.after)), fmt::join(to, ", "));
    }
    if (!r.event.empty()) fmt::print("               emits: {}\n", r.event);
  }
  return ex_ok;
}

}  // namespace

boost::json::array changes_json(const std::vector<mx::AlertChange>& changes) {
  boost::json::array out;
  for (const auto& c : changes)
    out.push_back(boost::json::object{{"alert", c.alert}, {"rule", c.rule}, {"labels", c.labels}, {"what", c.what}, {"detail", c.detail}});
  return out;
}

void print_changes(const std::vector<mx::AlertChange>& changes) {
  for (const auto& c : changes) {
    const auto instance = c.labels.empty() ? std::string() : "{" + c.labels + "}";
    if (c.alert)
      fmt::print("  alert {} {}{}: {} - {}\n", c.alert, c.rule, instance, c.what, c.detail);
    else
      fmt::print("  {}{}: {} - {}\n", c.rule.empty() ? "alerts" : c.rule, instance, c.what, c.detail);
  }
}

int run_alert_evaluation(Context& ctx) {
  auto setup = alert_setup(ctx);
  if (!setup) return ctx.error(setup.error());
  auto store = ctx.open_store(Context::Access::write);
  if (!store) return ctx.error(store.error());
  mx::AlertManager alerts(**store, automation::SystemClock::instance(), std::move(setup->options));
  auto changes = alerts.evaluate();
  if (!changes) return ctx.error(changes.error());
  if (ctx.global.json) {
    ctx.print_json(boost::json::object{{"changes", changes_json(*changes)}});
  } else if (changes->empty()) {
    fmt::print("no changes\n");
  } else {
    print_changes(*changes);
  }
  for (const auto& c : *changes)
    if (c.what == "error") return ex_tempfail;
  return ex_ok;
}

void register_alerts(CLI::App& app, Context& ctx) {
  auto* a = app.add_subcommand("alerts", "Alerts on metric samples: list, acknowledge, show the rules, evaluate them");
  a->require_subcommand(1);

  auto lo = std::make_shared<ListOptions>();
  auto* list = a->add_subcommand("list", "Alerts, newest first (default: those firing)");
  list->add_option("--state", lo->state, "firing (default), resolved or all");
  list->add_option("--rule", lo->rule, "Only this rule's alerts");
  list->add_option("--limit", lo->limit, "At most this many (default 50; 0: all)");
  list->callback([&ctx, lo] { ctx.run = [&ctx, lo] { return run_list(ctx, *lo); }; });

  auto id = std::make_shared<std::int64_t>(0);
  auto reason = std::make_shared<std::string>();
  auto* ack = a->add_subcommand("ack", "Acknowledge an alert: it is not escalated any further");
  ack->add_option("id", *id, "The alert's id (autoctl alerts list)")->required();
  ack->add_option("--reason", *reason, "Why (recorded in the audit log)");
  ack->callback([&ctx, id, reason] { ctx.run = [&ctx, id, reason] { return run_ack(ctx, *id, *reason); }; });

  auto* rules = a->add_subcommand("rules", "The alert rules in effect (alerts.rules_file, or the seed's thresholds)");
  rules->callback([&ctx] { ctx.run = [&ctx] { return run_rules(ctx); }; });

  auto* eval = a->add_subcommand("evaluate", "Evaluate the rules now over the stored samples, notify and escalate what is due");
  eval->callback([&ctx] { ctx.run = [&ctx] { return run_alert_evaluation(ctx); }; });
}

}  // namespace autoctl
