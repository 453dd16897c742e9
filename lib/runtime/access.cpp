// Bearer tokens, roles and the audit of API calls.
#include <automation/core/json.hpp>
#include <automation/core/logging.hpp>
#include <automation/core/time.hpp>
#include <automation/runtime/access.hpp>

#include "detail/names.hpp"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <boost/json.hpp>

#include <array>
#include <map>
#include <mutex>

namespace automation::runtime {

namespace st = storage;
namespace bj = boost::json;

namespace {

std::string to_hex(const unsigned char* data, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 15];
  }
  return out;
}

std::string sha256_hex(std::string_view text) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  if (EVP_Digest(text.data(), text.size(), md.data(), &len, EVP_sha256(), nullptr) != 1) return {};
  return to_hex(md.data(), len);
}

Result<std::string> random_hex(std::size_t bytes) {
  std::string buf(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(buf.data()), static_cast<int>(bytes)) != 1)
    return fail(errc::internal, "the random number generator failed");
  return to_hex(reinterpret_cast<const unsigned char*>(buf.data()), bytes);
}

bool equal_hashes(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

std::string_view to_string(Role role) noexcept {
  switch (role) {
    case Role::viewer:
      return "viewer";
    case Role::operator_:
      return "operator";
    case Role::admin:
      return "admin";
  }
  return "viewer";
}

Result<Role> parse_role(std::string_view text) { return detail::parse_name(text, {Role::viewer, Role::operator_, Role::admin}, "role"); }

struct AccessControl::Impl {
  st::Store& store;
  const Clock& clock;
  AccessOptions options;

  struct Cached {
    st::TokenRecord record;
    TimePoint fetched{};
    TimePoint touched{};
  };
  struct Source {
    TimePoint window_start{};
    int failures = 0;
    bool flagged = false;
    int unrecorded = 0;  // failures counted, not written, since the flag
  };
  std::mutex mu;
  std::map<std::string, Cached, std::less<>> cache;
  std::map<std::string, Source, std::less<>> sources;
  std::atomic<std::uint64_t> failures{0};
  std::atomic<std::uint64_t> security_events{0};
  std::uint64_t revocations = 0;  // under mu: a fetch that began before a revocation is not cached

  void append(st::AuditRecord r) {
    if (auto a = store.append_audit(std::span<const st::AuditRecord>(&r, 1)); !a)
      log(LogLevel::error, "access", fmt::format("could not record {} in the audit log: {}", r.action, a.error().message));
  }

  st::AuditRecord record(std::string actor, std::string action, std::string resource, st::AuditOutcome outcome, std::string reason,
                         std::string details, const CallContext& call) {
    st::AuditRecord r;
    r.time = clock.now();
    r.actor = std::move(actor);
    r.action = std::move(action);
    r.resource = std::move(resource);
    r.origin = call.origin.empty() ? "http " + call.source : call.origin;
    r.outcome = outcome;
    r.reason = std::move(reason);
    r.details = details.empty() ? "{}" : std::move(details);
    r.correlation_id = call.correlation_id;
    return r;
  }

  Error failed(std::string actor, std::string why, const CallContext& call) {
    failures.fetch_add(1, std::memory_order_relaxed);
    const auto now = clock.now();
    const auto host = std::string(detail::address_of(call.source));
    bool write_failure = true;
    std::optional<int> flag_count;
    {
      std::lock_guard lock(mu);
      auto& s = sources[host];
      if (s.window_start == TimePoint{} || now - s.window_start >= options.failure_window) {
        // A new window: what was counted but not written in the last one goes into the next flag.
        const int carried = s.unrecorded;
        s = Source{now, 0, false, 0};
        s.unrecorded = carried;
      }
      ++s.failures;
      if (s.flagged) {
        write_failure = false;
        ++s.unrecorded;
      } else if (s.failures >= options.failure_limit) {
        s.flagged = true;
        flag_count = s.failures + s.unrecorded;
        s.unrecorded = 0;
      }
      if (sources.size() > 10000)
        std::erase_if(sources, [&](const auto& kv) { return now - kv.second.window_start >= options.failure_window; });
    }
    if (write_failure) {
      bj::object d{{"source", call.source}};
      append(record(actor, "auth.failed", "api", st::AuditOutcome::denied, why, json::dump(d), call));
    }
    if (flag_count) {
      security_events.fetch_add(1, std::memory_order_relaxed);
      const auto reason = fmt::format(
          "{0} failed authentications from {1} within {2}; further failures from it are counted, not recorded one by one, for {2}",
          *flag_count, host, format_duration(std::chrono::duration_cast<Millis>(options.failure_window)));
      bj::object d{{"source", host}, {"failures", *flag_count}};
      append(record("system:access", "security.auth_failures", "api", st::AuditOutcome::denied, reason, json::dump(d), call));
      log(LogLevel::warn, "access", reason);
    }
    return Error(errc::unauthenticated, std::move(why));
  }
};

AccessControl::AccessControl(st::Store& store, const Clock& clock, AccessOptions options)
    : impl_(new Impl{store, clock, std::move(options)}) {}

AccessControl::~AccessControl() = default;

Result<NewToken> AccessControl::create(std::string name, Role role, std::string actor, std::optional<TimePoint> expires,
                                       const CallContext& call) {
  auto& im = *impl_;
  auto id = random_hex(8);
  if (!id) return id.error();
  auto secret = random_hex(32);
  if (!secret) return secret.error();
  NewToken out;
  auto& r = out.record;
  r.id = "atk_" + *id;
  r.name = std::move(name);
  r.role = std::string(to_string(role));
  r.secret_hash = sha256_hex(*secret);
  r.created = im.clock.now();
  r.created_by = actor;
  if (expires) r.expires = *expires;
  auto refused = [&](const Error& e) {
    im.append(im.record(actor, "token.create", "token:" + r.name, st::AuditOutcome::failure, e.message, "{}", call));
    return e;
  };
  if (auto v = st::validate(r); !v) return refused(v.error());
  if (auto c = im.store.create_token(r); !c) return refused(c.error());
  out.token = r.id + "." + *secret;
  bj::object d{{"id", r.id}, {"name", r.name}, {"role", r.role}};
  if (expires) d["expires"] = format_timestamp(*expires);
  im.append(im.record(actor, "token.create", "token:" + r.id, st::AuditOutcome::success,
                      fmt::format("token \"{}\" with role {} created", r.name, r.role), json::dump(d), call));
  return out;
}

Result<st::TokenRecord> AccessControl::revoke(std::string_view id_or_name, std::string actor, std::string reason, const CallContext& call) {
  auto& im = *impl_;
  auto r = im.store.revoke_token(id_or_name, im.clock.now(), actor, reason);
  if (!r) {
    im.append(
        im.record(actor, "token.revoke", fmt::format("token:{}", id_or_name), st::AuditOutcome::failure, r.error().message, "{}", call));
    return r.error();
  }
  {
    std::lock_guard lock(im.mu);
    im.cache.erase(r->id);
    ++im.revocations;
  }
  bj::object d{{"id", r->id}, {"name", r->name}, {"role", r->role}};
  im.append(im.record(actor, "token.revoke", "token:" + r->id, st::AuditOutcome::success, reason.empty() ? "revoked" : reason,
                      json::dump(d), call));
  return r;
}

Result<Principal> AccessControl::authenticate(std::string_view authorization, const CallContext& call) {
  auto& im = *impl_;
  const std::string anonymous(kAnonymous);
  if (authorization.empty()) return im.failed(anonymous, "no Authorization header (send \"Authorization: Bearer <token>\")", call);
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size() || !std::equal(kScheme.begin(), kScheme.end(), authorization.begin(), [](char a, char b) {
        return a == std::tolower(static_cast<unsigned char>(b));
      }))
    return im.failed(anonymous, "the Authorization header is not \"Bearer <token>\"", call);
  auto token = authorization.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  const auto dot = token.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot > 64 || dot + 1 == token.size() || token.size() > 256)
    return im.failed(anonymous, "the bearer token is not \"<id>.<secret>\"", call);
  const std::string id(token.substr(0, dot));
  const auto secret = token.substr(dot + 1);
  const auto now = im.clock.now();
  std::optional<st::TokenRecord> rec;
  bool touch = false;
  std::uint64_t revocations = 0;
  {
    std::lock_guard lock(im.mu);
    if (auto it = im.cache.find(id); it != im.cache.end() && now - it->second.fetched < im.options.cache_ttl) rec = it->second.record;
    revocations = im.revocations;
  }
  if (!rec) {
    auto got = im.store.get_token(id);
    if (!got) return got.error();
    if (!*got) return im.failed(anonymous, fmt::format("no token {}", id), call);
    rec = std::move(**got);
    std::lock_guard lock(im.mu);
    if (im.revocations != revocations) {
      // A revocation here since the read began: read again rather than cache what may be stale.
      auto again = im.store.get_token(id);
      if (!again) return again.error();
      if (!*again) return im.failed(anonymous, fmt::format("no token {}", id), call);
      rec = std::move(**again);
    }
    auto& c = im.cache[id];
    c.record = *rec;
    c.fetched = now;
    if (im.cache.size() > 10000) std::erase_if(im.cache, [&](const auto& kv) { return now - kv.second.fetched >= im.options.cache_ttl; });
  }
  const std::string actor = "token:" + rec->name;
  if (!equal_hashes(sha256_hex(secret), rec->secret_hash)) return im.failed(actor, fmt::format("wrong secret for token {}", id), call);
  if (rec->revoked != TimePoint{}) return im.failed(actor, fmt::format("token {} was revoked", id), call);
  if (rec->expires != TimePoint{} && now >= rec->expires) return im.failed(actor, fmt::format("token {} expired", id), call);
  auto role = parse_role(rec->role);
  if (!role) return im.failed(actor, fmt::format("token {} has an unknown role", id), call);
  {
    std::lock_guard lock(im.mu);
    auto& c = im.cache[id];
    if (c.touched == TimePoint{} || now - c.touched >= im.options.touch_interval) {
      c.touched = now;
      touch = true;
    }
  }
  if (touch)
    if (auto t = im.store.touch_token(id, now, call.source); !t)
      log(LogLevel::warn, "access", fmt::format("could not record the use of token {}: {}", id, t.error().message));
  return Principal{rec->id, rec->name, *role};
}

