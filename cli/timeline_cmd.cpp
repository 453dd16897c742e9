// autoctl timeline --run ID | --alert ID | --since T [--until T]: what happened around an incident.
#include "context.hpp"

#include <automation/core/time.hpp>
#include <automation/intelligence/timeline.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

namespace autoctl {

namespace it = automation::intelligence;
namespace bj = boost::json;
using automation::errc;

namespace {

struct TimelineOptions {
  std::int64_t run = 0, alert = 0;
  std::string since, until, before = "30m", after = "10m";
  std::size_t limit = 500;
};

void print(const it::Timeline& t) {
  fmt::print("{} to {}{}\n", automation::format_timestamp(t.from), automation::format_timestamp(t.until),
             t.focus.empty() ? "" : fmt::format(", around {}", t.focus));
  if (t.entries.empty()) fmt::print("  nothing was recorded in this window\n");
  for (const auto& e : t.entries)
    fmt::print("{} {} {:<7} {:<18} {:<22} {}\n", e.focus ? ">" : " ", automation::format_timestamp(e.time), e.severity, e.kind, e.subject,
               e.summary);
  if (t.dropped_before || t.dropped_after)
    fmt::print("  ({} earlier and {} later entries left out by --limit)\n", t.dropped_before, t.dropped_after);
  if (t.truncated) fmt::print("  (a source had more records in this window than a timeline reads: some may be missing; narrow it)\n");
}

int run_timeline(Context& ctx, const TimelineOptions& o) {
  if ((o.run != 0) + (o.alert != 0) + !o.since.empty() != 1)
    return ctx.error(automation::fail(errc::invalid_argument, "give one of --run ID, --alert ID or --since TIME"));
  if (!o.until.empty() && o.since.empty())
    return ctx.error(
        automation::fail(errc::invalid_argument, "--until goes with --since; around a run or an alert use --before and --after"));
  if (o.limit == 0) return ctx.error(automation::fail(errc::invalid_argument, "--limit must be at least 1"));
  if (ctx.remote())
    return ctx.print_api(ctx.api("GET", "/api/v1/intelligence/timeline" + Context::query({{"run", o.run ? std::to_string(o.run) : ""},
                                                                                          {"alert", o.alert ? std::to_string(o.alert) : ""},
                                                                                          {"since", o.since},
                                                                                          {"until", o.until},
                                                                                          {"before", o.before},
                                                                                          {"after", o.after},
                                                                                          {"limit", std::to_string(o.limit)}})));
  auto before = automation::parse_duration(o.before);
  if (!before) return ctx.error(automation::with_context(before.error(), "--before"));
  auto after = automation::parse_duration(o.after);
  if (!after) return ctx.error(automation::with_context(after.error(), "--after"));
  auto store = ctx.open_store_or_empty();
  if (!store) return ctx.error(store.error());
  const auto now = automation::SystemClock::instance().now();
  it::TimelineOptions options;
  options.limit = o.limit;
  automation::Result<it::Timeline> t = automation::fail(errc::internal, "no timeline");
  if (o.run) {
    t = it::timeline_for_run(**store, o.run, now, *before, *after, options);
  } else if (o.alert) {
    t = it::timeline_for_alert(**store, o.alert, now, *before, *after, options);
  } else {
    auto since = Context::time_option(o.since, "--since");
    if (!since) return ctx.error(since.error());
    auto until = Context::time_option(o.until, "--until");
    if (!until) return ctx.error(until.error());
    t = it::timeline(**store, **since, until->value_or(now), options);
  }
  if (!t) return ctx.error(t.error());
  if (ctx.global.json)
    ctx.print_json(it::to_json(*t));
  else
    print(*t);
  return ex_ok;
}

}  // namespace

void register_timeline(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<TimelineOptions>();
  auto* cmd =
      app.add_subcommand("timeline", "What happened around a failed run, an alert or a time range, in time order (a post-incident review)");
  cmd->add_option("--run", o->run, "Around this workflow run");
  cmd->add_option("--alert", o->alert, "Around this alert");
  cmd->add_option("--since", o->since, "From this time (ISO-8601, or a duration ago: 2h)");
  cmd->add_option("--until", o->until, "Until this time (default: now)");
  cmd->add_option("--before", o->before, "With --run or --alert: this long before it began")->capture_default_str();
  cmd->add_option("--after", o->after, "With --run or --alert: this long after it ended")->capture_default_str();
  cmd->add_option("--limit", o->limit, "At most this many entries")->capture_default_str();
  cmd->footer(
      "Sources: workflow runs (deploys among them), failed tasks, circuit breaker transitions, health changes and healing steps,\n"
      "scaling changes, alerts and the audit trail (failed logins summed up). Examples:\n"
      "  autoctl timeline --run 42\n  autoctl timeline --alert 7 --before 1h\n  autoctl timeline --since 2h --json");
  cmd->callback([&ctx, o] {
    ctx.remote_capable = true;
    ctx.run = [&ctx, o] { return run_timeline(ctx, *o); };
  });
}

}  // namespace autoctl
