// autoctl metrics system [--watch] [--interval 1s] [--count N] [--proc DIR]
#include "context.hpp"

#include <automation/core/json.hpp>
#include <automation/core/time.hpp>
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

}  // namespace

void register_metrics(CLI::App& app, Context& ctx) {
  auto* metrics = app.add_subcommand("metrics", "System metrics");
  metrics->require_subcommand(1);
  auto o = std::make_shared<SystemOptions>();
  auto* system = metrics->add_subcommand(
      "system", "CPU, memory, swap, disks, network, load and processes from /proc, marking values above the configured thresholds");
  system->add_flag("--watch", o->watch, "Print a sample every interval until interrupted (or --count samples)");
  system->add_option("--interval", o->interval, "Time between readings (default 1s; CPU usage and network rates are over it)");
  system->add_option("--count", o->count, "With --watch: stop after N samples");
  system->add_option("--proc", o->proc, "Where to read the proc files (default /proc); disks named in its mounts are measured here");
  system->callback([&ctx, o] { ctx.run = [&ctx, o] { return run_system(ctx, *o); }; });
}

}  // namespace autoctl
