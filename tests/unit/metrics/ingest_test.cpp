// Loading CSV and NDJSON files: header mapping, quotes, bad rows and their rejects file, strict
// mode, idempotent reloads and files that grew since they were loaded.
#include <automation/metrics/aggregator.hpp>
#include <automation/storage/sqlite_store.hpp>
#include <automation/testing/manual_clock.hpp>

#include "support/temp_dir.hpp"

#include <fmt/format.h>
#include <catch2/catch.hpp>

using namespace automation;
using namespace automation::metrics;
using namespace std::chrono;

namespace {

struct Fixture {
  test::TempDir dir;
  std::unique_ptr<storage::Store> store = storage::open_store("sqlite:" + dir.file("m.db")).value();
  testing::ManualClock clock;
  MetricsAggregator agg{*store, clock};
  Rollup day(int d) { return agg.compute(day_of(year{2026} / January / d)).value(); }
};

}  // namespace

TEST_CASE("ingest: a CSV maps its columns by header, whatever their order and spelling", "[metrics][ingest]") {
  Fixture fx;
  const auto path = fx.dir.file("events.csv");
  test::write_file(path,
                   "\xEF\xBB\xBF"
                   "Error_Code,duration,feature_key,USER_ID,event type,timestamp,extra\r\n"
                   ",12.5,vocal-coach,ann,start,2026-01-01T10:00:00Z,x\r\n"
                   "E1,1.5s,\"vocal-coach\",\"o'brien, jr\",complete,2026-01-01T11:00:00.250+01:00,y\r\n"
                   "null,,lyrics,\"say \"\"hi\"\"\",start,1767261600,z\r\n"
                   "\r\n");
  auto r = fx.agg.ingest_file(RecordKind::events, path);
  REQUIRE(r);
  CHECK(r->format == "csv");
  CHECK(r->rows == 3);
  CHECK(r->rejected == 0);
  CHECK(r->events.stored == 3);
  CHECK(r->ignored_columns == std::vector<std::string>{"extra"});
  CHECK(r->rejects_path.empty());
  auto d = fx.day(1);
  CHECK(d.usage.events == 3);
  CHECK(d.usage.unique_users == 3);
  CHECK(d.usage.errors == 1);  // "null" is no error
  CHECK(d.usage.duration.count == 2);
  CHECK(d.usage.duration.mean_ms == Approx((12.5 + 1500) / 2));
}

TEST_CASE("ingest: bad rows are reported by line and written beside the file, and the good rows load", "[metrics][ingest]") {
  Fixture fx;
  const auto path = fx.dir.file("events.csv");
  test::write_file(path,
                   "timestamp,userId,featureKey,eventType,duration\n"
                   "2026-01-01T10:00:00Z,ann,f,start,10\n"
                   "not-a-time,bob,f,start,10\n"
                   "2026-01-01T10:00:00Z,,f,start,10\n"
                   "2026-01-01T10:00:00Z,cat,f,start,-3\n"
                   "2026-01-01T10:00:00Z,dan,f\n"
                   "2026-01-01T10:00:00Z,eve,\"f,start,1\n");
  auto r = fx.agg.ingest_file(RecordKind::events, path);
  REQUIRE(r);
  CHECK(r->rows == 6);
  CHECK(r->accepted == 1);
  CHECK(r->rejected == 5);
  REQUIRE(r->errors.size() == 5);
  CHECK(r->errors[0].line == 3);
  CHECK(r->errors[0].reason.find("not-a-time") != std::string::npos);
  CHECK(r->errors[1].line == 4);
  CHECK(r->errors[1].reason == "user_id is empty");
  CHECK(r->errors[2].reason.find("-3") != std::string::npos);
  CHECK(r->errors[3].reason.find("no event_type") != std::string::npos);
  CHECK(r->errors[4].reason.find("quoted field") != std::string::npos);
  CHECK(r->rejects_path == path + ".rejects");
  CHECK(test::read_file(r->rejects_path) ==
        "timestamp,userId,featureKey,eventType,duration\n"
        "not-a-time,bob,f,start,10\n"
        "2026-01-01T10:00:00Z,,f,start,10\n"
        "2026-01-01T10:00:00Z,cat,f,start,-3\n"
        "2026-01-01T10:00:00Z,dan,f\n"
        "2026-01-01T10:00:00Z,eve,\"f,start,1\n");
  CHECK(fx.day(1).usage.events == 1);
}

