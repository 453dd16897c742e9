#include <automation/metrics/anomaly.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <utility>

namespace automation::metrics {

std::string_view to_string(AnomalySignal s) noexcept {
  switch (s) {
    case AnomalySignal::none:
      return "none";
    case AnomalySignal::new_extreme:
      return "new_extreme";
    case AnomalySignal::deviation:
      return "deviation";
    case AnomalySignal::sequence:
      return "sequence";
    case AnomalySignal::time_of_day:
      return "time_of_day";
    case AnomalySignal::time_of_week:
      return "time_of_week";
  }
  return "none";
}

Result<void> AnomalyOptions::validate() const {
  auto bad = [](std::string m) { return fail(errc::invalid_argument, "anomaly options: " + std::move(m)); };
  if (!(threshold > 0 && threshold <= 1)) return bad(fmt::format("threshold {} is not in (0, 1]", threshold));
  if (learning_points < 2) return bad("learning_points must be at least 2");
  if (!(extreme_tolerance >= 0 && extreme_tolerance <= 10))
    return bad(fmt::format("extreme_tolerance {} is not in [0, 10]", extreme_tolerance));
  if (levels < 2 || levels > 16) return bad(fmt::format("levels {} is not in 2..16", levels));
  if (context < 1 || context > 3) return bad(fmt::format("context {} is not in 1..3", context));
  if (averaging < 1 || averaging > 1000) return bad(fmt::format("averaging {} is not in 1..1000", averaging));
  if (learning_points > 1'000'000) return bad(fmt::format("learning_points {} is more than 1000000", learning_points));
  if (history < 10 || history > 1'000'000) return bad(fmt::format("history {} is not in 10..1000000", history));
  if (day_buckets > 1440) return bad(fmt::format("day_buckets {} is more than 1440", day_buckets));
  return {};
}

namespace {

double upper_tail(double z) { return 0.5 * std::erfc(z / std::sqrt(2.0)); }

/// A distance in units of its typical size; 10 for any distance when the typical size is still 0.
double relative(double distance, double typical) {
  if (typical > 0) return distance / typical;
  return distance > 0 ? 10.0 : 0.0;
}

/// A fixed-size window of doubles with its running sum and sum of squares.
class Window {
 public:
  explicit Window(std::size_t capacity) : buf_(capacity) {}
  void push(double x) {
    if (size_ == buf_.size()) {
      const double old = buf_[head_];
      sum_ -= old;
      sq_ -= old * old;
    } else {
      ++size_;
    }
    buf_[head_] = x;
    head_ = (head_ + 1) % buf_.size();
    sum_ += x;
    sq_ += x * x;
    // Rebuild the sums now and then so rounding from the subtractions cannot accumulate.
    if (++pushes_ % (16 * buf_.size()) == 0) {
      sum_ = sq_ = 0;
      for (std::size_t i = 0; i < size_; ++i) sum_ += buf_[i], sq_ += buf_[i] * buf_[i];
    }
  }
  std::size_t size() const { return size_; }
  double mean() const { return size_ ? sum_ / static_cast<double>(size_) : 0; }
  double variance() const {
    if (!size_) return 0;
    const double m = mean();
    return std::max(0.0, sq_ / static_cast<double>(size_) - m * m);
  }

 private:
  std::vector<double> buf_;
  std::size_t head_ = 0, size_ = 0;
  std::uint64_t pushes_ = 0;
  double sum_ = 0, sq_ = 0;
};

/// One signal: its raw surprise in [0, 1], averaged over a few points, scored as a likelihood against
/// the distribution of that average over the recent history (after the anomaly likelihood of
/// Ahmad et al., "Unsupervised real-time anomaly detection for streaming data", 2017).
class Signal {
 public:
  Signal(std::size_t averaging, std::size_t history, std::size_t estimate_from)
      : recent_(averaging), history_(history), estimate_from_(estimate_from) {}

  double step(double raw, bool scoring, std::size_t index) {
    recent_.push(raw);
    const double avg = recent_.mean();
    double score = 0;
    if (scoring && history_.size() > 0) {
      const double mean = std::max(0.03, history_.mean());
      const double sd = std::sqrt(std::max(0.0003, history_.variance()));
      const double x = avg < mean ? 2 * mean - avg : avg;
      const double tail = upper_tail((x - mean) / sd);
      // Two extreme points in a row count as one: the second is damped.
      const double p = tail <= 1e-5 && previous_tail_ <= 1e-5 ? 1e-3 : tail;
      previous_tail_ = tail;
      score = std::log(p + 1e-10) / std::log(1e-10);
    }
    if (index >= estimate_from_) history_.push(avg);
    return std::clamp(score, 0.0, 1.0);
  }

