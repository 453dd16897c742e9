// The /proc parsers on captured files (tests/unit/metrics/proc/a and b, two readings 10 s apart),
// the collector's rates between two readings on the manual clock, its errors, and one sample of
// this machine's real /proc.
#include <automation/metrics/system.hpp>
#include <automation/testing/manual_clock.hpp>

#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <cmath>

#include <filesystem>

using namespace automation;
using namespace automation::metrics;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

const fs::path kProc = fs::path(AUTOMATION_SOURCE_DIR) / "tests/unit/metrics/proc";

std::string slurp(const fs::path& p) { return test::read_file(p.string()); }

/// Copies a captured reading into `root`, replacing what is there.
void install(const fs::path& reading, const fs::path& root) {
  fs::copy(reading, root, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
}

/// Fixed disk figures per mount point, so the test does not depend on this machine's disks.
Result<DiskUsage> fake_disk(const Mount& m) {
  constexpr std::uint64_t kGiB = 1ULL << 30;
  if (m.mount_point == "/") return DiskUsage{m.mount_point, m.device, m.fs_type, 100 * kGiB, 91 * kGiB, 9 * kGiB, 91.0};
  if (m.mount_point == "/mnt/my data") return DiskUsage{m.mount_point, m.device, m.fs_type, 10 * kGiB, 5 * kGiB, 5 * kGiB, 50.0};
  return Error{errc::io, "statvfs " + m.mount_point + ": No such file or directory"};
}

const MetricPoint* point(const std::vector<MetricPoint>& all, std::string_view name, std::string_view labels = {}) {
  for (const auto& p : all)
    if (p.name == name && p.labels == labels) return &p;
  return nullptr;
}

}  // namespace

TEST_CASE("system metrics: the /proc parsers read captured files", "[metrics]") {
  auto stat = parse_proc_stat(slurp(kProc / "a/stat"));
  REQUIRE(stat);
  CHECK(stat->cpu.total() == 10000);
  CHECK(stat->cpu.idle_all() == 8500);
  CHECK(stat->cpus == 2);
  CHECK(stat->processes_running == 2);
  CHECK(stat->processes_blocked == 1);

  auto mem = parse_meminfo(slurp(kProc / "a/meminfo"));
  REQUIRE(mem);
  CHECK(mem->total == 1000000ULL * 1024);
  CHECK(mem->available == 250000ULL * 1024);
  CHECK(mem->swap_free == 150000ULL * 1024);
  // Before Linux 3.14 there is no MemAvailable: free + buffers + cached.
  auto old = parse_meminfo("MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 20 kB\nCached: 300 kB\n");
  REQUIRE(old);
  CHECK(old->available == 420ULL * 1024);

  auto load = parse_loadavg(slurp(kProc / "a/loadavg"));
  REQUIRE(load);
  CHECK(load->load1 == 0.52);
  CHECK(load->load15 == 0.59);
  CHECK(load->running == 2);
  CHECK(load->processes == 1183);

  auto net = parse_net_dev(slurp(kProc / "a/net/dev"));
  REQUIRE(net);
  REQUIRE(net->size() == 2);
  CHECK((*net)[1].interface == "eth0");
  CHECK((*net)[1].rx_bytes == 1000000);
  CHECK((*net)[1].rx_errors == 3);
  CHECK((*net)[1].tx_bytes == 500000);
  CHECK((*net)[1].tx_packets == 761);

  auto mounts = parse_mounts(slurp(kProc / "a/mounts"));
  REQUIRE(mounts);
  REQUIRE(mounts->size() == 8);
  CHECK((*mounts)[3].mount_point == "/mnt/my data");  // \040 decoded
  CHECK(is_storage_fs("ext4"));
  CHECK(is_storage_fs("overlay"));
  CHECK_FALSE(is_storage_fs("tmpfs"));
  CHECK_FALSE(is_storage_fs("cgroup2"));
  CHECK_FALSE(is_storage_fs("nfs4"));  // a hung server would block the collector
}

TEST_CASE("system metrics: malformed files are refused, naming the file and line", "[metrics]") {
  auto stat = parse_proc_stat("intr 1 2\ncpu  10 x 3 4\n");
  REQUIRE_FALSE(stat);
  CHECK_THAT(stat.error().message, Contains("stat line 2") && Contains("'x' is not a number"));
  CHECK_THAT(parse_proc_stat("intr 1\n").error().message, Contains("no cpu line"));
  CHECK_THAT(parse_meminfo("MemFree: 10 kB\n").error().message, Contains("no MemTotal"));
  CHECK_THAT(parse_meminfo("MemTotal: lots kB\n").error().message, Contains("meminfo line 1"));
  CHECK_THAT(parse_loadavg("0.1 0.2\n").error().message, Contains("fewer than 4 fields"));
  CHECK_THAT(parse_loadavg("0.1 0.2 zero 1/2 3\n").error().message, Contains("not numbers"));
  CHECK_THAT(parse_net_dev("h\nh\n  eth0: 1 2 3\n").error().message, Contains("net/dev line 3"));
  CHECK_THAT(parse_mounts("/dev/sda1 /\n").error().message, Contains("mounts line 1"));
}

