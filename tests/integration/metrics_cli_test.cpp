// autoctl ingest and autoctl aggregate on a real SQLite store.
#include <automation/core/json.hpp>

#include "support/autoctl.hpp"
#include "support/http_server.hpp"
#include "support/json_out.hpp"
#include "support/temp_dir.hpp"
#include "support/xml.hpp"

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>

using namespace automation;
using automation::test::autoctl;
using automation::test::json_out;
using Catch::Matchers::Contains;

TEST_CASE("autoctl ingest and aggregate: events and revenue to a daily rollup, stored and reused") {
  test::TempDir dir;
  const std::map<std::string, std::string> env{{"AUTOMATION_DB", "sqlite:" + dir.file("m.db")}};
  const auto events = test::write_file(dir.file("events.csv"),
                                       "timestamp,userId,featureKey,eventType,duration,errorCode\n"
                                       "2026-11-23T08:00:00Z,ann,vocal-coach,start,100,\n"
                                       "2026-11-23T09:00:00Z,bob,vocal-coach,start,300,E500\n"
                                       "2026-11-23T10:00:00Z,ann,lyrics,start,,\n"
                                       "yesterday,cat,lyrics,start,,\n"
                                       "2026-11-22T10:00:00Z,ann,lyrics,start,,\n");
  auto in = autoctl({"ingest", "events", events, "--json"}, env);
  CHECK(in.exit_code == 65);  // a row was rejected (the others are stored)
  auto rep = json_out(in);
  CHECK(rep.at("rows").to_number<int>() == 5);
  CHECK(rep.at("rejected").to_number<int>() == 1);
  CHECK(rep.at("events").at("stored").to_number<int>() == 4);
  CHECK(rep.at("errors").as_array()[0].at("line").to_number<int>() == 5);
  CHECK(rep.at("rejects_path").as_string() == events + ".rejects");

  auto again = autoctl({"ingest", "events", events}, env);
  CHECK(again.exit_code == 65);
  CHECK_THAT(again.out, Contains("0 events stored, 4 already stored"));
  CHECK_THAT(again.err, Contains("events.csv:5: timestamp"));

  const auto revenue = test::write_file(dir.file("revenue.csv"),
                                        "date,plan,totalRevenue,newSubscribers,activeUsers,churnCount\n2026-11-23,pro,120.5,2,40,1\n");
  auto rin = autoctl({"ingest", "revenue", revenue}, env);
  INFO(rin.err);
  CHECK(rin.exit_code == 0);
  CHECK_THAT(rin.out, Contains("1 inserted"));

  auto agg = autoctl({"aggregate", "--daily", "--date", "2026-11-23", "--json"}, env);
  INFO(agg.err);
  REQUIRE(agg.exit_code == 0);
  auto doc = json_out(agg).at("rollups").as_array().at(0);
  CHECK(doc.at("period").at("key").as_string() == "2026-11-23");
  CHECK(doc.at("usage").at("events").to_number<int>() == 3);
  CHECK(doc.at("usage").at("unique_users").to_number<int>() == 2);
  CHECK(doc.at("usage").at("errors").to_number<int>() == 1);
  CHECK(doc.at("usage").at("features").as_array()[0].at("feature").as_string() == "vocal-coach");
  CHECK(doc.at("usage").at("features").as_array()[0].at("duration").at("p95_ms").to_number<double>() == 300);
  CHECK(doc.at("revenue").at("total_revenue").to_number<double>() == 120.5);
  CHECK(doc.at("reused").as_bool() == false);

  auto second = autoctl({"aggregate", "--daily", "--date", "2026-11-23"}, env);
  CHECK(second.exit_code == 0);
  CHECK_THAT(second.out, Contains("2026-11-23 (daily, UTC): stored"));
  CHECK_THAT(second.out, Contains("already aggregated"));
  auto forced = autoctl({"aggregate", "--daily", "--date", "2026-11-23", "--force"}, env);
  CHECK_THAT(forced.out, Contains("why: forced by the caller"));

  // A backfill of every day of a range, and one range rollup.
  auto days = autoctl({"aggregate", "--daily", "--from", "2026-11-21", "--to", "2026-11-23", "--json"}, env);
  REQUIRE(days.exit_code == 0);
  CHECK(json_out(days).at("rollups").as_array().size() == 3);
  auto range = autoctl({"aggregate", "--from", "2026-11-16", "--to", "2026-11-29", "--json"}, env);
  REQUIRE(range.exit_code == 0);
  CHECK(json_out(range).at("rollups").as_array()[0].at("usage").at("events").to_number<int>() == 4);

  // Each computation is audited with its reason.
  auto audit = autoctl({"audit", "list", "--action", "metrics.aggregate", "--json"}, env);
  CHECK_THAT(audit.out, Contains("forced by the caller"));
}

