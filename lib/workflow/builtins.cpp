#include <automation/core/json.hpp>
#include <automation/core/time.hpp>
#include <automation/forecast/metric_forecaster.hpp>
#include <automation/metrics/aggregator.hpp>
#include <automation/workflow/builtins.hpp>
#include <detail/names.hpp>
#include <detail/sqlite.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <sys/stat.h>
#include <algorithm>
#include <charconv>
#include <filesystem>
#include <memory>

namespace automation::workflow {

namespace fs = std::filesystem;
namespace sq = automation::detail::sqlite;

namespace {

// The seed catalog. Commands of templates come from parameters; a shell is used only where the
// definition says "shell" (the parameter is a command line the operator chose).
constexpr std::string_view kCatalog[] = {
    R"json({"name":"auto_backup","description":"Online backup of the store, checked, keeping the newest copies (seed: every 6 hours)",
  "params":{"dir":{"default":"var/backups","description":"where the copies go"},"keep":{"default":"7","description":"copies kept"}},
  "steps":[{"id":"backup","action":{"name":"backup","with":{"dir":"${{ params.dir }}","keep":"${{ params.keep }}"}},
            "outputs":["path","bytes","removed"],"retry":{"max_attempts":3,"initial_delay":"5s"}}]})json",
    R"json({"name":"auto_optimize","description":"Checkpoint, ANALYZE and VACUUM the store and prune expired history (seed: daily at 02:00)",
  "params":{"task_retention":{"default":"90d"},"run_retention":{"default":"30d"},"vacuum":{"default":"true"}},
  "steps":[{"id":"optimize","action":{"name":"db_maintenance","with":{"task_retention":"${{ params.task_retention }}",
            "run_retention":"${{ params.run_retention }}","vacuum":"${{ params.vacuum }}"}},
            "outputs":["bytes_before","bytes_after","tasks_pruned","runs_pruned","events_pruned","deliveries_pruned","points_pruned","alerts_pruned","forecasts_pruned","scaling_pruned","healing_pruned","scans_pruned"]}]})json",
    R"json({"name":"database-maintenance","description":"Back up the store, then optimize it and prune expired history",
  "params":{"dir":{"default":"var/backups"},"keep":{"default":"7"},"task_retention":{"default":"90d"},"run_retention":{"default":"30d"}},
  "steps":[{"id":"backup","action":{"name":"backup","with":{"dir":"${{ params.dir }}","keep":"${{ params.keep }}"}},"outputs":["path"]},
           {"id":"optimize","needs":"backup","action":{"name":"db_maintenance","with":{"task_retention":"${{ params.task_retention }}",
            "run_retention":"${{ params.run_retention }}","vacuum":"true"}},"outputs":["bytes_before","bytes_after","tasks_pruned","runs_pruned","events_pruned","deliveries_pruned","points_pruned","alerts_pruned","forecasts_pruned","scaling_pruned","healing_pruned","scans_pruned"]}]})json",
    R"json({"name":"cleanup-resources","description":"Delete files older than N days under the configured directories and report the bytes freed",
  "params":{"dirs":{"default":"var/tmp,var/logs","description":"comma-separated directories"},"older_than":{"default":"7d"},
            "dry_run":{"default":"false"}},
  "steps":[{"id":"cleanup","action":{"name":"cleanup","with":{"dirs":"${{ params.dirs }}","older_than":"${{ params.older_than }}",
            "dry_run":"${{ params.dry_run }}"}},"outputs":["files","bytes_freed"]}]})json",
    R"json({"name":"test-and-build","description":"Template: run the tests, then the build, in the source directory",
  "params":{"source_dir":{"default":"."},"test_command":{"default":"make test"},"build_command":{"default":"make"}},
  "steps":[{"id":"test","shell":"${{ params.test_command }}","working_directory":"${{ params.source_dir }}","timeout":"1h"},
           {"id":"build","shell":"${{ params.build_command }}","working_directory":"${{ params.source_dir }}","needs":"test","timeout":"1h"}]})json",
    R"json({"name":"deploy-production","description":"Template: build, deploy, verify; roll back the deploy when a later step fails",
  "params":{"version":{"default":"latest"},"build_command":{"default":"make"},
            "deploy_command":{"description":"deploys version $VERSION; required"},
            "verify_command":{"default":"true"},"rollback_command":{"default":"echo no rollback command configured >&2; exit 1"}},
  "max_concurrent_runs":1,"concurrency":{"key":"deploy-production","on_conflict":"queue"},"deadline":"2h","on_interrupt":"fail",
  "steps":[{"id":"build","shell":"${{ params.build_command }}","env":{"VERSION":"${{ params.version }}"},"timeout":"1h"},
           {"id":"deploy","shell":"${{ params.deploy_command }}","env":{"VERSION":"${{ params.version }}"},"needs":"build","timeout":"30m",
            "compensate":{"shell":"${{ params.rollback_command }}"}},
           {"id":"verify","shell":"${{ params.verify_command }}","needs":"deploy","timeout":"10m",
            "retry":{"max_attempts":3,"initial_delay":"10s"}}]})json",
    R"json({"name":"setup-monitoring","description":"Template: install or refresh monitoring with the configured command",
  "params":{"command":{"default":"echo monitoring setup command not configured"}},
  "steps":[{"id":"setup","shell":"${{ params.command }}","timeout":"15m"}]})json",
    R"json({"name":"health_check","description":"Probe a health URL, by default the daemon's own /healthz (seed: every 5 minutes)",
  "params":{"url":{"default":"http://127.0.0.1:8080/healthz"}},
  "steps":[{"id":"probe","http":{"url":"${{ params.url }}"},"timeout":"10s"}]})json",
    R"json({"name":"auto_scale_check","description":"Template: run an external scaling check command (seed: every 10 minutes; the daemon's scaler decides on its own)",
  "params":{"command":{"default":"true"}},
  "steps":[{"id":"check","shell":"${{ params.command }}","timeout":"5m"}]})json",
    R"json({"name":"on_user_register","description":"Template run on the user.registered event; the payload is in params.payload",
  "params":{"payload":{"default":"{}"},"command":{"default":"echo user registered: $PAYLOAD"}},
  "steps":[{"id":"handle","shell":"${{ params.command }}","env":{"PAYLOAD":"${{ params.payload }}"},"timeout":"5m"}]})json",
    R"json({"name":"on_content_publish","description":"Template run on the content.published event; the payload is in params.payload",
  "params":{"payload":{"default":"{}"},"command":{"default":"echo content published: $PAYLOAD"}},
  "steps":[{"id":"handle","shell":"${{ params.command }}","env":{"PAYLOAD":"${{ params.payload }}"},"timeout":"5m"}]})json",
    R"json({"name":"daily-metrics-aggregation","description":"Roll up yesterday's usage and revenue in the configured zone (seed: daily at 00:00)",
  "params":{"period":{"default":"daily"},"date":{"default":""},"force":{"default":"false"}},
  "steps":[{"id":"aggregate","action":{"name":"aggregate","with":{"period":"${{ params.period }}","date":"${{ params.date }}",
            "force":"${{ params.force }}"}},"outputs":["period","events","unique_users","revenue","why"],
            "retry":{"max_attempts":3,"backoff":"exponential","initial_delay":"1m"},"timeout":"30m"}]})json",
    R"json({"name":"weekly-report-generation","description":"Last week's report, delivered to the configured targets (seed: Mondays at 09:00); a delivery given up fails the run",
  "params":{"period":{"default":"weekly"},"date":{"default":""}},
  "steps":[{"id":"report","action":{"name":"report","with":{"period":"${{ params.period }}","date":"${{ params.date }}"}},
            "outputs":["report","deliveries","delivered","pending","failed"],
            "retry":{"max_attempts":3,"backoff":"exponential","initial_delay":"1m"},"timeout":"30m"}]})json",
    R"json({"name":"forecast-update","description":"Forecast revenue, users and usage for the next 30 days and store them (seed: daily at 06:00)",
  "params":{"metrics":{"default":"revenue,users,usage"},"horizon":{"default":"30"}},
  "steps":[{"id":"forecast","action":{"name":"forecast_metrics","with":{"metrics":"${{ params.metrics }}","horizon":"${{ params.horizon }}"}},
            "outputs":["forecasts","skipped"],"timeout":"30m"}]})json",
    R"json({"name":"hourly-resource-check","description":"The last hour of stored CPU, memory and disk samples against the thresholds; emits resource.high when one went above (seed: hourly)",
  "params":{"window":{"default":"1h"}},
  "steps":[{"id":"check","action":{"name":"resource_check","with":{"window":"${{ params.window }}"}},
            "outputs":["samples","cpu_mean","cpu_max","memory_max","disk_max","above"],"timeout":"5m"}]})json",
    R"json({"name":"delivery-retry","description":"Attempt the report deliveries that are due again (seed: every 10 minutes)",
  "steps":[{"id":"retry","action":{"name":"retry_deliveries"},"outputs":["attempted","delivered","pending","failed"],"timeout":"30m"}]})json",
};

