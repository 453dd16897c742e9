#include <automation/scaling/hpa.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>
#include <map>

namespace automation::scaling {

namespace {

// As the HPA (1.33) tests it: (1 - down) <= ratio <= (1 + up).
bool within(double ratio, const Tolerance& t) { return 1.0 - t.down <= ratio && ratio <= 1.0 + t.up; }

int ceil_int(double v) {
  if (!(v > 0)) return 0;
  return v >= static_cast<double>(INT_MAX) ? INT_MAX : static_cast<int>(std::ceil(v));
}

int clamp_int(long long v) { return static_cast<int>(std::clamp<long long>(v, INT_MIN, INT_MAX)); }

std::string number(double v) { return fmt::format("{:.6g}", v); }

}  // namespace

Result<void> HpaOptions::validate() const {
  auto bad = [](std::string what) { return fail(errc::invalid_argument, std::move(what)); };
  if (min_replicas < 0) return bad(fmt::format("min_replicas {} is negative", min_replicas));
  if (max_replicas < min_replicas) return bad(fmt::format("max_replicas {} is below min_replicas {}", max_replicas, min_replicas));
  if (max_replicas < 1) return bad("max_replicas must be at least 1");
  if (!(tolerance.up >= 0) || !(tolerance.down >= 0)) return bad("tolerances must be 0 or more");
  for (const auto* rules : {&behavior.up, &behavior.down}) {
    const auto dir = rules == &behavior.up ? "scale-up" : "scale-down";
    if (rules->stabilization < Duration{}) return bad(fmt::format("{} stabilization window is negative", dir));
    if (rules->policies.empty() && rules->select != SelectPolicy::disabled)
      return bad(fmt::format("{} rules need a policy (or select disabled)", dir));
    for (const auto& p : rules->policies) {
      if (p.value <= 0 || p.value > 1'000'000) return bad(fmt::format("{} policy value {} must be from 1 to 1,000,000", dir, p.value));
      if (p.period <= Duration{}) return bad(fmt::format("{} policy period must be longer than 0", dir));
    }
  }
  return {};
}

Proposal propose(int current, const MetricReading& m, const Tolerance& tol) {
  Proposal p;
  p.metric = m.name;
  if (!m.error.empty()) {
    p.detail = m.error;
    return p;
  }
  if (!(m.target > 0)) {
    p.detail = fmt::format("target {} must be more than 0", number(m.target));
    return p;
  }
  if (m.kind == MetricKind::total) {
    if (!m.total || !std::isfinite(*m.total)) {
      p.detail = "no value";
      return p;
    }
    if (*m.total < 0) {
      p.detail = fmt::format("a negative value {}", number(*m.total));
      return p;
    }
    p.valid = true;
    // At a size of 0 the ratio is infinite, as in the HPA: ceil(total / target) whatever it is.
    p.ratio = current > 0 ? *m.total / (m.target * current) : std::numeric_limits<double>::infinity();
    if (current > 0 && within(p.ratio, tol)) {
      p.replicas = current;
      p.detail = fmt::format("{} against {} x {} members: ratio {:.3f}, within the tolerance", number(*m.total), number(m.target), current,
                             p.ratio);
    } else {
      p.replicas = ceil_int(*m.total / m.target);
      p.detail = fmt::format("{} against {} per member: ceil({} / {}) = {}", number(*m.total), number(m.target), number(*m.total),
                             number(m.target), p.replicas);
    }
    return p;
  }
  // Per-member, grouped as the HPA's groupPods: no value is missing (ready or not), then not ready.
  std::vector<double> values;
  std::size_t unready = 0, missing = 0;
  for (const auto& s : m.members) {
    if (!s.value || !std::isfinite(*s.value)) {
      ++missing;
      continue;
    }
    if (*s.value < 0) {
      p.detail = fmt::format("member {} has a negative value {}", s.member, number(*s.value));
      return p;
    }
    if (!s.ready) {
      ++unready;
      continue;
    }
    values.push_back(*s.value);
  }
  const auto ready = static_cast<int>(values.size());
  if (values.empty()) {
    p.detail = fmt::format("no ready member has a value ({} not ready, {} missing)", unready, missing);
    return p;
  }
  p.valid = true;
  auto mean = [&] {
    double sum = 0;
    for (const double v : values) sum += v;
    return sum / static_cast<double>(values.size());
  };
  const double ratio = mean() / m.target;
  p.ratio = ratio;
  const bool up_with_unready = unready > 0 && ratio > 1.0;
  if (!up_with_unready && missing == 0) {
    if (within(ratio, tol)) {
      p.replicas = current;
      p.detail = fmt::format("mean {} of {} ready members against {}: ratio {:.3f}, within the tolerance", number(mean()), ready,
                             number(m.target), ratio);
    } else {
      p.replicas = ceil_int(ratio * ready);
      p.detail = fmt::format("mean {} of {} ready members against {}: ratio {:.3f}, ceil({:.3f} x {}) = {}", number(mean()), ready,
                             number(m.target), ratio, ratio, ready, p.replicas);
    }
    return p;
  }
  // The HPA's dampening: missing members count as the target on a scale-down and 0 on a scale-up
  // (at a ratio of exactly 1 they stay out); unready ones as 0 on a scale-up.
  std::string missing_as = "left out";
  if (missing > 0 && ratio != 1.0) {
    values.insert(values.end(), missing, ratio < 1.0 ? m.target : 0.0);
    missing_as = ratio < 1.0 ? "the target" : "0";
  }
  if (up_with_unready) values.insert(values.end(), unready, 0.0);
  const double adjusted = mean() / m.target;
  p.ratio = adjusted;
  const auto counted = static_cast<int>(values.size());
  const auto assumed =
      fmt::format("{} missing taken as {}, {} not ready taken as {}", missing, missing_as, unready, up_with_unready ? "0" : "absent");
  if (within(adjusted, tol) || (ratio < 1.0 && adjusted > 1.0) || (ratio > 1.0 && adjusted < 1.0)) {
    p.replicas = current;
    p.detail = fmt::format("ratio {:.3f} over the ready members, {:.3f} with {}: no change", ratio, adjusted, assumed);
    return p;
  }
  const int proposed = ceil_int(adjusted * counted);
  if ((adjusted < 1.0 && proposed > current) || (adjusted > 1.0 && proposed < current)) {
    p.replicas = current;
    p.detail = fmt::format("ratio {:.3f} with {} would move against it ({}): no change", adjusted, assumed, proposed);
    return p;
  }
  p.replicas = proposed;
  p.detail = fmt::format("ratio {:.3f} with {}: ceil({:.3f} x {}) = {}", adjusted, assumed, adjusted, counted, proposed);
  return p;
}

HpaScaler::HpaScaler(const Clock& clock, HpaOptions options, std::optional<int> current) : clock_(clock), options_(std::move(options)) {
  if (auto v = options_.validate(); !v) throw Exception(with_context(v.error(), "scaler"));
  if (current && options_.behavior.down.stabilization > Duration{}) recommendations_.push_back({clock_.now(), *current});
}

void HpaScaler::remember(TimePoint time, int recommended) { recommendations_.push_back({time, recommended}); }

int HpaScaler::change_in_period(const std::vector<Event>& events, Duration period, TimePoint now) const {
  int sum = 0;
  for (const auto& e : events)
    if (e.time > now - period) sum += e.change;
  return sum;
}

void HpaScaler::forget(TimePoint now) {
  const auto longest_window = std::max(options_.behavior.up.stabilization, options_.behavior.down.stabilization);
  std::erase_if(recommendations_, [&](const Recommendation& r) { return r.time <= now - longest_window && r.time != now; });
  Duration longest_period{};
  for (const auto* rules : {&options_.behavior.up, &options_.behavior.down})
    for (const auto& p : rules->policies) longest_period = std::max(longest_period, p.period);
  std::erase_if(up_events_, [&](const Event& e) { return e.time <= now - longest_period; });
  std::erase_if(down_events_, [&](const Event& e) { return e.time <= now - longest_period; });
}

HpaDecision HpaScaler::decide(int current, std::span<const MetricReading> metrics) {
  const auto now = clock_.now();
  forget(now);
  HpaDecision d;
  d.time = now;
  d.current = current;
  const int lo = options_.min_replicas, hi = options_.max_replicas;
  // A resource scaled to 0 with a minimum above 0 is switched off: left alone, as the HPA does.
  if (current == 0 && lo > 0) {
    d.recommended = d.stabilized = d.desired = 0;
    d.reason = "ScalingDisabled";
    d.message = "scaling is disabled since the size of the resource is zero";
    return d;
  }
  // Outside the bounds: corrected at once, whatever the metrics say; the windows are not touched.
  if (current > hi || current < lo) {
    d.recommended = d.stabilized = d.desired = current > hi ? hi : lo;
    d.reason = current > hi ? "TooManyReplicas" : "TooFewReplicas";
    d.message = current > hi ? "the current size is above the maximum" : "the current size is below the minimum";
    return d;
  }
  // The metrics' proposal: the largest; a failing metric may not let it go down.
  int proposal = INT_MIN;
  int invalid = 0;
  std::string first_error, first_reason = "FailedGetPodsMetric";
  for (const auto& m : metrics) {
    d.proposals.push_back(propose(current, m, options_.tolerance));
    const auto& p = d.proposals.back();
    if (!p.valid) {
      if (invalid++ == 0) {
        first_error = fmt::format("{}: {}", p.metric, p.detail);
        first_reason = m.kind == MetricKind::total ? "FailedGetExternalMetric" : "FailedGetPodsMetric";
      }
      continue;
    }
    proposal = std::max(proposal, p.replicas);
  }
  if (metrics.empty() || invalid == static_cast<int>(metrics.size()) || (invalid > 0 && proposal < current)) {
    d.recommended = d.stabilized = d.desired = current;
    d.reason = first_reason;
    d.message = metrics.empty() ? std::string("no metrics") : fmt::format("kept at {}: {}", current, first_error);
    return d;  // no recommendation is recorded: nothing was measured
  }
  d.recommended = proposal;

  // Stabilization: the lowest proposal of the scale-up window, the highest of the scale-down one.
  int up = proposal, down = proposal;
  for (const auto& r : recommendations_) {
    if (r.time > now - options_.behavior.up.stabilization) up = std::min(up, r.replicas);
    if (r.time > now - options_.behavior.down.stabilization) down = std::max(down, r.replicas);
  }
  recommendations_.push_back({now, proposal});
  int stabilized = current;
  if (stabilized < up) stabilized = up;
  if (stabilized > down) stabilized = down;
  d.stabilized = stabilized;
  std::string stable_message = "the recommended size matches the current size";
  d.able_to_scale = "ReadyForNewScale";
  if (stabilized != proposal) {
    d.able_to_scale = stabilized < proposal ? "ScaleUpStabilized" : "ScaleDownStabilized";
    stable_message = stabilized < proposal ? "recent recommendations were lower than the current one: the lowest recent one applies"
                                           : "recent recommendations were higher than the current one: the highest recent one applies";
  }

  // Rate policies, then the bounds.
  d.desired = stabilized;
  std::string limit_reason, limit_message;
  if (stabilized > current) {
    const auto& rules = options_.behavior.up;
    int limit = current;
    if (rules.select != SelectPolicy::disabled) {
      limit = rules.select == SelectPolicy::min ? INT_MAX : INT_MIN;
      for (const auto& p : rules.policies) {
        // The size when the period began: less what was added, plus what was removed, within it.
        const int start = clamp_int(static_cast<long long>(current) - change_in_period(up_events_, p.period, now) +
                                    change_in_period(down_events_, p.period, now));
        const int proposed = p.kind == PolicyKind::members ? clamp_int(static_cast<long long>(start) + p.value)
                                                           : ceil_int(static_cast<double>(start) * (1 + p.value / 100.0));
        limit = rules.select == SelectPolicy::min ? std::min(limit, proposed) : std::max(limit, proposed);
      }
      limit = std::max(limit, current);
    }
    int allowed = hi;
    if (allowed > limit) {
      allowed = limit;
      limit_reason = "ScaleUpLimit";
      limit_message = rules.select == SelectPolicy::disabled ? "scaling up is disabled"
                                                             : "the desired size is increasing faster than the maximum scale rate";
    } else {
      limit_reason = "TooManyReplicas";
      limit_message = fmt::format("the desired size is more than the maximum of {}", hi);
    }
    if (stabilized > allowed) d.desired = allowed;
  } else if (stabilized < current) {
    const auto& rules = options_.behavior.down;
    int limit = current;
    if (rules.select != SelectPolicy::disabled) {
      limit = rules.select == SelectPolicy::min ? INT_MIN : INT_MAX;
      for (const auto& p : rules.policies) {
        const int start = clamp_int(static_cast<long long>(current) + change_in_period(down_events_, p.period, now) -
                                    change_in_period(up_events_, p.period, now));
        const int proposed = p.kind == PolicyKind::members ? clamp_int(static_cast<long long>(start) - p.value)
                                                           : static_cast<int>(static_cast<double>(start) * (1 - p.value / 100.0));
        limit = rules.select == SelectPolicy::min ? std::max(limit, proposed) : std::min(limit, proposed);
      }
      limit = std::min(limit, current);
    }
    int allowed = lo;
    if (allowed < limit) {
      allowed = limit;
      limit_reason = "ScaleDownLimit";
      limit_message = rules.select == SelectPolicy::disabled ? "scaling down is disabled"
                                                             : "the desired size is decreasing faster than the maximum scale rate";
    } else {
      limit_reason = "TooFewReplicas";
      limit_message = fmt::format("the desired size is less than the minimum of {}", lo);
    }
    if (stabilized < allowed) d.desired = allowed;
  }
  if (d.desired != stabilized) {
    d.scaling_limited = d.reason = limit_reason;
    d.message = limit_message;
  } else {
    d.scaling_limited = "DesiredWithinRange";
    d.reason = d.able_to_scale == "ReadyForNewScale" ? "DesiredWithinRange" : d.able_to_scale;
    d.message = d.able_to_scale == "ReadyForNewScale" ? "the desired size is within the acceptable range" : stable_message;
  }
  return d;
}

void HpaScaler::applied(int from, int to) { applied_at(clock_.now(), from, to); }

void HpaScaler::applied_at(TimePoint time, int from, int to) {
  if (to > from) up_events_.push_back({time, to - from});
  if (to < from) down_events_.push_back({time, from - to});
}

}  // namespace automation::scaling
