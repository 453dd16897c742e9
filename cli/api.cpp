// The HTTP API's route table: one clean set of routes, the seed documents' paths as aliases of them,
// and the command API. Handlers call the same library operations and shared helpers as the commands.
#include "daemon.hpp"
#include "registry_support.hpp"

#include <automation/core/json.hpp>
#include <automation/core/time.hpp>
#include <automation/intelligence/timeline.hpp>
#include <automation/resilience/breaker_registry.hpp>
#include <automation/resilience/task_history.hpp>
#include <automation/runtime/prometheus.hpp>
#include <automation/version.hpp>

#include "dashboard_assets.hpp"
#include "detail/json_fields.hpp"
#include "detail/names.hpp"
#include "openapi_json.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <charconv>
#include <set>

namespace autoctl {

namespace wf = automation::workflow;
namespace st = automation::storage;
namespace rs = automation::resilience;
namespace rt = automation::runtime;
namespace bj = boost::json;
using automation::errc;
using automation::Result;
using automation::TimePoint;
using rt::HttpRequest;
using rt::HttpResponse;
using rt::Principal;
using rt::Role;

namespace {

HttpResponse ok(bj::value v, int status = 200) { return HttpResponse::json(status, v); }
HttpResponse err(const automation::Error& e) { return HttpResponse::error(e); }
automation::Error bad(std::string message) { return automation::Error(errc::invalid_argument, std::move(message)); }

/// The request's body as a JSON object ({} when empty).
Result<bj::object> body_object(const HttpRequest& req) {
  if (req.body.find_first_not_of(" \t\r\n") == std::string::npos) return bj::object{};
  auto v = automation::json::parse(req.body, "the request body");
  if (!v) return bad(v.error().message);
  if (!v->is_object()) return bad(fmt::format("the request body must be a JSON object, not {}", automation::json::type_name(*v)));
  return std::move(v->as_object());
}

/// A whole number from lo to hi, all of `text`.
std::optional<std::int64_t> whole_number(std::string_view text, std::int64_t lo, std::int64_t hi) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || p != text.data() + text.size() || v < lo || v > hi) return std::nullopt;
  return v;
}

Result<std::int64_t> integer_param(const HttpRequest& req, std::string_view key, std::int64_t fallback, std::int64_t lo, std::int64_t hi) {
  auto it = req.query.find(std::string(key));
  if (it == req.query.end() || it->second.empty()) return fallback;
  if (auto v = whole_number(it->second, lo, hi)) return *v;
  return bad(fmt::format("query parameter \"{}\": \"{}\" is not a whole number from {} to {}", key, it->second, lo, hi));
}

/// The route's :id as a run id.
Result<std::int64_t> run_id_of(const HttpRequest& req) {
  const auto& text = req.params.at("id");
  if (auto v = whole_number(text, 1, INT64_MAX)) return *v;
  return bad(fmt::format("\"{}\" is not a run id", text));
}

/// The body's non-empty "reason", else `fallback`.
std::string reason_or(const bj::object& body, std::string fallback) {
  if (auto* r = body.if_contains("reason"); r && r->is_string() && !r->as_string().empty()) return std::string(r->as_string());
  return fallback;
}

