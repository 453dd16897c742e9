#include <automation/core/json.hpp>
#include <automation/core/time.hpp>
#include <automation/healing/self_healer.hpp>
#include <automation/scaling/actuator.hpp>

#include "detail/hash.hpp"
#include "detail/names.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <malloc.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <deque>
#include <mutex>
#include <set>

namespace automation::healing {

namespace sd = automation::storage;
namespace bj = boost::json;

namespace {

constexpr std::array kActions{ActionKind::restart, ActionKind::command,  ActionKind::workflow,  ActionKind::callback,
                              ActionKind::wait,    ActionKind::alert,    ActionKind::quarantine};

std::string shown(Duration d) { return format_duration(std::chrono::duration_cast<Millis>(d)); }

bool unwell(const std::string& state) { return state == "unhealthy" || state == "healing" || state == "quarantined"; }

/// Returns memory the allocator holds but does not use to the system: a C++ process's "collect
/// garbage" (the seed's "memory above 90 % -> clear caches and collect garbage").
Result<std::string> trim_heap() {
  const auto before = mallinfo2();
  const bool released = malloc_trim(0) == 1;
  const auto after = mallinfo2();
  return fmt::format("malloc_trim: {} (heap {} bytes in use, {} free before, {} free after)", released ? "memory returned to the system" : "nothing to return",
                     after.uordblks, before.fordblks, after.fordblks);
}

}  // namespace

std::string_view to_string(ActionKind k) noexcept {
  switch (k) {
    case ActionKind::restart: return "restart";
    case ActionKind::command: return "command";
    case ActionKind::workflow: return "workflow";
    case ActionKind::callback: return "callback";
    case ActionKind::wait: return "wait";
    case ActionKind::alert: return "alert";
    case ActionKind::quarantine: return "quarantine";
  }
  return "?";
}

Result<ActionKind> parse_action_kind(std::string_view text) { return detail::parse_name(text, std::span<const ActionKind>(kActions), "healing action"); }

std::string HealStep::describe() const {
  switch (kind) {
    case ActionKind::restart: return "restart " + service;
    case ActionKind::command: return "command " + (command.empty() ? std::string("?") : command.front());
    case ActionKind::workflow: return "workflow " + workflow;
    case ActionKind::callback: return "callback " + callback;
    case ActionKind::wait: return "wait " + shown(verify);
    case ActionKind::alert: return "alert";
    case ActionKind::quarantine: return "quarantine";
  }
  return "?";
}

Result<void> TargetSpec::validate() const {
  if (!sd::is_resource_name(name))
    return fail(errc::invalid_argument, fmt::format("invalid target name \"{}\" (use [A-Za-z0-9][A-Za-z0-9_.-]*, at most 100)", name));
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
  std::string reason = "not probed yet";
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
  std::vector<std::string> waiting_for;
  bool exit_noted = false;
};

struct SelfHealer::Impl {
  sd::Store& store;
  const Clock& clock;
  HealerOptions options;
  mutable std::mutex mu;
  std::vector<Target> targets;  // dependencies before dependants
  std::vector<sd::HealingRecord> written;

  Target* find(std::string_view name) {
    for (auto& t : targets)
      if (t.spec.name == name) return &t;
    return nullptr;
  }

  Result<void> record(sd::HealingRecord& r) {
    auto id = store.append_healing(r);
    if (!id) return with_context(id.error(), fmt::format("target \"{}\": recording the healing history", r.target));
    r.id = *id;
    written.push_back(r);
    return {};
  }

  void announce(const Target& t, const std::string& what, const std::string& reason) {
    if (!t.waiting_for.empty() || t.paused_until) return;  // silenced: a dependency is down, or paused
    if (options.emit_events) {
      sd::EventRecord e;
      e.name = "health." + what;
      e.time = clock.now();
      e.payload = json::dump(bj::object{{"target", t.spec.name}, {"state", t.state}, {"reason", reason}});
      e.source = "healer";
      (void)store.append_event(e);
    }
    if (options.alert) options.alert(t.spec.name, what, reason);
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
    bj::object d{{"consecutive_failures", t.fails}, {"consecutive_successes", t.oks}};
    if (t.last) d["probe"] = t.last->detail;
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
      return ProbeResult{false,
                         fmt::format("service {} is not running{}", p.service, st->exit.empty() ? "" : " (" + st->exit + ")"),
                         st->exit_code,
                         {}};
    }
    return run_probe(p);
  }

