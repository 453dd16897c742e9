// autoctl health [TARGET] | heal run [--for D] [--dry-run] | heal history [TARGET] | heal pause|resume TARGET
#include "components.hpp"
#include "context.hpp"
#include "workflow_support.hpp"

#include <automation/core/json.hpp>
#include <automation/core/time.hpp>
#include <automation/healing/self_healer.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

namespace autoctl {
namespace hl = automation::healing;
namespace st = automation::storage;
namespace bj = boost::json;
using automation::errc;
using automation::Result;

namespace {

void print_record(const st::HealingRecord& r) {
  const auto what = r.kind == "action" ? fmt::format("{} {}", r.action, r.outcome) : r.kind == "state" ? r.state : r.kind;
  fmt::print("{}  {:<16} {:<20} {}\n", automation::format_timestamp(r.time), r.target, what, r.reason);
  if (!r.error.empty()) fmt::print("{:>26}error: {}\n", "", r.error);
}

// ---- health ------------------------------------------------------------------------------------

int run_health(Context& ctx, const std::string& only) {
  if (ctx.remote()) {
    // The daemon's view: what its healer last saw of each target.
    auto all = ctx.api("GET", "/api/v1/health");
    if (!all) return ctx.error(all.error());
    if (only.empty()) {
      ctx.print_json(*all);
      return all->at("healthy") == true ? ex_ok : ex_no;
    }
    for (const auto& t : all->at("items").as_array())
      if (t.at("target").is_string() && t.at("target").as_string() == only) {
        ctx.print_json(t);
        return t.at("state") == "healthy" || t.at("state") == "unknown" ? ex_ok : ex_no;
      }
    return ctx.error(automation::fail(errc::not_found, fmt::format("unknown health target \"{}\"", only)));
  }
  auto setup = healing_setup(ctx);
  if (!setup) return ctx.error(setup.error());
  auto opened = ctx.open_store_or_empty();
  if (!opened) return ctx.error(opened.error());
  auto& store = *opened;
  // The same checks `heal run` makes, so a broken file is refused here too.
  automation::healing::Supervisor supervisor(automation::SystemClock::instance());
  for (const auto& svc : setup->config.services) (void)supervisor.add(svc);
  hl::HealerOptions options;
  options.supervisor = &supervisor;
  options.start_workflow = [](const std::string&, const std::map<std::string, std::string>&, const std::string&) -> Result<std::int64_t> {
    return automation::fail(errc::unavailable, "autoctl health only looks");
  };
  hl::SelfHealer healer(*store, automation::SystemClock::instance(), options);
  if (auto r = healer.add_all(setup->targets); !r) return ctx.error(automation::Error(errc::config, r.error().message));
  bool found = only.empty();
  bool all_ok = true;
  bj::array items;
  if (!ctx.global.json) fmt::print("targets from {}\n", setup->source);
  for (const auto& t : setup->targets) {
    if (!only.empty() && t.name != only) continue;
    found = true;
    bj::object item{{"target", t.name}, {"description", t.description}, {"probe", t.liveness.describe()}};
    std::string now_says;
    if (t.liveness.kind == hl::ProbeKind::process && !t.liveness.service.empty()) {
      now_says = "supervised by `autoctl heal run` (or the daemon): not probed here";
      item["live"] = nullptr;
    } else {
      const auto r = hl::run_probe(t.liveness);
      all_ok = all_ok && r.ok;
      item["live"] = r.ok;
      item["detail"] = r.detail;
      now_says = fmt::format("{}: {}", r.ok ? "ok" : "FAILING", r.detail);
    }
    if (t.readiness) {
      const auto r = hl::run_probe(*t.readiness);
      item["ready"] = r.ok;
      now_says += fmt::format("; ready: {}", r.ok ? "yes" : "no (" + r.detail + ")");
    }
    // What the healer last recorded, and its last actions.
    st::HealingQuery q;
    q.target = t.name;
    q.kind = "state";
    q.limit = 1;
    auto state = store->list_healing(q);
    if (!state) return ctx.error(state.error());
    q.kind = "action";
    q.limit = 3;
    auto actions = store->list_healing(q);
    if (!actions) return ctx.error(actions.error());
    item["recorded_state"] = state->empty() ? bj::value(nullptr) : bj::value(healing_record_json(state->front()));
    bj::array acts;
    for (const auto& a : *actions) acts.push_back(healing_record_json(a));
    item["last_actions"] = std::move(acts);
    if (ctx.global.json) {
      items.push_back(std::move(item));
      continue;
    }
    fmt::print("{:<16} {}\n", t.name, t.liveness.describe());
    fmt::print("{:<16}   now: {}\n", "", now_says);
    if (!state->empty())
      fmt::print("{:<16}   healer: {} since {} ({})\n", "", state->front().state, automation::format_timestamp(state->front().time),
                 state->front().reason);
    for (const auto& a : *actions)
      fmt::print("{:<16}   {} {} {} {}{}\n", "", automation::format_timestamp(a.time), a.action, a.outcome, a.reason,
                 a.error.empty() ? "" : ": " + a.error);
  }
  if (!found) return ctx.error(automation::fail(errc::not_found, fmt::format("unknown health target \"{}\"", only)));
  if (ctx.global.json) ctx.print_json(bj::object{{"source", setup->source}, {"healthy", all_ok}, {"targets", std::move(items)}});
  return all_ok ? ex_ok : ex_no;
}

// ---- heal run ----------------------------------------------------------------------------------

struct RunOptions {
  std::string duration;
  bool dry_run = false;
};

int run_heal(Context& ctx, const RunOptions& o) {
  std::optional<automation::Millis> limit;
  if (!o.duration.empty()) {
    auto d = automation::parse_duration(o.duration);
    if (!d) return ctx.error(automation::with_context(d.error(), "--for"));
    limit = *d;
  }
  auto setup = healing_setup(ctx);
  if (!setup) return ctx.error(setup.error());
  auto catalog = load_catalog(ctx);
  if (!catalog) return ctx.error(catalog.error());
  auto host = open_engine(ctx, *catalog);
  if (!host) return ctx.error(host.error());
  auto& clock = automation::SystemClock::instance();
  hl::Supervisor supervisor(clock);
  for (const auto& svc : setup->config.services)
    if (auto r = supervisor.add(svc); !r) return ctx.error(automation::Error(errc::config, r.error().message));
  hl::HealerOptions options;
  options.supervisor = &supervisor;
  auto& engine = *host->engine;
  options.start_workflow = [&engine](const std::string& name, const std::map<std::string, std::string>& params, const std::string& reason) {
    automation::workflow::StartOptions so;
    so.params = params;
    so.trigger = "healer: " + reason;
    return engine.start(name, so);
  };
  options.alert = [&ctx](const std::string& target, const std::string& what, const std::string& reason) {
    if (!ctx.global.quiet) fmt::print(stderr, "autoctl: health {}: {}: {}\n", what, target, reason);
  };
  hl::SelfHealer healer(*host->store, clock, options);
  auto targets = setup->targets;
  if (o.dry_run)
    for (auto& t : targets) t.dry_run = true;
  if (auto r = healer.add_all(targets); !r) return ctx.error(automation::Error(errc::config, r.error().message));
  for (const auto& svc : setup->config.services) {
    auto started = supervisor.start(svc.name);
    if (!started) return ctx.error(started.error());
    if (!ctx.global.quiet) fmt::print(stderr, "autoctl: started service {} (pid {})\n", svc.name, started->pid);
  }
  if (!ctx.global.quiet)
    fmt::print(stderr, "autoctl: healing {} target{} from {}{}; Ctrl-C stops\n", targets.size(), targets.size() == 1 ? "" : "s",
               setup->source, o.dry_run ? " (dry run)" : "");
  StopSignals signals;
  const auto until = limit ? std::optional(std::chrono::steady_clock::now() + *limit) : std::nullopt;
  while (!stop_signal() && (!until || std::chrono::steady_clock::now() < *until)) {
    auto report = healer.tick();
    // A store that is busy or failing: say so and keep watching.
    for (const auto& e : report.errors) fmt::print(stderr, "autoctl: healer: {}\n", e.message);
    for (const auto& r : report.records) {
      if (ctx.global.json)
        fmt::print("{}\n", automation::json::dump(healing_record_json(r)));
      else
        print_record(r);
    }
    std::fflush(stdout);
    (void)engine.poll();
    auto next = healer.next_due().value_or(clock.now() + std::chrono::seconds(1));
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - clock.now());
    wait = std::clamp(wait, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
    engine.wait(wait);
  }
  return ex_ok;  // the services stop with the supervisor
}

// ---- history, pause, resume --------------------------------------------------------------------

struct HistoryOptions {
  std::string target;
  std::size_t limit = 50;
  std::string since;
  bool actions = false;
};

int run_history(Context& ctx, const HistoryOptions& o) {
  auto opened = ctx.open_store_or_empty();
  if (!opened) return ctx.error(opened.error());
  auto& store = *opened;
  st::HealingQuery q;
  if (!o.target.empty()) q.target = o.target;
  if (o.actions) q.kind = "action";
  q.limit = o.limit;
  auto since = Context::time_option(o.since, "--since");
  if (!since) return ctx.error(since.error());
  q.since = *since;
  auto list = store->list_healing(q);
  if (!list) return ctx.error(list.error());
  if (ctx.global.json) {
    bj::array items;
    for (auto it = list->rbegin(); it != list->rend(); ++it) items.push_back(healing_record_json(*it));
    ctx.print_json(bj::object{{"history", std::move(items)}});
    return ex_ok;
  }
  if (list->empty()) fmt::print("no healing history\n");
  for (auto it = list->rbegin(); it != list->rend(); ++it) print_record(*it);
  return ex_ok;
}

struct PauseOptions {
  std::string target, duration, reason;
};

int run_pause(Context& ctx, const PauseOptions& o, bool pause) {
  std::optional<automation::TimePoint> until;
  auto& clock = automation::SystemClock::instance();
  if (!o.duration.empty()) {
    auto d = automation::parse_duration(o.duration);
    if (!d) return ctx.error(automation::with_context(d.error(), "--for"));
    until = clock.now() + *d;
  }
  auto setup = healing_setup(ctx);
  if (!setup) return ctx.error(setup.error());
  auto store = ctx.open_store(Context::Access::write);
  if (!store) return ctx.error(store.error());
  bool known = false;
  for (const auto& t : setup->targets) known = known || t.name == o.target;
  if (!known) {
    std::string names;
    for (const auto& t : setup->targets) names += (names.empty() ? "" : ", ") + t.name;
    return ctx.error(automation::fail(errc::not_found, fmt::format("unknown health target \"{}\" (targets: {})", o.target, names)));
  }
  // Only the target itself is needed to record its pause: no services are started here.
  hl::TargetSpec only;
  for (const auto& t : setup->targets)
    if (t.name == o.target) only = t;
  only.ladder.clear();
  only.depends_on.clear();
  only.service.clear();
  only.liveness = hl::ProbeSpec{.kind = hl::ProbeKind::memory, .max_percent = 100};
  only.readiness.reset();
  hl::SelfHealer healer(**store, clock);
  if (auto r = healer.add(only); !r) return ctx.error(r.error());
  auto r = pause ? healer.pause(o.target, until, ctx.actor(), o.reason) : healer.resume(o.target, ctx.actor(), o.reason);
  if (!r) return ctx.error(r.error());
  ctx.audit(**store, pause ? "heal.pause" : "heal.resume", o.target, st::AuditOutcome::success, r->reason,
            {{"until", until ? bj::value(automation::format_timestamp(*until)) : bj::value(nullptr)}});
  if (ctx.global.json)
    ctx.print_json(healing_record_json(*r));
  else
    fmt::print("{} {}{} by {}: {}\n", o.target, pause ? "paused" : "resumed", until ? " until " + automation::format_timestamp(*until) : "",
               r->actor, r->reason);
  return ex_ok;
}

}  // namespace

void register_health(CLI::App& app, Context& ctx) {
  auto target = std::make_shared<std::string>();
  auto* health = app.add_subcommand(
      "health", "Every health target now: its probe's answer, the healer's recorded state and last actions (exit 1 when one fails)");
  health->add_option("target", *target, "Only this target");
  health->callback([&ctx, target] {
    ctx.remote_capable = true;
    ctx.run = [&ctx, target] { return run_health(ctx, *target); };
  });

  auto* heal = app.add_subcommand("heal", "The self-healer: run it, its history, pause and resume a target");
  heal->require_subcommand(1);
  auto ro = std::make_shared<RunOptions>();
  auto* run =
      heal->add_subcommand("run", "Supervise the configured services and heal every target in the foreground until Ctrl-C or SIGTERM");
  run->add_option("--for", ro->duration, "Stop after this long");
  run->add_flag("--dry-run", ro->dry_run, "Record the healing plan, carry nothing out");
  run->callback([&ctx, ro] { ctx.run = [&ctx, ro] { return run_heal(ctx, *ro); }; });

  auto ho = std::make_shared<HistoryOptions>();
  auto* history = heal->add_subcommand("history", "State changes, healing steps, pauses, oldest first");
  history->add_option("target", ho->target, "Only this target");
  history->add_option("--limit", ho->limit, "The newest this many (default 50; 0: all)");
  history->add_option("--since", ho->since, "From this time (ISO-8601, or a duration such as 24h)");
  history->add_flag("--actions", ho->actions, "Only healing steps");
  history->callback([&ctx, ho] { ctx.run = [&ctx, ho] { return run_history(ctx, *ho); }; });

  auto po = std::make_shared<PauseOptions>();
  auto* pause = heal->add_subcommand("pause", "Stop healing a target (a maintenance window with --for); every healer on the store obeys");
  pause->add_option("target", po->target, "The target")->required();
  pause->add_option("--for", po->duration, "Until this long from now (default: until resumed)");
  pause->add_option("--reason", po->reason, "Why (recorded)");
  pause->callback([&ctx, po] { ctx.run = [&ctx, po] { return run_pause(ctx, *po, true); }; });
  auto pr = std::make_shared<PauseOptions>();
  auto* resume = heal->add_subcommand("resume", "Heal a paused (or quarantined) target again");
  resume->add_option("target", pr->target, "The target")->required();
  resume->add_option("--reason", pr->reason, "Why (recorded)");
  resume->callback([&ctx, pr] { ctx.run = [&ctx, pr] { return run_pause(ctx, *pr, false); }; });
}

}  // namespace autoctl
