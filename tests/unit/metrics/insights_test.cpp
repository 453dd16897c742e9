// Insights against hand-computed fixtures: most and least used features, movers, error-rate spikes,
// the revenue trend and churn, from events and revenue stored through MetricsAggregator.
#include <automation/metrics/aggregator.hpp>
#include <automation/metrics/insights.hpp>
#include <automation/storage/memory_store.hpp>
#include <automation/testing/manual_clock.hpp>

#include <fmt/format.h>
#include "support/usage_events.hpp"

#include <catch2/catch.hpp>

using namespace automation;
using namespace automation::metrics;
using namespace std::chrono;
using Catch::Matchers::Contains;

namespace {

void add(std::vector<UsageEvent>& out, std::string_view date, const std::string& feature, int count, int errors = 0) {
  test::add_events(out, date, feature, count, errors, 7, false);
}

const Insight* find(const std::vector<Insight>& all, InsightKind kind, std::string_view subject = {}) {
  for (const auto& i : all)
    if (i.kind == kind && (subject.empty() || i.subject == subject)) return &i;
  return nullptr;
}

struct Fixture {
  storage::MemoryStore store;
  testing::ManualClock clock{parse_timestamp("2026-11-30T06:00:00Z").value()};
  MetricsAggregator agg{store, clock};

  Fixture() {
    std::vector<UsageEvent> events;
    // 2026-W47 (Nov 16-22): 200 events, 2 errors.
    add(events, "2026-11-17", "vocal-coach", 100, 2);
    add(events, "2026-11-18", "lyrics", 50);
    add(events, "2026-11-19", "mixer", 20);
    add(events, "2026-11-20", "legacy", 30);
    // 2026-W48 (Nov 23-29): 235 events, 20 errors.
    add(events, "2026-11-24", "vocal-coach", 150, 3);
    add(events, "2026-11-25", "lyrics", 40, 12);
    add(events, "2026-11-26", "mixer", 20);
    add(events, "2026-11-27", "karaoke", 25, 5);
    REQUIRE(agg.ingest(events));
    // 28 days of revenue to Nov 29: 1000 + 10 a day; churn 1 a day in W47, 2 a day in W48.
    std::vector<RevenueRecord> revenue;
    for (int d = 0; d < 28; ++d) {
      const year_month_day date{sys_days{year{2026} / November / 2} + days{d}};
      revenue.push_back({date, "pro", 1000.0 + 10 * d, 1, 100, d >= 21 ? 2 : 1});
    }
    REQUIRE(agg.ingest_revenue(revenue));
  }
};

}  // namespace

