#include <automation/core/ids.hpp>
#include <automation/core/json.hpp>
#include <automation/resilience/circuit_breaker.hpp>
#include <automation/storage/store.hpp>
#include <detail/names.hpp>
#include "resilience/backoff.hpp"
#include "resilience/breaker_json.hpp"

#include <detail/log.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

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
  const auto maxd = static_cast<double>(max.count());
  double d = 0;
  if (kind == Kind::custom) {
    d = std::min(static_cast<double>(custom ? custom(ctx).count() : base.count()), maxd);
  } else {
    const auto g = kind == Kind::exponential ? detail::Growth::exponential
                   : kind == Kind::linear    ? detail::Growth::linear
                                             : detail::Growth::fixed;
    d = detail::grown_delay(g, static_cast<double>(base.count()), multiplier, static_cast<double>(increment.count()),
                            std::max(ctx.attempt, 1), maxd);
  }
  return Duration(static_cast<Duration::rep>(std::max(detail::jittered(d, jitter, rng, maxd), 0.0)));
}

Result<void> BreakerConfig::validate() const {
  auto bad = [](std::string msg) { return fail(errc::invalid_argument, "circuit breaker config: " + msg); };
  if (window_size == 0) return bad("window_size must be at least 1");
  if (window_size > kMaxWindowSize) return bad(fmt::format("window_size must be at most {}, got {}", kMaxWindowSize, window_size));
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

  // Count window, lock-free: a ring of outcomes (bit 0 = failure, bit 1 = slow, bit 7 = occupied)
  // written at ticket % size, and the aggregates packed as two signed 32-bit fields per word
  // (calls | failures, slow_calls | slow_failures). Every slot change adds (new - old) to the words,
  // so whatever the interleaving of recorders, clear() and load(), the words converge to the sum of
  // the ring; a reader racing a recorder may see one call in flight. A success replacing a success
  // changes neither word.
  std::unique_ptr<std::atomic<std::uint8_t>[]> ring;
  std::uint64_t fastmod_c = 0;  // Lemire's fastmod constant for `size`
  struct alignas(64) Hot {
    std::atomic<std::uint64_t> tickets{0};  // outcomes recorded ever (positions the ring; never cleared)
    std::atomic<std::uint64_t> calls_failures{0};
    std::atomic<std::uint64_t> slow_words{0};
  };
  Hot hot;
  alignas(64) std::atomic<std::uint64_t> failures_recorded{0};  // failures among the tickets

  // Time window (under the breaker's mutex): one aggregate per bucket, tagged with its epoch.
  struct Bucket {
    std::int64_t epoch = INT64_MIN;
    WindowSnapshot agg;
  };
  std::vector<Bucket> buckets;
  std::int64_t latest = INT64_MIN;
  WindowSnapshot total;

  Window(BreakerConfig::Window k, std::uint32_t n, Duration w) : kind(k), size(n), width(w) {
    if (kind == BreakerConfig::Window::count) {
      ring = std::make_unique<std::atomic<std::uint8_t>[]>(n);
      for (std::uint32_t i = 0; i < n; ++i) ring[i].store(0, std::memory_order_relaxed);
      fastmod_c = ~std::uint64_t{0} / n + 1;
    } else {
      buckets.assign(n, {});
    }
  }

  bool is_count() const noexcept { return kind == BreakerConfig::Window::count; }

  static std::uint64_t pack2(std::int64_t lo, std::int64_t hi) noexcept {
    return static_cast<std::uint64_t>(lo) + (static_cast<std::uint64_t>(hi) << 32);
  }
  static std::pair<std::int64_t, std::int64_t> unpack2(std::uint64_t w) noexcept {
    const auto lo = static_cast<std::int32_t>(static_cast<std::uint32_t>(w));
    const auto hi = static_cast<std::int32_t>(static_cast<std::uint32_t>((w - static_cast<std::uint64_t>(std::int64_t{lo})) >> 32));
    return {lo, hi};
  }
  static std::uint8_t encode(bool failure, bool slow) noexcept {
    return static_cast<std::uint8_t>(0x80 | (failure ? 1 : 0) | (slow ? 2 : 0));
  }
  static std::int64_t bit(std::uint8_t v, int b) noexcept { return (v >> b) & 1; }
  // Adds the change of one slot from `ov` to `nv` to the aggregate words.
  void apply(std::uint8_t ov, std::uint8_t nv) noexcept {
    if (ov == nv) return;
    const std::int64_t f_new = bit(nv, 0), f_old = bit(ov, 0), s_new = bit(nv, 1), s_old = bit(ov, 1);
    if (const auto d = pack2(bit(nv, 7) - bit(ov, 7), f_new - f_old); d) hot.calls_failures.fetch_add(d, std::memory_order_relaxed);
    if (const auto d = pack2(s_new - s_old, s_new * f_new - s_old * f_old); d) hot.slow_words.fetch_add(d, std::memory_order_relaxed);
  }
  std::uint32_t slot_of(std::uint64_t ticket) const noexcept {
    const std::uint64_t low = fastmod_c * static_cast<std::uint32_t>(ticket);
    __extension__ using u128 = unsigned __int128;
    return static_cast<std::uint32_t>((static_cast<u128>(low) * size) >> 64);
  }
  WindowSnapshot count_snapshot() const noexcept {
    auto [calls, failures] = unpack2(hot.calls_failures.load(std::memory_order_relaxed));
    auto [slow, slow_failures] = unpack2(hot.slow_words.load(std::memory_order_relaxed));
    // Clamped: a reader racing recorders may see a change half applied.
    const auto clamp = [](std::int64_t v, std::int64_t hi) { return static_cast<std::uint32_t>(std::clamp<std::int64_t>(v, 0, hi)); };
    WindowSnapshot s;
    s.calls = clamp(calls, size);
    s.failures = clamp(failures, s.calls);
    s.slow_calls = clamp(slow, s.calls);
    s.slow_failures = clamp(slow_failures, std::min(s.failures, s.slow_calls));
    return s;
  }
  // The count window's record: lock-free, O(1).
  void record_count(bool failure, bool slow) noexcept {
    const std::uint64_t t = hot.tickets.fetch_add(1, std::memory_order_relaxed);
    // Release after the ticket: a reader that sees this failure sees its ticket (see counters()).
    if (failure) failures_recorded.fetch_add(1, std::memory_order_release);
    const std::uint8_t nv = encode(failure, slow);
    auto& slot = ring[slot_of(t)];
    // An outcome equal to the one it replaces changes nothing: no write, so a healthy breaker's
    // ring stays shared between cores. (A racing writer of the same slot holds a newer ticket.)
    if (slot.load(std::memory_order_relaxed) == nv) return;
    apply(slot.exchange(nv, std::memory_order_relaxed), nv);
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
    if (is_count()) return;
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

  // Time windows: under the breaker's mutex.
  void record(bool failure, bool slow, TimePoint now) {
    if (is_count()) return record_count(failure, slow);
    hot.tickets.fetch_add(1, std::memory_order_relaxed);
    if (failure) failures_recorded.fetch_add(1, std::memory_order_release);
    evict(now);
    const std::int64_t e = epoch_of(now);
    if (e <= latest - static_cast<std::int64_t>(size)) return;  // older than the window
    auto& b = buckets[static_cast<std::size_t>(((e % size) + size) % size)];
    if (b.epoch != e) return;
    add(b.agg, failure, slow, +1);
    add(total, failure, slow, +1);
  }

  WindowSnapshot snapshot(TimePoint now) {
    if (is_count()) return count_snapshot();
    evict(now);
    return total;
  }
  // The last snapshot without moving a time window (for event payloads).
  WindowSnapshot current() const { return is_count() ? count_snapshot() : total; }

  // The window's contents as JSON, so a restart (or the next one-shot process) goes on counting.
  boost::json::object save() const {
    boost::json::object o{{"kind", is_count() ? "count" : "time"}, {"size", size}};
    if (is_count()) {
      std::string r(size, '.');
      for (std::uint32_t i = 0; i < size; ++i)
        if (const auto v = ring[i].load(std::memory_order_relaxed); v & 0x80) r[i] = "sfSF"[(v & 1) | (v & 2)];
      o["ring"] = r;
      o["head"] = slot_of(hot.tickets.load(std::memory_order_relaxed));
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
    if (is_count()) {
      const auto* r = o.if_contains("ring");
      const auto* h = o.if_contains("head");
      if (k->as_string() != "count" || !r || !r->is_string() || r->as_string().size() != size || !h || !h->is_number()) return false;
      const auto hv = h->to_number<std::uint32_t>();
      if (hv >= size) return false;
      // Rotated so that the saved head lands where this ring writes next: the oldest outcome is
      // overwritten first, as in the process that saved it.
      const std::uint32_t here = slot_of(hot.tickets.load(std::memory_order_relaxed));
      const auto& text = r->as_string();
      for (std::uint32_t i = 0; i < size; ++i) {
        const char c = text[i];
        if (c == '.') continue;
        const std::uint8_t nv = encode(c == 'f' || c == 'F', c == 'S' || c == 'F');
        const std::uint32_t at = static_cast<std::uint32_t>((std::uint64_t{i} + size - hv + here) % size);
        apply(ring[at].exchange(nv, std::memory_order_relaxed), nv);
      }
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
    if (is_count()) {
      for (std::uint32_t i = 0; i < size; ++i) apply(ring[i].exchange(0, std::memory_order_relaxed), 0);
      return;
    }
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

namespace {
// Reports pass times as plain integers (kNoTime for none): optionals cost a store-forwarding stall
// per call on the hot path.
constexpr Duration::rep kNoTime = std::numeric_limits<Duration::rep>::min();
Duration::rep rep_of(std::optional<Duration> d) noexcept { return d ? d->count() : kNoTime; }
}  // namespace

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
    if (breaker_) breaker_->report(*this, Outcome::ignored, kNoTime, kNoTime);
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
  if (breaker_) breaker_->report(*this, Outcome::ignored, kNoTime, kNoTime);
}

void Permit::success(std::optional<Duration> elapsed) {
  if (breaker_) breaker_->report(*this, Outcome::success, rep_of(elapsed), kNoTime);
}
void Permit::failure(std::optional<Duration> elapsed) {
  if (breaker_) breaker_->report(*this, Outcome::failure, rep_of(elapsed), kNoTime);
}
void Permit::ignore() {
  if (breaker_) breaker_->report(*this, Outcome::ignored, kNoTime, kNoTime);
}
void Permit::failure_open_for(Duration d) {
  if (breaker_) breaker_->report(*this, Outcome::failure, kNoTime, (breaker_->clock_.now() + d).time_since_epoch().count());
}
void Permit::failure_open_until(TimePoint t) {
  if (breaker_) breaker_->report(*this, Outcome::failure, kNoTime, t.time_since_epoch().count());
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
  breaker_->report(*this, o, rep_of(elapsed), kNoTime);
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

inline std::string_view CircuitBreaker::trip_reason(const WindowSnapshot& snap, bool failure, bool open_requested, std::uint32_t in_a_row,
                                                    bool& rate_exceeded, bool& slow_rate_exceeded) const noexcept {
  std::string_view reason;
  if (failure && open_requested) {
    reason = "open_requested_by_outcome";
  } else if (config_.consecutive_failures && in_a_row >= *config_.consecutive_failures) {
    reason = "consecutive_failures";
  }
  rate_exceeded = slow_rate_exceeded = false;
  if (snap.calls >= config_.minimum_calls) {
    // Inclusive thresholds, compared without dividing: 100 * part >= threshold * calls.
    if (config_.failure_rate_threshold && 100.0 * snap.failures >= *config_.failure_rate_threshold * snap.calls) {
      rate_exceeded = true;
      if (reason.empty()) reason = "failure_rate_exceeded";
    }
    if (config_.slow_call_rate_threshold && 100.0 * snap.slow_calls >= *config_.slow_call_rate_threshold * snap.calls) {
      slow_rate_exceeded = true;
      if (reason.empty()) reason = "slow_call_rate_exceeded";
    }
  }
  if (reason.empty() && config_.trip_predicate && predicate_trips(snap)) reason = "predicate";
  return reason;
}

bool CircuitBreaker::predicate_trips(const WindowSnapshot& snap) const noexcept {
  try {
    return config_.trip_predicate(snap);
  } catch (...) {
    return false;  // a throwing predicate never trips
  }
}

Error CircuitBreaker::rejection(const Permit& p) const {
  return Error(errc::unavailable, fmt::format("circuit breaker '{}' is {}; retry after {}ms", name_, to_string(p.rejected_state()),
                                              std::chrono::duration_cast<Millis>(p.retry_after()).count()));
}

std::uint32_t CircuitBreaker::count_in_a_row(bool failure) noexcept {
  if (!config_.consecutive_failures) return 0;  // the rule is off: nothing to keep
  if (failure) return consecutive_failures_.fetch_add(1, std::memory_order_relaxed) + 1;
  // A success writes only when there is a run to end, so a healthy breaker's successes share the line.
  if (consecutive_failures_.load(std::memory_order_relaxed) != 0) consecutive_failures_.store(0, std::memory_order_relaxed);
  return 0;
}

void CircuitBreaker::report(Permit& p, Outcome outcome, Duration::rep elapsed_rep, Duration::rep open_until_rep) noexcept {
  p.breaker_ = nullptr;
  std::vector<PendingEvent> events;
  try {
    const std::optional<Duration> elapsed = elapsed_rep == kNoTime ? std::nullopt : std::optional<Duration>(Duration(elapsed_rep));
    const std::optional<TimePoint> open_until =
        open_until_rep == kNoTime ? std::nullopt : std::optional<TimePoint>(TimePoint(Duration(open_until_rep)));
    // Anything that may stamp an event or time a call reads the clock; the common case does not.
    const bool timed = !elapsed && p.start_ != TimePoint{};
    const bool subscribed = has_subscribers_.load(std::memory_order_relaxed);
    const bool count_window = config_.window == BreakerConfig::Window::count;
    TimePoint now = (timed || !count_window || p.probe_id_ != 0 || open_until || subscribed) ? clock_.now() : TimePoint{};
    const std::optional<Duration> d = timed ? std::optional<Duration>(now - p.start_) : elapsed;
    const bool slow = d && *d >= config_.slow_call_duration;
    const bool failure = outcome == Outcome::failure;

    // Lock-free path: a success or failure in a count window, outside half-open, nobody listening.
    // The mutex is taken only when the outcome trips the breaker. A report racing a transition by a
    // few instructions may land in the window the transition cleared; one that arrives after it is
    // dropped as stale, as on the locked path.
    if (count_window && p.probe_id_ == 0 && outcome != Outcome::ignored && !open_until && !subscribed) {
      const std::uint64_t w = state_word_.load(std::memory_order_acquire);
      const auto s = static_cast<BreakerState>(w & 0xff);
      if ((w >> 8) != p.generation_) {
        c_stale_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      if (slow) c_slow_.fetch_add(1, std::memory_order_relaxed);
      if (s != BreakerState::closed && s != BreakerState::metrics_only) {
        (failure ? c_failure_ : c_success_).fetch_add(1, std::memory_order_relaxed);
        return;  // disabled: counted only
      }
      window_->record_count(failure, slow);
      const std::uint32_t in_a_row = count_in_a_row(failure);
      if (s != BreakerState::closed) return;  // metrics-only: its rate events are for subscribers only
      bool rate = false, slow_rate = false;
      const std::string_view reason = trip_reason(window_->count_snapshot(), failure, false, in_a_row, rate, slow_rate);
      if (reason.empty()) return;
      std::lock_guard lock(mu_);
      if (state_word_.load(std::memory_order_relaxed) != w) return;  // someone else moved it meanwhile
      now = clock_.now();
      const WindowSnapshot snap = window_->count_snapshot();
      if (rate) events.push_back({BreakerEventType::failure_rate_exceeded, now, s, s, "failure_rate_exceeded", snap});
      if (slow_rate) events.push_back({BreakerEventType::slow_call_rate_exceeded, now, s, s, "slow_call_rate_exceeded", snap});
      transition_locked(BreakerState::open, reason, now, events);
    } else {
      report_locked_path(p, outcome, failure, slow, d, now, open_until, events);
    }
  } catch (...) {
    // Reporting never throws (it runs from Permit's destructor).
  }
  dispatch(events);
}

void CircuitBreaker::report_locked_path(const Permit& p, Outcome outcome, bool failure, bool slow, std::optional<Duration> d, TimePoint now,
                                        std::optional<TimePoint> open_until, std::vector<PendingEvent>& events) {
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
      // Counted as advance_locked counts a lease that runs out first (ignored), and the late
      // report as stale, whichever comes first.
      c_ignored_.fetch_add(1, std::memory_order_relaxed);
      c_stale_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  const bool subscribed = has_subscribers_.load(std::memory_order_relaxed);
  if (outcome == Outcome::ignored) {
    c_ignored_.fetch_add(1, std::memory_order_relaxed);
    if (subscribed) events.push_back({BreakerEventType::ignored, now, s, s, {}, window_->current(), d.value_or(Duration::zero())});
    return;
  }
  if (slow) c_slow_.fetch_add(1, std::memory_order_relaxed);
  const bool windowed = s == BreakerState::closed || s == BreakerState::metrics_only;
  // Windowed outcomes are counted by the window itself (see counters()).
  if (windowed) {
    window_->record(failure, slow, now);
  } else {
    (failure ? c_failure_ : c_success_).fetch_add(1, std::memory_order_relaxed);
  }
  if (subscribed)
    events.push_back(
        {failure ? BreakerEventType::error : BreakerEventType::success, now, s, s, {}, window_->current(), d.value_or(Duration::zero())});
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
  } else if (windowed) {
    const std::uint32_t in_a_row = count_in_a_row(failure);
    const WindowSnapshot snap = window_->current();
    bool rate = false, slow_rate = false;
    const std::string_view reason = trip_reason(snap, failure, open_until.has_value(), in_a_row, rate, slow_rate);
    if (rate) events.push_back({BreakerEventType::failure_rate_exceeded, now, s, s, "failure_rate_exceeded", snap});
    if (slow_rate) events.push_back({BreakerEventType::slow_call_rate_exceeded, now, s, s, "slow_call_rate_exceeded", snap});
    if (s == BreakerState::closed && !reason.empty())
      transition_locked(BreakerState::open, reason, now, events, failure ? open_until : std::nullopt);
  }
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
  consecutive_failures_.store(0, std::memory_order_relaxed);
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
  // Outcomes recorded in the window are counted by it (the lock-free path skips these counters).
  // Failures first (acquire), then tickets: every failure seen has its ticket seen, so the
  // difference never wraps; a success in flight may show up a moment late.
  const std::uint64_t windowed_failures = window_->failures_recorded.load(std::memory_order_acquire);
  const std::uint64_t windowed = std::max(window_->hot.tickets.load(std::memory_order_relaxed), windowed_failures);
  c.successes = c_success_.load() + (windowed - windowed_failures);
  c.failures = c_failure_.load() + windowed_failures;
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
    consecutive_failures_.store(0, std::memory_order_relaxed);
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

std::string default_owner() { return this_process(); }

// A reason without the prefix that marks it adopted, so adopting an adopted reason does not nest.
std::string_view base_reason(std::string_view r) {
  for (std::string_view p : {"shared:", "restored:"})
    if (r.substr(0, p.size()) == p) return r.substr(p.size());
  return r;
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
  boost::json::object d{{"window", detail::window_json(window_->current())},
                        {"counters", detail::counters_json(counters())},
                        {"generation", generation()},
                        {"consecutive_failures", consecutive_failures_.load(std::memory_order_relaxed)},
                        {"probe_successes", probe_successes_},
                        {"probe_failures", probe_failures_},
                        {"window_state", window_->save()}};
  r.details = json::dump(d);
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
    consecutive_failures_.store(0, std::memory_order_relaxed);
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
        consecutive_failures_.store(cf->to_number<std::uint32_t>(), std::memory_order_relaxed);
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
