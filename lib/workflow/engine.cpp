#include <automation/workflow/engine.hpp>

#include <automation/resilience/breaker_registry.hpp>

#include <automation/core/ids.hpp>
#include <automation/core/json.hpp>
#include <automation/core/logging.hpp>
#include <automation/core/time.hpp>
#include <detail/log.hpp>
#include <detail/names.hpp>
#include "detail/http_client.hpp"
#include "workflow/process.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <csignal>
#include <deque>
#include <mutex>
#include <set>

namespace automation::workflow {

namespace sd = automation::storage;
namespace bj = boost::json;
using automation::detail::logf;
using std::chrono::duration_cast;

// ---- owners --------------------------------------------------------------------------------------

namespace {
struct OwnerId {
  long long pid = 0, start = 0;
  std::string host;
};

std::optional<OwnerId> parse_owner(std::string_view s) {
  OwnerId o;
  char host[256] = {};
  const std::string text(s);
  if (std::sscanf(text.c_str(), "pid %lld (start %lld) on %255s", &o.pid, &o.start, host) != 3) return std::nullopt;
  o.host = host;
  return o;
}
}  // namespace

std::string this_process_owner() {
  const pid_t pid = ::getpid();
  return fmt::format("pid {} (start {}) on {}", pid, detail::process_start_ticks(pid), host_name());
}

bool owner_alive(const RunRecord& run, TimePoint now) {
  if (run.owner.empty()) return false;
  if (auto o = parse_owner(run.owner); o && o->host == host_name())
    return o->pid > 0 && o->start != 0 && detail::process_start_ticks(static_cast<pid_t>(o->pid)) == o->start;
  return run.lease_until > now;
}

// ---- the engine's state ----------------------------------------------------------------------------

namespace {

bool ok_for_dependents(RunState s, bool continue_on_error) {
  return s == RunState::succeeded || (continue_on_error && is_final(s) && s != RunState::skipped && s != RunState::cancelled);
}
bool failing(RunState s, bool continue_on_error) {
  return !continue_on_error && (s == RunState::failed || s == RunState::timed_out || s == RunState::interrupted);
}

sd::TaskOutcome task_outcome(RunState s) {
  switch (s) {
    case RunState::succeeded:
      return sd::TaskOutcome::success;
    case RunState::timed_out:
      return sd::TaskOutcome::timeout;
    case RunState::cancelled:
    case RunState::interrupted:
    case RunState::skipped:
      return sd::TaskOutcome::cancelled;
    default:
      return sd::TaskOutcome::failure;
  }
}

std::string outputs_json(const std::map<std::string, std::string>& m) {
  if (m.empty()) return "{}";
  bj::object o;
  for (const auto& [k, v] : m) o[k] = v;
  return json::dump(o);
}

std::map<std::string, std::string> string_map(std::string_view text) {
  std::map<std::string, std::string> out;
  auto doc = json::parse(text, "stored map");
  if (!doc || !doc->is_object()) return out;
  for (const auto& kv : doc->as_object())
    out[std::string(kv.key())] = kv.value().is_string() ? std::string(kv.value().as_string()) : json::dump(kv.value());
  return out;
}

// A stream kept to its last `max` bytes.
struct BoundedLog {
  std::string text;
  std::size_t dropped = 0;
  void append(std::string_view s, std::size_t max) {
    text.append(s);
    if (text.size() > 2 * max) {
      const std::size_t cut = text.size() - max;
      dropped += cut;
      text.erase(0, cut);
    }
  }
  // The last `max` bytes, with a note of how many came before.
  std::string finish(std::size_t max) const {
    const std::size_t cut = text.size() > max ? text.size() - max : 0;
    const std::string_view kept = std::string_view(text).substr(cut);
    if (!dropped && !cut) return text;
    return fmt::format("[... {} earlier bytes dropped ...]\n{}", dropped + cut, kept);
  }
};

// Result of an in-process step run on the executor.
struct AsyncResult {
  Result<void> result;
  std::map<std::string, std::string> outputs;
  std::string log;
  std::optional<int> status;  // HTTP status
};

struct Attempt {
  int number = 1;
  TimePoint started{};
  std::optional<TimePoint> deadline;
  std::optional<detail::Child> child;
  bool term_sent = false, kill_sent = false, stopping = false;
  TimePoint kill_at{};
  RunState stop_state = RunState::cancelled;
  std::string stop_reason;
  BoundedLog out, err;
  std::string line;
  bool line_overflow = false;
  std::map<std::string, std::string> outputs;
  std::int64_t child_run = 0;  // a sub-workflow
  bool async = false;          // on the executor
  std::shared_ptr<std::atomic<bool>> cancel = std::make_shared<std::atomic<bool>>(false);
  std::shared_ptr<resilience::CircuitBreaker> breaker;  // the step's, held while its permit is out
  resilience::Permit permit;                            // declared after: reported or dropped first
};

struct StepRt {
  const StepDefinition* def = nullptr;
  const StepAction* action = nullptr;
  std::string id;
  bool compensation = false;
  RunState state = RunState::queued;
  int attempts = 0;
  TimePoint started{}, ended{};
  std::optional<int> exit_code;
  std::map<std::string, std::string> outputs;
  std::string reason;
  std::optional<resilience::RetryState> retry;
  Duration breaker_wait{0};  // set by a breaker's refusal: how long until it may admit again
  TimePoint not_before{};
  std::unique_ptr<Attempt> inflight;
  std::size_t finish_seq = 0;
};

enum class Phase { main, compensate, finally_steps, done };

struct Completion {
  std::int64_t run;
  std::string step;
  int attempt;
  AsyncResult result;
};

// What executor threads hand back, and the eventfd that wakes wait(). Shared with the work posted
// to the executor, so a callback finishing after the engine is gone writes into a live object.
struct Inbox {
  std::mutex mu;
  std::deque<Completion> completions;
  int wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  Inbox() = default;
  Inbox(const Inbox&) = delete;
  Inbox& operator=(const Inbox&) = delete;
  ~Inbox() {
    if (wake_fd >= 0) ::close(wake_fd);
  }
  void wake() const {
    if (wake_fd >= 0) {
      const std::uint64_t one = 1;
      [[maybe_unused]] auto n = ::write(wake_fd, &one, sizeof one);
    }
  }
};

struct RunRt {
  RunRecord rec;
  std::shared_ptr<const WorkflowDefinition> def;
  std::map<std::string, std::string> params;
  std::vector<StepRt> steps;  // the definition's steps, then compensations as they are created
  std::map<std::string, std::size_t, std::less<>> index;
  std::vector<std::size_t> order;  // topological order of the definition's steps
  Phase phase = Phase::main;
  std::vector<std::size_t> comp_queue;  // steps to compensate, in order
  std::size_t comp_pos = 0;
  bool cancelling = false;
  RunState cancel_state = RunState::cancelled;
  std::string cancel_reason;
  std::optional<TimePoint> deadline;
  TimePoint next_renew{}, next_cancel_check{};
  std::map<std::string, std::size_t> pending_step_pos;
  std::vector<sd::StepRecord> pending_steps;
  std::vector<sd::AttemptRecord> pending_attempts;
  bool run_dirty = false;
  std::size_t finish_counter = 0;
  bool admitted = false;
  bool lost = false;     // another engine took it over
  int event_depth = -1;  // the depth of the event that started it (-1: none)
};

}  // namespace

struct WorkflowEngine::Impl {
  sd::Store& store;
  const Clock& clock;
  Options options;
  std::vector<std::function<void(const RunRecord&)>> finished_listeners;
  std::unique_ptr<resilience::TaskHistory> own_history;
  resilience::TaskHistory* history = nullptr;
  std::unique_ptr<resilience::BreakerRegistry> own_breakers;  // made when a step first names a breaker
  std::map<std::string, std::string> base_env;
  std::map<std::string, std::shared_ptr<const WorkflowDefinition>, std::less<>> workflows;
  std::map<std::string, StepFunction, std::less<>> callbacks, actions;
  std::map<std::int64_t, std::unique_ptr<RunRt>> runs;  // in hand: queued here or running
  std::map<std::int64_t, std::pair<RunState, std::string>> finished_children;
  std::size_t inflight = 0;
  std::optional<TimePoint> next_timer;
  std::shared_ptr<Inbox> inbox = std::make_shared<Inbox>();

  // Shared with other threads.
  mutable std::mutex mu;
  std::set<std::int64_t> active_ids;
  std::deque<std::pair<std::int64_t, std::string>> cancel_requests;

