// The Scheduler: due fires, overlap policies, catch-up, jitter, events and failure pauses.
#include <automation/core/ids.hpp>
#include <automation/core/json.hpp>
#include <automation/core/logging.hpp>
#include <automation/core/time.hpp>
#include <automation/resilience/circuit_breaker.hpp>
#include <automation/workflow/cron.hpp>
#include <automation/workflow/scheduler.hpp>
#include <detail/hash.hpp>
#include <detail/log.hpp>
#include <detail/names.hpp>

#include "workflow/schedule_internal.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <deque>
#include <mutex>

namespace automation::workflow {

namespace bj = boost::json;
namespace sd = automation::storage;
using detail::logf;

namespace {

// A hash of the schedule's name and the fire time: the same jitter in every process.
Duration jitter_for(const ScheduleDefinition& d, TimePoint t) {
  const auto span = std::chrono::duration_cast<Millis>(d.jitter).count();
  if (span <= 0) return Duration::zero();
  const std::uint64_t z = detail::mix64(detail::fnv1a(d.name) + static_cast<std::uint64_t>(to_epoch_ms(t)));
  return std::chrono::duration_cast<Duration>(Millis(static_cast<std::int64_t>(z % static_cast<std::uint64_t>(span))));
}

struct Buffered {
  sd::FireRecord fire;
  std::optional<sd::EventRecord> event;
};

struct Sched {
  ScheduleDefinition def;
  std::optional<CronExpression> cron;
  TimeZone tz;
  sd::ScheduleRecord rec;  // as last read or written
  TimePoint cursor{};      // the last nominal fire time handled
  std::int64_t event_cursor = 0;
  std::deque<Buffered> buffered;
  bool check_buffer = false;
  bool dirty = false;  // cursors moved: write the record

  std::string trigger() const { return std::string(internal::kScheduleTriggerPrefix) + def.name; }
  std::optional<TimePoint> next_after(TimePoint t) const {
    if (def.kind() == TriggerKind::cron) return cron && !cron->at_reboot() ? cron->next(t, tz) : std::nullopt;
    return next_fire_time(def, t);
  }
};

struct Inbox {
  std::mutex mu;
  std::deque<RunRecord> finished;
  bool closed = false;
};

}  // namespace

struct Scheduler::Impl {
  WorkflowEngine& engine;
  sd::Store& store;
  const Clock& clock;
  Options options;
  std::map<std::string, Sched, std::less<>> scheds;
  std::vector<FireResult> fires;
  std::shared_ptr<Inbox> inbox = std::make_shared<Inbox>();
  std::atomic<bool> events_pending{false};
  bool started = false;
  TimePoint next_refresh{};
  std::optional<TimePoint> next_timer;
  std::mutex watch_mu;
  std::vector<std::pair<std::shared_ptr<resilience::CircuitBreaker>, std::uint64_t>> watched;

  Impl(WorkflowEngine& e, Options o) : engine(e), store(e.store()), clock(e.clock()), options(std::move(o)) {
    engine.on_run_finished([box = inbox](const RunRecord& r) {
      std::lock_guard lock(box->mu);
      if (!box->closed && r.trigger.starts_with(internal::kScheduleTriggerPrefix)) box->finished.push_back(r);
    });
  }

  ~Impl() {
    {
      std::lock_guard lock(inbox->mu);
      inbox->closed = true;
      inbox->finished.clear();
    }
    std::lock_guard lock(watch_mu);
    for (auto& [b, id] : watched) b->unsubscribe(id);
  }

  // ---- schedule state --------------------------------------------------------------------------

  // Applies `change` to the schedule's record and writes it by compare-and-set, rereading and
  // reapplying when another process wrote first.
  template <class F>
  Result<void> update_record(Sched& s, F&& change) {
    for (int attempt = 0; attempt < 20; ++attempt) {
      sd::ScheduleRecord r = s.rec;
      change(r);
      r.last_fire = std::max(r.last_fire, s.cursor);
      r.last_event_id = std::max(r.last_event_id, s.event_cursor);
      r.updated = clock.now();
      r.updated_by = options.actor;
      auto put = store.put_schedule(r, s.rec.version);
      if (put) {
        r.version = *put;
        s.rec = std::move(r);
        s.dirty = false;
        return {};
      }
      if (!put.error().is(errc::conflict)) return put.error();
      auto fresh = store.get_schedule(s.def.name);
      if (!fresh) return fresh.error();
      if (*fresh) adopt(s, **fresh);
    }
    return fail(errc::conflict, fmt::format("schedule '{}': its state kept changing under us", s.def.name));
  }

