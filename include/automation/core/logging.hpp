#pragma once
/// Structured logging: spdlog underneath (kept out of this header), JSON lines by default with the
/// fields ts, level, logger, msg, correlation_id and, where they apply, workflow, run_id and step.
/// A correlation id is carried per thread by CorrelationScope; work handed to another thread takes
/// the id by value and opens its own scope there. Logging never throws.
/// Thread-safety: every function here is safe from any thread.
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <automation/core/error.hpp>

namespace automation {

enum class LogLevel { trace, debug, info, warn, error, off };
enum class LogFormat { json, text };

std::string_view to_string(LogLevel level) noexcept;
Result<LogLevel> parse_log_level(std::string_view text);
Result<LogFormat> parse_log_format(std::string_view text);

struct LoggingOptions {
  LogLevel level = LogLevel::info;
  LogFormat format = LogFormat::json;
  /// Where lines go: stderr when empty and no sink is set, otherwise appended to this file.
  std::string file;
  /// If set, receives every formatted line (without the newline) instead of stderr/file: lets a host
  /// route our logs into its own logger and lets tests read them.
  std::function<void(std::string_view line)> sink;
};

/// Replaces the process-wide logging setup. Never throws; a file that cannot be opened falls back
/// to stderr and says so.
void configure_logging(const LoggingOptions& options) noexcept;

/// Logs one message under `logger` ("store", "cli", ...). Never throws.
void log(LogLevel level, std::string_view logger, std::string_view message) noexcept;

/// The correlation id of the work running on this thread ("" when none).
std::string_view current_correlation_id() noexcept;

/// Sets this thread's correlation id for its lifetime and restores the previous one on exit.
class CorrelationScope {
 public:
  /// Uses `id`, or a freshly generated one when `id` is empty.
  explicit CorrelationScope(std::string id = {});
  ~CorrelationScope();
  CorrelationScope(const CorrelationScope&) = delete;
  CorrelationScope& operator=(const CorrelationScope&) = delete;
  const std::string& id() const noexcept { return id_; }

 private:
  std::string id_;
  std::string previous_;
};

/// Picks the correlation id for an incoming request: the trace-id of a valid W3C `traceparent`,
/// else a sane `X-Request-Id` (printable, at most 128 characters), else a new id.
std::string correlation_id_from(std::string_view traceparent, std::string_view request_id);

/// Log context for workflow execution: adds workflow, run_id and step fields to every line logged
/// on this thread while it lives (empty values are omitted). Restores the previous context on exit.
class LogContextScope {
 public:
  LogContextScope(std::string workflow, std::string run_id, std::string step = {});
  ~LogContextScope();
  LogContextScope(const LogContextScope&) = delete;
  LogContextScope& operator=(const LogContextScope&) = delete;

 private:
  std::string prev_workflow_, prev_run_id_, prev_step_;
};

}  // namespace automation
