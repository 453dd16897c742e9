#include "storage/schema.hpp"

#include <array>

namespace automation::storage::detail {
namespace {

// Times are INTEGER epoch milliseconds UTC. Tables are STRICT. Each migration runs in one
// BEGIN IMMEDIATE transaction together with the PRAGMA user_version bump.
constexpr std::array<Migration, 11> kMigrations{{
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
    {2, "task history and breaker areas", R"sql(
-- One row per task execution. kind_hash (domain, action) and params_hash (params) are 64-bit
-- FNV-1a hashes the statistics group by without reading the texts; params is checked as a JSON
-- object by the library before insert (checking it here would halve the insert rate).
CREATE TABLE task_history (
  id             INTEGER PRIMARY KEY,
  domain         TEXT NOT NULL CHECK (domain <> ''),
  action         TEXT NOT NULL CHECK (action <> ''),
  kind_hash      INTEGER NOT NULL,
  params         TEXT NOT NULL,
  params_hash    INTEGER NOT NULL,
  outcome        TEXT NOT NULL CHECK (outcome IN ('success', 'failure', 'timeout', 'cancelled')),
  error          TEXT NOT NULL,
  started_ms     INTEGER NOT NULL,
  ended_ms       INTEGER NOT NULL,
  duration_us    INTEGER NOT NULL CHECK (duration_us >= 0),
  impact         REAL,
  correlation_id TEXT NOT NULL
) STRICT;
CREATE INDEX task_history_started ON task_history (started_ms);

-- The shared state of named circuit breakers; version is bumped on every write (compare-and-set).
CREATE TABLE breaker_state (
  name          TEXT PRIMARY KEY CHECK (name <> ''),
  state         TEXT NOT NULL CHECK (state IN ('closed', 'open', 'half_open', 'forced_open', 'disabled', 'metrics_only')),
  open_until_ms INTEGER NOT NULL,
  open_attempt  INTEGER NOT NULL CHECK (open_attempt >= 0),
  reason        TEXT NOT NULL,
  details       TEXT NOT NULL CHECK (json_valid(details) AND json_type(details) = 'object'),
  updated_ms    INTEGER NOT NULL,
  updated_by    TEXT NOT NULL,
  version       INTEGER NOT NULL CHECK (version >= 1)
) STRICT, WITHOUT ROWID;
)sql"},
    {3, "task history hourly rollups", R"sql(
-- Per hour (of started_ms) and (domain, action): the task statistics of that hour's records as
-- rollup JSON (counts, duration sum and histogram, impact, failure texts, parameter values), kept
-- in the same transaction as the records, so statistics read whole hours from here and only the
-- raw records at a range's edges. The migration fills it from the existing records.
CREATE TABLE task_rollup (
  hour_ms   INTEGER NOT NULL,
  kind_hash INTEGER NOT NULL,
  domain    TEXT NOT NULL,
  action    TEXT NOT NULL,
  data      TEXT NOT NULL,
  PRIMARY KEY (hour_ms, kind_hash)
) STRICT, WITHOUT ROWID;
)sql"},
    {4, "workflow runs and schedules", R"sql(
-- One row per workflow run. workflow .. queued_ms are fixed at creation; the rest changes by
-- compare-and-set on version. owner and lease_until_ms say which engine runs it (crash recovery).
CREATE TABLE workflow_run (
  id               INTEGER PRIMARY KEY,
  workflow         TEXT NOT NULL CHECK (workflow <> ''),
  definition       TEXT NOT NULL,
  params           TEXT NOT NULL,
  state            TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'skipped', 'cancelled', 'timed_out', 'interrupted')),
  trigger          TEXT NOT NULL,
  correlation_id   TEXT NOT NULL,
  priority         INTEGER NOT NULL,
  concurrency_key  TEXT NOT NULL,
  parent_run_id    INTEGER NOT NULL,
  queued_ms        INTEGER NOT NULL,
  started_ms       INTEGER NOT NULL,
  ended_ms         INTEGER NOT NULL,
  reason           TEXT NOT NULL,
  owner            TEXT NOT NULL,
  lease_until_ms   INTEGER NOT NULL,
  cancel_requested INTEGER NOT NULL CHECK (cancel_requested IN (0, 1)),
  cancel_reason    TEXT NOT NULL,
  version          INTEGER NOT NULL CHECK (version >= 1)
) STRICT;
CREATE INDEX workflow_run_workflow ON workflow_run (workflow, id);
CREATE INDEX workflow_run_active   ON workflow_run (state) WHERE state IN ('queued', 'running');
CREATE INDEX workflow_run_parent   ON workflow_run (parent_run_id) WHERE parent_run_id <> 0;
CREATE INDEX workflow_run_ended    ON workflow_run (ended_ms);

CREATE TABLE workflow_step (
  run_id     INTEGER NOT NULL REFERENCES workflow_run (id) ON DELETE CASCADE,
  step       TEXT NOT NULL CHECK (step <> ''),
  seq        INTEGER NOT NULL,
  state      TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'skipped', 'cancelled', 'timed_out', 'interrupted')),
  attempts   INTEGER NOT NULL CHECK (attempts >= 0),
  started_ms INTEGER NOT NULL,
  ended_ms   INTEGER NOT NULL,
  exit_code  INTEGER,
  outputs    TEXT NOT NULL,
  reason     TEXT NOT NULL,
  PRIMARY KEY (run_id, step)
) STRICT, WITHOUT ROWID;

CREATE TABLE workflow_attempt (
  run_id     INTEGER NOT NULL REFERENCES workflow_run (id) ON DELETE CASCADE,
  step       TEXT NOT NULL,
  attempt    INTEGER NOT NULL CHECK (attempt >= 1),
  state      TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'skipped', 'cancelled', 'timed_out', 'interrupted')),
  started_ms INTEGER NOT NULL,
  ended_ms   INTEGER NOT NULL,
  exit_code  INTEGER,
  stdout     TEXT NOT NULL,
  stderr     TEXT NOT NULL,
  error      TEXT NOT NULL,
  pid        INTEGER NOT NULL,
  pid_start  INTEGER NOT NULL,
  PRIMARY KEY (run_id, step, attempt)
) STRICT;