std::string arg(const StepContext& c, const std::string& key, std::string fallback) {
  auto it = c.with.find(key);
  return it == c.with.end() || it->second.empty() ? fallback : it->second;
}

Result<bool> flag(const StepContext& c, const std::string& key, bool fallback) {
  auto v = arg(c, key, fallback ? "true" : "false");
  if (v == "true" || v == "1" || v == "yes") return true;
  if (v == "false" || v == "0" || v == "no") return false;
  return fail(errc::invalid_argument, fmt::format("{}: \"{}\" must be true or false, got \"{}\"", c.step, key, v));
}

Result<std::string> sqlite_path(storage::Store& store, std::string_view action) {
  if (store.backend() != "sqlite")
    return fail(errc::config, fmt::format("{} needs an SQLite store; this one is {}", action, store.backend()));
  auto info = store.info();
  if (!info) return info.error();
  return info->location;
}

std::int64_t file_bytes(const std::string& path) {
  std::int64_t total = 0;
  for (const char* suffix : {"", "-wal"}) {
    std::error_code ec;
    const auto n = fs::file_size(path + suffix, ec);
    if (!ec) total += static_cast<std::int64_t>(n);
  }
  return total;
}

Result<void> backup(storage::Store& store, StepContext& c) {
  auto src_path = sqlite_path(store, "backup");
  if (!src_path) return src_path.error();
  const std::string dir = arg(c, "dir", "var/backups");
  const std::string keep_text = arg(c, "keep", "7");
  int keep = 0;
  try {
    keep = std::stoi(keep_text);
  } catch (...) {
    keep = 0;
  }
  if (keep < 1)
    return fail(errc::invalid_argument, fmt::format("backup: \"keep\" must be a whole number of at least 1, got \"{}\"", keep_text));
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return fail(errc::io, fmt::format("backup: cannot create {}: {}", dir, ec.message()));
  const auto stamp = format_timestamp(c.clock->now());
  std::string name = "automation-";
  for (char ch : stamp)
    if (std::isalnum(static_cast<unsigned char>(ch))) name.push_back(ch);
  const std::string dest_path = (fs::path(dir) / (name + ".db")).string();
  const std::string part = dest_path + ".part";
  fs::remove(part, ec);
  {
    sq::Connection src, dst;
    if (auto r = src.open(*src_path, SQLITE_OPEN_READONLY); !r) return with_context(r.error(), "backup: open the store");
    sqlite3_busy_timeout(src.get(), 5000);
    if (auto r = dst.open(part, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE); !r) return with_context(r.error(), "backup: create the copy");
    sqlite3_backup* b = sqlite3_backup_init(dst.get(), "main", src.get(), "main");
    if (!b) return sq::error(dst.get(), sqlite3_errcode(dst.get()), "backup: start");
    const int step = sqlite3_backup_step(b, -1);
    const int fin = sqlite3_backup_finish(b);
    if (step != SQLITE_DONE) return sq::error(dst.get(), step, "backup: copy pages");
    if (fin != SQLITE_OK) return sq::error(dst.get(), fin, "backup: finish");
    auto check = dst.scalar_text("PRAGMA integrity_check", "check the copy");
    if (!check) return check.error();
    if (*check != "ok") return fail(errc::corrupt, fmt::format("backup: the copy failed its integrity check: {}", *check));
  }
  fs::rename(part, dest_path, ec);
  if (ec) return fail(errc::io, fmt::format("backup: cannot move the copy into place: {}", ec.message()));
  // Keep the newest `keep` copies (names sort by time).
  std::vector<fs::path> copies;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file() && e.path().filename().string().starts_with("automation-") && e.path().extension() == ".db")
      copies.push_back(e.path());
  std::sort(copies.begin(), copies.end());
  int removed = 0;
  while (copies.size() > static_cast<std::size_t>(keep)) {
    fs::remove(copies.front(), ec);
    if (!ec) ++removed;
    copies.erase(copies.begin());
  }
  const auto bytes = static_cast<std::int64_t>(fs::file_size(dest_path, ec));
  c.set_output("path", dest_path);
  c.set_output("bytes", std::to_string(bytes));
  c.set_output("removed", std::to_string(removed));
  c.log(fmt::format("backed up {} to {} ({} bytes, integrity ok); removed {} old cop{}", *src_path, dest_path, bytes, removed,
                    removed == 1 ? "y" : "ies"));
  return {};
}

