// MetricsAggregator against hand-computed fixtures: periods (ISO weeks, month ends, leap days),
// time zones, usage and revenue figures, changes, idempotent loads, stored rollups, late events and
// "already running".
#include <automation/core/json.hpp>
#include <automation/metrics/aggregator.hpp>
#include <automation/storage/memory_store.hpp>
#include <automation/storage/sqlite_store.hpp>
#include <automation/testing/fault_injecting_store.hpp>
#include <automation/testing/manual_clock.hpp>

#include "metrics/codec.hpp"
#include "support/temp_dir.hpp"

#include <fmt/format.h>
#include <catch2/catch.hpp>

using namespace automation;
using namespace automation::metrics;
using namespace std::chrono;
using namespace std::chrono_literals;
namespace mdetail = automation::metrics::detail;

namespace {

TimePoint at(std::string_view text) { return parse_timestamp(text).value(); }

UsageEvent ev(std::string_view time, std::string user, std::string feature, std::string type = "start",
              std::optional<Duration> duration = std::nullopt, std::string error = "") {
  return {at(time), std::move(user), std::move(feature), std::move(type), duration, std::move(error)};
}

struct MemoryBackend {
  std::unique_ptr<storage::Store> store = std::make_unique<storage::MemoryStore>();
};
struct SqliteBackend {
  test::TempDir dir;
  std::unique_ptr<storage::Store> store = storage::open_store("sqlite:" + dir.file("m.db")).value();
};

const FeatureUsage* feature(const Rollup& r, std::string_view name) {
  for (const auto& f : r.usage.features)
    if (f.feature == name) return &f;
  return nullptr;
}
const Change* change(const Rollup& r, std::string_view figure) {
  for (const auto& c : r.changes)
    if (c.figure == figure) return &c;
  return nullptr;
}

}  // namespace

TEST_CASE("metrics: periods follow ISO weeks, month ends and leap days", "[metrics]") {
  // 2026-01-01 is a Thursday: its ISO week starts on Monday 2025-12-29 and is 2026-W01.
  auto w = week_of(year{2026} / January / 1);
  CHECK(w.key() == "2026-W01");
  CHECK(w.first == year{2025} / December / 29);
  CHECK(w.last == year{2026} / January / 4);
  // 2026 has 53 ISO weeks (it starts on a Thursday), so Friday 2027-01-01 is in 2026-W53.
  CHECK(week_of(year{2027} / January / 1).key() == "2026-W53");
  CHECK(week_of(year{2027} / January / 4).key() == "2027-W01");
  CHECK(parse_period("2026-W53").value() == week_of(year{2026} / December / 31));
  CHECK_FALSE(parse_period("2025-W53"));  // 2025 has 52 weeks
  CHECK_FALSE(parse_period("2026-W00"));
  CHECK(week_of(year{2027} / January / 4).previous().key() == "2026-W53");

  auto feb = month_of(year{2028} / February / 10);
  CHECK(feb.key() == "2028-02");
  CHECK(feb.last == year{2028} / February / 29);  // a leap year
  CHECK(feb.days() == 29);
  CHECK(month_of(year{2028} / March / 31).previous() == feb);
  CHECK(month_of(year{2026} / January / 15).previous().key() == "2025-12");
  CHECK(day_of(year{2028} / March / 1).previous().key() == "2028-02-29");

  auto range = parse_period("2026-11-01..2026-11-15").value();
  CHECK(range.granularity == Granularity::range);
  CHECK(range.days() == 15);
  CHECK(range.previous().key() == "2026-10-17..2026-10-31");
  CHECK_FALSE(parse_period("2026-11-15..2026-11-01"));
  CHECK_FALSE(parse_period("2026-02-30"));
  CHECK_FALSE(parse_period("2026-13"));
  CHECK_FALSE(parse_period("yesterday"));
  for (auto key : {"2026-11-23", "2026-W48", "2026-11", "2026-11-01..2026-11-15"}) CHECK(parse_period(key).value().key() == key);
}

