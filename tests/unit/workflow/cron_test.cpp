#include <automation/core/time.hpp>
#include <automation/workflow/cron.hpp>

#include "support/catch_result.hpp"

#include <catch2/catch.hpp>

using namespace automation;
using namespace automation::workflow;

namespace {

TimePoint at(std::string_view s) { return parse_timestamp(s).value(); }

// The next `n` fires after `from`, as UTC timestamps.
std::vector<std::string> fires(std::string_view expr, std::string_view from, std::size_t n, std::string_view zone = "UTC") {
  auto e = CronExpression::parse(expr);
  REQUIRE(e);
  auto tz = TimeZone::locate(zone);
  REQUIRE(tz);
  std::vector<std::string> out;
  for (auto t : e->next_n(at(from), n, *tz)) out.push_back(format_timestamp(t));
  return out;
}

using V = std::vector<std::string>;

}  // namespace

TEST_CASE("cron: steps, lists, ranges and seconds") {
  CHECK(fires("*/15 * * * *", "2026-01-01T00:07:00Z", 3) == V{"2026-01-01T00:15:00Z", "2026-01-01T00:30:00Z", "2026-01-01T00:45:00Z"});
  CHECK(fires("*/10 * * * * *", "2026-01-01T00:00:05Z", 2) == V{"2026-01-01T00:00:10Z", "2026-01-01T00:00:20Z"});
  CHECK(fires("5,35 9-10 * * *", "2026-01-01T09:30:00Z", 3) == V{"2026-01-01T09:35:00Z", "2026-01-01T10:05:00Z", "2026-01-01T10:35:00Z"});
  CHECK(fires("10/20 * * * *", "2026-01-01T00:00:00Z", 3) == V{"2026-01-01T00:10:00Z", "2026-01-01T00:30:00Z", "2026-01-01T00:50:00Z"});
  CHECK(fires("0 12 * JAN-MAR mon-fri", "2026-03-31T12:00:00Z", 1) == V{"2027-01-01T12:00:00Z"});
  // Strictly after: a fire time itself is not returned again.
  CHECK(fires("0 * * * *", "2026-01-01T05:00:00Z", 1) == V{"2026-01-01T06:00:00Z"});
  CHECK(fires("0 * * * *", "2026-01-01T05:00:00.500Z", 1) == V{"2026-01-01T06:00:00Z"});
}

TEST_CASE("cron: macros, and @reboot never fires on the clock") {
  CHECK(fires("@hourly", "2026-06-01T10:20:00Z", 1) == V{"2026-06-01T11:00:00Z"});
  CHECK(fires("@daily", "2026-06-01T10:20:00Z", 1) == V{"2026-06-02T00:00:00Z"});
  CHECK(fires("@weekly", "2026-06-01T10:20:00Z", 1) == V{"2026-06-07T00:00:00Z"});  // Sunday
  CHECK(fires("@monthly", "2026-06-01T10:20:00Z", 1) == V{"2026-07-01T00:00:00Z"});
  CHECK(fires("@yearly", "2026-06-01T10:20:00Z", 1) == V{"2027-01-01T00:00:00Z"});
  auto r = CronExpression::parse("@reboot");
  REQUIRE(r);
  CHECK(r->at_reboot());
  CHECK_FALSE(r->next(at("2026-01-01T00:00:00Z")).has_value());
  CHECK(CronExpression::parse("@hourly")->normalized() == "0 0 * * * *");
}

TEST_CASE("cron: day-of-month and day-of-week combine as in Vixie cron") {
  // Both restricted: either matches (1st, 15th, or any Monday).
  CHECK(fires("0 0 1,15 * MON", "2026-06-02T00:00:00Z", 5) ==
        V{"2026-06-08T00:00:00Z", "2026-06-15T00:00:00Z", "2026-06-22T00:00:00Z", "2026-06-29T00:00:00Z", "2026-07-01T00:00:00Z"});
  // A field beginning with '*' (even */2) makes both required: odd days that are Mondays.
  CHECK(fires("0 0 */2 * MON", "2026-06-02T00:00:00Z", 4) ==
        V{"2026-06-15T00:00:00Z", "2026-06-29T00:00:00Z", "2026-07-13T00:00:00Z", "2026-07-27T00:00:00Z"});
  CHECK(fires("0 0 * * 7", "2026-06-01T00:00:00Z", 1) == V{"2026-06-07T00:00:00Z"});  // 7 is Sunday
  CHECK(fires("0 0 * * 5-7", "2026-06-01T00:00:00Z", 3) == V{"2026-06-05T00:00:00Z", "2026-06-06T00:00:00Z", "2026-06-07T00:00:00Z"});
  // Leap days, and an expression that never fires.
  CHECK(fires("0 0 29 2 *", "2026-01-01T00:00:00Z", 1) == V{"2028-02-29T00:00:00Z"});
  CHECK(fires("0 0 30 2 *", "2026-01-01T00:00:00Z", 1).empty());
}