std::optional<std::string> text_param(const HttpRequest& req, std::string_view key) {
  auto it = req.query.find(std::string(key));
  if (it == req.query.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

Result<std::optional<TimePoint>> time_param(const HttpRequest& req, std::string_view key) {
  auto t = text_param(req, key);
  if (!t) return std::optional<TimePoint>();
  auto r = Context::time_option(*t, fmt::format("query parameter \"{}\"", key));
  if (!r) return r.error();
  return *r;
}

/// Pagination: `limit` (default 50, at most 1000) items from `offset` (default 0), newest first.
struct Page {
  std::size_t limit = 50, offset = 0;
  std::size_t fetch() const { return offset + limit + 1; }  ///< what to ask the store for: one more tells whether a next page exists
};

Result<Page> page_of(const HttpRequest& req) {
  auto limit = integer_param(req, "limit", 50, 1, 1000);
  if (!limit) return limit.error();
  // The stores have no offset: a page is read from the newest, so offsets stay small.
  auto offset = integer_param(req, "offset", 0, 0, 10'000);
  if (!offset) return offset.error();
  return Page{static_cast<std::size_t>(*limit), static_cast<std::size_t>(*offset)};
}

/// {"items": [...], "limit", "offset", "next_offset": N or null} from what the store returned for page.fetch().
template <class T, class F>
bj::object paged(const std::vector<T>& all, const Page& page, F&& to_json) {
  bj::array items;
  for (std::size_t i = page.offset; i < all.size() && i < page.offset + page.limit; ++i) items.push_back(to_json(all[i]));
  const bool more = all.size() > page.offset + page.limit;
  return {{"items", std::move(items)},
          {"limit", page.limit},
          {"offset", page.offset},
          {"next_offset", more ? bj::value(page.offset + page.limit) : bj::value(nullptr)}};
}

/// A paginated list: `q` gets the request's `since`, and a limit for the page; `fetch` reads it and
/// `to_json` writes each item.
template <class Query, class Fetch, class ToJson>
HttpResponse listing(const HttpRequest& req, Query q, Fetch&& fetch, ToJson&& to_json) {
  auto page = page_of(req);
  if (!page) return err(page.error());
  auto since = time_param(req, "since");
  if (!since) return err(since.error());
  q.since = *since;
  q.limit = page->fetch();
  auto list = fetch(q);
  if (!list) return err(list.error());
  return ok(paged(*list, *page, to_json));
}

/// A body's "params" object (values as strings: numbers and booleans are written out).
Result<std::map<std::string, std::string>> params_of(const bj::object& body, std::string_view key) {
  std::map<std::string, std::string> out;
  auto* v = body.if_contains(key);
  if (!v || v->is_null()) return out;
  if (!v->is_object()) return bad(fmt::format("\"{}\" must be an object, not {}", key, automation::json::type_name(*v)));
  for (const auto& [k, x] : v->as_object()) {
    if (x.is_string())
      out.emplace(std::string(k), std::string(x.as_string()));
    else if (x.is_number() || x.is_bool())
      out.emplace(std::string(k), automation::json::dump(x));
    else
      return bad(
          fmt::format("\"{}.{}\" must be a string, number or boolean, not {}", key, std::string_view(k), automation::json::type_name(x)));
  }
  return out;
}

class Api {
 public:
  explicit Api(Services& s) : s_(s), access_(*s.access) {}

  /// The table; every handler holds `self`, so the Api lives as long as the router.
  rt::Router routes(const std::shared_ptr<Api>& self);

 private:
  using Guarded = rt::GuardedHandler;
  void add(rt::Router& router, std::string method, std::vector<std::string> paths, Role role, std::string action, std::string resource,
           Guarded handler) {
    auto keep = self_.lock();
    Guarded held = [keep, handler = std::move(handler)](const HttpRequest& q, const Principal& p) { return handler(q, p); };
    for (auto& p : paths) {
      described_.push_back(fmt::format("{} {} {}", method, p, rt::to_string(role)));
      auto r = router.add(method, p, rt::guard(access_, role, action, resource, held));
      if (!r) throw automation::Exception(r.error());
    }
  }
  std::weak_ptr<Api> self_;

 public:
  std::vector<std::string> described_;  ///< "METHOD pattern role", as added

 private:
  // ---- handlers ----
  HttpResponse status(const HttpRequest&, const Principal&) { return ok(s_.status()); }
  HttpResponse stats(const HttpRequest&, const Principal&);
  Result<bj::object> compute_stats();
  HttpResponse workflows(const HttpRequest&, const Principal&);
  HttpResponse workflow(const HttpRequest&, const Principal&);
  HttpResponse start_run(const HttpRequest& req, const Principal& who, std::string workflow, std::map<std::string, std::string> params,
                         const bj::object& body);
  HttpResponse run_workflow(const HttpRequest&, const Principal&);
  HttpResponse runs(const HttpRequest&, const Principal&, std::optional<std::string> workflow);
  HttpResponse run(const HttpRequest&, const Principal&);
  HttpResponse cancel_run(const HttpRequest&, const Principal&);
  HttpResponse schedules(const HttpRequest&, const Principal&);
  HttpResponse pause_schedule(const HttpRequest&, const Principal&, bool pause);
  HttpResponse breakers(const HttpRequest&, const Principal&);
  HttpResponse breaker(const HttpRequest&, const Principal&);
  HttpResponse set_breaker_state(const HttpRequest&, const Principal&, rs::BreakerState to);
  HttpResponse tasks(const HttpRequest&, const Principal&);
  HttpResponse task_stats(const HttpRequest&, const Principal&);
  HttpResponse scaling(const HttpRequest&, const Principal&);
  HttpResponse scaling_history(const HttpRequest&, const Principal&);
  HttpResponse scale(const HttpRequest&, const Principal&, std::string resource, const bj::object& body);
  HttpResponse health(const HttpRequest&, const Principal&);
  HttpResponse health_history(const HttpRequest&, const Principal&);
  HttpResponse pause_target(const HttpRequest&, const Principal&, bool pause);
  HttpResponse audit(const HttpRequest&, const Principal&, bool security);
  HttpResponse alerts(const HttpRequest&, const Principal&);
  HttpResponse tokens(const HttpRequest&, const Principal&);
  HttpResponse create_token(const HttpRequest&, const Principal&);
  HttpResponse revoke_token(const HttpRequest&, const Principal&);
  HttpResponse command(const HttpRequest&, const Principal&);
  HttpResponse timeline(const HttpRequest&, const Principal&);
  HttpResponse register_node(const HttpRequest&, const Principal&);
  HttpResponse heartbeat(const HttpRequest&, const Principal&);
  HttpResponse remove_node(const HttpRequest&, const Principal&);
  HttpResponse scan_history(const HttpRequest&, const Principal&);
  HttpResponse suggestions(const HttpRequest&, const Principal&);
  HttpResponse suggestion(const HttpRequest&, const Principal&);
  HttpResponse apply_suggestion(const HttpRequest&, const Principal&);
  bj::object snapshot();
  Definitions definitions() {
    const auto [catalog, schedules] = s_.definitions();
    return definitions_of(*catalog, *schedules);
  }

  Services& s_;
  rt::AccessControl& access_;
  std::mutex stats_mu_;
  std::chrono::steady_clock::time_point stats_at_{};
  std::string stats_body_;
};

// ---- stats -------------------------------------------------------------------------------------

Result<bj::object> Api::compute_stats() {
  auto& store = *s_.store;
  const auto now = s_.clock->now();
  bj::object o{{"as_of", automation::format_timestamp(now)}, {"version", automation::version_string}};
  // Workflow runs of the last 24 hours by state.
  st::RunQuery rq;
  rq.since = now - std::chrono::hours(24);
  rq.limit = 0;
  bj::object by_state;
  std::size_t total = 0;
  auto runs = store.list_runs(rq);
  if (!runs) return runs.error();
  std::map<std::string, std::int64_t> n;
  for (const auto& r : *runs) ++n[std::string(st::to_string(r.state))];
  for (const auto& [k, v] : n) by_state[k] = v;
  total = runs->size();
  const auto [catalog, schedules] = s_.definitions();
  o["workflows"] = bj::object{{"defined", catalog->entries.size()},
                              {"schedules", schedules->size()},
                              {"active_runs", s_.workflows->active()},
                              {"runs_24h", total},
                              {"runs_24h_by_state", std::move(by_state)}};
  // Task history of the last 24 hours.
  st::TaskStatsQuery tq;
  tq.since = now - std::chrono::hours(24);
  auto groups = store.task_stats(tq);
  if (!groups) return groups.error();
  std::uint64_t count = 0, ok_count = 0;
  for (const auto& g : *groups) {
    count += g.count;
    ok_count += g.successes;
  }
  o["tasks"] = bj::object{{"runs_24h", count}, {"success_rate", count ? bj::value(double(ok_count) / double(count)) : bj::value(nullptr)}};
  bj::object breakers;
  auto list = store.list_breakers();
  if (!list) return list.error();
  for (const auto& b : *list) breakers[b.state] = (breakers.contains(b.state) ? breakers[b.state].as_int64() : 0) + 1;
  o["circuit_breakers"] = std::move(breakers);
  bj::object health;
  for (const auto& t : s_.healer->status()) health[t.state] = (health.contains(t.state) ? health[t.state].as_int64() : 0) + 1;
  o["health"] = std::move(health);
  st::AlertQuery aq;
  aq.state = "firing";
  aq.limit = 0;
  auto firing = store.list_alerts(aq);
  if (!firing) return firing.error();
  o["alerts_firing"] = firing->size();
  if (auto sc = s_.scaler()) o["scaled_resources"] = sc->resources().size();
  return o;
}

HttpResponse Api::stats(const HttpRequest&, const Principal&) {
  // Computed at most once a second: a dashboard or a load balancer polling it costs the store nothing more.
  std::lock_guard lock(stats_mu_);
  const auto now = std::chrono::steady_clock::now();
  if (stats_body_.empty() || now - stats_at_ >= std::chrono::seconds(1)) {
    auto doc = compute_stats();
    if (!doc) return HttpResponse::error(503, "unavailable", fmt::format("the statistics could not be read: {}", doc.error().message));
    stats_body_ = automation::json::dump(*doc);
    stats_at_ = now;
  }
  HttpResponse r;
  r.body = stats_body_;
  return r;
}

// ---- workflows and runs ------------------------------------------------------------------------

HttpResponse Api::workflows(const HttpRequest&, const Principal&) {
  bj::array items;
  const auto catalog = s_.definitions().first;  // held while its entries are read
  for (const auto& e : catalog->entries) {
    bj::object params;
    for (const auto& p : e.definition.params) params[p.name] = p.default_value ? bj::value(*p.default_value) : bj::value(nullptr);
    items.push_back(bj::object{{"name", e.definition.name},
                               {"description", e.definition.description},
                               {"source", e.source},
                               {"steps", e.definition.steps.size()},
                               {"params", std::move(params)}});
  }
  bj::array problems;
  for (const auto& p : catalog->problems) problems.push_back(bj::value(p));
  return ok(bj::object{{"items", std::move(items)}, {"problems", std::move(problems)}});
}

HttpResponse Api::workflow(const HttpRequest& req, const Principal&) {
  const auto& name = req.params.at("name");
  const auto catalog = s_.definitions().first;  // held while its entries are read
  for (const auto& e : catalog->entries)
    if (e.definition.name == name) {
      auto def = automation::json::parse(wf::to_json(e.definition));
      return ok(bj::object{{"name", name}, {"source", e.source}, {"definition", def ? *def : bj::value(nullptr)}});
    }
  return err(automation::Error(errc::not_found, fmt::format("no workflow named \"{}\"", name)));
}

HttpResponse Api::start_run(const HttpRequest& req, const Principal& who, std::string workflow, std::map<std::string, std::string> params,
                            const bj::object& body) {
  std::chrono::milliseconds wait{0};
  if (auto* w = body.if_contains("wait"); w && !w->is_null()) {
    auto f = automation::detail::Fields::of(body, "the request body");
    auto d = f->duration("wait");
    if (!d) return err(d.error());
    wait = std::chrono::duration_cast<std::chrono::milliseconds>(**d);
    if (wait > std::chrono::minutes(5)) return err(bad("\"wait\" is at most 5m"));
  }
  if (!s_.workflows->accepting())
    return HttpResponse::error(503, "unavailable", "the daemon is stopping: it starts no new workflow runs (try again once it is back)");
  const auto correlation = req.correlation_id;
  const auto trigger = "api: " + who.actor();
  auto id = s_.workflows->call([&](wf::WorkflowEngine& e, wf::Scheduler&) {
    wf::StartOptions so;
    so.params = params;
    so.trigger = trigger;
    so.correlation_id = correlation;
    return e.start(workflow, so);
  });
  if (!id) return err(id.error());
  // A waiting request holds a loop thread: at most max_waiting wait at once, the others answer
  // 202 at once (the client polls the Location).
  bool waited = false;
  if (wait.count() > 0) {
    if (s_.waiting.fetch_add(1) < s_.max_waiting)
      waited = true;
    else
      wait = std::chrono::milliseconds(0);
    if (!waited) s_.waiting.fetch_sub(1);
  }
  auto run = s_.workflows->wait(*id, wait);
  if (waited) s_.waiting.fetch_sub(1);
  if (!run) return err(run.error());
  auto r = ok(bj::object{{"run", wf::to_json(*run)}}, st::is_final(run->state) ? 200 : 202);
  r.headers.emplace_back("Location", fmt::format("/api/v1/runs/{}", *id));
  if (!waited && wait.count() == 0 && body.contains("wait"))
    r.headers.emplace_back("X-Wait-Skipped", "too many requests are waiting for runs; poll the Location");
  return r;
}

HttpResponse Api::run_workflow(const HttpRequest& req, const Principal& who) {
  auto body = body_object(req);
  if (!body) return err(body.error());
  auto params = params_of(*body, "params");
  if (!params) return err(params.error());
  std::string name;
  if (auto it = req.params.find("name"); it != req.params.end()) {
    name = it->second;
  } else if (auto* w = body->if_contains("workflow"); w && w->is_string()) {
    name = std::string(w->as_string());
  } else {
    return err(bad("the request body needs \"workflow\": the workflow's name"));
  }
  return start_run(req, who, name, std::move(*params), *body);
}

HttpResponse Api::runs(const HttpRequest& req, const Principal&, std::optional<std::string> workflow) {
  st::RunQuery q;
  q.workflow = workflow ? workflow : text_param(req, "workflow");
  if (auto state = text_param(req, "state")) {
    auto s = st::parse_run_state(*state);
    if (!s) return err(bad(fmt::format("query parameter \"state\": {}", s.error().message)));
    q.states = {*s};
  }
  return listing(
      req, q, [&](const st::RunQuery& x) { return s_.store->list_runs(x); }, [](const st::RunRecord& r) { return wf::to_json(r); });
}

HttpResponse Api::run(const HttpRequest& req, const Principal&) {
  auto id = run_id_of(req);
  if (!id) return err(id.error());
  auto r = s_.store->get_run(*id);
  if (!r) return err(r.error());
  if (!*r) return err(automation::Error(errc::not_found, fmt::format("no workflow run {}", *id)));
  auto steps = s_.store->run_steps(*id);
  if (!steps) return err(steps.error());
  bj::array sa;
  for (const auto& s : *steps) sa.push_back(wf::to_json(s));
  auto o = wf::to_json(**r);
  o["steps"] = std::move(sa);
  return ok(o);
}

HttpResponse Api::cancel_run(const HttpRequest& req, const Principal& who) {
  auto id = run_id_of(req);
  if (!id) return err(id.error());
  auto body = body_object(req);
  if (!body) return err(body.error());
  const auto reason = reason_or(*body, "cancelled through the API by " + who.actor());
  if (auto c = s_.workflows->call([&](wf::WorkflowEngine& e, wf::Scheduler&) { return e.cancel(*id, reason); }); !c) return err(c.error());
  auto res = ok(bj::object{{"run_id", *id}, {"cancel_requested", true}, {"reason", reason}}, 202);
  res.audit_reason = reason;
  return res;
}

HttpResponse Api::schedules(const HttpRequest&, const Principal&) {
  auto stored = s_.store->list_schedules();
  if (!stored) return err(stored.error());
  bj::array items;
  const auto schedules = s_.definitions().second;
  for (const auto& e : *schedules) {
    auto o = wf::to_json(e.definition);
    o["source"] = e.source;
    o["trigger_text"] = e.definition.trigger_text();
    bool paused = e.definition.paused;
    for (const auto& r : *stored)
      if (r.name == e.definition.name) {
        paused = r.paused;
        o["reason"] = r.reason;
        o["last_fire"] = automation::json::time_or_null(r.last_fire);
        o["consecutive_failures"] = r.consecutive_failures;
      }
    o["state"] = paused ? "paused" : "active";
    if (!paused)
      if (auto t = wf::next_fire_time(e.definition, s_.clock->now())) o["next_fire"] = automation::format_timestamp(*t);
    items.push_back(std::move(o));
  }
  return ok(bj::object{{"items", std::move(items)}});
}

HttpResponse Api::pause_schedule(const HttpRequest& req, const Principal& who, bool pause) {
  auto body = body_object(req);
  if (!body) return err(body.error());
  const auto reason = reason_or(*body, fmt::format("{} through the API", pause ? "paused" : "resumed"));
  const auto name = req.params.at("name");
  auto r = s_.workflows->call([&](wf::WorkflowEngine&, wf::Scheduler& s) {
    return pause ? s.pause(name, reason, who.actor()) : s.resume(name, reason, who.actor());
  });
  if (!r) return err(r.error());
  auto res = ok(bj::object{{"schedule", name}, {"state", pause ? "paused" : "active"}, {"reason", reason}});
  res.audit_reason = reason;
  return res;
}

// ---- breakers ----------------------------------------------------------------------------------

HttpResponse Api::breakers(const HttpRequest&, const Principal&) {
  auto records = s_.store->list_breakers();
  if (!records) return err(records.error());
  bj::array items;
  for (const auto& r : *records) {
    auto s = rs::status_from_record(r);
    if (!s) return err(s.error());
    items.push_back(rs::to_json(*s));
  }
  return ok(bj::object{{"items", std::move(items)}});
}

HttpResponse Api::breaker(const HttpRequest& req, const Principal&) {
  const auto& name = req.params.at("name");
  auto r = s_.store->get_breaker(name);
  if (!r) return err(r.error());
  if (!*r) return err(automation::Error(errc::not_found, fmt::format("no circuit breaker named '{}' is stored", name)));
  auto s = rs::status_from_record(**r);
  if (!s) return err(s.error());
  return ok(rs::to_json(*s));
}

HttpResponse Api::set_breaker_state(const HttpRequest& req, const Principal& who, rs::BreakerState to) {
  auto body = body_object(req);
  if (!body) return err(body.error());
  const auto reason = reason_or(*body, "requested through the API");
  const auto& name = req.params.at("name");
  auto change = set_breaker(*s_.store, *s_.clock, name, to, reason, who.actor());
  if (!change) return err(change.error());
  auto res = ok(bj::object{{"name", name}, {"from", change->from}, {"to", change->to}, {"version", change->version}, {"reason", reason}});
  res.audit_reason = reason;
  return res;
}

// ---- task history ------------------------------------------------------------------------------

HttpResponse Api::tasks(const HttpRequest& req, const Principal&) {
  st::TaskQuery q;
  q.domain = text_param(req, "domain");
  q.action = text_param(req, "action");
  q.correlation_id = text_param(req, "correlation_id");
  if (auto outcome = text_param(req, "outcome")) {
    auto o = st::parse_task_outcome(*outcome);
    if (!o) return err(bad(fmt::format("query parameter \"outcome\": {}", o.error().message)));
    q.outcome = *o;
  }
  return listing(
      req, q, [&](const st::TaskQuery& x) { return s_.store->query_tasks(x); }, [](const st::TaskRecord& r) { return rs::to_json(r); });
}

HttpResponse Api::task_stats(const HttpRequest& req, const Principal&) {
  rs::TaskHistory history(*s_.store, *s_.clock);
  st::TaskStatsQuery q;
  auto since = time_param(req, "since");
  if (!since) return err(since.error());
  q.since = since->value_or(s_.clock->now() - std::chrono::hours(24));
  q.domain = text_param(req, "domain");
  q.action = text_param(req, "action");
  auto report = history.stats(q);
  if (!report) return err(report.error());
  return ok(rs::to_json(*report));
}

// ---- scaling -----------------------------------------------------------------------------------

HttpResponse Api::scaling(const HttpRequest&, const Principal&) {
  auto scaler = s_.scaler();
  bj::array items;
  if (scaler)
    for (const auto& name : scaler->resources()) {
      auto rep = scaler->report(name);
      if (!rep) return err(rep.error());
      items.push_back(scaling_report_json(*rep));
    }
  return ok(bj::object{{"items", std::move(items)}});
}

HttpResponse Api::scaling_history(const HttpRequest& req, const Principal&) {
  st::ScalingQuery q;
  q.resource = text_param(req, "resource");
  q.action = text_param(req, "action");
  q.outcome = text_param(req, "outcome");
  return listing(
      req, q, [&](const st::ScalingQuery& x) { return s_.store->list_scaling(x); }, scaling_record_json);
}

HttpResponse Api::scale(const HttpRequest&, const Principal& who, std::string resource, const bj::object& body) {
  auto f = automation::detail::Fields::of(body, "the request body");
  std::string action = "scale-up", reason;
  std::optional<int> by, to;
  auto read = [&]() -> Result<void> {
    TRY_ASSIGN(action, f->string("action"));
    TRY_ASSIGN(by, f->integer("by"));
    TRY_ASSIGN(to, f->integer("to"));
    TRY_ASSIGN(reason, f->string("reason"));
    (void)f->get("resource");
    return f->no_others();
  };
  if (auto r = read(); !r) return err(r.error());
  if (action != "scale-up" && action != "scale-down" && action != "restart")
    return err(bad(fmt::format("\"action\": \"{}\" is not scale-up, scale-down or restart", action)));
  if (by && to) return err(bad("give \"by\" or \"to\", not both"));
  if (by && *by < 1) return err(bad("\"by\" must be at least 1"));
  if (to && *to < 0) return err(bad("\"to\" cannot be negative"));
  if (action == "restart" && (by || to)) return err(bad("\"by\" and \"to\" do not go with restart"));
  auto scaler = s_.scaler();
  if (!scaler) return err(automation::Error(errc::unavailable, "the scaler is not running"));
  if (reason.empty()) reason = "requested through the API";
  Result<st::ScalingRecord> r = automation::fail(errc::internal, "no action");
  if (action == "restart")
    r = scaler->restart(resource, who.actor(), reason);
  else if (to)
    r = scaler->scale_to(resource, *to, who.actor(), reason);
  else
    r = scaler->scale_by(resource, (action == "scale-up" ? 1 : -1) * by.value_or(1), who.actor(), reason);
  if (!r) return err(r.error());
  auto o = scaling_record_json(*r);
  auto res = r->outcome == "failed"
                 ? HttpResponse::json(502, bj::object{{"error", {{"code", "unavailable"}, {"message", r->error}}}, {"record", o}})
                 : ok(o);
  res.audit_reason = fmt::format("{}: {}", reason, r->message);
  return res;
}

// ---- health ------------------------------------------------------------------------------------

HttpResponse Api::health(const HttpRequest&, const Principal&) {
  bj::array items;
  bool healthy = true;
  for (const auto& t : s_.healer->status()) {
    if (t.state != "healthy" && t.state != "unknown" && t.state != "paused") healthy = false;
    bj::object o{{"target", t.name},    {"state", t.state},
                 {"reason", t.reason},  {"since", automation::json::time_or_null(t.since)},
                 {"ready", t.ready},    {"consecutive_failures", t.consecutive_failures},
                 {"attempt", t.attempt}};
    if (t.last_probe) o["last_probe"] = bj::object{{"ok", t.last_probe->ok}, {"detail", t.last_probe->detail}};
    if (t.paused_until)
      o["paused_until"] =
          *t.paused_until == TimePoint::max() ? bj::value("resumed by hand") : bj::value(automation::format_timestamp(*t.paused_until));
    if (!t.error.empty()) o["error"] = t.error;
    items.push_back(std::move(o));
  }
  return ok(bj::object{{"healthy", healthy}, {"source", s_.healing->source}, {"items", std::move(items)}});
}

HttpResponse Api::health_history(const HttpRequest& req, const Principal&) {
  st::HealingQuery q;
  q.target = text_param(req, "target");
  q.kind = text_param(req, "kind");
  return listing(
      req, q, [&](const st::HealingQuery& x) { return s_.store->list_healing(x); }, healing_record_json);
}

HttpResponse Api::pause_target(const HttpRequest& req, const Principal& who, bool pause) {
  auto body = body_object(req);
  if (!body) return err(body.error());
  auto f = automation::detail::Fields::of(*body, "the request body");
  std::string reason = fmt::format("{} through the API", pause ? "paused" : "resumed");
  std::optional<automation::Duration> for_;
  auto read = [&]() -> Result<void> {
    TRY_ASSIGN(reason, f->string("reason"));
    if (pause) TRY_ASSIGN(for_, f->duration("for"));
    return f->no_others();
  };
  if (auto r = read(); !r) return err(r.error());
  const auto& target = req.params.at("target");
  std::optional<TimePoint> until;
  if (for_) until = s_.clock->now() + *for_;
  auto r = pause ? s_.healer->pause(target, until, who.actor(), reason) : s_.healer->resume(target, who.actor(), reason);
  if (!r) return err(r.error());
  auto res = ok(healing_record_json(*r));
  res.audit_reason = reason;
  return res;
}

// ---- audit, alerts, tokens ---------------------------------------------------------------------

HttpResponse Api::audit(const HttpRequest& req, const Principal&, bool security) {
  st::AuditQuery q;
  q.actor = text_param(req, "actor");
  q.resource = text_param(req, "resource");
  q.action = text_param(req, "action");
  if (auto outcome = text_param(req, "outcome")) {
    auto o = st::parse_audit_outcome(*outcome);
    if (!o) return err(bad(fmt::format("query parameter \"outcome\": {}", o.error().message)));
    q.outcome = *o;
  }
  // Security events: denied calls, failed authentications and flagged sources.
  if (security) q.outcome = st::AuditOutcome::denied;
  return listing(
      req, q, [&](const st::AuditQuery& x) { return s_.store->query_audit(x); }, audit_record_json);
}

HttpResponse Api::alerts(const HttpRequest& req, const Principal&) {
  st::AlertQuery q;
  q.state = text_param(req, "state");
  q.rule = text_param(req, "rule");
  return listing(
      req, q, [&](const st::AlertQuery& x) { return s_.store->list_alerts(x); }, alert_record_json);
}

HttpResponse Api::tokens(const HttpRequest& req, const Principal&) {
  const bool all = text_param(req, "revoked").value_or("false") == "true";
  auto list = s_.store->list_tokens(all);
  if (!list) return err(list.error());
  bj::array items;
  for (const auto& t : *list) items.push_back(token_record_json(t));
  return ok(bj::object{{"items", std::move(items)}});
}

HttpResponse Api::create_token(const HttpRequest& req, const Principal& who) {
  auto body = body_object(req);
  if (!body) return err(body.error());
  auto f = automation::detail::Fields::of(*body, "the request body");
  std::string name, role;
  std::optional<automation::Duration> expires_in;
  auto read = [&]() -> Result<void> {
    TRY_ASSIGN(name, f->string("name"));
    TRY_ASSIGN(role, f->string("role"));
    TRY_ASSIGN(expires_in, f->duration("expires_in"));
    return f->no_others();
  };
  if (auto r = read(); !r) return err(r.error());
  if (name.empty()) return err(bad("the request body needs \"name\": what the token is for"));
  auto parsed = rt::parse_role(role);
  if (!parsed) return err(bad(fmt::format("\"role\": {}", parsed.error().message)));
  std::optional<TimePoint> expires;
  if (expires_in) expires = s_.clock->now() + *expires_in;
  auto t = access_.create(name, *parsed, who.actor(), expires, {req.remote, req.correlation_id});
  if (!t) return err(t.error());
  auto o = token_record_json(t->record);
  o["token"] = t->token;
  return ok(o, 201);
}

HttpResponse Api::revoke_token(const HttpRequest& req, const Principal& who) {
  auto r = access_.revoke(req.params.at("id"), who.actor(), text_param(req, "reason").value_or("revoked through the API"),
                          {req.remote, req.correlation_id});
  if (!r) return err(r.error());
  return ok(token_record_json(*r));
}

// ---- intelligence ------------------------------------------------------------------------------

HttpResponse Api::timeline(const HttpRequest& req, const Principal&) {
  auto duration = [&](std::string_view key, automation::Duration fallback) -> Result<automation::Duration> {
    auto t = text_param(req, key);
    if (!t) return fallback;
    auto d = automation::parse_duration(*t);
    if (!d) return bad(fmt::format("query parameter \"{}\": {}", key, d.error().message));
    return automation::Duration(*d);
  };
  auto before = duration("before", std::chrono::minutes(30));
  if (!before) return err(before.error());
  auto after = duration("after", std::chrono::minutes(10));
  if (!after) return err(after.error());
  auto limit = integer_param(req, "limit", 500, 1, 10'000);
  if (!limit) return err(limit.error());
  automation::intelligence::TimelineOptions options;
  options.limit = static_cast<std::size_t>(*limit);
  const auto now = s_.clock->now();
  Result<automation::intelligence::Timeline> t = automation::fail(errc::internal, "no timeline");
  const bool run = text_param(req, "run").has_value(), alert = text_param(req, "alert").has_value();
  if (run && alert) return err(bad("give run or alert, not both"));
  if ((run || alert) && (text_param(req, "since") || text_param(req, "until")))
    return err(bad("since and until go with a plain range; around a run or an alert use before and after"));
  if (run) {
    auto id = integer_param(req, "run", 0, 1, INT64_MAX);
    if (!id) return err(id.error());
    t = automation::intelligence::timeline_for_run(*s_.store, *id, now, *before, *after, options);
  } else if (alert) {
    auto id = integer_param(req, "alert", 0, 1, INT64_MAX);
    if (!id) return err(id.error());
    t = automation::intelligence::timeline_for_alert(*s_.store, *id, now, *before, *after, options);
  } else {
    auto since = time_param(req, "since");
    if (!since) return err(since.error());
    auto until = time_param(req, "until");
    if (!until) return err(until.error());
    if (!*since) return err(bad("give run=ID, alert=ID, or since (and until) for a range"));
    // One request reads at most a month: a wider review is several.
    if (until->value_or(now) - **since > std::chrono::hours(24 * 31)) return err(bad("a timeline's range is at most 31 days"));
    t = automation::intelligence::timeline(*s_.store, **since, until->value_or(now), options);
  }
  if (!t) return err(t.error());
  return ok(automation::intelligence::to_json(*t));
}

// ---- the command API ---------------------------------------------------------------------------

HttpResponse Api::command(const HttpRequest& req, const Principal& who) {
  auto body = body_object(req);
  if (!body) return err(body.error());
  auto f = automation::detail::Fields::of(*body, "the command");
  std::string module, action;
  auto read = [&]() -> Result<void> {
    TRY_ASSIGN(module, f->string("module"));
    TRY_ASSIGN(action, f->string("action"));
    (void)f->get("params");
    return f->no_others();
  };
  if (auto r = read(); !r) return err(r.error());
  bj::object params;
  if (auto* p = body->if_contains("params"); p && !p->is_null()) {
    if (!p->is_object()) return err(bad(fmt::format("the command: \"params\" must be an object, not {}", automation::json::type_name(*p))));
    params = p->as_object();
  }
  if (action == "get-stats") return stats(req, who);
  const rt::CallContext call{req.remote, req.correlation_id};
  // A mutating command is audited as the operation it is, with its outcome, like its route.
  auto audited = [&](const std::string& op, const std::string& resource, HttpResponse r) {
    const auto outcome = rt::audit_outcome(r.status);
    access_.audit(&who, op, resource, outcome, fmt::format("command {}: answered {}", action, r.status),
                  automation::json::dump(bj::object{{"method", req.method}, {"path", req.path}, {"command", action}, {"status", r.status}}),
                  call);
    return r;
  };
  auto denied = [&]() -> std::optional<HttpResponse> {
    if (who.role >= Role::operator_) return std::nullopt;
    return HttpResponse::error(403, "permission_denied",
                               fmt::format("token \"{}\" has role {}; {} needs operator", who.name, rt::to_string(who.role), action));
  };
  auto start = [&](std::string workflow, bj::object p) {
    const auto resource = "workflow:" + workflow;
    if (auto d = denied()) return audited("workflow.run", resource, *d);
    auto strings = params_of(bj::object{{"params", p}}, "params");
    if (!strings) return audited("workflow.run", resource, err(strings.error()));
    auto wait = strings->extract("wait");
    bj::object b;
    if (!wait.empty()) b["wait"] = wait.mapped();
    return audited("workflow.run", resource, start_run(req, who, std::move(workflow), std::move(*strings), b));
  };
  if (action == "aggregate-metrics") return start("daily-metrics-aggregation", params);
  if (action == "generate-forecast") return start("forecast-update", params);
  if (action == "generate-report") return start("weekly-report-generation", params);
  if (action == "execute-workflow") {
    auto* w = params.if_contains("workflow");
    if (!w || !w->is_string()) return err(bad("execute-workflow: \"params.workflow\" names the workflow"));
    bj::object inner;
    if (auto* ip = params.if_contains("params"); ip && ip->is_object()) inner = ip->as_object();
    if (auto* wt = params.if_contains("wait")) inner["wait"] = *wt;
    return start(std::string(w->as_string()), std::move(inner));
  }
  if (action == "scale-resources") {
    auto* r = params.if_contains("resource");
    if (!r || !r->is_string()) return err(bad("scale-resources: \"params.resource\" names the resource"));
    const std::string resource(r->as_string());
    if (auto d = denied()) return audited("scale.request", resource, *d);
    return audited("scale.request", resource, scale(req, who, resource, params));
  }
  (void)module;  // accepted, as the seed's clients send it; the action says what to do
  return err(bad(fmt::format(
      "unknown command action \"{}\" (aggregate-metrics, generate-forecast, execute-workflow, scale-resources, generate-report, get-stats)",
      action)));
}

// ---- registry and discovery --------------------------------------------------------------------

HttpResponse Api::register_node(const HttpRequest& req, const Principal& who) {
  auto body = body_object(req);
  if (!body) return err(body.error());
  auto n = register_node_json(*s_.registry, req.params.at("id"), *body, who.actor());
  if (!n) return err(n.error());
  return ok(*n);
}

// Not audited (a node beats every few seconds); the node keeps who sent its last one, and a change
// of state raises an event.
HttpResponse Api::heartbeat(const HttpRequest& req, const Principal& who) {
  auto doc = heartbeat_json(*s_.registry, req.params.at("id"), who.actor());
  return doc ? ok(*doc) : err(doc.error());
}

HttpResponse Api::remove_node(const HttpRequest& req, const Principal&) {
  auto doc = remove_node_json(*s_.registry, req.params.at("id"));
  return doc ? ok(*doc) : err(doc.error());
}

HttpResponse Api::scan_history(const HttpRequest& req, const Principal&) {
  auto limit = integer_param(req, "limit", 20, 1, 1000);
  if (!limit) return err(limit.error());
  auto before = integer_param(req, "before", 0, 0, INT64_MAX);
  if (!before) return err(before.error());
  auto doc = scans_json(*s_.store, static_cast<std::size_t>(*limit), *before);
  if (!doc) return err(doc.error());
  return ok(*doc);
}

// ---- suggestions -------------------------------------------------------------------------------

HttpResponse Api::suggestions(const HttpRequest& req, const Principal&) {
  auto doc = suggestions_json(*s_.store, definitions(), s_.clock->now(), s_.advisor, text_param(req, "kind").value_or(""));
  if (!doc) return err(doc.error());
  return ok(*doc);
}

HttpResponse Api::suggestion(const HttpRequest& req, const Principal&) {
  auto s = find_suggestion(*s_.store, definitions(), s_.clock->now(), s_.advisor, req.params.at("id"));
  if (!s) return err(s.error());
  return ok(automation::intelligence::to_json(*s));
}

HttpResponse Api::apply_suggestion(const HttpRequest& req, const Principal&) {
  auto body = body_object(req);
  if (!body) return err(body.error());
  auto s = find_suggestion(*s_.store, definitions(), s_.clock->now(), s_.advisor, req.params.at("id"));
  if (!s) return err(s.error());
  auto done = s_.apply_suggestion(*s);
  if (!done) return err(done.error());
  auto r = ok(*done);
  r.audit_reason = reason_or(*body, "applied through the API: " + s->title);
  r.audit_result =
      automation::json::dump(bj::object{{"kind", s->kind}, {"subject", s->subject}, {"change", s->change}, {"applied", *done}});
  return r;
}

// ---- the dashboard -----------------------------------------------------------------------------

namespace {

/// A list route's items (or its error, for the panel to show).
bj::value items_of(const HttpResponse& r) {
  auto v = automation::json::parse(r.body, "an answer");
  if (!v || !v->is_object()) return bj::object{{"error", "unreadable answer"}};
  if (r.status >= 400) return v->as_object().contains("error") ? v->as_object().at("error") : bj::value("error");
  if (auto* items = v->as_object().if_contains("items")) return *items;
  return *v;
}

/// At most `n` points of a series, evenly taken, the last one kept.
bj::array thin(const std::vector<st::MetricPoint>& points, std::size_t n) {
  bj::array out;
  const std::size_t step = std::max<std::size_t>(1, (points.size() + n - 1) / n);
  for (std::size_t i = 0; i < points.size(); i += step) out.push_back(bj::array{automation::to_epoch_ms(points[i].time), points[i].value});
  if (!points.empty() && (points.size() - 1) % step != 0)
    out.push_back(bj::array{automation::to_epoch_ms(points.back().time), points.back().value});
  return out;
}

}  // namespace

// What the dashboard shows, in one document: recomputed when it may have changed, pushed over the
// live channel, and read by the page as it is.
bj::object Api::snapshot() {
  HttpRequest q;
  q.method = "GET";
  const Principal p;
  const auto now = s_.clock->now();
  bj::object o{{"type", "snapshot"}, {"at", automation::format_timestamp(now)}};
  o["status"] = s_.status();
  o["status"].as_object().erase("uptime_seconds");  // it changes every second; the page has "started"
  o["breakers"] = items_of(breakers(q, p));
  o["health"] = items_of(health(q, p));
  o["schedules"] = items_of(schedules(q, p));
  // Each resource's newest decision, from the store: a live status would run the actuators'
  // status commands (kubectl, Docker) every second.
  st::ScalingQuery sq;
  sq.limit = 200;
  if (auto recent = s_.store->list_scaling(sq)) {
    bj::array resources;
    std::set<std::string> seen;
    for (const auto& d : *recent)
      if (d.action != "thresholds" && seen.insert(d.resource).second) resources.push_back(scaling_record_json(d));
    o["scaling"] = std::move(resources);
  } else {
    o["scaling"] = bj::object{{"code", recent.error().name()}, {"message", recent.error().message}};
  }
  HttpRequest recent = q;
  recent.query["limit"] = "10";
  o["scaling_history"] = items_of(scaling_history(recent, p));
  o["alerts"] = items_of(alerts(recent, p));
  // Runs: the newest, with their steps.
  st::RunQuery rq;
  rq.limit = 12;
  bj::array runs;
  if (auto list = s_.store->list_runs(rq)) {
    for (const auto& r : *list) {
      auto j = wf::to_json(r);
      bj::array steps;
      if (auto ss = s_.store->run_steps(r.id))
        for (const auto& step : *ss) steps.push_back(wf::to_json(step));
      j["steps"] = std::move(steps);
      runs.push_back(std::move(j));
    }
    o["runs"] = std::move(runs);
  } else {
    o["runs"] = bj::object{{"code", list.error().name()}, {"message", list.error().message}};
  }
  bj::array workflows;
  for (const auto& w : definitions().workflows) workflows.push_back(bj::value(w.name));
  o["workflows"] = std::move(workflows);
  // The last hour of the system metrics, as [epoch ms, value] pairs.
  bj::object metrics;
  for (const char* name : {"cpu_usage", "memory_usage"}) {
    st::MetricQuery mq;
    mq.name = name;
    mq.labels = "";
    mq.since = now - std::chrono::hours(1);
    if (auto points = s_.store->query_metric_points(mq)) metrics[name] = thin(*points, 120);
  }
  o["metrics"] = std::move(metrics);
  // The latest forecast, with its interval band.
  st::ForecastQuery fq;
  fq.limit = 1;
  if (auto f = s_.store->list_forecasts(fq); f && !f->empty()) {
    const auto& r = f->front();
    auto doc = automation::json::parse(r.document, "a stored forecast");
    o["forecast"] =
        bj::object{{"id", r.id},
                   {"metric", r.metric},
                   {"created", automation::format_timestamp(r.created)},
                   {"method", r.method},
                   {"backend", r.backend},
                   {"predictions", doc && doc->is_object() && doc->as_object().contains("predictions") ? doc->as_object().at("predictions")
                                                                                                       : bj::value(bj::array{})}};
  } else {
    o["forecast"] = nullptr;
  }
  if (auto topology = topology_json(*s_.registry)) {
    o["nodes"] = topology->at("nodes");
    o["edges"] = topology->at("edges");
  }
  return o;
}

// ---- the table ---------------------------------------------------------------------------------

rt::Router Api::routes(const std::shared_ptr<Api>& self) {
  self_ = self;
  rt::Router r;
  auto bind = [this](auto method) { return [this, method](const HttpRequest& q, const Principal& p) { return (this->*method)(q, p); }; };
  const auto V = Role::viewer, O = Role::operator_, A = Role::admin;
  // Liveness answers without a token: it says only that the process serves.
  (void)r.add("GET", "/healthz", [](const HttpRequest&) { return ok(bj::object{{"status", "ok"}}); });
  described_.push_back("GET /healthz none");
  add(r, "GET", {"/readyz"}, V, "", "", [this](const HttpRequest&, const Principal&) {
    auto [ready, why] = s_.ready();
    return ok(bj::object{{"ready", ready}, {"reason", why}}, ready ? 200 : 503);
  });
  add(r, "GET", {"/metrics"}, V, "", "", [this](const HttpRequest&, const Principal&) {
    HttpResponse res;
    res.content_type = std::string(rt::kPrometheusContentType);
    res.body = s_.metrics->text();
    return res;
  });
  // The dashboard: its page and assets are built into the binary and need no token (the page asks
  // for one and sends it with every call).
  auto asset = [this, &r](std::string path, std::string type, const char* body) {
    (void)r.add("GET", path, [type, body](const HttpRequest&) {
      HttpResponse res;
      res.content_type = type;
      res.body = body;
      res.headers = {{"Cache-Control", "no-cache"},
                     {"X-Content-Type-Options", "nosniff"},
                     {"X-Frame-Options", "DENY"},
                     {"Referrer-Policy", "no-referrer"},
                     {"Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"}};
      return res;
    });
    described_.push_back("GET " + path + " none");
  };
  asset("/", "text/html; charset=utf-8", kDashboardHtml);
  asset("/dashboard", "text/html; charset=utf-8", kDashboardHtml);
  asset("/dashboard/app.js", "text/javascript; charset=utf-8", kDashboardJs);
  asset("/dashboard/app.css", "text/css; charset=utf-8", kDashboardCss);
  add(r, "GET", {"/api/v1/whoami"}, V, "", "", [](const HttpRequest&, const Principal& p) {
    return ok(bj::object{{"token_id", p.token_id}, {"name", p.name}, {"role", rt::to_string(p.role)}, {"actor", p.actor()}});
  });
  // The live channel: a WebSocket upgrade of GET /api/v1/live (viewer). A browser offers
  // "automation.v1" and "bearer.<token>" as subprotocols, since it cannot set headers.
  // The channel and the daemon's broadcasts hold the Api as the routes' handlers do.
  const auto keep = self_.lock();
  s_.live = std::make_shared<rt::WebSocketChannel>(
      [this, keep](const HttpRequest& q) -> std::optional<HttpResponse> {
        std::string authorization = q.header("authorization");
        const std::string offered = q.header("sec-websocket-protocol");  // outlives the views into it
        for (const auto item : automation::detail::comma_list(offered))
          if (authorization.empty() && item.starts_with("bearer.")) authorization = "Bearer " + std::string(item.substr(7));
        auto who = access_.authenticate(authorization, rt::CallContext{q.remote, q.correlation_id});
        if (!who) {
          if (!who.error().is(errc::unauthenticated)) return HttpResponse::error(503, "unavailable", who.error().message);
          return HttpResponse::error(who.error());
        }
        return std::nullopt;
      },
      [this, keep]() -> std::optional<std::string> { return automation::json::dump(snapshot()); }, "automation.v1",
      std::chrono::minutes(5));  // a revoked token's page stops within 5 minutes: it reconnects and is refused
  s_.snapshot = [this, keep] { return snapshot(); };
  if (auto w = r.add_websocket("/api/v1/live", s_.live); !w) throw automation::Exception(w.error());
  add(r, "GET", {"/api/v1/live"}, V, "", "", [](const HttpRequest&, const Principal&) {
    return HttpResponse::error(426, "upgrade_required", "GET /api/v1/live is a WebSocket: upgrade the connection (docs/dashboard.md)");
  });
  add(r, "GET", {"/api/v1/openapi.json"}, V, "", "", [](const HttpRequest&, const Principal&) {
    HttpResponse res;
    res.body = kOpenApiJson;
    return res;
  });
  add(r, "GET", {"/api/v1/status", "/api/v1/automation/status"}, V, "", "", bind(&Api::status));
  // The integration manager: the daemon's own services and the supervised ones.
  add(r, "GET", {"/api/v1/services/health", "/api/v1/automation/services/health"}, V, "", "",
      [this](const HttpRequest&, const Principal&) { return ok(s_.services_health()); });
  for (const bool start : {true, false})
    add(r, "POST",
        {fmt::format("/api/v1/services/:name/{}", start ? "start" : "stop"),
         fmt::format("/api/v1/automation/services/:name/{}", start ? "start" : "stop")},
        O, start ? "service.start" : "service.stop", "service:{name}", [this, start](const HttpRequest& q, const Principal& p) {
          auto body = body_object(q);
          if (!body) return err(body.error());
          const auto reason = reason_or(*body, fmt::format("{} through the API", start ? "started" : "stopped"));
          auto doc = s_.control(q.params.at("name"), start, p.actor(), reason);
          if (!doc) return err(doc.error());
          auto res = ok(*doc);
          res.audit_reason = reason;
          return res;
        });
  add(r, "GET", {"/api/v1/stats", "/api/v1/jarvis/automation/stats", "/api/v1/automation/statistics"}, V, "", "", bind(&Api::stats));
  // Workflows and runs.
  add(r, "GET", {"/api/v1/workflows", "/api/v1/automation/workflows"}, V, "", "", bind(&Api::workflows));
  add(r, "GET", {"/api/v1/workflows/:name", "/api/v1/automation/workflows/:name"}, V, "", "", bind(&Api::workflow));
  add(r, "POST", {"/api/v1/workflows/:name/runs", "/api/v1/automation/workflows/:name/execute"}, O, "workflow.run", "workflow:{name}",
      bind(&Api::run_workflow));
  add(r, "POST", {"/api/v1/jarvis/automation/workflow"}, O, "workflow.run", "workflow", bind(&Api::run_workflow));
  add(r, "GET", {"/api/v1/workflows/:name/runs", "/api/v1/automation/workflows/:name/executions"}, V, "", "",
      [this](const HttpRequest& q, const Principal& p) { return runs(q, p, q.params.at("name")); });
  add(r, "GET", {"/api/v1/runs", "/api/v1/automation/executions"}, V, "", "",
      [this](const HttpRequest& q, const Principal& p) { return runs(q, p, std::nullopt); });
  add(r, "GET", {"/api/v1/runs/:id", "/api/v1/automation/executions/:id"}, V, "", "", bind(&Api::run));
  add(r, "POST", {"/api/v1/runs/:id/cancel", "/api/v1/automation/executions/:id/cancel"}, O, "workflow.cancel", "run:{id}",
      bind(&Api::cancel_run));
  // Jobs: the built-in workflows behind the seed endpoints.
  auto job = [this](std::string workflow) {
    return [this, workflow](const HttpRequest& q, const Principal& p) {
      auto body = body_object(q);
      if (!body) return err(body.error());
      auto wait = body->if_contains("wait") ? body->at("wait") : bj::value(nullptr);
      bj::object b = *body;
      b.erase("wait");
      auto params = params_of(bj::object{{"params", b}}, "params");
      if (!params) return err(params.error());
      bj::object w;
      if (!wait.is_null()) w["wait"] = wait;
      return start_run(q, p, workflow, std::move(*params), w);
    };
  };
  add(r, "POST", {"/api/v1/jobs/aggregate", "/api/v1/jarvis/automation/aggregate"}, O, "workflow.run", "workflow:daily-metrics-aggregation",
      job("daily-metrics-aggregation"));
  add(r, "POST", {"/api/v1/jobs/forecast", "/api/v1/jarvis/automation/forecast"}, O, "workflow.run", "workflow:forecast-update",
      job("forecast-update"));
  add(r, "POST", {"/api/v1/jobs/report"}, O, "workflow.run", "workflow:weekly-report-generation", job("weekly-report-generation"));
  // Schedules.
  add(r, "GET", {"/api/v1/schedules", "/api/v1/automation/schedules"}, V, "", "", bind(&Api::schedules));
  add(r, "POST", {"/api/v1/schedules/:name/pause"}, O, "schedule.pause", "schedule:{name}",
      [this](const HttpRequest& q, const Principal& p) { return pause_schedule(q, p, true); });
  add(r, "POST", {"/api/v1/schedules/:name/resume"}, O, "schedule.resume", "schedule:{name}",
      [this](const HttpRequest& q, const Principal& p) { return pause_schedule(q, p, false); });
  // Circuit breakers.
  add(r, "GET", {"/api/v1/circuit-breakers"}, V, "", "", bind(&Api::breakers));
  add(r, "GET", {"/api/v1/circuit-breakers/:name"}, V, "", "", bind(&Api::breaker));
  add(r, "POST", {"/api/v1/circuit-breakers/:name/reset"}, O, "breaker.reset", "breaker:{name}",
      [this](const HttpRequest& q, const Principal& p) { return set_breaker_state(q, p, rs::BreakerState::closed); });
  add(r, "POST", {"/api/v1/circuit-breakers/:name/force-open"}, O, "breaker.force_open", "breaker:{name}",
      [this](const HttpRequest& q, const Principal& p) { return set_breaker_state(q, p, rs::BreakerState::forced_open); });
  // Task history.
  add(r, "GET", {"/api/v1/tasks/history"}, V, "", "", bind(&Api::tasks));
  add(r, "GET", {"/api/v1/tasks/stats", "/api/v1/tasks/history/stats"}, V, "", "", bind(&Api::task_stats));
  // Scaling.
  add(r, "GET", {"/api/v1/scaling", "/api/v1/automation/scaling/metrics"}, V, "", "", bind(&Api::scaling));
  add(r, "GET", {"/api/v1/scaling/history", "/api/v1/automation/scaling/history"}, V, "", "", bind(&Api::scaling_history));
  add(r, "POST", {"/api/v1/scaling/:resource"}, O, "scale.request", "{resource}", [this](const HttpRequest& q, const Principal& p) {
    auto body = body_object(q);
    if (!body) return err(body.error());
    return scale(q, p, q.params.at("resource"), *body);
  });
  add(r, "POST", {"/api/v1/jarvis/automation/scale"}, O, "scale.request", "scaling", [this](const HttpRequest& q, const Principal& p) {
    auto body = body_object(q);
    if (!body) return err(body.error());
    auto* res = body->if_contains("resource");
    if (!res || !res->is_string()) return err(bad("the request body needs \"resource\": the resource's name"));
    return scale(q, p, std::string(res->as_string()), *body);
  });
  // Health.
  add(r, "GET", {"/api/v1/health", "/api/v1/automation/health"}, V, "", "", bind(&Api::health));
  add(r, "GET", {"/api/v1/health/history"}, V, "", "", bind(&Api::health_history));
  add(r, "POST", {"/api/v1/health/:target/pause"}, O, "heal.pause", "target:{target}",
      [this](const HttpRequest& q, const Principal& p) { return pause_target(q, p, true); });
  add(r, "POST", {"/api/v1/health/:target/resume"}, O, "heal.resume", "target:{target}",
      [this](const HttpRequest& q, const Principal& p) { return pause_target(q, p, false); });
  // Alerts.
  add(r, "GET", {"/api/v1/alerts"}, V, "", "", bind(&Api::alerts));
  // Intelligence: what happened around a failed run, an alert or a time range.
  add(r, "GET", {"/api/v1/intelligence/timeline", "/api/v1/automation/incidents/timeline"}, V, "", "", bind(&Api::timeline));
  // Insights name people and what they did, as the audit trail does: admin. Suggestions show
  // sequences of actions with who did them, to those who may apply them: operator.
  add(r, "GET", {"/api/v1/intelligence/insights", "/api/v1/automation/intelligence/insights"}, A, "", "",
      [this](const HttpRequest&, const Principal&) {
        auto doc = insights_json(*s_.store, s_.clock->now(), s_.advisor);
        return doc ? ok(*doc) : err(doc.error());
      });
  add(r, "GET", {"/api/v1/intelligence/suggestions", "/api/v1/automation/intelligence/suggestions"}, O, "", "", bind(&Api::suggestions));
  add(r, "GET", {"/api/v1/intelligence/suggestions/:id", "/api/v1/automation/intelligence/suggestions/:id"}, O, "", "",
      bind(&Api::suggestion));
  add(r, "POST", {"/api/v1/intelligence/suggestions/:id/apply", "/api/v1/automation/intelligence/suggestions/:id/apply"}, O,
      "suggestion.apply", "suggestion:{id}", bind(&Api::apply_suggestion));
  // The node registry and discovery.
  add(r, "GET", {"/api/v1/registry/nodes", "/api/v1/automation/registry/nodes"}, V, "", "", [this](const HttpRequest&, const Principal&) {
    auto doc = nodes_json(*s_.store);
    return doc ? ok(*doc) : err(doc.error());
  });
  add(r, "GET", {"/api/v1/registry/nodes/:id", "/api/v1/automation/registry/nodes/:id"}, V, "", "",
      [this](const HttpRequest& q, const Principal&) {
        auto doc = node_json(*s_.store, q.params.at("id"));
        return doc ? ok(*doc) : err(doc.error());
      });
  add(r, "POST", {"/api/v1/registry/nodes/:id", "/api/v1/automation/registry/nodes/:id"}, O, "registry.register", "node:{id}",
      bind(&Api::register_node));
  add(r, "DELETE", {"/api/v1/registry/nodes/:id", "/api/v1/automation/registry/nodes/:id"}, O, "registry.remove", "node:{id}",
      bind(&Api::remove_node));
  add(r, "POST", {"/api/v1/registry/nodes/:id/heartbeat", "/api/v1/automation/registry/nodes/:id/heartbeat"}, O, "", "",
      bind(&Api::heartbeat));
  add(r, "GET", {"/api/v1/registry/topology", "/api/v1/automation/registry/topology"}, V, "", "",
      [this](const HttpRequest&, const Principal&) {
        auto doc = topology_json(*s_.registry);
        return doc ? ok(*doc) : err(doc.error());
      });
  add(r, "GET", {"/api/v1/discovery/services", "/api/v1/automation/discovery/services"}, V, "", "",
      [this](const HttpRequest&, const Principal&) {
        auto doc = discovered_json(*s_.store);
        return doc ? ok(*doc) : err(doc.error());
      });
  add(r, "GET", {"/api/v1/discovery/history", "/api/v1/automation/discovery/history"}, V, "", "", bind(&Api::scan_history));
  add(r, "POST", {"/api/v1/discovery/scan", "/api/v1/automation/discovery/scan"}, O, "discovery.scan", "discovery",
      [this](const HttpRequest& q, const Principal& p) {
        auto body = body_object(q);
        if (!body) return err(body.error());
        auto doc = s_.scan(p.actor(), reason_or(*body, "requested through the API"));
        if (!doc) return err(doc.error());
        auto res = ok(*doc);
        res.audit_reason = fmt::format("scan {}: {}", automation::json::dump(doc->at("id")), reason_or(*body, "requested through the API"));
        return res;
      });
  // The audit trail: who did what, from where; admin only.
  add(r, "GET", {"/api/v1/audit", "/api/v1/automation/audit-logs", "/api/v1/automation/trails"}, A, "", "",
      [this](const HttpRequest& q, const Principal& p) { return audit(q, p, false); });
  add(r, "GET", {"/api/v1/security/events", "/api/v1/automation/security-events"}, A, "", "",
      [this](const HttpRequest& q, const Principal& p) { return audit(q, p, true); });
  // Tokens.
  add(r, "GET", {"/api/v1/tokens"}, A, "", "", bind(&Api::tokens));
  // AccessControl records token.create and token.revoke itself (with the token's id).
  add(r, "POST", {"/api/v1/tokens"}, A, "", "", bind(&Api::create_token));
  add(r, "DELETE", {"/api/v1/tokens/:id"}, A, "", "", bind(&Api::revoke_token));
  // The command API: a viewer may ask get-stats; each other command checks its own role and is
  // audited as the operation it is (workflow.run, scale.request).
  add(r, "POST", {"/api/v1/commands", "/api/v1/jarvis/automation/commands"}, V, "", "", bind(&Api::command));
  return r;
}

}  // namespace

rt::Router api_routes(Services& services, std::vector<std::string>* described) {
  auto api = std::make_shared<Api>(services);
  auto router = api->routes(api);
  if (described) *described = api->described_;
  return router;
}

}  // namespace autoctl