TEST_CASE("autoctl ingest and aggregate: bad input is refused with a clear message") {
  test::TempDir dir;
  const std::map<std::string, std::string> env{{"AUTOMATION_DB", "sqlite:" + dir.file("m.db")}};
  auto missing = autoctl({"ingest", "events", dir.file("nope.csv")}, env);
  CHECK(missing.exit_code == 66);
  const auto bad = test::write_file(dir.file("bad.csv"), "when,who\n1,2\n");
  auto cols = autoctl({"ingest", "events", bad}, env);
  CHECK(cols.exit_code == 65);
  CHECK_THAT(cols.err, Contains("no column for timestamp"));
  const auto strict = test::write_file(dir.file("strict.csv"), "timestamp,user,feature,type\n2026-11-23T08:00:00Z,a,f,t\nnope,a,f,t\n");
  auto s = autoctl({"ingest", "events", strict, "--strict"}, env);
  CHECK(s.exit_code == 65);
  CHECK_THAT(s.err, Contains("nothing was stored"));
  CHECK(autoctl({"aggregate"}, env).exit_code == 65);
  CHECK(autoctl({"aggregate", "--daily", "--weekly"}, env).exit_code == 65);
  auto date = autoctl({"aggregate", "--daily", "--date", "2026-02-30"}, env);
  CHECK(date.exit_code == 65);
  CHECK_THAT(date.err, Contains("--date"));
}

