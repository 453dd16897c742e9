// autoctl serve [--port-file FILE]: the daemon.
#include "daemon.hpp"
#include "delivery_support.hpp"
#include "registry_support.hpp"

#include <automation/core/json.hpp>
#include <automation/core/logging.hpp>
#include <automation/core/time.hpp>
#include <automation/healing/supervisor.hpp>
#include <automation/metrics/alerts.hpp>
#include <automation/metrics/collector.hpp>
#include <automation/registry/discovery.hpp>
#include <automation/resilience/breaker_registry.hpp>
#include <automation/runtime/event_loop.hpp>
#include <automation/storage/memory_store.hpp>
#include <automation/storage/sqlite_store.hpp>
#include <automation/version.hpp>
#include <automation/workflow/builtins.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

#include <unistd.h>
#include <csignal>
#include <filesystem>
#include <fstream>

namespace autoctl {

namespace wf = automation::workflow;
namespace st = automation::storage;
namespace hl = automation::healing;
namespace mx = automation::metrics;
namespace rt = automation::runtime;
namespace bj = boost::json;
namespace rg = automation::registry;
using automation::Duration;
using automation::errc;
using automation::Result;
using automation::TimePoint;

// ---- Workflows ---------------------------------------------------------------------------------

Workflows::Workflows(std::unique_ptr<wf::WorkflowEngine> engine, std::unique_ptr<wf::Scheduler> scheduler)
    : store_(engine->store()), engine_(std::move(engine)), scheduler_(std::move(scheduler)) {
  engine_->on_run_finished([this](const st::RunRecord& r) {
    std::vector<std::function<void(const st::RunRecord&)>> listeners;
    {
      std::lock_guard lock(mu_);
      finished_[r.id] = r;
      while (finished_.size() > 1000) finished_.erase(finished_.begin());
      listeners = listeners_;
    }
    finished_cv_.notify_all();
    for (const auto& l : listeners) l(r);
  });
}

Workflows::~Workflows() { (void)stop(Duration::zero()); }

bool Workflows::accepting() const noexcept { return accepting_; }

void Workflows::set_firing(bool on) {
  firing_ = on;
  std::lock_guard lock(mu_);
  if (started_ && !closed_) engine_->wake();
}

void Workflows::start() {
  std::lock_guard lock(mu_);
  if (started_) return;
  started_ = true;
  thread_ = std::thread([this] { drive(); });
}

void Workflows::on_finished(std::function<void(const st::RunRecord&)> fn) {
  std::lock_guard lock(mu_);
  listeners_.push_back(std::move(fn));
}

bool Workflows::post(Job job) {
  std::lock_guard lock(mu_);
  if (closed_ || !started_) return false;
  jobs_.push_back(std::move(job));
  engine_->wake();  // thread-safe; the engine lives while the driver is not closed
  return true;
}

void Workflows::drive() {
  for (;;) {
    std::deque<Job> jobs;
    {
      std::lock_guard lock(mu_);
      jobs.swap(jobs_);
    }
    for (auto& j : jobs) j(*engine_, *scheduler_);
    const bool fire = accepting_ && firing_;
    const auto r = fire ? scheduler_->poll() : engine_->poll();
    active_ = r.active_runs;
    if (stop_) {
      // Jobs posted meanwhile still run; then nothing more is taken.
      std::lock_guard lock(mu_);
      if (jobs_.empty()) {
        closed_ = true;
        return;
      }
      continue;
    }
    {
      std::lock_guard lock(mu_);
      if (!jobs_.empty()) continue;
    }
    if (fire)
      scheduler_->wait(std::chrono::milliseconds(1000));
    else
      engine_->wait(std::chrono::milliseconds(200));
  }
}

std::vector<std::int64_t> Workflows::stop(Duration drain) {
  {
    std::lock_guard lock(mu_);
    if (!started_ || closed_) return {};
  }
  // Draining: schedules fire nothing and nothing new is started; the driver polls the engine only.
  accepting_ = false;
  engine_->wake();
  const auto deadline = std::chrono::steady_clock::now() + drain;
  while (std::chrono::steady_clock::now() < deadline) {
    std::unique_lock lock(mu_);
    if (active_ == 0 && jobs_.empty()) break;
    finished_cv_.wait_for(lock, std::chrono::milliseconds(100));
  }
  stop_ = true;
  engine_->wake();
  thread_.join();
  // The driver has taken its last job: what the engine still has in hand is final, and the engine's
  // destructor marks it interrupted.
  std::vector<std::int64_t> left;
  st::RunQuery q;
  q.states = {st::RunState::queued, st::RunState::running};
  q.limit = 0;
  if (auto runs = store_.list_runs(q))
    for (const auto& r : *runs)
      if (engine_->is_active(r.id)) left.push_back(r.id);
  scheduler_.reset();
  engine_.reset();
  return left;
}

Result<st::RunRecord> Workflows::wait(std::int64_t run_id, std::chrono::milliseconds max) {
  const auto deadline = std::chrono::steady_clock::now() + max;
  std::unique_lock lock(mu_);
  for (;;) {
    if (auto it = finished_.find(run_id); it != finished_.end()) return it->second;
    lock.unlock();
    auto r = store_.get_run(run_id);
    if (!r) return r.error();
    if (!*r) return automation::fail(errc::not_found, fmt::format("no workflow run {}", run_id));
    if (st::is_final((*r)->state) || std::chrono::steady_clock::now() >= deadline) return std::move(**r);
    lock.lock();
    finished_cv_.wait_until(lock, std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(500)));
  }
}

// ---- the daemon --------------------------------------------------------------------------------

namespace {

struct ServeOptions {
  std::string port_file;
  std::string duration;  // --for
  bool routes = false;   // --routes
};

/// Every component, built from one configuration.
class Daemon {
 public:
  explicit Daemon(Context& ctx) : ctx_(ctx), clock_(automation::SystemClock::instance()) {}
  /// The loops first: their tasks use the components.
  ~Daemon() {
    if (work_) work_->stop();
    if (loop_) loop_->stop();
  }

  Result<void> start(const ServeOptions& o);
  /// SIGHUP: a new configuration for what can change while running.
  void reload();
  /// SIGTERM: drain, stop, record.
  void stop(const std::string& why);

