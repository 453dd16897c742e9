#pragma once
/// ResourceScaler: named resources, each with a policy (the HPA's target ratios or threshold
/// steps), gates (cooldowns, activation to and from zero, a fallback size), an optional predictive
/// mode, and an actuator. One evaluation reads the resource's size and metrics, decides, applies
/// the decision (unless it is a dry run) and records it in the store's scaling history with its
/// reason code and inputs.
///
/// The scaler keeps no state of its own between evaluations: its stabilization windows, rate
/// policy history, cooldowns, activation and fallback counters are rebuilt from the recorded
/// history each time, so a restarted daemon, a second process or `autoctl scale tick` from cron
/// decide exactly as one long-running scaler would. Two processes evaluating one resource at once
/// cannot both act: the decision is recorded (compare-and-set on the resource's newest record)
/// before the actuator is called.
///
/// Thread-safety: all methods may be called from any thread; evaluations and actions are
/// serialized per scaler. Needs a Store and a Clock, outliving it.
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>
#include <automation/scaling/actuator.hpp>
#include <automation/scaling/hpa.hpp>
#include <automation/scaling/steps.hpp>
#include <automation/storage/store.hpp>

#include <boost/json/fwd.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace automation::forecast {
class Forecaster;
}

namespace automation::scaling {

enum class PolicyMode : std::uint8_t { hpa, steps };

/// A metric of an HPA policy, read from the store's samples (MetricsCollector, or the host's own
/// points).
struct MetricSpec {
  std::string name;  ///< the stored metric
  MetricKind kind = MetricKind::per_member;
  double target = 0;  ///< > 0: the members' mean (per_member) or the amount per member (total)
  /// The series: for total, exactly these labels; for per_member, these plus member=<name> for
  /// each member (when the actuator names none, the series with these labels is the members' mean).
  std::string labels;
  /// With activation configured (hpa policies only): the resource is active while the value is
  /// above this (default 0); a per-member metric's value is then its series without the member
  /// label, so that a resource at 0 can wake.
  double activation = 0;
};

struct ScalingPolicy {
  PolicyMode mode = PolicyMode::steps;
  int min_replicas = 1;
  int max_replicas = 10;
  std::vector<MetricSpec> metrics;  ///< hpa: at least one
  Tolerance tolerance;              ///< hpa
  Behavior behavior;                ///< hpa
  std::vector<StepBand> bands;      ///< steps: empty means the seeds' thresholds (seed_steps())
  /// errc::invalid_argument naming the field.
  Result<void> validate() const;
  /// The HPA's options of an hpa policy; the step options of a steps policy (no bands: the seeds').
  HpaOptions hpa_options() const;
  StepOptions step_options() const;
};

/// Predictive scaling: forecast `metric` (one of the policy's metrics, from its stored samples
/// resampled to `step` over `history`) over the warm-up `horizon`, and take the upper bound of the
/// `level` % interval as one more metric reading. The decision is never below what the current
/// load needs (the largest proposal wins), and says when the forecast drove it.
struct PredictiveOptions {
  std::string metric;
  Duration horizon = std::chrono::minutes(10);
  Duration step = std::chrono::minutes(1);
  Duration history = std::chrono::hours(24);
  double level = 80;
  std::size_t min_points = 30;  ///< fewer resampled points: no forecast (the decision says so)
};

struct ResourceSpec {
  std::string name;  ///< storage::is_resource_name
  ScalingPolicy policy;
  /// Between actions (the seeds' 5 minutes); corrections into [min, max] are not held.
  Duration cooldown_up = std::chrono::minutes(5);
  Duration cooldown_down = std::chrono::minutes(5);
  /// Scaling to and from zero (KEDA): see Activation in gates.hpp.
  struct ActivationOptions {
    Duration cooldown = std::chrono::minutes(5);
    int wake_to = 1;
  };
  std::optional<ActivationOptions> activation;
  /// After `after` consecutive evaluations whose metrics could not be read, the size is `size`.
  struct FallbackOptions {
    int after = 3;
    int size = 1;
  };
  std::optional<FallbackOptions> fallback;
  std::optional<PredictiveOptions> predictive;
  Duration staleness = std::chrono::minutes(2);  ///< stored samples older than this are missing
  bool dry_run = false;                          ///< decide and record, never act
  Result<void> validate() const;
};

/// Reads a resource's metrics. The default reads the store's samples as MetricSpec says.
using MetricSource = std::function<std::vector<MetricReading>(const ResourceSpec& spec, const ResourceStatus& status)>;

/// A resource's state: its policy (configured, or as changed at run time), what its actuator says,
/// and its latest records.
struct ResourceReport {
  ResourceSpec spec;
  std::string actuator;       ///< the actuator's kind
  std::string policy_source;  ///< "configuration" or "changed by user:alice at ..."
  Result<ResourceStatus> status = ResourceStatus{};
  std::optional<storage::ScalingRecord> last_decision;  ///< the newest "decide" record
  std::optional<storage::ScalingRecord> last_change;    ///< the newest record that changed the size
};

class ResourceScaler {
 public:
  /// `forecaster`: for predictive mode (nullptr: resources with predictive options decide without it, saying so).
  ResourceScaler(storage::Store& store, const Clock& clock, forecast::Forecaster* forecaster = nullptr);
  ~ResourceScaler();
  ResourceScaler(const ResourceScaler&) = delete;
  ResourceScaler& operator=(const ResourceScaler&) = delete;

  /// errc::invalid_argument for an invalid spec, errc::already_exists for a name in use.
  Result<void> add(ResourceSpec spec, std::unique_ptr<Actuator> actuator, MetricSource source = {});
  std::vector<std::string> resources() const;

