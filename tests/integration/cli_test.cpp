// Runs the real autoctl binary against real SQLite files in temporary directories.
#include <automation/core/json.hpp>

#include "support/autoctl.hpp"
#include "support/json_out.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>

using namespace automation;
using automation::test::autoctl;
using automation::test::json_out;
using automation::test::run_process;
namespace fs = std::filesystem;

namespace {

boost::json::object json_err(const test::ProcessResult& r) {
  auto v = json::parse(r.err, "stderr");
  INFO(r.err);
  REQUIRE(v);
  return v->as_object().at("error").as_object();
}

}  // namespace

TEST_CASE("cli: --version, --help with examples, and usage errors exit 64") {
  auto v = autoctl({"--version"});
  CHECK(v.exit_code == 0);
  CHECK_THAT(v.out, Catch::StartsWith("autoctl "));
  auto h = autoctl({"--help"});
  CHECK(h.exit_code == 0);
  CHECK_THAT(h.out, Catch::Contains("Examples:"));
  CHECK_THAT(h.out, Catch::Contains("store"));
  auto sh = autoctl({"audit", "list", "--help"});
  CHECK(sh.exit_code == 0);
  CHECK_THAT(sh.out, Catch::Contains("--since"));
  auto none = autoctl({});
  CHECK(none.exit_code == 64);
  auto bad = autoctl({"store", "frobnicate"});
  CHECK(bad.exit_code == 64);
  auto badjson = autoctl({"--json", "audit", "list", "--limit", "many"});
  CHECK(badjson.exit_code == 64);
  CHECK(json_err(badjson).at("code").as_string() == "invalid_argument");
}

TEST_CASE("cli: migrate creates the database under var/ by default, records an audit entry, info reports it") {
  test::TempDir dir;
  auto info_missing = autoctl({"store", "info"}, {}, dir.path().string());
  CHECK(info_missing.exit_code == 66);
  CHECK_THAT(info_missing.err, Catch::Contains("var/automation.db does not exist"));
  CHECK_FALSE(fs::exists(dir.path() / "var"));  // looking changed nothing

  auto m = autoctl({"--json", "store", "migrate"}, {}, dir.path().string());
  REQUIRE(m.exit_code == 0);
  auto mj = json_out(m);
  CHECK(mj.at("from_version").as_int64() == 0);
  CHECK(mj.at("to_version").as_int64() >= 1);
  CHECK(fs::exists(dir.path() / "var" / "automation.db"));

  auto again = autoctl({"store", "migrate"}, {}, dir.path().string());
  CHECK(again.exit_code == 0);
  CHECK_THAT(again.out, Catch::Contains("schema is current"));

  auto info = autoctl({"--json", "store", "info", "--check"}, {}, dir.path().string());
  REQUIRE(info.exit_code == 0);
  auto ij = json_out(info);
  CHECK(ij.at("backend").as_string() == "sqlite");
  CHECK(ij.at("journal_mode").as_string() == "wal");
  CHECK(ij.at("integrity").as_string() == "ok");
  CHECK(ij.at("pending_migrations").as_array().empty());
  CHECK(ij.at("areas").as_array().at(0).as_object().at("rows").as_int64() == 2);

  auto audit = autoctl({"--json", "audit", "list", "--action", "store.migrate", "--oldest-first"}, {{"AUTOCTL_ACTOR", "user:ci"}},
                       dir.path().string());
  REQUIRE(audit.exit_code == 0);
  auto records = json_out(audit).at("records").as_array();
  REQUIRE(records.size() == 2);
  const auto& first = records.at(0).as_object();
  CHECK(first.at("outcome").as_string() == "success");
  CHECK(first.at("resource").as_string() == "store");
  CHECK(first.at("details").as_object().at("from_version").as_int64() == 0);
  CHECK_THAT(std::string(first.at("origin").as_string()), Catch::Contains("cli pid="));
  CHECK(first.at("correlation_id").as_string().size() == 32);
}