Result<void> maintenance(storage::Store& store, StepContext& c) {
  auto path = sqlite_path(store, "db_maintenance");
  if (!path) return path.error();
  auto task_ret = parse_duration(arg(c, "task_retention", "90d"));
  if (!task_ret) return with_context(task_ret.error(), "db_maintenance: task_retention");
  auto run_ret = parse_duration(arg(c, "run_retention", "30d"));
  if (!run_ret) return with_context(run_ret.error(), "db_maintenance: run_retention");
  auto vacuum = flag(c, "vacuum", true);
  if (!vacuum) return vacuum.error();
  const TimePoint now = c.clock->now();
  auto tasks = store.prune_tasks(now - *task_ret);
  if (!tasks) return with_context(tasks.error(), "db_maintenance: prune task history");
  auto runs = store.prune_runs(now - *run_ret);
  if (!runs) return with_context(runs.error(), "db_maintenance: prune workflow runs");
  auto events = store.prune_events(now - *run_ret);
  if (!events) return with_context(events.error(), "db_maintenance: prune events");
  auto deliveries = store.prune_deliveries(now - *run_ret);  // finished ones, with their stored bodies
  if (!deliveries) return with_context(deliveries.error(), "db_maintenance: prune deliveries");
  auto points = store.prune_metric_points(now - *run_ret);
  if (!points) return with_context(points.error(), "db_maintenance: prune metric points");
  auto alerts = store.prune_alerts(now - *run_ret);  // resolved ones
  if (!alerts) return with_context(alerts.error(), "db_maintenance: prune alerts");
  // Forecasts are small and their accuracy is judged against actuals that arrive over the horizon,
  // so they are kept as long as task history.
  auto forecasts = store.prune_forecasts(now - *task_ret);
  if (!forecasts) return with_context(forecasts.error(), "db_maintenance: prune forecasts");
  auto scaling = store.prune_scaling(now - *run_ret);  // each resource's newest thresholds record stays
  if (!scaling) return with_context(scaling.error(), "db_maintenance: prune scaling records");
  auto healing = store.prune_healing(now - *run_ret);
  if (!healing) return with_context(healing.error(), "db_maintenance: prune healing records");
  auto scans = store.prune_scans(now - *run_ret);
  if (!scans) return with_context(scans.error(), "db_maintenance: prune discovery scans");
  const auto before = file_bytes(*path);
  sq::Connection db;
  if (auto r = db.open(*path, SQLITE_OPEN_READWRITE); !r) return with_context(r.error(), "db_maintenance: open the store");
  sqlite3_busy_timeout(db.get(), 10000);
  if (auto r = db.exec("PRAGMA wal_checkpoint(TRUNCATE)", "checkpoint the WAL"); !r) return r.error();
  if (auto r = db.exec("ANALYZE", "ANALYZE"); !r) return r.error();
  if (*vacuum)
    if (auto r = db.exec("VACUUM", "VACUUM"); !r) return r.error();
  if (auto r = db.exec("PRAGMA wal_checkpoint(TRUNCATE)", "checkpoint the WAL"); !r) return r.error();
  const auto after = file_bytes(*path);
  c.set_output("bytes_before", std::to_string(before));
  c.set_output("bytes_after", std::to_string(after));
  c.set_output("tasks_pruned", std::to_string(*tasks));
  c.set_output("runs_pruned", std::to_string(*runs));
  c.set_output("events_pruned", std::to_string(*events));
  c.set_output("deliveries_pruned", std::to_string(*deliveries));
  c.set_output("points_pruned", std::to_string(*points));
  c.set_output("alerts_pruned", std::to_string(*alerts));
  c.set_output("forecasts_pruned", std::to_string(*forecasts));
  c.set_output("scaling_pruned", std::to_string(*scaling));
  c.set_output("healing_pruned", std::to_string(*healing));
  c.set_output("scans_pruned", std::to_string(*scans));
  c.log(fmt::format(
      "pruned {} task records, {} runs, {} events, {} deliveries, {} metric points, {} alerts, {} forecasts, {} scaling and {} healing "
      "records; checkpoint, ANALYZE{}: {} -> {} bytes",
      *tasks, *runs, *events, *deliveries, *points, *alerts, *forecasts, *scaling, *healing, *vacuum ? ", VACUUM" : "", before, after));
  return {};
}

