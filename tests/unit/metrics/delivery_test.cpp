// Report delivery: files, a webhook on a real local HTTP server (retried with backoff on the manual
// clock, behind a circuit breaker), email through a real local SMTP server; stored before the first
// attempt so nothing is lost.
#include <automation/core/json.hpp>
#include <automation/metrics/aggregator.hpp>
#include <automation/metrics/delivery.hpp>
#include <automation/storage/memory_store.hpp>
#include <automation/testing/fault_injecting_store.hpp>
#include <automation/testing/manual_clock.hpp>

#include "support/http_server.hpp"
#include "support/smtp_server.hpp"
#include "support/temp_dir.hpp"
#include "support/xml.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>

using namespace automation;
using namespace automation::metrics;
using namespace std::chrono;
using automation::test::HttpReply;
using automation::test::HttpServer;
using Catch::Matchers::Contains;

namespace {

struct Fixture {
  storage::MemoryStore store;
  testing::ManualClock clock{parse_timestamp("2026-11-30T06:00:00Z").value()};
  MetricsAggregator agg{store, clock};
  Report report;

  Fixture() {
    std::vector<UsageEvent> events;
    for (int i = 0; i < 40; ++i)
      events.push_back({parse_timestamp(fmt::format("2026-11-2{}T10:00:{:02}Z", 3 + i % 5, i)).value(), fmt::format("u{}", i % 4),
                        i % 3 ? "vocal-coach" : "lyrics", "start", std::nullopt, i % 10 ? "" : "E1"});
    REQUIRE(agg.ingest(events));
    report = agg.report(week_of(year{2026} / November / 23)).value();
  }

  DeliveryOptions options(std::vector<std::string> targets) {
    DeliveryOptions o;
    for (const auto& t : targets) o.targets.push_back(parse_target(t).value());
    o.timeout = milliseconds(5000);
    return o;
  }
};

std::string base64_decode(std::string_view in) {
  std::string out;
  int val = 0, bits = -8;
  for (char c : in) {
    int d;
    if (c >= 'A' && c <= 'Z') {
      d = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      d = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      d = c - '0' + 52;
    } else if (c == '+') {
      d = 62;
    } else if (c == '/') {
      d = 63;
    } else {
      continue;
    }
    val = (val << 6) + d;
    bits += 6;
    if (bits >= 0) {
      out += static_cast<char>((val >> bits) & 0xFF);
      bits -= 8;
    }
  }
  return out;
}

// The base64 body of the MIME part with this content type.
std::string mime_part(const std::string& mail, std::string_view content_type) {
  const auto at = mail.find(fmt::format("Content-Type: {}", content_type));
  REQUIRE(at != std::string::npos);
  const auto body = mail.find("\r\n\r\n", at) + 4;
  const auto end = mail.find("\r\n--", body);
  return base64_decode(mail.substr(body, end - body));
}

}  // namespace

TEST_CASE("delivery targets parse from their text form") {
  auto f = parse_target("file:/srv/reports/").value();
  CHECK(f.kind == TargetKind::file);
  CHECK(f.destination == "/srv/reports/");
  CHECK(parse_target("https://hooks.example/T1").value().kind == TargetKind::webhook);
  CHECK(parse_target("webhook:http://127.0.0.1:9/x").value().destination == "http://127.0.0.1:9/x");
  CHECK(parse_target("email:a@example.com, b@example.com").value().kind == TargetKind::email);
  for (auto bad : {"ftp://x", "webhook:ftp://x", "email:", "email:nobody", "email:a@b.c,<x>@y", "file:", "slack"}) {
    INFO(bad);
    auto r = parse_target(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == errc::invalid_argument);
    CHECK_THAT(r.error().message, Contains(bad));
  }
}

