#pragma once
/// CircuitBreaker: stops calling a failing dependency, probes it, and recovers, on an injected clock
/// and with no thread of its own. Rules (all optional, combined): failure-rate and slow-call-rate
/// thresholds over a count- or time-based window with a minimum number of calls, consecutive
/// failures, a user predicate over the window, and outcomes that ask to open for a duration or until
/// a time. Half-open admits an exact number of probes through move-only permits that expire after a
/// lease; results from an older state generation are dropped. Open durations are fixed, exponential,
/// linear, capped, jittered (seeded) or a user function. Manual control follows a table of legal
/// transitions; every real transition emits exactly one event with its reason.
/// Thread-safety: every method may be called from any thread. Admission in the closed state is a
/// single atomic load; with a count window and no subscriber, recording an outcome while closed is
/// lock-free; everything else (time windows, half-open probes, transitions) takes an internal mutex. Subscribers are called
/// outside the mutex, in the thread that caused the event; a throwing subscriber is isolated.
/// Needs: a Clock.
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace automation::storage {
class Store;
struct BreakerRecord;
}  // namespace automation::storage

namespace automation::resilience {

enum class BreakerState : std::uint8_t { closed, open, half_open, forced_open, disabled, metrics_only };
std::string_view to_string(BreakerState s) noexcept;
Result<BreakerState> parse_breaker_state(std::string_view text);
/// Whether a transition from `from` to `to` is allowed (the resilience4j table: everything except
/// closed -> half_open, metrics_only -> open and metrics_only -> half_open).
bool is_legal_transition(BreakerState from, BreakerState to) noexcept;

enum class Outcome : std::uint8_t { success, failure, ignored };

/// Aggregates of the current window.
struct WindowSnapshot {
  std::uint32_t calls = 0;  ///< successes + failures (ignored calls are not counted)
  std::uint32_t failures = 0;
  std::uint32_t slow_calls = 0;
  std::uint32_t slow_failures = 0;
  /// Percent (0..100); -1 while calls == 0.
  double failure_rate() const noexcept { return calls ? 100.0 * failures / calls : -1.0; }
  double slow_call_rate() const noexcept { return calls ? 100.0 * slow_calls / calls : -1.0; }
};

/// Lifetime counters: never reset, not even by reset().
struct BreakerCounters {
  std::uint64_t successes = 0, failures = 0, ignored = 0, slow = 0, not_permitted = 0, stale = 0, transitions = 0;
};

struct OpenDurationContext {
  int attempt = 1;  ///< 1 for the first opening since the breaker last closed
  double failure_rate = -1;
  std::uint32_t failures = 0;
};

/// How long the breaker stays open.
struct OpenDuration {
  enum class Kind { fixed, exponential, linear, custom } kind = Kind::fixed;
  Duration base = std::chrono::seconds(60);
  double multiplier = 2.0;                        ///< exponential: base * multiplier^(attempt-1)
  Duration increment = std::chrono::seconds(60);  ///< linear: base + increment * (attempt-1)
  Duration max = std::chrono::hours(24);          ///< cap
  double jitter = 0.0;                            ///< 0..1, uniform in [d*(1-j), d*(1+j)], seeded
  std::uint64_t seed = 0;
  std::function<Duration(const OpenDurationContext&)> custom;

  Duration compute(const OpenDurationContext& ctx, std::mt19937_64& rng) const;
};

struct BreakerConfig {
  // Window.
  enum class Window { count, time } window = Window::count;
  static constexpr std::uint32_t kMaxWindowSize = 1u << 24;
  std::uint32_t window_size = 100;                  ///< count: last N calls; time: N buckets (at most kMaxWindowSize)
  Duration bucket_width = std::chrono::seconds(1);  ///< time window bucket width
  std::uint32_t minimum_calls = 100;                ///< before any rate can trip (clamped to a count window's size)
  // Trip rules (a rule is off when unset).
  std::optional<double> failure_rate_threshold = 50.0;     ///< percent, trips when rate >= threshold
  std::optional<double> slow_call_rate_threshold;          ///< percent, trips when rate >= threshold
  Duration slow_call_duration = std::chrono::seconds(60);  ///< a call is slow when duration >= this
  std::optional<std::uint32_t> consecutive_failures;       ///< trips after N failures in a row
  std::function<bool(const WindowSnapshot&)> trip_predicate;
  // Classification of raw results (used by record_result / execute).
  /// (To classify by the returned value as well, pass a classifier to execute(fn, classify).)
  std::function<Outcome(const Error* error, Duration elapsed)> classifier;
  bool cancellation_is_failure = false;  ///< by default errc::cancelled is ignored (neutral)
  // Half-open.
  std::uint32_t half_open_max_concurrent = 1;  ///< probes in flight at once
  enum class HalfOpenDecision { consecutive, rate } half_open_decision = HalfOpenDecision::consecutive;
  std::uint32_t half_open_successes_to_close = 2;    ///< consecutive: this many successes close, one failure opens
  std::uint32_t half_open_probes = 10;               ///< rate: decide after this many probes by failure_rate_threshold
  Duration permit_lease = std::chrono::seconds(60);  ///< an unreported half-open permit frees its slot after this
  std::optional<Duration> max_half_open_wait;        ///< reopen if undecided after this long in half-open
  // Open.
  OpenDuration open_duration;

