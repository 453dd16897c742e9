// The Store contract: every backend must pass every case here identically.
#include <automation/storage/memory_store.hpp>
#include <automation/storage/sqlite_store.hpp>
#include <automation/testing/manual_clock.hpp>

#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <set>
#include <thread>

using namespace automation;
using namespace automation::storage;
using namespace std::chrono_literals;

namespace {

struct MemoryBackend {
  std::unique_ptr<Store> store = std::make_unique<MemoryStore>();
};

struct SqliteBackend {
  test::TempDir dir;
  std::unique_ptr<Store> store = open_store("sqlite:" + dir.file("contract.db")).value();
};

AuditRecord record(TimePoint t, std::string actor, std::string action, std::string resource, AuditOutcome outcome = AuditOutcome::success) {
  AuditRecord r;
  r.time = t;
  r.actor = std::move(actor);
  r.action = std::move(action);
  r.resource = std::move(resource);
  r.origin = "test";
  r.outcome = outcome;
  r.reason = "because";
  r.details = R"({"n":1})";
  r.correlation_id = "abc";
  return r;
}

}  // namespace

TEMPLATE_TEST_CASE("contract: a new store is at the latest schema and empty", "[contract]", MemoryBackend, SqliteBackend) {
  TestType b;
  CHECK(b.store->schema_version().value() == latest_schema_version());
  auto info = b.store->info();
  REQUIRE(info);
  CHECK(info->schema_version == latest_schema_version());
  REQUIRE(info->areas.size() >= 1);
  CHECK(info->areas[0].area == "audit");
  CHECK(info->areas[0].rows == 0);
  auto m = b.store->migrate();
  REQUIRE(m);
  CHECK(m->applied.empty());
  CHECK(m->from_version == m->to_version);
}

TEMPLATE_TEST_CASE("contract: audit records round-trip with store-assigned increasing ids", "[contract]", MemoryBackend, SqliteBackend) {
  TestType b;
  testing::ManualClock clock;
  const auto t0 = clock.now() + 123ms;
  std::vector<AuditRecord> batch{record(t0, "user:alice", "store.migrate", "store"),
                                 record(t0 + 1s, "token:bot", "breaker.reset", "breaker:payments", AuditOutcome::failure)};
  batch[0].id = 999;  // ignored: the store assigns ids
  auto last = b.store->append_audit(batch);
  REQUIRE(last);
  auto all = b.store->query_audit({.limit = 0, .newest_first = false});
  REQUIRE(all);
  REQUIRE(all->size() == 2);
  CHECK(all->at(1).id == *last);
  CHECK(all->at(0).id < all->at(1).id);
  auto expected = batch;
  expected[0].id = all->at(0).id;
  expected[1].id = all->at(1).id;
  CHECK(all->at(0) == expected[0]);
  CHECK(all->at(1) == expected[1]);
  auto more = b.store->append_audit(std::vector{record(t0 + 2s, "user:bob", "config.set", "config")});
  REQUIRE(more);
  CHECK(*more > *last);
}

TEMPLATE_TEST_CASE("contract: audit queries filter by time range, actor, action, resource and outcome", "[contract]", MemoryBackend,
                   SqliteBackend) {
  TestType b;
  testing::ManualClock clock;
  const auto t0 = clock.now();
  std::vector<AuditRecord> batch;
  for (int i = 0; i < 10; ++i) {
    batch.push_back(record(t0 + std::chrono::minutes(i), i % 2 ? "user:alice" : "system:scheduler",
                           i < 5 ? "breaker.reset" : "store.migrate", i % 3 ? "breaker:payments" : "breaker:search",
                           i == 7 ? AuditOutcome::denied : AuditOutcome::success));
  }
  REQUIRE(b.store->append_audit(batch));
  auto count = [&](AuditQuery q) {
    q.limit = 0;
    return b.store->query_audit(q).value().size();
  };
  CHECK(count({}) == 10);
  CHECK(count({.since = t0 + 3min}) == 7);
  CHECK(count({.since = t0 + 3min, .until = t0 + 5min}) == 2);  // since inclusive, until exclusive
  CHECK(count({.actor = "user:alice"}) == 5);
  CHECK(count({.actor = "user:*"}) == 5);
  CHECK(count({.actor = "*"}) == 10);
  CHECK(count({.action = "store.*"}) == 5);
  CHECK(count({.resource = "breaker:search"}) == 4);
  CHECK(count({.resource = "breaker:*"}) == 10);
  CHECK(count({.resource = "breaker:"}) == 0);
  CHECK(count({.outcome = AuditOutcome::denied}) == 1);
  CHECK(count({.actor = "user:alice", .resource = "breaker:payments"}) == 3);
  auto newest = b.store->query_audit({.limit = 3, .newest_first = true}).value();
  REQUIRE(newest.size() == 3);
  CHECK(newest[0].time == t0 + 9min);
  CHECK(newest[2].time == t0 + 7min);
  auto oldest = b.store->query_audit({.limit = 2, .newest_first = false}).value();
  REQUIRE(oldest.size() == 2);
  CHECK(oldest[0].time == t0);
}

TEMPLATE_TEST_CASE("contract: invalid audit records are rejected whole and nothing is stored", "[contract]", MemoryBackend, SqliteBackend) {
  TestType b;
  testing::ManualClock clock;
  auto good = record(clock.now(), "user:a", "x.y", "r");
  auto bad_details = good;
  bad_details.details = "[1,2]";
  auto no_actor = good;
  no_actor.actor.clear();
  auto broken_json = good;
  broken_json.details = "{\"a\":";
  for (const auto& bad : {bad_details, no_actor, broken_json}) {
    auto r = b.store->append_audit(std::vector{good, bad});
    REQUIRE_FALSE(r);
    CHECK(r.error().is(errc::invalid_argument));
  }
  CHECK(b.store->query_audit({.limit = 0}).value().empty());
  auto r = b.store->append_audit(std::vector{no_actor});
  CHECK_THAT(r.error().message, Catch::Contains("\"actor\" must not be empty"));
}

TEMPLATE_TEST_CASE("contract: concurrent appenders lose nothing and ids are unique", "[contract]", MemoryBackend, SqliteBackend) {
  TestType b;
  testing::ManualClock clock;
  constexpr int kThreads = 4, kPerThread = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto r = b.store->append_audit(std::vector{record(clock.now(), "thread:" + std::to_string(t), "a.b", "r")});
        if (!r) FAIL_CHECK(r.error().message);
      }
    });
  }
  for (auto& t : threads) t.join();
  auto all = b.store->query_audit({.limit = 0}).value();
  CHECK(all.size() == kThreads * kPerThread);
  std::set<std::int64_t> ids;
  for (const auto& r : all) ids.insert(r.id);
  CHECK(ids.size() == all.size());
  CHECK(b.store->info().value().areas[0].rows == kThreads * kPerThread);
}
