#pragma once
/// Alert rules over stored metric series (system samples, application metrics, anything a host
/// appends): conditions with AND/OR and durations ("cpu_usage > 80 for 5m"), severities, one alert
/// per rule and instance while it fires (deduplication), a cooldown between notices, a notice when
/// it resolves, escalation to further targets while nobody acknowledges it, and events that start
/// workflows ("alert.firing", "alert.resolved" and a rule's own event).
///
/// Evaluation reads the stored points, so a condition's duration is checked against the samples
/// themselves: an evaluation after a restart, or from cron, sees the same history a long-running
/// daemon would. Alerts live in the store, so `autoctl alerts list|ack` works from any process.
///
/// Thread-safety: Condition and the rule functions are pure; an AlertManager is for one thread at a
/// time (several processes may share a store: alerts are updated by compare-and-set).
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>
#include <automation/metrics/delivery.hpp>
#include <automation/storage/store.hpp>

#include <boost/json/object.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace automation::metrics {

// ---- conditions ----------------------------------------------------------------------------------

/// A condition over metrics:
///
///     condition  := or
///     or         := and ("or" and)*
///     and        := term ("and" term)*
///     term       := "not" term | "(" or ")" ["for" DURATION] | comparison ["for" DURATION] | "for" DURATION
///     comparison := METRIC ["{" LABEL "=" VALUE ("," LABEL "=" VALUE)* "}"] OP NUMBER ["%"]
///     OP         := ">" | ">=" | "<" | "<=" | "==" | "!="
///
/// "X for 5m" holds once X has held at every sample for 5 minutes; a term "for 5m" inside an `and`
/// applies to the rest of that `and`, so "cpu_usage > 80 and for 5m" means "(cpu_usage > 80) for 5m".
/// Keywords are case-insensitive; a selector's value may be quoted ("mount=\"/data\"").
class Condition {
 public:
  /// errc::invalid_argument naming the position and what was expected.
  static Result<Condition> parse(std::string_view text);

  const std::string& text() const noexcept { return text_; }
  /// The metrics it reads, each once, sorted.
  std::vector<std::string> metrics() const;
  /// The longest history an evaluation needs: the sum of nested durations.
  Duration lookback() const;

  struct Node;  ///< the parsed tree (lib/metrics/alerts.cpp)
  const Node& root() const noexcept { return *root_; }
  /// True for a default-constructed condition (nothing parsed).
  bool empty() const noexcept { return !root_; }

 private:
  std::shared_ptr<const Node> root_;
  std::string text_;
};

/// One stored series: points of one metric and label set, oldest first.
struct Series {
  std::string name, labels;
  std::vector<std::pair<TimePoint, double>> points;
};

/// A condition at one moment for one instance.
struct ConditionState {
  std::string labels;  ///< the instance ("" when the condition reads no labelled series)
  bool holds = false;
  bool stale = false;          ///< no point of any of its series within the staleness
  TimePoint active_since{};    ///< holds: since when its body has held (before its `for`)
  boost::json::object values;  ///< the latest value of each series it reads: {"cpu_usage": 93.2}
  std::string summary;         ///< "cpu_usage > 80 for 5m: cpu_usage = 93.2 since 2026-11-24T10:00:00Z"
};

/// Evaluates `condition` at `now` over `series` (points of its metrics from at least lookback() +
/// `staleness` before now), once per instance. Instances are the label sets of the labelled series
/// its comparisons match (or one unlabelled instance); a comparison reads, for an instance, the
/// series with exactly its labels or else the unlabelled series of its metric. A series' value at
/// a moment is its latest point no older than `staleness`; without one, its comparisons are
/// unknown (three-valued: `not` of unknown is unknown; a condition holds only when true).
std::vector<ConditionState> evaluate(const Condition& condition, std::span<const Series> series, TimePoint now, Duration staleness);

// ---- rules ---------------------------------------------------------------------------------------

enum class Severity : std::uint8_t { info, warning, critical };
std::string_view to_string(Severity s) noexcept;
Result<Severity> parse_severity(std::string_view text);

struct EscalationStep {
  Duration after{};                     ///< after the alert fired, if nobody acknowledged it by then
  std::vector<DeliveryTarget> targets;  ///< notified then (and of its resolution)
};

struct AlertRule {
  std::string name;  ///< letters, digits and . _ - (used in events and delivery subjects)
  Condition condition;
  Severity severity = Severity::warning;
  std::string description;
  /// At least this long between two notices of one alert (a flapping condition folds into one
  /// alert, and its state is notified when the cooldown ends).
  Duration cooldown = std::chrono::minutes(5);
  std::vector<DeliveryTarget> notify;    ///< notified when it fires and when it resolves
  std::vector<EscalationStep> escalate;  ///< in order of `after`
  std::string event;                     ///< also emitted when it fires (empty: only alert.firing)
};

