// The registry, discovery and the advisor through a real daemon and through the command line:
// nodes registering and beating over HTTP, the daemon's own node, a scan finding a real HTTP server
// the test starts, and suggestions from a seeded history applied and run at once.
#include <automation/core/json.hpp>
#include <automation/storage/store.hpp>

#include "support/autoctl.hpp"
#include "support/http_server.hpp"
#include "support/json_out.hpp"
#include "support/ports.hpp"
#include "support/served.hpp"
#include "support/temp_dir.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

using namespace automation;
using namespace std::chrono_literals;
using automation::test::audit_records;
using automation::test::autoctl;
using automation::test::Served;
using Catch::Matchers::Contains;
namespace bj = boost::json;

namespace {

const bj::value* node(const bj::value& doc, std::string_view key, std::string_view id) {
  for (const auto& n : doc.at(key).as_array())
    if (n.at("id") == bj::value(id)) return &n;
  return nullptr;
}

// alice, on each of the last three mornings at 09:00 UTC: hello, then bye, by hand.
void seed_habit(const std::string& db) {
  auto store = storage::open_store("sqlite:" + db);
  REQUIRE(store);
  const auto today = std::chrono::floor<std::chrono::days>(SystemClock::instance().now());
  std::vector<storage::AuditRecord> records;
  for (int d = 1; d <= 3; ++d)
    for (const auto* w : {"hello", "bye"}) {
      storage::AuditRecord a;
      a.time = TimePoint(today - std::chrono::days(d) + 9h + std::chrono::minutes(records.size() % 2));
      a.actor = "user:alice";
      a.action = "workflow.run";
      a.resource = std::string("workflow:") + w;
      a.origin = "test";
      records.push_back(std::move(a));
    }
  REQUIRE((*store)->append_audit(records));
}

void write_workflows(const test::TempDir& dir) {
  test::write_file(dir.file("workflows/hello.json"), R"({"name":"hello","steps":[{"id":"say","run":["true"]}]})");
  test::write_file(dir.file("workflows/bye.json"), R"({"name":"bye","steps":[{"id":"say","run":["true"]}]})");
}

}  // namespace

TEST_CASE("autoctl serve: nodes register and beat through the API, the daemon is a node itself, and the topology shows the edges") {
  Served s(R"({"registry": {"check_interval": "1s"}, "discovery": {"interval": "0"}})");
  s.start();
  const std::string web =
      R"({"kind":"host","address":"10.0.0.7","ttl":"1h","services":[{"name":"api","port":8080,"depends_on":["db/postgres"]}],
                              "depends_on":["db"]})";
  CHECK(s.call("POST", "/api/v1/automation/registry/nodes/web1", "viewer", web).status == 403);
  auto bad = s.call("POST", "/api/v1/automation/registry/nodes/web1", "operator", R"({"services":[{"name":"api","port":0}]})");
  CHECK(bad.status == 400);
  CHECK_THAT(std::string(Served::doc(bad).at("error").at("message").as_string()), Contains("port"));
  auto registered = s.call("POST", "/api/v1/automation/registry/nodes/web1", "operator", web);
  REQUIRE(registered.status == 200);
  CHECK(Served::doc(registered).at("state") == "up");
  REQUIRE(s.call("POST", "/api/v1/registry/nodes/db", "operator", R"({"services":[{"name":"postgres","port":5432}]})").status == 200);
  CHECK(s.call("POST", "/api/v1/automation/registry/nodes/ghost/heartbeat", "operator").status == 404);
  auto beat = s.call("POST", "/api/v1/automation/registry/nodes/web1/heartbeat", "operator");
  REQUIRE(beat.status == 200);
  CHECK(Served::doc(beat).at("updated_by") == "token:operator-token");

  auto nodes = Served::doc(s.call("GET", "/api/v1/automation/registry/nodes", "viewer"));
  CHECK(node(nodes, "nodes", "web1"));
  // The daemon registers itself, with its API and components as services.
  const bj::value* self = nullptr;
  for (const auto& n : nodes.at("nodes").as_array())
    if (n.at("kind") == "daemon") self = &n;
  REQUIRE(self);
  CHECK(self->at("services").as_array()[0].at("port") == s.port);
  auto topology = Served::doc(s.call("GET", "/api/v1/automation/registry/topology", "viewer"));
  int resolved = 0;
  for (const auto& e : topology.at("edges").as_array()) resolved += e.at("resolved").as_bool();
  CHECK(resolved == 2);  // web1 -> db, web1/api -> db/postgres

  // Through the command line and --server.
  auto listed =
      autoctl({"--server", fmt::format("http://127.0.0.1:{}", s.port), "--token", s.tokens["viewer"], "registry", "list"}, s.env, s.cwd());
  CHECK(listed.exit_code == 0);
  CHECK_THAT(listed.out, Contains("web1"));
  auto cli_beat =
      autoctl({"--server", fmt::format("http://127.0.0.1:{}", s.port), "--token", s.tokens["operator"], "registry", "heartbeat", "db"},
              s.env, s.cwd());
  CHECK(cli_beat.exit_code == 0);

  CHECK(s.call("DELETE", "/api/v1/automation/registry/nodes/db", "operator").status == 200);
  CHECK(s.call("DELETE", "/api/v1/automation/registry/nodes/db", "operator").status == 404);
  // Registrations and removals are audited; heartbeats are not (a node beats every few seconds).
  CHECK(audit_records(s, "action=registry.register").size() == 4);  // the viewer's refusal, the bad one, web1, db
  CHECK(audit_records(s, "action=registry.remove").size() == 2);
  CHECK(s.stop() == 0);
}

