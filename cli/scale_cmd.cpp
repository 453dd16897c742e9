// autoctl scale --resource NAME --action scale-up|scale-down|restart|status
//         scale status [NAME] | explain NAME | tick [NAME] [--dry-run] | history [NAME]
//         scale thresholds show|set|reset NAME | simulate --policy FILE --metrics FILE.csv
#include "components.hpp"
#include "context.hpp"
#include "delivery_support.hpp"

#include <automation/core/files.hpp>
#include <automation/core/json.hpp>
#include <automation/core/time.hpp>
#include <automation/forecast/forecaster.hpp>
#include <automation/scaling/resource_scaler.hpp>
#include <automation/storage/memory_store.hpp>
#include <automation/testing/manual_clock.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

#include <charconv>
#include <filesystem>
#include <map>

namespace autoctl {
namespace sc = automation::scaling;
namespace st = automation::storage;
namespace bj = boost::json;
using automation::errc;
using automation::Result;

namespace {

void print_record(const st::ScalingRecord& r) {
  const auto sizes = r.action == "thresholds" || r.action == "restart" ? std::string(r.action == "restart" ? "restart" : "policy")
                                                                       : fmt::format("{} -> {}", r.current, r.desired);
  fmt::print("{}  {:<12} {:<10} {:<9} {:<9} {}: {}\n", automation::format_timestamp(r.time), r.resource, r.action, sizes, r.outcome,
             r.reason, r.message);
  if (!r.error.empty()) fmt::print("{:>22}error: {}\n", "", r.error);
}

/// The configured resources and a scaler over them on the store in effect.
struct Scaling {
  std::unique_ptr<st::Store> store;
  std::vector<sc::ResourceConfig> configs;
  std::string source;
  std::unique_ptr<automation::forecast::Forecaster> forecaster;
  std::unique_ptr<sc::ResourceScaler> scaler;
};

/// The configured resources first (a configuration error is one whether or not the store exists),
/// then the store: reading from one that does not exist yet reads an empty history.
Result<Scaling> scaling_setup(const Context& ctx, Context::Access access) {
  auto setup = scaling_configs(ctx);
  if (!setup) return setup.error();
  Scaling s;
  auto store = access == Context::Access::read ? ctx.open_store_or_empty() : ctx.open_store(access);
  if (!store) return store.error();
  s.store = std::move(*store);
  auto made = make_scaler(ctx, *s.store, *setup, automation::SystemClock::instance());
  if (!made) return made.error();
  s.configs = std::move(setup->configs);
  s.source = std::move(setup->source);
  s.forecaster = std::move(made->forecaster);
  s.scaler = std::move(made->scaler);
  return s;
}

int exit_for(const st::ScalingRecord& r) { return r.outcome == "failed" ? ex_unavailable : ex_ok; }

int print_result(const Context& ctx, const st::ScalingRecord& r) {
  if (ctx.global.json)
    ctx.print_json(scaling_record_json(r));
  else
    print_record(r);
  return exit_for(r);
}

// ---- manual actions ----------------------------------------------------------------------------

struct ActionOptions {
  std::string resource;
  std::string action;
  std::optional<int> by;
  std::optional<int> to;
  std::string reason;
};

int run_status(Context& ctx, const std::string& only);

int run_action(Context& ctx, const ActionOptions& o) {
  auto usage = [&](std::string msg) { return ctx.error(automation::fail(errc::invalid_argument, std::move(msg))); };
  if (ctx.remote() && o.action != "status") {
    bj::object body{{"action", o.action}, {"reason", o.reason}};
    if (o.by) body["by"] = *o.by;
    if (o.to) body["to"] = *o.to;
    return ctx.print_api(ctx.api("POST", "/api/v1/scaling/" + Context::encode(o.resource), bj::value(body)));
  }
  if (o.action != "scale-up" && o.action != "scale-down" && o.action != "restart" && o.action != "status")
    return usage(fmt::format("--action: \"{}\" is not scale-up, scale-down, restart or status", o.action));
  if ((o.action == "status" || o.action == "restart") && (o.by || o.to))
    return usage(fmt::format("--by and --to do not go with --action {}", o.action));
  if (o.by && o.to) return usage("give --by or --to, not both");
  if (o.by && *o.by < 1) return usage("--by must be at least 1");
  if (o.to && *o.to < 0) return usage("--to cannot be negative");
  if (o.action == "status") return run_status(ctx, o.resource);
  auto s = scaling_setup(ctx, Context::Access::write);
  if (!s) return ctx.error(s.error());
  if (o.to) {
    // --to must go the way --action says.
    auto rep = s->scaler->report(o.resource);
    if (!rep) return ctx.error(rep.error());
    if (rep->status && rep->status->size &&
        ((o.action == "scale-up" && *o.to < *rep->status->size) || (o.action == "scale-down" && *o.to > *rep->status->size)))
      return ctx.error(automation::fail(errc::invalid_argument,
                                        fmt::format("--action {} --to {}: {} has {} now (use --action {})", o.action, *o.to, o.resource,
                                                    *rep->status->size, o.action == "scale-up" ? "scale-down" : "scale-up")));
  }
  Result<st::ScalingRecord> r = automation::fail(errc::internal, "no action");
  if (o.action == "restart")
    r = s->scaler->restart(o.resource, ctx.actor(), o.reason);
  else if (o.to)
    r = s->scaler->scale_to(o.resource, *o.to, ctx.actor(), o.reason);
  else
    r = s->scaler->scale_by(o.resource, o.action == "scale-up" ? o.by.value_or(1) : -o.by.value_or(1), ctx.actor(), o.reason);

  if (!r) {
    ctx.audit(*s->store, "scale." + o.action, o.resource, st::AuditOutcome::failure, r.error().message, {});
    return ctx.error(r.error());
  }
  ctx.audit(*s->store, "scale." + o.action, o.resource, r->outcome == "applied" ? st::AuditOutcome::success : st::AuditOutcome::failure,
            r->message, {{"scaling_record", r->id}, {"from", r->current}, {"to", r->desired}});
  return print_result(ctx, *r);
}

// ---- status, explain, tick, history -------------------------------------------------------------

int run_status(Context& ctx, const std::string& only) {
  if (ctx.remote()) {
    auto all = ctx.api("GET", "/api/v1/scaling");
    if (!all || only.empty()) return ctx.print_api(all);
    for (const auto& r : all->at("items").as_array())
      if (r.at("resource").is_string() && r.at("resource").as_string() == only) return ctx.print_api(bj::value(r));
    return ctx.error(automation::fail(errc::not_found, fmt::format("the daemon scales no resource \"{}\"", only)));
  }
  auto s = scaling_setup(ctx, Context::Access::read);
  if (!s) return ctx.error(s.error());
  std::vector<std::string> names = only.empty() ? s->scaler->resources() : std::vector<std::string>{only};
  bj::array items;
  int rc = ex_ok;
  if (!ctx.global.json) {
    if (names.empty()) fmt::print("no resources are configured (resources: {})\n", s->source);
  }
  for (const auto& name : names) {
    auto rep = s->scaler->report(name);
    if (!rep) return ctx.error(rep.error());
    if (!rep->status) rc = ex_unavailable;
    if (ctx.global.json) {
      items.push_back(scaling_report_json(*rep));
      continue;
    }
    const auto& p = rep->spec.policy;
    fmt::print("{}  ({}, {} policy, [{}, {}]{}; {})\n", name, rep->actuator, p.mode == sc::PolicyMode::hpa ? "hpa" : "steps",
               p.min_replicas, p.max_replicas, rep->spec.dry_run ? ", dry run" : "", rep->policy_source);
    if (rep->status) {
      fmt::print("  size: {}  {}\n", rep->status->size ? std::to_string(*rep->status->size) : std::string("unknown"), rep->status->detail);
      for (const auto& m : rep->status->members)
        fmt::print("    {}{}{}\n", m.name, m.pid ? fmt::format(" pid {}", m.pid) : "", m.ready ? "" : " (warming up)");
    } else {
      fmt::print("  size: cannot be read: {}\n", rep->status.error().message);
    }
    if (rep->last_decision)
      fmt::print("  last decision: {} {} -> {} {}: {}\n", automation::format_timestamp(rep->last_decision->time),
                 rep->last_decision->current, rep->last_decision->desired, rep->last_decision->reason, rep->last_decision->message);
    if (rep->last_change)
      fmt::print("  last change: {} {} by {}: {} -> {}\n", automation::format_timestamp(rep->last_change->time), rep->last_change->action,
                 rep->last_change->actor, rep->last_change->current, rep->last_change->desired);
  }
  if (ctx.global.json) ctx.print_json(bj::object{{"source", s->source}, {"resources", std::move(items)}});
  return rc;
}

int run_explain(Context& ctx, const std::string& name) {
  auto s = scaling_setup(ctx, Context::Access::read);
  if (!s) return ctx.error(s.error());
  auto r = s->scaler->evaluate(name, {.dry_run = true, .record = false, .actor = ctx.actor()});
  if (!r) return ctx.error(r.error());
  if (ctx.global.json) {
    ctx.print_json(scaling_record_json(*r));
    return ex_ok;
  }
  fmt::print("{}: {} -> {} ({}): {}\n", name, r->current, r->desired, r->reason, r->message);
  if (r->desired != r->current) fmt::print("  {}\n", r->outcome == "blocked" ? "held: nothing would change now" : "it would scale now");
  auto inputs = automation::json::parse(r->inputs);
  if (inputs && inputs->is_object()) {
    const auto& in = inputs->as_object();
    if (auto* p = in.if_contains("policy_source")) fmt::print("  policy: {} ({})\n", automation::json::dump(in.at("mode")), p->as_string());
    if (auto* rs = in.if_contains("readings"); rs && rs->is_array())
      for (const auto& m : rs->as_array()) {
        const auto& mo = m.as_object();
        fmt::print("  metric {}: {}{}\n", mo.at("name").as_string(),
                   mo.at("value").is_null() ? "no value" : automation::json::dump(mo.at("value")),
                   mo.contains("error") ? fmt::format(" ({})", mo.at("error").as_string()) : std::string());
      }
    if (auto* ps = in.if_contains("proposals"); ps && ps->is_array())
      for (const auto& p : ps->as_array())
        fmt::print("  proposal {}: {}\n", p.as_object().at("metric").as_string(), p.as_object().at("detail").as_string());
    if (auto* h = in.if_contains("held"); h && h->is_array())
      for (const auto& b : h->as_array()) fmt::print("  band held: {}\n", b.as_string());
    if (auto* f = in.if_contains("forecast")) fmt::print("  forecast: {}\n", automation::json::dump(*f));
  }
  return ex_ok;
}

int run_tick(Context& ctx, const std::string& only, bool dry_run) {
  auto s = scaling_setup(ctx, Context::Access::write);
  if (!s) return ctx.error(s.error());
  std::vector<std::string> names = only.empty() ? s->scaler->resources() : std::vector<std::string>{only};
  bj::array items;
  int rc = ex_ok;
  for (const auto& name : names) {
    auto r = s->scaler->evaluate(name, {.dry_run = dry_run, .record = true, .actor = "scaler (" + ctx.actor() + ")"});
    if (!r) {
      if (only.size()) return ctx.error(r.error());
      rc = std::max(rc, static_cast<int>(r.error().code == errc::busy ? ex_tempfail : ex_unavailable));
      if (ctx.global.json)
        items.push_back(bj::object{{"resource", name}, {"error", r.error().message}});
      else
        fmt::print("{}: {}\n", name, r.error().message);
      continue;
    }
    if (r->outcome == "failed") rc = std::max(rc, static_cast<int>(ex_unavailable));
    if (ctx.global.json)
      items.push_back(scaling_record_json(*r));
    else
      print_record(*r);
  }
  if (ctx.global.json)
    ctx.print_json(bj::object{{"decisions", std::move(items)}});
  else if (names.empty())
    fmt::print("no resources are configured (resources: {})\n", s->source);
  return rc;
}

struct HistoryOptions {
  std::string resource;
  std::size_t limit = 50;
  bool changes = false;
  std::string since;
};

int run_history(Context& ctx, const HistoryOptions& o) {
  auto opened = ctx.open_store_or_empty();  // a store that does not exist yet has no history
  if (!opened) return ctx.error(opened.error());
  auto& store = *opened;
  st::ScalingQuery q;
  if (!o.resource.empty()) q.resource = o.resource;
  q.limit = o.limit;
  q.changes_only = o.changes;
  auto since = Context::time_option(o.since, "--since");
  if (!since) return ctx.error(since.error());
  q.since = *since;
  auto list = store->list_scaling(q);
  if (!list) return ctx.error(list.error());
  if (ctx.global.json) {
    bj::array items;
    for (auto it = list->rbegin(); it != list->rend(); ++it) items.push_back(scaling_record_json(*it));  // oldest first, as the text
    ctx.print_json(bj::object{{"history", std::move(items)}});
    return ex_ok;
  }
  if (list->empty()) fmt::print("no scaling history\n");
  for (auto it = list->rbegin(); it != list->rend(); ++it) print_record(*it);
  return ex_ok;
}

// ---- thresholds --------------------------------------------------------------------------------

/// "cpu_usage>80:+1", "cpu_usage<20:-1", "rpm>1000<5000:+50%", "rpm>5000:=40".
Result<sc::StepBand> parse_band(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return automation::fail(
        errc::invalid_argument,
        fmt::format("--band \"{}\": {} (use METRIC>A[<B]:STEP or METRIC<B:STEP, STEP as +1, -1, +50% or =10)", text, why));
  };
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return bad("no step after ':'");
  auto cond = text.substr(0, colon), step = text.substr(colon + 1);
  sc::StepBand b;
  const auto op = cond.find_first_of("<>");
  if (op == std::string_view::npos || op == 0) return bad("no metric and bound");
  b.metric = std::string(cond.substr(0, op));
  auto number = [](std::string_view s) -> std::optional<double> {
    double v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
    return v;
  };
  auto rest = cond.substr(op);
  while (!rest.empty()) {
    const char c = rest.front();
    const auto next = rest.find_first_of("<>", 1);
    auto v = number(rest.substr(1, next == std::string_view::npos ? std::string_view::npos : next - 1));
    if (!v) return bad("a bound is not a number");
    (c == '>' ? b.above : b.below) = *v;
    rest = next == std::string_view::npos ? std::string_view() : rest.substr(next);
  }
  if (step.empty()) return bad("no step");
  if (step.front() == '=') {
    b.adjustment = sc::StepAdjustment::exact;
    step.remove_prefix(1);
  } else if (step.back() == '%') {
    b.adjustment = sc::StepAdjustment::percent;
    step.remove_suffix(1);
  }
  if (!step.empty() && step.front() == '+') step.remove_prefix(1);
  auto amount = number(step);
  if (!amount) return bad("the step is not a number");
  b.amount = *amount;
  return b;
}

struct ThresholdOptions {
  std::string resource;
  std::vector<std::string> bands;
  std::vector<std::string> targets;
  std::optional<int> min, max;
  std::string reason;
};

int run_thresholds_show(Context& ctx, const std::string& name) {
  auto s = scaling_setup(ctx, Context::Access::read);
  if (!s) return ctx.error(s.error());
  auto rep = s->scaler->report(name);
  if (!rep) return ctx.error(rep.error());
  if (ctx.global.json) {
    ctx.print_json(bj::object{{"resource", name}, {"policy", sc::to_json(rep->spec.policy)}, {"source", rep->policy_source}});
  } else {
    fmt::print("{} ({})\n{}\n", name, rep->policy_source, automation::json::pretty(sc::to_json(rep->spec.policy)));
  }
  return ex_ok;
}

int run_thresholds_set(Context& ctx, const ThresholdOptions& o) {
  auto s = scaling_setup(ctx, Context::Access::write);
  if (!s) return ctx.error(s.error());
  auto rep = s->scaler->report(o.resource);
  if (!rep) return ctx.error(rep.error());
  auto policy = rep->spec.policy;
  if (!o.bands.empty()) {
    if (policy.mode != sc::PolicyMode::steps)
      return ctx.error(automation::fail(errc::invalid_argument, fmt::format("--band: {} has an hpa policy (use --target)", o.resource)));
    policy.bands.clear();
    for (const auto& text : o.bands) {
      auto b = parse_band(text);
      if (!b) return ctx.error(b.error());
      policy.bands.push_back(std::move(*b));
    }
  }
  for (const auto& t : o.targets) {
    const auto eq = t.find('=');
    double v = 0;
    if (eq == std::string::npos || std::from_chars(t.data() + eq + 1, t.data() + t.size(), v).ec != std::errc{})
      return ctx.error(automation::fail(errc::invalid_argument, fmt::format("--target \"{}\": use METRIC=VALUE", t)));
    bool found = false;
    for (auto& m : policy.metrics)
      if (m.name == t.substr(0, eq)) {
        m.target = v;
        found = true;
      }
    if (!found)
      return ctx.error(
          automation::fail(errc::invalid_argument, fmt::format("--target: {} has no metric \"{}\"", o.resource, t.substr(0, eq))));
  }
  if (o.min) policy.min_replicas = *o.min;
  if (o.max) policy.max_replicas = *o.max;
  auto r = s->scaler->set_policy(o.resource, policy, ctx.actor(), o.reason);
  if (!r) {
    ctx.audit(*s->store, "scale.thresholds", o.resource, st::AuditOutcome::failure, r.error().message, {{"policy", sc::to_json(policy)}});
    return ctx.error(r.error());
  }
  ctx.audit(*s->store, "scale.thresholds", o.resource, st::AuditOutcome::success, o.reason, {{"policy", sc::to_json(policy)}});
  return print_result(ctx, *r);
}

int run_thresholds_reset(Context& ctx, const std::string& name) {
  auto s = scaling_setup(ctx, Context::Access::write);
  if (!s) return ctx.error(s.error());
  auto r = s->scaler->reset_policy(name, ctx.actor());
  if (!r) return ctx.error(r.error());
  ctx.audit(*s->store, "scale.thresholds", name, st::AuditOutcome::success, "reset to the configuration", {});
  return print_result(ctx, *r);
}

// ---- simulate ----------------------------------------------------------------------------------

struct SimulateOptions {
  std::string policy, metrics, resource;
  int size = 1;
};

int run_simulate(Context& ctx, const SimulateOptions& o) {
  auto fail_in = [&](const std::string& file, const automation::Error& e) {
    return ctx.error(automation::Error(e.code, e.message.rfind(file, 0) == 0 ? e.message : fmt::format("{}: {}", file, e.message)));
  };
  auto text = automation::read_file(o.policy);
  if (!text) return ctx.error(automation::fail(errc::not_found, fmt::format("{}: {}", o.policy, text.error().message)));
  auto doc = automation::json::parse(*text, o.policy);
  if (!doc) return ctx.error(doc.error());
  sc::ResourceSpec spec;
  if (doc->is_object() && doc->as_object().contains("resources")) {
    auto configs = sc::parse_resources(*text, o.policy, std::filesystem::current_path(), std::filesystem::temp_directory_path());
    if (!configs) return ctx.error(configs.error());
    const sc::ResourceConfig* pick = nullptr;
    for (const auto& c : *configs)
      if (o.resource.empty() || c.spec.name == o.resource) {
        pick = &c;
        break;
      }
    if (!pick) return ctx.error(automation::fail(errc::not_found, fmt::format("{}: no resource \"{}\"", o.policy, o.resource)));
    spec = pick->spec;
  } else {
    auto policy = sc::parse_policy(*doc, o.policy);
    if (!policy) return ctx.error(policy.error());
    spec.name = o.resource.empty() ? "simulated" : o.resource;
    spec.policy = std::move(*policy);
  }
  spec.dry_run = false;  // the simulated resource is only a number
  if (spec.policy.mode == sc::PolicyMode::steps && spec.policy.bands.empty()) {
    const auto& th = ctx.config.thresholds;
    spec.policy.bands = sc::seed_steps(th.cpu_high, th.cpu_low, th.memory_high).bands;
  }

  // time,metric,value rows, grouped by time.
  auto csv = automation::read_file(o.metrics);
  if (!csv) return ctx.error(automation::fail(errc::not_found, fmt::format("{}: {}", o.metrics, csv.error().message)));
  std::map<automation::TimePoint, std::vector<st::MetricPoint>> rows;
  std::size_t line_no = 0, start = 0;
  while (start < csv->size()) {
    const auto end = std::min(csv->find('\n', start), csv->size());
    std::string line = csv->substr(start, end - start);
    start = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line.front() == '#') continue;
    std::vector<std::string> cells;
    std::size_t s = 0;
    for (;;) {
      const auto c = line.find(',', s);
      cells.push_back(line.substr(s, c == std::string::npos ? std::string::npos : c - s));
      if (c == std::string::npos) break;
      s = c + 1;
    }
    if (line_no == 1 && cells.size() >= 3 && cells[0] == "time") continue;
    if (cells.size() != 3)
      return fail_in(o.metrics, automation::fail(errc::invalid_argument, fmt::format("line {}: expected time,metric,value", line_no)));
    auto t = automation::parse_timestamp(cells[0]);
    if (!t) return fail_in(o.metrics, automation::fail(errc::invalid_argument, fmt::format("line {}: {}", line_no, t.error().message)));
    double v = 0;
    if (std::from_chars(cells[2].data(), cells[2].data() + cells[2].size(), v).ec != std::errc{})
      return fail_in(o.metrics,
                     automation::fail(errc::invalid_argument, fmt::format("line {}: \"{}\" is not a number", line_no, cells[2])));
    st::MetricPoint p{cells[1], "", *t, v};
    if (auto valid = st::validate(p); !valid)
      return fail_in(o.metrics, automation::fail(errc::invalid_argument, fmt::format("line {}: {}", line_no, valid.error().message)));
    rows[*t].push_back(std::move(p));
  }
  if (rows.empty()) return fail_in(o.metrics, automation::fail(errc::invalid_argument, "no samples"));

