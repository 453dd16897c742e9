// AccessControl: tokens stored hashed, roles, revocation, expiry, the audit of failures and calls,
// and repeated failures from one source flagged once per window; on a manual clock and a store in
// memory.
#include <automation/core/json.hpp>
#include <automation/runtime/access.hpp>
#include <automation/storage/memory_store.hpp>
#include <automation/testing/fault_injecting_store.hpp>
#include <automation/testing/manual_clock.hpp>

#include "support/catch_result.hpp"

#include <catch2/catch.hpp>

using namespace automation;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using runtime::AccessControl;
using runtime::Role;

namespace {

std::vector<storage::AuditRecord> audit(storage::Store& store, std::string action) {
  storage::AuditQuery q;
  q.action = std::move(action);
  q.limit = 0;
  auto r = store.query_audit(q);
  REQUIRE(r);
  return *r;
}

const runtime::CallContext kCall{"127.0.0.1:5000", "corr-1"};

}  // namespace

TEST_CASE("AccessControl: a token is shown once, stored hashed, and proves its role") {
  storage::MemoryStore store;
  testing::ManualClock clock;
  AccessControl access(store, clock);
  auto t = access.create("deploy-bot", Role::operator_, "user:alice", std::nullopt, kCall);
  REQUIRE(t);
  CHECK_THAT(t->token, Contains(t->record.id + "."));
  CHECK(t->record.id.rfind("atk_", 0) == 0);
  const auto secret = t->token.substr(t->token.find('.') + 1);
  CHECK(secret.size() == 64);
  auto stored = store.get_token(t->record.id);
  REQUIRE(stored);
  REQUIRE(*stored);
  CHECK((*stored)->secret_hash.size() == 64);
  CHECK((*stored)->secret_hash != secret);
  CHECK((*stored)->role == "operator");
  auto created = audit(store, "token.create");
  REQUIRE(created.size() == 1);
  CHECK(created[0].actor == "user:alice");
  CHECK_THAT(created[0].details, !Contains(secret));

  auto who = access.authenticate("Bearer " + t->token, kCall);
  REQUIRE(who);
  CHECK(who->role == Role::operator_);
  CHECK(who->actor() == "token:deploy-bot");
  CHECK(access.authenticate("bearer  " + t->token + " ", kCall));  // the scheme is case-insensitive
  auto used = store.get_token(t->record.id);
  CHECK((*used)->last_used == clock.now());
  CHECK((*used)->last_used_from == "127.0.0.1:5000");

  // Every way of failing is unauthenticated, and audited.
  const auto id = t->record.id;
  for (const std::string& bad :
       std::vector<std::string>{"", "Basic abc", "Bearer nodot", "Bearer " + id + ".wrong", "Bearer atk_0000000000000000.x", "Bearer .x"}) {
    INFO(bad);
    auto r = access.authenticate(bad, kCall);
    REQUIRE_FALSE(r);
    CHECK(r.error().is(errc::unauthenticated));
  }
  auto failures = audit(store, "auth.failed");
  REQUIRE(failures.size() == 6);
  CHECK(failures[0].outcome == storage::AuditOutcome::denied);
  CHECK(failures[0].origin == "http 127.0.0.1:5000");
  CHECK(failures[0].correlation_id == "corr-1");
  bool named = false;
  for (const auto& f : failures) named = named || (f.actor == "token:deploy-bot" && f.reason.find("wrong secret") != std::string::npos);
  CHECK(named);
  CHECK(access.failures() == 6);
  CHECK_FALSE(access.create("deploy-bot", Role::viewer, "user:alice", std::nullopt));  // a live name is unique
}

TEST_CASE("AccessControl: revocation works at once here and within the cache time elsewhere, and tokens expire") {
  storage::MemoryStore store;
  testing::ManualClock clock;
  AccessControl here(store, clock), elsewhere(store, clock);
  auto t = here.create("ci", Role::viewer, "user:alice", clock.now() + 1h);
  REQUIRE(t);
  const auto header = "Bearer " + t->token;
  REQUIRE(here.authenticate(header, kCall));
  REQUIRE(elsewhere.authenticate(header, kCall));
  REQUIRE(here.revoke("ci", "user:alice", "leaked"));
  CHECK_FALSE(here.authenticate(header, kCall));
  CHECK(elsewhere.authenticate(header, kCall));  // cached in the other process for up to 5 s
  clock.advance(5s);
  auto r = elsewhere.authenticate(header, kCall);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Contains("revoked"));
  CHECK(here.revoke("ci", "user:alice", "again").error().is(errc::conflict));  // already revoked
  CHECK(here.revoke("nobody", "user:alice", "").error().is(errc::not_found));

  auto e = here.create("short", Role::admin, "user:alice", clock.now() + 1min);
  REQUIRE(e);
  CHECK(here.authenticate("Bearer " + e->token, kCall));
  clock.advance(1min);
  auto expired = here.authenticate("Bearer " + e->token, kCall);
  REQUIRE_FALSE(expired);
  CHECK_THAT(expired.error().message, Contains("expired"));
}

