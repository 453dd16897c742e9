// The dashboard end to end, in real headless Chromium against a real daemon: the page loads with
// an operator's token, shows what is stored and what changes as it happens (pushed over the live
// WebSocket), its actions work and are audited as the operator's, a viewer sees no actions, the
// layout fits a phone. Screenshots are kept in build/test-artifacts/.
#include <automation/core/json.hpp>

#include "support/autoctl.hpp"
#include "support/chromium.hpp"
#include "support/served.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>

using namespace automation;
using automation::test::audit_records;
using automation::test::autoctl;
using automation::test::Served;
namespace bj = boost::json;

namespace {

std::string row(std::string_view attribute, std::string_view value) {
  return fmt::format("document.querySelector('[data-{}=\"{}\"]')", attribute, value);
}

}  // namespace

TEST_CASE("dashboard: in headless Chromium it loads, shows live data as it changes, and an operator's actions work") {
  Served s(R"({"alerts": {"interval": "1s"}})");  // system samples every second, for the chart
  REQUIRE(autoctl({"breaker", "force-open", "payments", "--reason", "provider incident"}, s.env, s.cwd()).exit_code == 0);
  // 60 days of revenue and a forecast of it, for the forecast chart.
  const auto today = std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now());
  std::string csv = "date,plan,total_revenue,new_subscribers,active_users,churn_count\n";
  for (int i = 60; i >= 1; --i) {
    const std::chrono::year_month_day d{today - std::chrono::days(i)};
    csv += fmt::format("{:04}-{:02}-{:02},pro,{:.2f},1,{},0\n", int(d.year()), unsigned(d.month()), unsigned(d.day()),
                       1000 + 3.0 * (60 - i) + 100 * std::sin(2 * M_PI * i / 7.0), 100 + (60 - i));
  }
  REQUIRE(autoctl({"ingest", "revenue", test::write_file(s.dir.file("revenue.csv"), csv)}, s.env, s.cwd()).exit_code == 0);
  REQUIRE(autoctl({"forecast", "--metric", "revenue", "--horizon", "14", "--statistical"}, s.env, s.cwd()).exit_code == 0);
  s.start();
  test::Chromium browser(s.dir);
  browser.open(fmt::format("http://127.0.0.1:{}/dashboard#token={}", s.port, s.tokens["operator"]));

  // It loads: signed in as the operator, live, with what the store holds.
  REQUIRE(browser.wait_for("document.getElementById('connection').dataset.state === 'live'"));
  REQUIRE(browser.wait_for(row("breaker", "payments") + "?.dataset.state === 'forced_open'"));
  CHECK(browser.eval("location.hash") == "");  // the token does not stay in the address
  CHECK(browser.eval("document.getElementById('who').textContent.startsWith('operator')") == true);
  CHECK(browser.eval(row("component", "scheduler") + ".dataset.state") == "running");
  CHECK(browser.wait_for(row("schedule", "health_check") + "?.dataset.state === 'active'"));
  // The charts: the forecast with its interval band, and the system samples as they are stored.
  CHECK(browser.wait_for("document.querySelectorAll('#forecast svg polygon.band').length === 1"));
  CHECK(browser.eval("document.querySelector('#forecast svg polyline').getAttribute('points').split(' ').length") == 14);
  CHECK(browser.eval("document.querySelector('#forecast svg polygon.band').getAttribute('points').split(' ').length") == 28);
  CHECK(browser.eval("/NaN|Infinity/.test(document.getElementById('forecast').innerHTML + document.getElementById('metrics').innerHTML)") ==
        false);
  CHECK(browser.eval("document.getElementById('forecast-legend').textContent.includes('revenue')") == true);
  CHECK(browser.wait_for("(document.querySelector('#metrics svg polyline')?.getAttribute('points') || '').split(' ').length >= 2"));

  // Live: a run started elsewhere (the API) appears, with its steps, as it ends.
  auto run = s.run_to_end("/api/v1/workflows/cleanup-resources/runs", "operator", R"({"params": {"dry_run": "true"}, "wait": "20s"})");
  REQUIRE(run.at("state") == "succeeded");
  const auto id = run.at("id").as_int64();
  REQUIRE(browser.wait_for(fmt::format("{}?.dataset.state === 'succeeded'", row("run", std::to_string(id)))));
  CHECK(browser.eval(fmt::format("{}.querySelector('[data-step=\"cleanup\"]').dataset.state", row("run", std::to_string(id)))) ==
        "succeeded");
  // A change made elsewhere is pushed too: the schedule paused from the command line.
  REQUIRE(autoctl({"schedule", "pause", "auto_backup", "--reason", "maintenance"}, s.env, s.cwd()).exit_code == 0);
  REQUIRE(browser.wait_for(row("schedule", "auto_backup") + "?.dataset.state === 'paused'"));

  // The topology: an edge to a node nobody registered yet, then registered.
  REQUIRE(s.call("POST", "/api/v1/registry/nodes/web1", "operator", R"({"depends_on": ["db"], "ttl": "1h"})").status == 200);
  const std::string edge = "document.querySelector('[data-from=\"web1\"][data-to=\"db\"]')";
  REQUIRE(browser.wait_for(edge + "?.dataset.state === 'missing'"));
  REQUIRE(s.call("POST", "/api/v1/registry/nodes/db", "operator", R"({"ttl": "1h"})").status == 200);
  REQUIRE(browser.wait_for(edge + "?.dataset.state === 'up'"));

  // Actions: the operator resets the breaker and pauses a schedule from the page.
  browser.eval(row("breaker", "payments") + ".querySelector('button.reset').click()");
  REQUIRE(browser.wait_for(row("breaker", "payments") + "?.dataset.state === 'closed'"));
  CHECK(Served::doc(s.call("GET", "/api/v1/circuit-breakers/payments", "viewer")).at("state") == "closed");
  browser.eval(row("schedule", "health_check") + ".querySelector('button.pause').click()");
  REQUIRE(browser.wait_for(row("schedule", "health_check") + "?.dataset.state === 'paused'"));
  int reset_by_page = 0;
  for (const auto& a : audit_records(s, "action=breaker.reset"))
    reset_by_page +=
        a.at("actor") == "token:operator-token" && a.at("reason") == "reset from the dashboard" && a.at("outcome") == "success";
  CHECK(reset_by_page == 1);
  const auto shot = fmt::format("{}/dashboard.png", TEST_ARTIFACTS_DIR);
  CHECK(browser.screenshot(shot) > 20'000);

  // A phone: one column, nothing wider than the screen.
  browser.emulate_phone(390, 844);
  REQUIRE(browser.wait_for("getComputedStyle(document.getElementById('board')).gridTemplateColumns.split(' ').length === 1"));
  CHECK(browser.eval("document.documentElement.scrollWidth <= window.innerWidth") == true);
  CHECK(browser.screenshot(fmt::format("{}/dashboard-phone.png", TEST_ARTIFACTS_DIR)) > 10'000);

  // A viewer sees the state but no actions; the server would refuse them anyway.
  browser.open("about:blank");
  browser.open(fmt::format("http://127.0.0.1:{}/dashboard#token={}", s.port, s.tokens["viewer"]));
  REQUIRE(browser.wait_for(row("breaker", "payments") + "?.dataset.state === 'closed'"));
  CHECK(browser.eval("getComputedStyle(" + row("breaker", "payments") + ".querySelector('button.reset')).display") == "none");
  CHECK(browser.eval("getComputedStyle(document.getElementById('run-form')).display") == "none");
  CHECK(browser.wait_for("document.getElementById('suggestions').textContent.includes('operator token')"));
  // A refused token shows the sign-in form with the reason.
  browser.open("about:blank");
  browser.open(fmt::format("http://127.0.0.1:{}/dashboard#token=atk_0000000000000000.bad", s.port));
  REQUIRE(browser.wait_for("!document.getElementById('login').hidden"));
  CHECK(browser.eval("document.getElementById('login-error').textContent.includes('refused')") == true);
  CHECK(s.stop() == 0);
}

TEST_CASE("dashboard: the live channel refuses an upgrade without a valid token, and a plain GET of it is 426") {
  Served s;
  s.start();
  test::WebSocketClient anonymous(s.port, "/api/v1/live", {{"Sec-WebSocket-Protocol", "automation.v1"}});
  CHECK_FALSE(anonymous.upgraded());
  CHECK(anonymous.head().rfind("HTTP/1.1 401", 0) == 0);
  test::WebSocketClient bad(s.port, "/api/v1/live", {{"Sec-WebSocket-Protocol", "automation.v1, bearer.atk_0000000000000000.bad"}});
  CHECK(bad.head().rfind("HTTP/1.1 401", 0) == 0);
  test::WebSocketClient viewer(s.port, "/api/v1/live", {{"Sec-WebSocket-Protocol", "automation.v1, bearer." + s.tokens["viewer"]}});
  REQUIRE(viewer.upgraded());
  auto first = viewer.text();
  REQUIRE(first);
  auto doc = json::parse(*first);
  REQUIRE(doc);
  CHECK(doc->at("type") == "snapshot");
  CHECK(doc->at("status").at("components").at("api").at("state") == "running");
  CHECK(s.call("GET", "/api/v1/live", "viewer").status == 426);
  // The page and its assets need no token; the API they call does.
  auto page = s.call("GET", "/dashboard");
  CHECK(page.status == 200);
  CHECK(page.body.find("/dashboard/app.js") != std::string::npos);
  CHECK(s.call("GET", "/dashboard/app.js").status == 200);
  CHECK(s.call("GET", "/api/v1/whoami").status == 401);
  CHECK(Served::doc(s.call("GET", "/api/v1/whoami", "viewer")).at("role") == "viewer");
  CHECK(s.stop() == 0);
}