  // The identical pipeline over a store in memory, a manual clock and a resource that is a number.
  automation::testing::ManualClock clock(rows.begin()->first);
  st::MemoryStore memory;
  std::unique_ptr<automation::forecast::Forecaster> forecaster;
  if (spec.predictive) forecaster = std::make_unique<automation::forecast::Forecaster>(clock);
  sc::ResourceScaler scaler(memory, clock, forecaster.get());
  int size = o.size;
  sc::Callbacks cb;
  cb.size = [&]() -> Result<int> { return size; };
  cb.resize = [&](int n, const std::string&) -> Result<void> {
    size = n;
    return {};
  };
  if (auto r = scaler.add(spec, std::make_unique<sc::CallbackActuator>(std::move(cb))); !r) return fail_in(o.policy, r.error());
  bj::array items;
  int changes = 0;
  for (auto& [t, points] : rows) {
    clock.set(t);
    if (auto r = memory.append_metric_points(points); !r) return fail_in(o.metrics, r.error());
    auto r = scaler.evaluate(spec.name);
    if (!r) return ctx.error(r.error());
    changes += r->outcome == "applied" ? 1 : 0;
    if (ctx.global.json)
      items.push_back(scaling_record_json(*r));
    else
      print_record(*r);
  }
  if (ctx.global.json)
    ctx.print_json(bj::object{{"resource", spec.name}, {"final_size", size}, {"changes", changes}, {"decisions", std::move(items)}});
  else
    fmt::print("{} decisions, {} changes, final size {}\n", rows.size(), changes, size);
  return ex_ok;
}

}  // namespace

