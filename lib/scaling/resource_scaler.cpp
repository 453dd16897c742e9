#include <automation/core/json.hpp>
#include <automation/core/time.hpp>
#include <automation/forecast/forecaster.hpp>
#include <automation/scaling/gates.hpp>
#include <automation/scaling/resource_scaler.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

#include <algorithm>
#include <climits>
#include <cmath>
#include <map>
#include <mutex>

namespace automation::scaling {

namespace sd = automation::storage;
namespace bj = boost::json;

namespace {

std::string number(double v) { return fmt::format("{:g}", v); }

/// `labels` with key=value added, keys in order (as stored labels must be).
std::string with_label(std::string_view labels, std::string_view key, std::string_view value) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start < labels.size()) {
    const auto end = std::min(labels.find(',', start), labels.size());
    if (end > start) parts.emplace_back(labels.substr(start, end - start));
    start = end + 1;
  }
  parts.push_back(fmt::format("{}={}", key, value));
  std::sort(parts.begin(), parts.end(), [](const std::string& a, const std::string& b) {
    return std::string_view(a).substr(0, a.find('=')) < std::string_view(b).substr(0, b.find('='));
  });
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ",") + p;
  return out;
}

/// The newest stored value of a series since `since`.
Result<std::optional<double>> latest(sd::Store& store, const std::string& name, const std::string& labels, TimePoint since) {
  sd::MetricQuery q;
  q.name = name;
  q.labels = labels;
  q.since = since;
  q.limit = 1;
  q.newest_first = true;
  auto pts = store.query_metric_points(q);
  if (!pts) return pts.error();
  if (pts->empty()) return std::optional<double>();
  return std::optional<double>(pts->front().value);
}

std::string series(const std::string& name, const std::string& labels) {
  return labels.empty() ? name : fmt::format("{}{{{}}}", name, labels);
}

/// The value a reading stands for: a total, or the mean of the members' values.
std::optional<double> reading_value(const MetricReading& m) {
  if (!m.error.empty()) return std::nullopt;
  if (m.kind == MetricKind::total) return m.total;
  double sum = 0;
  int n = 0;
  for (const auto& s : m.members)
    if (s.value && s.ready) {
      sum += *s.value;
      ++n;
    }
  // Without members (a resource at 0) the series without the member label stands for them.
  if (n == 0) return m.total;
  return sum / n;
}

bj::object reading_json(const MetricReading& m) {
  bj::object o{{"name", m.name}, {"kind", m.kind == MetricKind::total ? "total" : "per_member"}};
  if (m.target > 0) o["target"] = m.target;
  if (!m.error.empty()) o["error"] = m.error;
  if (m.kind == MetricKind::total) {
    o["value"] = json::or_null(m.total);
  } else {
    o["value"] = json::or_null(reading_value(m));
    bj::array members;
    for (const auto& s : m.members)
      members.push_back(bj::object{{"member", s.member}, {"value", json::or_null(s.value)}, {"ready", s.ready}});
    o["members"] = std::move(members);
  }
  return o;
}

/// A resize that happened, or may have (pending: under way, or its process died): both start the
/// cooldowns and count in the rate policies.
bool resized(const storage::ScalingRecord& h) { return (h.outcome == "applied" || h.outcome == "pending") && h.desired != h.current; }

/// How long a pending record keeps others from acting on the resource.
constexpr auto kInFlight = std::chrono::minutes(10);

}  // namespace

// ---- validation --------------------------------------------------------------------------------

Result<void> ScalingPolicy::validate() const {
  if (min_replicas < 0) return fail(errc::invalid_argument, fmt::format("\"min\" cannot be negative ({})", min_replicas));
  if (max_replicas < std::max(min_replicas, 1))
    return fail(errc::invalid_argument,
                fmt::format("\"max\" ({}) must be at least 1 and at least \"min\" ({})", max_replicas, min_replicas));
  if (mode == PolicyMode::hpa) {
    if (metrics.empty()) return fail(errc::invalid_argument, "an hpa policy needs at least one metric");
    for (std::size_t i = 0; i < metrics.size(); ++i) {
      const auto& m = metrics[i];
      if (m.name.empty()) return fail(errc::invalid_argument, fmt::format("metric {}: \"name\" must not be empty", i + 1));
      if (!(m.target > 0) || !std::isfinite(m.target))
        return fail(errc::invalid_argument, fmt::format("metric \"{}\": \"target\" must be a positive number", m.name));
      if (!std::isfinite(m.activation) || m.activation < 0)
        return fail(errc::invalid_argument, fmt::format("metric \"{}\": \"activation\" must be 0 or more", m.name));
    }
    return hpa_options().validate();
  }
  auto o = step_options();
  o.bands = bands;  // empty bands are fine: the seeds' apply
  return o.validate();
}

HpaOptions ScalingPolicy::hpa_options() const {
  HpaOptions o;
  o.min_replicas = min_replicas;
  o.max_replicas = max_replicas;
  o.tolerance = tolerance;
  o.behavior = behavior;
  return o;
}

