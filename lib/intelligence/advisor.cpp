#include <automation/core/files.hpp>
#include <automation/core/json.hpp>
#include <automation/core/time.hpp>
#include <automation/intelligence/advisor.hpp>

#include "detail/hash.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

namespace automation::intelligence {

namespace bj = boost::json;
namespace fs = std::filesystem;
namespace st = storage;
constexpr const char* kSchedulesFile = "schedules.json";
namespace wf = workflow;

namespace {

std::string suggestion_id(std::string_view kind, std::string_view subject) {
  const auto h = detail::mix64(detail::fnv1a(subject, detail::fnv1a(kind)));
  return fmt::format("sg-{:012x}", h & 0xffffffffffffull);
}

double share(std::size_t part, std::size_t whole) { return whole ? static_cast<double>(part) / static_cast<double>(whole) : 0.0; }

std::string percent(double r) { return fmt::format("{:.0f} %", r * 100.0); }

// A name for a callback step from an action ("cache.flush" stays; anything outside the workflow
// names' alphabet becomes '-').
std::string slug(std::string_view s) {
  std::string out;
  for (char c : s) out += std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ? c : '-';
  return out.empty() ? std::string("step") : out;
}

// ---- what people did, from the audit log and the host's tasks --------------------------------

struct Act {
  TimePoint time;
  std::string stream;    // who did it: an actor, or "task DOMAIN"
  std::string label;     // "workflow.run workflow:build", "task payments/refund"
  std::string workflow;  // for a workflow started by hand: its name (a step runs it as a sub-workflow)
  std::string callback;  // otherwise: the callback a step calls
  std::string resource;  // what the action was done to, the callback's "resource" argument
};

bool administrative(std::string_view action) {
  for (std::string_view p : {"token.", "daemon.", "security.", "store.", "auth.", "api.", "history.", "config.", "registry.", "discovery.",
                             "suggestion.", "service."})
    if (action.starts_with(p)) return true;
  return false;
}

struct Acts {
  std::vector<Act> acts;  // oldest first
  std::size_t audit_read = 0, tasks_read = 0;
  bool truncated = false;
};

Result<Acts> read_acts(st::Store& store, TimePoint now, const AdvisorOptions& o) {
  Acts out;
  st::AuditQuery aq;
  aq.since = now - o.window;
  aq.until = now;
  aq.outcome = st::AuditOutcome::success;
  aq.limit = o.max_records;
  auto audit = store.query_audit(aq);
  if (!audit) return audit.error();
  out.audit_read = audit->size();
  out.truncated = audit->size() >= o.max_records;
  for (auto& a : *audit) {
    if (a.actor.starts_with("system:") || administrative(a.action)) continue;
    Act act{a.time, a.actor, a.action + " " + a.resource, "", "", ""};
    if (a.action == "workflow.run" && a.resource.starts_with("workflow:")) {
      act.workflow = a.resource.substr(9);
    } else {
      act.callback = slug(a.action);
      act.resource = a.resource;
    }
    out.acts.push_back(std::move(act));
  }
  st::TaskQuery tq;
  tq.since = now - o.window;
  tq.until = now;
  tq.outcome = st::TaskOutcome::success;
  tq.limit = o.max_records;
  auto tasks = store.query_tasks(tq);
  if (!tasks) return tasks.error();
  out.tasks_read = tasks->size();
  out.truncated = out.truncated || tasks->size() >= o.max_records;
  for (auto& t : *tasks) {
    if (t.domain == "workflow") continue;  // already automated
    out.acts.push_back({t.started, "task " + t.domain, "task " + t.domain + "/" + t.action, "", slug(t.action), ""});
  }
  std::stable_sort(out.acts.begin(), out.acts.end(), [](const Act& a, const Act& b) { return a.time < b.time; });
  return out;
}

struct Sequence {
  std::vector<const Act*> first;  // the acts of its first occurrence (for the steps)
  std::vector<TimePoint> starts;  // when each occurrence began
  std::set<std::string> streams;
  std::size_t count = 0;
};

using Labels = std::vector<std::string>;

// Contiguous runs of 2..max_sequence actions repeated within sessions, counted without overlap
// inside a session; a sequence that only ever occurs inside a longer one is dropped for it.
std::vector<std::pair<Labels, Sequence>> mine(const std::vector<Act>& acts, const AdvisorOptions& o) {
  std::map<std::string, std::vector<std::vector<const Act*>>> sessions;  // stream -> sessions
  for (const auto& a : acts) {
    auto& list = sessions[a.stream];
    if (list.empty() || a.time - list.back().back()->time > o.session_gap) list.emplace_back();
    list.back().push_back(&a);
  }
  std::map<Labels, Sequence> found;
  for (const auto& [stream, list] : sessions)
    for (const auto& session : list) {
      std::map<Labels, std::size_t> next_free;  // non-overlap within the session
      for (std::size_t len = 2; len <= o.max_sequence; ++len)
        for (std::size_t i = 0; i + len <= session.size(); ++i) {
          Labels key;
          for (std::size_t k = i; k < i + len; ++k) key.push_back(session[k]->label);
          if (std::all_of(key.begin(), key.end(), [&](const std::string& l) { return l == key.front(); })) continue;
          auto nf = next_free.find(key);
          if (nf != next_free.end() && i < nf->second) continue;
          next_free[key] = i + len;
          auto& s = found[key];
          if (s.count == 0)
            s.first.assign(session.begin() + static_cast<std::ptrdiff_t>(i), session.begin() + static_cast<std::ptrdiff_t>(i + len));
          ++s.count;
          s.starts.push_back(session[i]->time);
          s.streams.insert(stream);
        }
    }
  std::vector<std::pair<Labels, Sequence>> kept;
  for (auto& [k, s] : found)
    if (s.count >= o.min_occurrences) kept.emplace_back(k, std::move(s));
  auto inside = [](const Labels& small, const Labels& big) {
    return big.size() > small.size() && std::search(big.begin(), big.end(), small.begin(), small.end()) != big.end();
  };
  std::vector<std::pair<Labels, Sequence>> out;
  for (auto& c : kept) {
    const bool covered =
        std::any_of(kept.begin(), kept.end(), [&](const auto& d) { return inside(c.first, d.first) && d.second.count >= c.second.count; });
    if (!covered) out.push_back(std::move(c));
  }
  return out;
}

// The time of day the occurrences share, when every one began within 30 minutes of their median
// and they fell on at least min_occurrences different days: the cron fields "M H".
std::optional<std::pair<int, int>> daily_habit(const std::vector<TimePoint>& starts, const TimeZone& zone, std::size_t min_days) {
  std::vector<int> minutes;
  std::set<int> days;
  for (auto t : starts) {
    const auto local = zone.to_local(t);
    const auto day = std::chrono::floor<std::chrono::days>(local);
    days.insert(static_cast<int>(day.time_since_epoch().count()));
    minutes.push_back(static_cast<int>(std::chrono::duration_cast<std::chrono::minutes>(local - day).count()));
  }
  if (days.size() < min_days || days.size() < starts.size()) return std::nullopt;  // once a day, on different days
  std::sort(minutes.begin(), minutes.end());
  const int median = minutes[(minutes.size() - 1) / 2];  // the lower median
  if (minutes.back() - median > 30 || median - minutes.front() > 30) return std::nullopt;
  return std::pair<int, int>(median % 60, median / 60);
}

bj::object schedule_json(std::string name, std::string workflow, int minute, int hour, std::string_view zone, std::string description) {
  return bj::object{{"name", std::move(name)},
                    {"description", std::move(description)},
                    {"workflow", std::move(workflow)},
                    {"cron", fmt::format("{} {} * * *", minute, hour)},
                    {"time_zone", zone}};
}

void automate_suggestions(const Acts& acts, std::span<const wf::WorkflowDefinition> workflows, const AdvisorOptions& o,
                          const TimeZone& zone, std::vector<Suggestion>& out) {
  std::set<std::string> existing;
  for (const auto& w : workflows) existing.insert(w.name);
  for (auto& [labels, seq] : mine(acts.acts, o)) {
    Suggestion s;
    s.kind = "automate";
    s.subject = "sequence:" + fmt::format("{}", fmt::join(labels, " > "));
    s.id = suggestion_id(s.kind, s.subject);
    const std::string name = "auto-" + s.id.substr(3);
    if (existing.contains(name)) continue;  // applied
    bj::array steps;
    std::vector<std::string> callbacks;
    for (std::size_t i = 0; i < seq.first.size(); ++i) {
      const Act& a = *seq.first[i];
      bj::object step{{"id", fmt::format("step{}", i + 1)}, {"name", a.label}};
      if (!a.workflow.empty()) {
        step["workflow"] = bj::object{{"name", a.workflow}};
      } else {
        step["callback"] = a.callback;
        if (!a.resource.empty()) step["with"] = bj::object{{"resource", a.resource}};
        callbacks.push_back(a.callback);
      }
      if (i > 0) step["needs"] = bj::array{bj::value(fmt::format("step{}", i))};
      steps.push_back(std::move(step));
    }
    bj::array by;
    for (const auto& who : seq.streams) by.push_back(bj::value(who));
    s.evidence = bj::object{{"sequence", bj::value_from(labels)},
                            {"occurrences", seq.count},
                            {"by", std::move(by)},
                            {"first", json::time_or_null(seq.starts.front())},
                            {"last", json::time_or_null(seq.starts.back())}};
    s.title = fmt::format("Automate a sequence of {} actions done {} times", labels.size(), seq.count);
    s.explanation = fmt::format(
        "{} did these {} actions in this order {} times between {} and {}: {}. A workflow \"{}\" runs them as steps, each after the one "
        "before.",
        fmt::join(seq.streams, ", "), labels.size(), seq.count, format_timestamp(seq.starts.front()), format_timestamp(seq.starts.back()),
        fmt::join(labels, " > "), name);
    if (!callbacks.empty())
      s.explanation += fmt::format(" Steps that are not workflows call a callback the host registers: {}.", fmt::join(callbacks, ", "));
    s.change["create_workflow"] =
        bj::object{{"name", name},
                   {"description", fmt::format("Suggested by the advisor ({}): {}", s.id, fmt::join(labels, " > "))},
                   {"steps", std::move(steps)}};
    auto habit = daily_habit(seq.starts, zone, o.min_occurrences);
    if (habit && !callbacks.empty()) {
      // Its callback steps fail until the host registers them: a schedule would fail daily meanwhile.
      s.evidence["daily_at"] = fmt::format("{:02}:{:02}", habit->second, habit->first);
      s.explanation += fmt::format(
          " It happened once a day at about {:02}:{:02}, but no schedule is added while it needs callbacks: add one once they are "
          "registered.",
          habit->second, habit->first);
    } else if (habit) {
      s.change["create_schedule"] = schedule_json(
          name + "-daily", name, habit->first, habit->second, zone.name(),
          fmt::format("Suggested by the advisor ({}): the sequence ran daily at {:02}:{:02}", s.id, habit->second, habit->first));
      s.evidence["daily_at"] = fmt::format("{:02}:{:02}", habit->second, habit->first);
      s.explanation += fmt::format(" It happened once a day at about {:02}:{:02} ({}), so a daily schedule is added.", habit->second,
                                   habit->first, zone.name());
    }
    s.score = static_cast<double>(seq.count * (labels.size() - 1));
    out.push_back(std::move(s));
  }
}

// A workflow started by hand once a day at the same time, with no schedule for it.
void schedule_suggestions(const Acts& acts, std::span<const wf::WorkflowDefinition> workflows,
                          std::span<const wf::ScheduleDefinition> schedules, const AdvisorOptions& o, const TimeZone& zone,
                          std::vector<Suggestion>& out) {
  std::map<std::string, std::vector<const Act*>> by_workflow;
  for (const auto& a : acts.acts)
    if (!a.workflow.empty() && !a.stream.starts_with("task ")) by_workflow[a.workflow].push_back(&a);
  for (const auto& [workflow, list] : by_workflow) {
    if (list.size() < o.min_occurrences) continue;
    if (std::none_of(workflows.begin(), workflows.end(), [&](const auto& w) { return w.name == workflow; })) continue;  // gone
    if (std::any_of(schedules.begin(), schedules.end(), [&](const auto& s) { return s.workflow == workflow; })) continue;
    std::vector<TimePoint> starts;
    std::set<std::string> who;
    for (const auto* a : list) {
      starts.push_back(a->time);
      who.insert(a->stream);
    }
    auto habit = daily_habit(starts, zone, o.min_occurrences);
    if (!habit) continue;
    Suggestion s;
    s.kind = "schedule";
    s.subject = "workflow:" + workflow;
    s.id = suggestion_id(s.kind, s.subject);
    s.title = fmt::format("Schedule {} daily at {:02}:{:02}", workflow, habit->second, habit->first);
    s.explanation =
        fmt::format("{} started {} by hand on {} days, always within 30 minutes of {:02}:{:02} ({}). A schedule would start it then.",
                    fmt::join(who, ", "), workflow, starts.size(), habit->second, habit->first, zone.name());
    s.evidence = bj::object{{"workflow", workflow},
                            {"manual_runs", starts.size()},
                            {"by", bj::value_from(std::vector<std::string>(who.begin(), who.end()))},
                            {"daily_at", fmt::format("{:02}:{:02}", habit->second, habit->first)}};
    s.change["create_schedule"] = schedule_json(workflow + "-daily", workflow, habit->first, habit->second, zone.name(),
                                                fmt::format("Suggested by the advisor ({}): started by hand daily", s.id));
    s.score = static_cast<double>(starts.size());
    out.push_back(std::move(s));
  }
}

// ---- how steps fared at their current settings --------------------------------------------------

struct StepStats {
  std::size_t ran = 0, succeeded = 0, failed = 0, timed_out = 0;
  std::size_t recovered = 0;  // failures followed by a success of the step in the next run
  std::size_t streak = 0, longest_streak = 0;
  std::vector<double> success_seconds;
  std::map<std::string, std::size_t> reasons;
  bool last_failed = false;
};

const bj::object* step_json(const bj::value& definition, std::string_view id) {
  if (!definition.is_object()) return nullptr;
  const auto* steps = definition.as_object().if_contains("steps");
  if (!steps || !steps->is_array()) return nullptr;
  for (const auto& s : steps->as_array())
    if (s.is_object())
      if (const auto* sid = s.as_object().if_contains("id"); sid && sid->is_string() && sid->as_string() == id) return &s.as_object();
  return nullptr;
}

// Settings that decide whether a step's numbers are comparable: everything but its name.
bool same_settings(const bj::object& a, const bj::object& b) {
  bj::object x = a, y = b;
  x.erase("name");
  y.erase("name");
  return x == y;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

// A round duration at least `seconds`: whole seconds under a minute, whole minutes under an hour.
std::string round_up(double seconds) {
  if (seconds <= 60) return fmt::format("{}s", std::max<long>(1, static_cast<long>(std::ceil(seconds))));
  if (seconds <= 3600) return fmt::format("{}m", static_cast<long>(std::ceil(seconds / 60)));
  return fmt::format("{}h", static_cast<long>(std::ceil(seconds / 3600)));
}

std::string top_reason(const StepStats& s) {
  std::string best;
  std::size_t n = 0;
  for (const auto& [r, c] : s.reasons)
    if (c > n) best = r, n = c;
  return best;
}

Result<void> reliability_suggestions(st::Store& store, std::span<const wf::WorkflowDefinition> workflows, TimePoint now,
                                     const AdvisorOptions& o, std::vector<Suggestion>& out) {
  for (const auto& w : workflows) {
    const bj::value current = json::parse(wf::to_json(w), "definition").value();
    st::RunQuery q;
    q.workflow = w.name;
    q.since = now - o.window;
    q.limit = o.max_records;
    q.newest_first = true;
    auto runs = store.list_runs(q);
    if (!runs) return runs.error();
    std::reverse(runs->begin(), runs->end());
    std::map<std::string, StepStats> stats;
    // Definition text -> the ids of its steps whose settings are the current ones: runs share few
    // definitions, so each is compared once, not once per run and step.
    std::map<std::string, std::set<std::string>> same_as_now;
    for (const auto& run : *runs) {
      if (!st::is_final(run.state)) continue;
      auto it = same_as_now.find(run.definition);
      if (it == same_as_now.end()) {
        std::set<std::string> ids;
        if (auto then = json::parse(run.definition, "run definition"))
          for (const auto& def : w.steps)
            if (const auto* a = step_json(*then, def.id), *b = step_json(current, def.id); a && b && same_settings(*a, *b))
              ids.insert(def.id);
        it = same_as_now.emplace(run.definition, std::move(ids)).first;
      }
      auto steps = store.run_steps(run.id);
      if (!steps) return steps.error();
      for (const auto& step : *steps) {
        if (!it->second.contains(step.step)) continue;
        if (step.state == st::RunState::skipped || step.state == st::RunState::queued || step.state == st::RunState::running ||
            step.state == st::RunState::cancelled || step.state == st::RunState::interrupted)
          continue;
        auto& s = stats[step.step];
        ++s.ran;
        if (step.state == st::RunState::succeeded) {
          ++s.succeeded;
          if (s.last_failed) ++s.recovered;
          s.last_failed = false;
          s.streak = 0;
          s.success_seconds.push_back(std::chrono::duration<double>(step.ended - step.started).count());
          continue;
        }
        (step.state == st::RunState::timed_out ? s.timed_out : s.failed) += 1;
        s.last_failed = true;
        s.longest_streak = std::max(s.longest_streak, ++s.streak);
        ++s.reasons[step.reason.substr(0, 200)];
      }
    }
    for (const auto& [id, s] : stats) {
      if (s.ran < o.min_runs) continue;
      const auto* def = w.step(id);
      if (!def) continue;
      const std::string subject = fmt::format("workflow:{}/step:{}", w.name, id);
      bj::object evidence{{"workflow", w.name},
                          {"step", id},
                          {"runs", s.ran},
                          {"succeeded", s.succeeded},
                          {"failed", s.failed},
                          {"timed_out", s.timed_out},
                          {"recovered_next_run", s.recovered},
                          {"longest_failure_streak", s.longest_streak},
                          {"top_reason", top_reason(s)}};
      if (!s.success_seconds.empty()) {
        evidence["success_p50_seconds"] = percentile(s.success_seconds, 0.5);
        evidence["success_p95_seconds"] = percentile(s.success_seconds, 0.95);
      }
      // One finding about this step: its evidence, and the patch that applies it (none for advice).
      auto add = [&](std::string kind, std::string title, std::string explanation, std::optional<bj::object> set, double rate) {
        Suggestion sg;
        sg.kind = std::move(kind);
        sg.subject = subject;
        sg.id = suggestion_id(sg.kind, sg.subject);
        sg.title = std::move(title);
        sg.explanation = std::move(explanation);
        sg.evidence = evidence;
        if (set) sg.change["patch_step"] = bj::object{{"workflow", w.name}, {"step", id}, {"set", std::move(*set)}};
        sg.score = 10.0 * rate * static_cast<double>(s.ran);
        out.push_back(std::move(sg));
      };
      const double timeout_rate = share(s.timed_out, s.ran);
      if (timeout_rate >= o.timeout_rate && !s.success_seconds.empty()) {
        const double p95 = percentile(s.success_seconds, 0.95);
        const double now_s = def->timeout ? std::chrono::duration<double>(*def->timeout).count() : 0.0;
        const std::string proposed = round_up(std::max(2.0 * p95, 1.5 * now_s));
        add("timeout", fmt::format("Raise the timeout of {}/{} to {}", w.name, id, proposed),
            fmt::format("Step {} of {} timed out in {} of its {} runs at its current settings ({}), while its successes took {:.1f} s at "
                        "the 95th percentile. A timeout of {} (twice that, and at least half again the current {}) lets slow successes "
                        "finish.",
                        id, w.name, s.timed_out, s.ran, percent(timeout_rate), p95, proposed,
                        def->timeout ? format_duration(std::chrono::duration_cast<Millis>(*def->timeout)) : std::string("none")),
            bj::object{{"timeout", proposed}}, timeout_rate);
      }
      const double failure_rate = share(s.failed, s.ran);
      if (failure_rate < o.failure_rate) continue;
      if (s.longest_streak >= o.breaker_streak) {
        if (def->breaker.empty()) {
          std::string name = w.name + "." + id;  // a breaker name holds at most 100 characters
          if (name.size() > 100) name = name.substr(0, 80) + fmt::format(".{:016x}", detail::fnv1a(name));
          add("breaker", fmt::format("Put {}/{} behind a circuit breaker", w.name, id),
              fmt::format("Step {} of {} failed {} times in a row (of {} failures in {} runs; most often: \"{}\"). Failures that come "
                          "in long runs mean what it calls is down, and retrying only adds load: a circuit breaker \"{}\" around the "
                          "step makes its attempts fail at once while it is open (after 5 failures in a row, for 60 s, unless the host "
                          "configures it otherwise), and lets a probe through to see whether it recovered.",
                          id, w.name, s.longest_streak, s.failed, s.ran, top_reason(s), name),
              bj::object{{"breaker", name}}, failure_rate);
        }
        continue;  // retrying a dependency that is down only adds load
      }
      if (def->retry && def->retry->max_attempts > 1) continue;
      if (2 * s.recovered < s.failed) continue;  // failures that persist: retries would not help
      add("retry", fmt::format("Retry {}/{} up to 3 times", w.name, id),
          fmt::format("Step {} of {} failed in {} of its {} runs ({}) with no retry, and {} of those {} failures were followed by a "
                      "success in the next run (most often: \"{}\"). Failures that go away by themselves are what retries are for: 3 "
                      "attempts with exponential backoff from 1 s.",
                      id, w.name, s.failed, s.ran, percent(failure_rate), s.recovered, s.failed, top_reason(s)),
          bj::object{{"retry", bj::object{{"max_attempts", 3}, {"backoff", "exponential"}, {"initial_delay", "1s"}}}}, failure_rate);
    }
  }
  return {};
}

}  // namespace

Result<std::vector<Suggestion>> suggest(st::Store& store, std::span<const wf::WorkflowDefinition> workflows,
                                        std::span<const wf::ScheduleDefinition> schedules, TimePoint now, const AdvisorOptions& options) {
  auto zone = TimeZone::locate(options.time_zone);
  if (!zone) return zone.error();
  if (options.min_occurrences < 2) return fail(errc::invalid_argument, "advisor: min_occurrences must be 2 or more");
  if (options.max_sequence < 2) return fail(errc::invalid_argument, "advisor: max_sequence must be 2 or more");
  auto acts = read_acts(store, now, options);
  if (!acts) return acts.error();
  std::vector<Suggestion> out;
  automate_suggestions(*acts, workflows, options, *zone, out);
  schedule_suggestions(*acts, workflows, schedules, options, *zone, out);
  if (auto r = reliability_suggestions(store, workflows, now, options, out); !r) return r.error();
  std::stable_sort(out.begin(), out.end(),
                   [](const Suggestion& a, const Suggestion& b) { return a.score > b.score || (a.score == b.score && a.id < b.id); });
  return out;
}

Result<Applied> apply(const Suggestion& s, std::span<const wf::WorkflowDefinition> workflows,
                      std::span<const wf::ScheduleDefinition> schedules, const std::string& dir,
                      const std::map<std::string, std::string>& sources) {
  if (!s.applicable())
    return fail(errc::invalid_argument, fmt::format("suggestion {} ({}) is advice and changes nothing here: {}", s.id, s.kind, s.title));
  if (dir.empty()) return fail(errc::config, "no workflows_dir to write the change into: set workflows_dir in the configuration");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return fail(errc::io, fmt::format("cannot create {}: {}", dir, ec.message()));
  Applied a;
  std::vector<std::pair<std::string, std::string>> writes;  // everything is checked before anything is written
  std::vector<std::string> done;
  auto known = [&](std::string_view name) {
    return std::find_if(workflows.begin(), workflows.end(), [&](const auto& w) { return w.name == name; });
  };
  if (const auto* c = s.change.if_contains("create_workflow")) {
    auto def = wf::parse_workflow(json::dump(*c), s.id);
    if (!def) return def.error();
    const fs::path file = fs::path(dir) / (def->name + ".json");
    if (known(def->name) != workflows.end() || fs::exists(file, ec))
      return fail(errc::already_exists,
                  fmt::format("workflow {} exists already ({}): suggestion {} was applied before", def->name, file.string(), s.id));
    writes.emplace_back(file.string(), json::pretty(*c) + "\n");
    done.push_back(fmt::format("created workflow {} in {}", def->name, file.string()));
    a.workflow = std::move(*def);
  }
  if (const auto* p = s.change.if_contains("patch_step")) {
    const auto& o = p->as_object();
    const std::string name(o.at("workflow").as_string()), step(o.at("step").as_string());
    const auto it = known(name);
    if (it == workflows.end())
      return fail(errc::not_found, fmt::format("no workflow named {} any more: suggestion {} no longer applies", name, s.id));
    const auto source = sources.find(name);
    std::string file = source == sources.end() ? std::string() : source->second;
    bj::value base;
    if (file.empty()) {  // a built-in: a file of the same name takes its place
      file = (fs::path(dir) / (name + ".json")).string();
      if (fs::exists(file, ec))
        return fail(errc::already_exists, fmt::format("{} exists but does not hold workflow {}: not overwritten", file, name));
      base = json::parse(wf::to_json(*it), name).value();
    } else {
      auto text = read_file(file);
      if (!text) return text.error();
      auto v = json::parse(*text, file);
      if (!v) return v.error();
      base = std::move(*v);
    }
    bj::object* target = nullptr;
    if (auto* steps = base.as_object().if_contains("steps"); steps && steps->is_array())
      for (auto& e : steps->as_array())
        if (e.is_object() && e.as_object().if_contains("id") && e.as_object().at("id") == bj::value(step)) target = &e.as_object();
    if (!target)
      return fail(errc::not_found, fmt::format("workflow {} has no step {} any more: suggestion {} no longer applies", name, step, s.id));
    for (const auto& [k, v] : o.at("set").as_object()) (*target)[k] = v;
    auto def = wf::parse_workflow(json::dump(base), file);
    if (!def) return def.error();
    writes.emplace_back(file, json::pretty(base) + "\n");
    done.push_back(fmt::format("changed step {} of workflow {} in {} ({})", step, name, file, json::dump(o.at("set"))));
    a.workflow = std::move(*def);
  }
  if (const auto* c = s.change.if_contains("create_schedule")) {
    auto def = wf::parse_schedule(*c, "$");
    if (!def) return def.error();
    if (known(def->workflow) == workflows.end() && !(a.workflow && a.workflow->name == def->workflow))
      return fail(errc::not_found, fmt::format("schedule {} would start workflow {}, which does not exist: suggestion {} no longer applies",
                                               def->name, def->workflow, s.id));
    if (std::any_of(schedules.begin(), schedules.end(), [&](const auto& x) { return x.name == def->name; }))
      return fail(errc::already_exists,
                  fmt::format("a schedule named {} exists already: suggestion {} was applied before", def->name, s.id));
    const fs::path file = fs::path(dir) / kSchedulesFile;
    bj::value doc = bj::object{{"schedules", bj::array{}}};
    if (fs::exists(file, ec)) {
      auto text = read_file(file.string());
      if (!text) return text.error();
      auto v = json::parse(*text, file.string());
      if (!v) return v.error();
      doc = std::move(*v);
    }
    bj::array* list = doc.is_array() ? &doc.as_array() : nullptr;
    if (!list && doc.is_object())
      if (auto* l = doc.as_object().if_contains("schedules"); l && l->is_array()) list = &l->as_array();
    if (!list) return fail(errc::invalid_argument, fmt::format("{}: expected {{\"schedules\": [...]}} or an array", file.string()));
    for (const auto& e : *list)
      if (e.is_object() && e.as_object().if_contains("name") && e.as_object().at("name") == bj::value(def->name))
        return fail(errc::already_exists,
                    fmt::format("{} has a schedule named {} already: suggestion {} was applied before", file.string(), def->name, s.id));
    list->push_back(*c);
    writes.emplace_back(file.string(), json::pretty(doc) + "\n");
    done.push_back(fmt::format("added schedule {} ({}) to {}", def->name, def->trigger_text(), file.string()));
    a.schedule = std::move(*def);
  }
  // What each file held before (nullopt: it did not exist), so a failed write undoes the others.
  std::vector<std::optional<std::string>> before;
  for (const auto& [file, text] : writes) {
    std::optional<std::string> old;
    if (fs::exists(file, ec)) {
      auto t = read_file(file);
      if (!t) return t.error();
      old = std::move(*t);
    }
    before.push_back(std::move(old));
  }
  for (std::size_t i = 0; i < writes.size(); ++i) {
    if (auto w = write_file_atomically(writes[i].first, writes[i].second); !w) {
      std::vector<std::string> stuck;
      for (std::size_t k = 0; k < i; ++k) {
        const auto& file = writes[k].first;
        if (before[k] ? !write_file_atomically(file, *before[k]) : !fs::remove(file, ec)) stuck.push_back(file);
      }
      return with_context(w.error(), stuck.empty() ? fmt::format("suggestion {}: nothing was changed", s.id)
                                                   : fmt::format("suggestion {}: could not undo {}", s.id, fmt::join(stuck, ", ")));
    }
    a.files.push_back(writes[i].first);
  }
  a.summary = fmt::format("{}", fmt::join(done, "; "));
  return a;
}

bj::object to_json(const Suggestion& s) {
  return bj::object{{"id", s.id},
                    {"kind", s.kind},
                    {"subject", s.subject},
                    {"title", s.title},
                    {"explanation", s.explanation},
                    {"evidence", s.evidence},
                    {"applicable", s.applicable()},
                    {"change", s.change.empty() ? bj::value() : bj::value(s.change)},
                    {"score", s.score}};
}

bj::object to_json(const Insight& i) { return bj::object{{"kind", i.kind}, {"title", i.title}, {"detail", i.detail}}; }

}  // namespace automation::intelligence
