#include <automation/runtime/prometheus.hpp>

#include "detail/clean_text.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>

namespace automation::runtime {

namespace {

bool metric_name(std::string_view s) {
  if (s.empty()) return false;
  auto head = [](char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':'; };
  if (!head(s.front())) return false;
  return std::all_of(s.begin() + 1, s.end(), [&](char c) { return head(c) || std::isdigit(static_cast<unsigned char>(c)); });
}

bool label_name(std::string_view s) {
  if (s.empty() || s.rfind("__", 0) == 0) return false;
  auto head = [](char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; };
  if (!head(s.front())) return false;
  return std::all_of(s.begin() + 1, s.end(), [&](char c) { return head(c) || std::isdigit(static_cast<unsigned char>(c)); });
}

/// Label values escape backslash, double quote and newline; HELP text backslash and newline.
std::string escape(std::string_view v, bool quote) {
  std::string out;
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else if (quote && c == '"')
      out += "\\\"";
    else
      out += c;
  }
  return out;
}

std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{}", static_cast<long long>(v));
  return fmt::format("{}", v);
}

[[noreturn]] void misuse(std::string message) { throw Exception(fail(errc::invalid_argument, std::move(message))); }

}  // namespace

void PrometheusWriter::family(std::string_view name, std::string_view type, std::string_view help) {
  if (!metric_name(name)) misuse(fmt::format("invalid metric name \"{}\"", name));
  if (type != "counter" && type != "gauge" && type != "histogram" && type != "summary" && type != "untyped")
    misuse(fmt::format("metric {}: invalid type \"{}\"", name, type));
  if (std::find(seen_.begin(), seen_.end(), name) != seen_.end()) misuse(fmt::format("metric family {} is written twice", name));
  seen_.emplace_back(name);
  family_ = std::string(name);
  out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, escape(help, false), name, type);
}

void PrometheusWriter::sample(std::string_view name, const Labels& labels, double value) {
  const auto suffix = name.rfind(family_, 0) == 0 ? name.substr(family_.size()) : std::string_view("?");
  if (family_.empty() || !(suffix.empty() || suffix == "_bucket" || suffix == "_sum" || suffix == "_count"))
    misuse(fmt::format("sample {} outside its family", name));
  out_ += name;
  if (!labels.empty()) {
    out_ += '{';
    bool first = true;
    for (std::size_t i = 0; i < labels.size(); ++i) {
      const auto& [k, v] = labels[i];
      if (!label_name(k)) misuse(fmt::format("metric {}: invalid label name \"{}\"", name, k));
      for (std::size_t j = 0; j < i; ++j)
        if (labels[j].first == k) misuse(fmt::format("metric {}: label {} given twice", name, k));
      // A value that is not valid UTF-8 would make Prometheus refuse the whole scrape.
      out_ += fmt::format("{}{}=\"{}\"", first ? "" : ",", k, escape(detail::clean_text(v), true));
      first = false;
    }
    out_ += '}';
  }
  out_ += ' ';
  out_ += number(value);
  out_ += '\n';
}

void Counter::inc(double by) {
  if (!(by >= 0)) misuse("a counter only goes up");
  value_.fetch_add(by);
}

void Gauge::add(double by) { value_.fetch_add(by); }

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {
  if (!std::is_sorted(bounds_.begin(), bounds_.end()) || std::adjacent_find(bounds_.begin(), bounds_.end()) != bounds_.end())
    misuse("histogram bounds must increase");
}

void Histogram::observe(double v) {
  if (std::isnan(v)) misuse("a histogram cannot observe NaN");
  const auto i = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());  // le: v <= bound
  std::lock_guard lock(mu_);
  ++counts_[i];
  sum_ += v;
  ++count_;
}

Histogram::Snapshot Histogram::snapshot() const {
  std::lock_guard lock(mu_);
  Snapshot s;
  s.bounds = bounds_;
  std::uint64_t running = 0;
  for (auto c : counts_) s.cumulative.push_back(running += c);
  s.sum = sum_;
  s.count = count_;
  return s;
}

std::vector<double> latency_buckets() { return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}; }

struct MetricsRegistry::Family {
  std::string name, type, help;
  std::vector<std::string> label_names;
  std::vector<double> bounds;
  // Series by their label values, in first-use order.
  std::vector<std::pair<std::vector<std::string>, std::unique_ptr<Counter>>> counters;
  std::vector<std::pair<std::vector<std::string>, std::unique_ptr<Gauge>>> gauges;
  std::vector<std::pair<std::vector<std::string>, std::unique_ptr<Histogram>>> histograms;