TEST_CASE("a report delivered to a directory is written there once, and recorded") {
  Fixture fx;
  automation::test::TempDir dir;
  auto o = fx.options({"file:" + dir.path().string(), "file:" + dir.file("sub/latest.md")});
  o.targets[1].format = ReportFormat::markdown;
  ReportDeliverer d(fx.store, fx.clock, o);
  auto out = d.deliver(fx.report, "test run").value();
  REQUIRE(out.size() == 2);
  const auto html_path = (dir.path() / "weekly-2026-W48.html").string();
  CHECK(out[0].state == "delivered");
  CHECK(out[0].created);
  CHECK(out[0].target == "file:" + html_path);
  CHECK_THAT(out[0].detail, Contains("wrote " + html_path));
  CHECK(automation::test::read_file(html_path) == render(fx.report, ReportFormat::html));
  CHECK(automation::test::read_file(dir.file("sub/latest.md")) == render(fx.report, ReportFormat::markdown));
  // The same report again is the same message: stored once, not sent again.
  std::filesystem::remove(html_path);
  fx.clock.advance(hours(1));  // generated later, from the stored rollups: the same data
  auto regenerated = fx.agg.report(week_of(year{2026} / November / 23)).value();
  REQUIRE(regenerated.generated != fx.report.generated);
  auto again = d.deliver(regenerated, "test run").value();
  CHECK_FALSE(again[0].created);
  CHECK_FALSE(again[0].attempted);
  CHECK_THAT(again[0].detail, Contains("already delivered"));
  CHECK_FALSE(std::filesystem::exists(html_path));
  // Each attempt is in the task history with its reason.
  auto tasks = fx.store.query_tasks({.domain = std::string("reports")}).value();
  REQUIRE(tasks.size() == 2);
  CHECK(tasks[0].action == "deliver.file");
  CHECK_THAT(tasks[0].params, Contains("\"reason\":\"test run\""));
  auto stored = fx.store.list_deliveries({.with_body = true}).value();
  REQUIRE(stored.size() == 2);
  CHECK(stored[1].subject == "report:weekly-2026-W48");
  CHECK(stored[1].reason == "test run");
}

TEST_CASE("a failing webhook is retried with backoff until it takes the report") {
  Fixture fx;
  std::atomic<int> calls{0};
  HttpServer server([&](const std::string&) { return ++calls <= 2 ? HttpReply{500, "down"} : HttpReply{200, "ok"}; });
  ReportDeliverer d(fx.store, fx.clock, fx.options({"webhook:" + server.url() + "/hook"}));
  auto out = d.deliver(fx.report, "weekly schedule").value();
  REQUIRE(out.size() == 1);
  CHECK(out[0].state == "pending");
  CHECK(out[0].attempts == 1);
  CHECK(out[0].next_attempt == fx.clock.now() + minutes(1));
  CHECK_THAT(out[0].detail, Contains("HTTP 500"));
  CHECK(out[0].target == "webhook:" + server.url() + "/...");  // the path (a webhook's secret) is not shown
  CHECK(out[0].detail.find("/hook") == std::string::npos);
  CHECK(d.deliver(fx.report, "weekly schedule").value()[0].attempted == false);  // stored, not due yet
  CHECK(d.retry_due().value().empty());                                          // not due yet
  fx.clock.advance(minutes(1));
  auto second = d.retry_due().value();
  REQUIRE(second.size() == 1);
  CHECK(second[0].state == "pending");
  CHECK(second[0].next_attempt == fx.clock.now() + minutes(2));  // doubled
  fx.clock.advance(minutes(2));
  auto third = d.retry_due().value();
  REQUIRE(third.size() == 1);
  CHECK(third[0].state == "delivered");
  CHECK(third[0].attempts == 3);
  CHECK(third[0].detail == "HTTP 200");
  // Slack's payload: {"text": the summary}, the same body on every attempt.
  auto bodies = server.bodies();
  REQUIRE(bodies.size() == 3);
  CHECK(bodies[0] == bodies[2]);
  auto payload = json::parse(bodies[0]).value().as_object();
  CHECK_THAT(std::string(payload.at("text").as_string()), Contains("*Weekly report 2026-W48*"));
  CHECK_THAT(server.requests()[0], Contains("Content-Type: application/json"));
  CHECK(d.webhook_breaker().state() == resilience::BreakerState::closed);
  auto rec = fx.store.get_delivery(out[0].id).value().value();
  CHECK(rec.last_error.empty());
  CHECK(rec.state == "delivered");
}