void register_scale(CLI::App& app, Context& ctx) {
  auto* s =
      app.add_subcommand("scale", "Scaled resources: act on one, show them, explain or run a decision, the history, thresholds, simulate");
  auto ao = std::make_shared<ActionOptions>();
  s->add_option("--resource", ao->resource, "The resource to act on");
  s->add_option("--action", ao->action, "scale-up, scale-down, restart or status");
  s->add_option("--by", ao->by, "Members to add or remove (default 1)");
  s->add_option("--to", ao->to, "Scale to exactly this size instead");
  s->add_option("--reason", ao->reason, "Why (recorded)");
  s->callback([&ctx, ao, s] {
    if (!s->get_subcommands().empty()) return;
    ctx.remote_capable = true;
    ctx.run = [&ctx, ao] {
      if (ao->resource.empty() || ao->action.empty())
        return ctx.error(automation::fail(errc::invalid_argument,
                                          "give --resource NAME and --action scale-up|scale-down|restart|status, or a subcommand"));
      return run_action(ctx, *ao);
    };
  });

  auto status_name = std::make_shared<std::string>();
  auto* status = s->add_subcommand("status", "Every resource (or one): size, members, policy, last decision and change");
  status->add_option("name", *status_name, "Only this resource");
  status->callback([&ctx, status_name] {
    ctx.remote_capable = true;
    ctx.run = [&ctx, status_name] { return run_status(ctx, *status_name); };
  });

  auto explain_name = std::make_shared<std::string>();
  auto* explain = s->add_subcommand("explain", "What the scaler would decide now and why, with every input; records nothing");
  explain->add_option("name", *explain_name, "The resource")->required();
  explain->callback([&ctx, explain_name] { ctx.run = [&ctx, explain_name] { return run_explain(ctx, *explain_name); }; });

  auto tick_name = std::make_shared<std::string>();
  auto tick_dry = std::make_shared<bool>(false);
  auto* tick = s->add_subcommand("tick", "Evaluate every resource (or one) once and act: for cron");
  tick->add_option("name", *tick_name, "Only this resource");
  tick->add_flag("--dry-run", *tick_dry, "Decide and record, do not act");
  tick->callback([&ctx, tick_name, tick_dry] { ctx.run = [&ctx, tick_name, tick_dry] { return run_tick(ctx, *tick_name, *tick_dry); }; });

  auto ho = std::make_shared<HistoryOptions>();
  auto* history = s->add_subcommand("history", "Scaling decisions and actions, oldest first");
  history->add_option("name", ho->resource, "Only this resource");
  history->add_option("--limit", ho->limit, "The newest this many (default 50; 0: all)");
  history->add_flag("--changes", ho->changes, "Only changes of size and manual actions");
  history->add_option("--since", ho->since, "From this time (ISO-8601, or a duration such as 24h)");
  history->callback([&ctx, ho] { ctx.run = [&ctx, ho] { return run_history(ctx, *ho); }; });

  auto* th = s->add_subcommand("thresholds", "A resource's policy: show it, change it at run time, reset it");
  th->require_subcommand(1);
  auto show_name = std::make_shared<std::string>();
  auto* show = th->add_subcommand("show", "The policy in effect and where it comes from");
  show->add_option("name", *show_name, "The resource")->required();
  show->callback([&ctx, show_name] { ctx.run = [&ctx, show_name] { return run_thresholds_show(ctx, *show_name); }; });
  auto to = std::make_shared<ThresholdOptions>();
  auto* set = th->add_subcommand("set", "Change the policy for every later decision (recorded; the configuration file is untouched)");
  set->add_option("name", to->resource, "The resource")->required();
  set->add_option("--band", to->bands,
                  "A step band replacing the bands: cpu_usage>80:+1, cpu_usage<20:-1, rpm>1000<5000:+50%, rpm>5000:=40");
  set->add_option("--target", to->targets, "An hpa metric's target: cpu_usage=60");
  set->add_option("--min", to->min, "The minimum size");
  set->add_option("--max", to->max, "The maximum size");
  set->add_option("--reason", to->reason, "Why (recorded)");
  set->callback([&ctx, to] { ctx.run = [&ctx, to] { return run_thresholds_set(ctx, *to); }; });
  auto reset_name = std::make_shared<std::string>();
  auto* reset = th->add_subcommand("reset", "Back to the configured policy");
  reset->add_option("name", *reset_name, "The resource")->required();
  reset->callback([&ctx, reset_name] { ctx.run = [&ctx, reset_name] { return run_thresholds_reset(ctx, *reset_name); }; });

  auto so = std::make_shared<SimulateOptions>();
  auto* sim = s->add_subcommand("simulate", "Replay recorded metrics through a policy and print every decision; touches nothing");
  sim->add_option("--policy", so->policy, "A policy (JSON) or a resources file")->required();
  sim->add_option("--metrics", so->metrics, "CSV rows time,metric,value (ISO-8601 times)")->required();
  sim->add_option("--resource", so->resource, "The resource of a resources file (default: its first)");
  sim->add_option("--size", so->size, "The size to start from (default 1)");
  sim->callback([&ctx, so] { ctx.run = [&ctx, so] { return run_simulate(ctx, *so); }; });
}

}  // namespace autoctl