TEST_CASE("insights: features, movers, error-rate spikes, revenue trend and churn of a week", "[metrics]") {
  Fixture f;
  auto all = f.agg.insights(week_of(year{2026} / November / 25));
  REQUIRE(all);

  const auto* most = find(*all, InsightKind::most_used_feature);
  REQUIRE(most);
  CHECK(most->subject == "vocal-coach");
  CHECK(most->sentence == "Most popular feature: vocal-coach with 150 events (63.8 % of all events, +50.0 % on the week before)");
  CHECK(most->numbers.at("events").to_number<double>() == 150);
  CHECK(most->previous == 100);

  const auto* least = find(*all, InsightKind::least_used_feature);
  REQUIRE(least);
  CHECK(least->sentence == "Least used feature: mixer with 20 events (8.5 % of all events, +0.0 % on the week before)");

  // Movers by absolute change: vocal-coach +50, legacy -30 (gone), karaoke +25 (new); lyrics (-10) is fourth.
  std::vector<std::string> movers;
  for (const auto& i : *all)
    if (i.kind == InsightKind::feature_mover) movers.push_back(i.subject);
  CHECK(movers == std::vector<std::string>{"vocal-coach", "legacy", "karaoke"});
  CHECK(find(*all, InsightKind::feature_mover, "vocal-coach")->sentence ==
        "vocal-coach grew 50.0 % on the week before: 150 events, from 100");
  CHECK(find(*all, InsightKind::feature_mover, "legacy")->sentence == "legacy had no events this week, after 30 the week before");
  CHECK(find(*all, InsightKind::feature_mover, "legacy")->severity == InsightSeverity::notice);
  CHECK(find(*all, InsightKind::feature_mover, "karaoke")->sentence == "karaoke is new: 25 events this week, none the week before");

  // Error rate: 20 / 235 = 8.5 % against 2 / 200 = 1.0 %; lyrics 12 / 40 = 30 % against 0 / 50.
  const auto* overall = find(*all, InsightKind::error_rate_spike, "overall");
  REQUIRE(overall);
  CHECK(overall->severity == InsightSeverity::warning);
  CHECK(overall->sentence == "Error rate rose to 8.5 % from 1.0 % the week before (20 errors in 235 events)");
  const auto* lyrics = find(*all, InsightKind::error_rate_spike, "lyrics");
  REQUIRE(lyrics);
  CHECK(lyrics->sentence == "Error rate of lyrics rose to 30.0 % from 0.0 % the week before (12 errors in 40 events)");
  CHECK_FALSE(find(*all, InsightKind::error_rate_spike, "vocal-coach"));  // 2 % against 2 %
  // karaoke is new: 20 % errors, but no rate before to compare with.
  const auto* karaoke = find(*all, InsightKind::error_rate_spike, "karaoke");
  REQUIRE(karaoke);
  CHECK(karaoke->sentence == "Error rate of karaoke is 20.0 %, with no events the week before (5 errors in 25 events)");
  CHECK_FALSE(karaoke->previous);

  // Revenue: 10 a day over 27 days from a mean of 1135 is +23.8 %; this week 8680 against 8190.
  const auto* trend = find(*all, InsightKind::revenue_trend);
  REQUIRE(trend);
  CHECK(trend->sentence == "Revenue is trending upward: +23.8 % over 28 days (fit R² 1.00); 8680.00 this week, +6.0 % on the week before");
  CHECK(trend->numbers.at("slope_per_day").to_number<double>() == Approx(10.0));
  CHECK(trend->numbers.at("direction").as_string() == "upward");

  // Churn: 14 of 100 against 7 of 100.
  const auto* churn = find(*all, InsightKind::churn_change);
  REQUIRE(churn);
  CHECK(churn->severity == InsightSeverity::warning);
  CHECK(churn->sentence == "Churn rate rose to 14.0 % from 7.0 % the week before (+7.0 points; 14 users churned)");

  // The order is fixed: ranks, movers, spikes, trend, churn.
  CHECK(all->front().kind == InsightKind::most_used_feature);
  CHECK(all->back().kind == InsightKind::churn_change);
  // Every insight carries its figure and numbers into JSON.
  auto doc = to_json(*overall);
  CHECK(doc.at("kind").as_string() == "error_rate_spike");
  CHECK(doc.at("figure").as_string() == "usage.error_rate");
  CHECK(doc.at("numbers").at("errors").to_number<double>() == 20);
}

TEST_CASE("insights: a flat or falling revenue, a quiet period, and bad options", "[metrics]") {
  storage::MemoryStore store;
  testing::ManualClock clock{parse_timestamp("2026-11-30T06:00:00Z").value()};
  MetricsAggregator agg{store, clock};
  const auto week = week_of(year{2026} / November / 25);

  // Nothing stored: nothing to say.
  auto none = agg.insights(week);
  REQUIRE(none);
  CHECK(none->empty());

  // Revenue alternating 990/1010: flat. Then falling by 20 a day: downward, a notice.
  std::vector<RevenueRecord> flat;
  for (int d = 0; d < 28; ++d)
    flat.push_back({year_month_day{sys_days{year{2026} / November / 2} + days{d}}, "pro", d % 2 ? 990.0 : 1010.0, 0, 50, 0});
  REQUIRE(agg.ingest_revenue(flat));
  auto r = agg.insights(week);
  REQUIRE(r);
  const auto* trend = find(*r, InsightKind::revenue_trend);
  REQUIRE(trend);
  CHECK_THAT(trend->sentence, Contains("Revenue is flat"));
  CHECK(trend->severity == InsightSeverity::info);
  const auto* churn = find(*r, InsightKind::churn_change);
  REQUIRE(churn);
  CHECK(churn->sentence == "Churn rate steady at 0.0 % (0.0 % the week before; 0 users churned)");

  std::vector<RevenueRecord> falling;
  for (int d = 0; d < 28; ++d)
    falling.push_back({year_month_day{sys_days{year{2026} / November / 2} + days{d}}, "pro", 2000.0 - 20 * d, 0, 50, 0});
  REQUIRE(agg.ingest_revenue(falling));
  r = agg.insights(week);
  REQUIRE(r);
  trend = find(*r, InsightKind::revenue_trend);
  REQUIRE(trend);
  CHECK_THAT(trend->sentence, Contains("Revenue is trending downward"));
  CHECK(trend->severity == InsightSeverity::notice);

  // A daily period fits its trend over 28 days too.
  CHECK(trend_days(day_of(year{2026} / November / 29)) == 28);
  CHECK(trend_days(month_of(year{2026} / October / 1)) == 62);

  InsightOptions bad;
  bad.spike_ratio = 0.5;
  auto e = agg.insights(week, bad);
  REQUIRE_FALSE(e);
  CHECK(e.error().is(errc::invalid_argument));
  CHECK_THAT(e.error().message, Contains("spike_ratio"));
}