Result<void> cleanup(StepContext& c) {
  const std::string dirs = arg(c, "dirs", "");
  if (dirs.empty()) return fail(errc::invalid_argument, "cleanup: \"dirs\" names no directory");
  auto age = parse_duration(arg(c, "older_than", "7d"));
  if (!age) return with_context(age.error(), "cleanup: older_than");
  auto dry = flag(c, "dry_run", false);
  if (!dry) return dry.error();
  const auto cut = to_epoch_ms(c.clock->now() - *age);
  std::int64_t files = 0, bytes = 0;
  std::size_t start = 0;
  while (start <= dirs.size()) {
    const auto end = std::min(dirs.find(',', start), dirs.size());
    const std::string dir(detail::trim(std::string_view(dirs).substr(start, end - start)));
    start = end + 1;
    if (dir.empty()) continue;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      c.log(fmt::format("{}: not a directory; skipped", dir));
      continue;
    }
    for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      struct stat st {};
      if (::lstat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      const std::int64_t mtime_ms = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000;
      if (mtime_ms >= cut) continue;
      if (!*dry) {
        std::error_code rec;
        if (!fs::remove(it->path(), rec) || rec) {
          c.log(fmt::format("cannot delete {}: {}", it->path().string(), rec.message()));
          continue;
        }
      }
      ++files;
      bytes += st.st_size;
      c.log(fmt::format("{}{} ({} bytes)", *dry ? "would delete " : "deleted ", it->path().string(), st.st_size));
    }
  }
  c.set_output("files", std::to_string(files));
  c.set_output("bytes_freed", std::to_string(*dry ? 0 : bytes));
  c.log(fmt::format("{} {} files, {} bytes", *dry ? "would delete" : "deleted", files, bytes));
  return {};
}

