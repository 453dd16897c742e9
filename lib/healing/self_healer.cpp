#include <automation/core/json.hpp>
#include <automation/core/time.hpp>
#include <automation/healing/self_healer.hpp>
#include <automation/scaling/actuator.hpp>

#include "detail/clean_text.hpp"
#include "detail/hash.hpp"
#include "detail/names.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <malloc.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <deque>
#include <mutex>
#include <random>
#include <set>

namespace automation::healing {

namespace sd = automation::storage;
namespace bj = boost::json;

namespace {

constexpr std::array kActions{ActionKind::restart, ActionKind::command, ActionKind::workflow,  ActionKind::callback,
                              ActionKind::wait,    ActionKind::alert,   ActionKind::quarantine};

std::string shown(Duration d) { return format_duration(std::chrono::duration_cast<Millis>(d)); }

bool unwell(const std::string& state) { return state == "unhealthy" || state == "healing" || state == "quarantined"; }

/// Returns memory the allocator holds but does not use to the system: a C++ process's "collect
/// garbage" (the seed's "memory above 90 % -> clear caches and collect garbage").
Result<std::string> trim_heap() {
  const auto before = mallinfo2();
  const bool released = malloc_trim(0) == 1;
  const auto after = mallinfo2();
  return fmt::format("malloc_trim: {} (heap {} bytes in use, {} free before, {} free after)",
                     released ? "memory returned to the system" : "nothing to return", after.uordblks, before.fordblks, after.fordblks);
}

}  // namespace

std::string_view to_string(ActionKind k) noexcept {
  switch (k) {
    case ActionKind::restart:
      return "restart";
    case ActionKind::command:
      return "command";
    case ActionKind::workflow:
      return "workflow";
    case ActionKind::callback:
      return "callback";
    case ActionKind::wait:
      return "wait";
    case ActionKind::alert:
      return "alert";
    case ActionKind::quarantine:
      return "quarantine";
  }
  return "?";
}

Result<ActionKind> parse_action_kind(std::string_view text) {
  return detail::parse_name(text, std::span<const ActionKind>(kActions), "healing action");
}

std::string HealStep::describe() const {
  switch (kind) {
    case ActionKind::restart:
      return "restart " + service;
    case ActionKind::command:
      return "command " + (command.empty() ? std::string("?") : command.front());
    case ActionKind::workflow:
      return "workflow " + workflow;
    case ActionKind::callback:
      return "callback " + callback;
    case ActionKind::wait:
      return "wait " + shown(verify);
    case ActionKind::alert:
      return "alert";
    case ActionKind::quarantine:
      return "quarantine";
  }
  return "?";
}

Result<void> TargetSpec::validate() const {
  if (auto v = sd::check_resource_name("target", name); !v) return v;
  auto bad = [&](std::string msg) { return fail(errc::invalid_argument, fmt::format("target \"{}\": {}", name, msg)); };
  if (auto v = liveness.validate(); !v) return bad("liveness " + v.error().message);
  if (readiness)
    if (auto v = readiness->validate(); !v) return bad("readiness " + v.error().message);
  for (std::size_t i = 0; i < ladder.size(); ++i) {
    const auto& s = ladder[i];
    const auto where = fmt::format("step {} ({})", i + 1, to_string(s.kind));
    if (s.verify < Duration{} || s.timeout <= Duration{}) return bad(where + ": verify cannot be negative and timeout must be positive");
    if (s.kind == ActionKind::restart && s.service.empty() && service.empty()) return bad(where + ": no service to restart");
    if (s.kind == ActionKind::command && (s.command.empty() || s.command.front().empty())) return bad(where + ": needs a command");
    if (s.kind == ActionKind::workflow && s.workflow.empty()) return bad(where + ": needs a workflow");
    if (s.kind == ActionKind::callback && s.callback.empty()) return bad(where + ": needs a callback name");
  }
  if (backoff.initial < Duration{} || backoff.cap < backoff.initial || !(backoff.multiplier >= 1) || backoff.jitter < 0 ||
      backoff.jitter >= 1 || backoff.reset_after < Duration{})
    return bad("backoff needs 0 <= initial <= cap, a multiplier of at least 1 and a jitter in [0, 1)");
  if (budget.restarts < 0 || budget.window <= Duration{}) return bad("the restart budget needs restarts >= 0 and a positive window");
  for (const auto& d : depends_on)
    if (d == name) return bad("it cannot depend on itself");
  return {};
}

// ---- the healer ---------------------------------------------------------------------------------

struct SelfHealer::Target {
  TargetSpec spec;
  TimePoint next_probe{}, next_ready_probe{};
  int fails = 0, oks = 0;
  std::deque<bool> window;
  int ready_fails = 0, ready_oks = 0;
  bool ready = true;
  std::string state = "unknown";
  std::string reason = "not probed yet";  // why it is in its state
  std::string cause;                      // what made this episode unhealthy (actions say it)
  TimePoint since{};
  std::optional<ProbeResult> last;
  TimePoint last_time{};
  int step = 0, attempt = 0;
  std::optional<TimePoint> verify_until;
  std::string verifying;  // the step being verified
  TimePoint next_action{};
  std::optional<TimePoint> healthy_since;
  std::optional<TimePoint> paused_until;
  std::string paused_by;
  std::int64_t resume_seen = 0;
  TimePoint resumed{};  // the newest resume: restarts before it no longer count against the budget
  std::vector<std::string> waiting_for;
  bool exit_noted = false;  // left down on purpose (an exit code not healed, a service stopped)
  bool announced = false;   // this episode's unhealthy was announced (so its end is too)
  bool restarted = false;   // this episode restarted its service (dependants follow when it heals)
  std::string error;        // the last pass's error
};

struct SelfHealer::Impl {
  sd::Store& store;
  const Clock& clock;
  HealerOptions options;
  // Recursive: hooks run on the ticking thread and may ask for status() or pause().
  mutable std::recursive_mutex mu;
  std::vector<Target> targets;  // dependencies before dependants
  std::vector<sd::HealingRecord> written;

