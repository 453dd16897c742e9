// autoctl schedule list | show NAME | pause NAME | resume NAME | fire NAME | tick [--at TIME] | run [--for D]
// autoctl emit EVENT [--data JSON] [--no-wait]
#include "context.hpp"
#include "workflow_support.hpp"

#include <automation/core/clock.hpp>
#include <automation/core/json.hpp>
#include <automation/core/time.hpp>
#include <automation/workflow/scheduler.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

#include <chrono>
#include <cstdio>

namespace autoctl {

namespace wf = automation::workflow;
namespace st = automation::storage;
namespace bj = boost::json;
using automation::Result;
using automation::TimePoint;

namespace {

// The system clock shifted so that it read `at` when the command started (`schedule tick --at`).
class ShiftedClock final : public automation::Clock {
 public:
  explicit ShiftedClock(TimePoint at) : offset_(at - std::chrono::system_clock::now()) {}
  TimePoint now() const noexcept override { return std::chrono::system_clock::now() + offset_; }

 private:
  automation::Duration offset_;
};

Result<const ScheduleEntry*> find_schedule(const std::vector<ScheduleEntry>& all, const std::string& name) {
  for (const auto& e : all)
    if (e.definition.name == name) return &e;
  std::vector<std::string> names;
  for (const auto& e : all) names.push_back(e.definition.name);
  return automation::fail(
      automation::errc::not_found,
      fmt::format("no schedule named \"{}\" (known: {}; add one in workflows_dir/schedules.json)", name, fmt::join(names, ", ")));
}

// The database opened read-only, or null when it does not exist yet.
Result<std::unique_ptr<st::Store>> open_existing(const Context& ctx) {
  auto store = ctx.open_store(Context::Access::read);
  if (!store && store.error().is(automation::errc::not_found)) return std::unique_ptr<st::Store>();
  return store;
}

// "TIME OUTCOME[ run N]: REASON" for a FireResult or a FireRecord.
template <class Fire>
std::string fire_line(const Fire& f) {
  return fmt::format("{} {}{}: {}", automation::format_timestamp(f.fire_time), f.outcome,
                     f.run_id ? fmt::format(" run {}", f.run_id) : std::string(), f.reason);
}

bj::object status_json(const ScheduleEntry& e, const st::ScheduleRecord* rec, TimePoint now) {
  auto o = wf::to_json(e.definition);
  o["source"] = e.source;
  o["trigger_text"] = e.definition.trigger_text();
  const bool paused = rec ? rec->paused : e.definition.paused;
  o["state"] = paused ? "paused" : "active";
  if (rec) {
    o["reason"] = rec->reason;
    o["consecutive_failures"] = rec->consecutive_failures;
    o["last_fire"] = when(rec->last_fire);
    o["updated_by"] = rec->updated_by;
  }
  if (!paused) {
    const TimePoint after = rec && rec->last_fire > now ? rec->last_fire : now;
    if (auto t = wf::next_fire_time(e.definition, after)) o["next_fire"] = automation::format_timestamp(*t);
  }
  return o;
}

// An engine and a scheduler for the given schedules, on the system clock or a shifted one.
struct Host {
  std::unique_ptr<st::Store> store;
  std::unique_ptr<automation::Clock> clock;
  std::unique_ptr<wf::WorkflowEngine> engine;
  std::unique_ptr<wf::Scheduler> scheduler;
  std::vector<st::RunRecord> finished;
};

Result<std::unique_ptr<Host>> make_host(Context& ctx, const std::vector<ScheduleEntry>& schedules, std::optional<TimePoint> at) {
  auto h = std::make_unique<Host>();
  auto cat = load_catalog(ctx);
  if (!cat) return cat.error();
  if (at) h->clock = std::make_unique<ShiftedClock>(*at);
  auto opened = open_engine(ctx, *cat, h->clock.get());
  if (!opened) return opened.error();
  h->store = std::move(opened->store);
  h->engine = std::move(opened->engine);
  h->engine->on_run_finished([raw = h.get()](const st::RunRecord& r) { raw->finished.push_back(r); });
  wf::Scheduler::Options so;
  so.actor = "system:scheduler (" + ctx.actor() + ")";
  h->scheduler = std::make_unique<wf::Scheduler>(*h->engine, so);
  for (const auto& e : schedules)
    if (auto r = h->scheduler->add(e.definition); !r)
      return automation::with_context(r.error(), fmt::format("schedule \"{}\" from {}", e.definition.name, e.source));
  return h;
}

// Prints fires and finished runs as they happen; returns whether every finished run succeeded.
struct Reporter {
  Context& ctx;
  bj::array fires, runs;
  bool all_ok = true;

