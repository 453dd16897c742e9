#include <automation/core/json.hpp>
#include <automation/metrics/metrics.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

#include <charconv>
#include <cmath>

namespace automation::metrics {

using namespace std::chrono;
namespace bj = boost::json;

Result<void> validate(const UsageEvent& e) {
  if (e.user_id.empty()) return fail(errc::invalid_argument, "usage event: \"user_id\" must not be empty");
  if (e.feature.empty()) return fail(errc::invalid_argument, "usage event: \"feature\" must not be empty");
  if (e.event_type.empty()) return fail(errc::invalid_argument, "usage event: \"event_type\" must not be empty");
  if (e.duration && (*e.duration < Duration::zero() || *e.duration > std::chrono::days(30)))
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

bj::value optional_json(const std::optional<double>& v) { return v ? bj::value(*v) : bj::value(nullptr); }

// Readers that name the field they failed on.
struct In {
  const bj::object& o;
  std::string where;
  Result<const bj::value*> at(std::string_view k) const {
    auto* v = o.if_contains(k);
    if (!v) return fail(errc::invalid_argument, fmt::format("rollup: {}.{} is missing", where, k));
    return v;
  }
  Result<double> num(std::string_view k) const {
    auto v = at(k);
    if (!v) return v.error();
    if (!(*v)->is_number()) return fail(errc::invalid_argument, fmt::format("rollup: {}.{} is not a number", where, k));
    return (*v)->to_number<double>();
  }
  Result<std::uint64_t> u64(std::string_view k) const {
    auto v = num(k);
    if (!v) return v.error();
    return static_cast<std::uint64_t>(*v);
  }
  Result<std::string> str(std::string_view k) const {
    auto v = at(k);
    if (!v) return v.error();
    if (!(*v)->is_string()) return fail(errc::invalid_argument, fmt::format("rollup: {}.{} is not a string", where, k));
    return std::string((*v)->as_string());
  }
  Result<In> obj(std::string_view k) const {
    auto v = at(k);
    if (!v) return v.error();
    if (!(*v)->is_object()) return fail(errc::invalid_argument, fmt::format("rollup: {}.{} is not an object", where, k));
    return In{(*v)->as_object(), where + "." + std::string(k)};
  }
  Result<const bj::array*> arr(std::string_view k) const {
    auto v = at(k);
    if (!v) return v.error();
    if (!(*v)->is_array()) return fail(errc::invalid_argument, fmt::format("rollup: {}.{} is not an array", where, k));
    return &(*v)->as_array();
  }
  Result<std::optional<double>> opt(std::string_view k) const {
    auto v = at(k);
    if (!v) return v.error();
    if ((*v)->is_null()) return std::optional<double>{};
    auto n = num(k);
    if (!n) return n.error();
    return std::optional<double>(*n);
  }
};

#define AUTOMATION_TRY(var, expr) \
  auto var = (expr);              \
  if (!var) return var.error()

Result<DurationStats> read_duration(const In& in) {
  DurationStats d;
  AUTOMATION_TRY(c, in.u64("count"));
  AUTOMATION_TRY(m, in.num("mean_ms"));
  AUTOMATION_TRY(p50, in.num("p50_ms"));
  AUTOMATION_TRY(p95, in.num("p95_ms"));
  d.count = *c;
  d.mean_ms = *m;
  d.p50_ms = *p50;
  d.p95_ms = *p95;
  return d;
}

Result<std::vector<NamedCount>> read_counts(const In& in, std::string_view k) {
  AUTOMATION_TRY(a, in.arr(k));
  std::vector<NamedCount> out;
  for (const auto& v : **a) {
    if (!v.is_object()) return fail(errc::invalid_argument, fmt::format("rollup: {}.{} holds a non-object", in.where, k));
    In e{v.as_object(), in.where + "." + std::string(k)};
    AUTOMATION_TRY(name, e.str("name"));
    AUTOMATION_TRY(count, e.u64("count"));
    out.push_back({*name, *count});
  }
  return out;
}

}  // namespace

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
                                 {"relative", optional_json(c.relative)}});
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
                             {"churn_rate", optional_json(r.revenue.churn_rate)},
                             {"revenue_per_active_user", optional_json(r.revenue.revenue_per_active_user)},
                             {"plans", std::move(plans)}}},
      {"changes", std::move(changes)},
      {"computed", format_timestamp(r.computed)},
      {"partials_read", r.partials_read},
      {"reused", r.reused},
      {"why", r.why},
  };
}

