#include <automation/core/json.hpp>
#include <automation/storage/memory_store.hpp>
#include <automation/storage/sqlite_store.hpp>
#include <automation/storage/store.hpp>
#include <detail/names.hpp>

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

Result<void> validate(const EventRecord& r) {
  if (r.name.empty()) return fail(errc::invalid_argument, "event: \"name\" must not be empty");
  for (char c : r.name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' || c == ':'))
      return fail(errc::invalid_argument, fmt::format("event \"{}\": names use letters, digits and . _ - : only (found '{}')", r.name, c));
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

Result<std::unique_ptr<Store>> open_store(std::string_view uri, const OpenOptions& options) {
  if (uri == "memory:") return std::unique_ptr<Store>(std::make_unique<MemoryStore>());
  std::string path;
  if (uri.rfind("sqlite:", 0) == 0) {
    path = std::string(uri.substr(7));
  } else if (!uri.empty() && uri.find(':') == std::string_view::npos) {
    path = std::string(uri);  // a bare path means SQLite
  } else {
    return fail(errc::invalid_argument, fmt::format("invalid store URI \"{}\" (use sqlite:PATH or memory:)", uri));
  }
  if (path.empty()) return fail(errc::invalid_argument, fmt::format("invalid store URI \"{}\": the path is empty", uri));
  auto s = SqliteStore::open(path, options);
  if (!s) return s.error();
  return std::unique_ptr<Store>(std::move(s.value()));
}

}  // namespace automation::storage