TEST_CASE("ingest: a quote inside a field is text, and impossible times and durations are bad rows", "[metrics][ingest]") {
  Fixture fx;
  const auto path = fx.dir.file("events.csv");
  test::write_file(path,
                   "date,timestamp,user,user_id,feature,type,duration\n"
                   "2026-01-02,2026-01-01T10:00:00Z,Ann,u1,tv 5\" screen,click,1\n"
                   "2026-01-02,2026-01-01T11:00:00Z,Bob,u2,radio,click,2\n"
                   "2026-01-02,2926-01-01T11:00:00Z,Cat,u3,radio,click,2\n"
                   "2026-01-02,999999999999999,Dan,u4,radio,click,2\n"
                   "2026-01-02,2026-01-01T11:00:00Z,Eve,u5,radio,click,1e16\n"
                   "2026-01-02,2026-01-01T11:00:60Z,Fay,u6,radio,click,1\n"         // second 60: refused as parse_timestamp does
                   "2026-01-02,2026-01-01T11:00:00+24:00,Gus,u7,radio,click,1\n");  // offset out of range
  auto r = fx.agg.ingest_file(RecordKind::events, path);
  REQUIRE(r);
  CHECK(r->rows == 7);
  CHECK(r->events.stored == 2);
  CHECK(r->ignored_columns == std::vector<std::string>{"date", "user"});  // timestamp and user_id are the better names
  REQUIRE(r->rejected == 5);
  CHECK(r->errors[0].reason.find("1900-2199") != std::string::npos);
  CHECK(r->errors[1].reason.find("1900-2199") != std::string::npos);
  CHECK(r->errors[2].reason.find("30 days") != std::string::npos);
  CHECK(r->errors[3].reason.find("is not a time") != std::string::npos);
  CHECK(r->errors[4].reason.find("is not a time") != std::string::npos);
  auto d = fx.day(1);  // the timestamp column, not the date one
  CHECK(d.usage.events == 2);
  CHECK(d.usage.features[1].feature == "tv 5\" screen");
}

TEST_CASE("ingest: strict mode rejects the whole file and stores nothing", "[metrics][ingest]") {
  Fixture fx;
  const auto path = fx.dir.file("events.csv");
  test::write_file(path, "timestamp,user,feature,type\n2026-01-01T10:00:00Z,ann,f,start\n2026-01-01T10:00:00Z,bob,f,\n");
  auto r = fx.agg.ingest_file(RecordKind::events, path, {.strict = true});
  REQUIRE(r);
  CHECK(r->strict_rejected);
  CHECK(r->rejected == 1);
  CHECK(r->errors[0].line == 3);
  CHECK(r->rejects_path.empty());
  CHECK(fx.store->usage_blocks({}).value().empty());
  // Fixed, it loads.
  test::write_file(path, "timestamp,user,feature,type\n2026-01-01T10:00:00Z,ann,f,start\n2026-01-01T10:00:00Z,bob,f,click\n");
  auto ok = fx.agg.ingest_file(RecordKind::events, path, {.strict = true});
  REQUIRE(ok);
  CHECK_FALSE(ok->strict_rejected);
  CHECK(ok->events.stored == 2);
}

TEST_CASE("ingest: a file without a required column is refused, naming it and the header", "[metrics][ingest]") {
  Fixture fx;
  const auto path = fx.dir.file("events.csv");
  test::write_file(path, "when,user,feature,type\n2026-01-01T10:00:00Z,ann,f,start\n");
  auto r = fx.agg.ingest_file(RecordKind::events, path);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == errc::invalid_argument);
  CHECK(r.error().message.find("no column for timestamp") != std::string::npos);
  CHECK(r.error().message.find("when, user, feature, type") != std::string::npos);
  auto missing = fx.agg.ingest_file(RecordKind::events, fx.dir.file("nope.csv"));
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == errc::not_found);
  test::write_file(path, "");
  CHECK_FALSE(fx.agg.ingest_file(RecordKind::events, path));
}

