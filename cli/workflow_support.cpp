#include "workflow_support.hpp"
#include "delivery_support.hpp"

#include <automation/core/time.hpp>
#include <automation/workflow/builtins.hpp>

#include <boost/json.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <filesystem>

namespace autoctl {

namespace wf = automation::workflow;
namespace st = automation::storage;
namespace bj = boost::json;
namespace fs = std::filesystem;

namespace {
std::atomic<int> g_signal{0};
extern "C" void on_stop_signal(int sig) { g_signal.store(sig); }
}  // namespace

StopSignals::StopSignals() {
  g_signal.store(0);
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: poll() returns EINTR
  sigaction(SIGINT, &sa, &old_int_);
  sigaction(SIGTERM, &sa, &old_term_);
}

StopSignals::~StopSignals() {
  sigaction(SIGINT, &old_int_, nullptr);
  sigaction(SIGTERM, &old_term_, nullptr);
}

int stop_signal() noexcept { return g_signal.load(); }

automation::Result<Catalog> load_catalog(const Context& ctx) {
  Catalog c;
  for (auto& w : wf::builtin_workflows()) c.entries.push_back({std::move(w), "built-in"});
  const std::string& dir = ctx.config.workflows_dir;
  std::error_code ec;
  if (!dir.empty() && fs::is_directory(dir, ec)) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.is_regular_file() && e.path().extension() == ".json" && e.path().filename() != kSchedulesFile) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      auto w = wf::load_workflow_file(f.string());
      if (!w) {
        c.broken.emplace(f.stem().string(), w.error());
        c.problems.push_back(w.error().message);
        continue;
      }
      auto it = std::find_if(c.entries.begin(), c.entries.end(), [&](const CatalogEntry& e) { return e.definition.name == w->name; });
      if (it != c.entries.end())
        *it = {std::move(w.value()), f.string()};
      else
        c.entries.push_back({std::move(w.value()), f.string()});
    }
  }
  std::sort(c.entries.begin(), c.entries.end(), [](const auto& a, const auto& b) { return a.definition.name < b.definition.name; });
  return c;
}

automation::Result<CatalogEntry> resolve_workflow(const Catalog& catalog, const std::string& target) {
  if (target.find('/') != std::string::npos || target.ends_with(".json")) {
    auto w = wf::load_workflow_file(target);
    if (!w) return w.error();
    return CatalogEntry{std::move(w.value()), target};
  }
  for (const auto& e : catalog.entries)
    if (e.definition.name == target) return e;
  if (auto it = catalog.broken.find(target); it != catalog.broken.end()) return it->second;
  std::vector<std::string> names;
  for (const auto& e : catalog.entries) names.push_back(e.definition.name);
  return automation::fail(automation::errc::not_found, fmt::format("no workflow named \"{}\" (known: {}; or give a path to a JSON file)",
                                                                   target, fmt::join(names, ", ")));
}

automation::Result<EngineHost> open_engine(const Context& ctx, const Catalog& catalog, const automation::Clock* clock) {
  auto opened = ctx.open_store(Context::Access::write);
  if (!opened) return opened.error();
  auto& store = **opened;
  auto engine = std::make_unique<wf::WorkflowEngine>(store, clock ? *clock : automation::SystemClock::instance());
  std::vector<std::string> warnings;
  wf::register_builtin_actions(*engine, store, builtin_settings(ctx, warnings));
  if (!ctx.global.quiet)
    for (const auto& w : warnings) fmt::print(stderr, "autoctl: warning: {}\n", w);
  for (const auto& e : catalog.entries)
    if (auto r = engine->register_workflow(e.definition); !r) return r.error();
  auto report = engine->recover(false);
  if (!report) return report.error();
  if (!ctx.global.quiet) {
    for (auto id : report->interrupted)
      fmt::print(
          stderr,
          "autoctl: run {} was left running by an engine that is gone; marked interrupted (`autoctl workflow resume {}` continues it)\n",
          id, id);
    for (const auto& k : report->killed) fmt::print(stderr, "autoctl: killed an orphaned process group: {}\n", k);
  }
  return EngineHost{std::move(opened.value()), std::move(engine)};
}