  Target* find(std::string_view name) {
    for (auto& t : targets)
      if (t.spec.name == name) return &t;
    return nullptr;
  }

  /// Stores `r`; a pass's records also go into its report (an operator's do not).
  Result<void> record(sd::HealingRecord& r, bool report = true) {
    r.reason = detail::clean_text(r.reason);
    r.error = detail::clean_text(r.error);
    auto id = store.append_healing(r);
    if (!id) return with_context(id.error(), fmt::format("target \"{}\": recording the healing history", r.target));
    r.id = *id;
    if (report) written.push_back(r);
    return {};
  }

  /// An operator's pause or resume of a target, recorded.
  Result<sd::HealingRecord> operator_record(std::string_view target, std::string kind, const std::string& actor, const std::string& reason,
                                            std::string detail = "{}") {
    auto* t = find(target);
    if (!t) return fail(errc::not_found, fmt::format("unknown health target \"{}\"", target));
    sd::HealingRecord r;
    r.target = t->spec.name;
    r.time = r.updated = clock.now();
    r.state = kind == "pause" ? std::string("paused") : t->state;
    r.actor = actor;
    r.reason = reason.empty() ? fmt::format("{} by an operator", kind == "pause" ? "paused" : "resumed") : reason;
    r.kind = std::move(kind);
    r.detail = std::move(detail);
    if (auto rec = record(r, false); !rec) return rec.error();
    return r;
  }

  bool silenced(const Target& t) const { return !t.waiting_for.empty() || t.paused_until.has_value(); }

  void announce(const Target& t, const std::string& what, const std::string& reason) {
    if (silenced(t)) return;                                                   // a dependency is down, or an operator paused it
    if (t.spec.dry_run && (what == "alert" || what == "quarantined")) return;  // a dry run only plans its alerts
    if (options.emit_events) {
      sd::EventRecord e;
      e.name = "health." + what;
      e.time = clock.now();
      e.payload = json::dump(bj::object{{"target", t.spec.name}, {"state", t.state}, {"reason", detail::clean_text(reason)}});
      e.source = "healer";
      (void)store.append_event(e);
    }
    if (options.alert) {
      try {
        options.alert(t.spec.name, what, reason);
      } catch (...) {  // a host's alert hook cannot stop the healing
      }
    }
  }

  /// A change of state, recorded; announced when `what` is given.
  Result<void> change(Target& t, std::string state, std::string reason, std::string what = {}) {
    const auto now = clock.now();
    t.state = std::move(state);
    t.reason = reason;
    t.since = now;
    sd::HealingRecord r;
    r.target = t.spec.name;
    r.time = r.updated = now;
    r.kind = "state";
    r.state = t.state;
    r.actor = "healer";
    r.reason = reason;
    bj::object d{{"consecutive_failures", t.fails}, {"consecutive_successes", t.oks}, {"step", t.step}, {"attempt", t.attempt}};
    if (t.last) d["probe"] = detail::clean_text(t.last->detail);
    if (!t.waiting_for.empty()) {
      bj::array w;
      for (const auto& n : t.waiting_for) w.push_back(bj::value(n));
      d["waiting_for"] = std::move(w);
    }
    if (t.paused_until) d["paused"] = true;
    r.detail = json::dump(d);
    if (auto rec = record(r); !rec) return rec;
    if (!what.empty()) announce(t, what, reason);
    return {};
  }

