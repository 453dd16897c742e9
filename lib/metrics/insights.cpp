#include <automation/core/json.hpp>
#include <automation/metrics/insights.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <utility>

namespace automation::metrics {

namespace bj = boost::json;
using namespace std::chrono;

std::string_view to_string(InsightKind k) noexcept {
  switch (k) {
    case InsightKind::most_used_feature:
      return "most_used_feature";
    case InsightKind::least_used_feature:
      return "least_used_feature";
    case InsightKind::feature_mover:
      return "feature_mover";
    case InsightKind::error_rate_spike:
      return "error_rate_spike";
    case InsightKind::revenue_trend:
      return "revenue_trend";
    case InsightKind::churn_change:
      return "churn_change";
  }
  return "most_used_feature";
}

std::string_view to_string(InsightSeverity s) noexcept {
  switch (s) {
    case InsightSeverity::info:
      return "info";
    case InsightSeverity::notice:
      return "notice";
    case InsightSeverity::warning:
      return "warning";
  }
  return "info";
}

bj::object to_json(const Insight& i) {
  bj::object o{{"kind", to_string(i.kind)}, {"severity", to_string(i.severity)},
               {"subject", i.subject},      {"sentence", i.sentence},
               {"figure", i.figure},        {"value", i.value}};
  o["previous"] = json::or_null(i.previous);
  o["relative"] = json::or_null(i.relative);
  o["numbers"] = i.numbers;
  return o;
}

Result<void> InsightOptions::validate() const {
  auto bad = [](std::string m) { return fail(errc::invalid_argument, "insight options: " + std::move(m)); };
  if (movers > 100) return bad(fmt::format("movers {} is more than 100", movers));
  if (!(mover_min_relative >= 0)) return bad(fmt::format("mover_min_relative {} is negative", mover_min_relative));
  if (!(spike_ratio >= 1)) return bad(fmt::format("spike_ratio {} is below 1", spike_ratio));
  if (!(spike_min_rate >= 0 && spike_min_rate <= 1)) return bad(fmt::format("spike_min_rate {} is not in [0, 1]", spike_min_rate));
  if (!(trend_flat >= 0)) return bad(fmt::format("trend_flat {} is negative", trend_flat));
  if (trend_min_days < 3 || trend_min_days > 3660) return bad(fmt::format("trend_min_days {} is not in 3..3660", trend_min_days));
  if (!(churn_min_change >= 0 && churn_min_change <= 1)) return bad(fmt::format("churn_min_change {} is not in [0, 1]", churn_min_change));
  return {};
}

int trend_days(const Period& period, const InsightOptions& options) {
  return std::max(2 * period.days(), static_cast<int>(options.trend_min_days));
}

namespace {

std::string percent(double fraction) { return fmt::format("{:.1f} %", 100 * fraction); }
std::string signed_percent(double fraction) { return fmt::format("{:+.1f} %", 100 * fraction); }
std::string money(double v) { return fmt::format("{:.2f}", v); }

/// "day", "week" or "month"; empty for a range.
std::string_view unit_of(const Period& p) {
  return p.granularity == Granularity::day     ? "day"
         : p.granularity == Granularity::week  ? "week"
         : p.granularity == Granularity::month ? "month"
                                               : "";
}

/// "the week before", "the previous 15 days".
std::string previous_period(const Period& p) {
  return unit_of(p).empty() ? fmt::format("the previous {} days", p.days()) : fmt::format("the {} before", unit_of(p));
}

/// "this week", "these 15 days".
std::string this_period(const Period& p) {
  return unit_of(p).empty() ? fmt::format("these {} days", p.days()) : fmt::format("this {}", unit_of(p));
}

class Changes {
 public:
  explicit Changes(const Rollup& r) {
    for (const auto& c : r.changes) by_figure_.emplace(c.figure, &c);
  }
  const Change* find(const std::string& figure) const {
    auto it = by_figure_.find(figure);
    return it == by_figure_.end() ? nullptr : it->second;
  }
  /// Calls fn(name, change) for every "usage.feature.NAME.<suffix>" figure.
  template <class Fn>
  void features(std::string_view suffix, Fn fn) const {
    constexpr std::string_view prefix = "usage.feature.";
    for (const auto& [figure, c] : by_figure_) {
      std::string_view f = figure;
      if (f.size() <= prefix.size() + suffix.size() || !f.starts_with(prefix) || !f.ends_with(suffix)) continue;
      fn(std::string(f.substr(prefix.size(), f.size() - prefix.size() - suffix.size())), *c);
    }
  }

