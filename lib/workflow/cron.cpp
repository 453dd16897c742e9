#include <automation/workflow/cron.hpp>

#include <detail/names.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <charconv>

namespace automation::workflow {

namespace {

// ---- civil calendar: thin names over std::chrono's ------------------------------------------

namespace chr = std::chrono;
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
  return chr::sys_days{chr::year{static_cast<int>(y)} / chr::month{m} / chr::day{d}}.time_since_epoch().count();
}
unsigned weekday_of(std::int64_t days) noexcept { return chr::weekday{chr::sys_days{chr::days{days}}}.c_encoding(); }  // 0 = Sunday
unsigned days_in_month(std::int64_t y, unsigned m) noexcept {
  return static_cast<unsigned>((chr::year{static_cast<int>(y)} / chr::month{m} / chr::last).day());
}

// The lowest set bit of `mask` at or above `from`, or -1.
inline int next_bit(std::uint64_t mask, unsigned from) noexcept {
  if (from >= 64) return -1;
  const std::uint64_t m = mask >> from;
  return m ? static_cast<int>(from + static_cast<unsigned>(std::countr_zero(m))) : -1;
}

// The weekday (Mon-Fri) nearest day n of the month, never leaving the month (Quartz `nW`).
unsigned nearest_weekday(std::int64_t y, unsigned m, unsigned n, unsigned dim) noexcept {
  if (n > dim) return 0;
  const unsigned wd = weekday_of(days_from_civil(y, m, n));
  if (wd == 6) return n == 1 ? 3 : n - 1;        // Saturday: Friday before, or Monday the 3rd
  if (wd == 0) return n == dim ? n - 2 : n + 1;  // Sunday: Monday after, or Friday before
  return n;
}

}  // namespace

// ---- matching ----------------------------------------------------------------------------------

bool CronExpression::day_matches(int y, unsigned m, unsigned d, unsigned wd, unsigned dim) const {
  bool dom = (dom_ >> d) & 1u;
  bool dow = (dow_ >> wd) & 1u;
  if (quartz_) {
    if (!dom && ((dom_from_last_ >> (dim - d)) & 1u)) dom = true;
    if (!dom && dom_last_weekday_) {
      const unsigned lw = weekday_of(days_from_civil(y, m, dim)) == 6   ? dim - 1
                          : weekday_of(days_from_civil(y, m, dim)) == 0 ? dim - 2
                                                                        : dim;
      dom = d == lw;
    }
    for (std::uint32_t bits = dom_nearest_; !dom && bits; bits &= bits - 1)
      dom = nearest_weekday(y, m, static_cast<unsigned>(std::countr_zero(bits)), dim) == d;
    if (!dow && ((dow_last_ >> wd) & 1u) && d + 7 > dim) dow = true;
    if (!dow && ((dow_nth_ >> ((d - 1) / 7 * 7 + wd)) & 1u)) dow = true;
  }
  return (dom_star_ || dow_star_) ? (dom && dow) : (dom || dow);
}