 private:
  Window recent_, history_;
  std::size_t estimate_from_;
  double previous_tail_ = 1;
};

/// The levels seen in each slot of a season (time of day, or of week).
class Slots {
 public:
  Slots(std::size_t slots, std::size_t symbols) : symbols_(symbols), count_(slots, 0), level_count_(slots * symbols, 0) {}
  /// Counts `lvl` in `slot`; returns 1 when the slot, seen a few times, never had it.
  double count(std::size_t slot, int lvl) {
    auto& in_slot = count_[slot];
    auto& at_level = level_count_[slot * symbols_ + static_cast<std::size_t>(lvl)];
    const double raw = in_slot >= 3 && at_level == 0 ? 1.0 : 0.0;
    ++in_slot;
    ++at_level;
    return raw;
  }
  void clear() {
    std::fill(count_.begin(), count_.end(), 0);
    std::fill(level_count_.begin(), level_count_.end(), 0);
  }

 private:
  std::size_t symbols_;
  std::vector<std::uint32_t> count_, level_count_;
};

/// The values seen in each slot of the week: their count and range.
class WeekSlots {
 public:
  explicit WeekSlots(std::size_t slots) : slots_(slots) {}
  /// Counts x in `slot`; returns 1 when the slot, seen at least `seen` times, never had a value
  /// within `band` of x. Values, not bands, are kept, so a spike that widens the range later does
  /// not move a slot's values into bands it never had.
  double count(std::size_t slot, double x, double band, std::uint32_t seen) {
    auto& s = slots_[slot];
    const double raw = s.count >= seen && (x < s.lo - band || x > s.hi + band) ? 1.0 : 0.0;
    s.lo = s.count ? std::min(s.lo, x) : x;
    s.hi = s.count ? std::max(s.hi, x) : x;
    ++s.count;
    return raw;
  }

 private:
  struct Slot {
    std::uint32_t count = 0;
    double lo = 0, hi = 0;
  };
  std::vector<Slot> slots_;
};

constexpr std::size_t kIntervalSamples = 8;
// A time of week is judged once it has had this many weeks of points, and only by values more than
// a band (the range seen over `levels`) away from any it had.
constexpr std::uint32_t kWeekSeen = 3;
constexpr std::size_t kMaxLag = 200'000;

}  // namespace

struct AnomalyDetector::State {
  AnomalyOptions o;
  std::size_t suppress;
  std::size_t n = 0, anomalies = 0;
  std::size_t last_anomaly = 0;  // the index of the last anomaly, when anomalies > 0
  TimePoint last_time{};
  // Deviation.
  double level = 0, level_dev = 0, day_dev = 0, week_dev = 0;
  std::vector<std::int64_t> gaps;  // first sampling intervals (ms), to find the points per day and week
  std::size_t per_day = 0;         // 0 until known, or when not sampled at least every 6 h
  std::size_t per_week = 0;        // 0 until known, or when not sampled at least daily
  std::uint32_t week_seen = 0;     // points a slot of the week needs before it is judged (kWeekSeen weeks)
  std::vector<double> past;        // the last max(per_day, per_week) values, a ring
  std::size_t past_head = 0, past_size = 0;
  std::vector<double> early;  // the values before the interval is known, to seed `past`
  // Range, sequence and time of day.
  double lo = 0, hi = 0;
  std::vector<int> context;  // the last `context` levels (+1, so 0 is "below the range")
  std::vector<std::uint32_t> context_count, transition_count;
  Slots day_slots;
  WeekSlots week_slots;  // day_buckets per weekday (one per weekday for daily series)
  TimeZone::Period zone_period{};
  struct Learnt {
    double value;
    std::optional<std::size_t> day_slot;
  };
  std::vector<Learnt> learnt;  // the learning points
  Signal deviation, sequence, time_of_day, time_of_week;

  explicit State(AnomalyOptions opt)
      : o(std::move(opt)),
        suppress(o.suppress_points ? o.suppress_points : std::max<std::size_t>(1, o.learning_points / 5)),
        day_slots(o.day_buckets, o.levels + 2),
        week_slots(7 * o.day_buckets),
        deviation(o.averaging, o.history, o.learning_points / 2),
        sequence(o.averaging, o.history, o.learning_points / 2),
        time_of_day(o.averaging, o.history, o.learning_points / 2),
        time_of_week(o.averaging, o.history, o.learning_points / 2) {
    const std::size_t symbols = o.levels + 2;
    std::size_t contexts = 1;
    for (std::size_t i = 0; i < o.context; ++i) contexts *= symbols;
    context_count.assign(contexts, 0);
    transition_count.assign(contexts * symbols, 0);
  }