TEMPLATE_TEST_CASE("metrics: usage figures match a hand-computed day", "[metrics]", MemoryBackend, SqliteBackend) {
  TestType b;
  testing::ManualClock clock(at("2026-11-24T01:00:00Z"));
  MetricsAggregator agg(*b.store, clock);
  const std::vector<UsageEvent> events{
      ev("2026-11-23T08:00:00Z", "ann", "vocal-coach", "start", 100ms),
      ev("2026-11-23T09:00:00Z", "bob", "vocal-coach", "start", 200ms),
      ev("2026-11-23T10:00:00Z", "ann", "vocal-coach", "complete", 300ms, "E500"),
      ev("2026-11-23T11:00:00Z", "cat", "vocal-coach", "start", 400ms),
      ev("2026-11-23T12:00:00Z", "ann", "lyrics", "start"),  // no duration
      ev("2026-11-23T23:59:59.999Z", "dan", "lyrics", "start", 1500us, "E404"),
      ev("2026-11-24T00:00:00Z", "eve", "lyrics", "start", 1ms),        // the next day
      ev("2026-11-22T12:00:00Z", "ann", "vocal-coach", "start", 50ms),  // the day before
      ev("2026-11-22T13:00:00Z", "bob", "lyrics", "start", 60ms),
  };
  auto ing = agg.ingest(events);
  REQUIRE(ing);
  CHECK(ing->stored == 9);
  CHECK(ing->blocks_written == 1);

  auto r = agg.aggregate(day_of(year{2026} / November / 23));
  REQUIRE(r);
  CHECK_FALSE(r->reused);
  CHECK(r->why == "first aggregation of 2026-11-23");
  CHECK(r->begin == at("2026-11-23T00:00:00Z"));
  CHECK(r->end == at("2026-11-24T00:00:00Z"));
  CHECK(r->usage.events == 6);
  CHECK(r->usage.unique_users == 4);  // ann, bob, cat, dan
  CHECK(r->usage.errors == 2);
  CHECK(r->usage.error_rate == Approx(2.0 / 6));
  REQUIRE(r->usage.features.size() == 2);
  CHECK(r->usage.features[0].feature == "vocal-coach");  // most events first
  const auto* vc = feature(*r, "vocal-coach");
  CHECK(vc->events == 4);
  CHECK(vc->errors == 1);
  CHECK(vc->error_rate == Approx(0.25));
  CHECK(vc->duration.count == 4);
  CHECK(vc->duration.mean_ms == Approx(250));
  CHECK(vc->duration.p50_ms == Approx(200));  // nearest rank: ceil(0.5 * 4) = 2nd of 100, 200, 300, 400
  CHECK(vc->duration.p95_ms == Approx(400));
  const auto* ly = feature(*r, "lyrics");
  CHECK(ly->events == 2);
  CHECK(ly->duration.count == 1);
  CHECK(ly->duration.mean_ms == Approx(1.5));
  CHECK(r->usage.duration.count == 5);
  CHECK(r->usage.duration.p50_ms == Approx(200));  // 1.5, 100, 200, 300, 400
  REQUIRE(r->usage.event_types.size() == 2);
  CHECK(r->usage.event_types[0] == NamedCount{"start", 5});
  CHECK(r->usage.event_types[1] == NamedCount{"complete", 1});
  REQUIRE(r->usage.error_codes.size() == 2);
  CHECK(r->usage.error_codes[0] == NamedCount{"E404", 1});

  // Against the day before: 2 events (vocal-coach 1, lyrics 1), users ann and bob.
  const auto* c = change(*r, "usage.events");
  REQUIRE(c);
  CHECK(c->previous == 2);
  CHECK(c->absolute == 4);
  CHECK(*c->relative == Approx(2.0));
  CHECK(change(*r, "usage.unique_users")->previous == 2);
  CHECK(change(*r, "usage.feature.vocal-coach.events")->relative == Approx(3.0));
  CHECK_FALSE(change(*r, "usage.errors")->relative);  // no errors the day before: no relative change
  CHECK(change(*r, "usage.event_type.complete")->value == 1);
}

TEST_CASE("metrics: durations are exact to three significant digits", "[metrics]") {
  storage::MemoryStore store;
  testing::ManualClock clock;
  MetricsAggregator agg(store, clock);
  std::vector<UsageEvent> events;
  for (int i = 1; i <= 100; ++i) events.push_back(ev("2026-01-01T10:00:00Z", "u", "f", "t", microseconds(123456 * i)));
  REQUIRE(agg.ingest(events));
  auto r = agg.compute(day_of(year{2026} / January / 1)).value();
  const auto& d = r.usage.features[0].duration;
  CHECK(d.mean_ms == Approx(123.456 * 50.5));
  CHECK(d.p50_ms == Approx(6170));   // 50 x 123.456 = 6172.8 ms, rounded down to 3 digits
  CHECK(d.p95_ms == Approx(11700));  // 95 x 123.456 = 11728.3 ms
}

