#pragma once
/// Cron expressions: when a schedule fires. Accepts
/// - 5 fields (minute hour day-of-month month day-of-week) and 6 fields (seconds first);
/// - `*`, numbers, ranges `a-b`, steps `*/s`, `a-b/s` and `a/s` (from a to the field's maximum),
///   lists `a,b-c`, month names JAN-DEC and day names SUN-SAT (any case), day-of-week 0-7 (0 and 7
///   are Sunday), `?` as `*` in the day fields;
/// - macros @yearly (@annually), @monthly, @weekly, @daily (@midnight), @hourly and @reboot;
/// - Quartz day extensions: in day-of-month `L` (last day), `L-n` (n days before the last), `LW`
///   (last weekday) and `nW` (the weekday nearest day n, within the month); in day-of-week `dL`
///   (the last weekday d of the month, e.g. `5L` = last Friday) and `d#k` (the k-th weekday d,
///   e.g. `MON#1`); weekday numbers are cron's (0 = Sunday), not Quartz's;
/// - natural forms: "every 5 minutes", "every 6 hours", "every minute|hour|day", "hourly",
///   "daily", "daily at 03:00", "every day at 3:30pm", "mondays at 09:00", "every friday at 18:00",
///   "weekdays at 08:30", "weekends at 10:00", "monthly on the 1st at 02:00"; an interval that does
///   not divide its unit (every 7 minutes) is refused: cron steps restart each hour.
/// Day matching follows Vixie cron (cronie): when day-of-month or day-of-week begins with `*` (so
/// `*/2` too) a day must match both; otherwise it matches either.
/// Time zones and DST (the cronie rule): an expression is fixed-time when neither its minute nor
/// its hour field begins with `*`. A fixed-time fire whose local time falls in a DST gap fires at
/// the instant the gap ends; one in a repeated hour fires once, at the first occurrence. Other
/// expressions follow the wall clock: times in a gap do not happen and a repeated hour fires again.
/// Thread-safety: a parsed expression is immutable; next() may be called from any thread.
/// Needs: tzdata for zones other than UTC.
#include <automation/core/error.hpp>
#include <automation/core/time.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace automation::workflow {

class CronExpression {
 public:
  /// Parses `text`; errc::invalid_argument naming the field and what is wrong.
  static Result<CronExpression> parse(std::string_view text);

  /// The first fire strictly after `after` in `zone`; nullopt for @reboot and for an expression
  /// that never fires (e.g. "0 0 30 2 *"), searched up to 28 years ahead.
  std::optional<TimePoint> next(TimePoint after, const TimeZone& zone = {}) const;
  /// The next `n` fires strictly after `after`.
  std::vector<TimePoint> next_n(TimePoint after, std::size_t n, const TimeZone& zone = {}) const;

  const std::string& text() const noexcept { return text_; }
  /// The 6-field expression it means ("0 */5 * * * *"), or "@reboot".
  const std::string& normalized() const noexcept { return normalized_; }
  bool at_reboot() const noexcept { return reboot_; }
  /// Neither the minute nor the hour field begins with `*` (see the DST rule above).
  bool fixed_time() const noexcept { return fixed_; }

  // The fields, for tests and descriptions. Bit i set = value i allowed.
  std::uint64_t seconds_mask() const noexcept { return sec_; }
  std::uint64_t minutes_mask() const noexcept { return min_; }
  std::uint32_t hours_mask() const noexcept { return hour_; }
  std::uint32_t days_mask() const noexcept { return dom_; }
  std::uint16_t months_mask() const noexcept { return mon_; }
  std::uint8_t weekdays_mask() const noexcept { return dow_; }

 private:
  friend struct CronParser;
  CronExpression() = default;
  // The first local time at or after `t` (seconds since the local epoch) that matches, or nullopt.
  std::optional<std::int64_t> next_local(std::int64_t t) const;
  bool day_matches(int y, unsigned m, unsigned d, unsigned wd, unsigned dim) const;

  std::string text_, normalized_;
  bool reboot_ = false, fixed_ = false;
  std::uint64_t sec_ = 0, min_ = 0;
  std::uint32_t hour_ = 0, dom_ = 0;  // dom: bits 1..31
  std::uint16_t mon_ = 0;             // bits 1..12
  std::uint8_t dow_ = 0;              // bits 0..6
  bool dom_star_ = false, dow_star_ = false;
  // Quartz day extensions.
  bool quartz_ = false;
  std::uint32_t dom_from_last_ = 0;  // bit n: n days before the month's last day (L = bit 0)
  std::uint32_t dom_nearest_ = 0;    // bit n: the weekday nearest day n
  bool dom_last_weekday_ = false;    // LW
  std::uint8_t dow_last_ = 0;        // bit d: the last weekday d of the month
  std::uint64_t dow_nth_ = 0;        // bit (k-1)*7+d: the k-th weekday d
};

}  // namespace automation::workflow