TEST_CASE("autoctl serve: a discovery scan finds the HTTP server the test starts, registers it and records the scan") {
  test::HttpServer app([](const std::string&) { return test::HttpReply{200, "{}", "Server: shop/2.1\r\n"}; });
  const int closed = test::free_port();
  Served s(fmt::format(R"({{"discovery": {{"ports": "{},{}", "interval": "0"}}}})", app.port(), closed));
  s.start();
  CHECK(s.call("POST", "/api/v1/automation/discovery/scan", "viewer").status == 403);
  auto scanned = s.call("POST", "/api/v1/automation/discovery/scan", "operator", R"({"reason": "new shop deployed"})");
  REQUIRE(scanned.status == 200);
  auto scan = Served::doc(scanned);
  CHECK(scan.at("added") == 1);
  REQUIRE(scan.at("found").as_array().size() == 1);
  CHECK(scan.at("found").as_array()[0].at("server") == "shop/2.1");
  CHECK(scan.at("targets").as_array().size() == 2);
  const std::string id = fmt::format("http-127.0.0.1-{}", app.port());
  auto services = Served::doc(s.call("GET", "/api/v1/automation/discovery/services", "viewer"));
  REQUIRE(node(services, "discovered", id));
  CHECK(node(services, "discovered", id)->at("state") == "up");
  auto history = Served::doc(s.call("GET", "/api/v1/automation/discovery/history?limit=5", "viewer"));
  REQUIRE(history.at("scans").as_array().size() == 1);
  CHECK(history.at("scans").as_array()[0].at("actor") == "token:operator-token");
  auto audited = audit_records(s, "action=discovery.scan");
  REQUIRE(audited.size() == 2);
  bool reason = false;
  for (const auto& a : audited) reason = reason || std::string(a.at("reason").as_string()).find("new shop deployed") != std::string::npos;
  CHECK(reason);
  CHECK(s.stop() == 0);

  // From the command line, on the store itself.
  auto local = autoctl({"--json", "discovery", "scan", "--port", std::to_string(app.port())}, s.env, s.cwd());
  INFO(local.err);
  REQUIRE(local.exit_code == 0);
  CHECK(test::json_out(local).at("found").as_array().size() == 1);
  auto hist = autoctl({"discovery", "history"}, s.env, s.cwd());
  CHECK(hist.exit_code == 0);
  CHECK_THAT(hist.out, Contains("shop/2.1"));
  CHECK(autoctl({"discovery", "scan", "--port", "0"}, s.env, s.cwd()).exit_code == 64);
}