  ProbeResult probe(const ProbeSpec& p) {
    if (p.kind == ProbeKind::process && !p.service.empty()) {
      if (!options.supervisor) return ProbeResult{false, "no supervisor for service " + p.service, std::nullopt, {}};
      auto st = options.supervisor->status(p.service);
      if (!st) return ProbeResult{false, st.error().message, std::nullopt, {}};
      if (st->running) return ProbeResult{true, fmt::format("service {} is running (pid {})", p.service, st->pid), std::nullopt, {}};
      return ProbeResult{
          false, fmt::format("service {} is not running{}", p.service, st->exit.empty() ? "" : " (" + st->exit + ")"), st->exit_code, {}};
    }
    return run_probe(p);
  }

  /// The delay before attempt `n` (n >= 1 waits; the first attempt does not), jittered, within the cap.
  Duration delay(const Target& t, int n) const {
    if (n <= 0) return Duration{};
    const auto& b = t.spec.backoff;
    const double cap = static_cast<double>(b.cap.count());
    const double base = std::min(cap, static_cast<double>(b.initial.count()) * std::pow(b.multiplier, std::min(n - 1, 60)));
    // Jitter from a hash of the healer's seed, the target and the attempt: spread across hosts, reproducible in one.
    const auto h = detail::mix64(detail::fnv1a(fmt::format("{}/{}/{}", options.seed, t.spec.name, n)));
    const double u = static_cast<double>(h % 2001) / 1000.0 - 1.0;  // [-1, 1]
    return Duration(static_cast<Duration::rep>(std::clamp(base * (1 + b.jitter * u), 0.0, cap)));
  }

  /// The newest pause and resume of a target, from the store (another process may have set them).
  Result<void> refresh_pause(Target& t, TimePoint now) {
    sd::HealingQuery q;
    q.target = t.spec.name;
    q.limit = 1;
    q.kind = "pause";
    auto pause = store.list_healing(q);
    if (!pause) return pause.error();
    q.kind = "resume";
    auto resume = store.list_healing(q);
    if (!resume) return resume.error();
    t.paused_until.reset();
    t.paused_by.clear();
    const std::int64_t resumed = resume->empty() ? 0 : resume->front().id;
    if (!resume->empty()) t.resumed = resume->front().time;
    if (!pause->empty() && pause->front().id > resumed) {
      const auto& p = pause->front();
      TimePoint until = TimePoint::max();
      if (auto d = json::parse(p.detail); d && d->is_object())
        if (auto* u = d->as_object().if_contains("until"); u && u->is_string())
          if (auto tp = parse_timestamp(u->as_string())) until = *tp;
      if (until > now) {
        t.paused_until = until;
        t.paused_by = p.actor;
      }
    }
    // An operator's resume takes a quarantined (or deliberately left) target back to healing.
    if (resumed > t.resume_seen) {
      t.resume_seen = resumed;
      t.exit_noted = false;
      if (t.state == "quarantined") {
        t.step = 0;
        t.attempt = 0;
        t.verify_until.reset();
        t.next_action = now;
        if (auto r = change(t, "unhealthy", fmt::format("resumed by {}: {}", resume->front().actor, resume->front().reason)); !r) return r;
      }
    }
    return {};
  }

  Result<int> restarts_in_window(const Target& t, TimePoint now) {
    sd::HealingQuery q;
    q.target = t.spec.name;
    q.kind = "action";
    q.action = "restart";
    // An operator's resume starts a new budget.
    q.since = std::max(now - t.spec.budget.window, t.resumed);
    q.limit = 0;
    auto recs = store.list_healing(q);
    if (!recs) return recs.error();
    int n = 0;
    for (const auto& r : *recs)
      n +=
          r.outcome == "succeeded" || r.outcome == "failed" || r.outcome == "pending" || (t.spec.dry_run && r.outcome == "dry-run") ? 1 : 0;
    return n;
  }

  Result<void> escalate(Target& t, const std::string& why, bool record_action = true) {
    const auto now = clock.now();
    if (record_action) {
      sd::HealingRecord r;
      r.target = t.spec.name;
      r.time = r.updated = now;
      r.kind = "action";
      r.state = "quarantined";
      r.action = "quarantine";
      r.step = t.step;
      r.attempt = t.attempt;
      r.actor = "healer";
      r.reason = why;
      r.dry_run = t.spec.dry_run;
      r.outcome = t.spec.dry_run ? "dry-run" : "succeeded";
      if (auto rec = record(r); !rec) return rec;
    }
    t.verify_until.reset();
    return change(t, "quarantined", why, "quarantined");
  }

  /// Runs a host hook; an exception is a failure like any other.
  template <class F>
  static Result<std::string> guarded(F&& f) {
    try {
      return f();
    } catch (const std::exception& e) {
      return fail(errc::internal, fmt::format("it threw: {}", e.what()));
    } catch (...) {
      return fail(errc::internal, "it threw");
    }
  }