// The period an action names: `period` (daily, weekly or monthly) containing `date`, or the last
// complete one (yesterday, last week, last month) in the zone.
Result<metrics::Period> period_arg(const StepContext& c, const TimeZone& zone, std::string_view fallback) {
  const auto kind = arg(c, "period", std::string(fallback));
  const auto g = kind == "daily"     ? std::optional(metrics::Granularity::day)
                 : kind == "weekly"  ? std::optional(metrics::Granularity::week)
                 : kind == "monthly" ? std::optional(metrics::Granularity::month)
                                     : std::nullopt;
  if (!g) return fail(errc::invalid_argument, fmt::format("{}: period must be daily, weekly or monthly, got \"{}\"", c.step, kind));
  const auto date = arg(c, "date", "");
  if (date.empty()) return metrics::period_of(*g, zone.local_date(c.clock->now())).previous();
  auto d = metrics::parse_date(date);
  if (!d) return with_context(d.error(), fmt::format("{}: date", c.step));
  return metrics::period_of(*g, *d);
}

Result<void> aggregate_action(storage::Store& store, const BuiltinSettings& s, StepContext& c) {
  auto period = period_arg(c, s.time_zone, "daily");
  if (!period) return period.error();
  auto force = flag(c, "force", false);
  if (!force) return force.error();
  metrics::MetricsAggregator agg(store, *c.clock, {.time_zone = s.time_zone});
  auto r = agg.aggregate(*period, *force);
  if (!r) return with_context(r.error(), fmt::format("aggregate {}", period->key()));
  c.set_output("period", period->key());
  c.set_output("events", std::to_string(r->usage.events));
  c.set_output("unique_users", std::to_string(r->usage.unique_users));
  c.set_output("revenue", fmt::format("{:.2f}", r->revenue.total_revenue));
  c.set_output("why", r->why);
  c.log(fmt::format("{} in {}: {} events, {} users, revenue {:.2f} ({})", period->key(), s.time_zone.name(), r->usage.events,
                    r->usage.unique_users, r->revenue.total_revenue, r->why));
  return {};
}