StepOptions ScalingPolicy::step_options() const {
  StepOptions o;
  o.min_replicas = min_replicas;
  o.max_replicas = max_replicas;
  o.bands = bands.empty() ? seed_steps().bands : bands;
  return o;
}

Result<void> ResourceSpec::validate() const {
  if (auto v = sd::check_resource_name("resource", name); !v) return v;
  auto bad = [&](std::string msg) { return fail(errc::invalid_argument, fmt::format("resource \"{}\": {}", name, msg)); };
  if (auto v = policy.validate(); !v) return bad(v.error().message);
  if (cooldown_up < Duration{} || cooldown_down < Duration{}) return bad("cooldowns cannot be negative");
  if (staleness <= Duration{}) return bad("\"staleness\" must be positive");
  if (activation && (activation->cooldown < Duration{} || activation->wake_to < 1 || activation->wake_to > policy.max_replicas))
    return bad(fmt::format("activation needs a cooldown of 0 or more and a wake_to from 1 to the maximum ({})", policy.max_replicas));
  if (activation && policy.mode != PolicyMode::hpa)
    return bad("activation (scaling to and from zero) needs an hpa policy: its metrics carry the activation thresholds");
  if (fallback && (fallback->after < 1 || fallback->size < policy.min_replicas || fallback->size > policy.max_replicas))
    return bad(fmt::format("fallback needs \"after\" of at least 1 and a size within [{}, {}]", policy.min_replicas, policy.max_replicas));
  if (predictive) {
    const auto& p = *predictive;
    bool known = false;
    for (const auto& m : policy.metrics) known = known || m.name == p.metric;
    if (policy.mode == PolicyMode::steps)
      for (const auto& b : policy.step_options().bands) known = known || b.metric == p.metric;
    if (!known) return bad(fmt::format("predictive metric \"{}\" is not one of the policy's metrics", p.metric));
    if (p.step < std::chrono::seconds(1) || p.horizon < p.step || p.history < p.step * 2)
      return bad("predictive needs a step of at least 1s, a horizon of at least one step and a history of at least two");
    if (p.history / p.step > 100000 || p.horizon / p.step > 10000)
      return bad("predictive: at most 100000 steps of history and 10000 of horizon");
    if (!(p.level > 0 && p.level < 100)) return bad("predictive \"level\" must be between 0 and 100");
  }
  return {};
}

// ---- the scaler --------------------------------------------------------------------------------

struct ResourceScaler::Resource {
  ResourceSpec spec;
  std::unique_ptr<Actuator> actuator;
  MetricSource source;
};

struct ResourceScaler::Impl {
  sd::Store& store;
  const Clock& clock;
  forecast::Forecaster* forecaster;
  std::mutex mu;
  std::map<std::string, Resource, std::less<>> resources;

  Result<Resource*> find(std::string_view name) {
    auto it = resources.find(name);
    if (it != resources.end()) return &it->second;
    std::string known;
    for (const auto& [n, r] : resources) known += (known.empty() ? "" : ", ") + n;
    return fail(errc::not_found,
                fmt::format("unknown resource \"{}\" ({})", name, known.empty() ? "none is configured" : "configured: " + known));
  }

  struct Effective {
    ScalingPolicy policy;
    std::string source = "configuration";
    std::optional<sd::ScalingRecord> record;
  };
  /// The configured policy, or the one last set at run time.
  Result<Effective> policy_of(const Resource& r) {
    Effective e;
    e.policy = r.spec.policy;
    sd::ScalingQuery q;
    q.resource = r.spec.name;
    q.action = "thresholds";
    q.limit = 1;
    auto recs = store.list_scaling(q);
    if (!recs) return recs.error();
    if (recs->empty()) return e;
    const auto& rec = recs->front();
    auto doc = json::parse(rec.inputs, fmt::format("scaling record {}", rec.id));
    const bj::value* p = doc && doc->is_object() ? doc->as_object().if_contains("policy") : nullptr;
    if (!p) {
      e.source = fmt::format("configuration (scaling record {} holds no readable policy)", rec.id);
      return e;
    }
    if (p->is_null()) return e;  // reset to the configuration
    auto parsed = parse_policy(*p, fmt::format("scaling record {}", rec.id));
    if (!parsed) {
      e.source = fmt::format("configuration ({})", parsed.error().message);
      return e;
    }
    e.policy = std::move(*parsed);
    e.source = fmt::format("changed by {} at {}", rec.actor, format_timestamp(rec.time));
    e.record = rec;
    return e;
  }

  /// How far back the windows, policies, cooldowns and activation look.
  static Duration horizon(const ResourceSpec& spec, const ScalingPolicy& policy) {
    Duration h = std::max({spec.cooldown_up, spec.cooldown_down, policy.behavior.up.stabilization, policy.behavior.down.stabilization});
    for (const auto* rules : {&policy.behavior.up, &policy.behavior.down})
      for (const auto& p : rules->policies) h = std::max(h, p.period);
    if (spec.activation) h = std::max(h, spec.activation->cooldown);
    return h + std::chrono::seconds(1);
  }