  // Takes another writer's record (pause state, failure count) and the later of both cursors.
  static void adopt(Sched& s, const sd::ScheduleRecord& r) {
    s.rec = r;
    s.cursor = std::max(s.cursor, r.last_fire);
    s.event_cursor = std::max(s.event_cursor, r.last_event_id);
  }

  Result<void> load_record(Sched& s, TimePoint now) {
    auto cur = store.get_schedule(s.def.name);
    if (!cur) return cur.error();
    if (*cur) {
      adopt(s, **cur);
      return {};
    }
    // First sight: nothing before now is caught up.
    s.rec = sd::ScheduleRecord{};
    s.rec.name = s.def.name;
    s.rec.paused = s.def.paused;
    s.rec.reason = s.def.paused ? (s.def.paused_reason.empty() ? std::string("paused in its definition") : s.def.paused_reason) : "";
    s.cursor = now;
    s.event_cursor = 0;
    auto r = update_record(s, [](sd::ScheduleRecord&) {});
    if (!r && r.error().is(errc::conflict)) return {};
    return r;
  }

  void persist(Sched& s) {
    if (!s.dirty) return;
    if (auto r = update_record(s, [](sd::ScheduleRecord&) {}); !r)
      logf(LogLevel::warn, "scheduler", "schedule {}: could not save its state: {}", s.def.name, r.error().message);
  }

  // ---- firing ----------------------------------------------------------------------------------

  Result<std::vector<RunRecord>> active_runs(const Sched& s) {
    sd::RunQuery q;
    q.workflow = s.def.workflow;
    q.states = {RunState::queued, RunState::running};
    q.limit = 0;
    auto runs = store.list_runs(q);
    if (!runs) return runs.error();
    std::vector<RunRecord> out;
    const auto trigger = s.trigger();
    for (auto& r : *runs)
      if (r.trigger == trigger) out.push_back(std::move(r));
    return out;
  }

  FireResult note(FireResult f) {
    const auto level = f.outcome == "started" || f.outcome == "taken" ? LogLevel::info : LogLevel::warn;
    logf(level, "scheduler", "schedule {} fire at {}: {}{} ({})", f.schedule, format_timestamp(f.fire_time), f.outcome,
         f.run_id ? fmt::format(" run {}", f.run_id) : std::string(), f.reason);
    fires.push_back(f);
    return f;
  }

  sd::FireRecord fire_record(const Sched& s, TimePoint fire_time, std::int64_t event_id, std::string outcome, std::string reason) {
    sd::FireRecord f;
    f.schedule = s.def.name;
    f.fire_time = fire_time;
    f.event_id = event_id;
    f.outcome = std::move(outcome);
    f.reason = std::move(reason);
    f.recorded = clock.now();
    return f;
  }

  FireResult result_of(const sd::FireRecord& f) {
    FireResult r;
    r.schedule = f.schedule;
    r.fire_time = f.fire_time;
    r.event_id = f.event_id;
    r.outcome = f.outcome;
    r.run_id = f.run_id;
    r.reason = f.reason;
    return r;
  }

  // Records a fire that starts no run (skipped, buffered, missed); "taken" when another process
  // recorded it first.
  FireResult record(sd::FireRecord f) {
    auto ok = store.record_fire(f);
    FireResult r = result_of(f);
    if (!ok) {
      r.outcome = "skipped";
      r.reason = fmt::format("{} (not recorded: {})", f.reason, ok.error().message);
    } else if (!*ok) {
      r.outcome = "taken";
      r.reason = "another process recorded this fire first";
    }
    return note(std::move(r));
  }

  void count_failure(Sched& s, const std::string& why) {
    bool paused_now = false;
    auto r = update_record(s, [&](sd::ScheduleRecord& rec) {
      rec.consecutive_failures += 1;
      paused_now = s.def.pause_after_failures > 0 && rec.consecutive_failures >= s.def.pause_after_failures && !rec.paused;
      if (paused_now) {
        rec.paused = true;
        rec.reason = fmt::format("paused after {} consecutive failures (last: {})", rec.consecutive_failures, why);
      }
    });
    if (!r) {
      logf(LogLevel::warn, "scheduler", "schedule {}: could not record a failure: {}", s.def.name, r.error().message);
      return;
    }
    if (paused_now) {
      logf(LogLevel::warn, "scheduler", "schedule {} {}", s.def.name, s.rec.reason);
      internal::audit_schedule(store, clock.now(), options.actor, "schedule.pause", s.rec);
    }
  }

