#include <automation/core/time.hpp>
#include <automation/testing/manual_clock.hpp>

#include <catch2/catch.hpp>

using namespace automation;
using namespace std::chrono;

TEST_CASE("parse_duration accepts the documented forms") {
  CHECK(parse_duration("30s").value() == seconds(30));
  CHECK(parse_duration("5m").value() == minutes(5));
  CHECK(parse_duration("1h30m").value() == minutes(90));
  CHECK(parse_duration("90d").value() == hours(24 * 90));
  CHECK(parse_duration("250ms").value() == milliseconds(250));
  CHECK(parse_duration("1.5h").value() == minutes(90));
  CHECK(parse_duration("2w").value() == hours(24 * 14));
  CHECK(parse_duration("1m30s250ms").value() == milliseconds(90250));
  CHECK(parse_duration("0").value() == milliseconds(0));
  CHECK(parse_duration(" 10s ").value() == seconds(10));
}

TEST_CASE("parse_duration rejects bad input naming the problem") {
  auto check = [](std::string_view in, std::string_view needle) {
    auto r = parse_duration(in);
    REQUIRE_FALSE(r);
    CHECK(r.error().is(errc::invalid_argument));
    CHECK_THAT(r.error().message, Catch::Contains(std::string(needle)));
    CHECK_THAT(r.error().message, Catch::Contains(std::string(in.empty() ? "\"\"" : in)));
  };
  check("", "empty");
  check("10", "missing unit");
  check("10x", "unknown unit at position 3");
  check("-5s", "negative");
  check("h", "expected a number");
  check("1.s", "digits after");
  check("0.0001s", "finer than one millisecond");
  check("99999999999999999999d", "too large");
}

TEST_CASE("format_duration prints the shortest exact form and round-trips") {
  CHECK(format_duration(minutes(90)) == "1h30m");
  CHECK(format_duration(milliseconds(0)) == "0s");
  CHECK(format_duration(milliseconds(1500)) == "1s500ms");
  CHECK(format_duration(hours(24 * 90)) == "90d");
  CHECK(format_duration(milliseconds(-2000)) == "-2s");
  for (auto ms : {1LL, 999LL, 1000LL, 61000LL, 3600000LL, 86400001LL, 123456789LL})
    CHECK(parse_duration(format_duration(milliseconds(ms))).value() == milliseconds(ms));
}

TEST_CASE("parse_timestamp handles RFC 3339, offsets, dates and fractions") {
  const auto base = sys_days(year{2026} / 11 / 23);
  CHECK(parse_timestamp("2026-11-23").value() == base);
  CHECK(parse_timestamp("2026-11-23T07:31:12Z").value() == base + hours(7) + minutes(31) + seconds(12));
  CHECK(parse_timestamp("2026-11-23 07:31").value() == base + hours(7) + minutes(31));
  CHECK(parse_timestamp("2026-11-23T08:31:12+01:00").value() == base + hours(7) + minutes(31) + seconds(12));
  CHECK(parse_timestamp("2026-11-23T02:31:12-0500").value() == base + hours(7) + minutes(31) + seconds(12));
  CHECK(parse_timestamp("2026-11-23T07:31:12.250Z").value() == base + hours(7) + minutes(31) + seconds(12) + milliseconds(250));
  CHECK(parse_timestamp("2024-02-29").has_value());
}

TEST_CASE("parse_timestamp rejects invalid dates and junk") {
  for (const char* bad : {"2026-13-01", "2026-02-30", "2025-02-29", "2026-11-23T24:00", "2026-11-23T07:60", "2026-11-23T07:31:12Q",
                          "yesterday", "2026-11-23T07", "2026-11-23T07:31:12+25:00", "2026-11-23T07:31:12Zextra"}) {
    auto r = parse_timestamp(bad);
    INFO(bad);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains(bad));
  }
}

TEST_CASE("format_timestamp prints UTC and round-trips") {
  const auto t = parse_timestamp("2026-11-23T07:31:12.007Z").value();
  CHECK(format_timestamp(t) == "2026-11-23T07:31:12.007Z");
  CHECK(format_timestamp(parse_timestamp("2026-01-01").value()) == "2026-01-01T00:00:00Z");
  CHECK(parse_timestamp(format_timestamp(t)).value() == t);
}

TEST_CASE("parse_time_spec takes timestamps, now and durations ago") {
  testing::ManualClock clock;
  const auto now = clock.now();
  CHECK(parse_time_spec("now", now).value() == now);
  CHECK(parse_time_spec("24h", now).value() == now - hours(24));
  CHECK(parse_time_spec("2026-01-01", now).value() == sys_days(year{2026} / 1 / 1));
  auto bad = parse_time_spec("last tuesday", now);
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message, Catch::Contains("last tuesday"));
}

TEST_CASE("TimeZone uses the system tzdata, including DST transitions") {
  auto berlin = TimeZone::locate("Europe/Berlin");
  REQUIRE(berlin);
  CHECK(berlin->name() == "Europe/Berlin");
  const auto winter = parse_timestamp("2026-01-15T12:00:00Z").value();
  const auto summer = parse_timestamp("2026-07-15T12:00:00Z").value();
  CHECK(berlin->offset(winter) == hours(1));
  CHECK(berlin->offset(summer) == hours(2));
  CHECK(berlin->format(summer) == "2026-07-15T14:00:00+02:00");
  // Local midnight in Berlin is 23:00 UTC the day before in winter.
  CHECK(berlin->start_of_day(year{2026} / 1 / 15) == parse_timestamp("2026-01-14T23:00:00Z").value());
  // 23:30 UTC on Jan 14 is already Jan 15 in Berlin.
  CHECK(berlin->local_date(parse_timestamp("2026-01-14T23:30:00Z").value()) == year{2026} / 1 / 15);
  // Spring forward 2026-03-29: 02:00-03:00 local does not exist; it maps to the transition instant.
  const auto gap = std::chrono::local_time<Duration>(local_days(year{2026} / 3 / 29).time_since_epoch() + hours(2) + minutes(30));
  CHECK(berlin->to_sys(gap) == parse_timestamp("2026-03-29T01:00:00Z").value());
  auto ny = TimeZone::locate("America/New_York");
  REQUIRE(ny);
  CHECK(ny->offset(winter) == hours(-5));
  CHECK(TimeZone().name() == "UTC");
}

TEST_CASE("TimeZone::locate rejects unknown zones by name") {
  auto r = TimeZone::locate("Mars/Olympus_Mons");
  REQUIRE_FALSE(r);
  CHECK(r.error().is(errc::invalid_argument));
  CHECK_THAT(r.error().message, Catch::Contains("Mars/Olympus_Mons"));
}

TEST_CASE("ManualClock moves only when told") {
  testing::ManualClock clock;
  const auto t0 = clock.now();
  CHECK(clock.now() == t0);
  CHECK(clock.advance(seconds(5)) == t0 + seconds(5));
  CHECK(clock.now() == t0 + seconds(5));
  clock.set(t0 - hours(1));
  CHECK(clock.now() == t0 - hours(1));
  CHECK(format_timestamp(testing::ManualClock::default_start()) == "2026-01-01T00:00:00Z");
  CHECK(to_epoch_ms(from_epoch_ms(1767225600123)) == 1767225600123);
}