  Impl(sd::Store& s, const Clock& c, Options o) : store(s), clock(c), options(std::move(o)) {
    if (options.owner.empty()) options.owner = this_process_owner();
    if (options.history) {
      history = options.history;
    } else {
      resilience::TaskHistory::Options ho;
      ho.batch_size = 256;
      own_history = std::make_unique<resilience::TaskHistory>(store, clock, ho);
      history = own_history.get();
    }
    if (options.base_env) {
      base_env = *options.base_env;
    } else {
      base_env = detail::current_environment();
    }
  }

  void signal_wake() const { inbox->wake(); }

  // ---- records ----

  void note_step(RunRt& r, const StepRt& s) {
    sd::StepRecord rec;
    rec.run_id = r.rec.id;
    rec.step = s.id;
    rec.state = s.state;
    rec.attempts = s.attempts;
    rec.started = s.started;
    rec.ended = s.ended;
    rec.exit_code = s.exit_code;
    rec.outputs = outputs_json(s.outputs);
    rec.reason = s.reason;
    auto [it, fresh] = r.pending_step_pos.try_emplace(s.id, r.pending_steps.size());
    if (fresh)
      r.pending_steps.push_back(std::move(rec));
    else
      r.pending_steps[it->second] = std::move(rec);
  }

  void note_attempt(RunRt& r, const StepRt& s, const Attempt& a, RunState state, std::string error, std::optional<int> code,
                    TimePoint ended) {
    sd::AttemptRecord rec;
    rec.run_id = r.rec.id;
    rec.step = s.id;
    rec.attempt = a.number;
    rec.state = state;
    rec.started = a.started;
    rec.ended = ended;
    rec.exit_code = code;
    if (is_final(state)) {
      rec.stdout_text = a.out.finish(options.max_log_bytes);
      rec.stderr_text = a.err.finish(options.max_log_bytes);
    }
    rec.error = std::move(error);
    if (a.child) {
      rec.pid = a.child->pid();
      rec.pid_start = a.child->start_ticks();
    }
    r.pending_attempts.push_back(std::move(rec));
  }

  // Writes what changed; false when the run was lost to another writer.
  bool flush(RunRt& r) {
    if (r.pending_steps.empty() && r.pending_attempts.empty() && !r.run_dirty) return true;
    for (int tries = 0; tries < 3; ++tries) {
      auto v = store.update_run(r.rec, r.pending_steps, r.pending_attempts);
      if (v) {
        r.rec.version = *v;
        r.pending_steps.clear();
        r.pending_step_pos.clear();
        r.pending_attempts.clear();
        r.run_dirty = false;
        return true;
      }
      if (!v.error().is(errc::conflict)) {
        logf(LogLevel::warn, "workflow", "run {}: cannot record progress ({}); will retry", r.rec.id, v.error().message);
        return true;  // kept for the next flush
      }
      auto cur = store.get_run(r.rec.id);
      if (!cur || !*cur) return true;
      const RunRecord& theirs = **cur;
      if (theirs.owner != options.owner) {
        logf(LogLevel::warn, "workflow", "run {} was taken over by {} ({}); this engine stops working on it", r.rec.id, theirs.owner,
             theirs.reason);
        r.lost = true;
        return false;
      }
      r.rec.version = theirs.version;
      if (!r.rec.cancel_requested) absorb_cancel(r, theirs);
    }
    return true;
  }

  // Takes a cancel that another process requested through the store.
  void absorb_cancel(RunRt& r, const RunRecord& theirs) {
    if (!theirs.cancel_requested) return;
    r.rec.cancel_requested = true;
    r.rec.cancel_reason = theirs.cancel_reason;
    begin_cancel(r, RunState::cancelled, theirs.cancel_reason.empty() ? "cancel requested" : theirs.cancel_reason);
  }

  void record_task(const RunRt& r, std::string action, RunState state, std::string error, TimePoint started, TimePoint ended) {
    sd::TaskRecord t;
    t.domain = "workflow";
    t.action = std::move(action);
    t.params = r.rec.params;
    t.outcome = task_outcome(state);
    if (t.outcome != sd::TaskOutcome::success) t.error = error.empty() ? std::string(to_string(state)) : std::move(error);
    t.started = started;
    t.ended = std::max(ended, started);
    t.duration = t.ended - t.started;
    t.correlation_id = r.rec.correlation_id;
    if (auto a = history->add(std::move(t)); !a)
      logf(LogLevel::warn, "workflow", "run {}: task history refused a record: {}", r.rec.id, a.error().message);
  }

  // ---- expressions ----

  ExprContext context(const RunRt& r, const StepRt* s, bool any_failed) const {
    ExprContext ctx;
    ctx.any_failed = any_failed;
    ctx.cancelled = r.cancelling;
    ctx.lookup = [&r, s, this](const std::vector<std::string>& path) -> std::optional<ExprValue> {
      if (path.size() == 2 && path[0] == "params") {
        if (auto it = r.params.find(path[1]); it != r.params.end()) return ExprValue(it->second);
        return std::nullopt;
      }
      if (path.size() == 2 && path[0] == "env") {
        if (s)
          if (auto it = s->def->env.find(path[1]); it != s->def->env.end()) return ExprValue(it->second.text());
        if (auto it = r.def->env.find(path[1]); it != r.def->env.end()) return ExprValue(it->second);
        if (auto it = base_env.find(path[1]); it != base_env.end()) return ExprValue(it->second);
        return std::nullopt;
      }
      if (path.size() >= 3 && path[0] == "steps") {
        auto it = r.index.find(path[1]);
        if (it == r.index.end()) return std::nullopt;
        const StepRt& o = r.steps[it->second];
        if (path[2] == "outcome" && path.size() == 3) return ExprValue(std::string(to_string(o.state)));
        if (path[2] == "outputs" && path.size() == 4) {
          if (auto ot = o.outputs.find(path[3]); ot != o.outputs.end()) return ExprValue(ot->second);
          return ExprValue(std::string());
        }
      }
      return std::nullopt;
    };
    return ctx;
  }

  bool ancestors_failed(const RunRt& r, std::size_t i) const {
    std::vector<std::size_t> stack{i};
    std::set<std::size_t> seen;
    while (!stack.empty()) {
      const auto k = stack.back();
      stack.pop_back();
      for (const auto& n : r.steps[k].def->needs) {
        const auto j = r.index.at(n);
        if (!seen.insert(j).second) continue;
        if (failing(r.steps[j].state, r.steps[j].def->continue_on_error)) return true;
        stack.push_back(j);
      }
    }
    return false;
  }

  // ---- runs ----

  Result<std::int64_t> create(std::shared_ptr<const WorkflowDefinition> def, StartOptions o) {
    std::map<std::string, std::string> params;
    std::vector<std::string> problems;
    for (const auto& [k, v] : o.params)
      if (std::none_of(def->params.begin(), def->params.end(), [&](const ParamDefinition& p) { return p.name == k; }))
        problems.push_back(fmt::format("unknown parameter \"{}\"", k));
    for (const auto& p : def->params) {
      if (auto it = o.params.find(p.name); it != o.params.end())
        params[p.name] = it->second;
      else if (p.default_value)
        params[p.name] = *p.default_value;
      else
        problems.push_back(fmt::format("parameter \"{}\" is required{}", p.name, p.description.empty() ? "" : " (" + p.description + ")"));
    }
    if (!problems.empty()) return fail(errc::invalid_argument, fmt::format("workflow \"{}\": {}", def->name, fmt::join(problems, "; ")));
    bj::object po;
    for (const auto& [k, v] : params) po[k] = v;

    RunRecord rec;
    rec.workflow = def->name;
    rec.definition = to_json(*def);
    rec.params = json::dump(po);
    rec.trigger = o.trigger;
    rec.correlation_id = !o.correlation_id.empty()           ? o.correlation_id
                         : !current_correlation_id().empty() ? std::string(current_correlation_id())
                                                             : generate_id();
    rec.priority = def->priority;
    rec.parent_run_id = o.parent_run_id;
    rec.queued_at = clock.now();
    rec.owner = options.owner;
    rec.lease_until = rec.queued_at + options.lease;
    rec.reason = fmt::format("queued ({})", o.trigger);
    if (def->concurrency_key) {
      RunRt tmp;
      tmp.def = def;
      tmp.params = params;
      rec.concurrency_key = def->concurrency_key->render(context(tmp, nullptr, false));
      sd::RunQuery q;
      q.workflow = def->name;
      q.states = {RunState::queued, RunState::running};
      q.limit = 0;
      auto others = store.list_runs(q);
      if (!others) return others.error();
      std::vector<std::int64_t> conflicting;
      for (const auto& other : *others)
        if (other.concurrency_key == rec.concurrency_key) conflicting.push_back(other.id);
      if (!conflicting.empty()) {
        if (def->on_conflict == ConflictPolicy::skip)
          return fail(errc::busy, fmt::format("workflow \"{}\": run {} with concurrency key \"{}\" is in progress (on_conflict: skip)",
                                              def->name, conflicting.front(), rec.concurrency_key));
        rec.reason =
            fmt::format("queued ({}); waits for run {} with concurrency key \"{}\"", o.trigger, conflicting.front(), rec.concurrency_key);
        if (def->on_conflict == ConflictPolicy::cancel_running)
          for (auto id : conflicting)
            (void)cancel_any(id, fmt::format("superseded by a newer run with concurrency key \"{}\"", rec.concurrency_key));
      }
    }
    std::vector<sd::StepRecord> steps;
    for (const auto& s : def->steps) {
      sd::StepRecord sr;
      sr.step = s.id;
      steps.push_back(std::move(sr));
    }
    auto id = store.create_run(rec, steps, o.fire);
    if (!id) return id.error();
    rec.id = *id;
    rec.version = 1;
    auto rt = make_runtime(std::move(rec), std::move(def), std::move(params));
    rt->event_depth = o.event_depth;
    logf(LogLevel::info, "workflow", "run {} of {} queued ({})", *id, rt->rec.workflow, rt->rec.trigger);
    add_run(std::move(rt));
    return *id;
  }