  // Starts the fire's run; the run and the fire key are created together.
  FireResult start(Sched& s, sd::FireRecord f, const sd::EventRecord* event) {
    StartOptions o;
    o.params = s.def.params;
    o.trigger = s.trigger();
    if (event) {
      o.correlation_id = event->correlation_id;
      o.event_depth = event->depth;
      if (const auto* wf = engine.workflow(s.def.workflow)) {
        auto declared = [&](std::string_view n) {
          return std::any_of(wf->params.begin(), wf->params.end(), [&](const ParamDefinition& p) { return p.name == n; });
        };
        if (declared("payload") && !o.params.contains("payload")) o.params["payload"] = event->payload;
        if (declared("event") && !o.params.contains("event")) o.params["event"] = event->name;
        if (declared("event_id") && !o.params.contains("event_id")) o.params["event_id"] = std::to_string(event->id);
      }
    }
    f.outcome = "started";
    f.recorded = clock.now();
    o.fire = &f;
    auto id = engine.start(s.def.workflow, std::move(o));
    if (id) {
      f.run_id = *id;
      return note(result_of(f));
    }
    if (id.error().is(errc::conflict)) {
      FireResult r = result_of(f);
      r.outcome = "taken";
      r.reason = "another process started this fire first";
      return note(std::move(r));
    }
    const bool busy = id.error().is(errc::busy);
    f.outcome = "skipped";
    f.reason = fmt::format("could not start {}: {}", s.def.workflow, id.error().message);
    auto r = record(f);
    if (!busy) count_failure(s, f.reason);
    return r;
  }

  FireResult buffer(Sched& s, sd::FireRecord f, const sd::EventRecord* event) {
    f.outcome = "buffered";
    auto r = record(f);
    if (r.outcome == "buffered") {
      Buffered b{std::move(f), std::nullopt};
      if (event) b.event = *event;
      s.buffered.push_back(std::move(b));
    }
    return r;
  }

  FireResult handle(Sched& s, TimePoint fire_time, const sd::EventRecord* event, std::string reason) {
    auto f = fire_record(s, fire_time, event ? event->id : 0, "started", std::move(reason));
    if (event && event->depth >= options.max_event_depth) {
      f.outcome = "skipped";
      f.reason = fmt::format("event {} #{} is {} events deep, the limit (max_event_depth {}): schedules may be triggering each other",
                             event->name, event->id, event->depth, options.max_event_depth);
      return record(std::move(f));
    }
    if (s.def.overlap == OverlapPolicy::allow_all) return start(s, std::move(f), event);
    auto active = active_runs(s);
    if (!active) {
      f.outcome = "skipped";
      f.reason = fmt::format("could not check for a running run: {}", active.error().message);
      return record(std::move(f));
    }
    const bool waiting = !s.buffered.empty();
    if (active->empty() && !waiting) return start(s, std::move(f), event);
    // What this fire would wait for: the active run, or the fire already waiting before it.
    const std::string blocker = active->empty() ? fmt::format("the fire at {}", format_timestamp(s.buffered.front().fire.fire_time))
                                                : fmt::format("run {}", active->front().id);
    const std::string busy_text =
        blocker + (active->empty() ? std::string(" is waiting") : fmt::format(" is still {}", to_string(active->front().state)));
    switch (s.def.overlap) {
      case OverlapPolicy::skip:
        f.outcome = "skipped";
        f.reason = fmt::format("overlap skip: {}", busy_text);
        return record(std::move(f));
      case OverlapPolicy::buffer_one:
        if (waiting) {
          f.outcome = "skipped";
          f.reason = fmt::format("overlap buffer_one: {} and one fire is already buffered", busy_text);
          return record(std::move(f));
        }
        f.reason = fmt::format("overlap buffer_one: starts when {} ends", blocker);
        return buffer(s, std::move(f), event);
      case OverlapPolicy::buffer_all:
        f.reason = fmt::format("overlap buffer_all: {} fire(s) wait before it; {}", s.buffered.size(), busy_text);
        return buffer(s, std::move(f), event);
      case OverlapPolicy::cancel_other: {
        std::vector<std::string> ids;
        for (const auto& r : *active) {
          ids.push_back(std::to_string(r.id));
          (void)engine.cancel(r.id, fmt::format("cancelled by schedule {} (overlap cancel_other): a new fire at {}", s.def.name,
                                                format_timestamp(fire_time)));
        }
        if (waiting) {
          f.outcome = "skipped";
          f.reason = fmt::format("overlap cancel_other: a fire at {} already waits for the cancelled runs to end",
                                 format_timestamp(s.buffered.front().fire.fire_time));
          return record(std::move(f));
        }
        f.reason = fmt::format("overlap cancel_other: cancelled run {}; starts when {} ended", fmt::join(ids, ", "),
                               ids.size() == 1 ? "it has" : "they have");
        return buffer(s, std::move(f), event);
      }
      case OverlapPolicy::allow_all:
        break;
    }
    return start(s, std::move(f), event);
  }

