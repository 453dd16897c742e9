#pragma once
// The period options shared by `aggregate`, `insights` and `report`: --daily|--weekly|--monthly,
// --date D, --from D --to D.
#include <automation/core/error.hpp>
#include <automation/core/time.hpp>
#include <automation/metrics/metrics.hpp>

#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <vector>

namespace autoctl {

struct PeriodOptions {
  bool daily = false, weekly = false, monthly = false;
  std::string date, from, to;
};

/// Adds --daily, --weekly, --monthly, --date, --from and --to to `cmd`.
void add_period_options(CLI::App* cmd, PeriodOptions& o);

/// The periods the options name, in the zone, at `now`:
/// - --from/--to with a kind: every period of that kind from --from to --to (at most 3,660);
///   without a kind: one date range;
/// - --date: the period of that kind containing it;
/// - neither: the last complete period of that kind (yesterday, last week, last month).
/// Without a kind (and without --from/--to), `default_kind` is used, or errc::invalid_argument when
/// there is none.
automation::Result<std::vector<automation::metrics::Period>> select_periods(
    const PeriodOptions& o, const automation::TimeZone& zone, automation::TimePoint now,
    std::optional<automation::metrics::Granularity> default_kind = std::nullopt);

}  // namespace autoctl