TEST_CASE("AccessControl: repeated failures from one address are one security event per window, and then counted") {
  storage::MemoryStore store;
  testing::ManualClock clock;
  AccessControl access(store, clock);
  for (int i = 0; i < 15; ++i)
    CHECK_FALSE(access.authenticate("Bearer atk_0000000000000000.x", {"10.0.0.9:" + std::to_string(4000 + i), ""}));
  CHECK(audit(store, "auth.failed").size() == 10);
  auto flags = audit(store, "security.auth_failures");
  REQUIRE(flags.size() == 1);
  CHECK_THAT(flags[0].reason, Contains("10 failed authentications from 10.0.0.9"));
  CHECK(access.security_events() == 1);
  // Another address is counted apart.
  CHECK_FALSE(access.authenticate("", {"10.0.0.10:1", ""}));
  CHECK(audit(store, "auth.failed").size() == 11);
  // The next window: failures are written again; its flag carries the 5 counted before.
  clock.advance(5min);
  for (int i = 0; i < 10; ++i) CHECK_FALSE(access.authenticate("", {"10.0.0.9:1", ""}));
  flags = audit(store, "security.auth_failures");
  REQUIRE(flags.size() == 2);
  CHECK_THAT(flags[0].reason, Contains("15 failed authentications"));
  CHECK(access.failures() == 26);
}

TEST_CASE("guard(): 401 with a challenge, 403 below the role, and mutating calls audited with their outcome") {
  storage::MemoryStore store;
  testing::ManualClock clock;
  AccessControl access(store, clock);
  auto viewer = access.create("v", Role::viewer, "user:a", std::nullopt);
  auto op = access.create("o", Role::operator_, "user:a", std::nullopt);
  REQUIRE(viewer);
  REQUIRE(op);
  int calls = 0;
  auto handler = runtime::guard(access, Role::operator_, "breaker.reset", "breaker:{name}",
                                [&](const runtime::HttpRequest& req, const runtime::Principal& who) {
                                  ++calls;
                                  if (req.params.at("name") == "missing")
                                    return runtime::HttpResponse::error(Error(errc::not_found, "no breaker missing"));
                                  return runtime::HttpResponse::json(200, boost::json::object{{"by", who.actor()}});
                                });
  runtime::HttpRequest req;
  req.method = "POST";
  req.path = "/api/v1/circuit-breakers/payments/reset";
  req.params = {{"name", "payments"}};
  req.remote = "127.0.0.1:7000";
  req.correlation_id = "c-9";
  auto anonymous = handler(req);
  CHECK(anonymous.status == 401);
  bool challenge = false;
  for (const auto& [k, v] : anonymous.headers) challenge = challenge || (k == "WWW-Authenticate" && v.find("Bearer") == 0);
  CHECK(challenge);
  req.headers = {{"Authorization", "Bearer " + viewer->token}};
  CHECK(handler(req).status == 403);
  req.headers = {{"Authorization", "Bearer " + op->token}};
  CHECK(handler(req).status == 200);
  req.params = {{"name", "missing"}};
  CHECK(handler(req).status == 404);
  CHECK(calls == 2);
  auto records = audit(store, "breaker.reset");
  REQUIRE(records.size() == 3);  // newest first
  CHECK(records[2].outcome == storage::AuditOutcome::denied);
  CHECK(records[2].actor == "token:v");
  CHECK(records[1].outcome == storage::AuditOutcome::success);
  CHECK(records[1].resource == "breaker:payments");
  CHECK(records[1].origin == "http 127.0.0.1:7000");
  CHECK(records[1].correlation_id == "c-9");
  CHECK(records[0].outcome == storage::AuditOutcome::failure);
  CHECK(records[0].resource == "breaker:missing");
  CHECK_THAT(records[0].reason, Contains("404: no breaker missing"));
  auto details = json::parse(records[1].details);
  REQUIRE(details);
  CHECK(details->at("status") == 200);
}

TEST_CASE("AccessControl: a token's use is written at most once a minute, and a store error is not a failed login") {
  storage::MemoryStore inner;
  testing::FaultInjectingStore store(inner);
  testing::ManualClock clock;
  AccessControl access(store, clock);
  auto t = access.create("ci", Role::viewer, "user:a", std::nullopt);
  REQUIRE(t);
  const auto header = "Bearer " + t->token;
  const auto first = clock.now();
  REQUIRE(access.authenticate(header, kCall));
  clock.advance(30s);
  REQUIRE(access.authenticate(header, kCall));
  CHECK(store.get_token(t->record.id).value()->last_used == first);  // not written again within the minute
  clock.advance(31s);
  REQUIRE(access.authenticate(header, kCall));
  CHECK(store.get_token(t->record.id).value()->last_used == clock.now());
  // The store cannot answer: the error is passed on, not counted or audited as a failed login.
  clock.advance(10s);  // past the cache
  store.fail_all_reads(errc::busy);
  auto r = access.authenticate(header, kCall);
  REQUIRE_FALSE(r);
  CHECK(r.error().is(errc::busy));
  CHECK(access.failures() == 0);
  store.clear();
  CHECK(audit(inner, "auth.failed").empty());
}
