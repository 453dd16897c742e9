#pragma once
/// Access control for an HTTP API: bearer tokens with roles, stored hashed, and the audit trail of
/// what callers did and of every failed authentication.
///
/// A token is shown once, when it is created, as "<id>.<secret>": `id` is public ("atk_" and 16 hex
/// digits, in lists and audit records), `secret` is 32 random bytes in hex, and only its SHA-256 is
/// stored. Roles are ordered: viewer (read) < operator (run, scale, reset) < admin (configure,
/// manage tokens); a route needs a minimum role.
///
/// Verified tokens are cached for `cache_ttl` (a revocation in this process takes effect at once,
/// one made by another process within `cache_ttl`); a token's use is written to the store at most
/// once per `touch_interval`. Failed authentications are audited (`auth.failed`, outcome denied,
/// with the source address and correlation id); `failure_limit` failures from one source within
/// `failure_window` are flagged as a security event (`security.auth_failures`), after which that
/// source's failures are counted rather than written one by one until the window has passed (the
/// next flag carries the count). Nobody is locked out: on loopback every client shares one address.
///
/// Thread-safety: every member may be called from several threads at once.
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>
#include <automation/runtime/http_server.hpp>
#include <automation/storage/store.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace automation::runtime {

enum class Role : std::uint8_t { viewer = 1, operator_ = 2, admin = 3 };
std::string_view to_string(Role role) noexcept;  ///< "viewer", "operator", "admin"
/// errc::invalid_argument naming the text and the roles.
Result<Role> parse_role(std::string_view text);

/// Who made a request.
struct Principal {
  std::string token_id;
  std::string name;
  Role role = Role::viewer;
  std::string actor() const { return "token:" + name; }  ///< for audit records
};

struct NewToken {
  storage::TokenRecord record;
  std::string token;  ///< "<id>.<secret>": give it to the client; it is not stored
};

struct AccessOptions {
  Duration cache_ttl = std::chrono::seconds(5);
  Duration touch_interval = std::chrono::minutes(1);
  Duration failure_window = std::chrono::minutes(5);
  int failure_limit = 10;
};

/// A request's outcome as the audit sees it.
struct CallContext {
  std::string source;          ///< "127.0.0.1:53122"
  std::string correlation_id;  ///< the request's
  std::string origin;          ///< for audit records; empty: "http <source>"
};

class AccessControl {
 public:
  AccessControl(storage::Store& store, const Clock& clock, AccessOptions options = {});
  ~AccessControl();
  AccessControl(const AccessControl&) = delete;
  AccessControl& operator=(const AccessControl&) = delete;

  /// Makes and stores a token. `name` says what it is for (unique among live tokens);
  /// `expires` nullopt: never. The creation is audited as `token.create` by `actor`.
  Result<NewToken> create(std::string name, Role role, std::string actor, std::optional<TimePoint> expires, const CallContext& call = {});
  /// Revokes a token by id or name (audited as `token.revoke`); it stops working at once here.
  Result<storage::TokenRecord> revoke(std::string_view id_or_name, std::string actor, std::string reason, const CallContext& call = {});

  /// Checks an `Authorization` header value ("Bearer <id>.<secret>"). errc::unauthenticated when it
  /// is missing, malformed, unknown, wrong, expired or revoked (the failure is audited, the message
  /// says which without revealing more than the client sent); a store error is passed on.
  Result<Principal> authenticate(std::string_view authorization, const CallContext& call);

  /// Records a call: every mutating call, allowed or not (`action`: "workflow.run", ...).
  void audit(const Principal* who, std::string action, std::string resource, storage::AuditOutcome outcome, std::string reason,
             std::string details_json, const CallContext& call);

  /// Failed authentications since this object was made (for metrics).
  std::uint64_t failures() const noexcept;
  /// Security events raised since this object was made.
  std::uint64_t security_events() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// How an answered call goes into the audit trail: success below 400, denied for 401 and 403,
/// failure otherwise.
storage::AuditOutcome audit_outcome(int status) noexcept;

/// The actor of a request nobody authenticated.
inline constexpr std::string_view kAnonymous = "anonymous";

/// Wraps a route's handler: authenticates the request, requires `minimum`, and, when `action` is
/// not empty (a mutating route), audits the call with its outcome (success below 400, denied for
/// 401/403, else failure) and resource `resource` ("{name}" filled from the route's parameter
/// :name, as in "workflow:{name}"). The handler gets the caller. 401 carries `WWW-Authenticate: Bearer`.
using GuardedHandler = std::function<HttpResponse(const HttpRequest&, const Principal&)>;
Handler guard(AccessControl& access, Role minimum, std::string action, std::string resource, GuardedHandler handler);

}  // namespace automation::runtime
