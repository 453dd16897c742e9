// autoctl metrics system [--watch] [--interval 1s] [--count N] [--proc DIR]
// autoctl metrics collect [--count N] [--interval D] [--warmup D] [--proc DIR] [--no-system] [--no-alerts]
// autoctl metrics points NAME [--labels L] [--since T] [--limit N]
#include "context.hpp"
#include "delivery_support.hpp"

#include <automation/core/json.hpp>
#include <automation/core/time.hpp>
#include <automation/metrics/alerts.hpp>
#include <automation/metrics/collector.hpp>
#include <automation/metrics/system.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

#include <thread>

namespace autoctl {
namespace mx = automation::metrics;

namespace {

struct SystemOptions {
  bool watch = false;
  std::string interval = "1s";
  std::size_t count = 0;
  std::string proc = "/proc";
};

std::string bytes(double v) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  std::size_t u = 0;
  while (v >= 1024 && u + 1 < std::size(kUnits)) v /= 1024, ++u;
  return fmt::format("{:.1f} {}", v, kUnits[u]);
}

// A figure above its alert threshold (thresholds.cpu_high, memory_high, disk_high).
struct Above {
  std::string metric, mount;  // mount: disks only
  double value = 0, threshold = 0;
};

std::vector<Above> above_thresholds(const mx::SystemSample& s, const automation::ThresholdsConfig& t) {
  std::vector<Above> out;
  if (s.cpu_usage > t.cpu_high) out.push_back({"cpu_usage", "", s.cpu_usage, t.cpu_high});
  if (s.memory_usage > t.memory_high) out.push_back({"memory_usage", "", s.memory_usage, t.memory_high});
  for (const auto& d : s.disks)
    if (d.usage > t.disk_high) out.push_back({"disk_usage", d.mount_point, d.usage, t.disk_high});
  return out;
}

boost::json::object to_json(const mx::SystemSample& s, const automation::ThresholdsConfig& t) {
  boost::json::array disks, net, above;
  for (const auto& d : s.disks)
    disks.push_back({{"mount", d.mount_point},
                     {"device", d.device},
                     {"fs_type", d.fs_type},
                     {"total_bytes", d.total},
                     {"used_bytes", d.used},
                     {"available_bytes", d.available},
                     {"usage", d.usage}});
  for (const auto& n : s.network) {
    boost::json::object o{{"interface", n.interface},
                          {"rx_bytes", n.rx_bytes},
                          {"tx_bytes", n.tx_bytes},
                          {"rx_errors", n.rx_errors},
                          {"tx_errors", n.tx_errors}};
    o["rx_bytes_per_s"] = automation::json::or_null(n.rx_bytes_per_s);
    o["tx_bytes_per_s"] = automation::json::or_null(n.tx_bytes_per_s);
    net.push_back(std::move(o));
  }
  for (const auto& a : above_thresholds(s, t)) {
    boost::json::object o{{"metric", a.metric}};
    if (!a.mount.empty()) o["mount"] = a.mount;
    o["value"] = a.value;
    o["threshold"] = a.threshold;
    above.push_back(std::move(o));
  }
  boost::json::array warnings;
  for (const auto& w : s.warnings) warnings.push_back(boost::json::value(w));
  return {{"time", automation::format_timestamp(s.time)},
          {"cpu_usage", s.cpu_usage},
          {"cpu_since_boot", s.cpu_since_boot},
          {"cpus", s.cpus},
          {"memory_usage", s.memory_usage},
          {"memory_total_bytes", s.memory_total},
          {"memory_available_bytes", s.memory_available},
          {"swap_usage", s.swap_usage},
          {"load", boost::json::array{s.load1, s.load5, s.load15}},
          {"processes", s.processes},
          {"processes_running", s.processes_running},
          {"processes_blocked", s.processes_blocked},
          {"disks", std::move(disks)},
          {"network", std::move(net)},
          {"above_threshold", std::move(above)},
          {"warnings", std::move(warnings)}};
}

void print(const mx::SystemSample& s, const automation::ThresholdsConfig& t) {
  const auto above = above_thresholds(s, t);
  const auto mark = [&](std::string_view metric, std::string_view mount = {}) {
    for (const auto& a : above)
      if (a.metric == metric && a.mount == mount) return " HIGH";
    return "";
  };
  fmt::print(
      "{} cpu {:.1f} %{}{} ({} cpus) | memory {:.1f} %{} of {} | swap {:.1f} % | load {:.2f} {:.2f} {:.2f} | processes {} ({} running)\n",
      automation::format_timestamp(s.time), s.cpu_usage, s.cpu_since_boot ? " since boot" : "", mark("cpu_usage"), s.cpus, s.memory_usage,
      mark("memory_usage"), bytes(static_cast<double>(s.memory_total)), s.swap_usage, s.load1, s.load5, s.load15, s.processes,
      s.processes_running);
  for (const auto& d : s.disks)
    fmt::print("  disk {:<20} {:5.1f} %{} of {} ({} free)\n", d.mount_point, d.usage, mark("disk_usage", d.mount_point),
               bytes(static_cast<double>(d.total)), bytes(static_cast<double>(d.available)));
  for (const auto& n : s.network) {
    if (n.rx_bytes_per_s && n.tx_bytes_per_s)
      fmt::print("  net  {:<20} rx {}/s tx {}/s\n", n.interface, bytes(*n.rx_bytes_per_s), bytes(*n.tx_bytes_per_s));
    else
      fmt::print("  net  {:<20} rx {} tx {} since boot\n", n.interface, bytes(static_cast<double>(n.rx_bytes)),
                 bytes(static_cast<double>(n.tx_bytes)));
  }
  for (const auto& w : s.warnings) fmt::print(stderr, "warning: {}\n", w);
}

int run_system(Context& ctx, const SystemOptions& o) {
  auto interval = automation::parse_duration(o.interval);
  if (!interval) return ctx.error(automation::with_context(interval.error(), "--interval"));
  if (interval->count() <= 0 || *interval > std::chrono::hours(24))
    return ctx.error(automation::Error{automation::errc::invalid_argument, "--interval must be more than 0 and at most 24h"});
  if (o.count && !o.watch) return ctx.error(automation::Error{automation::errc::invalid_argument, "--count goes with --watch"});
  const auto& thresholds = ctx.config.thresholds;
  mx::SystemCollector collector(automation::SystemClock::instance(), {.proc_root = o.proc});
  // The first reading gives CPU usage since boot; one interval later the usage over that interval.
  auto first = collector.sample();
  if (!first) return ctx.error(first.error());
  const std::size_t samples = o.watch ? o.count : 1;
  for (std::size_t n = 0; samples == 0 || n < samples; ++n) {
    std::this_thread::sleep_for(*interval);
    auto s = collector.sample();
    if (!s) return ctx.error(s.error());
    if (ctx.global.json) {
      if (o.watch)  // one JSON document per line
        fmt::print("{}\n", automation::json::dump(to_json(*s, thresholds)));
      else
        ctx.print_json(to_json(*s, thresholds));
    } else {
      print(*s, thresholds);
    }
    std::fflush(stdout);
  }
  return ex_ok;
}

struct CollectOptions {
  std::size_t count = 1;
  std::string interval;  // default alerts.interval
  std::string warmup = "1s";
  std::string proc = "/proc";
  bool no_system = false;
  bool no_alerts = false;
};

automation::Result<automation::Millis> positive_duration(const std::string& text, std::string_view what, bool zero_ok) {
  auto d = automation::parse_duration(text);
  if (!d) return automation::with_context(d.error(), what);
  if ((d->count() <= 0 && !zero_ok) || *d > std::chrono::hours(24))
    return automation::fail(automation::errc::invalid_argument,
                            fmt::format("{} must be {} and at most 24h", what, zero_ok ? "0 or more" : "more than 0"));
  return *d;
}

int run_collect(Context& ctx, const CollectOptions& o) {
  auto interval = o.interval.empty() ? automation::Result<automation::Millis>(ctx.config.alerts.interval)
                                     : positive_duration(o.interval, "--interval", false);
  if (!interval) return ctx.error(interval.error());
  if (interval->count() <= 0 && o.count != 1)
    return ctx.error(automation::fail(automation::errc::config, "alerts.interval must be longer than 0"));
  auto warmup = positive_duration(o.warmup, "--warmup", true);
  if (!warmup) return ctx.error(warmup.error());
  std::optional<AlertSetup> setup;
  if (!o.no_alerts) {
    auto s = alert_setup(ctx);
    if (!s) return ctx.error(s.error());
    setup = std::move(*s);
  }
  auto store = ctx.open_store(Context::Access::write);
  if (!store) return ctx.error(store.error());
  auto& clock = automation::SystemClock::instance();
  mx::CollectorOptions co;
  co.interval = *interval;
  co.system = !o.no_system;
  co.system_options.proc_root = o.proc;
  mx::MetricsCollector collector(**store, clock, co);
  std::optional<mx::AlertManager> alerts;
  if (setup) alerts.emplace(**store, clock, std::move(setup->options));
  // CPU usage is measured between two readings: the first one only primes the collector.
  if (co.system && warmup->count() > 0) {
    if (auto p = collector.prime(); !p) return ctx.error(p.error());
    std::this_thread::sleep_for(*warmup);
  }
  int rc = ex_ok;
  const bool repeating = o.count != 1;
  // Paced by the steady clock: a wall-clock step (NTP) neither stalls nor hurries the samples.
  auto next = std::chrono::steady_clock::now();
  for (std::size_t n = 0; o.count == 0 || n < o.count; ++n) {
    if (n > 0) std::this_thread::sleep_until(next);
    next = std::chrono::steady_clock::now() + *interval;
    auto c = collector.collect();
    if (!c) {  // a busy store: when repeating, the next sample tries again
      if (!repeating) return ctx.error(c.error());
      rc = ctx.error(c.error());
      continue;
    }
    std::vector<mx::AlertChange> changes;
    if (alerts) {
      auto ch = alerts->evaluate();
      if (!ch) {
        if (!repeating) return ctx.error(ch.error());
        rc = ctx.error(ch.error());
      } else {
        changes = std::move(*ch);
      }
    }
    for (const auto& ch : changes)
      if (ch.what == "error") rc = ex_tempfail;
    if (ctx.global.json) {
      boost::json::array warnings;
      for (const auto& w : c->warnings) warnings.push_back(boost::json::value(w));
      fmt::print("{}\n", automation::json::dump(boost::json::object{{"time", automation::format_timestamp(c->time)},
                                                                    {"points", c->points},
                                                                    {"warnings", std::move(warnings)},
                                                                    {"alerts", changes_json(changes)}}));
    } else {
      fmt::print("{} stored {} points{}\n", automation::format_timestamp(c->time), c->points,
                 changes.empty() ? "" : fmt::format(", {} alert change{}", changes.size(), changes.size() == 1 ? "" : "s"));
      for (const auto& w : c->warnings) fmt::print(stderr, "warning: {}\n", w);
      print_changes(changes);
    }
    std::fflush(stdout);
  }
  return rc;
}

struct PointsOptions {
  std::string name;
  std::optional<std::string> labels;
  std::string since = "1h";
  std::size_t limit = 1000;
};

int run_points(Context& ctx, const PointsOptions& o) {
  auto& clock = automation::SystemClock::instance();
  auto since = automation::parse_time_spec(o.since, clock.now());
  if (!since) return ctx.error(automation::with_context(since.error(), "--since"));
  auto store = ctx.open_store(Context::Access::read);
  if (!store) return ctx.error(store.error());
  auto points = (*store)->query_metric_points({.name = o.name, .labels = o.labels, .since = *since, .limit = o.limit});
  if (!points) return ctx.error(points.error());
  if (ctx.global.json) {
    boost::json::array items;
    for (const auto& p : *points)
      items.push_back(
          boost::json::object{{"name", p.name}, {"labels", p.labels}, {"time", automation::format_timestamp(p.time)}, {"value", p.value}});
    ctx.print_json(boost::json::object{{"points", std::move(items)}});
    return ex_ok;
  }
  if (points->empty()) fmt::print("no points of {} since {}\n", o.name, automation::format_timestamp(*since));
  if (o.limit && points->size() == o.limit) fmt::print(stderr, "the first {} points only: raise --limit or narrow --since\n", o.limit);
  for (const auto& p : *points)
    fmt::print("{} {}{} {}\n", automation::format_timestamp(p.time), p.name, p.labels.empty() ? "" : "{" + p.labels + "}", p.value);
  return ex_ok;
}

}  // namespace

