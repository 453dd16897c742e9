// autoctl serve as a real daemon on port 0: every route for every role, bad and oversized bodies,
// the command API, the audit trail, promtool and a real Prometheus scrape, SIGHUP with a broken
// configuration, and SIGTERM in the middle of a workflow run followed by a restart that recovers it.
#include <automation/core/json.hpp>

#include "support/autoctl.hpp"
#include "support/http_client.hpp"
#include "support/json_out.hpp"
#include "support/ports.hpp"
#include "support/process.hpp"
#include "support/served.hpp"
#include "support/temp_dir.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include <unistd.h>

using namespace automation;
using namespace std::chrono_literals;
using automation::test::autoctl;
using Catch::Matchers::Contains;
namespace bj = boost::json;

using test::audit_records;
using test::Served;

TEST_CASE("autoctl serve: only /healthz answers without a token, and each role reaches what it may") {
  Served s;
  s.start();
  CHECK(s.call("GET", "/healthz").status == 200);
  auto anonymous = s.call("GET", "/api/v1/status");
  CHECK(anonymous.status == 401);
  CHECK(Served::doc(anonymous).at("error").at("code") == "unauthenticated");
  CHECK(s.call("GET", "/readyz").status == 401);
  CHECK(s.call("GET", "/metrics").status == 401);
  CHECK(s.call("GET", "/api/v1/status", "atk_0000000000000000.wrong").status == 401);
  // A token with a wrong secret is refused like an unknown one.
  const auto forged = s.tokens["admin"].substr(0, s.tokens["admin"].find('.')) + ".00";
  CHECK(s.call("GET", "/api/v1/status", forged).status == 401);

  // Every read route, for every role; the audit trail and tokens only for admin.
  const std::vector<std::string> reads{"/readyz",
                                       "/metrics",
                                       "/api/v1/status",
                                       "/api/v1/automation/status",
                                       "/api/v1/stats",
                                       "/api/v1/jarvis/automation/stats",
                                       "/api/v1/automation/statistics",
                                       "/api/v1/workflows",
                                       "/api/v1/automation/workflows",
                                       "/api/v1/workflows/cleanup-resources",
                                       "/api/v1/runs",
                                       "/api/v1/automation/executions",
                                       "/api/v1/workflows/cleanup-resources/runs",
                                       "/api/v1/schedules",
                                       "/api/v1/circuit-breakers",
                                       "/api/v1/tasks/history",
                                       "/api/v1/tasks/stats",
                                       "/api/v1/scaling",
                                       "/api/v1/automation/scaling/metrics",
                                       "/api/v1/scaling/history",
                                       "/api/v1/automation/scaling/history",
                                       "/api/v1/health",
                                       "/api/v1/automation/health",
                                       "/api/v1/health/history",
                                       "/api/v1/alerts",
                                       "/api/v1/automation/registry/nodes",
                                       "/api/v1/registry/topology",
                                       "/api/v1/automation/discovery/services",
                                       "/api/v1/discovery/history"};
  const std::vector<std::string> admin_reads{"/api/v1/audit",           "/api/v1/automation/audit-logs",
                                             "/api/v1/security/events", "/api/v1/automation/security-events",
                                             "/api/v1/tokens",          "/api/v1/intelligence/insights"};
  for (const auto* role : {"viewer", "operator", "admin"}) {
    for (const auto& path : reads) {
      INFO(role << " GET " << path);
      CHECK(s.call("GET", path, role).status == 200);
    }
    for (const auto& path : admin_reads) {
      INFO(role << " GET " << path);
      CHECK(s.call("GET", path, role).status == (std::string(role) == "admin" ? 200 : 403));
    }
    INFO(role << " GET the suggestions (operator)");
    CHECK(s.call("GET", "/api/v1/automation/intelligence/suggestions", role).status == (std::string(role) == "viewer" ? 403 : 200));
  }
  auto status = Served::doc(s.call("GET", "/api/v1/status", "viewer"));
  CHECK(status.at("ready") == true);
  for (const auto* c : {"scheduler", "healer", "scaler", "collector", "api"}) CHECK(status.at("components").at(c).at("state") == "running");

  // Mutations: a viewer is refused (and audited), an operator runs a workflow.
  const auto run_path = "/api/v1/workflows/cleanup-resources/runs";
  auto refused = s.call("POST", run_path, "viewer", R"({"params": {"dry_run": "true"}})");
  CHECK(refused.status == 403);
  auto run = s.run_to_end(run_path, "operator", R"({"params": {"dry_run": "true"}, "wait": "20s"})", {{"X-Request-Id", "req-run-1"}});
  CHECK(run.at("state") == "succeeded");
  CHECK(run.at("trigger") == "api: token:operator-token");
  CHECK(run.at("correlation_id") == "req-run-1");
  const auto id = run.at("id").as_int64();
  auto detail = Served::doc(s.call("GET", fmt::format("/api/v1/runs/{}", id), "viewer"));
  CHECK(detail.at("steps").as_array().size() == 1);
  CHECK(s.call("GET", "/api/v1/runs/999999", "viewer").status == 404);
  CHECK(s.call("GET", "/api/v1/runs/abc", "viewer").status == 400);
  CHECK(s.call("GET", "/api/v1/workflows/no-such", "viewer").status == 404);
  CHECK(s.call("POST", "/api/v1/workflows/no-such/runs", "operator").status == 404);
  CHECK(s.call("DELETE", "/api/v1/runs", "admin").status == 405);

  // Pagination: two runs, one per page.
  CHECK(s.run_to_end(run_path, "operator", R"({"params": {"dry_run": "true"}, "wait": "20s"})").at("state") == "succeeded");
  auto first = Served::doc(s.call("GET", "/api/v1/runs?limit=1", "viewer"));
  CHECK(first.at("items").as_array().size() == 1);
  CHECK(first.at("next_offset") == 1);
  auto second = Served::doc(s.call("GET", "/api/v1/runs?limit=1&offset=1", "viewer"));
  CHECK(second.at("items").as_array()[0].at("id") == id);
  CHECK(second.at("next_offset").is_null());
  CHECK(s.call("GET", "/api/v1/runs?limit=0", "viewer").status == 400);

  // Breakers: reset needs operator; one that is not stored is 404 (and audited as a failure).
  CHECK(s.call("POST", "/api/v1/circuit-breakers/payments/force-open", "viewer").status == 403);
  CHECK(s.call("POST", "/api/v1/circuit-breakers/payments/force-open", "operator", R"({"reason": "maintenance"})").status == 200);
  auto b = Served::doc(s.call("GET", "/api/v1/circuit-breakers/payments", "viewer"));
  CHECK(b.at("state") == "forced_open");
  CHECK(s.call("POST", "/api/v1/circuit-breakers/payments/reset", "operator").status == 200);
  CHECK(s.call("POST", "/api/v1/circuit-breakers/none/reset", "operator").status == 404);

  // Health targets: pause and resume need operator.
  CHECK(s.call("POST", "/api/v1/health/disk/pause", "viewer").status == 403);
  CHECK(s.call("POST", "/api/v1/health/disk/pause", "operator", R"({"reason": "disk swap", "for": "10m"})").status == 200);
  CHECK(s.call("POST", "/api/v1/health/disk/resume", "operator").status == 200);
  CHECK(s.call("POST", "/api/v1/health/nope/pause", "operator").status == 404);

  // Tokens: admin only; a revoked token stops working at once.
  CHECK(s.call("POST", "/api/v1/tokens", "operator", R"({"name": "x", "role": "viewer"})").status == 403);
  auto created = s.call("POST", "/api/v1/tokens", "admin", R"({"name": "ci", "role": "viewer"})");
  REQUIRE(created.status == 201);
  const auto ci = std::string(Served::doc(created).at("token").as_string());
  const auto ci_id = std::string(Served::doc(created).at("id").as_string());
  CHECK(s.call("GET", "/api/v1/stats", ci).status == 200);
  CHECK(s.call("DELETE", "/api/v1/tokens/" + ci_id, "admin").status == 200);
  CHECK(s.call("GET", "/api/v1/stats", ci).status == 401);
  const auto listed = Served::doc(s.call("GET", "/api/v1/tokens", "admin")).at("items").as_array();
  for (const auto& t : listed) CHECK_FALSE(t.as_object().contains("token"));
  CHECK(s.call("POST", "/api/v1/tokens", "admin", R"({"name": "y", "role": "root"})").status == 400);

  // The audit trail: the run with its actor, source and correlation id; the refusals; the failed logins.
  auto runs = audit_records(s, "action=workflow.run");
  REQUIRE(runs.size() == 4);  // the viewer's refusal, two runs, the unknown workflow
  const bj::value* first_run = nullptr;
  int denied = 0, failed = 0;
  for (const auto& r : runs) {
    if (r.at("correlation_id") == "req-run-1") first_run = &r;
    denied += r.at("outcome") == "denied" && r.at("actor") == "token:viewer-token";
    failed += r.at("outcome") == "failure" && r.at("resource") == "workflow:no-such";
  }
  REQUIRE(first_run);
  CHECK(first_run->at("actor") == "token:operator-token");
  CHECK(first_run->at("outcome") == "success");
  CHECK(first_run->at("resource") == "workflow:cleanup-resources");
  CHECK_THAT(std::string(first_run->at("origin").as_string()), Contains("http 127.0.0.1:"));
  CHECK(denied == 1);
  CHECK(failed == 1);
  CHECK(audit_records(s, "action=auth.failed").size() == 6);
  bool read_denied = false;  // a read beyond the role is recorded too
  for (const auto& r : audit_records(s, "action=api.denied")) read_denied = read_denied || r.at("actor") == "token:viewer-token";
  CHECK(read_denied);
  CHECK(audit_records(s, "action=breaker.reset").size() == 2);
  CHECK(audit_records(s, "action=token.revoke").size() == 1);
  CHECK(s.stop() == 0);
}