void AccessControl::audit(const Principal* who, std::string action, std::string resource, st::AuditOutcome outcome, std::string reason,
                          std::string details_json, const CallContext& call) {
  auto& im = *impl_;
  im.append(im.record(who ? who->actor() : std::string(kAnonymous), std::move(action), std::move(resource), outcome, std::move(reason),
                      std::move(details_json), call));
}

std::uint64_t AccessControl::failures() const noexcept { return impl_->failures.load(std::memory_order_relaxed); }
std::uint64_t AccessControl::security_events() const noexcept { return impl_->security_events.load(std::memory_order_relaxed); }

namespace {

/// The resource of an audit record: "{name}" in the pattern replaced by the route's parameter.
std::string fill(std::string_view pattern, const std::map<std::string, std::string>& params) {
  std::string out;
  for (std::size_t i = 0; i < pattern.size();) {
    const auto close = pattern[i] == '{' ? pattern.find('}', i) : std::string_view::npos;
    if (close != std::string_view::npos) {
      auto it = params.find(std::string(pattern.substr(i + 1, close - i - 1)));
      out += it != params.end() ? it->second : std::string(pattern.substr(i, close - i + 1));
      i = close + 1;
    } else {
      out += pattern[i++];
    }
  }
  return out;
}

std::string reason_of(const HttpResponse& r) {
  if (!r.audit_reason.empty()) return r.audit_reason;
  if (r.status < 400) return fmt::format("answered {}", r.status);
  auto v = json::parse(r.body);
  if (v && v->is_object())
    if (auto* e = v->as_object().if_contains("error"); e && e->is_object())
      if (auto* m = e->as_object().if_contains("message"); m && m->is_string())
        return fmt::format("{}: {}", r.status, std::string_view(m->as_string()));
  return fmt::format("answered {}", r.status);
}

}  // namespace