  std::unique_ptr<RunRt> make_runtime(RunRecord rec, std::shared_ptr<const WorkflowDefinition> def,
                                      std::map<std::string, std::string> params) {
    auto rt = std::make_unique<RunRt>();
    rt->rec = std::move(rec);
    rt->def = std::move(def);
    rt->params = std::move(params);
    rt->steps.reserve(rt->def->steps.size() * 2);
    for (const auto& s : rt->def->steps) {
      StepRt st;
      st.def = &s;
      st.action = &s.action;
      st.id = s.id;
      rt->index.emplace(s.id, rt->steps.size());
      rt->steps.push_back(std::move(st));
    }
    rt->order = rt->def->topological_order();
    return rt;
  }

  void add_run(std::unique_ptr<RunRt> rt) {
    const auto id = rt->rec.id;
    runs.emplace(id, std::move(rt));
    std::lock_guard lock(mu);
    active_ids.insert(id);
  }

  // Cancels a run wherever it is (from start()'s cancel_running and from cancel()).
  Result<void> cancel_any(std::int64_t id, std::string reason) {
    if (auto it = runs.find(id); it != runs.end()) {
      begin_cancel(*it->second, RunState::cancelled, std::move(reason));
      return {};
    }
    return cancel_stored(id, std::move(reason));
  }

  Result<void> cancel_stored(std::int64_t id, std::string reason) {
    for (int tries = 0; tries < 5; ++tries) {
      auto cur = store.get_run(id);
      if (!cur) return cur.error();
      if (!*cur) return fail(errc::not_found, fmt::format("workflow run {} does not exist", id));
      RunRecord r = **cur;
      if (is_final(r.state) && r.state != RunState::interrupted)
        return fail(errc::conflict, fmt::format("workflow run {} already ended ({}: {})", id, to_string(r.state), r.reason));
      const TimePoint now = clock.now();
      std::vector<sd::StepRecord> steps;
      if (r.state == RunState::interrupted || !owner_alive(r, now)) {
        // Nobody runs it: cancel it here and now.
        auto stored = store.run_steps(id);
        if (!stored) return stored.error();
        for (auto s : *stored) {
          if (is_final(s.state) && s.state != RunState::interrupted) continue;
          s.state = RunState::cancelled;
          s.ended = now;
          s.reason = "run cancelled: " + reason;
          steps.push_back(std::move(s));
        }
        r.state = RunState::cancelled;
        r.ended_at = now;
        r.reason = fmt::format("cancelled: {}", reason);
        r.owner.clear();
      }
      r.cancel_requested = true;
      r.cancel_reason = reason;
      auto v = store.update_run(r, steps, {});
      if (v) return {};
      if (!v.error().is(errc::conflict)) return v.error();
    }
    return fail(errc::busy, fmt::format("workflow run {} kept changing; cancel it again", id));
  }

  void begin_cancel(RunRt& r, RunState as, std::string reason) {
    if (r.cancelling || r.phase == Phase::done) return;
    r.cancelling = true;
    r.cancel_state = as;
    r.cancel_reason = reason;
    logf(LogLevel::info, "workflow", "run {} of {}: {}", r.rec.id, r.rec.workflow, reason);
    for (auto& s : r.steps)
      if (s.inflight) stop_attempt(r, s, as, reason);
  }

  // Asks an in-flight attempt to stop (a process gets SIGTERM now and SIGKILL after the grace).
  void stop_attempt(RunRt& r, StepRt& s, RunState as, const std::string& reason) {
    Attempt& a = *s.inflight;
    if (a.stopping) return;
    a.stopping = true;
    a.stop_state = as;
    a.stop_reason = reason;
    a.cancel->store(true);
    const TimePoint now = clock.now();
    if (a.child && !a.child->exited()) {
      a.child->signal_group(SIGTERM);
      a.term_sent = true;
      a.kill_at = now + options.kill_grace;
    } else if (a.child_run) {
      (void)cancel_any(a.child_run, fmt::format("parent run {} step {}: {}", r.rec.id, s.id, reason));
    }
  }

  // ---- attempts ----

  static std::string timeout_reason(const StepRt& s) {
    return fmt::format("timed out after {}", format_duration(duration_cast<Millis>(*s.def->timeout)));
  }

  std::map<std::string, std::string> step_env(const RunRt& r, const StepRt& s, const ExprContext& ctx, int attempt) const {
    std::map<std::string, std::string> env = base_env;
    for (const auto& [k, v] : r.def->env) env[k] = v;
    for (const auto& [k, t] : s.def->env) env[k] = t.render(ctx);
    env["AUTOMATION_RUN_ID"] = std::to_string(r.rec.id);
    env["AUTOMATION_WORKFLOW"] = r.rec.workflow;
    env["AUTOMATION_STEP"] = s.id;
    env["AUTOMATION_ATTEMPT"] = std::to_string(attempt);
    env["AUTOMATION_CORRELATION_ID"] = r.rec.correlation_id;
    return env;
  }

  resilience::BreakerRegistry& breakers() {
    if (options.breakers) return *options.breakers;
    if (!own_breakers) {
      resilience::RegistryOptions ro;
      ro.defaults = resilience::BreakerConfig::seed_preset();
      // A half-open probe is a whole step, which may run for long: the engine always reports or
      // drops its permits, so the lease only matters after a crash.
      ro.defaults.permit_lease = std::chrono::hours(24);
      ro.store = &store;
      ro.sharing.mode = resilience::SharingMode::shared;
      ro.sharing.owner = options.owner;
      own_breakers = std::make_unique<resilience::BreakerRegistry>(clock, std::move(ro));
    }
    return *own_breakers;
  }