std::optional<std::int64_t> CronExpression::next_local(std::int64_t t) const {
  const auto day0 = chr::floor<chr::days>(chr::sys_seconds{chr::seconds{t}});
  const auto sod = static_cast<unsigned>(t - chr::sys_seconds{day0}.time_since_epoch().count());
  const chr::year_month_day c{day0};
  std::int64_t y = static_cast<int>(c.year());
  unsigned m = static_cast<unsigned>(c.month()), d = static_cast<unsigned>(c.day()), h = sod / 3600, mi = sod / 60 % 60, s = sod % 60;
  const std::int64_t last_year = y + 28;
  auto next_day = [&] {
    ++d;
    h = mi = s = 0;
  };
  while (y <= last_year) {
    if (!((mon_ >> m) & 1u)) {
      const int nm = next_bit(mon_, m + 1);
      if (nm < 0) {
        ++y;
        m = static_cast<unsigned>(next_bit(mon_, 1));
      } else {
        m = static_cast<unsigned>(nm);
      }
      d = 1;
      h = mi = s = 0;
      continue;
    }
    const unsigned dim = days_in_month(y, m);
    if (d > dim) {
      if (++m > 12) {
        m = 1;
        ++y;
      }
      d = 1;
      h = mi = s = 0;
      continue;
    }
    const std::int64_t day_number = days_from_civil(y, m, d);
    if (!day_matches(static_cast<int>(y), m, d, weekday_of(day_number), dim)) {
      next_day();
      continue;
    }
    const int nh = next_bit(hour_, h);
    if (nh < 0) {
      next_day();
      continue;
    }
    if (static_cast<unsigned>(nh) != h) {
      h = static_cast<unsigned>(nh);
      mi = s = 0;
    }
    const int nmi = next_bit(min_, mi);
    if (nmi < 0) {
      ++h;
      mi = s = 0;
      if (h == 24) next_day();
      continue;
    }
    if (static_cast<unsigned>(nmi) != mi) {
      mi = static_cast<unsigned>(nmi);
      s = 0;
    }
    const int ns = next_bit(sec_, s);
    if (ns < 0) {
      ++mi;
      s = 0;
      if (mi == 60) {
        mi = 0;
        if (++h == 24) next_day();
      }
      continue;
    }
    return day_number * 86400 + h * 3600 + mi * 60 + static_cast<unsigned>(ns);
  }
  return std::nullopt;
}

std::optional<TimePoint> CronExpression::next(TimePoint after, const TimeZone& zone) const {
  if (reboot_) return std::nullopt;
  using std::chrono::seconds;
  const auto after_s = std::chrono::floor<seconds>(after);
  const TimeZone::Period p = zone.period(after);
  std::int64_t start = (after_s.time_since_epoch() + p.offset).count() + 1;  // local seconds, strictly after
  auto instant = [](std::int64_t local, seconds offset) { return TimePoint(seconds(local) - offset); };
  // One offset for all time (UTC, Etc/GMT-3, ...): no gaps or repeats to look up.
  const bool fixed_offset = p.begin == TimePoint::min() && p.end == TimePoint::max();
  // Wall-clock expressions in the first pass through a repeated hour: matches left in it come
  // first, then the repeated hour again from its start.
  if (!fixed_offset && !fixed_ && p.end != TimePoint::max()) {
    const TimeZone::Period after_change = zone.period(p.end);
    const std::int64_t repeat_begin = (std::chrono::floor<seconds>(p.end).time_since_epoch() + after_change.offset).count();
    const std::int64_t repeat_end = (std::chrono::floor<seconds>(p.end).time_since_epoch() + p.offset).count();
    if (after_change.offset < p.offset && start > repeat_begin) {
      if (auto c = next_local(start); c && *c < repeat_end) return instant(*c, p.offset);
      if (auto c = next_local(repeat_begin); c && *c < repeat_end) return instant(*c, after_change.offset);
      start = std::max(start, repeat_end);
    }
  }
  for (int guard = 0; guard < 100000; ++guard) {
    const auto c = next_local(start);
    if (!c) return std::nullopt;
    if (fixed_offset) return instant(*c, p.offset);
    const auto r = zone.resolve(std::chrono::local_time<Duration>(seconds(*c)));
    switch (r.kind) {
      case TimeZone::Resolution::Kind::unique:
        if (r.first > after) return r.first;
        break;
      case TimeZone::Resolution::Kind::gap:
        if (fixed_ && r.first > after) return r.first;  // runs as the gap ends
        break;
      case TimeZone::Resolution::Kind::repeated:
        if (r.first > after) return r.first;
        if (!fixed_ && r.second > after) return r.second;
        break;
    }
    start = *c + 1;
  }
  return std::nullopt;
}

std::vector<TimePoint> CronExpression::next_n(TimePoint after, std::size_t n, const TimeZone& zone) const {
  std::vector<TimePoint> out;
  for (; out.size() < n;) {
    auto t = next(after, zone);
    if (!t) break;
    out.push_back(*t);
    after = *t;
  }
  return out;
}

// ---- parsing -----------------------------------------------------------------------------------

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::vector<std::string> split_ws(std::string_view s) {
  const auto w = automation::detail::words(s);
  return {w.begin(), w.end()};
}

