#include <automation/core/json.hpp>
#include <automation/storage/memory_store.hpp>
#include <automation/storage/sqlite_store.hpp>
#include <automation/storage/store.hpp>
#include <detail/clean_text.hpp>
#include <detail/names.hpp>

#include "storage/history_check.hpp"
#include "storage/schema.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>

namespace automation::storage {

int latest_schema_version() noexcept { return detail::migrations().back().version; }

std::vector<std::string> pending_migrations(int from_version) {
  std::vector<std::string> out;
  for (const auto& m : detail::migrations())
    if (m.version > from_version) out.push_back(fmt::format("{}: {}", m.version, m.description));
  return out;
}

std::string_view to_string(AuditOutcome o) noexcept {
  switch (o) {
    case AuditOutcome::success:
      return "success";
    case AuditOutcome::failure:
      return "failure";
    case AuditOutcome::denied:
      return "denied";
  }
  return "failure";
}

Result<AuditOutcome> parse_audit_outcome(std::string_view text) {
  return automation::detail::parse_name(text, {AuditOutcome::success, AuditOutcome::failure, AuditOutcome::denied}, "audit outcome");
}

namespace {
Result<void> check_object(std::string_view what, const std::string& text) {
  auto doc = json::parse(text, what);
  if (!doc) return fail(errc::invalid_argument, doc.error().message);
  if (!doc->is_object()) return fail(errc::invalid_argument, fmt::format("{} must be a JSON object, got {}", what, json::type_name(*doc)));
  return {};
}
}  // namespace

Result<void> validate(const AuditRecord& r) {
  auto missing = [](std::string_view field) {
    return fail(errc::invalid_argument, fmt::format("audit record: \"{}\" must not be empty", field));
  };
  if (r.actor.empty()) return missing("actor");
  if (r.action.empty()) return missing("action");
  if (r.resource.empty()) return missing("resource");
  return check_object("audit record \"details\"", r.details);
}

std::string_view to_string(TaskOutcome o) noexcept {
  switch (o) {
    case TaskOutcome::success:
      return "success";
    case TaskOutcome::failure:
      return "failure";
    case TaskOutcome::timeout:
      return "timeout";
    case TaskOutcome::cancelled:
      return "cancelled";
  }
  return "failure";
}

Result<TaskOutcome> parse_task_outcome(std::string_view text) {
  return automation::detail::parse_name(text, {TaskOutcome::success, TaskOutcome::failure, TaskOutcome::timeout, TaskOutcome::cancelled},
                                        "task outcome");
}

Result<void> validate(const TaskRecord& r) {
  auto bad = [&](std::string msg) {
    return fail(errc::invalid_argument,
                fmt::format("task record ({}/{}): {}", r.domain.empty() ? "?" : r.domain, r.action.empty() ? "?" : r.action, msg));
  };
  if (r.domain.empty()) return bad("\"domain\" must not be empty");
  if (r.action.empty()) return bad("\"action\" must not be empty");
  if (auto v = check_object("\"params\"", r.params); !v) return bad(v.error().message);
  if (r.ended < r.started) return bad("\"ended\" is before \"started\"");
  if (r.duration < Duration::zero()) return bad("\"duration\" is negative");
  if (r.impact && !std::isfinite(*r.impact)) return bad("\"impact\" is not a finite number");
  return {};
}

Result<void> validate(const BreakerRecord& r) {
  static constexpr std::string_view kStates[] = {"closed", "open", "half_open", "forced_open", "disabled", "metrics_only"};
  if (r.name.empty()) return fail(errc::invalid_argument, "breaker record: \"name\" must not be empty");
  if (std::find(std::begin(kStates), std::end(kStates), r.state) == std::end(kStates))
    return fail(errc::invalid_argument, fmt::format("breaker record '{}': unknown state \"{}\"", r.name, r.state));
  if (r.open_attempt < 0) return fail(errc::invalid_argument, fmt::format("breaker record '{}': negative open_attempt", r.name));
  if (auto v = check_object(fmt::format("breaker record '{}' \"details\"", r.name), r.details); !v) return v.error();
  return {};
}

std::string_view to_string(RunState s) noexcept {
  switch (s) {
    case RunState::queued:
      return "queued";
    case RunState::running:
      return "running";
    case RunState::succeeded:
      return "succeeded";
    case RunState::failed:
      return "failed";
    case RunState::skipped:
      return "skipped";
    case RunState::cancelled:
      return "cancelled";
    case RunState::timed_out:
      return "timed_out";
    case RunState::interrupted:
      return "interrupted";
  }
  return "failed";
}

Result<RunState> parse_run_state(std::string_view text) {
  return automation::detail::parse_name(text,
                                        {RunState::queued, RunState::running, RunState::succeeded, RunState::failed, RunState::skipped,
                                         RunState::cancelled, RunState::timed_out, RunState::interrupted},
                                        "run state");
}

Result<void> validate(const RunRecord& r) {
  auto bad = [&](std::string msg) {
    return fail(errc::invalid_argument, fmt::format("workflow run {} ({}): {}", r.id, r.workflow.empty() ? "?" : r.workflow, msg));
  };
  if (r.workflow.empty()) return bad("\"workflow\" must not be empty");
  if (auto v = check_object("\"params\"", r.params); !v) return bad(v.error().message);
  if (auto v = check_object("\"definition\"", r.definition); !v) return bad(v.error().message);
  if (r.parent_run_id < 0) return bad("\"parent_run_id\" is negative");
  return {};
}

Result<void> validate(const StepRecord& r) {
  auto bad = [&](std::string msg) {
    return fail(errc::invalid_argument, fmt::format("step record (run {}, step \"{}\"): {}", r.run_id, r.step, msg));
  };
  if (r.step.empty()) return bad("\"step\" must not be empty");
  if (r.attempts < 0) return bad("\"attempts\" is negative");
  if (auto v = check_object("\"outputs\"", r.outputs); !v) return bad(v.error().message);
  return {};
}

Result<void> validate(const AttemptRecord& r) {
  auto bad = [&](std::string msg) {
    return fail(errc::invalid_argument,
                fmt::format("attempt record (run {}, step \"{}\", attempt {}): {}", r.run_id, r.step, r.attempt, msg));
  };
  if (r.step.empty()) return bad("\"step\" must not be empty");
  if (r.attempt < 1) return bad("\"attempt\" must be at least 1");
  return {};
}

Result<void> validate(const ScheduleRecord& r) {
  if (r.name.empty()) return fail(errc::invalid_argument, "schedule record: \"name\" must not be empty");
  if (r.consecutive_failures < 0)
    return fail(errc::invalid_argument, fmt::format("schedule record '{}': negative consecutive_failures", r.name));
  return {};
}

Result<void> validate(const FireRecord& r) {
  static constexpr std::string_view kOutcomes[] = {"started", "skipped", "buffered", "missed"};
  if (r.schedule.empty()) return fail(errc::invalid_argument, "fire record: \"schedule\" must not be empty");
  if (std::find(std::begin(kOutcomes), std::end(kOutcomes), r.outcome) == std::end(kOutcomes))
    return fail(errc::invalid_argument,
                fmt::format("fire record '{}': unknown outcome \"{}\" (started, skipped, buffered or missed)", r.schedule, r.outcome));
  if (r.event_id < 0) return fail(errc::invalid_argument, fmt::format("fire record '{}': negative event_id", r.schedule));
  return {};
}

bool is_event_name(std::string_view name) noexcept {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' || c == ':';
  });
}