TEST_CASE("autoctl serve: bad and oversized bodies are refused with the reason, and repeated failed logins are a security event") {
  Served s;
  s.start();
  auto bad = s.call("POST", "/api/v1/workflows/cleanup-resources/runs", "operator", "{not json");
  CHECK(bad.status == 400);
  CHECK_THAT(std::string(Served::doc(bad).at("error").at("message").as_string()), Contains("invalid JSON"));
  auto not_object = s.call("POST", "/api/v1/workflows/cleanup-resources/runs", "operator", "[1]");
  CHECK(not_object.status == 400);
  CHECK_THAT(std::string(Served::doc(not_object).at("error").at("message").as_string()), Contains("must be a JSON object"));
  auto bad_param = s.call("POST", "/api/v1/workflows/cleanup-resources/runs", "operator", R"({"params": {"dirs": [1]}})");
  CHECK(bad_param.status == 400);
  CHECK_THAT(std::string(Served::doc(bad_param).at("error").at("message").as_string()), Contains("params.dirs"));
  auto unknown_param = s.call("POST", "/api/v1/workflows/cleanup-resources/runs", "operator", R"({"params": {"nope": "1"}})");
  CHECK(unknown_param.status == 400);
  auto bad_wait = s.call("POST", "/api/v1/workflows/cleanup-resources/runs", "operator", R"({"wait": "forever"})");
  CHECK(bad_wait.status == 400);
  auto scale_unknown = s.call("POST", "/api/v1/scaling/web", "operator", R"({"action": "scale-up", "bogus": 1})");
  CHECK(scale_unknown.status == 400);
  CHECK_THAT(std::string(Served::doc(scale_unknown).at("error").at("message").as_string()), Contains("bogus"));
  CHECK(s.call("POST", "/api/v1/scaling/web", "operator", R"({"action": "scale-up"})").status == 404);
  auto huge = s.call("POST", "/api/v1/commands", "operator", std::string(2 << 20, 'x'));
  CHECK(huge.status == 413);
  CHECK(s.call("GET", "/api/v1/runs?since=yesterday", "viewer").status == 400);
  // Nothing was started by any of them.
  CHECK(Served::doc(s.call("GET", "/api/v1/runs", "viewer")).at("items").as_array().empty());

  for (int i = 0; i < 12; ++i) CHECK(s.call("GET", "/api/v1/stats", "atk_0000000000000000.bad").status == 401);
  const auto events = Served::doc(s.call("GET", "/api/v1/security/events", "admin")).at("items").as_array();
  int flags = 0;
  for (const auto& e : events) flags += e.at("action") == "security.auth_failures";
  CHECK(flags == 1);
  // After the flag, failures from that source are counted rather than written one by one.
  CHECK(audit_records(s, "action=auth.failed").size() == 10);
  CHECK(s.stop() == 0);
}

