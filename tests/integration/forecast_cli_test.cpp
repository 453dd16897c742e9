// autoctl forecast on real CSV files.
#include <automation/core/json.hpp>
#include <automation/storage/store.hpp>

#include "support/autoctl.hpp"
#include "support/http_server.hpp"
#include "support/json_out.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>

using namespace automation;
using automation::test::autoctl;
using automation::test::json_out;
using Catch::Matchers::Contains;

namespace {

std::string monthly_csv(int months) {
  std::string csv = "month,revenue\n";
  for (int i = 0; i < months; ++i) {
    const int year = 2020 + i / 12, month = 1 + i % 12;
    const double value = (1000 + 10 * i) * (1 + 0.2 * std::sin(2 * M_PI * i / 12.0));
    char row[64];
    std::snprintf(row, sizeof row, "%d-%02d-01,%.2f\n", year, month, value);
    csv += row;
  }
  return csv;
}

}  // namespace

TEST_CASE("autoctl forecast: a dated monthly CSV gives dated predictions with intervals") {
  test::TempDir dir;
  const auto file = test::write_file(dir.file("revenue.csv"), monthly_csv(60));
  auto r = autoctl({"forecast", "--input", file, "--horizon", "14", "--json"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto doc = json_out(r);
  CHECK(doc.at("method").as_string() == "auto");
  CHECK(doc.at("step").as_string() == "monthly");
  CHECK(doc.at("seasonality").at("period").as_int64() == 12);
  CHECK(doc.at("seasonality").at("seasonal").as_bool());
  const auto& p = doc.at("predictions").as_array();
  REQUIRE(p.size() == 14);
  CHECK(p[0].at("date").as_string() == "2025-01-01");
  CHECK(p[13].at("date").as_string() == "2026-02-01");
  CHECK(p[0].at("confidence").to_number<double>() == 95);
  CHECK(p[0].at("lower").to_number<double>() < p[0].at("value").to_number<double>());
  CHECK(p[0].at("intervals").as_array().size() == 2);
  CHECK(doc.at("insights").as_array().size() == 3);

  auto plain = autoctl({"forecast", "--input", file, "--horizon", "3", "--method", "theta", "--levels", "90"});
  REQUIRE(plain.exit_code == 0);
  CHECK_THAT(plain.out, Contains("lo90"));
  CHECK_THAT(plain.out, Contains("2025-03-01"));
  CHECK_THAT(plain.out, Contains("method: theta"));
  CHECK_THAT(plain.out, Contains("insight: the series is trending"));
}

TEST_CASE("autoctl forecast: a value-only CSV, a chosen column and a chosen frequency") {
  test::TempDir dir;
  std::string csv = "a,b\n";
  for (int i = 0; i < 30; ++i) csv += std::to_string(i) + "," + std::to_string(50 + (i % 7 == 6 ? 20 : 0)) + "\n";
  const auto file = test::write_file(dir.file("two.csv"), csv);
  auto ambiguous = autoctl({"forecast", "--input", file});
  CHECK(ambiguous.exit_code == 65);
  CHECK_THAT(ambiguous.err, Contains("name it with --column (columns: a, b)"));
  auto r = autoctl({"forecast", "--input", file, "--column", "b", "--frequency", "7", "--horizon", "7", "--method", "snaive", "--json"});
  REQUIRE(r.exit_code == 0);
  auto doc = json_out(r);
  const auto& p = doc.at("predictions").as_array();
  CHECK(p[4].at("value").to_number<double>() == 70);  // the spike at 27 comes back at 34 (step 5)
  CHECK(p[3].at("value").to_number<double>() == 50);
  CHECK(p[0].as_object().count("date") == 0);
}

TEST_CASE("autoctl forecast: bad input names the file, the line and the reason") {
  test::TempDir dir;
  auto bad_number = autoctl({"forecast", "--input", test::write_file(dir.file("bad.csv"), "date,value\n2026-01-01,3\n2026-01-02,x7\n")});
  CHECK(bad_number.exit_code == 65);
  CHECK_THAT(bad_number.err, Contains("bad.csv:3: 'x7' in column 'value' is not a number"));

  auto gap = test::write_file(dir.file("gap.csv"), "value\n1\n2\n\n4\nNA\n6\n7\n");
  auto refused = autoctl({"forecast", "--input", gap});
  CHECK(refused.exit_code == 65);
  CHECK_THAT(refused.err, Contains("gap.csv:6: the value is missing; pass --fill-gaps"));
  auto filled = autoctl({"forecast", "--input", gap, "--fill-gaps", "--horizon", "2", "--json"});
  REQUIRE(filled.exit_code == 0);
  CHECK_THAT(json::dump(json_out(filled).at("notes")), Contains("1 missing value(s) filled"));

  auto unsorted = autoctl({"forecast", "--input", test::write_file(dir.file("u.csv"), "date,value\n2026-01-02,1\n2026-01-01,2\n")});
  CHECK(unsorted.exit_code == 65);
  CHECK_THAT(unsorted.err, Contains("u.csv:3: 2026-01-01 is not after the previous row's date"));

  CHECK(autoctl({"forecast", "--input", (dir.path() / "missing.csv").string()}).exit_code == 66);
  auto method = autoctl({"forecast", "--input", gap, "--fill-gaps", "--method", "arima"});
  CHECK(method.exit_code == 65);
  CHECK_THAT(method.err, Contains("--method: unknown method \"arima\""));
  auto levels = autoctl({"forecast", "--input", gap, "--fill-gaps", "--levels", "80,101"});
  CHECK(levels.exit_code == 65);
  CHECK_THAT(levels.err, Contains("--levels: '101' is not a percentage"));
}

TEST_CASE("autoctl forecast: an LLM backend from the environment, and its fallback") {
  test::TempDir dir;
  const auto file = test::write_file(dir.file("revenue.csv"), monthly_csv(36));
  std::string answer = R"({"forecast":[)";
  for (int k = 0; k < 2; ++k) answer += std::string(k ? "," : "") + R"({"value":5,"lower_80":4,"upper_80":6,"lower_95":3,"upper_95":7})";
  answer += "]}";
  test::HttpServer llm(200, test::chat_completion(answer));
  const std::map<std::string, std::string> env{{"AUTOMATION_LLM_BASE_URL", llm.url() + "/v1"}, {"AUTOMATION_LLM_MODEL", "m1"}};
  auto r = autoctl({"forecast", "--input", file, "--horizon", "2", "--json"}, env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto doc = json_out(r);
  CHECK(doc.at("backend").as_string() == "llm");
  CHECK(doc.at("predictions").as_array()[1].at("value").to_number<double>() == 5);
  CHECK(llm.requests().size() == 1);

  auto skipped = autoctl({"forecast", "--input", file, "--horizon", "2", "--json", "--statistical"}, env);
  REQUIRE(skipped.exit_code == 0);
  CHECK(json_out(skipped).at("backend").as_string() == "statistical");
  CHECK(llm.requests().size() == 1);

  test::HttpServer broken(200, test::chat_completion("no idea"));
  auto fell_back =
      autoctl({"forecast", "--input", file, "--horizon", "2"}, {{"AUTOMATION_LLM_BASE_URL", broken.url()}, {"AUTOMATION_LLM_MODEL", "m1"}});
  REQUIRE(fell_back.exit_code == 0);
  CHECK_THAT(fell_back.out, Contains("backend: statistical: the LLM backend failed (corrupt"));

  auto bad_env = autoctl({"forecast", "--input", file}, {{"AUTOMATION_LLM_BASE_URL", "ftp://x"}, {"AUTOMATION_LLM_MODEL", "m"}});
  CHECK(bad_env.exit_code == 78);
  CHECK_THAT(bad_env.err, Contains("not an http:// or https:// URL"));
}

TEST_CASE("autoctl forecast: month-end dates stay on month ends, a BOM and a 4-weekly step are read right") {
  test::TempDir dir;
  std::string csv =
      "\xEF\xBB\xBF"
      "date,value\n";
  const char* ends[] = {"2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30", "2024-05-31", "2024-06-30"};
  for (int i = 0; i < 6; ++i) csv += std::string(ends[i]) + "," + std::to_string(10 + i) + "\n";
  auto r = autoctl({"forecast", "--input", test::write_file(dir.file("ends.csv"), csv), "--horizon", "3", "--json"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto doc = json_out(r);
  CHECK(doc.at("step").as_string() == "monthly");
  const auto& p = doc.at("predictions").as_array();
  CHECK(p[0].at("date").as_string() == "2024-07-31");
  CHECK(p[1].at("date").as_string() == "2024-08-31");
  CHECK(p[2].at("date").as_string() == "2024-09-30");

  std::string weeks = "date,value\n";
  const char* fourweekly[] = {"2024-01-01", "2024-01-29", "2024-02-26", "2024-03-25", "2024-04-22"};
  for (int i = 0; i < 5; ++i) weeks += std::string(fourweekly[i]) + "," + std::to_string(5 + i) + "\n";
  auto w = autoctl({"forecast", "--input", test::write_file(dir.file("w.csv"), weeks), "--horizon", "1", "--json"});
  REQUIRE(w.exit_code == 0);
  auto wd = json_out(w);
  CHECK(wd.at("step").as_string() == "every 28d");
  CHECK(wd.at("predictions").as_array()[0].at("date").as_string() == "2024-05-20");

  auto quote = autoctl({"forecast", "--input", test::write_file(dir.file("q.csv"), "value\n1\n\"2\n3\n")});
  CHECK(quote.exit_code == 65);
  CHECK_THAT(quote.err, Contains("q.csv:3: a quote is not closed"));
}

TEST_CASE("autoctl forecast: a filled gap at the end keeps the insights numeric") {
  test::TempDir dir;
  auto r = autoctl({"forecast", "--input", test::write_file(dir.file("g.csv"), "value\n10\n11\n12\n13\n14\n15\nNA\n"), "--fill-gaps",
                    "--horizon", "2", "--json"});
  REQUIRE(r.exit_code == 0);
  const auto insights = json_out(r).at("insights").as_array();
  CHECK_THAT(std::string(insights[0].at("text").as_string()), !Contains("nan"));
  CHECK(std::isfinite(insights[0].at("value").to_number<double>()));
}

TEST_CASE("autoctl forecast --metric: stored revenue forecast, stored, and its accuracy once actuals arrive") {
  using namespace std::chrono;
  test::TempDir dir;
  const auto db = dir.file("m.db");
  const std::map<std::string, std::string> env{{"AUTOMATION_DB", "sqlite:" + db}};
  // Sixty days of revenue up to yesterday (the real date: the CLI runs on the system clock).
  const auto today = floor<days>(system_clock::now());
  std::string csv = "date,plan,totalRevenue,newSubscribers,activeUsers,churnCount\n";
  for (int i = 60; i >= 1; --i) {
    const year_month_day d{today - days{i}};
    char row[96];
    std::snprintf(row, sizeof row, "%04d-%02u-%02u,pro,%.2f,1,%d,0\n", int(d.year()), unsigned(d.month()), unsigned(d.day()),
                  1000 + 3.0 * (60 - i) + 100 * std::sin(2 * M_PI * i / 7.0), 100 + (60 - i));
    csv += row;
  }
  const auto file = test::write_file(dir.file("revenue.csv"), csv);
  REQUIRE(autoctl({"ingest", "revenue", file}, env).exit_code == 0);

  auto none = autoctl({"forecast", "accuracy"}, env);
  REQUIRE(none.exit_code == 0);
  CHECK_THAT(none.out, Contains("no stored forecasts"));

  auto r = autoctl({"forecast", "--metric", "revenue", "--horizon", "14", "--statistical", "--json"}, env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto doc = json_out(r);
  CHECK(doc.at("metric").as_string() == "revenue");
  CHECK(doc.at("history").at("days").to_number<int>() == 60);
  CHECK(doc.at("predictions").as_array().size() == 14);
  const year_month_day first_day{today};
  char first_date[16];
  std::snprintf(first_date, sizeof first_date, "%04d-%02u-%02u", int(first_day.year()), unsigned(first_day.month()),
                unsigned(first_day.day()));
  CHECK(doc.at("predictions").as_array()[0].at("date").as_string() == first_date);  // today: the first day not complete
  CHECK(doc.at("previous").is_null());
  const auto id = doc.at("id").to_number<std::int64_t>();

  auto text = autoctl({"forecast", "--metric", "users", "--horizon", "7", "--statistical"}, env);
  INFO(text.err);
  REQUIRE(text.exit_code == 0);
  CHECK_THAT(text.out, Contains("users: 7 days to"));
  CHECK_THAT(text.out, Contains("stored as forecast"));
  auto again = json_out(autoctl({"forecast", "--metric", "revenue", "--horizon", "14", "--statistical", "--json"}, env));
  CHECK(again.at("previous").to_number<std::int64_t>() == id);

  auto pending = autoctl({"forecast", "accuracy", "--metric", "revenue"}, env);
  REQUIRE(pending.exit_code == 0);
  CHECK_THAT(pending.out, Contains("revenue: 2 stored forecasts, none with a complete predicted day yet"));

  // A forecast made two weeks ago (its days are complete now) is scored against the actuals.
  {
    auto store = storage::open_store("sqlite:" + db).value();
    auto rec = store->get_forecast(id).value().value();
    rec.first_day -= 14;
    rec.created -= days(14);
    rec.reason = "a forecast made two weeks ago";
    REQUIRE(store->append_forecast(rec));
  }
  auto scored = autoctl({"forecast", "accuracy", "--json"}, env);
  INFO(scored.err);
  REQUIRE(scored.exit_code == 0);
  const auto all = json_out(scored).at("accuracy").as_array();
  REQUIRE(all.size() == 2);  // revenue and users
  const auto& rev = all[0].at("metric").as_string() == "revenue" ? all[0] : all[1];
  CHECK(rev.at("forecasts").to_number<int>() == 3);
  CHECK(rev.at("scored").to_number<int>() == 1);
  CHECK(rev.at("points").to_number<int>() == 14);
  CHECK(rev.at("smape").to_number<double>() > 0);
  CHECK(rev.at("coverage").as_array().size() == 2);
  auto shown = autoctl({"forecast", "accuracy", "--metric", "revenue"}, env);
  CHECK_THAT(shown.out, Contains("revenue: 1 forecast scored over 14 days: sMAPE"));

  CHECK(autoctl({"forecast", "--metric", "profit"}, env).exit_code == 65);
  CHECK(autoctl({"forecast", "--metric", "revenue", "--input", file}, env).exit_code == 65);
  CHECK(autoctl({"forecast"}, env).exit_code == 65);
}