  Result<void> validate() const;
  /// The seed documents' breaker: opens after 5 consecutive failures, half-opens after 60 s,
  /// closes after 2 successes.
  static BreakerConfig seed_preset();
};

enum class BreakerEventType : std::uint8_t {
  success,
  error,
  ignored,
  not_permitted,
  state_transition,
  reset,
  failure_rate_exceeded,
  slow_call_rate_exceeded,
};
std::string_view to_string(BreakerEventType t) noexcept;

struct BreakerEvent {
  BreakerEventType type;
  std::string_view breaker;  ///< valid during the callback
  TimePoint time;
  BreakerState from = BreakerState::closed;  ///< transitions
  BreakerState to = BreakerState::closed;    ///< transitions
  std::string_view reason;                   ///< transitions and rate events: a stable reason code
  WindowSnapshot window;
  Duration elapsed{0};  ///< call events
};

class CircuitBreaker;

/// How a breaker uses a Store (see CircuitBreaker::share).
enum class SharingMode : std::uint8_t {
  none,      ///< local only
  snapshot,  ///< restore at start, write every transition (last writer wins)
  shared,    ///< restore at start, publish transitions by compare-and-set, adopt other processes' transitions
};
std::string_view to_string(SharingMode m) noexcept;
Result<SharingMode> parse_sharing_mode(std::string_view text);

struct SharingOptions {
  SharingMode mode = SharingMode::shared;
  Duration poll_interval = std::chrono::seconds(1);  ///< shared: how often admissions look at the store
  std::string owner;                                 ///< written as updated_by (default "pid N on HOST")
};

struct SharingStatus {
  SharingMode mode = SharingMode::none;
  bool store_ok = true;      ///< false while the store is unavailable (the breaker goes on locally)
  std::string last_error;    ///< why the store was last unavailable
  std::int64_t version = 0;  ///< the stored version this breaker last saw or wrote
  std::uint64_t publishes = 0, adoptions = 0, conflicts = 0, failures = 0;
};

/// A plain picture of a breaker, from a live breaker or from its stored record.
struct BreakerStatus {
  std::string name;
  BreakerState state = BreakerState::closed;
  std::string reason;
  std::optional<TimePoint> open_until;
  int open_attempt = 0;
  WindowSnapshot window;
  BreakerCounters counters;
  std::optional<TimePoint> updated;  ///< stored records: when and by whom
  std::string updated_by;
  std::int64_t version = 0;
  SharingStatus sharing;
};
/// The status a stored record describes (its counters and window are the last writer's).
Result<BreakerStatus> status_from_record(const storage::BreakerRecord& record);

/// Admission to one call. Move-only. An admitted permit that is dropped without a report reports
/// "ignored". A rejected permit carries retry_after(). Reporting on a permit from an older state
/// generation, or after its lease expired, is dropped (counted as stale).
/// A permit points at its breaker without owning it: it must not outlive the breaker.
class Permit {
 public:
  Permit() = default;
  Permit(Permit&& o) noexcept;
  Permit& operator=(Permit&& o) noexcept;
  Permit(const Permit&) = delete;
  Permit& operator=(const Permit&) = delete;
  ~Permit();

  bool admitted() const noexcept { return breaker_ != nullptr; }
  explicit operator bool() const noexcept { return admitted(); }
  /// When rejected: how long until the breaker may admit again (0 when unknown, e.g. forced open).
  Duration retry_after() const noexcept { return retry_after_; }
  BreakerState rejected_state() const noexcept { return rejected_state_; }

  /// Reports the call. Without `elapsed` the breaker measures from admission with its clock.
  void success(std::optional<Duration> elapsed = std::nullopt);
  void failure(std::optional<Duration> elapsed = std::nullopt);
  void ignore();
  /// A failure that asks the breaker to open now, for `d` / until `t` (e.g. a 429 with Retry-After).
  void failure_open_for(Duration d);
  void failure_open_until(TimePoint t);
  /// Classifies `error` (nullptr = success) with the configured classifier, then reports it.
  void record(const Error* error, std::optional<Duration> elapsed = std::nullopt);