TEST_CASE("autoctl serve: the command API runs each command with the role it needs") {
  Served s;
  s.start();
  auto stats = s.call("POST", "/api/v1/commands", "viewer", R"({"module": "jarvis", "action": "get-stats"})");
  CHECK(stats.status == 200);
  CHECK(Served::doc(stats).at("workflows").at("defined").as_int64() > 5);
  CHECK(s.call("POST", "/api/v1/commands", "viewer", R"({"module": "jarvis", "action": "aggregate-metrics"})").status == 403);
  auto agg =
      s.call("POST", "/api/v1/commands", "operator",
             R"({"module": "jarvis", "action": "aggregate-metrics", "params": {"period": "daily", "date": "2026-01-05", "wait": "30s"}})");
  REQUIRE(agg.status == 200);
  CHECK(Served::doc(agg).at("run").at("workflow") == "daily-metrics-aggregation");
  CHECK(Served::doc(agg).at("run").at("state") == "succeeded");
  auto wf = s.call(
      "POST", "/api/v1/commands", "operator",
      R"({"module": "automation", "action": "execute-workflow", "params": {"workflow": "cleanup-resources", "params": {"dry_run": "true"}, "wait": "30s"}})");
  REQUIRE(wf.status == 200);
  CHECK(Served::doc(wf).at("run").at("params").at("dry_run") == "true");
  auto seed =
      s.call("POST", "/api/v1/jarvis/automation/aggregate", "operator", R"({"period": "weekly", "date": "2026-01-05", "wait": "30s"})");
  REQUIRE(seed.status == 200);
  CHECK(Served::doc(seed).at("run").at("params").at("period") == "weekly");
  auto scale =
      s.call("POST", "/api/v1/commands", "operator", R"({"module": "scaler", "action": "scale-resources", "params": {"resource": "web"}})");
  CHECK(scale.status == 404);
  auto unknown = s.call("POST", "/api/v1/commands", "operator", R"({"module": "x", "action": "launch-rockets"})");
  CHECK(unknown.status == 400);
  CHECK_THAT(std::string(Served::doc(unknown).at("error").at("message").as_string()), Contains("launch-rockets"));
  CHECK(s.call("POST", "/api/v1/commands", "operator", R"({"action": "get-stats", "extra": 1})").status == 400);
  CHECK(s.stop() == 0);
}