 private:
  std::map<std::string, const Change*, std::less<>> by_figure_;
};

/// Takes the previous value and the relative change from `c`, the previous value also into
/// numbers[`name`].
void compare_with(Insight& i, const Change& c, const char* name) {
  i.previous = c.previous;
  i.relative = c.relative;
  i.numbers[name] = c.previous;
}

Insight from_change(InsightKind kind, InsightSeverity severity, std::string subject, const Change& c) {
  Insight i;
  i.kind = kind;
  i.severity = severity;
  i.subject = std::move(subject);
  i.figure = c.figure;
  i.value = c.value;
  i.previous = c.previous;
  i.relative = c.relative;
  return i;
}

void feature_ranks(const Rollup& r, const Changes& changes, std::vector<Insight>& out) {
  const auto& features = r.usage.features;  // most events first, then by name
  if (features.empty() || r.usage.events == 0) return;
  const auto total = static_cast<double>(r.usage.events);
  auto rank = [&](InsightKind kind, const FeatureUsage& f, std::string_view label) {
    Insight i;
    i.kind = kind;
    i.subject = f.feature;
    i.figure = "usage.feature." + f.feature + ".events";
    i.value = static_cast<double>(f.events);
    const double share = static_cast<double>(f.events) / total;
    i.numbers = {{"events", f.events}, {"share", share}, {"total_events", r.usage.events}};
    std::string since;
    if (const auto* c = changes.find(i.figure)) {
      compare_with(i, *c, "previous_events");
      if (c->relative) since = fmt::format(", {} on {}", signed_percent(*c->relative), previous_period(r.period));
    }
    i.sentence = fmt::format("{}: {} with {} events ({} of all events{})", label, f.feature, f.events, percent(share), since);
    out.push_back(std::move(i));
  };
  rank(InsightKind::most_used_feature, features.front(), "Most popular feature");
  if (features.size() >= 2) rank(InsightKind::least_used_feature, features.back(), "Least used feature");
}

void movers(const Rollup& r, const Changes& changes, const InsightOptions& o, std::vector<Insight>& out) {
  std::vector<std::pair<std::string, const Change*>> found;  // feature, its events' change
  changes.features(".events", [&](std::string name, const Change& c) {
    if (std::max(c.value, c.previous) < static_cast<double>(o.min_events)) return;
    if (c.relative && std::abs(*c.relative) < o.mover_min_relative) return;
    if (c.absolute == 0) return;
    found.emplace_back(std::move(name), &c);
  });
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
    if (std::abs(a.second->absolute) != std::abs(b.second->absolute)) return std::abs(a.second->absolute) > std::abs(b.second->absolute);
    return a.first < b.first;
  });
  if (found.size() > o.movers) found.resize(o.movers);
  for (const auto& [name, c] : found) {
    auto i = from_change(InsightKind::feature_mover, InsightSeverity::info, name, *c);
    i.numbers = {{"events", c->value}, {"previous_events", c->previous}, {"absolute", c->absolute}};
    if (c->relative) i.numbers["relative"] = *c->relative;
    const auto before = previous_period(r.period);
    if (c->previous == 0) {
      i.sentence = fmt::format("{} is new: {} events {}, none {}", name, c->value, this_period(r.period), before);
    } else if (c->value == 0) {
      i.severity = InsightSeverity::notice;
      i.sentence = fmt::format("{} had no events {}, after {} {}", name, this_period(r.period), c->previous, before);
    } else {
      i.sentence = fmt::format("{} {} {} on {}: {} events, from {}", name, c->absolute > 0 ? "grew" : "fell",
                               percent(std::abs(*c->relative)), before, c->value, c->previous);
      if (c->absolute < 0) i.severity = InsightSeverity::notice;
    }
    out.push_back(std::move(i));
  }
}

void error_spikes(const Rollup& r, const Changes& changes, const InsightOptions& o, std::vector<Insight>& out) {
  auto spike = [&](const std::string& subject, const std::string& label, std::uint64_t events, std::uint64_t errors, const Change* c,
                   const Change* events_change) {
    if (!c || events < o.min_events) return;
    const double rate = c->value, prev = c->previous;
    if (rate < o.spike_min_rate || (prev > 0 && rate < o.spike_ratio * prev)) return;
    auto i = from_change(InsightKind::error_rate_spike, InsightSeverity::warning, subject, *c);
    i.numbers = {{"error_rate", rate}, {"previous_error_rate", prev}, {"errors", errors}, {"events", events}};
    if (!events_change || events_change->previous == 0) {
      // No events before: there is no previous rate to compare with.
      i.previous.reset();
      i.relative.reset();
      i.numbers["previous_error_rate"] = nullptr;
      i.sentence = fmt::format("{} is {}, with no events {} ({} errors in {} events)", label, percent(rate), previous_period(r.period),
                               errors, events);
    } else {
      i.sentence = fmt::format("{} rose to {} from {} {} ({} errors in {} events)", label, percent(rate), percent(prev),
                               previous_period(r.period), errors, events);
    }
    out.push_back(std::move(i));
  };
  spike("overall", "Error rate", r.usage.events, r.usage.errors, changes.find("usage.error_rate"), changes.find("usage.events"));
  std::vector<const FeatureUsage*> features;
  for (const auto& f : r.usage.features) features.push_back(&f);
  std::sort(features.begin(), features.end(), [](const FeatureUsage* a, const FeatureUsage* b) {
    if (a->error_rate != b->error_rate) return a->error_rate > b->error_rate;
    return a->feature < b->feature;
  });
  for (const auto* f : features)
    spike(f->feature, "Error rate of " + f->feature, f->events, f->errors, changes.find("usage.feature." + f->feature + ".error_rate"),
          changes.find("usage.feature." + f->feature + ".events"));
}