constexpr std::array<std::string_view, 12> kMonths{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<std::string_view, 7> kDays{"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
constexpr std::array<std::string_view, 7> kDayNames{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"};

struct FieldSpec {
  std::string_view name;
  unsigned lo, hi;
  bool months = false, days = false;
};
constexpr FieldSpec kSecond{"second", 0, 59}, kMinute{"minute", 0, 59}, kHour{"hour", 0, 23}, kDom{"day-of-month", 1, 31},
    kMonth{"month", 1, 12, true}, kDow{"day-of-week", 0, 7, false, true};

}  // namespace

struct CronParser {
  std::string_view text;

  Error bad(const FieldSpec& f, std::string_view part, std::string_view why) const {
    return Error{errc::invalid_argument, fmt::format("cron \"{}\": {} field \"{}\": {}", text, f.name, part, why)};
  }

  Result<unsigned> value(const FieldSpec& f, std::string_view field, std::string_view v) const {
    if (v.empty()) return bad(f, field, "a value is missing");
    if (std::isalpha(static_cast<unsigned char>(v[0]))) {
      const std::string l = lower(v);
      if (f.months)
        for (unsigned i = 0; i < 12; ++i)
          if (l == kMonths[i]) return i + 1;
      if (f.days)
        for (unsigned i = 0; i < 7; ++i)
          if (l == kDays[i]) return i;
      return bad(f, field,
                 fmt::format("\"{}\" is not a {}", v,
                             f.months ? "month name (JAN-DEC)"
                             : f.days ? "day name (SUN-SAT)"
                                      : "number"));
    }
    unsigned n = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || p != v.data() + v.size()) return bad(f, field, fmt::format("\"{}\" is not a number", v));
    if (n < f.lo || n > f.hi) return bad(f, field, fmt::format("{} is out of range {}-{}", n, f.lo, f.hi));
    return n;
  }

  // Parses one field into a bit mask; `star` tells whether it begins with '*' (or '?').
  Result<std::uint64_t> field(const FieldSpec& f, std::string_view field, bool& star, CronExpression* quartz = nullptr) const {
    star = !field.empty() && (field[0] == '*' || field[0] == '?');
    std::uint64_t mask = 0;
    std::size_t i = 0;
    while (i <= field.size()) {
      const std::size_t comma = std::min(field.find(',', i), field.size());
      const std::string_view part = field.substr(i, comma - i);
      i = comma + 1;
      if (part.empty()) return bad(f, field, "an empty list element");
      if (quartz) {
        auto q = quartz_part(f, field, part, *quartz);
        if (!q) return q.error();
        if (*q) continue;
      }
      std::string_view range = part, step_text;
      if (const auto slash = part.find('/'); slash != std::string_view::npos) {
        range = part.substr(0, slash);
        step_text = part.substr(slash + 1);
      }
      unsigned lo = f.lo, hi = f.hi, step = 1;
      if (range == "*" || range == "?") {
        if (range == "?" && !(f.days || f.name == kDom.name)) return bad(f, field, "'?' is only allowed in the day fields");
      } else {
        const auto dash = range.find('-');
        auto a = value(f, field, range.substr(0, dash));
        if (!a) return a.error();
        lo = *a;
        if (dash != std::string_view::npos) {
          auto b = value(f, field, range.substr(dash + 1));
          if (!b) return b.error();
          hi = *b;
          if (hi < lo) return bad(f, field, fmt::format("the range {} runs backwards", range));
        } else if (step_text.empty()) {
          hi = lo;
        }
      }
      if (!step_text.empty() || part.find('/') != std::string_view::npos) {
        auto [p, ec] = std::from_chars(step_text.data(), step_text.data() + step_text.size(), step);
        if (ec != std::errc() || p != step_text.data() + step_text.size())
          return bad(f, field, fmt::format("step \"{}\" is not a number", step_text));
        if (step == 0) return bad(f, field, "a step must be at least 1");
        if (step > f.hi) return bad(f, field, fmt::format("step {} is larger than the field's range", step));
      }
      for (unsigned v = lo; v <= hi; v += step) mask |= std::uint64_t{1} << (f.days && v == 7 ? 0 : v);
    }
    return mask;
  }

  // Quartz day extensions; true when `part` was one.
  Result<bool> quartz_part(const FieldSpec& f, std::string_view field, std::string_view part, CronExpression& e) const {
    const std::string p = lower(part);
    if (f.name == kDom.name) {
      if (p == "l") {
        e.dom_from_last_ |= 1u;
      } else if (p.starts_with("l-")) {
        auto n = value(kDom, field, std::string_view(p).substr(2));
        if (!n || *n > 30) return bad(f, field, "L-n needs n between 1 and 30");
        e.dom_from_last_ |= 1u << *n;
      } else if (p == "lw") {
        e.dom_last_weekday_ = true;
      } else if (p.size() >= 2 && p.back() == 'w' && std::isdigit(static_cast<unsigned char>(p[0]))) {
        auto n = value(kDom, field, std::string_view(p).substr(0, p.size() - 1));
        if (!n) return n.error();
        e.dom_nearest_ |= 1u << *n;
      } else {
        return false;
      }
      e.quartz_ = true;
      return true;
    }
    if (const auto hash = p.find('#'); hash != std::string::npos) {
      auto d = value(kDow, field, std::string_view(part).substr(0, hash));
      if (!d) return d.error();
      unsigned k = 0;
      const std::string_view ks = std::string_view(p).substr(hash + 1);
      auto [q, ec] = std::from_chars(ks.data(), ks.data() + ks.size(), k);
      if (ec != std::errc() || q != ks.data() + ks.size() || k < 1 || k > 5) return bad(f, field, "d#k needs k between 1 and 5");
      e.dow_nth_ |= std::uint64_t{1} << ((k - 1) * 7 + (*d % 7));
      e.quartz_ = true;
      return true;
    }
    if (p.size() >= 2 && p.back() == 'l') {
      auto d = value(kDow, field, std::string_view(part).substr(0, part.size() - 1));
      if (!d) return d.error();
      e.dow_last_ |= static_cast<std::uint8_t>(1u << (*d % 7));
      e.quartz_ = true;
      return true;
    }
    if (p == "l")  // Quartz reads it as Saturday, Spring as Sunday: too ambiguous to guess
      return bad(f, field,
                 "L alone is ambiguous here (Saturday in Quartz, Sunday in Spring); write SAT or SUN, or dL for the last weekday d of the "
                 "month (5L = last Friday)");
    return false;
  }

  Result<CronExpression> cron(const std::vector<std::string>& f) const {
    CronExpression e;
    const bool six = f.size() == 6;
    bool star = false, min_star = false, hour_star = false;
    auto sec = six ? field(kSecond, f[0], star) : Result<std::uint64_t>(std::uint64_t{1});
    if (!sec) return sec.error();
    const std::size_t o = six ? 1 : 0;
    auto mi = field(kMinute, f[o], min_star);
    if (!mi) return mi.error();
    auto h = field(kHour, f[o + 1], hour_star);
    if (!h) return h.error();
    auto dom = field(kDom, f[o + 2], e.dom_star_, &e);
    if (!dom) return dom.error();
    auto mon = field(kMonth, f[o + 3], star);
    if (!mon) return mon.error();
    auto dow = field(kDow, f[o + 4], e.dow_star_, &e);
    if (!dow) return dow.error();
    e.sec_ = *sec;
    e.min_ = *mi;
    e.hour_ = static_cast<std::uint32_t>(*h);
    e.dom_ = static_cast<std::uint32_t>(*dom);
    e.mon_ = static_cast<std::uint16_t>(*mon);
    e.dow_ |= static_cast<std::uint8_t>(*dow);
    e.fixed_ = !min_star && !hour_star;
    e.normalized_ = fmt::format("{}{}", six ? "" : "0 ", fmt::join(f, " "));
    return e;
  }

  Result<CronExpression> parse() const {
    const auto tokens = split_ws(text);
    if (tokens.empty()) return Error{errc::invalid_argument, "cron expression is empty"};
    if (tokens[0][0] == '@') {
      const std::string m = lower(tokens[0]);
      if (tokens.size() != 1) return Error{errc::invalid_argument, fmt::format("cron \"{}\": a macro stands alone", text)};
      if (m == "@reboot") {
        CronExpression e;
        e.reboot_ = true;
        e.normalized_ = "@reboot";
        return e;
      }
      static constexpr std::pair<std::string_view, std::string_view> kMacros[] = {
          {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"}, {"@weekly", "0 0 * * 0"},
          {"@daily", "0 0 * * *"},  {"@midnight", "0 0 * * *"}, {"@hourly", "0 * * * *"}};
      for (const auto& [name, expr] : kMacros)
        if (m == name) return cron(split_ws(expr));
      return Error{errc::invalid_argument, fmt::format("cron \"{}\": unknown macro {} (expected @yearly, @annually, @monthly, @weekly, "
                                                       "@daily, @midnight, @hourly or @reboot)",
                                                       text, tokens[0])};
    }
    if (std::isalpha(static_cast<unsigned char>(tokens[0][0]))) return natural(tokens);
    if (tokens.size() != 5 && tokens.size() != 6)
      return Error{errc::invalid_argument,
                   fmt::format("cron \"{}\": expected 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), got {}",
                               text, tokens.size())};
    return cron(tokens);
  }

  // ---- natural forms ---------------------------------------------------------------------------

  Error bad_natural(std::string_view why) const {
    return Error{errc::invalid_argument,
                 fmt::format("cron \"{}\": {} (natural forms: \"every 5 minutes\", \"every 6 hours\", \"daily at 03:00\", \"mondays at "
                             "09:00\", \"weekdays at 8:30am\", \"monthly on the 1st at 02:00\")",
                             text, why)};
  }

  // "03:00", "3:30pm", "9am", "12:00:30", "noon", "midnight" -> seconds of the day.
  std::optional<unsigned> time_of_day(std::string t) const {
    if (t == "noon") return 12 * 3600;
    if (t == "midnight") return 0;
    int add = -1;
    if (t.ends_with("am") || t.ends_with("pm")) {
      add = t.ends_with("pm") ? 12 : 0;
      t.resize(t.size() - 2);
    }
    unsigned parts[3] = {0, 0, 0};
    int n = 0;
    std::string_view rest = t;
    while (n < 3) {
      unsigned v = 0;
      auto [p, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), v);
      if (ec != std::errc() || p == rest.data()) return std::nullopt;
      parts[n++] = v;
      rest.remove_prefix(static_cast<std::size_t>(p - rest.data()));
      if (rest.empty()) break;
      if (rest[0] != ':') return std::nullopt;
      rest.remove_prefix(1);
    }
    if (!rest.empty()) return std::nullopt;
    if (add >= 0) {
      if (parts[0] < 1 || parts[0] > 12) return std::nullopt;
      parts[0] = parts[0] % 12 + static_cast<unsigned>(add);
    } else if (n < 2) {
      return std::nullopt;  // a bare "3" is ambiguous
    }
    if (parts[0] > 23 || parts[1] > 59 || parts[2] > 59) return std::nullopt;
    return parts[0] * 3600 + parts[1] * 60 + parts[2];
  }

  Result<CronExpression> natural(const std::vector<std::string>& raw) const {
    std::vector<std::string> t;
    for (const auto& x : raw) t.push_back(lower(x));
    // An optional trailing "at TIME".
    std::optional<unsigned> at;
    if (t.size() >= 2 && t[t.size() - 2] == "at") {
      at = time_of_day(t.back());
      if (!at) return bad_natural(fmt::format("\"{}\" is not a time of day (03:00, 3:30pm, 9am, noon)", raw.back()));
      t.resize(t.size() - 2);
    }
    const unsigned at_s = at.value_or(0);
    const std::string hms = fmt::format("{} {} {}", at_s % 60, at_s / 60 % 60, at_s / 3600);
    auto make = [&](const std::string& six) { return cron(split_ws(six)); };  // parse() keeps the text as written
    auto day_index = [](std::string_view w) -> int {
      for (int i = 0; i < 7; ++i) {
        const std::string plural = std::string(kDayNames[static_cast<std::size_t>(i)]) + "s";
        if (w == kDayNames[static_cast<std::size_t>(i)] || w == plural || w == kDays[static_cast<std::size_t>(i)]) return i;
      }
      return -1;
    };
    if (t.empty()) {  // "at 03:00"
      if (!at) return bad_natural("nothing to schedule");
      return make(hms + " * * *");
    }
    if (t[0] == "on" && t.size() > 1) t.erase(t.begin());
    const std::string& w = t[0];
    if (t.size() == 1) {
      if (w == "daily") return make(hms + " * * *");
      if (w == "hourly" && !at) return make("0 0 * * * *");
      if (w == "weekly") return make(hms + " * * 0");
      if (w == "monthly") return make(hms + " 1 * *");
      if (w == "yearly" || w == "annually") return make(hms + " 1 1 *");
      if (w == "weekdays") return make(hms + " * * 1-5");
      if (w == "weekends") return make(hms + " * * 0,6");
      if (const int d = day_index(w); d >= 0) return make(fmt::format("{} * * {}", hms, d));
    }
    if (w == "every" && t.size() == 2) {
      const std::string& u = t[1];
      if (u == "second" && !at) return make("* * * * * *");
      if (u == "minute" && !at) return make("0 * * * * *");
      if (u == "hour" && !at) return make("0 0 * * * *");
      if (u == "day") return make(hms + " * * *");
      if (u == "weekday") return make(hms + " * * 1-5");
      if (u == "week") return make(hms + " * * 0");
      if (u == "month") return make(hms + " 1 * *");
      if (u == "year") return make(hms + " 1 1 *");
      if (const int d = day_index(u); d >= 0) return make(fmt::format("{} * * {}", hms, d));
    }
    if (w == "every" && t.size() == 3 && !at) {
      unsigned n = 0;
      auto [p, ec] = std::from_chars(t[1].data(), t[1].data() + t[1].size(), n);
      if (ec != std::errc() || p != t[1].data() + t[1].size() || n == 0) return bad_natural(fmt::format("\"{}\" is not a count", raw[1]));
      std::string u = t[2];
      if (u.ends_with('s')) u.pop_back();
      const unsigned range = u == "second" || u == "minute" ? 60 : u == "hour" ? 24 : 0;
      if (range == 0)
        return bad_natural(fmt::format("\"{}\" is not seconds, minutes or hours (use an interval schedule for days)", raw[2]));
      if (range % n != 0)
        return bad_natural(fmt::format("every {} {}s does not divide {} evenly, and cron steps restart each {} (use an interval schedule)",
                                       n, u, range == 60 ? (u == "second" ? "a minute" : "an hour") : "a day",
                                       u == "second"   ? "minute"
                                       : u == "minute" ? "hour"
                                                       : "day"));
      // Every 60 minutes is every hour: a step as large as its range is one value.
      const std::string step = n == range ? "0" : fmt::format("*/{}", n);
      if (u == "second") return make(fmt::format("{} * * * * *", n == range ? "0" : step));
      if (u == "minute") return make(fmt::format("0 {} * * * *", step));
      return make(fmt::format("0 0 {} * * *", step));
    }
    if (w == "monthly" && t.size() >= 2) {
      std::vector<std::string> rest(t.begin() + 1, t.end());
      if (!rest.empty() && rest[0] == "on") rest.erase(rest.begin());
      if (!rest.empty() && rest[0] == "the") rest.erase(rest.begin());
      if (rest.size() == 2 && rest[0] == "last" && rest[1] == "day") return make(hms + " L * *");
      if (rest.size() == 1) {
        std::string day = rest[0];
        for (std::string_view suffix : {"st", "nd", "rd", "th"})
          if (day.ends_with(suffix)) day.resize(day.size() - 2);
        unsigned n = 0;
        auto [p, ec] = std::from_chars(day.data(), day.data() + day.size(), n);
        if (ec == std::errc() && p == day.data() + day.size() && n >= 1 && n <= 31) return make(fmt::format("{} {} * *", hms, n));
      }
      return bad_natural("expected \"monthly on the Nth\" or \"monthly on the last day\"");
    }
    return bad_natural("not a form this parser knows");
  }
};

Result<CronExpression> CronExpression::parse(std::string_view text) {
  CronParser p{text};
  auto e = p.parse();
  if (e && e->text_.empty()) e->text_ = std::string(text);
  return e;
}

}  // namespace automation::workflow