  std::vector<MetricReading> stored_readings(const ResourceSpec& spec, const ScalingPolicy& policy, const ResourceStatus& st, int current) {
    const auto since = clock.now() - spec.staleness;
    const auto stale = format_duration(std::chrono::duration_cast<Millis>(spec.staleness));
    std::vector<MetricReading> out;
    auto read = [&](MetricReading& m, const std::string& labels) -> std::optional<double> {
      auto v = latest(store, m.name, labels, since);
      if (!v) {
        m.error = v.error().message;
        return std::nullopt;
      }
      return *v;
    };
    if (policy.mode == PolicyMode::steps) {
      const auto bands = policy.step_options().bands;
      for (const auto& b : bands) {
        if (std::any_of(out.begin(), out.end(), [&](const MetricReading& m) { return m.name == b.metric; })) continue;
        MetricReading m{.name = b.metric, .kind = MetricKind::total, .target = 1};
        m.total = read(m, "");
        if (!m.total && m.error.empty()) m.error = fmt::format("no sample of {} within {}", b.metric, stale);
        out.push_back(std::move(m));
      }
      return out;
    }
    for (const auto& spec_m : policy.metrics) {
      MetricReading m{.name = spec_m.name, .kind = spec_m.kind, .target = spec_m.target};
      const auto what = series(spec_m.name, spec_m.labels);
      if (spec_m.kind == MetricKind::total) {
        m.total = read(m, spec_m.labels);
        if (!m.total && m.error.empty()) m.error = fmt::format("no sample of {} within {}", what, stale);
      } else {
        bool any = false;
        for (const auto& member : st.members) {
          auto v = read(m, with_label(spec_m.labels, "member", member.name));
          any = any || v.has_value();
          m.members.push_back({member.name, v, member.ready});
        }
        if (!any && m.error.empty()) {
          // No member's own series: the series without the member label is the members' mean.
          m.members.clear();
          auto v = read(m, spec_m.labels);
          if (v) {
            m.total = v;  // the activation value, also at size 0
            if (st.members.empty()) {
              for (int i = 0; i < current; ++i) m.members.push_back({fmt::format("member {}", i + 1), v, true});
            } else {
              for (const auto& member : st.members) m.members.push_back({member.name, v, member.ready});
            }
          } else if (m.error.empty()) {
            m.error = fmt::format("no sample of {} within {}", what, stale);
          }
        }
      }
      out.push_back(std::move(m));
    }
    return out;
  }

  /// Predictive mode: one more reading from the forecast of the metric's stored history.
  void predict(const ResourceSpec& spec, const ScalingPolicy& policy, const ResourceStatus& st, int current,
               std::vector<MetricReading>& readings, bj::object& inputs) {
    const auto& p = *spec.predictive;
    bj::object f{{"metric", p.metric}, {"level", p.level}, {"horizon", format_duration(std::chrono::duration_cast<Millis>(p.horizon))}};
    auto give_up = [&](std::string why) {
      f["error"] = std::move(why);
      inputs["forecast"] = std::move(f);
    };
    if (!forecaster) return give_up("no forecaster was given to the scaler");
    MetricSpec ms{.name = p.metric, .kind = MetricKind::total};
    for (const auto& m : policy.metrics)
      if (m.name == p.metric) ms = m;
    const auto now = clock.now();
    sd::MetricQuery q;
    q.name = ms.name;
    q.labels = ms.labels;
    q.since = now - p.history;
    auto pts = store.query_metric_points(q);
    if (!pts) return give_up(pts.error().message);
    if (pts->empty() && ms.kind == MetricKind::per_member) {
      // No series for the members' mean: the mean of the members' own series, step by step.
      q.labels.reset();
      pts = store.query_metric_points(q);
      if (!pts) return give_up(pts.error().message);
      std::erase_if(*pts, [&](const sd::MetricPoint& pt) {
        return pt.labels.find("member=") == std::string::npos || (!ms.labels.empty() && pt.labels.find(ms.labels) == std::string::npos);
      });
    }
    if (pts->empty())
      return give_up(fmt::format("no samples of {} within {}", series(ms.name, ms.labels),
                                 format_duration(std::chrono::duration_cast<Millis>(p.history))));
    auto [oldest, newest] = std::minmax_element(pts->begin(), pts->end(), [](const auto& a, const auto& b) { return a.time < b.time; });
    if (now - newest->time > spec.staleness) return give_up(fmt::format("no recent samples of {}", series(ms.name, ms.labels)));
    // Resampled to the step: the mean of each step's samples, a step without any carrying the last.
    const auto step_ms = std::chrono::duration_cast<Millis>(p.step).count();
    const auto first = to_epoch_ms(oldest->time) / step_ms;
    const auto last = to_epoch_ms(now) / step_ms;
    std::vector<double> sum(static_cast<std::size_t>(last - first + 1), 0.0);
    std::vector<int> count(sum.size(), 0);
    for (const auto& pt : *pts) {
      const auto i = static_cast<std::size_t>(to_epoch_ms(pt.time) / step_ms - first);
      if (i >= sum.size()) continue;  // a sample from the future
      sum[i] += pt.value;
      ++count[i];
    }
    std::vector<double> history;
    std::size_t measured = 0;
    for (std::size_t i = 0; i < sum.size(); ++i) {
      // The current step is still filling: it counts only once it has a sample.
      if (i + 1 == sum.size() && count[i] == 0) break;
      measured += count[i] ? 1 : 0;
      history.push_back(count[i] ? sum[i] / count[i] : history.empty() ? 0.0 : history.back());
    }
    f["points"] = measured;
    if (measured < p.min_points)
      return give_up(fmt::format("only {} steps of {} have samples within {} at {} steps (needs {})", measured, ms.name,
                                 format_duration(std::chrono::duration_cast<Millis>(p.history)),
                                 format_duration(std::chrono::duration_cast<Millis>(p.step)), p.min_points));
    forecast::Options fo;
    fo.horizon = static_cast<std::size_t>((p.horizon + p.step - Duration(1)) / p.step) + (sum.size() - history.size());
    fo.levels = {p.level};
    auto fc = forecaster->forecast(history, fo);
    if (!fc) return give_up(fc.error().message);
    const auto& upper = fc->intervals.front().upper;
    const double peak = std::max(0.0, *std::max_element(upper.begin(), upper.end()));
    f["upper"] = peak;
    f["method"] = std::string(forecast::to_string(fc->method));
    f["backend"] = fc->backend;
    f["why"] = fc->why;
    f["steps"] = fo.horizon;
    inputs["forecast"] = std::move(f);
    MetricReading m{.name = "forecast:" + ms.name, .kind = ms.kind, .target = ms.target};
    if (ms.kind == MetricKind::total) {
      m.total = peak;
    } else if (st.members.empty()) {
      for (int i = 0; i < current; ++i) m.members.push_back({fmt::format("member {}", i + 1), peak, true});
    } else {
      for (const auto& member : st.members) m.members.push_back({member.name, peak, member.ready});
    }
    readings.push_back(std::move(m));
  }

