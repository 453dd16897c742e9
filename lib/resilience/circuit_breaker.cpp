#include <automation/core/json.hpp>
#include <automation/resilience/circuit_breaker.hpp>
#include <automation/storage/store.hpp>
#include <detail/names.hpp>

#include <detail/log.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>

namespace automation::resilience {

using automation::detail::logf;

std::string_view to_string(BreakerState s) noexcept {
  switch (s) {
    case BreakerState::closed:
      return "closed";
    case BreakerState::open:
      return "open";
    case BreakerState::half_open:
      return "half_open";
    case BreakerState::forced_open:
      return "forced_open";
    case BreakerState::disabled:
      return "disabled";
    case BreakerState::metrics_only:
      return "metrics_only";
  }
  return "closed";
}

Result<BreakerState> parse_breaker_state(std::string_view text) {
  return automation::detail::parse_name(text,
                                        {BreakerState::closed, BreakerState::open, BreakerState::half_open, BreakerState::forced_open,
                                         BreakerState::disabled, BreakerState::metrics_only},
                                        "breaker state");
}

bool is_legal_transition(BreakerState from, BreakerState to) noexcept {
  if (from == BreakerState::closed && to == BreakerState::half_open) return false;
  if (from == BreakerState::metrics_only && (to == BreakerState::open || to == BreakerState::half_open)) return false;
  return true;
}

std::string_view to_string(BreakerEventType t) noexcept {
  switch (t) {
    case BreakerEventType::success:
      return "success";
    case BreakerEventType::error:
      return "error";
    case BreakerEventType::ignored:
      return "ignored";
    case BreakerEventType::not_permitted:
      return "not_permitted";
    case BreakerEventType::state_transition:
      return "state_transition";
    case BreakerEventType::reset:
      return "reset";
    case BreakerEventType::failure_rate_exceeded:
      return "failure_rate_exceeded";
    case BreakerEventType::slow_call_rate_exceeded:
      return "slow_call_rate_exceeded";
  }
  return "success";
}

// ---- configuration -----------------------------------------------------------------------------

Duration OpenDuration::compute(const OpenDurationContext& ctx, std::mt19937_64& rng) const {
  double d = 0;
  const int n = std::max(ctx.attempt, 1);
  switch (kind) {
    case Kind::fixed:
      d = static_cast<double>(base.count());
      break;
    case Kind::exponential:
      d = static_cast<double>(base.count()) * std::pow(multiplier, n - 1);
      break;
    case Kind::linear:
      d = static_cast<double>(base.count()) + static_cast<double>(increment.count()) * (n - 1);
      break;
    case Kind::custom:
      d = custom ? static_cast<double>(custom(ctx).count()) : static_cast<double>(base.count());
      break;
  }
  d = std::min(d, static_cast<double>(max.count()));
  if (jitter > 0) {
    std::uniform_real_distribution<double> u(1.0 - jitter, 1.0 + jitter);
    d = std::min(d * u(rng), static_cast<double>(max.count()));
  }
  return Duration(static_cast<Duration::rep>(std::max(d, 0.0)));
}

Result<void> BreakerConfig::validate() const {
  auto bad = [](std::string msg) { return fail(errc::invalid_argument, "circuit breaker config: " + msg); };
  if (window_size == 0) return bad("window_size must be at least 1");
  if (window == Window::time && bucket_width <= Duration::zero()) return bad("bucket_width must be positive");
  if (minimum_calls == 0) return bad("minimum_calls must be at least 1");
  for (auto [name, v] :
       {std::pair{"failure_rate_threshold", failure_rate_threshold}, std::pair{"slow_call_rate_threshold", slow_call_rate_threshold}})
    if (v && !(*v > 0 && *v <= 100)) return bad(fmt::format("{} must be in (0, 100], got {}", name, *v));
  if (consecutive_failures && *consecutive_failures == 0) return bad("consecutive_failures must be at least 1");
  if (half_open_max_concurrent == 0) return bad("half_open_max_concurrent must be at least 1");
  if (half_open_successes_to_close == 0) return bad("half_open_successes_to_close must be at least 1");
  if (half_open_probes == 0) return bad("half_open_probes must be at least 1");
  if (half_open_decision == HalfOpenDecision::rate && !failure_rate_threshold)
    return bad("the rate half-open decision needs failure_rate_threshold");
  if (permit_lease <= Duration::zero()) return bad("permit_lease must be positive");
  if (max_half_open_wait && *max_half_open_wait <= Duration::zero()) return bad("max_half_open_wait must be positive");
  if (open_duration.kind != OpenDuration::Kind::custom && open_duration.base <= Duration::zero())
    return bad("open duration must be positive");
  if (open_duration.kind == OpenDuration::Kind::custom && !open_duration.custom) return bad("a custom open duration needs a function");
  if (!(open_duration.multiplier >= 1)) return bad("open duration multiplier must be at least 1");
  if (!(open_duration.jitter >= 0 && open_duration.jitter <= 1)) return bad("open duration jitter must be in [0, 1]");
  if (open_duration.max <= Duration::zero()) return bad("open duration max must be positive");
  return {};
}

BreakerConfig BreakerConfig::seed_preset() {
  BreakerConfig c;
  c.failure_rate_threshold.reset();
  c.consecutive_failures = 5;
  c.open_duration.kind = OpenDuration::Kind::fixed;
  c.open_duration.base = std::chrono::seconds(60);
  c.half_open_decision = HalfOpenDecision::consecutive;
  c.half_open_successes_to_close = 2;
  c.half_open_max_concurrent = 1;
  return c;
}

// ---- window ------------------------------------------------------------------------------------

struct CircuitBreaker::Window {
  BreakerConfig::Window kind;
  std::uint32_t size;
  Duration width;
  // count window: a ring of outcomes, bit 0 = failure, bit 1 = slow, bit 7 = occupied
  std::vector<std::uint8_t> ring;
  std::uint32_t head = 0;
  // time window: one aggregate per bucket, tagged with its epoch (time / width)
  struct Bucket {
    std::int64_t epoch = INT64_MIN;
    WindowSnapshot agg;
  };
  std::vector<Bucket> buckets;
  std::int64_t latest = INT64_MIN;
  WindowSnapshot total;

