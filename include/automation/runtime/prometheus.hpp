#pragma once
/// Prometheus text exposition format 0.0.4: a writer that gets names, label escaping, HELP and TYPE
/// lines and number formats right, and a registry of live counters, gauges and histograms with
/// fixed label names (no unbounded labels) that a host updates and a /metrics handler writes out.
///
/// Thread-safety: Counter, Gauge and Histogram updates are lock-free or take a per-metric mutex and
/// may come from any thread; registering and writing take the registry's mutex.
#include <automation/core/error.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace automation::runtime {

/// `Content-Type` of the exposition.
inline constexpr std::string_view kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

using Labels = std::vector<std::pair<std::string, std::string>>;

/// Builds one exposition. A family is written as "# HELP" and "# TYPE" followed by its samples;
/// every family name once. Names are checked ([a-zA-Z_:][a-zA-Z0-9_:]*; label names
/// [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__"): a bad one is a programming error and throws
/// automation::Exception (errc::invalid_argument).
class PrometheusWriter {
 public:
  /// type: "counter", "gauge", "histogram", "summary" or "untyped".
  void family(std::string_view name, std::string_view type, std::string_view help);
  /// A sample of the current family: its name may add the family's suffix (_bucket, _sum, _count).
  void sample(std::string_view name, const Labels& labels, double value);
  std::string str() const { return out_; }

 private:
  std::string out_;
  std::string family_;
  std::vector<std::string> seen_;
};

/// A counter of one label set.
class Counter {
 public:
  void inc(double by = 1);
  double value() const noexcept { return value_.load(); }

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  void set(double v) noexcept { value_.store(v); }
  void add(double by);
  double value() const noexcept { return value_.load(); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  struct Snapshot {
    std::vector<double> bounds;
    std::vector<std::uint64_t> cumulative;  ///< per bound, then +Inf
    double sum = 0;
    std::uint64_t count = 0;
  };
  Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::vector<std::uint64_t> counts_;  // per bound, then +Inf (not cumulative)
  double sum_ = 0;
  std::uint64_t count_ = 0;
};

/// Live metrics by family. A family has fixed label names; each label set gets its own series on
/// first use. References stay valid for the registry's life.
class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  /// A counter family ("automation_http_requests_total": the name must end in _total).
  Counter& counter(std::string_view name, std::string_view help, const Labels& labels = {});
  Gauge& gauge(std::string_view name, std::string_view help, const Labels& labels = {});
  /// `bounds`: the buckets' upper bounds, increasing (the first call's win).
  Histogram& histogram(std::string_view name, std::string_view help, std::vector<double> bounds, const Labels& labels = {});
  /// A family computed at scrape time (from the store, say), called by write() after the live
  /// families and without the registry's lock (it may take other locks; it may update live metrics).
  void collector(std::function<void(PrometheusWriter&)> write);
  /// Every family, in registration order, then the collectors.
  void write(PrometheusWriter& out) const;
  std::string text() const;

 private:
  struct Family;
  Family& family(std::string_view name, std::string_view type, std::string_view help, const Labels& labels);
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Family>> families_;
  std::vector<std::function<void(PrometheusWriter&)>> collectors_;
};

/// Default latency buckets in seconds (0.5 ms to 10 s).
std::vector<double> latency_buckets();

}  // namespace automation::runtime
