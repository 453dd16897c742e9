#include <automation/core/ids.hpp>
#include <automation/core/json.hpp>
#include <automation/core/logging.hpp>

#include <catch2/catch.hpp>

#include <mutex>
#include <thread>
#include <vector>

using namespace automation;

namespace {
struct Captured {
  std::mutex mu;
  std::vector<std::string> lines;
};

void capture(Captured& c, LogLevel level = LogLevel::trace, LogFormat format = LogFormat::json) {
  LoggingOptions o;
  o.level = level;
  o.format = format;
  o.sink = [&c](std::string_view line) {
    std::lock_guard lock(c.mu);
    c.lines.emplace_back(line);
  };
  configure_logging(o);
}

void restore() { configure_logging(LoggingOptions{.level = LogLevel::warn}); }
}  // namespace

TEST_CASE("JSON lines carry ts, level, logger, msg and the correlation id") {
  Captured c;
  capture(c);
  {
    CorrelationScope scope("4bf92f3577b34da6a3ce929d0e0e4736");
    log(LogLevel::info, "store", "opened \"x\"\nnext");
    {
      LogContextScope ctx("deploy", "run-7", "build");
      log(LogLevel::warn, "workflow", "step failed");
    }
    log(LogLevel::debug, "store", "after");
  }
  log(LogLevel::info, "cli", "no scope");
  restore();
  REQUIRE(c.lines.size() == 4);
  auto first = json::parse(c.lines[0]).value().as_object();
  CHECK(first.at("level").as_string() == "info");
  CHECK(first.at("logger").as_string() == "store");
  CHECK(first.at("msg").as_string() == "opened \"x\"\nnext");
  CHECK(first.at("correlation_id").as_string() == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(first.at("ts").as_string().size() == 24);  // 2026-11-23T07:31:12.123Z
  CHECK_FALSE(first.contains("workflow"));
  auto second = json::parse(c.lines[1]).value().as_object();
  CHECK(second.at("workflow").as_string() == "deploy");
  CHECK(second.at("run_id").as_string() == "run-7");
  CHECK(second.at("step").as_string() == "build");
  auto third = json::parse(c.lines[2]).value().as_object();
  CHECK_FALSE(third.contains("workflow"));
  CHECK(third.at("correlation_id").as_string() == "4bf92f3577b34da6a3ce929d0e0e4736");
  auto fourth = json::parse(c.lines[3]).value().as_object();
  CHECK(fourth.at("correlation_id").as_string() == "");
}

TEST_CASE("levels below the configured one are dropped and text format is readable") {
  Captured c;
  capture(c, LogLevel::warn, LogFormat::text);
  log(LogLevel::info, "x", "dropped");
  log(LogLevel::error, "x", "kept");
  restore();
  REQUIRE(c.lines.size() == 1);
  CHECK_THAT(c.lines[0], Catch::Contains("error [x] kept"));
}

TEST_CASE("a throwing sink never propagates out of log()") {
  LoggingOptions o;
  o.level = LogLevel::trace;
  o.sink = [](std::string_view) { throw std::runtime_error("sink broke"); };
  configure_logging(o);
  CHECK_NOTHROW(log(LogLevel::error, "x", "boom"));
  restore();
}

TEST_CASE("correlation ids are per thread and scopes nest") {
  CorrelationScope outer;
  CHECK(is_trace_id(outer.id()));
  CHECK(current_correlation_id() == outer.id());
  {
    CorrelationScope inner("req-1");
    CHECK(current_correlation_id() == "req-1");
    std::string seen_in_thread = "unset";
    std::thread t([&] { seen_in_thread = std::string(current_correlation_id()); });
    t.join();
    CHECK(seen_in_thread.empty());
  }
  CHECK(current_correlation_id() == outer.id());
}

TEST_CASE("correlation_id_from prefers traceparent, then X-Request-Id, then generates") {
  CHECK(correlation_id_from("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "req-9") == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(correlation_id_from("00-00000000000000000000000000000000-00f067aa0ba902b7-01", "req-9") == "req-9");
  CHECK(correlation_id_from("garbage", "req-9") == "req-9");
  CHECK(is_trace_id(correlation_id_from("", "")));
  CHECK(is_trace_id(correlation_id_from("", "has space")));
  CHECK(is_trace_id(correlation_id_from("", std::string(200, 'a'))));
}

TEST_CASE("log level and format parsing") {
  CHECK(parse_log_level("debug").value() == LogLevel::debug);
  CHECK(parse_log_level("warning").value() == LogLevel::warn);
  CHECK_FALSE(parse_log_level("loud"));
  CHECK(parse_log_format("text").value() == LogFormat::text);
  CHECK_FALSE(parse_log_format("xml"));
}
