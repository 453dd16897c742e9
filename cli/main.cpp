// autoctl: the command-line front end of the automation library.
#include "context.hpp"

#include <automation/core/logging.hpp>
#include <automation/version.hpp>

#include <fmt/format.h>

#include <cstring>
#include <exception>

int main(int argc, char** argv) {
  autoctl::Context ctx;
  CLI::App app{"autoctl: operational automation from the command line (metrics, forecasts, workflows, scaling, healing)", "autoctl"};
  app.set_version_flag("--version", std::string("autoctl ") + automation::version_string);
  app.require_subcommand(1);
  app.fallthrough();
  app.add_option("--db", ctx.global.db,
                 "Store URI: sqlite:PATH or memory: (default: AUTOMATION_DB, config \"db\", sqlite:var/automation.db)");
  app.add_option("--config", ctx.global.config, "JSON configuration file (AUTOMATION_* variables override it)");
  app.add_flag("--json", ctx.global.json, "Print one JSON document on stdout; errors as JSON on stderr");
  app.add_flag("-v,--verbose", ctx.global.verbose, "More log output on stderr (-vv for trace)");
  app.add_flag("-q,--quiet", ctx.global.quiet, "Only errors on stderr");
  app.add_option("--server", ctx.global.server,
                 "A running daemon's URL (default: AUTOMATION_REMOTE_URL, config remote.url): the commands that can go through its API do, "
                 "instead of opening the store");
  app.add_option("--token", ctx.global.token, "The bearer token for --server (default: AUTOMATION_REMOTE_TOKEN, config remote.token)");
  app.footer(R"(Examples:
  autoctl store info                      where the data lives, schema version, row counts
  autoctl --db sqlite:/tmp/a.db store migrate
  autoctl audit list --since 24h --actor 'user:*'
  autoctl breaker list                    circuit breakers shared through the store
  autoctl history stats --since 7d        success rates, durations, failure reasons per action
  autoctl config show --json              effective configuration and where each value came from
  autoctl cron next "daily at 03:00" --tz Europe/Berlin   the next fire times of a schedule

Exit codes: 0 ok, 1 answer is no, 64 usage, 65 bad data, 66 no input, 69 unavailable,
70 internal, 74 I/O, 75 busy/retry, 77 no permission, 78 config.)");

  auto* version_cmd = app.add_subcommand("version", "Print the version");
  version_cmd->callback([&] {
    ctx.run = [&] {
      if (ctx.global.json) {
        ctx.print_json(boost::json::object{{"version", automation::version_string}});
      } else {
        fmt::print("autoctl {}\n", automation::version_string);
      }
      return 0;
    };
  });
  autoctl::register_store(app, ctx);
  autoctl::register_audit(app, ctx);
  autoctl::register_config(app, ctx);
  autoctl::register_breaker(app, ctx);
  autoctl::register_history(app, ctx);
  autoctl::register_cron(app, ctx);
  autoctl::register_workflow(app, ctx);
  autoctl::register_schedule(app, ctx);
  autoctl::register_emit(app, ctx);
  autoctl::register_forecast(app, ctx);
  autoctl::register_ingest(app, ctx);
  autoctl::register_aggregate(app, ctx);
  autoctl::register_anomalies(app, ctx);
  autoctl::register_insights(app, ctx);
  autoctl::register_metrics(app, ctx);
  autoctl::register_report(app, ctx);
  autoctl::register_alerts(app, ctx);
  autoctl::register_scale(app, ctx);
  autoctl::register_health(app, ctx);
  autoctl::register_serve(app, ctx);
  autoctl::register_token(app, ctx);
  autoctl::register_timeline(app, ctx);
  autoctl::register_registry(app, ctx);
  autoctl::register_suggestions(app, ctx);
  autoctl::register_services(app, ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    bool json = false;
    for (int i = 1; i < argc; ++i)
      if (std::strcmp(argv[i], "--json") == 0) json = true;
    ctx.global.json = json;
    ctx.error(automation::Error(automation::errc::invalid_argument, fmt::format("{} (see autoctl --help)", e.what())));
    return autoctl::ex_usage;
  }
  try {
    if (auto code = ctx.load()) return *code;
    const char* given_id = std::getenv("AUTOCTL_CORRELATION_ID");
    automation::CorrelationScope correlation(given_id ? given_id : "");
    // An explicit --server is a promise that the daemon does the work: a command that cannot go
    // through it is refused. remote.url in the configuration applies to the commands that can.
    if (ctx.run && !ctx.global.server.empty() && !ctx.remote_capable) {
      ctx.error(automation::Error(automation::errc::invalid_argument,
                                  "this command does not go through --server: run it where the daemon's store is (docs/cli.md lists the "
                                  "commands that do)"));
      return autoctl::ex_usage;
    }
    return ctx.run ? ctx.run() : autoctl::ex_usage;
  } catch (const automation::Exception& e) {
    return ctx.error(e.error());
  } catch (const std::exception& e) {
    return ctx.error(automation::Error(automation::errc::internal, fmt::format("unexpected failure: {}", e.what())));
  }
}
