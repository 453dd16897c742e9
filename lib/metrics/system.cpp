#include <automation/core/files.hpp>
#include <automation/metrics/system.hpp>

#include <detail/names.hpp>

#include <fmt/format.h>

#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <set>

namespace automation::metrics {

namespace {

/// The lines of a text, without their newlines.
std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    out.push_back(text.substr(0, nl));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return out;
}

using automation::detail::words;

template <class T>
bool number(std::string_view s, T& out) {
  const auto* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, out);
  return ec == std::errc() && p == end;
}

Error malformed(std::string_view file, std::size_t line, std::string_view what) {
  return Error{errc::invalid_argument, fmt::format("{} line {}: {}", file, line, what)};
}

}  // namespace

Result<ProcStat> parse_proc_stat(std::string_view text) {
  ProcStat s;
  bool have_cpu = false;
  const auto lines = lines_of(text);
  for (std::size_t n = 0; n < lines.size(); ++n) {
    const auto f = words(lines[n]);
    if (f.empty()) continue;
    if (f[0] == "cpu") {
      if (f.size() < 5) return malformed("stat", n + 1, "the cpu line has fewer than 4 counters");
      std::uint64_t v[8] = {};
      for (std::size_t i = 1; i < f.size() && i <= 8; ++i)
        if (!number(f[i], v[i - 1])) return malformed("stat", n + 1, fmt::format("cpu counter '{}' is not a number", f[i]));
      s.cpu = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]};
      have_cpu = true;
    } else if (f[0].starts_with("cpu")) {
      ++s.cpus;
    } else if (f[0] == "procs_running" && f.size() >= 2) {
      if (!number(f[1], s.processes_running)) return malformed("stat", n + 1, "procs_running is not a number");
    } else if (f[0] == "procs_blocked" && f.size() >= 2) {
      if (!number(f[1], s.processes_blocked)) return malformed("stat", n + 1, "procs_blocked is not a number");
    }
  }
  if (!have_cpu) return Error{errc::invalid_argument, "stat: no cpu line"};
  return s;
}

Result<MemInfo> parse_meminfo(std::string_view text) {
  MemInfo m;
  bool total = false, available = false;
  const auto lines = lines_of(text);
  for (std::size_t n = 0; n < lines.size(); ++n) {
    const auto f = words(lines[n]);
    if (f.empty()) continue;
    if (f.size() < 2 || !f[0].ends_with(':')) return malformed("meminfo", n + 1, fmt::format("'{}' is not 'Name: value'", lines[n]));
    std::uint64_t v = 0;
    if (!number(f[1], v)) return malformed("meminfo", n + 1, fmt::format("'{}' is not a number", f[1]));
    if (f.size() >= 3 && f[2] == "kB") v *= 1024;
    const auto key = f[0].substr(0, f[0].size() - 1);
    if (key == "MemTotal")
      m.total = v, total = true;
    else if (key == "MemFree")
      m.free = v;
    else if (key == "MemAvailable")
      m.available = v, available = true;
    else if (key == "Buffers")
      m.buffers = v;
    else if (key == "Cached")
      m.cached = v;
    else if (key == "SwapTotal")
      m.swap_total = v;
    else if (key == "SwapFree")
      m.swap_free = v;
  }
  if (!total) return Error{errc::invalid_argument, "meminfo: no MemTotal line"};
  if (!available) m.available = std::min(m.total, m.free + m.buffers + m.cached);
  return m;
}

Result<LoadAvg> parse_loadavg(std::string_view text) {
  const auto f = words(text.substr(0, text.find('\n')));
  LoadAvg l;
  if (f.size() < 4) return Error{errc::invalid_argument, fmt::format("loadavg: '{}' has fewer than 4 fields", text.substr(0, 80))};
  // std::from_chars for double: exact and locale-free.
  if (!number(f[0], l.load1) || !number(f[1], l.load5) || !number(f[2], l.load15))
    return Error{errc::invalid_argument, fmt::format("loadavg: the load averages '{} {} {}' are not numbers", f[0], f[1], f[2])};
  const auto slash = f[3].find('/');
  if (slash == std::string_view::npos || !number(f[3].substr(0, slash), l.running) || !number(f[3].substr(slash + 1), l.processes))
    return Error{errc::invalid_argument, fmt::format("loadavg: '{}' is not running/total", f[3])};
  return l;
}

