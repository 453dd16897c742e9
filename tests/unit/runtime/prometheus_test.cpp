// The Prometheus exposition: exact text for counters, gauges and histograms with escaped labels,
// accepted by the real promtool; misuse refused; updates from several threads.
#include <automation/runtime/prometheus.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <thread>

#include "support/process.hpp"

using namespace automation;
using namespace automation::runtime;

TEST_CASE("prometheus: families with escaped labels and histograms, exactly, and promtool accepts them", "[runtime][prometheus]") {
  MetricsRegistry r;
  r.counter("automation_http_requests_total", "HTTP requests by route and status.", {{"route", "GET /healthz"}, {"status", "200"}}).inc(3);
  r.counter("automation_http_requests_total", "", {{"route", "GET /a\"b\\c\nd"}, {"status", "500"}}).inc();
  r.gauge("automation_scaler_desired_members", "Desired size of each resource.", {{"resource", "workers"}}).set(4);
  auto& h =
      r.histogram("automation_http_request_duration_seconds", "Time to answer a request.", {0.01, 0.1, 1}, {{"route", "GET /healthz"}});
  for (double v : {0.005, 0.01, 0.05, 2.0}) h.observe(v);
  r.collector([](PrometheusWriter& w) {
    w.family("automation_build_info", "gauge", "Build information; the value is 1.");
    w.sample("automation_build_info", {{"version", "0.1.0"}}, 1);
  });
  const auto text = r.text();
  CHECK(text ==
        "# HELP automation_http_requests_total HTTP requests by route and status.\n"
        "# TYPE automation_http_requests_total counter\n"
        "automation_http_requests_total{route=\"GET /healthz\",status=\"200\"} 3\n"
        "automation_http_requests_total{route=\"GET /a\\\"b\\\\c\\nd\",status=\"500\"} 1\n"
        "# HELP automation_scaler_desired_members Desired size of each resource.\n"
        "# TYPE automation_scaler_desired_members gauge\n"
        "automation_scaler_desired_members{resource=\"workers\"} 4\n"
        "# HELP automation_http_request_duration_seconds Time to answer a request.\n"
        "# TYPE automation_http_request_duration_seconds histogram\n"
        "automation_http_request_duration_seconds_bucket{route=\"GET /healthz\",le=\"0.01\"} 2\n"
        "automation_http_request_duration_seconds_bucket{route=\"GET /healthz\",le=\"0.1\"} 3\n"
        "automation_http_request_duration_seconds_bucket{route=\"GET /healthz\",le=\"1\"} 3\n"
        "automation_http_request_duration_seconds_bucket{route=\"GET /healthz\",le=\"+Inf\"} 4\n"
        "automation_http_request_duration_seconds_sum{route=\"GET /healthz\"} 2.065\n"
        "automation_http_request_duration_seconds_count{route=\"GET /healthz\"} 4\n"
        "# HELP automation_build_info Build information; the value is 1.\n"
        "# TYPE automation_build_info gauge\n"
        "automation_build_info{version=\"0.1.0\"} 1\n");
  auto check = test::run_process({PROMTOOL_PATH, "check", "metrics"}, {}, {}, text);
  INFO(check.out << check.err);
  CHECK(check.exit_code == 0);
}

TEST_CASE("prometheus: misuse is refused, and updates from several threads all count", "[runtime][prometheus]") {
  MetricsRegistry r;
  CHECK_THROWS_WITH(r.counter("automation_requests", "no suffix"), Catch::Contains("must end in _total"));
  CHECK_THROWS_WITH(r.gauge("bad name", "x"), Catch::Contains("invalid metric name"));
  r.gauge("automation_x", "x", {{"a", "1"}});
  CHECK_THROWS_WITH(r.gauge("automation_x", "x", {{"b", "1"}}), Catch::Contains("labels must be exactly those of its first use"));
  CHECK_THROWS_WITH(r.counter("automation_x_total", "x").inc(-1), Catch::Contains("only goes up"));
  CHECK_THROWS_WITH(r.gauge("automation_y", "x", {{"__reserved", "1"}}), Catch::Contains("invalid label name"));
  PrometheusWriter w;
  w.family("automation_z", "gauge", "z");
  CHECK_THROWS_WITH(w.family("automation_z", "gauge", "z"), Catch::Contains("written twice"));
  CHECK_THROWS_WITH(w.sample("automation_other", {}, 1), Catch::Contains("outside its family"));
  CHECK_THROWS_WITH(w.sample("automation_zz", {}, 1), Catch::Contains("outside its family"));
  CHECK_THROWS_WITH(w.sample("automation_z", {{"a", "1"}, {"a", "2"}}, 1), Catch::Contains("label a given twice"));
  // A label value that is not valid UTF-8 is repaired rather than spoiling the scrape.
  w.sample("automation_z", {{"path", "/w\xff"}}, 1);
  CHECK_THAT(w.str(), Catch::Contains("automation_z{path=\"/w\xEF\xBF\xBD\"} 1"));
  CHECK_THROWS_WITH(r.histogram("automation_h_seconds", "h", {1}).observe(std::nan("")), Catch::Contains("NaN"));

  auto& c = r.counter("automation_events_total", "Events.");
  auto& h = r.histogram("automation_latency_seconds", "Latency.", latency_buckets());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.inc();
        h.observe(0.003);
      }
    });
  for (auto& t : threads) t.join();
  CHECK(c.value() == 40000);
  CHECK(h.snapshot().count == 40000);
  CHECK(h.snapshot().cumulative.back() == 40000);
}
