// autoctl scale against a real SQLite store and real worker processes that outlive each autoctl
// run (the next run adopts them), a command template, thresholds changed at run time, the history,
// and simulate over recorded metrics.
#include <automation/core/json.hpp>

#include "support/autoctl.hpp"
#include "support/json_out.hpp"
#include "support/temp_dir.hpp"

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include <csignal>

using namespace automation;
using automation::test::autoctl;
using automation::test::json_out;
using Catch::Matchers::Contains;

namespace {

/// Running: it exists and is not a zombie (a worker whose autoctl has exited is reaped by init, in its own time).
bool alive(long pid) {
  const auto stat = test::read_file(fmt::format("/proc/{}/stat", pid));
  const auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z' && stat[close + 2] != 'X';
}

std::vector<long> member_pids(const boost::json::value& resource) {
  std::vector<long> out;
  for (const auto& m : resource.at("members").as_array()) out.push_back(m.at("pid").to_number<long>());
  return out;
}

}  // namespace

TEST_CASE("autoctl scale: real workers scaled up and down across runs, restarted, with the history and the audit") {
  test::TempDir dir;
  test::write_file(dir.file("scaling.json"), R"({"resources": [
    {"name": "workers", "policy": {"mode": "steps", "min": 0, "max": 3},
     "actuator": {"type": "process_pool", "command": ["sleep", "600"]}},
    {"name": "api", "policy": {"mode": "hpa", "max": 8, "metrics": [{"name": "queue_depth", "kind": "total", "target": 5}]},
     "actuator": {"type": "command", "resize": ["sh", "-c", "printf %s \"$AUTOMATION_SIZE\" > api.size"], "status": ["cat", "api.size"]}}]})");
  test::write_file(dir.file("api.size"), "2");
  const std::map<std::string, std::string> env{{"AUTOMATION_DB", "sqlite:" + dir.file("s.db")}};
  const auto cwd = dir.path().string();
  // Whatever happens, no worker outlives the test.
  struct Cleanup {
    std::map<std::string, std::string> env;
    std::string cwd;
    ~Cleanup() { (void)autoctl({"scale", "--resource", "workers", "--action", "scale-down", "--to", "0"}, env, cwd); }
  } cleanup{env, cwd};

  auto up = autoctl({"scale", "--resource", "workers", "--action", "scale-up", "--by", "2", "--reason", "launch day", "--json"}, env, cwd);
  INFO(up.err);
  REQUIRE(up.exit_code == 0);
  auto rec = json_out(up);
  CHECK(rec.at("outcome") == "applied");
  CHECK(rec.at("desired").to_number<int>() == 2);
  CHECK_THAT(std::string(rec.at("message").as_string()), Contains("launch day"));

  // The workers outlived that autoctl; this one adopts them.
  auto status = autoctl({"scale", "status", "workers", "--json"}, env, cwd);
  REQUIRE(status.exit_code == 0);
  auto doc = json_out(status);
  const auto& workers = doc.at("resources").as_array().at(0);
  CHECK(workers.at("size").to_number<int>() == 2);
  const auto pids = member_pids(workers);
  REQUIRE(pids.size() == 2);
  for (long p : pids) CHECK(alive(p));
  CHECK(workers.at("last_change").at("actor").as_string().starts_with("user:"));

  auto restart = autoctl({"scale", "--resource", "workers", "--action", "restart"}, env, cwd);
  REQUIRE(restart.exit_code == 0);
  doc = json_out(autoctl({"scale", "status", "workers", "--json"}, env, cwd));
  const auto fresh = member_pids(doc.at("resources").as_array().at(0));
  REQUIRE(fresh.size() == 2);
  for (long p : pids) CHECK_FALSE(alive(p));

  auto down = autoctl({"scale", "--resource", "workers", "--action", "scale-down"}, env, cwd);
  REQUIRE(down.exit_code == 0);
  CHECK_THAT(down.out, Contains("2 -> 1"));
  CHECK_FALSE(alive(fresh[1]));  // the newest goes first
  CHECK(alive(fresh[0]));

  // The command template: status read by its command, resized by the other.
  auto api = autoctl({"scale", "--resource", "api", "--action", "scale-up", "--to", "5"}, env, cwd);
  INFO(api.err);
  REQUIRE(api.exit_code == 0);
  CHECK_THAT(api.out, Contains("2 -> 5"));
  CHECK(test::read_file(dir.file("api.size")) == "5");
  auto max = autoctl({"scale", "--resource", "api", "--action", "scale-up", "--to", "8"}, env, cwd);
  CHECK(max.exit_code == 0);
  auto beyond = autoctl({"scale", "--resource", "api", "--action", "scale-up"}, env, cwd);
  CHECK(beyond.exit_code == 65);
  CHECK_THAT(beyond.err, Contains("at its maximum of 8"));

  // Thresholds changed at run time, then a tick from cron decides with them.
  auto set = autoctl({"scale", "thresholds", "set", "workers", "--band", "queue_depth>5:+1", "--reason", "the AI workers' seed"}, env, cwd);
  INFO(set.err);
  REQUIRE(set.exit_code == 0);
  auto show = autoctl({"scale", "thresholds", "show", "workers", "--json"}, env, cwd);
  CHECK(json_out(show).at("policy").at("bands").as_array().at(0).at("metric") == "queue_depth");
  CHECK_THAT(std::string(json_out(show).at("source").as_string()), Contains("changed by user:"));
  auto explain = autoctl({"scale", "explain", "workers"}, env, cwd);
  CHECK(explain.exit_code == 0);
  CHECK_THAT(explain.out, Contains("NoBand") && Contains("no sample of queue_depth within 2m"));
  auto tick = autoctl({"scale", "tick", "--json"}, env, cwd);
  INFO(tick.err);
  CHECK(tick.exit_code == 0);
  CHECK(json_out(tick).at("decisions").as_array().size() == 2);

  auto history = autoctl({"scale", "history", "--changes", "--json"}, env, cwd);
  REQUIRE(history.exit_code == 0);
  const auto hdoc = json_out(history);
  const auto& items = hdoc.at("history").as_array();
  CHECK(items.size() == 5);  // up, restart, down, api up twice
  auto audit = autoctl({"audit", "list", "--json"}, env, cwd);
  CHECK_THAT(audit.out, Contains("scale.scale-up") && Contains("scale.restart") && Contains("scale.thresholds"));

  // Errors name what is wrong.
  auto unknown = autoctl({"scale", "--resource", "db", "--action", "status"}, env, cwd);
  CHECK(unknown.exit_code == 66);
  CHECK_THAT(unknown.err, Contains("unknown resource \"db\" (configured: api, workers)"));
  auto band = autoctl({"scale", "thresholds", "set", "workers", "--band", "cpu_usage>80"}, env, cwd);
  CHECK(band.exit_code == 65);
  CHECK_THAT(band.err, Contains("--band \"cpu_usage>80\""));
  auto action = autoctl({"scale", "--resource", "workers", "--action", "grow"}, env, cwd);
  CHECK(action.exit_code == 65);
  auto combo = autoctl({"scale", "--resource", "workers", "--action", "restart", "--by", "2"}, env, cwd);
  CHECK(combo.exit_code == 65);
  CHECK_THAT(combo.err, Contains("--by and --to do not go with --action restart"));
  auto backwards = autoctl({"scale", "--resource", "api", "--action", "scale-up", "--to", "1"}, env, cwd);
  CHECK(backwards.exit_code == 65);
  CHECK_THAT(backwards.err, Contains("api has 8 now (use --action scale-down)"));
}

