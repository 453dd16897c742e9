#include "storage/schema.hpp"

#include <array>

namespace automation::storage::detail {
namespace {

// Times are INTEGER epoch milliseconds UTC. Tables are STRICT. Each migration runs in one
// BEGIN IMMEDIATE transaction together with the PRAGMA user_version bump.
constexpr std::array<Migration, 1> kMigrations{{
    {1, "meta and audit areas", R"sql(
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;

CREATE TABLE audit_log (
  id             INTEGER PRIMARY KEY,
  ts_ms          INTEGER NOT NULL,
  actor          TEXT NOT NULL CHECK (actor <> ''),
  action         TEXT NOT NULL CHECK (action <> ''),
  resource       TEXT NOT NULL CHECK (resource <> ''),
  origin         TEXT NOT NULL,
  outcome        TEXT NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
  reason         TEXT NOT NULL,
  details        TEXT NOT NULL CHECK (json_valid(details) AND json_type(details) = 'object'),
  correlation_id TEXT NOT NULL
) STRICT;
CREATE INDEX audit_log_ts       ON audit_log (ts_ms);
CREATE INDEX audit_log_actor    ON audit_log (actor, ts_ms);
CREATE INDEX audit_log_resource ON audit_log (resource, ts_ms);

-- The audit log is append-only.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
)sql"},
}};

}  // namespace

std::span<const Migration> migrations() noexcept { return kMigrations; }

}  // namespace automation::storage::detail