TEST_CASE("autoctl suggestions: a habit in the audit log is suggested, applied through the daemon, and its workflow runs at once") {
  Served s;
  write_workflows(s.dir);
  seed_habit(s.dir.file("a.db"));
  s.start();
  CHECK(s.call("GET", "/api/v1/intelligence/suggestions", "viewer").status == 403);  // who did what is not a viewer's
  auto list = Served::doc(s.call("GET", "/api/v1/intelligence/suggestions?kind=automate", "operator"));
  const bj::value* found = nullptr;
  for (const auto& x : list.at("suggestions").as_array())
    if (x.at("subject") == "sequence:workflow.run workflow:hello > workflow.run workflow:bye") found = &x;
  INFO(automation::json::dump(list));
  REQUIRE(found);
  CHECK(found->at("evidence").at("occurrences") == 3);
  CHECK(found->at("evidence").at("daily_at") == "09:00");
  const std::string id(found->at("id").as_string());
  CHECK(s.call("GET", "/api/v1/intelligence/suggestions/" + id, "operator").status == 200);
  CHECK(s.call("POST", "/api/v1/intelligence/suggestions/" + id + "/apply", "viewer").status == 403);
  auto applied = s.call("POST", "/api/v1/intelligence/suggestions/" + id + "/apply", "operator", R"({"reason": "alice asked for it"})");
  INFO(applied.body);
  REQUIRE(applied.status == 200);
  const std::string workflow(Served::doc(applied).at("workflow").as_string());
  CHECK(Served::doc(applied).at("schedule") == bj::value(workflow + "-daily"));
  CHECK(std::filesystem::exists(s.dir.file("workflows/" + workflow + ".json")));
  // Loaded now: listed, scheduled, and it runs (its steps run hello and bye).
  CHECK(s.call("GET", "/api/v1/workflows/" + workflow, "viewer").status == 200);
  bool scheduled = false;
  const auto schedules = Served::doc(s.call("GET", "/api/v1/schedules", "viewer"));
  for (const auto& x : schedules.at("items").as_array()) scheduled = scheduled || x.at("name") == bj::value(workflow + "-daily");
  CHECK(scheduled);
  auto run = s.run_to_end("/api/v1/workflows/" + workflow + "/runs", "operator", R"({"wait": "20s"})");
  CHECK(run.at("state") == "succeeded");
  // Applied once: no longer suggested, and a second apply finds nothing.
  CHECK(s.call("POST", "/api/v1/intelligence/suggestions/" + id + "/apply", "operator").status == 404);
  auto audited = audit_records(s, "action=suggestion.apply");
  int ok = 0;
  for (const auto& a : audited)
    if (a.at("outcome") == "success") {
      ++ok;
      CHECK(a.at("reason") == "alice asked for it");
      CHECK(a.at("details").at("result").at("applied").at("workflow") == bj::value(workflow));
    }
  CHECK(ok == 1);
  CHECK(s.call("GET", "/api/v1/intelligence/insights", "operator").status == 403);
  auto insights = Served::doc(s.call("GET", "/api/v1/intelligence/insights", "admin"));
  bool alice = false;
  for (const auto& i : insights.at("insights").as_array())
    alice = alice || (i.at("kind") == "power_user" && i.at("detail").at("actor") == "user:alice");
  CHECK(alice);
  CHECK(s.stop() == 0);
}

TEST_CASE("autoctl suggestions list, show and apply on the store, and autoctl usage") {
  test::TempDir dir;
  write_workflows(dir);
  const std::map<std::string, std::string> env{{"AUTOMATION_DB", "sqlite:" + dir.file("a.db")}};
  seed_habit(dir.file("a.db"));
  auto list = autoctl({"--json", "suggestions", "list"}, env, dir.path().string());
  INFO(list.err);
  REQUIRE(list.exit_code == 0);
  std::string id;
  const auto listed = test::json_out(list);
  for (const auto& x : listed.at("suggestions").as_array())
    if (x.at("kind") == "automate") id = std::string(x.at("id").as_string());
  REQUIRE_FALSE(id.empty());
  auto text = autoctl({"suggestions", "list"}, env, dir.path().string());
  CHECK_THAT(text.out, Contains(id));
  auto show = autoctl({"suggestions", "show", id}, env, dir.path().string());
  CHECK(show.exit_code == 0);
  CHECK_THAT(show.out, Contains("3 times"));
  auto apply = autoctl({"suggestions", "apply", id, "--reason", "nightly chores"}, env, dir.path().string());
  INFO(apply.err);
  REQUIRE(apply.exit_code == 0);
  CHECK_THAT(apply.out, Contains("created workflow auto-"));
  CHECK(autoctl({"workflow", "list"}, env, dir.path().string()).out.find("auto-") != std::string::npos);
  auto again = autoctl({"suggestions", "apply", id}, env, dir.path().string());
  CHECK(again.exit_code == 66);
  auto audit = autoctl({"--json", "audit", "list", "--action", "suggestion.apply"}, env, dir.path().string());
  CHECK_THAT(audit.out, Contains("nightly chores"));
  auto usage = autoctl({"usage"}, env, dir.path().string());
  CHECK(usage.exit_code == 0);
  CHECK_THAT(usage.out, Contains("user:alice"));
}

