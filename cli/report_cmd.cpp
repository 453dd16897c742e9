// autoctl report [--daily|--weekly|--monthly] [--date D | --from D --to D] [--format md|html|json] [-o FILE] [--deliver]
// autoctl report deliveries [--state S] [--limit N]
// autoctl report retry [ID]
#include "context.hpp"
#include "delivery_support.hpp"
#include "periods.hpp"

#include <automation/core/files.hpp>
#include <automation/core/time.hpp>
#include <automation/metrics/aggregator.hpp>
#include <automation/metrics/delivery.hpp>
#include <automation/metrics/report.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

#include <cmath>
#include <cstdio>

namespace autoctl {
namespace mx = automation::metrics;
using automation::errc;

namespace {

struct ReportOptions {
  PeriodOptions period;
  std::string format = "md";
  std::string output;
  bool deliver = false;
  std::vector<std::string> targets;  // --target, replacing the configured ones
};

boost::json::object outcome_json(const mx::DeliveryOutcome& o) {
  return boost::json::object{{"id", o.id},
                             {"subject", o.subject},
                             {"target", o.target},
                             {"state", o.state},
                             {"attempts", o.attempts},
                             {"next_attempt", o.state == "pending" ? boost::json::value(automation::format_timestamp(o.next_attempt))
                                                                   : boost::json::value(nullptr)},
                             {"detail", o.detail},
                             {"created", o.created},
                             {"attempted", o.attempted}};
}

void print_outcome(const mx::DeliveryOutcome& o) { fmt::print("  #{:<4} {:<9} {}  ({})\n", o.id, o.state, o.target, o.detail); }

// Exit 0 when everything is delivered; 75 (temporary failure) when some wait for a retry or gave up.
int outcome_code(const std::vector<mx::DeliveryOutcome>& all) {
  for (const auto& o : all)
    if (o.state != "delivered") return ex_tempfail;
  return ex_ok;
}

int run_report(Context& ctx, const ReportOptions& o) {
  auto zone = automation::TimeZone::locate(ctx.config.time_zone);
  if (!zone) return ctx.error(automation::with_context(zone.error(), "time_zone"));
  auto format = mx::parse_report_format(o.format);
  if (!format) return ctx.error(automation::with_context(format.error(), "--format"));
  auto& clock = automation::SystemClock::instance();
  auto periods = select_periods(o.period, *zone, clock.now(), mx::Granularity::week);
  if (!periods) return ctx.error(periods.error());
  if (periods->size() > 1 && !o.output.empty() && o.output != "-")
    return ctx.error(automation::fail(errc::invalid_argument, "-o names one file: ask for one period (or deliver to a directory)"));
  std::optional<mx::DeliveryOptions> delivery;
  if (o.deliver) {
    auto d = delivery_settings(ctx);
    if (!d) return ctx.error(d.error());
    auto targets = delivery_targets(ctx, o.targets);
    if (!targets) return ctx.error(targets.error());
    d->targets = std::move(*targets);
    if (d->targets.empty())
      return ctx.error(automation::fail(
          errc::config, "--deliver: no targets (set reports.directory, reports.webhook_url or reports.email_to, or pass --target)"));
    delivery = std::move(*d);
  } else if (!o.targets.empty()) {
    return ctx.error(automation::fail(errc::invalid_argument, "--target needs --deliver"));
  }
  // A report reads (and stores) rollups, and deliveries are stored before they are attempted.
  auto store = ctx.open_store(Context::Access::write);
  if (!store) return ctx.error(store.error());
  mx::MetricsAggregator agg(**store, clock, {.time_zone = *zone});
  std::optional<mx::ReportDeliverer> deliverer;
  if (delivery) deliverer.emplace(**store, clock, *delivery);
  int rc = ex_ok;
  boost::json::array delivered;
  for (const auto& p : *periods) {
    auto rep = agg.report(p);
    if (!rep) {
      if (periods->size() == 1) return ctx.error(rep.error());
      rc = ctx.error(automation::with_context(rep.error(), p.key()));
      continue;
    }
    if (!o.output.empty() && o.output != "-") {
      if (auto w = automation::write_file_atomically(o.output, mx::render(*rep, *format)); !w) return ctx.error(w.error());
      if (!ctx.global.json && !o.deliver) fmt::print("wrote {} ({})\n", o.output, rep->title());
    } else if (!o.deliver || o.output == "-") {
      std::fputs(mx::render(*rep, *format).c_str(), stdout);
    }
    if (deliverer) {
      auto out = deliverer->deliver(*rep, fmt::format("autoctl report --deliver by {}", ctx.actor()));
      if (!out) {
        rc = ctx.error(automation::with_context(out.error(), rep->key()));
        continue;
      }
      if (ctx.global.json) {
        for (const auto& x : *out) delivered.push_back(outcome_json(x));
      } else {
        fmt::print("{}: {} deliver{}\n", rep->title(), out->size(), out->size() == 1 ? "y" : "ies");
        for (const auto& x : *out) print_outcome(x);
      }
      if (rc == ex_ok) rc = outcome_code(*out);
    }
  }
  if (ctx.global.json && deliverer) ctx.print_json(boost::json::object{{"deliveries", std::move(delivered)}});
  return rc;
}

struct DeliveriesOptions {
  std::string state;
  std::size_t limit = 50;
};

int run_deliveries(Context& ctx, const DeliveriesOptions& o) {
  if (!o.state.empty() && o.state != "pending" && o.state != "delivered" && o.state != "failed")
    return ctx.error(automation::fail(errc::invalid_argument, fmt::format("--state: \"{}\" is not pending, delivered or failed", o.state)));
  auto store = ctx.open_store(Context::Access::read);
  if (!store) return ctx.error(store.error());
  automation::storage::DeliveryQuery q;
  if (!o.state.empty()) q.state = o.state;
  q.limit = o.limit;
  auto list = (*store)->list_deliveries(q);
  if (!list) return ctx.error(list.error());
  if (ctx.global.json) {
    boost::json::array items;
    for (const auto& d : *list)
      items.push_back(boost::json::object{{"id", d.id},
                                          {"subject", d.subject},
                                          {"target", mx::shown_target(d.target)},
                                          {"content_type", d.content_type},
                                          {"state", d.state},
                                          {"attempts", d.attempts},
                                          {"next_attempt", automation::format_timestamp(d.next_attempt)},
                                          {"last_error", d.last_error},
                                          {"reason", d.reason},
                                          {"created", automation::format_timestamp(d.created)},
                                          {"updated", automation::format_timestamp(d.updated)}});
    ctx.print_json(boost::json::object{{"deliveries", std::move(items)}});
    return ex_ok;
  }
  if (list->empty()) {
    fmt::print("no deliveries\n");
    return ex_ok;
  }
  for (const auto& d : *list) {
    fmt::print("#{:<4} {:<9} {:<26} {}  attempts {}", d.id, d.state, d.subject, mx::shown_target(d.target), d.attempts);
    if (d.state == "pending") fmt::print(", next {}", automation::format_timestamp(d.next_attempt));
    if (!d.last_error.empty()) fmt::print("\n      last error: {}", d.last_error);
    fmt::print("\n");
  }
  return ex_ok;
}

int run_retry(Context& ctx, std::optional<std::int64_t> id) {
  auto d = delivery_settings(ctx);  // retrying reads each delivery's stored target
  if (!d) return ctx.error(d.error());
  auto store = ctx.open_store(Context::Access::write);
  if (!store) return ctx.error(store.error());
  mx::ReportDeliverer deliverer(**store, automation::SystemClock::instance(), *d);
  std::vector<mx::DeliveryOutcome> out;
  if (id) {
    auto one = deliverer.retry(*id);
    if (!one) return ctx.error(one.error());
    out.push_back(std::move(*one));
  } else {
    auto due = deliverer.retry_due();
    if (!due) return ctx.error(due.error());
    out = std::move(*due);
  }
  if (ctx.global.json) {
    boost::json::array items;
    for (const auto& x : out) items.push_back(outcome_json(x));
    ctx.print_json(boost::json::object{{"deliveries", std::move(items)}});
  } else if (out.empty()) {
    fmt::print("nothing is due\n");
  } else {
    for (const auto& x : out) print_outcome(x);
  }
  return outcome_code(out);
}

}  // namespace

void register_report(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<ReportOptions>();
  auto* cmd = app.add_subcommand("report",
                                 "A daily, weekly or monthly report (figures with changes, daily trends, features, plans, insights) as "
                                 "Markdown, HTML or JSON, printed, written (-o) or delivered (default: last week)");
  add_period_options(cmd, o->period);
  cmd->add_option("--format", o->format, "md, html or json (default md)");
  cmd->add_option("-o,--output", o->output, "Write the report to this file (- for standard output)");
  cmd->add_flag("--deliver", o->deliver,
                "Deliver it to the configured targets (reports.directory, reports.webhook_url, reports.email_to); failed deliveries "
                "are kept and retried");
  cmd->add_option("--target", o->targets, "With --deliver: these targets instead (file:PATH, webhook:URL, email:ADDRESSES)");
  cmd->callback([&ctx, o, cmd] {
    if (cmd->get_subcommands().empty()) ctx.run = [&ctx, o] { return run_report(ctx, *o); };
  });

  auto d = std::make_shared<DeliveriesOptions>();
  auto* list = cmd->add_subcommand("deliveries", "Stored report deliveries, newest first, with their state and last error");
  list->add_option("--state", d->state, "pending, delivered or failed");
  list->add_option("--limit", d->limit, "At most this many (default 50; 0: all)");
  list->callback([&ctx, d] { ctx.run = [&ctx, d] { return run_deliveries(ctx, *d); }; });

  auto id = std::make_shared<std::int64_t>(0);
  auto* retry = cmd->add_subcommand("retry", "Attempt the pending deliveries that are due now, or one delivery by id (a failed one too)");
  retry->add_option("id", *id, "A delivery id (from report deliveries)");
  retry->callback(
      [&ctx, id] { ctx.run = [&ctx, id] { return run_retry(ctx, *id > 0 ? std::optional<std::int64_t>(*id) : std::nullopt); }; });
}

}  // namespace autoctl
