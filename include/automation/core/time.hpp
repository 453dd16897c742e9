#pragma once
/// Durations ("30s", "5m", "1h30m", "90d"), ISO-8601 timestamps and IANA time zones, parsed and printed.
/// Time zones come from the system tzdata through Howard Hinnant's date/tz, kept out of this header.
/// Thread-safety: all functions and TimeZone's const methods are safe from any thread.
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>

#include <chrono>
#include <string>
#include <string_view>

namespace automation {

/// Parses a duration: one or more <number><unit> groups, unit one of ms, s, m, h, d, w
/// ("30s", "5m", "1h30m", "90d", "1.5h", "250ms"). A bare "0" is zero. Negative durations are rejected.
Result<Millis> parse_duration(std::string_view text);
/// Prints the shortest exact form: 5400000ms -> "1h30m", 0 -> "0s", 1500ms -> "1s500ms".
std::string format_duration(Millis d);

/// Parses an ISO-8601 / RFC 3339 timestamp: "2026-11-23T07:31:12Z", "...T07:31:12.250+01:00",
/// "2026-11-23 07:31" (UTC), or a date "2026-11-23" (midnight UTC). A zone offset is required to be
/// valid; a missing offset means UTC.
Result<TimePoint> parse_timestamp(std::string_view text);
/// Prints RFC 3339 UTC with milliseconds when they are not zero: "2026-11-23T07:31:12Z".
std::string format_timestamp(TimePoint t);

/// Parses a point in time for filters such as --since: an ISO-8601 timestamp or date, "now", or a
/// duration meaning that long before `now` ("24h", "7d").
Result<TimePoint> parse_time_spec(std::string_view text, TimePoint now);

/// An IANA time zone ("Europe/Berlin", "UTC") from the system tzdata.
class TimeZone {
 public:
  /// UTC.
  TimeZone() noexcept;
  /// Looks a zone up by name; errc::invalid_argument naming the zone when tzdata does not know it.
  static Result<TimeZone> locate(std::string_view name);

  std::string name() const;
  /// Local wall-clock time at `t`.
  std::chrono::local_time<Duration> to_local(TimePoint t) const;
  /// The instant of a local time; a time in a DST gap moves forward, an ambiguous one takes the earlier.
  TimePoint to_sys(std::chrono::local_time<Duration> local) const;
  /// The offset from UTC in effect at `t`.
  std::chrono::seconds offset(TimePoint t) const;
  /// The local calendar date at `t`.
  std::chrono::year_month_day local_date(TimePoint t) const;
  /// The instant local midnight of `day` begins (the first valid instant on DST-gap days).
  TimePoint start_of_day(std::chrono::year_month_day day) const;
  /// RFC 3339 with the local offset: "2026-11-23T08:31:12+01:00".
  std::string format(TimePoint t) const;

  /// A span [begin, end) with one UTC offset (for UTC: all of time).
  struct Period {
    TimePoint begin, end;
    std::chrono::seconds offset{0};
  };
  Period period(TimePoint t) const;
  /// How a local time maps to instants: once; not at all (a DST gap: `first` = `second` = the
  /// instant the gap ends); or twice (a repeated hour: `first` earlier than `second`).
  struct Resolution {
    enum class Kind { unique, gap, repeated } kind = Kind::unique;
    TimePoint first, second;
  };
  Resolution resolve(std::chrono::local_time<Duration> local) const;

  friend bool operator==(const TimeZone& a, const TimeZone& b) noexcept { return a.zone_ == b.zone_; }

 private:
  explicit TimeZone(const void* zone) noexcept : zone_(zone) {}
  const void* zone_;  // const date::time_zone*, owned by the tz database for the process lifetime
};

}  // namespace automation
