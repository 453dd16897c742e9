#include "periods.hpp"

namespace autoctl {
namespace mx = automation::metrics;
using automation::errc;
using automation::Error;
using namespace std::chrono;

void add_period_options(CLI::App* cmd, PeriodOptions& o) {
  cmd->add_flag("--daily", o.daily, "Days (default period: yesterday)");
  cmd->add_flag("--weekly", o.weekly, "ISO weeks, Monday to Sunday (default: last week)");
  cmd->add_flag("--monthly", o.monthly, "Months (default: last month)");
  cmd->add_option("--date", o.date, "A date (YYYY-MM-DD) in the period");
  cmd->add_option("--from", o.from, "First date: with --daily/--weekly/--monthly every period from here to --to, else one range");
  cmd->add_option("--to", o.to, "Last date (inclusive)");
}

automation::Result<std::vector<mx::Period>> select_periods(const PeriodOptions& o, const automation::TimeZone& zone,
                                                           automation::TimePoint now, std::optional<mx::Granularity> default_kind) {
  const int kinds = o.daily + o.weekly + o.monthly;
  if (kinds > 1) return Error{errc::invalid_argument, "choose one of --daily, --weekly and --monthly"};
  if (!o.date.empty() && (!o.from.empty() || !o.to.empty()))
    return Error{errc::invalid_argument, "--date and --from/--to exclude each other"};
  if (o.from.empty() != o.to.empty()) return Error{errc::invalid_argument, "--from and --to go together"};
  auto kind = o.daily     ? std::optional(mx::Granularity::day)
              : o.weekly  ? std::optional(mx::Granularity::week)
              : o.monthly ? std::optional(mx::Granularity::month)
                          : std::nullopt;
  if (!kind && o.from.empty()) {
    if (!default_kind) return Error{errc::invalid_argument, "choose --daily, --weekly or --monthly, or a range with --from and --to"};
    kind = default_kind;
  }
  auto period_of = [&](year_month_day d) { return mx::period_of(*kind, d); };
  std::vector<mx::Period> periods;
  if (!o.from.empty()) {
    auto a = mx::parse_date(o.from);
    if (!a) return automation::with_context(a.error(), "--from");
    auto b = mx::parse_date(o.to);
    if (!b) return automation::with_context(b.error(), "--to");
    if (!kind) {
      auto p = mx::date_range(*a, *b);
      if (!p) return p.error();
      periods.push_back(*p);
      return periods;
    }
    if (sys_days{*b} < sys_days{*a}) return Error{errc::invalid_argument, "--to is before --from"};
    for (auto p = period_of(*a); sys_days{p.first} <= sys_days{*b}; p = period_of(sys_days{p.last} + days{1})) {
      periods.push_back(p);
      if (periods.size() > 3660) return Error{errc::invalid_argument, "--from/--to spans more than 3,660 periods"};
    }
  } else if (!o.date.empty()) {
    auto d = mx::parse_date(o.date);
    if (!d) return automation::with_context(d.error(), "--date");
    periods.push_back(period_of(*d));
  } else {
    // The last complete period: yesterday, last week, last month.
    const auto today = zone.local_date(now);
    periods.push_back(period_of(today).previous());
  }
  return periods;
}

}  // namespace autoctl