namespace {

/// GETs `url` until `done` says yes with the parsed answer (every 100 ms, up to `seconds`).
template <class Pred>
bool poll_json(int port, const std::string& path, Pred done, int seconds, std::vector<std::pair<std::string, std::string>> headers = {}) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto a = test::http_call(port, "GET", path, {}, headers, 5s); a && a->status == 200)
      if (auto d = json::parse(a->body); d && done(*d)) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

}  // namespace

TEST_CASE("autoctl serve: /metrics passes promtool, and a real Prometheus server scrapes it with a bearer token") {
  Served s;
  s.start();
  REQUIRE(
      s.call("POST", "/api/v1/workflows/cleanup-resources/runs", "operator", R"({"params": {"dry_run": "true"}, "wait": "20s"})").status ==
      200);
  REQUIRE(s.call("POST", "/api/v1/circuit-breakers/payments/force-open", "operator").status == 200);
  CHECK(s.call("GET", "/api/v1/stats", "atk_0000000000000000.bad").status == 401);
  auto m = s.call("GET", "/metrics", "viewer");
  REQUIRE(m.status == 200);
  for (const auto* line :
       {"# TYPE automation_build_info gauge", "automation_workflow_runs_total{workflow=\"cleanup-resources\",state=\"succeeded\"} 1",
        "automation_workflow_run_duration_seconds_count{workflow=\"cleanup-resources\"} 1",
        "automation_circuit_breaker_state{name=\"payments\",state=\"forced_open\"} 1", "# TYPE automation_health_target_up gauge",
        "automation_auth_failures_total 1", "automation_workflow_active_runs 0",
        "# TYPE automation_store_statement_duration_seconds histogram"}) {
    INFO(line << "\n" << m.body);
    CHECK(m.body.find(line) != std::string::npos);
  }
  // Statements were timed (the family alone is registered at start).
  const auto count_at = m.body.find("automation_store_statement_duration_seconds_count ");
  REQUIRE(count_at != std::string::npos);
  CHECK(std::stod(m.body.substr(count_at + std::string("automation_store_statement_duration_seconds_count ").size())) > 10);
  test::write_file(s.dir.file("metrics.txt"), m.body);
  auto check = test::run_process({"/bin/sh", "-c", fmt::format("{} check metrics < {}", PROMTOOL_PATH, s.dir.file("metrics.txt"))});
  INFO(check.out << check.err);
  CHECK(check.exit_code == 0);

  // A real Prometheus, scraping every second with the viewer's token.
  const int prom_port = test::free_port();
  test::write_file(s.dir.file("token.txt"), s.tokens["viewer"]);
  test::write_file(s.dir.file("prometheus.yml"), fmt::format(R"(global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: automation
    authorization:
      type: Bearer
      credentials_file: {}
    static_configs:
      - targets: ['127.0.0.1:{}']
)",
                                                             s.dir.file("token.txt"), s.port));
  const auto prometheus = std::filesystem::path(PROMTOOL_PATH).parent_path() / "prometheus";
  test::BackgroundProcess prom({prometheus.string(), "--config.file=" + s.dir.file("prometheus.yml"),
                                "--storage.tsdb.path=" + s.dir.file("tsdb"), fmt::format("--web.listen-address=127.0.0.1:{}", prom_port)},
                               {}, s.cwd(), s.dir.file("prometheus.log"));
  const auto query = [](std::string q) { return "/api/v1/query?query=" + q; };
  const bool scraped = poll_json(
      prom_port, query("automation_build_info"),
      [](const bj::value& d) {
        const auto& r = d.at("data").at("result").as_array();
        return !r.empty() && r[0].at("value").as_array()[1] == "1" && r[0].at("metric").at("job") == "automation";
      },
      60);
  INFO(test::read_file(s.dir.file("prometheus.log")));
  CHECK(scraped);
  CHECK(poll_json(
      prom_port, query("up"),
      [](const bj::value& d) {
        const auto& r = d.at("data").at("result").as_array();
        return !r.empty() && r[0].at("value").as_array()[1] == "1";
      },
      10));
  CHECK(poll_json(
      prom_port, query("automation_circuit_breaker_state%7Bname%3D%22payments%22%2Cstate%3D%22forced_open%22%7D"),
      [](const bj::value& d) { return !d.at("data").at("result").as_array().empty(); }, 10));
  CHECK(s.stop() == 0);
}