TEMPLATE_TEST_CASE("metrics: local days follow the configured time zone, DST included", "[metrics]", MemoryBackend, SqliteBackend) {
  TestType b;
  testing::ManualClock clock;
  auto berlin = TimeZone::locate("Europe/Berlin").value();
  MetricsAggregator utc(*b.store, clock);
  // Stored while UTC was configured: Berlin's partials are computed when first needed.
  REQUIRE(utc.ingest(std::vector<UsageEvent>{
      ev("2026-11-22T23:30:00Z", "a", "f"),  // 2026-11-23 00:30 in Berlin (UTC+1)
      ev("2026-11-23T22:59:00Z", "b", "f"),  // 23:59 in Berlin
      ev("2026-11-23T23:00:00Z", "c", "f"),  // the 24th in Berlin
      ev("2026-03-28T23:00:00Z", "d", "f"),  // 2026-03-29 00:00 in Berlin (UTC+1)
      ev("2026-03-29T21:59:00Z", "e", "f"),  // 23:59 in Berlin (UTC+2 after 02:00): a 23-hour day
      ev("2026-03-29T22:00:00Z", "f", "f"),  // the 30th in Berlin
  }));
  CHECK(utc.compute(day_of(year{2026} / November / 23)).value().usage.events == 2);  // b and c by UTC dates

  MetricsAggregator local(*b.store, clock, {.time_zone = berlin});
  auto nov = local.compute(day_of(year{2026} / November / 23)).value();
  CHECK(nov.time_zone == "Europe/Berlin");
  CHECK(nov.usage.events == 2);  // a and b
  CHECK(nov.begin == at("2026-11-22T23:00:00Z"));
  auto dst = local.compute(day_of(year{2026} / March / 29)).value();
  CHECK(dst.usage.events == 2);  // d and e
  CHECK(dst.end - dst.begin == 23h);
  CHECK(b.store->usage_blocks_without_partials("Europe/Berlin", at("2026-01-01T00:00:00Z"), at("2027-01-01T00:00:00Z")).value().empty());
}

TEMPLATE_TEST_CASE("metrics: revenue figures over a week", "[metrics]", MemoryBackend, SqliteBackend) {
  TestType b;
  testing::ManualClock clock;
  MetricsAggregator agg(*b.store, clock);
  // ISO week 2026-W48 is Monday 2026-11-23 to Sunday 2026-11-29.
  const std::vector<RevenueRecord> records{
      {year{2026} / November / 23, "pro", 100, 5, 200, 2},  {year{2026} / November / 23, "basic", 20, 10, 100, 4},
      {year{2026} / November / 25, "pro", 120, 3, 203, 0},  {year{2026} / November / 29, "pro", 90.5, 1, 204, 1},
      {year{2026} / November / 22, "pro", 80, 0, 190, 0},    // the week before
      {year{2026} / November / 30, "basic", 1000, 0, 0, 0},  // the week after
  };
  auto ins = agg.ingest_revenue(records);
  REQUIRE(ins);
  CHECK(ins->inserted == 6);
  auto r = agg.compute(week_of(year{2026} / November / 25)).value();
  const auto& v = r.revenue;
  CHECK(v.days == 3);
  CHECK(v.total_revenue == Approx(330.5));
  CHECK(v.new_subscribers == 19);
  CHECK(v.churn_count == 7);
  CHECK(v.active_users == 204);               // the last date's level (pro only that day)
  CHECK(*v.churn_rate == Approx(7.0 / 300));  // over the first date's 200 + 100
  CHECK(*v.revenue_per_active_user == Approx(330.5 / ((300 + 203 + 204) / 3.0)));
  REQUIRE(v.plans.size() == 2);
  CHECK(v.plans[0] == PlanRevenue{"pro", 310.5, 9, 204, 3});
  // summary() gives the same figures without the changes against the week before.
  auto alone = agg.summary(week_of(year{2026} / November / 25)).value();
  CHECK(alone.changes.empty());
  CHECK_FALSE(r.changes.empty());
  CHECK(alone.revenue == r.revenue);
  CHECK(alone.usage == r.usage);
  CHECK(v.plans[1] == PlanRevenue{"basic", 20, 10, 100, 4});
  CHECK(change(r, "revenue.total")->previous == 80);
  CHECK(change(r, "revenue.plan.basic.revenue")->previous == 0);

  // Loading a record again replaces it; an identical one is unchanged.
  auto again = agg.ingest_revenue(
      std::vector<RevenueRecord>{{year{2026} / November / 23, "pro", 100, 5, 200, 2}, {year{2026} / November / 25, "pro", 130, 3, 203, 0}});
  REQUIRE(again);
  CHECK(again->unchanged == 1);
  CHECK(again->updated == 1);
  CHECK(agg.compute(week_of(year{2026} / November / 25)).value().revenue.total_revenue == Approx(340.5));

  auto bad = agg.ingest_revenue(
      std::vector<RevenueRecord>{{year{2026} / November / 23, "pro", 1, 0, 0, 0}, {year{2026} / November / 24, "", 1, 0, 0, 0}});
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("revenue record 1 of 2") != std::string::npos);
  CHECK(bad.error().message.find("plan") != std::string::npos);
}

