#include <automation/core/time.hpp>
#include <automation/resilience/breaker_registry.hpp>
#include <automation/runtime/prometheus.hpp>
#include "resilience/breaker_json.hpp"

#include <detail/log.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

#include <algorithm>

namespace automation::resilience {

using automation::detail::logf;

BreakerRegistry::BreakerRegistry(const Clock& clock, RegistryOptions options) : clock_(clock), options_(std::move(options)) {
  if (auto v = options_.defaults.validate(); !v) throw Exception(with_context(v.error(), "breaker registry defaults"));
  if (options_.max_breakers == 0) options_.max_breakers = 1;
}

BreakerRegistry::~BreakerRegistry() = default;

Result<void> BreakerRegistry::configure(std::string pattern, BreakerConfig config) {
  if (pattern.empty()) return fail(errc::invalid_argument, "breaker registry: an empty name pattern");
  if (auto v = config.validate(); !v) return with_context(v.error(), fmt::format("breaker pattern \"{}\"", pattern));
  std::lock_guard lock(mu_);
  auto it = std::find_if(patterns_.begin(), patterns_.end(), [&](const auto& p) { return p.first == pattern; });
  if (it != patterns_.end()) {
    it->second = std::move(config);
  } else {
    patterns_.emplace_back(std::move(pattern), std::move(config));
  }
  return {};
}

BreakerConfig BreakerRegistry::config_for(std::string_view name) const {
  std::lock_guard lock(mu_);
  return config_for_locked(name);
}

const BreakerConfig& BreakerRegistry::config_for_locked(std::string_view name) const {
  const BreakerConfig* best = &options_.defaults;
  std::size_t best_len = 0;
  bool exact = false;
  for (const auto& [p, c] : patterns_) {
    if (p.back() == '*') {
      const std::string_view prefix(p.data(), p.size() - 1);
      if (!exact && name.substr(0, prefix.size()) == prefix && prefix.size() + 1 > best_len) {
        best = &c;
        best_len = prefix.size() + 1;
      }
    } else if (p == name) {
      best = &c;
      exact = true;
    }
  }
  return *best;
}

bool BreakerRegistry::evict_one_locked() {
  auto victim = breakers_.end();
  for (auto it = breakers_.begin(); it != breakers_.end(); ++it) {
    auto& b = it->second.breaker;
    // Idle: nobody else holds it, and closed (an open breaker's memory is the point of having it).
    if (b.use_count() != 1 || b->current_state() != BreakerState::closed) continue;
    if (victim == breakers_.end() || it->second.last_used < victim->second.last_used) victim = it;
  }
  if (victim == breakers_.end()) return false;
  logf(LogLevel::debug, "breaker", "evicting idle closed circuit breaker '{}' (registry cap {})", victim->first, options_.max_breakers);
  breakers_.erase(victim);
  ++evictions_;
  return true;
}

Result<std::shared_ptr<CircuitBreaker>> BreakerRegistry::get(std::string_view name) {
  if (name.empty()) return fail(errc::invalid_argument, "breaker registry: an empty breaker name");
  BreakerConfig config;
  {
    std::lock_guard lock(mu_);
    if (auto it = breakers_.find(name); it != breakers_.end()) {
      it->second.last_used = ++tick_;
      return it->second.breaker;
    }
    config = config_for_locked(name);
  }
  // Built and restored from the store outside the registry's mutex (this reads the store), and
  // published only once restored, so nobody sees it closed while its stored state is forced open.
  auto created = std::make_shared<CircuitBreaker>(std::string(name), std::move(config), clock_);
  if (options_.store && options_.sharing.mode != SharingMode::none) {
    if (auto r = created->share(*options_.store, options_.sharing); !r)
      logf(LogLevel::warn, "breaker", "circuit breaker '{}' starts without its stored state: {}", name, r.error().message);
  }
  std::lock_guard lock(mu_);
  if (auto it = breakers_.find(name); it != breakers_.end()) {  // another thread got there first
    it->second.last_used = ++tick_;
    return it->second.breaker;
  }
  if (breakers_.size() >= options_.max_breakers && !evict_one_locked())
    return fail(errc::busy,
                fmt::format("breaker registry is full ({} breakers, none idle and closed): cannot create '{}'", breakers_.size(), name));
  breakers_.emplace(std::string(name), Entry{created, ++tick_});
  return created;
}

std::shared_ptr<CircuitBreaker> BreakerRegistry::find(std::string_view name) const {
  std::lock_guard lock(mu_);
  auto it = breakers_.find(name);
  return it == breakers_.end() ? nullptr : it->second.breaker;
}

std::vector<std::shared_ptr<CircuitBreaker>> BreakerRegistry::list() const {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<CircuitBreaker>> out;
  out.reserve(breakers_.size());
  for (const auto& [n, e] : breakers_) out.push_back(e.breaker);
  return out;
}

bool BreakerRegistry::remove(std::string_view name) {
  std::lock_guard lock(mu_);
  auto it = breakers_.find(name);
  if (it == breakers_.end()) return false;
  breakers_.erase(it);
  return true;
}

std::size_t BreakerRegistry::size() const {
  std::lock_guard lock(mu_);
  return breakers_.size();
}

std::uint64_t BreakerRegistry::evictions() const {
  std::lock_guard lock(mu_);
  return evictions_;
}

Result<void> BreakerRegistry::publish_all() {
  Result<void> first;
  if (!options_.store || options_.sharing.mode == SharingMode::none) return first;
  for (const auto& b : list()) {
    auto r = b->publish_now();
    if (!r && first) first = r;
  }
  return first;
}

// ---- export ------------------------------------------------------------------------------------

boost::json::value to_json(const BreakerStatus& s) {
  namespace bj = boost::json;
  bj::object o{{"name", s.name}, {"state", to_string(s.state)}, {"reason", s.reason}, {"open_attempt", s.open_attempt}};
  o["open_until"] = s.open_until ? bj::value(format_timestamp(*s.open_until)) : bj::value(nullptr);
  bj::object window = detail::window_json(s.window);
  window["failure_rate"] = s.window.failure_rate();
  window["slow_call_rate"] = s.window.slow_call_rate();
  o["window"] = std::move(window);
  o["counters"] = detail::counters_json(s.counters);
  o["updated"] = s.updated ? bj::value(format_timestamp(*s.updated)) : bj::value(nullptr);
  o["updated_by"] = s.updated_by;
  o["version"] = s.version;
  if (s.sharing.mode != SharingMode::none)  // a live breaker that uses a store
    o["sharing"] = bj::object{{"mode", to_string(s.sharing.mode)}, {"store_ok", s.sharing.store_ok},   {"last_error", s.sharing.last_error},
                              {"publishes", s.sharing.publishes},  {"adoptions", s.sharing.adoptions}, {"conflicts", s.sharing.conflicts},
                              {"failures", s.sharing.failures}};
  return o;
}

std::string to_prometheus(std::span<const BreakerStatus> breakers, bool live) {
  runtime::PrometheusWriter w;
  write_prometheus(w, breakers, live);
  return w.str();
}

void write_prometheus(runtime::PrometheusWriter& w, std::span<const BreakerStatus> breakers, bool live) {
  auto family = [&](const std::string& name, std::string_view type, std::string_view help, auto&& samples) {
    w.family(name, type, help);
    for (const auto& b : breakers) samples(b);
  };
  static constexpr BreakerState kStates[] = {BreakerState::closed,      BreakerState::open,     BreakerState::half_open,
                                             BreakerState::forced_open, BreakerState::disabled, BreakerState::metrics_only};
  const std::string state = "automation_circuit_breaker_state";
  family(state, "gauge", "1 for the state the circuit breaker is in, 0 for the others.", [&](const BreakerStatus& b) {
    for (auto s : kStates) w.sample(state, {{"name", b.name}, {"state", std::string(to_string(s))}}, s == b.state ? 1 : 0);
  });
  const std::string window = "automation_circuit_breaker_window_calls";
  family(window, "gauge", "Calls in the current window.", [&](const BreakerStatus& b) {
    w.sample(window, {{"name", b.name}, {"kind", "all"}}, static_cast<double>(b.window.calls));
    w.sample(window, {{"name", b.name}, {"kind", "failed"}}, static_cast<double>(b.window.failures));
    w.sample(window, {{"name", b.name}, {"kind", "slow"}}, static_cast<double>(b.window.slow_calls));
  });
  const std::string rate = "automation_circuit_breaker_failure_rate";
  family(rate, "gauge", "Failure rate of the current window in percent (-1 with no calls).", [&](const BreakerStatus& b) {
    w.sample(rate, {{"name", b.name}}, b.window.failure_rate());
  });
  const std::string calls = live ? "automation_circuit_breaker_calls_total" : "automation_circuit_breaker_writer_calls";
  const std::string slow = live ? "automation_circuit_breaker_slow_calls_total" : "automation_circuit_breaker_writer_slow_calls";
  const std::string transitions = live ? "automation_circuit_breaker_transitions_total" : "automation_circuit_breaker_writer_transitions";
  const char* counter = live ? "counter" : "gauge";
  const char* since = live ? "since the process started." : "counted by the process that last wrote the stored state.";
  family(calls, counter, fmt::format("Calls by outcome {}", since), [&](const BreakerStatus& b) {
    const std::pair<const char*, std::uint64_t> kinds[] = {{"successful", b.counters.successes},
                                                           {"failed", b.counters.failures},
                                                           {"ignored", b.counters.ignored},
                                                           {"not_permitted", b.counters.not_permitted},
                                                           {"stale", b.counters.stale}};
    for (const auto& [k, v] : kinds) w.sample(calls, {{"name", b.name}, {"kind", k}}, static_cast<double>(v));
  });
  family(slow, counter, fmt::format("Slow calls {}", since), [&](const BreakerStatus& b) {
    w.sample(slow, {{"name", b.name}}, static_cast<double>(b.counters.slow));
  });
  family(transitions, counter, fmt::format("State transitions {}", since), [&](const BreakerStatus& b) {
    w.sample(transitions, {{"name", b.name}}, static_cast<double>(b.counters.transitions));
  });
  const std::string open_until = "automation_circuit_breaker_open_until_seconds";
  family(open_until, "gauge", "Unix time when the open period ends (0 when not open).", [&](const BreakerStatus& b) {
    // Whole milliseconds, as stored.
    const double t = b.open_until ? static_cast<double>(to_epoch_ms(*b.open_until)) / 1000.0 : 0.0;
    w.sample(open_until, {{"name", b.name}}, t);
  });
}

}  // namespace automation::resilience
