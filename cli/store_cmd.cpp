// autoctl store info | migrate
#include "context.hpp"

#include <automation/storage/sqlite_store.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

namespace autoctl {
namespace st = automation::storage;

namespace {

int store_info(Context& ctx, bool check) {
  auto store = ctx.open_store(Context::Access::read);  // looking must not create, migrate or change anything
  if (!store) return ctx.error(store.error());
  auto info = (*store)->info();
  if (!info) return ctx.error(info.error());
  std::optional<automation::Error> integrity;
  if (check) {
    if (auto* sq = dynamic_cast<st::SqliteStore*>(store->get())) {
      if (auto r = sq->check_integrity(); !r) integrity = r.error();
    }
  }
  const auto pending = st::pending_migrations(info->schema_version);
  if (ctx.global.json) {
    boost::json::object o;
    o["backend"] = info->backend;
    o["location"] = info->location;
    o["schema_version"] = info->schema_version;
    o["latest_schema_version"] = info->latest_schema_version;
    boost::json::array pend;
    for (const auto& p : pending) pend.emplace_back(p);
    o["pending_migrations"] = std::move(pend);
    if (!info->journal_mode.empty()) o["journal_mode"] = info->journal_mode;
    if (!info->synchronous.empty()) o["synchronous"] = info->synchronous;
    boost::json::array files;
    for (const auto& f : info->files) files.push_back(boost::json::object{{"path", f.path}, {"bytes", f.bytes}});
    o["files"] = std::move(files);
    boost::json::array areas;
    for (const auto& a : info->areas) areas.push_back(boost::json::object{{"area", a.area}, {"table", a.table}, {"rows", a.rows}});
    o["areas"] = std::move(areas);
    if (check) o["integrity"] = integrity ? integrity->message : "ok";
    ctx.print_json(o);
  } else {
    fmt::print("backend          {}\n", info->backend);
    fmt::print("location         {}\n", info->location);
    fmt::print("schema version   {} (this build writes {})\n", info->schema_version, info->latest_schema_version);
    for (const auto& p : pending) fmt::print("pending          {}  (run `autoctl store migrate`)\n", p);
    if (!info->journal_mode.empty()) fmt::print("journal mode     {}\n", info->journal_mode);
    if (!info->synchronous.empty()) fmt::print("synchronous      {}\n", info->synchronous);
    for (const auto& f : info->files) fmt::print("file             {} ({} bytes)\n", f.path, f.bytes);
    for (const auto& a : info->areas) fmt::print("area             {:<10} {:<14} {} rows\n", a.area, a.table, a.rows);
    if (check) fmt::print("integrity        {}\n", integrity ? integrity->message : "ok");
  }
  return integrity ? exit_code_for(automation::errc::corrupt) : ex_ok;
}

int store_migrate(Context& ctx, bool dry_run) {
  auto opts = ctx.open_options();
  opts.migrate = false;
  if (dry_run) opts.read_only = true;
  auto store = st::open_store(ctx.store_uri(), opts);
  if (!store) return ctx.error(store.error());
  st::MigrationReport report;
  if (dry_run) {
    auto v = (*store)->schema_version();
    if (!v) return ctx.error(v.error());
    report.from_version = *v;
    report.to_version = st::latest_schema_version();
    report.applied = st::pending_migrations(*v);
  } else {
    auto r = (*store)->migrate();
    if (!r) {
      // The schema may be unusable, so recording the failure is best effort.
      ctx.audit(**store, "store.migrate", "store", st::AuditOutcome::failure, r.error().message, {{"uri", ctx.store_uri()}});
      return ctx.error(r.error());
    }
    report = *r;
    boost::json::array applied;
    for (const auto& a : report.applied) applied.emplace_back(a);
    ctx.audit(**store, "store.migrate", "store", st::AuditOutcome::success,
              report.applied.empty() ? "schema already current" : "operator ran store migrate",
              {{"uri", ctx.store_uri()}, {"from_version", report.from_version}, {"to_version", report.to_version}, {"applied", applied}});
  }
  if (ctx.global.json) {
    boost::json::array applied;
    for (const auto& a : report.applied) applied.emplace_back(a);
    ctx.print_json(boost::json::object{{"from_version", report.from_version},
                                       {"to_version", report.to_version},
                                       {dry_run ? "pending" : "applied", applied},
                                       {"dry_run", dry_run}});
  } else if (report.applied.empty()) {
    fmt::print("schema is current at version {}\n", report.to_version);
  } else {
    fmt::print("{} version {} -> {}:\n", dry_run ? "would migrate" : "migrated", report.from_version, report.to_version);
    for (const auto& a : report.applied) fmt::print("  {}\n", a);
  }
  return ex_ok;
}

}  // namespace

void register_store(CLI::App& app, Context& ctx) {
  auto* store = app.add_subcommand("store", "Inspect and migrate the store");
  store->require_subcommand(1);

  auto* info = store->add_subcommand("info", "Path, schema version, file sizes and row counts per area (changes nothing)");
  auto check = std::make_shared<bool>(false);
  info->add_flag("--check", *check, "Also run an integrity check (PRAGMA quick_check)");
  info->footer("Examples:\n  autoctl store info\n  autoctl --json store info --check");
  info->callback([&ctx, check] { ctx.run = [&ctx, check] { return store_info(ctx, *check); }; });

  auto* migrate = store->add_subcommand("migrate", "Apply pending schema migrations (each in one transaction)");
  auto dry = std::make_shared<bool>(false);
  migrate->add_flag("--dry-run", *dry, "List the pending migrations without applying them");
  migrate->footer("Examples:\n  autoctl store migrate --dry-run\n  autoctl --db sqlite:/srv/automation.db store migrate");
  migrate->callback([&ctx, dry] { ctx.run = [&ctx, dry] { return store_migrate(ctx, *dry); }; });
}

}  // namespace autoctl