  Window(BreakerConfig::Window k, std::uint32_t n, Duration w) : kind(k), size(n), width(w) {
    if (kind == BreakerConfig::Window::count) {
      ring.assign(n, 0);
    } else {
      buckets.assign(n, {});
    }
  }

  static void add(WindowSnapshot& s, bool failure, bool slow, int sign) {
    s.calls += sign;
    if (failure) s.failures += sign;
    if (slow) s.slow_calls += sign;
    if (failure && slow) s.slow_failures += sign;
  }

  std::int64_t epoch_of(TimePoint t) const { return t.time_since_epoch().count() / width.count(); }

  // Drops buckets that fell out of the window ending at `now`: O(buckets passed), O(1) amortized.
  void evict(TimePoint now) {
    if (kind != BreakerConfig::Window::time) return;
    const std::int64_t e = epoch_of(now);
    if (latest != INT64_MIN && e <= latest) return;
    if (latest == INT64_MIN || e - latest >= size) {
      for (auto& b : buckets) b = {};
      total = {};
    } else {
      for (std::int64_t x = latest + 1; x <= e; ++x) {
        auto& b = buckets[static_cast<std::size_t>(x % size)];
        if (b.epoch != INT64_MIN) {
          total.calls -= b.agg.calls;
          total.failures -= b.agg.failures;
          total.slow_calls -= b.agg.slow_calls;
          total.slow_failures -= b.agg.slow_failures;
        }
        b = {};
        b.epoch = x;
      }
    }
    latest = e;
    buckets[static_cast<std::size_t>(e % size)].epoch = e;
  }

  void record(bool failure, bool slow, TimePoint now) {
    if (kind == BreakerConfig::Window::count) {
      auto& slot = ring[head];
      if (slot & 0x80) add(total, slot & 1, slot & 2, -1);
      slot = static_cast<std::uint8_t>(0x80 | (failure ? 1 : 0) | (slow ? 2 : 0));
      head = head + 1 == size ? 0 : head + 1;
      add(total, failure, slow, +1);
      return;
    }
    evict(now);
    const std::int64_t e = epoch_of(now);
    if (e <= latest - static_cast<std::int64_t>(size)) return;  // older than the window
    auto& b = buckets[static_cast<std::size_t>(((e % size) + size) % size)];
    if (b.epoch != e) return;
    add(b.agg, failure, slow, +1);
    add(total, failure, slow, +1);
  }

  WindowSnapshot snapshot(TimePoint now) {
    evict(now);
    return total;
  }

  // The window's contents as JSON, so a restart (or the next one-shot process) goes on counting.
  boost::json::object save() const {
    boost::json::object o{{"kind", kind == BreakerConfig::Window::count ? "count" : "time"}, {"size", size}};
    if (kind == BreakerConfig::Window::count) {
      std::string r(ring.size(), '.');
      for (std::size_t i = 0; i < ring.size(); ++i)
        if (ring[i] & 0x80) r[i] = "sfSF"[(ring[i] & 1) | (ring[i] & 2)];
      o["ring"] = r;
      o["head"] = head;
    } else {
      boost::json::array b;
      for (const auto& x : buckets)
        if (x.epoch != INT64_MIN && x.agg.calls)
          b.push_back(boost::json::array{x.epoch, x.agg.calls, x.agg.failures, x.agg.slow_calls, x.agg.slow_failures});
      o["buckets"] = std::move(b);
      o["width_ns"] = width.count();
    }
    return o;
  }

  // Restores what save() wrote when the window has the same shape; false (and empty) otherwise.
  bool load(const boost::json::object& o, TimePoint now) {
    try {
      if (load_unchecked(o, now)) return true;
    } catch (const std::exception&) {  // a number out of range in a hand-edited record
    }
    clear();
    return false;
  }

  bool load_unchecked(const boost::json::object& o, TimePoint now) {
    clear();
    const auto* k = o.if_contains("kind");
    const auto* n = o.if_contains("size");
    if (!k || !k->is_string() || !n || !n->is_number() || n->to_number<std::uint32_t>() != size) return false;
    if (kind == BreakerConfig::Window::count) {
      const auto* r = o.if_contains("ring");
      const auto* h = o.if_contains("head");
      if (k->as_string() != "count" || !r || !r->is_string() || r->as_string().size() != size || !h || !h->is_number()) return false;
      const auto hv = h->to_number<std::uint32_t>();
      if (hv >= size) return false;
      const auto& text = r->as_string();
      for (std::size_t i = 0; i < size; ++i) {
        const char c = text[i];
        if (c == '.') continue;
        const bool failure = c == 'f' || c == 'F', slow = c == 'S' || c == 'F';
        ring[i] = static_cast<std::uint8_t>(0x80 | (failure ? 1 : 0) | (slow ? 2 : 0));
        add(total, failure, slow, +1);
      }
      head = hv;
      return true;
    }
    const auto* b = o.if_contains("buckets");
    const auto* w = o.if_contains("width_ns");
    if (k->as_string() != "time" || !b || !b->is_array() || !w || !w->is_number() || w->to_number<Duration::rep>() != width.count())
      return false;
    evict(now);
    for (const auto& v : b->as_array()) {
      if (!v.is_array() || v.as_array().size() != 5) continue;
      const auto& a = v.as_array();
      const auto e = a[0].to_number<std::int64_t>();
      if (e > latest || e <= latest - static_cast<std::int64_t>(size)) continue;  // outside the window now
      auto& x = buckets[static_cast<std::size_t>(((e % size) + size) % size)];
      x.epoch = e;
      x.agg = {a[1].to_number<std::uint32_t>(), a[2].to_number<std::uint32_t>(), a[3].to_number<std::uint32_t>(),
               a[4].to_number<std::uint32_t>()};
      total.calls += x.agg.calls;
      total.failures += x.agg.failures;
      total.slow_calls += x.agg.slow_calls;
      total.slow_failures += x.agg.slow_failures;
    }
    return true;
  }