TEST_CASE("cli: AUTOMATION_DB and --db select the store and --db wins") {
  test::TempDir dir;
  const auto env_db = dir.file("env.db"), flag_db = dir.file("flag.db");
  REQUIRE(autoctl({"store", "migrate"}, {{"AUTOMATION_DB", "sqlite:" + env_db}}).exit_code == 0);
  CHECK(fs::exists(env_db));
  REQUIRE(autoctl({"--db", "sqlite:" + flag_db, "store", "migrate"}, {{"AUTOMATION_DB", "sqlite:" + env_db}}).exit_code == 0);
  CHECK(fs::exists(flag_db));
  auto audit = autoctl({"--json", "--db", "sqlite:" + env_db, "audit", "list"});
  CHECK(json_out(audit).at("records").as_array().size() == 1);
}

TEST_CASE("cli: audit list filters by time, actor and resource and rejects bad filters") {
  test::TempDir dir;
  const auto db = "sqlite:" + dir.file("a.db");
  REQUIRE(autoctl({"--db", db, "store", "migrate"}, {{"AUTOCTL_ACTOR", "user:alice"}}).exit_code == 0);
  REQUIRE(autoctl({"--db", db, "store", "migrate"}, {{"AUTOCTL_ACTOR", "token:bot"}}).exit_code == 0);
  auto count = [&](std::vector<std::string> filter) {
    std::vector<std::string> args{"--json", "--db", db, "audit", "list"};
    args.insert(args.end(), filter.begin(), filter.end());
    auto r = autoctl(args);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    return json_out(r).at("records").as_array().size();
  };
  CHECK(count({}) == 2);
  CHECK(count({"--actor", "user:alice"}) == 1);
  CHECK(count({"--actor", "token:*"}) == 1);
  CHECK(count({"--since", "1h"}) == 2);
  CHECK(count({"--until", "2000-01-01"}) == 0);
  CHECK(count({"--resource", "breaker:*"}) == 0);
  CHECK(count({"--outcome", "denied"}) == 0);
  CHECK(count({"--limit", "1"}) == 1);
  auto bad = autoctl({"--json", "--db", db, "audit", "list", "--since", "last week"});
  CHECK(bad.exit_code == 65);
  auto e = json_err(bad);
  CHECK(e.at("code").as_string() == "invalid_argument");
  CHECK_THAT(std::string(e.at("message").as_string()), Catch::Contains("--since") && Catch::Contains("last week"));
  auto badout = autoctl({"--db", db, "audit", "list", "--outcome", "meh"});
  CHECK(badout.exit_code == 65);
  CHECK_THAT(badout.err, Catch::StartsWith("autoctl: error: --outcome: unknown audit outcome \"meh\""));
}

TEST_CASE("cli: bad databases give clear errors, exit codes, and stay untouched") {
  test::TempDir dir;
  const auto junk = dir.file("junk.db");
  std::ofstream(junk) << "id,value\n1,2\n";
  const auto before = test::read_file(junk);
  for (const auto& cmd : {std::vector<std::string>{"store", "info"}, {"store", "migrate"}, {"audit", "list"}}) {
    std::vector<std::string> args{"--json", "--db", "sqlite:" + junk};
    args.insert(args.end(), cmd.begin(), cmd.end());
    auto r = autoctl(args);
    CHECK(r.exit_code == 65);
    CHECK(json_err(r).at("code").as_string() == "corrupt");
    CHECK(r.out.empty());
  }
  CHECK(test::read_file(junk) == before);

  const auto newer = dir.file("newer.db");
  REQUIRE(autoctl({"--db", newer, "store", "migrate"}).exit_code == 0);
  // Bump the version as a future release would.
  REQUIRE(test::run_process({SQLITE3_PATH, newer, "PRAGMA user_version = 42;"}).exit_code == 0);
  const auto newer_before = test::read_file(newer);
  auto r = autoctl({"--json", "--db", newer, "store", "migrate"});
  CHECK(r.exit_code == 65);
  CHECK(json_err(r).at("code").as_string() == "schema_too_new");
  CHECK(test::read_file(newer) == newer_before);

  auto uri = autoctl({"--db", "mysql://x", "store", "info"});
  CHECK(uri.exit_code == 65);
  CHECK_THAT(uri.err, Catch::Contains("invalid store URI \"mysql://x\""));
}

