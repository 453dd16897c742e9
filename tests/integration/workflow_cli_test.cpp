// autoctl cron against the real binary.
#include "support/autoctl.hpp"
#include "support/json_out.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

#include <fstream>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

using automation::test::json_out;

using automation::test::autoctl;

TEST_CASE("cli: cron next prints fire times in a zone across a DST change", "[cron]") {
  auto r = autoctl({"--json", "cron", "next", "30 2 * * *", "--tz", "America/New_York", "--from", "2026-03-07T12:00:00Z", "--count", "2"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto doc = json_out(r);
  CHECK(doc.at("normalized").as_string() == "0 30 2 * * *");
  CHECK(doc.at("fixed_time").as_bool());
  const auto& next = doc.at("next").as_array();
  REQUIRE(next.size() == 2);
  CHECK(next[0].at("utc").as_string() == "2026-03-08T07:00:00Z");  // the skipped 02:30 runs as the gap ends
  CHECK(next[0].at("local").as_string() == "2026-03-08T03:00:00-04:00");
  CHECK(next[1].at("utc").as_string() == "2026-03-09T06:30:00Z");

  auto text = autoctl({"cron", "next", "daily at 03:00", "--from", "2026-06-01T04:00:00Z", "--count", "1"});
  CHECK(text.exit_code == 0);
  CHECK(text.out == "2026-06-02T03:00:00+00:00  (2026-06-02T03:00:00Z)\n");

  // Without --tz, the configured time zone.
  auto configured =
      autoctl({"cron", "next", "0 9 * * *", "--from", "2026-01-01T00:00:00Z", "--count", "1"}, {{"AUTOMATION_TIME_ZONE", "Etc/GMT-3"}});
  INFO(configured.err);
  CHECK(configured.out == "2026-01-01T09:00:00+03:00  (2026-01-01T06:00:00Z)\n");
}

TEST_CASE("cli: cron next refuses bad input with exit 65, and says so when an expression never fires", "[cron]") {
  auto bad = autoctl({"cron", "next", "*/0 * * * *"});
  CHECK(bad.exit_code == 65);
  CHECK_THAT(bad.err, Catch::Contains("minute field \"*/0\": a step must be at least 1"));
  auto zone = autoctl({"cron", "next", "@daily", "--tz", "Mars/Olympus"});
  CHECK(zone.exit_code == 65);
  CHECK_THAT(zone.err, Catch::Contains("--tz"));
  auto never = autoctl({"cron", "next", "0 0 30 2 *"});
  CHECK(never.exit_code == 1);
  CHECK_THAT(never.err, Catch::Contains("never fires"));
}

TEST_CASE("cli: workflow validate accepts a good file and lists every problem of a bad one", "[workflow]") {
  automation::test::TempDir dir;
  const auto good = dir.file("good.json"), bad = dir.file("bad.json");
  std::ofstream(good)
      << R"json({"name": "nightly", "steps": [{"id": "b", "run": ["true"], "needs": ["a"]}, {"id": "a", "run": ["true"]}]})json";
  std::ofstream(bad)
      << R"json({"name": "nightly", "steps": [{"id": "a", "run": ["true"], "needs": ["b"]}, {"id": "b", "run": ["true"], "needs": ["a"]}, {"id": "c"}]})json";
  auto ok = autoctl({"workflow", "validate", good});
  INFO(ok.err);
  CHECK(ok.exit_code == 0);
  CHECK_THAT(ok.out, Catch::Contains("workflow \"nightly\" is valid: 2 steps (a -> b)"));
  auto no = autoctl({"workflow", "validate", bad});
  CHECK(no.exit_code == 65);
  CHECK_THAT(no.err, Catch::Contains("2 problems"));
  CHECK_THAT(no.err, Catch::Contains("dependency cycle: a -> b -> a"));
  CHECK_THAT(no.err, Catch::Contains("$.steps[2]: needs one of run, shell, callback, http, workflow or action"));
  auto missing = autoctl({"workflow", "validate", dir.file("nope.json")});
  CHECK(missing.exit_code == 66);
}