  void take(Host& h) {
    for (auto& f : h.scheduler->take_fires()) {
      if (ctx.global.json) {
        fires.push_back(wf::to_json(f));
      } else if (!ctx.global.quiet || f.outcome != "taken") {
        fmt::print("{} {}\n", f.schedule, fire_line(f));
      }
    }
    for (auto& r : h.finished) {
      if (r.state != st::RunState::succeeded) all_ok = false;
      if (ctx.global.json)
        runs.push_back(wf::to_json(r));
      else
        fmt::print("run {} of {} {}: {}\n", r.id, r.workflow, st::to_string(r.state), r.reason);
    }
    h.finished.clear();
    std::fflush(stdout);
  }
  int finish() {
    if (ctx.global.json) ctx.print_json(bj::object{{"fires", fires}, {"runs", runs}});
    return all_ok ? ex_ok : ex_no;
  }
};

// Polls until no run this process started is active (and `keep_going` says stop); the first
// SIGINT/SIGTERM cancels the active runs, which then end cleanly.
int drive(Context& ctx, Host& h, Reporter& out, const std::function<bool()>& keep_going) {
  StopSignals signals;
  bool stopping = false;
  for (;;) {
    auto r = h.scheduler->poll();
    out.take(h);
    if (const int sig = stop_signal(); sig && !stopping) {
      stopping = true;
      const std::string why = fmt::format("autoctl received SIG{}", sig == SIGINT ? "INT" : "TERM");
      if (!ctx.global.quiet) fmt::print(stderr, "autoctl: {}; cancelling active runs\n", why);
      st::RunQuery q;
      q.states = {st::RunState::queued, st::RunState::running};
      q.limit = 0;
      if (auto active = h.store->list_runs(q))
        for (const auto& run : *active)
          if (h.engine->is_active(run.id)) (void)h.engine->cancel(run.id, why);
      continue;
    }
    if (r.active_runs == 0 && (stopping || !keep_going())) break;
    h.scheduler->wait(std::chrono::milliseconds(1000));
  }
  return out.finish();
}

struct NameArgs {
  std::string name, reason;
  std::size_t fires = 10;
};

}  // namespace

void register_schedule(CLI::App& app, Context& ctx) {
  auto* sc = app.add_subcommand("schedule", "Schedules: cron, interval and event triggers of workflows");
  sc->require_subcommand(1);
  sc->footer(
      "Schedules are the built-in seeds plus workflows_dir/schedules.json (same name: the file wins).\n"
      "Pause and resume are stored, so every process running a scheduler sees them.");

  // ---- list ----
  auto* list = sc->add_subcommand("list", "Every schedule: trigger, workflow, state, next and last fire");
  list->callback([&ctx] {
    ctx.remote_capable = true;
    ctx.run = [&ctx]() -> int {
      if (ctx.remote()) return ctx.print_api(ctx.api("GET", "/api/v1/schedules"));
      auto all = load_schedules(ctx);
      if (!all) return ctx.error(all.error());
      auto store = open_existing(ctx);
      if (!store) return ctx.error(store.error());
      std::map<std::string, st::ScheduleRecord> state;
      if (*store) {
        auto records = (*store)->list_schedules();
        if (!records) return ctx.error(records.error());
        for (auto& r : *records) state.emplace(r.name, std::move(r));
      }
      const auto now = automation::SystemClock::instance().now();
      bj::array rows;
      for (const auto& e : *all) {
        auto it = state.find(e.definition.name);
        rows.push_back(status_json(e, it == state.end() ? nullptr : &it->second, now));
      }
      if (ctx.global.json) {
        ctx.print_json(bj::object{{"schedules", rows}});
        return ex_ok;
      }
      std::size_t width = 20;  // the longest name sets the first column
      for (const auto& v : rows) width = std::max(width, v.as_object().at("name").as_string().size());
      fmt::print("{:<{}} {:<8} {:<22} {:<38} {}\n", "NAME", width, "STATE", "NEXT FIRE", "TRIGGER", "WORKFLOW");
      for (const auto& v : rows) {
        const auto& o = v.as_object();
        auto text = [&](const char* k) { return o.contains(k) ? std::string(o.at(k).as_string()) : std::string("-"); };
        fmt::print("{:<{}} {:<8} {:<22} {:<38} {}\n", text("name"), width, text("state"), text("next_fire"), text("trigger_text"),
                   text("workflow"));
      }
      return ex_ok;
    };
  });

  // ---- show ----
  auto sa = std::make_shared<NameArgs>();
  auto* show = sc->add_subcommand("show", "A schedule's definition, state and recent fires");
  show->add_option("name", sa->name, "The schedule")->required();
  show->add_option("--fires", sa->fires, "How many recent fires (default 10)")->check(CLI::Range(0, 100000));
  show->callback([&ctx, sa] {
    ctx.run = [&ctx, sa]() -> int {
      auto all = load_schedules(ctx);
      if (!all) return ctx.error(all.error());
      auto e = find_schedule(*all, sa->name);
      if (!e) return ctx.error(e.error());
      auto store = open_existing(ctx);
      if (!store) return ctx.error(store.error());
      std::optional<st::ScheduleRecord> rec;
      std::vector<st::FireRecord> fires;
      if (*store) {
        auto r = (*store)->get_schedule(sa->name);
        if (!r) return ctx.error(r.error());
        rec = std::move(*r);
        auto fs = (*store)->list_fires(sa->name, sa->fires);
        if (!fs) return ctx.error(fs.error());
        fires = std::move(*fs);
      }
      auto doc = status_json(**e, rec ? &*rec : nullptr, automation::SystemClock::instance().now());
      bj::array fire_docs;
      for (const auto& f : fires) fire_docs.push_back(wf::to_json(f));
      doc["fires"] = fire_docs;
      if (ctx.global.json) {
        ctx.print_json(doc);
        return ex_ok;
      }
      for (const auto& [k, v] : doc) {
        if (k == "fires" || k == "params") continue;
        fmt::print("{:<22} {}\n", std::string(k) + ":", v.is_string() ? std::string(v.as_string()) : automation::json::dump(v));
      }
      if (!doc.at("params").as_object().empty()) fmt::print("{:<22} {}\n", "params:", automation::json::dump(doc.at("params")));
      fmt::print("recent fires:\n");
      for (const auto& f : fires) fmt::print("  {}\n", fire_line(f));
      return ex_ok;
    };
  });

  // ---- pause / resume ----
  for (const bool pausing : {true, false}) {
    auto pa = std::make_shared<NameArgs>();
    auto* cmd = sc->add_subcommand(pausing ? "pause" : "resume",
                                   pausing ? "Pause a schedule in every process (its fires do not happen until resumed)"
                                           : "Resume a paused schedule; fires missed while paused are not caught up");
    cmd->add_option("name", pa->name, "The schedule")->required();
    cmd->add_option("--reason", pa->reason, "Why (stored with the schedule and in the audit log)");
    cmd->callback([&ctx, pa, pausing] {
      ctx.remote_capable = true;
      ctx.run = [&ctx, pa, pausing]() -> int {
        if (ctx.remote())
          return ctx.print_api(ctx.api("POST",
                                       fmt::format("/api/v1/schedules/{}/{}", Context::encode(pa->name), pausing ? "pause" : "resume"),
                                       bj::object{{"reason", pa->reason}}));
        auto all = load_schedules(ctx);
        if (!all) return ctx.error(all.error());
        if (auto e = find_schedule(*all, pa->name); !e) return ctx.error(e.error());
        auto store = ctx.open_store(Context::Access::write);
        if (!store) return ctx.error(store.error());
        const auto now = automation::SystemClock::instance().now();
        auto r = pausing ? wf::pause_schedule(**store, pa->name, pa->reason, ctx.actor(), now)
                         : wf::resume_schedule(**store, pa->name, pa->reason, ctx.actor(), now);
        if (!r) return ctx.error(r.error());
        if (ctx.global.json)
          ctx.print_json(bj::object{{"name", r->name}, {"state", r->paused ? "paused" : "active"}, {"reason", r->reason}});
        else
          fmt::print("schedule {} {}: {}\n", r->name, r->paused ? "paused" : "resumed", r->reason);
        return ex_ok;
      };
    });
  }

  // ---- fire ----
  auto fa = std::make_shared<NameArgs>();
  auto* fire = sc->add_subcommand("fire", "Fire a schedule now (through its overlap policy) and run the workflow to completion here");
  fire->add_option("name", fa->name, "The schedule")->required();
  fire->callback([&ctx, fa] {
    ctx.run = [&ctx, fa]() -> int {
      auto all = load_schedules(ctx);
      if (!all) return ctx.error(all.error());
      auto e = find_schedule(*all, fa->name);
      if (!e) return ctx.error(e.error());
      auto h = make_host(ctx, {**e}, std::nullopt);
      if (!h) return ctx.error(h.error());
      auto& host = **h;
      auto f = host.scheduler->fire(fa->name, ctx.actor());
      if (!f) return ctx.error(f.error());
      ctx.audit(*host.store, "schedule.fire", "schedule:" + fa->name, st::AuditOutcome::success, f->reason,
                {{"outcome", f->outcome}, {"run_id", f->run_id}});
      (void)host.scheduler->take_fires();
      if (f->outcome != "started") {
        if (ctx.global.json)
          ctx.print_json(wf::to_json(*f));
        else
          fmt::print("schedule {}: {}: {}\n", fa->name, f->outcome, f->reason);
        return f->outcome == "buffered" ? ex_ok : ex_no;
      }
      if (!ctx.global.quiet)
        fmt::print(stderr, "autoctl: schedule {} fired: run {} of {} started\n", fa->name, f->run_id, e.value()->definition.workflow);
      return drive_run(ctx, *host.engine, *host.store, f->run_id);
    };
  });

  // ---- tick ----
  struct TickArgs {
    std::string at;
  };
  auto ta = std::make_shared<TickArgs>();
  auto* tick =
      sc->add_subcommand("tick", "One scheduler pass: start every fire due now (and events not yet handled), run them to completion, exit");
  tick->add_option("--at", ta->at, "Act as if it were this time (ISO-8601): replays or tests a schedule");
  tick->footer(
      "For hosts without `autoctl serve`: run it from cron every minute.\n  * * * * * autoctl schedule tick\n"
      "Fires are exactly-once per (schedule, time), so overlapping ticks or a running daemon never double a fire.");
  tick->callback([&ctx, ta] {
    ctx.run = [&ctx, ta]() -> int {
      std::optional<TimePoint> at;
      if (!ta->at.empty()) {
        auto t = automation::parse_timestamp(ta->at);
        if (!t) return ctx.error(automation::with_context(t.error(), "--at"));
        at = *t;
      }
      auto all = load_schedules(ctx);
      if (!all) return ctx.error(all.error());
      auto h = make_host(ctx, *all, at);
      if (!h) return ctx.error(h.error());
      Reporter out{ctx};
      return drive(ctx, **h, out, [] { return false; });
    };
  });

  // ---- run ----
  struct RunArgs {
    std::string duration;
  };
  auto ra = std::make_shared<RunArgs>();
  auto* run = sc->add_subcommand("run", "Run the scheduler in the foreground until Ctrl-C or SIGTERM (which cancel active runs)");
  run->add_option("--for", ra->duration, "Stop after this long (e.g. 90s), once active runs have ended");
  run->callback([&ctx, ra] {
    ctx.run = [&ctx, ra]() -> int {
      std::optional<automation::Millis> limit;
      if (!ra->duration.empty()) {
        auto d = automation::parse_duration(ra->duration);
        if (!d) return ctx.error(automation::with_context(d.error(), "--for"));
        limit = *d;
      }
      auto all = load_schedules(ctx);
      if (!all) return ctx.error(all.error());
      auto h = make_host(ctx, *all, std::nullopt);
      if (!h) return ctx.error(h.error());
      const auto until = std::chrono::steady_clock::now() + (limit ? *limit : automation::Millis(0));
      if (!ctx.global.quiet) fmt::print(stderr, "autoctl: scheduler running with {} schedules; Ctrl-C stops it\n", all->size());
      Reporter out{ctx};
      return drive(ctx, **h, out, [&] { return !limit || std::chrono::steady_clock::now() < until; });
    };
  });
}

void register_emit(CLI::App& app, Context& ctx) {
  struct EmitArgs {
    std::string name, data = "{}";
    bool no_wait = false;
  };
  auto ea = std::make_shared<EmitArgs>();
  auto* emit = app.add_subcommand("emit", "Record an event; the schedules it triggers run here to completion (or, with --no-wait, later)");
  emit->add_option("event", ea->name, "The event name, e.g. user.registered")->required();
  emit->add_option("--data", ea->data, "The payload: a JSON object (default {})");
  emit->add_flag("--no-wait", ea->no_wait, "Only record the event: a running scheduler (autoctl serve, schedule run or tick) handles it");
  emit->footer(
      "Examples:\n  autoctl emit user.registered --data '{\"user\":\"ada\",\"plan\":\"pro\"}'\n"
      "  autoctl emit content.published --no-wait");
  emit->callback([&ctx, ea] {
    ctx.run = [&ctx, ea]() -> int {
      auto payload = automation::json::parse(ea->data, "--data");
      if (!payload) return ctx.error(payload.error());
      if (!payload->is_object())
        return ctx.error(automation::Error(automation::errc::invalid_argument, "--data: the payload must be a JSON object ({...})"));
      auto all = load_schedules(ctx);
      if (!all) return ctx.error(all.error());
      std::vector<ScheduleEntry> matching;
      for (const auto& e : *all)
        if (e.definition.kind() == wf::TriggerKind::event && wf::event_matches(e.definition, ea->name, payload->as_object()))
          matching.push_back(e);
      const std::string source = "cli:" + ctx.actor();
      if (ea->no_wait || matching.empty()) {
        auto store = ctx.open_store(Context::Access::write);
        if (!store) return ctx.error(store.error());
        auto id = wf::emit_event(**store, ea->name, payload->as_object(), source, automation::SystemClock::instance().now());
        if (!id) return ctx.error(id.error());
        if (ctx.global.json)
          ctx.print_json(bj::object{{"event_id", *id}, {"name", ea->name}, {"schedules", matching.size()}});
        else
          fmt::print(
              "event {} #{} recorded; {}\n", ea->name, *id,
              matching.empty() ? std::string("no schedule handles it") : fmt::format("{} schedule(s) will handle it", matching.size()));
        return ex_ok;
      }
      auto h = make_host(ctx, matching, std::nullopt);
      if (!h) return ctx.error(h.error());
      auto id = (*h)->scheduler->emit(ea->name, payload->as_object(), source);
      if (!id) return ctx.error(id.error());
      if (!ctx.global.quiet) fmt::print(stderr, "autoctl: event {} #{} recorded\n", ea->name, *id);
      Reporter out{ctx};
      return drive(ctx, **h, out, [] { return false; });
    };
  });
}

}  // namespace autoctl
