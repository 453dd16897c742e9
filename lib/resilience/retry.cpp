#include <automation/core/json.hpp>
#include <automation/core/time.hpp>
#include <automation/resilience/retry.hpp>
#include <detail/names.hpp>
#include "resilience/backoff.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <thread>

namespace automation::resilience {

std::string_view to_string(Backoff b) noexcept {
  switch (b) {
    case Backoff::fixed:
      return "fixed";
    case Backoff::exponential:
      return "exponential";
    case Backoff::linear:
      return "linear";
  }
  return "fixed";
}

std::string_view to_string(RetryReason r) noexcept {
  switch (r) {
    case RetryReason::retry:
      return "retry";
    case RetryReason::succeeded:
      return "succeeded";
    case RetryReason::non_retryable:
      return "non_retryable";
    case RetryReason::attempts_exhausted:
      return "attempts_exhausted";
    case RetryReason::deadline_exceeded:
      return "deadline_exceeded";
  }
  return "retry";
}

Result<void> RetryPolicy::validate() const {
  if (max_attempts < 1) return fail(errc::invalid_argument, fmt::format("retry: max_attempts must be at least 1, got {}", max_attempts));
  if (initial_delay.count() < 0 || increment.count() < 0 || max_delay.count() < 0)
    return fail(errc::invalid_argument, "retry: delays must not be negative");
  if (!(multiplier >= 1.0) || !std::isfinite(multiplier))
    return fail(errc::invalid_argument, fmt::format("retry: multiplier must be at least 1, got {}", multiplier));
  if (!(jitter >= 0.0 && jitter <= 1.0))
    return fail(errc::invalid_argument, fmt::format("retry: jitter must be in [0, 1], got {}", jitter));
  if (deadline && deadline->count() <= 0) return fail(errc::invalid_argument, "retry: deadline must be positive");
  return {};
}

Millis RetryPolicy::base_delay(int attempt) const noexcept {
  if (attempt < 2) return Millis(0);
  const auto g = backoff == Backoff::exponential ? detail::Growth::exponential
                 : backoff == Backoff::linear    ? detail::Growth::linear
                                                 : detail::Growth::fixed;
  // attempt 2 (the first retry) is the first delay
  return Millis(static_cast<Millis::rep>(detail::grown_delay(g, static_cast<double>(initial_delay.count()), multiplier,
                                                             static_cast<double>(increment.count()), attempt - 1,
                                                             static_cast<double>(max_delay.count()))));
}

RetryPolicy RetryPolicy::none() {
  RetryPolicy p;
  p.max_attempts = 1;
  return p;
}

RetryPolicy RetryPolicy::standard() {
  RetryPolicy p;
  p.max_attempts = 3;
  p.initial_delay = Millis(1000);
  return p;
}

Result<RetryPolicy> RetryPolicy::from_json(const boost::json::value& v, std::string_view where) {
  if (!v.is_object()) return fail(errc::invalid_argument, fmt::format("{}: expected an object, got {}", where, json::type_name(v)));
  RetryPolicy p;
  auto bad = [&](std::string_view key, std::string_view what) {
    return fail(errc::invalid_argument, fmt::format("{}.{}: {}", where, key, what));
  };
  for (const auto& kv : v.get_object()) {
    const std::string_view key = kv.key();
    const auto& val = kv.value();
    auto duration = [&](Millis& out) -> Result<void> {
      if (!val.is_string()) return bad(key, fmt::format("expected a duration string like \"1s\", got {}", json::type_name(val)));
      auto d = parse_duration(val.get_string());
      if (!d) return bad(key, d.error().message);
      out = *d;
      return {};
    };
    Result<void> r;
    if (key == "max_attempts") {
      if (!val.is_int64() || val.get_int64() < 1 || val.get_int64() > std::numeric_limits<int>::max())
        r = bad(key, fmt::format("expected an integer from 1 to {}", std::numeric_limits<int>::max()));
      else
        p.max_attempts = static_cast<int>(val.get_int64());
    } else if (key == "backoff") {
      auto b = automation::detail::parse_name(val.is_string() ? std::string_view(val.get_string()) : std::string_view(),
                                              {Backoff::fixed, Backoff::exponential, Backoff::linear}, "backoff");
      if (b)
        p.backoff = *b;
      else
        r = bad(key, b.error().message);
    } else if (key == "initial_delay") {
      r = duration(p.initial_delay);
    } else if (key == "increment") {
      r = duration(p.increment);
    } else if (key == "max_delay") {
      r = duration(p.max_delay);
    } else if (key == "deadline") {
      Millis d{0};
      r = duration(d);
      if (r) p.deadline = d;
    } else if (key == "multiplier" || key == "jitter") {
      if (!val.is_number())
        r = bad(key, "expected a number");
      else
        (key == "multiplier" ? p.multiplier : p.jitter) = val.to_number<double>();
    } else if (key == "seed") {
      if (val.is_uint64())
        p.seed = val.get_uint64();
      else if (val.is_int64() && val.get_int64() >= 0)
        p.seed = static_cast<std::uint64_t>(val.get_int64());
      else
        r = bad(key, "expected a non-negative integer");
    } else if (key == "non_retryable") {
      if (!val.is_array()) {
        r = bad(key, "expected an array of error codes");
      } else {
        p.non_retryable.clear();
        for (const auto& e : val.get_array()) {
          auto code = e.is_string() ? errc_from_string(e.get_string()) : std::nullopt;
          if (!code) {
            r = bad(key, fmt::format("unknown error code {}", json::dump(e)));
            break;
          }
          p.non_retryable.push_back(*code);
        }
      }
    } else {
      static constexpr std::string_view kKeys[] = {"max_attempts", "backoff",    "initial_delay", "increment", "max_delay",
                                                   "deadline",     "multiplier", "jitter",        "seed",      "non_retryable"};
      r = bad(key, "unknown key" + automation::detail::did_you_mean(key, kKeys));
    }
    if (!r) return r.error();
  }
  if (auto ok = p.validate(); !ok) return with_context(ok.error(), where);
  return p;
}

boost::json::object RetryPolicy::to_json() const {
  boost::json::object o{{"max_attempts", max_attempts},
                        {"backoff", std::string(to_string(backoff))},
                        {"initial_delay", format_duration(initial_delay)},
                        {"multiplier", multiplier},
                        {"increment", format_duration(increment)},
                        {"max_delay", format_duration(max_delay)},
                        {"jitter", jitter},
                        {"seed", seed}};
  if (deadline) o["deadline"] = format_duration(*deadline);
  boost::json::array nr;
  for (auto e : non_retryable) nr.emplace_back(std::string(automation::to_string(e)));
  o["non_retryable"] = std::move(nr);
  return o;
}

RetryState::RetryState(const RetryPolicy& policy, TimePoint start) : policy_(policy), start_(start), rng_(policy.seed) {}

bool RetryPolicy::retryable(const Error& error) const {
  if (std::find(non_retryable.begin(), non_retryable.end(), error.kind()) != non_retryable.end()) return false;
  return !retry_on || retry_on(error);
}

RetryDecision RetryState::on_failure(const Error& error, TimePoint now) {
  RetryDecision d;
  d.next_attempt = attempt_ + 1;
  if (!policy_.retryable(error)) {
    d.reason = RetryReason::non_retryable;
    d.explanation =
        fmt::format("not retried: {} errors are not retryable (attempt {} of {})", error.name(), attempt_, policy_.max_attempts);
    return d;
  }
  if (attempt_ >= policy_.max_attempts) {
    d.reason = RetryReason::attempts_exhausted;
    d.explanation = fmt::format("gave up after {} attempt{}", attempt_, attempt_ == 1 ? "" : "s");
    return d;
  }
  const double delay = detail::jittered(static_cast<double>(policy_.base_delay(attempt_ + 1).count()), policy_.jitter, rng_,
                                        static_cast<double>(policy_.max_delay.count()));
  d.delay = Millis(static_cast<Millis::rep>(std::llround(delay)));
  if (policy_.deadline && now + d.delay >= start_ + *policy_.deadline) {
    d.reason = RetryReason::deadline_exceeded;
    d.explanation = fmt::format("gave up after {} attempt{}: the next one would start past the {} deadline", attempt_,
                                attempt_ == 1 ? "" : "s", format_duration(*policy_.deadline));
    return d;
  }
  d.retry = true;
  d.reason = RetryReason::retry;
  d.explanation =
      fmt::format("attempt {} of {} failed ({}); retrying in {}", attempt_, policy_.max_attempts, error.name(), format_duration(d.delay));
  delays_.push_back(d.delay);
  ++attempt_;
  return d;
}

void ThreadSleeper::sleep_for(Millis d) { std::this_thread::sleep_for(d); }

}  // namespace automation::resilience