  void start_attempt(RunRt& r, std::size_t i) {
    StepRt& s = r.steps[i];
    const TimePoint now = clock.now();
    auto a = std::make_unique<Attempt>();
    a->number = ++s.attempts;
    a->started = now;
    if (s.attempts == 1 || s.started == TimePoint{}) s.started = now;
    if (s.def->timeout) a->deadline = now + *s.def->timeout;
    if (!s.retry) {
      // The policy lives in the run's definition (kept alive by r.def); compensations never retry.
      static const resilience::RetryPolicy kNoRetry = resilience::RetryPolicy::none();
      s.retry.emplace(s.compensation || !s.def->retry ? kNoRetry : *s.def->retry, now);
    }
    s.state = RunState::running;
    s.reason = s.attempts == 1 ? "started" : fmt::format("attempt {}", s.attempts);
    const ExprContext ctx = context(r, &s, false);
    const StepAction& act = *s.action;
    s.inflight = std::move(a);
    Attempt& at = *s.inflight;
    ++inflight;

    // A failure here is ours (a missing program, workflow or callback), not what the breaker guards.
    auto fail_now = [&](Error e) {
      if (at.permit) at.permit.ignore();
      finish_attempt(r, s, RunState::failed, std::move(e), std::nullopt);
    };

    // The step's breaker: open, the attempt is not made (and fails, so a retry policy may wait).
    if (!s.def->breaker.empty() && !s.compensation) {
      auto breaker = breakers().get(s.def->breaker);
      if (!breaker) return fail_now(breaker.error());
      auto permit = (*breaker)->try_acquire();
      if (!permit) {
        s.breaker_wait = permit.retry_after();  // a retry waits at least until it may admit again
        return fail_now(Error(
            errc::unavailable,
            fmt::format("breaker {} is {}: the attempt was not made{}", s.def->breaker, resilience::to_string(permit.rejected_state()),
                        permit.retry_after() > Duration::zero()
                            ? fmt::format(" (it may admit again in {})", format_duration(duration_cast<Millis>(permit.retry_after())))
                            : std::string())));
      }
      s.breaker_wait = Duration{0};
      at.breaker = std::move(*breaker);
      at.permit = std::move(permit);
    }

    switch (act.kind) {
      case StepKind::command:
      case StepKind::shell: {
        detail::SpawnRequest req;
        if (act.kind == StepKind::shell) {
          req.argv = {"/bin/sh", "-c", act.shell ? act.shell->render(ctx) : std::string()};
        } else {
          for (const auto& t : act.argv) req.argv.push_back(t.render(ctx));
        }
        req.env = step_env(r, s, ctx, at.number);
        if (s.def->working_directory) req.working_directory = s.def->working_directory->render(ctx);
        auto child = detail::Child::spawn(req);
        if (!child) return fail_now(child.error());
        at.child.emplace(std::move(child.value()));
        note_step(r, s);
        note_attempt(r, s, at, RunState::running, {}, std::nullopt, TimePoint{});
        return;
      }
      case StepKind::workflow: {
        auto def = find_workflow(act.name);
        if (!def) return fail_now(def.error());
        StartOptions so;
        for (const auto& [k, t] : act.with) so.params[k] = t.render(ctx);
        so.trigger = fmt::format("workflow:{}/{}", r.rec.id, s.id);
        so.correlation_id = r.rec.correlation_id;
        so.parent_run_id = r.rec.id;
        auto child = create(*def, std::move(so));
        if (!child) return fail_now(child.error());
        at.child_run = *child;
        s.reason = fmt::format("waiting for run {} of {}", *child, act.name);
        note_step(r, s);
        note_attempt(r, s, at, RunState::running, {}, std::nullopt, TimePoint{});
        return;
      }
      case StepKind::callback:
      case StepKind::action:
      case StepKind::http:
        break;
    }

    // In-process: a callback, an action or an HTTP request.
    std::function<AsyncResult()> work;
    if (act.kind == StepKind::http) {
      automation::detail::HttpCall call;
      call.method = act.http->method;
      call.url = act.http->url.render(ctx);
      for (const auto& [k, t] : act.http->headers) call.headers.emplace_back(k, t.render(ctx));
      if (act.http->body) call.body = act.http->body->render(ctx);
      call.expect_status = act.http->expect_status;
      if (s.def->timeout) call.timeout = duration_cast<Millis>(*s.def->timeout);
      work = [call = std::move(call), cancel = at.cancel] {
        AsyncResult out;
        auto resp = automation::detail::perform_http(call, *cancel);
        if (!resp) {
          out.result = resp.error();
          return out;
        }
        out.status = resp->status;
        out.outputs["status"] = std::to_string(resp->status);
        out.outputs["body"] = resp->body;
        out.log = fmt::format("{} {} -> {}\n", call.method, call.url, resp->status);
        if (!resp->accepted)
          out.result = fail(errc::unavailable, fmt::format("{} {} answered {}", call.method, call.url, resp->status));
        else
          out.result = Result<void>();
        return out;
      };
    } else {
      const auto& table = act.kind == StepKind::action ? actions : callbacks;
      auto it = table.find(act.name);
      if (it == table.end())
        return fail_now(Error(errc::not_found, fmt::format("no {} named \"{}\" is registered",
                                                           act.kind == StepKind::action ? "action" : "callback", act.name)));
      auto ctxp = std::make_shared<StepContext>();
      ctxp->run_id = r.rec.id;
      ctxp->workflow = r.rec.workflow;
      ctxp->step = s.id;
      ctxp->attempt = at.number;
      ctxp->params = r.params;
      for (const auto& [k, t] : act.with) ctxp->with[k] = t.render(ctx);
      for (const auto& [k, v] : r.def->env) ctxp->env[k] = v;
      for (const auto& [k, t] : s.def->env) ctxp->env[k] = t.render(ctx);
      if (at.deadline) ctxp->deadline = *at.deadline;
      ctxp->clock = &clock;
      ctxp->cancel_ = at.cancel;
      StepFunction fn = it->second;
      work = [fn = std::move(fn), ctxp]() {
        AsyncResult out;
        try {
          out.result = fn(*ctxp);
        } catch (const std::exception& e) {
          out.result = fail(errc::internal, fmt::format("the step threw: {}", e.what()));
        } catch (...) {
          out.result = fail(errc::internal, "the step threw an exception");
        }
        out.outputs = ctxp->outputs();
        out.log = ctxp->log_text();
        return out;
      };
    }
    if (options.executor) {
      at.async = true;
      note_step(r, s);
      note_attempt(r, s, at, RunState::running, {}, std::nullopt, TimePoint{});
      const std::int64_t run_id = r.rec.id;
      const std::string step = s.id;
      const int number = at.number;
      options.executor([inbox = inbox, run_id, step, number, work = std::move(work)] {
        AsyncResult res = work();
        {
          std::lock_guard lock(inbox->mu);
          inbox->completions.push_back({run_id, step, number, std::move(res)});
        }
        inbox->wake();
      });
      return;
    }
    LogContextScope log_ctx(r.rec.workflow, std::to_string(r.rec.id), s.id);
    AsyncResult res = work();
    complete_in_process(r, s, std::move(res));
  }

  void complete_in_process(RunRt& r, StepRt& s, AsyncResult res) {
    Attempt& a = *s.inflight;
    a.out.append(res.log, options.max_log_bytes);
    for (auto& [k, v] : res.outputs) {
      if (s.action->kind != StepKind::http && std::find(s.def->outputs.begin(), s.def->outputs.end(), k) == s.def->outputs.end()) continue;
      if (v.size() > options.max_output_bytes) v.resize(options.max_output_bytes);
      a.outputs[k] = std::move(v);
    }
    const TimePoint now = clock.now();
    if (a.stopping)
      return finish_attempt(r, s, a.stop_state, Error(a.stop_state == RunState::timed_out ? errc::timeout : errc::cancelled, a.stop_reason),
                            res.status);
    if (a.deadline && now > *a.deadline)
      return finish_attempt(r, s, RunState::timed_out, Error(errc::timeout, timeout_reason(s)), res.status);
    if (!res.result) return finish_attempt(r, s, RunState::failed, res.result.error(), res.status);
    finish_attempt(r, s, RunState::succeeded, Error(), res.status);
  }

  // An attempt ended: record it, then retry, or settle the step.
  void finish_attempt(RunRt& r, StepRt& s, RunState how, Error error, std::optional<int> code) {
    const TimePoint now = clock.now();
    Attempt& a = *s.inflight;
    std::string err_text = how == RunState::succeeded ? std::string() : error.message;
    note_attempt(r, s, a, how, err_text, code, now);
    if (how != RunState::succeeded) a.cancel->store(true);  // a timed-out in-process step may still be running
    if (a.permit) {
      const auto elapsed = now - a.started;
      if (how == RunState::succeeded)
        a.permit.success(elapsed);
      else if (how == RunState::cancelled || r.cancelling)
        a.permit.ignore();  // stopped by someone or by the run's deadline, not failed by what it calls
      else
        a.permit.failure(elapsed);
    }
    s.exit_code = code;
    --inflight;
    if (how == RunState::succeeded) {
      s.outputs = std::move(a.outputs);
      s.inflight.reset();
      return settle(r, s, RunState::succeeded, s.attempts > 1 ? fmt::format("succeeded on attempt {}", s.attempts) : "succeeded", now);
    }
    s.inflight.reset();
    if (how != RunState::cancelled && !r.cancelling) {
      auto d = s.retry->on_failure(error, now);
      if (d.retry) {
        s.state = RunState::queued;
        s.not_before = now + std::max<Duration>(d.delay, s.breaker_wait);
        s.breaker_wait = Duration{0};
        s.reason =
            fmt::format("attempt {} {}: {}; {}", s.attempts, how == RunState::timed_out ? "timed out" : "failed", err_text, d.explanation);
        note_step(r, s);
        return;
      }
      if (s.attempts > 1 || d.reason != resilience::RetryReason::attempts_exhausted) err_text += "; " + d.explanation;
    }
    settle(r, s, how, err_text, now);
  }

  void settle(RunRt& r, StepRt& s, RunState state, std::string reason, TimePoint now) {
    s.state = state;
    s.ended = now;
    s.reason = std::move(reason);
    if (s.def->continue_on_error && state != RunState::succeeded && !s.compensation) s.reason += " (continue_on_error)";
    s.finish_seq = ++r.finish_counter;
    note_step(r, s);
    record_task(r, r.rec.workflow + "/" + s.id, state, state == RunState::succeeded ? std::string() : s.reason,
                s.started == TimePoint{} ? now : s.started, now);
  }

