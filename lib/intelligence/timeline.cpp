// Incident timelines from what the store already holds.
#include <automation/core/json.hpp>
#include <automation/core/time.hpp>
#include <automation/intelligence/timeline.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

#include <algorithm>
#include <map>

namespace automation::intelligence {

namespace st = storage;
namespace bj = boost::json;

namespace {

// Records that began before the window but ended inside it are found by reading this far back.
constexpr auto kLookBack = std::chrono::hours(24);

bool in(TimePoint t, TimePoint from, TimePoint until) { return t >= from && t < until; }

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

Result<void> add_runs(st::Store& store, TimePoint from, TimePoint until, std::vector<TimelineEntry>& out) {
  st::RunQuery q;
  q.since = from - kLookBack;
  q.until = until;
  q.limit = 0;
  auto runs = store.list_runs(q);
  if (!runs) return runs.error();
  for (const auto& r : *runs) {
    const bool deploy = r.workflow.find("deploy") != std::string::npos;
    const std::string what = deploy ? "deploy" : "run";
    const auto subject = fmt::format("run:{}", r.id);
    if (r.started_at != TimePoint{} && in(r.started_at, from, until))
      out.push_back({r.started_at, "workflow", what + ".started", subject, "info",
                     fmt::format("{} {} started ({})", r.workflow, subject, r.trigger)});
    if (st::is_final(r.state) && r.ended_at != TimePoint{} && in(r.ended_at, from, until))
      out.push_back({r.ended_at, "workflow", fmt::format("{}.{}", what, st::to_string(r.state)), subject, run_severity(r.state),
                     fmt::format("{} {} {}: {}", r.workflow, subject, st::to_string(r.state), r.reason)});
  }
  return {};
}

Result<void> add_tasks(st::Store& store, TimePoint from, TimePoint until, std::vector<TimelineEntry>& out) {
  st::TaskQuery q;
  q.since = from;
  q.until = until;
  q.limit = 0;
  auto tasks = store.query_tasks(q);
  if (!tasks) return tasks.error();
  for (const auto& t : *tasks) {
    // Workflow steps and runs are told by their runs; other domains' failures are told here.
    if (t.outcome == st::TaskOutcome::success || t.domain == "workflow") continue;
    out.push_back({t.ended != TimePoint{} ? t.ended : t.started, "task", fmt::format("task.{}", st::to_string(t.outcome)),
                   fmt::format("{}:{}", t.domain, t.action), t.outcome == st::TaskOutcome::cancelled ? "warning" : "error",
                   fmt::format("{} {} {}: {}", t.domain, t.action, st::to_string(t.outcome), t.error)});
  }
  return {};
}

Result<void> add_events(st::Store& store, TimePoint from, TimePoint until, std::vector<TimelineEntry>& out) {
  st::EventQuery q;
  q.since = from;
  q.limit = 0;
  auto events = store.list_events(q);
  if (!events) return events.error();
  for (const auto& e : *events) {
    if (e.time >= until || !e.name.starts_with("breaker.")) continue;  // health.* is told by the healing records
    auto payload = json::parse(e.payload);
    const auto p = payload ? *payload : bj::value(nullptr);
    const auto name = field(p, "breaker");
    const auto to = e.name.substr(std::string("breaker.").size());
    out.push_back({e.time, "breaker", e.name, "breaker:" + name,
                   to == "opened"      ? "error"
                   : to == "half_open" ? "warning"
                                       : "info",
                   fmt::format("circuit breaker {} {} -> {}: {}", name, field(p, "from"), field(p, "to"), field(p, "reason"))});
  }
  return {};
}

Result<void> add_healing(st::Store& store, TimePoint from, TimePoint until, std::vector<TimelineEntry>& out) {
  st::HealingQuery q;
  q.since = from;
  q.limit = 0;
  auto records = store.list_healing(q);
  if (!records) return records.error();
  for (const auto& h : *records) {
    if (h.time >= until) continue;
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

Result<void> add_scaling(st::Store& store, TimePoint from, TimePoint until, std::vector<TimelineEntry>& out) {
  st::ScalingQuery q;
  q.since = from;
  q.changes_only = true;
  q.limit = 0;
  auto records = store.list_scaling(q);
  if (!records) return records.error();
  for (const auto& s : *records) {
    if (s.time >= until || s.dry_run) continue;
    const auto kind = s.action == "decide" ? (s.desired > s.current   ? "scale.up"
                                              : s.desired < s.current ? "scale.down"
                                                                      : "scale.hold")
                                           : "scale." + s.action;
    out.push_back({s.time, "scaling", kind, "resource:" + s.resource, s.outcome == "failed" ? "error" : "info",
                   s.action == "thresholds" ? fmt::format("{}: policy changed by {}", s.resource, s.actor)
                                            : fmt::format("{} {} -> {} ({}, {}): {}{}", s.resource, s.current, s.desired, s.reason,
                                                          s.outcome, s.message, s.error.empty() ? "" : "; " + s.error)});
  }
  return {};
}

Result<void> add_alerts(st::Store& store, TimePoint from, TimePoint until, std::vector<TimelineEntry>& out) {
  st::AlertQuery q;
  q.since = from - kLookBack;
  q.limit = 0;
  auto alerts = store.list_alerts(q);
  if (!alerts) return alerts.error();
  for (const auto& a : *alerts) {
    const auto subject = fmt::format("alert:{}", a.id);
    const auto what = a.labels.empty() ? a.rule : fmt::format("{}{{{}}}", a.rule, a.labels);
    if (in(a.fired, from, until))
      out.push_back({a.fired, "alert", "alert.fired", subject,
                     a.severity == "critical"  ? "error"
                     : a.severity == "warning" ? "warning"
                                               : "info",
                     fmt::format("alert {} fired ({}): {}", what, a.severity, a.summary)});
    if (a.resolved != TimePoint{} && in(a.resolved, from, until))
      out.push_back({a.resolved, "alert", "alert.resolved", subject, "info", fmt::format("alert {} resolved", what)});
  }
  return {};
}

Result<void> add_audit(st::Store& store, TimePoint from, TimePoint until, std::vector<TimelineEntry>& out) {
  st::AuditQuery q;
  q.since = from;
  q.until = until;
  q.limit = 0;
  q.newest_first = false;
  auto records = store.query_audit(q);
  if (!records) return records.error();
  std::map<std::string, std::pair<TimePoint, int>> failed_logins;  // source -> (first, count)
  for (const auto& a : *records) {
    if (a.action == "auth.failed") {
      auto& [first, n] = failed_logins.try_emplace(a.origin, a.time, 0).first->second;
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

Result<Timeline> timeline(st::Store& store, TimePoint from, TimePoint until, TimelineOptions options) {
  if (until <= from) return fail(errc::invalid_argument, "a timeline's end must come after its start");
  Timeline t;
  t.from = from;
  t.until = until;
  for (auto add : {add_runs, add_tasks, add_events, add_healing, add_scaling, add_alerts, add_audit})
    if (auto r = add(store, from, until, t.entries); !r) return r.error();
  // Time order; at one time, the order of the sources above (a cause before its record).
  std::stable_sort(t.entries.begin(), t.entries.end(), [](const auto& a, const auto& b) { return a.time < b.time; });
  if (options.limit && t.entries.size() > options.limit) {
    t.dropped = t.entries.size() - options.limit;
    t.entries.resize(options.limit);
  }
  return t;
}

Result<Timeline> timeline_for_run(st::Store& store, std::int64_t run_id, TimePoint now, Duration before, Duration after,
                                  TimelineOptions options) {
  auto run = store.get_run(run_id);
  if (!run) return run.error();
  if (!*run) return fail(errc::not_found, fmt::format("no workflow run {}", run_id));
  const auto& r = **run;
  const TimePoint start = r.started_at != TimePoint{} ? r.started_at : r.queued_at;
  const TimePoint end = st::is_final(r.state) && r.ended_at != TimePoint{} ? r.ended_at : now;
  auto t = timeline(store, start - before, std::max(end, start) + after, options);
  if (!t) return t.error();
  t->focus = fmt::format("run:{}", run_id);
  for (auto& e : t->entries) e.focus = e.subject == t->focus && e.source == "workflow";
  return t;
}

Result<Timeline> timeline_for_alert(st::Store& store, std::int64_t alert_id, TimePoint now, Duration before, Duration after,
                                    TimelineOptions options) {
  auto alert = store.get_alert(alert_id);
  if (!alert) return alert.error();
  if (!*alert) return fail(errc::not_found, fmt::format("no alert {}", alert_id));
  const auto& a = **alert;
  const TimePoint start = a.active_since != TimePoint{} ? a.active_since : a.fired;
  const TimePoint end = a.resolved != TimePoint{} ? a.resolved : now;
  auto t = timeline(store, start - before, std::max(end, start) + after, options);
  if (!t) return t.error();
  t->focus = fmt::format("alert:{}", alert_id);
  for (auto& e : t->entries) e.focus = e.subject == t->focus;
  return t;
}

bj::object to_json(const Timeline& t) {
  bj::array entries;
  for (const auto& e : t.entries) {
    bj::object o{{"time", format_timestamp(e.time)}, {"source", e.source},  {"kind", e.kind}, {"subject", e.subject},
                 {"severity", e.severity},           {"summary", e.summary}};
    if (e.focus) o["focus"] = true;
    entries.push_back(std::move(o));
  }
  return {{"from", format_timestamp(t.from)},
          {"until", format_timestamp(t.until)},
          {"focus", t.focus},
          {"entries", std::move(entries)},
          {"dropped", t.dropped}};
}

}  // namespace automation::intelligence