Result<void> validate(const EventRecord& r) {
  if (r.name.empty()) return fail(errc::invalid_argument, "event: \"name\" must not be empty");
  if (!is_event_name(r.name)) {
    const auto bad = std::find_if(r.name.begin(), r.name.end(), [](char c) { return !is_event_name(std::string_view(&c, 1)); });
    return fail(errc::invalid_argument, fmt::format("event \"{}\": names use letters, digits and . _ - : only (found '{}')", r.name, *bad));
  }
  if (r.depth < 0) return fail(errc::invalid_argument, fmt::format("event \"{}\": negative depth", r.name));
  if (r.payload.empty() || r.payload.front() != '{')
    return fail(errc::invalid_argument, fmt::format("event \"{}\": the payload must be a JSON object", r.name));
  return {};
}

Result<void> validate(const UsageBlockRecord& r) {
  if (r.key.empty()) return fail(errc::invalid_argument, "usage block: \"key\" must not be empty");
  if (r.source.empty()) return fail(errc::invalid_argument, fmt::format("usage block {}: \"source\" must not be empty", r.key));
  if (r.events < 1) return fail(errc::invalid_argument, fmt::format("usage block {}: it must hold at least one event", r.key));
  if (r.first_row < 0) return fail(errc::invalid_argument, fmt::format("usage block {}: negative first_row", r.key));
  if (r.last_time < r.first_time) return fail(errc::invalid_argument, fmt::format("usage block {}: last_time is before first_time", r.key));
  if (r.data.empty()) return fail(errc::invalid_argument, fmt::format("usage block {}: no data", r.key));
  return {};
}