TEST_CASE(
    "autoctl services: the daemon's own services and a supervised one are stopped, started and health-checked, with the reason audited") {
  Served s;
  test::write_file(s.dir.file("healing.json"), R"({"seeds": false,
    "services": [{"name": "worker", "command": ["sleep", "300"]}],
    "targets": [{"name": "worker", "service": "worker", "liveness": {"type": "process", "service": "worker", "interval": "1h"}}]})");
  s.start();
  auto find = [](const bj::value& doc, std::string_view name) -> const bj::value* {
    for (const auto& x : doc.at("services").as_array())
      if (x.at("name") == bj::value(name)) return &x;
    return nullptr;
  };
  auto health = Served::doc(s.call("GET", "/api/v1/automation/services/health", "viewer"));
  REQUIRE(find(health, "worker"));
  CHECK(find(health, "worker")->at("healthy") == true);
  for (const auto* c : {"scheduler", "healer", "scaler", "collector", "registry", "discovery", "api"}) {
    INFO(c);
    REQUIRE(find(health, c));
    CHECK(find(health, c)->at("kind") == "component");
  }
  const auto first_pid = Served::doc(s.call("GET", "/api/v1/status", "viewer")).at("services").as_array()[0].at("pid");

  CHECK(s.call("POST", "/api/v1/services/worker/stop", "viewer").status == 403);
  auto stopped = s.call("POST", "/api/v1/automation/services/worker/stop", "operator", R"({"reason": "disk swap"})");
  INFO(stopped.body);
  REQUIRE(stopped.status == 200);
  CHECK(Served::doc(stopped).at("state") == "stopped");
  CHECK(Served::doc(stopped).at("changed") == true);
  auto status = Served::doc(s.call("GET", "/api/v1/automation/status", "viewer"));
  CHECK(status.at("services").as_array()[0].at("state") == "stopped");
  CHECK_THAT(std::string(status.at("services").as_array()[0].at("stopped").as_string()), Contains("token:operator-token: disk swap"));
  health = Served::doc(s.call("GET", "/api/v1/services/health", "viewer"));
  CHECK(health.at("healthy") == false);
  CHECK(find(health, "worker")->at("healthy") == false);
  auto started = Served::doc(s.call("POST", "/api/v1/services/worker/start", "operator"));
  CHECK(started.at("state") == "running");
  CHECK(started.at("starts") == 2);
  CHECK(started.at("pid") != first_pid);

  // The daemon's own: the scaler stopped for a load test, then started again.
  auto scaler = Served::doc(s.call("POST", "/api/v1/services/scaler/stop", "operator", R"({"reason": "load test"})"));
  CHECK(scaler.at("state") == "stopped");
  status = Served::doc(s.call("GET", "/api/v1/status", "viewer"));
  CHECK(status.at("components").at("scaler").at("state") == "stopped");
  health = Served::doc(s.call("GET", "/api/v1/services/health", "viewer"));
  CHECK_THAT(std::string(find(health, "scaler")->at("reason").as_string()), Contains("load test"));
  CHECK(Served::doc(s.call("POST", "/api/v1/services/scaler/stop", "operator")).at("changed") == false);
  CHECK(Served::doc(s.call("POST", "/api/v1/services/scaler/start", "operator")).at("state") == "running");
  CHECK(s.call("POST", "/api/v1/services/api/stop", "operator").status == 400);
  auto unknown = s.call("POST", "/api/v1/services/nope/stop", "operator");
  CHECK(unknown.status == 404);
  CHECK_THAT(unknown.body, Contains("worker"));

  // The command line, through the daemon.
  const std::vector<std::string> server{"--server", fmt::format("http://127.0.0.1:{}", s.port), "--token", s.tokens["operator"]};
  auto with = [&](std::vector<std::string> args) {
    std::vector<std::string> all = server;
    all.insert(all.end(), args.begin(), args.end());
    return autoctl(all, s.env, s.cwd());
  };
  auto cli_status = with({"services", "status"});
  CHECK(cli_status.exit_code == 0);
  CHECK_THAT(cli_status.out, Contains("worker") && Contains("scheduler"));
  CHECK(with({"services", "stop", "scheduler", "--reason", "freeze"}).exit_code == 0);
  auto cli_health = with({"services", "health"});
  CHECK(cli_health.exit_code == 1);
  CHECK_THAT(cli_health.out, Contains("FAIL") && Contains("freeze"));
  CHECK(with({"services", "start", "scheduler"}).exit_code == 0);
  CHECK(with({"services", "health"}).exit_code == 0);
  CHECK(autoctl({"services", "status"}, s.env, s.cwd()).exit_code == 65);  // no daemon named

  int audited = 0;
  for (const auto& a : audit_records(s, "action=service.stop")) audited += a.at("outcome") == "success" && a.at("reason") == "disk swap";
  CHECK(audited == 1);
  CHECK(s.stop() == 0);
}
