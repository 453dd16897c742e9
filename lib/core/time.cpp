#include <automation/core/time.hpp>
#include <detail/names.hpp>

#include <date/date.h>
#include <date/tz.h>
#include <fmt/format.h>

#include <array>
#include <cctype>
#include <cstdint>
#include <limits>

namespace automation {
namespace {

using namespace std::chrono;

struct Unit {
  std::string_view name;
  std::int64_t ms;
};
// "ms" must be tried before "m".
constexpr std::array<Unit, 6> kUnits{{{"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}, {"w", 604'800'000}}};

Error bad_duration(std::string_view text, std::string_view why) {
  return fail(errc::invalid_argument, fmt::format("invalid duration \"{}\": {}", text, why));
}

Error bad_timestamp(std::string_view text, std::string_view why) {
  return fail(errc::invalid_argument, fmt::format("invalid timestamp \"{}\": {}", text, why));
}

// Reads exactly n digits at pos into out.
bool digits(std::string_view s, std::size_t& pos, int n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (int i = 0; i < n; ++i) {
    char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  pos += n;
  return true;
}

}  // namespace

Result<Millis> parse_duration(std::string_view input) {
  const std::string_view text = detail::trim(input);
  if (text.empty()) return bad_duration(input, "empty (expected e.g. 30s, 5m, 1h30m, 90d)");
  if (text.front() == '-') return bad_duration(input, "negative durations are not allowed");
  if (text == "0") return Millis(0);
  std::size_t pos = 0;
  std::int64_t total = 0;
  while (pos < text.size()) {
    const std::size_t start = pos;
    std::int64_t whole = 0;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
      if (whole > (std::numeric_limits<std::int64_t>::max() - 9) / 10) return bad_duration(input, "too large");
      whole = whole * 10 + (text[pos++] - '0');
    }
    std::int64_t frac = 0, frac_scale = 1;
    if (pos < text.size() && text[pos] == '.') {
      ++pos;
      const std::size_t frac_start = pos;
      while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
        if (frac_scale >= 1'000'000'000) return bad_duration(input, "too many decimal places");
        frac = frac * 10 + (text[pos++] - '0');
        frac_scale *= 10;
      }
      if (pos == frac_start) return bad_duration(input, fmt::format("expected digits after '.' at position {}", pos + 1));
    }
    if (pos == start) return bad_duration(input, fmt::format("expected a number at position {}", pos + 1));
    const Unit* unit = nullptr;
    for (const auto& u : kUnits) {
      if (text.substr(pos, u.name.size()) == u.name) {
        unit = &u;
        break;
      }
    }
    if (!unit) {
      if (pos >= text.size())
        return bad_duration(input, fmt::format("missing unit after \"{}\" (use ms, s, m, h, d or w)", text.substr(start)));
      return bad_duration(input, fmt::format("unknown unit at position {} (use ms, s, m, h, d or w)", pos + 1));
    }
    pos += unit->name.size();
    if (whole > std::numeric_limits<std::int64_t>::max() / unit->ms) return bad_duration(input, "too large");
    std::int64_t part = whole * unit->ms;
    if (frac) {
      const std::int64_t num = frac * unit->ms;
      if (num % frac_scale != 0) return bad_duration(input, "finer than one millisecond");
      part += num / frac_scale;
    }
    if (total > std::numeric_limits<std::int64_t>::max() - part) return bad_duration(input, "too large");
    total += part;
  }
  return Millis(total);
}

std::string format_duration(Millis d) {
  std::int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out.push_back('-');
    ms = -ms;
  }
  static constexpr std::array<Unit, 5> kPrint{{{"d", 86'400'000}, {"h", 3'600'000}, {"m", 60'000}, {"s", 1000}, {"ms", 1}}};
  for (const auto& u : kPrint) {
    if (ms >= u.ms) {
      out += std::to_string(ms / u.ms);
      out += u.name;
      ms %= u.ms;
    }
  }
  return out;
}

Result<TimePoint> parse_timestamp(std::string_view input) {
  const std::string_view s = detail::trim(input);
  std::size_t pos = 0;
  int y = 0, mo = 0, d = 0;
  if (!digits(s, pos, 4, y) || pos >= s.size() || s[pos++] != '-' || !digits(s, pos, 2, mo) || pos >= s.size() || s[pos++] != '-' ||
      !digits(s, pos, 2, d))
    return bad_timestamp(input, "expected YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|+HH:MM]");
  if (mo < 1 || mo > 12) return bad_timestamp(input, fmt::format("month {} out of range", mo));
  const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return bad_timestamp(input, fmt::format("day {} out of range", d));
  sys_time<nanoseconds> t = sys_days(ymd);
  if (pos == s.size()) return time_point_cast<Duration>(t);
  if (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' ')
    return bad_timestamp(input, fmt::format("unexpected '{}' at position {}", s[pos], pos + 1));
  ++pos;
  int hh = 0, mm = 0, ss = 0;
  if (!digits(s, pos, 2, hh) || pos >= s.size() || s[pos++] != ':' || !digits(s, pos, 2, mm))
    return bad_timestamp(input, "expected HH:MM after the date");
  if (pos < s.size() && s[pos] == ':') {
    ++pos;
    if (!digits(s, pos, 2, ss)) return bad_timestamp(input, "expected two digits of seconds");
  }
  if (hh > 23) return bad_timestamp(input, fmt::format("hour {} out of range", hh));
  if (mm > 59) return bad_timestamp(input, fmt::format("minute {} out of range", mm));
  if (ss > 59) return bad_timestamp(input, fmt::format("second {} out of range", ss));
  t += hours(hh) + minutes(mm) + seconds(ss);
  if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
    ++pos;
    std::int64_t ns = 0;
    int n = 0;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
      if (n < 9) {
        ns = ns * 10 + (s[pos] - '0');
        ++n;
      }
      ++pos;
    }
    if (n == 0) return bad_timestamp(input, "expected digits after the decimal point");
    for (int i = n; i < 9; ++i) ns *= 10;
    t += nanoseconds(ns);
  }
  if (pos == s.size()) return time_point_cast<Duration>(t);
  if (s[pos] == 'Z' || s[pos] == 'z') {
    ++pos;
  } else if (s[pos] == '+' || s[pos] == '-') {
    const int sign = s[pos++] == '+' ? 1 : -1;
    int oh = 0, om = 0;
    if (!digits(s, pos, 2, oh)) return bad_timestamp(input, "expected a zone offset like +01:00");
    if (pos < s.size() && s[pos] == ':') ++pos;
    if (!digits(s, pos, 2, om)) return bad_timestamp(input, "expected a zone offset like +01:00");
    if (oh > 23 || om > 59) return bad_timestamp(input, "zone offset out of range");
    t -= sign * (hours(oh) + minutes(om));
  } else {
    return bad_timestamp(input, fmt::format("unexpected '{}' at position {}", s[pos], pos + 1));
  }
  if (pos != s.size()) return bad_timestamp(input, fmt::format("unexpected text after position {}", pos));
  return time_point_cast<Duration>(t);
}

std::string format_timestamp(TimePoint t) {
  const auto ms = floor<milliseconds>(t);
  const auto day = floor<days>(ms);
  const year_month_day ymd{day};
  const hh_mm_ss<milliseconds> tod{ms - day};
  std::string out = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                                static_cast<unsigned>(ymd.day()), tod.hours().count(), tod.minutes().count(), tod.seconds().count());
  if (tod.subseconds().count()) out += fmt::format(".{:03}", tod.subseconds().count());
  out.push_back('Z');
  return out;
}

Result<TimePoint> parse_time_spec(std::string_view input, TimePoint now) {
  const std::string_view s = detail::trim(input);
  if (s == "now") return now;
  if (s.size() >= 10 && s[4] == '-') return parse_timestamp(s);
  auto d = parse_duration(s);
  if (!d)
    return fail(errc::invalid_argument,
                fmt::format("invalid time \"{}\": expected an ISO-8601 time (2026-11-23T07:00:00Z), a date, \"now\", "
                            "or a duration before now such as 24h or 7d",
                            input));
  return now - d.value();
}

// ---- TimeZone ----------------------------------------------------------------------------------

namespace {
const date::time_zone* zone_of(const void* p) { return static_cast<const date::time_zone*>(p); }
const date::time_zone* utc_zone() {
  static const date::time_zone* z = [] {
    try {
      return date::locate_zone("UTC");
    } catch (...) {
      return static_cast<const date::time_zone*>(nullptr);
    }
  }();
  return z;
}
}  // namespace

TimeZone::TimeZone() noexcept : zone_(utc_zone()) {}

Result<TimeZone> TimeZone::locate(std::string_view name) {
  try {
    return TimeZone(date::locate_zone(name));
  } catch (const std::exception& e) {
    return fail(errc::invalid_argument, fmt::format("unknown time zone \"{}\" (expected an IANA name such as UTC or Europe/Berlin)", name));
  }
}

std::string TimeZone::name() const { return zone_ ? std::string(zone_of(zone_)->name()) : "UTC"; }

std::chrono::local_time<Duration> TimeZone::to_local(TimePoint t) const {
  if (!zone_) return std::chrono::local_time<Duration>(t.time_since_epoch());
  const auto lt = zone_of(zone_)->to_local(t);
  return std::chrono::local_time<Duration>(lt.time_since_epoch());
}

TimePoint TimeZone::to_sys(std::chrono::local_time<Duration> local) const {
  if (!zone_) return TimePoint(local.time_since_epoch());
  const date::local_time<Duration> lt(local.time_since_epoch());
  return zone_of(zone_)->to_sys(lt, date::choose::earliest);
}

std::chrono::seconds TimeZone::offset(TimePoint t) const {
  if (!zone_) return seconds(0);
  return zone_of(zone_)->get_info(t).offset;
}

std::chrono::year_month_day TimeZone::local_date(TimePoint t) const { return year_month_day{floor<days>(to_local(t))}; }

TimePoint TimeZone::start_of_day(std::chrono::year_month_day day) const {
  return to_sys(std::chrono::local_time<Duration>(local_days(day).time_since_epoch()));
}

std::string TimeZone::format(TimePoint t) const {
  const auto off = offset(t);
  const auto local = floor<milliseconds>(TimePoint(t.time_since_epoch() + off));
  std::string s = format_timestamp(local);
  s.pop_back();  // drop 'Z'
  const auto total = off.count();
  const auto a = total < 0 ? -total : total;
  s += fmt::format("{}{:02}:{:02}", total < 0 ? '-' : '+', a / 3600, (a % 3600) / 60);
  return s;
}

TimeZone::Period TimeZone::period(TimePoint t) const {
  if (!zone_) return {TimePoint::min(), TimePoint::max(), seconds(0)};
  const auto info = zone_of(zone_)->get_info(t);
  // The first and last periods reach far beyond what a nanosecond TimePoint holds.
  constexpr auto kLimit = std::chrono::duration_cast<seconds>(TimePoint::duration::max()) - seconds(1);
  auto clamp = [&](date::sys_seconds x, TimePoint beyond_low, TimePoint beyond_high) {
    if (x.time_since_epoch() >= kLimit) return beyond_high;
    if (x.time_since_epoch() <= -kLimit) return beyond_low;
    return TimePoint(x.time_since_epoch());
  };
  return {clamp(info.begin, TimePoint::min(), TimePoint::max()), clamp(info.end, TimePoint::min(), TimePoint::max()), info.offset};
}

TimeZone::Resolution TimeZone::resolve(std::chrono::local_time<Duration> local) const {
  const TimePoint naive(local.time_since_epoch());
  if (!zone_) return {Resolution::Kind::unique, naive, naive};
  const auto info = zone_of(zone_)->get_info(date::local_seconds(floor<seconds>(local).time_since_epoch()));
  switch (info.result) {
    case date::local_info::nonexistent: {
      const TimePoint end(info.second.begin.time_since_epoch());
      return {Resolution::Kind::gap, end, end};
    }
    case date::local_info::ambiguous:
      return {Resolution::Kind::repeated, naive - info.first.offset, naive - info.second.offset};
    default:
      return {Resolution::Kind::unique, naive - info.first.offset, naive - info.first.offset};
  }
}

}  // namespace automation