TEST_CASE("system metrics: the collector turns two readings into CPU usage and network rates", "[metrics]") {
  test::TempDir dir;
  const fs::path root = dir.file("proc");
  fs::create_directories(root);
  install(kProc / "a", root);
  testing::ManualClock clock(parse_timestamp("2026-11-23T12:00:00Z").value());
  SystemCollector collector(clock, {.proc_root = root.string(), .disk_usage = fake_disk});

  auto first = collector.sample();
  REQUIRE(first);
  CHECK(first->cpu_since_boot);
  CHECK(first->cpu_usage == Approx(15.0));  // (10000 - 8500) / 10000 since boot
  CHECK(first->memory_usage == Approx(75.0));
  CHECK(first->swap_usage == Approx(25.0));
  CHECK(first->cpus == 2);
  CHECK(first->processes == 1183);
  REQUIRE(first->network.size() == 1);  // lo is left out
  CHECK_FALSE(first->network[0].rx_bytes_per_s);
  // The storage mounts, each once, sorted; tmpfs, proc and cgroup2 are not disks, and the bind
  // mount of /dev/sda1 on /var/lib/docker is the same disk as / (never measured: no warning).
  REQUIRE(first->disks.size() == 2);
  CHECK(first->disks[0].mount_point == "/");
  CHECK(first->disks[0].usage == 91.0);
  CHECK(first->disks[1].mount_point == "/mnt/my data");
  // A disk that cannot be measured is a warning, not a failure.
  REQUIRE(first->warnings.size() == 1);
  CHECK_THAT(first->warnings[0], Contains("/broken"));

  clock.advance(std::chrono::seconds(10));
  install(kProc / "b", root);
  auto second = collector.sample();
  REQUIRE(second);
  CHECK_FALSE(second->cpu_since_boot);
  CHECK(second->cpu_usage == Approx(100.0 * 800 / 1500));  // 1500 jiffies, 700 of them idle
  CHECK(second->memory_usage == Approx(90.0));
  CHECK(second->load1 == 3.10);
  CHECK(second->processes_running == 2);
  REQUIRE(second->network[0].rx_bytes_per_s);
  CHECK(*second->network[0].rx_bytes_per_s == Approx(200000.0));  // 2,000,000 bytes in 10 s
  CHECK(*second->network[0].tx_bytes_per_s == Approx(10000.0));

  const auto points = second->points();
  REQUIRE(point(points, "cpu_usage"));
  CHECK(point(points, "cpu_usage")->value == Approx(53.333).epsilon(1e-4));
  CHECK(point(points, "cpu_usage")->time == clock.now());
  REQUIRE(point(points, "disk_usage", "mount=/"));
  CHECK(point(points, "disk_usage", "mount=/")->value == 91.0);
  REQUIRE(point(points, "net_rx_bytes_per_s", "interface=eth0"));
  CHECK(point(points, "net_rx_bytes_per_s", "interface=eth0")->value == Approx(200000.0));
  CHECK(point(points, "memory_usage")->value == Approx(90.0));

  // A missing net/dev is a warning; a missing stat file is an error.
  fs::remove(root / "net/dev");
  auto third = collector.sample();
  REQUIRE(third);
  CHECK(third->network.empty());
  REQUIRE(third->warnings.size() == 2);
  CHECK_THAT(third->warnings[0], Contains("net/dev"));
  fs::remove(root / "stat");
  auto none = collector.sample();
  REQUIRE_FALSE(none);
  CHECK(none.error().is(errc::not_found));
  CHECK_THAT(none.error().message, Contains("stat"));
}

TEST_CASE("system metrics: this machine's /proc gives figures in range", "[metrics]") {
  testing::ManualClock clock(parse_timestamp("2026-11-23T12:00:00Z").value());
  SystemCollector collector(clock);
  auto s = collector.sample();
  REQUIRE(s);
  CHECK(s->cpus >= 1);
  CHECK(s->cpu_usage >= 0);
  CHECK(s->cpu_usage <= 100);
  CHECK(s->memory_total > 0);
  CHECK(s->memory_usage > 0);
  CHECK(s->memory_usage < 100);
  CHECK(s->processes > 0);
}

TEST_CASE("system metrics: statvfs_usage agrees with std::filesystem::space and df's formula", "[metrics]") {
  auto d = statvfs_usage({"rootfs", "/", "ext4"});
  REQUIRE(d);
  const auto space = fs::space("/");
  CHECK(d->mount_point == "/");
  CHECK(d->total == space.capacity);
  // Free space can move between the two calls on a busy disk.
  CHECK(std::abs(static_cast<double>(d->available) - static_cast<double>(space.available)) < 64.0 * 1024 * 1024);
  CHECK(std::abs(static_cast<double>(d->used) - static_cast<double>(space.capacity - space.free)) < 64.0 * 1024 * 1024);
  // df: used over what a user could have (used + available), so reserved blocks count as neither.
  CHECK(d->usage == Approx(100.0 * static_cast<double>(d->used) / static_cast<double>(d->used + d->available)));
  auto missing = statvfs_usage({"x", "/no/such/mount", "ext4"});
  REQUIRE_FALSE(missing);
  CHECK_THAT(missing.error().message, Contains("/no/such/mount"));
}