 private:
  friend class CircuitBreaker;
  CircuitBreaker* breaker_ = nullptr;
  std::uint64_t generation_ = 0;
  std::uint64_t probe_id_ = 0;  // non-zero for half-open probes
  TimePoint start_{};
  Duration retry_after_{0};
  BreakerState rejected_state_ = BreakerState::closed;
};

class CircuitBreaker {
 public:
  CircuitBreaker(std::string name, BreakerConfig config, const Clock& clock);
  ~CircuitBreaker();
  CircuitBreaker(const CircuitBreaker&) = delete;
  CircuitBreaker& operator=(const CircuitBreaker&) = delete;

  const std::string& name() const noexcept { return name_; }
  const BreakerConfig& config() const noexcept { return config_; }

  /// Asks to make a call. Never throws, never blocks on the protected call.
  Permit try_acquire();
  /// Runs `fn` (returning Result<T>) if admitted and records its outcome; a rejection returns
  /// errc::unavailable naming the breaker and the retry-after.
  template <class F>
  auto execute(F&& fn) -> decltype(fn());
  /// The same, classifying the whole result: `classify(const Result<T>&, Duration elapsed)` returns
  /// the outcome, so a value can count as a failure (an HTTP 503 returned as a value) or a success
  /// can be ignored. A throwing classifier falls back to success or failure by the result.
  template <class F, class C>
  auto execute(F&& fn, C&& classify) -> decltype(fn());

  /// The state at the clock's now (an elapsed open period shows as half_open).
  BreakerState state();
  /// The state as last recorded, without looking at the clock or the store (lock-free).
  BreakerState current_state() const noexcept { return static_cast<BreakerState>(state_word_.load(std::memory_order_acquire) & 0xff); }
  std::uint64_t generation() const noexcept { return state_word_.load(std::memory_order_acquire) >> 8; }
  WindowSnapshot snapshot() const;
  BreakerCounters counters() const;
  /// When the current open period ends (open state only).
  std::optional<TimePoint> open_until() const;
  /// The openings since the breaker last closed.
  int open_attempt() const;
  /// Why the breaker is in its state: the reason code of the last transition.
  std::string last_reason() const;

  // Manual control. Each checks is_legal_transition; an illegal one is errc::invalid_argument and
  // changes nothing; a transition to the current state is a no-op without an event.
  Result<void> transition_to(BreakerState to, std::string_view reason = "manual");
  Result<void> force_open() { return transition_to(BreakerState::forced_open, "forced_open"); }
  Result<void> disable() { return transition_to(BreakerState::disabled, "disabled"); }
  Result<void> metrics_only() { return transition_to(BreakerState::metrics_only, "metrics_only"); }
  /// Back to closed with an empty window and the open-attempt counter at zero; emits reset.
  void reset();

  /// Persists and optionally shares this breaker through `store` under its name. The stored state, if
  /// any, is adopted now (a transition with reason "restored:<reason>"); otherwise the current state
  /// is written. In shared mode every local transition is published by compare-and-set and
  /// admissions look at the store at most once per poll_interval, adopting what other processes
  /// wrote ("shared:<reason>"); the first writer wins a race. No lock is held while a protected call
  /// runs. When the store is unavailable the breaker goes on locally, logs it, reports it in
  /// sharing_status() and tries again at the next poll or transition; the error is also returned.
  /// The store must outlive the breaker (or a later share() with SharingMode::none).
  Result<void> share(storage::Store& store, SharingOptions options = {});
  SharingStatus sharing_status() const;
  /// Writes the current state and counters now (snapshot and shared modes), e.g. at shutdown.
  Result<void> publish_now();
  /// Looks at the store now (shared mode) instead of waiting for the poll interval.
  Result<void> sync_now();
  BreakerStatus status();

  /// Subscribes to events; returns an id for unsubscribe.
  std::uint64_t subscribe(std::function<void(const BreakerEvent&)> fn);
  void unsubscribe(std::uint64_t id);
  /// Subscriber exceptions caught and dropped so far.
  std::uint64_t subscriber_failures() const noexcept { return subscriber_failures_.load(); }

 private:
  friend class Permit;
  struct Window;
  struct PendingEvent;