Result<void> validate(const RevenueRow& r) {
  if (r.plan.empty()) return fail(errc::invalid_argument, fmt::format("revenue row of day {}: \"plan\" must not be empty", r.day));
  if (!std::isfinite(r.total_revenue) || r.total_revenue < 0 || r.new_subscribers < 0 || r.active_users < 0 || r.churn_count < 0)
    return fail(errc::invalid_argument,
                fmt::format("revenue row of day {} plan {}: figures must be finite and not negative", r.day, r.plan));
  return {};
}

Result<void> validate(const RollupRecord& r) {
  if (r.time_zone.empty() || r.period.empty())
    return fail(errc::invalid_argument, "rollup: \"time_zone\" and \"period\" must not be empty");
  if (r.state != "running" && r.state != "done" && r.state != "failed")
    return fail(errc::invalid_argument,
                fmt::format("rollup {} {}: state must be running, done or failed (not \"{}\")", r.time_zone, r.period, r.state));
  if (r.document.empty() || r.document.front() != '{')
    return fail(errc::invalid_argument, fmt::format("rollup {} {}: the document must be a JSON object", r.time_zone, r.period));
  return {};
}

Result<void> validate(const DeliveryRecord& r) {
  if (r.key.empty() || r.subject.empty() || r.target.empty())
    return fail(errc::invalid_argument, "delivery: \"key\", \"subject\" and \"target\" must not be empty");
  if (r.state != "pending" && r.state != "delivered" && r.state != "failed")
    return fail(errc::invalid_argument,
                fmt::format("delivery {} to {}: state must be pending, delivered or failed (not \"{}\")", r.subject, r.target, r.state));
  if (r.attempts < 0) return fail(errc::invalid_argument, fmt::format("delivery {} to {}: negative attempts", r.subject, r.target));
  return {};
}

