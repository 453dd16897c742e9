// autoctl suggestions list|show|apply and autoctl usage: what the history says could be automated
// or made more reliable, and how the system is used.
#include "advisor_support.hpp"
#include "context.hpp"

#include <automation/core/json.hpp>
#include <automation/core/time.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

namespace autoctl {

namespace it = automation::intelligence;
namespace st = automation::storage;
namespace bj = boost::json;
using automation::errc;
using automation::Result;

namespace {

struct SuggestionOptions {
  std::string id, kind, reason;
};

void print_list(const bj::object& doc) {
  const auto& list = doc.at("suggestions").as_array();
  if (list.empty()) fmt::print("no suggestions: nothing in the history calls for a change\n");
  for (const auto& v : list) {
    const auto& s = v.as_object();
    fmt::print("{}  {:<8} {}{}\n", field_text(s, "id"), field_text(s, "kind"), field_text(s, "title"),
               s.at("applicable").as_bool() ? "" : " (advice)");
  }
}

void print_one(const bj::object& s) {
  fmt::print("{} ({}): {}\n\n{}\n\nevidence: {}\n", field_text(s, "id"), field_text(s, "kind"), field_text(s, "title"),
             field_text(s, "explanation"), automation::json::pretty(s.at("evidence")));
  if (s.at("applicable").as_bool())
    fmt::print("applying it: {}\n  autoctl suggestions apply {}\n", automation::json::pretty(s.at("change")), field_text(s, "id"));
  else
    fmt::print("this is advice: applying it changes nothing here\n");
}

void print_applied(const bj::object& a) { fmt::print("applied {}: {}\n", field_text(a, "id"), field_text(a, "summary")); }

void print_insights(const bj::object& doc) {
  const auto& list = doc.at("insights").as_array();
  if (list.empty()) fmt::print("no insights: the audit log, task history and runs are empty for the last 30 days\n");
  for (const auto& v : list) fmt::print("{:<16} {}\n", field_text(v.as_object(), "kind"), field_text(v.as_object(), "title"));
}

const std::string kSuggestions = "/api/v1/intelligence/suggestions";

int run_suggestions(Context& ctx, const std::string& action, const SuggestionOptions& o) {
  if (ctx.remote()) {
    const std::string one = kSuggestions + "/" + Context::encode(o.id);
    if (action == "list") return ctx.print_answer(ctx.api("GET", kSuggestions + Context::query({{"kind", o.kind}})), print_list);
    if (action == "show") return ctx.print_answer(ctx.api("GET", one), print_one);
    bj::object body;
    if (!o.reason.empty()) body["reason"] = o.reason;
    return ctx.print_answer(ctx.api("POST", one + "/apply", bj::value(body)), print_applied);
  }
  auto store = action == "apply" ? ctx.open_store(Context::Access::write) : ctx.open_store_or_empty();
  if (!store) return ctx.error(store.error());
  auto catalog = load_catalog(ctx);
  if (!catalog) return ctx.error(catalog.error());
  auto schedules = load_schedules(ctx);
  if (!schedules) return ctx.error(schedules.error());
  const auto defs = definitions_of(*catalog, *schedules);
  const auto options = advisor_options(ctx);
  const auto now = automation::SystemClock::instance().now();
  if (action == "list") return ctx.print_document(suggestions_json(**store, defs, now, options, o.kind), print_list);
  auto s = find_suggestion(**store, defs, now, options, o.id);
  if (!s) return ctx.error(s.error());
  if (action == "show") return ctx.print_document(Result<bj::object>(it::to_json(*s)), print_one);
  auto applied = it::apply(*s, defs.workflows, defs.schedules, ctx.config.workflows_dir, defs.sources);
  bj::object details{{"kind", s->kind}, {"subject", s->subject}, {"title", s->title}, {"change", s->change}};
  if (applied) details["files"] = bj::value_from(applied->files);
  ctx.audit(**store, "suggestion.apply", "suggestion:" + s->id, applied ? st::AuditOutcome::success : st::AuditOutcome::failure,
            applied ? (o.reason.empty() ? "applied from the command line: " + s->title : o.reason) : applied.error().message,
            std::move(details));
  if (!applied) return ctx.error(applied.error());
  auto doc = applied_json(*s, *applied);
  if (!ctx.global.json && !ctx.global.quiet)
    fmt::print(stderr, "autoctl: a running daemon loads {} at its next start; apply through --server to have it load at once\n",
               ctx.config.workflows_dir);
  return ctx.print_document(Result<bj::object>(std::move(doc)), print_applied);
}

int run_usage(Context& ctx) {
  if (ctx.remote()) return ctx.print_answer(ctx.api("GET", "/api/v1/intelligence/insights"), print_insights);
  auto store = ctx.open_store_or_empty();
  if (!store) return ctx.error(store.error());
  return ctx.print_document(insights_json(**store, automation::SystemClock::instance().now(), advisor_options(ctx)), print_insights);
}

}  // namespace

void register_suggestions(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<SuggestionOptions>();
  auto* cmd = app.add_subcommand("suggestions", "What the history says could be automated or made more reliable, and applying it");
  cmd->require_subcommand(1);
  auto add = [&](const std::string& name, const std::string& help) {
    auto* sub = cmd->add_subcommand(name, help);
    sub->callback([&ctx, o, name] {
      ctx.remote_capable = true;
      ctx.run = [&ctx, o, name] { return run_suggestions(ctx, name, *o); };
    });
    return sub;
  };
  add("list", "The current suggestions, best first")
      ->add_option("--kind", o->kind, "Only this kind: automate, schedule, retry, timeout, breaker");
  add("show", "One suggestion: why, its numbers, and what applying it does")
      ->add_option("id", o->id, "The suggestion's id (sg-...)")
      ->required();
  auto* apply = add("apply", "Apply a suggestion: write the workflow, schedule or step change into workflows_dir (audited)");
  apply->add_option("id", o->id, "The suggestion's id (sg-...)")->required();
  apply->add_option("--reason", o->reason, "Why, for the audit log");
  cmd->footer(
      "Sources: the audit log (what people did by hand), the host's TaskHistory, and workflow runs with their steps, over the last 30 "
      "days.\n"
      "Examples:\n  autoctl suggestions list\n  autoctl suggestions show sg-3f9a0c1d2e4b\n  autoctl --server http://127.0.0.1:8080 "
      "suggestions apply sg-3f9a0c1d2e4b");

  auto* usage =
      app.add_subcommand("usage", "How the system is used: power users, busy hours and days, failing workflows, the load to come");
  usage->callback([&ctx] {
    ctx.remote_capable = true;
    ctx.run = [&ctx] { return run_usage(ctx); };
  });
}

}  // namespace autoctl
