// The advisor's insights: who does most, when it is busy, what fails, and the load to come.
#include <automation/core/json.hpp>
#include <automation/core/time.hpp>
#include <automation/forecast/forecast.hpp>
#include <automation/intelligence/advisor.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <map>

namespace automation::intelligence {

namespace bj = boost::json;
namespace st = storage;

namespace {

constexpr std::array<const char*, 7> kWeekdays{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};

struct Activity {
  TimePoint time;
  std::string actor;   // empty for a task
  std::string action;  // "workflow.run", "payments/refund"
};

std::vector<std::pair<std::string, std::size_t>> top(const std::map<std::string, std::size_t>& counts, std::size_t n) {
  std::vector<std::pair<std::string, std::size_t>> v(counts.begin(), counts.end());
  std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  if (v.size() > n) v.resize(n);
  return v;
}

TimePoint hour_of(TimePoint t) { return TimePoint(std::chrono::floor<std::chrono::hours>(t.time_since_epoch())); }

double pct(std::size_t part, std::size_t whole) { return whole ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0; }

}  // namespace

Result<std::vector<Insight>> insights(st::Store& store, TimePoint now, const AdvisorOptions& o) {
  auto zone = TimeZone::locate(o.time_zone);
  if (!zone) return zone.error();
  const TimePoint since = now - o.window;
  std::vector<Activity> acts;
  st::AuditQuery aq;
  aq.since = since;
  aq.until = now;
  aq.limit = o.max_records;
  auto audit = store.query_audit(aq);
  if (!audit) return audit.error();
  for (const auto& a : *audit)
    if (!a.actor.starts_with("system:")) acts.push_back({a.time, a.actor, a.action});
  st::TaskQuery tq;
  tq.since = since;
  tq.until = now;
  tq.limit = o.max_records;
  auto tasks = store.query_tasks(tq);
  if (!tasks) return tasks.error();
  for (const auto& t : *tasks) acts.push_back({t.started, "", t.domain + "/" + t.action});
  const bool truncated = audit->size() >= o.max_records || tasks->size() >= o.max_records;

  std::vector<Insight> out;
  // Power users: who did the most by hand.
  std::map<std::string, std::size_t> by_actor;
  std::map<std::string, std::map<std::string, std::size_t>> actions_of;
  std::size_t manual = 0;
  for (const auto& a : acts)
    if (!a.actor.empty()) {
      ++manual;
      ++by_actor[a.actor];
      ++actions_of[a.actor][a.action];
    }
  for (const auto& [actor, n] : top(by_actor, 5)) {
    bj::array actions;
    for (const auto& [action, c] : top(actions_of[actor], 5)) actions.push_back(bj::object{{"action", action}, {"count", c}});
    out.push_back({"power_user",
                   fmt::format("{} did {} of the {} audited actions ({:.0f} %), most often {}", actor, n, manual, pct(n, manual),
                               actions.empty() ? std::string("-") : std::string(actions.front().as_object().at("action").as_string())),
                   bj::object{{"actor", actor}, {"actions", n}, {"percent", pct(n, manual)}, {"top_actions", std::move(actions)}}});
  }

  // Busy hours and days, in the zone's local time.
  std::array<std::size_t, 24> hours{};
  std::array<std::size_t, 7> days{};
  for (const auto& a : acts) {
    const auto local = zone->to_local(a.time);
    const auto day = std::chrono::floor<std::chrono::days>(local);
    hours[static_cast<std::size_t>(std::chrono::duration_cast<std::chrono::hours>(local - day).count())] += 1;
    days[std::chrono::weekday(std::chrono::sys_days(day.time_since_epoch())).c_encoding()] += 1;
  }
  if (!acts.empty()) {
    const auto h = static_cast<std::size_t>(std::max_element(hours.begin(), hours.end()) - hours.begin());
    out.push_back(
        {"busy_hour",
         fmt::format("The busiest hour is {:02}:00-{:02}:00 ({}), with {:.0f} % of the activity", h, (h + 1) % 24, zone->name(),
                     pct(hours[h], acts.size())),
         bj::object{
             {"hour", h}, {"percent", pct(hours[h], acts.size())}, {"by_hour", bj::value_from(hours)}, {"time_zone", zone->name()}}});
    const auto d = static_cast<std::size_t>(std::max_element(days.begin(), days.end()) - days.begin());
    bj::object by_day;
    for (std::size_t i = 0; i < 7; ++i) by_day[kWeekdays[i]] = days[i];
    out.push_back({"busy_day", fmt::format("The busiest day is {}, with {:.0f} % of the activity", kWeekdays[d], pct(days[d], acts.size())),
                   bj::object{{"weekday", kWeekdays[d]}, {"percent", pct(days[d], acts.size())}, {"by_weekday", std::move(by_day)}}});
  }

  // Workflows that fail most.
  st::RunQuery rq;
  rq.since = since;
  rq.limit = o.max_records;
  auto runs = store.list_runs(rq);
  if (!runs) return runs.error();
  std::map<std::string, std::pair<std::size_t, std::size_t>> outcomes;  // workflow -> finished, failed
  for (const auto& r : *runs) {
    if (!st::is_final(r.state) || r.state == st::RunState::skipped || r.state == st::RunState::cancelled) continue;
    auto& [finished, failed] = outcomes[r.workflow];
    ++finished;
    if (r.state == st::RunState::failed || r.state == st::RunState::timed_out || r.state == st::RunState::interrupted) ++failed;
  }
  std::vector<std::pair<std::string, double>> failing;
  for (const auto& [w, fo] : outcomes)
    if (fo.first >= o.min_runs && static_cast<double>(fo.second) >= o.failure_rate * static_cast<double>(fo.first))
      failing.emplace_back(w, static_cast<double>(fo.second) / static_cast<double>(fo.first));
  std::stable_sort(failing.begin(), failing.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  for (const auto& [w, rate] : failing) {
    const auto& [finished, failed] = outcomes[w];
    out.push_back({"failing_workflow", fmt::format("{} failed {} of its last {} runs ({:.0f} %)", w, failed, finished, rate * 100.0),
                   bj::object{{"workflow", w}, {"runs", finished}, {"failed", failed}, {"failure_rate", rate}}});
  }

  // The load to come: activity per hour, forecast a day (or, with three weeks of history, a week)
  // ahead with a daily (or weekly) season.
  const TimePoint end = hour_of(now);
  TimePoint first = end;
  for (const auto& a : acts) first = std::min(first, hour_of(a.time));
  const auto n_hours = static_cast<std::size_t>(std::chrono::duration_cast<std::chrono::hours>(end - first).count());
  if (n_hours >= 48) {
    std::vector<double> series(n_hours, 0.0);
    for (const auto& a : acts) {
      const auto i = std::chrono::duration_cast<std::chrono::hours>(hour_of(a.time) - first).count();
      if (i >= 0 && static_cast<std::size_t>(i) < n_hours) series[static_cast<std::size_t>(i)] += 1.0;
    }
    forecast::Options fo;
    const bool weekly = n_hours >= 3 * 168;
    fo.period = weekly ? 168 : 24;
    fo.max_detected_period = fo.period;
    fo.horizon = weekly ? 168 : 24;
    fo.levels = {80.0};
    auto f = o.forecaster ? o.forecaster(series, fo) : forecast::forecast(series, fo);
    if (f && f->intervals.empty()) f = Error(errc::internal, "the forecaster gave no interval");  // a host's may
    if (f) {
      bj::array points;
      std::size_t peak = 0;
      std::array<double, 7> day_total{};
      for (std::size_t i = 0; i < f->mean.size(); ++i) {
        const TimePoint at = end + std::chrono::hours(static_cast<long>(i));
        const double v = std::max(0.0, f->mean[i]);
        if (v > std::max(0.0, f->mean[peak])) peak = i;
        const auto local = zone->to_local(at);
        day_total[std::chrono::weekday(std::chrono::sys_days(std::chrono::floor<std::chrono::days>(local).time_since_epoch()))
                      .c_encoding()] += v;
        points.push_back(bj::object{{"hour", json::time_or_null(at)},
                                    {"value", v},
                                    {"lower", std::max(0.0, f->intervals.front().lower[i])},
                                    {"upper", std::max(0.0, f->intervals.front().upper[i])}});
      }
      bj::object by_day;
      if (weekly)
        for (std::size_t i = 0; i < 7; ++i) by_day[kWeekdays[i]] = day_total[i];
      const TimePoint peak_at = end + std::chrono::hours(static_cast<long>(peak));
      out.push_back({"load_forecast",
                     fmt::format("Expected peak: about {:.0f} actions an hour at {} (forecast {} ahead from {} hours of history)",
                                 std::max(0.0, f->mean[peak]), zone->format(peak_at), weekly ? "a week" : "a day", n_hours),
                     bj::object{{"history_hours", n_hours},
                                {"period", fo.period},
                                {"method", forecast::to_string(f->method)},
                                {"backend", f->backend},
                                {"level", 80.0},
                                {"peak", bj::object{{"hour", json::time_or_null(peak_at)}, {"value", std::max(0.0, f->mean[peak])}}},
                                {"by_weekday", std::move(by_day)},
                                {"hourly", std::move(points)}}});
    }
  }
  if (truncated)
    for (auto& i : out) i.detail["truncated"] = true;
  return out;
}

}  // namespace automation::intelligence