TEST_CASE("the webhook breaker stops calling a dead endpoint and the report waits, stored") {
  Fixture fx;
  HttpServer server(503, "unavailable");
  auto o = fx.options({"webhook:" + server.url() + "/a"});
  o.retry.max_attempts = 20;
  o.webhook_breaker.open_duration.base = minutes(30);
  o.targets.front().style = WebhookStyle::json;
  ReportDeliverer d(fx.store, fx.clock, o);
  auto out = d.deliver(fx.report, "test").value();
  for (int i = 0; i < 2; ++i) {
    fx.clock.set(out[0].next_attempt);
    out = d.retry_due().value();
    REQUIRE(out.size() == 1);
  }
  CHECK(server.requests().size() == 3);
  CHECK(d.webhook_breaker().state() == resilience::BreakerState::open);
  // The fourth attempt is not made: the breaker refuses, and the next one waits for it to half-open.
  fx.clock.set(out[0].next_attempt);
  const auto refused_at = fx.clock.now();
  out = d.retry_due().value();
  REQUIRE(out.size() == 1);
  CHECK(server.requests().size() == 3);
  CHECK_THAT(out[0].detail, Contains("circuit breaker reports-webhook is open"));
  CHECK(out[0].state == "pending");
  CHECK(out[0].next_attempt >= refused_at + minutes(30) - minutes(4));  // after the open period that remains
  // The whole report is in the store all along (the JSON style sends the report itself).
  auto rec = fx.store.get_delivery(out[0].id).value().value();
  CHECK(json::parse(rec.body).value().as_object().at("report").as_string() == "weekly-2026-W48");
  CHECK_THAT(rec.last_error, Contains("circuit breaker"));
}

TEST_CASE("a refused or exhausted delivery is given up and can be retried by hand") {
  Fixture fx;
  std::atomic<int> status{404};
  HttpServer server([&](const std::string&) { return HttpReply{status.load(), "no such hook"}; });
  auto o = fx.options({"webhook:" + server.url() + "/gone"});
  o.retry.max_attempts = 2;
  ReportDeliverer d(fx.store, fx.clock, o);
  auto out = d.deliver(fx.report, "test").value();
  CHECK(out[0].state == "failed");  // a 404 will not get better by retrying
  CHECK_THAT(out[0].detail, Contains("gave up after 1 attempt"));
  CHECK_THAT(out[0].detail, Contains("HTTP 404"));
  fx.clock.advance(hours(1));
  CHECK(d.retry_due().value().empty());  // failed ones are not retried automatically
  status = 500;
  auto manual = d.retry(out[0].id).value();
  CHECK(manual.attempted);
  CHECK(manual.state == "failed");  // one more attempt only
  CHECK(manual.attempts == 2);
  status = 200;
  CHECK(d.retry(out[0].id).value().state == "delivered");
  CHECK(d.retry(out[0].id).value().attempted == false);  // delivered: left alone
  CHECK(d.retry(4242).error().code == errc::not_found);
  // Exhausting the policy: two 500s.
  status = 500;
  Fixture other;
  ReportDeliverer d2(other.store, other.clock, o);
  auto first = d2.deliver(other.report, "test").value();
  CHECK(first[0].state == "pending");
  other.clock.set(first[0].next_attempt);
  auto last = d2.retry_due().value();
  REQUIRE(last.size() == 1);
  CHECK(last[0].state == "failed");
  CHECK_THAT(last[0].detail, Contains("gave up after 2 attempts"));
}

TEST_CASE("a delivery claimed by another sender is not attempted twice") {
  Fixture fx;
  HttpServer server(500, "down");
  ReportDeliverer d(fx.store, fx.clock, fx.options({"webhook:" + server.url()}));
  auto out = d.deliver(fx.report, "test").value();
  fx.clock.set(out[0].next_attempt);
  // Another process claims it first (as attempt() does).
  auto rec = fx.store.get_delivery(out[0].id).value().value();
  rec.claimed_until = fx.clock.now() + minutes(2);
  rec.updated = fx.clock.now();
  REQUIRE(fx.store.update_delivery(rec));
  CHECK(d.retry_due().value().empty());  // not listed as due while claimed
  auto manual = d.retry(out[0].id).value();
  CHECK_FALSE(manual.attempted);  // nor attempted by hand
  CHECK_THAT(manual.detail, Contains("claimed by another sender until"));
  CHECK(server.requests().size() == 1);
  fx.clock.advance(minutes(2));  // its claim expired without a result: due again
  CHECK(d.retry_due().value().size() == 1);
  CHECK(server.requests().size() == 2);
}