  /// The slot of `t` in the local day, and its weekday (Monday 0).
  std::pair<std::size_t, std::size_t> slot(TimePoint t) {
    if (t < zone_period.begin || t >= zone_period.end) zone_period = o.time_zone.period(t);
    const auto local = t + zone_period.offset;
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(local.time_since_epoch()).count();
    constexpr std::int64_t kDay = 86'400'000;
    const std::int64_t in_day = ((ms % kDay) + kDay) % kDay;
    const std::int64_t days = (ms - in_day) / kDay;  // 1970-01-01 was a Thursday
    return {static_cast<std::size_t>(in_day * static_cast<std::int64_t>(o.day_buckets) / kDay),
            static_cast<std::size_t>(((days + 3) % 7 + 7) % 7)};
  }

  /// The width of a band: the range seen over `levels`.
  double band() const { return (hi - lo) / static_cast<double>(o.levels); }

  /// The band of x: 0 below the range seen, 1..levels inside it, levels + 1 above it. Values within
  /// the extreme tolerance of the range count as its edge bands.
  int level_of(double x) const {
    const double slack = o.extreme_tolerance * (hi - lo);
    if (x < lo - slack) return 0;
    if (x > hi + slack) return static_cast<int>(o.levels) + 1;
    if (!(hi > lo)) return 1;
    const double band = std::floor((x - lo) / (hi - lo) * static_cast<double>(o.levels));
    return static_cast<int>(std::clamp(band, 0.0, static_cast<double>(o.levels) - 1)) + 1;
  }

  /// Counts the transition from the last `context` levels to `lvl`; returns how rare it was.
  double count_sequence(int lvl) {
    const std::size_t symbols = o.levels + 2;
    double raw = 0;
    if (context.size() == o.context) {
      std::size_t key = 0;
      for (int c : context) key = key * symbols + static_cast<std::size_t>(c);
      auto& seen = context_count[key];
      auto& followed = transition_count[key * symbols + static_cast<std::size_t>(lvl)];
      raw = seen == 0 ? 1.0 : 1.0 - static_cast<double>(followed) / seen;
      ++seen;
      ++followed;
      context.erase(context.begin());
    }
    context.push_back(lvl);
    return raw;
  }

  /// At the end of learning the range has settled: the bands the learning points were counted in
  /// (against the range seen at the time, which grew) are counted again against the final range.
  void recount() {
    std::fill(context_count.begin(), context_count.end(), 0);
    std::fill(transition_count.begin(), transition_count.end(), 0);
    day_slots.clear();
    context.clear();
    for (const auto& p : learnt) {
      const int lvl = level_of(p.value);
      count_sequence(lvl);
      if (p.day_slot) day_slots.count(*p.day_slot, lvl);
    }
    learnt.clear();
    learnt.shrink_to_fit();
  }

  void learn_interval(TimePoint t) {
    if (n == 0 || gaps.size() >= kIntervalSamples) return;
    if (t <= last_time) return;  // repeated or out-of-order times say nothing about the interval
    gaps.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(t - last_time).count());
    if (gaps.size() < kIntervalSamples) return;
    auto mid = gaps.begin() + static_cast<std::ptrdiff_t>(gaps.size() / 2);
    std::nth_element(gaps.begin(), mid, gaps.end());
    const std::int64_t interval = *mid;
    const auto early_values = std::move(early);  // kept only until the interval is known
    early = {};
    if (interval <= 0) return;
    const auto points_in = [&](double ms) { return static_cast<std::size_t>(std::llround(ms / static_cast<double>(interval))); };
    // Periods of more than 200,000 points are too long to keep: no day lag when sampling faster
    // than every 0.43 s, no week lag faster than every 3 s.
    if (interval <= 6 * 3'600'000 && points_in(86'400'000.0) <= kMaxLag) per_day = points_in(86'400'000.0);
    if (interval <= 86'400'000 && points_in(7 * 86'400'000.0) <= kMaxLag) per_week = points_in(7 * 86'400'000.0);
    if (!per_day && !per_week) return;
    if (per_week && o.day_buckets) {
      // A slot of the week is judged once it has had kWeekSeen weeks of points (rounded up per slot).
      const std::size_t slots = per_day ? 7 * o.day_buckets : 7;
      week_seen = static_cast<std::uint32_t>(kWeekSeen * std::max<std::size_t>(1, (per_week + slots - 1) / slots));
    }
    past.assign(std::max(per_day, per_week), 0);
    const std::size_t keep = std::min(early_values.size(), past.size());
    for (std::size_t i = early_values.size() - keep; i < early_values.size(); ++i) remember(early_values[i]);
  }