TEMPLATE_TEST_CASE("metrics: loading the same events twice stores them once", "[metrics]", MemoryBackend, SqliteBackend) {
  TestType b;
  testing::ManualClock clock;
  MetricsAggregator agg(*b.store, clock, {.block_events = 3});
  std::vector<UsageEvent> events;
  for (int i = 0; i < 8; ++i) events.push_back(ev("2026-01-01T10:00:00Z", fmt::format("u{}", i), "f"));
  auto first = agg.ingest(events);
  REQUIRE(first);
  CHECK(first->blocks_written == 3);  // 3 + 3 + 2
  auto second = agg.ingest(events);
  REQUIRE(second);
  CHECK(second->stored == 0);
  CHECK(second->duplicates == 8);
  CHECK(second->blocks_skipped == 3);
  CHECK(agg.compute(day_of(year{2026} / January / 1)).value().usage.events == 8);

  // A bad event rejects the batch, naming it; nothing is stored.
  events.push_back(ev("2026-01-01T11:00:00Z", "", "f"));
  auto bad = agg.ingest(events);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == errc::invalid_argument);
  CHECK(bad.error().message.find("event 8 of 9") != std::string::npos);
  CHECK(bad.error().message.find("user_id") != std::string::npos);
  // Times outside 1900-2199 are refused through the API as they are in files.
  events.back() = ev("2250-01-01T00:00:00Z", "u9", "f");
  bad = agg.ingest(events);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("years 1900-2199") != std::string::npos);
}

TEMPLATE_TEST_CASE("metrics: a stored rollup is reused until late events re-open its period", "[metrics]", MemoryBackend, SqliteBackend) {
  TestType b;
  testing::ManualClock clock(at("2026-11-24T00:05:00Z"));
  MetricsAggregator agg(*b.store, clock);
  const auto day = day_of(year{2026} / November / 23);
  REQUIRE(agg.ingest(std::vector<UsageEvent>{ev("2026-11-23T10:00:00Z", "a", "f"), ev("2026-11-23T11:00:00Z", "b", "f")}));
  auto first = agg.aggregate(day);
  REQUIRE(first);
  CHECK(first->usage.events == 2);

  clock.advance(1min);
  auto again = agg.aggregate(day);
  REQUIRE(again);
  CHECK(again->reused);
  CHECK(again->why.find("already aggregated at 2026-11-24T00:05:00Z") != std::string::npos);
  CHECK(again->usage == first->usage);
  CHECK(again->changes == first->changes);

  // Events for another day do not touch it; a late event for it re-opens it.
  REQUIRE(agg.ingest(std::vector<UsageEvent>{ev("2026-11-25T10:00:00Z", "c", "f")}));
  CHECK(agg.aggregate(day).value().reused);
  REQUIRE(agg.ingest(std::vector<UsageEvent>{ev("2026-11-23T23:00:00Z", "late", "f")}));
  auto late = agg.aggregate(day);
  REQUIRE(late);
  CHECK_FALSE(late->reused);
  CHECK(late->usage.events == 3);
  CHECK(late->why.find("events arrived for 2026-11-23 or the period before after its aggregation") != std::string::npos);
  // Late events for the day before change its changes: that re-opens it too.
  REQUIRE(agg.ingest(std::vector<UsageEvent>{ev("2026-11-22T09:00:00Z", "late", "f")}));
  auto prev_late = agg.aggregate(day).value();
  CHECK_FALSE(prev_late.reused);
  CHECK(change(prev_late, "usage.events")->previous == 1);

  // Changed revenue re-opens it too; force recomputes a current one.
  REQUIRE(agg.ingest_revenue(std::vector<RevenueRecord>{{year{2026} / November / 23, "pro", 10, 1, 1, 0}}));
  auto rev = agg.aggregate(day).value();
  CHECK_FALSE(rev.reused);
  CHECK(rev.why.find("revenue for 2026-11-23 or the period before changed") != std::string::npos);
  auto forced = agg.aggregate(day, true).value();
  CHECK_FALSE(forced.reused);
  CHECK(forced.why == "forced by the caller");

  // Each computation is in the task history with its reason.
  auto tasks = b.store->query_tasks({.domain = "metrics"}).value();
  CHECK(tasks.size() == 5);
  CHECK(tasks[0].action == "aggregate.daily");
  CHECK(tasks[0].params.find("forced by the caller") != std::string::npos);
  auto stored = agg.stored_rollups().value();
  REQUIRE(stored.size() == 1);
  CHECK(stored[0].usage.events == 3);
}