  // Starts the oldest buffered fire once no run of the schedule is active.
  void drain(Sched& s) {
    if (s.rec.paused) return;  // claimed fires wait for the resume
    s.check_buffer = false;
    while (!s.buffered.empty()) {
      auto active = active_runs(s);
      if (!active || !active->empty()) return;
      Buffered b = std::move(s.buffered.front());
      s.buffered.pop_front();
      sd::FireRecord f = b.fire;
      f.reason = fmt::format("buffered fire started ({})", b.fire.reason);
      auto r = start(s, std::move(f), b.event ? &*b.event : nullptr);
      if (r.outcome == "started") return;
    }
  }

  // Time triggers: every fire due by `now`, or missed when later than the catch-up window.
  void due(Sched& s, TimePoint now) {
    if (s.def.kind() == TriggerKind::event) return;
    if (s.rec.paused) {
      s.cursor = std::max(s.cursor, now);  // fires while paused do not happen
      return;
    }
    std::size_t missed = 0;
    TimePoint first_missed{}, last_missed{};
    // One record for a run of missed fires, written before the fire that follows them.
    auto flush_missed = [&] {
      if (!missed) return;
      auto f = fire_record(
          s, last_missed, 0, "missed",
          fmt::format("{}{} fire{} from {} to {} missed: more than the catch-up window ({}) late", missed,
                      missed >= options.max_missed_scan ? " or more" : "", missed == 1 ? "" : "s", format_timestamp(first_missed),
                      format_timestamp(last_missed), format_duration(std::chrono::duration_cast<Millis>(s.def.catch_up))));
      record(std::move(f));
      missed = 0;
    };
    for (;;) {
      auto t = s.next_after(s.cursor);
      if (!t) break;
      const TimePoint due_at = *t + jitter_for(s.def, *t);
      if (due_at > now) break;
      s.cursor = *t;
      s.dirty = true;
      if (now - due_at > s.def.catch_up) {
        if (missed++ == 0) first_missed = *t;
        last_missed = *t;
        if (missed == options.max_missed_scan) {
          // Jump over the rest of a long outage without enumerating it.
          const TimePoint edge = now - s.def.catch_up - s.def.jitter - std::chrono::milliseconds(1);
          if (edge > s.cursor) s.cursor = edge;
        }
        continue;
      }
      flush_missed();
      handle(s, *t, nullptr,
             fmt::format(
                 "{} due at {}{}", s.def.trigger_text(), format_timestamp(*t),
                 now - due_at >= std::chrono::seconds(1)
                     ? fmt::format(", run {} late (catch-up window {})", format_duration(std::chrono::duration_cast<Millis>(now - due_at)),
                                   format_duration(std::chrono::duration_cast<Millis>(s.def.catch_up)))
                     : std::string()));
    }
    flush_missed();
  }

  // ---- events and refresh ----------------------------------------------------------------------