TEST_CASE("autoctl serve: SIGHUP with a broken configuration keeps the old one, a good one is applied") {
  Served s(R"({"thresholds": {"cpu_high": 80}})");
  s.start();
  const std::vector<std::pair<std::string, std::string>> admin{{"Authorization", "Bearer " + s.tokens["admin"]}};
  auto reloads = [&](std::size_t n) {
    return poll_json(
        s.port, "/api/v1/audit?action=daemon.reload", [&](const bj::value& d) { return d.at("items").as_array().size() >= n; }, 30, admin);
  };
  test::write_file(s.dir.file("config.json"), R"({"thresholds": {"cpu_high": )");
  s.daemon->signal(SIGHUP);
  REQUIRE(reloads(1));
  auto first = Served::doc(s.call("GET", "/api/v1/audit?action=daemon.reload", "admin")).at("items").as_array();
  CHECK(first[0].at("outcome") == "failure");
  CHECK_THAT(std::string(first[0].at("details").at("error").as_string()), Contains("config.json"));
  CHECK(s.call("GET", "/readyz", "viewer").status == 200);
  // A key the schema does not know is refused too.
  test::write_file(s.dir.file("config.json"), R"({"thresholds": {"cpu_hi": 70}})");
  s.daemon->signal(SIGHUP);
  REQUIRE(reloads(2));
  CHECK(Served::doc(s.call("GET", "/api/v1/audit?action=daemon.reload", "admin")).at("items").as_array()[0].at("outcome") == "failure");
  test::write_file(s.dir.file("config.json"), R"({"thresholds": {"cpu_high": 70}, "workflows_dir": "elsewhere"})");
  s.daemon->signal(SIGHUP);
  REQUIRE(reloads(3));
  auto good = Served::doc(s.call("GET", "/api/v1/audit?action=daemon.reload", "admin")).at("items").as_array()[0];
  CHECK(good.at("outcome") == "success");
  const auto& restart = good.at("details").at("restart_needed_for").as_array();
  CHECK(restart.size() == 2);
  CHECK(std::find(restart.begin(), restart.end(), bj::value("workflows_dir")) != restart.end());
  CHECK(std::find(restart.begin(), restart.end(), bj::value("thresholds.cpu_high")) != restart.end());
  // A scaling file that does not load is refused and the resources in effect stay.
  test::write_file(s.dir.file("scaling.json"),
                   R"({"resources": [{"name": "web", "actuator": {"type": "command", "resize": ["true"], "status": ["echo", "2"]}}]})");
  test::write_file(s.dir.file("config.json"),
                   R"({"thresholds": {"cpu_high": 70}, "workflows_dir": "elsewhere", "scaling": {"resources_file": "scaling.json"}})");
  s.daemon->signal(SIGHUP);
  REQUIRE(reloads(4));
  auto scaled = Served::doc(s.call("GET", "/api/v1/scaling", "viewer")).at("items").as_array();
  REQUIRE(scaled.size() == 1);
  CHECK(scaled[0].at("resource") == "web");
  test::write_file(s.dir.file("scaling.json"), R"({"resources": [{"name": "web", "actuator": {"type": "teleporter"}}]})");
  s.daemon->signal(SIGHUP);
  REQUIRE(reloads(5));
  auto refused = Served::doc(s.call("GET", "/api/v1/audit?action=daemon.reload", "admin")).at("items").as_array()[0];
  CHECK(refused.at("outcome") == "failure");
  CHECK_THAT(std::string(refused.at("details").at("error").as_string()), Contains("scaling.json"));
  CHECK(Served::doc(s.call("GET", "/api/v1/scaling", "viewer")).at("items").as_array().size() == 1);
  CHECK(s.call("GET", "/api/v1/status", "viewer").status == 200);
  CHECK(s.stop() == 0);
}

TEST_CASE("autoctl serve: SIGTERM in the middle of a run records it interrupted, and the restarted daemon finishes it") {
  Served s(R"({"server": {"drain_timeout": "0s"}})");
  const auto started = s.dir.file("started.flag"), done = s.dir.file("done.flag");
  test::write_file(s.dir.file("workflows/slow.json"), fmt::format(R"({{"name": "slow", "on_interrupt": "resume", "steps": [
      {{"id": "work", "shell": "test -f {1} && exit 0; echo $$ > {0}; sleep 60"}}]}})",
                                                                  started, done));
  s.start();
  auto queued = s.call("POST", "/api/v1/workflows/slow/runs", "operator");
  REQUIRE(queued.status == 202);
  const auto id = Served::doc(queued).at("run").at("id").as_int64();
  for (int i = 0; i < 3000 && !std::filesystem::exists(started); ++i) std::this_thread::sleep_for(10ms);
  for (int i = 0; i < 3000 && test::read_file(started).empty(); ++i) std::this_thread::sleep_for(10ms);
  const int step_pid = std::stoi(test::read_file(started));
  CHECK(s.stop() == 0);
  CHECK(::kill(step_pid, 0) == -1);  // the step's process group was killed with the engine

  auto status = autoctl({"--json", "workflow", "status", std::to_string(id)}, s.env, s.cwd());
  INFO(status.out << status.err);
  CHECK(test::json_out(status).at("state") == "interrupted");
  auto stop = autoctl({"--json", "audit", "list", "--action", "daemon.stop"}, s.env, s.cwd());
  auto records = test::json_out(stop).at("records").as_array();
  REQUIRE(records.size() == 1);
  CHECK(records[0].at("details").at("interrupted_runs").as_array()[0] == id);

  test::write_file(done, "");
  s.start();
  const bool finished =
      poll_json(s.port, fmt::format("/api/v1/runs/{}", id), [](const bj::value& d) { return d.at("state") == "succeeded"; }, 60,
                {{"Authorization", "Bearer " + s.tokens["viewer"]}});
  INFO(s.log());
  CHECK(finished);
  CHECK(s.stop() == 0);
}

