// Incident timelines from what the store already holds.
#include <automation/core/json.hpp>
#include <automation/core/time.hpp>
#include <automation/intelligence/timeline.hpp>

#include "detail/names.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <algorithm>
#include <map>

namespace automation::intelligence {

namespace st = storage;
namespace bj = boost::json;

namespace {

/// What one pass reads: the window, how far back records that end in it may have begun, and how
/// many records one source may return (beyond it the timeline says it is incomplete).
struct Window {
  TimePoint from, until;
  Duration look_back;
  std::size_t cap;
  bool* truncated;
  template <class Records>
  void note(const Records& r) const {
    if (r.size() >= cap) *truncated = true;
  }
};

bool in(TimePoint t, const Window& w) { return t >= w.from && t < w.until; }

std::string run_severity(st::RunState s) {
  switch (s) {
    case st::RunState::failed:
    case st::RunState::timed_out:
      return "error";
    case st::RunState::cancelled:
    case st::RunState::interrupted:
      return "warning";
    default:
      return "info";
  }
}

std::string health_severity(const std::string& state) {
  if (state == "unhealthy" || state == "quarantined") return "error";
  if (state == "healing" || state == "paused") return "warning";
  return "info";
}

/// A field of an event's JSON payload, "" when absent.
std::string field(const bj::value& payload, std::string_view key) {
  if (!payload.is_object()) return {};
  auto* v = payload.as_object().if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

Result<void> add_runs(st::Store& store, const Window& w, std::vector<TimelineEntry>& out) {
  st::RunQuery q;
  q.since = w.from - w.look_back;
  q.until = w.until;
  q.limit = w.cap;
  q.newest_first = false;
  auto runs = store.list_runs(q);
  if (!runs) return runs.error();
  w.note(*runs);
  for (const auto& r : *runs) {
    const bool deploy = r.workflow.find("deploy") != std::string::npos;
    const std::string what = deploy ? "deploy" : "run";
    const auto subject = fmt::format("run:{}", r.id);
    if (r.started_at != TimePoint{} && in(r.started_at, w))
      out.push_back({r.started_at, "workflow", what + ".started", subject, "info",
                     fmt::format("{} {} started ({})", r.workflow, subject, r.trigger)});
    if (st::is_final(r.state) && r.ended_at != TimePoint{} && in(r.ended_at, w))
      out.push_back({r.ended_at, "workflow", fmt::format("{}.{}", what, st::to_string(r.state)), subject, run_severity(r.state),
                     fmt::format("{} {} {}: {}", r.workflow, subject, st::to_string(r.state), r.reason)});
  }
  return {};
}

Result<void> add_tasks(st::Store& store, const Window& w, std::vector<TimelineEntry>& out) {
  // Workflow steps and runs are told by their runs; other domains' failures are told here, at the
  // time they ended (a task may have started before the window).
  for (auto outcome : {st::TaskOutcome::failure, st::TaskOutcome::timeout, st::TaskOutcome::cancelled}) {
    st::TaskQuery q;
    q.since = w.from - w.look_back;
    q.until = w.until;
    q.outcome = outcome;
    q.limit = w.cap;
    q.newest_first = false;
    auto tasks = store.query_tasks(q);
    if (!tasks) return tasks.error();
    w.note(*tasks);
    for (const auto& t : *tasks) {
      const TimePoint at = t.ended != TimePoint{} ? t.ended : t.started;
      if (t.domain == "workflow" || !in(at, w)) continue;
      out.push_back({at, "task", fmt::format("task.{}", st::to_string(t.outcome)), fmt::format("{}:{}", t.domain, t.action),
                     t.outcome == st::TaskOutcome::cancelled ? "warning" : "error",
                     fmt::format("{} {} {}: {}", t.domain, t.action, st::to_string(t.outcome), t.error)});
    }
  }
  return {};
}

Result<void> add_events(st::Store& store, const Window& w, std::vector<TimelineEntry>& out) {
  // The breakers' transitions (health.* events are told by the healing records), read by name so
  // that the host's own events are never loaded.
  struct Kind {
    const char* name;
    const char* severity;
  };
  static constexpr Kind kKinds[] = {{"breaker.opened", "error"},     {"breaker.forced_open", "error"},    {"breaker.half_open", "warning"},
                                    {"breaker.disabled", "warning"}, {"breaker.metrics_only", "warning"}, {"breaker.closed", "info"}};
  for (const auto& kind : kKinds) {
    st::EventQuery q;
    q.name = kind.name;
    q.since = w.from;
    q.limit = w.cap;
    auto events = store.list_events(q);
    if (!events) return events.error();
    w.note(*events);
    for (const auto& e : *events) {
      if (e.time >= w.until) continue;
      auto payload = json::parse(e.payload);
      const auto p = payload ? *payload : bj::value(nullptr);
      const auto name = field(p, "breaker");
      out.push_back({e.time, "breaker", e.name, "breaker:" + name, kind.severity,
                     fmt::format("circuit breaker {} {} -> {}: {}", name, field(p, "from"), field(p, "to"), field(p, "reason"))});
    }
  }
  return {};
}

Result<void> add_healing(st::Store& store, const Window& w, std::vector<TimelineEntry>& out) {
  st::HealingQuery q;
  q.since = w.from;
  q.limit = w.cap;
  q.newest_first = false;
  auto records = store.list_healing(q);
  if (!records) return records.error();
  w.note(*records);
  for (const auto& h : *records) {
    if (h.time >= w.until || h.dry_run) continue;
    const auto subject = "target:" + h.target;
    if (h.kind == "state")
      out.push_back({h.time, "health", "health." + h.state, subject, health_severity(h.state),
                     fmt::format("{} is {}: {}", h.target, h.state, h.reason)});
    else if (h.kind == "action")
      out.push_back({h.time, "health", "heal." + h.action, subject, h.outcome == "failed" ? "error" : "info",
                     fmt::format("healing {} step {} ({}) {}{}", h.target, h.step, h.action, h.outcome.empty() ? "planned" : h.outcome,
                                 h.error.empty() ? ": " + h.reason : ": " + h.error)});
    else
      out.push_back(
          {h.time, "health", "health." + h.kind, subject, "warning", fmt::format("{} {} by {}: {}", h.target, h.kind, h.actor, h.reason)});
  }
  return {};
}

Result<void> add_scaling(st::Store& store, const Window& w, std::vector<TimelineEntry>& out) {
  // Changes (decisions that changed a size, manual actions) and policy changes.
  for (const bool policies : {false, true}) {
    st::ScalingQuery q;
    q.since = w.from;
    if (policies)
      q.action = "thresholds";
    else
      q.changes_only = true;
    q.limit = w.cap;
    q.newest_first = false;
    auto records = store.list_scaling(q);
    if (!records) return records.error();
    w.note(*records);
    for (const auto& s : *records) {
      if (s.time >= w.until || s.dry_run || (!policies && s.action == "thresholds")) continue;
      if (s.action == "thresholds") {
        out.push_back({s.time, "scaling", "scale.policy", "resource:" + s.resource, "info",
                       fmt::format("{}: policy changed by {}: {}", s.resource, s.actor, s.message)});
        continue;
      }
      // A decision is named by its direction, and by its outcome when it was not applied.
      std::string kind = s.action == "decide" ? (s.desired > s.current   ? "scale.up"
                                                 : s.desired < s.current ? "scale.down"
                                                                         : "scale.hold")
                                              : "scale." + s.action;
      if (s.outcome != "applied") kind += "." + s.outcome;
      out.push_back({s.time, "scaling", kind, "resource:" + s.resource, s.outcome == "failed" ? "error" : "info",
                     fmt::format("{} {} -> {} ({}, {}): {}{}", s.resource, s.current, s.desired, s.reason, s.outcome, s.message,
                                 s.error.empty() ? "" : "; " + s.error)});
    }
  }
  return {};
}

Result<void> add_alerts(st::Store& store, const Window& w, std::vector<TimelineEntry>& out) {
  st::AlertQuery q;
  q.since = w.from - w.look_back;
  q.limit = w.cap;
  q.newest_first = false;
  auto alerts = store.list_alerts(q);
  if (!alerts) return alerts.error();
  w.note(*alerts);
  for (const auto& a : *alerts) {
    const auto subject = fmt::format("alert:{}", a.id);
    const auto what = a.labels.empty() ? a.rule : fmt::format("{}{{{}}}", a.rule, a.labels);
    if (in(a.fired, w))
      out.push_back({a.fired, "alert", "alert.fired", subject,
                     a.severity == "critical"  ? "error"
                     : a.severity == "warning" ? "warning"
                                               : "info",
                     fmt::format("alert {} fired ({}): {}", what, a.severity, a.summary)});
    if (a.resolved != TimePoint{} && in(a.resolved, w))
      out.push_back({a.resolved, "alert", "alert.resolved", subject, "info", fmt::format("alert {} resolved", what)});
  }
  return {};
}

Result<void> add_audit(st::Store& store, const Window& w, std::vector<TimelineEntry>& out) {
  st::AuditQuery q;
  q.since = w.from;
  q.until = w.until;
  q.limit = w.cap;
  q.newest_first = false;
  auto records = store.query_audit(q);
  if (!records) return records.error();
  w.note(*records);
  // Failed logins are summed up per address ("http 10.0.0.9:53122" and ":53123" are one source).
  std::map<std::string, std::pair<TimePoint, int>> failed_logins;  // address -> (first, count)
  for (const auto& a : *records) {
    if (a.action == "auth.failed") {
      auto& [first, n] = failed_logins.try_emplace(std::string(detail::address_of(a.origin)), a.time, 0).first->second;
      ++n;
      continue;
    }
    const auto severity = a.outcome == st::AuditOutcome::success ? "info" : "warning";
    out.push_back({a.time, "audit", a.action, a.resource, severity,
                   fmt::format("{} {} {} ({}): {}", a.actor, a.action, a.resource, st::to_string(a.outcome), a.reason)});
  }
  for (const auto& [origin, fc] : failed_logins)
    out.push_back({fc.first, "audit", "auth.failed", "api", "warning",
                   fmt::format("{} failed authentication{} from {} in this window", fc.second, fc.second == 1 ? "" : "s", origin)});
  return {};
}

}  // namespace

namespace {

/// Reads every source over [from, until) (whole milliseconds, as stored), in time order; at one
/// time, in the order of the sources (a cause before its record).
Result<Timeline> gather(st::Store& store, TimePoint from, TimePoint until, const TimelineOptions& options) {
  if (options.limit == 0) return fail(errc::invalid_argument, "a timeline's limit must be at least 1");
  from = from_epoch_ms(to_epoch_ms(from));
  until = from_epoch_ms(to_epoch_ms(until));
  if (until <= from) return fail(errc::invalid_argument, "a timeline's end must come after its start");
  Timeline t;
  t.from = from;
  t.until = until;
  const Window w{from, until, options.look_back, std::max<std::size_t>(options.limit * 10, 1000), &t.truncated};
  for (auto add : {add_runs, add_tasks, add_events, add_healing, add_scaling, add_alerts, add_audit})
    if (auto r = add(store, w, t.entries); !r) return r.error();
  std::stable_sort(t.entries.begin(), t.entries.end(), [](const auto& a, const auto& b) { return a.time < b.time; });
  return t;
}

/// Keeps `limit` entries: the focus's and those nearest it in time, or the oldest without a focus.
void trim(Timeline& t, std::size_t limit) {
  if (t.entries.size() <= limit) return;
  auto focus = std::find_if(t.entries.begin(), t.entries.end(), [](const auto& e) { return e.focus; });
  if (focus == t.entries.end()) {
    t.dropped_after = t.entries.size() - limit;
    t.entries.resize(limit);
    return;
  }
  // Grow a window of entries around the focus, taking the nearer side each time.
  const TimePoint at = focus->time;
  auto lo = static_cast<std::ptrdiff_t>(focus - t.entries.begin()), hi = lo + 1;  // [lo, hi)
  const auto n = static_cast<std::ptrdiff_t>(t.entries.size());
  while (static_cast<std::size_t>(hi - lo) < limit) {
    const bool left = lo > 0, right = hi < n;
    if (left && (!right || at - t.entries[lo - 1].time <= t.entries[hi].time - at))
      --lo;
    else
      ++hi;
  }
  t.dropped_before = static_cast<std::size_t>(lo);
  t.dropped_after = static_cast<std::size_t>(n - hi);
  t.entries = std::vector<TimelineEntry>(t.entries.begin() + lo, t.entries.begin() + hi);
}

}  // namespace

Result<Timeline> timeline(st::Store& store, TimePoint from, TimePoint until, TimelineOptions options) {
  auto t = gather(store, from, until, options);
  if (!t) return t.error();
  trim(*t, options.limit);
  return t;
}

namespace {

/// The timeline of [start - before, max(end, start) + after), with the entries of `source` about
/// `focus` ("run:12") marked: what that component recorded of it, not others' actions on it.
Result<Timeline> around(st::Store& store, std::string focus, std::string_view source, TimePoint start, TimePoint end, Duration before,
                        Duration after, const TimelineOptions& options) {
  auto t = gather(store, start - before, std::max(end, start) + after, options);
  if (!t) return t.error();
  t->focus = std::move(focus);
  for (auto& e : t->entries) e.focus = e.source == source && e.subject == t->focus;
  trim(*t, options.limit);
  return t;
}

}  // namespace

Result<Timeline> timeline_for_run(st::Store& store, std::int64_t run_id, TimePoint now, Duration before, Duration after,
                                  TimelineOptions options) {
  auto run = store.get_run(run_id);
  if (!run) return run.error();
  if (!*run) return fail(errc::not_found, fmt::format("no workflow run {}", run_id));
  const auto& r = **run;
  const TimePoint start = r.started_at != TimePoint{} ? r.started_at : r.queued_at;
  const TimePoint end = st::is_final(r.state) && r.ended_at != TimePoint{} ? r.ended_at : now;
  return around(store, fmt::format("run:{}", run_id), "workflow", start, end, before, after, options);
}

Result<Timeline> timeline_for_alert(st::Store& store, std::int64_t alert_id, TimePoint now, Duration before, Duration after,
                                    TimelineOptions options) {
  auto alert = store.get_alert(alert_id);
  if (!alert) return alert.error();
  if (!*alert) return fail(errc::not_found, fmt::format("no alert {}", alert_id));
  const auto& a = **alert;
  const TimePoint start = a.active_since != TimePoint{} ? a.active_since : a.fired;
  const TimePoint end = a.resolved != TimePoint{} ? a.resolved : now;
  return around(store, fmt::format("alert:{}", alert_id), "alert", start, end, before, after, options);
}

bj::object to_json(const Timeline& t) {
  bj::array entries;
  for (const auto& e : t.entries) {
    bj::object o{{"time", format_timestamp(e.time)}, {"source", e.source},  {"kind", e.kind}, {"subject", e.subject},
                 {"severity", e.severity},           {"summary", e.summary}};
    if (e.focus) o["focus"] = true;
    entries.push_back(std::move(o));
  }
  return {{"from", format_timestamp(t.from)}, {"until", format_timestamp(t.until)}, {"focus", t.focus},
          {"entries", std::move(entries)},    {"dropped_before", t.dropped_before}, {"dropped_after", t.dropped_after},
          {"complete", !t.truncated}};
}

}  // namespace automation::intelligence