TEST_CASE("autoctl anomalies: a spike in a stored daily metric and in a CSV series") {
  test::TempDir dir;
  const std::map<std::string, std::string> env{{"AUTOMATION_DB", "sqlite:" + dir.file("m.db")}};
  // 60 days of revenue: a weekly pattern (weekends lower), then one day ten times the usual.
  std::string revenue = "date,plan,totalRevenue,newSubscribers,activeUsers,churnCount\n";
  for (int d = 0; d < 60; ++d) {
    const auto day = fmt::format("2026-{:02}-{:02}", d < 31 ? 7 : 8, d < 31 ? d + 1 : d - 30);
    const double value = d == 50 ? 10000.0 : (d % 7 == 3 || d % 7 == 4 ? 600.0 : 1000.0) + 7.0 * (d % 5);
    revenue += fmt::format("{},pro,{},1,100,0\n", day, value);
  }
  const auto file = test::write_file(dir.file("revenue.csv"), revenue);
  REQUIRE(autoctl({"ingest", "revenue", file}, env).exit_code == 0);
  // Two weeks to learn from, so both weekends are known.
  auto r = autoctl({"anomalies", "--metric", "revenue", "--from", "2026-07-01", "--to", "2026-08-29", "--learning", "14", "--json"}, env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto doc = json_out(r);
  CHECK(doc.at("points").to_number<int>() == 60);
  CHECK(doc.at("learning_points").to_number<int>() == 14);
  auto found = doc.at("anomalies").as_array();
  REQUIRE(found.size() == 1);
  CHECK(found[0].at("time").as_string() == "2026-08-20T00:00:00Z");
  CHECK(found[0].at("signal").as_string() == "new_extreme");
  auto text = autoctl({"anomalies", "--metric", "revenue", "--from", "2026-07-01", "--to", "2026-08-29", "--learning", "14"}, env);
  CHECK_THAT(text.out, Contains("revenue: 60 points, learning from the first 14, threshold 0.50: 1 anomaly"));
  CHECK_THAT(text.out, Contains("2026-08-20"));
  CHECK_THAT(text.out, Contains("above the highest value seen before"));

  // Any series from a file, with the same detector: a 5-minute daily pattern and one drop.
  std::string csv = "timestamp,value\n";
  for (int i = 0; i < 288 * 6; ++i) {
    const double v = i == 288 * 5 + 100 ? -50.0 : 50.0 + 20.0 * std::sin(2 * M_PI * (i % 288) / 288.0) + (i * 7919 % 13) / 13.0;
    csv += fmt::format("2026-11-{:02}T{:02}:{:02}:00Z,{}\n", 1 + i / 288, (i % 288) / 12, (i % 12) * 5, v);
  }
  const auto series = test::write_file(dir.file("series.csv"), csv);
  auto f = autoctl({"anomalies", "--input", series, "--json"}, env);
  INFO(f.err);
  REQUIRE(f.exit_code == 0);
  auto fdoc = json_out(f);
  auto fa = fdoc.at("anomalies").as_array();
  REQUIRE(fa.size() >= 1);
  CHECK(fa[0].at("time").as_string() == "2026-11-06T08:20:00Z");
  CHECK(fa[0].at("index").to_number<int>() == 288 * 5 + 100);

  // Bad input names what is wrong.
  auto bad = autoctl({"anomalies", "--metric", "bogus"}, env);
  CHECK(bad.exit_code == 65);
  CHECK_THAT(bad.err, Contains("--metric: unknown metric \"bogus\" (use events"));
  CHECK(autoctl({"anomalies"}, env).exit_code == 65);
  const auto broken = test::write_file(dir.file("broken.csv"), "timestamp,value\n2026-11-01T00:00:00Z,1\n2026-11-01T00:05:00Z,x\n");
  auto b = autoctl({"anomalies", "--input", broken}, env);
  CHECK(b.exit_code == 65);
  CHECK_THAT(b.err, Contains("broken.csv:3: 'x' in column 'value' is not a number"));
}

TEST_CASE("autoctl insights: a week's features, movers, spikes, trend and churn from stored events and revenue") {
  test::TempDir dir;
  const std::map<std::string, std::string> env{{"AUTOMATION_DB", "sqlite:" + dir.file("m.db")}};
  // 2026-W47: vocal-coach 10, lyrics 10. 2026-W48: vocal-coach 30, lyrics 10 of which 5 failed.
  std::string events = "timestamp,userId,featureKey,eventType,duration,errorCode\n";
  auto add = [&](std::string_view day, std::string_view feature, int count, int errors) {
    for (int i = 0; i < count; ++i)
      events += fmt::format("{}T10:00:{:02}Z,u{},{},start,,{}\n", day, i, i, feature, i < errors ? "E500" : "");
  };
  add("2026-11-17", "vocal-coach", 10, 0);
  add("2026-11-18", "lyrics", 10, 0);
  add("2026-11-24", "vocal-coach", 30, 0);
  add("2026-11-25", "lyrics", 10, 5);
  REQUIRE(autoctl({"ingest", "events", test::write_file(dir.file("events.csv"), events)}, env).exit_code == 0);
  std::string revenue = "date,plan,totalRevenue,newSubscribers,activeUsers,churnCount\n";
  for (int d = 0; d < 28; ++d) revenue += fmt::format("2026-11-{:02},pro,{},1,100,1\n", 2 + d, 1000 + 10 * d);
  REQUIRE(autoctl({"ingest", "revenue", test::write_file(dir.file("revenue.csv"), revenue)}, env).exit_code == 0);

  auto text = autoctl({"insights", "--weekly", "--date", "2026-11-25"}, env);
  INFO(text.err);
  REQUIRE(text.exit_code == 0);
  CHECK_THAT(text.out, Contains("2026-W48 (weekly, UTC): 7 insights"));
  CHECK_THAT(text.out,
             Contains("[info]    Most popular feature: vocal-coach with 30 events (75.0 % of all events, +200.0 % on the week before)"));
  CHECK_THAT(text.out, Contains("[warning] Error rate of lyrics rose to 50.0 % from 0.0 % the week before (5 errors in 10 events)"));
  CHECK_THAT(text.out, Contains("Revenue is trending upward"));
  CHECK_THAT(text.out, Contains("Churn rate steady at 7.0 %"));

  auto json = autoctl({"insights", "--weekly", "--date", "2026-11-25", "--json"}, env);
  REQUIRE(json.exit_code == 0);
  auto doc = json_out(json);
  const auto& week = doc.at("periods").as_array().at(0).as_object();
  CHECK(week.at("period").as_string() == "2026-W48");
  const auto& items = week.at("insights").as_array();
  REQUIRE(items.size() == 7);  // most, least, one mover, two error-rate spikes, trend, churn
  CHECK(items[0].at("kind").as_string() == "most_used_feature");
  CHECK(items[0].at("numbers").at("events").to_number<double>() == 30);

  auto bad = autoctl({"insights", "--weekly", "--monthly"}, env);
  CHECK(bad.exit_code == 65);
  CHECK_THAT(bad.err, Contains("choose one of --daily, --weekly and --monthly"));
}

TEST_CASE("autoctl metrics system: a sample from captured proc files, marked against the thresholds") {
  test::TempDir dir;
  const std::string proc = std::string(AUTOMATION_SOURCE_DIR) + "/tests/unit/metrics/proc/a";
  // memory is at 75 %: above a 70 % threshold, below the default 85 %.
  const std::map<std::string, std::string> env{{"AUTOMATION_DB", "sqlite:" + dir.file("m.db")}, {"AUTOMATION_MEMORY_HIGH_THRESHOLD", "70"}};
  auto r = autoctl({"metrics", "system", "--proc", proc, "--interval", "10ms", "--json"}, env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto doc = json_out(r);
  CHECK(doc.at("cpu_usage").to_number<double>() == 0);  // the same reading twice: no time passed on the CPUs
  CHECK_FALSE(doc.at("cpu_since_boot").as_bool());
  CHECK(doc.at("memory_usage").to_number<double>() == Approx(75.0));
  CHECK(doc.at("cpus").to_number<int>() == 2);
  CHECK(doc.at("processes").to_number<int>() == 1183);
  const auto& above = doc.at("above_threshold").as_array();
  REQUIRE_FALSE(above.empty());
  CHECK(above[0].at("metric").as_string() == "memory_usage");
  CHECK(above[0].at("threshold").to_number<double>() == 70);
  // "/mnt/my data" is not mounted here: a warning, not a failure.
  bool warned = false;
  for (const auto& w : doc.at("warnings").as_array())
    warned |= std::string_view(w.as_string()).find("/mnt/my data") != std::string_view::npos;
  CHECK(warned);

  auto text = autoctl({"metrics", "system", "--proc", proc, "--interval", "10ms"}, env);
  REQUIRE(text.exit_code == 0);
  CHECK_THAT(text.out, Contains("memory 75.0 % HIGH of 976.6 MiB"));
  CHECK_THAT(text.out, Contains("net  eth0"));

  auto watch = autoctl({"metrics", "system", "--proc", proc, "--interval", "10ms", "--watch", "--count", "3", "--json"}, env);
  REQUIRE(watch.exit_code == 0);
  CHECK(std::count(watch.out.begin(), watch.out.end(), '\n') == 3);  // one document per line

  auto missing = autoctl({"metrics", "system", "--proc", dir.file("nothing")}, env);
  CHECK(missing.exit_code == 66);
  CHECK_THAT(missing.err, Contains("nothing/stat"));
  CHECK(autoctl({"metrics", "system", "--interval", "0s"}, env).exit_code == 65);
}

TEST_CASE("autoctl report: written as HTML, delivered to a directory and a webhook, failed deliveries listed and retried") {
  test::TempDir dir;
  const std::map<std::string, std::string> env{{"AUTOMATION_DB", "sqlite:" + dir.file("r.db")},
                                               {"AUTOMATION_REPORTS_DIR", dir.file("reports")},
                                               {"AUTOMATION_REPORTS_FORMAT", "md"}};
  const auto events = test::write_file(dir.file("events.csv"),
                                       "timestamp,userId,featureKey,eventType,duration,errorCode\n"
                                       "2026-11-17T08:00:00Z,ann,vocal-coach,start,100,\n"
                                       "2026-11-24T09:00:00Z,bob,vocal-coach,start,300,E500\n"
                                       "2026-11-25T10:00:00Z,ann,lyrics,start,,\n");
  REQUIRE(autoctl({"ingest", "events", events}, env).exit_code == 0);

  const auto html_path = dir.file("out/w48.html");
  auto written = autoctl({"report", "--weekly", "--date", "2026-11-24", "--format", "html", "-o", html_path}, env);
  INFO(written.err);
  REQUIRE(written.exit_code == 0);
  CHECK_THAT(written.out, Contains("wrote " + html_path));
  auto doc = test::parse_xml(test::read_file(html_path));
  CHECK(doc->all("svg").size() == 3);  // events, error rate, features (no revenue: no revenue line or plan bars)

  auto printed = autoctl({"report", "--weekly", "--date", "2026-11-24", "--format", "json"}, env);
  REQUIRE(printed.exit_code == 0);
  auto rep = json::parse(printed.out).value();
  CHECK(rep.at("report").as_string() == "weekly-2026-W48");
  CHECK(rep.at("rollup").at("usage").at("events").to_number<int>() == 2);

  // Delivered to the configured directory, and to a webhook that is down at first.
  std::atomic<bool> up{false};
  test::HttpServer hook([&](const std::string&) { return up ? test::HttpReply{200, "ok"} : test::HttpReply{503, "down"}; });
  auto sent = autoctl({"report", "--weekly", "--date", "2026-11-24", "--deliver", "--target", "file:" + dir.file("reports") + "/",
                       "--target", "webhook:" + hook.url() + "/slack", "--json"},
                      env);
  INFO(sent.err);
  CHECK(sent.exit_code == 75);  // one delivery waits for a retry
  auto deliveries = json_out(sent).at("deliveries").as_array();
  REQUIRE(deliveries.size() == 2);
  CHECK(deliveries[0].at("state").as_string() == "delivered");
  CHECK(test::read_file(dir.file("reports/weekly-2026-W48.md")).find("# Weekly report 2026-W48") == 0);
  CHECK(deliveries[1].at("state").as_string() == "pending");
  CHECK_THAT(std::string(deliveries[1].at("detail").as_string()), Contains("HTTP 503"));
  const auto id = deliveries[1].at("id").to_number<std::int64_t>();

  auto listed = autoctl({"report", "deliveries", "--state", "pending"}, env);
  REQUIRE(listed.exit_code == 0);
  CHECK_THAT(listed.out, Contains("pending"));
  CHECK_THAT(listed.out, Contains("last error: " + hook.url() + "/... answered HTTP 503"));
  CHECK(listed.out.find("/slack") == std::string::npos);  // a webhook's path is its secret

  CHECK_THAT(autoctl({"report", "retry"}, env).out, Contains("nothing is due"));  // its retry is a minute away
  up = true;
  auto retried = autoctl({"report", "retry", std::to_string(id)}, env);
  INFO(retried.err);
  CHECK(retried.exit_code == 0);
  CHECK_THAT(retried.out, Contains("delivered"));
  REQUIRE(hook.bodies().size() == 2);
  CHECK(json::parse(hook.bodies()[1]).value().at("text").as_string().starts_with("*Weekly report 2026-W48*"));

  // Bad input is named.
  auto bad = autoctl({"report", "--format", "pdf"}, env);
  CHECK(bad.exit_code == 65);
  CHECK_THAT(bad.err, Contains("--format"));
  auto no_target = autoctl({"report", "--deliver", "--target", "slack"}, env);
  CHECK(no_target.exit_code == 65);
  CHECK_THAT(no_target.err, Contains("delivery target \"slack\""));
  auto bad_state = autoctl({"report", "deliveries", "--state", "lost"}, env);
  CHECK(bad_state.exit_code == 65);
  CHECK(autoctl({"report", "retry", "999"}, env).exit_code == 66);
}

TEST_CASE("autoctl metrics collect and alerts: samples stored, a rule fires and notifies, listed and acknowledged") {
  test::TempDir dir;
  test::HttpServer hook(200, "ok");
  const auto rules = test::write_file(dir.file("alerts.json"), fmt::format(R"({{"channels": {{"ops": "webhook:{}/hook/SECRET"}},
    "rules": [{{"name": "idle-queue", "when": "workflow_queue_depth < 5 and workflows_running == 0", "severity": "info",
                "notify": ["ops"], "event": "queue.idle"}},
              {{"name": "busy", "when": "workflows_running > 3 for 10m", "escalate": [{{"after": "5m", "notify": ["ops"]}}]}}]}})",
                                                                           hook.url()));
  const std::map<std::string, std::string> env{{"AUTOMATION_DB", "sqlite:" + dir.file("m.db")}, {"AUTOMATION_ALERTS_RULES_FILE", rules}};

  auto shown = autoctl({"alerts", "rules", "--json"}, env);
  INFO(shown.err);
  REQUIRE(shown.exit_code == 0);
  auto doc = json_out(shown);
  CHECK(doc.at("source").as_string() == "file:" + rules);
  CHECK(doc.at("rules").as_array().size() == 2);
  CHECK(doc.at("rules").as_array()[0].at("notify").as_array()[0].as_string() == fmt::format("webhook:{}/...", hook.url()));
  CHECK(shown.out.find("SECRET") == std::string::npos);

  auto collected = autoctl({"metrics", "collect", "--no-system", "--json"}, env);
  INFO(collected.err);
  REQUIRE(collected.exit_code == 0);
  auto line = json_out(collected);
  CHECK(line.at("points").to_number<int>() == 4);
  const auto& changes = line.at("alerts").as_array();
  REQUIRE(changes.size() == 4);  // fired, notified, alert.firing and queue.idle emitted
  CHECK(changes[0].at("what").as_string() == "fired");
  CHECK(changes[0].at("rule").as_string() == "idle-queue");
  REQUIRE(hook.bodies().size() == 1);
  CHECK_THAT(hook.bodies()[0], Contains("*FIRING* idle-queue (info)"));

  auto points = autoctl({"metrics", "points", "workflows_running", "--json"}, env);
  REQUIRE(points.exit_code == 0);
  CHECK(json_out(points).at("points").as_array().size() == 1);

  auto list = autoctl({"alerts", "list", "--json"}, env);
  REQUIRE(list.exit_code == 0);
  auto alerts = json_out(list).at("alerts").as_array();
  REQUIRE(alerts.size() == 1);
  const auto id = alerts[0].at("id").to_number<std::int64_t>();
  CHECK(alerts[0].at("state").as_string() == "firing");
  CHECK(alerts[0].at("acknowledged").is_null());

  auto ack = autoctl({"alerts", "ack", std::to_string(id), "--reason", "expected at night"}, env);
  INFO(ack.err);
  REQUIRE(ack.exit_code == 0);
  CHECK_THAT(ack.out, Contains(fmt::format("alert {} (idle-queue) acknowledged by", id)));
  auto text = autoctl({"alerts", "list"}, env);
  CHECK_THAT(text.out, Contains("idle-queue"));
  CHECK_THAT(text.out, Contains("acknowledged by"));
  auto audit = autoctl({"audit", "list", "--action", "alert.ack", "--json"}, env);
  REQUIRE(audit.exit_code == 0);
  CHECK_THAT(audit.out, Contains("expected at night"));

  // A second collection changes nothing: the alert is still firing, once.
  auto again = autoctl({"metrics", "collect", "--no-system", "--json"}, env);
  REQUIRE(again.exit_code == 0);
  CHECK(json_out(again).at("alerts").as_array().empty());
  CHECK(hook.bodies().size() == 1);
  auto evaluated = autoctl({"alerts", "evaluate"}, env);
  CHECK(evaluated.exit_code == 0);
  CHECK_THAT(evaluated.out, Contains("no changes"));

  CHECK(autoctl({"alerts", "ack", "999"}, env).exit_code == 66);
  CHECK(autoctl({"alerts", "list", "--state", "loud"}, env).exit_code == 65);

  // A broken rules file is refused, naming the file, the rule and the problem.
  test::write_file(rules, R"({"rules": [{"name": "x", "when": "cpu_usage >> 1"}]})");
  auto bad = autoctl({"alerts", "rules"}, env);
  CHECK(bad.exit_code == 78);
  CHECK_THAT(bad.err, Contains(rules + ": rules[0] (x): when: condition \"cpu_usage >> 1\": at 12: expected a number"));
  // A rules file that was named must exist (falling back would resolve its alerts)...
  std::filesystem::remove(rules);
  auto missing = autoctl({"alerts", "rules"}, env);
  CHECK(missing.exit_code == 78);
  CHECK_THAT(missing.err, Contains(fmt::format("alerts.rules_file {} (from env:AUTOMATION_ALERTS_RULES_FILE) does not exist", rules)));
  // ...and acknowledging needs no rules at all.
  CHECK(autoctl({"alerts", "ack", std::to_string(id)}, env).exit_code == 0);
  // Without one named, and no alerts.json, the seed's thresholds apply.
  auto seed = autoctl({"alerts", "rules"}, {{"AUTOMATION_DB", "sqlite:" + dir.file("m.db")}});
  REQUIRE(seed.exit_code == 0);
  CHECK_THAT(seed.out, Contains("rules from defaults"));
  CHECK_THAT(seed.out, Contains("cpu_usage > 80 for 5m"));
  CHECK_THAT(seed.out, Contains("disk_usage > 90 for 1m"));
}