Result<std::vector<NetCounters>> parse_net_dev(std::string_view text) {
  std::vector<NetCounters> out;
  const auto lines = lines_of(text);
  for (std::size_t n = 0; n < lines.size(); ++n) {
    const auto colon = lines[n].find(':');
    if (colon == std::string_view::npos) continue;  // the two header lines
    const auto name = words(lines[n].substr(0, colon));
    const auto f = words(lines[n].substr(colon + 1));
    if (name.size() != 1 || f.size() < 16) return malformed("net/dev", n + 1, "expected an interface and 16 counters");
    std::uint64_t v[16] = {};
    for (std::size_t i = 0; i < 16; ++i)
      if (!number(f[i], v[i])) return malformed("net/dev", n + 1, fmt::format("counter '{}' is not a number", f[i]));
    out.push_back({std::string(name[0]), v[0], v[1], v[2], v[8], v[9], v[10]});
  }
  return out;
}

namespace {

/// Decodes the octal escapes of /proc/mounts ("\040" is a space).
std::string unescape(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto octal = [&](std::size_t k) { return k < s.size() && s[k] >= '0' && s[k] <= '7'; };
    if (s[i] == '\\' && octal(i + 1) && octal(i + 2) && octal(i + 3)) {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

Result<std::vector<Mount>> parse_mounts(std::string_view text) {
  std::vector<Mount> out;
  const auto lines = lines_of(text);
  for (std::size_t n = 0; n < lines.size(); ++n) {
    const auto f = words(lines[n]);
    if (f.empty()) continue;
    if (f.size() < 3) return malformed("mounts", n + 1, "expected device, mount point and type");
    out.push_back({unescape(f[0]), unescape(f[1]), std::string(f[2])});
  }
  return out;
}

bool is_storage_fs(std::string_view t) noexcept {
  // Network file systems are left out: statvfs on a hung server would block the collector.
  static constexpr std::string_view kStorage[] = {"ext2", "ext3", "ext4", "xfs",      "btrfs",   "vfat",    "exfat", "ntfs",    "ntfs3",
                                                  "zfs",  "f2fs", "jfs",  "reiserfs", "overlay", "fuseblk", "hfs",   "hfsplus", "apfs"};
  return std::find(std::begin(kStorage), std::end(kStorage), t) != std::end(kStorage);
}

Result<DiskUsage> statvfs_usage(const Mount& mount) {
  struct statvfs st {};
  if (::statvfs(mount.mount_point.c_str(), &st) != 0)
    return Error{errc::io, fmt::format("statvfs {}: {}", mount.mount_point, std::strerror(errno))};
  DiskUsage d{mount.mount_point, mount.device, mount.fs_type};
  const std::uint64_t unit = st.f_frsize ? st.f_frsize : st.f_bsize;
  d.total = static_cast<std::uint64_t>(st.f_blocks) * unit;
  d.available = static_cast<std::uint64_t>(st.f_bavail) * unit;
  d.used = (static_cast<std::uint64_t>(st.f_blocks) - std::min<std::uint64_t>(st.f_bfree, st.f_blocks)) * unit;
  d.usage = d.used + d.available ? 100.0 * static_cast<double>(d.used) / static_cast<double>(d.used + d.available) : 0.0;
  return d;
}

std::vector<MetricPoint> SystemSample::points() const {
  std::vector<MetricPoint> out;
  auto add = [&](std::string name, double v, std::string labels = {}) { out.push_back({std::move(name), std::move(labels), time, v}); };
  add("cpu_usage", cpu_usage);
  add("memory_usage", memory_usage);
  add("swap_usage", swap_usage);
  add("load1", load1);
  add("load5", load5);
  add("load15", load15);
  add("processes", static_cast<double>(processes));
  add("processes_running", static_cast<double>(processes_running));
  for (const auto& d : disks) add("disk_usage", d.usage, "mount=" + d.mount_point);
  for (const auto& n : network) {
    if (n.rx_bytes_per_s) add("net_rx_bytes_per_s", *n.rx_bytes_per_s, "interface=" + n.interface);
    if (n.tx_bytes_per_s) add("net_tx_bytes_per_s", *n.tx_bytes_per_s, "interface=" + n.interface);
  }
  return out;
}

SystemCollector::SystemCollector(const Clock& clock, SystemCollectorOptions options) : clock_(clock), options_(std::move(options)) {
  if (!options_.disk_usage) options_.disk_usage = statvfs_usage;
}

namespace {

/// Reads root/name and parses it; errc::not_found when it cannot be read, a parse error with the
/// path as its context.
template <class Parse>
auto read_parsed(const std::string& root, std::string_view name, Parse parse) -> decltype(parse(std::string_view{})) {
  const auto path = root + "/" + std::string(name);
  auto text = read_file(path);
  if (!text) return Error{errc::not_found, fmt::format("cannot read {}", path)};
  auto parsed = parse(std::string_view(*text));
  if (!parsed) return with_context(parsed.error(), path);
  return parsed;
}

}  // namespace

Result<SystemSample> SystemCollector::sample() {
  const auto& root = options_.proc_root;
  SystemSample s;
  s.time = clock_.now();

  auto stat = read_parsed(root, "stat", parse_proc_stat);
  if (!stat) return stat.error();
  auto mem = read_parsed(root, "meminfo", parse_meminfo);
  if (!mem) return mem.error();
  auto load = read_parsed(root, "loadavg", parse_loadavg);
  if (!load) return load.error();

  // CPU: busy share of the jiffies since the previous reading (since boot for the first).
  const auto& cpu = stat->cpu;
  s.cpu_since_boot = !last_cpu_;
  const CpuTimes before = last_cpu_.value_or(CpuTimes{});
  const auto total = cpu.total() >= before.total() ? cpu.total() - before.total() : 0;
  const auto idle = cpu.idle_all() >= before.idle_all() ? cpu.idle_all() - before.idle_all() : 0;
  s.cpu_usage = total ? 100.0 * static_cast<double>(total - std::min(idle, total)) / static_cast<double>(total) : 0.0;
  s.cpus = stat->cpus;
  s.processes_running = stat->processes_running;
  s.processes_blocked = stat->processes_blocked;

  s.memory_total = mem->total;
  s.memory_available = mem->available;
  s.memory_usage =
      mem->total ? 100.0 * static_cast<double>(mem->total - std::min(mem->available, mem->total)) / static_cast<double>(mem->total) : 0.0;
  s.swap_usage = mem->swap_total ? 100.0 * static_cast<double>(mem->swap_total - std::min(mem->swap_free, mem->swap_total)) /
                                       static_cast<double>(mem->swap_total)
                                 : 0.0;
  s.load1 = load->load1;
  s.load5 = load->load5;
  s.load15 = load->load15;
  s.processes = load->processes;

  // Network: rates from the previous reading, per interface; a counter that went back (a reset) has none.
  std::vector<NetCounters> net;
  if (auto parsed = read_parsed(root, "net/dev", parse_net_dev); !parsed)
    s.warnings.push_back(parsed.error().message);
  else
    net = std::move(*parsed);
  const double seconds = last_time_ ? std::chrono::duration<double>(s.time - *last_time_).count() : 0.0;
  for (const auto& n : net) {
    if (n.interface == "lo") continue;
    NetworkUsage u{n.interface, n.rx_bytes, n.tx_bytes, n.rx_errors, n.tx_errors};
    if (seconds > 0) {
      for (const auto& p : last_net_) {
        if (p.interface != n.interface) continue;
        if (n.rx_bytes >= p.rx_bytes) u.rx_bytes_per_s = static_cast<double>(n.rx_bytes - p.rx_bytes) / seconds;
        if (n.tx_bytes >= p.tx_bytes) u.tx_bytes_per_s = static_cast<double>(n.tx_bytes - p.tx_bytes) / seconds;
      }
    }
    s.network.push_back(std::move(u));
  }

  // Disks: local storage mounts, each mount point once (the last mount over a point wins, as the
  // kernel shows it) and each device once, at its shortest mount point (bind mounts), measured in
  // mount point order.
  if (auto mounts = read_parsed(root, "mounts", parse_mounts); !mounts) {
    s.warnings.push_back(mounts.error().message);
  } else {
    std::vector<Mount> disks;
    std::set<std::string> points;
    for (auto it = mounts->rbegin(); it != mounts->rend(); ++it)
      if (is_storage_fs(it->fs_type) && points.insert(it->mount_point).second) disks.push_back(std::move(*it));
    std::sort(disks.begin(), disks.end(), [](const Mount& a, const Mount& b) {
      return std::pair(a.device, a.mount_point.size()) < std::pair(b.device, b.mount_point.size());
    });
    disks.erase(std::unique(disks.begin(), disks.end(),
                            [](const Mount& a, const Mount& b) { return a.device.starts_with("/dev/") && a.device == b.device; }),
                disks.end());
    std::sort(disks.begin(), disks.end(), [](const Mount& a, const Mount& b) { return a.mount_point < b.mount_point; });
    for (const auto& m : disks) {
      auto d = options_.disk_usage(m);
      if (!d)
        s.warnings.push_back(d.error().message);
      else if (d->total > 0)  // nothing to fill otherwise
        s.disks.push_back(std::move(*d));
    }
  }

  last_cpu_ = cpu;
  last_time_ = s.time;
  last_net_ = std::move(net);
  return s;
}

}  // namespace automation::metrics