 private:
  Result<void> start_workflows();
  Result<void> start_healing();
  Result<void> start_scaling();
  Result<void> start_metrics();
  Result<void> start_server(const ServeOptions& o);
  void audit(std::string action, st::AuditOutcome outcome, std::string reason, bj::object details);
  void add_collectors();
  /// A periodic task's last error ("" when its last pass went well), for the status document.
  void note_error(const std::string& component, const std::string& error) {
    std::lock_guard lock(mu_);
    if (error.empty())
      component_errors_.erase(component);
    else
      component_errors_[component] = error;
  }
  void resume_interrupted(wf::WorkflowEngine& engine);
  bj::object status_json();
  std::pair<std::shared_ptr<const Catalog>, std::shared_ptr<const std::vector<ScheduleEntry>>> definitions() {
    std::lock_guard lock(mu_);
    return {catalog_, schedules_};
  }
  Result<bj::object> apply_suggestion(const automation::intelligence::Suggestion& s);
  Result<void> start_registry();
  void start_registry_tasks();
  void register_self();
  std::shared_ptr<automation::scaling::ResourceScaler> scaler() {
    std::lock_guard lock(mu_);
    return scaler_ ? std::shared_ptr<automation::scaling::ResourceScaler>(scaler_, scaler_->scaler.get()) : nullptr;
  }

