#include "storage/task_stats.hpp"

#include <automation/core/json.hpp>

#include <algorithm>
#include <cmath>
#include <map>

namespace automation::storage::detail {

namespace {

// Nearest-rank percentile of v[from..] (reordered in place); `from` lets a higher percentile reuse
// the partition a lower one left: everything before the lower rank is already no larger.
std::size_t rank_of(std::size_t n, double p) {
  return std::clamp<std::size_t>(static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(n))), 1, n) - 1;
}
std::int64_t select(std::vector<std::int64_t>& v, std::size_t from, std::size_t index) {
  auto nth = v.begin() + static_cast<std::ptrdiff_t>(index);
  std::nth_element(v.begin() + static_cast<std::ptrdiff_t>(from), nth, v.end());
  return *nth;
}

// Top-level key/value pairs of a JSON object, values as compact JSON.
std::vector<std::pair<std::string, std::string>> flatten(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  auto doc = json::parse(text, "task params");
  if (!doc || !doc->is_object()) return out;
  for (const auto& kv : doc->as_object()) out.emplace_back(std::string(kv.key()), json::dump(kv.value()));
  return out;
}

}  // namespace

void TaskStatsBuilder::merge(TaskStatsBuilder&& other) {
  for (auto& [h, text] : other.params_text_) params_text_.try_emplace(h, std::move(text));
  for (auto& [kind, o] : other.groups_) {
    auto [it, inserted] = groups_.try_emplace(kind);
    Group& g = it->second;
    if (inserted) {
      g = std::move(o);
      g.params_cache = {};
      continue;
    }
    g.count += o.count;
    g.successes += o.successes;
    g.failures += o.failures;
    g.timeouts += o.timeouts;
    g.cancelled += o.cancelled;
    g.durations_us.insert(g.durations_us.end(), o.durations_us.begin(), o.durations_us.end());
    g.impact_sum += o.impact_sum;
    g.impact_n += o.impact_n;
    for (auto& [e, n] : o.errors) g.errors[e] += n;
    for (auto& [ph, pc] : o.params) {
      auto& mine = g.params[ph];
      mine.support += pc.support;
      mine.successes += pc.successes;
    }
    g.params_cache = {};
  }
  group_cache_ = {};
  other.groups_.clear();
}

std::vector<TaskGroupStats> TaskStatsBuilder::finish(const TaskStatsQuery& q) {
  std::map<std::uint64_t, std::vector<std::pair<std::string, std::string>>> parsed;
  std::vector<TaskGroupStats> out;
  out.reserve(groups_.size());
  for (auto& [kind, g] : groups_) {
    TaskGroupStats s;
    s.domain = g.domain;
    s.action = g.action;
    s.count = g.count;
    s.successes = g.successes;
    s.failures = g.failures;
    s.timeouts = g.timeouts;
    s.cancelled = g.cancelled;
    s.success_rate = g.count ? static_cast<double>(g.successes) / static_cast<double>(g.count) : 0.0;
    if (!g.durations_us.empty()) {
      long double sum = 0;
      for (auto d : g.durations_us) sum += static_cast<long double>(d);
      const auto mean_us = static_cast<std::int64_t>(std::llround(sum / static_cast<long double>(g.durations_us.size())));
      s.mean_duration = std::chrono::duration_cast<Duration>(std::chrono::microseconds(mean_us));
      const std::size_t r50 = rank_of(g.durations_us.size(), 50), r95 = rank_of(g.durations_us.size(), 95);
      s.p50_duration = std::chrono::duration_cast<Duration>(std::chrono::microseconds(select(g.durations_us, 0, r50)));
      s.p95_duration = std::chrono::duration_cast<Duration>(std::chrono::microseconds(select(g.durations_us, r50, r95)));
    }
    s.impact_samples = g.impact_n;
    if (g.impact_n) s.mean_impact = g.impact_sum / static_cast<double>(g.impact_n);

    for (const auto& [text, n] : g.errors) s.top_failures.push_back({text, n});
    std::sort(s.top_failures.begin(), s.top_failures.end(),
              [](const FailureReason& a, const FailureReason& b) { return a.count != b.count ? a.count > b.count : a.reason < b.reason; });
    if (s.top_failures.size() > q.top_failures) s.top_failures.resize(q.top_failures);

    std::map<std::pair<std::string, std::string>, Group::ParamCount> values;
    for (const auto& [h, pc] : g.params) {
      auto it = parsed.find(h);
      if (it == parsed.end()) {
        auto t = params_text_.find(h);
        it = parsed.emplace(h, t == params_text_.end() ? decltype(flatten("")){} : flatten(t->second)).first;
      }
      for (const auto& kv : it->second) {
        auto& v = values[kv];
        v.support += pc.support;
        v.successes += pc.successes;
      }
    }
    for (const auto& [kv, pc] : values) {
      if (pc.support < q.min_support || pc.successes == 0) continue;
      ParamAssociation a;
      a.key = kv.first;
      a.value = kv.second;
      a.support = pc.support;
      a.successes = pc.successes;
      a.success_rate = static_cast<double>(pc.successes) / static_cast<double>(pc.support);
      a.lift = s.success_rate > 0 ? a.success_rate / s.success_rate : 0.0;
      s.success_params.push_back(std::move(a));
    }
    std::sort(s.success_params.begin(), s.success_params.end(), [](const ParamAssociation& a, const ParamAssociation& b) {
      if (a.success_rate != b.success_rate) return a.success_rate > b.success_rate;
      if (a.support != b.support) return a.support > b.support;
      return std::tie(a.key, a.value) < std::tie(b.key, b.value);
    });
    if (s.success_params.size() > q.top_params) s.success_params.resize(q.top_params);
    out.push_back(std::move(s));
  }
  std::sort(out.begin(), out.end(),
            [](const TaskGroupStats& a, const TaskGroupStats& b) { return std::tie(a.domain, a.action) < std::tie(b.domain, b.action); });
  return out;
}

}  // namespace automation::storage::detail
