#pragma once
// Task statistics computed in one pass over the records of a range, shared by every backend so all
// of them answer identically. Backends feed rows; domain/action, parameter and error texts are
// only materialized the first time a hash is seen. A group also serializes to and merges from a
// rollup (the same figures as compact JSON), so a store can keep per-hour rollups and answer a
// range from them plus the raw rows at its edges. Durations are kept as a histogram at three
// significant digits (exact below 1 ms), so percentiles are less than 1 % low whatever the source.
#include <automation/storage/store.hpp>
#include <detail/hash.hpp>

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace automation::storage::detail {

using automation::detail::fnv1a;
/// Identifies a (domain, action) pair.
constexpr std::uint64_t kind_hash(std::string_view domain, std::string_view action) noexcept {
  return fnv1a(action, fnv1a(std::string_view("\0", 1), fnv1a(domain)));
}

/// A duration in microseconds rounded down to three significant digits (exact below 1000 us).
constexpr std::int64_t quantize_us(std::int64_t us) noexcept {
  std::int64_t scale = 1;
  while (us / scale >= 1000) scale *= 10;
  return us / scale * scale;
}

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return static_cast<std::size_t>(fnv1a(s)); }
};

class TaskStatsBuilder {
 public:
  struct Group {
    std::string domain, action;
    std::uint64_t count = 0, successes = 0, failures = 0, timeouts = 0, cancelled = 0;
    std::unordered_map<std::int64_t, std::uint64_t> hist;  // quantize_us(duration) -> count
    std::int64_t duration_sum_us = 0;                      // exact, for the mean
    double impact_sum = 0;
    std::uint64_t impact_n = 0;
    std::unordered_map<std::string, std::uint64_t, StringHash, std::equal_to<>> errors;
    struct ParamCount {
      std::uint64_t support = 0, successes = 0;
    };
    std::unordered_map<std::uint64_t, ParamCount> params;          // by params hash (raw rows)
    std::map<std::pair<std::string, std::string>, ParamCount> kv;  // by top-level key and value (rollups)
    // A direct-mapped cache in front of `params`: most rows repeat one of a few parameter sets.
    std::array<std::pair<std::uint64_t, ParamCount*>, 16> params_cache{};
    ParamCount& param_count(std::uint64_t h) {
      auto& slot = params_cache[h & 15];
      if (!slot.second || slot.first != h) slot = {h, &params[h]};  // node-based map: stable pointers
      return *slot.second;
    }
  };

  /// The group of a kind hash; `names(domain, action)` fills a new group's names.
  template <class F>
  Group& group(std::uint64_t kind, F&& names) {
    auto& slot = group_cache_[kind & 63];
    if (slot.second && slot.first == kind) return *slot.second;
    auto [it, inserted] = groups_.try_emplace(kind);
    if (inserted) names(it->second.domain, it->second.action);
    slot = {kind, &it->second};
    return it->second;
  }

  /// Records one run. `error` is read only for failures and timeouts.
  template <class E>
  void add(Group& g, TaskOutcome outcome, std::int64_t duration_us, const double* impact, std::uint64_t params_hash, E&& error) {
    ++g.count;
    ++g.hist[quantize_us(duration_us)];
    g.duration_sum_us += duration_us;
    if (impact) {
      g.impact_sum += *impact;
      ++g.impact_n;
    }
    auto& pc = g.param_count(params_hash);
    ++pc.support;
    switch (outcome) {
      case TaskOutcome::success:
        ++g.successes;
        ++pc.successes;
        break;
      case TaskOutcome::failure:
      case TaskOutcome::timeout: {
        ++(outcome == TaskOutcome::failure ? g.failures : g.timeouts);
        std::string_view e = error();
        if (e.empty()) e = outcome == TaskOutcome::timeout ? "timeout" : "failure";
        auto it = g.errors.find(e);
        if (it == g.errors.end()) it = g.errors.emplace(std::string(e), 0).first;
        ++it->second;
        break;
      }
      case TaskOutcome::cancelled:
        ++g.cancelled;
        break;
    }
  }

  bool knows_params(std::uint64_t h) {
    auto& slot = known_cache_[h & 63];
    if (slot == h && h != 0) return true;
    if (!params_text_.contains(h)) return false;
    slot = h;
    return true;
  }
  void add_params(std::uint64_t h, std::string text) { params_text_.emplace(h, std::move(text)); }

  /// Every group's kind hash.
  std::vector<std::uint64_t> kinds() const;
  const Group* find(std::uint64_t kind) const;
  /// A group as rollup JSON. At most kRollupErrors failure texts and kRollupParams parameter values
  /// are kept (the most frequent), so a rollup stays small whatever the records hold.
  std::string rollup_json(std::uint64_t kind) const;
  /// Merges rollup JSON (over records disjoint from what the builder holds) into a group.
  Result<void> add_rollup(std::uint64_t kind, std::string_view domain, std::string_view action, std::string_view json);
  static constexpr std::size_t kRollupErrors = 100, kRollupParams = 200;

  /// The groups ordered by domain then action.
  std::vector<TaskGroupStats> finish(const TaskStatsQuery& q);

 private:
  std::unordered_map<std::uint64_t, Group> groups_;
  std::unordered_map<std::uint64_t, std::string> params_text_;
  std::array<std::pair<std::uint64_t, Group*>, 64> group_cache_{};
  std::array<std::uint64_t, 64> known_cache_{};
};

}  // namespace automation::storage::detail