  void skip(RunRt& r, StepRt& s, RunState state, std::string reason) {
    const TimePoint now = clock.now();
    s.state = state;
    s.started = s.started == TimePoint{} ? now : s.started;
    s.ended = now;
    s.reason = std::move(reason);
    s.finish_seq = ++r.finish_counter;
    note_step(r, s);
    // A step stopped before it ran (cancel, deadline) is an outcome for TaskHistory; one whose
    // condition said no did not execute and is not recorded.
    if (state != RunState::skipped) record_task(r, r.rec.workflow + "/" + s.id, state, s.reason, s.started, now);
  }

  // Reads output, reaps, enforces timeouts and kills for one process step.
  void check_process(RunRt& r, StepRt& s) {
    Attempt& a = *s.inflight;
    auto& c = *a.child;
    auto pump = [&] {
      std::string chunk;
      c.read_stdout(chunk);
      a.out.append(chunk, options.max_log_bytes);
      parse_outputs(s, a, chunk);
      chunk.clear();
      c.read_stderr(chunk);
      a.err.append(chunk, options.max_log_bytes);
    };
    pump();
    const TimePoint now = clock.now();
    if (!c.exited()) c.reap();
    if (c.exited()) {
      // Whatever the leader left behind in its group does not outlive the step.
      if (!c.group_gone()) {
        c.signal_group(SIGKILL);
        if (!c.group_gone()) return;  // confirmed at the next poll
      }
      pump();
      if (!a.line.empty() && !a.line_overflow) parse_line(s, a, a.line);
      c.close_pipes();
      const int st = *c.status();
      const int code = detail::exit_code(st);
      if (a.stopping) {
        return finish_attempt(
            r, s, a.stop_state,
            Error(a.stop_state == RunState::timed_out ? errc::timeout : errc::cancelled,
                  fmt::format("{} ({}{})", a.stop_reason, detail::describe_status(st),
                              a.kill_sent ? fmt::format(", {} after SIGTERM", format_duration(duration_cast<Millis>(options.kill_grace)))
                                          : std::string())),
            code);
      }
      if (code == 0) return finish_attempt(r, s, RunState::succeeded, Error(), code);
      return finish_attempt(r, s, RunState::failed, Error(errc::io, detail::describe_status(st)), code);
    }
    if (!a.stopping && a.deadline && now >= *a.deadline) {
      stop_attempt(r, s, RunState::timed_out, timeout_reason(s));
    }
    if (a.term_sent && !a.kill_sent && now >= a.kill_at) {
      c.signal_group(SIGKILL);
      a.kill_sent = true;
    }
  }

  void parse_line(StepRt& s, Attempt& a, std::string_view line) {
    if (s.def->outputs.empty()) return;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const auto eq = line.find('=');
    if (eq == std::string_view::npos) return;
    const std::string_view name = line.substr(0, eq);
    for (const auto& o : s.def->outputs)
      if (o == name) {
        std::string v(line.substr(eq + 1));
        if (v.size() > options.max_output_bytes) v.resize(options.max_output_bytes);
        a.outputs[o] = std::move(v);
      }
  }

  void parse_outputs(StepRt& s, Attempt& a, std::string_view chunk) {
    if (!s.def || s.def->outputs.empty()) return;
    constexpr std::size_t kMaxLine = 64 * 1024;
    while (!chunk.empty()) {
      const auto nl = chunk.find('\n');
      if (nl == std::string_view::npos) {
        if (!a.line_overflow) a.line.append(chunk);
        if (a.line.size() > kMaxLine) {
          a.line.clear();
          a.line_overflow = true;
        }
        return;
      }
      if (!a.line_overflow) {
        a.line.append(chunk.substr(0, nl));
        parse_line(s, a, a.line);
      }
      a.line.clear();
      a.line_overflow = false;
      chunk.remove_prefix(nl + 1);
    }
  }

  Result<std::shared_ptr<const WorkflowDefinition>> find_workflow(std::string_view name) const {
    auto it = workflows.find(name);
    if (it == workflows.end()) {
      std::vector<std::string_view> names;
      for (const auto& [n, d] : workflows) names.push_back(n);
      return fail(errc::not_found,
                  fmt::format("no workflow named \"{}\" is registered{}", name, automation::detail::did_you_mean(name, names)));
    }
    return it->second;
  }

  // ---- advancing a run ----

  bool admit(RunRt& r, TimePoint now) {
    if (r.admitted) return true;
    std::size_t admitted = 0;
    for (const auto& [id, other] : runs) admitted += other->admitted ? 1 : 0;
    if (admitted >= options.max_active_runs) return false;
    // Earlier queued runs with the same key go first (checked in memory before reading the store).
    if (!r.rec.concurrency_key.empty())
      for (const auto& [id, other] : runs)
        if (id < r.rec.id && !other->admitted && other->rec.concurrency_key == r.rec.concurrency_key && !other->cancelling) return false;
    if (r.def->max_concurrent_runs > 0 || !r.rec.concurrency_key.empty()) {
      sd::RunQuery q;
      q.workflow = r.rec.workflow;
      q.states = {RunState::running};
      q.limit = 0;
      auto running = store.list_runs(q);
      if (!running) return false;
      if (r.def->max_concurrent_runs > 0 && running->size() >= static_cast<std::size_t>(r.def->max_concurrent_runs)) return false;
      if (!r.rec.concurrency_key.empty())
        for (const auto& o : *running)
          if (o.concurrency_key == r.rec.concurrency_key && o.id != r.rec.id) return false;
    }
    r.admitted = true;
    r.rec.state = RunState::running;
    if (r.rec.started_at == TimePoint{}) r.rec.started_at = now;
    r.rec.reason = "running";
    r.rec.lease_until = now + options.lease;
    r.next_renew = now + options.lease / 3;
    r.next_cancel_check = now + options.cancel_check;
    if (r.def->deadline && !r.deadline) r.deadline = r.rec.started_at + *r.def->deadline;
    r.run_dirty = true;
    return true;
  }