  void read_events(TimePoint now) {
    std::vector<Sched*> evs;
    Duration window{};
    for (auto& [name, s] : scheds)
      if (s.def.kind() == TriggerKind::event) {
        evs.push_back(&s);
        window = std::max(window, s.def.catch_up);
      }
    if (evs.empty()) return;
    std::int64_t after = evs.front()->event_cursor;
    for (auto* s : evs) after = std::min(after, s->event_cursor);
    struct Missed {
      std::size_t count = 0;
      sd::EventRecord last;
    };
    std::map<Sched*, Missed> missed;
    for (;;) {
      sd::EventQuery q;
      q.after_id = after;
      q.since = now - window;
      q.limit = 500;
      auto batch = store.list_events(q);
      if (!batch) {
        logf(LogLevel::warn, "scheduler", "could not read events: {}", batch.error().message);
        return;
      }
      for (auto& e : *batch) {
        after = e.id;
        std::optional<bj::object> payload;  // parsed once, when a schedule with a filter needs it
        auto matches = [&](const Sched& s) {
          if (!internal::event_name_matches(s.def.event, e.name)) return false;
          if (s.def.event_filter.empty()) return true;
          if (!payload) {
            auto p = json::parse(e.payload, "event payload");
            payload = p && p->is_object() ? p->as_object() : bj::object();
          }
          return event_matches(s.def, e.name, *payload);
        };
        for (auto* s : evs) {
          if (e.id <= s->event_cursor) continue;
          s->event_cursor = e.id;  // saved with the next fire: skipping a non-matching event again is cheap
          if (s->rec.paused || !matches(*s)) continue;
          s->dirty = true;
          if (now - e.time > s->def.catch_up) {
            auto& m = missed[s];
            ++m.count;
            m.last = e;
            continue;
          }
          handle(*s, e.time, &e,
                 fmt::format("event {} #{} from {}{}", e.name, e.id, e.source.empty() ? "?" : e.source,
                             e.depth ? fmt::format(" (depth {})", e.depth) : std::string()));
        }
      }
      if (batch->size() < q.limit) break;
    }
    // One record per schedule, under the key of the last event it missed.
    for (auto& [s, m] : missed)
      record(fire_record(
          *s, m.last.time, m.last.id, "missed",
          fmt::format("{} event{} up to {} #{} missed: more than the catch-up window ({}) old", m.count, m.count == 1 ? "" : "s",
                      m.last.name, m.last.id, format_duration(std::chrono::duration_cast<Millis>(s->def.catch_up)))));
  }

  void refresh() {
    auto all = store.list_schedules();
    if (!all) {
      logf(LogLevel::warn, "scheduler", "could not read schedule state: {}", all.error().message);
      return;
    }
    for (const auto& r : *all) {
      auto it = scheds.find(r.name);
      if (it == scheds.end()) continue;
      if (r.version != it->second.rec.version) adopt(it->second, r);
      if (!it->second.buffered.empty()) it->second.check_buffer = true;
    }
  }

  void on_finished(const RunRecord& run) {
    auto it = scheds.find(std::string_view(run.trigger).substr(internal::kScheduleTriggerPrefix.size()));
    if (it == scheds.end()) return;
    Sched& s = it->second;
    s.check_buffer = true;
    if (run.state == RunState::succeeded) {
      if (s.rec.consecutive_failures != 0) (void)update_record(s, [](sd::ScheduleRecord& r) { r.consecutive_failures = 0; });
    } else if (run.state == RunState::failed || run.state == RunState::timed_out) {
      count_failure(s, fmt::format("run {} {}: {}", run.id, to_string(run.state), run.reason));
    }
  }

  // Fires buffered earlier (by this process before a restart, or by another) are still claimed.
  Result<void> reload_buffered(Sched& s) {
    auto fs = store.buffered_fires(s.def.name);
    if (!fs) return fs.error();
    for (auto& f : *fs) {
      Buffered b{std::move(f), std::nullopt};
      if (b.fire.event_id) {
        sd::EventQuery q;
        q.after_id = b.fire.event_id - 1;
        q.limit = 1;
        if (auto e = store.list_events(q); e && !e->empty() && e->front().id == b.fire.event_id) b.event = e->front();
      }
      s.buffered.push_back(std::move(b));
    }
    s.check_buffer = !s.buffered.empty();
    return {};
  }

  void startup(TimePoint now) {
    started = true;
    for (auto& [name, s] : scheds)
      if (s.cron && s.cron->at_reboot() && !s.rec.paused) handle(s, now, nullptr, "@reboot: the scheduler started");
  }