TEST_CASE("autoctl serve: docs/openapi.json describes exactly the routes the daemon serves, and the daemon serves it") {
  auto routes = autoctl({"serve", "--routes"});
  REQUIRE(routes.exit_code == 0);
  std::set<std::string> served;
  std::istringstream lines(routes.out);
  for (std::string line; std::getline(lines, line);) {
    // "GET /api/v1/runs/:id viewer" -> "get /api/v1/runs/{id} viewer"
    std::istringstream fields(line);
    std::string method, path, role, out;
    fields >> method >> path >> role;
    for (auto& c : method) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::istringstream segs(path);
    for (std::string seg; std::getline(segs, seg, '/');)
      if (!seg.empty()) out += "/" + (seg[0] == ':' ? "{" + seg.substr(1) + "}" : seg);
    served.insert(method + " " + (out.empty() ? "/" : out) + " " + role);
  }
  auto doc = json::parse(test::read_file(std::string(AUTOMATION_SOURCE_DIR) + "/docs/openapi.json"));
  REQUIRE(doc);
  std::set<std::string> documented;
  for (const auto& [path, ops] : doc->at("paths").as_object())
    for (const auto& [method, op] : ops.as_object()) {
      INFO(path << " " << method);
      REQUIRE(op.as_object().contains("x-role"));
      CHECK(op.as_object().contains("summary"));
      documented.insert(std::string(method) + " " + std::string(path) + " " + std::string(op.at("x-role").as_string()));
    }
  CHECK(served == documented);
  CHECK(served.size() > 50);

  Served s;
  s.start();
  auto served_doc = s.call("GET", "/api/v1/openapi.json", "viewer");
  REQUIRE(served_doc.status == 200);
  CHECK(Served::doc(served_doc) == *doc);
  CHECK(s.stop() == 0);
}

TEST_CASE("autoctl serve: requests that wait for runs are capped, so they cannot take every loop thread") {
  Served s(R"({"server": {"threads": 2}})");  // at most one waiting request (half the threads)
  const auto done = s.dir.file("done.flag");
  test::write_file(
      s.dir.file("workflows/gate.json"),
      fmt::format(R"({{"name": "gate", "steps": [{{"id": "wait", "shell": "while [ ! -f {} ]; do sleep 0.05; done"}}]}})", done));
  s.start();
  Result<detail::HttpAnswer> first = automation::fail(errc::internal, "not called");
  std::thread waiter([&] { first = s.call_quietly("POST", "/api/v1/workflows/gate/runs", "operator", R"({"wait": "60s"})"); });
  // The first request is waiting once its run is running.
  const bool running =
      poll_json(s.port, "/api/v1/runs?state=running", [](const bj::value& d) { return d.at("items").as_array().size() == 1; }, 30,
                {{"Authorization", "Bearer " + s.tokens["viewer"]}});
  CHECK(running);
  const bool holding =
      poll_json(s.port, "/api/v1/status", [](const bj::value& d) { return d.at("components").at("api").at("waiting_requests") == 1; }, 30,
                {{"Authorization", "Bearer " + s.tokens["viewer"]}});
  CHECK(holding);
  auto second = s.call("POST", "/api/v1/workflows/gate/runs", "operator", R"({"wait": "60s"})");
  CHECK(second.status == 202);  // answered at once, not after the gate opens
  CHECK(Served::doc(second).at("run").at("state") != "succeeded");
  CHECK(s.call("GET", "/api/v1/status", "viewer").status == 200);  // the loop still serves
  test::write_file(done, "");
  waiter.join();
  REQUIRE(first);
  CHECK(first->status == 200);
  CHECK(Served::doc(*first).at("run").at("state") == "succeeded");
  CHECK(s.stop() == 0);
}

