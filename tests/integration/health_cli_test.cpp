// autoctl health and autoctl heal against real probes, a real supervised service that keeps dying,
// and a real SQLite store.
#include <automation/core/json.hpp>

#include "support/autoctl.hpp"
#include "support/http_server.hpp"
#include "support/json_out.hpp"
#include "support/temp_dir.hpp"

#include <fmt/format.h>
#include <catch2/catch.hpp>

using namespace automation;
using automation::test::autoctl;
using automation::test::json_out;
using Catch::Matchers::Contains;

TEST_CASE("autoctl health: every target's probe now, exit 1 when one fails, and errors in the file named") {
  test::TempDir dir;
  test::HttpServer server([](const std::string& req) {
    return req.find("GET /down") == 0 ? test::HttpReply{503, "down"} : test::HttpReply{200, "ok"};
  });
  test::write_file(dir.file("healing.json"), fmt::format(R"({{"seeds": false, "targets": [
    {{"name": "api", "liveness": {{"type": "http", "url": "{0}/health", "body": "ok"}}}},
    {{"name": "port", "liveness": {{"type": "tcp", "port": {1}}}}},
    {{"name": "search", "liveness": {{"type": "http", "url": "{0}/down"}}, "depends_on": ["api"]}}]}})",
                                                         server.url(), server.port()));
  const std::map<std::string, std::string> env{{"AUTOMATION_DB", "sqlite:" + dir.file("h.db")}};
  const auto cwd = dir.path().string();
  auto all = autoctl({"health", "--json"}, env, cwd);
  INFO(all.err);
  CHECK(all.exit_code == 1);
  auto doc = json_out(all);
  CHECK(doc.at("healthy") == false);
  const auto& targets = doc.at("targets").as_array();
  REQUIRE(targets.size() == 3);
  CHECK(targets[0].at("live") == true);
  CHECK(targets[1].at("live") == true);
  CHECK(targets[2].at("live") == false);
  CHECK_THAT(std::string(targets[2].at("detail").as_string()), Contains("status 503"));
  auto one = autoctl({"health", "api"}, env, cwd);
  CHECK(one.exit_code == 0);
  CHECK_THAT(one.out, Contains("ok: GET") && Contains("status 200"));
  CHECK(autoctl({"health", "nope"}, env, cwd).exit_code == 66);

  test::write_file(dir.file("healing.json"), R"({"targets": [{"name": "x", "liveness": {"type": "tcp", "port": 0}}]})");
  auto broken = autoctl({"health"}, env, cwd);
  CHECK(broken.exit_code == 78);
  CHECK_THAT(broken.err, Contains("target \"x\" liveness") && Contains("port"));
  test::write_file(dir.file("healing.json"),
                   R"({"targets": [{"name": "x", "liveness": {"type": "tcp", "port": 1}, "depends_on": ["y"]}]})");
  broken = autoctl({"health"}, env, cwd);
  CHECK(broken.exit_code == 78);
  CHECK_THAT(broken.err, Contains("depends on \"y\", which is not a target"));
}

TEST_CASE("autoctl heal run: a supervised service that keeps dying is restarted until its budget is spent, then quarantined") {
  test::TempDir dir;
  test::write_file(dir.file("healing.json"), R"({"seeds": false,
    "services": [{"name": "flaky", "command": ["sh", "-c", "echo started; exit 1"]}],
    "targets": [{"name": "flaky", "service": "flaky",
                 "liveness": {"type": "process", "service": "flaky", "interval": "100ms", "failure_threshold": 1},
                 "ladder": [{"action": "restart", "verify": "100ms"}, {"action": "restart", "verify": "100ms"},
                            {"action": "restart", "verify": "100ms"}],
                 "backoff": {"initial": "100ms", "cap": "200ms"},
                 "budget": {"restarts": 2, "window": "1h"}}]})");
  const std::map<std::string, std::string> env{{"AUTOMATION_DB", "sqlite:" + dir.file("h.db")}};
  const auto cwd = dir.path().string();
  auto run = autoctl({"heal", "run", "--for", "3s"}, env, cwd);
  INFO(run.err);
  CHECK(run.exit_code == 0);
  CHECK_THAT(run.err, Contains("started service flaky") && Contains("health quarantined: flaky"));
  CHECK_THAT(run.out, Contains("restart succeeded") && Contains("quarantined"));
  CHECK_THAT(test::read_file(dir.file("var/log/flaky.log")), Contains("started"));

  auto history = autoctl({"heal", "history", "flaky", "--actions", "--json"}, env, cwd);
  REQUIRE(history.exit_code == 0);
  const auto hdoc = json_out(history);
  const auto& actions = hdoc.at("history").as_array();
  REQUIRE(actions.size() == 3);  // two restarts, then the quarantine
  CHECK(actions[0].at("action") == "restart");
  CHECK(actions[1].at("action") == "restart");
  CHECK(actions[2].at("action") == "quarantine");
  CHECK_THAT(std::string(actions[2].at("reason").as_string()), Contains("the restart budget is spent: 2 restarts within 1h"));

  // The operator pauses and resumes it; both are recorded and audited.
  auto pause = autoctl({"heal", "pause", "flaky", "--for", "1h", "--reason", "investigating"}, env, cwd);
  INFO(pause.err);
  CHECK(pause.exit_code == 0);
  CHECK_THAT(pause.out, Contains("flaky paused until"));
  CHECK(autoctl({"heal", "resume", "flaky"}, env, cwd).exit_code == 0);
  auto unknown = autoctl({"heal", "pause", "nope"}, env, cwd);
  CHECK(unknown.exit_code == 66);
  CHECK_THAT(unknown.err, Contains("targets: flaky"));
  auto all = autoctl({"heal", "history"}, env, cwd);
  CHECK_THAT(all.out, Contains("pause") && Contains("investigating") && Contains("resume"));
  auto audit = autoctl({"audit", "list"}, env, cwd);
  CHECK_THAT(audit.out, Contains("heal.pause") && Contains("heal.resume"));
  auto health = autoctl({"health", "flaky"}, env, cwd);
  CHECK_THAT(health.out, Contains("healer: quarantined") || Contains("healer: unhealthy"));
}