TEST_CASE("a sender that loses the compare-and-set race leaves the delivery to the winner") {
  Fixture fx;
  HttpServer server(500, "down");
  testing::FaultInjectingStore store(fx.store);
  ReportDeliverer d(store, fx.clock, fx.options({"webhook:" + server.url()}));
  auto out = d.deliver(fx.report, "test").value();
  fx.clock.set(out[0].next_attempt);
  // Between this sender's read and its claim, another one changes the record.
  bool raced = false;
  store.before_each_write([&](std::string_view op) {
    if (op != "update_delivery" || raced) return;
    raced = true;
    auto rec = fx.store.get_delivery(out[0].id).value().value();
    rec.updated = fx.clock.now();
    REQUIRE(fx.store.update_delivery(rec));
  });
  auto lost = d.retry_due().value();
  REQUIRE(lost.size() == 1);
  CHECK_FALSE(lost[0].attempted);
  CHECK(lost[0].detail == "claimed by another sender");
  CHECK(server.requests().size() == 1);
}

TEST_CASE("a delivery retried by hand while it waits for its next attempt is attempted") {
  // The default policy waits 2 minutes after the second failure, as long as a claim lasts: a
  // waiting delivery must not look claimed.
  Fixture fx;
  HttpServer server(500, "down");
  ReportDeliverer d(fx.store, fx.clock, fx.options({"webhook:" + server.url()}));
  auto out = d.deliver(fx.report, "test").value();
  fx.clock.set(out[0].next_attempt);
  auto second = d.retry_due().value();
  REQUIRE(second.size() == 1);
  CHECK(second[0].next_attempt == fx.clock.now() + d.options().claim);
  auto manual = d.retry(out[0].id).value();
  CHECK(manual.attempted);
  CHECK(manual.attempts == 3);
  CHECK(server.requests().size() == 3);
}

TEST_CASE("a report is mailed over SMTP with text and HTML parts, and retried after a temporary refusal") {
  Fixture fx;
  automation::test::SmtpServer smtp;
  smtp.refuse_next(1, 451);
  auto o = fx.options({"email:ops@example.com, cfo@example.com"});
  o.smtp.host = "127.0.0.1";
  o.smtp.port = smtp.port();
  o.smtp.from = "reports@example.com";
  ReportDeliverer d(fx.store, fx.clock, o);
  auto out = d.deliver(fx.report, "test").value();
  REQUIRE(out.size() == 1);
  CHECK(out[0].state == "pending");
  CHECK_THAT(out[0].detail, Contains("451"));
  CHECK(out[0].target == "email:ops@example.com,cfo@example.com");
  fx.clock.set(out[0].next_attempt);
  auto again = d.retry_due().value();
  REQUIRE(again.size() == 1);
  CHECK(again[0].state == "delivered");
  CHECK_THAT(again[0].detail, Contains("SMTP 250"));
  auto mails = smtp.mails();
  REQUIRE(mails.size() == 1);
  const auto& m = mails[0];
  CHECK(m.from == "reports@example.com");
  CHECK(m.to == std::vector<std::string>{"ops@example.com", "cfo@example.com"});
  CHECK_THAT(m.data, Contains("Subject: Weekly report 2026-W48\r\n"));
  CHECK_THAT(m.data, Contains("Date: Mon, 30 Nov 2026 06:00:00 +0000\r\n"));
  CHECK_THAT(m.data, Contains("Content-Type: multipart/alternative"));
  for (std::size_t p = 0, e; (e = m.data.find("\r\n", p)) != std::string::npos; p = e + 2) CHECK(e - p <= 998);  // RFC 5321 line limit
  CHECK(mime_part(m.data, "text/plain") == render(fx.report, ReportFormat::markdown));
  const auto html = mime_part(m.data, "text/html");
  CHECK(html == render(fx.report, ReportFormat::html));
  CHECK_NOTHROW(automation::test::parse_xml(html));
  // A permanent refusal (5xx) is given up at once.
  Fixture other;
  smtp.refuse_next(1, 554);
  ReportDeliverer d2(other.store, other.clock, o);
  auto refused = d2.deliver(other.report, "test").value();
  CHECK(refused[0].state == "failed");
  CHECK_THAT(refused[0].detail, Contains("554"));
}