  // One pass over a run; true when something changed (call again).
  bool advance(RunRt& r, TimePoint now) {
    bool progress = false;
    if (r.phase == Phase::done) return false;
    if (!r.admitted) {
      if (r.cancelling) {
        finish_run(r, now);
        return true;
      }
      if (!admit(r, now)) return false;
      progress = true;
    }
    if (r.deadline && now >= *r.deadline && !r.cancelling)
      begin_cancel(r, RunState::timed_out,
                   fmt::format("run deadline of {} passed", format_duration(duration_cast<Millis>(*r.def->deadline))));
    if (now >= r.next_renew) {
      r.rec.lease_until = now + options.lease;
      r.next_renew = now + options.lease / 3;
      r.run_dirty = true;
    }
    if (now >= r.next_cancel_check) {
      r.next_cancel_check = now + options.cancel_check;
      if (auto cur = store.get_run(r.rec.id); cur && *cur && (*cur)->cancel_requested && !r.cancelling) {
        r.rec.version = (*cur)->version;
        absorb_cancel(r, **cur);
      }
    }
    // In-flight steps.
    for (auto& s : r.steps) {
      if (!s.inflight) continue;
      Attempt& a = *s.inflight;
      if (a.child) {
        check_process(r, s);
        if (!s.inflight) progress = true;
      } else if (a.child_run) {
        if (auto it = finished_children.find(a.child_run); it != finished_children.end()) {
          auto [state, reason] = it->second;
          finished_children.erase(it);
          const auto child = a.child_run;
          if (state == RunState::succeeded)
            finish_attempt(r, s, RunState::succeeded, Error(), std::nullopt);
          else
            finish_attempt(r, s,
                           state == RunState::timed_out   ? RunState::timed_out
                           : state == RunState::cancelled ? RunState::cancelled
                                                          : RunState::failed,
                           Error(state == RunState::timed_out ? errc::timeout : errc::io,
                                 fmt::format("run {} {}: {}", child, to_string(state), reason)),
                           std::nullopt);
          progress = true;
        } else if (!a.stopping && a.deadline && now >= *a.deadline) {
          stop_attempt(r, s, RunState::timed_out, timeout_reason(s));
        }
      } else if (a.async && !a.stopping && a.deadline && now >= *a.deadline) {
        // The callback cannot be interrupted; it is told to stop and its late result is dropped.
        stop_attempt(r, s, RunState::timed_out, timeout_reason(s));
        finish_attempt(r, s, RunState::timed_out, Error(errc::timeout, timeout_reason(s)), std::nullopt);
        progress = true;
      }
    }
    if (!flush(r)) return false;

    if (r.phase == Phase::main || r.phase == Phase::finally_steps) {
      const bool fin = r.phase == Phase::finally_steps;
      bool all_final = true;
      for (auto i : r.order) {
        StepRt& s = r.steps[i];
        if (s.def->finally != fin) continue;
        if (is_final(s.state)) continue;
        all_final = false;
        if (s.inflight) continue;
        if (s.attempts > 0 && s.state == RunState::queued) {  // waiting to retry
          if (r.cancelling) {
            skip(r, s, r.cancel_state == RunState::timed_out ? RunState::timed_out : RunState::cancelled, "run " + r.cancel_reason);
            progress = true;
            continue;
          }
          if (now < s.not_before) continue;
          if (inflight >= options.max_parallel_steps) continue;
          start_attempt(r, i);
          progress = true;
          if (!flush(r)) return false;
          continue;
        }
        // Ready when every need is final.
        bool ready = true;
        const StepRt* blocker = nullptr;
        for (const auto& n : s.def->needs) {
          const StepRt& o = r.steps[r.index.find(n)->second];
          if (!is_final(o.state)) {
            ready = false;
            break;
          }
          if (!blocker && !ok_for_dependents(o.state, o.def->continue_on_error)) blocker = &o;
        }
        if (!ready) continue;
        const bool status_fn = s.def->condition && s.def->condition->uses_status();
        bool run_it;
        std::string why_not;
        if (status_fn) {
          const bool any_failed = ancestors_failed(r, i);
          run_it = s.def->condition->test(context(r, &s, any_failed));
          if (!run_it) why_not = fmt::format("condition \"{}\" is false", s.def->condition->text());
        } else if (r.cancelling && !fin) {
          skip(r, s, RunState::cancelled, "run " + r.cancel_reason);
          progress = true;
          continue;
        } else if (blocker && !fin) {
          run_it = false;
          why_not = fmt::format("needs \"{}\", which {}", blocker->id,
                                blocker->state == RunState::skipped ? "was skipped" : to_string(blocker->state));
        } else if (s.def->condition) {
          run_it = s.def->condition->test(context(r, &s, false));
          if (!run_it) why_not = fmt::format("condition \"{}\" is false", s.def->condition->text());
        } else {
          run_it = true;  // success() for main steps; always() for finally steps
        }
        if (!run_it) {
          skip(r, s, RunState::skipped, why_not);
          progress = true;
          continue;
        }
        if (inflight >= options.max_parallel_steps) continue;
        start_attempt(r, i);
        progress = true;
        if (!flush(r)) return false;
      }
      if (all_final) {
        if (!fin) {
          r.phase = Phase::compensate;
          if (run_failing(r)) {
            // Compensate what succeeded, most recently finished first.
            std::vector<std::size_t> done;
            for (std::size_t i = 0; i < r.def->steps.size(); ++i)
              if (r.steps[i].def->compensate && r.steps[i].state == RunState::succeeded) done.push_back(i);
            std::sort(done.begin(), done.end(), [&](auto x, auto y) { return r.steps[x].finish_seq > r.steps[y].finish_seq; });
            r.comp_queue = std::move(done);
          }
        } else {
          finish_run(r, now);
        }
        progress = true;
      }
    } else if (r.phase == Phase::compensate) {
      const bool busy = std::any_of(r.steps.begin(), r.steps.end(), [](const StepRt& s) { return s.compensation && s.inflight; });
      if (!busy) {
        if (r.comp_pos < r.comp_queue.size()) {
          if (inflight < options.max_parallel_steps) {
            const auto of = r.comp_queue[r.comp_pos++];
            StepRt c;
            c.def = r.steps[of].def;
            c.action = &*r.steps[of].def->compensate;
            c.id = r.steps[of].id + ".compensate";
            c.compensation = true;
            r.index.emplace(c.id, r.steps.size());
            r.steps.push_back(std::move(c));
            start_attempt(r, r.steps.size() - 1);
            progress = true;
          }
        } else {
          r.phase = Phase::finally_steps;
          progress = true;
        }
      }
    }
    if (!flush(r)) return false;
    return progress;
  }

  bool run_failing(const RunRt& r) const {
    if (r.cancelling) return true;
    for (std::size_t i = 0; i < r.def->steps.size(); ++i)
      if (!r.steps[i].def->finally && failing(r.steps[i].state, r.steps[i].def->continue_on_error)) return true;
    return false;
  }

  void finish_run(RunRt& r, TimePoint now) {
    RunState state = RunState::succeeded;
    std::string reason = "all steps succeeded";
    std::vector<std::string> failed;
    for (const auto& s : r.steps)
      if (!s.compensation && failing(s.state, s.def->continue_on_error)) failed.push_back(fmt::format("{} ({})", s.id, s.reason));
    std::vector<std::string> comp_failed;
    for (const auto& s : r.steps)
      if (s.compensation && s.state != RunState::succeeded) comp_failed.push_back(s.id);
    if (r.cancelling) {
      state = r.cancel_state;
      reason = r.cancel_reason;
    } else if (!failed.empty()) {
      state = RunState::failed;
      reason = fmt::format("step{} failed: {}", failed.size() == 1 ? "" : "s", fmt::join(failed, "; "));
    }
    if (r.comp_pos > 0)
      reason += comp_failed.empty() ? fmt::format("; {} compensation{} ran", r.comp_pos, r.comp_pos == 1 ? "" : "s")
                                    : fmt::format("; compensation failed: {}", fmt::join(comp_failed, ", "));
    r.phase = Phase::done;
    r.rec.state = state;
    r.rec.ended_at = now;
    r.rec.reason = reason;
    r.rec.owner.clear();
    r.run_dirty = true;
    flush(r);
    record_task(r, r.rec.workflow, state, state == RunState::succeeded ? std::string() : reason,
                r.rec.started_at == TimePoint{} ? now : r.rec.started_at, now);
    logf(state == RunState::succeeded ? LogLevel::info : LogLevel::warn, "workflow", "run {} of {} {}: {}", r.rec.id, r.rec.workflow,
         to_string(state), reason);
    if (r.rec.parent_run_id) finished_children[r.rec.id] = {state, reason};
    if (options.emit_run_events) emit_run_event(r);
    for (auto& fn : finished_listeners) fn(r.rec);
  }

  void emit_run_event(const RunRt& r) {
    sd::EventRecord e;
    e.name = fmt::format("workflow.{}", to_string(r.rec.state));
    e.time = r.rec.ended_at;
    boost::json::object payload{{"run_id", r.rec.id},
                                {"workflow", r.rec.workflow},
                                {"state", to_string(r.rec.state)},
                                {"reason", r.rec.reason},
                                {"trigger", r.rec.trigger}};
    e.payload = boost::json::serialize(payload);
    e.source = "workflow";
    e.correlation_id = r.rec.correlation_id;
    e.depth = r.event_depth + 1;
    if (auto a = store.append_event(e); !a)
      logf(LogLevel::warn, "workflow", "run {}: could not record event {}: {}", r.rec.id, e.name, a.error().message);
  }

