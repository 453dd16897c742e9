// autoctl schedule list/show/pause/resume/fire/tick and autoctl emit against the real binary,
// including two processes ticking the same database at once: every fire runs exactly once.
#include "support/autoctl.hpp"
#include "support/json_out.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

using automation::test::autoctl;
using automation::test::json_out;
using automation::test::TempDir;
using automation::test::write_file;

namespace {

std::vector<std::string> lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// A workflow that appends its `tag` parameter to marks.txt, and schedules for it.
void setup(const TempDir& dir, const std::string& schedules) {
  write_file(dir.file("workflows/mark.json"),
             fmt::format(R"({{"name":"mark","params":{{"tag":{{"default":"-"}},"payload":{{"default":"{{}}"}}}},
    "steps":[{{"id":"append","run":["/bin/sh","-c","printf '%s %s\n' \"$TAG\" \"$PAYLOAD\" >> {}"],
               "env":{{"TAG":"${{{{ params.tag }}}}","PAYLOAD":"${{{{ params.payload }}}}"}}}}]}})",
                         dir.file("marks.txt")));
  write_file(dir.file("workflows/schedules.json"), schedules);
}

// The seeds stay out of the way (health_check would probe a daemon that is not running).
void pause_seeds(const TempDir& dir) {
  for (const char* seed : {"auto_backup", "health_check", "auto_optimize", "auto_scale_check"})
    REQUIRE(autoctl({"schedule", "pause", seed}, {}, dir.path()).exit_code == 0);
}

}  // namespace

TEST_CASE("autoctl schedule tick: two processes ticking one database run every fire exactly once") {
  TempDir dir;
  setup(dir, R"({"schedules":[{"name":"minutely","workflow":"mark","cron":"* * * * *","overlap":"allow_all",
    "params":{"tag":"tick"}}]})");
  const std::string t0 = "2026-05-01T10:00:00Z";
  pause_seeds(dir);
  // The first tick creates the schedules' state (nothing before it is caught up).
  auto first = autoctl({"schedule", "tick", "--at", t0}, {}, dir.path());
  REQUIRE(first.exit_code == 0);
  constexpr int kTicks = 12;
  for (int i = 1; i <= kTicks; ++i) {
    const auto at = fmt::format("2026-05-01T10:{:02}:00Z", i);
    automation::test::ProcessResult a, b;
    std::thread ta([&] { a = autoctl({"schedule", "tick", "--at", at}, {}, dir.path()); });
    std::thread tb([&] { b = autoctl({"schedule", "tick", "--at", at}, {}, dir.path()); });
    ta.join();
    tb.join();
    INFO(a.err << b.err);
    CHECK(a.exit_code == 0);
    CHECK(b.exit_code == 0);
  }
  auto marks = lines(dir.file("marks.txt"));
  CHECK(marks.size() == static_cast<std::size_t>(kTicks));
  auto show = autoctl({"--json", "schedule", "show", "minutely", "--fires", "100"}, {}, dir.path());
  REQUIRE(show.exit_code == 0);
  auto doc = json_out(show);
  std::set<std::string> times;
  std::set<std::int64_t> runs;
  for (const auto& f : doc.at("fires").as_array()) {
    CHECK(f.at("outcome").as_string() == "started");
    times.insert(std::string(f.at("fire_time").as_string()));
    runs.insert(f.at("run_id").as_int64());
  }
  CHECK(times.size() == static_cast<std::size_t>(kTicks));
  CHECK(runs.size() == static_cast<std::size_t>(kTicks));
  CHECK(times.count("2026-05-01T10:01:00Z") == 1);
  CHECK(times.count("2026-05-01T10:12:00Z") == 1);
  auto history = autoctl({"--json", "workflow", "history", "mark", "--limit", "100"}, {}, dir.path());
  REQUIRE(history.exit_code == 0);
  CHECK(json_out(history).at("runs").as_array().size() == static_cast<std::size_t>(kTicks));
}