TEST_CASE("autoctl scale: a broken or missing resources file is a configuration error naming it") {
  test::TempDir dir;
  const std::map<std::string, std::string> env{{"AUTOMATION_DB", "sqlite:" + dir.file("s.db")}};
  const auto cwd = dir.path().string();
  // No file at the default name: no resources, and that is said.
  auto none = autoctl({"scale", "status"}, env, cwd);
  CHECK(none.exit_code == 0);
  CHECK_THAT(none.out, Contains("no resources are configured"));
  auto empty = autoctl({"scale", "history"}, env, cwd);  // no store yet: no history, and nothing created
  CHECK(empty.exit_code == 0);
  CHECK_THAT(empty.out, Contains("no scaling history"));
  CHECK_FALSE(std::filesystem::exists(dir.file("s.db")));
  auto named = env;
  named["AUTOMATION_SCALING_RESOURCES_FILE"] = dir.file("missing.json");
  auto missing = autoctl({"scale", "status"}, named, cwd);
  CHECK(missing.exit_code == 78);
  CHECK_THAT(missing.err, Contains("missing.json") && Contains("does not exist"));
  test::write_file(dir.file("scaling.json"), R"({"resources": [{"name": "w", "actuator": {"type": "process_pool"}}]})");
  auto broken = autoctl({"scale", "status"}, env, cwd);
  CHECK(broken.exit_code == 78);
  CHECK_THAT(broken.err, Contains("resource \"w\"") && Contains("needs a command"));
}

TEST_CASE("autoctl scale simulate: recorded metrics replayed through a policy, every decision printed, nothing touched") {
  test::TempDir dir;
  const std::map<std::string, std::string> env{{"AUTOMATION_DB", "sqlite:" + dir.file("s.db")}};
  const auto policy = test::write_file(dir.file("policy.json"), R"({"mode": "steps", "max": 4})");
  std::string csv = "time,metric,value\n";
  // CPU high for 12 minutes, then low for 12: the 5-minute cooldowns pace the changes.
  for (int m = 0; m < 24; ++m) {
    const auto t = fmt::format("2026-11-23T08:{:02}:00Z", m);
    csv += fmt::format("{},cpu_usage,{}\n{},memory_usage,40\n", t, m < 12 ? 95 : 5, t);
  }
  const auto metrics = test::write_file(dir.file("metrics.csv"), csv);
  auto sim = autoctl({"scale", "simulate", "--policy", policy, "--metrics", metrics, "--json"}, env);
  INFO(sim.err);
  REQUIRE(sim.exit_code == 0);
  auto doc = json_out(sim);
  CHECK(doc.at("decisions").as_array().size() == 24);
  // Up at 08:00, 08:05, 08:10 (to 4); down at 08:15 (5 minutes after the last change), 08:20.
  CHECK(doc.at("changes").to_number<int>() == 5);
  CHECK(doc.at("final_size").to_number<int>() == 2);
  CHECK(doc.at("decisions").as_array().at(1).at("reason") == "ScaleUpCooldown");
  auto text = autoctl({"scale", "simulate", "--policy", policy, "--metrics", metrics}, env);
  CHECK_THAT(text.out, Contains("24 decisions, 5 changes, final size 2"));
  CHECK_FALSE(std::filesystem::exists(dir.file("s.db")));  // the store was never opened

  test::write_file(dir.file("bad.csv"), "time,metric,value\n2026-11-23T08:00:00Z,cpu_usage,lots\n");
  auto bad = autoctl({"scale", "simulate", "--policy", policy, "--metrics", dir.file("bad.csv")}, env);
  CHECK(bad.exit_code == 65);
  CHECK_THAT(bad.err, Contains("bad.csv: line 2: \"lots\" is not a number"));
}