void register_metrics(CLI::App& app, Context& ctx) {
  auto* metrics = app.add_subcommand("metrics", "System and application metrics: show them, store them, read them back");
  metrics->require_subcommand(1);
  auto o = std::make_shared<SystemOptions>();
  auto* system = metrics->add_subcommand(
      "system", "CPU, memory, swap, disks, network, load and processes from /proc, marking values above the configured thresholds");
  system->add_flag("--watch", o->watch, "Print a sample every interval until interrupted (or --count samples)");
  system->add_option("--interval", o->interval, "Time between readings (default 1s; CPU usage and network rates are over it)");
  system->add_option("--count", o->count, "With --watch: stop after N samples");
  system->add_option("--proc", o->proc, "Where to read the proc files (default /proc); disks named in its mounts are measured here");
  system->callback([&ctx, o] { ctx.run = [&ctx, o] { return run_system(ctx, *o); }; });

  auto c = std::make_shared<CollectOptions>();
  auto* collect = metrics->add_subcommand(
      "collect", "Store system and application metrics in the store and evaluate the alert rules, once or every interval");
  collect->add_option("--count", c->count, "Samples to store (default 1; 0: until interrupted)");
  collect->add_option("--interval", c->interval, "Time between samples (default alerts.interval, 30s)");
  collect->add_option("--warmup", c->warmup,
                      "Time between the priming reading and the first sample (default 1s; 0: store no CPU usage in the first)");
  collect->add_option("--proc", c->proc, "Where to read the proc files (default /proc)");
  collect->add_flag("--no-system", c->no_system, "Only application metrics (queue depth, running workflows, ...)");
  collect->add_flag("--no-alerts", c->no_alerts, "Do not evaluate the alert rules");
  collect->callback([&ctx, c] { ctx.run = [&ctx, c] { return run_collect(ctx, *c); }; });

  auto p = std::make_shared<PointsOptions>();
  auto* points = metrics->add_subcommand("points", "Stored samples of one metric, oldest first");
  points->add_option("name", p->name, "cpu_usage, memory_usage, disk_usage, workflow_queue_depth, ...")->required();
  points->add_option("--labels", p->labels, "Only the series with exactly these labels (\"mount=/\")");
  points->add_option("--since", p->since, "From this time or this long ago (default 1h)");
  points->add_option("--limit", p->limit, "At most this many points (default 1000; 0: all)");
  points->callback([&ctx, p] { ctx.run = [&ctx, p] { return run_points(ctx, *p); }; });
}

}  // namespace autoctl