namespace {
bool name_head(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool name_tail(char c) { return name_head(c) || (c >= '0' && c <= '9'); }
bool is_metric_name(std::string_view s) { return !s.empty() && name_head(s.front()) && std::all_of(s.begin() + 1, s.end(), name_tail); }

// "k=v,k2=v2" (or empty); the message says what is wrong with it.
Result<void> check_labels(std::string_view labels) {
  if (labels.empty()) return {};
  std::vector<std::string_view> keys;
  std::size_t pos = 0;
  for (;;) {
    const auto end = std::min(labels.find(',', pos), labels.size());
    const auto pair = labels.substr(pos, end - pos);
    const auto eq = pair.find('=');
    if (eq == std::string_view::npos)
      return fail(errc::invalid_argument, fmt::format("labels \"{}\": \"{}\" is not key=value", labels, pair));
    const auto key = pair.substr(0, eq), value = pair.substr(eq + 1);
    if (!is_metric_name(key))
      return fail(errc::invalid_argument, fmt::format("labels \"{}\": the key \"{}\" must match [A-Za-z_][A-Za-z0-9_]*", labels, key));
    if (std::find(keys.begin(), keys.end(), key) != keys.end())
      return fail(errc::invalid_argument, fmt::format("labels \"{}\": the key \"{}\" appears twice", labels, key));
    // One spelling per label set, so "a=1,b=2" and "b=2,a=1" are never two series.
    if (!keys.empty() && key < keys.back())
      return fail(errc::invalid_argument,
                  fmt::format("labels \"{}\": the keys must be in order (\"{}\" after \"{}\")", labels, key, keys.back()));
    keys.push_back(key);
    if (value.empty()) return fail(errc::invalid_argument, fmt::format("labels \"{}\": the value of \"{}\" is empty", labels, key));
    for (char c : value)
      if (c == ',' || c == '=' || c == '{' || c == '}' || c == '"' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
        return fail(
            errc::invalid_argument,
            fmt::format("labels \"{}\": the value of \"{}\" contains {} (values may not contain , = {{ }} \" or control characters)",
                        labels, key, std::isprint(static_cast<unsigned char>(c)) ? fmt::format("'{}'", c) : "a control character"));
    if (end == labels.size()) return {};
    pos = end + 1;
  }
}
}  // namespace

Result<void> validate(const MetricPoint& p) {
  if (!is_metric_name(p.name))
    return fail(errc::invalid_argument, fmt::format("metric point: the name \"{}\" must match [A-Za-z_][A-Za-z0-9_]*", p.name));
  if (auto v = check_labels(p.labels); !v)
    return fail(errc::invalid_argument, fmt::format("metric point {}: {}", p.name, v.error().message));
  if (!std::isfinite(p.value))
    return fail(errc::invalid_argument, fmt::format("metric point {}{{{}}} at {} ms: the value {} is not a finite number", p.name, p.labels,
                                                    to_epoch_ms(p.time), p.value));
  return {};
}

Result<void> validate(const AlertRecord& r) {
  auto bad = [&](std::string msg) {
    return fail(errc::invalid_argument, fmt::format("alert {} (rule \"{}\", labels \"{}\"): {}", r.id, r.rule, r.labels, msg));
  };
  if (r.rule.empty()) return bad("\"rule\" must not be empty");
  if (auto v = check_labels(r.labels); !v) return bad(v.error().message);
  if (r.severity != "info" && r.severity != "warning" && r.severity != "critical")
    return bad(fmt::format("severity must be info, warning or critical (not \"{}\")", r.severity));
  if (r.state != "firing" && r.state != "resolved") return bad(fmt::format("state must be firing or resolved (not \"{}\")", r.state));
  if (!r.notified_state.empty() && r.notified_state != "firing" && r.notified_state != "resolved")
    return bad(fmt::format("notified_state must be empty, firing or resolved (not \"{}\")", r.notified_state));
  if (r.level < 0) return bad("negative level");
  if (r.reopened < 0) return bad("negative reopened");
  if (r.state == "firing" && r.resolved != TimePoint{}) return bad("a firing alert has no resolution time");
  if (r.state == "resolved" && r.resolved == TimePoint{}) return bad("a resolved alert needs its resolution time");
  if (r.acknowledged != TimePoint{} && r.acknowledged_by.empty()) return bad("an acknowledgement needs acknowledged_by");
  if (auto v = check_object("\"values\"", r.values); !v) return bad(v.error().message);
  return {};
}

Result<void> validate(const ForecastRecord& r) {
  auto bad = [&](std::string msg) {
    return fail(errc::invalid_argument, fmt::format("forecast {} (metric \"{}\", time zone \"{}\"): {}", r.id, r.metric, r.time_zone, msg));
  };
  if (r.metric.empty()) return bad("\"metric\" must not be empty");
  if (!is_metric_name(r.metric)) return bad("\"metric\" must match [A-Za-z_][A-Za-z0-9_]*");
  if (r.time_zone.empty()) return bad("\"time_zone\" must not be empty");
  if (r.horizon < 1 || r.horizon > 10000) return bad(fmt::format("the horizon must be 1 to 10000 days (not {})", r.horizon));
  if (r.method.empty()) return bad("\"method\" must not be empty");
  if (r.backend != "statistical" && r.backend != "llm")
    return bad(fmt::format("backend must be statistical or llm (not \"{}\")", r.backend));
  if (auto v = check_object("\"document\"", r.document); !v) return bad(v.error().message);
  if (auto v = check_object("\"inputs\"", r.inputs); !v) return bad(v.error().message);
  return {};
}

bool is_resource_name(std::string_view name) noexcept {
  auto alnum = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  return !name.empty() && name.size() <= 100 && alnum(name.front()) &&
         std::all_of(name.begin() + 1, name.end(), [&](char c) { return alnum(c) || c == '_' || c == '.' || c == '-'; });
}

Result<void> check_resource_name(std::string_view kind, std::string_view name) {
  if (is_resource_name(name)) return {};
  return fail(errc::invalid_argument,
              fmt::format("invalid {} name \"{}\" (use [A-Za-z0-9][A-Za-z0-9_.-]*, at most 100 characters)", kind, name));
}

namespace {
constexpr std::string_view kScalingActions[] = {"decide", "scale-up", "scale-down", "restart", "thresholds"};
constexpr std::string_view kScalingOutcomes[] = {"pending", "applied", "unchanged", "blocked", "failed", "dry-run"};
constexpr std::string_view kHealingKinds[] = {"state", "action", "pause", "resume"};
constexpr std::string_view kHealingStates[] = {"unknown", "healthy", "unhealthy", "healing", "quarantined", "paused"};
constexpr std::string_view kHealingActions[] = {"restart", "command", "workflow", "callback", "wait", "alert", "quarantine"};
constexpr std::string_view kHealingOutcomes[] = {"pending", "succeeded", "failed", "skipped", "dry-run"};

template <std::size_t N>
bool one_of(const std::string_view (&set)[N], std::string_view value) {
  return std::find(std::begin(set), std::end(set), value) != std::end(set);
}

// "a, b or c"
template <std::size_t N>
std::string listed(const std::string_view (&set)[N], std::size_t skip = 0) {
  std::string out;
  for (std::size_t i = skip; i < N; ++i) {
    if (i > skip) out += i + 1 == N ? " or " : ", ";
    out += set[i];
  }
  return out;
}

// A record's name field: the message names the field (the public check_resource_name names the kind).
Result<void> check_name_field(std::string_view field, const std::string& name) {
  if (name.empty()) return fail(errc::invalid_argument, fmt::format("\"{}\" must not be empty", field));
  if (!is_resource_name(name))
    return fail(errc::invalid_argument,
                fmt::format("\"{}\" must match [A-Za-z0-9][A-Za-z0-9_.-]* and have at most 100 characters (not \"{}\")", field, name));
  return {};
}
}  // namespace

Result<void> validate(const ScalingRecord& r) {
  auto bad = [&](std::string msg) {
    return fail(errc::invalid_argument, fmt::format("scaling record (resource \"{}\", action \"{}\"): {}", r.resource, r.action, msg));
  };
  if (auto v = check_name_field("resource", r.resource); !v) return bad(v.error().message);
  if (!one_of(kScalingActions, r.action)) return bad(fmt::format("\"action\" must be {} (not \"{}\")", listed(kScalingActions), r.action));
  if (r.current < 0) return bad(fmt::format("\"current\" must not be negative (not {})", r.current));
  if (r.recommended < 0) return bad(fmt::format("\"recommended\" must not be negative (not {})", r.recommended));
  if (r.desired < 0) return bad(fmt::format("\"desired\" must not be negative (not {})", r.desired));
  if (!one_of(kScalingOutcomes, r.outcome))
    return bad(fmt::format("\"outcome\" must be {} (not \"{}\")", listed(kScalingOutcomes), r.outcome));
  if (auto v = check_object("\"inputs\"", r.inputs); !v) return bad(v.error().message);
  return {};
}

Result<void> validate(const HealingRecord& r) {
  auto bad = [&](std::string msg) {
    return fail(errc::invalid_argument, fmt::format("healing record (target \"{}\", kind \"{}\"): {}", r.target, r.kind, msg));
  };
  if (auto v = check_name_field("target", r.target); !v) return bad(v.error().message);
  if (!one_of(kHealingKinds, r.kind)) return bad(fmt::format("\"kind\" must be {} (not \"{}\")", listed(kHealingKinds), r.kind));
  if (!one_of(kHealingStates, r.state)) return bad(fmt::format("\"state\" must be {} (not \"{}\")", listed(kHealingStates), r.state));
  if (r.kind == "action") {
    if (!one_of(kHealingActions, r.action))
      return bad(fmt::format("\"action\" must be {} (not \"{}\")", listed(kHealingActions), r.action));
    if (!one_of(kHealingOutcomes, r.outcome))
      return bad(fmt::format("\"outcome\" must be {} (not \"{}\")", listed(kHealingOutcomes), r.outcome));
  } else {
    if (!r.action.empty()) return bad(fmt::format("\"action\" must be empty for a record of kind {} (not \"{}\")", r.kind, r.action));
    if (!r.outcome.empty()) return bad(fmt::format("\"outcome\" must be empty for a record of kind {} (not \"{}\")", r.kind, r.outcome));
  }
  if (r.step < 0) return bad(fmt::format("\"step\" must not be negative (not {})", r.step));
  if (r.attempt < 0) return bad(fmt::format("\"attempt\" must not be negative (not {})", r.attempt));
  if (auto v = check_object("\"detail\"", r.detail); !v) return bad(v.error().message);
  return {};
}

namespace {
constexpr std::string_view kTokenRoles[] = {"viewer", "operator", "admin"};

bool is_token_id(std::string_view id) {
  return id.size() >= 3 && id.size() <= 64 &&
         std::all_of(id.begin(), id.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
}

bool is_sha256_hex(std::string_view hash) {
  return hash.size() == 64 &&
         std::all_of(hash.begin(), hash.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// The characters of `name` when it is valid UTF-8 of printable characters (no control characters), else nullopt.
std::optional<std::size_t> printable_length(std::string_view name) {
  std::size_t chars = 0;
  for (std::size_t i = 0; i < name.size(); ++chars) {
    const auto n = automation::detail::valid_char(name, i);
    if (n == 0 || name[i] == '\t' || name[i] == '\n' || name[i] == '\r') return std::nullopt;
    i += n;
  }
  return chars;
}
}  // namespace

Result<void> validate(const TokenRecord& r) {
  // Shown as valid UTF-8 whatever they hold, so the message can go into JSON and logs as it is.
  const auto id = automation::detail::clean_text(r.id);
  auto bad = [&](std::string msg) {
    return fail(errc::invalid_argument, fmt::format("token \"{}\" (name \"{}\"): {}", id, automation::detail::clean_text(r.name), msg));
  };
  if (!is_token_id(r.id)) return bad(fmt::format("\"id\" must match [a-z0-9_]{{3,64}} (not \"{}\")", id));
  if (r.name.empty()) return bad("\"name\" must not be empty");
  const auto length = printable_length(r.name);
  if (!length) return bad("\"name\" must be printable UTF-8 characters (no control characters)");
  if (*length > 100) return bad(fmt::format("\"name\" must have at most 100 characters (not {})", *length));
  if (!one_of(kTokenRoles, r.role)) return bad(fmt::format("\"role\" must be {} (not \"{}\")", listed(kTokenRoles), r.role));
  // The hash is not shown: a caller that mixed up the fields may have passed the secret.
  if (!is_sha256_hex(r.secret_hash))
    return bad(fmt::format("\"secret_hash\" must be a SHA-256 as 64 lowercase hex characters (got {} characters)", r.secret_hash.size()));
  if (r.created_by.empty()) return bad("\"created_by\" must not be empty");
  if (to_epoch_ms(r.revoked) != 0) {
    if (r.revoked_by.empty()) return bad("\"revoked_by\" must not be empty for a revoked token");
  } else {
    if (!r.revoked_by.empty()) return bad("\"revoked_by\" must be empty for a token not revoked (\"revoked\" is epoch 0)");
    if (!r.revoke_reason.empty()) return bad("\"revoke_reason\" must be empty for a token not revoked (\"revoked\" is epoch 0)");
  }
  return {};
}

Result<void> check_token_revocation(std::string_view id_or_name, TimePoint time, std::string_view by) {
  if (by.empty()) return fail(errc::invalid_argument, fmt::format("revoke token \"{}\": \"by\" must not be empty", id_or_name));
  if (to_epoch_ms(time) <= 0)
    return fail(errc::invalid_argument,
                fmt::format("revoke token \"{}\": the time must be after epoch 0 (not {} ms), which means \"not revoked\"", id_or_name,
                            to_epoch_ms(time)));
  return {};
}

namespace {
constexpr std::string_view kNodeSources[] = {"registered", "discovered"};
constexpr std::string_view kNodeStates[] = {"up", "down"};

// Characters as SQLite's length() counts them in valid UTF-8: every byte that does not continue a sequence.
std::size_t char_count(std::string_view s) {
  return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// "a string", "a number", ...: what a JSON value is, for messages.
std::string a_json(const boost::json::value& v) {
  const auto type = json::type_name(v);
  return fmt::format("{} {}", type == "array" || type == "object" ? "an" : "a", type);
}

// `text` parsed as JSON; the message (without the record's prefix) says what `shape` it must have.
Result<boost::json::value> parse_shape(std::string_view field, std::string_view text, std::string_view shape) {
  auto doc = json::parse(text, field);
  if (!doc) return fail(errc::invalid_argument, fmt::format("{} must be {} (not valid JSON: {})", field, shape, doc.error().message));
  return doc;
}

// An array of non-empty strings (references to nodes or services, or addresses); `path` names it in
// the message, `shape` says what it must be.
Result<void> check_strings(const boost::json::value& v, std::string_view path, std::string_view shape) {
  if (!v.is_array()) return fail(errc::invalid_argument, fmt::format("{} must be {} (not {})", path, shape, a_json(v)));
  const auto& a = v.as_array();
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!a[i].is_string())
      return fail(errc::invalid_argument, fmt::format("{} must be {} ({}[{}] is {})", path, shape, path, i, a_json(a[i])));
    if (a[i].as_string().empty()) return fail(errc::invalid_argument, fmt::format("{} must be {} ({}[{}] is empty)", path, shape, path, i));
  }
  return {};
}

Result<void> check_services(std::string_view text) {
  constexpr std::string_view shape = "a JSON array of objects with a string \"name\"";
  auto doc = parse_shape("services", text, shape);
  if (!doc) return doc.error();
  auto bad = [&](std::string detail) { return fail(errc::invalid_argument, fmt::format("services must be {} ({})", shape, detail)); };
  if (!doc->is_array()) return bad(fmt::format("not {}", a_json(*doc)));
  const auto& services = doc->as_array();
  for (std::size_t i = 0; i < services.size(); ++i) {
    if (!services[i].is_object()) return bad(fmt::format("services[{}] is {}", i, a_json(services[i])));
    const auto& s = services[i].as_object();
    const auto* name = s.if_contains("name");
    if (!name) return bad(fmt::format("services[{}] has no \"name\"", i));
    if (!name->is_string()) return bad(fmt::format("the \"name\" of services[{}] is {}", i, a_json(*name)));
    if (name->as_string().empty()) return bad(fmt::format("the \"name\" of services[{}] is empty", i));
    // The service's problems, named by its name and place.
    auto bad_service = [&](std::string msg) {
      return fail(errc::invalid_argument,
                  fmt::format("service \"{}\" (services[{}]): {}", automation::detail::clean_text(name->as_string()), i, msg));
    };
    if (const auto* port = s.if_contains("port")) {
      const bool in_range = (port->is_int64() && port->as_int64() >= 1 && port->as_int64() <= 65535) ||
                            (port->is_uint64() && port->as_uint64() >= 1 && port->as_uint64() <= 65535);
      if (!in_range)
        return bad_service(
            fmt::format("port must be an integer from 1 to 65535 (not {})", port->is_number() ? json::dump(*port) : a_json(*port)));
    }
    if (const auto* url = s.if_contains("url"); url && !url->is_string())
      return bad_service(fmt::format("url must be a string (not {})", a_json(*url)));
    if (const auto* needs = s.if_contains("depends_on"))
      if (auto v = check_strings(*needs, "depends_on", "a JSON array of \"node\" or \"node/service\" strings"); !v)
        return bad_service(v.error().message);
  }
  return {};
}

Result<void> check_node_labels(std::string_view text) {
  constexpr std::string_view shape = "a JSON object of strings";
  auto doc = parse_shape("labels", text, shape);
  if (!doc) return doc.error();
  if (!doc->is_object()) return fail(errc::invalid_argument, fmt::format("labels must be {} (not {})", shape, a_json(*doc)));
  for (const auto& kv : doc->as_object())
    if (!kv.value().is_string())
      return fail(errc::invalid_argument, fmt::format("labels must be {} (the value of \"{}\" is {})", shape,
                                                      automation::detail::clean_text(kv.key()), a_json(kv.value())));
  return {};
}

// `text` a JSON array of non-empty strings; `field` names it.
Result<void> check_string_array(std::string_view field, std::string_view text, std::string_view shape) {
  auto doc = parse_shape(field, text, shape);
  if (!doc) return doc.error();
  return check_strings(*doc, field, shape);
}
}  // namespace

Result<void> validate(const NodeRecord& r) {
  if (auto v = check_resource_name("node", r.id); !v) return v;
  auto bad = [&](std::string msg) { return fail(errc::invalid_argument, fmt::format("node \"{}\": {}", r.id, msg)); };
  if (r.kind.empty()) return bad("kind must not be empty");
  const auto kind_length = printable_length(r.kind);
  if (!kind_length) return bad("kind must be printable UTF-8 characters (no control characters)");
  if (*kind_length > 64) return bad(fmt::format("kind must have at most 64 characters (not {})", *kind_length));
  if (const auto n = char_count(r.address); n > 512) return bad(fmt::format("address must have at most 512 characters (not {})", n));
  if (!one_of(kNodeSources, r.source))
    return bad(fmt::format("source must be {} (not \"{}\")", listed(kNodeSources), automation::detail::clean_text(r.source)));
  if (auto v = check_services(r.services); !v) return bad(v.error().message);
  if (auto v = check_string_array("depends_on", r.depends_on, "a JSON array of node id strings"); !v) return bad(v.error().message);
  if (auto v = check_node_labels(r.labels); !v) return bad(v.error().message);
  if (!one_of(kNodeStates, r.state))
    return bad(fmt::format("state must be {} (not \"{}\")", listed(kNodeStates), automation::detail::clean_text(r.state)));
  if (r.ttl < Millis::zero()) return bad(fmt::format("ttl must not be negative (not {} ms)", r.ttl.count()));
  if (r.ttl > std::chrono::hours(24 * 365)) return bad(fmt::format("ttl must be at most 365 days (not {} ms)", r.ttl.count()));
  if (r.updated_by.empty()) return bad("updated_by must not be empty");
  return {};
}

Result<void> validate(const ScanRecord& r) {
  auto bad = [&](std::string msg) {
    return fail(errc::invalid_argument, fmt::format("discovery scan (actor \"{}\", started {} ms): {}",
                                                    automation::detail::clean_text(r.actor), to_epoch_ms(r.started), msg));
  };
  if (r.actor.empty()) return bad("actor must not be empty");
  // To the millisecond, as stored.
  if (to_epoch_ms(r.finished) < to_epoch_ms(r.started))
    return bad(fmt::format("finished ({} ms) must not be before started", to_epoch_ms(r.finished)));
  if (auto v = check_string_array("targets", r.targets, "a JSON array of \"host:port\" strings"); !v) return bad(v.error().message);
  constexpr std::string_view found_shape = "a JSON array of objects";
  auto found = parse_shape("found", r.found, found_shape);
  if (!found) return bad(found.error().message);
  if (!found->is_array()) return bad(fmt::format("found must be {} (not {})", found_shape, a_json(*found)));
  for (std::size_t i = 0; i < found->as_array().size(); ++i)
    if (const auto& f = found->as_array()[i]; !f.is_object())
      return bad(fmt::format("found must be {} (found[{}] is {})", found_shape, i, a_json(f)));
  if (r.added < 0) return bad(fmt::format("added must not be negative (not {})", r.added));
  if (r.lost < 0) return bad(fmt::format("lost must not be negative (not {})", r.lost));
  return {};
}

namespace detail {

Result<void> check_scaling_finish(std::int64_t id, std::string_view outcome) {
  if (outcome == "pending" || !one_of(kScalingOutcomes, outcome))
    return fail(errc::invalid_argument,
                fmt::format("finish scaling record {}: the outcome must be {} (not \"{}\")", id, listed(kScalingOutcomes, 1), outcome));
  return {};
}

Result<void> check_healing_finish(std::int64_t id, std::string_view outcome, std::string_view detail) {
  if (outcome == "pending" || !one_of(kHealingOutcomes, outcome))
    return fail(errc::invalid_argument,
                fmt::format("finish healing record {}: the outcome must be {} (not \"{}\")", id, listed(kHealingOutcomes, 1), outcome));
  if (!detail.empty())
    if (auto v = check_object("\"detail\"", std::string(detail)); !v)
      return fail(errc::invalid_argument, fmt::format("finish healing record {}: {}", id, v.error().message));
  return {};
}

}  // namespace detail

std::optional<std::string> sqlite_path(std::string_view uri) {
  if (uri.rfind("sqlite:", 0) == 0) return std::string(uri.substr(7));
  if (!uri.empty() && uri.find(':') == std::string_view::npos) return std::string(uri);  // a bare path means SQLite
  return std::nullopt;
}

Result<std::unique_ptr<Store>> open_store(std::string_view uri, const OpenOptions& options) {
  if (uri == "memory:") return std::unique_ptr<Store>(std::make_unique<MemoryStore>());
  auto file = sqlite_path(uri);
  if (!file) return fail(errc::invalid_argument, fmt::format("invalid store URI \"{}\" (use sqlite:PATH or memory:)", uri));
  std::string path = std::move(*file);
  if (path.empty()) return fail(errc::invalid_argument, fmt::format("invalid store URI \"{}\": the path is empty", uri));
  auto s = SqliteStore::open(path, options);
  if (!s) return s.error();
  return std::unique_ptr<Store>(std::move(s.value()));
}

}  // namespace automation::storage