  Result<sd::ScalingRecord> store_record(sd::ScalingRecord rec, std::optional<std::int64_t> after) {
    auto id = store.append_scaling(rec, after);
    if (!id) {
      if (id.error().code == errc::conflict)
        return fail(errc::busy,
                    fmt::format("resource \"{}\": another scaler recorded a decision at the same time; nothing was done", rec.resource));
      return with_context(id.error(), fmt::format("resource \"{}\": recording the decision", rec.resource));
    }
    rec.id = *id;
    return rec;
  }

  /// Records `rec` as pending, runs `act`, and records its outcome.
  Result<sd::ScalingRecord> act(sd::ScalingRecord rec, std::int64_t after, const std::function<Result<void>()>& action) {
    rec.outcome = "pending";
    auto stored = store_record(std::move(rec), after);
    if (!stored) return stored;
    auto done = action();
    stored->outcome = done ? "applied" : "failed";
    stored->error = done ? std::string() : done.error().message;
    stored->updated = clock.now();
    if (auto f = store.finish_scaling(stored->id, stored->outcome, stored->error, stored->updated); !f)
      return with_context(f.error(),
                          fmt::format("resource \"{}\": recording the outcome of scaling record {}", stored->resource, stored->id));
    return stored;
  }

  /// The resource's size: what its actuator says, else the last size set, else the minimum.
  Result<int> size_of(const Resource& r, const ResourceStatus& st, const ScalingPolicy& policy) {
    if (st.size) return *st.size;
    sd::ScalingQuery q;
    q.resource = r.spec.name;
    q.outcome = "applied";
    q.changes_only = true;
    q.limit = 1;
    auto recs = store.list_scaling(q);
    if (!recs) return recs.error();
    return recs->empty() ? policy.min_replicas : recs->front().desired;
  }

  /// errc::busy while another action on the resource is under way (a pending record younger than
  /// kInFlight; an older one belongs to a process that died, and the actuator's size tells the truth).
  Result<void> check_in_flight(const std::string& resource, TimePoint now) {
    sd::ScalingQuery q;
    q.resource = resource;
    q.outcome = "pending";
    q.since = now - kInFlight;
    q.limit = 1;
    auto recs = store.list_scaling(q);
    if (!recs) return recs.error();
    if (!recs->empty())
      return fail(errc::busy,
                  fmt::format("resource \"{}\": {} by {} is under way (scaling record {}, since {}); nothing was done", resource,
                              recs->front().action, recs->front().actor, recs->front().id, format_timestamp(recs->front().time)));
    return {};
  }

  /// The resource's newest `n` (at least 1) decisions, newest first.
  Result<std::vector<sd::ScalingRecord>> recent_decisions(const std::string& resource, int n) {
    sd::ScalingQuery q;
    q.resource = resource;
    q.action = "decide";
    q.limit = static_cast<std::size_t>(std::max(1, n));
    return store.list_scaling(q);
  }