void delivery_outputs(StepContext& c, const std::vector<metrics::DeliveryOutcome>& out) {
  int delivered = 0, pending = 0, failed = 0;
  for (const auto& o : out) {
    (o.state == "delivered" ? delivered : o.state == "pending" ? pending : failed) += 1;
    c.log(fmt::format("#{} {} {}: {}", o.id, o.target, o.state, o.detail));
  }
  c.set_output("delivered", std::to_string(delivered));
  c.set_output("pending", std::to_string(pending));
  c.set_output("failed", std::to_string(failed));
}

Result<void> report_action(storage::Store& store, const BuiltinSettings& s, StepContext& c) {
  auto period = period_arg(c, s.time_zone, "weekly");
  if (!period) return period.error();
  if (!s.reports_problem.empty()) return fail(errc::config, fmt::format("report: {}", s.reports_problem));
  if (s.reports.targets.empty()) {  // nowhere to send it: nothing to do, and nothing wrong
    c.set_output("report", period->key());
    c.set_output("deliveries", "0");
    c.log("no delivery targets are configured (reports.directory, reports.webhook_url, reports.email_to): nothing sent");
    return {};
  }
  metrics::MetricsAggregator agg(store, *c.clock, {.time_zone = s.time_zone});
  auto rep = agg.report(*period);
  if (!rep) return with_context(rep.error(), fmt::format("report {}", period->key()));
  metrics::ReportDeliverer deliverer(store, *c.clock, s.reports);
  auto out = deliverer.deliver(*rep, fmt::format("workflow {} run {}", c.workflow, c.run_id));
  if (!out) return with_context(out.error(), fmt::format("delivering {}", rep->title()));
  c.set_output("report", rep->key());
  c.set_output("deliveries", std::to_string(out->size()));
  delivery_outputs(c, *out);
  // A delivery left pending is stored and retried (delivery-retry); one that was given up is a
  // failure of this run (running it again would not resend the same report).
  for (const auto& o : *out)
    if (o.state == "failed")
      return fail(errc::invalid_argument, fmt::format("report {}: the delivery to {} was given up: {}", rep->key(), o.target, o.detail));
  return {};
}

Result<void> retry_deliveries_action(storage::Store& store, const BuiltinSettings& s, StepContext& c) {
  if (!s.reports_problem.empty()) return fail(errc::config, fmt::format("retry_deliveries: {}", s.reports_problem));
  metrics::ReportDeliverer deliverer(store, *c.clock, s.reports);
  auto out = deliverer.retry_due();
  if (!out) return out.error();
  c.set_output("attempted", std::to_string(out->size()));
  delivery_outputs(c, *out);
  return {};
}