  /// Carries out (or, in a dry run, records the plan of) one action for `t`, recorded with its outcome.
  Result<sd::HealingRecord> carry_out(Target& t, const HealStep& s, int step_number, std::string reason) {
    const auto now = clock.now();
    const auto service = s.service.empty() ? t.spec.service : s.service;
    sd::HealingRecord r;
    r.target = t.spec.name;
    r.time = r.updated = now;
    r.kind = "action";
    r.state = "healing";
    r.action = std::string(to_string(s.kind));
    r.step = step_number;
    r.attempt = t.attempt + 1;
    r.actor = "healer";
    r.reason = std::move(reason);
    bj::object plan{
        {"step", s.describe()}, {"verify", shown(s.verify)}, {"attempt", t.attempt + 1}, {"next_delay", shown(delay(t, t.attempt + 1))}};
    r.detail = json::dump(plan);
    r.dry_run = t.spec.dry_run;
    r.outcome = r.dry_run ? "dry-run" : "pending";
    if (auto rec = record(r); !rec) return rec.error();
    const auto index = written.size() - 1;
    if (r.dry_run) return r;
    Result<std::string> done = std::string();
    switch (s.kind) {
      case ActionKind::restart:
        done = guarded([&]() -> Result<std::string> {
          if (!options.supervisor) return fail(errc::unavailable, "no supervisor");
          auto st = options.supervisor->restart(service);
          if (!st) return st.error();
          return fmt::format("service {} restarted (pid {})", service, st->pid);
        });
        break;
      case ActionKind::command:
        done = guarded([&]() -> Result<std::string> {
          auto c = scaling::run_command(s.command, s.timeout, {{"AUTOMATION_TARGET", t.spec.name}, {"AUTOMATION_REASON", t.cause}});
          if (!c) return c.error();
          if (c->exit_code != 0)
            return fail(errc::unavailable, fmt::format("{}: {}: {}", s.command.front(), c->status, c->err.empty() ? c->out : c->err));
          return fmt::format("{}: {}", s.command.front(), c->status);
        });
        break;
      case ActionKind::workflow:
        done = guarded([&]() -> Result<std::string> {
          if (!options.start_workflow) return fail(errc::unavailable, "no workflow runner was given to the healer");
          auto run = options.start_workflow(s.workflow, s.params, r.reason);
          if (!run) return run.error();
          return fmt::format("workflow {} started: run {}", s.workflow, *run);
        });
        break;
      case ActionKind::callback:
        done = guarded([&]() -> Result<std::string> {
          auto it = options.callbacks.find(s.callback);
          if (it == options.callbacks.end()) return fail(errc::not_found, "no callback " + s.callback);
          return it->second();
        });
        break;
      case ActionKind::wait:
        done = fmt::format("waiting {} before looking again", shown(s.verify));
        break;
      case ActionKind::alert:
        announce(t, "alert", t.cause);
        done = std::string("alert sent");
        break;
      case ActionKind::quarantine:
        done = std::string("quarantined");
        break;
    }
    const bool ok = static_cast<bool>(done);
    r.outcome = ok ? "succeeded" : "failed";
    r.error = ok ? std::string() : detail::clean_text(done.error().message);
    plan["result"] = detail::clean_text(ok ? *done : done.error().message);
    r.detail = json::dump(plan);
    r.updated = clock.now();
    if (auto f = store.finish_healing(r.id, r.outcome, r.error, r.detail, r.updated); !f)
      return with_context(f.error(), fmt::format("target \"{}\": recording the outcome of healing record {}", t.spec.name, r.id));
    written[index] = r;
    if (s.kind == ActionKind::restart) t.restarted = true;
    return r;
  }

  /// Carries out (or plans) ladder step t.step.
  Result<void> run_step(Target& t) {
    const auto now = clock.now();
    const HealStep& s = t.spec.ladder[static_cast<std::size_t>(t.step)];
    auto reason =
        fmt::format("{} is unhealthy ({}): step {} of {}, {}", t.spec.name, t.cause, t.step + 1, t.spec.ladder.size(), s.describe());
    if (t.state != "healing")
      if (auto c = change(t, "healing", fmt::format("step {} of {}: {}", t.step + 1, t.spec.ladder.size(), s.describe())); !c) return c;
    auto r = carry_out(t, s, t.step + 1, std::move(reason));
    // Whatever happened, the attempt is counted and the next one waits: a step that keeps failing
    // (or throwing) cannot run in a loop.
    ++t.attempt;
    const bool failed = r && r->outcome == "failed";
    t.verify_until = now + (failed ? Duration{} : s.verify);
    t.verifying = s.describe();
    t.next_action = *t.verify_until + delay(t, t.attempt);
    t.next_probe = std::min(t.next_probe, *t.verify_until);  // verified by a probe taken after it
    if (!r) return r.error();
    if (s.kind == ActionKind::quarantine) return escalate(t, fmt::format("the ladder's step {} quarantines it", t.step + 1), false);
    return {};
  }