TEST_CASE("autoctl --server: commands go through the daemon's API with a token, and the others are refused") {
  Served s;
  s.start();
  const auto url = fmt::format("http://127.0.0.1:{}", s.port);
  auto as = [&](std::string role, std::vector<std::string> args, std::map<std::string, std::string> extra = {}) {
    std::vector<std::string> argv{"--server", url};
    if (!role.empty()) argv.insert(argv.end(), {"--token", s.tokens[role]});
    argv.insert(argv.end(), args.begin(), args.end());
    // No store here: whatever works, works through the daemon.
    std::map<std::string, std::string> env{{"AUTOMATION_DB", "sqlite:" + s.dir.file("elsewhere/none.db")}};
    env.insert(extra.begin(), extra.end());
    return autoctl(argv, env, s.cwd());
  };
  auto status = as("viewer", {"status"});
  INFO(status.err);
  REQUIRE(status.exit_code == 0);
  CHECK(test::json_out(status).at("ready") == true);
  auto anonymous = as("", {"status"});
  CHECK(anonymous.exit_code == 77);
  CHECK_THAT(anonymous.err, Contains("401"));

  auto run = as("operator", {"workflow", "run", "cleanup-resources", "-p", "dry_run=true"}, {{"AUTOCTL_CORRELATION_ID", "cli-corr-7"}});
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  auto doc = test::json_out(run);
  CHECK(doc.at("state") == "succeeded");
  CHECK(doc.at("trigger") == "api: token:operator-token");
  CHECK(doc.at("correlation_id") == "cli-corr-7");
  CHECK(test::json_out(as("viewer", {"workflow", "history"})).at("items").as_array().size() == 1);
  CHECK(test::json_out(as("viewer", {"workflow", "status", std::to_string(doc.at("id").as_int64())})).at("steps").as_array().size() == 1);

  CHECK(as("viewer", {"breaker", "force-open", "payments"}).exit_code == 77);  // a viewer may not
  REQUIRE(as("operator", {"breaker", "force-open", "payments", "--reason", "drill"}).exit_code == 0);
  CHECK(test::json_out(as("viewer", {"breaker", "status", "payments"})).at("state") == "forced_open");
  CHECK(as("operator", {"schedule", "pause", "auto_backup", "--reason", "drill"}).exit_code == 0);
  auto schedules = test::json_out(as("viewer", {"schedule", "list"}));
  bool paused = false;
  for (const auto& sc : schedules.at("items").as_array()) paused = paused || (sc.at("name") == "auto_backup" && sc.at("state") == "paused");
  CHECK(paused);
  auto health = as("viewer", {"health"});
  CHECK(health.exit_code == (test::json_out(health).at("healthy") == true ? 0 : 1));  // exit 1 when a target is not healthy
  CHECK(test::json_out(health).at("items").as_array().size() == 3);
  CHECK(as("operator", {"scale", "--resource", "web", "--action", "scale-up"}).exit_code == 66);
  CHECK(as("viewer", {"scale", "status"}).exit_code == 0);

  // The audit trail, read through the API, has the run with this command's correlation id.
  auto audit = as("admin", {"audit", "list", "--action", "workflow.run"});
  REQUIRE(audit.exit_code == 0);
  CHECK(test::json_out(audit).at("items").as_array()[0].at("correlation_id") == "cli-corr-7");
  CHECK(as("viewer", {"audit", "list"}).exit_code == 77);

  // Tokens through the API.
  auto made = as("admin", {"token", "create", "--name", "remote-made", "--role", "viewer"});
  REQUIRE(made.exit_code == 0);
  const auto token = made.out.substr(0, made.out.find('\n'));
  CHECK(s.call("GET", "/api/v1/stats", token).status == 200);
  CHECK(as("admin", {"token", "revoke", "remote-made"}).exit_code == 0);
  CHECK(s.call("GET", "/api/v1/stats", token).status == 401);

  // What has no route is refused, not run against some other store.
  auto ingest = as("operator", {"ingest", "events", "x.csv"});
  CHECK(ingest.exit_code == 64);
  CHECK_THAT(ingest.err, Contains("--server"));
  CHECK_FALSE(std::filesystem::exists(s.dir.file("elsewhere/none.db")));
  CHECK(s.stop() == 0);
  auto gone = as("viewer", {"status"});
  CHECK(gone.exit_code == 69);
}

TEST_CASE("autoctl serve: every route refuses a caller without a token (401) and each role below its own (403)") {
  auto routes = autoctl({"serve", "--routes"});
  REQUIRE(routes.exit_code == 0);
  Served s;
  s.start();
  const std::vector<std::string> order{"viewer", "operator", "admin"};
  std::istringstream lines(routes.out);
  int checked = 0;
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string method, pattern, role;
    fields >> method >> pattern >> role;
    if (role == "none") continue;
    std::string path;
    std::istringstream segs(pattern);
    for (std::string seg; std::getline(segs, seg, '/');) {
      if (seg.empty()) continue;
      if (seg[0] != ':')
        path += "/" + seg;
      else
        path += seg == ":id" ? "/1" : seg == ":name" ? "/cleanup-resources" : seg == ":target" ? "/disk" : "/web";
    }
    INFO(line);
    CHECK(s.call(method, path).status == 401);
    const auto rank = std::find(order.begin(), order.end(), role) - order.begin();
    REQUIRE(rank < 3);
    for (std::ptrdiff_t below = 0; below < rank; ++below) {
      INFO(order[below]);
      CHECK(s.call(method, path, order[below], "{}").status == 403);
    }
    ++checked;
  }
  CHECK(checked > 55);
  CHECK(s.stop() == 0);
}