  // elapsed and open_until as nanosecond counts, the minimum value for none.
  void report(Permit& p, Outcome outcome, Duration::rep elapsed, Duration::rep open_until) noexcept;
  // The errc::unavailable execute() returns for a rejected permit (names the breaker and retry-after).
  Error rejection(const Permit& p) const;
  void report_locked_path(const Permit& p, Outcome outcome, bool failure, bool slow, std::optional<Duration> d, TimePoint now,
                          std::optional<TimePoint> open_until, std::vector<PendingEvent>& events);
  // Why the outcome just recorded trips the breaker (empty: it does not), and which rates it exceeds.
  std::string_view trip_reason(const WindowSnapshot& snap, bool failure, bool open_requested, std::uint32_t in_a_row, bool& rate_exceeded,
                               bool& slow_rate_exceeded) const noexcept;
  bool predicate_trips(const WindowSnapshot& snap) const noexcept;
  std::uint32_t count_in_a_row(bool failure) noexcept;
  Permit acquire_slow();
  // Under mu_: move to `to`, recording why; queues the events.
  void transition_locked(BreakerState to, std::string_view reason, TimePoint now, std::vector<PendingEvent>& events,
                         std::optional<TimePoint> open_until = std::nullopt);
  void advance_locked(TimePoint now, std::vector<PendingEvent>& events);
  void dispatch(std::vector<PendingEvent>& events) noexcept;
  void emit_call_event(BreakerEventType type, Duration elapsed);
  static std::uint64_t pack(BreakerState s, std::uint64_t gen) noexcept { return (gen << 8) | static_cast<std::uint64_t>(s); }
  // Sharing.
  struct Sharing;
  void poll_if_due() noexcept;
  Result<void> publish_locked_sync(std::vector<PendingEvent>& events);
  // How a stored state is taken over: at start (with the window's contents), or from another process.
  enum class Adoption { restore, follow };
  Result<void> pull_locked_sync(std::vector<PendingEvent>& events, Adoption how);
  // Publishes when a transition or a failed publish waits, else looks at the store.
  Result<void> exchange_locked_sync(std::vector<PendingEvent>& events);
  void adopt(const storage::BreakerRecord& r, Adoption how, std::vector<PendingEvent>& events);
  storage::BreakerRecord make_record_locked(TimePoint now) const;
  void store_failed_locked_sync(const Error& e);

  std::string name_;
  BreakerConfig config_;
  const Clock& clock_;
  bool needs_start_time_;

  std::atomic<std::uint64_t> state_word_;         // (generation << 8) | state
  std::atomic<Duration::rep> open_until_rep_{0};  // open_until_ for the lock-free rejection path
  mutable std::mutex mu_;
  std::unique_ptr<Window> window_;
  std::atomic<std::uint32_t> consecutive_failures_{0};
  TimePoint open_until_{};
  TimePoint half_open_since_{};
  int open_attempt_ = 0;
  std::string last_reason_ = "initial";
  std::mt19937_64 rng_;
  // Half-open probes.
  struct Probe {
    std::uint64_t id;
    TimePoint expires;
  };
  std::vector<Probe> probes_in_flight_;
  std::uint64_t next_probe_id_ = 1;
  std::uint32_t probe_successes_ = 0, probe_failures_ = 0;

  std::atomic<std::uint64_t> c_success_{0}, c_failure_{0}, c_ignored_{0}, c_slow_{0}, c_not_permitted_{0}, c_stale_{0}, c_transitions_{0};

  mutable std::mutex sub_mu_;
  std::vector<std::pair<std::uint64_t, std::shared_ptr<std::function<void(const BreakerEvent&)>>>> subscribers_;
  std::atomic<bool> has_subscribers_{false};
  std::uint64_t next_sub_id_ = 1;
  std::atomic<std::uint64_t> subscriber_failures_{0};

  std::unique_ptr<Sharing> sharing_;  // guarded by sync_mu_ (taken before mu_, never while calling out)
  mutable std::mutex sync_mu_;
  std::atomic<bool> polling_{false};        // shared mode: admissions poll the store
  std::atomic<bool> persisting_{false};     // snapshot or shared mode
  std::atomic<bool> dirty_{false};          // a local transition waits to be published
  std::atomic<bool> retry_publish_{false};  // a publish failed: retry at the next poll
  std::atomic<Duration::rep> next_poll_rep_{0};
  bool adopting_ = false;  // under mu_: transitions come from the store
};

template <class F>
auto CircuitBreaker::execute(F&& fn) -> decltype(fn()) {
  Permit p = try_acquire();
  if (!p) return rejection(p);
  auto r = fn();
  if (r) {
    p.record(nullptr);
  } else {
    const Error e = r.error();  // boost::system::result::error() returns by value
    p.record(&e);
  }
  return r;
}

template <class F, class C>
auto CircuitBreaker::execute(F&& fn, C&& classify) -> decltype(fn()) {
  Permit p = try_acquire();
  if (!p) return rejection(p);
  const TimePoint start = clock_.now();
  auto r = fn();
  const Duration elapsed = clock_.now() - start;
  Outcome o = r ? Outcome::success : Outcome::failure;
  try {
    o = classify(static_cast<const decltype(r)&>(r), elapsed);
  } catch (...) {
  }
  switch (o) {
    case Outcome::success:
      p.success(elapsed);
      break;
    case Outcome::failure:
      p.failure(elapsed);
      break;
    case Outcome::ignored:
      p.ignore();
      break;
  }
  return r;
}

}  // namespace automation::resilience
