#pragma once
/// The Kubernetes HorizontalPodAutoscaler's decision, exactly as it computes it (the replica
/// calculator and the v2 scaling behaviour), over any resource made of members: a process pool, a
/// container set, a connection pool.
///
///  1. Each metric proposes a size. Per-member metrics (CPU %, requests per member): the ratio of
///     the members' mean to the target; within the tolerance (1 - down <= ratio <= 1 + up) the
///     size stays; else ceil(ratio x ready members with a value). A member without a value is
///     missing (whether ready or not); a member not ready (or still warming up) is left out of the
///     mean but counted as capacity. Then, as the HPA dampens: missing members are taken as using
///     the target on a scale-down and 0 on a scale-up (left out at a ratio of exactly 1), unready
///     ones as 0 on a scale-up; a proposal that would then change direction, or fall within the
///     tolerance, keeps the size. Total metrics (queue depth, requests per minute) with a
///     per-member target propose ceil(total / target) unless total / (target x current) is within
///     the tolerance. Values are doubles (the HPA truncates means to whole milli-units first).
///  2. Several metrics: the largest proposal. A metric that fails: the decision may scale up on the
///     others but never down (the size is kept, reason FailedGetPodsMetric or
///     FailedGetExternalMetric); all failing keeps it too.
///  3. A current size of 0 with a minimum above 0 is left alone (ScalingDisabled); outside
///     [min, max] the size is corrected at once (TooManyReplicas / TooFewReplicas), the windows
///     untouched.
///  4. Stabilization: the proposal is clamped to [the lowest proposal of the scale-up window, the
///     highest of the scale-down window] (defaults 0 s and 300 s; a scale-down window is seeded
///     with the current size when the scaler is made), reasons ScaleUpStabilized /
///     ScaleDownStabilized (the HPA's AbleToScale condition).
///  5. Rate policies per direction (members or percent of the size at the start of each period:
///     the current size less the scale-ups and plus the scale-downs applied() within it; select max,
///     min or disabled), then min and max: ScaleUpLimit, ScaleDownLimit, TooManyReplicas,
///     TooFewReplicas, else DesiredWithinRange (the ScalingLimited condition).
///
/// Thread-safety: one thread at a time. Needs a Clock, outliving it.
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace automation::scaling {

/// One member's reading of a per-member metric.
struct MemberSample {
  std::string member;
  std::optional<double> value;  ///< none: the metric is missing for it
  bool ready = true;            ///< false: not ready or still warming up (out of the mean, counted as capacity)
};

enum class MetricKind : std::uint8_t {
  per_member,  ///< each member reports; the target is the members' mean (CPU %, requests per member)
  total,       ///< one value for the whole resource; the target is per member (queue depth: 5 per worker)
};

struct MetricReading {
  std::string name;  ///< "cpu_usage", "queue_depth"
  MetricKind kind = MetricKind::per_member;
  double target = 0;                  ///< > 0
  std::vector<MemberSample> members;  ///< per_member (values 0 or more)
  std::optional<double> total;        ///< total: the value (none: missing)
  std::string error;                  ///< non-empty: the metric could not be read (why)
};

/// What one metric proposes.
struct Proposal {
  std::string metric;
  bool valid = false;
  int replicas = 0;
  double ratio = 0;    ///< usage / target (after filling in missing and unready members)
  std::string detail;  ///< "mean 90 of 3 ready members against 60: ratio 1.500, ceil(1.500 x 3) = 5"
};

struct Tolerance {
  double up = 0.1;    ///< a ratio above 1 within this stays (<=)
  double down = 0.1;  ///< a ratio below 1 within this stays (<=)
};

enum class PolicyKind : std::uint8_t { members, percent };
struct RatePolicy {
  PolicyKind kind = PolicyKind::percent;
  int value = 100;
  Duration period = std::chrono::seconds(15);
};
enum class SelectPolicy : std::uint8_t { max, min, disabled };

struct ScalingRules {
  Duration stabilization{};
  std::vector<RatePolicy> policies;
  SelectPolicy select = SelectPolicy::max;
};

/// The HPA's defaults: up without a window, the larger of +4 members and +100 % per 15 s; down
/// over a 300 s window, at most 100 % per 15 s.
struct Behavior {
  ScalingRules up{std::chrono::seconds(0),
                  {{PolicyKind::percent, 100, std::chrono::seconds(15)}, {PolicyKind::members, 4, std::chrono::seconds(15)}},
                  SelectPolicy::max};
  ScalingRules down{std::chrono::seconds(300), {{PolicyKind::percent, 100, std::chrono::seconds(15)}}, SelectPolicy::max};
};

struct HpaOptions {
  int min_replicas = 1;
  int max_replicas = 10;
  Tolerance tolerance;
  Behavior behavior;
  /// errc::invalid_argument naming the field for min < 0, max < min, negative tolerances or
  /// windows, policy values outside 1..1,000,000, non-positive periods.
  Result<void> validate() const;
};

/// One decision with every input and the HPA's reason code.
struct HpaDecision {
  TimePoint time{};
  int current = 0;
  int recommended = 0;  ///< the metrics' proposal (or the min/max correction)
  int stabilized = 0;   ///< after the stabilization windows
  int desired = 0;      ///< after the rate policies and min/max: what to scale to
  /// What explains `desired`: ScalingDisabled, TooFewReplicas, TooManyReplicas,
  /// FailedGetPodsMetric, FailedGetExternalMetric, ScaleUpLimit, ScaleDownLimit,
  /// ScaleUpStabilized, ScaleDownStabilized or DesiredWithinRange.
  std::string reason;
  std::string message;
  /// The HPA's two conditions: AbleToScale (ReadyForNewScale, ScaleUpStabilized,
  /// ScaleDownStabilized) and ScalingLimited (DesiredWithinRange, ScaleUpLimit, ScaleDownLimit,
  /// TooManyReplicas, TooFewReplicas); empty when the decision stopped before them.
  std::string able_to_scale, scaling_limited;
  std::vector<Proposal> proposals;
};

/// One metric's proposal for a resource of `current` members (pure).
Proposal propose(int current, const MetricReading& metric, const Tolerance& tolerance);

class HpaScaler {
 public:
  /// Throws automation::Exception (errc::invalid_argument) for invalid options. A scale-down
  /// window (longer than 0) starts with `current` recommended now, so a restart never scales down
  /// at once; without `current` it starts empty (a scaler restored from recorded history, see
  /// remember()).
  HpaScaler(const Clock& clock, HpaOptions options, std::optional<int> current);

  const HpaOptions& options() const noexcept { return options_; }

  /// Decides the size for a resource of `current` members from `metrics`. It records the
  /// recommendation (the stabilization windows' history) but no scale event: call applied() once
  /// the resource was resized (a dry run calls nothing more).
  HpaDecision decide(int current, std::span<const MetricReading> metrics);

  /// Records that the resource went from `from` to `to` members now (the rate policies' history).
  void applied(int from, int to);

  /// Restores history recorded by an earlier scaler (another process, before a restart), in time
  /// order and before decide(): a recommendation made at `time` (a decision that reached the
  /// stabilization step, so that its able_to_scale is set), and a resize applied at `time`.
  void remember(TimePoint time, int recommended);
  void applied_at(TimePoint time, int from, int to);

 private:
  struct Event {
    TimePoint time;
    int change;
  };
  struct Recommendation {
    TimePoint time;
    int replicas;
  };
  int change_in_period(const std::vector<Event>& events, Duration period, TimePoint now) const;
  void forget(TimePoint now);

  const Clock& clock_;
  HpaOptions options_;
  std::vector<Recommendation> recommendations_;
  std::vector<Event> up_events_, down_events_;
};

}  // namespace automation::scaling