  PollResult poll() {
    {
      std::deque<Completion> done;
      std::deque<std::pair<std::int64_t, std::string>> cancels;
      {
        std::lock_guard lock(inbox->mu);
        done.swap(inbox->completions);
      }
      {
        std::lock_guard lock(mu);
        cancels.swap(cancel_requests);
      }
      for (auto& c : done) {
        auto it = runs.find(c.run);
        if (it == runs.end()) continue;
        RunRt& r = *it->second;
        auto si = r.index.find(c.step);
        if (si == r.index.end()) continue;
        StepRt& s = r.steps[si->second];
        if (!s.inflight || s.inflight->number != c.attempt) continue;  // a late result after a timeout
        complete_in_process(r, s, std::move(c.result));
      }
      for (auto& [id, reason] : cancels)
        if (auto it = runs.find(id); it != runs.end()) begin_cancel(*it->second, RunState::cancelled, reason);
    }
    // Running runs first, then queued ones by priority (then age: the map is by id).
    std::vector<RunRt*> order;
    auto reorder = [&] {
      order.clear();
      for (auto& [id, r] : runs) order.push_back(r.get());
      std::stable_sort(order.begin(), order.end(), [](const RunRt* a, const RunRt* b) {
        if (a->admitted != b->admitted) return a->admitted;
        return a->rec.priority > b->rec.priority;
      });
    };
    reorder();
    bool any = true;
    for (int rounds = 0; any && rounds < 1'000'000; ++rounds) {
      any = false;
      const TimePoint now = clock.now();
      for (auto* r : order)
        if (advance(*r, now)) any = true;
      // Runs created during this pass (sub-workflows) join the next one.
      if (order.size() != runs.size()) {
        reorder();
        any = true;
      }
      // Drop finished and lost runs.
      bool removed = false;
      for (auto it = runs.begin(); it != runs.end();) {
        if (it->second->phase == Phase::done || it->second->lost) {
          if (it->second->lost) abandon(*it->second);
          {
            std::lock_guard lock(mu);
            active_ids.erase(it->first);
          }
          it = runs.erase(it);
          removed = true;
        } else {
          ++it;
        }
      }
      if (removed) {
        reorder();
        any = true;
      }
    }
    if (runs.empty()) (void)history->flush();
    PollResult out;
    out.active_runs = runs.size();
    out.running_steps = inflight;
    std::optional<TimePoint> t;
    auto consider = [&](TimePoint x) {
      if (!t || x < *t) t = x;
    };
    for (auto& [id, r] : runs) {
      if (!r->admitted) continue;
      consider(r->next_renew);
      consider(r->next_cancel_check);
      if (r->deadline) consider(*r->deadline);
      for (const auto& s : r->steps) {
        if (s.inflight) {
          if (s.inflight->deadline && !s.inflight->stopping) consider(*s.inflight->deadline);
          if (s.inflight->term_sent && !s.inflight->kill_sent) consider(s.inflight->kill_at);
        } else if (s.state == RunState::queued && s.attempts > 0) {
          consider(s.not_before);
        }
      }
    }
    next_timer = t;
    out.next_timer = t;
    return out;
  }

  void abandon(RunRt& r) {
    for (auto& s : r.steps)
      if (s.inflight) {
        s.inflight->cancel->store(true);  // an in-process step still running elsewhere is told to stop
        s.inflight.reset();               // the Child destructor kills the group
        --inflight;
      }
  }

  void wait(std::chrono::milliseconds max) {
    std::vector<pollfd> fds;
    const int wake_fd = inbox->wake_fd;
    if (wake_fd >= 0) fds.push_back({wake_fd, POLLIN, 0});
    bool no_pidfd = false;
    bool stragglers = false;
    for (auto& [id, r] : runs)
      for (auto& s : r->steps) {
        if (!s.inflight || !s.inflight->child) continue;
        auto& c = *s.inflight->child;
        if (c.stdout_fd() >= 0) fds.push_back({c.stdout_fd(), POLLIN, 0});
        if (c.stderr_fd() >= 0) fds.push_back({c.stderr_fd(), POLLIN, 0});
        if (c.exited()) {
          stragglers = true;  // waiting for the group to be gone
        } else if (c.exit_fd() >= 0) {
          fds.push_back({c.exit_fd(), POLLIN, 0});
        } else {
          no_pidfd = true;
        }
      }
    auto timeout = max;
    if (next_timer) {
      const auto until = duration_cast<std::chrono::milliseconds>(*next_timer - clock.now()) + std::chrono::milliseconds(1);
      timeout = std::min(timeout, std::max(until, std::chrono::milliseconds(0)));
    }
    if (no_pidfd || stragglers) timeout = std::min(timeout, std::chrono::milliseconds(5));
    {
      std::lock_guard lock(inbox->mu);
      if (!inbox->completions.empty()) return;
    }
    {
      std::lock_guard lock(mu);
      if (!cancel_requests.empty()) return;
    }
    if (timeout.count() <= 0) return;
    const int n = ::poll(fds.data(), fds.size(), static_cast<int>(std::min<long long>(timeout.count(), 1 << 30)));
    if (n > 0 && wake_fd >= 0 && (fds[0].revents & POLLIN)) {
      std::uint64_t v;
      [[maybe_unused]] auto k = ::read(wake_fd, &v, sizeof v);
    }
  }

  // ---- recovery and resume ----

  Result<std::unique_ptr<RunRt>> load(const RunRecord& rec) {
    auto def = parse_workflow(rec.definition, fmt::format("run {} definition", rec.id));
    if (!def) {
      // Definitions written before a format change, or built in C++: use the registered one.
      auto reg = find_workflow(rec.workflow);
      if (!reg)
        return fail(errc::corrupt, fmt::format("run {}: its stored definition does not load ({}) and {}", rec.id, def.error().message,
                                               reg.error().message));
      return make_runtime(rec, *reg, string_map(rec.params));
    }
    auto shared = std::make_shared<const WorkflowDefinition>(std::move(def.value()));
    return make_runtime(rec, std::move(shared), string_map(rec.params));
  }

  Result<void> resume(std::int64_t id, std::string reason) {
    if (runs.contains(id)) return fail(errc::conflict, fmt::format("workflow run {} is already running in this engine", id));
    auto cur = store.get_run(id);
    if (!cur) return cur.error();
    if (!*cur) return fail(errc::not_found, fmt::format("workflow run {} does not exist", id));
    RunRecord rec = **cur;
    const TimePoint now = clock.now();
    if (rec.state != RunState::interrupted) {
      if (is_final(rec.state))
        return fail(errc::conflict,
                    fmt::format("workflow run {} ended ({}); only an interrupted run can be resumed", id, to_string(rec.state)));
      if (owner_alive(rec, now)) return fail(errc::busy, fmt::format("workflow run {} is running in {}", id, rec.owner));
    }
    auto rt = load(rec);
    if (!rt) return rt.error();
    return take_over(std::move(rt.value()), std::move(reason), now);
  }

  // Continues a loaded interrupted run here: finished steps keep their outcome.
  Result<void> take_over(std::unique_ptr<RunRt> rt, std::string reason, TimePoint now) {
    const std::int64_t id = rt->rec.id;
    auto stored = store.run_steps(id);
    if (!stored) return stored.error();
    RunRt& r = *rt;
    for (const auto& s : *stored) {
      auto it = r.index.find(s.step);
      if (it == r.index.end()) continue;  // compensations are created again when needed
      StepRt& st = r.steps[it->second];
      st.attempts = s.attempts;
      st.outputs = string_map(s.outputs);
      st.started = s.started;
      st.exit_code = s.exit_code;
      if (is_final(s.state) && s.state != RunState::interrupted) {
        st.state = s.state;
        st.ended = s.ended;
        st.reason = s.reason;
        st.finish_seq = ++r.finish_counter;
      } else {
        st.state = RunState::queued;
        st.reason = s.state == RunState::queued ? "queued" : "interrupted; runs again";
      }
    }
    r.rec.state = RunState::queued;
    r.rec.owner = options.owner;
    r.rec.lease_until = now + options.lease;
    r.rec.ended_at = TimePoint{};
    r.rec.reason = reason;
    r.rec.cancel_requested = false;
    r.rec.cancel_reason.clear();
    auto v = store.update_run(r.rec, {}, {});
    if (!v) return with_context(v.error(), fmt::format("take over workflow run {}", id));
    r.rec.version = *v;
    logf(LogLevel::info, "workflow", "run {} of {} resumed: {}", id, r.rec.workflow, reason);
    add_run(std::move(rt));
    return {};
  }

  Result<RecoveryReport> recover(bool adopt) {
    RecoveryReport report;
    sd::RunQuery q;
    q.states = {RunState::queued, RunState::running};
    q.limit = 0;
    q.newest_first = false;
    auto active = store.list_runs(q);
    if (!active) return active.error();
    const TimePoint now = clock.now();
    const std::string host = host_name();
    for (RunRecord rec : *active) {
      if (runs.contains(rec.id) || owner_alive(rec, now)) continue;
      const auto owner = parse_owner(rec.owner);
      const bool local = owner && owner->host == host;
      auto attempts = store.run_attempts(rec.id, std::nullopt);
      if (!attempts) return attempts.error();
      std::vector<sd::AttemptRecord> changed_attempts;
      for (auto a : *attempts) {
        if (is_final(a.state)) continue;
        if (local && a.pid > 0 && a.pid_start && detail::process_start_ticks(static_cast<pid_t>(a.pid)) == a.pid_start) {
          ::kill(-static_cast<pid_t>(a.pid), SIGKILL);
          report.killed.push_back(fmt::format("run {} step {} pid {}", rec.id, a.step, a.pid));
        }
        a.state = RunState::interrupted;
        a.ended = now;
        a.error = fmt::format("interrupted: {} is gone", rec.owner.empty() ? "its engine" : rec.owner);
        changed_attempts.push_back(std::move(a));
      }
      auto steps = store.run_steps(rec.id);
      if (!steps) return steps.error();
      std::vector<sd::StepRecord> changed_steps;
      for (auto s : *steps) {
        if (s.state != RunState::running) continue;
        s.state = RunState::interrupted;
        s.ended = now;
        s.reason = "interrupted: the engine running it is gone";
        changed_steps.push_back(std::move(s));
      }
      const std::string gone = rec.owner.empty() ? std::string("no engine owns it") : fmt::format("{} is gone", rec.owner);
      rec.state = RunState::interrupted;
      rec.ended_at = now;
      rec.reason = fmt::format("interrupted: {}{}", gone, local ? "" : " (lease expired)");
      rec.owner.clear();
      auto v = store.update_run(rec, changed_steps, changed_attempts);
      if (!v) {
        if (v.error().is(errc::conflict)) continue;  // another engine is recovering it
        return v.error();
      }
      rec.version = *v;
      report.interrupted.push_back(rec.id);
      logf(LogLevel::warn, "workflow", "run {} of {} {}", rec.id, rec.workflow, rec.reason);
      if (!adopt) continue;
      auto rt = load(rec);
      if (!rt) continue;
      const auto policy = (*rt)->def->on_interrupt;
      if (policy == InterruptPolicy::resume) {
        if (take_over(std::move(rt.value()), fmt::format("resumed by {} after {}", options.owner, gone), now))
          report.adopted.push_back(rec.id);
      } else if (policy == InterruptPolicy::restart) {
        StartOptions so;
        so.params = (*rt)->params;
        so.trigger = fmt::format("restart:{}", rec.id);
        so.correlation_id = rec.correlation_id;
        so.parent_run_id = rec.parent_run_id;
        if (auto n = create((*rt)->def, std::move(so))) report.restarted.push_back(*n);
      }
    }
    return report;
  }