struct AlertRules {
  std::vector<AlertRule> rules;
  /// Named targets the rules refer to ("ops": "webhook:https://..."), as given.
  std::map<std::string, std::string> channels;
};

/// Rules from a JSON document:
///
///     {"channels": {"ops": "webhook:https://hooks.example/T1", "oncall": "email:oncall@example.com"},
///      "rules": [{"name": "high-cpu", "when": "cpu_usage > 80 for 5m", "severity": "warning",
///                 "description": "...", "cooldown": "10m", "notify": ["ops"], "event": "cpu.high",
///                 "escalate": [{"after": "15m", "notify": ["oncall"]}]}]}
///
/// A target is a channel's name or a target ("webhook:URL", "email:A,B", "file:DIR/"). errc::config
/// listing every problem, each with `origin` and the rule's place ("alerts.json: rules[2] (disk):
/// when: ...").
Result<AlertRules> parse_alert_rules(std::string_view json_text, std::string_view origin);

/// The seed's thresholds: high-cpu (cpu_usage > cpu_high for 5m, warning), high-memory
/// (memory_usage > memory_high for 5m, warning), disk-full (disk_usage > disk_high for 1m,
/// critical), each notifying `notify`.
AlertRules default_alert_rules(double cpu_high = 80, double memory_high = 85, double disk_high = 90,
                               std::vector<DeliveryTarget> notify = {});

// ---- the manager ---------------------------------------------------------------------------------

struct AlertOptions {
  AlertRules rules;
  Duration staleness = std::chrono::minutes(5);  ///< a point older than this is no data
  /// A firing alert of a rule this manager does not have (removed or renamed) is resolved once no
  /// evaluation has updated it for this long (another process may evaluate a different rule set).
  Duration orphan_after = std::chrono::hours(1);
  /// How notices are sent (its `targets` are not used; each rule names its own). By default attempts
  /// are recorded in the task history under domain "alerts", by actor "system:alerts", through the
  /// breaker "alerts-webhook".
  DeliveryOptions delivery = default_delivery();
  /// Stores an event (default: workflow::emit_event on the store, source "alerts"). A daemon passes
  /// its Scheduler's emit() so that event schedules start their workflows at once.
  std::function<Result<std::int64_t>(std::string name, const boost::json::object& payload)> emit;

  static DeliveryOptions default_delivery();
};

/// What one evaluation (or acknowledgement) did to one alert.
struct AlertChange {
  std::int64_t alert = 0;
  std::string rule, labels;
  /// "fired", "reopened", "resolved", "notified", "escalated", "notice-held", "emitted", "skipped"
  /// (another process changed it meanwhile) or "error" (what could not be done, and why).
  std::string what;
  std::string detail;  ///< why, or what was sent where
};

class AlertManager {
 public:
  /// errc::invalid_argument (thrown as automation::Exception) for invalid delivery options.
  AlertManager(storage::Store& store, const Clock& clock, AlertOptions options);
  ~AlertManager();
  AlertManager(const AlertManager&) = delete;
  AlertManager& operator=(const AlertManager&) = delete;

  const AlertOptions& options() const noexcept { return options_; }

  /// Evaluates every rule at now() over the stored points: fires, resolves or updates alerts,
  /// sends the notices that are due (respecting each rule's cooldown), escalates unacknowledged
  /// alerts whose time has come, emits events, and retries notices that failed before and are due.
  /// A rule that cannot be evaluated (the store refused a read) is skipped with a change "error";
  /// the others still run.
  Result<std::vector<AlertChange>> evaluate();

  /// Marks an alert acknowledged by `actor`: no further escalation. Recorded in the audit log.
  /// errc::not_found for an unknown id; acknowledging it again changes nothing.
  Result<storage::AlertRecord> acknowledge(std::int64_t id, std::string actor, std::string reason);

  ReportDeliverer& deliverer() noexcept { return *deliverer_; }

 private:
  struct Pending;
  Result<void> evaluate_rule(const AlertRule& rule, std::vector<AlertChange>& changes);
  void plan_notices(const AlertRule& rule, Pending& pending);
  void commit(const AlertRule& rule, Pending pending, std::vector<AlertChange>& changes);
  void resolve_orphan(storage::AlertRecord alert, std::vector<AlertChange>& changes);
  Result<storage::AlertRecord> save(storage::AlertRecord alert);

  storage::Store& store_;
  const Clock& clock_;
  AlertOptions options_;
  std::unique_ptr<ReportDeliverer> deliverer_;
};

/// The notice an alert is sent as (subject "alert:ID:STATE[:LEVEL]").
Notice alert_notice(const storage::AlertRecord& alert, const AlertRule& rule);

}  // namespace automation::metrics