  /// Adds a value to the ring of past values (or to the early values while there is no ring).
  void remember(double x) {
    if (past.empty()) {
      if (gaps.size() >= kIntervalSamples) return;                           // the interval is known and has no lags
      if (early.size() == kIntervalSamples * 8) early.erase(early.begin());  // repeated times: keep a few
      early.push_back(x);
      return;
    }
    past[past_head] = x;
    past_head = (past_head + 1) % past.size();
    past_size = std::min(past_size + 1, past.size());
  }

  /// The value `lag` points back (lag <= past_size).
  double ago(std::size_t lag) const { return past[(past_head + past.size() - lag) % past.size()]; }
};

AnomalyDetector::AnomalyDetector(AnomalyOptions options) {
  if (auto ok = options.validate(); !ok) throw Exception(ok.error());
  s_ = std::make_unique<State>(std::move(options));
}

Result<AnomalyDetector> AnomalyDetector::create(AnomalyOptions options) {
  if (auto ok = options.validate(); !ok) return ok.error();
  return AnomalyDetector(std::move(options));
}

AnomalyDetector::AnomalyDetector(AnomalyDetector&&) noexcept = default;
AnomalyDetector& AnomalyDetector::operator=(AnomalyDetector&&) noexcept = default;
AnomalyDetector::~AnomalyDetector() = default;

const AnomalyOptions& AnomalyDetector::options() const noexcept { return s_->o; }
std::size_t AnomalyDetector::points() const noexcept { return s_->n; }
std::size_t AnomalyDetector::anomalies() const noexcept { return s_->anomalies; }

Result<AnomalyScore> AnomalyDetector::update(TimePoint time, double x) {
  auto& s = *s_;
  if (!std::isfinite(x)) return fail(errc::invalid_argument, fmt::format("value at {} is not a finite number", format_timestamp(time)));
  s.learn_interval(time);
  const auto& o = s.o;
  AnomalyScore out;
  out.time = time;
  out.value = x;
  out.learning = s.n < o.learning_points;
  out.day_ago = out.week_ago = std::numeric_limits<double>::quiet_NaN();
  if (s.n == 0) s.level = s.lo = s.hi = x;
  out.expected = s.level;
  const bool scoring = !out.learning;

  // Deviation: far from the recent level, from the value a day earlier and from the value a week
  // earlier (the smallest counts, so a daily or weekly pattern is not a deviation).
  const double dev = std::abs(x - s.level);
  double z = relative(dev, s.level_dev);
  const auto seasonal = [&](std::size_t lag, double& ago, double& typical) {
    if (!lag || s.past_size < lag) return;
    ago = s.ago(lag);
    const double d = std::abs(x - ago);
    z = std::min(z, relative(d, typical));
    typical += 0.01 * (d - typical);
  };
  seasonal(s.per_day, out.day_ago, s.day_dev);
  seasonal(s.per_week, out.week_ago, s.week_dev);
  s.level_dev += 0.01 * (dev - s.level_dev);
  s.level += 0.03 * (x - s.level);
  s.remember(x);
  const double deviation = s.deviation.step(1 - 2 * upper_tail(z / 2), scoring, s.n);

  // Sequence: how rarely this level follows the last few.
  const int lvl = s.level_of(x);
  const double sequence_raw = s.count_sequence(lvl);
  double best = std::max(deviation, s.sequence.step(sequence_raw, scoring, s.n));
  out.signal = deviation >= best ? AnomalySignal::deviation : AnomalySignal::sequence;

  // Time of day: a level never seen in this slot of the day (once the slot has a few points).
  // Time of week: a value outside the range of this slot of the week by more than a band (once the
  // slot has had three weeks of points); series sampled less often than every 6 h have a slot per
  // weekday.
  std::optional<std::size_t> day_slot;
  if (o.day_buckets && (s.per_day || s.per_week)) {
    const auto [in_day, weekday] = s.slot(time);
    if (s.per_day) {
      day_slot = in_day;
      const double tod = s.time_of_day.step(s.day_slots.count(in_day, lvl), scoring, s.n);
      if (tod > best) best = tod, out.signal = AnomalySignal::time_of_day;
    }
    if (s.per_week) {
      const std::size_t week_slot = weekday * o.day_buckets + (s.per_day ? in_day : 0);
      const double tow = s.time_of_week.step(s.week_slots.count(week_slot, x, s.band(), s.week_seen), scoring, s.n);
      if (tow > best) best = tow, out.signal = AnomalySignal::time_of_week;
    }
  }
  if (out.learning) s.learnt.push_back({x, day_slot});

  // New extreme: beyond the range seen so far by more than the tolerance.
  // A series constant so far has no range to measure against: any change is a new extreme.
  const bool extreme = s.hi > s.lo ? std::abs(x - std::clamp(x, s.lo, s.hi)) > o.extreme_tolerance * (s.hi - s.lo) : s.n > 0 && x != s.lo;
  if (extreme) {
    best = 1.0;
    out.signal = AnomalySignal::new_extreme;
    out.expected = x > s.hi ? s.hi : s.lo;  // the edge it passed
  }
  s.lo = std::min(s.lo, x);
  s.hi = std::max(s.hi, x);
  if (s.n + 1 == o.learning_points) s.recount();

  out.raw_score = scoring ? best : 0.0;
  out.score = out.raw_score;
  if (scoring && s.anomalies > 0 && s.n - s.last_anomaly < s.suppress) {
    out.suppressed = out.raw_score >= o.threshold;
    out.score = 0;
  } else if (out.score >= o.threshold) {
    out.anomaly = true;
    s.last_anomaly = s.n;
    ++s.anomalies;
  }
  if (out.score == 0 && !out.suppressed) out.signal = AnomalySignal::none;
  s.last_time = time;
  ++s.n;
  return out;
}