Result<void> forecast_action(storage::Store& store, const BuiltinSettings& s, StepContext& c) {
  const auto names = arg(c, "metrics", "revenue,users,usage");
  const auto horizon_text = arg(c, "horizon", "30");
  std::size_t horizon = 0;
  const auto [end, ec] = std::from_chars(horizon_text.data(), horizon_text.data() + horizon_text.size(), horizon);
  if (ec != std::errc{} || end != horizon_text.data() + horizon_text.size() || horizon < 1 || horizon > 10000)
    return fail(errc::invalid_argument,
                fmt::format("{}: horizon must be a whole number from 1 to 10000, got \"{}\"", c.step, horizon_text));
  forecast::Forecaster forecaster(*c.clock, s.forecaster);
  forecast::MetricForecaster mf(store, *c.clock, forecaster, {.time_zone = s.time_zone});
  std::vector<std::string> made, skipped;
  for (std::size_t start = 0; start <= names.size();) {
    const auto comma = std::min(names.find(',', start), names.size());
    const auto name = std::string(automation::detail::trim(std::string_view(names).substr(start, comma - start)));
    start = comma + 1;
    if (name.empty()) continue;
    // Once a day: a second fire (a catch-up, a manual run) does not store the same forecast again.
    auto newest = store.list_forecasts({.metric = name, .time_zone = s.time_zone.name(), .limit = 1});
    if (!newest) return newest.error();
    if (!newest->empty() && newest->front().horizon == static_cast<std::int32_t>(horizon) &&
        s.time_zone.local_date(newest->front().created) == s.time_zone.local_date(c.clock->now())) {
      skipped.push_back(fmt::format("{}: forecast {} was made today", name, newest->front().id));
      c.log(fmt::format("skipped {}", skipped.back()));
      continue;
    }
    forecast::Options o;
    o.horizon = horizon;
    auto f = mf.forecast(name, o, fmt::format("workflow {} run {}", c.workflow, c.run_id));
    if (!f) {
      // A metric without data yet is skipped; anything else (a store error) fails the step.
      if (f.error().code != errc::invalid_argument) return f.error();
      skipped.push_back(fmt::format("{}: {}", name, f.error().message));
      c.log(fmt::format("skipped {}", skipped.back()));
      continue;
    }
    made.push_back(fmt::format("{}:{}", name, f->id));
    c.log(fmt::format("{}: forecast {} by {} ({}), {} days from {}", name, f->id, forecast::to_string(f->forecast.method),
                      f->forecast.backend, f->days.size(), metrics::format_date(f->days.front())));
    for (const auto& i : f->insights) c.log("  " + i.text);
  }
  c.set_output("forecasts", fmt::format("{}", fmt::join(made, ",")));
  c.set_output("skipped", fmt::format("{}", fmt::join(skipped, "; ")));
  return {};
}

