// autoctl workflow list | show NAME | validate FILE | run NAME|FILE | cancel RUN | resume RUN |
// status RUN | history [NAME] | logs RUN [STEP]
#include "context.hpp"
#include "workflow_support.hpp"

#include <automation/core/clock.hpp>
#include <automation/core/json.hpp>
#include <automation/core/time.hpp>
#include <automation/workflow/definition.hpp>
#include <automation/workflow/engine.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

#include <csignal>
#include <map>
#include <thread>

namespace autoctl {

namespace wf = automation::workflow;
namespace st = automation::storage;
namespace bj = boost::json;

namespace {

std::string ms_text(const bj::value& v) {
  if (!v.is_int64()) return "-";
  return automation::format_duration(automation::Millis(v.as_int64()));
}

automation::Result<std::int64_t> parse_run_id(const std::string& text) {
  try {
    std::size_t used = 0;
    const long long v = std::stoll(text, &used);
    if (used == text.size() && v > 0) return static_cast<std::int64_t>(v);
  } catch (...) {
  }
  return automation::fail(automation::errc::invalid_argument, fmt::format("\"{}\" is not a run id (a positive number)", text));
}

// Opens the store for reading and loads run `text`.
automation::Result<std::pair<std::unique_ptr<st::Store>, st::RunRecord>> open_run(const Context& ctx, const std::string& text) {
  auto id = parse_run_id(text);
  if (!id) return id.error();
  auto store = ctx.open_store(Context::Access::read);
  if (!store) return store.error();
  auto run = (*store)->get_run(*id);
  if (!run) return run.error();
  if (!*run) return automation::fail(automation::errc::not_found, fmt::format("workflow run {} does not exist", *id));
  return std::pair{std::move(store.value()), std::move(**run)};
}

}  // namespace

namespace {

// workflow run through the daemon: started there, waited for here (Ctrl-C cancels it there too).
int run_remote(Context& ctx, const std::string& target, const std::map<std::string, std::string>& params) {
  if (target.find('/') != std::string::npos || target.ends_with(".json"))
    return ctx.error(automation::Error(automation::errc::invalid_argument,
                                       "a workflow file runs here, not through --server: install it in the daemon's workflows_dir"));
  bj::object p;
  for (const auto& [k, v] : params) p[k] = v;
  StopSignals signals;  // from here on, Ctrl-C cancels the run on the daemon
  auto started = ctx.api("POST", "/api/v1/workflows/" + Context::encode(target) + "/runs", bj::object{{"params", p}});
  if (!started) return ctx.error(started.error());
  const auto id = started->at("run").at("id").as_int64();
  if (!ctx.global.quiet) fmt::print(stderr, "autoctl: run {} of {} started on {}\n", id, target, ctx.server_url());
  bool cancel_sent = false;
  for (;;) {
    auto r = ctx.api("GET", fmt::format("/api/v1/runs/{}", id));
    if (!r) return ctx.error(r.error());
    const auto state = std::string(r->at("state").as_string());
    if (state != "queued" && state != "running") {
      ctx.print_json(*r);
      return state == "succeeded" ? ex_ok : ex_no;
    }
    if (const int sig = stop_signal(); sig && !cancel_sent) {
      cancel_sent = true;
      (void)ctx.api("POST", fmt::format("/api/v1/runs/{}/cancel", id),
                    bj::object{{"reason", fmt::format("autoctl received SIG{}", sig == SIGINT ? "INT" : "TERM")}});
    }
    // Polling the daemon once a second, as `workflow status` would.
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

}  // namespace

void register_workflow(CLI::App& app, Context& ctx) {
  auto* wfc = app.add_subcommand("workflow", "Workflows: the catalog, runs, history and logs");
  wfc->require_subcommand(1);

  // ---- validate ----
  auto file = std::make_shared<std::string>();
  auto* validate = wfc->add_subcommand("validate", "Check a workflow JSON file; every problem is listed with its JSON path (exit 65)");
  validate->add_option("file", *file, "The workflow definition (JSON)")->required();
  validate->footer("Examples:\n  autoctl workflow validate workflows/deploy.json\n  autoctl --json workflow validate deploy.json");
  validate->callback([&ctx, file] {
    ctx.run = [&ctx, file]() -> int {
      auto w = wf::load_workflow_file(*file);
      if (!w) return ctx.error(w.error());
      const auto order = w->topological_order();
      if (ctx.global.json) {
        bj::array steps;
        for (auto i : order) {
          const auto& s = w->steps[i];
          bj::array needs;
          for (const auto& n : s.needs) needs.emplace_back(n);
          steps.push_back(bj::object{{"id", s.id}, {"kind", wf::to_string(s.action.kind)}, {"needs", std::move(needs)}});
        }
        ctx.print_json(bj::object{{"valid", true}, {"name", w->name}, {"steps", std::move(steps)}});
      } else {
        std::vector<std::string_view> ids;
        for (auto i : order) ids.push_back(w->steps[i].id);
        fmt::print("{}: workflow \"{}\" is valid: {} step{} ({})\n", *file, w->name, w->steps.size(), w->steps.size() == 1 ? "" : "s",
                   fmt::join(ids, " -> "));
      }
      return ex_ok;
    };
  });

  // ---- list ----
  auto* list = wfc->add_subcommand("list", "The workflows that can run: the built-in catalog and the files in workflows_dir");
  list->footer("Examples:\n  autoctl workflow list\n  autoctl --json workflow list");
  list->callback([&ctx] {
    ctx.run = [&ctx]() -> int {
      auto cat = load_catalog(ctx);
      if (!cat) return ctx.error(cat.error());
      std::map<std::string, st::RunRecord> last;
      if (auto store = ctx.open_store(Context::Access::read)) {
        st::RunQuery q;
        q.limit = 1000;
        if (auto runs = (*store)->list_runs(q))
          for (const auto& r : *runs) last.try_emplace(r.workflow, r);
      }
      if (ctx.global.json) {
        bj::array out;
        for (const auto& e : cat->entries) {
          bj::object o{{"name", e.definition.name}, {"description", e.definition.description}, {"source", e.source}};
          if (auto it = last.find(e.definition.name); it != last.end())
            o["last_run"] =
                bj::object{{"id", it->second.id}, {"state", st::to_string(it->second.state)}, {"queued_at", when(it->second.queued_at)}};
          else
            o["last_run"] = nullptr;
          out.push_back(std::move(o));
        }
        bj::array problems;
        for (const auto& p : cat->problems) problems.emplace_back(p);
        ctx.print_json(bj::object{{"workflows", std::move(out)}, {"problems", std::move(problems)}});
      } else {
        fmt::print("{:<22} {:<10} {:<22} {}\n", "NAME", "SOURCE", "LAST RUN", "DESCRIPTION");
        for (const auto& e : cat->entries) {
          std::string lr = "-";
          if (auto it = last.find(e.definition.name); it != last.end())
            lr = fmt::format("{} {}", it->second.id, st::to_string(it->second.state));
          fmt::print("{:<22} {:<10} {:<22} {}\n", e.definition.name, e.source == "built-in" ? "built-in" : "file", lr,
                     e.definition.description);
        }
        for (const auto& p : cat->problems) fmt::print(stderr, "autoctl: warning: {}\n", p);
      }
      return ex_ok;
    };
  });

  // ---- show ----
  auto show_name = std::make_shared<std::string>();
  auto* show = wfc->add_subcommand("show", "A workflow's definition (as JSON with --json)");
  show->add_option("name", *show_name, "A workflow name or a JSON file")->required();
  show->callback([&ctx, show_name] {
    ctx.run = [&ctx, show_name]() -> int {
      auto cat = load_catalog(ctx);
      if (!cat) return ctx.error(cat.error());
      auto def = resolve_workflow(*cat, *show_name);
      if (!def) return ctx.error(def.error());
      if (ctx.global.json) {
        ctx.print_json(automation::json::parse(wf::to_json(def->definition), "definition").value());
        return ex_ok;
      }
      const auto& w = def->definition;
      fmt::print("{} ({})\n", w.name, def->source);
      if (!w.description.empty()) fmt::print("  {}\n", w.description);
      for (const auto& p : w.params)
        fmt::print("  param {:<18} {}{}\n", p.name, p.default_value ? "default \"" + *p.default_value + "\"" : std::string("required"),
                   p.description.empty() ? "" : "  " + p.description);
      for (auto i : w.topological_order()) {
        const auto& s = w.steps[i];
        fmt::print("  step  {:<18} {:<9}{}{}\n", s.id, wf::to_string(s.action.kind),
                   s.needs.empty() ? std::string() : fmt::format(" needs {}", fmt::join(s.needs, ", ")), s.finally ? " (finally)" : "");
      }
      return ex_ok;
    };
  });

  // ---- run ----
  struct RunArgs {
    std::string target;
    std::vector<std::string> params;
    bool wait = false;
  };
  auto ra = std::make_shared<RunArgs>();
  auto* run = wfc->add_subcommand("run", "Run a workflow to completion (exit 0 succeeded, 1 failed or cancelled); Ctrl-C cancels it");
  run->add_option("workflow", ra->target, "A workflow name (built-in or workflows_dir/NAME.json) or a JSON file")->required();
  run->add_option("-p,--param", ra->params, "A parameter as NAME=VALUE (repeatable)");
  run->add_flag("--wait", ra->wait, "Wait for the run to finish (a local run always does: this process is its engine)");
  run->footer(
      "Examples:\n  autoctl workflow run auto_backup --param keep=3\n  autoctl workflow run ./deploy.json -p version=1.4.2\n"
      "  autoctl --json workflow run cleanup-resources -p dirs=/tmp/builds -p older_than=3d");
  run->callback([&ctx, ra] {
    ctx.remote_capable = true;
    ctx.run = [&ctx, ra]() -> int {
      std::map<std::string, std::string> params;
      for (const auto& p : ra->params) {
        const auto eq = p.find('=');
        if (eq == std::string::npos || eq == 0)
          return ctx.error(automation::Error(automation::errc::invalid_argument, fmt::format("--param \"{}\": expected NAME=VALUE", p)));
        params[p.substr(0, eq)] = p.substr(eq + 1);
      }
      if (ctx.remote()) return run_remote(ctx, ra->target, params);
      auto cat = load_catalog(ctx);
      if (!cat) return ctx.error(cat.error());
      auto def = resolve_workflow(*cat, ra->target);
      if (!def) return ctx.error(def.error());
      auto host = open_engine(ctx, *cat);
      if (!host) return ctx.error(host.error());
      auto& [store, engine] = *host;
      auto id = engine->start(def->definition, {.params = params, .trigger = "manual:cli"});
      const std::string resource = "workflow:" + def->definition.name;
      bj::object details;
      for (const auto& [k, v] : params) details[k] = v;
      if (!id) {
        ctx.audit(*store, "workflow.run", resource, st::AuditOutcome::failure, id.error().message, {{"params", details}});
        return ctx.error(id.error());
      }
      ctx.audit(*store, "workflow.run", resource, st::AuditOutcome::success, fmt::format("run {} started from the command line", *id),
                {{"run_id", *id}, {"params", details}, {"source", def->source}});
      if (!ctx.global.quiet) fmt::print(stderr, "autoctl: run {} of {} started\n", *id, def->definition.name);
      return drive_run(ctx, *engine, *store, *id);
    };
  });

  // ---- resume ----
  auto resume_id = std::make_shared<std::string>();
  auto* resume =
      wfc->add_subcommand("resume", "Continue an interrupted run: finished steps keep their outcome, interrupted ones run again");
  resume->add_option("run", *resume_id, "The run id")->required();
  resume->callback([&ctx, resume_id] {
    ctx.run = [&ctx, resume_id]() -> int {
      auto id = parse_run_id(*resume_id);
      if (!id) return ctx.error(id.error());
      auto cat = load_catalog(ctx);
      if (!cat) return ctx.error(cat.error());
      auto host = open_engine(ctx, *cat);
      if (!host) return ctx.error(host.error());
      auto& [store, engine] = *host;
      auto r = engine->resume(*id, fmt::format("resumed by {} from the command line", ctx.actor()));
      ctx.audit(*store, "workflow.resume", fmt::format("run:{}", *id), r ? st::AuditOutcome::success : st::AuditOutcome::failure,
                r ? "resumed from the command line" : r.error().message, {{"run_id", *id}});
      if (!r) return ctx.error(r.error());
      if (!ctx.global.quiet) fmt::print(stderr, "autoctl: run {} resumed\n", *id);
      return drive_run(ctx, *engine, *store, *id);
    };
  });

  // ---- cancel ----
  struct CancelArgs {
    std::string run;
    std::string reason;
  };
  auto ca = std::make_shared<CancelArgs>();
  auto* cancel = wfc->add_subcommand("cancel", "Cancel a queued or running run (its engine stops it within about a second)");
  cancel->add_option("run", ca->run, "The run id")->required();
  cancel->add_option("--reason", ca->reason, "Why (recorded with the run and in the audit log)");
  cancel->callback([&ctx, ca] {
    ctx.remote_capable = true;
    ctx.run = [&ctx, ca]() -> int {
      auto id = parse_run_id(ca->run);
      if (!id) return ctx.error(id.error());
      if (ctx.remote())
        return ctx.print_api(ctx.api("POST", fmt::format("/api/v1/runs/{}/cancel", *id), bj::object{{"reason", ca->reason}}));
      auto store = ctx.open_store(Context::Access::write);
      if (!store) return ctx.error(store.error());
      const std::string reason = ca->reason.empty() ? fmt::format("cancelled by {}", ctx.actor()) : ca->reason;
      automation::SystemClock& clock = automation::SystemClock::instance();
      wf::WorkflowEngine engine(**store, clock);
      auto r = engine.cancel(*id, reason);
      ctx.audit(**store, "workflow.cancel", fmt::format("run:{}", *id), r ? st::AuditOutcome::success : st::AuditOutcome::failure,
                r ? reason : r.error().message, {{"run_id", *id}});
      if (!r) return ctx.error(r.error());
      auto now = (*store)->get_run(*id);
      const bool done = now && *now && (*now)->state == st::RunState::cancelled;
      if (ctx.global.json)
        ctx.print_json(bj::object{{"run_id", *id}, {"cancelled", done}, {"cancel_requested", true}, {"reason", reason}});
      else
        fmt::print("run {}: {}\n", *id, done ? "cancelled" : "cancel requested; its engine stops it shortly");
      return ex_ok;
    };
  });

  // ---- status ----
  auto status_id = std::make_shared<std::string>();
  auto* status = wfc->add_subcommand("status", "A run and its steps");
  status->add_option("run", *status_id, "The run id")->required();
  status->callback([&ctx, status_id] {
    ctx.remote_capable = true;
    ctx.run = [&ctx, status_id]() -> int {
      if (ctx.remote()) {
        auto id = parse_run_id(*status_id);
        if (!id) return ctx.error(id.error());
        auto r = ctx.api("GET", fmt::format("/api/v1/runs/{}", *id));
        if (!r) return ctx.error(r.error());
        ctx.print_json(*r);
        const auto state = std::string(r->at("state").as_string());
        return state == "succeeded" || state == "queued" || state == "running" ? ex_ok : ex_no;
      }
      auto loaded = open_run(ctx, *status_id);
      if (!loaded) return ctx.error(loaded.error());
      auto& [store, r] = *loaded;
      auto steps = store->run_steps(r.id);
      if (!steps) return ctx.error(steps.error());
      const bool orphan = !st::is_final(r.state) && !wf::owner_alive(r, automation::SystemClock::instance().now());
      if (ctx.global.json) {
        auto doc = wf::to_json(r);
        doc["owner_alive"] = !orphan;
        bj::array arr;
        for (const auto& s : *steps) arr.push_back(wf::to_json(s));
        doc["steps"] = std::move(arr);
        ctx.print_json(doc);
      } else {
        auto j = wf::to_json(r);
        fmt::print("run {} of {}: {}{} ({})\n", r.id, r.workflow, st::to_string(r.state),
                   orphan ? " (its engine is gone: the next `autoctl workflow run` marks it interrupted)" : "", r.reason);
        fmt::print("  trigger {}  queued {}  started {}  ended {}  took {}\n", r.trigger, when(r.queued_at), when(r.started_at),
                   when(r.ended_at), ms_text(j["duration_ms"]));
        for (const auto& s : *steps) {
          auto sj = wf::to_json(s);
          fmt::print("  {:<24} {:<11} attempts {}  {:>8}  {}\n", s.step, st::to_string(s.state), s.attempts, ms_text(sj["duration_ms"]),
                     s.reason);
        }
      }
      return r.state == st::RunState::succeeded || !st::is_final(r.state) ? ex_ok : ex_no;
    };
  });

  // ---- history ----
  struct HistoryArgs {
    std::string workflow;
    std::size_t limit = 20;
    std::string state;
  };
  auto ha = std::make_shared<HistoryArgs>();
  auto* history = wfc->add_subcommand("history", "Recent runs, newest first");
  history->add_option("workflow", ha->workflow, "Only runs of this workflow");
  history->add_option("-n,--limit", ha->limit, "At most this many runs (0: all)")->capture_default_str();
  history->add_option("--state", ha->state,
                      "Only runs in this state (queued, running, succeeded, failed, cancelled, timed_out, interrupted)");
  history->callback([&ctx, ha] {
    ctx.remote_capable = true;
    ctx.run = [&ctx, ha]() -> int {
      if (ctx.remote())
        return ctx.print_api(ctx.api(
            "GET",
            "/api/v1/runs" + Context::query({{"workflow", ha->workflow},
                                             {"state", ha->state},
                                             {"limit", std::to_string(ha->limit == 0 ? 1000 : std::min<std::size_t>(ha->limit, 1000))}})));
      st::RunQuery q;
      if (!ha->workflow.empty()) q.workflow = ha->workflow;
      if (!ha->state.empty()) {
        auto s = st::parse_run_state(ha->state);
        if (!s) return ctx.error(s.error());
        q.states = {*s};
      }
      q.limit = ha->limit;
      auto store = ctx.open_store(Context::Access::read);
      if (!store) return ctx.error(store.error());
      auto runs = (*store)->list_runs(q);
      if (!runs) return ctx.error(runs.error());
      if (ctx.global.json) {
        bj::array arr;
        for (const auto& r : *runs) arr.push_back(wf::to_json(r));
        ctx.print_json(bj::object{{"runs", std::move(arr)}});
        return ex_ok;
      }
      fmt::print("{:>6}  {:<22} {:<11} {:<24} {:<16} {:>8}  {}\n", "RUN", "WORKFLOW", "STATE", "QUEUED", "TRIGGER", "TOOK", "REASON");
      for (const auto& r : *runs) {
        auto j = wf::to_json(r);
        fmt::print("{:>6}  {:<22} {:<11} {:<24} {:<16} {:>8}  {}\n", r.id, r.workflow, st::to_string(r.state), when(r.queued_at), r.trigger,
                   ms_text(j["duration_ms"]), r.reason);
      }
      return ex_ok;
    };
  });

  // ---- logs ----
  struct LogsArgs {
    std::string run;
    std::string step;
  };
  auto la = std::make_shared<LogsArgs>();
  auto* logs = wfc->add_subcommand("logs", "stdout and stderr of a run's attempts (of one step when given)");
  logs->add_option("run", la->run, "The run id")->required();
  logs->add_option("step", la->step, "Only this step");
  logs->callback([&ctx, la] {
    ctx.run = [&ctx, la]() -> int {
      auto loaded = open_run(ctx, la->run);
      if (!loaded) return ctx.error(loaded.error());
      auto& [store, run] = *loaded;
      const std::int64_t id = run.id;
      auto attempts = store->run_attempts(id, la->step.empty() ? std::nullopt : std::optional<std::string_view>(la->step));
      if (!attempts) return ctx.error(attempts.error());
      if (!la->step.empty() && attempts->empty()) {
        auto steps = store->run_steps(id);
        bool known = false;
        if (steps)
          for (const auto& s : *steps) known = known || s.step == la->step;
        if (!known)
          return ctx.error(automation::Error(automation::errc::not_found, fmt::format("run {} has no step \"{}\"", id, la->step)));
      }
      if (ctx.global.json) {
        bj::array arr;
        for (const auto& a : *attempts) arr.push_back(wf::to_json(a));
        ctx.print_json(bj::object{{"run_id", id}, {"attempts", std::move(arr)}});
        return ex_ok;
      }
      for (const auto& a : *attempts) {
        fmt::print("==> {} attempt {}: {}{}{}\n", a.step, a.attempt, st::to_string(a.state),
                   a.exit_code ? fmt::format(" (exit code {})", *a.exit_code) : std::string(), a.error.empty() ? "" : ": " + a.error);
        if (!a.stdout_text.empty()) fmt::print("{}{}", a.stdout_text, a.stdout_text.back() == '\n' ? "" : "\n");
        if (!a.stderr_text.empty()) fmt::print("--- stderr\n{}{}", a.stderr_text, a.stderr_text.back() == '\n' ? "" : "\n");
      }
      return ex_ok;
    };
  });
}

}  // namespace autoctl