std::string AnomalyScore::why() const {
  const auto num = [](double v) { return fmt::format("{:.6g}", v); };
  if (learning) return fmt::format("learning: value {}", num(value));
  if (!anomaly && !suppressed)
    return signal == AnomalySignal::none
               ? fmt::format("normal: value {}", num(value))
               : fmt::format("normal: value {} (score {:.3f}, strongest signal {})", num(value), score, to_string(signal));
  const std::string head = anomaly ? "anomaly" : "suppressed (an anomaly was just reported)";
  switch (signal) {
    case AnomalySignal::new_extreme:
      return fmt::format("{}: value {} is {} the {} value seen before ({})", head, num(value), value > expected ? "above" : "below",
                         value > expected ? "highest" : "lowest", num(expected));
    case AnomalySignal::deviation: {
      std::vector<std::string> from{"the recent level " + num(expected)};
      if (!std::isnan(day_ago)) from.push_back("the value a day earlier (" + num(day_ago) + ")");
      if (!std::isnan(week_ago)) from.push_back("the value a week earlier (" + num(week_ago) + ")");
      std::string list = from.front();
      for (std::size_t i = 1; i < from.size(); ++i) list += (i + 1 == from.size() ? " and " : ", ") + from[i];
      return fmt::format("{}: value {} is far from {} (score {:.3f})", head, num(value), list, score);
    }
    case AnomalySignal::sequence:
      return fmt::format("{}: value {} follows the preceding values in a way rarely seen (score {:.3f})", head, num(value), score);
    case AnomalySignal::time_of_day:
      return fmt::format("{}: value {} has not been seen at this time of day (score {:.3f})", head, num(value), score);
    case AnomalySignal::time_of_week:
      return fmt::format("{}: value {} has not been seen at this time of the week (score {:.3f})", head, num(value), score);
    case AnomalySignal::none:
      break;
  }
  return fmt::format("{}: value {} (score {:.3f})", head, num(value), score);
}

std::size_t default_learning_points(std::size_t n) noexcept { return std::clamp<std::size_t>(n * 15 / 100, 2, 750); }

Result<std::vector<AnomalyScore>> detect_anomalies(std::span<const SeriesPoint> series, const AnomalyOptions& options) {
  auto det = AnomalyDetector::create(options);
  if (!det) return det.error();
  std::vector<AnomalyScore> out;
  out.reserve(series.size());
  for (std::size_t i = 0; i < series.size(); ++i) {
    auto r = det->update(series[i].time, series[i].value);
    if (!r) return with_context(r.error(), fmt::format("point {}", i));
    out.push_back(*r);
  }
  return out;
}

}  // namespace automation::metrics