st::AuditOutcome audit_outcome(int status) noexcept {
  if (status < 400) return st::AuditOutcome::success;
  return status == 401 || status == 403 ? st::AuditOutcome::denied : st::AuditOutcome::failure;
}

Handler guard(AccessControl& access, Role minimum, std::string action, std::string resource, GuardedHandler handler) {
  return [&access, minimum, action = std::move(action), resource = std::move(resource),
          handler = std::move(handler)](const HttpRequest& req) {
    const CallContext call{req.remote, req.correlation_id};
    auto who = access.authenticate(req.header("authorization"), call);
    if (!who) {
      if (!who.error().is(errc::unauthenticated))  // the store could not say: try again later
        return HttpResponse::error(503, "unavailable", fmt::format("the token could not be checked: {}", who.error().message));
      auto r = HttpResponse::error(who.error());
      r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"automation\"");
      return r;
    }
    const auto details = [&](int status, const std::string& result = {}) {
      bj::object d{{"method", req.method}, {"path", req.path}, {"status", status}};
      if (!result.empty()) d["result"] = json::object_or_text(result);
      if (!req.query.empty()) {
        bj::object q;
        for (const auto& [k, v] : req.query) q[k] = v;
        d["query"] = std::move(q);
      }
      return json::dump(d);
    };
    if (who->role < minimum) {
      auto r =
          HttpResponse::error(403, "permission_denied",
                              fmt::format("token \"{}\" has role {}; this needs {}", who->name, to_string(who->role), to_string(minimum)));
      // A denial is audited on every route: a read beyond a token's role is worth knowing too.
      access.audit(&*who, action.empty() ? "api.denied" : action, resource.empty() ? req.path : fill(resource, req.params),
                   st::AuditOutcome::denied, fmt::format("role {} is below {}", to_string(who->role), to_string(minimum)), details(403),
                   call);
      return r;
    }
    HttpResponse r;
    try {
      r = handler(req, *who);
    } catch (const std::exception& e) {
      // Recorded like any failed call; the router logs it and answers 500.
      if (!action.empty())
        access.audit(&*who, action, fill(resource, req.params), st::AuditOutcome::failure, fmt::format("the handler threw: {}", e.what()),
                     details(500), call);
      throw;
    }
    if (!action.empty()) {
      access.audit(&*who, action, fill(resource, req.params), audit_outcome(r.status), reason_of(r), details(r.status, r.audit_result),
                   call);
    }
    return r;
  };
}

}  // namespace automation::runtime