CREATE TABLE schedule_state (
  name                 TEXT PRIMARY KEY CHECK (name <> ''),
  paused               INTEGER NOT NULL CHECK (paused IN (0, 1)),
  reason               TEXT NOT NULL,
  consecutive_failures INTEGER NOT NULL CHECK (consecutive_failures >= 0),
  last_fire_ms         INTEGER NOT NULL,
  updated_ms           INTEGER NOT NULL,
  updated_by           TEXT NOT NULL,
  version              INTEGER NOT NULL CHECK (version >= 1)
) STRICT, WITHOUT ROWID;

-- One row per schedule fire; the primary key is what makes a fire happen exactly once.
CREATE TABLE schedule_fire (
  schedule    TEXT NOT NULL CHECK (schedule <> ''),
  fire_ms     INTEGER NOT NULL,
  run_id      INTEGER NOT NULL,
  outcome     TEXT NOT NULL CHECK (outcome IN ('started', 'skipped', 'buffered')),
  reason      TEXT NOT NULL,
  recorded_ms INTEGER NOT NULL,
  PRIMARY KEY (schedule, fire_ms)
) STRICT, WITHOUT ROWID;
)sql"},
    {5, "events and event fires", R"sql(
-- Events from the host and the library; event schedules read them in id order. AUTOINCREMENT so an
-- id is never reused after a prune (schedules keep the last id they handled).
CREATE TABLE event (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  name           TEXT NOT NULL CHECK (name <> ''),
  time_ms        INTEGER NOT NULL,
  payload        TEXT NOT NULL,
  source         TEXT NOT NULL,
  correlation_id TEXT NOT NULL,
  depth          INTEGER NOT NULL CHECK (depth >= 0)
) STRICT;
CREATE INDEX event_time ON event (time_ms);

ALTER TABLE schedule_state ADD COLUMN last_event_id INTEGER NOT NULL DEFAULT 0;

-- A fire is now keyed by its event too (two events in one millisecond are two fires), and a fire
-- can be recorded as missed (outside the catch-up window).
CREATE TABLE schedule_fire_v5 (
  schedule    TEXT NOT NULL CHECK (schedule <> ''),
  fire_ms     INTEGER NOT NULL,
  event_id    INTEGER NOT NULL CHECK (event_id >= 0),
  run_id      INTEGER NOT NULL,
  outcome     TEXT NOT NULL CHECK (outcome IN ('started', 'skipped', 'buffered', 'missed')),
  reason      TEXT NOT NULL,
  recorded_ms INTEGER NOT NULL,
  PRIMARY KEY (schedule, fire_ms, event_id)
) STRICT, WITHOUT ROWID;
INSERT INTO schedule_fire_v5 SELECT schedule, fire_ms, 0, run_id, outcome, reason, recorded_ms FROM schedule_fire;
DROP TABLE schedule_fire;
ALTER TABLE schedule_fire_v5 RENAME TO schedule_fire;
CREATE INDEX schedule_fire_buffered ON schedule_fire (schedule) WHERE outcome = 'buffered';
)sql"},
    {6, "metrics: usage blocks, partials, revenue and rollups", R"sql(
-- Usage events in blocks of up to 65,536 in the library's columnar encoding (docs/metrics.md); key
-- is the content hash that makes loading idempotent.
CREATE TABLE usage_block (
  id          INTEGER PRIMARY KEY,
  key         TEXT NOT NULL UNIQUE CHECK (key <> ''),
  source      TEXT NOT NULL CHECK (source <> ''),
  first_row   INTEGER NOT NULL CHECK (first_row >= 0),
  events      INTEGER NOT NULL CHECK (events >= 1),
  first_ms    INTEGER NOT NULL,
  last_ms     INTEGER NOT NULL CHECK (last_ms >= first_ms),
  data        BLOB NOT NULL,
  recorded_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX usage_block_time   ON usage_block (last_ms, first_ms);
CREATE INDEX usage_block_source ON usage_block (source, first_row);

-- The aggregates of one block's events per local day of one time zone; usage_partial_zone says a
-- block's partials for a zone exist (a block may have none on a given day).
CREATE TABLE usage_partial (
  id        INTEGER PRIMARY KEY,
  time_zone TEXT NOT NULL,
  day       INTEGER NOT NULL,
  block_id  INTEGER NOT NULL REFERENCES usage_block (id) ON DELETE CASCADE,
  data      BLOB NOT NULL,
  UNIQUE (time_zone, day, block_id)
) STRICT;
CREATE INDEX usage_partial_block ON usage_partial (block_id);
CREATE TABLE usage_partial_zone (
  block_id  INTEGER NOT NULL REFERENCES usage_block (id) ON DELETE CASCADE,
  time_zone TEXT NOT NULL,
  PRIMARY KEY (block_id, time_zone)
) STRICT, WITHOUT ROWID;

CREATE TABLE revenue_daily (
  day             INTEGER NOT NULL,
  plan            TEXT NOT NULL CHECK (plan <> ''),
  total_revenue   REAL NOT NULL CHECK (total_revenue >= 0),
  new_subscribers INTEGER NOT NULL CHECK (new_subscribers >= 0),
  active_users    INTEGER NOT NULL CHECK (active_users >= 0),
  churn_count     INTEGER NOT NULL CHECK (churn_count >= 0),
  recorded_ms     INTEGER NOT NULL,
  PRIMARY KEY (day, plan)
) STRICT, WITHOUT ROWID;

-- Stored rollups; compare-and-set on version, and a running claim with an owner and a lease.
CREATE TABLE metric_rollup (
  time_zone       TEXT NOT NULL CHECK (time_zone <> ''),
  period          TEXT NOT NULL CHECK (period <> ''),
  state           TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed')),
  document        TEXT NOT NULL,
  usage_watermark INTEGER NOT NULL,
  revenue_digest  TEXT NOT NULL,
  started_ms      INTEGER NOT NULL,
  computed_ms     INTEGER NOT NULL,
  owner           TEXT NOT NULL,
  lease_until_ms  INTEGER NOT NULL,
  reason          TEXT NOT NULL,
  version         INTEGER NOT NULL CHECK (version >= 1),
  PRIMARY KEY (time_zone, period)
) STRICT;
CREATE INDEX metric_rollup_computed ON metric_rollup (computed_ms);
)sql"},
    {7, "delivery area; usage blocks listed without reading their data", R"sql(
-- Listing blocks without their data (every rollup's fingerprint does) read each block's whole blob:
-- recorded_ms is stored after the data, so the table row's overflow pages (about 1 MB a block) were
-- walked to reach it. This index holds every other column, so such listings never touch the table.
DROP INDEX usage_block_time;
CREATE INDEX usage_block_meta ON usage_block (last_ms, first_ms, id, key, source, first_row, events, recorded_ms);

-- Messages (rendered reports, alert notices) to targets, stored before the first attempt and
-- retried until delivered; key makes enqueueing idempotent, version is compare-and-set, and a
-- sender claims one (claimed_until_ms) before it attempts it.
CREATE TABLE delivery (
  id              INTEGER PRIMARY KEY,
  key             TEXT NOT NULL UNIQUE CHECK (key <> ''),
  subject         TEXT NOT NULL CHECK (subject <> ''),
  target          TEXT NOT NULL CHECK (target <> ''),
  content_type    TEXT NOT NULL,
  body            TEXT NOT NULL,
  state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
  attempts        INTEGER NOT NULL CHECK (attempts >= 0),
  next_attempt_ms INTEGER NOT NULL,
  claimed_until_ms INTEGER NOT NULL,
  last_error      TEXT NOT NULL,
  reason          TEXT NOT NULL,
  created_ms      INTEGER NOT NULL,
  updated_ms      INTEGER NOT NULL,
  version         INTEGER NOT NULL CHECK (version >= 1)
) STRICT;
CREATE INDEX delivery_due     ON delivery (state, next_attempt_ms);
CREATE INDEX delivery_subject ON delivery (subject, id);
)sql"},
    {8, "samples, alerts and forecasts", R"sql(
-- Sampled values of metric series; appending a point whose (name, labels, time) exists replaces its
-- value. Keyed by name then time, so reading one metric over a window (every series of it, as an
-- alert rule does) is one range of the key; the time index serves pruning.
CREATE TABLE metric_point (
  name    TEXT NOT NULL CHECK (name <> ''),
  labels  TEXT NOT NULL,
  time_ms INTEGER NOT NULL,
  value   REAL NOT NULL,
  PRIMARY KEY (name, time_ms, labels)
) STRICT, WITHOUT ROWID;
CREATE INDEX metric_point_time ON metric_point (time_ms);

-- One row per firing episode of an alert rule for one label set; version is compare-and-set. The
-- partial unique index allows one firing alert per (rule, labels) across every process.
-- AUTOINCREMENT so an id (which notices and acknowledgements name) is never reused after a prune.
CREATE TABLE alert (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  rule            TEXT NOT NULL CHECK (rule <> ''),
  labels          TEXT NOT NULL,
  severity        TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
  state           TEXT NOT NULL CHECK (state IN ('firing', 'resolved')),
  summary         TEXT NOT NULL,
  values_json     TEXT NOT NULL CHECK (json_valid(values_json) AND json_type(values_json) = 'object'),
  active_since_ms INTEGER NOT NULL,
  fired_ms        INTEGER NOT NULL,
  resolved_ms     INTEGER NOT NULL,
  acknowledged_ms INTEGER NOT NULL,
  acknowledged_by TEXT NOT NULL,
  ack_reason      TEXT NOT NULL,
  notified_state  TEXT NOT NULL CHECK (notified_state IN ('', 'firing', 'resolved')),
  notified_ms     INTEGER NOT NULL,
  level           INTEGER NOT NULL CHECK (level >= 0),
  reopened        INTEGER NOT NULL CHECK (reopened >= 0),
  reason          TEXT NOT NULL,
  updated_ms      INTEGER NOT NULL,
  version         INTEGER NOT NULL CHECK (version >= 1)
) STRICT;
CREATE UNIQUE INDEX alert_firing ON alert (rule, labels) WHERE state = 'firing';
CREATE INDEX alert_rule ON alert (rule, labels, id);

-- One row per stored forecast of a daily metric: what was predicted for which days, by which method,
-- from which history, kept to compare with the actuals as they arrive. AUTOINCREMENT so an id (which
-- accuracy reports name) is never reused after a prune; the created index serves pruning.
CREATE TABLE forecast (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  metric     TEXT NOT NULL CHECK (metric <> ''),
  time_zone  TEXT NOT NULL CHECK (time_zone <> ''),
  created_ms INTEGER NOT NULL,
  first_day  INTEGER NOT NULL,
  horizon    INTEGER NOT NULL CHECK (horizon >= 1),
  method     TEXT NOT NULL CHECK (method <> ''),
  backend    TEXT NOT NULL CHECK (backend IN ('statistical', 'llm')),
  document   TEXT NOT NULL CHECK (json_valid(document) AND json_type(document) = 'object'),
  inputs     TEXT NOT NULL CHECK (json_valid(inputs) AND json_type(inputs) = 'object'),
  reason     TEXT NOT NULL
) STRICT;
CREATE INDEX forecast_metric  ON forecast (metric, id);
CREATE INDEX forecast_created ON forecast (created_ms);
)sql"},
    {9, "scaling and healing history", R"sql(
-- One row per scaling decision or action on a named resource (every evaluation of the scaler, every
-- manual action, dry run and change of thresholds); the scaler rebuilds its windows, cooldowns and
-- counters from them. An appender that must not race another compares the resource's newest id
-- (index on (resource, id)) inside its write transaction. AUTOINCREMENT so an id is never reused
-- after a prune; the time index serves pruning, and the partial index finds each resource's newest
-- thresholds record, which pruning keeps.
CREATE TABLE scaling_record (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  resource         TEXT NOT NULL CHECK (length(resource) BETWEEN 1 AND 100 AND resource GLOB '[A-Za-z0-9]*'
                                       AND resource NOT GLOB '*[^A-Za-z0-9_.-]*'),
  action           TEXT NOT NULL CHECK (action IN ('decide', 'scale-up', 'scale-down', 'restart', 'thresholds')),
  time_ms          INTEGER NOT NULL,
  actor            TEXT NOT NULL,
  current_size     INTEGER NOT NULL CHECK (current_size >= 0),
  recommended_size INTEGER NOT NULL CHECK (recommended_size >= 0),
  desired_size     INTEGER NOT NULL CHECK (desired_size >= 0),
  reason           TEXT NOT NULL,
  message          TEXT NOT NULL,
  inputs           TEXT NOT NULL CHECK (json_valid(inputs) AND json_type(inputs) = 'object'),
  active           INTEGER NOT NULL CHECK (active IN (0, 1)),
  metrics_ok       INTEGER NOT NULL CHECK (metrics_ok IN (0, 1)),
  dry_run          INTEGER NOT NULL CHECK (dry_run IN (0, 1)),
  outcome          TEXT NOT NULL CHECK (outcome IN ('pending', 'applied', 'unchanged', 'blocked', 'failed', 'dry-run')),
  error            TEXT NOT NULL,
  updated_ms       INTEGER NOT NULL
) STRICT;
CREATE INDEX scaling_record_resource   ON scaling_record (resource, id);
CREATE INDEX scaling_record_time       ON scaling_record (time_ms);
CREATE INDEX scaling_record_thresholds ON scaling_record (resource, id) WHERE action = 'thresholds';

-- One row per event in the life of a health target: a change of its state, a healing step (kind
-- 'action', with its outcome), an operator's pause or resume; the healer rebuilds its restart budget
-- and backoff from them. AUTOINCREMENT so an id is never reused after a prune; the time index serves
-- pruning.
CREATE TABLE healing_record (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  target     TEXT NOT NULL CHECK (length(target) BETWEEN 1 AND 100 AND target GLOB '[A-Za-z0-9]*'
                                  AND target NOT GLOB '*[^A-Za-z0-9_.-]*'),
  time_ms    INTEGER NOT NULL,
  kind       TEXT NOT NULL CHECK (kind IN ('state', 'action', 'pause', 'resume')),
  state      TEXT NOT NULL CHECK (state IN ('unknown', 'healthy', 'unhealthy', 'healing', 'quarantined', 'paused')),
  action     TEXT NOT NULL,
  step       INTEGER NOT NULL CHECK (step >= 0),
  attempt    INTEGER NOT NULL CHECK (attempt >= 0),
  actor      TEXT NOT NULL,
  reason     TEXT NOT NULL,
  detail     TEXT NOT NULL CHECK (json_valid(detail) AND json_type(detail) = 'object'),
  dry_run    INTEGER NOT NULL CHECK (dry_run IN (0, 1)),
  outcome    TEXT NOT NULL,
  error      TEXT NOT NULL,
  updated_ms INTEGER NOT NULL,
  CHECK (kind = 'action' AND action IN ('restart', 'command', 'workflow', 'callback', 'wait', 'alert', 'quarantine')
         AND outcome IN ('pending', 'succeeded', 'failed', 'skipped', 'dry-run')
         OR kind <> 'action' AND action = '' AND outcome = '')
) STRICT;
CREATE INDEX healing_record_target ON healing_record (target, id);
CREATE INDEX healing_record_time   ON healing_record (time_ms);
)sql"},
    {10, "api tokens", R"sql(
-- One row per API bearer token. The secret is never stored, only its SHA-256 (lowercase hex); the id
-- is public. Names are unique among the tokens not revoked (the partial unique index holds that
-- across every process); a revoked token keeps its name, which a new token may then take. Listing
-- goes by creation time then id.
CREATE TABLE api_token (
  id             TEXT PRIMARY KEY CHECK (length(id) BETWEEN 3 AND 64 AND id NOT GLOB '*[^a-z0-9_]*'),
  name           TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  role           TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
  secret_hash    TEXT NOT NULL CHECK (length(secret_hash) = 64 AND secret_hash NOT GLOB '*[^0-9a-f]*'),
  created_ms     INTEGER NOT NULL,
  created_by     TEXT NOT NULL CHECK (created_by <> ''),
  expires_ms     INTEGER NOT NULL,
  revoked_ms     INTEGER NOT NULL,
  revoked_by     TEXT NOT NULL,
  revoke_reason  TEXT NOT NULL,
  last_used_ms   INTEGER NOT NULL,
  last_used_from TEXT NOT NULL,
  CHECK (revoked_ms <> 0 AND revoked_by <> '' OR revoked_ms = 0 AND revoked_by = '' AND revoke_reason = '')
) STRICT, WITHOUT ROWID;
CREATE UNIQUE INDEX api_token_live_name ON api_token (name) WHERE revoked_ms = 0;
CREATE INDEX api_token_created ON api_token (created_ms, id);
)sql"},
    {11, "registry", R"sql(
-- One row per node of the registry: a host, daemon or service that registers itself and sends
-- heartbeats, or an HTTP service a discovery scan found. Writers coordinate by compare-and-set on
-- `version`, which every write increases by one. `services`, `depends_on` and `labels` are JSON
-- (their inner shape is checked by storage::validate); ttl_ms 0 never expires.
CREATE TABLE registry_nodes (
  id             TEXT PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 100 AND id GLOB '[A-Za-z0-9]*' AND id NOT GLOB '*[^A-Za-z0-9_.-]*'),
  kind           TEXT NOT NULL CHECK (length(kind) BETWEEN 1 AND 64),
  address        TEXT NOT NULL CHECK (length(address) <= 512),
  source         TEXT NOT NULL CHECK (source IN ('registered', 'discovered')),
  services       TEXT NOT NULL CHECK (json_valid(services) AND json_type(services) = 'array'),
  depends_on     TEXT NOT NULL CHECK (json_valid(depends_on) AND json_type(depends_on) = 'array'),
  labels         TEXT NOT NULL CHECK (json_valid(labels) AND json_type(labels) = 'object'),
  state          TEXT NOT NULL CHECK (state IN ('up', 'down')),
  reason         TEXT NOT NULL,
  registered_ms  INTEGER NOT NULL,
  last_seen_ms   INTEGER NOT NULL,
  state_since_ms INTEGER NOT NULL,
  ttl_ms         INTEGER NOT NULL CHECK (ttl_ms >= 0),
  updated_by     TEXT NOT NULL CHECK (updated_by <> ''),
  version        INTEGER NOT NULL CHECK (version >= 1)
) STRICT, WITHOUT ROWID;

-- One row per discovery scan: the addresses it tried and what answered. AUTOINCREMENT so an id is
-- never reused after a prune; the index on started_ms serves pruning.
CREATE TABLE discovery_scans (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  started_ms  INTEGER NOT NULL,
  finished_ms INTEGER NOT NULL,
  actor       TEXT NOT NULL CHECK (actor <> ''),
  reason      TEXT NOT NULL,
  targets     TEXT NOT NULL CHECK (json_valid(targets) AND json_type(targets) = 'array'),
  found       TEXT NOT NULL CHECK (json_valid(found) AND json_type(found) = 'array'),
  added       INTEGER NOT NULL CHECK (added >= 0),
  lost        INTEGER NOT NULL CHECK (lost >= 0),
  error       TEXT NOT NULL,
  CHECK (finished_ms >= started_ms)
) STRICT;
CREATE INDEX discovery_scans_started ON discovery_scans (started_ms);
)sql"},
}};

}  // namespace

std::span<const Migration> migrations() noexcept { return kMigrations; }

}  // namespace automation::storage::detail