  /// What a manual action starts from: the resource, its policy, the compare-and-set base, its
  /// status and size (errc::busy while another action is under way).
  struct Manual {
    Resource* resource;
    Effective policy;
    std::int64_t newest;
    ResourceStatus status;
    int current;
    TimePoint now;
    sd::ScalingRecord record(std::string action, const std::string& actor) const {
      sd::ScalingRecord rec;
      rec.resource = resource->spec.name;
      rec.action = std::move(action);
      rec.time = rec.updated = now;
      rec.actor = actor;
      rec.current = rec.recommended = rec.desired = current;
      rec.reason = "Manual";
      return rec;
    }
  };
  Result<Manual> begin_manual(std::string_view name) {
    auto found = find(name);
    if (!found) return found.error();
    Resource& r = **found;
    auto eff = policy_of(r);
    if (!eff) return eff.error();
    const auto now = clock.now();
    auto newest = newest_id(r.spec.name);
    if (!newest) return newest.error();
    if (auto busy = check_in_flight(r.spec.name, now); !busy) return busy.error();
    auto st = r.actuator->status();
    if (!st) return with_context(st.error(), fmt::format("resource \"{}\": reading its size", name));
    auto current = size_of(r, *st, eff->policy);
    if (!current) return current.error();
    return Manual{&r, std::move(*eff), *newest, std::move(*st), *current, now};
  }

  Result<std::int64_t> newest_id(const std::string& resource) {
    sd::ScalingQuery q;
    q.resource = resource;
    q.limit = 1;
    auto recs = store.list_scaling(q);
    if (!recs) return recs.error();
    return recs->empty() ? std::int64_t{0} : recs->front().id;
  }
};

ResourceScaler::ResourceScaler(sd::Store& store, const Clock& clock, forecast::Forecaster* forecaster)
    : impl_(new Impl{store, clock, forecaster}) {}

ResourceScaler::~ResourceScaler() = default;

Result<void> ResourceScaler::add(ResourceSpec spec, std::unique_ptr<Actuator> actuator, MetricSource source) {
  if (auto v = spec.validate(); !v) return v;
  if (!actuator) return fail(errc::invalid_argument, fmt::format("resource \"{}\" has no actuator", spec.name));
  std::lock_guard lock(impl_->mu);
  if (impl_->resources.contains(spec.name)) return fail(errc::already_exists, fmt::format("resource \"{}\" is already added", spec.name));
  auto name = spec.name;
  impl_->resources.emplace(std::move(name), Resource{std::move(spec), std::move(actuator), std::move(source)});
  return {};
}

std::vector<std::string> ResourceScaler::resources() const {
  std::lock_guard lock(impl_->mu);
  std::vector<std::string> out;
  for (const auto& [name, r] : impl_->resources) out.push_back(name);
  return out;
}