TEST_CASE("cli: configuration problems exit 78 naming every key and config show reports sources") {
  test::TempDir dir;
  const auto cfg = dir.file("c.json");
  std::ofstream(cfg) << R"({"thresholds": {"cpu_high": "high"}, "storage": {"busy_timout": "1s"}})";
  auto r = autoctl({"--config", cfg, "store", "info"}, {{"AUTOMATION_MEMORY_HIGH_THRESHOLD", "lots"}});
  CHECK(r.exit_code == 78);
  CHECK_THAT(r.err, Catch::Contains("\"thresholds.cpu_high\": expected a number"));
  CHECK_THAT(r.err, Catch::Contains("unknown key \"storage.busy_timout\""));
  CHECK_THAT(r.err, Catch::Contains("AUTOMATION_MEMORY_HIGH_THRESHOLD"));
  auto missing = autoctl({"--json", "--config", dir.file("nope.json"), "config", "show"});
  CHECK(missing.exit_code == 78);
  CHECK(json_err(missing).at("code").as_string() == "config");

  std::ofstream(cfg, std::ios::trunc) << R"({"thresholds": {"cpu_high": 75}})";
  auto show = autoctl({"--json", "--config", cfg, "config", "show"}, {{"AUTOMATION_CPU_LOW_THRESHOLD", "15"}});
  REQUIRE(show.exit_code == 0);
  auto j = json_out(show);
  CHECK(j.at("config").at("thresholds").at("cpu_high").to_number<double>() == 75);
  CHECK(j.at("config").at("thresholds").at("cpu_low").to_number<double>() == 15);
  CHECK(j.at("sources").at("thresholds.cpu_low").as_string() == "env:AUTOMATION_CPU_LOW_THRESHOLD");
  CHECK(j.at("sources").at("thresholds.cpu_high").as_string() == "file:" + cfg);
  auto text = autoctl({"--config", cfg, "config", "show"});
  REQUIRE(text.exit_code == 0);
  CHECK_THAT(text.out, Catch::Contains("thresholds.cpu_high      75 ") && Catch::Contains("(file:" + cfg + ")") && !Catch::Contains("E1"));
  CHECK(autoctl({"config", "check", cfg}).exit_code == 0);
  CHECK(autoctl({"config", "keys"}).out.find("AUTOMATION_CPU_HIGH_THRESHOLD") != std::string::npos);
}

TEST_CASE("cli: two processes migrating and writing one SQLite file at once") {
  test::TempDir dir;
  const auto db = "sqlite:" + dir.file("shared.db");
  auto a = std::async(std::launch::async, [&] { return autoctl({"--db", db, "store", "migrate"}, {{"AUTOCTL_ACTOR", "proc:a"}}); });
  auto b = std::async(std::launch::async, [&] { return autoctl({"--db", db, "store", "migrate"}, {{"AUTOCTL_ACTOR", "proc:b"}}); });
  auto ra = a.get(), rb = b.get();
  INFO(ra.err << rb.err);
  CHECK(ra.exit_code == 0);
  CHECK(rb.exit_code == 0);
  auto audit = json_out(autoctl({"--json", "--db", db, "audit", "list"})).at("records").as_array();
  CHECK(audit.size() == 2);
  int applied = 0;
  for (const auto& r : audit) applied += static_cast<int>(r.at("details").at("applied").as_array().size());
  auto info = json_out(autoctl({"--json", "--db", db, "store", "info"}));
  CHECK(info.at("schema_version").as_int64() == info.at("latest_schema_version").as_int64());
  CHECK(applied == info.at("latest_schema_version").as_int64());  // each migration applied by exactly one of them
}
