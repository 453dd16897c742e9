// Scaling policies and resources files as JSON.
#include <automation/core/json.hpp>
#include <automation/core/time.hpp>
#include <automation/scaling/resource_scaler.hpp>

#include "detail/json_fields.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <cmath>
#include <set>

namespace automation::scaling {

namespace bj = boost::json;
using detail::Fields;

namespace {

Result<ScalingRules> parse_rules(const bj::value& v, std::string where, ScalingRules rules) {
  auto f = Fields::of(v, where);
  if (!f) return f.error();
  TRY_ASSIGN(rules.stabilization, f->duration("stabilization"));
  if (auto s = f->string("select"); !s) {
    return s.error();
  } else if (*s) {
    if (**s == "max")
      rules.select = SelectPolicy::max;
    else if (**s == "min")
      rules.select = SelectPolicy::min;
    else if (**s == "disabled")
      rules.select = SelectPolicy::disabled;
    else
      return f->bad("select", fmt::format("must be max, min or disabled, not \"{}\"", **s));
  }
  if (auto* p = f->get("policies")) {
    if (!p->is_array()) return f->bad("policies", "must be an array");
    rules.policies.clear();
    int i = 0;
    for (const auto& e : p->as_array()) {
      auto pf = Fields::of(e, fmt::format("{} policy {}", where, ++i));
      if (!pf) return pf.error();
      RatePolicy rp;
      auto type = pf->string("type");
      if (!type) return type.error();
      if (!*type || (**type != "percent" && **type != "members" && **type != "pods")) return pf->bad("type", "must be percent or members");
      rp.kind = **type == "percent" ? PolicyKind::percent : PolicyKind::members;
      TRY_ASSIGN(rp.value, pf->integer("value"));
      TRY_ASSIGN(rp.period, pf->duration("period"));
      if (auto r = pf->no_others(); !r) return r.error();
      rules.policies.push_back(rp);
    }
  }
  if (auto r = f->no_others(); !r) return r.error();
  return rules;
}

bj::object rules_json(const ScalingRules& r) {
  bj::array policies;
  for (const auto& p : r.policies)
    policies.push_back(bj::object{{"type", p.kind == PolicyKind::percent ? "percent" : "members"},
                                  {"value", p.value},
                                  {"period", format_duration(std::chrono::duration_cast<Millis>(p.period))}});
  return bj::object{{"stabilization", format_duration(std::chrono::duration_cast<Millis>(r.stabilization))},
                    {"select", r.select == SelectPolicy::max   ? "max"
                               : r.select == SelectPolicy::min ? "min"
                                                               : "disabled"},
                    {"policies", std::move(policies)}};
}

}  // namespace

Result<ScalingPolicy> parse_policy(const bj::value& v, std::string_view origin) {
  auto f = Fields::of(v, std::string(origin));
  if (!f) return f.error();
  ScalingPolicy p;
  auto mode = f->string("mode");
  if (!mode) return mode.error();
  if (*mode && **mode != "hpa" && **mode != "steps") return f->bad("mode", fmt::format("must be hpa or steps, not \"{}\"", **mode));
  p.mode = *mode && **mode == "hpa" ? PolicyMode::hpa : PolicyMode::steps;
  TRY_ASSIGN(p.min_replicas, f->integer("min"));
  TRY_ASSIGN(p.max_replicas, f->integer("max"));
  if (auto* ms = f->get("metrics")) {
    if (!ms->is_array()) return f->bad("metrics", "must be an array");
    int i = 0;
    for (const auto& e : ms->as_array()) {
      auto mf = Fields::of(e, fmt::format("{} metric {}", origin, ++i));
      if (!mf) return mf.error();
      MetricSpec m;
      TRY_ASSIGN(m.name, mf->string("name"));
      auto kind = mf->string("kind");
      if (!kind) return kind.error();
      if (*kind && **kind != "per_member" && **kind != "total") return mf->bad("kind", "must be per_member or total");
      m.kind = *kind && **kind == "total" ? MetricKind::total : MetricKind::per_member;
      TRY_ASSIGN(m.target, mf->number("target"));
      TRY_ASSIGN(m.labels, mf->string("labels"));
      TRY_ASSIGN(m.activation, mf->number("activation"));
      if (auto r = mf->no_others(); !r) return r.error();
      p.metrics.push_back(std::move(m));
    }
  }
  if (auto* t = f->get("tolerance")) {
    auto tf = Fields::of(*t, fmt::format("{} tolerance", origin));
    if (!tf) return tf.error();
    TRY_ASSIGN(p.tolerance.up, tf->number("up"));
    TRY_ASSIGN(p.tolerance.down, tf->number("down"));
    if (auto r = tf->no_others(); !r) return r.error();
  }
  if (auto* b = f->get("behavior")) {
    auto bf = Fields::of(*b, fmt::format("{} behavior", origin));
    if (!bf) return bf.error();
    if (auto* up = bf->get("scale_up")) {
      auto r = parse_rules(*up, fmt::format("{} behavior scale_up", origin), p.behavior.up);
      if (!r) return r.error();
      p.behavior.up = std::move(*r);
    }
    if (auto* down = bf->get("scale_down")) {
      auto r = parse_rules(*down, fmt::format("{} behavior scale_down", origin), p.behavior.down);
      if (!r) return r.error();
      p.behavior.down = std::move(*r);
    }
    if (auto r = bf->no_others(); !r) return r.error();
  }
  if (auto* bs = f->get("bands")) {
    if (!bs->is_array()) return f->bad("bands", "must be an array");
    int i = 0;
    for (const auto& e : bs->as_array()) {
      auto bf = Fields::of(e, fmt::format("{} band {}", origin, ++i));
      if (!bf) return bf.error();
      StepBand band;
      TRY_ASSIGN(band.metric, bf->string("metric"));
      TRY_ASSIGN(band.above, bf->number("above"));
      TRY_ASSIGN(band.below, bf->number("below"));
      int given = 0;
      for (auto [key, adj] : {std::pair{"change", StepAdjustment::change}, std::pair{"percent", StepAdjustment::percent},
                              std::pair{"exact", StepAdjustment::exact}}) {
        auto n = bf->number(key);
        if (!n) return n.error();
        if (*n) {
          band.adjustment = adj;
          band.amount = **n;
          ++given;
        }
      }
      if (given != 1)
        return fail(errc::invalid_argument, fmt::format("{}: give exactly one of \"change\", \"percent\" and \"exact\"", bf->where()));
      if (auto r = bf->no_others(); !r) return r.error();
      p.bands.push_back(std::move(band));
    }
  }
  if (auto r = f->no_others(); !r) return r.error();
  if (auto r = p.validate(); !r) return with_context(r.error(), std::string(origin));
  return p;
}

bj::value to_json(const ScalingPolicy& p) {
  bj::object o{{"mode", p.mode == PolicyMode::hpa ? "hpa" : "steps"}, {"min", p.min_replicas}, {"max", p.max_replicas}};
  if (p.mode == PolicyMode::hpa) {
    bj::array metrics;
    for (const auto& m : p.metrics) {
      bj::object mo{{"name", m.name}, {"kind", m.kind == MetricKind::total ? "total" : "per_member"}, {"target", m.target}};
      if (!m.labels.empty()) mo["labels"] = m.labels;
      if (m.activation != 0) mo["activation"] = m.activation;
      metrics.push_back(std::move(mo));
    }
    o["metrics"] = std::move(metrics);
    o["tolerance"] = bj::object{{"up", p.tolerance.up}, {"down", p.tolerance.down}};
    o["behavior"] = bj::object{{"scale_up", rules_json(p.behavior.up)}, {"scale_down", rules_json(p.behavior.down)}};
  } else {
    bj::array bands;
    for (const auto& b : p.bands) {
      bj::object bo{{"metric", b.metric}};
      if (b.above) bo["above"] = *b.above;
      if (b.below) bo["below"] = *b.below;
      bo[b.adjustment == StepAdjustment::change ? "change" : b.adjustment == StepAdjustment::percent ? "percent" : "exact"] = b.amount;
      bands.push_back(std::move(bo));
    }
    o["bands"] = std::move(bands);
  }
  return o;
}

Result<std::vector<ResourceConfig>> parse_resources(std::string_view text, std::string_view origin, const std::filesystem::path& base,
                                                    const std::filesystem::path& state_directory) {
  auto doc = json::parse(text, origin);
  if (!doc) return doc.error();
  auto top = Fields::of(*doc, std::string(origin));
  if (!top) return top.error();
  auto* list = top->get("resources");
  if (!list || !list->is_array()) return top->bad("resources", "must be an array of resources");
  if (auto r = top->no_others(); !r) return r.error();
  std::vector<ResourceConfig> out;
  std::set<std::string> names;
  auto path_of = [&](const std::string& p) {
    return p.empty() || std::filesystem::path(p).is_absolute() ? std::filesystem::path(p) : base / p;
  };
  int i = 0;
  for (const auto& e : list->as_array()) {
    ++i;
    std::string where = fmt::format("{}: resource {}", origin, i);
    if (e.is_object())
      if (auto* n = e.as_object().if_contains("name"); n && n->is_string())
        where = fmt::format("{}: resource \"{}\"", origin, std::string_view(n->as_string()));
    auto f = Fields::of(e, where);
    if (!f) return f.error();
    ResourceConfig c;
    TRY_ASSIGN(c.spec.name, f->string("name"));
    if (!storage::is_resource_name(c.spec.name)) return f->bad("name", "must match [A-Za-z0-9][A-Za-z0-9_.-]* (at most 100 characters)");
    if (!names.insert(c.spec.name).second) return fail(errc::invalid_argument, fmt::format("{}: the name is used twice", where));
    if (auto* p = f->get("policy")) {
      auto policy = parse_policy(*p, where + " policy");
      if (!policy) return policy.error();
      c.spec.policy = std::move(*policy);
    }
    if (auto* cd = f->get("cooldown")) {
      auto cf = Fields::of(*cd, where + " cooldown");
      if (!cf) return cf.error();
      TRY_ASSIGN(c.spec.cooldown_up, cf->duration("up"));
      TRY_ASSIGN(c.spec.cooldown_down, cf->duration("down"));
      if (auto r = cf->no_others(); !r) return r.error();
    }
    if (auto* a = f->get("activation")) {
      auto af = Fields::of(*a, where + " activation");
      if (!af) return af.error();
      ResourceSpec::ActivationOptions ao;
      TRY_ASSIGN(ao.cooldown, af->duration("cooldown"));
      TRY_ASSIGN(ao.wake_to, af->integer("wake_to"));
      if (auto r = af->no_others(); !r) return r.error();
      c.spec.activation = ao;
    }
    if (auto* fb = f->get("fallback")) {
      auto ff = Fields::of(*fb, where + " fallback");
      if (!ff) return ff.error();
      ResourceSpec::FallbackOptions fo;
      TRY_ASSIGN(fo.after, ff->integer("after"));
      TRY_ASSIGN(fo.size, ff->integer("size"));
      if (auto r = ff->no_others(); !r) return r.error();
      c.spec.fallback = fo;
    }
    if (auto* pr = f->get("predictive")) {
      auto pf = Fields::of(*pr, where + " predictive");
      if (!pf) return pf.error();
      PredictiveOptions po;
      TRY_ASSIGN(po.metric, pf->string("metric"));
      TRY_ASSIGN(po.horizon, pf->duration("horizon"));
      TRY_ASSIGN(po.step, pf->duration("step"));
      TRY_ASSIGN(po.history, pf->duration("history"));
      TRY_ASSIGN(po.level, pf->number("level"));
      std::optional<int> min_points;
      TRY_ASSIGN(min_points, pf->integer("min_points"));
      if (min_points) po.min_points = static_cast<std::size_t>(std::max(2, *min_points));
      if (auto r = pf->no_others(); !r) return r.error();
      c.spec.predictive = po;
    }
    TRY_ASSIGN(c.spec.staleness, f->duration("staleness"));
    TRY_ASSIGN(c.spec.dry_run, f->boolean("dry_run"));
    auto* act = f->get("actuator");
    if (!act) return f->bad("actuator", "is required (a process_pool, command or docker actuator)");
    auto af = Fields::of(*act, where + " actuator");
    if (!af) return af.error();
    auto type = af->string("type");
    if (!type) return type.error();
    if (!*type || (**type != "process_pool" && **type != "command" && **type != "docker"))
      return af->bad("type", "must be process_pool, command or docker");
    c.actuator = **type;
    if (c.actuator == "process_pool") {
      TRY_ASSIGN(c.pool.command, af->strings("command"));
      auto env = af->string_map("environment");
      if (!env) return env.error();
      c.pool.environment = std::move(*env);
      std::optional<std::string> wd;
      TRY_ASSIGN(wd, af->string("working_directory"));
      c.pool.working_directory = path_of(wd.value_or(""));
      std::optional<std::string> logs;
      TRY_ASSIGN(logs, af->string("log_directory"));
      c.pool.log_directory = logs ? path_of(*logs) : state_directory;
      TRY_ASSIGN(c.pool.stop_timeout, af->duration("stop_timeout"));
      TRY_ASSIGN(c.pool.warmup, af->duration("warmup"));
      c.pool.state_directory = state_directory;
      if (auto v = c.pool.validate(); !v) return with_context(v.error(), where);
    } else if (c.actuator == "docker") {
      auto& d = c.docker;
      TRY_ASSIGN(d.image, af->string("image"));
      TRY_ASSIGN(d.command, af->strings("command"));
      TRY_ASSIGN(d.socket, af->string("socket"));
      auto env = af->string_map("environment");
      if (!env) return env.error();
      d.environment = std::move(*env);
      auto labels = af->string_map("labels");
      if (!labels) return labels.error();
      d.labels = std::move(*labels);
      TRY_ASSIGN(d.network, af->string("network"));
      TRY_ASSIGN(d.stop_timeout, af->duration("stop_timeout"));
      TRY_ASSIGN(d.timeout, af->duration("timeout"));
      TRY_ASSIGN(d.warmup, af->duration("warmup"));
      if (auto v = d.validate(); !v) return with_context(v.error(), where);
    } else {
      TRY_ASSIGN(c.command.resize, af->strings("resize"));
      TRY_ASSIGN(c.command.status, af->strings("status"));
      TRY_ASSIGN(c.command.restart, af->strings("restart"));
      TRY_ASSIGN(c.command.timeout, af->duration("timeout"));
      auto env = af->string_map("environment");
      if (!env) return env.error();
      c.command.environment = std::move(*env);
      if (auto v = c.command.validate(); !v) return with_context(v.error(), where);
    }
    if (auto r = af->no_others(); !r) return r.error();
    if (auto r = f->no_others(); !r) return r.error();
    if (auto v = c.spec.validate(); !v) return with_context(v.error(), std::string(origin));
    out.push_back(std::move(c));
  }
  return out;
}

Result<std::unique_ptr<Actuator>> make_actuator(const ResourceConfig& c, const Clock& clock) {
  try {
    if (c.actuator == "process_pool") return std::unique_ptr<Actuator>(std::make_unique<ProcessPool>(c.spec.name, c.pool, clock));
    if (c.actuator == "command") return std::unique_ptr<Actuator>(std::make_unique<CommandActuator>(c.spec.name, c.command));
    if (c.actuator == "docker") return std::unique_ptr<Actuator>(std::make_unique<DockerActuator>(c.spec.name, c.docker, clock));
  } catch (const Exception& e) {
    return e.error();
  }
  return fail(errc::invalid_argument, fmt::format("resource \"{}\": unknown actuator \"{}\"", c.spec.name, c.actuator));
}

}  // namespace automation::scaling
