#include <automation/core/ids.hpp>
#include <automation/core/logging.hpp>
#include <detail/names.hpp>

#include <detail/log.hpp>

#include <fmt/format.h>
#include <spdlog/details/log_msg.h>
#include <spdlog/formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <vector>

namespace automation {
namespace {

struct ThreadContext {
  std::string correlation_id;
  std::string workflow, run_id, step;
};
thread_local ThreadContext t_ctx;

spdlog::level::level_enum to_spd(LogLevel l) {
  switch (l) {
    case LogLevel::trace:
      return spdlog::level::trace;
    case LogLevel::debug:
      return spdlog::level::debug;
    case LogLevel::info:
      return spdlog::level::info;
    case LogLevel::warn:
      return spdlog::level::warn;
    case LogLevel::error:
      return spdlog::level::err;
    case LogLevel::off:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}

std::string_view level_name(spdlog::level::level_enum l) {
  switch (l) {
    case spdlog::level::trace:
      return "trace";
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    case spdlog::level::err:
      return "error";
    case spdlog::level::critical:
      return "critical";
    default:
      return "off";
  }
}

void append_json_string(spdlog::memory_buf_t& out, std::string_view s) {
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out.append(std::string_view("\\\""));
        break;
      case '\\':
        out.append(std::string_view("\\\\"));
        break;
      case '\n':
        out.append(std::string_view("\\n"));
        break;
      case '\r':
        out.append(std::string_view("\\r"));
        break;
      case '\t':
        out.append(std::string_view("\\t"));
        break;
      default:
        if (c < 0x20) {
          fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

void append_ts(spdlog::memory_buf_t& out, spdlog::log_clock::time_point tp) {
  using namespace std::chrono;
  const auto ms = floor<milliseconds>(tp);
  const auto day = floor<days>(ms);
  const year_month_day ymd{day};
  const hh_mm_ss<milliseconds> tod{ms - day};
  fmt::format_to(std::back_inserter(out), "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", static_cast<int>(ymd.year()),
                 static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()), tod.hours().count(), tod.minutes().count(),
                 tod.seconds().count(), tod.subseconds().count());
}

// Formats on the calling thread (sinks are synchronous), so the thread-local context is the caller's.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& out) override {
    out.append(std::string_view("{\"ts\":\""));
    append_ts(out, msg.time);
    out.append(std::string_view("\",\"level\":\""));
    out.append(level_name(msg.level));
    out.append(std::string_view("\",\"logger\":"));
    append_json_string(out, std::string_view(msg.logger_name.data(), msg.logger_name.size()));
    out.append(std::string_view(",\"msg\":"));
    append_json_string(out, std::string_view(msg.payload.data(), msg.payload.size()));
    out.append(std::string_view(",\"correlation_id\":"));
    append_json_string(out, t_ctx.correlation_id);
    for (const auto& [key, value] : {std::pair<std::string_view, std::string_view>{",\"workflow\":", t_ctx.workflow},
                                     {",\"run_id\":", t_ctx.run_id},
                                     {",\"step\":", t_ctx.step}}) {
      if (value.empty()) continue;
      out.append(key);
      append_json_string(out, value);
    }
    out.append(std::string_view("}\n"));
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

class TextFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& out) override {
    append_ts(out, msg.time);
    fmt::format_to(std::back_inserter(out), " {:<5} [{}] {}", level_name(msg.level),
                   std::string_view(msg.logger_name.data(), msg.logger_name.size()),
                   std::string_view(msg.payload.data(), msg.payload.size()));
    if (!t_ctx.correlation_id.empty()) fmt::format_to(std::back_inserter(out), " correlation_id={}", t_ctx.correlation_id);
    if (!t_ctx.workflow.empty()) fmt::format_to(std::back_inserter(out), " workflow={}", t_ctx.workflow);
    if (!t_ctx.run_id.empty()) fmt::format_to(std::back_inserter(out), " run_id={}", t_ctx.run_id);
    if (!t_ctx.step.empty()) fmt::format_to(std::back_inserter(out), " step={}", t_ctx.step);
    out.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<TextFormatter>(); }
};

class CallbackSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit CallbackSink(std::function<void(std::string_view)> fn) : fn_(std::move(fn)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    std::string_view line(buf.data(), buf.size());
    if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
    fn_(line);
  }
  void flush_() override {}

 private:
  std::function<void(std::string_view)> fn_;
};

struct State {
  std::mutex mu;
  std::shared_ptr<spdlog::sinks::sink> sink;
  std::atomic<int> level{static_cast<int>(spdlog::level::warn)};  // until a host configures logging
};

State& state() {
  static State* s = [] {
    auto* st = new State;  // never destroyed: logging may happen during static destruction
    st->sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    st->sink->set_formatter(std::make_unique<JsonFormatter>());
    return st;
  }();
  return *s;
}

}  // namespace

