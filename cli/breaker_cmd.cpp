// autoctl breaker list | status | reset | force-open | export | run
#include "components.hpp"
#include "context.hpp"

#include <automation/core/json.hpp>
#include <automation/core/time.hpp>
#include <automation/resilience/breaker_registry.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

extern char** environ;

namespace autoctl {
namespace st = automation::storage;
namespace rs = automation::resilience;
using automation::errc;

namespace {

std::string describe_until(const rs::BreakerStatus& s) {
  if (!s.open_until) return "-";
  return automation::format_timestamp(*s.open_until);
}

// Every stored breaker as a status, by name.
automation::Result<std::vector<rs::BreakerStatus>> stored_statuses(Context& ctx) {
  auto store = ctx.open_store(Context::Access::read);
  if (!store) return store.error();
  auto records = (*store)->list_breakers();
  if (!records) return records.error();
  std::vector<rs::BreakerStatus> all;
  for (const auto& r : *records) {
    auto s = rs::status_from_record(r);
    if (!s) return s.error();
    all.push_back(std::move(*s));
  }
  return all;
}

int breaker_list(Context& ctx) {
  auto stored = stored_statuses(ctx);
  if (!stored) return ctx.error(stored.error());
  const auto& all = *stored;
  if (ctx.global.json) {
    boost::json::array arr;
    for (const auto& s : all) arr.push_back(rs::to_json(s));
    ctx.print_json(boost::json::object{{"breakers", arr}});
    return ex_ok;
  }
  if (all.empty()) {
    fmt::print(stderr, "no circuit breakers are stored yet (a breaker appears once a process shares or persists it)\n");
    return ex_ok;
  }
  fmt::print("{:<28} {:<13} {:<34} {:<22} {}\n", "NAME", "STATE", "REASON", "OPEN UNTIL", "UPDATED BY");
  for (const auto& s : all)
    fmt::print("{:<28} {:<13} {:<34} {:<22} {}\n", s.name, rs::to_string(s.state), s.reason, describe_until(s), s.updated_by);
  return ex_ok;
}

automation::Result<st::BreakerRecord> find_record(st::Store& store, const std::string& name) {
  auto r = store.get_breaker(name);
  if (!r) return r.error();
  if (!*r)
    return automation::fail(errc::not_found, fmt::format("no circuit breaker named '{}' is stored (see `autoctl breaker list`)", name));
  return std::move(**r);
}

int breaker_status(Context& ctx, const std::string& name) {
  auto store = ctx.open_store(Context::Access::read);
  if (!store) return ctx.error(store.error());
  auto rec = find_record(**store, name);
  if (!rec) return ctx.error(rec.error());
  auto s = rs::status_from_record(*rec);
  if (!s) return ctx.error(s.error());
  if (ctx.global.json) {
    ctx.print_json(rs::to_json(*s));
    return ex_ok;
  }
  fmt::print("name          {}\nstate         {}\nreason        {}\n", s->name, rs::to_string(s->state), s->reason);
  if (s->open_until) fmt::print("open until    {}\n", automation::format_timestamp(*s->open_until));
  fmt::print("open attempt  {}\n", s->open_attempt);
  fmt::print("window        {} calls, {} failed, {} slow (failure rate {})\n", s->window.calls, s->window.failures, s->window.slow_calls,
             s->window.calls ? fmt::format("{:.1f}%", s->window.failure_rate()) : "-");
  fmt::print("counters      {} succeeded, {} failed, {} ignored, {} not permitted, {} transitions (as of the last write)\n",
             s->counters.successes, s->counters.failures, s->counters.ignored, s->counters.not_permitted, s->counters.transitions);
  fmt::print("updated       {} by {} (version {})\n", s->updated ? automation::format_timestamp(*s->updated) : "-", s->updated_by,
             s->version);
  return ex_ok;
}

// reset and force-open: a compare-and-set write that every sharing process adopts at its next poll.
int breaker_set(Context& ctx, const std::string& name, rs::BreakerState to, const std::string& why) {
  if (ctx.remote())
    return ctx.print_api(ctx.api(
        "POST",
        fmt::format("/api/v1/circuit-breakers/{}/{}", Context::encode(name), to == rs::BreakerState::closed ? "reset" : "force-open"),
        boost::json::object{{"reason", why}}));
  auto store = ctx.open_store(Context::Access::write);
  if (!store) return ctx.error(store.error());
  const std::string action = to == rs::BreakerState::closed ? "breaker.reset" : "breaker.force_open";
  const std::string resource = "breaker:" + name;
  const std::string reason = why.empty() ? "requested from the command line" : why;
  auto change = set_breaker(**store, automation::SystemClock::instance(), name, to, reason, ctx.actor());
  if (!change) {
    ctx.audit(**store, action, resource, st::AuditOutcome::failure, change.error().message, {{"reason", reason}});
    return ctx.error(change.error());
  }
  ctx.audit(**store, action, resource, st::AuditOutcome::success, reason,
            {{"from", change->from}, {"to", change->to}, {"version", change->version}});
  if (ctx.global.json) {
    ctx.print_json(boost::json::object{{"name", name}, {"from", change->from}, {"to", change->to}, {"version", change->version}});
  } else if (!ctx.global.quiet) {
    fmt::print("circuit breaker '{}': {} -> {} (processes sharing it follow within their poll interval)\n", name, change->from, change->to);
  }
  return ex_ok;
}

int breaker_export(Context& ctx, const std::string& format) {
  auto stored = stored_statuses(ctx);
  if (!stored) return ctx.error(stored.error());
  const auto& all = *stored;
  if (format == "prometheus") {
    fmt::print("{}", rs::to_prometheus(all, /*live=*/false));
  } else {
    boost::json::array arr;
    for (const auto& s : all) arr.push_back(rs::to_json(s));
    ctx.print_json(boost::json::object{{"breakers", arr}});
  }
  return ex_ok;
}

struct RunOptions {
  std::string name;
  std::uint32_t consecutive_failures = 5;
  std::string open_for = "60s";
  std::uint32_t successes_to_close = 2;
  std::vector<std::string> command;
};

// Runs argv and waits for it: its exit status (128 + signal when killed).
automation::Result<int> run_command(const std::vector<std::string>& command) {
  std::vector<char*> argv;
  for (const auto& a : command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (const int rc = posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), environ); rc != 0)
    return automation::fail(errc::not_found, fmt::format("cannot run {}: {}", command[0], std::strerror(rc)));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

// Runs a command through a breaker shared with every other process on the same store.
int breaker_run(Context& ctx, const RunOptions& o) {
  auto open_for = automation::parse_duration(o.open_for);
  if (!open_for) return ctx.error(automation::with_context(open_for.error(), "--open-for"));
  if (o.command.empty()) return ctx.error(automation::Error(errc::invalid_argument, "breaker run: no command given after --"));
  auto store = ctx.open_store(Context::Access::write);
  if (!store) return ctx.error(store.error());
  auto cfg = rs::BreakerConfig::seed_preset();
  cfg.consecutive_failures = o.consecutive_failures;
  cfg.open_duration.base = *open_for;
  cfg.half_open_successes_to_close = o.successes_to_close;
  // A breaker restored from the store as it is now.
  auto attach = [&] {
    auto b = std::make_unique<rs::CircuitBreaker>(o.name, cfg, automation::SystemClock::instance());
    if (auto r = b->share(**store, {.mode = rs::SharingMode::shared}); !r)
      fmt::print(stderr, "autoctl: warning: circuit breaker '{}' runs without its shared state: {}\n", o.name, r.error().message);
    return b;
  };
  auto breaker = attach();
  auto permit = breaker->try_acquire();
  if (!permit) {
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(permit.retry_after()).count();
    return ctx.error(automation::Error(
        errc::unavailable,
        fmt::format("circuit breaker '{}' is {} ({}); not running the command{}", o.name, rs::to_string(permit.rejected_state()),
                    breaker->last_reason(), permit.retry_after().count() > 0 ? fmt::format("; retry after {}s", secs) : "")));
  }
  const auto code = run_command(o.command);  // no lock and no transaction is held meanwhile
  const bool ok = code && *code == 0;
  // Record the outcome. When another process published first (a compare-and-set conflict), start
  // again from what it wrote and record this outcome on top of it, so concurrent runs lose nothing.
  // If the breaker opened meanwhile, the outcome no longer matters.
  for (int attempt = 0; permit && attempt < 10; ++attempt) {
    const auto conflicts = breaker->sharing_status().conflicts;
    ok ? permit.success() : permit.failure();  // a transition is published here
    if (breaker->sharing_status().conflicts == conflicts) {
      if (auto r = breaker->publish_now(); !r) fmt::print(stderr, "autoctl: warning: the outcome was not shared: {}\n", r.error().message);
      if (breaker->sharing_status().conflicts == conflicts) break;
    }
    breaker = attach();
    permit = breaker->try_acquire();
  }
  if (!ctx.global.quiet && breaker->current_state() != rs::BreakerState::closed)
    fmt::print(stderr, "autoctl: circuit breaker '{}' is now {} ({})\n", o.name, rs::to_string(breaker->current_state()),
               breaker->last_reason());
  if (!code) return ctx.error(code.error());
  return *code;
}

}  // namespace

void register_breaker(CLI::App& app, Context& ctx) {
  auto* b = app.add_subcommand("breaker", "Circuit breakers stored in the database (shared by the processes that use it)");
  b->require_subcommand(1);

  b->add_subcommand("list", "List stored circuit breakers")->callback([&ctx] {
    ctx.remote_capable = true;
    ctx.run = [&ctx] { return ctx.remote() ? ctx.print_api(ctx.api("GET", "/api/v1/circuit-breakers")) : breaker_list(ctx); };
  });

  auto name = std::make_shared<std::string>();
  auto why = std::make_shared<std::string>();
  auto* status = b->add_subcommand("status", "Show one circuit breaker");
  status->add_option("name", *name, "Breaker name")->required();
  status->callback([&ctx, name] {
    ctx.remote_capable = true;
    ctx.run = [&ctx, name] {
      return ctx.remote() ? ctx.print_api(ctx.api("GET", "/api/v1/circuit-breakers/" + Context::encode(*name)))
                          : breaker_status(ctx, *name);
    };
  });

  auto* reset = b->add_subcommand("reset", "Close a breaker and clear its window (every sharing process follows)");
  reset->add_option("name", *name, "Breaker name")->required();
  reset->add_option("--reason", *why, "Why (kept in the audit trail)");
  reset->callback([&ctx, name, why] {
    ctx.remote_capable = true;
    ctx.run = [&ctx, name, why] { return breaker_set(ctx, *name, rs::BreakerState::closed, *why); };
  });

  auto* force = b->add_subcommand("force-open", "Hold a breaker open until reset (every sharing process follows)");
  force->add_option("name", *name, "Breaker name")->required();
  force->add_option("--reason", *why, "Why (kept in the audit trail)");
  force->callback([&ctx, name, why] {
    ctx.remote_capable = true;
    ctx.run = [&ctx, name, why] { return breaker_set(ctx, *name, rs::BreakerState::forced_open, *why); };
  });

  auto format = std::make_shared<std::string>("json");
  auto* exp = b->add_subcommand("export", "Export every stored breaker as JSON or Prometheus text");
  exp->add_option("--format", *format, "json or prometheus")->check(CLI::IsMember({"json", "prometheus"}))->capture_default_str();
  exp->callback([&ctx, format] { ctx.run = [&ctx, format] { return breaker_export(ctx, *format); }; });

  auto ro = std::make_shared<RunOptions>();
  auto* run = b->add_subcommand("run", "Run a command through a shared breaker: refused (exit 69) while it is open");
  run->add_option("name", ro->name, "Breaker name")->required();
  run->add_option("--consecutive-failures", ro->consecutive_failures, "Failures in a row that open it")->capture_default_str();
  run->add_option("--open-for", ro->open_for, "How long it stays open before probing")->capture_default_str();
  run->add_option("--successes-to-close", ro->successes_to_close, "Probe successes that close it")->capture_default_str();
  run->add_option("command", ro->command, "The command and its arguments, after --")->required();
  run->footer(
      "Exit code: the command's, or 69 when the breaker refuses.\nExample:\n  autoctl breaker run backup-target -- rsync -a /srv "
      "backup:/srv");
  run->callback([&ctx, ro] { ctx.run = [&ctx, ro] { return breaker_run(ctx, *ro); }; });

  b->footer(
      "Examples:\n  autoctl breaker list\n  autoctl breaker force-open payments --reason 'provider incident'\n"
      "  autoctl breaker export --format prometheus");
}

}  // namespace autoctl