  Context& ctx_;
  const automation::Clock& clock_;
  TimePoint started_{};
  std::unique_ptr<st::Store> store_;
  std::unique_ptr<rt::EventLoop> loop_;  // HTTP connections
  std::unique_ptr<rt::EventLoop> work_;  // component passes and in-process workflow steps, which may block
  rt::MetricsRegistry metrics_;
  std::unique_ptr<rt::AccessControl> access_;
  std::shared_ptr<const Catalog> catalog_;                       // under mu_: replaced when a suggestion adds to it
  std::shared_ptr<const std::vector<ScheduleEntry>> schedules_;  // under mu_
  std::mutex apply_mu_;                                          // one suggestion applied at a time
  std::unique_ptr<rg::Registry> registry_;
  std::optional<rg::Discovery> discovery_;  // made (and its options checked) once, at start
  std::string last_snapshot_;               // the dashboard task's only: what it last pushed, without its time
  std::string node_id_;                     // under mu_: this daemon's own node in the registry ("autoctl-HOST-PORT")
  std::string node_id() {
    std::lock_guard lock(mu_);
    return node_id_;
  }
  std::unique_ptr<Workflows> workflows_;
  HealingSetup healing_;
  std::unique_ptr<hl::Supervisor> supervisor_;
  std::unique_ptr<hl::SelfHealer> healer_;
  std::mutex mu_;  // guards the replaceable components below
  std::shared_ptr<Scaler> scaler_;
  ScalingSetup scaling_;
  std::shared_ptr<mx::MetricsCollector> collector_;
  std::shared_ptr<mx::AlertManager> alerts_;
  std::string alerts_source_;
  Services services_;
  std::unique_ptr<rt::HttpServer> server_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> draining_{false};
  bool started_ok_ = false;                              // daemon.start was recorded
  std::map<std::string, std::string> component_errors_;  // under mu_: the last error of each periodic task
  // The daemon's own services an operator may stop and start (until the next start); built once,
  // so lookups need no lock. The API is not among them: it answers the call that would stop it.
  std::map<std::string, std::atomic<bool>, std::less<>> running_ = [] {
    std::map<std::string, std::atomic<bool>, std::less<>> m;
    for (const char* n : {"scheduler", "healer", "scaler", "collector", "registry", "discovery"}) m[n] = true;
    return m;
  }();
  std::map<std::string, std::string> stopped_why_;  // under mu_: who stopped a service and why
  std::mutex control_mu_;                           // one start or stop at a time
  bool running(std::string_view name) const { return running_.find(name)->second.load(); }
  Result<bj::object> control(const std::string& name, bool start, const std::string& actor, const std::string& reason);
  bj::object services_health();
  bj::object supervised_json(const hl::ServiceStatus& s);
};

void Daemon::audit(std::string action, st::AuditOutcome outcome, std::string reason, bj::object details) {
  ctx_.audit(*store_, std::move(action), "daemon", outcome, std::move(reason), std::move(details));
}

Result<void> Daemon::start_workflows() {
  auto cat = load_catalog(ctx_);
  if (!cat) return cat.error();
  auto schedules = load_schedules(ctx_);
  if (!schedules) return schedules.error();
  {
    std::lock_guard lock(mu_);
    catalog_ = std::make_shared<const Catalog>(std::move(*cat));
    schedules_ = std::make_shared<const std::vector<ScheduleEntry>>(std::move(*schedules));
  }
  wf::WorkflowEngine::Options eo;
  // In-process steps (aggregation, reports, forecasts, backups) run on the loop's pool, so the
  // driver keeps polling while they work.
  eo.executor = [this](std::function<void()> fn) { work_->post(std::move(fn)); };
  auto engine = std::make_unique<wf::WorkflowEngine>(*store_, clock_, std::move(eo));
  std::vector<std::string> warnings;
  wf::register_builtin_actions(*engine, *store_, builtin_settings(ctx_, warnings));
  for (const auto& w : warnings) automation::log(automation::LogLevel::warn, "serve", w);
  for (const auto& e : catalog_->entries)
    if (auto r = engine->register_workflow(e.definition); !r) return r.error();
  for (const auto& p : catalog_->problems) automation::log(automation::LogLevel::warn, "serve", "workflow not loaded: " + p);
  // Runs a daemon left behind (killed, or stopped past its drain) are taken over as their
  // definitions' on_interrupt says.
  auto recovered = engine->recover(true);
  if (!recovered) return recovered.error();
  for (auto id : recovered->interrupted)
    automation::log(automation::LogLevel::warn, "serve", fmt::format("run {} was left by an engine that is gone: marked interrupted", id));
  for (auto id : recovered->adopted) automation::log(automation::LogLevel::info, "serve", fmt::format("run {} resumed here", id));
  for (auto id : recovered->restarted) automation::log(automation::LogLevel::info, "serve", fmt::format("run {} started again", id));
  resume_interrupted(*engine);
  wf::Scheduler::Options so;
  so.actor = "system:scheduler (" + ctx_.actor() + ")";
  auto scheduler = std::make_unique<wf::Scheduler>(*engine, so);
  for (const auto& e : *schedules_)
    if (auto r = scheduler->add(e.definition); !r)
      return automation::with_context(r.error(), fmt::format("schedule \"{}\" from {}", e.definition.name, e.source));
  workflows_ = std::make_unique<Workflows>(std::move(engine), std::move(scheduler));
  workflows_->on_finished([this](const st::RunRecord& r) {
    const auto state = std::string(st::to_string(r.state));
    metrics_
        .counter("automation_workflow_runs_total", "Workflow runs this daemon finished, by workflow and final state",
                 {{"workflow", r.workflow}, {"state", state}})
        .inc();
    if (r.started_at != TimePoint{} && r.ended_at >= r.started_at)
      metrics_
          .histogram("automation_workflow_run_duration_seconds", "How long finished workflow runs took, by workflow",
                     {0.01, 0.1, 1, 5, 15, 60, 300, 900, 3600}, {{"workflow", r.workflow}})
          .observe(std::chrono::duration<double>(r.ended_at - r.started_at).count());
    static const std::map<std::string, std::string, std::less<>> kJobs{
        {"daily-metrics-aggregation", "aggregation"}, {"forecast-update", "forecast"}, {"weekly-report-generation", "report"}};
    if (auto it = kJobs.find(r.workflow); it != kJobs.end())
      metrics_
          .counter("automation_job_runs_total", "Aggregation, forecast and report runs this daemon finished, by job and outcome",
                   {{"job", it->second}, {"outcome", r.state == st::RunState::succeeded ? "success" : "failure"}})
          .inc();
  });
  workflows_->start();
  return {};
}

Result<void> Daemon::start_healing() {
  auto setup = healing_setup(ctx_);
  if (!setup) return setup.error();
  healing_ = std::move(*setup);
  supervisor_ = std::make_unique<hl::Supervisor>(clock_);
  for (const auto& svc : healing_.config.services)
    if (auto r = supervisor_->add(svc); !r) return automation::Error(errc::config, r.error().message);
  hl::HealerOptions options;
  options.supervisor = supervisor_.get();
  options.start_workflow = [this](const std::string& name, const std::map<std::string, std::string>& params,
                                  const std::string& reason) -> Result<std::int64_t> {
    if (!workflows_->accepting()) return automation::fail(errc::unavailable, "the daemon is stopping: no new workflow runs");
    return workflows_->call([&](wf::WorkflowEngine& e, wf::Scheduler&) {
      wf::StartOptions so;
      so.params = params;
      so.trigger = "healer: " + reason;
      return e.start(name, so);
    });
  };
  options.alert = [](const std::string& target, const std::string& what, const std::string& reason) {
    automation::log(automation::LogLevel::warn, "healer", fmt::format("health {}: {}: {}", what, target, reason));
  };
  healer_ = std::make_unique<hl::SelfHealer>(*store_, clock_, options);
  if (auto r = healer_->add_all(healing_.targets); !r) return automation::Error(errc::config, r.error().message);
  for (const auto& svc : healing_.config.services) {
    auto started = supervisor_->start(svc.name);
    if (!started) return started.error();
    automation::log(automation::LogLevel::info, "serve", fmt::format("started service {} (pid {})", svc.name, started->pid));
  }
  work_->every("healer", Duration::zero(), [this]() -> Duration {
    if (!running("healer")) return std::chrono::seconds(1);
    auto report = healer_->tick();
    for (const auto& r : report.records)
      if (r.kind == "action")
        metrics_
            .counter("automation_healing_actions_total", "Healing steps this daemon took, by target, action and outcome",
                     {{"target", r.target}, {"action", r.action}, {"outcome", r.outcome}})
            .inc();
    note_error("healer", report.errors.empty() ? std::string() : report.errors.front().message);
    for (const auto& e : report.errors) automation::log(automation::LogLevel::warn, "healer", e.message);
    const auto next = healer_->next_due().value_or(clock_.now() + std::chrono::seconds(30));
    return std::clamp<Duration>(next - clock_.now(), std::chrono::milliseconds(50), std::chrono::seconds(30));
  });
  return {};
}

Result<void> Daemon::start_scaling() {
  auto setup = scaling_configs(ctx_);
  if (!setup) return setup.error();
  auto made = make_scaler(ctx_, *store_, *setup, clock_);
  if (!made) return made.error();
  {
    std::lock_guard lock(mu_);
    scaling_ = std::move(*setup);
    scaler_ = std::make_shared<Scaler>(std::move(*made));
  }
  work_->every("scaler", ctx_.config.scaling.interval, [this]() -> Duration {
    if (!running("scaler")) return std::chrono::seconds(1);
    if (auto s = scaler()) {
      std::string error;
      for (const auto& r : s->evaluate_all()) {
        if (!r) {
          error = r.error().message;
          automation::log(automation::LogLevel::warn, "scaler", error);
        }
      }
      note_error("scaler", error);
    }
    return std::max<Duration>(ctx_.config.scaling.interval, std::chrono::seconds(1));
  });
  return {};
}

Result<void> Daemon::start_metrics() {
  auto setup = alert_setup(ctx_);
  if (!setup) return setup.error();
  mx::CollectorOptions co;
  co.interval = ctx_.config.alerts.interval;
  {
    std::lock_guard lock(mu_);
    collector_ = std::make_shared<mx::MetricsCollector>(*store_, clock_, co);
    alerts_ = std::make_shared<mx::AlertManager>(*store_, clock_, std::move(setup->options));
    alerts_source_ = setup->source;
  }
  (void)collector_->prime();
  work_->every("collector", std::max<Duration>(ctx_.config.alerts.interval, std::chrono::seconds(1)), [this]() -> Duration {
    if (!running("collector")) return std::chrono::seconds(1);
    std::shared_ptr<mx::MetricsCollector> collector;
    std::shared_ptr<mx::AlertManager> alerts;
    {
      std::lock_guard lock(mu_);
      collector = collector_;
      alerts = alerts_;
    }
    std::string error;
    if (auto c = collector->collect(); !c) error = c.error().message;
    if (auto ch = alerts->evaluate(); !ch)
      error = ch.error().message;
    else
      for (const auto& change : *ch)
        automation::log(automation::LogLevel::info, "alerts",
                        fmt::format("alert {} {} {}: {}", change.alert, change.what, change.rule, change.detail));
    note_error("collector", error);
    if (!error.empty()) automation::log(automation::LogLevel::warn, "collector", error);
    return std::max<Duration>(ctx_.config.alerts.interval, std::chrono::seconds(1));
  });
  return {};
}

// The runs the last daemon interrupted when it stopped (its daemon.stop record lists them) are
// taken over as their definitions' on_interrupt says: resumed, started again, or left.
void Daemon::resume_interrupted(wf::WorkflowEngine& engine) {
  st::AuditQuery q;
  q.action = "daemon.stop";
  q.limit = 1;
  auto last = store_->query_audit(q);
  if (!last || last->empty()) return;
  auto details = automation::json::parse(last->front().details);
  if (!details || !details->is_object()) return;
  auto* ids = details->as_object().if_contains("interrupted_runs");
  if (!ids || !ids->is_array()) return;
  for (const auto& v : ids->as_array()) {
    if (!v.is_int64()) continue;
    const auto id = v.as_int64();
    auto run = store_->get_run(id);
    if (!run || !*run || (*run)->state != st::RunState::interrupted) continue;  // already taken over, or gone
    const auto* def = engine.workflow((*run)->workflow);
    const auto policy = def ? def->on_interrupt : wf::InterruptPolicy::resume;
    if (policy == wf::InterruptPolicy::fail) continue;
    if (policy == wf::InterruptPolicy::restart) {
      wf::StartOptions so;
      auto params = automation::json::parse((*run)->params);
      if (params && params->is_object())
        for (const auto& [k, pv] : params->as_object())
          if (pv.is_string()) so.params.emplace(std::string(k), std::string(pv.as_string()));
      so.trigger = fmt::format("restart:{}", id);
      if (auto r = engine.start((*run)->workflow, so))
        automation::log(automation::LogLevel::info, "serve",
                        fmt::format("run {} (interrupted by the last stop) started again as run {}", id, *r));
      else
        automation::log(automation::LogLevel::warn, "serve", fmt::format("run {} could not be started again: {}", id, r.error().message));
      continue;
    }
    if (auto r = engine.resume(id, "resumed by the restarted daemon"))
      automation::log(automation::LogLevel::info, "serve", fmt::format("run {} (interrupted by the last stop) resumed", id));
    else
      automation::log(automation::LogLevel::warn, "serve", fmt::format("run {} could not be resumed: {}", id, r.error().message));
  }
}

// Families computed at scrape time from the store and the components.
void Daemon::add_collectors() {
  metrics_.collector([this](rt::PrometheusWriter& w) {
    // Breakers as stored: shared by every process on the store, so their counters are the last writer's.
    std::vector<automation::resilience::BreakerStatus> breakers;
    if (auto records = store_->list_breakers())
      for (const auto& r : *records)
        if (auto s = automation::resilience::status_from_record(r)) breakers.push_back(std::move(*s));
    automation::resilience::write_prometheus(w, breakers, false);
    // The scaler's last decision per resource.
    if (auto sc = scaler()) {
      const std::string desired = "automation_scaler_desired_size", current = "automation_scaler_current_size";
      std::vector<std::pair<std::string, st::ScalingRecord>> last;
      for (const auto& name : sc->resources()) {
        st::ScalingQuery q;
        q.resource = name;
        q.limit = 1;
        q.changes_only = false;
        if (auto l = store_->list_scaling(q); l && !l->empty()) last.emplace_back(name, l->front());
      }
      w.family(desired, "gauge", "The size the scaler last decided on, by resource");
      for (const auto& [name, r] : last) w.sample(desired, {{"resource", name}}, r.desired);
      w.family(current, "gauge", "The size the resource had at the scaler's last decision, by resource");
      for (const auto& [name, r] : last) w.sample(current, {{"resource", name}}, r.current);
    }
    // Health targets.
    if (healer_) {
      const std::string up = "automation_health_target_up";
      w.family(up, "gauge", "1 when a health target is healthy (or not probed yet), 0 otherwise, by target and state");
      for (const auto& t : healer_->status())
        w.sample(up, {{"target", t.name}, {"state", t.state}}, t.state == "healthy" || t.state == "unknown" ? 1 : 0);
    }
    const std::string active = "automation_workflow_active_runs";
    w.family(active, "gauge", "Workflow runs this daemon has in hand now");
    w.sample(active, {}, workflows_ ? static_cast<double>(workflows_->active()) : 0);
    const std::string failures = "automation_auth_failures_total", events = "automation_security_events_total";
    w.family(failures, "counter", "Failed authentications since the daemon started");
    w.sample(failures, {}, static_cast<double>(access_->failures()));
    w.family(events, "counter", "Security events (repeated failed authentications from one source) since the daemon started");
    w.sample(events, {}, static_cast<double>(access_->security_events()));
  });
}

bj::object Daemon::status_json() {
  bj::object components;
  std::map<std::string, std::string> errors, stopped_why;
  std::size_t resources = 0;
  std::string alerts_source;
  {
    std::lock_guard lock(mu_);
    errors = component_errors_;
    stopped_why = stopped_why_;
    resources = scaling_.configs.size();
    alerts_source = alerts_source_;
  }
  auto component = [&](std::string name, bj::object o) {
    auto it = errors.find(name);
    const bool stopped = running_.contains(name) && !running(name);
    o["state"] = draining_ ? "draining" : stopped ? "stopped" : it == errors.end() ? "running" : "degraded";
    if (stopped) o["stopped"] = stopped_why[name];
    if (it != errors.end()) o["error"] = it->second;
    components[name] = std::move(o);
  };
  const auto [catalog, schedules] = definitions();
  component("scheduler", {{"schedules", schedules->size()}, {"workflows", catalog->entries.size()}, {"active_runs", workflows_->active()}});
  component("healer", {{"targets", healer_->targets().size()}, {"services", healing_.config.services.size()}, {"source", healing_.source}});
  component("scaler", {{"resources", resources}, {"interval", automation::format_duration(ctx_.config.scaling.interval)}});
  component("collector", {{"interval", automation::format_duration(ctx_.config.alerts.interval)}, {"rules", alerts_source}});
  component("registry", {{"node", node_id()}, {"check_interval", automation::format_duration(ctx_.config.registry.check_interval)}});
  component("discovery", {{"interval", ctx_.config.discovery.interval > Duration::zero()
                                           ? bj::value(automation::format_duration(ctx_.config.discovery.interval))
                                           : bj::value("off")},
                          {"hosts", bj::value_from(discovery_->options().hosts)},
                          {"ports", bj::value_from(discovery_->options().ports)}});
  bj::array supervised;
  if (supervisor_)
    for (const auto& name : supervisor_->services())
      if (auto st = supervisor_->status(name)) supervised.push_back(supervised_json(*st));
  component("api", {{"port", server_ ? server_->port() : 0},
                    {"address", ctx_.config.server.address},
                    {"waiting_requests", services_.waiting.load()},
                    {"max_waiting_requests", services_.max_waiting}});
  return {{"version", automation::version_string},
          {"started", automation::format_timestamp(started_)},
          {"uptime_seconds", std::chrono::duration_cast<std::chrono::seconds>(clock_.now() - started_).count()},
          {"ready", ready_ && !draining_},
          {"pid", static_cast<std::int64_t>(::getpid())},
          {"store", ctx_.store_uri()},
          {"components", std::move(components)},
          {"services", std::move(supervised)}};
}

bj::object Daemon::supervised_json(const hl::ServiceStatus& st) {
  bj::object o{{"name", st.name},
               {"kind", "supervised"},
               {"state", st.running   ? "running"
                         : st.stopped ? "stopped"
                                      : "exited"},
               {"pid", static_cast<std::int64_t>(st.pid)},
               {"starts", st.starts},
               {"started", automation::json::time_or_null(st.started)}};
  if (!st.exit.empty()) o["last_exit"] = st.exit;
  if (st.stopped) {
    std::lock_guard lock(mu_);
    if (auto it = stopped_why_.find(st.name); it != stopped_why_.end()) o["stopped"] = it->second;
  }
  return o;
}

// The integration manager: the daemon's own services by a flag their tasks read, supervised ones
// through the Supervisor (a service stopped on purpose is not healed until it is started again).
Result<bj::object> Daemon::control(const std::string& name, bool start, const std::string& actor, const std::string& reason) {
  std::lock_guard one(control_mu_);  // a stop and a start at once leave the flag, the driver and the reason agreeing
  const std::string why = fmt::format("{} by {}: {}", start ? "started" : "stopped", actor, reason);
  if (name == "api")
    return automation::fail(errc::invalid_argument,
                            "the API answers this call and cannot stop itself: stop the daemon (SIGTERM) to stop it");
  if (auto it = running_.find(name); it != running_.end()) {
    const bool changed = it->second.exchange(start) != start;
    if (name == "scheduler") workflows_->set_firing(start);
    {
      std::lock_guard lock(mu_);
      if (start)
        stopped_why_.erase(name);
      else if (changed)
        stopped_why_[name] = why;
    }
    if (changed) automation::log(automation::LogLevel::warn, "serve", fmt::format("service {} {}", name, why));
    return bj::object{{"name", name}, {"kind", "component"}, {"state", start ? "running" : "stopped"}, {"changed", changed}};
  }
  const auto names = supervisor_->services();
  if (std::find(names.begin(), names.end(), name) == names.end()) {
    std::vector<std::string> known{"api"};
    for (const auto& [n, on] : running_) known.push_back(n);
    known.insert(known.end(), names.begin(), names.end());
    return automation::fail(errc::not_found, fmt::format("no service \"{}\" (known: {})", name, fmt::join(known, ", ")));
  }
  auto before = supervisor_->status(name);
  if (!before) return before.error();
  // Stopping counts an exited service too: it is then stopped on purpose, and not healed.
  const bool changed = start ? !before->running : before->running || !before->stopped;
  auto after = !changed ? before : start ? supervisor_->start(name) : supervisor_->stop(name);
  if (!after) return after.error();
  if (changed) {
    std::lock_guard lock(mu_);
    if (start)
      stopped_why_.erase(name);
    else
      stopped_why_[name] = why;
  }
  if (changed) automation::log(automation::LogLevel::warn, "serve", fmt::format("service {} {}", name, why));
  auto o = supervised_json(*after);
  o["changed"] = changed;
  return o;
}

bj::object Daemon::services_health() {
  auto status = status_json();
  bj::array out;
  bool healthy = true;
  for (const auto& [name, c] : status.at("components").as_object()) {
    const auto& o = c.as_object();
    const std::string state(o.at("state").as_string());
    const bool ok = state == "running";
    healthy = healthy && ok;
    std::string reason = ok ? "running" : state;
    if (auto* e = o.if_contains("error")) reason = std::string(e->as_string());
    if (auto* w = o.if_contains("stopped")) reason = std::string(w->as_string());
    out.push_back(bj::object{{"name", name}, {"kind", "component"}, {"state", state}, {"healthy", ok}, {"reason", reason}});
  }
  std::map<std::string, hl::TargetStatus> targets;
  for (auto& t : healer_->status()) targets.emplace(t.name, std::move(t));
  for (const auto& v : status.at("services").as_array()) {
    const auto& o = v.as_object();
    const std::string name(o.at("name").as_string()), state(o.at("state").as_string());
    bool ok = state == "running";
    std::string reason = ok                      ? "running"
                         : o.contains("stopped") ? std::string(o.at("stopped").as_string())
                                                 : "exited: " + std::string(o.contains("last_exit") ? o.at("last_exit").as_string() : "");
    bj::object h{{"name", name}, {"kind", "supervised"}, {"state", state}};
    if (auto t = targets.find(name); t != targets.end()) {
      h["target"] = t->second.state;
      if (ok && (t->second.state == "unhealthy" || t->second.state == "quarantined" || t->second.state == "healing")) {
        ok = false;
        reason = fmt::format("health target {} is {}: {}", name, t->second.state, t->second.reason);
      }
    }
    healthy = healthy && ok;
    h["healthy"] = ok;
    h["reason"] = reason;
    out.push_back(std::move(h));
  }
  return bj::object{{"healthy", healthy}, {"services", std::move(out)}};
}

Result<void> Daemon::start_server(const ServeOptions& o) {
  const auto& sc = ctx_.config.server;
  if (sc.port != static_cast<int>(sc.port))
    return automation::fail(errc::config, fmt::format("server.port: {} is not a whole number", sc.port));
  services_.store = store_.get();
  services_.clock = &clock_;
  services_.workflows = workflows_.get();
  services_.definitions = [this] { return definitions(); };
  services_.registry = registry_.get();
  services_.scan = [this](const std::string& actor, const std::string& reason) -> Result<bj::object> {
    auto scan = discovery_->scan(actor, reason);
    if (!scan) return scan.error();
    return rg::to_json(*scan);
  };
  services_.advisor = advisor_options(ctx_);
  services_.apply_suggestion = [this](const automation::intelligence::Suggestion& s) { return apply_suggestion(s); };
  services_.healer = healer_.get();
  services_.healing = &healing_;
  services_.scaler = [this] { return scaler(); };
  services_.access = access_.get();
  services_.metrics = &metrics_;
  services_.status = [this] { return status_json(); };
  services_.control = [this](const std::string& name, bool start, const std::string& actor, const std::string& reason) {
    return control(name, start, actor, reason);
  };
  services_.services_health = [this] { return services_health(); };
  // Half the HTTP threads may wait for runs (none with one thread); the others keep answering.
  services_.max_waiting = static_cast<int>(ctx_.config.server.threads) / 2;
  services_.ready = [this]() -> std::pair<bool, std::string> {
    if (draining_) return {false, "draining: the daemon is stopping"};
    if (!ready_) return {false, "starting"};
    return {true, "ready"};
  };
  rt::ServerOptions so;
  so.address = sc.address;
  so.port = static_cast<int>(sc.port);
  server_ = std::make_unique<rt::HttpServer>(*loop_, api_routes(services_), so);
  if (auto r = server_->start(); !r) return r.error();
  // The dashboard's live channel: while a page is connected, what it shows is recomputed every
  // second and pushed when it changed.
  work_->every("dashboard", std::chrono::seconds(1), [this]() -> Duration {
    if (services_.live->clients() == 0) {
      last_snapshot_.clear();  // a new page gets the state in its greeting
      return std::chrono::seconds(1);
    }
    auto snapshot = services_.snapshot();
    const auto at = snapshot.at("at");
    snapshot.erase("at");
    auto text = automation::json::dump(snapshot);
    if (text != last_snapshot_) {
      last_snapshot_ = std::move(text);
      snapshot["at"] = at;
      services_.live->broadcast(automation::json::dump(snapshot));
    }
    return std::chrono::seconds(1);
  });
  const auto url = fmt::format("http://{}:{}", sc.address, server_->port());
  if (!o.port_file.empty()) {
    // Written whole, then renamed: a reader never sees half a number.
    const auto tmp = o.port_file + ".tmp";
    std::ofstream(tmp) << server_->port() << "\n";
    std::error_code ec;
    std::filesystem::rename(tmp, o.port_file, ec);
    if (ec) return automation::fail(errc::io, fmt::format("--port-file {}: {}", o.port_file, ec.message()));
  }
  automation::log(automation::LogLevel::info, "serve", fmt::format("serving on {}", url));
  if (!ctx_.global.quiet) fmt::print(stderr, "autoctl: serving the API on {} (Ctrl-C stops)\n", url);
  return {};
}

Result<void> Daemon::start_registry() {
  auto options = discovery_options(ctx_.config);
  if (!options) return options.error();
  auto discovery = rg::Discovery::create(*store_, clock_, std::move(*options));
  if (!discovery) return automation::Error(errc::config, discovery.error().message);
  discovery_.emplace(std::move(*discovery));
  registry_ = std::make_unique<rg::Registry>(*store_, clock_, registry_options(ctx_.config));
  return {};
}

// After the server started (the daemon's own node names its port): its heartbeats, expiry, scans.
void Daemon::start_registry_tasks() {
  const auto check = std::max<Duration>(ctx_.config.registry.check_interval, std::chrono::seconds(1));
  work_->every("registry", check, [this, check]() -> Duration {
    if (!running("registry")) return std::chrono::seconds(1);
    std::string error;
    if (auto beat = registry_->heartbeat(node_id(), "daemon"); !beat) {
      if (beat.error().is(errc::not_found))
        register_self();  // someone removed it: it is still here
      else
        error = beat.error().message;
    }
    if (auto down = registry_->expire(); !down)
      error = down.error().message;
    else
      for (const auto& t : *down)
        automation::log(automation::LogLevel::warn, "registry", fmt::format("node {} is down: {}", t.node, t.reason));
    note_error("registry", error);
    return check;
  });
  if (const auto every = ctx_.config.discovery.interval; every > Duration::zero())
    work_->every("discovery", every, [this, every]() -> Duration {
      if (!running("discovery")) return std::chrono::seconds(1);
      auto scan =
          discovery_->scan("discovery", "every " + automation::format_duration(std::chrono::duration_cast<automation::Millis>(every)));
      note_error("discovery", scan ? std::string() : scan.error().message);
      if (scan && (scan->added || scan->lost))
        automation::log(automation::LogLevel::info, "discovery",
                        fmt::format("scan {}: {} new, {} lost", scan->id, scan->added, scan->lost));
      return every;
    });
}

// The daemon's own node: its API and components as services, beating every registry.check_interval.
void Daemon::register_self() {
  rg::Registration r;
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  std::string id = "autoctl-";
  for (const char* c = host; *c && id.size() < 90; ++c)
    id += std::isalnum(static_cast<unsigned char>(*c)) || *c == '.' || *c == '-' ? *c : '-';
  const int port = server_ ? server_->port() : 0;
  id += fmt::format("-{}", port);  // two daemons on one host and store are two nodes
  r.id = id;
  {
    std::lock_guard lock(mu_);
    node_id_ = id;
  }
  r.kind = "daemon";
  r.address = fmt::format("{}:{}", ctx_.config.server.address, port);
  r.services.push_back({"api", port, fmt::format("http://{}:{}/", ctx_.config.server.address, port), {}});
  for (const char* c : {"scheduler", "healer", "scaler", "collector"}) r.services.push_back({c, std::nullopt, "", {}});
  for (const auto& svc : healing_.config.services) r.services.push_back({svc.name, std::nullopt, "", {}});
  r.labels = {{"version", automation::version_string}, {"pid", std::to_string(::getpid())}};
  r.ttl =
      std::chrono::duration_cast<automation::Millis>(3 * std::max<Duration>(ctx_.config.registry.check_interval, std::chrono::seconds(1)));
  if (auto n = registry_->register_node(r, "daemon"); !n)
    automation::log(automation::LogLevel::warn, "registry",
                    fmt::format("could not register this daemon as node {}: {}", id, n.error().message));
}

// Writes the change, then loads it into the running engine and scheduler, so it takes effect now.
Result<bj::object> Daemon::apply_suggestion(const automation::intelligence::Suggestion& s) {
  std::lock_guard one(apply_mu_);
  const auto [catalog, schedules] = definitions();
  const auto defs = definitions_of(*catalog, *schedules);
  auto applied = automation::intelligence::apply(s, defs.workflows, defs.schedules, ctx_.config.workflows_dir, defs.sources);
  if (!applied) return applied.error();
  auto loaded = workflows_->call([&](wf::WorkflowEngine& e, wf::Scheduler& sc) -> Result<void> {
    if (applied->workflow)
      if (auto r = e.register_workflow(*applied->workflow); !r) return r.error();
    if (applied->schedule)
      if (auto r = sc.add(*applied->schedule); !r) return r.error();
    return {};
  });
  if (!loaded) {
    // The files are written and the next start loads them: that is what was done, and what the audit says.
    auto doc = applied_json(s, *applied);
    doc["loaded"] = false;
    doc["not_loaded_because"] = loaded.error().message;
    automation::log(automation::LogLevel::warn, "serve",
                    fmt::format("suggestion {} written ({}) but not loaded: {}; the next start loads it", s.id, applied->summary,
                                loaded.error().message));
    return doc;
  }
  auto next_catalog = std::make_shared<Catalog>(*catalog);
  auto next_schedules = std::make_shared<std::vector<ScheduleEntry>>(*schedules);
  if (applied->workflow) {
    const std::string file = applied->files.front();
    auto it = std::find_if(next_catalog->entries.begin(), next_catalog->entries.end(),
                           [&](const CatalogEntry& e) { return e.definition.name == applied->workflow->name; });
    if (it != next_catalog->entries.end())
      *it = {*applied->workflow, file};
    else
      next_catalog->entries.push_back({*applied->workflow, file});
    std::sort(next_catalog->entries.begin(), next_catalog->entries.end(),
              [](const auto& a, const auto& b) { return a.definition.name < b.definition.name; });
  }
  if (applied->schedule) {
    next_schedules->push_back({*applied->schedule, applied->files.back()});
    std::sort(next_schedules->begin(), next_schedules->end(),
              [](const auto& a, const auto& b) { return a.definition.name < b.definition.name; });
  }
  {
    std::lock_guard lock(mu_);
    catalog_ = std::move(next_catalog);
    schedules_ = std::move(next_schedules);
  }
  automation::log(automation::LogLevel::info, "serve", fmt::format("suggestion {} applied: {}", s.id, applied->summary));
  auto doc = applied_json(s, *applied);
  doc["loaded"] = true;
  return doc;
}

Result<void> Daemon::start(const ServeOptions& o) {
  started_ = clock_.now();
  const auto threads = ctx_.config.server.threads;
  if (threads != static_cast<int>(threads))
    return automation::fail(errc::config, fmt::format("server.threads: {} is not a whole number", threads));
  loop_ = std::make_unique<rt::EventLoop>(static_cast<int>(threads));
  // The healer, the scaler, the collector, the registry and discovery each take one thread at most
  // (a task never overlaps itself); in-process steps (aggregation, reports, forecasts, backups) and
  // the dashboard's updates take the rest.
  work_ = std::make_unique<rt::EventLoop>(6);
  auto opened = ctx_.open_store(Context::Access::write);
  if (!opened) return opened.error();
  store_ = std::move(*opened);
  if (auto* sqlite = dynamic_cast<st::SqliteStore*>(store_.get())) {
    auto& latency = metrics_.histogram("automation_store_statement_duration_seconds", "How long the store's SQL statements took",
                                       {0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1});
    sqlite->observe_statements([&latency](std::chrono::nanoseconds d) { latency.observe(std::chrono::duration<double>(d).count()); });
  }
  access_ = std::make_unique<rt::AccessControl>(*store_, clock_);
  metrics_.gauge("automation_build_info", "The build: always 1, its version in the label", {{"version", automation::version_string}})
      .set(1);
  metrics_.gauge("automation_start_time_seconds", "When the daemon started, in seconds since the epoch")
      .set(std::chrono::duration<double>(started_.time_since_epoch()).count());
  loop_->start();
  work_->start();
  add_collectors();
  if (auto r = start_workflows(); !r) return automation::with_context(r.error(), "workflows");
  if (auto r = start_healing(); !r) return automation::with_context(r.error(), "healing");
  if (auto r = start_scaling(); !r) return automation::with_context(r.error(), "scaling");
  if (auto r = start_metrics(); !r) return automation::with_context(r.error(), "metrics");
  if (auto r = start_registry(); !r) return automation::with_context(r.error(), "registry");
  if (auto r = start_server(o); !r) return r.error();
  register_self();
  start_registry_tasks();
  ready_ = true;
  started_ok_ = true;
  audit("daemon.start", st::AuditOutcome::success, "autoctl serve started",
        {{"port", server_->port()}, {"address", ctx_.config.server.address}, {"pid", static_cast<std::int64_t>(::getpid())}});
  return {};
}

namespace {
/// "a.b" -> its value as JSON text, for every leaf of a configuration document.
void flatten(const bj::value& v, const std::string& prefix, std::map<std::string, std::string>& out) {
  if (v.is_object()) {
    for (const auto& [k, x] : v.as_object()) flatten(x, prefix.empty() ? std::string(k) : prefix + "." + std::string(k), out);
    return;
  }
  out[prefix] = automation::json::dump(v);
}
}  // namespace

void Daemon::reload() {
  auto cfg = automation::load_config(ctx_.global.config, automation::process_environment());
  if (!cfg) {
    automation::log(automation::LogLevel::error, "serve",
                    "SIGHUP: the configuration is not valid; the old one stays: " + cfg.error().message);
    audit("daemon.reload", st::AuditOutcome::failure, "the configuration is not valid; the old one stays",
          {{"error", cfg.error().message}});
    return;
  }
  // What can change while running: thresholds, scaled resources, alert rules, the log level.
  // The store, the listening address, workflows, schedules, healing targets and services need a restart.
  Context next = ctx_;
  next.config = *cfg;
  auto scaling = scaling_configs(next);
  Result<Scaler> scaler = scaling ? make_scaler(next, *store_, *scaling, clock_) : Result<Scaler>(scaling.error());
  auto alerts = alert_setup(next);
  if (!scaler || !alerts) {
    const auto msg = !scaler ? scaler.error().message : alerts.error().message;
    automation::log(automation::LogLevel::error, "serve", "SIGHUP: the new configuration is refused; the old one stays: " + msg);
    audit("daemon.reload", st::AuditOutcome::failure, "the new configuration is refused; the old one stays", {{"error", msg}});
    return;
  }
  // Every key that changed and is not applied below needs a restart; the thresholds are applied to
  // the scaler and the alert rules, while the hourly resource check and the healing seeds keep the
  // values they started with.
  bj::array restart_needed;
  {
    std::map<std::string, std::string> before, after;
    flatten(ctx_.config.to_json(), "", before);
    flatten(cfg->to_json(), "", after);
    for (const auto& [key, value] : after) {
      if (before[key] == value) continue;
      const bool applied =
          key.starts_with("thresholds.") || key.starts_with("log.") || key == "scaling.resources_file" || key == "alerts.rules_file";
      if (!applied || key.starts_with("thresholds.")) restart_needed.push_back(bj::value(key));
    }
  }
  {
    std::lock_guard lock(mu_);
    scaling_ = std::move(*scaling);
    scaler_ = std::make_shared<Scaler>(std::move(*scaler));
    alerts_ = std::make_shared<mx::AlertManager>(*store_, clock_, std::move(alerts->options));
    alerts_source_ = alerts->source;
  }
  ctx_.config.thresholds = cfg->thresholds;
  ctx_.config.scaling.resources_file = cfg->scaling.resources_file;
  ctx_.config.alerts.rules_file = cfg->alerts.rules_file;
  ctx_.config.log = cfg->log;
  ctx_.config.sources = cfg->sources;
  ctx_.setup_logging(automation::LogLevel::info);
  automation::log(automation::LogLevel::info, "serve", "SIGHUP: configuration reloaded");
  audit("daemon.reload", st::AuditOutcome::success,
        restart_needed.empty() ? "configuration reloaded: thresholds, scaled resources, alert rules, log level"
                               : fmt::format("configuration reloaded: thresholds, scaled resources, alert rules, log level; {} other "
                                             "change(s) take effect at the next start",
                                             restart_needed.size()),
        {{"restart_needed_for", std::move(restart_needed)}});
}

void Daemon::stop(const std::string& why) {
  draining_ = true;
  automation::log(automation::LogLevel::info, "serve",
                  fmt::format("{}: draining (up to {})", why, automation::format_duration(ctx_.config.server.drain_timeout)));
  const auto left = workflows_ ? workflows_->stop(ctx_.config.server.drain_timeout) : std::vector<std::int64_t>{};
  if (server_) server_->stop();
  if (work_) work_->stop();
  if (loop_) loop_->stop();
  if (supervisor_) supervisor_.reset();  // stops the supervised services
  bj::array ids;
  for (auto id : left) ids.push_back(id);
  const auto reason = left.empty() ? fmt::format("{}: stopped cleanly", why)
                                   : fmt::format("{}: {} run(s) still running after the drain were interrupted (a restart recovers them)",
                                                 why, left.size());
  if (!left.empty()) automation::log(automation::LogLevel::warn, "serve", reason);
  // Only a daemon that started records its stop: the next one resumes the runs of the last record.
  if (store_ && started_ok_) audit("daemon.stop", st::AuditOutcome::success, reason, {{"interrupted_runs", std::move(ids)}});
}

int run_serve(Context& ctx, const ServeOptions& o) {
  if (o.routes) {
    // The route table alone (no store, no server): what docs/openapi.json must describe.
    // Nothing is served: the routes need an access control to be built, not a store.
    st::MemoryStore memory;
    rt::AccessControl access(memory, automation::SystemClock::instance());
    Services none;
    none.access = &access;
    std::vector<std::string> described;
    (void)api_routes(none, &described);
    for (const auto& r : described) fmt::print("{}\n", r);
    return ex_ok;
  }
  std::optional<std::chrono::steady_clock::time_point> until;
  if (!o.duration.empty()) {
    auto d = automation::parse_duration(o.duration);
    if (!d) return ctx.error(automation::with_context(d.error(), "--for"));
    until = std::chrono::steady_clock::now() + *d;
  }
  // The signals are taken by sigwait() on this thread; every thread started from here on inherits
  // the mask, so none of them is interrupted by them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ctx.setup_logging(automation::LogLevel::info);
  Daemon daemon(ctx);
  if (auto r = daemon.start(o); !r) {
    daemon.stop("startup failed");
    return ctx.error(r.error());
  }
  for (;;) {
    int sig = 0;
    if (until) {
      // --for: a demo or a test that ends by itself.
      const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(*until - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        daemon.stop("--for " + o.duration + " passed");
        return ex_ok;
      }
      timespec ts{static_cast<time_t>(left.count() / 1'000'000'000), static_cast<long>(left.count() % 1'000'000'000)};
      sig = sigtimedwait(&set, nullptr, &ts);
      if (sig < 0) continue;
    } else if (sigwait(&set, &sig) != 0) {
      continue;
    }
    if (sig == SIGHUP) {
      daemon.reload();
      continue;
    }
    daemon.stop(sig == SIGINT ? "SIGINT" : "SIGTERM");
    return ex_ok;
  }
}

}  // namespace

