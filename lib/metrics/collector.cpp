#include <automation/metrics/collector.hpp>

#include <fmt/format.h>

namespace automation::metrics {

Result<std::vector<MetricPoint>> application_metrics(storage::Store& store, TimePoint now) {
  std::vector<MetricPoint> out;
  auto add = [&](std::string name, std::size_t v) { out.push_back({std::move(name), "", now, static_cast<double>(v)}); };
  auto queued = store.list_runs({.states = {storage::RunState::queued}, .limit = 0});
  if (!queued) return with_context(queued.error(), "counting queued workflow runs");
  add("workflow_queue_depth", queued->size());
  auto running = store.list_runs({.states = {storage::RunState::running}, .limit = 0});
  if (!running) return with_context(running.error(), "counting running workflow runs");
  add("workflows_running", running->size());
  auto pending = store.list_deliveries({.state = std::string("pending"), .limit = 0});
  if (!pending) return with_context(pending.error(), "counting pending deliveries");
  add("deliveries_pending", pending->size());
  auto firing = store.list_alerts({.state = std::string("firing"), .limit = 0});
  if (!firing) return with_context(firing.error(), "counting firing alerts");
  add("alerts_firing", firing->size());
  return out;
}

MetricsCollector::MetricsCollector(storage::Store& store, const Clock& clock, CollectorOptions options)
    : store_(store), clock_(clock), options_(std::move(options)), system_(clock, options_.system_options) {}

Result<void> MetricsCollector::prime() {
  if (!options_.system) return {};
  auto s = system_.sample();
  if (!s) return s.error();
  return {};
}

Result<Collection> MetricsCollector::collect() {
  Collection c;
  c.time = clock_.now();
  std::vector<MetricPoint> points;
  // Every source's points get the sample's time, and one that is not valid (a mount point with ','
  // in its name, a host's bad label) is a warning instead of failing the whole append.
  auto take = [&](std::string_view source, std::vector<MetricPoint> got) {
    for (auto& p : got) {
      p.time = c.time;
      if (auto v = storage::validate(p); !v) {
        c.warnings.push_back(fmt::format("{}: {}", source, v.error().message));
        continue;
      }
      points.push_back(std::move(p));
    }
  };
  if (options_.system) {
    auto s = system_.sample();
    if (!s) {
      c.warnings.push_back("system: " + s.error().message);
    } else {
      auto got = s->points();
      if (s->cpu_since_boot) {
        std::erase_if(got, [](const MetricPoint& p) { return p.name == "cpu_usage"; });
        c.warnings.push_back("cpu_usage: a first reading measures since boot; it is stored from the next sample on");
      }
      take("system", std::move(got));
      for (const auto& w : s->warnings) c.warnings.push_back("system: " + w);
      c.system = std::move(*s);
    }
  }
  if (options_.application) {
    auto a = application_metrics(store_, c.time);
    if (!a)
      c.warnings.push_back("application: " + a.error().message);
    else
      take("application", std::move(*a));
  }
  for (const auto& [name, source] : options_.sources) {
    auto got = source ? source() : Result<std::vector<MetricPoint>>(fail(errc::invalid_argument, "no function"));
    if (!got)
      c.warnings.push_back(fmt::format("{}: {}", name, got.error().message));
    else
      take(name, std::move(*got));
  }
  last_ = c.time;
  if (auto w = store_.append_metric_points(points); !w) return with_context(w.error(), "storing metric points");
  c.points = points.size();
  return c;
}

TimePoint MetricsCollector::next_due() const { return last_ ? *last_ + options_.interval : clock_.now(); }

}  // namespace automation::metrics