TEST_CASE("autoctl timeline: what happened around a failed run, from the store and through the daemon") {
  Served s;
  test::write_file(s.dir.file("workflows/flaky.json"), R"({"name": "flaky", "steps": [{"id": "go", "shell": "echo boom >&2; exit 3"}]})");
  REQUIRE(autoctl({"breaker", "force-open", "payments", "--reason", "provider incident"}, s.env, s.cwd()).exit_code == 0);
  auto run = autoctl({"--json", "workflow", "run", "flaky"}, s.env, s.cwd());
  CHECK(run.exit_code == 1);
  const auto id = test::json_out(run).at("id").as_int64();
  auto local = autoctl({"--json", "timeline", "--run", std::to_string(id)}, s.env, s.cwd());
  INFO(local.err);
  REQUIRE(local.exit_code == 0);
  auto doc = test::json_out(local);
  CHECK(doc.at("focus") == bj::value(fmt::format("run:{}", id)));
  bool failed = false, forced = false;
  for (const auto& e : doc.at("entries").as_array()) {
    failed = failed || (e.at("kind") == "run.failed" && e.as_object().contains("focus"));
    forced = forced || (e.at("kind") == "breaker.force_open" && e.at("source") == "audit");
  }
  CHECK(failed);
  CHECK(forced);
  auto text = autoctl({"timeline", "--run", std::to_string(id)}, s.env, s.cwd());
  CHECK_THAT(text.out, Contains("run.failed"));
  CHECK(autoctl({"timeline"}, s.env, s.cwd()).exit_code == 65);
  CHECK(autoctl({"timeline", "--run", "999"}, s.env, s.cwd()).exit_code == 66);

  s.start();
  auto api = s.call("GET", fmt::format("/api/v1/intelligence/timeline?run={}", id), "viewer");
  REQUIRE(api.status == 200);
  // The same story, and what the daemon recorded since (its start, the healer's first states).
  const auto served = Served::doc(api);
  CHECK(served.at("entries").as_array().size() >= doc.at("entries").as_array().size());
  bool daemon_started = false;
  for (const auto& e : served.at("entries").as_array()) daemon_started = daemon_started || e.at("kind") == "daemon.start";
  CHECK(daemon_started);
  CHECK(s.call("GET", "/api/v1/automation/incidents/timeline?since=1h", "viewer").status == 200);
  CHECK(s.call("GET", "/api/v1/intelligence/timeline", "viewer").status == 400);
  CHECK(s.call("GET", "/api/v1/intelligence/timeline?run=1&alert=1", "viewer").status == 400);
  auto remote = autoctl(
      {"--server", fmt::format("http://127.0.0.1:{}", s.port), "--token", s.tokens["viewer"], "timeline", "--run", std::to_string(id)}, {},
      s.cwd());
  REQUIRE(remote.exit_code == 0);
  CHECK(test::json_out(remote).at("focus") == bj::value(fmt::format("run:{}", id)));
  CHECK(s.stop() == 0);
}

TEST_CASE("autoctl serve: SIGTERM drains: not ready, no new runs, and a run that ends within the grace is not interrupted") {
  Served s(R"({"server": {"drain_timeout": "60s"}})");
  const auto done = s.dir.file("done.flag");
  test::write_file(
      s.dir.file("workflows/gate.json"),
      fmt::format(R"({{"name": "gate", "steps": [{{"id": "wait", "shell": "while [ ! -f {} ]; do sleep 0.05; done"}}]}})", done));
  s.start();
  auto queued = s.call("POST", "/api/v1/workflows/gate/runs", "operator");
  REQUIRE(queued.status == 202);
  const auto id = Served::doc(queued).at("run").at("id").as_int64();
  REQUIRE(poll_json(s.port, fmt::format("/api/v1/runs/{}", id), [](const bj::value& d) { return d.at("state") == "running"; }, 30,
                    {{"Authorization", "Bearer " + s.tokens["viewer"]}}));
  s.daemon->signal(SIGTERM);
  // Draining: /readyz says so (every 10 ms, up to 30 s), and no run starts.
  bool draining = false;
  for (int i = 0; i < 3000 && !draining; ++i) {
    draining = s.call("GET", "/readyz", "viewer").status == 503;
    if (!draining) std::this_thread::sleep_for(10ms);
  }
  CHECK(draining);
  CHECK(s.call("POST", "/api/v1/workflows/cleanup-resources/runs", "operator").status == 503);
  test::write_file(done, "");  // the run ends within the grace
  CHECK(s.daemon->wait(60) == 0);
  auto status = test::json_out(autoctl({"--json", "workflow", "status", std::to_string(id)}, s.env, s.cwd()));
  CHECK(status.at("state") == "succeeded");
  auto stop = test::json_out(autoctl({"--json", "audit", "list", "--action", "daemon.stop"}, s.env, s.cwd()));
  REQUIRE(stop.at("records").as_array().size() == 1);
  CHECK(stop.at("records").as_array()[0].at("details").at("interrupted_runs").as_array().empty());
}
