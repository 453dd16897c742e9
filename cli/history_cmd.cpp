// autoctl history list | stats | prune | record
#include "context.hpp"

#include <automation/core/json.hpp>
#include <automation/core/time.hpp>
#include <automation/resilience/task_history.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

namespace autoctl {
namespace st = automation::storage;
namespace rs = automation::resilience;
using automation::errc;

namespace {

struct Filters {
  std::string since, until, domain, action, outcome;
  std::size_t limit = 50;
  std::size_t top = 5;
  std::uint64_t min_support = 3;
  std::string older_than;
  bool dry_run = false;
  // record
  std::string params = "{}", error, duration = "0s", correlation_id;
  std::optional<double> impact;
};

automation::Result<void> parse_range(const Filters& f, std::optional<automation::TimePoint>& since,
                                     std::optional<automation::TimePoint>& until) {
  auto s = Context::time_option(f.since, "--since");
  if (!s) return s.error();
  since = *s;
  auto u = Context::time_option(f.until, "--until");
  if (!u) return u.error();
  until = *u;
  return {};
}

std::string ms_text(automation::Duration d) {
  const double ms = std::chrono::duration<double, std::milli>(d).count();
  if (ms >= 1000) return fmt::format("{:.2f}s", ms / 1000);
  return fmt::format("{:.1f}ms", ms);
}

std::string pct(double x) { return fmt::format("{:.1f}%", 100 * x); }

std::string change_text(const std::optional<rs::Change>& c, bool percent_points = false) {
  if (!c) return "";
  if (percent_points) return fmt::format(" ({:+.1f} pts)", 100 * c->absolute);
  if (c->relative) return fmt::format(" ({:+.0f}%)", 100 * *c->relative);
  return fmt::format(" ({:+g})", c->absolute);
}

int history_list(Context& ctx, const Filters& f) {
  st::TaskQuery q;
  if (auto r = parse_range(f, q.since, q.until); !r) return ctx.error(r.error());
  if (!f.domain.empty()) q.domain = f.domain;
  if (!f.action.empty()) q.action = f.action;
  if (!f.outcome.empty()) {
    auto o = st::parse_task_outcome(f.outcome);
    if (!o) return ctx.error(automation::with_context(o.error(), "--outcome"));
    q.outcome = *o;
  }
  q.limit = f.limit;
  auto store = ctx.open_store(Context::Access::read);
  if (!store) return ctx.error(store.error());
  auto records = (*store)->query_tasks(q);
  if (!records) return ctx.error(records.error());
  if (ctx.global.json) {
    boost::json::array arr;
    for (const auto& r : *records) arr.push_back(rs::to_json(r));
    ctx.print_json(boost::json::object{{"records", arr}});
    return ex_ok;
  }
  if (records->empty()) fmt::print(stderr, "no task records match\n");
  for (const auto& r : *records)
    fmt::print("{:>7}  {}  {:<10} {:<28} {:<9} {:>9}  {}\n", r.id, automation::format_timestamp(r.started), r.domain, r.action,
               st::to_string(r.outcome), ms_text(r.duration), r.error);
  return ex_ok;
}

int history_stats(Context& ctx, const Filters& f) {
  st::TaskStatsQuery q;
  if (auto r = parse_range(f, q.since, q.until); !r) return ctx.error(r.error());
  if (!f.domain.empty()) q.domain = f.domain;
  if (!f.action.empty()) q.action = f.action;
  q.top_failures = q.top_params = f.top;
  q.min_support = f.min_support;
  auto store = ctx.open_store(Context::Access::read);
  if (!store) return ctx.error(store.error());
  rs::TaskHistory history(**store, automation::SystemClock::instance());
  auto report = history.stats(q);
  if (!report) return ctx.error(report.error());
  if (ctx.global.json) {
    ctx.print_json(rs::to_json(*report));
    return ex_ok;
  }
  if (report->groups.empty()) {
    fmt::print(stderr, "no task records in the range\n");
    return ex_ok;
  }
  if (report->since)
    fmt::print("from {} to {} (changes against the {} before)\n\n", automation::format_timestamp(*report->since),
               automation::format_timestamp(*report->until),
               automation::format_duration(std::chrono::duration_cast<automation::Millis>(*report->until - *report->since)));
  for (const auto& g : report->groups) {
    const auto& s = g.current;
    fmt::print("{}/{}\n", s.domain, s.action);
    fmt::print("  runs          {}{}  ({} succeeded, {} failed, {} timed out, {} cancelled)\n", s.count, change_text(g.count), s.successes,
               s.failures, s.timeouts, s.cancelled);
    fmt::print("  success rate  {}{}\n", pct(s.success_rate), change_text(g.success_rate, true));
    fmt::print("  duration      mean {}{}, p50 {}, p95 {}{}\n", ms_text(s.mean_duration), change_text(g.mean_duration_ms),
               ms_text(s.p50_duration), ms_text(s.p95_duration), change_text(g.p95_duration_ms));
    if (s.mean_impact)
      fmt::print("  impact        mean {:.3g} over {} runs{}\n", *s.mean_impact, s.impact_samples, change_text(g.mean_impact));
    for (const auto& fr : s.top_failures) fmt::print("  failure       {:>5} x {}\n", fr.count, fr.reason);
    for (const auto& p : s.success_params)
      fmt::print("  worked with   {}={}: {} of {} succeeded ({}, lift {:.2f})\n", p.key, p.value, p.successes, p.support,
                 pct(p.success_rate), p.lift);
    fmt::print("\n");
  }
  return ex_ok;
}

int history_prune(Context& ctx, const Filters& f) {
  auto age = automation::parse_duration(f.older_than);
  if (!age) return ctx.error(automation::with_context(age.error(), "--older-than"));
  auto store = ctx.open_store(Context::Access::write);
  if (!store) return ctx.error(store.error());
  const auto cutoff = automation::SystemClock::instance().now() - *age;
  if (f.dry_run) {
    auto n = (*store)->query_tasks({.until = cutoff, .limit = 0});
    if (!n) return ctx.error(n.error());
    if (ctx.global.json) {
      ctx.print_json(boost::json::object{{"would_delete", n->size()}, {"before", automation::format_timestamp(cutoff)}});
    } else {
      fmt::print("would delete {} task records that started before {}\n", n->size(), automation::format_timestamp(cutoff));
    }
    return ex_ok;
  }
  rs::TaskHistory history(**store, automation::SystemClock::instance());
  auto n = history.prune_older_than(*age);
  const std::string why = fmt::format("retention: older than {}", f.older_than);
  if (!n) {
    ctx.audit(**store, "history.prune", "history", st::AuditOutcome::failure, n.error().message, {{"older_than", f.older_than}});
    return ctx.error(n.error());
  }
  ctx.audit(**store, "history.prune", "history", st::AuditOutcome::success, why,
            {{"older_than", f.older_than}, {"before", automation::format_timestamp(cutoff)}, {"deleted", *n}});
  if (ctx.global.json) {
    ctx.print_json(boost::json::object{{"deleted", *n}, {"before", automation::format_timestamp(cutoff)}});
  } else if (!ctx.global.quiet) {
    fmt::print("deleted {} task records that started before {}\n", *n, automation::format_timestamp(cutoff));
  }
  return ex_ok;
}

int history_record(Context& ctx, const Filters& f) {
  auto d = automation::parse_duration(f.duration);
  if (!d) return ctx.error(automation::with_context(d.error(), "--duration"));
  auto o = st::parse_task_outcome(f.outcome.empty() ? "success" : f.outcome);
  if (!o) return ctx.error(automation::with_context(o.error(), "--outcome"));
  st::TaskRecord r;
  r.domain = f.domain;
  r.action = f.action;
  r.params = f.params;
  r.outcome = *o;
  r.error = f.error;
  r.ended = automation::SystemClock::instance().now();
  r.duration = *d;
  r.started = r.ended - *d;
  r.impact = f.impact;
  r.correlation_id = f.correlation_id;
  auto store = ctx.open_store(Context::Access::write);
  if (!store) return ctx.error(store.error());
  rs::TaskHistory history(**store, automation::SystemClock::instance());
  auto id = history.record(r);
  if (!id) return ctx.error(id.error());
  if (ctx.global.json) ctx.print_json(boost::json::object{{"id", *id}});
  return ex_ok;
}

}  // namespace

void register_history(CLI::App& app, Context& ctx) {
  auto* h = app.add_subcommand("history", "Task history: what ran, how it ended, and what it teaches");
  h->require_subcommand(1);
  auto f = std::make_shared<Filters>();
  auto add_filters = [&](CLI::App* c) {
    c->add_option("--since", f->since, "From this time: ISO-8601, a date, or a duration ago (24h, 7d)");
    c->add_option("--until", f->until, "Before this time (same forms)");
    c->add_option("--domain", f->domain, "Only this domain (workflow, scaler, healer, ...)");
    c->add_option("--action", f->action, "Only this action");
  };
  auto* list = h->add_subcommand("list", "List task records, newest first");
  add_filters(list);
  list->add_option("--outcome", f->outcome, "Only success, failure, timeout or cancelled");
  list->add_option("--limit", f->limit, "At most this many (0: all)")->capture_default_str();
  list->callback([&ctx, f] { ctx.run = [&ctx, f] { return history_list(ctx, *f); }; });

  auto* stats = h->add_subcommand("stats", "Statistics per domain and action, with the change against the previous range");
  add_filters(stats);
  stats->add_option("--top", f->top, "Failure reasons and parameter values shown per action")->capture_default_str();
  stats->add_option("--min-support", f->min_support, "Runs a parameter value needs before it is reported")->capture_default_str();
  stats->footer(
      "Examples:\n  autoctl history stats --since 7d\n  autoctl history stats --domain workflow --action deploy-production --json");
  stats->callback([&ctx, f] { ctx.run = [&ctx, f] { return history_stats(ctx, *f); }; });

  auto* prune = h->add_subcommand("prune", "Delete task records older than a duration");
  prune->add_option("--older-than", f->older_than, "Age, e.g. 90d")->required();
  prune->add_flag("--dry-run", f->dry_run, "Only count what would be deleted");
  prune->callback([&ctx, f] { ctx.run = [&ctx, f] { return history_prune(ctx, *f); }; });

  auto* rec = h->add_subcommand("record", "Record one execution (for scripts and cron jobs)");
  rec->add_option("--domain", f->domain, "Domain")->required();
  rec->add_option("--action", f->action, "Action")->required();
  rec->add_option("--outcome", f->outcome, "success (default), failure, timeout or cancelled");
  rec->add_option("--duration", f->duration, "How long it ran (it ended now)")->capture_default_str();
  rec->add_option("--params", f->params, "Parameters as a JSON object")->capture_default_str();
  rec->add_option("--error", f->error, "Why it failed");
  rec->add_option("--impact", f->impact, "An impact score");
  rec->add_option("--correlation-id", f->correlation_id, "Correlation id");
  rec->footer("Example:\n  autoctl history record --domain backup --action nightly --duration 12m --params '{\"target\":\"s3\"}'");
  rec->callback([&ctx, f] { ctx.run = [&ctx, f] { return history_record(ctx, *f); }; });
}

}  // namespace autoctl