  /// After a root cause was restarted and healed, its dependants with a service are restarted, in order.
  Result<void> restart_dependants(const Target& root) {
    for (auto& d : targets) {
      if (std::find(d.spec.depends_on.begin(), d.spec.depends_on.end(), root.spec.name) == d.spec.depends_on.end()) continue;
      if (d.spec.service.empty() || d.paused_until || !options.supervisor) continue;
      HealStep step{.kind = ActionKind::restart, .verify = Duration{}};
      auto r = carry_out(d, step, 0,
                         fmt::format("{} was restarted and is healthy again: its dependants are restarted in order", root.spec.name));
      if (!r) return r.error();
    }
    return {};
  }

  Result<void> pass(Target& t) {
    const auto now = clock.now();
    if (auto r = refresh_pause(t, now); !r) return r;
    const bool was_waiting = !t.waiting_for.empty();
    t.waiting_for.clear();
    for (const auto& d : t.spec.depends_on)
      if (auto* dep = find(d); dep && unwell(dep->state)) t.waiting_for.push_back(d);
    // A dependency back: look again now rather than act on an old probe.
    if (was_waiting && t.waiting_for.empty()) t.next_probe = std::min(t.next_probe, now);

    // Probes that are due.
    const auto& live = t.spec.liveness;
    if (now >= t.next_probe) {
      t.last = probe(live);
      t.last_time = now;
      t.next_probe = now + live.interval;
      if (t.last->ok) {
        ++t.oks;
        t.fails = 0;
      } else {
        ++t.fails;
        t.oks = 0;
      }
      if (live.flap_window > 0) {
        t.window.push_back(t.last->ok);
        while (static_cast<int>(t.window.size()) > live.flap_window) t.window.pop_front();
      }
    }
    if (t.spec.readiness && now >= t.next_ready_probe) {
      const auto& rp = *t.spec.readiness;
      auto r = probe(rp);
      t.next_ready_probe = now + rp.interval;
      if (r.ok) {
        ++t.ready_oks;
        t.ready_fails = 0;
      } else {
        ++t.ready_fails;
        t.ready_oks = 0;
      }
      if (t.ready && t.ready_fails >= rp.failure_threshold) {
        t.ready = false;
        announce(t, "not_ready", r.detail);
      } else if (!t.ready && t.ready_oks >= rp.success_threshold) {
        t.ready = true;
        announce(t, "ready", r.detail);
      }
    }

    const int flap_count = static_cast<int>(std::count(t.window.begin(), t.window.end(), false));
    const bool flapping = live.flap_window > 0 && flap_count >= live.flap_failures;
    const bool unhealthy_now = t.fails >= live.failure_threshold || flapping;
    const bool healthy_now = t.oks >= live.success_threshold && !flapping;
    const std::string probe_said = t.last ? t.last->detail : std::string("not probed");

    if ((t.state == "unknown" || t.state == "healthy") && unhealthy_now) {
      t.step = 0;
      t.verify_until.reset();
      t.healthy_since.reset();
      t.exit_noted = false;
      t.restarted = false;
      t.cause = flapping && t.fails < live.failure_threshold
                    ? fmt::format("flapping: {} of the last {} probes failed ({})", flap_count, live.flap_window, probe_said)
                    : fmt::format("{} failed {} time{} in a row: {}", live.describe(), t.fails, t.fails == 1 ? "" : "s", probe_said);
      t.announced = !silenced(t);
      if (auto r = change(t, "unhealthy", t.cause, "unhealthy"); !r) return r;
    } else if (t.state == "unknown" && healthy_now) {
      t.healthy_since = now;
      if (auto r = change(t, "healthy", probe_said); !r) return r;
    } else if (unwell(t.state) && healthy_now) {
      const auto why =
          t.verify_until ? fmt::format("healed after {}: {}", t.verifying, probe_said) : fmt::format("recovered: {}", probe_said);
      const bool restarted = t.restarted;
      t.step = 0;
      t.verify_until.reset();
      t.healthy_since = now;
      t.exit_noted = false;
      t.restarted = false;
      // Its end is announced only if its start was.
      if (auto r = change(t, "healthy", why, t.announced ? "healthy" : ""); !r) return r;
      t.announced = false;
      if (restarted)
        if (auto r = restart_dependants(t); !r) return r;
    } else if (unwell(t.state) && !t.announced && !silenced(t)) {
      // Silenced while a dependency was down (or paused), and still unhealthy now that it is not.
      t.announced = true;
      announce(t, t.state == "quarantined" ? "quarantined" : "unhealthy", t.cause);
    }
    if (t.state == "healthy" && t.healthy_since && now - *t.healthy_since >= t.spec.backoff.reset_after) t.attempt = 0;

    // Healing.
    if (t.state != "unhealthy" && t.state != "healing") return {};
    if (silenced(t)) return {};  // the operator's pause wins; the root cause first
    if (t.verify_until) {
      if (now < *t.verify_until || t.last_time < *t.verify_until) return {};  // one action in flight, verified by a fresh probe
      t.verify_until.reset();
      ++t.step;  // still unhealthy after the verification: the next step
    }
    if (t.exit_noted) return {};
    if (!t.spec.service.empty() && options.supervisor) {
      auto st = options.supervisor->status(t.spec.service);
      if (st && !st->running) {
        const bool no_heal = st->exit_code && std::find(t.spec.no_heal_exit_codes.begin(), t.spec.no_heal_exit_codes.end(),
                                                        *st->exit_code) != t.spec.no_heal_exit_codes.end();
        if (st->stopped || no_heal) {
          t.exit_noted = true;
          const auto why = st->stopped ? fmt::format("service {} was stopped on purpose: it is not healed", t.spec.service)
                                       : fmt::format("service {} exited with code {}, which is not healed", t.spec.service, *st->exit_code);
          return change(t, "unhealthy", why, "not_healed");
        }
      }
    }
    if (t.step >= static_cast<int>(t.spec.ladder.size()))
      return escalate(t, t.spec.ladder.empty()
                             ? std::string("it has no healing steps")
                             : fmt::format("still unhealthy after all {} healing steps: {}", t.spec.ladder.size(), probe_said));
    if (now < t.next_action) return {};
    if (t.spec.ladder[static_cast<std::size_t>(t.step)].kind == ActionKind::restart) {
      auto n = restarts_in_window(t, now);
      if (!n) return n.error();
      if (*n >= t.spec.budget.restarts)
        return escalate(
            t, fmt::format("the restart budget is spent: {} restart{} within {}", *n, *n == 1 ? "" : "s", shown(t.spec.budget.window)));
    }
    return run_step(t);
  }