void revenue_trend(const Rollup& r, const Changes& changes, std::span<const RevenueRecord> revenue, const InsightOptions& o,
                   std::vector<Insight>& out) {
  const int window = trend_days(r.period, o);
  const auto last = sys_days{r.period.last};
  const auto first = last - days{window - 1};
  std::map<sys_days, double> by_day;
  for (const auto& rec : revenue) {
    const auto d = sys_days{rec.date};
    if (d >= first && d <= last) by_day[d] += rec.total_revenue;
  }
  if (by_day.size() < 4) return;  // too few days to call it a trend
  // Least squares over the days with records.
  double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0, syy = 0;
  // The line's change is taken over the days it spans (first to last day with records), not
  // extrapolated to the whole window.
  const auto span = static_cast<double>((by_day.rbegin()->first - by_day.begin()->first).count());
  for (const auto& [d, v] : by_day) {
    const double x = static_cast<double>((d - first).count());
    n += 1, sx += x, sy += v, sxx += x * x, sxy += x * v, syy += v * v;
  }
  const double vx = sxx - sx * sx / n, vy = syy - sy * sy / n, cxy = sxy - sx * sy / n;
  const double mean = sy / n;
  if (vx <= 0 || mean <= 0) return;
  const double slope = cxy / vx;  // per day
  const double r2 = vy > 0 ? cxy * cxy / (vx * vy) : 1.0;
  const double change = slope * span / mean;  // over the days spanned, against the mean day
  const bool flat = std::abs(change) < o.trend_flat;
  const std::string direction = flat ? "flat" : change > 0 ? "upward" : "downward";

  Insight i;
  i.kind = InsightKind::revenue_trend;
  i.severity = !flat && change < 0 ? InsightSeverity::notice : InsightSeverity::info;
  i.subject = "revenue";
  i.figure = "revenue.total";
  i.value = r.revenue.total_revenue;
  i.numbers = {{"trend", change},
               {"direction", direction},
               {"slope_per_day", slope},
               {"r_squared", r2},
               {"window_days", window},
               {"span_days", static_cast<std::int64_t>(span) + 1},
               {"days_with_records", static_cast<std::int64_t>(by_day.size())},
               {"mean_per_day", mean},
               {"total", r.revenue.total_revenue}};
  std::string versus;
  if (const auto* c = changes.find("revenue.total")) {
    compare_with(i, *c, "previous_total");
    if (c->relative) versus = fmt::format(", {} on {}", signed_percent(*c->relative), previous_period(r.period));
  }
  const std::string head = flat ? "Revenue is flat" : fmt::format("Revenue is trending {}", direction);
  i.sentence = fmt::format("{}: {} over {} days (fit R² {:.2f}); {} {}{}", head, signed_percent(change),
                           static_cast<std::int64_t>(span) + 1, r2, money(r.revenue.total_revenue), this_period(r.period), versus);
  out.push_back(std::move(i));
}

void churn(const Rollup& r, const Changes& changes, const InsightOptions& o, std::vector<Insight>& out) {
  if (!r.revenue.churn_rate) return;
  const double rate = *r.revenue.churn_rate;
  Insight i;
  i.kind = InsightKind::churn_change;
  i.subject = "churn";
  i.figure = "revenue.churn_rate";
  i.value = rate;
  i.numbers = {{"churn_rate", rate}, {"churn_count", r.revenue.churn_count}, {"active_users", r.revenue.active_users}};
  const auto* c = changes.find("revenue.churn_rate");
  const auto* active_before = changes.find("revenue.active_users");
  // The previous rate is known when the previous period had subscribers.
  if (!c || !active_before || active_before->previous <= 0) {
    i.sentence = fmt::format("Churn rate {}: {} users churned {}", percent(rate), r.revenue.churn_count, this_period(r.period));
    out.push_back(std::move(i));
    return;
  }
  compare_with(i, *c, "previous_churn_rate");
  const double delta = c->absolute;
  if (std::abs(delta) < o.churn_min_change) {
    i.sentence = fmt::format("Churn rate steady at {} ({} {}; {} users churned)", percent(rate), percent(c->previous),
                             previous_period(r.period), r.revenue.churn_count);
  } else {
    i.severity = delta > 0 ? InsightSeverity::warning : InsightSeverity::info;
    i.sentence = fmt::format("Churn rate {} to {} from {} {} ({:+.1f} points; {} users churned)", delta > 0 ? "rose" : "fell",
                             percent(rate), percent(c->previous), previous_period(r.period), 100 * delta, r.revenue.churn_count);
  }
  out.push_back(std::move(i));
}

}  // namespace

std::vector<Insight> derive_insights(const Rollup& rollup, std::span<const RevenueRecord> revenue, const InsightOptions& options) {
  const Changes changes(rollup);
  std::vector<Insight> out;
  feature_ranks(rollup, changes, out);
  movers(rollup, changes, options, out);
  error_spikes(rollup, changes, options, out);
  revenue_trend(rollup, changes, revenue, options, out);
  churn(rollup, changes, options, out);
  return out;
}

}  // namespace automation::metrics
