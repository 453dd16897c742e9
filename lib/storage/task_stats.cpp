#include "storage/task_stats.hpp"

#include <automation/core/json.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <map>

namespace automation::storage::detail {

namespace {

// Nearest-rank percentile `p` of a histogram sorted by value.
std::int64_t percentile(const std::vector<std::pair<std::int64_t, std::uint64_t>>& hist, std::uint64_t n, double p) {
  const auto rank = std::clamp<std::uint64_t>(static_cast<std::uint64_t>(std::ceil(p / 100.0 * static_cast<double>(n))), 1, n);
  std::uint64_t seen = 0;
  for (const auto& [v, c] : hist) {
    seen += c;
    if (seen >= rank) return v;
  }
  return hist.empty() ? 0 : hist.back().first;
}

// The group's duration histogram sorted by value.
std::vector<std::pair<std::int64_t, std::uint64_t>> histogram(const TaskStatsBuilder::Group& g) {
  std::vector<std::pair<std::int64_t, std::uint64_t>> out(g.hist.begin(), g.hist.end());
  std::sort(out.begin(), out.end());
  return out;
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
    if (g.count) {
      const auto mean_us =
          static_cast<std::int64_t>(std::llround(static_cast<long double>(g.duration_sum_us) / static_cast<long double>(g.count)));
      s.mean_duration = std::chrono::duration_cast<Duration>(std::chrono::microseconds(mean_us));
      const auto h = histogram(g);
      s.p50_duration = std::chrono::duration_cast<Duration>(std::chrono::microseconds(percentile(h, g.count, 50)));
      s.p95_duration = std::chrono::duration_cast<Duration>(std::chrono::microseconds(percentile(h, g.count, 95)));
    }
    s.impact_samples = g.impact_n;
    if (g.impact_n) s.mean_impact = g.impact_sum / static_cast<double>(g.impact_n);

    for (const auto& [text, n] : g.errors) s.top_failures.push_back({text, n});
    std::sort(s.top_failures.begin(), s.top_failures.end(),
              [](const FailureReason& a, const FailureReason& b) { return a.count != b.count ? a.count > b.count : a.reason < b.reason; });
    if (s.top_failures.size() > q.top_failures) s.top_failures.resize(q.top_failures);

    std::map<std::pair<std::string, std::string>, Group::ParamCount> values = g.kv;
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

std::vector<std::uint64_t> TaskStatsBuilder::kinds() const {
  std::vector<std::uint64_t> out;
  out.reserve(groups_.size());
  for (const auto& [k, g] : groups_) out.push_back(k);
  return out;
}

const TaskStatsBuilder::Group* TaskStatsBuilder::find(std::uint64_t kind) const {
  auto it = groups_.find(kind);
  return it == groups_.end() ? nullptr : &it->second;
}

// {"n","s","f","t","c": counts, "ds": duration sum (us), "is","in": impact sum and samples,
//  "d": [value_us, count, ...] by value, "e": [[text, count], ...], "p": [[key, value, support, successes], ...]}
std::string TaskStatsBuilder::rollup_json(std::uint64_t kind) const {
  const Group* g = find(kind);
  if (!g) return "{}";
  namespace bj = boost::json;
  bj::array d;
  for (const auto& [v, c] : histogram(*g)) {
    d.push_back(v);
    d.push_back(c);
  }
  std::vector<std::pair<std::string_view, std::uint64_t>> errors(g->errors.begin(), g->errors.end());
  std::sort(errors.begin(), errors.end(),
            [](const auto& a, const auto& b) { return a.second != b.second ? a.second > b.second : a.first < b.first; });
  if (errors.size() > kRollupErrors) errors.resize(kRollupErrors);
  bj::array e;
  for (const auto& [text, n] : errors) e.push_back(bj::array{bj::string(text), n});
  std::map<std::pair<std::string, std::string>, Group::ParamCount> values = g->kv;
  for (const auto& [h, pc] : g->params) {
    auto t = params_text_.find(h);
    if (t == params_text_.end()) continue;
    for (auto& kv : flatten(t->second)) {
      auto& v = values[std::move(kv)];
      v.support += pc.support;
      v.successes += pc.successes;
    }
  }
  std::vector<std::pair<const std::pair<std::string, std::string>*, Group::ParamCount>> params;
  params.reserve(values.size());
  for (const auto& [kv, pc] : values) params.emplace_back(&kv, pc);
  std::sort(params.begin(), params.end(), [](const auto& a, const auto& b) {
    return a.second.support != b.second.support ? a.second.support > b.second.support : *a.first < *b.first;
  });
  if (params.size() > kRollupParams) params.resize(kRollupParams);
  bj::array p;
  for (const auto& [kv, pc] : params) p.push_back(bj::array{bj::string(kv->first), bj::string(kv->second), pc.support, pc.successes});
  bj::object o{{"n", g->count},     {"s", g->successes},        {"f", g->failures},    {"t", g->timeouts},
               {"c", g->cancelled}, {"ds", g->duration_sum_us}, {"is", g->impact_sum}, {"in", g->impact_n},
               {"d", std::move(d)}, {"e", std::move(e)},        {"p", std::move(p)}};
  return bj::serialize(o);
}

Result<void> TaskStatsBuilder::add_rollup(std::uint64_t kind, std::string_view domain, std::string_view action, std::string_view text) {
  auto bad = [&](std::string_view why) { return fail(errc::corrupt, fmt::format("task rollup for {}/{}: {}", domain, action, why)); };
  boost::system::error_code ec;
  const auto doc = boost::json::parse(text, ec);
  if (ec || !doc.is_object()) return bad("not a JSON object");
  try {
    const auto& o = doc.as_object();
    auto u64 = [&](std::string_view k) { return o.at(k).to_number<std::uint64_t>(); };
    Group& g = group(kind, [&](std::string& d, std::string& a) {
      d = std::string(domain);
      a = std::string(action);
    });
    g.count += u64("n");
    g.successes += u64("s");
    g.failures += u64("f");
    g.timeouts += u64("t");
    g.cancelled += u64("c");
    g.duration_sum_us += o.at("ds").to_number<std::int64_t>();
    g.impact_sum += o.at("is").to_number<double>();
    g.impact_n += u64("in");
    const auto& d = o.at("d").as_array();
    if (d.size() % 2) return bad("an odd duration histogram");
    for (std::size_t i = 0; i < d.size(); i += 2) g.hist[d[i].to_number<std::int64_t>()] += d[i + 1].to_number<std::uint64_t>();
    for (const auto& v : o.at("e").as_array()) {
      const auto& a = v.as_array();
      g.errors[std::string(a.at(0).as_string())] += a.at(1).to_number<std::uint64_t>();
    }
    for (const auto& v : o.at("p").as_array()) {
      const auto& a = v.as_array();
      auto& pc = g.kv[{std::string(a.at(0).as_string()), std::string(a.at(1).as_string())}];
      pc.support += a.at(2).to_number<std::uint64_t>();
      pc.successes += a.at(3).to_number<std::uint64_t>();
    }
  } catch (const boost::system::system_error& e) {
    return bad(e.code().message());  // what() carries Boost's source location
  } catch (const std::exception& e) {
    return bad(e.what());
  }
  return {};
}

}  // namespace automation::storage::detail