TEST_CASE("autoctl schedule: list, show, pause, resume and fire, with reasons in the audit log") {
  TempDir dir;
  setup(dir, R"([{"name":"hourly-mark","workflow":"mark","cron":"@hourly","params":{"tag":"hourly"},"catch_up":"2h"}])");
  auto list = autoctl({"--json", "schedule", "list"}, {}, dir.path());
  REQUIRE(list.exit_code == 0);
  std::set<std::string> names;
  const auto listed = json_out(list);
  for (const auto& s : listed.at("schedules").as_array()) names.insert(std::string(s.at("name").as_string()));
  CHECK(names.count("hourly-mark") == 1);
  CHECK(names.count("auto_backup") == 1);  // the seeds are listed too
  CHECK(names.count("on_user_register") == 1);
  // schedules.json sits among the workflow files but is not one of them.
  auto workflows = autoctl({"workflow", "list"}, {}, dir.path());
  CHECK(workflows.exit_code == 0);
  CHECK(workflows.out.find("mark") != std::string::npos);
  CHECK(workflows.err.find("schedules.json") == std::string::npos);
  auto text = autoctl({"schedule", "list"}, {}, dir.path());
  CHECK(text.out.find("cron 0 0 * * * * (@hourly)") != std::string::npos);

  pause_seeds(dir);
  REQUIRE(autoctl({"schedule", "tick", "--at", "2026-05-01T10:30:00Z"}, {}, dir.path()).exit_code == 0);
  auto pause = autoctl({"schedule", "pause", "hourly-mark", "--reason", "disk migration"}, {{"AUTOCTL_ACTOR", "user:ada"}}, dir.path());
  REQUIRE(pause.exit_code == 0);
  CHECK(pause.out.find("schedule hourly-mark paused: disk migration") != std::string::npos);
  auto paused = autoctl({"schedule", "tick", "--at", "2026-05-01T11:00:10Z"}, {}, dir.path());
  REQUIRE(paused.exit_code == 0);
  CHECK(lines(dir.file("marks.txt")).empty());
  auto shown = json_out(autoctl({"--json", "schedule", "show", "hourly-mark"}, {}, dir.path()));
  CHECK(shown.at("state").as_string() == "paused");
  CHECK(shown.at("reason").as_string() == "disk migration");
  CHECK(shown.at("updated_by").as_string() == "user:ada");

  REQUIRE(autoctl({"schedule", "resume", "hourly-mark"}, {{"AUTOCTL_ACTOR", "user:ada"}}, dir.path()).exit_code == 0);
  auto fire = autoctl({"schedule", "fire", "hourly-mark"}, {{"AUTOCTL_ACTOR", "user:ada"}}, dir.path());
  INFO(fire.err);
  REQUIRE(fire.exit_code == 0);
  CHECK(fire.err.find("schedule hourly-mark fired: run") != std::string::npos);
  CHECK(lines(dir.file("marks.txt")) == std::vector<std::string>{"hourly {}"});
  auto fires = json_out(autoctl({"--json", "schedule", "show", "hourly-mark"}, {}, dir.path())).at("fires").as_array();
  REQUIRE_FALSE(fires.empty());
  CHECK(fires[0].at("reason").as_string() == "fired by user:ada");

  auto audit = json_out(autoctl({"--json", "audit", "list", "--resource", "schedule:hourly-mark"}, {}, dir.path()));
  std::vector<std::string> actions;
  for (const auto& r : audit.at("records").as_array())
    actions.push_back(fmt::format("{} {}", r.at("action").as_string().c_str(), r.at("actor").as_string().c_str()));
  CHECK(std::count(actions.begin(), actions.end(), "schedule.pause user:ada") == 1);
  CHECK(std::count(actions.begin(), actions.end(), "schedule.resume user:ada") == 1);
  CHECK(std::count(actions.begin(), actions.end(), "schedule.fire user:ada") == 1);

  auto unknown = autoctl({"schedule", "pause", "hourly-mrak"}, {}, dir.path());
  CHECK(unknown.exit_code == 66);
  CHECK(unknown.err.find("no schedule named \"hourly-mrak\"") != std::string::npos);
  CHECK(unknown.err.find("hourly-mark") != std::string::npos);
}

TEST_CASE("autoctl emit: the event's schedules run with its payload here, or later and once with --no-wait") {
  TempDir dir;
  setup(dir, R"([{"name":"on_user_register","workflow":"mark","event":"user.registered","params":{"tag":"user"}},
                 {"name":"pro-only","workflow":"mark","event":"user.*","filter":{"plan":"pro"},"params":{"tag":"pro"}}])");
  auto now = autoctl({"emit", "user.registered", "--data", R"({"user":"ada","plan":"free"})"}, {}, dir.path());
  INFO(now.err);
  REQUIRE(now.exit_code == 0);
  CHECK(now.out.find("on_user_register") != std::string::npos);
  CHECK(lines(dir.file("marks.txt")) == std::vector<std::string>{R"(user {"user":"ada","plan":"free"})"});

  auto later = autoctl({"emit", "user.upgraded", "--data", R"({"user":"bob","plan":"pro"})", "--no-wait"}, {}, dir.path());
  REQUIRE(later.exit_code == 0);
  CHECK(later.out.find("1 schedule(s) will handle it") != std::string::npos);
  CHECK(lines(dir.file("marks.txt")).size() == 1);
  REQUIRE(autoctl({"schedule", "tick"}, {}, dir.path()).exit_code == 0);
  REQUIRE(autoctl({"schedule", "tick"}, {}, dir.path()).exit_code == 0);  // a second tick does not run it again
  auto marks = lines(dir.file("marks.txt"));
  REQUIRE(marks.size() == 2);
  CHECK(marks[1] == R"(pro {"user":"bob","plan":"pro"})");

  auto bad = autoctl({"emit", "user.registered", "--data", "{not json"}, {}, dir.path());
  CHECK(bad.exit_code == 65);
  CHECK(bad.err.find("--data") != std::string::npos);
}

TEST_CASE("autoctl schedule: a broken schedules.json is refused with every problem and its JSON path") {
  TempDir dir;
  setup(dir, R"({"schedules":[{"name":"x","workflow":"mark","cron":"every 7 minutes"},{"name":"y","workflow":"mark"}]})");
  auto r = autoctl({"schedule", "list"}, {}, dir.path());
  CHECK(r.exit_code == 65);
  CHECK(r.err.find("$.schedules[0].cron") != std::string::npos);
  CHECK(r.err.find("$.schedules[1]: needs one trigger") != std::string::npos);
  setup(dir, R"([{"name":"z","workflow":"nope","cron":"@daily"}])");
  auto tick = autoctl({"schedule", "tick"}, {}, dir.path());
  CHECK(tick.exit_code == 66);
  CHECK(tick.err.find("workflow \"nope\" is not registered") != std::string::npos);
}
