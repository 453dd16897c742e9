#pragma once
/// Retry policies: how many attempts, how long to wait between them (fixed, exponential or linear
/// backoff, capped, with seeded jitter so a replay reproduces the delays), which errors are worth
/// retrying, and an overall deadline. The policy is a value; RetryState walks one operation through
/// it and says, after each failure, whether to retry, after what delay, and why. It never sleeps:
/// the caller (the workflow engine's timers, a test's ManualClock, retry_call's Sleeper) waits.
/// Thread-safety: RetryPolicy is immutable once built; a RetryState belongs to one operation.
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>

#include <boost/json/value.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace automation::resilience {

enum class Backoff { fixed, exponential, linear };
std::string_view to_string(Backoff b) noexcept;

struct RetryPolicy {
  int max_attempts = 3;  ///< including the first attempt; 1 = never retry
  Backoff backoff = Backoff::exponential;
  Millis initial_delay{100};       ///< delay before the second attempt
  double multiplier = 2.0;         ///< exponential: delay(n) = initial * multiplier^(n-1)
  Millis increment{100};           ///< linear: delay(n) = initial + increment * (n-1)
  Millis max_delay{30'000};        ///< cap applied after jitter
  double jitter = 0.0;             ///< 0..1: the delay is drawn uniformly from [d*(1-j), d*(1+j)]
  std::uint64_t seed = 0;          ///< jitter seed: the same seed gives the same delays
  std::optional<Millis> deadline;  ///< overall budget from the first attempt's start
  /// Errors never retried (in addition to a retry_on that returns false).
  std::vector<errc> non_retryable{errc::invalid_argument, errc::not_found, errc::permission_denied, errc::config,
                                  errc::schema_too_new,   errc::corrupt,   errc::cancelled,         errc::already_exists};
  /// Optional predicate: retry only when it returns true (checked after non_retryable).
  std::function<bool(const Error&)> retry_on;

  /// Whether `error` is worth another attempt: not in non_retryable, and retry_on (when set) agrees.
  bool retryable(const Error& error) const;
  /// Checks the numbers (attempts >= 1, delays >= 0, multiplier >= 1, jitter in [0, 1]).
  Result<void> validate() const;
  /// The un-jittered delay before attempt `attempt` (2 = the first retry), capped.
  Millis base_delay(int attempt) const noexcept;

  /// Presets: none (1 attempt); the seed's "3 attempts, exponential from 1 s".
  static RetryPolicy none();
  static RetryPolicy standard();

  /// From JSON: {"max_attempts":5,"backoff":"exponential","initial_delay":"1s","multiplier":2,
  /// "increment":"1s","max_delay":"1m","jitter":0.2,"seed":7,"deadline":"10m","non_retryable":["not_found"]}.
  /// Unknown keys and wrong types are errors naming `where` and the key.
  static Result<RetryPolicy> from_json(const boost::json::value& v, std::string_view where = "retry");
  boost::json::object to_json() const;
};

/// Why a RetryState decided what it decided.
enum class RetryReason { retry, succeeded, non_retryable, attempts_exhausted, deadline_exceeded };
std::string_view to_string(RetryReason r) noexcept;

struct RetryDecision {
  bool retry = false;
  Millis delay{0};  ///< wait this long before the next attempt (when retry)
  int next_attempt = 0;
  RetryReason reason = RetryReason::retry;
  std::string explanation;  ///< one sentence, for logs, history and audit
};

/// One operation's walk through a policy.
class RetryState {
 public:
  /// Keeps a reference to `policy`, which must outlive the state.
  RetryState(const RetryPolicy& policy, TimePoint start);
  RetryState(RetryPolicy&&, TimePoint) = delete;
  /// The attempt about to run or running (1-based).
  int attempt() const noexcept { return attempt_; }
  /// After a failed attempt ending at `now`: retry (with the delay) or stop, and why.
  RetryDecision on_failure(const Error& error, TimePoint now);
  /// The delays decided so far, in order.
  const std::vector<Millis>& delays() const noexcept { return delays_; }

 private:
  const RetryPolicy& policy_;
  TimePoint start_;
  int attempt_ = 1;
  std::mt19937_64 rng_;
  std::vector<Millis> delays_;
};

/// Waits on behalf of retry_call. Tests pass one that advances a ManualClock.
class Sleeper {
 public:
  virtual ~Sleeper() = default;
  virtual void sleep_for(Millis d) = 0;
};
/// Sleeps the calling thread for real.
class ThreadSleeper final : public Sleeper {
 public:
  void sleep_for(Millis d) override;
};

/// Runs `fn` (returning Result<T>) under `policy`, waiting with `sleeper`, until it succeeds or the
/// policy says stop. On giving up, the last error is returned with the reason appended.
template <class F>
auto retry_call(const RetryPolicy& policy, const Clock& clock, Sleeper& sleeper, F&& fn) -> decltype(fn()) {
  RetryState state(policy, clock.now());
  for (;;) {
    auto r = fn();
    if (r) return r;
    auto d = state.on_failure(r.error(), clock.now());
    if (!d.retry) return with_context(r.error(), d.explanation);
    sleeper.sleep_for(d.delay);
  }
}

}  // namespace automation::resilience