Result<Rollup> rollup_from_json(const bj::value& v) {
  if (!v.is_object()) return fail(errc::invalid_argument, "rollup: not a JSON object");
  In root{v.as_object(), "rollup"};
  Rollup r;
  AUTOMATION_TRY(period, root.obj("period"));
  AUTOMATION_TRY(key, period->str("key"));
  AUTOMATION_TRY(p, parse_period(*key));
  r.period = *p;
  AUTOMATION_TRY(zone, root.str("time_zone"));
  r.time_zone = *zone;
  for (auto [k, dst] : {std::pair{"begin", &r.begin}, std::pair{"end", &r.end}, std::pair{"computed", &r.computed}}) {
    AUTOMATION_TRY(text, root.str(k));
    AUTOMATION_TRY(t, parse_timestamp(*text));
    *dst = *t;
  }
  AUTOMATION_TRY(usage, root.obj("usage"));
  AUTOMATION_TRY(events, usage->u64("events"));
  AUTOMATION_TRY(users, usage->u64("unique_users"));
  AUTOMATION_TRY(errors, usage->u64("errors"));
  AUTOMATION_TRY(rate, usage->num("error_rate"));
  AUTOMATION_TRY(dur, usage->obj("duration"));
  AUTOMATION_TRY(d, read_duration(*dur));
  r.usage.events = *events;
  r.usage.unique_users = *users;
  r.usage.errors = *errors;
  r.usage.error_rate = *rate;
  r.usage.duration = *d;
  AUTOMATION_TRY(features, usage->arr("features"));
  for (const auto& f : **features) {
    if (!f.is_object()) return fail(errc::invalid_argument, "rollup: usage.features holds a non-object");
    In e{f.as_object(), "usage.features"};
    FeatureUsage u;
    AUTOMATION_TRY(name, e.str("feature"));
    AUTOMATION_TRY(fe, e.u64("events"));
    AUTOMATION_TRY(fr, e.u64("errors"));
    AUTOMATION_TRY(frate, e.num("error_rate"));
    AUTOMATION_TRY(fdur, e.obj("duration"));
    AUTOMATION_TRY(fd, read_duration(*fdur));
    u.feature = *name;
    u.events = *fe;
    u.errors = *fr;
    u.error_rate = *frate;
    u.duration = *fd;
    r.usage.features.push_back(std::move(u));
  }
  AUTOMATION_TRY(types, read_counts(*usage, "event_types"));
  AUTOMATION_TRY(codes, read_counts(*usage, "error_codes"));
  r.usage.event_types = std::move(*types);
  r.usage.error_codes = std::move(*codes);

  AUTOMATION_TRY(rev, root.obj("revenue"));
  AUTOMATION_TRY(days, rev->num("days"));
  AUTOMATION_TRY(total, rev->num("total_revenue"));
  AUTOMATION_TRY(subs, rev->num("new_subscribers"));
  AUTOMATION_TRY(active, rev->num("active_users"));
  AUTOMATION_TRY(churn, rev->num("churn_count"));
  AUTOMATION_TRY(crate, rev->opt("churn_rate"));
  AUTOMATION_TRY(rpau, rev->opt("revenue_per_active_user"));
  r.revenue.days = static_cast<int>(*days);
  r.revenue.total_revenue = *total;
  r.revenue.new_subscribers = static_cast<std::int64_t>(*subs);
  r.revenue.active_users = static_cast<std::int64_t>(*active);
  r.revenue.churn_count = static_cast<std::int64_t>(*churn);
  r.revenue.churn_rate = *crate;
  r.revenue.revenue_per_active_user = *rpau;
  AUTOMATION_TRY(plans, rev->arr("plans"));
  for (const auto& pv : **plans) {
    if (!pv.is_object()) return fail(errc::invalid_argument, "rollup: revenue.plans holds a non-object");
    In e{pv.as_object(), "revenue.plans"};
    PlanRevenue pr;
    AUTOMATION_TRY(name, e.str("plan"));
    AUTOMATION_TRY(prev, e.num("revenue"));
    AUTOMATION_TRY(ps, e.num("new_subscribers"));
    AUTOMATION_TRY(pa, e.num("active_users"));
    AUTOMATION_TRY(pc, e.num("churn_count"));
    pr.plan = *name;
    pr.revenue = *prev;
    pr.new_subscribers = static_cast<std::int64_t>(*ps);
    pr.active_users = static_cast<std::int64_t>(*pa);
    pr.churn_count = static_cast<std::int64_t>(*pc);
    r.revenue.plans.push_back(std::move(pr));
  }
  AUTOMATION_TRY(changes, root.arr("changes"));
  for (const auto& cv : **changes) {
    if (!cv.is_object()) return fail(errc::invalid_argument, "rollup: changes holds a non-object");
    In e{cv.as_object(), "changes"};
    Change c;
    AUTOMATION_TRY(fig, e.str("figure"));
    AUTOMATION_TRY(val, e.num("value"));
    AUTOMATION_TRY(prv, e.num("previous"));
    AUTOMATION_TRY(abs, e.num("absolute"));
    AUTOMATION_TRY(rel, e.opt("relative"));
    c.figure = *fig;
    c.value = *val;
    c.previous = *prv;
    c.absolute = *abs;
    c.relative = *rel;
    r.changes.push_back(std::move(c));
  }
  AUTOMATION_TRY(blocks, root.num("partials_read"));
  r.partials_read = static_cast<std::int64_t>(*blocks);
  AUTOMATION_TRY(why, root.str("why"));
  r.why = *why;
  if (auto* reused = root.o.if_contains("reused"); reused && reused->is_bool()) r.reused = reused->as_bool();
  return r;
}

}  // namespace automation::metrics