TEST_CASE("cron: Quartz day extensions") {
  CHECK(fires("0 0 L * *", "2026-02-01T00:00:00Z", 2) == V{"2026-02-28T00:00:00Z", "2026-03-31T00:00:00Z"});
  CHECK(fires("0 0 L-2 * *", "2026-02-01T00:00:00Z", 2) == V{"2026-02-26T00:00:00Z", "2026-03-29T00:00:00Z"});
  // Last weekday: Jan 31 and Feb 28 2026 are Saturdays.
  CHECK(fires("0 0 LW * *", "2026-01-01T00:00:00Z", 3) == V{"2026-01-30T00:00:00Z", "2026-02-27T00:00:00Z", "2026-03-31T00:00:00Z"});
  // Nearest weekday: Aug 15 2026 is a Saturday (-> Friday 14th); Aug 1 too (-> Monday 3rd, not July).
  CHECK(fires("0 0 15W * *", "2026-08-01T00:00:00Z", 1) == V{"2026-08-14T00:00:00Z"});
  CHECK(fires("0 0 1W * *", "2026-07-31T12:00:00Z", 1) == V{"2026-08-03T00:00:00Z"});
  CHECK(fires("0 0 ? * 5L", "2026-01-01T00:00:00Z", 3) == V{"2026-01-30T00:00:00Z", "2026-02-27T00:00:00Z", "2026-03-27T00:00:00Z"});
  CHECK(fires("0 0 ? * MON#1", "2026-01-01T00:00:00Z", 3) == V{"2026-01-05T00:00:00Z", "2026-02-02T00:00:00Z", "2026-03-02T00:00:00Z"});
}

TEST_CASE("cron: DST gaps and repeated hours follow the cronie rule in several zones") {
  // New York: 2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT -> 01:00 EST.
  // A fixed-time fire in the gap runs when the gap ends; the next day is normal again.
  CHECK(fires("30 2 * * *", "2026-03-07T17:00:00Z", 2, "America/New_York") == V{"2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"});
  // A fixed-time fire in the repeated hour runs once, at the first occurrence.
  CHECK(fires("30 1 * * *", "2026-11-01T00:00:00Z", 2, "America/New_York") == V{"2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"});
  // Wall-clock expressions: the repeated hour fires again, the gap does not happen.
  CHECK(fires("*/30 * * * *", "2026-11-01T04:45:00Z", 5, "America/New_York") ==
        V{"2026-11-01T05:00:00Z", "2026-11-01T05:30:00Z", "2026-11-01T06:00:00Z", "2026-11-01T06:30:00Z", "2026-11-01T07:00:00Z"});
  CHECK(fires("*/30 * * * *", "2026-03-08T06:45:00Z", 2, "America/New_York") == V{"2026-03-08T07:00:00Z", "2026-03-08T07:30:00Z"});
  // Berlin: 2026-03-29 02:00 CET -> 03:00 CEST; 2026-10-25 03:00 CEST -> 02:00 CET.
  CHECK(fires("0 2 * * *", "2026-03-28T12:00:00Z", 2, "Europe/Berlin") == V{"2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z"});
  CHECK(fires("0 2 * * *", "2026-10-24T12:00:00Z", 2, "Europe/Berlin") == V{"2026-10-25T00:00:00Z", "2026-10-26T01:00:00Z"});
  // Sydney (southern hemisphere): 2026-04-05 03:00 AEDT -> 02:00 AEST; 2026-10-04 02:00 AEST -> 03:00 AEDT.
  CHECK(fires("30 2 * * *", "2026-04-04T12:00:00Z", 1, "Australia/Sydney") == V{"2026-04-04T15:30:00Z"});
  CHECK(fires("30 2 * * *", "2026-10-03T00:00:00Z", 1, "Australia/Sydney") == V{"2026-10-03T16:00:00Z"});
  // A fixed offset for all time (no transitions at all): 09:00 at UTC+3 is 06:00Z.
  CHECK(fires("0 9 * * *", "2026-01-01T00:00:00Z", 1, "Etc/GMT-3") == V{"2026-01-01T06:00:00Z"});
  // No DST, a half-hour offset.
  CHECK(fires("0 9 * * *", "2026-01-01T00:00:00Z", 1, "Asia/Kolkata") == V{"2026-01-01T03:30:00Z"});
}

