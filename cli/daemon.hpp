#pragma once
// `autoctl serve`: every component on one event loop, and the HTTP API in front of them.
//
// Threads: the event loop's pool (server.threads) runs the HTTP connections, the periodic component
// work (healer passes, scaler passes, metric collection and alert rules) and in-process workflow
// steps. The workflow engine and the scheduler are passive and single-threaded: one driver thread
// polls them and blocks in their wait() (which watches the step processes); everything else that
// needs them (an API call starting a run, the healer starting a workflow) hands the driver a job
// and wakes it.
#include "advisor_support.hpp"
#include "components.hpp"
#include "context.hpp"
#include "workflow_support.hpp"

#include <automation/registry/registry.hpp>

#include <automation/runtime/access.hpp>
#include <automation/runtime/http_server.hpp>
#include <automation/runtime/prometheus.hpp>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

namespace autoctl {

/// The engine and the scheduler behind their driver thread.
class Workflows {
 public:
  Workflows(std::unique_ptr<automation::workflow::WorkflowEngine> engine, std::unique_ptr<automation::workflow::Scheduler> scheduler);
  ~Workflows();  ///< stop(0) when still running
  void start();
  /// Stops firing schedules, lets active runs finish for up to `drain`, then ends the driver; the
  /// engine's destructor marks what still runs interrupted (a restart recovers it). Returns the ids
  /// of the runs left unfinished.
  std::vector<std::int64_t> stop(automation::Duration drain);

  /// Runs `job` on the driver thread between two polls and returns its result (a Result);
  /// errc::unavailable once the driver has stopped.
  template <class F>
  auto call(F job)
      -> decltype(job(std::declval<automation::workflow::WorkflowEngine&>(), std::declval<automation::workflow::Scheduler&>())) {
    using R = decltype(job(std::declval<automation::workflow::WorkflowEngine&>(), std::declval<automation::workflow::Scheduler&>()));
    auto promise = std::make_shared<std::promise<R>>();
    auto future = promise->get_future();
    const bool queued =
        post([promise, job = std::move(job)](automation::workflow::WorkflowEngine& e, automation::workflow::Scheduler& s) mutable {
          promise->set_value(job(e, s));
        });
    if (!queued)
      return R(automation::Error(automation::errc::unavailable, "the workflow engine has stopped (the daemon is shutting down)"));
    return future.get();
  }
  /// The run's record once it is final, or its latest record after `max` (real time).
  automation::Result<automation::storage::RunRecord> wait(std::int64_t run_id, std::chrono::milliseconds max);
  /// False once stop() began: nothing new should be started (the API answers 503).
  bool accepting() const noexcept;
  /// Whether schedules fire (an operator may stop the scheduler while runs go on); wakes the driver.
  void set_firing(bool on);
  /// Runs this engine has in hand now.
  std::size_t active() const noexcept { return active_.load(); }
  /// Called on the driver thread with each run this engine finishes.
  void on_finished(std::function<void(const automation::storage::RunRecord&)> fn);

 private:
  using Job = std::function<void(automation::workflow::WorkflowEngine&, automation::workflow::Scheduler&)>;
  bool post(Job job);  ///< false once the driver has stopped
  void drive();

  automation::storage::Store& store_;  // outlives the engine: wait() reads it after the engine is gone
  std::unique_ptr<automation::workflow::WorkflowEngine> engine_;
  std::unique_ptr<automation::workflow::Scheduler> scheduler_;
  std::thread thread_;
  bool started_ = false;  // under mu_
  bool closed_ = false;   // under mu_: the driver took its last jobs
  mutable std::mutex mu_;
  std::condition_variable finished_cv_;
  std::deque<Job> jobs_;
  std::map<std::int64_t, automation::storage::RunRecord> finished_;  // recent final records, for wait()
  std::vector<std::function<void(const automation::storage::RunRecord&)>> listeners_;
  std::atomic<bool> accepting_{true};  // false while draining: the scheduler fires nothing, the API and the healer start nothing
  std::atomic<bool> firing_{true};     // false: the scheduler was stopped by an operator; runs started otherwise go on
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> active_{0};
};

/// What the HTTP API works with (owned by the daemon; every pointer outlives the server).
struct Services {
  automation::storage::Store* store = nullptr;
  const automation::Clock* clock = nullptr;
  Workflows* workflows = nullptr;
  /// The workflows and schedules, one generation of both: applying a suggestion adds to them, so
  /// each call gets the set of the moment (hold the pointers while using them).
  std::function<std::pair<std::shared_ptr<const Catalog>, std::shared_ptr<const std::vector<ScheduleEntry>>>()> definitions;
  automation::registry::Registry* registry = nullptr;
  /// A discovery scan now, as discovery.* says; the scan's record.
  std::function<automation::Result<boost::json::object>(const std::string& actor, const std::string& reason)> scan;
  automation::intelligence::AdvisorOptions advisor;
  /// Applies a suggestion (writes it into workflows_dir, then registers its workflow and schedule
  /// with the running engine and scheduler); what it did.
  std::function<automation::Result<boost::json::object>(const automation::intelligence::Suggestion& s)> apply_suggestion;
  automation::healing::SelfHealer* healer = nullptr;
  const HealingSetup* healing = nullptr;
  /// The scaler is replaced on a reload: use it through `scaler()` under its lock.
  std::function<std::shared_ptr<automation::scaling::ResourceScaler>()> scaler;
  automation::runtime::AccessControl* access = nullptr;
  automation::runtime::MetricsRegistry* metrics = nullptr;
  /// The components' status document (GET /api/v1/automation/status).
  std::function<boost::json::object()> status;
  /// Starts or stops one of the daemon's own services (scheduler, healer, scaler, collector,
  /// registry, discovery) or a supervised one; what it is now.
  std::function<automation::Result<boost::json::object>(const std::string& name, bool start, const std::string& actor,
                                                        const std::string& reason)>
      control;
  /// Every service's health now: {"healthy", "services": [...]}.
  std::function<boost::json::object()> services_health;
  /// Set by api_routes(): the dashboard's live channel (GET /api/v1/live, a WebSocket) and the
  /// state it pushes ({"type": "snapshot", ...}); the daemon broadcasts it when it changes.
  std::shared_ptr<automation::runtime::WebSocketChannel> live;
  std::function<boost::json::object()> snapshot;
  /// Whether the daemon is ready (every component started, not draining), and why not.
  std::function<std::pair<bool, std::string>()> ready;
  /// Requests that may wait for a run at once (each holds a loop thread); more answer 202 at once.
  int max_waiting = 1;
  std::atomic<int> waiting{0};  ///< requests waiting for a run now
};

/// The API's route table over `services` (docs/http-api.md); `described` gets each route as
/// "METHOD pattern role" (role "none" for /healthz).
automation::runtime::Router api_routes(Services& services, std::vector<std::string>* described = nullptr);

}  // namespace autoctl
