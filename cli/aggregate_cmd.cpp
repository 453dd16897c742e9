// autoctl aggregate --daily|--weekly|--monthly [--date D | --from D --to D] [--force]
#include "context.hpp"
#include "periods.hpp"

#include <automation/core/time.hpp>
#include <automation/metrics/aggregator.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

namespace autoctl {
namespace mx = automation::metrics;
using automation::errc;
using namespace std::chrono;

namespace {

struct AggregateOptions {
  PeriodOptions period;
  bool force = false;
};

std::string number(double v) {
  if (v == std::floor(v) && std::abs(v) < 1e15) return fmt::format("{}", static_cast<long long>(v));
  return fmt::format("{:.2f}", v);
}

std::string change_of(const mx::Rollup& r, std::string_view figure, bool points = false) {
  const auto* c = mx::find_change(r, figure);
  if (!c) return "";
  if (points) return fmt::format(" ({:+.2f} pts)", 100 * c->absolute);
  if (c->relative) return fmt::format(" ({:+.1f}%)", 100 * *c->relative);
  if (c->absolute != 0) return fmt::format(" (new, was 0)");
  return "";
}

void print_rollup(const mx::Rollup& r) {
  fmt::print("{} ({}, {}): {}\n", r.period.key(), mx::to_string(r.period.granularity), r.time_zone, r.reused ? "stored" : "computed");
  fmt::print("  why: {}\n", r.why);
  const auto& u = r.usage;
  fmt::print("  events {}{} | unique users {}{} | errors {}{} = {:.2f}%{}\n", u.events, change_of(r, "usage.events"), u.unique_users,
             change_of(r, "usage.unique_users"), u.errors, change_of(r, "usage.errors"), 100 * u.error_rate,
             change_of(r, "usage.error_rate", true));
  if (u.duration.count)
    fmt::print("  duration mean {:.1f} ms, p50 {:.1f} ms, p95 {:.1f} ms\n", u.duration.mean_ms, u.duration.p50_ms, u.duration.p95_ms);
  for (std::size_t i = 0; i < u.features.size() && i < 10; ++i) {
    const auto& f = u.features[i];
    fmt::print("  {:<24} {:>10}{} errors {:.2f}%", f.feature, f.events, change_of(r, "usage.feature." + f.feature + ".events"),
               100 * f.error_rate);
    if (f.duration.count) fmt::print(" p50 {:.1f} ms p95 {:.1f} ms", f.duration.p50_ms, f.duration.p95_ms);
    fmt::print("\n");
  }
  if (u.features.size() > 10) fmt::print("  ... {} more features\n", u.features.size() - 10);
  const auto& v = r.revenue;
  if (v.days) {
    fmt::print("  revenue {}{} | new subscribers {}{} | active users {}{} | churn {}{}", number(v.total_revenue),
               change_of(r, "revenue.total"), v.new_subscribers, change_of(r, "revenue.new_subscribers"), v.active_users,
               change_of(r, "revenue.active_users"), v.churn_count, change_of(r, "revenue.churn_count"));
    if (v.churn_rate) fmt::print(" = {:.2f}%", 100 * *v.churn_rate);
    if (v.revenue_per_active_user) fmt::print(" | per active user {:.2f}", *v.revenue_per_active_user);
    fmt::print("\n");
    for (const auto& p : v.plans)
      fmt::print("  plan {:<19} {:>12}{} active {}\n", p.plan, number(p.revenue), change_of(r, "revenue.plan." + p.plan + ".revenue"),
                 p.active_users);
  } else {
    fmt::print("  no revenue records\n");
  }
}

int run_aggregate(Context& ctx, const AggregateOptions& o) {
  auto zone = automation::TimeZone::locate(ctx.config.time_zone);
  if (!zone) return ctx.error(automation::with_context(zone.error(), "time_zone"));
  auto selected = select_periods(o.period, *zone, automation::SystemClock::instance().now());
  if (!selected) return ctx.error(selected.error());
  const auto& periods = *selected;
  auto store = ctx.open_store(Context::Access::write);
  if (!store) return ctx.error(store.error());
  mx::MetricsAggregator agg(**store, automation::SystemClock::instance(), {.time_zone = *zone});
  boost::json::array docs;
  int rc = ex_ok;
  for (const auto& p : periods) {
    auto r = agg.aggregate(p, o.force);
    if (!r) {
      if (periods.size() == 1) return ctx.error(r.error());
      rc = ctx.error(automation::with_context(r.error(), p.key()));
      continue;
    }
    if (!r->reused)
      ctx.audit(**store, "metrics.aggregate", "rollup:" + p.key(), automation::storage::AuditOutcome::success, r->why,
                {{"period", p.key()}, {"time_zone", r->time_zone}, {"force", o.force}, {"events", r->usage.events}});
    if (ctx.global.json)
      docs.push_back(mx::to_json(*r));
    else
      print_rollup(*r);
  }
  if (ctx.global.json) ctx.print_json(boost::json::object{{"rollups", std::move(docs)}});
  return rc;
}

}  // namespace

void register_aggregate(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<AggregateOptions>();
  auto* cmd = app.add_subcommand("aggregate", "Roll usage events and revenue up by day, ISO week, month or date range");
  add_period_options(cmd, o->period);
  cmd->add_flag("--force", o->force, "Recompute even when the stored rollup is current or another process holds the period");
  cmd->callback([&ctx, o] { ctx.run = [&ctx, o] { return run_aggregate(ctx, *o); }; });
}

}  // namespace autoctl
