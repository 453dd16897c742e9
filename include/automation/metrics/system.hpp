#pragma once
/// System metrics from /proc: CPU, memory, swap, disk per mount, network I/O per interface, load
/// averages and process counts. The parsers are pure functions over the files' text (tested on
/// captured files); SystemCollector reads them from a proc root and turns two readings into rates.
///
/// Thread-safety: the parsers are pure; a SystemCollector is for one thread at a time.
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>
#include <automation/core/time.hpp>
#include <automation/storage/store.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace automation::metrics {

// ---- the files -----------------------------------------------------------------------------------

/// Jiffies of the aggregate "cpu" line of /proc/stat.
struct CpuTimes {
  std::uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  std::uint64_t total() const noexcept { return user + nice + system + idle + iowait + irq + softirq + steal; }
  std::uint64_t idle_all() const noexcept { return idle + iowait; }
};

struct ProcStat {
  CpuTimes cpu;
  std::size_t cpus = 0;  ///< "cpuN" lines
  std::uint64_t processes_running = 0, processes_blocked = 0;
};
/// /proc/stat. errc::invalid_argument naming the line when the "cpu" line is missing or malformed.
Result<ProcStat> parse_proc_stat(std::string_view text);

/// /proc/meminfo, in bytes.
struct MemInfo {
  std::uint64_t total = 0, free = 0, available = 0, buffers = 0, cached = 0, swap_total = 0, swap_free = 0;
};
/// errc::invalid_argument when MemTotal is missing or a line is malformed. MemAvailable, absent
/// before Linux 3.14, is estimated as free + buffers + cached.
Result<MemInfo> parse_meminfo(std::string_view text);

/// /proc/loadavg: "0.52 0.58 0.59 2/1183 12345".
struct LoadAvg {
  double load1 = 0, load5 = 0, load15 = 0;
  std::uint64_t running = 0, processes = 0;  ///< runnable and all scheduling entities (threads included)
};
Result<LoadAvg> parse_loadavg(std::string_view text);

/// One interface of /proc/net/dev.
struct NetCounters {
  std::string interface;
  std::uint64_t rx_bytes = 0, rx_packets = 0, rx_errors = 0, tx_bytes = 0, tx_packets = 0, tx_errors = 0;
};
Result<std::vector<NetCounters>> parse_net_dev(std::string_view text);

/// One line of /proc/mounts (or /proc/self/mounts); octal escapes such as \040 are decoded.
struct Mount {
  std::string device, mount_point, fs_type;
};
Result<std::vector<Mount>> parse_mounts(std::string_view text);
/// True for file systems that hold data on a local device (ext4, xfs, btrfs, vfat, zfs, overlay, ...);
/// false for virtual ones (proc, sysfs, tmpfs, cgroup, ...) and network ones (nfs, cifs), which could
/// hang the collector.
bool is_storage_fs(std::string_view fs_type) noexcept;

// ---- samples -------------------------------------------------------------------------------------

struct DiskUsage {
  std::string mount_point, device, fs_type;
  std::uint64_t total = 0, used = 0, available = 0;  ///< bytes; available to unprivileged users
  double usage = 0;                                  ///< percent, as df: used / (used + available)
};

struct NetworkUsage {
  std::string interface;
  std::uint64_t rx_bytes = 0, tx_bytes = 0, rx_errors = 0, tx_errors = 0;  ///< counters since boot
  std::optional<double> rx_bytes_per_s, tx_bytes_per_s;                    ///< since the previous sample
};

/// One named value of a sample: "cpu_usage", or "disk_usage" with labels "mount=/" (the store's
/// record, so samples are stored as they are).
using MetricPoint = storage::MetricPoint;

struct SystemSample {
  TimePoint time{};
  double cpu_usage = 0;         ///< percent busy since the previous sample (the first: since boot)
  bool cpu_since_boot = false;  ///< true for a collector's first sample
  std::size_t cpus = 0;
  double memory_usage = 0;  ///< percent: (total - available) / total
  std::uint64_t memory_total = 0, memory_available = 0;
  double swap_usage = 0;  ///< percent (0 without swap)
  double load1 = 0, load5 = 0, load15 = 0;
  std::uint64_t processes = 0, processes_running = 0, processes_blocked = 0;
  std::vector<DiskUsage> disks;       ///< local storage file systems, each device and mount point once
  std::vector<NetworkUsage> network;  ///< every interface but lo
  std::vector<std::string> warnings;  ///< what could not be read (a disk statvfs refused, ...)

  /// The sample as flat points: cpu_usage, memory_usage, swap_usage, load1, load5, load15,
  /// processes, processes_running, disk_usage{mount}, net_rx_bytes_per_s{interface},
  /// net_tx_bytes_per_s{interface} (rates from the second sample on).
  std::vector<MetricPoint> points() const;
};

struct SystemCollectorOptions {
  std::string proc_root = "/proc";  ///< where stat, meminfo, loadavg, net/dev and mounts are read
  /// How a mount's usage is measured; default statvfs(2) on its mount point.
  std::function<Result<DiskUsage>(const Mount&)> disk_usage;
};

/// statvfs(2) on the mount point; errc::io naming it when that fails.
Result<DiskUsage> statvfs_usage(const Mount& mount);

class SystemCollector {
 public:
  explicit SystemCollector(const Clock& clock, SystemCollectorOptions options = {});

  /// Reads the files and returns a sample; CPU usage and network rates are relative to the
  /// previous call's readings. errc::not_found naming the file when one of stat, meminfo or
  /// loadavg is missing, errc::invalid_argument naming the file when it cannot be parsed; net/dev
  /// and mounts are optional (a warning each).
  Result<SystemSample> sample();

 private:
  const Clock& clock_;
  SystemCollectorOptions options_;
  std::optional<CpuTimes> last_cpu_;
  std::optional<TimePoint> last_time_;
  std::vector<NetCounters> last_net_;
};

}  // namespace automation::metrics
