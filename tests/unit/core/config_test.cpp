#include <automation/core/config.hpp>

#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <fstream>

using namespace automation;

TEST_CASE("defaults apply when there is no file and no environment") {
  auto cfg = parse_config("", "defaults", {});
  REQUIRE(cfg);
  CHECK(cfg->db == "sqlite:var/automation.db");
  CHECK(cfg->thresholds.cpu_high == 80);
  CHECK(cfg->thresholds.memory_high == 85);
  CHECK(cfg->thresholds.disk_high == 90);
  CHECK(cfg->storage.busy_timeout == std::chrono::seconds(5));
  CHECK(cfg->sources.at("db") == "default");
}

TEST_CASE("a file sets values and the environment overrides it") {
  const char* text = R"({"db": "sqlite:/srv/a.db", "time_zone": "Europe/Berlin",
    "storage": {"busy_timeout": "250ms", "synchronous": "full"},
    "thresholds": {"cpu_high": 75}, "log": {"level": "debug", "format": "text"}})";
  Environment env{{"AUTOMATION_CPU_HIGH_THRESHOLD", "70"}, {"AUTOMATION_DB", "memory:"}};
  auto cfg = parse_config(text, "prod.json", env);
  REQUIRE(cfg);
  CHECK(cfg->db == "memory:");
  CHECK(cfg->sources.at("db") == "env:AUTOMATION_DB");
  CHECK(cfg->time_zone == "Europe/Berlin");
  CHECK(cfg->sources.at("time_zone") == "file:prod.json");
  CHECK(cfg->storage.busy_timeout == std::chrono::milliseconds(250));
  CHECK(cfg->storage.synchronous == "full");
  CHECK(cfg->thresholds.cpu_high == 70);
  CHECK(cfg->log.level == LogLevel::debug);
  CHECK(cfg->log.format == LogFormat::text);
  // to_json has the file's shape and reflects the effective values.
  const auto j = cfg->to_json();
  CHECK(j.at("thresholds").at("cpu_high").as_double() == 70);
  CHECK(j.at("storage").at("busy_timeout").as_string() == "250ms");
}

TEST_CASE("the reports section: defaults, choices, a secret webhook URL") {
  auto defaults = parse_config("", "defaults", {}).value();
  CHECK(defaults.reports.directory == "var/reports");
  CHECK(defaults.reports.format == "html");
  CHECK(defaults.reports.smtp_port == 25);
  CHECK(defaults.to_json().at("reports").at("webhook_url").as_string() == "");  // nothing to hide
  const char* text = R"({"reports": {"format": "md", "webhook_url": "https://hooks.example/T1/B2/secret", "smtp_host": "mail"}})";
  auto cfg = parse_config(text, "r.json", {{"AUTOMATION_REPORTS_WEBHOOK_STYLE", "json"}}).value();
  CHECK(cfg.reports.format == "md");
  CHECK(cfg.reports.webhook_url == "https://hooks.example/T1/B2/secret");
  CHECK(cfg.reports.webhook_style == "json");
  CHECK(cfg.reports.smtp_host == "mail");
  const auto j = cfg.to_json();
  CHECK(j.at("reports").at("webhook_url").as_string() == "***");
  CHECK(j.at("reports").at("format").as_string() == "md");
  auto bad = parse_config(R"({"reports": {"format": "pdf", "smtp_port": 0}})", "bad.json", {});
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message, Catch::Contains("reports.format"));
  CHECK_THAT(bad.error().message, Catch::Contains("reports.smtp_port"));
}

TEST_CASE("every problem is reported with its key path and origin") {
  const char* text = R"({"storage": {"busy_timout": "5s", "synchronous": 3}, "thresholds": {"cpu_high": 180}, "nope": 1,
                         "time_zone": "Nowhere/Land", "log": "loud"})";
  Environment env{{"AUTOMATION_CPU_HIGH_THRESHOLD", "abc"}, {"AUTOMATION_DBB", "x"}, {"AUTOMATION_STORAGE_BUSY_TIMEOUT", "soon"}};
  auto cfg = parse_config(text, "app.json", env);
  REQUIRE_FALSE(cfg);
  CHECK(cfg.error().is(errc::config));
  const auto& m = cfg.error().message;
  CHECK_THAT(m, Catch::Contains("9 configuration problems"));
  CHECK_THAT(m, Catch::Contains("app.json: unknown key \"storage.busy_timout\" (did you mean \"storage.busy_timeout\"?)"));
  CHECK_THAT(m, Catch::Contains("app.json: \"storage.synchronous\": expected a string"));
  CHECK_THAT(m, Catch::Contains("\"thresholds.cpu_high\": 180 is out of range [0, 100]"));
  CHECK_THAT(m, Catch::Contains("unknown key \"nope\""));
  CHECK_THAT(m, Catch::Contains("Nowhere/Land"));
  CHECK_THAT(m, Catch::Contains("\"log\": expected an object, got string"));
  CHECK_THAT(m, Catch::Contains("AUTOMATION_CPU_HIGH_THRESHOLD (\"thresholds.cpu_high\"): expected a number, got \"abc\""));
  CHECK_THAT(m, Catch::Contains("unknown variable AUTOMATION_DBB (did you mean \"AUTOMATION_DB\"?)"));
  CHECK_THAT(m, Catch::Contains("AUTOMATION_STORAGE_BUSY_TIMEOUT"));
}

TEST_CASE("malformed JSON is reported with line and column") {
  auto cfg = parse_config("{\n  \"db\": \"memory:\",\n  oops\n}", "bad.json", {});
  REQUIRE_FALSE(cfg);
  CHECK_THAT(cfg.error().message, Catch::Contains("bad.json: invalid JSON at line 3"));
  auto arr = parse_config("[1,2]", "arr.json", {});
  REQUIRE_FALSE(arr);
  CHECK_THAT(arr.error().message, Catch::Contains("expected a JSON object at the top level, got array"));
}

TEST_CASE("load_config reads files and reports a missing one") {
  test::TempDir dir;
  const auto path = dir.file("c.json");
  std::ofstream(path) << R"({"thresholds": {"disk_high": 95}})";
  auto cfg = load_config(path, {});
  REQUIRE(cfg);
  CHECK(cfg->thresholds.disk_high == 95);
  auto missing = load_config(dir.file("missing.json"), {});
  REQUIRE_FALSE(missing);
  CHECK(missing.error().is(errc::not_found));
  CHECK_THAT(missing.error().message, Catch::Contains("missing.json"));
  std::ofstream(dir.file("empty.json")) << "  \n";
  auto empty = load_config(dir.file("empty.json"), {});
  REQUIRE_FALSE(empty);
  CHECK_THAT(empty.error().message, Catch::Contains("empty"));
}

TEST_CASE("config_keys lists every key with its environment variable") {
  bool found = false;
  for (const auto& k : config_keys()) {
    CHECK_FALSE(k.env.empty());
    CHECK(k.env.rfind("AUTOMATION_", 0) == 0);
    if (k.path == "thresholds.cpu_high") {
      found = true;
      CHECK(k.env == "AUTOMATION_CPU_HIGH_THRESHOLD");
    }
  }
  CHECK(found);
}