TEST_CASE("ingest: NDJSON events and revenue load like CSV", "[metrics][ingest]") {
  Fixture fx;
  const auto path = fx.dir.file("events.ndjson");
  test::write_file(
      path,
      "{\"userId\":\"ann\",\"featureKey\":\"f\",\"eventType\":\"start\",\"duration\":12,\"timestamp\":\"2026-01-01T10:00:00Z\"}\n"
      "{\"userId\":\"bob\",\"featureKey\":\"f\",\"eventType\":\"start\",\"errorCode\":null,\"timestamp\":1767261600000}\n"
      "[1,2]\n"
      "{\"userId\":\"cat\",\"featureKey\":\"f\",\"timestamp\":\"2026-01-01T10:00:00Z\"}\n"
      "{broken\n");
  auto r = fx.agg.ingest_file(RecordKind::events, path);
  REQUIRE(r);
  CHECK(r->format == "ndjson");
  CHECK(r->events.stored == 2);
  CHECK(r->rejected == 3);
  CHECK(r->errors[0].line == 3);
  CHECK(r->errors[1].reason == "no \"event_type\"");
  CHECK(r->errors[2].reason.find("not JSON") != std::string::npos);
  CHECK(fx.day(1).usage.events == 2);

  const auto rev = fx.dir.file("revenue.data");  // no telling extension: the first byte decides
  test::write_file(
      rev,
      "{\"date\":\"2026-01-01\",\"plan\":\"pro\",\"totalRevenue\":100.5,\"newSubscribers\":2,\"activeUsers\":40,\"churnCount\":1}\n"
      "{\"date\":\"2026-01-32\",\"plan\":\"pro\",\"totalRevenue\":1}\n");
  auto rr = fx.agg.ingest_file(RecordKind::revenue, rev);
  REQUIRE(rr);
  CHECK(rr->format == "ndjson");
  CHECK(rr->revenue.inserted == 1);
  CHECK(rr->rejected == 1);
  CHECK(fx.day(1).revenue.total_revenue == Approx(100.5));
}

TEST_CASE("ingest: revenue CSV loads, reloads unchanged and updates changed rows", "[metrics][ingest]") {
  Fixture fx;
  const auto path = fx.dir.file("revenue.csv");
  test::write_file(path,
                   "date,plan,totalRevenue,newSubscribers,activeUsers,churnCount\n2026-01-01,pro,100,1,10,0\n2026-01-01,basic,5.5,2,20,1\n"
                   "2026-01-02,pro,abc,1,1,1\n2026-01-02,pro,1,-1,1,1\n");
  auto r = fx.agg.ingest_file(RecordKind::revenue, path);
  REQUIRE(r);
  CHECK(r->revenue.inserted == 2);
  CHECK(r->rejected == 2);
  CHECK(r->errors[0].reason.find("total_revenue") != std::string::npos);
  CHECK(r->errors[1].reason.find("new_subscribers") != std::string::npos);
  test::write_file(path, "date,plan,revenue\n2026-01-01,pro,100\n2026-01-01,basic,6\n");
  auto again = fx.agg.ingest_file(RecordKind::revenue, path);
  REQUIRE(again);
  CHECK(again->revenue.updated == 2);  // the counts default to 0, which differs from the stored rows
  CHECK(fx.day(1).revenue.total_revenue == Approx(106));
}

TEST_CASE("ingest: reloading a file stores nothing, and a file that grew loads only its new rows", "[metrics][ingest]") {
  Fixture fx;
  MetricsAggregator small(*fx.store, fx.clock, {.block_events = 4});
  const auto path = fx.dir.file("events.csv");
  std::string text = "timestamp,user,feature,type\n";
  for (int i = 0; i < 6; ++i) text += fmt::format("2026-01-01T10:00:0{}Z,u{},f,start\n", i, i);
  test::write_file(path, text);
  auto first = small.ingest_file(RecordKind::events, path);
  REQUIRE(first);
  CHECK(first->events.stored == 6);  // blocks of 4 and 2
  auto again = small.ingest_file(RecordKind::events, path);
  REQUIRE(again);
  CHECK(again->events.stored == 0);
  CHECK(again->events.duplicates == 6);

  std::string more;
  for (int i = 6; i < 9; ++i) more += fmt::format("2026-01-01T10:00:0{}Z,u{},f,start\n", i, i);
  test::write_file(path, more, true);
  auto grown = small.ingest_file(RecordKind::events, path);
  REQUIRE(grown);
  CHECK(grown->events.duplicates == 6);
  CHECK(grown->events.stored == 3);
  CHECK(fx.day(1).usage.events == 9);
  CHECK(fx.day(1).usage.unique_users == 9);
  // And the grown file again: nothing new.
  auto once_more = small.ingest_file(RecordKind::events, path);
  REQUIRE(once_more);
  CHECK(once_more->events.stored == 0);
  CHECK(fx.day(1).usage.events == 9);
  // It grows a second time: the blocks of both earlier loads are recognised.
  test::write_file(path, "2026-01-01T10:00:09Z,u9,f,start\n", true);
  auto twice = small.ingest_file(RecordKind::events, path);
  REQUIRE(twice);
  CHECK(twice->events.stored == 1);
  CHECK(fx.day(1).usage.events == 10);
}