std::string when(std::optional<automation::TimePoint> t) {
  return t && *t != automation::TimePoint{} ? automation::format_timestamp(*t) : std::string("-");
}

automation::Result<std::vector<ScheduleEntry>> load_schedules(const Context& ctx) {
  std::vector<ScheduleEntry> out;
  for (auto& s : wf::builtin_schedules(ctx.config.time_zone)) out.push_back({std::move(s), "built-in"});
  const fs::path file = fs::path(ctx.config.workflows_dir) / kSchedulesFile;
  std::error_code ec;
  if (!ctx.config.workflows_dir.empty() && fs::exists(file, ec)) {
    auto defs = wf::load_schedules_file(file.string());
    if (!defs) return defs.error();
    for (auto& d : *defs) {
      auto it = std::find_if(out.begin(), out.end(), [&](const ScheduleEntry& e) { return e.definition.name == d.name; });
      if (it != out.end())
        *it = {std::move(d), file.string()};
      else
        out.push_back({std::move(d), file.string()});
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.definition.name < b.definition.name; });
  return out;
}

int drive_run(Context& ctx, wf::WorkflowEngine& engine, st::Store& store, std::int64_t run_id) {
  StopSignals signals;
  std::map<std::string, st::RunState> seen;
  bool cancel_sent = false;
  auto report_steps = [&] {
    if (ctx.global.quiet) return;
    auto steps = store.run_steps(run_id);
    if (!steps) return;
    for (const auto& s : *steps) {
      auto it = seen.find(s.step);
      if (it != seen.end() && it->second == s.state) continue;
      if (it == seen.end() && s.state == st::RunState::queued) {
        seen[s.step] = s.state;
        continue;
      }
      seen[s.step] = s.state;
      std::string extra;
      if (st::is_final(s.state) && s.started != automation::TimePoint{})
        extra = fmt::format(" in {}", automation::format_duration(std::chrono::duration_cast<automation::Millis>(s.ended - s.started)));
      fmt::print(stderr, "  {:<24} {}{}{}\n", s.step, automation::storage::to_string(s.state), extra,
                 s.reason.empty() || s.state == st::RunState::succeeded || s.state == st::RunState::running ? "" : ": " + s.reason);
    }
  };
  for (;;) {
    engine.poll();
    report_steps();
    if (!engine.is_active(run_id)) break;
    if (const int sig = stop_signal(); sig && !cancel_sent) {
      cancel_sent = true;
      const std::string why = fmt::format("autoctl received SIG{}", sig == SIGINT ? "INT" : "TERM");
      if (!ctx.global.quiet) fmt::print(stderr, "autoctl: {}; cancelling run {}\n", why, run_id);
      (void)engine.cancel(run_id, why);
      continue;
    }
    engine.wait(std::chrono::milliseconds(1000));
  }
  auto run = store.get_run(run_id);
  if (!run) return ctx.error(run.error());
  if (!*run) return ctx.error(automation::Error(automation::errc::internal, fmt::format("run {} vanished", run_id)));
  const auto& r = **run;
  if (ctx.global.json) {
    auto doc = wf::to_json(r);
    bj::array steps;
    if (auto ss = store.run_steps(run_id))
      for (const auto& s : *ss) steps.push_back(wf::to_json(s));
    doc["steps"] = std::move(steps);
    ctx.print_json(doc);
  } else {
    fmt::print("run {} of {} {}{}: {}\n", r.id, r.workflow, automation::storage::to_string(r.state),
               r.started_at != automation::TimePoint{} && r.ended_at != automation::TimePoint{}
                   ? " in " + automation::format_duration(std::chrono::duration_cast<automation::Millis>(r.ended_at - r.started_at))
                   : std::string(),
               r.reason);
  }
  return r.state == st::RunState::succeeded ? ex_ok : ex_no;
}

}  // namespace autoctl
