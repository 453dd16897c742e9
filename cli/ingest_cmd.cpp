// autoctl ingest events|revenue FILE
#include "context.hpp"

#include <automation/core/time.hpp>
#include <automation/metrics/aggregator.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

#include <unistd.h>

namespace autoctl {
namespace mx = automation::metrics;

namespace {

struct IngestOptions {
  std::string kind, file, format = "auto", rejects;
  bool strict = false;
};

boost::json::object report_json(const mx::FileIngestReport& r, mx::RecordKind kind) {
  boost::json::array errors;
  for (const auto& e : r.errors) errors.push_back(boost::json::object{{"line", e.line}, {"reason", e.reason}});
  boost::json::object o{{"path", r.path},
                        {"format", r.format},
                        {"rows", r.rows},
                        {"accepted", r.accepted},
                        {"rejected", r.rejected},
                        {"strict_rejected", r.strict_rejected},
                        {"rejects_path", r.rejects_path},
                        {"ignored_columns", boost::json::value_from(r.ignored_columns)},
                        {"errors", std::move(errors)}};
  if (kind == mx::RecordKind::events)
    o["events"] = boost::json::object{{"stored", r.events.stored},
                                      {"duplicates", r.events.duplicates},
                                      {"blocks_written", r.events.blocks_written},
                                      {"blocks_skipped", r.events.blocks_skipped}};
  else
    o["revenue"] =
        boost::json::object{{"inserted", r.revenue.inserted}, {"updated", r.revenue.updated}, {"unchanged", r.revenue.unchanged}};
  return o;
}

int run_ingest(Context& ctx, const IngestOptions& o) {
  const auto kind = o.kind == "events" ? mx::RecordKind::events : mx::RecordKind::revenue;
  auto zone = automation::TimeZone::locate(ctx.config.time_zone);
  if (!zone) return ctx.error(automation::with_context(zone.error(), "time_zone"));
  auto store = ctx.open_store(Context::Access::write);
  if (!store) return ctx.error(store.error());
  mx::MetricsAggregator agg(**store, automation::SystemClock::instance(), {.time_zone = *zone});
  mx::FileIngestOptions fo;
  fo.format = o.format == "csv" ? mx::FileFormat::csv : o.format == "ndjson" ? mx::FileFormat::ndjson : mx::FileFormat::automatic;
  fo.strict = o.strict;
  fo.rejects_path = o.rejects;
  const bool tty = ::isatty(STDERR_FILENO) && !ctx.global.quiet;
  if (tty)
    fo.progress = [](std::uint64_t done, std::uint64_t total) {
      fmt::print(stderr, "\r{:.1f} / {:.1f} MB ({:.0f}%)", static_cast<double>(done) / 1e6, static_cast<double>(total) / 1e6,
                 total ? 100.0 * static_cast<double>(done) / static_cast<double>(total) : 100.0);
      std::fflush(stderr);
    };
  auto r = agg.ingest_file(kind, o.file, fo);
  if (tty) fmt::print(stderr, "\r\033[K");
  if (!r) {
    ctx.audit(**store, "metrics.ingest", "metrics:" + o.kind, automation::storage::AuditOutcome::failure, r.error().message,
              {{"file", o.file}});
    return ctx.error(r.error());
  }
  const auto stored = kind == mx::RecordKind::events ? r->events.stored : r->revenue.inserted + r->revenue.updated;
  ctx.audit(**store, "metrics.ingest", "metrics:" + o.kind,
            r->strict_rejected ? automation::storage::AuditOutcome::failure : automation::storage::AuditOutcome::success,
            r->strict_rejected ? fmt::format("--strict: {} bad rows, nothing stored", r->rejected)
                               : fmt::format("{} rows read, {} stored, {} rejected", r->rows, stored, r->rejected),
            {{"file", r->path}, {"rows", r->rows}, {"rejected", r->rejected}, {"stored", stored}});
  if (ctx.global.json) {
    ctx.print_json(report_json(*r, kind));
  } else {
    if (kind == mx::RecordKind::events)
      fmt::print("{}: {} rows ({}), {} events stored, {} already stored, {} rejected\n", r->path, r->rows, r->format, r->events.stored,
                 r->events.duplicates, r->rejected);
    else
      fmt::print("{}: {} rows ({}), {} inserted, {} updated, {} unchanged, {} rejected\n", r->path, r->rows, r->format, r->revenue.inserted,
                 r->revenue.updated, r->revenue.unchanged, r->rejected);
    if (!r->ignored_columns.empty()) fmt::print(stderr, "ignored columns: {}\n", fmt::join(r->ignored_columns, ", "));
    for (std::size_t i = 0; i < r->errors.size() && i < 10; ++i)
      fmt::print(stderr, "{}:{}: {}\n", r->path, r->errors[i].line, r->errors[i].reason);
    if (r->rejected > 10) fmt::print(stderr, "... and {} more\n", r->rejected - 10);
    if (r->strict_rejected)
      fmt::print(stderr, "--strict: the file was rejected, nothing was stored\n");
    else if (!r->rejects_path.empty())
      fmt::print(stderr, "the rejected rows were written to {}\n", r->rejects_path);
  }
  return r->rejected ? ex_dataerr : ex_ok;
}

}  // namespace

void register_ingest(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<IngestOptions>();
  auto* cmd = app.add_subcommand("ingest", "Load usage events or revenue records from a CSV or NDJSON file");
  cmd->add_option("kind", o->kind, "events or revenue")->required()->check(CLI::IsMember({"events", "revenue"}));
  cmd->add_option("file", o->file, "The file (CSV with a header, or NDJSON)")->required();
  cmd->add_option("--format", o->format, "csv, ndjson or auto (default: by extension or first byte)")
      ->check(CLI::IsMember({"auto", "csv", "ndjson"}));
  cmd->add_flag("--strict", o->strict, "Reject the whole file when any row is bad");
  cmd->add_option("--rejects", o->rejects, "Where to write the bad rows (default FILE.rejects)");
  cmd->callback([&ctx, o] { ctx.run = [&ctx, o] { return run_ingest(ctx, *o); }; });
}

}  // namespace autoctl