  PollResult poll() {
    TimePoint now = clock.now();
    if (!started) startup(now);
    PollResult out;
    for (int round = 0; round < 4; ++round) {
      std::deque<RunRecord> done;
      {
        std::lock_guard lock(inbox->mu);
        done.swap(inbox->finished);
      }
      for (const auto& r : done) on_finished(r);
      if (round == 0) {
        const bool pending = events_pending.exchange(false);
        if (now >= next_refresh) {
          refresh();
          read_events(now);
          next_refresh = now + options.refresh;
        } else if (pending) {
          read_events(now);  // emit() in this process: no need to wait for the refresh
        }
        for (auto& [name, s] : scheds) due(s, now);
      }
      for (auto& [name, s] : scheds)
        if (s.check_buffer && !s.buffered.empty()) drain(s);
      for (auto& [name, s] : scheds) persist(s);
      out = engine.poll();
      std::lock_guard lock(inbox->mu);
      if (inbox->finished.empty()) break;
      now = clock.now();
    }
    auto consider = [&](TimePoint t) {
      if (!out.next_timer || t < *out.next_timer) out.next_timer = t;
    };
    bool need_refresh = false;
    for (auto& [name, s] : scheds) {
      if (s.def.kind() == TriggerKind::event || !s.buffered.empty()) need_refresh = true;
      if (s.rec.paused) continue;
      if (auto t = s.next_after(s.cursor)) consider(*t + jitter_for(s.def, *t));
    }
    if (need_refresh) consider(next_refresh);
    next_timer = out.next_timer;
    return out;
  }
};

Result<std::int64_t> emit_event(sd::Store& store, std::string name, const bj::object& payload, std::string source, TimePoint now,
                                int depth) {
  sd::EventRecord e;
  e.name = std::move(name);
  e.time = now;
  e.payload = json::dump(payload);
  e.source = std::move(source);
  e.correlation_id = current_correlation_id().empty() ? generate_id() : std::string(current_correlation_id());
  e.depth = depth;
  return store.append_event(e);
}

Scheduler::Scheduler(WorkflowEngine& engine) : Scheduler(engine, Options{}) {}
Scheduler::Scheduler(WorkflowEngine& engine, Options options) : impl_(std::make_unique<Impl>(engine, std::move(options))) {}
Scheduler::~Scheduler() = default;

WorkflowEngine& Scheduler::engine() noexcept { return impl_->engine; }

Result<void> Scheduler::add(ScheduleDefinition def) {
  if (auto v = validate(def); !v) return v.error();
  const auto* wf = impl_->engine.workflow(def.workflow);
  if (!wf)
    return fail(errc::not_found, fmt::format("schedule \"{}\": workflow \"{}\" is not registered{}", def.name, def.workflow,
                                             detail::did_you_mean(def.workflow, impl_->engine.workflow_names())));
  for (const auto& [k, v] : def.params)
    if (std::none_of(wf->params.begin(), wf->params.end(), [&](const ParamDefinition& p) { return p.name == k; }))
      return fail(errc::invalid_argument,
                  fmt::format("schedule \"{}\": workflow \"{}\" has no parameter \"{}\"", def.name, def.workflow, k));
  Sched s;
  if (def.kind() == TriggerKind::cron) s.cron = CronExpression::parse(def.cron).value();
  s.tz = TimeZone::locate(def.time_zone).value();
  s.def = std::move(def);
  auto it = impl_->scheds.find(s.def.name);
  if (it != impl_->scheds.end()) {
    // Replacing a definition keeps its state and buffered fires.
    s.rec = it->second.rec;
    s.cursor = it->second.cursor;
    s.event_cursor = it->second.event_cursor;
    s.buffered = std::move(it->second.buffered);
    it->second = std::move(s);
    return {};
  }
  if (auto r = impl_->load_record(s, impl_->clock.now()); !r) return r.error();
  if (auto r = impl_->reload_buffered(s); !r) return r.error();
  if (s.def.kind() == TriggerKind::event) impl_->events_pending = true;  // read the events at the next poll
  const std::string name = s.def.name;
  impl_->scheds.emplace(name, std::move(s));
  return {};
}

bool Scheduler::remove(std::string_view name) {
  auto it = impl_->scheds.find(name);
  if (it == impl_->scheds.end()) return false;
  impl_->scheds.erase(it);
  return true;
}

const ScheduleDefinition* Scheduler::schedule(std::string_view name) const {
  auto it = impl_->scheds.find(name);
  return it == impl_->scheds.end() ? nullptr : &it->second.def;
}

std::vector<std::string> Scheduler::names() const {
  std::vector<std::string> out;
  for (const auto& [name, s] : impl_->scheds) out.push_back(name);
  return out;
}

Result<std::vector<ScheduleStatus>> Scheduler::list() {
  impl_->refresh();
  std::vector<ScheduleStatus> out;
  for (auto& [name, s] : impl_->scheds) {
    ScheduleStatus st;
    st.definition = s.def;
    st.record = s.rec;
    if (!s.rec.paused) st.next_fire = s.next_after(s.cursor);
    st.buffered = s.buffered.size();
    out.push_back(std::move(st));
  }
  return out;
}

namespace {
Result<Sched*> find(std::map<std::string, Sched, std::less<>>& m, std::string_view name) {
  auto it = m.find(name);
  if (it == m.end()) {
    std::vector<std::string> names;
    for (const auto& [n, s] : m) names.push_back(n);
    return fail(errc::not_found, fmt::format("no schedule \"{}\"{}", name, detail::did_you_mean(name, names)));
  }
  return &it->second;
}
}  // namespace

Result<void> Scheduler::pause(std::string_view name, std::string reason, std::string actor) {
  auto s = find(impl_->scheds, name);
  if (!s) return s.error();
  auto r =
      pause_schedule(impl_->store, name, std::move(reason), actor.empty() ? impl_->options.actor : std::move(actor), impl_->clock.now());
  if (!r) return r.error();
  Impl::adopt(**s, *r);
  return {};
}

Result<void> Scheduler::resume(std::string_view name, std::string reason, std::string actor) {
  auto s = find(impl_->scheds, name);
  if (!s) return s.error();
  auto r =
      resume_schedule(impl_->store, name, std::move(reason), actor.empty() ? impl_->options.actor : std::move(actor), impl_->clock.now());
  if (!r) return r.error();
  Impl::adopt(**s, *r);
  return {};
}

Result<FireResult> Scheduler::fire(std::string_view name, std::string actor) {
  auto s = find(impl_->scheds, name);
  if (!s) return s.error();
  if (!impl_->started) impl_->startup(impl_->clock.now());
  auto r = impl_->handle(**s, impl_->clock.now(), nullptr, fmt::format("fired by {}", actor.empty() ? impl_->options.actor : actor));
  impl_->persist(**s);
  return r;
}

Result<std::int64_t> Scheduler::emit(std::string name, bj::object payload, std::string source, int depth) {
  auto id = emit_event(impl_->store, std::move(name), payload, std::move(source), impl_->clock.now(), depth);
  if (!id) return id.error();
  impl_->events_pending = true;
  impl_->engine.wake();
  return *id;
}

void Scheduler::watch(std::shared_ptr<resilience::CircuitBreaker> breaker) {
  if (!breaker) return;
  auto id = breaker->subscribe([this](const resilience::BreakerEvent& ev) {
    if (ev.type != resilience::BreakerEventType::state_transition) return;
    const auto to = ev.to;
    const std::string suffix = to == resilience::BreakerState::open     ? "opened"
                               : to == resilience::BreakerState::closed ? "closed"
                                                                        : std::string(resilience::to_string(to));
    (void)emit(
        "breaker." + suffix,
        bj::object{
            {"breaker", ev.breaker}, {"from", resilience::to_string(ev.from)}, {"to", resilience::to_string(ev.to)}, {"reason", ev.reason}},
        "breaker");
  });
  std::lock_guard lock(impl_->watch_mu);
  impl_->watched.emplace_back(std::move(breaker), id);
}

PollResult Scheduler::poll() { return impl_->poll(); }

void Scheduler::wait(std::chrono::milliseconds max) {
  auto bound = max;
  if (impl_->next_timer) {
    const auto until = std::chrono::duration_cast<std::chrono::milliseconds>(*impl_->next_timer - impl_->clock.now());
    bound = std::clamp(until, std::chrono::milliseconds(0), max);
  }
  if (impl_->events_pending) return;
  impl_->engine.wait(bound);
}

std::vector<FireResult> Scheduler::take_fires() {
  std::vector<FireResult> out;
  out.swap(impl_->fires);
  return out;
}

}  // namespace automation::workflow
