// autoctl audit list
#include "components.hpp"
#include "context.hpp"

#include <automation/core/json.hpp>
#include <automation/core/time.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

namespace autoctl {
namespace st = automation::storage;

namespace {

struct ListOptions {
  std::string since, until, actor, action, resource, outcome;
  std::size_t limit = 50;
  bool oldest_first = false;
};

int audit_list(Context& ctx, const ListOptions& o) {
  st::AuditQuery q;
  auto since = Context::time_option(o.since, "--since");
  if (!since) return ctx.error(since.error());
  q.since = *since;
  auto until = Context::time_option(o.until, "--until");
  if (!until) return ctx.error(until.error());
  q.until = *until;
  if (!o.outcome.empty()) {
    auto out = st::parse_audit_outcome(o.outcome);
    if (!out) return ctx.error(automation::with_context(out.error(), "--outcome"));
    q.outcome = *out;
  }
  if (!o.actor.empty()) q.actor = o.actor;
  if (!o.action.empty()) q.action = o.action;
  if (!o.resource.empty()) q.resource = o.resource;
  q.limit = o.limit;
  q.newest_first = !o.oldest_first;

  auto store = ctx.open_store(Context::Access::read);
  if (!store) return ctx.error(store.error());
  auto records = (*store)->query_audit(q);
  if (!records) return ctx.error(records.error());

  if (ctx.global.json) {
    boost::json::array arr;
    for (const auto& r : *records) {
      arr.push_back(audit_record_json(r));
    }
    ctx.print_json(boost::json::object{{"records", arr}});
  } else {
    if (records->empty()) fmt::print(stderr, "no audit records match\n");
    for (const auto& r : *records) {
      fmt::print("{:>6}  {}  {:<8} {:<20} {:<22} {:<24} {}\n", r.id, automation::format_timestamp(r.time), st::to_string(r.outcome),
                 r.actor, r.action, r.resource, r.reason);
    }
  }
  return ex_ok;
}

}  // namespace

void register_audit(CLI::App& app, Context& ctx) {
  auto* audit = app.add_subcommand("audit", "The audit trail of every mutating action");
  audit->require_subcommand(1);
  auto o = std::make_shared<ListOptions>();
  auto* list = audit->add_subcommand("list", "List audit records, newest first");
  list->add_option("--since", o->since, "From this time: ISO-8601 (2026-11-23T00:00:00Z), a date, or a duration ago (24h, 7d)");
  list->add_option("--until", o->until, "Before this time (same forms as --since)");
  list->add_option("--actor", o->actor, "Only this actor (a trailing * matches a prefix: 'user:*')");
  list->add_option("--action", o->action, "Only this action (store.migrate; a trailing * matches a prefix)");
  list->add_option("--resource", o->resource, "Only this resource (a trailing * matches a prefix: 'breaker:*')");
  list->add_option("--outcome", o->outcome, "Only success, failure or denied");
  list->add_option("--limit", o->limit, "At most this many records (0: all)")->capture_default_str();
  list->add_flag("--oldest-first", o->oldest_first, "Oldest first");
  list->footer("Examples:\n  autoctl audit list --since 24h\n  autoctl audit list --resource 'breaker:*' --outcome failure --json");
  list->callback([&ctx, o] {
    ctx.remote_capable = true;
    ctx.run = [&ctx, o] {
      if (!ctx.remote()) return audit_list(ctx, *o);
      if (o->until.size() || o->oldest_first)
        return ctx.error(automation::fail(automation::errc::invalid_argument, "--until and --oldest-first do not go through --server"));
      return ctx.print_api(ctx.api(
          "GET", "/api/v1/audit" + Context::query({{"since", o->since},
                                                   {"actor", o->actor},
                                                   {"action", o->action},
                                                   {"resource", o->resource},
                                                   {"outcome", o->outcome},
                                                   {"limit", o->limit ? std::to_string(std::min<std::size_t>(o->limit, 1000)) : "1000"}})));
    };
  });
}

}  // namespace autoctl