  void shutdown() {
    const TimePoint now = clock.now();
    for (auto& [id, rp] : runs) {
      RunRt& r = *rp;
      for (auto& s : r.steps) {
        if (!s.inflight) continue;
        Attempt& a = *s.inflight;
        a.cancel->store(true);  // an in-process step on the host's executor is told to stop
        note_attempt(r, s, a, RunState::interrupted, "the engine shut down", std::nullopt, now);
        s.inflight.reset();
        s.state = RunState::interrupted;
        s.ended = now;
        s.reason = "interrupted: the engine shut down";
        note_step(r, s);
      }
      r.rec.state = RunState::interrupted;
      r.rec.ended_at = now;
      r.rec.reason = "interrupted: the engine shut down";
      r.rec.owner.clear();
      r.run_dirty = true;
      flush(r);
    }
    runs.clear();
    inflight = 0;
    (void)history->flush();
  }
};

// ---- JSON forms ----------------------------------------------------------------------------------

namespace {
using json::object_or_text;
using json::time_or_null;
bj::value duration_ms(TimePoint a, TimePoint b) {
  if (a == TimePoint{} || b == TimePoint{}) return nullptr;
  return duration_cast<Millis>(b - a).count();
}
}  // namespace

bj::object to_json(const RunRecord& r) {
  return bj::object{{"id", r.id},
                    {"workflow", r.workflow},
                    {"state", to_string(r.state)},
                    {"reason", r.reason},
                    {"params", object_or_text(r.params)},
                    {"trigger", r.trigger},
                    {"correlation_id", r.correlation_id},
                    {"priority", r.priority},
                    {"concurrency_key", r.concurrency_key},
                    {"parent_run_id", r.parent_run_id ? bj::value(r.parent_run_id) : bj::value(nullptr)},
                    {"queued_at", time_or_null(r.queued_at)},
                    {"started_at", time_or_null(r.started_at)},
                    {"ended_at", time_or_null(r.ended_at)},
                    {"duration_ms", duration_ms(r.started_at, r.ended_at)},
                    {"owner", r.owner},
                    {"cancel_requested", r.cancel_requested},
                    {"version", r.version}};
}

bj::object to_json(const sd::StepRecord& s) {
  return bj::object{{"step", s.step},
                    {"state", to_string(s.state)},
                    {"reason", s.reason},
                    {"attempts", s.attempts},
                    {"started_at", time_or_null(s.started)},
                    {"ended_at", time_or_null(s.ended)},
                    {"duration_ms", duration_ms(s.started, s.ended)},
                    {"exit_code", json::or_null(s.exit_code)},
                    {"outputs", object_or_text(s.outputs)}};
}

bj::object to_json(const sd::AttemptRecord& a) {
  return bj::object{{"step", a.step},
                    {"attempt", a.attempt},
                    {"state", to_string(a.state)},
                    {"started_at", time_or_null(a.started)},
                    {"ended_at", time_or_null(a.ended)},
                    {"duration_ms", duration_ms(a.started, a.ended)},
                    {"exit_code", json::or_null(a.exit_code)},
                    {"error", a.error},
                    {"pid", a.pid ? bj::value(a.pid) : bj::value(nullptr)},
                    {"stdout", a.stdout_text},
                    {"stderr", a.stderr_text}};
}

// ---- the public face ----------------------------------------------------------------------------

WorkflowEngine::WorkflowEngine(sd::Store& store, const Clock& clock) : WorkflowEngine(store, clock, Options{}) {}
WorkflowEngine::WorkflowEngine(sd::Store& store, const Clock& clock, Options options)
    : impl_(std::make_unique<Impl>(store, clock, std::move(options))) {}
WorkflowEngine::~WorkflowEngine() { impl_->shutdown(); }

Result<void> WorkflowEngine::register_workflow(WorkflowDefinition definition) {
  if (auto v = validate(definition); !v) return v.error();
  auto name = definition.name;
  impl_->workflows[name] = std::make_shared<const WorkflowDefinition>(std::move(definition));
  return {};
}

const WorkflowDefinition* WorkflowEngine::workflow(std::string_view name) const {
  auto it = impl_->workflows.find(name);
  return it == impl_->workflows.end() ? nullptr : it->second.get();
}

std::vector<std::string> WorkflowEngine::workflow_names() const {
  std::vector<std::string> out;
  for (const auto& [n, d] : impl_->workflows) out.push_back(n);
  return out;
}

void WorkflowEngine::register_callback(std::string name, StepFunction fn) { impl_->callbacks[std::move(name)] = std::move(fn); }
void WorkflowEngine::register_action(std::string name, StepFunction fn) { impl_->actions[std::move(name)] = std::move(fn); }
bool WorkflowEngine::has_action(std::string_view name) const { return impl_->actions.contains(name); }

Result<std::int64_t> WorkflowEngine::start(std::string_view workflow, StartOptions options) {
  auto def = impl_->find_workflow(workflow);
  if (!def) return def.error();
  return impl_->create(*def, std::move(options));
}

Result<std::int64_t> WorkflowEngine::start(const WorkflowDefinition& definition, StartOptions options) {
  if (auto v = validate(definition); !v) return v.error();
  return impl_->create(std::make_shared<const WorkflowDefinition>(definition), std::move(options));
}

Result<void> WorkflowEngine::resume(std::int64_t run_id, std::string reason) { return impl_->resume(run_id, std::move(reason)); }

Result<void> WorkflowEngine::cancel(std::int64_t run_id, std::string reason) {
  if (reason.empty()) reason = "cancelled";
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->active_ids.contains(run_id)) {
      impl_->cancel_requests.emplace_back(run_id, std::move(reason));
      impl_->signal_wake();
      return {};
    }
  }
  return impl_->cancel_stored(run_id, std::move(reason));
}

PollResult WorkflowEngine::poll() { return impl_->poll(); }
void WorkflowEngine::wait(std::chrono::milliseconds max) { impl_->wait(max); }
void WorkflowEngine::wake() { impl_->signal_wake(); }

bool WorkflowEngine::is_active(std::int64_t run_id) const {
  std::lock_guard lock(impl_->mu);
  return impl_->active_ids.contains(run_id);
}

void WorkflowEngine::on_run_finished(std::function<void(const RunRecord&)> fn) { impl_->finished_listeners.push_back(std::move(fn)); }

Result<RunRecord> WorkflowEngine::run_to_completion(std::int64_t run_id) {
  for (;;) {
    poll();
    if (!is_active(run_id)) break;
    wait(std::chrono::milliseconds(1000));
  }
  auto r = impl_->store.get_run(run_id);
  if (!r) return r.error();
  if (!*r) return fail(errc::not_found, fmt::format("workflow run {} does not exist", run_id));
  return **r;
}

Result<RecoveryReport> WorkflowEngine::recover(bool adopt) { return impl_->recover(adopt); }

const std::string& WorkflowEngine::owner() const noexcept { return impl_->options.owner; }
storage::Store& WorkflowEngine::store() noexcept { return impl_->store; }
const Clock& WorkflowEngine::clock() const noexcept { return impl_->clock; }

}  // namespace automation::workflow