  /// The delay before attempt `n` (n >= 1 waits; the first attempt does not).
  Duration delay(const Target& t, int n) const {
    if (n <= 0) return Duration{};
    const auto& b = t.spec.backoff;
    const double base = std::min(static_cast<double>(b.cap.count()),
                                 static_cast<double>(b.initial.count()) * std::pow(b.multiplier, n - 1));
    // Jitter from a hash of the target and the attempt: spread, yet reproducible.
    const auto h = detail::mix64(detail::fnv1a(fmt::format("{}/{}/{}", options.seed, t.spec.name, n)));
    const double u = static_cast<double>(h % 2001) / 1000.0 - 1.0;  // [-1, 1]
    return Duration(static_cast<Duration::rep>(std::max(0.0, base * (1 + b.jitter * u))));
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
    // An operator's resume takes a quarantined target back to healing.
    if (resumed > t.resume_seen) {
      t.resume_seen = resumed;
      if (t.state == "quarantined") {
        t.step = 0;
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
    q.since = now - t.spec.budget.window;
    q.limit = 0;
    auto recs = store.list_healing(q);
    if (!recs) return recs.error();
    int n = 0;
    for (const auto& r : *recs) n += r.outcome == "succeeded" || r.outcome == "failed" || r.outcome == "pending" ? 1 : 0;
    return n;
  }

  Result<void> escalate(Target& t, const std::string& why) {
    const auto now = clock.now();
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
    t.verify_until.reset();
    return change(t, "quarantined", why, "quarantined");
  }

  /// Carries out (or, in a dry run, plans) ladder step t.step.
  Result<void> run_step(Target& t) {
    const auto now = clock.now();
    const HealStep& s = t.spec.ladder[static_cast<std::size_t>(t.step)];
    const auto service = s.service.empty() ? t.spec.service : s.service;
    sd::HealingRecord r;
    r.target = t.spec.name;
    r.time = r.updated = now;
    r.kind = "action";
    r.state = "healing";
    r.action = std::string(to_string(s.kind));
    r.step = t.step + 1;
    r.attempt = t.attempt + 1;
    r.actor = "healer";
    r.reason = fmt::format("{} is unhealthy ({}): step {} of {}, {}", t.spec.name, t.reason, t.step + 1, t.spec.ladder.size(), s.describe());
    bj::object plan{{"step", s.describe()}, {"verify", shown(s.verify)}, {"attempt", t.attempt + 1},
                    {"next_delay", shown(delay(t, t.attempt + 1))}};
    r.detail = json::dump(plan);
    r.dry_run = t.spec.dry_run;
    r.outcome = r.dry_run ? "dry-run" : "pending";
    if (auto rec = record(r); !rec) return rec;
    if (t.state != "healing")
      if (auto c = change(t, "healing", fmt::format("step {}: {}", t.step + 1, s.describe())); !c) return c;

    Result<std::string> done = std::string();
    if (!r.dry_run) {
      switch (s.kind) {
        case ActionKind::restart: {
          if (!options.supervisor) {
            done = fail(errc::unavailable, "no supervisor");
            break;
          }
          auto st = options.supervisor->restart(service);
          if (!st) done = st.error();
          else done = fmt::format("service {} restarted (pid {})", service, st->pid);
          break;
        }
        case ActionKind::command: {
          auto c = scaling::run_command(s.command, s.timeout, {{"AUTOMATION_TARGET", t.spec.name}, {"AUTOMATION_REASON", t.reason}});
          if (!c) done = c.error();
          else if (c->exit_code != 0) done = fail(errc::unavailable, fmt::format("{}: {}: {}", s.command.front(), c->status, c->err.empty() ? c->out : c->err));
          else done = fmt::format("{}: {}", s.command.front(), c->status);
          break;
        }
        case ActionKind::workflow: {
          if (!options.start_workflow) {
            done = fail(errc::unavailable, "no workflow runner was given to the healer");
            break;
          }
          auto run = options.start_workflow(s.workflow, s.params, r.reason);
          if (!run) done = run.error();
          else done = fmt::format("workflow {} started: run {}", s.workflow, *run);
          break;
        }
        case ActionKind::callback: {
          auto it = options.callbacks.find(s.callback);
          if (it == options.callbacks.end()) done = fail(errc::not_found, "no callback " + s.callback);
          else done = it->second();
          break;
        }
        case ActionKind::wait: done = fmt::format("waiting {} before looking again", shown(s.verify)); break;
        case ActionKind::alert:
          announce(t, "alert", t.reason);
          done = std::string("alert sent");
          break;
        case ActionKind::quarantine: break;
      }
      const bool ok = static_cast<bool>(done);
      r.outcome = ok ? "succeeded" : "failed";
      r.error = ok ? std::string() : done.error().message;
      plan["result"] = ok ? *done : done.error().message;
      r.detail = json::dump(plan);
      r.updated = clock.now();
      if (auto f = store.finish_healing(r.id, r.outcome, r.error, r.detail, r.updated); !f)
        return with_context(f.error(), fmt::format("target \"{}\": recording the outcome of healing record {}", t.spec.name, r.id));
      written.back() = r;
    }
    if (s.kind == ActionKind::quarantine) return escalate(t, fmt::format("the ladder's step {} quarantines it", t.step + 1));
    ++t.attempt;
    // A step that failed is not waited for; one that ran gets its verification wait.
    t.verify_until = now + (r.outcome == "failed" ? Duration{} : s.verify);
    t.verifying = s.describe();
    t.next_action = *t.verify_until + delay(t, t.attempt);
    return {};
  }

  Result<void> pass(Target& t) {
    const auto now = clock.now();
    if (auto r = refresh_pause(t, now); !r) return r;
    t.waiting_for.clear();
    for (const auto& d : t.spec.depends_on)
      if (auto* dep = find(d); dep && unwell(dep->state)) t.waiting_for.push_back(d);

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
      const auto why = flapping && t.fails < live.failure_threshold
                           ? fmt::format("flapping: {} of the last {} probes failed ({})", flap_count, live.flap_window, probe_said)
                           : fmt::format("{} failed {} time{} in a row: {}", live.describe(), t.fails, t.fails == 1 ? "" : "s", probe_said);
      if (auto r = change(t, "unhealthy", why, "unhealthy"); !r) return r;
    } else if (t.state == "unknown" && healthy_now) {
      t.healthy_since = now;
      if (auto r = change(t, "healthy", probe_said); !r) return r;
    } else if (unwell(t.state) && healthy_now) {
      const auto why = t.verify_until ? fmt::format("healed after {}: {}", t.verifying, probe_said)
                                      : fmt::format("recovered: {}", probe_said);
      t.step = 0;
      t.verify_until.reset();
      t.healthy_since = now;
      if (auto r = change(t, "healthy", why, "healthy"); !r) return r;
    }
    if (t.state == "healthy" && t.healthy_since && now - *t.healthy_since >= t.spec.backoff.reset_after) t.attempt = 0;

    // Healing.
    if (t.state != "unhealthy" && t.state != "healing") return {};
    if (t.paused_until || !t.waiting_for.empty()) return {};  // the operator's pause wins; the root cause first
    if (t.verify_until) {
      if (now < *t.verify_until) return {};  // one action in flight
      t.verify_until.reset();
      ++t.step;  // still unhealthy after the verification: the next step
    }
    if (!t.spec.service.empty() && options.supervisor) {
      auto st = options.supervisor->status(t.spec.service);
      if (st && !st->running && st->exit_code &&
          std::find(t.spec.no_heal_exit_codes.begin(), t.spec.no_heal_exit_codes.end(), *st->exit_code) != t.spec.no_heal_exit_codes.end()) {
        if (!t.exit_noted) {
          t.exit_noted = true;
          if (auto r = change(t, "unhealthy", fmt::format("service {} exited with code {}, which is not healed", t.spec.service, *st->exit_code),
                              "not_healed");
              !r)
            return r;
        }
        return {};
      }
    }
    if (t.step >= static_cast<int>(t.spec.ladder.size()))
      return escalate(t, t.spec.ladder.empty() ? std::string("it has no healing steps")
                                               : fmt::format("still unhealthy after all {} healing steps: {}", t.spec.ladder.size(), probe_said));
    if (now < t.next_action) return {};
    if (t.spec.ladder[static_cast<std::size_t>(t.step)].kind == ActionKind::restart) {
      auto n = restarts_in_window(t, now);
      if (!n) return n.error();
      if (*n >= t.spec.budget.restarts)
        return escalate(t, fmt::format("the restart budget is spent: {} restart{} within {}", *n, *n == 1 ? "" : "s", shown(t.spec.budget.window)));
    }
    return run_step(t);
  }
};

SelfHealer::SelfHealer(sd::Store& store, const Clock& clock, HealerOptions options) : impl_(new Impl{store, clock, std::move(options)}) {
  impl_->options.callbacks.try_emplace("clear_caches", trim_heap);
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
  // Resumes recorded before this healer existed are not news.
  sd::HealingQuery q;
  q.target = t.spec.name;
  q.kind = "resume";
  q.limit = 1;
  if (auto r = im.store.list_healing(q); r && !r->empty()) t.resume_seen = r->front().id;
  im.targets.push_back(std::move(t));
  return {};
}

std::vector<std::string> SelfHealer::targets() const {
  std::lock_guard lock(impl_->mu);
  std::vector<std::string> out;
  for (const auto& t : impl_->targets) out.push_back(t.spec.name);
  return out;
}

Result<std::vector<sd::HealingRecord>> SelfHealer::tick() {
  std::lock_guard lock(impl_->mu);
  impl_->written.clear();
  for (auto& t : impl_->targets)
    if (auto r = impl_->pass(t); !r) return r.error();
  return std::move(impl_->written);
}

std::optional<TimePoint> SelfHealer::next_due() const {
  std::lock_guard lock(impl_->mu);
  std::optional<TimePoint> due;
  auto take = [&](TimePoint t) { due = due ? std::min(*due, t) : t; };
  for (const auto& t : impl_->targets) {
    take(t.next_probe);
    if (t.spec.readiness) take(t.next_ready_probe);
    if (t.verify_until) take(*t.verify_until);
    if (t.state == "unhealthy" || t.state == "healing") take(t.next_action);
  }
  return due;
}

Result<sd::HealingRecord> SelfHealer::pause(std::string_view target, std::optional<TimePoint> until, const std::string& actor,
                                            const std::string& reason) {
  std::lock_guard lock(impl_->mu);
  auto* t = impl_->find(target);
  if (!t) return fail(errc::not_found, fmt::format("unknown health target \"{}\"", target));
  sd::HealingRecord r;
  r.target = t->spec.name;
  r.time = r.updated = impl_->clock.now();
  r.kind = "pause";
  r.state = "paused";
  r.actor = actor;
  r.reason = reason.empty() ? std::string("paused by an operator") : reason;
  r.detail = json::dump(bj::object{{"until", until ? bj::value(format_timestamp(*until)) : bj::value(nullptr)}});
  if (auto rec = impl_->record(r); !rec) return rec.error();
  return r;
}

Result<sd::HealingRecord> SelfHealer::resume(std::string_view target, const std::string& actor, const std::string& reason) {
  std::lock_guard lock(impl_->mu);
  auto* t = impl_->find(target);
  if (!t) return fail(errc::not_found, fmt::format("unknown health target \"{}\"", target));
  sd::HealingRecord r;
  r.target = t->spec.name;
  r.time = r.updated = impl_->clock.now();
  r.kind = "resume";
  r.state = t->state == "unknown" ? std::string("unknown") : t->state;
  r.actor = actor;
  r.reason = reason.empty() ? std::string("resumed by an operator") : reason;
  if (auto rec = impl_->record(r); !rec) return rec.error();
  return r;
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
    if (t.state == "unhealthy" || t.state == "healing") s.next_action = std::max(t.next_action, t.verify_until.value_or(TimePoint{}));
    s.paused_until = t.paused_until;
    s.paused_by = t.paused_by;
    s.waiting_for = t.waiting_for;
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
