// autoctl token create --name N --role R [--expires-in D] | list [--all] | revoke ID|NAME [--reason R]
#include "components.hpp"
#include "context.hpp"

#include <automation/core/time.hpp>
#include <automation/runtime/access.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

namespace autoctl {

namespace st = automation::storage;
namespace rt = automation::runtime;
namespace bj = boost::json;
using automation::TimePoint;

namespace {

struct TokenOptions {
  std::string name, role = "viewer", expires_in, id, reason;
  bool all = false;
};

rt::CallContext call_of(const Context& ctx) { return {"", "", ctx.origin()}; }

int run_create(Context& ctx, const TokenOptions& o) {
  auto role = rt::parse_role(o.role);
  if (!role) return ctx.error(automation::with_context(role.error(), "--role"));
  if (ctx.remote()) {
    bj::object body{{"name", o.name}, {"role", o.role}};
    if (!o.expires_in.empty()) body["expires_in"] = o.expires_in;
    auto t = ctx.api("POST", "/api/v1/tokens", bj::value(body));
    if (!t) return ctx.error(t.error());
    if (ctx.global.json)
      ctx.print_json(*t);
    else
      fmt::print("{}\n", std::string_view(t->at("token").as_string()));
    return ex_ok;
  }
  std::optional<TimePoint> expires;
  if (!o.expires_in.empty()) {
    auto d = automation::parse_duration(o.expires_in);
    if (!d) return ctx.error(automation::with_context(d.error(), "--expires-in"));
    expires = automation::SystemClock::instance().now() + *d;
  }
  auto store = ctx.open_store(Context::Access::write);
  if (!store) return ctx.error(store.error());
  rt::AccessControl access(**store, automation::SystemClock::instance());
  auto t = access.create(o.name, *role, ctx.actor(), expires, call_of(ctx));
  if (!t) return ctx.error(t.error());
  if (ctx.global.json) {
    auto j = token_record_json(t->record);
    j["token"] = t->token;
    ctx.print_json(j);
  } else {
    // The token alone on stdout (for `TOKEN=$(autoctl token create ...)`); the rest on stderr.
    fmt::print("{}\n", t->token);
    if (!ctx.global.quiet)
      fmt::print(stderr, "token {} (\"{}\", role {}) created; it is shown this once: send it as \"Authorization: Bearer <token>\"\n",
                 t->record.id, t->record.name, t->record.role);
  }
  return ex_ok;
}

int run_list(Context& ctx, const TokenOptions& o) {
  auto store = ctx.open_store_or_empty();
  if (!store) return ctx.error(store.error());
  auto list = (*store)->list_tokens(o.all);
  if (!list) return ctx.error(list.error());
  if (ctx.global.json) {
    bj::array items;
    for (const auto& t : *list) items.push_back(token_record_json(t));
    ctx.print_json(bj::object{{"tokens", std::move(items)}});
    return ex_ok;
  }
  if (list->empty()) {
    fmt::print(stderr, "no tokens (create one: autoctl token create --name NAME --role viewer|operator|admin)\n");
    return ex_ok;
  }
  fmt::print("{:<22} {:<24} {:<9} {:<21} {:<21} {}\n", "ID", "NAME", "ROLE", "CREATED", "LAST USED", "STATE");
  const auto now = automation::SystemClock::instance().now();
  for (const auto& t : *list) {
    const auto state = t.revoked != TimePoint{} ? "revoked" : t.expires != TimePoint{} && now >= t.expires ? "expired" : "active";
    fmt::print("{:<22} {:<24} {:<9} {:<21} {:<21} {}\n", t.id, t.name, t.role, automation::format_timestamp(t.created),
               t.last_used == TimePoint{} ? "-" : automation::format_timestamp(t.last_used), state);
  }
  return ex_ok;
}

int run_revoke(Context& ctx, const TokenOptions& o) {
  auto store = ctx.open_store(Context::Access::write);
  if (!store) return ctx.error(store.error());
  rt::AccessControl access(**store, automation::SystemClock::instance());
  auto r = access.revoke(o.id, ctx.actor(), o.reason.empty() ? "revoked from the command line" : o.reason, call_of(ctx));
  if (!r) return ctx.error(r.error());
  if (ctx.global.json)
    ctx.print_json(token_record_json(*r));
  else if (!ctx.global.quiet)
    fmt::print("token {} (\"{}\") revoked; a running daemon refuses it within 5 s\n", r->id, r->name);
  return ex_ok;
}

}  // namespace

void register_token(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<TokenOptions>();
  auto* token = app.add_subcommand("token", "API bearer tokens for autoctl serve: create, list, revoke");
  token->require_subcommand(1);
  token->footer(
      "Roles: viewer (read), operator (run workflows, scale, reset breakers, pause), admin (tokens, audit log).\n"
      "Only a hash of each token is stored; the token is printed once, when it is created.");
  auto* create = token->add_subcommand("create", "Create a token and print it (once)");
  create->add_option("--name", o->name, "What the token is for (unique among live tokens)")->required();
  create->add_option("--role", o->role, "viewer, operator or admin")->required();
  create->add_option("--expires-in", o->expires_in, "It stops working after this long (e.g. 90d); default: never");
  create->callback([&ctx, o] {
    ctx.remote_capable = true;
    ctx.run = [&ctx, o] { return run_create(ctx, *o); };
  });
  auto* list = token->add_subcommand("list", "The tokens (never their secrets)");
  list->add_flag("--all", o->all, "Include revoked tokens");
  list->callback([&ctx, o] {
    ctx.remote_capable = true;
    ctx.run = [&ctx, o] {
      return ctx.remote() ? ctx.print_api(ctx.api("GET", o->all ? "/api/v1/tokens?revoked=true" : "/api/v1/tokens")) : run_list(ctx, *o);
    };
  });
  auto* revoke = token->add_subcommand("revoke", "Revoke a token by id or name");
  revoke->add_option("token", o->id, "The token's id (atk_...) or name")->required();
  revoke->add_option("--reason", o->reason, "Why (kept in the audit trail)");
  revoke->callback([&ctx, o] {
    ctx.remote_capable = true;
    ctx.run = [&ctx, o] {
      return ctx.remote()
                 ? ctx.print_api(ctx.api("DELETE", "/api/v1/tokens/" + Context::encode(o->id) + Context::query({{"reason", o->reason}})))
                 : run_revoke(ctx, *o);
    };
  });
}

}  // namespace autoctl