  void clear() {
    std::fill(ring.begin(), ring.end(), 0);
    head = 0;
    for (auto& b : buckets) b = {};
    latest = INT64_MIN;
    total = {};
  }
};

struct CircuitBreaker::PendingEvent {
  BreakerEventType type;
  TimePoint time;
  BreakerState from, to;
  std::string reason;
  WindowSnapshot window;
  Duration elapsed{0};
};

// ---- permit ------------------------------------------------------------------------------------

Permit::Permit(Permit&& o) noexcept
    : breaker_(o.breaker_),
      generation_(o.generation_),
      probe_id_(o.probe_id_),
      start_(o.start_),
      retry_after_(o.retry_after_),
      rejected_state_(o.rejected_state_) {
  o.breaker_ = nullptr;
}

Permit& Permit::operator=(Permit&& o) noexcept {
  if (this != &o) {
    if (breaker_) breaker_->report(*this, Outcome::ignored, std::nullopt, std::nullopt);
    breaker_ = o.breaker_;
    generation_ = o.generation_;
    probe_id_ = o.probe_id_;
    start_ = o.start_;
    retry_after_ = o.retry_after_;
    rejected_state_ = o.rejected_state_;
    o.breaker_ = nullptr;
  }
  return *this;
}

Permit::~Permit() {
  if (breaker_) breaker_->report(*this, Outcome::ignored, std::nullopt, std::nullopt);
}

void Permit::success(std::optional<Duration> elapsed) {
  if (breaker_) breaker_->report(*this, Outcome::success, elapsed, std::nullopt);
}
void Permit::failure(std::optional<Duration> elapsed) {
  if (breaker_) breaker_->report(*this, Outcome::failure, elapsed, std::nullopt);
}
void Permit::ignore() {
  if (breaker_) breaker_->report(*this, Outcome::ignored, std::nullopt, std::nullopt);
}
void Permit::failure_open_for(Duration d) {
  if (breaker_) breaker_->report(*this, Outcome::failure, std::nullopt, breaker_->clock_.now() + d);
}
void Permit::failure_open_until(TimePoint t) {
  if (breaker_) breaker_->report(*this, Outcome::failure, std::nullopt, t);
}

void Permit::record(const Error* error, std::optional<Duration> elapsed) {
  if (!breaker_) return;
  const auto& cfg = breaker_->config_;
  Outcome o;
  if (cfg.classifier) {
    Duration d = elapsed ? *elapsed : (start_ != TimePoint{} ? breaker_->clock_.now() - start_ : Duration::zero());
    try {
      o = cfg.classifier(error, d);
    } catch (...) {
      o = error ? Outcome::failure : Outcome::success;  // a throwing classifier must not lose the call
    }
  } else if (!error) {
    o = Outcome::success;
  } else if (error->is(errc::cancelled) && !cfg.cancellation_is_failure) {
    o = Outcome::ignored;
  } else {
    o = Outcome::failure;
  }
  breaker_->report(*this, o, elapsed, std::nullopt);
}

// ---- breaker -----------------------------------------------------------------------------------

CircuitBreaker::CircuitBreaker(std::string name, BreakerConfig config, const Clock& clock)
    : name_(std::move(name)),
      config_(std::move(config)),
      clock_(clock),
      state_word_(pack(BreakerState::closed, 1)),
      rng_(config_.open_duration.seed) {
  if (auto v = config_.validate(); !v) throw Exception(with_context(v.error(), name_));
  if (config_.window == BreakerConfig::Window::count) config_.minimum_calls = std::min(config_.minimum_calls, config_.window_size);
  needs_start_time_ = config_.slow_call_rate_threshold.has_value() || static_cast<bool>(config_.classifier);
  window_ = std::make_unique<Window>(config_.window, config_.window_size, config_.bucket_width);
}

CircuitBreaker::~CircuitBreaker() = default;

Permit CircuitBreaker::try_acquire() {
  if (polling_.load(std::memory_order_relaxed)) [[unlikely]]
    poll_if_due();
  const std::uint64_t w = state_word_.load(std::memory_order_acquire);
  const auto s = static_cast<BreakerState>(w & 0xff);
  if (s == BreakerState::closed || s == BreakerState::metrics_only || s == BreakerState::disabled) {
    Permit p;
    p.breaker_ = this;
    p.generation_ = w >> 8;
    if (needs_start_time_) p.start_ = clock_.now();
    return p;
  }
  // Lock-free rejections: forced open always, open while its period lasts. Subscribers want a
  // not_permitted event with a window snapshot, which the slow path provides.
  if (!has_subscribers_.load(std::memory_order_relaxed)) {
    if (s == BreakerState::forced_open) {
      c_not_permitted_.fetch_add(1, std::memory_order_relaxed);
      Permit p;
      p.rejected_state_ = s;
      return p;
    }
    if (s == BreakerState::open) {
      // The coarse clock lags now() by at most a few ms: rejections may go on that much past the
      // end of the period (and retry_after may be that much longer); then the slow path decides.
      const auto until = TimePoint(Duration(open_until_rep_.load(std::memory_order_acquire)));
      const auto now = clock_.coarse_now();
      if (now < until && state_word_.load(std::memory_order_acquire) == w) {
        c_not_permitted_.fetch_add(1, std::memory_order_relaxed);
        Permit p;
        p.rejected_state_ = s;
        p.retry_after_ = until - now;
        return p;
      }
    }
  }
  return acquire_slow();
}

void CircuitBreaker::advance_locked(TimePoint now, std::vector<PendingEvent>& events) {
  const auto s = static_cast<BreakerState>(state_word_.load(std::memory_order_relaxed) & 0xff);
  if (s == BreakerState::open && now >= open_until_) {
    transition_locked(BreakerState::half_open, "open_duration_elapsed", now, events);
  } else if (s == BreakerState::half_open) {
    // Probes whose lease ran out free their slots, as if reported ignored.
    std::erase_if(probes_in_flight_, [&](const Probe& p) {
      if (p.expires > now) return false;
      c_ignored_.fetch_add(1, std::memory_order_relaxed);
      return true;
    });
    if (config_.max_half_open_wait && now - half_open_since_ >= *config_.max_half_open_wait)
      transition_locked(BreakerState::open, "half_open_timeout", now, events);
  }
}

Permit CircuitBreaker::acquire_slow() {
  std::vector<PendingEvent> events;
  Permit p;
  {
    std::lock_guard lock(mu_);
    const TimePoint now = clock_.now();
    advance_locked(now, events);
    const std::uint64_t w = state_word_.load(std::memory_order_relaxed);
    const auto s = static_cast<BreakerState>(w & 0xff);
    switch (s) {
      case BreakerState::closed:
      case BreakerState::metrics_only:
      case BreakerState::disabled:
        p.breaker_ = this;
        p.generation_ = w >> 8;
        if (needs_start_time_) p.start_ = now;
        break;
      case BreakerState::half_open: {
        const auto in_flight = static_cast<std::uint32_t>(probes_in_flight_.size());
        const bool room =
            in_flight < config_.half_open_max_concurrent && (config_.half_open_decision != BreakerConfig::HalfOpenDecision::rate ||
                                                             probe_successes_ + probe_failures_ + in_flight < config_.half_open_probes);
        if (room) {
          p.breaker_ = this;
          p.generation_ = w >> 8;
          p.probe_id_ = next_probe_id_++;
          p.start_ = now;
          probes_in_flight_.push_back({p.probe_id_, now + config_.permit_lease});
        } else {
          TimePoint earliest = now + config_.permit_lease;
          for (const auto& pr : probes_in_flight_) earliest = std::min(earliest, pr.expires);
          p.retry_after_ = earliest - now;
          p.rejected_state_ = s;
        }
        break;
      }
      case BreakerState::open:
        p.retry_after_ = open_until_ - now;
        p.rejected_state_ = s;
        break;
      case BreakerState::forced_open:
        p.retry_after_ = Duration::zero();
        p.rejected_state_ = s;
        break;
    }
    if (!p.admitted()) {
      c_not_permitted_.fetch_add(1, std::memory_order_relaxed);
      if (has_subscribers_.load(std::memory_order_relaxed))
        events.push_back({BreakerEventType::not_permitted, now, s, s, std::string(to_string(s)), window_->snapshot(now)});
    }
  }
  dispatch(events);
  return p;
}

void CircuitBreaker::report(Permit& p, Outcome outcome, std::optional<Duration> elapsed, std::optional<TimePoint> open_until) noexcept {
  p.breaker_ = nullptr;
  std::vector<PendingEvent> events;
  try {
    const bool time_window = config_.window == BreakerConfig::Window::time;
    // Only the hot path (a success in a count window, no slow rule, predicate, probe or subscriber)
    // skips reading the clock; anything that may transition or stamp an event reads it.
    const bool want_now = time_window || p.probe_id_ != 0 || outcome != Outcome::success || open_until || has_subscribers_.load() ||
                          (!elapsed && p.start_ != TimePoint{}) || config_.slow_call_rate_threshold || config_.trip_predicate;
    TimePoint now = want_now ? clock_.now() : TimePoint{};
    bool have_now = want_now;
    // Anything that transitions or stamps an event needs the real time, even on the fast path.
    auto ensure_now = [&]() -> TimePoint {
      if (!have_now) {
        now = clock_.now();
        have_now = true;
      }
      return now;
    };
    std::optional<Duration> d = elapsed;
    if (!d && p.start_ != TimePoint{}) d = now - p.start_;
    const bool slow = d && *d >= config_.slow_call_duration;

    std::lock_guard lock(mu_);
    const std::uint64_t w = state_word_.load(std::memory_order_relaxed);
    const auto s = static_cast<BreakerState>(w & 0xff);
    if ((w >> 8) != p.generation_) {
      c_stale_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (p.probe_id_) {
      auto it = std::find_if(probes_in_flight_.begin(), probes_in_flight_.end(), [&](const Probe& pr) { return pr.id == p.probe_id_; });
      if (it == probes_in_flight_.end()) {
        c_stale_.fetch_add(1, std::memory_order_relaxed);  // its lease expired and the slot was given away
        return;
      }
      const bool expired = it->expires <= now;
      probes_in_flight_.erase(it);
      if (expired) {
        c_stale_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
    }
    if (outcome == Outcome::ignored) {
      c_ignored_.fetch_add(1, std::memory_order_relaxed);
      if (has_subscribers_.load(std::memory_order_relaxed))
        events.push_back({BreakerEventType::ignored, now, s, s, {}, window_->total, d.value_or(Duration::zero())});
    } else {
      const bool failure = outcome == Outcome::failure;
      (failure ? c_failure_ : c_success_).fetch_add(1, std::memory_order_relaxed);
      if (slow) c_slow_.fetch_add(1, std::memory_order_relaxed);
      if (has_subscribers_.load(std::memory_order_relaxed))
        events.push_back(
            {failure ? BreakerEventType::error : BreakerEventType::success, now, s, s, {}, window_->total, d.value_or(Duration::zero())});
      if (s == BreakerState::half_open && p.probe_id_) {
        (failure ? probe_failures_ : probe_successes_)++;
        if (failure && open_until) {
          transition_locked(BreakerState::open, "open_requested_by_outcome", now, events, open_until);
        } else if (config_.half_open_decision == BreakerConfig::HalfOpenDecision::consecutive) {
          if (failure) {
            transition_locked(BreakerState::open, "half_open_probe_failed", now, events);
          } else if (probe_successes_ >= config_.half_open_successes_to_close) {
            transition_locked(BreakerState::closed, "half_open_probes_succeeded", now, events);
          }
        } else {
          const std::uint32_t decided = probe_successes_ + probe_failures_;
          if (decided >= config_.half_open_probes) {
            const double rate = 100.0 * probe_failures_ / decided;
            if (rate >= *config_.failure_rate_threshold) {
              transition_locked(BreakerState::open, "half_open_failure_rate_exceeded", now, events);
            } else {
              transition_locked(BreakerState::closed, "half_open_failure_rate_below_threshold", now, events);
            }
          }
        }
      } else if (s == BreakerState::closed || s == BreakerState::metrics_only) {
        window_->record(failure, slow, now);
        consecutive_failures_ = failure ? consecutive_failures_ + 1 : 0;
        const bool act = s == BreakerState::closed;
        const WindowSnapshot snap = window_->total;
        std::string_view reason;
        if (failure && open_until) {
          reason = "open_requested_by_outcome";
        } else if (config_.consecutive_failures && consecutive_failures_ >= *config_.consecutive_failures) {
          reason = "consecutive_failures";
        }
        if (snap.calls >= config_.minimum_calls || config_.trip_predicate) ensure_now();
        if (snap.calls >= config_.minimum_calls) {
          if (config_.failure_rate_threshold && snap.failure_rate() >= *config_.failure_rate_threshold) {
            events.push_back({BreakerEventType::failure_rate_exceeded, now, s, s, "failure_rate_exceeded", snap});
            if (reason.empty()) reason = "failure_rate_exceeded";
          }
          if (config_.slow_call_rate_threshold && snap.slow_call_rate() >= *config_.slow_call_rate_threshold) {
            events.push_back({BreakerEventType::slow_call_rate_exceeded, now, s, s, "slow_call_rate_exceeded", snap});
            if (reason.empty()) reason = "slow_call_rate_exceeded";
          }
        }
        if (reason.empty() && config_.trip_predicate) {
          bool trip = false;
          try {
            trip = config_.trip_predicate(snap);
          } catch (...) {
          }
          if (trip) reason = "predicate";
        }
        if (act && !reason.empty()) transition_locked(BreakerState::open, reason, now, events, failure ? open_until : std::nullopt);
      }
    }
  } catch (...) {
    // Reporting never throws (it runs from Permit's destructor).
  }
  dispatch(events);
}

void CircuitBreaker::transition_locked(BreakerState to, std::string_view reason, TimePoint now, std::vector<PendingEvent>& events,
                                       std::optional<TimePoint> open_until) {
  const std::uint64_t w = state_word_.load(std::memory_order_relaxed);
  const auto from = static_cast<BreakerState>(w & 0xff);
  if (from == to) return;
  const WindowSnapshot before = window_->snapshot(now);
  if (to == BreakerState::open) {
    ++open_attempt_;
    const Duration d =
        open_until ? *open_until - now : config_.open_duration.compute({open_attempt_, before.failure_rate(), before.failures}, rng_);
    open_until_ = now + std::max(d, Duration::zero());
    open_until_rep_.store(open_until_.time_since_epoch().count(), std::memory_order_release);
  }
  if (to == BreakerState::half_open) half_open_since_ = now;
  if (to == BreakerState::closed) open_attempt_ = 0;  // the attempt counter resets on close
  probes_in_flight_.clear();
  probe_successes_ = probe_failures_ = 0;
  window_->clear();
  consecutive_failures_ = 0;
  last_reason_ = std::string(reason);
  state_word_.store(pack(to, (w >> 8) + 1), std::memory_order_release);
  c_transitions_.fetch_add(1, std::memory_order_relaxed);
  if (!adopting_) dirty_.store(true, std::memory_order_release);
  events.push_back({BreakerEventType::state_transition, now, from, to, std::string(reason), before});
  logf(LogLevel::info, "breaker", "circuit breaker '{}' {} -> {} ({})", name_, to_string(from), to_string(to), reason);
}

BreakerState CircuitBreaker::state() {
  if (polling_.load(std::memory_order_relaxed)) poll_if_due();
  const auto s = static_cast<BreakerState>(state_word_.load(std::memory_order_acquire) & 0xff);
  if (s != BreakerState::open && s != BreakerState::half_open) return s;
  std::vector<PendingEvent> events;
  BreakerState now_state;
  {
    std::lock_guard lock(mu_);
    advance_locked(clock_.now(), events);
    now_state = static_cast<BreakerState>(state_word_.load(std::memory_order_relaxed) & 0xff);
  }
  dispatch(events);
  return now_state;
}

WindowSnapshot CircuitBreaker::snapshot() const {
  std::lock_guard lock(mu_);
  return window_->snapshot(clock_.now());
}

BreakerCounters CircuitBreaker::counters() const {
  BreakerCounters c;
  c.successes = c_success_.load();
  c.failures = c_failure_.load();
  c.ignored = c_ignored_.load();
  c.slow = c_slow_.load();
  c.not_permitted = c_not_permitted_.load();
  c.stale = c_stale_.load();
  c.transitions = c_transitions_.load();
  return c;
}

std::optional<TimePoint> CircuitBreaker::open_until() const {
  std::lock_guard lock(mu_);
  if (static_cast<BreakerState>(state_word_.load() & 0xff) != BreakerState::open) return std::nullopt;
  return open_until_;
}

int CircuitBreaker::open_attempt() const {
  std::lock_guard lock(mu_);
  return open_attempt_;
}

std::string CircuitBreaker::last_reason() const {
  std::lock_guard lock(mu_);
  return last_reason_;
}

Result<void> CircuitBreaker::transition_to(BreakerState to, std::string_view reason) {
  std::vector<PendingEvent> events;
  Result<void> result;
  {
    std::lock_guard lock(mu_);
    const TimePoint now = clock_.now();
    advance_locked(now, events);
    const auto from = static_cast<BreakerState>(state_word_.load(std::memory_order_relaxed) & 0xff);
    if (is_legal_transition(from, to)) {
      transition_locked(to, reason, now, events);
    } else {
      result = fail(errc::invalid_argument,
                    fmt::format("circuit breaker '{}': {} -> {} is not a legal transition", name_, to_string(from), to_string(to)));
    }
  }
  dispatch(events);  // outside the mutex: a subscriber may call back into the breaker
  return result;
}

void CircuitBreaker::reset() {
  std::vector<PendingEvent> events;
  {
    std::lock_guard lock(mu_);
    const TimePoint now = clock_.now();
    const std::uint64_t w = state_word_.load(std::memory_order_relaxed);
    const auto from = static_cast<BreakerState>(w & 0xff);
    const WindowSnapshot before = window_->snapshot(now);
    window_->clear();
    consecutive_failures_ = 0;
    open_attempt_ = 0;
    probes_in_flight_.clear();
    probe_successes_ = probe_failures_ = 0;
    last_reason_ = "reset";
    dirty_.store(true, std::memory_order_release);
    state_word_.store(pack(BreakerState::closed, (w >> 8) + 1), std::memory_order_release);
    events.push_back({BreakerEventType::reset, now, from, BreakerState::closed, "reset", before});
    if (from != BreakerState::closed) {
      c_transitions_.fetch_add(1, std::memory_order_relaxed);
      events.push_back({BreakerEventType::state_transition, now, from, BreakerState::closed, "reset", before});
    }
  }
  dispatch(events);
}

std::uint64_t CircuitBreaker::subscribe(std::function<void(const BreakerEvent&)> fn) {
  std::lock_guard lock(sub_mu_);
  const auto id = next_sub_id_++;
  subscribers_.emplace_back(id, std::make_shared<std::function<void(const BreakerEvent&)>>(std::move(fn)));
  has_subscribers_.store(true);
  return id;
}

void CircuitBreaker::unsubscribe(std::uint64_t id) {
  std::lock_guard lock(sub_mu_);
  std::erase_if(subscribers_, [id](const auto& s) { return s.first == id; });
  has_subscribers_.store(!subscribers_.empty());
}

void CircuitBreaker::dispatch(std::vector<PendingEvent>& events) noexcept {
  // A local transition is published once the breaker's mutex is released (never under it).
  if (persisting_.load(std::memory_order_acquire) && dirty_.load(std::memory_order_acquire)) {
    std::vector<PendingEvent> more;
    try {
      std::lock_guard sync(sync_mu_);
      if (dirty_.exchange(false) && sharing_) (void)publish_locked_sync(more);
    } catch (...) {
      retry_publish_.store(true);  // e.g. out of memory: try again at the next poll
    }
    if (!more.empty()) {
      try {
        events.insert(events.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
      } catch (...) {
      }
    }
  }
  if (events.empty() || !has_subscribers_.load()) return;
  std::vector<std::shared_ptr<std::function<void(const BreakerEvent&)>>> subs;
  try {
    std::lock_guard lock(sub_mu_);
    for (const auto& s : subscribers_) subs.push_back(s.second);
  } catch (...) {
    return;
  }
  for (const auto& e : events) {
    BreakerEvent ev{e.type, name_, e.time, e.from, e.to, e.reason, e.window, e.elapsed};
    for (const auto& fn : subs) {
      try {
        (*fn)(ev);
      } catch (...) {
        subscriber_failures_.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }
}

// ---- persistence and sharing -------------------------------------------------------------------

std::string_view to_string(SharingMode m) noexcept {
  switch (m) {
    case SharingMode::none:
      return "none";
    case SharingMode::snapshot:
      return "snapshot";
    case SharingMode::shared:
      return "shared";
  }
  return "none";
}

Result<SharingMode> parse_sharing_mode(std::string_view text) {
  return automation::detail::parse_name(text, {SharingMode::none, SharingMode::snapshot, SharingMode::shared}, "breaker sharing mode");
}

struct CircuitBreaker::Sharing {
  storage::Store* store = nullptr;
  SharingOptions options;
  SharingStatus status;
};

namespace {

std::string default_owner() {
  std::array<char, 256> host{};
  if (gethostname(host.data(), host.size() - 1) != 0) host[0] = 0;
  return fmt::format("pid {} on {}", static_cast<long>(getpid()), host[0] ? host.data() : "unknown");
}

// A reason without the prefix that marks it adopted, so adopting an adopted reason does not nest.
std::string_view base_reason(std::string_view r) {
  for (std::string_view p : {"shared:", "restored:"})
    if (r.substr(0, p.size()) == p) return r.substr(p.size());
  return r;
}

boost::json::object window_json(const WindowSnapshot& w) {
  return {{"calls", w.calls}, {"failures", w.failures}, {"slow_calls", w.slow_calls}, {"slow_failures", w.slow_failures}};
}

boost::json::object counters_json(const BreakerCounters& c) {
  return {{"successes", c.successes},         {"failures", c.failures}, {"ignored", c.ignored},        {"slow", c.slow},
          {"not_permitted", c.not_permitted}, {"stale", c.stale},       {"transitions", c.transitions}};
}

std::uint64_t u64(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v) return 0;
  if (v->is_uint64()) return v->as_uint64();
  if (v->is_int64() && v->as_int64() >= 0) return static_cast<std::uint64_t>(v->as_int64());
  return 0;
}

}  // namespace

Result<BreakerStatus> status_from_record(const storage::BreakerRecord& r) {
  BreakerStatus s;
  s.name = r.name;
  auto st = parse_breaker_state(r.state);
  if (!st) return with_context(st.error(), fmt::format("breaker record '{}'", r.name));
  s.state = *st;
  s.reason = r.reason;
  if (s.state == BreakerState::open) s.open_until = r.open_until;
  s.open_attempt = r.open_attempt;
  s.updated = r.updated;
  s.updated_by = r.updated_by;
  s.version = r.version;
  auto doc = json::parse(r.details, fmt::format("breaker record '{}' details", r.name));
  if (!doc) return doc.error();
  if (const auto* o = doc->if_object()) {
    if (const auto* w = o->if_contains("window"); w && w->is_object()) {
      const auto& wo = w->as_object();
      s.window.calls = static_cast<std::uint32_t>(u64(wo, "calls"));
      s.window.failures = static_cast<std::uint32_t>(u64(wo, "failures"));
      s.window.slow_calls = static_cast<std::uint32_t>(u64(wo, "slow_calls"));
      s.window.slow_failures = static_cast<std::uint32_t>(u64(wo, "slow_failures"));
    }
    if (const auto* c = o->if_contains("counters"); c && c->is_object()) {
      const auto& co = c->as_object();
      s.counters = {u64(co, "successes"),     u64(co, "failures"), u64(co, "ignored"),    u64(co, "slow"),
                    u64(co, "not_permitted"), u64(co, "stale"),    u64(co, "transitions")};
    }
  }
  return s;
}

storage::BreakerRecord CircuitBreaker::make_record_locked(TimePoint now) const {
  storage::BreakerRecord r;
  r.name = name_;
  const auto s = static_cast<BreakerState>(state_word_.load(std::memory_order_relaxed) & 0xff);
  r.state = std::string(to_string(s));
  r.open_until = s == BreakerState::open ? open_until_ : TimePoint{};
  r.open_attempt = open_attempt_;
  // Adopted reasons keep their prefix, so re-publishing an adopted reset is not a new reset.
  r.reason = last_reason_;
  boost::json::object d{{"window", window_json(window_->total)},
                        {"counters", counters_json(counters())},
                        {"generation", generation()},
                        {"consecutive_failures", consecutive_failures_},
                        {"probe_successes", probe_successes_},
                        {"probe_failures", probe_failures_},
                        {"window_state", window_->save()}};
  r.details = boost::json::serialize(d);
  r.updated = now;
  r.updated_by = sharing_ ? sharing_->options.owner : std::string();
  return r;
}

void CircuitBreaker::store_failed_locked_sync(const Error& e) {
  auto& st = sharing_->status;
  ++st.failures;
  if (st.store_ok)
    logf(LogLevel::warn, "breaker", "circuit breaker '{}': the store is unavailable, going on locally ({})", name_, e.message);
  st.store_ok = false;
  st.last_error = e.message;
  retry_publish_.store(true, std::memory_order_release);  // publish again at the next poll, not on every call
}

Result<void> CircuitBreaker::publish_locked_sync(std::vector<PendingEvent>& events) {
  auto& sh = *sharing_;
  storage::BreakerRecord rec;
  {
    std::lock_guard lock(mu_);
    rec = make_record_locked(clock_.now());
  }
  const bool cas = sh.options.mode == SharingMode::shared;
  auto r = sh.store->put_breaker(rec, cas ? std::optional<std::int64_t>(sh.status.version) : std::nullopt);
  if (r) {
    if (!sh.status.store_ok) logf(LogLevel::info, "breaker", "circuit breaker '{}': the store answers again", name_);
    sh.status.store_ok = true;
    sh.status.version = *r;
    ++sh.status.publishes;
    return {};
  }
  const Error e = r.error();
  if (e.is(errc::conflict) && cas) {
    ++sh.status.conflicts;  // another process wrote first: its state wins
    return pull_locked_sync(events, Adoption::follow);
  }
  store_failed_locked_sync(e);
  return e;
}

Result<void> CircuitBreaker::pull_locked_sync(std::vector<PendingEvent>& events, Adoption how) {
  auto& sh = *sharing_;
  auto r = sh.store->get_breaker(name_);
  if (!r) {
    const Error e = r.error();
    store_failed_locked_sync(e);
    return e;
  }
  if (!sh.status.store_ok) logf(LogLevel::info, "breaker", "circuit breaker '{}': the store answers again", name_);
  sh.status.store_ok = true;
  if (!*r) {
    // Nothing stored yet (or it was deleted): write ours.
    storage::BreakerRecord rec;
    {
      std::lock_guard lock(mu_);
      rec = make_record_locked(clock_.now());
    }
    auto w = sh.store->put_breaker(rec, sh.options.mode == SharingMode::shared ? std::optional<std::int64_t>(0) : std::nullopt);
    if (w) {
      sh.status.version = *w;
      ++sh.status.publishes;
      return {};
    }
    const Error e = w.error();
    if (e.is(errc::conflict)) {
      ++sh.status.conflicts;  // created meanwhile; adopt it at the next poll
      sh.status.version = -1;
      return {};
    }
    store_failed_locked_sync(e);
    return e;
  }
  if ((*r)->version != sh.status.version) {
    adopt(**r, how, events);
    sh.status.version = (*r)->version;
    ++sh.status.adoptions;
  }
  return {};
}

void CircuitBreaker::adopt(const storage::BreakerRecord& r, Adoption how, std::vector<PendingEvent>& events) {
  auto to = parse_breaker_state(r.state);
  if (!to) {
    logf(LogLevel::error, "breaker", "circuit breaker '{}': ignoring a stored state: {}", name_, to.error().message);
    return;
  }
  std::lock_guard lock(mu_);
  const TimePoint now = clock_.now();
  const auto from = static_cast<BreakerState>(state_word_.load(std::memory_order_relaxed) & 0xff);
  const std::string reason = std::string(how == Adoption::restore ? "restored:" : "shared:") + std::string(base_reason(r.reason));
  adopting_ = true;
  if (r.reason == "reset") {
    // A manual reset elsewhere (e.g. `autoctl breaker reset`) starts this one over too.
    window_->clear();
    consecutive_failures_ = 0;
  }
  if (from == *to) {
    if (*to == BreakerState::open && open_until_ != r.open_until) {
      open_until_ = r.open_until;
      open_until_rep_.store(open_until_.time_since_epoch().count(), std::memory_order_release);
    }
    last_reason_ = reason;  // the same state, for the writer's reason (e.g. a reset of a closed breaker)
  } else {
    transition_locked(*to, reason, now, events, *to == BreakerState::open ? std::optional<TimePoint>(r.open_until) : std::nullopt);
  }
  open_attempt_ = r.open_attempt;
  adopting_ = false;
  if (how == Adoption::restore) {
    // At start, go on counting where the last writer stopped: the window (same shape only), the
    // failures in a row, and in half-open the probe outcomes so far (so one-shot processes such as
    // `autoctl breaker run` can close it together).
    try {
      auto doc = json::parse(r.details, "breaker details");
      const auto* o = doc ? doc->if_object() : nullptr;
      const auto* ws = o ? o->if_contains("window_state") : nullptr;
      const auto* cf = o ? o->if_contains("consecutive_failures") : nullptr;
      if (ws && ws->is_object() && window_->load(ws->as_object(), now) && cf && cf->is_number())
        consecutive_failures_ = cf->to_number<std::uint32_t>();
      const auto* ps = o ? o->if_contains("probe_successes") : nullptr;
      const auto* pf = o ? o->if_contains("probe_failures") : nullptr;
      if (*to == BreakerState::half_open && ps && pf && ps->is_number() && pf->is_number()) {
        probe_successes_ = ps->to_number<std::uint32_t>();
        probe_failures_ = pf->to_number<std::uint32_t>();
      }
    } catch (const std::exception&) {  // a hand-edited record: start counting afresh
    }
  }
  advance_locked(now, events);  // e.g. an open period that already ended: half-open here (published)
}

Result<void> CircuitBreaker::share(storage::Store& store, SharingOptions options) {
  if (options.poll_interval < Duration::zero())
    return fail(errc::invalid_argument, fmt::format("circuit breaker '{}': negative poll_interval", name_));
  std::vector<PendingEvent> events;
  Result<void> result;
  {
    std::lock_guard sync(sync_mu_);
    polling_.store(false);
    persisting_.store(false);
    if (options.mode == SharingMode::none) {
      sharing_.reset();
      return {};
    }
    if (options.owner.empty()) options.owner = default_owner();
    sharing_ = std::make_unique<Sharing>();
    sharing_->store = &store;
    sharing_->options = std::move(options);
    sharing_->status.mode = sharing_->options.mode;
    dirty_.store(false);
    result = pull_locked_sync(events, Adoption::restore);
    next_poll_rep_.store((clock_.now() + sharing_->options.poll_interval).time_since_epoch().count());
    persisting_.store(true, std::memory_order_release);
    polling_.store(sharing_->options.mode == SharingMode::shared, std::memory_order_release);
  }
  dispatch(events);
  return result;
}

Result<void> CircuitBreaker::exchange_locked_sync(std::vector<PendingEvent>& events) {
  const bool retry = retry_publish_.exchange(false);
  if (dirty_.exchange(false) || retry) return publish_locked_sync(events);
  return pull_locked_sync(events, Adoption::follow);
}

void CircuitBreaker::poll_if_due() noexcept {
  // On every admission of a shared breaker: the coarse clock is plenty for a poll interval.
  const auto now = clock_.coarse_now().time_since_epoch().count();
  if (now < next_poll_rep_.load(std::memory_order_relaxed)) return;
  std::vector<PendingEvent> events;
  {
    std::unique_lock sync(sync_mu_, std::try_to_lock);
    if (!sync || !sharing_) return;  // another thread is looking already
    next_poll_rep_.store(now + sharing_->options.poll_interval.count(), std::memory_order_relaxed);
    try {
      (void)exchange_locked_sync(events);
    } catch (...) {
    }
  }
  dispatch(events);
}

Result<void> CircuitBreaker::publish_now() {
  std::vector<PendingEvent> events;
  Result<void> r;
  {
    std::lock_guard sync(sync_mu_);
    if (!sharing_) return fail(errc::invalid_argument, fmt::format("circuit breaker '{}' is not persisted (call share() first)", name_));
    dirty_.store(false);
    r = publish_locked_sync(events);
  }
  dispatch(events);
  return r;
}

Result<void> CircuitBreaker::sync_now() {
  std::vector<PendingEvent> events;
  Result<void> r;
  {
    std::lock_guard sync(sync_mu_);
    if (!sharing_) return fail(errc::invalid_argument, fmt::format("circuit breaker '{}' is not persisted (call share() first)", name_));
    r = exchange_locked_sync(events);
  }
  dispatch(events);
  return r;
}

SharingStatus CircuitBreaker::sharing_status() const {
  std::lock_guard sync(sync_mu_);
  return sharing_ ? sharing_->status : SharingStatus{};
}

BreakerStatus CircuitBreaker::status() {
  BreakerStatus s;
  s.name = name_;
  s.state = state();
  s.sharing = sharing_status();
  std::lock_guard lock(mu_);
  s.reason = last_reason_;
  if (s.state == BreakerState::open) s.open_until = open_until_;
  s.open_attempt = open_attempt_;
  s.window = window_->snapshot(clock_.now());
  s.counters = counters();
  s.version = s.sharing.version;
  return s;
}

}  // namespace automation::resilience