void register_serve(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<ServeOptions>();
  auto* serve = app.add_subcommand("serve", "Run the daemon: scheduler, healer, scaler, metrics and the HTTP API, until SIGTERM");
  serve->add_option("--port-file", o->port_file, "Write the port it listens on to this file (with server.port 0: a free port)");
  serve->add_option("--for", o->duration, "Stop by itself after this long (a demo, a smoke test), as SIGTERM would");
  serve->add_flag("--routes", o->routes, "Print the route table (METHOD pattern role) and exit");
  serve->footer(
      "Zero configuration works: the store under var/, listening on 127.0.0.1:8080 (server.*).\n"
      "SIGHUP reloads the configuration (a bad one is refused and the old one kept); SIGTERM drains running\n"
      "workflow runs for server.drain_timeout and records what was interrupted. Tokens: `autoctl token create`.");
  serve->callback([&ctx, o] { ctx.run = [&ctx, o] { return run_serve(ctx, *o); }; });

  auto* status = app.add_subcommand("status", "A running daemon's components, version and uptime (needs --server or remote.url)");
  status->callback([&ctx] {
    ctx.remote_capable = true;
    ctx.run = [&ctx]() -> int {
      if (!ctx.remote())
        return ctx.error(
            automation::fail(errc::invalid_argument, "autoctl status asks a running daemon: give --server URL (or remote.url)"));
      auto doc = ctx.api("GET", "/api/v1/status");
      if (!doc) return ctx.error(doc.error());
      ctx.print_json(*doc);
      return doc->at("ready") == true ? ex_ok : ex_no;
    };
  });
}

}  // namespace autoctl