  std::vector<std::string> values_of(const Labels& labels) const {
    if (labels.size() != label_names.size()) misuse(fmt::format("metric {}: labels must be exactly those of its first use", name));
    std::vector<std::string> values;
    for (std::size_t i = 0; i < labels.size(); ++i) {
      if (labels[i].first != label_names[i]) misuse(fmt::format("metric {}: labels must be exactly those of its first use", name));
      values.push_back(labels[i].second);
    }
    return values;
  }
  Labels labels_of(const std::vector<std::string>& values) const {
    Labels out;
    for (std::size_t i = 0; i < values.size(); ++i) out.emplace_back(label_names[i], values[i]);
    return out;
  }
};

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

MetricsRegistry::Family& MetricsRegistry::family(std::string_view name, std::string_view type, std::string_view help,
                                                 const Labels& labels) {
  for (auto& f : families_)
    if (f->name == name) {
      if (f->type != type) misuse(fmt::format("metric {} is a {}, not a {}", name, f->type, type));
      return *f;
    }
  if (!metric_name(name)) misuse(fmt::format("invalid metric name \"{}\"", name));
  if (type == "counter" && !std::string_view(name).ends_with("_total")) misuse(fmt::format("counter {} must end in _total", name));
  auto f = std::make_unique<Family>();
  f->name = std::string(name);
  f->type = std::string(type);
  f->help = std::string(help);
  for (const auto& [k, v] : labels) {
    if (!label_name(k) || (type == "histogram" && k == "le")) misuse(fmt::format("metric {}: invalid label name \"{}\"", name, k));
    f->label_names.push_back(k);
  }
  families_.push_back(std::move(f));
  return *families_.back();
}

Counter& MetricsRegistry::counter(std::string_view name, std::string_view help, const Labels& labels) {
  std::lock_guard lock(mu_);
  auto& f = family(name, "counter", help, labels);
  auto values = f.values_of(labels);
  for (auto& [v, c] : f.counters)
    if (v == values) return *c;
  f.counters.emplace_back(std::move(values), std::make_unique<Counter>());
  return *f.counters.back().second;
}

Gauge& MetricsRegistry::gauge(std::string_view name, std::string_view help, const Labels& labels) {
  std::lock_guard lock(mu_);
  auto& f = family(name, "gauge", help, labels);
  auto values = f.values_of(labels);
  for (auto& [v, g] : f.gauges)
    if (v == values) return *g;
  f.gauges.emplace_back(std::move(values), std::make_unique<Gauge>());
  return *f.gauges.back().second;
}

Histogram& MetricsRegistry::histogram(std::string_view name, std::string_view help, std::vector<double> bounds, const Labels& labels) {
  std::lock_guard lock(mu_);
  auto& f = family(name, "histogram", help, labels);
  if (f.histograms.empty() && f.bounds.empty()) f.bounds = bounds;
  if (f.bounds.empty()) misuse(fmt::format("histogram {} needs bucket bounds", name));
  auto values = f.values_of(labels);
  for (auto& [v, h] : f.histograms)
    if (v == values) return *h;
  f.histograms.emplace_back(std::move(values), std::make_unique<Histogram>(f.bounds));
  return *f.histograms.back().second;
}

void MetricsRegistry::collector(std::function<void(PrometheusWriter&)> write) {
  std::lock_guard lock(mu_);
  collectors_.push_back(std::move(write));
}

void MetricsRegistry::write(PrometheusWriter& out) const {
  std::unique_lock lock(mu_);
  for (const auto& f : families_) {
    out.family(f->name, f->type, f->help);
    for (const auto& [v, c] : f->counters) out.sample(f->name, f->labels_of(v), c->value());
    for (const auto& [v, g] : f->gauges) out.sample(f->name, f->labels_of(v), g->value());
    for (const auto& [v, h] : f->histograms) {
      const auto s = h->snapshot();
      auto labels = f->labels_of(v);
      for (std::size_t i = 0; i <= s.bounds.size(); ++i) {
        auto with_le = labels;
        with_le.emplace_back("le", i < s.bounds.size() ? number(s.bounds[i]) : "+Inf");
        out.sample(f->name + "_bucket", with_le, static_cast<double>(s.cumulative[i]));
      }
      out.sample(f->name + "_sum", labels, s.sum);
      out.sample(f->name + "_count", labels, static_cast<double>(s.count));
    }
  }
  // The collectors run without the registry's lock: they read a store or take a component's lock,
  // and a thread holding that one may be waiting to count something here.
  const auto collectors = collectors_;
  lock.unlock();
  for (const auto& c : collectors) c(out);
}

std::string MetricsRegistry::text() const {
  PrometheusWriter w;
  write(w);
  return w.str();
}

}  // namespace automation::runtime
