// SqliteStore: the workflow-run and schedule areas (schema migration 4).
#include "storage/sqlite_impl.hpp"

#include <automation/storage/store.hpp>

#include <fmt/format.h>

#include <variant>

namespace automation::storage {

namespace {

constexpr std::string_view kRunColumns =
    "id, workflow, definition, params, state, trigger, correlation_id, priority, concurrency_key, parent_run_id, queued_ms, started_ms, "
    "ended_ms, reason, owner, lease_until_ms, cancel_requested, cancel_reason, version";

Result<RunState> state_at(const sq::Statement& st, int col, std::string_view what) {
  auto s = parse_run_state(st.text_view(col));
  if (!s) return fail(errc::corrupt, fmt::format("{}: {}", what, s.error().message));
  return *s;
}

std::optional<int> optional_int(const sq::Statement& st, int col) {
  if (st.is_null(col)) return std::nullopt;
  return static_cast<int>(st.int64(col));
}

void bind_optional(sq::Statement& st, int i, const std::optional<int>& v) {
  if (v)
    st.bind(i, *v);
  else
    st.bind_null(i);
}

Result<RunRecord> read_run(const sq::Statement& st) {
  RunRecord r;
  r.id = st.int64(0);
  r.workflow = st.text(1);
  r.definition = st.text(2);
  r.params = st.text(3);
  auto state = state_at(st, 4, fmt::format("workflow run {}", r.id));
  if (!state) return state.error();
  r.state = *state;
  r.trigger = st.text(5);
  r.correlation_id = st.text(6);
  r.priority = static_cast<int>(st.int64(7));
  r.concurrency_key = st.text(8);
  r.parent_run_id = st.int64(9);
  r.queued_at = from_epoch_ms(st.int64(10));
  r.started_at = from_epoch_ms(st.int64(11));
  r.ended_at = from_epoch_ms(st.int64(12));
  r.reason = st.text(13);
  r.owner = st.text(14);
  r.lease_until = from_epoch_ms(st.int64(15));
  r.cancel_requested = st.int64(16) != 0;
  r.cancel_reason = st.text(17);
  r.version = st.int64(18);
  return r;
}

// A step row is updated in place; only a new one (a compensation) reads the next sequence number.
constexpr std::string_view kUpdateStep =
    "UPDATE workflow_step SET state = ?3, attempts = ?4, started_ms = ?5, ended_ms = ?6, exit_code = ?7, outputs = ?8, reason = ?9 WHERE "
    "run_id = ?1 AND step = ?2";
constexpr std::string_view kInsertStep =
    "INSERT INTO workflow_step (run_id, step, seq, state, attempts, started_ms, ended_ms, exit_code, outputs, reason) VALUES (?1, ?2, "
    "(SELECT coalesce(max(seq), 0) + 1 FROM workflow_step WHERE run_id = ?1), ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

constexpr std::string_view kUpsertAttempt =
    "INSERT INTO workflow_attempt (run_id, step, attempt, state, started_ms, ended_ms, exit_code, stdout, stderr, error, pid, pid_start) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT (run_id, step, attempt) DO UPDATE SET state = excluded.state, "
    "started_ms = excluded.started_ms, ended_ms = excluded.ended_ms, exit_code = excluded.exit_code, stdout = excluded.stdout, stderr = "
    "excluded.stderr, error = excluded.error, pid = excluded.pid, pid_start = excluded.pid_start";

}  // namespace

void SqliteStore::Impl::bind_fire(sq::Statement& q, const FireRecord& f) {
  q.bind(1, std::string_view(f.schedule));
  q.bind(2, to_epoch_ms(f.fire_time));
  q.bind(3, f.event_id);
  q.bind(4, f.run_id);
  q.bind(5, std::string_view(f.outcome));
  q.bind(6, std::string_view(f.reason));
  q.bind(7, to_epoch_ms(f.recorded));
}

Result<void> SqliteStore::Impl::upsert_steps(std::int64_t run_id, std::span<const StepRecord> steps) {
  for (const auto& s : steps) {
    for (const auto sql : {kUpdateStep, kInsertStep}) {
      auto st = cached(sql);
      if (!st) return st.error();
      auto& q = **st;
      q.bind(1, run_id);
      q.bind(2, std::string_view(s.step));
      q.bind(3, to_string(s.state));
      q.bind(4, s.attempts);
      q.bind(5, to_epoch_ms(s.started));
      q.bind(6, to_epoch_ms(s.ended));
      bind_optional(q, 7, s.exit_code);
      q.bind(8, std::string_view(s.outputs));
      q.bind(9, std::string_view(s.reason));
      auto r = q.step("write a workflow step");
      q.reset();
      if (!r) return r.error();
      if (sqlite3_changes(db.get()) > 0) break;
    }
  }
  return {};
}

Result<std::int64_t> SqliteStore::create_run(const RunRecord& run, std::span<const StepRecord> steps, const FireRecord* fire) {
  if (auto v = validate(run); !v) return v.error();
  for (const auto& s : steps)
    if (auto v = validate(s); !v) return v.error();
  if (fire)
    if (auto v = validate(*fire); !v) return v.error();
  if (auto w = impl_->writable(); !w) return w.error();
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  sq::Transaction tx(impl_->db);
  if (auto e = tx.begin(); !e) return with_context(e.error(), fmt::format("create a run of '{}'", run.workflow));
  auto st = impl_->cached(
      "INSERT INTO workflow_run (workflow, definition, params, state, trigger, correlation_id, priority, concurrency_key, parent_run_id, "
      "queued_ms, started_ms, ended_ms, reason, owner, lease_until_ms, cancel_requested, cancel_reason, version) VALUES (?1, ?2, ?3, ?4, "
      "?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, 1)");
  if (!st) return st.error();
  auto& q = **st;
  q.bind(1, std::string_view(run.workflow));
  q.bind(2, std::string_view(run.definition));
  q.bind(3, std::string_view(run.params));
  q.bind(4, to_string(run.state));
  q.bind(5, std::string_view(run.trigger));
  q.bind(6, std::string_view(run.correlation_id));
  q.bind(7, run.priority);
  q.bind(8, std::string_view(run.concurrency_key));
  q.bind(9, run.parent_run_id);
  q.bind(10, to_epoch_ms(run.queued_at));
  q.bind(11, to_epoch_ms(run.started_at));
  q.bind(12, to_epoch_ms(run.ended_at));
  q.bind(13, std::string_view(run.reason));
  q.bind(14, std::string_view(run.owner));
  q.bind(15, to_epoch_ms(run.lease_until));
  q.bind(16, run.cancel_requested ? 1 : 0);
  q.bind(17, std::string_view(run.cancel_reason));
  auto done = q.step("insert a workflow run");
  q.reset();
  if (!done) return done.error();
  const std::int64_t id = sqlite3_last_insert_rowid(impl_->db.get());
  if (auto r = impl_->upsert_steps(id, steps); !r) return r.error();
  if (fire) {
    // Insert the fire, or claim it when it was recorded as buffered; anything else is a conflict.
    auto f = impl_->cached(
        "INSERT INTO schedule_fire (schedule, fire_ms, event_id, run_id, outcome, reason, recorded_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
        "ON CONFLICT (schedule, fire_ms, event_id) DO UPDATE SET run_id = excluded.run_id, outcome = excluded.outcome, reason = "
        "excluded.reason, recorded_ms = excluded.recorded_ms WHERE schedule_fire.outcome = 'buffered'");
    if (!f) return f.error();
    auto& fq = **f;
    FireRecord claimed = *fire;
    claimed.run_id = id;
    impl_->bind_fire(fq, claimed);
    auto r = fq.step("record a schedule fire");
    fq.reset();
    if (!r) return r.error();
    if (sqlite3_changes(impl_->db.get()) == 0)
      return fail(errc::conflict, fmt::format("schedule '{}' already fired at {} ms", fire->schedule, to_epoch_ms(fire->fire_time)));
  }
  if (auto e = tx.commit(); !e) return e.error();
  return id;
}

Result<std::int64_t> SqliteStore::update_run(const RunRecord& run, std::span<const StepRecord> steps,
                                             std::span<const AttemptRecord> attempts) {
  for (const auto& s : steps)
    if (auto v = validate(s); !v) return v.error();
  for (const auto& a : attempts)
    if (auto v = validate(a); !v) return v.error();
  if (auto w = impl_->writable(); !w) return w.error();
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  sq::Transaction tx(impl_->db);
  if (auto e = tx.begin(); !e) return with_context(e.error(), fmt::format("update workflow run {}", run.id));
  // Most transitions change only steps: then only the version moves (no index is touched). When a
  // run field changed too, the full update.
  for (const std::string_view sql :
       {std::string_view("UPDATE workflow_run SET version = version + 1 WHERE id = ?1 AND version = ?2 AND state = ?3 AND started_ms = ?4 "
                         "AND ended_ms = ?5 AND reason = ?6 AND owner = ?7 AND lease_until_ms = ?8 AND cancel_requested = ?9 AND "
                         "cancel_reason = ?10"),
        std::string_view(
            "UPDATE workflow_run SET state = ?3, started_ms = ?4, ended_ms = ?5, reason = ?6, owner = ?7, lease_until_ms = ?8, "
            "cancel_requested = ?9, cancel_reason = ?10, version = version + 1 WHERE id = ?1 AND version = ?2")}) {
    auto st = impl_->cached(sql);
    if (!st) return st.error();
    auto& q = **st;
    q.bind(1, run.id);
    q.bind(2, run.version);
    q.bind(3, to_string(run.state));
    q.bind(4, to_epoch_ms(run.started_at));
    q.bind(5, to_epoch_ms(run.ended_at));
    q.bind(6, std::string_view(run.reason));
    q.bind(7, std::string_view(run.owner));
    q.bind(8, to_epoch_ms(run.lease_until));
    q.bind(9, run.cancel_requested ? 1 : 0);
    q.bind(10, std::string_view(run.cancel_reason));
    auto done = q.step("update a workflow run");
    q.reset();
    if (!done) return done.error();
    if (sqlite3_changes(impl_->db.get()) > 0) break;
  }
  if (sqlite3_changes(impl_->db.get()) == 0) {
    auto cur = impl_->db.prepare("SELECT version FROM workflow_run WHERE id = ?1");
    if (!cur) return cur.error();
    cur->bind(1, run.id);
    auto row = cur->step("read a run's version");
    if (!row) return row.error();
    if (!*row) return fail(errc::not_found, fmt::format("workflow run {} does not exist", run.id));
    return fail(errc::conflict,
                fmt::format("workflow run {} is at version {}, not {}: another writer changed it", run.id, cur->int64(0), run.version));
  }
  if (auto r = impl_->upsert_steps(run.id, steps); !r) return r.error();
  for (const auto& a : attempts) {
    auto at = impl_->cached(kUpsertAttempt);
    if (!at) return at.error();
    auto& aq = **at;
    aq.bind(1, run.id);
    aq.bind(2, std::string_view(a.step));
    aq.bind(3, a.attempt);
    aq.bind(4, to_string(a.state));
    aq.bind(5, to_epoch_ms(a.started));
    aq.bind(6, to_epoch_ms(a.ended));
    bind_optional(aq, 7, a.exit_code);
    aq.bind(8, std::string_view(a.stdout_text));
    aq.bind(9, std::string_view(a.stderr_text));
    aq.bind(10, std::string_view(a.error));
    aq.bind(11, a.pid);
    aq.bind(12, a.pid_start);
    auto r = aq.step("write a step attempt");
    aq.reset();
    if (!r) return r.error();
  }
  if (auto e = tx.commit(); !e) return e.error();
  return run.version + 1;
}

Result<std::optional<RunRecord>> SqliteStore::get_run(std::int64_t id) {
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  auto st = impl_->db.prepare(fmt::format("SELECT {} FROM workflow_run WHERE id = ?1", kRunColumns));
  if (!st) return st.error();
  st->bind(1, id);
  auto row = st->step("read a workflow run");
  if (!row) return row.error();
  if (!*row) return std::optional<RunRecord>();
  auto r = read_run(*st);
  if (!r) return r.error();
  return std::optional<RunRecord>(std::move(r.value()));
}

Result<std::vector<RunRecord>> SqliteStore::list_runs(const RunQuery& q) {
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  std::string where = " WHERE 1=1";
  std::vector<std::variant<std::int64_t, std::string>> binds;
  auto add = [&](std::string_view cond, std::variant<std::int64_t, std::string> v) {
    binds.push_back(std::move(v));
    where += fmt::format(" AND {} ?{}", cond, binds.size());
  };
  if (q.workflow) add("workflow =", *q.workflow);
  if (q.since) add("queued_ms >=", to_epoch_ms(*q.since));
  if (q.until) add("queued_ms <", to_epoch_ms(*q.until));
  if (q.parent_run_id) add("parent_run_id =", *q.parent_run_id);
  if (!q.states.empty()) {
    where += " AND state IN (";
    for (std::size_t i = 0; i < q.states.size(); ++i) {
      binds.emplace_back(std::string(to_string(q.states[i])));
      where += fmt::format("{}?{}", i ? ", " : "", binds.size());
    }
    where += ")";
  }
  std::string sql = fmt::format("SELECT {} FROM workflow_run{} ORDER BY id {}", kRunColumns, where, q.newest_first ? "DESC" : "ASC");
  if (q.limit) sql += fmt::format(" LIMIT {}", q.limit);
  auto st = impl_->db.prepare(sql);
  if (!st) return st.error();
  for (std::size_t i = 0; i < binds.size(); ++i) std::visit([&](const auto& v) { st->bind(static_cast<int>(i + 1), v); }, binds[i]);
  std::vector<RunRecord> out;
  for (;;) {
    auto row = st->step("list workflow runs");
    if (!row) return row.error();
    if (!*row) break;
    auto r = read_run(*st);
    if (!r) return r.error();
    out.push_back(std::move(r.value()));
  }
  return out;
}

Result<std::vector<StepRecord>> SqliteStore::run_steps(std::int64_t run_id) {
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  auto st = impl_->db.prepare(
      "SELECT step, state, attempts, started_ms, ended_ms, exit_code, outputs, reason FROM workflow_step WHERE run_id = ?1 ORDER BY seq");
  if (!st) return st.error();
  st->bind(1, run_id);
  std::vector<StepRecord> out;
  for (;;) {
    auto row = st->step("read workflow steps");
    if (!row) return row.error();
    if (!*row) break;
    StepRecord s;
    s.run_id = run_id;
    s.step = st->text(0);
    auto state = state_at(*st, 1, fmt::format("run {} step {}", run_id, s.step));
    if (!state) return state.error();
    s.state = *state;
    s.attempts = static_cast<int>(st->int64(2));
    s.started = from_epoch_ms(st->int64(3));
    s.ended = from_epoch_ms(st->int64(4));
    s.exit_code = optional_int(*st, 5);
    s.outputs = st->text(6);
    s.reason = st->text(7);
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::vector<AttemptRecord>> SqliteStore::run_attempts(std::int64_t run_id, std::optional<std::string_view> step) {
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  auto st = impl_->db.prepare(
      "SELECT a.step, a.attempt, a.state, a.started_ms, a.ended_ms, a.exit_code, a.stdout, a.stderr, a.error, a.pid, a.pid_start FROM "
      "workflow_attempt a LEFT JOIN workflow_step s ON s.run_id = a.run_id AND s.step = a.step WHERE a.run_id = ?1 AND (?2 IS NULL OR "
      "a.step = ?2) ORDER BY s.seq, a.attempt");
  if (!st) return st.error();
  st->bind(1, run_id);
  if (step)
    st->bind(2, *step);
  else
    st->bind_null(2);
  std::vector<AttemptRecord> out;
  for (;;) {
    auto row = st->step("read step attempts");
    if (!row) return row.error();
    if (!*row) break;
    AttemptRecord a;
    a.run_id = run_id;
    a.step = st->text(0);
    a.attempt = static_cast<int>(st->int64(1));
    auto state = state_at(*st, 2, fmt::format("run {} step {} attempt {}", run_id, a.step, a.attempt));
    if (!state) return state.error();
    a.state = *state;
    a.started = from_epoch_ms(st->int64(3));
    a.ended = from_epoch_ms(st->int64(4));
    a.exit_code = optional_int(*st, 5);
    a.stdout_text = st->text(6);
    a.stderr_text = st->text(7);
    a.error = st->text(8);
    a.pid = st->int64(9);
    a.pid_start = st->int64(10);
    out.push_back(std::move(a));
  }
  return out;
}

Result<std::int64_t> SqliteStore::prune_runs(TimePoint before) {
  if (auto w = impl_->writable(); !w) return w.error();
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  auto st = impl_->db.prepare("DELETE FROM workflow_run WHERE ended_ms < ?1 AND state NOT IN ('queued', 'running')");
  if (!st) return st.error();
  st->bind(1, to_epoch_ms(before));
  if (auto e = st->step("prune workflow runs"); !e) return e.error();
  return static_cast<std::int64_t>(sqlite3_changes(impl_->db.get()));
}

namespace {
constexpr std::string_view kScheduleColumns =
    "name, paused, reason, consecutive_failures, last_fire_ms, updated_ms, updated_by, version, last_event_id";

ScheduleRecord read_schedule(const sq::Statement& st) {
  ScheduleRecord r;
  r.name = st.text(0);
  r.paused = st.int64(1) != 0;
  r.reason = st.text(2);
  r.consecutive_failures = static_cast<int>(st.int64(3));
  r.last_fire = from_epoch_ms(st.int64(4));
  r.updated = from_epoch_ms(st.int64(5));
  r.updated_by = st.text(6);
  r.version = st.int64(7);
  r.last_event_id = st.int64(8);
  return r;
}
}  // namespace

Result<std::optional<ScheduleRecord>> SqliteStore::get_schedule(std::string_view name) {
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  auto st = impl_->db.prepare(fmt::format("SELECT {} FROM schedule_state WHERE name = ?1", kScheduleColumns));
  if (!st) return st.error();
  st->bind(1, name);
  auto row = st->step("read a schedule's state");
  if (!row) return row.error();
  if (!*row) return std::optional<ScheduleRecord>();
  return std::optional<ScheduleRecord>(read_schedule(*st));
}

Result<std::vector<ScheduleRecord>> SqliteStore::list_schedules() {
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  auto st = impl_->db.prepare(fmt::format("SELECT {} FROM schedule_state ORDER BY name", kScheduleColumns));
  if (!st) return st.error();
  std::vector<ScheduleRecord> out;
  for (;;) {
    auto row = st->step("list schedule states");
    if (!row) return row.error();
    if (!*row) break;
    out.push_back(read_schedule(*st));
  }
  return out;
}

Result<std::int64_t> SqliteStore::put_schedule(const ScheduleRecord& r, std::optional<std::int64_t> expected_version) {
  if (auto v = validate(r); !v) return v.error();
  if (auto w = impl_->writable(); !w) return w.error();
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  sq::Transaction tx(impl_->db);
  if (auto e = tx.begin(); !e) return with_context(e.error(), fmt::format("write schedule '{}'", r.name));
  auto cur = impl_->checked_version("schedule_state", "schedule", r.name, expected_version);
  if (!cur) return cur.error();
  const std::int64_t current = *cur;
  auto st = impl_->db.prepare(
      fmt::format("INSERT INTO schedule_state ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (name) DO UPDATE SET paused = "
                  "excluded.paused, reason = excluded.reason, consecutive_failures = excluded.consecutive_failures, last_fire_ms = "
                  "excluded.last_fire_ms, updated_ms = excluded.updated_ms, updated_by = excluded.updated_by, version = excluded.version, "
                  "last_event_id = excluded.last_event_id",
                  kScheduleColumns));
  if (!st) return st.error();
  st->bind(1, std::string_view(r.name));
  st->bind(2, r.paused ? 1 : 0);
  st->bind(3, std::string_view(r.reason));
  st->bind(4, r.consecutive_failures);
  st->bind(5, to_epoch_ms(r.last_fire));
  st->bind(6, to_epoch_ms(r.updated));
  st->bind(7, std::string_view(r.updated_by));
  st->bind(8, current + 1);
  st->bind(9, r.last_event_id);
  if (auto e = st->step("write a schedule's state"); !e) return e.error();
  st = sq::Statement();
  if (auto e = tx.commit(); !e) return e.error();
  return current + 1;
}

Result<bool> SqliteStore::record_fire(const FireRecord& f) {
  if (auto v = validate(f); !v) return v.error();
  if (auto w = impl_->writable(); !w) return w.error();
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  auto st = impl_->cached(
      "INSERT INTO schedule_fire (schedule, fire_ms, event_id, run_id, outcome, reason, recorded_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
      "ON CONFLICT DO NOTHING");
  if (!st) return st.error();
  auto& q = **st;
  impl_->bind_fire(q, f);
  auto r = q.step("record a schedule fire");
  q.reset();
  if (!r) return r.error();
  return sqlite3_changes(impl_->db.get()) > 0;
}

namespace {
// The fires of one schedule selected by `where_order` (after "WHERE schedule = ?1 ").
Result<std::vector<FireRecord>> read_fires(sq::Connection& db, std::string_view schedule, std::string_view where_order) {
  auto st = db.prepare(fmt::format(
      "SELECT schedule, fire_ms, event_id, run_id, outcome, reason, recorded_ms FROM schedule_fire WHERE schedule = ?1 {}", where_order));
  if (!st) return st.error();
  st->bind(1, schedule);
  std::vector<FireRecord> out;
  for (;;) {
    auto row = st->step("list schedule fires");
    if (!row) return row.error();
    if (!*row) break;
    FireRecord f;
    f.schedule = st->text(0);
    f.fire_time = from_epoch_ms(st->int64(1));
    f.event_id = st->int64(2);
    f.run_id = st->int64(3);
    f.outcome = st->text(4);
    f.reason = st->text(5);
    f.recorded = from_epoch_ms(st->int64(6));
    out.push_back(std::move(f));
  }
  return out;
}
}  // namespace

Result<std::vector<FireRecord>> SqliteStore::list_fires(std::string_view schedule, std::size_t limit) {
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  return read_fires(
      impl_->db, schedule,
      limit ? fmt::format("ORDER BY fire_ms DESC, event_id DESC LIMIT {}", limit) : std::string("ORDER BY fire_ms DESC, event_id DESC"));
}

Result<std::vector<FireRecord>> SqliteStore::buffered_fires(std::string_view schedule) {
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  return read_fires(impl_->db, schedule, "AND outcome = 'buffered' ORDER BY fire_ms, event_id");  // the partial index
}

Result<std::int64_t> SqliteStore::last_event_id() {
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  // AUTOINCREMENT keeps the highest id ever given in sqlite_sequence, pruned or not.
  auto v = impl_->db.scalar_int("SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'event'), 0)", "read the last event id");
  if (!v) return v.error();
  return static_cast<std::int64_t>(*v);
}

Result<std::int64_t> SqliteStore::append_event(const EventRecord& e) {
  if (auto v = validate(e); !v) return v.error();
  if (auto w = impl_->writable(); !w) return w.error();
  std::lock_guard lock(impl_->mu);
  if (auto c = impl_->ensure_current(); !c) return c.error();
  auto st = impl_->cached("INSERT INTO event (name, time_ms, payload, source, correlation_id, depth) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  if (!st) return st.error();
  auto& q = **st;
  q.bind(1, std::string_view(e.name));
  q.bind(2, to_epoch_ms(e.time));
  q.bind(3, std::string_view(e.payload));
  q.bind(4, std::string_view(e.source));
  q.bind(5, std::string_view(e.correlation_id));
  q.bind(6, e.depth);
  auto r = q.step("append an event");
  q.reset();
  if (!r) return with_context(r.error(), fmt::format("event \"{}\"", e.name));
  return static_cast<std::int64_t>(sqlite3_last_insert_rowid(impl_->db.get()));
}

Result<std::vector<EventRecord>> SqliteStore::list_events(const EventQuery& q) {
  std::lock_guard lock(impl_->mu);
  if (auto c = impl_->ensure_current(); !c) return c.error();
  std::string sql = "SELECT id, name, time_ms, payload, source, correlation_id, depth FROM event WHERE id > ?1";
  if (q.name) sql += " AND name = ?2";
  if (q.since) sql += " AND time_ms >= ?3";
  sql += " ORDER BY id";
  if (q.limit) sql += fmt::format(" LIMIT {}", q.limit);
  auto st = impl_->db.prepare(sql);
  if (!st) return st.error();
  st->bind(1, q.after_id);
  if (q.name) st->bind(2, std::string_view(*q.name));
  if (q.since) st->bind(3, to_epoch_ms(*q.since));
  std::vector<EventRecord> out;
  for (;;) {
    auto row = st->step("list events");
    if (!row) return row.error();
    if (!*row) break;
    EventRecord e;
    e.id = st->int64(0);
    e.name = st->text(1);
    e.time = from_epoch_ms(st->int64(2));
    e.payload = st->text(3);
    e.source = st->text(4);
    e.correlation_id = st->text(5);
    e.depth = static_cast<int>(st->int64(6));
    out.push_back(std::move(e));
  }
  return out;
}

Result<std::int64_t> SqliteStore::prune_events(TimePoint before) {
  if (auto w = impl_->writable(); !w) return w.error();
  std::lock_guard lock(impl_->mu);
  if (auto c = impl_->ensure_current(); !c) return c.error();
  auto st = impl_->db.prepare("DELETE FROM event WHERE time_ms < ?1");
  if (!st) return st.error();
  st->bind(1, to_epoch_ms(before));
  if (auto e = st->step("prune events"); !e) return e.error();
  return static_cast<std::int64_t>(sqlite3_changes(impl_->db.get()));
}

}  // namespace automation::storage