TEST_CASE("cron: natural forms, including the seed schedules") {
  auto norm = [](std::string_view text) {
    auto e = CronExpression::parse(text);
    REQUIRE(e);
    CHECK(e->text() == text);
    return e->normalized();
  };
  CHECK(norm("every 6 hours") == "0 0 */6 * * *");      // auto_backup
  CHECK(norm("every 5 minutes") == "0 */5 * * * *");    // health_check
  CHECK(norm("daily at 2am") == "0 0 2 * * *");         // auto_optimize
  CHECK(norm("every 10 minutes") == "0 */10 * * * *");  // auto_scale_check
  CHECK(norm("daily at 03:00") == "0 0 3 * * *");
  CHECK(norm("Mondays at 09:00") == "0 0 9 * * 1");
  CHECK(norm("every friday at 18:00") == "0 0 18 * * 5");
  CHECK(norm("weekdays at 8:30am") == "0 30 8 * * 1-5");
  CHECK(norm("weekends at 10:00") == "0 0 10 * * 0,6");
  CHECK(norm("every day at 3:30pm") == "0 30 15 * * *");
  CHECK(norm("at noon") == "0 0 12 * * *");
  CHECK(norm("daily at 12am") == "0 0 0 * * *");
  CHECK(norm("hourly") == "0 0 * * * *");
  CHECK(norm("every minute") == "0 * * * * *");
  CHECK(norm("every 30 seconds") == "*/30 * * * * *");
  CHECK(norm("every 60 minutes") == "0 0 * * * *");
  CHECK(norm("every 24 hours") == "0 0 0 * * *");
  CHECK(norm("every 60 seconds") == "0 * * * * *");
  CHECK(norm("monthly on the 1st at 02:00") == "0 0 2 1 * *");
  CHECK(norm("monthly on the last day at 23:00") == "0 0 23 L * *");
  CHECK(norm("daily at 03:00:30") == "30 0 3 * * *");
  CHECK(fires("daily at 03:00", "2026-06-01T04:00:00Z", 1) == V{"2026-06-02T03:00:00Z"});
}

TEST_CASE("cron: malformed expressions are refused naming the field and the problem") {
  auto err = [](std::string_view text) {
    auto e = CronExpression::parse(text);
    REQUIRE_FALSE(e);
    CHECK(e.error().is(errc::invalid_argument));
    return e.error().message;
  };
  CHECK_THAT(err("*/0 * * * *"), Catch::Contains("minute field \"*/0\": a step must be at least 1"));
  CHECK_THAT(err("60 * * * *"), Catch::Contains("minute field \"60\": 60 is out of range 0-59"));
  CHECK_THAT(err("0 24 * * *"), Catch::Contains("hour field"));
  CHECK_THAT(err("0 0 32 * *"), Catch::Contains("day-of-month field"));
  CHECK_THAT(err("0 0 * 13 *"), Catch::Contains("month field"));
  CHECK_THAT(err("0 0 * * FOO"), Catch::Contains("day-of-week field \"FOO\": \"FOO\" is not a day name"));
  CHECK_THAT(err("5-1 * * * *"), Catch::Contains("runs backwards"));
  CHECK_THAT(err("* * * *"), Catch::Contains("expected 5 fields"));
  CHECK_THAT(err("1,,2 * * * *"), Catch::Contains("empty list element"));
  CHECK_THAT(err("? * * * *"), Catch::Contains("only allowed in the day fields"));
  CHECK_THAT(err("0 0 * * MON#6"), Catch::Contains("k between 1 and 5"));
  CHECK_THAT(err("0 0 ? * L"), Catch::Contains("L alone is ambiguous"));
  CHECK_THAT(err("@fortnightly"), Catch::Contains("unknown macro"));
  CHECK_THAT(err("every 7 minutes"), Catch::Contains("interval schedule"));
  CHECK_THAT(err("daily at 25:00"), Catch::Contains("not a time of day"));
  CHECK_THAT(err("whenever"), Catch::Contains("natural forms"));
  CHECK_THAT(err(""), Catch::Contains("empty"));
}

TEST_CASE("cron: fixed-time is decided by the minute and hour fields") {
  CHECK(CronExpression::parse("30 2 * * *")->fixed_time());
  CHECK_FALSE(CronExpression::parse("*/30 * * * *")->fixed_time());
  CHECK_FALSE(CronExpression::parse("0 * * * *")->fixed_time());
  CHECK_FALSE(CronExpression::parse("@hourly")->fixed_time());
}
