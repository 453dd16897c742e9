// autoctl breaker and history against real SQLite files, and one breaker shared by several processes.
#include <automation/core/json.hpp>
#include <automation/resilience/circuit_breaker.hpp>
#include <automation/storage/sqlite_store.hpp>
#include <automation/testing/manual_clock.hpp>

#include "support/autoctl.hpp"
#include "support/breaker.hpp"
#include "support/json_out.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <filesystem>
#include <future>

using namespace automation;
using namespace std::chrono_literals;
using automation::test::json_out;
using automation::test::run_process;
namespace fs = std::filesystem;

namespace {

// autoctl on the database `db`, as user:ci.
test::ProcessResult autoctl(const std::string& db, std::vector<std::string> args, const std::string& cwd = {}) {
  args.insert(args.begin(), {"--db", "sqlite:" + db});
  return test::autoctl(args, {{"AUTOCTL_ACTOR", "user:ci"}}, cwd);
}

}  // namespace

TEST_CASE("cli: autoctl processes and a library process share one circuit breaker through one SQLite file", "[breaker]") {
  test::TempDir dir;
  const auto db = dir.file("shared.db");
  // Five separate processes each fail once: the fifth failure in a row opens the shared breaker.
  for (int i = 0; i < 5; ++i) {
    auto r = autoctl(db, {"breaker", "run", "payments", "--", "sh", "-c", "exit 3"});
    INFO(r.err);
    CHECK(r.exit_code == 3);
  }
  // A sixth process is refused without running its command.
  auto refused = autoctl(db, {"breaker", "run", "payments", "--", "touch", "marker"}, dir.path().string());
  CHECK(refused.exit_code == 69);
  CHECK_THAT(refused.err, Catch::Contains("circuit breaker 'payments' is open"));
  CHECK_THAT(refused.err, Catch::Contains("retry after"));
  CHECK_FALSE(fs::exists(dir.path() / "marker"));

  auto status = autoctl(db, {"--json", "breaker", "status", "payments"});
  REQUIRE(status.exit_code == 0);
  auto sj = json_out(status);
  CHECK(sj.at("state").as_string() == "open");
  CHECK(sj.at("reason").as_string() == "consecutive_failures");
  CHECK(sj.at("open_attempt").as_int64() == 1);

  // This process joins with its own connection and sees the same breaker.
  auto store = storage::SqliteStore::open(db).value();
  testing::ManualClock clock(SystemClock::instance().now());
  resilience::CircuitBreaker mine("payments", resilience::BreakerConfig::seed_preset(), clock);
  REQUIRE(mine.share(*store, {.mode = resilience::SharingMode::shared, .poll_interval = 1s}));
  CHECK(mine.current_state() == resilience::BreakerState::open);
  CHECK_FALSE(mine.try_acquire());

  // An operator resets it from another process; this one follows at its next poll.
  auto reset = autoctl(db, {"breaker", "reset", "payments", "--reason", "provider fixed"});
  REQUIRE(reset.exit_code == 0);
  clock.advance(1s);
  auto p = mine.try_acquire();
  CHECK(p.admitted());
  p.success();
  CHECK(mine.last_reason() == "shared:reset");
  CHECK(autoctl(db, {"breaker", "run", "payments", "--", "true"}).exit_code == 0);

  auto forced = autoctl(db, {"breaker", "force-open", "payments", "--reason", "maintenance"});
  REQUIRE(forced.exit_code == 0);
  clock.advance(1s);
  CHECK_FALSE(mine.try_acquire());
  CHECK(mine.current_state() == resilience::BreakerState::forced_open);
  CHECK(autoctl(db, {"breaker", "run", "payments", "--", "true"}).exit_code == 69);

  // The library process trips a second breaker; autoctl lists both.
  resilience::CircuitBreaker search("search", resilience::BreakerConfig::seed_preset(), clock);
  REQUIRE(search.share(*store, {.mode = resilience::SharingMode::shared}));
  test::fail_n(search, 5);
  auto list = autoctl(db, {"--json", "breaker", "list"});
  REQUIRE(list.exit_code == 0);
  auto arr = json_out(list).at("breakers").as_array();
  REQUIRE(arr.size() == 2);
  CHECK(arr[0].at("name").as_string() == "payments");
  CHECK(arr[0].at("state").as_string() == "forced_open");
  CHECK(arr[1].at("state").as_string() == "open");

  // The Prometheus export passes promtool.
  auto prom = autoctl(db, {"breaker", "export", "--format", "prometheus"});
  REQUIRE(prom.exit_code == 0);
  CHECK_THAT(prom.out, Catch::Contains(R"(automation_circuit_breaker_state{name="search",state="open"} 1)"));
  CHECK_THAT(prom.out, Catch::Contains("# TYPE automation_circuit_breaker_writer_calls gauge"));
  auto check = run_process({PROMTOOL_PATH, "check", "metrics"}, {}, {}, prom.out);
  INFO(check.out << check.err);
  CHECK(check.exit_code == 0);

  // Every manual change is in the audit trail with its reason.
  auto audit = autoctl(db, {"--json", "audit", "list", "--resource", "breaker:*", "--oldest-first"});
  auto records = json_out(audit).at("records").as_array();
  REQUIRE(records.size() == 2);
  CHECK(records[0].at("action").as_string() == "breaker.reset");
  CHECK(records[0].at("reason").as_string() == "provider fixed");
  CHECK(records[1].at("action").as_string() == "breaker.force_open");

  // One-shot processes carry the half-open probes between them: two successes close it.
  const std::vector<std::string> quick{"breaker", "run", "flaky", "--consecutive-failures", "1", "--"};
  auto with = [&](std::vector<std::string> cmd) {
    auto args = quick;
    args.insert(args.end(), cmd.begin(), cmd.end());
    return autoctl(db, args);
  };
  CHECK(with({"false"}).exit_code == 1);  // opens for 60 s
  auto opened = store->get_breaker("flaky").value().value();
  REQUIRE(opened.state == "open");
  opened.open_until = SystemClock::instance().now() - 1s;  // the open period is over, without waiting for it
  REQUIRE(store->put_breaker(opened, opened.version));
  CHECK(with({"true"}).exit_code == 0);  // half-open: the first probe succeeds
  CHECK(json_out(autoctl(db, {"--json", "breaker", "status", "flaky"})).at("state").as_string() == "half_open");
  CHECK(with({"true"}).exit_code == 0);  // the second closes it
  CHECK(json_out(autoctl(db, {"--json", "breaker", "status", "flaky"})).at("state").as_string() == "closed");

  auto unknown = autoctl(db, {"breaker", "reset", "nope"});
  CHECK(unknown.exit_code == 66);
  CHECK_THAT(unknown.err, Catch::Contains("no circuit breaker named 'nope'"));
}

