#include <automation/core/json.hpp>
#include <automation/metrics/metrics.hpp>

#include "metrics/codec.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <charconv>
#include <cmath>
#include <memory>

namespace automation::metrics {

using namespace std::chrono;
namespace bj = boost::json;

Result<void> validate(const UsageEvent& e) {
  if (e.user_id.empty()) return fail(errc::invalid_argument, "usage event: \"user_id\" must not be empty");
  if (e.feature.empty()) return fail(errc::invalid_argument, "usage event: \"feature\" must not be empty");
  if (e.event_type.empty()) return fail(errc::invalid_argument, "usage event: \"event_type\" must not be empty");
  const auto ms = to_epoch_ms(e.time);
  if (ms < detail::kMinEventTimeMs || ms >= detail::kEndEventTimeMs)
    return fail(errc::invalid_argument, "usage event: \"time\" must be in the years 1900-2199");
  if (e.duration && (*e.duration < Duration::zero() || *e.duration > std::chrono::microseconds(detail::kMaxEventDurationUs)))
    return fail(errc::invalid_argument, "usage event: \"duration\" must be from 0 to 30 days");
  return {};
}

Result<void> validate(const RevenueRecord& r) {
  if (!r.date.ok()) return fail(errc::invalid_argument, "revenue record: \"date\" is not a valid date");
  if (r.plan.empty()) return fail(errc::invalid_argument, "revenue record: \"plan\" must not be empty");
  if (!std::isfinite(r.total_revenue) || r.total_revenue < 0)
    return fail(errc::invalid_argument, "revenue record: \"total_revenue\" must be a finite number >= 0");
  if (r.new_subscribers < 0) return fail(errc::invalid_argument, "revenue record: \"new_subscribers\" must not be negative");
  if (r.active_users < 0) return fail(errc::invalid_argument, "revenue record: \"active_users\" must not be negative");
  if (r.churn_count < 0) return fail(errc::invalid_argument, "revenue record: \"churn_count\" must not be negative");
  return {};
}

// ---- periods -----------------------------------------------------------------------------------

std::string_view to_string(Granularity g) noexcept {
  switch (g) {
    case Granularity::day:
      return "daily";
    case Granularity::week:
      return "weekly";
    case Granularity::month:
      return "monthly";
    case Granularity::range:
      return "range";
  }
  return "?";
}

std::string format_date(year_month_day d) {
  return fmt::format("{:04}-{:02}-{:02}", static_cast<int>(d.year()), static_cast<unsigned>(d.month()), static_cast<unsigned>(d.day()));
}

namespace {

struct IsoWeek {
  int year;
  unsigned week;
};

sys_days monday_of(sys_days d) { return d - days{weekday{d}.iso_encoding() - 1}; }

IsoWeek iso_week(year_month_day d) {
  const auto thursday = monday_of(sys_days{d}) + days{3};
  const auto y = year_month_day{thursday}.year();
  return {static_cast<int>(y), static_cast<unsigned>((thursday - sys_days{y / January / 1}).count() / 7 + 1)};
}

bool parse_uint(std::string_view s, unsigned& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

std::string Period::key() const {
  switch (granularity) {
    case Granularity::day:
      return format_date(first);
    case Granularity::week: {
      const auto w = iso_week(first);
      return fmt::format("{:04}-W{:02}", w.year, w.week);
    }
    case Granularity::month:
      return fmt::format("{:04}-{:02}", static_cast<int>(first.year()), static_cast<unsigned>(first.month()));
    case Granularity::range:
      return format_date(first) + ".." + format_date(last);
  }
  return {};
}

int Period::days() const { return static_cast<int>((sys_days{last} - sys_days{first}).count()) + 1; }

Period Period::previous() const {
  switch (granularity) {
    case Granularity::day:
      return day_of(sys_days{first} - std::chrono::days{1});
    case Granularity::week:
      return week_of(sys_days{first} - std::chrono::days{7});
    case Granularity::month:
      return month_of(sys_days{first} - std::chrono::days{1});
    case Granularity::range:
      break;
  }
  const auto n = std::chrono::days{days()};
  return Period{Granularity::range, sys_days{first} - n, sys_days{first} - std::chrono::days{1}};
}

Period day_of(year_month_day d) { return {Granularity::day, d, d}; }
Period week_of(year_month_day d) {
  const auto monday = monday_of(sys_days{d});
  return {Granularity::week, monday, monday + days{6}};
}
Period month_of(year_month_day d) { return {Granularity::month, d.year() / d.month() / 1, d.year() / d.month() / last}; }

Period period_of(Granularity g, year_month_day d) {
  return g == Granularity::week ? week_of(d) : g == Granularity::month ? month_of(d) : day_of(d);
}

std::int32_t day_number(year_month_day d) { return static_cast<std::int32_t>(sys_days{d}.time_since_epoch().count()); }
year_month_day date_of_day(std::int32_t day) { return year_month_day{sys_days{days{day}}}; }

Result<Period> date_range(year_month_day first, year_month_day last) {
  if (!first.ok() || !last.ok()) return fail(errc::invalid_argument, "date range: invalid date");
  if (sys_days{last} < sys_days{first})
    return fail(errc::invalid_argument,
                fmt::format("date range {}..{}: the end is before the start", format_date(first), format_date(last)));
  return Period{Granularity::range, first, last};
}

Result<year_month_day> parse_date(std::string_view s) {
  unsigned y = 0, m = 0, d = 0;
  if (s.size() != 10 || s[4] != '-' || s[7] != '-' || !parse_uint(s.substr(0, 4), y) || !parse_uint(s.substr(5, 2), m) ||
      !parse_uint(s.substr(8, 2), d))
    return fail(errc::invalid_argument, fmt::format("\"{}\" is not a date (use YYYY-MM-DD)", s));
  const year_month_day ymd{year{static_cast<int>(y)}, month{m}, day{d}};
  if (!ymd.ok()) return fail(errc::invalid_argument, fmt::format("\"{}\" is not a valid date", s));
  return ymd;
}

Result<Period> parse_period(std::string_view s) {
  if (auto dots = s.find(".."); dots != std::string_view::npos) {
    auto a = parse_date(s.substr(0, dots));
    if (!a) return a.error();
    auto b = parse_date(s.substr(dots + 2));
    if (!b) return b.error();
    return date_range(*a, *b);
  }
  if (s.size() == 10) {
    auto d = parse_date(s);
    if (!d) return d.error();
    return day_of(*d);
  }
  unsigned y = 0, n = 0;
  if (s.size() == 8 && s[4] == '-' && (s[5] == 'W' || s[5] == 'w') && parse_uint(s.substr(0, 4), y) && parse_uint(s.substr(6, 2), n)) {
    const sys_days jan4{year{static_cast<int>(y)} / January / 4};
    const auto monday = monday_of(jan4) + days{7 * (static_cast<int>(n) - 1)};
    const auto w = iso_week(year_month_day{monday});
    if (n < 1 || w.year != static_cast<int>(y) || w.week != n)
      return fail(errc::invalid_argument, fmt::format("\"{}\": ISO year {} has no week {}", s, y, n));
    return week_of(year_month_day{monday});
  }
  if (s.size() == 7 && s[4] == '-' && parse_uint(s.substr(0, 4), y) && parse_uint(s.substr(5, 2), n) && n >= 1 && n <= 12)
    return month_of(year{static_cast<int>(y)} / month{n} / 1);
  return fail(errc::invalid_argument,
              fmt::format("\"{}\" is not a period (use 2026-11-23, 2026-W48, 2026-11 or 2026-11-01..2026-11-15)", s));
}

// ---- JSON --------------------------------------------------------------------------------------

namespace {

bj::object duration_json(const DurationStats& d) {
  return {{"count", d.count}, {"mean_ms", d.mean_ms}, {"p50_ms", d.p50_ms}, {"p95_ms", d.p95_ms}};
}

bj::array counts_json(const std::vector<NamedCount>& v) {
  bj::array a;
  for (const auto& c : v) a.push_back(bj::object{{"name", c.name}, {"count", c.count}});
  return a;
}

// Reads a JSON object field by field. The first failure is kept (naming the field) and later reads
// return defaults, so a caller reads everything and checks error() once.
class In {
 public:
  In(const bj::value& v, std::string where, std::shared_ptr<std::optional<Error>> error = std::make_shared<std::optional<Error>>())
      : where_(std::move(where)), error_(std::move(error)) {
    if (v.is_object())
      o_ = &v.as_object();
    else
      bad(fmt::format("{} is not an object", where_));
  }
  const std::optional<Error>& error() const { return *error_; }

  double num(std::string_view k) {
    const auto* v = at(k);
    if (v && !v->is_number()) bad(fmt::format("{}.{} is not a number", where_, k));
    return v && v->is_number() ? v->to_number<double>() : 0;
  }
  template <class T>
  T as(std::string_view k) {
    return static_cast<T>(num(k));
  }
  std::optional<double> opt(std::string_view k) {
    const auto* v = at(k);
    if (!v || v->is_null()) return std::nullopt;
    return num(k);
  }
  std::string str(std::string_view k) {
    const auto* v = at(k);
    if (v && !v->is_string()) bad(fmt::format("{}.{} is not a string", where_, k));
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
  }
  In obj(std::string_view k) {
    static const bj::value none = bj::object();  // for a missing field (the error is kept already)
    const auto* v = at(k);
    return In(v ? *v : none, where_ + "." + std::string(k), error_);
  }
  // Calls fn(In) for each element of an array of objects.
  template <class Fn>
  void each(std::string_view k, Fn fn) {
    const auto* v = at(k);
    if (v && !v->is_array()) bad(fmt::format("{}.{} is not an array", where_, k));
    if (!v || !v->is_array()) return;
    for (const auto& e : v->as_array()) {
      In item(e, where_ + "." + std::string(k), error_);
      if (error()) return;
      fn(item);
    }
  }

 private:
  const bj::value* at(std::string_view k) {
    if (error() || !o_) return nullptr;
    const auto* v = o_->if_contains(k);
    if (!v) bad(fmt::format("{}.{} is missing", where_, k));
    return v;
  }
  void bad(std::string message) {
    if (!*error_) *error_ = Error{errc::invalid_argument, std::move(message)};
  }
  const bj::object* o_ = nullptr;
  std::string where_;
  std::shared_ptr<std::optional<Error>> error_;
};

DurationStats read_duration(In in) { return {in.as<std::uint64_t>("count"), in.num("mean_ms"), in.num("p50_ms"), in.num("p95_ms")}; }

std::vector<NamedCount> read_counts(In& in, std::string_view k) {
  std::vector<NamedCount> out;
  in.each(k, [&](In e) { out.push_back({e.str("name"), e.as<std::uint64_t>("count")}); });
  return out;
}

}  // namespace

const Change* find_change(const Rollup& r, std::string_view figure) {
  for (const auto& c : r.changes)
    if (c.figure == figure) return &c;
  return nullptr;
}

bj::object to_json(const Rollup& r) {
  bj::array features;
  for (const auto& f : r.usage.features)
    features.push_back(bj::object{{"feature", f.feature},
                                  {"events", f.events},
                                  {"errors", f.errors},
                                  {"error_rate", f.error_rate},
                                  {"duration", duration_json(f.duration)}});
  bj::array plans;
  for (const auto& p : r.revenue.plans)
    plans.push_back(bj::object{{"plan", p.plan},
                               {"revenue", p.revenue},
                               {"new_subscribers", p.new_subscribers},
                               {"active_users", p.active_users},
                               {"churn_count", p.churn_count}});
  bj::array changes;
  for (const auto& c : r.changes)
    changes.push_back(bj::object{{"figure", c.figure},
                                 {"value", c.value},
                                 {"previous", c.previous},
                                 {"absolute", c.absolute},
                                 {"relative", json::or_null(c.relative)}});
  const auto zone = TimeZone::locate(r.time_zone);
  auto stamp = [&](TimePoint t) { return zone ? zone->format(t) : format_timestamp(t); };
  return bj::object{
      {"period", bj::object{{"key", r.period.key()},
                            {"granularity", to_string(r.period.granularity)},
                            {"first", format_date(r.period.first)},
                            {"last", format_date(r.period.last)}}},
      {"time_zone", r.time_zone},
      {"begin", stamp(r.begin)},
      {"end", stamp(r.end)},
      {"usage", bj::object{{"events", r.usage.events},
                           {"unique_users", r.usage.unique_users},
                           {"errors", r.usage.errors},
                           {"error_rate", r.usage.error_rate},
                           {"duration", duration_json(r.usage.duration)},
                           {"features", std::move(features)},
                           {"event_types", counts_json(r.usage.event_types)},
                           {"error_codes", counts_json(r.usage.error_codes)}}},
      {"revenue", bj::object{{"days", r.revenue.days},
                             {"total_revenue", r.revenue.total_revenue},
                             {"new_subscribers", r.revenue.new_subscribers},
                             {"active_users", r.revenue.active_users},
                             {"churn_count", r.revenue.churn_count},
                             {"churn_rate", json::or_null(r.revenue.churn_rate)},
                             {"revenue_per_active_user", json::or_null(r.revenue.revenue_per_active_user)},
                             {"plans", std::move(plans)}}},
      {"changes", std::move(changes)},
      {"computed", format_timestamp(r.computed)},
      {"partials_read", r.partials_read},
      {"reused", r.reused},
      {"why", r.why},
  };
}

Result<Rollup> rollup_from_json(const bj::value& v) {
  In root(v, "rollup");
  if (root.error()) return *root.error();
  Rollup r;
  auto period = parse_period(root.obj("period").str("key"));
  if (root.error()) return *root.error();
  if (!period) return with_context(period.error(), "rollup.period.key");
  r.period = *period;
  r.time_zone = root.str("time_zone");
  for (auto [k, dst] : {std::pair{"begin", &r.begin}, std::pair{"end", &r.end}, std::pair{"computed", &r.computed}}) {
    const auto text = root.str(k);
    if (root.error()) return *root.error();
    auto t = parse_timestamp(text);
    if (!t) return with_context(t.error(), fmt::format("rollup.{}", k));
    *dst = *t;
  }
  auto usage = root.obj("usage");
  r.usage.events = usage.as<std::uint64_t>("events");
  r.usage.unique_users = usage.as<std::uint64_t>("unique_users");
  r.usage.errors = usage.as<std::uint64_t>("errors");
  r.usage.error_rate = usage.num("error_rate");
  r.usage.duration = read_duration(usage.obj("duration"));
  usage.each("features", [&](In f) {
    r.usage.features.push_back({f.str("feature"), f.as<std::uint64_t>("events"), f.as<std::uint64_t>("errors"), f.num("error_rate"),
                                read_duration(f.obj("duration"))});
  });
  r.usage.event_types = read_counts(usage, "event_types");
  r.usage.error_codes = read_counts(usage, "error_codes");

  auto rev = root.obj("revenue");
  r.revenue.days = rev.as<int>("days");
  r.revenue.total_revenue = rev.num("total_revenue");
  r.revenue.new_subscribers = rev.as<std::int64_t>("new_subscribers");
  r.revenue.active_users = rev.as<std::int64_t>("active_users");
  r.revenue.churn_count = rev.as<std::int64_t>("churn_count");
  r.revenue.churn_rate = rev.opt("churn_rate");
  r.revenue.revenue_per_active_user = rev.opt("revenue_per_active_user");
  rev.each("plans", [&](In p) {
    r.revenue.plans.push_back({p.str("plan"), p.num("revenue"), p.as<std::int64_t>("new_subscribers"), p.as<std::int64_t>("active_users"),
                               p.as<std::int64_t>("churn_count")});
  });
  root.each("changes", [&](In c) {
    r.changes.push_back({c.str("figure"), c.num("value"), c.num("previous"), c.num("absolute"), c.opt("relative")});
  });
  r.partials_read = root.as<std::int64_t>("partials_read");
  r.why = root.str("why");
  if (root.error()) return *root.error();
  if (const auto* reused = v.as_object().if_contains("reused"); reused && reused->is_bool()) r.reused = reused->as_bool();
  return r;
}

}  // namespace automation::metrics
