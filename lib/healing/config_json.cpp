// Healing files as JSON.
#include <automation/healing/self_healer.hpp>
#include <automation/storage/store.hpp>

#include "detail/json_fields.hpp"

#include <set>

namespace automation::healing {

namespace bj = boost::json;
using detail::Fields;

namespace {

Result<std::optional<std::vector<int>>> ints(Fields& f, std::string_view key) {
  auto* v = f.get(key);
  if (!v) return std::optional<std::vector<int>>();
  if (!v->is_array()) return f.bad(key, "must be an array of integers");
  std::vector<int> out;
  for (const auto& e : v->as_array()) {
    if (!e.is_int64() || e.as_int64() < -1000000 || e.as_int64() > 1000000) return f.bad(key, "must be an array of integers");
    out.push_back(static_cast<int>(e.as_int64()));
  }
  return std::optional<std::vector<int>>(std::move(out));
}

Result<ProbeSpec> parse_probe(const bj::value& v, const std::string& where, const std::filesystem::path& base) {
  auto f = Fields::of(v, where);
  if (!f) return f.error();
  ProbeSpec p;
  auto type = f->string("type");
  if (!type) return type.error();
  if (!*type) return f->bad("type", "is required (http, tcp, process, command, disk, memory, sqlite or callback)");
  auto kind = parse_probe_kind(**type);
  if (!kind) return fail(errc::invalid_argument, fmt::format("{}: {}", where, kind.error().message));
  p.kind = *kind;
  auto path_of = [&](const std::string& s) { return s.empty() || std::filesystem::path(s).is_absolute() ? s : (base / s).string(); };
  switch (p.kind) {
    case ProbeKind::http: {
      TRY_ASSIGN(p.url, f->string("url"));
      TRY_ASSIGN(p.expect_status, ints(*f, "status"));
      TRY_ASSIGN(p.expect_body, f->string("body"));
      TRY_ASSIGN(p.ca_file, f->string("ca_file"));
      if (!p.ca_file.empty()) p.ca_file = path_of(p.ca_file);
      break;
    }
    case ProbeKind::tcp:
      TRY_ASSIGN(p.host, f->string("host"));
      TRY_ASSIGN(p.port, f->integer("port"));
      break;
    case ProbeKind::process:
      TRY_ASSIGN(p.pid, f->integer("pid"));
      TRY_ASSIGN(p.pidfile, f->string("pidfile"));
      if (!p.pidfile.empty()) p.pidfile = path_of(p.pidfile);
      TRY_ASSIGN(p.process_name, f->string("name"));
      TRY_ASSIGN(p.service, f->string("service"));
      break;
    case ProbeKind::command:
      TRY_ASSIGN(p.command, f->strings("command"));
      break;
    case ProbeKind::disk:
      TRY_ASSIGN(p.path, f->string("path"));
      p.path = path_of(p.path);
      TRY_ASSIGN(p.max_percent, f->number("max_percent"));
      break;
    case ProbeKind::memory:
      TRY_ASSIGN(p.max_percent, f->number("max_percent"));
      break;
    case ProbeKind::sqlite:
      TRY_ASSIGN(p.database, f->string("database"));
      p.database = path_of(p.database);
      break;
    case ProbeKind::callback:
      TRY_ASSIGN(p.callback_name, f->string("callback"));
      break;
  }
  TRY_ASSIGN(p.timeout, f->duration("timeout"));
  TRY_ASSIGN(p.interval, f->duration("interval"));
  TRY_ASSIGN(p.initial_delay, f->duration("initial_delay"));
  TRY_ASSIGN(p.failure_threshold, f->integer("failure_threshold"));
  TRY_ASSIGN(p.success_threshold, f->integer("success_threshold"));
  if (auto* flap = f->get("flap")) {
    auto ff = Fields::of(*flap, where + " flap");
    if (!ff) return ff.error();
    TRY_ASSIGN(p.flap_window, ff->integer("window"));
    TRY_ASSIGN(p.flap_failures, ff->integer("failures"));
    if (auto r = ff->no_others(); !r) return r.error();
  }
  if (auto r = f->no_others(); !r) return r.error();
  if (auto r = p.validate(); !r) return with_context(r.error(), where);
  return p;
}

Result<HealStep> parse_step(const bj::value& v, const std::string& where) {
  auto f = Fields::of(v, where);
  if (!f) return f.error();
  HealStep s;
  auto action = f->string("action");
  if (!action) return action.error();
  if (!*action) return f->bad("action", "is required (restart, command, workflow, callback, wait, alert or quarantine)");
  auto kind = parse_action_kind(**action);
  if (!kind) return fail(errc::invalid_argument, fmt::format("{}: {}", where, kind.error().message));
  s.kind = *kind;
  TRY_ASSIGN(s.service, f->string("service"));
  TRY_ASSIGN(s.command, f->strings("command"));
  TRY_ASSIGN(s.workflow, f->string("workflow"));
  auto params = f->string_map("params");
  if (!params) return params.error();
  s.params = std::move(*params);
  TRY_ASSIGN(s.callback, f->string("callback"));
  TRY_ASSIGN(s.verify, f->duration("verify"));
  TRY_ASSIGN(s.timeout, f->duration("timeout"));
  if (auto r = f->no_others(); !r) return r.error();
  return s;
}

}  // namespace

Result<HealingConfig> parse_healing(std::string_view text, std::string_view origin, const std::filesystem::path& base,
                                    const std::filesystem::path& log_directory) {
  auto doc = json::parse(text, origin);
  if (!doc) return doc.error();
  auto top = Fields::of(*doc, std::string(origin));
  if (!top) return top.error();
  HealingConfig c;
  TRY_ASSIGN(c.seeds, top->boolean("seeds"));
  std::set<std::string> services;
  if (auto* list = top->get("services")) {
    if (!list->is_array()) return top->bad("services", "must be an array");
    int i = 0;
    for (const auto& e : list->as_array()) {
      auto f = Fields::of(e, fmt::format("{}: service {}", origin, ++i));
      if (!f) return f.error();
      ServiceSpec s;
      TRY_ASSIGN(s.name, f->string("name"));
      TRY_ASSIGN(s.command, f->strings("command"));
      auto env = f->string_map("environment");
      if (!env) return env.error();
      s.environment = std::move(*env);
      std::optional<std::string> wd;
      TRY_ASSIGN(wd, f->string("working_directory"));
      if (wd && !wd->empty()) s.working_directory = std::filesystem::path(*wd).is_absolute() ? std::filesystem::path(*wd) : base / *wd;
      TRY_ASSIGN(s.stop_timeout, f->duration("stop_timeout"));
      if (auto r = f->no_others(); !r) return r.error();
      s.log_file = log_directory / (s.name + ".log");
      if (auto r = s.validate(); !r) return with_context(r.error(), std::string(origin));
      if (!services.insert(s.name).second)
        return fail(errc::invalid_argument, fmt::format("{}: service \"{}\" is named twice", origin, s.name));
      c.services.push_back(std::move(s));
    }
  }
  std::set<std::string> names;
  if (auto* list = top->get("targets")) {
    if (!list->is_array()) return top->bad("targets", "must be an array");
    int i = 0;
    for (const auto& e : list->as_array()) {
      ++i;
      std::string where = fmt::format("{}: target {}", origin, i);
      if (e.is_object())
        if (auto* n = e.as_object().if_contains("name"); n && n->is_string())
          where = fmt::format("{}: target \"{}\"", origin, std::string_view(n->as_string()));
      auto f = Fields::of(e, where);
      if (!f) return f.error();
      TargetSpec t;
      TRY_ASSIGN(t.name, f->string("name"));
      TRY_ASSIGN(t.description, f->string("description"));
      TRY_ASSIGN(t.service, f->string("service"));
      if (!t.service.empty() && !services.contains(t.service))
        return f->bad("service", fmt::format("names \"{}\", which is not among the services", t.service));
      auto* live = f->get("liveness");
      if (!live) return f->bad("liveness", "is required");
      auto lp = parse_probe(*live, where + " liveness", base);
      if (!lp) return lp.error();
      t.liveness = std::move(*lp);
      if (auto* ready = f->get("readiness")) {
        auto rp = parse_probe(*ready, where + " readiness", base);
        if (!rp) return rp.error();
        t.readiness = std::move(*rp);
      }
      if (auto* ladder = f->get("ladder")) {
        if (!ladder->is_array()) return f->bad("ladder", "must be an array of steps");
        int k = 0;
        for (const auto& step : ladder->as_array()) {
          auto s = parse_step(step, fmt::format("{} step {}", where, ++k));
          if (!s) return s.error();
          t.ladder.push_back(std::move(*s));
        }
      }
      if (auto* b = f->get("backoff")) {
        auto bf = Fields::of(*b, where + " backoff");
        if (!bf) return bf.error();
        TRY_ASSIGN(t.backoff.initial, bf->duration("initial"));
        TRY_ASSIGN(t.backoff.cap, bf->duration("cap"));
        TRY_ASSIGN(t.backoff.multiplier, bf->number("multiplier"));
        TRY_ASSIGN(t.backoff.jitter, bf->number("jitter"));
        TRY_ASSIGN(t.backoff.reset_after, bf->duration("reset_after"));
        if (auto r = bf->no_others(); !r) return r.error();
      }
      if (auto* b = f->get("budget")) {
        auto bf = Fields::of(*b, where + " budget");
        if (!bf) return bf.error();
        TRY_ASSIGN(t.budget.restarts, bf->integer("restarts"));
        TRY_ASSIGN(t.budget.window, bf->duration("window"));
        if (auto r = bf->no_others(); !r) return r.error();
      }
      TRY_ASSIGN(t.no_heal_exit_codes, ints(*f, "no_heal_exit_codes"));
      TRY_ASSIGN(t.depends_on, f->strings("depends_on"));
      TRY_ASSIGN(t.dry_run, f->boolean("dry_run"));
      if (auto r = f->no_others(); !r) return r.error();
      if (auto r = t.validate(); !r) return with_context(r.error(), std::string(origin));
      if (!names.insert(t.name).second)
        return fail(errc::invalid_argument, fmt::format("{}: target \"{}\" is named twice", origin, t.name));
      c.targets.push_back(std::move(t));
    }
  }
  if (auto r = top->no_others(); !r) return r.error();
  return c;
}

}  // namespace automation::healing