Result<sd::ScalingRecord> ResourceScaler::evaluate(std::string_view resource, const EvaluateOptions& options) {
  std::lock_guard lock(impl_->mu);
  auto& im = *impl_;
  auto found = im.find(resource);
  if (!found) return found.error();
  Resource& r = **found;
  const auto& spec = r.spec;
  const auto now = im.clock.now();
  auto eff = im.policy_of(r);
  if (!eff) return eff.error();
  const ScalingPolicy& policy = eff->policy;

  // The newest record first: the compare-and-set base; a record written after it and read in the
  // history below means another writer is at work.
  auto newest = im.newest_id(spec.name);
  if (!newest) return newest.error();
  sd::ScalingQuery hq;
  hq.resource = spec.name;
  hq.since = now - Impl::horizon(spec, policy);
  hq.limit = 0;
  hq.newest_first = false;
  auto history = im.store.list_scaling(hq);
  if (!history) return history.error();
  if (!history->empty() && history->back().id > *newest)
    return fail(errc::busy,
                fmt::format("resource \"{}\": another scaler recorded a decision at the same time; nothing was done", spec.name));
  if (options.record)
    if (auto busy = im.check_in_flight(spec.name, now); !busy) return busy.error();
  // The newest decisions: whether there was one ever (the HPA's seed), and the fallback's count.
  auto recent = im.recent_decisions(spec.name, spec.fallback ? spec.fallback->after : 1);
  if (!recent) return recent.error();
  const bool decided = !recent->empty();

  sd::ScalingRecord rec;
  rec.resource = spec.name;
  rec.action = "decide";
  rec.time = rec.updated = now;
  rec.actor = options.actor;
  rec.dry_run = spec.dry_run || options.dry_run;
  bj::object inputs{
      {"mode", policy.mode == PolicyMode::hpa ? "hpa" : "steps"}, {"policy_source", eff->source}, {"actuator", r.actuator->kind()}};

  auto st = r.actuator->status();
  if (!st) {
    auto size = im.size_of(r, ResourceStatus{}, policy);
    rec.current = rec.recommended = rec.desired = size ? *size : 0;
    rec.reason = "FailedGetScale";
    rec.message = fmt::format("cannot read the size of \"{}\": {}", spec.name, st.error().message);
    rec.error = st.error().message;
    rec.metrics_ok = false;
    rec.outcome = "failed";
    rec.inputs = json::dump(inputs);
    if (!options.record) return rec;
    return im.store_record(std::move(rec), *newest);
  }
  auto size = im.size_of(r, *st, policy);
  if (!size) return size.error();
  const int current = *size;
  inputs["status"] = st->detail;
  inputs["members"] = st->members.size();

  auto readings = r.source ? r.source(spec, *st) : im.stored_readings(spec, policy, *st, current);
  // Read: at least one metric has a value (the HPA decides on those; the fallback is for none).
  bool metrics_ok = false;
  for (const auto& m : readings) metrics_ok = metrics_ok || (m.error.empty() && reading_value(m).has_value());
  bool active = false;
  for (const auto& m : readings) {
    double threshold = 0;
    for (const auto& ms : policy.metrics)
      if (ms.name == m.name) threshold = ms.activation;
    if (auto v = reading_value(m); v && *v > threshold) active = true;
  }
  if (spec.predictive) im.predict(spec, policy, *st, current, readings, inputs);
  bj::array shown;
  for (const auto& m : readings) shown.push_back(reading_json(m));
  inputs["readings"] = std::move(shown);
  rec.current = current;
  rec.metrics_ok = metrics_ok;
  rec.active = active;

  // The ordinary decision, unless activation overrides it. Metrics that cannot be read say nothing
  // about activity: a resource above 0 is never put to sleep on an outage.
  std::optional<Activation::Override> wake;
  if (spec.activation && (metrics_ok || current == 0)) {
    Activation act(spec.activation->cooldown, spec.activation->wake_to);
    std::optional<TimePoint> last_active;
    for (const auto& h : *history)
      if (h.action == "decide" && h.active) last_active = h.time;
    if (!last_active && *newest != 0) {
      // Not active within the horizon: inactive since the first look, or since the horizon began.
      sd::ScalingQuery first;
      first.resource = spec.name;
      first.limit = 1;
      first.newest_first = false;
      auto oldest = im.store.list_scaling(first);
      if (!oldest) return oldest.error();
      if (!oldest->empty()) last_active = std::max(oldest->front().time, now - Impl::horizon(spec, policy));
    }
    if (last_active) act.restore(*last_active);
    wake = act.check(current, active, now);
  }
  if (wake) {
    if (wake->size > 0) wake->size = std::clamp(wake->size, std::max(1, policy.min_replicas), policy.max_replicas);
    rec.recommended = rec.desired = wake->size;
    rec.reason = wake->reason;
    rec.message = wake->message;
  } else if (spec.activation && current == 0) {
    rec.recommended = rec.desired = 0;
    rec.reason = "Inactive";
    rec.message = "no metric is above its activation threshold: it stays at 0";
  } else if (policy.mode == PolicyMode::hpa) {
    auto o = policy.hpa_options();
    if (spec.activation) o.min_replicas = std::max(1, o.min_replicas);
    // The first decision ever seeds the scale-down window with the current size (as the HPA
    // does when it starts watching); the seed is recorded, so later decisions keep it.
    HpaScaler hpa(im.clock, o, decided ? std::nullopt : std::optional<int>(current));
    if (!decided && o.behavior.down.stabilization > Duration{}) inputs["seed"] = current;
    for (const auto& h : *history) {
      if (h.action == "decide") {
        auto doc = json::parse(h.inputs, fmt::format("scaling record {}", h.id));
        if (doc && doc->is_object()) {
          const auto& in = doc->as_object();
          if (auto* seed = in.if_contains("seed"); seed && seed->is_int64()) hpa.remember(h.time, static_cast<int>(seed->as_int64()));
          if (auto* a = in.if_contains("able_to_scale"); a && a->is_string() && !a->as_string().empty())
            hpa.remember(h.time, h.recommended);
        }
      }
      if (resized(h)) hpa.applied_at(h.time, h.current, h.desired);
    }
    auto d = hpa.decide(current, readings);
    rec.recommended = d.recommended;
    rec.desired = d.desired;
    rec.reason = d.reason;
    rec.message = d.message;
    inputs["stabilized"] = d.stabilized;
    inputs["able_to_scale"] = d.able_to_scale;
    inputs["scaling_limited"] = d.scaling_limited;
    bj::array proposals;
    const Proposal* predicted = nullptr;
    int others = INT_MIN;
    for (const auto& p : d.proposals) {
      proposals.push_back(bj::object{{"metric", p.metric},
                                     {"valid", p.valid},
                                     {"replicas", p.replicas},
                                     {"ratio", std::isfinite(p.ratio) ? bj::value(p.ratio) : bj::value(nullptr)},
                                     {"detail", p.detail}});
      if (p.metric.starts_with("forecast:")) {
        predicted = &p;
      } else if (p.valid) {
        others = std::max(others, p.replicas);
      }
    }
    inputs["proposals"] = std::move(proposals);
    // The forecast drove the decision when its proposal won and nothing after it changed the size.
    if (predicted && predicted->valid && predicted->replicas > others && predicted->replicas == d.recommended &&
        d.desired == d.recommended && d.desired != current) {
      rec.message += fmt::format("; driven by the forecast of {}: {}", predicted->metric.substr(9), predicted->detail);
      inputs["driven_by_forecast"] = true;
    }
  } else {
    const auto o = policy.step_options();
    std::map<std::string, double> values;
    std::string raised;
    for (const auto& m : readings) {
      auto v = reading_value(m);
      if (!v) continue;
      if (m.name.starts_with("forecast:")) {
        const auto base = m.name.substr(9);
        auto it = values.find(base);
        if (it != values.end() && *v > it->second) {
          raised = fmt::format("; the forecast of {} ({} at its upper bound) stood in for its current value {}", base, number(*v),
                               number(it->second));
          it->second = *v;
        }
        continue;
      }
      values[m.name] = *v;
    }
    auto d = decide_steps(current, values, o);
    rec.recommended = rec.desired = d.desired;
    rec.reason = d.reason;
    rec.message = d.message + (d.desired != current ? raised : std::string());
    bj::array held;
    for (const auto& h : d.held) held.push_back(bj::value(h));
    inputs["held"] = std::move(held);
  }

  // The fallback size after consecutive failed reads.
  if (spec.fallback && !wake) {
    Fallback fb(spec.fallback->after, spec.fallback->size);
    int failures = 0;
    for (const auto& h : *recent) {
      if (h.reason == "FailedGetScale") continue;  // the size could not be read: no metrics were asked
      if (h.metrics_ok) break;
      ++failures;
    }
    fb.restore(failures);
    if (auto size = fb.record(metrics_ok)) {
      rec.desired = *size;
      rec.reason = "Fallback";
      rec.message = fmt::format("the metrics could not be read {} times in a row: the fallback size {} applies ({})", fb.failures(), *size,
                                rec.message);
    }
  }
  inputs["decision"] = rec.reason;

  // Cooldowns hold ordinary changes; corrections into the bounds, waking from zero and the fallback do not wait.
  const bool correction = current < policy.min_replicas || current > policy.max_replicas;
  std::string outcome = rec.desired == current ? "unchanged" : rec.dry_run ? "dry-run" : "";
  // Deactivation waits for them too: a manual scale-up is not undone at once.
  if (rec.desired != current && !correction && rec.reason != "Activated" && rec.reason != "Fallback") {
    Cooldowns cd(spec.cooldown_up, spec.cooldown_down);
    for (const auto& h : *history)
      if (resized(h)) cd.applied(h.current, h.desired, h.time);
    if (auto until = cd.blocked_until(current, rec.desired, now)) {
      const bool up = rec.desired > current;
      rec.message = fmt::format("{} to {} held until {} by the {} cooldown ({})", up ? "scaling up" : "scaling down", rec.desired,
                                format_timestamp(*until), up ? "scale-up" : "scale-down", rec.message);
      rec.reason = up ? "ScaleUpCooldown" : "ScaleDownCooldown";
      outcome = "blocked";
    }
  }
  rec.inputs = json::dump(inputs);
  if (!options.record) {
    rec.outcome = outcome.empty() ? "dry-run" : outcome;
    return rec;
  }
  if (!outcome.empty()) {
    rec.outcome = outcome;
    return im.store_record(std::move(rec), *newest);
  }
  Actuator& actuator = *r.actuator;
  const int desired = rec.desired;
  const std::string why = fmt::format("{}: {}", rec.reason, rec.message);
  return im.act(std::move(rec), *newest, [&] { return actuator.resize(desired, why); });
}

