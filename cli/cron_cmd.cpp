// autoctl cron next "EXPR" [--from TIME] [--tz ZONE] [--count N]
#include "context.hpp"

#include <automation/core/time.hpp>
#include <automation/workflow/cron.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

namespace autoctl {

namespace {
struct NextOptions {
  std::string expr, from, tz;  // tz empty: the configured time_zone
  std::size_t count = 5;
};
}  // namespace

void register_cron(CLI::App& app, Context& ctx) {
  auto* cron = app.add_subcommand("cron", "Check cron expressions and natural schedules");
  cron->require_subcommand(1);
  auto o = std::make_shared<NextOptions>();
  auto* next = cron->add_subcommand("next", "The next fire times strictly after a time (default now)");
  next->add_option("expression", o->expr, "A cron expression (5 or 6 fields, @daily, ...) or a natural form (\"daily at 03:00\")")
      ->required();
  next->add_option("--from", o->from, "Start after this time: ISO-8601, a date, now, or a duration ago (24h)");
  next->add_option("--tz", o->tz, "IANA time zone the expression is read in (default: config time_zone, UTC)");
  next->add_option("--count", o->count, "How many fire times (default 5)")->check(CLI::Range(1, 10000));
  next->footer(
      "Examples:\n  autoctl cron next \"*/15 * * * *\"\n  autoctl cron next \"30 2 * * *\" --tz America/New_York --from 2026-03-07 "
      "--count 3\n  autoctl cron next \"mondays at 09:00\" --json");
  next->callback([&ctx, o] {
    ctx.run = [&ctx, o]() -> int {
      auto expr = automation::workflow::CronExpression::parse(o->expr);
      if (!expr) return ctx.error(expr.error());
      auto zone = automation::TimeZone::locate(o->tz.empty() ? ctx.config.time_zone : o->tz);
      if (!zone) return ctx.error(automation::with_context(zone.error(), "--tz"));
      automation::TimePoint from = automation::SystemClock::instance().now();
      if (!o->from.empty()) {
        auto t = automation::parse_time_spec(o->from, from);
        if (!t) return ctx.error(automation::with_context(t.error(), "--from"));
        from = *t;
      }
      const auto fires = expr->next_n(from, o->count, *zone);
      if (ctx.global.json) {
        boost::json::array a;
        for (auto t : fires) a.push_back(boost::json::object{{"utc", automation::format_timestamp(t)}, {"local", zone->format(t)}});
        ctx.print_json(boost::json::object{{"expression", expr->text()},
                                           {"normalized", expr->normalized()},
                                           {"time_zone", zone->name()},
                                           {"fixed_time", expr->fixed_time()},
                                           {"from", automation::format_timestamp(from)},
                                           {"next", std::move(a)}});
      } else {
        if (expr->at_reboot()) fmt::print("@reboot: fires once when the scheduler starts, never on the clock\n");
        for (auto t : fires) fmt::print("{}  ({})\n", zone->format(t), automation::format_timestamp(t));
      }
      if (fires.empty() && !expr->at_reboot()) {
        if (!ctx.global.json) fmt::print(stderr, "\"{}\" never fires after {}\n", expr->text(), automation::format_timestamp(from));
        return ex_no;
      }
      return ex_ok;
    };
  });
}

}  // namespace autoctl