std::string_view to_string(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::trace:
      return "trace";
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warn:
      return "warn";
    case LogLevel::error:
      return "error";
    case LogLevel::off:
      return "off";
  }
  return "info";
}

Result<LogLevel> parse_log_level(std::string_view text) {
  if (text == "warning") return LogLevel::warn;
  return detail::parse_name(text, {LogLevel::trace, LogLevel::debug, LogLevel::info, LogLevel::warn, LogLevel::error, LogLevel::off},
                            "log level");
}

Result<LogFormat> parse_log_format(std::string_view text) {
  if (text == "json") return LogFormat::json;
  if (text == "text") return LogFormat::text;
  return fail(errc::invalid_argument, fmt::format("unknown log format \"{}\" (use json or text)", text));
}

void configure_logging(const LoggingOptions& options) noexcept {
  try {
    std::shared_ptr<spdlog::sinks::sink> sink;
    std::string fallback_reason;
    if (options.sink) {
      sink = std::make_shared<CallbackSink>(options.sink);
    } else if (!options.file.empty()) {
      try {
        sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(options.file);
      } catch (const std::exception& e) {
        fallback_reason = e.what();
      }
    }
    if (!sink) sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    if (options.format == LogFormat::json) {
      sink->set_formatter(std::make_unique<JsonFormatter>());
    } else {
      sink->set_formatter(std::make_unique<TextFormatter>());
    }
    auto& s = state();
    {
      std::lock_guard lock(s.mu);
      s.sink = std::move(sink);
    }
    s.level.store(static_cast<int>(to_spd(options.level)));
    if (!fallback_reason.empty())
      log(LogLevel::warn, "logging", fmt::format("cannot open log file {}: {}; logging to stderr", options.file, fallback_reason));
  } catch (...) {
    // Logging never throws; the previous setup stays in effect.
  }
}

bool detail::log_enabled(LogLevel level) noexcept {
  return level != LogLevel::off && static_cast<int>(to_spd(level)) >= state().level.load(std::memory_order_relaxed);
}

void log(LogLevel level, std::string_view logger, std::string_view message) noexcept {
  if (!detail::log_enabled(level)) return;
  try {
    auto& s = state();
    std::shared_ptr<spdlog::sinks::sink> sink;
    {
      std::lock_guard lock(s.mu);
      sink = s.sink;
    }
    spdlog::details::log_msg msg(spdlog::string_view_t(logger.data(), logger.size()), to_spd(level),
                                 spdlog::string_view_t(message.data(), message.size()));
    sink->log(msg);
    if (level >= LogLevel::warn) sink->flush();
  } catch (...) {
    // Logging never throws.
  }
}

std::string_view current_correlation_id() noexcept { return t_ctx.correlation_id; }

CorrelationScope::CorrelationScope(std::string id) : id_(id.empty() ? generate_id() : std::move(id)) {
  previous_ = std::move(t_ctx.correlation_id);
  t_ctx.correlation_id = id_;
}

CorrelationScope::~CorrelationScope() { t_ctx.correlation_id = std::move(previous_); }

std::string correlation_id_from(std::string_view traceparent, std::string_view request_id) {
  // traceparent: version "-" trace-id(32 hex) "-" parent-id(16 hex) "-" flags(2 hex)
  if (traceparent.size() >= 55 && traceparent[2] == '-' && traceparent[35] == '-' && traceparent.substr(0, 2) != "ff") {
    const auto trace_id = traceparent.substr(3, 32);
    if (is_trace_id(trace_id)) return std::string(trace_id);
  }
  if (!request_id.empty() && request_id.size() <= 128) {
    bool printable = true;
    for (unsigned char c : request_id)
      if (c < 0x21 || c > 0x7e) printable = false;
    if (printable) return std::string(request_id);
  }
  return generate_id();
}

LogContextScope::LogContextScope(std::string workflow, std::string run_id, std::string step)
    : prev_workflow_(std::move(t_ctx.workflow)), prev_run_id_(std::move(t_ctx.run_id)), prev_step_(std::move(t_ctx.step)) {
  t_ctx.workflow = std::move(workflow);
  t_ctx.run_id = std::move(run_id);
  t_ctx.step = std::move(step);
}

LogContextScope::~LogContextScope() {
  t_ctx.workflow = std::move(prev_workflow_);
  t_ctx.run_id = std::move(prev_run_id_);
  t_ctx.step = std::move(prev_step_);
}

}  // namespace automation