std::vector<Result<sd::ScalingRecord>> ResourceScaler::evaluate_all(const EvaluateOptions& options) {
  std::vector<Result<sd::ScalingRecord>> out;
  for (const auto& name : resources()) out.push_back(evaluate(name, options));
  return out;
}

Result<sd::ScalingRecord> ResourceScaler::scale_by(std::string_view resource, int delta, const std::string& actor,
                                                   const std::string& reason) {
  return manual_resize(resource, true, delta, actor, reason);
}

Result<sd::ScalingRecord> ResourceScaler::scale_to(std::string_view resource, int size, const std::string& actor,
                                                   const std::string& reason) {
  return manual_resize(resource, false, size, actor, reason);
}

Result<sd::ScalingRecord> ResourceScaler::manual_resize(std::string_view resource, bool relative, int amount, const std::string& actor,
                                                        const std::string& reason) {
  std::lock_guard lock(impl_->mu);
  auto m = impl_->begin_manual(resource);
  if (!m) return m.error();
  const auto& policy = m->policy.policy;
  const int current = m->current;
  const long long asked = relative ? static_cast<long long>(current) + amount : amount;
  const int size = static_cast<int>(std::clamp<long long>(asked, -1, 1000000));
  const int lo = m->resource->spec.activation ? 0 : policy.min_replicas;
  const int target = std::clamp(size, lo, policy.max_replicas);
  if (target == current) {
    if (size > policy.max_replicas)
      return fail(errc::invalid_argument, fmt::format("resource \"{}\" is at its maximum of {}", resource, policy.max_replicas));
    if (size < lo) return fail(errc::invalid_argument, fmt::format("resource \"{}\" is at its minimum of {}", resource, lo));
    return fail(errc::invalid_argument, fmt::format("resource \"{}\" already has {} member{}", resource, target, target == 1 ? "" : "s"));
  }
  auto rec = m->record(target > current ? "scale-up" : "scale-down", actor);
  rec.recommended = size < 0 ? 0 : size;
  rec.desired = target;
  rec.message = fmt::format("{} from {} to {} by {}{}{}", rec.action, current, target, actor, reason.empty() ? "" : ": " + reason,
                            target != size ? fmt::format(" (asked for {}, kept within [{}, {}])", size, lo, policy.max_replicas) : "");
  rec.inputs = json::dump(bj::object{{"status", m->status.detail}, {"asked", size}});
  Actuator& actuator = *m->resource->actuator;
  const std::string why = rec.message;
  return impl_->act(std::move(rec), m->newest, [&] { return actuator.resize(target, why); });
}