TEST_CASE("delivery refuses what it cannot do before storing anything") {
  Fixture fx;
  ReportDeliverer none(fx.store, fx.clock, {});
  CHECK(none.deliver(fx.report, "x").error().code == errc::invalid_argument);
  ReportDeliverer no_smtp(fx.store, fx.clock, fx.options({"file:/tmp/never-written/", "email:ops@example.com"}));
  auto r = no_smtp.deliver(fx.report, "x");
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Contains("no SMTP server"));
  CHECK(fx.store.list_deliveries({}).value().empty());
  // An unreachable SMTP server leaves the message pending.
  auto o = fx.options({"email:ops@example.com"});
  o.smtp.host = "127.0.0.1";
  o.smtp.port = 1;  // nothing listens on port 1
  ReportDeliverer dead(fx.store, fx.clock, o);
  auto out = dead.deliver(fx.report, "x").value();
  CHECK(out[0].state == "pending");
  CHECK_THAT(out[0].detail, Contains("cannot connect"));
  DeliveryOptions bad = o;
  bad.retry.max_attempts = 0;
  CHECK_THROWS_AS(ReportDeliverer(fx.store, fx.clock, bad), Exception);
}

TEST_CASE("an email's Subject is folded into encoded words under 76 characters, whatever the title's bytes") {
  auto header_lines = [](const std::string& mail) {
    std::vector<std::string> lines;
    for (std::size_t start = 0; start < mail.size();) {
      const auto end = mail.find("\r\n", start);
      if (end == std::string::npos || end == start) break;  // the blank line ends the header
      lines.push_back(mail.substr(start, end - start));
      start = end + 2;
    }
    return lines;
  };
  std::string accented;
  for (int i = 0; i < 30; ++i) accented += "Ünïcödé ";
  std::string broken = "disk \xC3";
  broken += std::string(100, '\xA9');  // a lead byte and a hundred stray continuation bytes
  const std::string long_ascii(1000, 'x');
  for (const auto& title : {accented, broken, long_ascii}) {
    Notice n;
    n.subject = "alert:1:firing";
    n.title = title;
    n.markdown = "body";
    const auto mail = compose_email(n, "a@example.com", {"b@example.com"}, TimePoint{});
    bool in_subject = false;
    std::size_t words = 0;
    for (const auto& line : header_lines(mail)) {
      if (line.rfind("Subject: ", 0) == 0)
        in_subject = true;
      else if (line[0] != ' ')
        in_subject = false;
      if (!in_subject) continue;
      CHECK(line.size() <= (title == long_ascii ? 998u : 76u));  // ASCII is cut to 200, within RFC 5322's 998
      if (line.find("=?utf-8?B?") != std::string::npos) ++words;
    }
    if (title == long_ascii) {
      CHECK_THAT(mail, Contains("Subject: " + std::string(197, 'x') + "...\r\n"));
    } else {
      CHECK(words >= 2);
    }
  }
  // Plain text only: no multipart without HTML.
  Notice text;
  text.title = "plain";
  text.markdown = "hello";
  CHECK_FALSE(compose_email(text, "a@example.com", {"b@example.com"}, TimePoint{}).find("multipart") != std::string::npos);
}

TEST_CASE("a bad target's error never shows a URL's secret") {
  auto typo = parse_target("webhook:htps://hooks.example.com/services/T/B/SECRET");
  REQUIRE_FALSE(typo);
  CHECK(typo.error().message.find("SECRET") == std::string::npos);
  CHECK_THAT(typo.error().message, Contains("htps://hooks.example.com/..."));
  CHECK(shown_target("webhook:https://user:token@hooks.example.com/T/SECRET") == "webhook:https://***@hooks.example.com/...");
  CHECK(shown_target("webhook:https://hooks.example.com") == "webhook:https://hooks.example.com");
}
