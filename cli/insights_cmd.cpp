// autoctl insights [--daily|--weekly|--monthly] [--date D | --from D --to D] [--movers N] [--json]
#include "context.hpp"
#include "periods.hpp"

#include <automation/metrics/aggregator.hpp>
#include <automation/metrics/insights.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

namespace autoctl {
namespace mx = automation::metrics;

namespace {

struct InsightsOptions {
  PeriodOptions period;
  std::size_t movers = 3;
};

int run_insights(Context& ctx, const InsightsOptions& o) {
  auto zone = automation::TimeZone::locate(ctx.config.time_zone);
  if (!zone) return ctx.error(automation::with_context(zone.error(), "time_zone"));
  auto periods = select_periods(o.period, *zone, automation::SystemClock::instance().now(), mx::Granularity::week);
  if (!periods) return ctx.error(periods.error());
  mx::InsightOptions options;
  options.movers = o.movers;
  if (auto ok = options.validate(); !ok) return ctx.error(automation::with_context(ok.error(), "--movers"));
  // Insights read the period's rollup, computing and storing it when it is not current.
  auto store = ctx.open_store(Context::Access::write);
  if (!store) return ctx.error(store.error());
  mx::MetricsAggregator agg(**store, automation::SystemClock::instance(), {.time_zone = *zone});
  boost::json::array docs;
  int rc = ex_ok;
  for (const auto& p : *periods) {
    auto found = agg.insights(p, options);
    if (!found) {
      if (periods->size() == 1) return ctx.error(found.error());
      rc = ctx.error(automation::with_context(found.error(), p.key()));
      continue;
    }
    if (ctx.global.json) {
      boost::json::array items;
      for (const auto& i : *found) items.push_back(mx::to_json(i));
      docs.push_back(boost::json::object{{"period", p.key()}, {"time_zone", zone->name()}, {"insights", std::move(items)}});
      continue;
    }
    fmt::print("{} ({}, {}): {} insight{}\n", p.key(), mx::to_string(p.granularity), zone->name(), found->size(),
               found->size() == 1 ? "" : "s");
    for (const auto& i : *found) fmt::print("  {:<9} {}\n", fmt::format("[{}]", mx::to_string(i.severity)), i.sentence);
  }
  if (ctx.global.json) ctx.print_json(boost::json::object{{"periods", std::move(docs)}});
  return rc;
}

}  // namespace

void register_insights(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<InsightsOptions>();
  auto* cmd = app.add_subcommand("insights",
                                 "Plain sentences about a period: most and least used features, movers, error-rate spikes, revenue "
                                 "trend, churn (default: last week)");
  add_period_options(cmd, o->period);
  cmd->add_option("--movers", o->movers, "Biggest movers to report (default 3)");
  cmd->callback([&ctx, o] { ctx.run = [&ctx, o] { return run_insights(ctx, *o); }; });
}

}  // namespace autoctl
