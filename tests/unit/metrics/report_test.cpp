// Reports: gathered from the store (the period's rollup, the stored daily rollups of the trend
// window, insights) and rendered as JSON, Markdown and HTML with SVG charts; the HTML is parsed.
#include <automation/core/json.hpp>
#include <automation/metrics/aggregator.hpp>
#include <automation/metrics/report.hpp>
#include <automation/storage/memory_store.hpp>
#include <automation/testing/manual_clock.hpp>

#include "support/xml.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>
#include "support/usage_events.hpp"

#include <catch2/catch.hpp>

#include <cctype>

using namespace automation;
using namespace automation::metrics;
using namespace std::chrono;
using Catch::Matchers::Contains;

namespace {

void add(std::vector<UsageEvent>& out, std::string_view date, const std::string& feature, int count, int errors = 0) {
  test::add_events(out, date, feature, count, errors, 9, true);
}

// A feature name with every character HTML and Markdown care about.
const std::string kNasty = "<b>x&y\"'|z</b>";

struct Fixture {
  storage::MemoryStore store;
  testing::ManualClock clock{parse_timestamp("2026-11-30T06:00:00Z").value()};
  MetricsAggregator agg{store, clock};

  Fixture() {
    std::vector<UsageEvent> events;
    // Nov 16..29: day k has 10 + k events of vocal-coach (k errors on odd days), and 5 of the nasty one on Nov 25.
    for (int k = 0; k < 14; ++k)
      add(events, format_date(year_month_day{sys_days{year{2026} / November / 16} + days{k}}), "vocal-coach", 10 + k, k % 2 ? k : 0);
    add(events, "2026-11-25", kNasty, 5, 1);
    REQUIRE(agg.ingest(events));
    std::vector<RevenueRecord> revenue;
    for (int d = 0; d < 28; ++d)
      if (d != 20)  // no record on Nov 22: a gap in the revenue line
        revenue.push_back(
            {year_month_day{sys_days{year{2026} / November / 2} + days{d}}, d % 2 ? "pro" : "basic", 1000.0 + 10 * d, 1, 100, 1});
    REQUIRE(agg.ingest_revenue(revenue));
  }
};

// Whether "nan" or "inf" appears as a word: a number nobody could compute.
bool invented_numbers(std::string_view text) {
  std::string word;
  for (char c : std::string(text) + " ") {
    if (std::isalpha(static_cast<unsigned char>(c))) {
      word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      continue;
    }
    if (word == "nan" || word == "inf" || word == "infinity") return true;
    word.clear();
  }
  return false;
}

std::size_t count(std::string_view text, std::string_view what) {
  std::size_t n = 0;
  for (auto p = text.find(what); p != std::string_view::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("a weekly report has the week's rollup, fourteen days of figures and the insights") {
  Fixture f;
  auto rep = f.agg.report(week_of(year{2026} / November / 23)).value();
  CHECK(rep.key() == "weekly-2026-W48");
  CHECK(rep.title() == "Weekly report 2026-W48");
  CHECK(rep.generated == f.clock.now());
  // W48 = Nov 23..29 = k 7..13: sum(17..23) + 5 events.
  CHECK(rep.rollup.usage.events == 17 + 18 + 19 + 20 + 21 + 22 + 23 + 5);
  REQUIRE(rep.days.size() == 14);
  CHECK(rep.days.front().date == year{2026} / November / 16);
  CHECK(rep.days.back().date == year{2026} / November / 29);
  for (int k = 0; k < 14; ++k) {
    INFO(k);
    CHECK(rep.days[k].events == static_cast<std::uint64_t>(10 + k + (k == 9 ? 5 : 0)));
    CHECK(rep.days[k].errors == static_cast<std::uint64_t>((k % 2 ? k : 0) + (k == 9 ? 1 : 0)));
  }
  CHECK(rep.days[6].has_revenue == false);  // Nov 22
  CHECK(rep.days[7].has_revenue);
  CHECK(rep.days[7].revenue == 1000.0 + 10 * 21);
  CHECK(rep.days[7].active_users == 100);
  CHECK_FALSE(rep.insights.empty());
  CHECK(rep.insights.front().kind == InsightKind::most_used_feature);
  // A daily report still shows fourteen days; a month shows all of its days.
  CHECK(f.agg.report(day_of(year{2026} / November / 29)).value().days.size() == 14);
  CHECK(f.agg.report(month_of(year{2026} / November / 1)).value().days.size() == 30);
  CHECK(report_days(date_range(year{2026} / November / 1, year{2026} / November / 20).value()) == 20);
}

TEST_CASE("daily rollups are reused while current and recomputed when a late event touches their day") {
  Fixture f;
  auto first = f.agg.daily_rollups(year{2026} / November / 16, year{2026} / November / 29).value();
  REQUIRE(first.size() == 14);
  for (const auto& r : first) CHECK_FALSE(r.reused);
  auto again = f.agg.daily_rollups(year{2026} / November / 16, year{2026} / November / 29).value();
  for (std::size_t i = 0; i < again.size(); ++i) {
    INFO(again[i].period.key());
    CHECK(again[i].reused);
    CHECK(again[i].usage == first[i].usage);
  }
  // A late event on Nov 20 re-opens Nov 20 and Nov 21 (whose changes compare with Nov 20) only.
  std::vector<UsageEvent> late;
  add(late, "2026-11-20", "late-feature", 1);
  REQUIRE(f.agg.ingest(late));
  auto after = f.agg.daily_rollups(year{2026} / November / 16, year{2026} / November / 29).value();
  for (const auto& r : after) {
    INFO(r.period.key());
    const bool touched = r.period.key() == "2026-11-20" || r.period.key() == "2026-11-21";
    CHECK(r.reused == !touched);
  }
  CHECK(after[4].usage.events == first[4].usage.events + 1);
  // Each agrees with what aggregate() returns for the day.
  CHECK(f.agg.aggregate(day_of(year{2026} / November / 20)).value().usage == after[4].usage);
  CHECK(f.agg.daily_rollups(year{2026} / November / 20, year{2026} / November / 19).error().code == errc::invalid_argument);
  CHECK(f.agg.daily_rollups(year{2006} / November / 20, year{2026} / November / 19).error().code == errc::invalid_argument);
}

TEST_CASE("the HTML report parses, is self-contained and has its SVG charts") {
  Fixture f;
  auto rep = f.agg.report(week_of(year{2026} / November / 23)).value();
  const auto html = render(rep, ReportFormat::html);
  std::unique_ptr<test::XmlNode> doc;
  REQUIRE_NOTHROW(doc = test::parse_xml(html));
  CHECK(doc->name == "html");
  REQUIRE(doc->all("title").size() >= 1);
  CHECK(doc->all("title")[0]->text == "Weekly report 2026-W48");
  auto svgs = doc->all("svg");
  REQUIRE(svgs.size() == 5);  // events, error rate and revenue lines; feature and plan bars
  std::vector<std::string> classes;
  for (const auto* s : svgs) classes.push_back(s->attrs.at("class"));
  CHECK(classes == std::vector<std::string>{"chart events", "chart errors", "chart revenue", "chart features", "chart plans"});
  // The events line is one polyline through 14 points; revenue breaks at the missing Nov 22.
  auto event_lines = svgs[0]->all("polyline");
  REQUIRE(event_lines.size() == 1);
  CHECK(count(event_lines[0]->attrs.at("points"), ",") == 14);
  CHECK(svgs[2]->all("polyline").size() == 2);
  CHECK(svgs[2]->all("circle").size() == 13);
  // Bars: one per feature, the longest for the most used.
  auto bars = svgs[3]->all("rect");
  REQUIRE(bars.size() == 2);
  CHECK(std::stod(bars[0]->attrs.at("width")) > std::stod(bars[1]->attrs.at("width")));
  // The nasty feature name is text, not markup.
  CHECK(doc->all("b").empty());
  CHECK_THAT(doc->all_text(), Contains(kNasty));
  // Self-contained: no scripts, no external resources.
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("src=") == std::string::npos);
  CHECK(html.find("href=") == std::string::npos);
  CHECK(count(html, "http") == count(html, "http://www.w3.org/2000/svg"));
  CHECK_FALSE(invented_numbers(html));
}

TEST_CASE("the Markdown and JSON reports carry the same figures") {
  Fixture f;
  auto rep = f.agg.report(week_of(year{2026} / November / 23)).value();
  const auto md = render(rep, ReportFormat::markdown);
  CHECK_THAT(md, Contains("# Weekly report 2026-W48"));
  CHECK_THAT(md, Contains("| Events | 145 | "));
  CHECK_THAT(md, Contains("<b>x&y\"'\\|z</b>"));  // the pipe escaped in its table cell
  CHECK(count(md, "\n| 2026-11-") == 14);         // the days table
  const auto text = render(rep, ReportFormat::json);
  auto doc = json::parse(text).value().as_object();
  CHECK(doc.at("report").as_string() == "weekly-2026-W48");
  CHECK(doc.at("days").as_array().size() == 14);
  CHECK(doc.at("days").as_array()[6].as_object().at("revenue").is_null());
  CHECK(doc.at("rollup").as_object().at("usage").as_object().at("events").to_number<double>() == 145);
  CHECK(doc.at("insights").as_array().size() == rep.insights.size());
  const auto summary = render_summary(rep);
  CHECK_THAT(summary, Contains("*Weekly report 2026-W48*"));
  CHECK_THAT(summary, Contains("Events: 145 ("));
}

TEST_CASE("an empty period renders without invented numbers") {
  storage::MemoryStore store;
  testing::ManualClock clock;
  MetricsAggregator agg{store, clock};
  auto rep = agg.report(month_of(year{2026} / February / 1)).value();
  CHECK(rep.days.size() == 28);
  for (auto format : {ReportFormat::json, ReportFormat::markdown, ReportFormat::html}) {
    const auto text = render(rep, format);
    INFO(to_string(format));
    CHECK_FALSE(invented_numbers(text));
  }
  REQUIRE_NOTHROW(test::parse_xml(render(rep, ReportFormat::html)));
  CHECK_THAT(render(rep, ReportFormat::html), Contains("No insights for this period."));
}

TEST_CASE("report formats parse by name") {
  CHECK(parse_report_format("md").value() == ReportFormat::markdown);
  CHECK(parse_report_format("markdown").value() == ReportFormat::markdown);
  CHECK(parse_report_format("html").value() == ReportFormat::html);
  CHECK(parse_report_format("json").value() == ReportFormat::json);
  auto bad = parse_report_format("pdf");
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message, Contains("\"pdf\""));
  CHECK(file_extension(ReportFormat::markdown) == "md");
  CHECK(media_type(ReportFormat::html) == "text/html; charset=utf-8");
}

TEST_CASE("names with control characters and invalid UTF-8 still give a well-formed page and a safe summary") {
  storage::MemoryStore store;
  testing::ManualClock clock;
  MetricsAggregator agg{store, clock};
  std::vector<UsageEvent> events;
  add(events, "2026-11-24", std::string("bad\x01\x7f\xff\xc0\x80\xed\xa0\x80\xc2\x85\xef\xbf\xbename"), 20);
  add(events, "2026-11-24", "<!channel> <http://evil|click>", 30);
  REQUIRE(agg.ingest(events));
  auto rep = agg.report(week_of(year{2026} / November / 24)).value();
  const auto html = render(rep, ReportFormat::html);
  REQUIRE_NOTHROW(test::parse_xml(html));
  CHECK_THAT(html, Contains("bad\xEF\xBF\xBD\xEF\xBF\xBD"));
  const auto summary = render_summary(rep);
  CHECK(summary.find("<!channel>") == std::string::npos);
  CHECK_THAT(summary, Contains("&lt;!channel&gt;"));
}

TEST_CASE("the XML checker refuses malformed documents") {
  CHECK_THROWS(test::parse_xml("<a><b></a></b>"));
  CHECK_THROWS(test::parse_xml("<a x=1></a>"));
  CHECK_THROWS(test::parse_xml("<a>x & y</a>"));
  CHECK_THROWS(test::parse_xml("<a>x < y</a>"));
  CHECK_THROWS(test::parse_xml("<a></a><b></b>"));
  CHECK_THROWS(test::parse_xml("<a>\x01</a>"));
  CHECK_THROWS(test::parse_xml("<a>\xff</a>"));
  CHECK_THROWS(test::parse_xml("<a>&#0;</a>"));
  CHECK_THROWS(test::parse_xml("<a>\xed\xa0\x80</a>"));  // a surrogate
  CHECK_THROWS(test::parse_xml("<a>\xc2\x85</a>"));      // a C1 control
  CHECK_THROWS(test::parse_xml("<a>\xef\xbf\xbe</a>"));  // U+FFFE
  CHECK_THROWS(test::parse_xml("<a>\xc0\x80</a>"));      // an overlong form
  CHECK_NOTHROW(test::parse_xml("<a>\xc3\xa9 \xf0\x9f\x98\x80</a>"));
  CHECK_NOTHROW(test::parse_xml("<!DOCTYPE html>\n<a x=\"1\"><b/>t &amp; u</a>\n"));
}