// The stored system samples of the last `window` (the collector's, every alerts.interval) against
// the thresholds: the mean and the peak of each, which went above, and a resource.high event then.
Result<void> resource_check_action(storage::Store& store, const BuiltinSettings& s, StepContext& c) {
  auto window = parse_duration(arg(c, "window", "1h"));
  if (!window) return with_context(window.error(), "resource_check: window");
  const auto now = c.clock->now();
  const auto window_text = format_duration(*window);
  struct Check {
    const char* metric;
    double limit;
    const char* mean_output;  // nullptr: none
    const char* max_output;
  };
  const Check checks[] = {{"cpu_usage", s.cpu_high, "cpu_mean", "cpu_max"},
                          {"memory_usage", s.memory_high, nullptr, "memory_max"},
                          {"disk_usage", s.disk_high, nullptr, "disk_max"}};
  std::vector<std::string> above;
  boost::json::array peaks;
  std::size_t samples = 0;
  for (const auto& check : checks) {
    storage::MetricQuery q;
    q.name = check.metric;
    q.since = now - *window;
    q.until = now + std::chrono::milliseconds(1);
    auto points = store.query_metric_points(q);
    if (!points) return with_context(points.error(), fmt::format("resource_check: reading {}", check.metric));
    samples += points->size();
    // One figure per series (a disk per mount).
    struct Series {
      double sum = 0, max = 0;
      std::size_t n = 0;
    };
    std::map<std::string, Series> series;
    for (const auto& p : *points) {
      auto& x = series[p.labels];
      x.max = x.n == 0 ? p.value : std::max(x.max, p.value);
      x.sum += p.value;
      ++x.n;
    }
    double peak = 0, mean_of_first = 0;
    for (const auto& [labels, x] : series) {
      const auto name = labels.empty() ? std::string(check.metric) : fmt::format("{}{{{}}}", check.metric, labels);
      const double mean = x.sum / static_cast<double>(x.n);
      c.log(fmt::format("{}: mean {:.1f} %, peak {:.1f} % over {} samples (limit {:.0f} %)", name, mean, x.max, x.n, check.limit));
      if (x.max > check.limit) {
        above.push_back(name);
        peaks.push_back(boost::json::object{{"series", name}, {"peak", x.max}, {"limit", check.limit}});
      }
      if (peak == 0) mean_of_first = mean;
      peak = std::max(peak, x.max);
    }
    if (check.mean_output) c.set_output(check.mean_output, series.empty() ? "" : fmt::format("{:.1f}", mean_of_first));
    c.set_output(check.max_output, series.empty() ? "" : fmt::format("{:.1f}", peak));
  }
  c.set_output("samples", std::to_string(samples));
  c.set_output("above", fmt::format("{}", fmt::join(above, ",")));
  if (samples == 0) {
    c.log(
        fmt::format("no CPU, memory or disk samples stored in the last {}: is the collector running (autoctl serve, or "
                    "autoctl metrics collect)?",
                    window_text));
    return {};
  }
  if (!above.empty()) {
    storage::EventRecord e;
    e.name = "resource.high";
    e.time = now;
    e.source = "workflow";
    e.payload = automation::json::dump(boost::json::object{{"above", std::move(peaks)}, {"window", window_text}});
    if (auto r = store.append_event(e); !r) return with_context(r.error(), "resource_check: emitting resource.high");
    c.log(fmt::format("above the thresholds: {}; resource.high emitted", fmt::join(above, ", ")));
  }
  return {};
}

}  // namespace

std::vector<WorkflowDefinition> builtin_workflows() {
  std::vector<WorkflowDefinition> out;
  for (auto text : kCatalog) {
    auto w = parse_workflow(text, "built-in catalog");
    if (!w) throw Exception(w.error());  // a bug in the catalog; the tests load every entry
    out.push_back(std::move(w.value()));
  }
  return out;
}

void register_builtin_actions(WorkflowEngine& engine, storage::Store& store, BuiltinSettings settings) {
  engine.register_action("backup", [&store](StepContext& c) { return backup(store, c); });
  engine.register_action("db_maintenance", [&store](StepContext& c) { return maintenance(store, c); });
  engine.register_action("cleanup", [](StepContext& c) { return cleanup(c); });
  auto shared = std::make_shared<const BuiltinSettings>(std::move(settings));
  engine.register_action("aggregate", [&store, shared](StepContext& c) { return aggregate_action(store, *shared, c); });
  engine.register_action("report", [&store, shared](StepContext& c) { return report_action(store, *shared, c); });
  engine.register_action("retry_deliveries", [&store, shared](StepContext& c) { return retry_deliveries_action(store, *shared, c); });
  engine.register_action("forecast_metrics", [&store, shared](StepContext& c) { return forecast_action(store, *shared, c); });
  engine.register_action("resource_check", [&store, shared](StepContext& c) { return resource_check_action(store, *shared, c); });
}

Result<void> register_builtins(WorkflowEngine& engine, storage::Store& store, BuiltinSettings settings) {
  register_builtin_actions(engine, store, std::move(settings));
  for (auto& w : builtin_workflows())
    if (auto r = engine.register_workflow(std::move(w)); !r) return r;
  return {};
}

}  // namespace automation::workflow