Result<sd::ScalingRecord> ResourceScaler::restart(std::string_view resource, const std::string& actor, const std::string& reason) {
  std::lock_guard lock(impl_->mu);
  auto m = impl_->begin_manual(resource);
  if (!m) return m.error();
  const int current = m->current;
  auto rec = m->record("restart", actor);
  rec.message = fmt::format("restart of {} member{} by {}{}", current, current == 1 ? "" : "s", actor, reason.empty() ? "" : ": " + reason);
  rec.inputs = json::dump(bj::object{{"status", m->status.detail}});
  Actuator& actuator = *m->resource->actuator;
  const std::string why = rec.message;
  return impl_->act(std::move(rec), m->newest, [&] { return actuator.restart(why); });
}

Result<sd::ScalingRecord> ResourceScaler::set_policy(std::string_view resource, const ScalingPolicy& policy, const std::string& actor,
                                                     const std::string& reason) {
  std::lock_guard lock(impl_->mu);
  auto& im = *impl_;
  auto found = im.find(resource);
  if (!found) return found.error();
  Resource& r = **found;
  ResourceSpec check = r.spec;
  check.policy = policy;
  if (auto v = check.validate(); !v) return v.error();
  sd::ScalingRecord rec;
  rec.resource = r.spec.name;
  rec.action = "thresholds";
  rec.time = rec.updated = im.clock.now();
  rec.actor = actor;
  rec.reason = "PolicyChanged";
  rec.message = fmt::format("policy changed by {}{}", actor, reason.empty() ? "" : ": " + reason);
  rec.inputs = json::dump(bj::object{{"policy", to_json(policy)}});
  rec.outcome = "applied";
  return im.store_record(std::move(rec), std::nullopt);
}

Result<sd::ScalingRecord> ResourceScaler::reset_policy(std::string_view resource, const std::string& actor) {
  std::lock_guard lock(impl_->mu);
  auto& im = *impl_;
  auto found = im.find(resource);
  if (!found) return found.error();
  sd::ScalingRecord rec;
  rec.resource = (*found)->spec.name;
  rec.action = "thresholds";
  rec.time = rec.updated = im.clock.now();
  rec.actor = actor;
  rec.reason = "PolicyReset";
  rec.message = fmt::format("policy reset to the configuration by {}", actor);
  rec.inputs = json::dump(bj::object{{"policy", nullptr}});
  rec.outcome = "applied";
  return im.store_record(std::move(rec), std::nullopt);
}

Result<ResourceReport> ResourceScaler::report(std::string_view resource) {
  std::lock_guard lock(impl_->mu);
  auto& im = *impl_;
  auto found = im.find(resource);
  if (!found) return found.error();
  Resource& r = **found;
  auto eff = im.policy_of(r);
  if (!eff) return eff.error();
  ResourceReport rep;
  rep.spec = r.spec;
  rep.spec.policy = eff->policy;
  rep.policy_source = eff->source;
  rep.actuator = std::string(r.actuator->kind());
  rep.status = r.actuator->status();
  sd::ScalingQuery q;
  q.resource = r.spec.name;
  q.action = "decide";
  q.limit = 1;
  auto last = im.store.list_scaling(q);
  if (!last) return last.error();
  if (!last->empty()) rep.last_decision = last->front();
  q.action.reset();
  q.changes_only = true;
  q.outcome = "applied";
  last = im.store.list_scaling(q);
  if (!last) return last.error();
  if (!last->empty()) rep.last_change = last->front();  // changes_only: a resize or a manual action
  return rep;
}

}  // namespace automation::scaling
