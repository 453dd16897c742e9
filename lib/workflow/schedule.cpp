// Schedule definitions: validation, JSON, the seed schedules, next fire times, event matching, and
// pause/resume through the store.
#include <automation/core/files.hpp>
#include <automation/core/ids.hpp>
#include <automation/core/json.hpp>
#include <automation/core/logging.hpp>
#include <automation/core/time.hpp>
#include <automation/workflow/cron.hpp>
#include <automation/workflow/scheduler.hpp>
#include <detail/json_checker.hpp>
#include <detail/log.hpp>
#include <detail/names.hpp>

#include "workflow/schedule_internal.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <unistd.h>

#include <cctype>
#include <set>

namespace automation::workflow {

namespace bj = boost::json;

std::string_view to_string(OverlapPolicy p) noexcept {
  switch (p) {
    case OverlapPolicy::skip:
      return "skip";
    case OverlapPolicy::buffer_one:
      return "buffer_one";
    case OverlapPolicy::buffer_all:
      return "buffer_all";
    case OverlapPolicy::cancel_other:
      return "cancel_other";
    case OverlapPolicy::allow_all:
      return "allow_all";
  }
  return "?";
}

Result<OverlapPolicy> parse_overlap_policy(std::string_view text) {
  return detail::parse_name(
      text,
      {OverlapPolicy::skip, OverlapPolicy::buffer_one, OverlapPolicy::buffer_all, OverlapPolicy::cancel_other, OverlapPolicy::allow_all},
      "overlap policy");
}

std::string_view to_string(TriggerKind k) noexcept {
  switch (k) {
    case TriggerKind::cron:
      return "cron";
    case TriggerKind::interval:
      return "interval";
    case TriggerKind::event:
      return "event";
  }
  return "?";
}

TriggerKind ScheduleDefinition::kind() const noexcept {
  if (!event.empty()) return TriggerKind::event;
  if (interval > Duration::zero()) return TriggerKind::interval;
  return TriggerKind::cron;
}

namespace {

std::string ms_text(Duration d) { return format_duration(std::chrono::duration_cast<Millis>(d)); }

bool valid_schedule_name(std::string_view n) {
  if (n.empty() || n.size() > 128) return false;
  for (char c : n)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  return true;
}

bool valid_event_pattern(std::string_view p) {
  if (p == "*") return true;
  if (p.size() > 2 && p.substr(p.size() - 2) == ".*") p.remove_suffix(2);
  return storage::is_event_name(p);
}

// The structural checks shared by validate() and the JSON reader.
void check(const ScheduleDefinition& s, detail::JsonChecker& c, const std::string& path = "$") {
  if (!valid_schedule_name(s.name)) c.add(path + ".name", fmt::format("\"{}\" must be 1-128 letters, digits, '-', '_' or '.'", s.name));
  if (s.workflow.empty()) c.add(path + ".workflow", "names the workflow to run and must not be empty");
  const int triggers = (s.cron.empty() ? 0 : 1) + (s.interval > Duration::zero() ? 1 : 0) + (s.event.empty() ? 0 : 1);
  if (triggers != 1)
    c.add(path, triggers == 0 ? "needs one trigger: \"cron\", \"interval\" or \"event\""
                              : "has more than one trigger: choose one of \"cron\", \"interval\" and \"event\"");
  if (!s.cron.empty())
    if (auto e = CronExpression::parse(s.cron); !e) c.add(path + ".cron", e.error().message);
  if (s.interval < Duration::zero()) c.add(path + ".interval", "must be more than zero");
  if (s.interval_offset < Duration::zero() || (s.interval > Duration::zero() && s.interval_offset >= s.interval))
    c.add(path + ".offset", fmt::format("must be at least 0 and less than the interval ({})", ms_text(s.interval)));
  if (s.interval_offset > Duration::zero() && s.interval <= Duration::zero()) c.add(path + ".offset", "applies to interval triggers only");
  if (!s.event.empty() && !valid_event_pattern(s.event))
    c.add(path + ".event",
          fmt::format("\"{}\" must be an event name (letters, digits and . _ - :), a prefix pattern \"name.*\", or \"*\"", s.event));
  if (!s.event_filter.empty() && s.event.empty()) c.add(path + ".filter", "applies to event triggers only");
  if (auto tz = TimeZone::locate(s.time_zone); !tz) c.add(path + ".time_zone", tz.error().message);
  if (s.catch_up < Duration::zero()) c.add(path + ".catch_up", "must not be negative");
  if (s.jitter < Duration::zero()) c.add(path + ".jitter", "must not be negative");
  if (s.pause_after_failures < 0) c.add(path + ".pause_after_failures", "must be 0 (never) or more");
}

std::map<std::string, std::string> read_string_map(detail::JsonChecker& c, const bj::value& v, const std::string& path) {
  std::map<std::string, std::string> out;
  if (const auto* o = c.object(v, path))
    for (const auto& kv : *o)
      out[std::string(kv.key())] = kv.value().is_string() ? std::string(kv.value().as_string()) : json::dump(kv.value());
  return out;
}

ScheduleDefinition read(detail::JsonChecker& c, const bj::value& v, const std::string& path) {
  ScheduleDefinition s;
  const auto* o = c.object(v, path);
  if (!o) return s;
  c.unknown_keys(*o, path,
                 {"name", "description", "workflow", "params", "cron", "interval", "offset", "event", "filter", "time_zone", "overlap",
                  "catch_up", "jitter", "pause_after_failures", "paused", "paused_reason"});
  auto str = [&](const char* key, std::string& out, bool required) {
    if (const auto* x = o->if_contains(key)) {
      if (auto t = c.string(*x, path + "." + key, required)) out = *t;
    } else if (required) {
      c.add(path, fmt::format("needs \"{}\"", key));
    }
  };
  str("name", s.name, true);
  str("description", s.description, false);
  str("workflow", s.workflow, false);
  if (s.workflow.empty()) s.workflow = s.name;  // a schedule named after its workflow
  str("cron", s.cron, false);
  str("event", s.event, false);
  str("time_zone", s.time_zone, false);
  str("paused_reason", s.paused_reason, false);
  if (const auto* x = o->if_contains("params")) s.params = read_string_map(c, *x, path + ".params");
  if (const auto* x = o->if_contains("filter")) s.event_filter = read_string_map(c, *x, path + ".filter");
  if (const auto* x = o->if_contains("interval"))
    if (auto d = c.duration(*x, path + ".interval")) s.interval = *d;
  if (const auto* x = o->if_contains("offset"))
    if (auto d = c.duration(*x, path + ".offset", true)) s.interval_offset = *d;
  if (const auto* x = o->if_contains("catch_up"))
    if (auto d = c.duration(*x, path + ".catch_up", true)) s.catch_up = *d;
  if (const auto* x = o->if_contains("jitter"))
    if (auto d = c.duration(*x, path + ".jitter", true)) s.jitter = *d;
  if (const auto* x = o->if_contains("overlap")) {
    if (auto t = c.string(*x, path + ".overlap")) {
      if (auto p = parse_overlap_policy(*t))
        s.overlap = *p;
      else
        c.add(path + ".overlap", p.error().message);
    }
  }
  if (const auto* x = o->if_contains("pause_after_failures")) {
    if (!x->is_int64() || x->as_int64() < 0 || x->as_int64() > 1'000'000)
      c.add(path + ".pause_after_failures", "must be an integer, 0 (never) or more");
    else
      s.pause_after_failures = static_cast<int>(x->as_int64());
  }
  if (const auto* x = o->if_contains("paused")) {
    if (!x->is_bool())
      c.add(path + ".paused", "must be true or false");
    else
      s.paused = x->as_bool();
  }
  check(s, c, path);
  return s;
}

}  // namespace

std::string ScheduleDefinition::trigger_text() const {
  switch (kind()) {
    case TriggerKind::event: {
      std::string t = "event " + event;
      for (const auto& [k, v] : event_filter) t += fmt::format(" {}={}", k, v);
      return t;
    }
    case TriggerKind::interval:
      return interval_offset > Duration::zero() ? fmt::format("every {} (offset {})", ms_text(interval), ms_text(interval_offset))
                                                : fmt::format("every {}", ms_text(interval));
    case TriggerKind::cron:
      break;
  }
  auto e = CronExpression::parse(cron);
  if (!e) return "cron " + cron;
  std::string t = e->normalized() == cron ? "cron " + cron : fmt::format("cron {} ({})", e->normalized(), cron);
  if (time_zone != "UTC") t += " in " + time_zone;
  return t;
}

Result<void> validate(const ScheduleDefinition& s) {
  detail::JsonChecker c;
  check(s, c);
  return detail::verdict(c, fmt::format("schedule \"{}\"", s.name));
}

Result<ScheduleDefinition> parse_schedule(const bj::value& v, std::string_view path) {
  detail::JsonChecker c;
  auto s = read(c, v, std::string(path));
  if (auto r = detail::verdict(c, fmt::format("schedule \"{}\"", s.name)); !r) return r.error();
  return s;
}

Result<std::vector<ScheduleDefinition>> parse_schedules(std::string_view text, std::string_view source) {
  auto doc = json::parse(text, source);
  if (!doc) return doc.error();
  detail::JsonChecker c;
  const bj::array* list = nullptr;
  std::string base = "$";
  if (doc->is_array()) {
    list = &doc->as_array();
  } else if (const auto* o = c.object(*doc, "$")) {
    c.unknown_keys(*o, "$", {"schedules"});
    if (const auto* s = o->if_contains("schedules")) {
      if (s->is_array())
        list = &s->as_array();
      else
        c.add("$.schedules", "must be an array");
    } else {
      c.add("$", "needs \"schedules\": an array of schedules");
    }
    base = "$.schedules";
  }
  std::vector<ScheduleDefinition> out;
  std::set<std::string> names;
  if (list)
    for (std::size_t i = 0; i < list->size(); ++i) {
      const auto path = fmt::format("{}[{}]", base, i);
      auto s = read(c, (*list)[i], path);
      if (!s.name.empty() && !names.insert(s.name).second) c.add(path + ".name", fmt::format("schedule \"{}\" is defined twice", s.name));
      out.push_back(std::move(s));
    }
  if (auto r = detail::verdict(c, source); !r) return r.error();
  return out;
}

Result<std::vector<ScheduleDefinition>> load_schedules_file(const std::string& path) {
  auto text = read_file(path);
  if (!text) return fail(errc::not_found, fmt::format("{}: cannot open the schedules file", path));
  return parse_schedules(*text, path);
}

bj::object to_json(const ScheduleDefinition& s) {
  bj::object o;
  o["name"] = s.name;
  if (!s.description.empty()) o["description"] = s.description;
  o["workflow"] = s.workflow;
  if (!s.cron.empty()) o["cron"] = s.cron;
  if (s.interval > Duration::zero()) {
    o["interval"] = ms_text(s.interval);
    if (s.interval_offset > Duration::zero()) o["offset"] = ms_text(s.interval_offset);
  }
  if (!s.event.empty()) {
    o["event"] = s.event;
    if (!s.event_filter.empty()) {
      bj::object f;
      for (const auto& [k, v] : s.event_filter) f[k] = v;
      o["filter"] = std::move(f);
    }
  }
  bj::object p;
  for (const auto& [k, v] : s.params) p[k] = v;
  o["params"] = std::move(p);
  o["time_zone"] = s.time_zone;
  o["overlap"] = to_string(s.overlap);
  o["catch_up"] = ms_text(s.catch_up);
  o["jitter"] = ms_text(s.jitter);
  o["pause_after_failures"] = s.pause_after_failures;
  o["paused"] = s.paused;
  if (!s.paused_reason.empty()) o["paused_reason"] = s.paused_reason;
  return o;
}

std::vector<ScheduleDefinition> builtin_schedules(std::string_view time_zone) {
  using namespace std::chrono_literals;
  // Each seed runs the built-in workflow of its name.
  struct Seed {
    const char* name;
    const char* description;
    const char* cron;   // or nullptr for an event
    const char* event;  // or nullptr for a time trigger
    Duration catch_up;
    int pause_after_failures = 0;
    bool local = false;  // at a local time of day (else every N hours or minutes, in UTC)
  };
  static const Seed kSeeds[] = {
      {"auto_backup", "Back the store up every 6 hours; after downtime, one backup runs at once", "every 6 hours", nullptr, 6h},
      {"health_check", "Probe the health URL every 5 minutes; pauses itself after 3 failed probes in a row", "every 5 minutes", nullptr,
       1min, 3},
      {"auto_optimize", "Checkpoint, analyze, vacuum and prune the store daily at 02:00", "daily at 02:00", nullptr, 12h},
      {"auto_scale_check", "Run the scaling check every 10 minutes", "every 10 minutes", nullptr, 1min},
      {"daily-metrics-aggregation", "Roll up yesterday's usage and revenue daily at 00:00", "daily at 00:00", nullptr, 12h, 0, true},
      {"weekly-report-generation", "Deliver last week's report on Mondays at 09:00", "mondays at 09:00", nullptr, 24h, 0, true},
      {"forecast-update", "Forecast revenue, users and usage daily at 06:00", "daily at 06:00", nullptr, 12h, 0, true},
      {"delivery-retry", "Attempt the report deliveries that are due again, every 10 minutes", "every 10 minutes", nullptr, 1min},
      {"hourly-resource-check", "Check the last hour's CPU, memory and disk samples against the thresholds, hourly", "hourly", nullptr, 1h},
      {"on_user_register", "Run on_user_register for every user.registered event", nullptr, "user.registered", 24h},
      {"on_content_publish", "Run on_content_publish for every content.published event", nullptr, "content.published", 24h},
  };
  std::vector<ScheduleDefinition> out;
  for (const auto& seed : kSeeds) {
    ScheduleDefinition s;
    s.name = s.workflow = seed.name;
    s.description = seed.description;
    if (seed.cron) s.cron = seed.cron;
    if (seed.event) {
      s.event = seed.event;
      s.overlap = OverlapPolicy::allow_all;  // every event gets its run
    }
    s.catch_up = seed.catch_up;
    s.pause_after_failures = seed.pause_after_failures;
    if (seed.local) s.time_zone = std::string(time_zone);
    out.push_back(std::move(s));
  }
  return out;
}

std::optional<TimePoint> next_fire_time(const ScheduleDefinition& s, TimePoint after) {
  switch (s.kind()) {
    case TriggerKind::event:
      return std::nullopt;
    case TriggerKind::interval: {
      const auto i = std::chrono::duration_cast<Millis>(s.interval).count();
      const auto off = std::chrono::duration_cast<Millis>(s.interval_offset).count();
      if (i <= 0) return std::nullopt;
      const auto t = to_epoch_ms(after) - off;
      const auto k = t >= 0 ? t / i : -((-t + i - 1) / i);  // floor division
      return from_epoch_ms((k + 1) * i + off);
    }
    case TriggerKind::cron:
      break;
  }
  auto e = CronExpression::parse(s.cron);
  auto tz = TimeZone::locate(s.time_zone);
  if (!e || !tz) return std::nullopt;
  return e->next(after, *tz);
}

bool internal::event_name_matches(std::string_view p, std::string_view name) noexcept {
  if (p == "*") return true;
  if (p.size() > 2 && p.substr(p.size() - 2) == ".*")
    return name.size() > p.size() - 1 && name.substr(0, p.size() - 1) == p.substr(0, p.size() - 1);
  return name == p;
}

bool event_matches(const ScheduleDefinition& s, std::string_view name, const bj::object& payload) {
  if (!internal::event_name_matches(s.event, name)) return false;
  for (const auto& [k, want] : s.event_filter) {
    const auto* v = payload.if_contains(k);
    if (!v) return false;
    const std::string got = v->is_string() ? std::string(v->as_string()) : json::dump(*v);
    if (got != want) return false;
  }
  return true;
}

namespace {

Result<storage::ScheduleRecord> change_state(storage::Store& store, std::string_view name, bool pause, std::string reason,
                                             std::string actor, TimePoint now) {
  if (reason.empty()) reason = pause ? "paused by " + actor : "resumed by " + actor;
  for (int attempt = 0; attempt < 20; ++attempt) {
    auto cur = store.get_schedule(name);
    if (!cur) return cur.error();
    storage::ScheduleRecord r;
    if (*cur) {
      r = **cur;
    } else {
      r.name = std::string(name);
      r.last_fire = now;
    }
    r.paused = pause;
    r.reason = reason;
    r.updated = now;
    r.updated_by = actor;
    if (!pause) {
      // Neither the fires nor the events of the paused time are caught up.
      r.consecutive_failures = 0;
      if (r.last_fire < now) r.last_fire = now;
      auto last_event = store.last_event_id();
      if (!last_event) return last_event.error();
      r.last_event_id = std::max(r.last_event_id, *last_event);
    }
    auto put = store.put_schedule(r, *cur ? (**cur).version : 0);
    if (!put) {
      if (put.error().is(errc::conflict)) continue;
      return put.error();
    }
    r.version = *put;
    internal::audit_schedule(store, now, actor, pause ? "schedule.pause" : "schedule.resume", r);
    return r;
  }
  return fail(errc::conflict, fmt::format("schedule '{}' kept changing under us; try again", name));
}

}  // namespace

void internal::audit_schedule(storage::Store& store, TimePoint now, std::string actor, std::string action,
                              const storage::ScheduleRecord& r) {
  storage::AuditRecord a;
  a.time = now;
  a.actor = std::move(actor);
  a.action = std::move(action);
  a.resource = "schedule:" + r.name;
  a.origin = fmt::format("pid={} host={}", ::getpid(), host_name());
  a.reason = r.reason;
  a.details = json::dump(bj::object{{"consecutive_failures", r.consecutive_failures}});
  a.correlation_id = std::string(current_correlation_id());
  if (auto w = store.append_audit({&a, 1}); !w)
    detail::logf(LogLevel::warn, "scheduler", "schedule {}: could not record {} in the audit log: {}", r.name, a.action, w.error().message);
}

Result<storage::ScheduleRecord> pause_schedule(storage::Store& store, std::string_view name, std::string reason, std::string actor,
                                               TimePoint now) {
  return change_state(store, name, true, std::move(reason), std::move(actor), now);
}

Result<storage::ScheduleRecord> resume_schedule(storage::Store& store, std::string_view name, std::string reason, std::string actor,
                                                TimePoint now) {
  return change_state(store, name, false, std::move(reason), std::move(actor), now);
}

bj::object to_json(const FireResult& f) {
  bj::object o{{"schedule", f.schedule}, {"fire_time", format_timestamp(f.fire_time)}, {"outcome", f.outcome}, {"reason", f.reason}};
  if (f.event_id) o["event_id"] = f.event_id;
  if (f.run_id) o["run_id"] = f.run_id;
  return o;
}

bj::object to_json(const storage::FireRecord& f) {
  auto o = to_json(FireResult{f.schedule, f.fire_time, f.event_id, f.outcome, f.run_id, f.reason});
  o["recorded"] = format_timestamp(f.recorded);
  return o;
}

}  // namespace automation::workflow