  struct EvaluateOptions {
    bool dry_run = false;  ///< as if the resource were configured for a dry run
    bool record = true;    ///< false: decide without recording (explain)
    std::string actor = "scaler";
  };
  /// One evaluation. The returned record says what was decided and done; an actuator that failed
  /// is outcome "failed" with its error, not an error here. Errors: errc::not_found for an unknown
  /// resource, errc::busy when another process recorded a decision for it meanwhile or an action
  /// on it is under way (a pending record younger than 10 minutes; nothing was done), the store's
  /// errors.
  Result<storage::ScalingRecord> evaluate(std::string_view resource, const EvaluateOptions& options);
  Result<storage::ScalingRecord> evaluate(std::string_view resource) { return evaluate(resource, EvaluateOptions{}); }
  /// Every resource, in name order; one failing does not stop the others (its error is its record's).
  std::vector<Result<storage::ScalingRecord>> evaluate_all(const EvaluateOptions& options);
  std::vector<Result<storage::ScalingRecord>> evaluate_all() { return evaluate_all(EvaluateOptions{}); }

  /// Manual actions, recorded as such (action "scale-up", "scale-down", "restart") with `actor`
  /// and `reason`; errc::busy while another action on the resource is under way. A resize is kept within [min, max] (errc::invalid_argument
  /// when nothing is left to do, naming the bound); it starts the cooldowns but is not held by them. Outcome "failed" with the actuator's
  /// error when it failed.
  Result<storage::ScalingRecord> scale_by(std::string_view resource, int delta, const std::string& actor, const std::string& reason = {});
  Result<storage::ScalingRecord> scale_to(std::string_view resource, int size, const std::string& actor, const std::string& reason = {});
  Result<storage::ScalingRecord> restart(std::string_view resource, const std::string& actor, const std::string& reason = {});

  /// Changes a resource's policy at run time (the seeds' "thresholds changed at run time"): it is
  /// recorded (action "thresholds", the policy in its inputs) and every later evaluation, in any
  /// process, uses it. errc::invalid_argument for an invalid policy.
  Result<storage::ScalingRecord> set_policy(std::string_view resource, const ScalingPolicy& policy, const std::string& actor,
                                            const std::string& reason = {});
  /// Back to the configured policy (recorded as a "thresholds" record with the configured policy).
  Result<storage::ScalingRecord> reset_policy(std::string_view resource, const std::string& actor);

  Result<ResourceReport> report(std::string_view resource);

 private:
  Result<storage::ScalingRecord> manual_resize(std::string_view resource, bool relative, int amount, const std::string& actor,
                                               const std::string& reason);
  struct Resource;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---- policies as JSON --------------------------------------------------------------------------

/// A policy as JSON:
///   {"mode": "hpa", "min": 1, "max": 10,
///    "metrics": [{"name": "cpu_usage", "kind": "per_member", "target": 60, "labels": "", "activation": 0}],
///    "tolerance": {"up": 0.1, "down": 0.1},
///    "behavior": {"scale_up": {"stabilization": "0s", "select": "max",
///                              "policies": [{"type": "percent", "value": 100, "period": "15s"}]},
///                 "scale_down": {...}}}
///   {"mode": "steps", "min": 1, "max": 10,
///    "bands": [{"metric": "cpu_usage", "above": 80, "change": 1}, {"metric": "cpu_usage", "below": 20, "change": -1},
///              {"metric": "queue_depth", "above": 5, "percent": 50}, {"metric": "x", "above": 99, "exact": 10}]}
/// Missing fields take their defaults. errc::invalid_argument naming `origin` and the field.
Result<ScalingPolicy> parse_policy(const boost::json::value& json, std::string_view origin);
boost::json::value to_json(const ScalingPolicy& policy);

/// A resource's configuration: its spec and how to build its actuator.
struct ResourceConfig {
  ResourceSpec spec;
  std::string actuator;  ///< "process_pool", "command" or "docker"
  ProcessPoolOptions pool;
  CommandOptions command;
  DockerOptions docker;
};

/// A resources file: {"resources": [{"name": "workers", "policy": {...}, "actuator": {"type":
/// "process_pool", "command": ["python3", "worker.py"], "stop_timeout": "10s", "warmup": "30s",
/// "environment": {...}, "working_directory": "..."}, "cooldown": {"up": "5m", "down": "5m"},
/// "activation": {"cooldown": "5m", "wake_to": 1}, "fallback": {"after": 3, "size": 2},
/// "predictive": {"metric": "cpu_usage", "horizon": "10m", "step": "1m", "history": "24h", "level": 80},
/// "staleness": "2m", "dry_run": false}]}; a command actuator: {"type": "command", "resize": [...],
/// "status": [...], "restart": [...], "timeout": "60s"}; a Docker one: {"type": "docker", "image":
/// "worker:1", "command": [...], "socket": "/var/run/docker.sock", "environment": {...}, "labels":
/// {...}, "network": "...", "stop_timeout": "10s", "timeout": "60s", "warmup": "30s"}. Relative paths are relative to
/// `base_directory`; process pools keep their state under `state_directory`. errc::invalid_argument
/// naming `origin`, the resource and the field.
Result<std::vector<ResourceConfig>> parse_resources(std::string_view text, std::string_view origin,
                                                    const std::filesystem::path& base_directory,
                                                    const std::filesystem::path& state_directory);
/// The actuator a configuration describes.
Result<std::unique_ptr<Actuator>> make_actuator(const ResourceConfig& config, const Clock& clock);

}  // namespace automation::scaling