TEMPLATE_TEST_CASE("metrics: a period another process is aggregating is already running", "[metrics]", MemoryBackend, SqliteBackend) {
  TestType b;
  testing::ManualClock clock(at("2026-11-24T00:05:00Z"));
  MetricsAggregator agg(*b.store, clock, {.owner = "me"});
  const auto day = day_of(year{2026} / November / 23);
  storage::RollupRecord claim;
  claim.time_zone = "UTC";
  claim.period = day.key();
  claim.state = "running";
  claim.owner = "pid 7 on other";
  claim.started = clock.now();
  claim.lease_until = clock.now() + 10min;
  REQUIRE(b.store->put_rollup(claim, 0));

  auto busy = agg.aggregate(day);
  REQUIRE_FALSE(busy);
  CHECK(busy.error().code == errc::busy);
  CHECK(busy.error().message.find("already running") != std::string::npos);
  CHECK(busy.error().message.find("pid 7 on other") != std::string::npos);

  auto forced = agg.aggregate(day, true);  // force runs anyway
  REQUIRE(forced);
  // Once a claim expires (its owner died), the next run takes over and says so.
  claim.lease_until = clock.now() + 1min;
  REQUIRE(b.store->put_rollup(claim, std::nullopt));
  clock.advance(2min);
  auto taken = agg.aggregate(day);
  REQUIRE(taken);
  CHECK(taken->why.find("expired") != std::string::npos);
  auto rec = b.store->get_rollup("UTC", day.key()).value();
  CHECK(rec->state == "done");
  CHECK(rec->owner.empty());
}

TEST_CASE("metrics: of two processes aggregating one period, the second is told it is already running", "[metrics]") {
  storage::MemoryStore inner;
  testing::FaultInjectingStore store(inner);
  testing::ManualClock clock(at("2026-11-24T00:05:00Z"));
  MetricsAggregator agg(store, clock, {.owner = "me"});
  const auto day = day_of(year{2026} / November / 23);
  REQUIRE(agg.ingest(std::vector<UsageEvent>{ev("2026-11-23T10:00:00Z", "a", "f")}));
  // Another process claims the period between our look at it and our claim.
  storage::RollupRecord theirs;
  theirs.time_zone = "UTC";
  theirs.period = day.key();
  theirs.state = "running";
  theirs.owner = "pid 7 on other";
  theirs.started = clock.now();
  theirs.lease_until = clock.now() + 10min;
  int put_rollups = 0;
  store.before_each_write([&](std::string_view op) {
    if (op == "put_rollup" && ++put_rollups == 1) REQUIRE(inner.put_rollup(theirs, std::nullopt));
  });
  auto first = agg.aggregate(day);
  REQUIRE_FALSE(first);
  CHECK(first.error().code == errc::busy);
  CHECK(first.error().message.find("another process claimed 2026-11-23 (UTC) first") != std::string::npos);

  // Another process takes the period over (forced) while ours runs: our result is not stored.
  put_rollups = 0;
  store.before_each_write([&](std::string_view op) {
    if (op == "put_rollup" && ++put_rollups == 2) REQUIRE(inner.put_rollup(theirs, std::nullopt));
  });
  auto second = agg.aggregate(day, true);
  REQUIRE_FALSE(second);
  CHECK(second.error().code == errc::busy);
  CHECK(second.error().message.find("taken over by another process") != std::string::npos);
  CHECK(inner.get_rollup("UTC", day.key()).value()->owner == "pid 7 on other");
}

