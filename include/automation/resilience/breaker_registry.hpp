#pragma once
/// BreakerRegistry: named and per-key circuit breakers created on first use, with configuration by
/// exact name or by prefix ("payments:*", the longest match wins), a size cap that evicts only idle
/// closed breakers (closed, and held by nobody but the registry), and optional persistence or
/// sharing of every breaker through a Store. Exports for JSON and the Prometheus text format.
/// Thread-safety: every method is safe from any thread; breakers are shared_ptr-owned, so one
/// evicted or removed while a caller still holds it stays valid for that caller. A Permit points
/// at its breaker without owning it: hold the shared_ptr until the permit is reported (a breaker
/// nobody holds is idle, and an idle closed breaker may be evicted under the cap).
/// Needs: a Clock; a Store for persistence.
#include <automation/resilience/circuit_breaker.hpp>

#include <boost/json/value.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

namespace automation::runtime {
class PrometheusWriter;
}

namespace automation::resilience {

struct RegistryOptions {
  BreakerConfig defaults;            ///< for names no configure() pattern matches
  std::size_t max_breakers = 10000;  ///< the cap; only idle closed breakers are evicted to stay under it
  storage::Store* store = nullptr;   ///< persistence (optional)
  SharingOptions sharing{.mode = SharingMode::none};
};

class BreakerRegistry {
 public:
  explicit BreakerRegistry(const Clock& clock, RegistryOptions options = {});
  ~BreakerRegistry();
  BreakerRegistry(const BreakerRegistry&) = delete;
  BreakerRegistry& operator=(const BreakerRegistry&) = delete;

  /// Configuration for breakers named `pattern`, or starting with its prefix when it ends in '*'.
  /// Applies to breakers created afterwards; the config is validated now.
  Result<void> configure(std::string pattern, BreakerConfig config);
  /// The config a breaker of this name would get.
  BreakerConfig config_for(std::string_view name) const;

  /// The breaker of this name, created on first use (and restored from the store when persisted).
  /// errc::busy when the registry is full and no breaker can be evicted; errc::invalid_argument for
  /// an empty name. A store that does not answer is not an error: the breaker goes on locally.
  Result<std::shared_ptr<CircuitBreaker>> get(std::string_view name);
  /// The breaker if it exists (never creates).
  std::shared_ptr<CircuitBreaker> find(std::string_view name) const;
  /// All breakers, by name.
  std::vector<std::shared_ptr<CircuitBreaker>> list() const;
  bool remove(std::string_view name);
  std::size_t size() const;
  std::uint64_t evictions() const;
  /// Writes every persisted breaker's state and counters (e.g. at shutdown); the first error.
  Result<void> publish_all();

 private:
  struct Entry {
    std::shared_ptr<CircuitBreaker> breaker;
    std::uint64_t last_used = 0;
  };
  bool evict_one_locked();
  const BreakerConfig& config_for_locked(std::string_view name) const;

  const Clock& clock_;
  RegistryOptions options_;
  mutable std::mutex mu_;
  std::vector<std::pair<std::string, BreakerConfig>> patterns_;
  std::map<std::string, Entry, std::less<>> breakers_;
  std::uint64_t tick_ = 0, evictions_ = 0;
};

/// JSON of a breaker status (times ISO-8601 UTC, durations in ms).
boost::json::value to_json(const BreakerStatus& s);
/// The Prometheus text exposition format (version 0.0.4) for these breakers: state as a 0/1 gauge
/// per state, window figures, open-until, and the lifetime counters. Live breakers (`live`) export
/// the counters as counters; statuses read from stored records carry the counters of whichever
/// process wrote last, which are not monotonic across writers, so they are exported as gauges
/// named automation_circuit_breaker_writer_* instead.
std::string to_prometheus(std::span<const BreakerStatus> breakers, bool live = true);
/// The same families into a writer (a /metrics handler's, next to other families).
void write_prometheus(runtime::PrometheusWriter& out, std::span<const BreakerStatus> breakers, bool live = true);

}  // namespace automation::resilience