TEST_CASE("cli: concurrent breaker run processes lose no failure to a compare-and-set race", "[breaker]") {
  test::TempDir dir;
  const auto db = dir.file("race.db");
  REQUIRE(autoctl(db, {"store", "migrate"}).exit_code == 0);
  // Four processes fail at about the same time; four failures in a row open the breaker, so it is
  // open afterwards only if every process's failure was counted.
  constexpr int kProcesses = 4;
  std::vector<std::future<test::ProcessResult>> runs;
  for (int i = 0; i < kProcesses; ++i)
    runs.push_back(std::async(std::launch::async, [&] {
      return autoctl(db, {"breaker", "run", "shared", "--consecutive-failures", std::to_string(kProcesses), "--", "sh", "-c", "exit 3"});
    }));
  for (auto& r : runs) {
    auto res = r.get();
    INFO(res.err);
    CHECK(res.exit_code == 3);
  }
  auto status = json_out(autoctl(db, {"--json", "breaker", "status", "shared"}));
  CHECK(status.at("state").as_string() == "open");
  CHECK(status.at("reason").as_string() == "consecutive_failures");
  CHECK(status.at("open_attempt").to_number<int>() == 1);
}

TEST_CASE("cli: history record, list, stats and prune", "[history]") {
  test::TempDir dir;
  const auto db = dir.file("h.db");
  for (int i = 0; i < 3; ++i)
    REQUIRE(autoctl(db, {"history", "record", "--domain", "backup", "--action", "nightly", "--duration", "12m", "--params",
                         R"({"target":"s3"})", "--impact", "2"})
                .exit_code == 0);
  REQUIRE(autoctl(db, {"history", "record", "--domain", "backup", "--action", "nightly", "--outcome", "failure", "--error", "disk full",
                       "--duration", "1m", "--params", R"({"target":"nfs"})"})
              .exit_code == 0);
  auto bad = autoctl(db, {"history", "record", "--domain", "backup", "--action", "nightly", "--params", "[1]"});
  CHECK(bad.exit_code == 65);
  CHECK_THAT(bad.err, Catch::Contains("\"params\" must be a JSON object"));

  auto list = autoctl(db, {"--json", "history", "list"});
  REQUIRE(list.exit_code == 0);
  CHECK(json_out(list).at("records").as_array().size() == 4);

  auto stats = autoctl(db, {"--json", "history", "stats", "--domain", "backup"});
  REQUIRE(stats.exit_code == 0);
  auto g = json_out(stats).at("groups").as_array().at(0).as_object();
  CHECK(g.at("count").to_number<int>() == 4);
  CHECK(g.at("success_rate").to_number<double>() == Approx(0.75));
  CHECK(g.at("mean_duration_ms").to_number<double>() == Approx(555000));
  CHECK(g.at("p95_duration_ms").to_number<double>() == Approx(720000));
  CHECK(g.at("mean_impact").to_number<double>() == Approx(2));
  CHECK(g.at("top_failures").as_array().at(0).at("reason").as_string() == "disk full");
  auto param = g.at("success_params").as_array().at(0).as_object();
  CHECK(param.at("key").as_string() == "target");
  CHECK(param.at("value").as_string() == "\"s3\"");
  CHECK(param.at("support").to_number<int>() == 3);

  auto text = autoctl(db, {"history", "stats", "--since", "1h"});
  REQUIRE(text.exit_code == 0);
  CHECK_THAT(text.out, Catch::Contains("backup/nightly"));
  CHECK_THAT(text.out, Catch::Contains("success rate  75.0%"));
  CHECK_THAT(text.out, Catch::Contains("worked with   target=\"s3\": 3 of 3 succeeded"));

  auto keep = autoctl(db, {"--json", "history", "prune", "--older-than", "90d"});
  REQUIRE(keep.exit_code == 0);
  CHECK(json_out(keep).at("deleted").to_number<int>() == 0);
  auto dry = autoctl(db, {"--json", "history", "prune", "--older-than", "0s", "--dry-run"});
  CHECK(json_out(dry).at("would_delete").to_number<int>() == 4);
  auto all = autoctl(db, {"--json", "history", "prune", "--older-than", "0s"});
  CHECK(json_out(all).at("deleted").to_number<int>() == 4);
  auto audit = autoctl(db, {"--json", "audit", "list", "--action", "history.prune"});
  CHECK(json_out(audit).at("records").as_array().size() == 2);
  CHECK(autoctl(db, {"history", "prune", "--older-than", "soon"}).exit_code == 65);
}