TEST_CASE("metrics: a rollup compacts each day's partials into one", "[metrics]") {
  storage::MemoryStore store;
  testing::ManualClock clock;
  MetricsAggregator agg(store, clock, {.block_events = 2});
  std::vector<UsageEvent> events;
  for (int i = 0; i < 5; ++i) events.push_back(ev("2026-01-01T10:00:00Z", fmt::format("u{}", i), "f", "t", milliseconds(i)));
  events.push_back(ev("2026-01-02T10:00:00Z", "u9", "f"));
  REQUIRE(agg.ingest(events));  // blocks of 2, 2 and 2: day 1 has three partials, day 2 one
  CHECK(store.usage_partials("UTC", 20454, 20454).value().size() == 3);
  auto first = agg.compute(day_of(year{2026} / January / 1)).value();
  CHECK(first.partials_read == 3);
  CHECK(store.usage_partials("UTC", 20454, 20454).value().size() == 1);
  auto again = agg.compute(day_of(year{2026} / January / 1)).value();
  CHECK(again.partials_read == 1);
  CHECK(again.usage == first.usage);
  CHECK(again.usage.events == 5);
  CHECK(again.usage.unique_users == 5);
  CHECK(again.usage.duration.p95_ms == 4);
}

TEST_CASE("metrics: a rollup round-trips through its JSON", "[metrics]") {
  storage::MemoryStore store;
  testing::ManualClock clock;
  MetricsAggregator agg(store, clock);
  REQUIRE(
      agg.ingest(std::vector<UsageEvent>{ev("2026-01-01T10:00:00Z", "a", "f", "t", 12345us, "E1"), ev("2026-01-01T11:00:00Z", "b", "g")}));
  REQUIRE(agg.ingest_revenue(std::vector<RevenueRecord>{{year{2026} / January / 1, "pro", 12.25, 1, 3, 0}}));
  auto r = agg.compute(day_of(year{2026} / January / 1)).value();
  r.why = "because";
  auto back = rollup_from_json(json::parse(json::dump(to_json(r))).value());
  REQUIRE(back);
  CHECK(*back == r);
  auto broken = to_json(r);
  broken["usage"].as_object().erase("events");
  auto bad = rollup_from_json(broken);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("usage.events") != std::string::npos);
  auto wrong = to_json(r);
  wrong["usage"].as_object()["features"] = 5;
  CHECK(rollup_from_json(wrong).error().message == "rollup.usage.features is not an array");
}

TEST_CASE("metrics: blocks and partials survive encoding, and damage is detected", "[metrics]") {
  mdetail::BlockBuilder builder;
  builder.add(1000, "u1", "f", "t", 5, "");
  builder.add(-5000, "u2", "g", "t", -1, "E");  // before 1970, no duration
  builder.add(2000, "u1", "f", "x", 0, "E");
  const auto data = mdetail::encode_block(builder.block());
  auto back = mdetail::decode_block(data);
  REQUIRE(back);
  CHECK(back->time_ms == builder.block().time_ms);
  CHECK(back->duration_us == builder.block().duration_us);
  CHECK(back->users == builder.block().users);
  CHECK(back->errors == builder.block().errors);
  CHECK(mdetail::block_key(data) == mdetail::block_key(mdetail::encode_block(*back)));
  CHECK(mdetail::block_key(data) != mdetail::block_key(data.substr(0, data.size() - 1)));
  for (std::size_t cut : {std::size_t{0}, std::size_t{3}, data.size() / 2, data.size() - 1}) {
    auto bad = mdetail::decode_block(data.substr(0, cut));
    REQUIRE_FALSE(bad);
    CHECK(bad.error().code == errc::corrupt);
  }
  auto parts = mdetail::partials(builder.block(), TimeZone());
  REQUIRE(parts.size() == 2);  // 1969-12-31 and 1970-01-01
  CHECK(parts[0].day == -1);
  mdetail::UsageAccumulator acc;
  REQUIRE(acc.merge(parts[1].data));
  CHECK(acc.summary().events == 2);
  CHECK(acc.summary().unique_users == 1);
  CHECK_FALSE(acc.merge(parts[0].data.substr(0, parts[0].data.size() - 1)));
}