  /// When the target next needs a pass: its probes, and its healing when it can act.
  std::optional<TimePoint> due(const Target& t) const {
    std::optional<TimePoint> d = t.next_probe;
    if (t.spec.readiness) d = std::min(*d, t.next_ready_probe);
    const bool can_act = (t.state == "unhealthy" || t.state == "healing") && !silenced(t) && !t.exit_noted;
    if (can_act) d = std::min(*d, std::max(t.next_action, t.verify_until.value_or(TimePoint{})));
    return d;
  }
};

SelfHealer::SelfHealer(sd::Store& store, const Clock& clock, HealerOptions options) : impl_(new Impl{store, clock, std::move(options)}) {
  impl_->options.callbacks.try_emplace("clear_caches", trim_heap);
  if (impl_->options.seed == 0) impl_->options.seed = std::random_device{}() | 1u;
}

SelfHealer::~SelfHealer() = default;

Result<void> SelfHealer::add(TargetSpec spec) {
  if (auto v = spec.validate(); !v) return v;
  std::lock_guard lock(impl_->mu);
  auto& im = *impl_;
  auto bad = [&](std::string msg) { return fail(errc::invalid_argument, fmt::format("target \"{}\": {}", spec.name, msg)); };
  if (im.find(spec.name)) return fail(errc::already_exists, fmt::format("target \"{}\" is already added", spec.name));
  for (const auto& d : spec.depends_on)
    if (!im.find(d)) return bad(fmt::format("it depends on \"{}\", which is not added (add dependencies first: no cycles)", d));
  auto resolve = [&](ProbeSpec& p, std::string_view which) -> Result<void> {
    if (p.kind == ProbeKind::callback && !p.callback) {
      auto it = im.options.callbacks.find(p.callback_name);
      if (it == im.options.callbacks.end()) return bad(fmt::format("{} probe: no callback \"{}\" is registered", which, p.callback_name));
      p.callback = it->second;
    }
    if (p.kind == ProbeKind::process && !p.service.empty()) {
      if (!im.options.supervisor) return bad(fmt::format("{} probe: service {} needs a supervisor", which, p.service));
      if (auto st = im.options.supervisor->status(p.service); !st) return bad(fmt::format("{} probe: {}", which, st.error().message));
    }
    return {};
  };
  if (auto r = resolve(spec.liveness, "liveness"); !r) return r;
  if (spec.readiness)
    if (auto r = resolve(*spec.readiness, "readiness"); !r) return r;
  for (std::size_t i = 0; i < spec.ladder.size(); ++i) {
    const auto& s = spec.ladder[i];
    const auto where = fmt::format("step {} ({})", i + 1, to_string(s.kind));
    if (s.kind == ActionKind::restart) {
      const auto svc = s.service.empty() ? spec.service : s.service;
      if (!im.options.supervisor) return bad(where + ": restarting needs a supervisor");
      if (auto st = im.options.supervisor->status(svc); !st) return bad(where + ": " + st.error().message);
    }
    if (s.kind == ActionKind::callback && !im.options.callbacks.contains(s.callback))
      return bad(fmt::format("{}: no callback \"{}\" is registered", where, s.callback));
    if (s.kind == ActionKind::workflow && !im.options.start_workflow) return bad(where + ": no workflow runner was given to the healer");
  }
  Target t;
  const auto now = im.clock.now();
  t.next_probe = now + spec.liveness.initial_delay;
  if (spec.readiness) t.next_ready_probe = now + spec.readiness->initial_delay;
  t.since = now;
  t.spec = std::move(spec);
  // A healer restarted picks up where the last one left: its recorded state (a quarantine stays,
  // an episode goes on from its next step without announcing it again).
  sd::HealingQuery q;
  q.target = t.spec.name;
  q.kind = "resume";
  q.limit = 1;
  auto resumes = im.store.list_healing(q);
  if (!resumes) return resumes.error();
  if (!resumes->empty()) {
    t.resume_seen = resumes->front().id;
    t.resumed = resumes->front().time;
  }
  q.kind = "state";
  auto last_state = im.store.list_healing(q);
  if (!last_state) return last_state.error();
  if (!last_state->empty()) {
    const auto& ls = last_state->front();
    t.state = ls.state == "healing" ? std::string("unhealthy") : ls.state;
    t.reason = ls.reason + " (recorded before this healer started)";
    t.cause = ls.reason;
    t.since = ls.time;
    t.announced = unwell(t.state);
    if (t.state == "healthy") t.healthy_since = ls.time;
    if (unwell(t.state)) {
      q.kind = "action";
      auto last_action = im.store.list_healing(q);
      if (!last_action) return last_action.error();
      if (!last_action->empty() && last_action->front().time >= ls.time - std::chrono::hours(24)) {
        t.step = std::max(0, last_action->front().step);  // the next one (records count steps from 1)
        t.attempt = last_action->front().attempt;
      }
    }
    if (t.state == "unknown" || t.state == "paused") t.state = "unknown";
  }
  im.targets.push_back(std::move(t));
  return {};
}

Result<void> SelfHealer::add_all(std::vector<TargetSpec> specs) {
  // Kahn's order over the dependencies; what is left is a cycle.
  std::vector<TargetSpec> ordered;
  std::set<std::string> placed;
  for (const auto& name : targets()) placed.insert(name);
  std::set<std::string> given;
  for (const auto& s : specs) given.insert(s.name);
  for (const auto& s : specs)
    for (const auto& d : s.depends_on)
      if (!given.contains(d) && !placed.contains(d))
        return fail(errc::invalid_argument, fmt::format("target \"{}\" depends on \"{}\", which is not a target", s.name, d));
  while (!specs.empty()) {
    auto ready = std::find_if(specs.begin(), specs.end(), [&](const TargetSpec& s) {
      return std::all_of(s.depends_on.begin(), s.depends_on.end(), [&](const std::string& d) { return placed.contains(d); });
    });
    if (ready == specs.end()) {
      std::string cycle;
      for (const auto& s : specs) cycle += (cycle.empty() ? "" : ", ") + s.name;
      return fail(errc::invalid_argument, fmt::format("the dependencies of targets {} form a cycle", cycle));
    }
    placed.insert(ready->name);
    ordered.push_back(std::move(*ready));
    specs.erase(ready);
  }
  for (auto& s : ordered)
    if (auto r = add(std::move(s)); !r) return r;
  return {};
}

std::vector<std::string> SelfHealer::targets() const {
  std::lock_guard lock(impl_->mu);
  std::vector<std::string> out;
  for (const auto& t : impl_->targets) out.push_back(t.spec.name);
  return out;
}

TickReport SelfHealer::tick() {
  std::lock_guard lock(impl_->mu);
  impl_->written.clear();
  TickReport report;
  // One target's trouble (a store refusing a record, a probe that throws) does not stop the others.
  for (auto& t : impl_->targets) {
    Result<void> r = fail(errc::internal, "not run");
    try {
      r = impl_->pass(t);
    } catch (const std::exception& e) {
      r = fail(errc::internal, fmt::format("the pass threw: {}", e.what()));
    }
    t.error = r ? std::string() : r.error().message;
    if (!r) report.errors.push_back(with_context(r.error(), fmt::format("target \"{}\"", t.spec.name)));
  }
  report.records = std::move(impl_->written);
  impl_->written.clear();
  return report;
}

std::optional<TimePoint> SelfHealer::next_due() const {
  std::lock_guard lock(impl_->mu);
  std::optional<TimePoint> due;
  for (const auto& t : impl_->targets)
    if (auto d = impl_->due(t)) due = due ? std::min(*due, *d) : *d;
  return due;
}

Result<sd::HealingRecord> SelfHealer::pause(std::string_view target, std::optional<TimePoint> until, const std::string& actor,
                                            const std::string& reason) {
  std::lock_guard lock(impl_->mu);
  return impl_->operator_record(target, "pause", actor, reason,
                                json::dump(bj::object{{"until", until ? bj::value(format_timestamp(*until)) : bj::value(nullptr)}}));
}

Result<sd::HealingRecord> SelfHealer::resume(std::string_view target, const std::string& actor, const std::string& reason) {
  std::lock_guard lock(impl_->mu);
  return impl_->operator_record(target, "resume", actor, reason);
}

std::vector<TargetStatus> SelfHealer::status() const {
  std::lock_guard lock(impl_->mu);
  std::vector<TargetStatus> out;
  for (const auto& t : impl_->targets) {
    TargetStatus s;
    s.name = t.spec.name;
    s.state = t.paused_until ? std::string("paused") : t.state;
    s.reason = t.paused_until ? fmt::format("paused by {} ({} underneath: {})", t.paused_by, t.state, t.reason) : t.reason;
    s.since = t.since;
    s.ready = t.ready;
    s.last_probe = t.last;
    s.last_probe_time = t.last_time;
    s.consecutive_failures = t.fails;
    s.consecutive_successes = t.oks;
    s.attempt = t.attempt;
    s.step = t.step;
    if (impl_->due(t) && (t.state == "unhealthy" || t.state == "healing") && !impl_->silenced(t) && !t.exit_noted)
      s.next_action = std::max(t.next_action, t.verify_until.value_or(TimePoint{}));
    s.paused_until = t.paused_until;
    s.paused_by = t.paused_by;
    s.waiting_for = t.waiting_for;
    s.error = t.error;
    out.push_back(std::move(s));
  }
  return out;
}

// ---- the seeds ----------------------------------------------------------------------------------

std::vector<TargetSpec> seed_targets(const SeedOptions& o) {
  using namespace std::chrono_literals;
  std::vector<TargetSpec> out;
  if (!o.database.empty()) {
    TargetSpec db;
    db.name = "database";
    db.description = "the store's database takes writes (seed: database locked -> wait and retry)";
    db.liveness.kind = ProbeKind::sqlite;
    db.liveness.database = o.database;
    db.liveness.failure_threshold = 2;
    db.ladder = {HealStep{.kind = ActionKind::wait, .verify = 5s}, HealStep{.kind = ActionKind::wait, .verify = 30s},
                 HealStep{.kind = ActionKind::alert, .verify = 5min}};
    out.push_back(std::move(db));
  }
  TargetSpec memory;
  memory.name = "memory";
  memory.description = "memory use below the limit (seed: above 90 % -> clear caches and collect garbage)";
  memory.liveness.kind = ProbeKind::memory;
  memory.liveness.max_percent = o.memory_limit;
  memory.ladder = {HealStep{.kind = ActionKind::callback, .callback = "clear_caches", .verify = 1min},
                   HealStep{.kind = ActionKind::alert, .verify = 15min}};
  out.push_back(std::move(memory));
  TargetSpec disk;
  disk.name = "disk";
  disk.description = "disk use below the limit (seed: disk full -> run the cleanup workflow)";
  disk.liveness.kind = ProbeKind::disk;
  disk.liveness.path = o.data_directory.empty() ? std::string("/") : o.data_directory;
  disk.liveness.max_percent = o.disk_limit;
  disk.liveness.interval = 5min;
  disk.liveness.failure_threshold = 1;
  disk.ladder = {HealStep{.kind = ActionKind::workflow, .workflow = "cleanup-resources", .verify = 5min},
                 HealStep{.kind = ActionKind::alert, .verify = 1h}};
  out.push_back(std::move(disk));
  if (o.connection_pool) {
    TargetSpec pool;
    pool.name = "connection-pool";
    pool.description = "the host's connection pool has connections to give (seed: exhausted -> recycle the connections)";
    pool.liveness.kind = ProbeKind::callback;
    pool.liveness.callback_name = "connection_pool";
    pool.ladder = {HealStep{.kind = ActionKind::callback, .callback = "recycle_connections", .verify = 30s},
                   HealStep{.kind = ActionKind::alert, .verify = 15min}};
    out.push_back(std::move(pool));
  }
  for (const auto& s : o.services) {
    TargetSpec svc;
    svc.name = s;
    svc.description = "service " + s + " is running (seed: service down -> restart it)";
    svc.service = s;
    svc.liveness.kind = ProbeKind::process;
    svc.liveness.service = s;
    svc.liveness.failure_threshold = 1;
    svc.ladder = {HealStep{.kind = ActionKind::restart, .verify = 30s}, HealStep{.kind = ActionKind::restart, .verify = 1min},
                  HealStep{.kind = ActionKind::alert, .verify = 5min}};
    svc.no_heal_exit_codes = {0};  // it stopped on purpose
    out.push_back(std::move(svc));
  }
  return out;
}

}  // namespace automation::healing
