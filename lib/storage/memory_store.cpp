#include <automation/storage/memory_store.hpp>

#include "storage/audit_match.hpp"
#include "storage/history_check.hpp"
#include "storage/task_stats.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <tuple>

namespace automation::storage {

struct MemoryStore::State {
  std::mutex mu;
  std::vector<AuditRecord> audit;
  std::int64_t next_audit_id = 1;
  std::vector<TaskRecord> tasks;  // in id order
  std::int64_t next_task_id = 1;
  std::map<std::string, BreakerRecord, std::less<>> breakers;
  struct Run {
    RunRecord record;
    std::vector<StepRecord> steps;        // creation order
    std::vector<AttemptRecord> attempts;  // insertion order
  };
  std::map<std::int64_t, Run> runs;
  std::int64_t next_run_id = 1;
  std::map<std::string, ScheduleRecord, std::less<>> schedules;
  using FireKey = std::tuple<std::string, std::int64_t, std::int64_t>;  // schedule, fire ms, event id
  std::map<FireKey, FireRecord> fires;
  std::vector<EventRecord> events;  // in id order
  std::int64_t next_event_id = 1;
  // metrics
  std::map<std::int64_t, UsageBlockRecord> blocks;
  std::map<std::string, std::int64_t, std::less<>> block_keys;
  std::int64_t next_block_id = 1;
  using PartialKey = std::tuple<std::string, std::int32_t, std::int64_t>;  // zone, day, block
  std::map<PartialKey, UsagePartialRecord> partials;
  std::set<std::pair<std::int64_t, std::string>> partials_present;  // (block, zone)
  std::map<std::pair<std::int32_t, std::string>, RevenueRow> revenue;
  std::map<std::pair<std::string, std::string>, RollupRecord> rollups;  // (zone, period)
  std::map<std::int64_t, DeliveryRecord> deliveries;
  std::map<std::string, std::int64_t, std::less<>> delivery_keys;
  std::int64_t next_delivery_id = 1;
  using PointKey = std::tuple<std::string, std::string, std::int64_t>;  // name, labels, time ms
  std::map<PointKey, double> points;
  std::map<std::int64_t, AlertRecord> alerts;
  std::int64_t next_alert_id = 1;
  std::map<std::int64_t, ForecastRecord> forecasts;
  std::int64_t next_forecast_id = 1;
  std::map<std::int64_t, ScalingRecord> scaling;
  std::int64_t next_scaling_id = 1;
  std::map<std::int64_t, HealingRecord> healing;
  std::int64_t next_healing_id = 1;
  std::map<std::string, TokenRecord, std::less<>> tokens;  // by id
  std::map<std::string, NodeRecord, std::less<>> nodes;    // by id
  std::map<std::int64_t, ScanRecord> scans;
  std::int64_t next_scan_id = 1;

  // Stores a block's partials for a zone and marks them present (the caller holds mu).
  // Marks a block's partials for a zone present and stores them; nothing when present already.
  void insert_partials(std::int64_t block_id, const std::string& zone, std::span<const UsagePartialRecord> parts) {
    if (!partials_present.emplace(block_id, zone).second) return;
    for (const auto& p : parts) partials[{zone, p.day, block_id}] = UsagePartialRecord{block_id, zone, p.day, p.data};
  }
};

namespace {
// Match SQLite's storage resolution so both backends return identical records.
TimePoint at_ms(TimePoint t) { return from_epoch_ms(to_epoch_ms(t)); }
Duration at_us(Duration d) { return std::chrono::duration_cast<Duration>(std::chrono::duration_cast<std::chrono::microseconds>(d)); }

// The stored version of the record at `key` in a map of versioned records (0: none), or
// errc::conflict when it is not `expected`; `shown` names it in the message (which matches
// SqliteStore's).
template <class Map>
Result<std::int64_t> checked_version(const Map& m, std::string_view what, const typename Map::key_type& key, std::string_view shown,
                                     std::optional<std::int64_t> expected) {
  auto it = m.find(key);
  const std::int64_t current = it == m.end() ? 0 : it->second.version;
  if (expected && *expected != current)
    return fail(errc::conflict,
                fmt::format("{} '{}' is at version {}, not {}: another writer changed it", what, shown, current, *expected));
  return current;
}

bool in_range(const TaskRecord& r, const std::optional<TimePoint>& since, const std::optional<TimePoint>& until) {
  return (!since || r.started >= at_ms(*since)) && (!until || r.started < at_ms(*until));
}

// The records (kept in id order) that `keep` accepts, oldest or newest first, at most `limit` (0: all).
template <class R, class Keep>
std::vector<R> select(const std::vector<R>& all, bool newest_first, std::size_t limit, Keep&& keep) {
  std::vector<R> out;
  auto take = [&](const R& r) {
    if (!keep(r)) return true;
    out.push_back(r);
    return limit == 0 || out.size() < limit;
  };
  if (newest_first) {
    for (auto it = all.rbegin(); it != all.rend(); ++it)
      if (!take(*it)) break;
  } else {
    for (const auto& r : all)
      if (!take(r)) break;
  }
  return out;
}
}  // namespace

MemoryStore::MemoryStore() : state_(std::make_unique<State>()) {}
MemoryStore::~MemoryStore() = default;

Result<StoreInfo> MemoryStore::info() {
  std::lock_guard lock(state_->mu);
  StoreInfo info;
  info.backend = "memory";
  info.location = "memory:";
  info.schema_version = info.latest_schema_version = latest_schema_version();
  info.areas.push_back({"audit", "audit_log", static_cast<std::int64_t>(state_->audit.size())});
  info.areas.push_back({"tasks", "task_history", static_cast<std::int64_t>(state_->tasks.size())});
  info.areas.push_back({"breakers", "breaker_state", static_cast<std::int64_t>(state_->breakers.size())});
  info.areas.push_back({"workflow runs", "workflow_run", static_cast<std::int64_t>(state_->runs.size())});
  info.areas.push_back({"schedules", "schedule_state", static_cast<std::int64_t>(state_->schedules.size())});
  info.areas.push_back({"usage events", "usage_block", static_cast<std::int64_t>(state_->blocks.size())});
  info.areas.push_back({"revenue", "revenue_daily", static_cast<std::int64_t>(state_->revenue.size())});
  info.areas.push_back({"rollups", "metric_rollup", static_cast<std::int64_t>(state_->rollups.size())});
  info.areas.push_back({"deliveries", "delivery", static_cast<std::int64_t>(state_->deliveries.size())});
  info.areas.push_back({"samples", "metric_point", static_cast<std::int64_t>(state_->points.size())});
  info.areas.push_back({"alerts", "alert", static_cast<std::int64_t>(state_->alerts.size())});
  info.areas.push_back({"forecasts", "forecast", static_cast<std::int64_t>(state_->forecasts.size())});
  info.areas.push_back({"scaling", "scaling_record", static_cast<std::int64_t>(state_->scaling.size())});
  info.areas.push_back({"healing", "healing_record", static_cast<std::int64_t>(state_->healing.size())});
  info.areas.push_back({"tokens", "api_token", static_cast<std::int64_t>(state_->tokens.size())});
  info.areas.push_back({"nodes", "registry_nodes", static_cast<std::int64_t>(state_->nodes.size())});
  info.areas.push_back({"scans", "discovery_scans", static_cast<std::int64_t>(state_->scans.size())});
  return info;
}

Result<int> MemoryStore::schema_version() { return latest_schema_version(); }

Result<MigrationReport> MemoryStore::migrate() {
  MigrationReport r;
  r.from_version = r.to_version = latest_schema_version();
  return r;
}

Result<std::int64_t> MemoryStore::append_audit(std::span<const AuditRecord> records) {
  for (const auto& r : records)
    if (auto v = validate(r); !v) return v.error();
  std::lock_guard lock(state_->mu);
  std::int64_t last = 0;
  for (const auto& r : records) {
    auto& stored = state_->audit.emplace_back(r);
    stored.time = at_ms(r.time);
    stored.id = last = state_->next_audit_id++;
  }
  return last;
}

Result<std::vector<AuditRecord>> MemoryStore::query_audit(const AuditQuery& q) {
  std::lock_guard lock(state_->mu);
  return select(state_->audit, q.newest_first, q.limit, [&](const AuditRecord& r) { return detail::matches(r, q); });
}

Result<std::int64_t> MemoryStore::append_tasks(std::span<const TaskRecord> records) {
  for (const auto& r : records)
    if (auto v = validate(r); !v) return v.error();
  std::lock_guard lock(state_->mu);
  std::int64_t last = 0;
  for (const auto& r : records) {
    auto& stored = state_->tasks.emplace_back(r);
    stored.started = at_ms(r.started);
    stored.ended = at_ms(r.ended);
    stored.duration = at_us(r.duration);
    stored.id = last = state_->next_task_id++;
  }
  return last;
}

Result<std::vector<TaskRecord>> MemoryStore::query_tasks(const TaskQuery& q) {
  std::lock_guard lock(state_->mu);
  return select(state_->tasks, q.newest_first, q.limit, [&](const TaskRecord& r) {
    return in_range(r, q.since, q.until) && (!q.domain || r.domain == *q.domain) && (!q.action || r.action == *q.action) &&
           (!q.outcome || r.outcome == *q.outcome) && (!q.correlation_id || r.correlation_id == *q.correlation_id);
  });
}

Result<std::vector<TaskGroupStats>> MemoryStore::task_stats(const TaskStatsQuery& q) {
  std::lock_guard lock(state_->mu);
  detail::TaskStatsBuilder b;
  for (const auto& r : state_->tasks) {
    if (!in_range(r, q.since, q.until) || (q.domain && r.domain != *q.domain) || (q.action && r.action != *q.action)) continue;
    auto& g = b.group(detail::kind_hash(r.domain, r.action), [&](std::string& d, std::string& a) {
      d = r.domain;
      a = r.action;
    });
    const auto ph = detail::fnv1a(r.params);
    if (!b.knows_params(ph)) b.add_params(ph, r.params);
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(r.duration).count();
    b.add(g, r.outcome, us, r.impact ? &*r.impact : nullptr, ph, [&] { return std::string_view(r.error); });
  }
  return b.finish(q);
}

Result<std::int64_t> MemoryStore::prune_tasks(TimePoint before) {
  std::lock_guard lock(state_->mu);
  const auto cut = at_ms(before);
  return static_cast<std::int64_t>(std::erase_if(state_->tasks, [&](const TaskRecord& r) { return r.started < cut; }));
}

Result<std::optional<BreakerRecord>> MemoryStore::get_breaker(std::string_view name) {
  std::lock_guard lock(state_->mu);
  auto it = state_->breakers.find(name);
  if (it == state_->breakers.end()) return std::optional<BreakerRecord>();
  return std::optional<BreakerRecord>(it->second);
}

Result<std::vector<BreakerRecord>> MemoryStore::list_breakers() {
  std::lock_guard lock(state_->mu);
  std::vector<BreakerRecord> out;
  for (const auto& [name, r] : state_->breakers) out.push_back(r);
  return out;
}

Result<std::int64_t> MemoryStore::put_breaker(const BreakerRecord& r, std::optional<std::int64_t> expected_version) {
  if (auto v = validate(r); !v) return v.error();
  std::lock_guard lock(state_->mu);
  auto cur = checked_version(state_->breakers, "breaker", r.name, r.name, expected_version);
  if (!cur) return cur.error();
  const std::int64_t current = *cur;
  BreakerRecord stored = r;
  stored.open_until = at_ms(r.open_until);
  stored.updated = at_ms(r.updated);
  stored.version = current + 1;
  state_->breakers.insert_or_assign(r.name, std::move(stored));
  return current + 1;
}

Result<bool> MemoryStore::delete_breaker(std::string_view name) {
  std::lock_guard lock(state_->mu);
  auto it = state_->breakers.find(name);
  if (it == state_->breakers.end()) return false;
  state_->breakers.erase(it);
  return true;
}

namespace {
RunRecord stored_run(const RunRecord& r) {
  RunRecord s = r;
  s.queued_at = at_ms(r.queued_at);
  s.started_at = at_ms(r.started_at);
  s.ended_at = at_ms(r.ended_at);
  s.lease_until = at_ms(r.lease_until);
  return s;
}
StepRecord stored_step(const StepRecord& r, std::int64_t run_id) {
  StepRecord s = r;
  s.run_id = run_id;
  s.started = at_ms(r.started);
  s.ended = at_ms(r.ended);
  return s;
}
AttemptRecord stored_attempt(const AttemptRecord& r, std::int64_t run_id) {
  AttemptRecord s = r;
  s.run_id = run_id;
  s.started = at_ms(r.started);
  s.ended = at_ms(r.ended);
  return s;
}
}  // namespace

Result<std::int64_t> MemoryStore::create_run(const RunRecord& run, std::span<const StepRecord> steps, const FireRecord* fire) {
  if (auto v = validate(run); !v) return v.error();
  for (const auto& st : steps)
    if (auto v = validate(st); !v) return v.error();
  if (fire)
    if (auto v = validate(*fire); !v) return v.error();
  std::lock_guard lock(state_->mu);
  State::FireKey key;
  if (fire) {
    key = {fire->schedule, to_epoch_ms(fire->fire_time), fire->event_id};
    if (auto it = state_->fires.find(key); it != state_->fires.end() && it->second.outcome != "buffered")
      return fail(errc::conflict, fmt::format("schedule '{}' already fired at {} ms", fire->schedule, to_epoch_ms(fire->fire_time)));
  }
  const std::int64_t id = state_->next_run_id++;
  auto& stored = state_->runs[id];
  stored.record = stored_run(run);
  stored.record.id = id;
  stored.record.version = 1;
  for (const auto& st : steps) stored.steps.push_back(stored_step(st, id));
  if (fire) {
    FireRecord f = *fire;
    f.fire_time = at_ms(f.fire_time);
    f.recorded = at_ms(f.recorded);
    f.run_id = id;
    state_->fires.insert_or_assign(std::move(key), std::move(f));
  }
  return id;
}

Result<std::int64_t> MemoryStore::update_run(const RunRecord& run, std::span<const StepRecord> steps,
                                             std::span<const AttemptRecord> attempts) {
  for (const auto& st : steps)
    if (auto v = validate(st); !v) return v.error();
  for (const auto& a : attempts)
    if (auto v = validate(a); !v) return v.error();
  std::lock_guard lock(state_->mu);
  auto it = state_->runs.find(run.id);
  if (it == state_->runs.end()) return fail(errc::not_found, fmt::format("workflow run {} does not exist", run.id));
  auto& stored = it->second;
  if (stored.record.version != run.version)
    return fail(errc::conflict, fmt::format("workflow run {} is at version {}, not {}: another writer changed it", run.id,
                                            stored.record.version, run.version));
  auto& r = stored.record;
  r.state = run.state;
  r.started_at = at_ms(run.started_at);
  r.ended_at = at_ms(run.ended_at);
  r.reason = run.reason;
  r.owner = run.owner;
  r.lease_until = at_ms(run.lease_until);
  r.cancel_requested = run.cancel_requested;
  r.cancel_reason = run.cancel_reason;
  ++r.version;
  for (const auto& st : steps) {
    auto s = std::find_if(stored.steps.begin(), stored.steps.end(), [&](const StepRecord& x) { return x.step == st.step; });
    if (s == stored.steps.end())
      stored.steps.push_back(stored_step(st, run.id));
    else
      *s = stored_step(st, run.id);
  }
  for (const auto& at : attempts) {
    auto a = std::find_if(stored.attempts.begin(), stored.attempts.end(),
                          [&](const AttemptRecord& x) { return x.step == at.step && x.attempt == at.attempt; });
    if (a == stored.attempts.end())
      stored.attempts.push_back(stored_attempt(at, run.id));
    else
      *a = stored_attempt(at, run.id);
  }
  return r.version;
}

Result<std::optional<RunRecord>> MemoryStore::get_run(std::int64_t id) {
  std::lock_guard lock(state_->mu);
  auto it = state_->runs.find(id);
  if (it == state_->runs.end()) return std::optional<RunRecord>();
  return std::optional<RunRecord>(it->second.record);
}

Result<std::vector<RunRecord>> MemoryStore::list_runs(const RunQuery& q) {
  std::lock_guard lock(state_->mu);
  std::vector<RunRecord> out;
  auto take = [&](const RunRecord& r) {
    if (q.workflow && r.workflow != *q.workflow) return true;
    if (!q.states.empty() && std::find(q.states.begin(), q.states.end(), r.state) == q.states.end()) return true;
    if (q.since && r.queued_at < at_ms(*q.since)) return true;
    if (q.until && r.queued_at >= at_ms(*q.until)) return true;
    if (q.parent_run_id && r.parent_run_id != *q.parent_run_id) return true;
    out.push_back(r);
    return q.limit == 0 || out.size() < q.limit;
  };
  if (q.newest_first) {
    for (auto it = state_->runs.rbegin(); it != state_->runs.rend(); ++it)
      if (!take(it->second.record)) break;
  } else {
    for (const auto& [id, run] : state_->runs)
      if (!take(run.record)) break;
  }
  return out;
}

Result<std::vector<StepRecord>> MemoryStore::run_steps(std::int64_t run_id) {
  std::lock_guard lock(state_->mu);
  auto it = state_->runs.find(run_id);
  if (it == state_->runs.end()) return std::vector<StepRecord>();
  return it->second.steps;
}

Result<std::vector<AttemptRecord>> MemoryStore::run_attempts(std::int64_t run_id, std::optional<std::string_view> step) {
  std::lock_guard lock(state_->mu);
  std::vector<AttemptRecord> out;
  auto it = state_->runs.find(run_id);
  if (it == state_->runs.end()) return out;
  const auto& run = it->second;
  for (const auto& s : run.steps) {
    if (step && s.step != *step) continue;
    std::vector<AttemptRecord> of_step;
    for (const auto& a : run.attempts)
      if (a.step == s.step) of_step.push_back(a);
    std::sort(of_step.begin(), of_step.end(), [](const auto& a, const auto& b) { return a.attempt < b.attempt; });
    out.insert(out.end(), of_step.begin(), of_step.end());
  }
  return out;
}

Result<std::int64_t> MemoryStore::prune_runs(TimePoint before) {
  std::lock_guard lock(state_->mu);
  const auto cut = at_ms(before);
  return static_cast<std::int64_t>(
      std::erase_if(state_->runs, [&](const auto& kv) { return is_final(kv.second.record.state) && kv.second.record.ended_at < cut; }));
}

Result<std::optional<ScheduleRecord>> MemoryStore::get_schedule(std::string_view name) {
  std::lock_guard lock(state_->mu);
  auto it = state_->schedules.find(name);
  if (it == state_->schedules.end()) return std::optional<ScheduleRecord>();
  return std::optional<ScheduleRecord>(it->second);
}

Result<std::vector<ScheduleRecord>> MemoryStore::list_schedules() {
  std::lock_guard lock(state_->mu);
  std::vector<ScheduleRecord> out;
  for (const auto& [name, r] : state_->schedules) out.push_back(r);
  return out;
}

Result<std::int64_t> MemoryStore::put_schedule(const ScheduleRecord& r, std::optional<std::int64_t> expected_version) {
  if (auto v = validate(r); !v) return v.error();
  std::lock_guard lock(state_->mu);
  auto cur = checked_version(state_->schedules, "schedule", r.name, r.name, expected_version);
  if (!cur) return cur.error();
  const std::int64_t current = *cur;
  ScheduleRecord stored = r;
  stored.last_fire = at_ms(r.last_fire);
  stored.updated = at_ms(r.updated);
  stored.version = current + 1;
  state_->schedules.insert_or_assign(r.name, std::move(stored));
  return current + 1;
}

Result<bool> MemoryStore::record_fire(const FireRecord& fire) {
  if (auto v = validate(fire); !v) return v.error();
  std::lock_guard lock(state_->mu);
  FireRecord f = fire;
  f.fire_time = at_ms(f.fire_time);
  f.recorded = at_ms(f.recorded);
  return state_->fires.emplace(State::FireKey{f.schedule, to_epoch_ms(f.fire_time), f.event_id}, f).second;
}

Result<std::vector<FireRecord>> MemoryStore::list_fires(std::string_view schedule, std::size_t limit) {
  std::lock_guard lock(state_->mu);
  std::vector<FireRecord> out;
  const std::string key(schedule);
  constexpr auto lowest = std::numeric_limits<std::int64_t>::min();
  auto lo = state_->fires.lower_bound({key, lowest, lowest});
  auto hi = state_->fires.lower_bound({key + '\0', lowest, lowest});
  for (auto it = hi; it != lo;) {
    --it;
    out.push_back(it->second);
    if (limit && out.size() >= limit) break;
  }
  return out;
}

Result<std::vector<FireRecord>> MemoryStore::buffered_fires(std::string_view schedule) {
  std::lock_guard lock(state_->mu);
  std::vector<FireRecord> out;
  const std::string key(schedule);
  constexpr auto lowest = std::numeric_limits<std::int64_t>::min();
  for (auto it = state_->fires.lower_bound({key, lowest, lowest}); it != state_->fires.end() && std::get<0>(it->first) == key; ++it)
    if (it->second.outcome == "buffered") out.push_back(it->second);
  return out;
}

Result<std::int64_t> MemoryStore::last_event_id() {
  std::lock_guard lock(state_->mu);
  return state_->next_event_id - 1;
}

Result<std::int64_t> MemoryStore::append_event(const EventRecord& event) {
  if (auto v = validate(event); !v) return v.error();
  std::lock_guard lock(state_->mu);
  EventRecord e = event;
  e.id = state_->next_event_id++;
  e.time = at_ms(e.time);
  state_->events.push_back(std::move(e));
  return state_->events.back().id;
}

Result<std::vector<EventRecord>> MemoryStore::list_events(const EventQuery& q) {
  std::lock_guard lock(state_->mu);
  std::vector<EventRecord> out;
  auto it = std::upper_bound(state_->events.begin(), state_->events.end(), q.after_id,
                             [](std::int64_t id, const EventRecord& e) { return id < e.id; });
  for (; it != state_->events.end() && (q.limit == 0 || out.size() < q.limit); ++it) {
    if (q.name && it->name != *q.name) continue;
    if (q.since && it->time < at_ms(*q.since)) continue;
    out.push_back(*it);
  }
  return out;
}

Result<std::int64_t> MemoryStore::prune_events(TimePoint before) {
  std::lock_guard lock(state_->mu);
  const auto cut = at_ms(before);
  return static_cast<std::int64_t>(std::erase_if(state_->events, [&](const EventRecord& e) { return e.time < cut; }));
}

// ---- metrics ----

namespace {
bool overlaps(const UsageBlockRecord& b, const std::optional<TimePoint>& since, const std::optional<TimePoint>& until) {
  return (!until || b.first_time < at_ms(*until)) && (!since || b.last_time >= at_ms(*since));
}
}  // namespace

Result<std::optional<std::int64_t>> MemoryStore::append_usage_block(const UsageBlockRecord& block, std::string_view time_zone,
                                                                    std::span<const UsagePartialRecord> partials) {
  if (auto v = validate(block); !v) return v.error();
  std::lock_guard lock(state_->mu);
  if (state_->block_keys.contains(block.key)) return std::optional<std::int64_t>{};
  UsageBlockRecord b = block;
  b.id = state_->next_block_id++;
  b.first_time = at_ms(b.first_time);
  b.last_time = at_ms(b.last_time);
  b.recorded = at_ms(b.recorded);
  state_->block_keys.emplace(b.key, b.id);
  state_->insert_partials(b.id, std::string(time_zone), partials);
  const auto id = b.id;
  state_->blocks.emplace(id, std::move(b));
  return std::optional<std::int64_t>(id);
}

Result<std::vector<UsageBlockRecord>> MemoryStore::usage_blocks(const UsageBlockQuery& q) {
  std::lock_guard lock(state_->mu);
  std::vector<UsageBlockRecord> out;
  for (const auto& [id, b] : state_->blocks) {
    if (!overlaps(b, q.since, q.until)) continue;
    if (q.source && b.source != *q.source) continue;
    if (q.first_row && b.first_row != *q.first_row) continue;
    if (q.id && id != *q.id) continue;
    out.push_back(b);
    if (!q.with_data) out.back().data.clear();
  }
  return out;
}

Result<std::vector<UsagePartialRecord>> MemoryStore::usage_partials(std::string_view time_zone, std::int32_t first_day,
                                                                    std::int32_t last_day) {
  std::lock_guard lock(state_->mu);
  std::vector<UsagePartialRecord> out;
  const std::string zone(time_zone);
  for (auto it = state_->partials.lower_bound({zone, first_day, 0});
       it != state_->partials.end() && std::get<0>(it->first) == zone && std::get<1>(it->first) <= last_day; ++it)
    out.push_back(it->second);
  return out;
}

Result<std::vector<std::int64_t>> MemoryStore::usage_blocks_without_partials(std::string_view time_zone, TimePoint since, TimePoint until) {
  std::lock_guard lock(state_->mu);
  std::vector<std::int64_t> out;
  const std::string zone(time_zone);
  for (const auto& [id, b] : state_->blocks)
    if (overlaps(b, since, until) && !state_->partials_present.contains({id, zone})) out.push_back(id);
  return out;
}

Result<void> MemoryStore::put_usage_partials(std::int64_t block_id, std::string_view time_zone,
                                             std::span<const UsagePartialRecord> partials) {
  std::lock_guard lock(state_->mu);
  if (!state_->blocks.contains(block_id)) return fail(errc::not_found, fmt::format("usage block {} does not exist", block_id));
  // Present already (another writer stored them first, and may have compacted them since): kept.
  state_->insert_partials(block_id, std::string(time_zone), partials);
  return {};
}

Result<bool> MemoryStore::compact_usage_partials(std::string_view time_zone, std::int32_t day, std::span<const std::int64_t> block_ids,
                                                 const std::string& data) {
  if (block_ids.empty()) return fail(errc::invalid_argument, "compact usage partials: no blocks");
  std::lock_guard lock(state_->mu);
  const std::string zone(time_zone);
  for (auto id : block_ids)
    if (!state_->partials.contains({zone, day, id})) return false;
  for (auto id : block_ids) state_->partials.erase({zone, day, id});
  const auto keep = *std::max_element(block_ids.begin(), block_ids.end());
  state_->partials[{zone, day, keep}] = UsagePartialRecord{keep, zone, day, data};
  return true;
}

Result<RevenueUpsert> MemoryStore::upsert_revenue(std::span<const RevenueRow> rows) {
  for (const auto& r : rows)
    if (auto v = validate(r); !v) return v.error();
  std::lock_guard lock(state_->mu);
  RevenueUpsert out;
  for (const auto& r : rows) {
    RevenueRow row = r;
    row.recorded = at_ms(row.recorded);
    auto [it, inserted] = state_->revenue.try_emplace({row.day, row.plan}, row);
    if (inserted) {
      ++out.inserted;
      continue;
    }
    auto& old = it->second;
    if (old.total_revenue == row.total_revenue && old.new_subscribers == row.new_subscribers && old.active_users == row.active_users &&
        old.churn_count == row.churn_count) {
      ++out.unchanged;
    } else {
      old = row;
      ++out.updated;
    }
  }
  return out;
}

Result<std::vector<RevenueRow>> MemoryStore::query_revenue(std::int32_t first_day, std::int32_t last_day) {
  std::lock_guard lock(state_->mu);
  std::vector<RevenueRow> out;
  for (auto it = state_->revenue.lower_bound({first_day, std::string()}); it != state_->revenue.end() && it->first.first <= last_day; ++it)
    out.push_back(it->second);
  return out;
}

Result<std::optional<RollupRecord>> MemoryStore::get_rollup(std::string_view time_zone, std::string_view period) {
  std::lock_guard lock(state_->mu);
  auto it = state_->rollups.find({std::string(time_zone), std::string(period)});
  if (it == state_->rollups.end()) return std::optional<RollupRecord>{};
  return std::optional<RollupRecord>(it->second);
}

Result<std::vector<RollupRecord>> MemoryStore::list_rollups(std::size_t limit) {
  std::lock_guard lock(state_->mu);
  std::vector<RollupRecord> out;
  for (const auto& [k, r] : state_->rollups) out.push_back(r);
  std::stable_sort(out.begin(), out.end(), [](const RollupRecord& a, const RollupRecord& b) {
    return std::tie(a.computed, a.started, a.time_zone, a.period) > std::tie(b.computed, b.started, b.time_zone, b.period);
  });
  if (limit && out.size() > limit) out.resize(limit);
  return out;
}

Result<std::int64_t> MemoryStore::put_rollup(const RollupRecord& record, std::optional<std::int64_t> expected_version) {
  if (auto v = validate(record); !v) return v.error();
  std::lock_guard lock(state_->mu);
  const std::pair<std::string, std::string> key{record.time_zone, record.period};
  auto version = checked_version(state_->rollups, "rollup", key, record.time_zone + " " + record.period, expected_version);
  if (!version) return version.error();
  const std::int64_t current = *version;
  RollupRecord r = record;
  r.started = at_ms(r.started);
  r.computed = at_ms(r.computed);
  r.lease_until = at_ms(r.lease_until);
  r.version = current + 1;
  state_->rollups[key] = std::move(r);
  return current + 1;
}

Result<Enqueued> MemoryStore::enqueue_delivery(const DeliveryRecord& record) {
  if (auto v = validate(record); !v) return v.error();
  std::lock_guard lock(state_->mu);
  if (auto it = state_->delivery_keys.find(record.key); it != state_->delivery_keys.end()) return Enqueued{it->second, false};
  DeliveryRecord r = record;
  r.id = state_->next_delivery_id++;
  r.next_attempt = at_ms(r.next_attempt);
  r.claimed_until = at_ms(r.claimed_until);
  r.created = at_ms(r.created);
  r.updated = r.created;
  r.version = 1;
  state_->delivery_keys.emplace(r.key, r.id);
  state_->deliveries.emplace(r.id, std::move(r));
  return Enqueued{state_->next_delivery_id - 1, true};
}

Result<std::optional<DeliveryRecord>> MemoryStore::get_delivery(std::int64_t id) {
  std::lock_guard lock(state_->mu);
  auto it = state_->deliveries.find(id);
  if (it == state_->deliveries.end()) return std::optional<DeliveryRecord>{};
  return std::optional<DeliveryRecord>(it->second);
}

Result<std::vector<DeliveryRecord>> MemoryStore::list_deliveries(const DeliveryQuery& q) {
  std::lock_guard lock(state_->mu);
  std::vector<DeliveryRecord> out;
  for (const auto& [id, r] : state_->deliveries) {
    if (q.state && r.state != *q.state) continue;
    if (q.subject && r.subject != *q.subject) continue;
    if (q.due_by && (r.next_attempt > at_ms(*q.due_by) || r.claimed_until > at_ms(*q.due_by))) continue;
    out.push_back(r);
    if (!q.with_body) out.back().body.clear();
  }
  if (q.due_by) {
    std::stable_sort(out.begin(), out.end(), [](const DeliveryRecord& a, const DeliveryRecord& b) {
      return std::tie(a.next_attempt, a.id) < std::tie(b.next_attempt, b.id);
    });
  } else if (q.newest_first) {
    std::reverse(out.begin(), out.end());
  }
  if (q.limit && out.size() > q.limit) out.resize(q.limit);
  return out;
}

Result<std::int64_t> MemoryStore::update_delivery(const DeliveryRecord& record) {
  if (auto v = validate(record); !v) return v.error();
  std::lock_guard lock(state_->mu);
  auto it = state_->deliveries.find(record.id);
  if (it == state_->deliveries.end()) return fail(errc::not_found, fmt::format("delivery {} does not exist", record.id));
  auto& r = it->second;
  if (r.version != record.version)
    return fail(errc::conflict,
                fmt::format("delivery '{}' is at version {}, not {}: another writer changed it", record.id, r.version, record.version));
  r.state = record.state;
  r.attempts = record.attempts;
  r.next_attempt = at_ms(record.next_attempt);
  r.claimed_until = at_ms(record.claimed_until);
  r.last_error = record.last_error;
  r.updated = at_ms(record.updated);
  return ++r.version;
}

Result<std::int64_t> MemoryStore::prune_deliveries(TimePoint before) {
  std::lock_guard lock(state_->mu);
  std::int64_t n = 0;
  for (auto it = state_->deliveries.begin(); it != state_->deliveries.end();) {
    if (it->second.state != "pending" && it->second.updated < at_ms(before)) {
      state_->delivery_keys.erase(it->second.key);
      it = state_->deliveries.erase(it);
      ++n;
    } else {
      ++it;
    }
  }
  return n;
}

namespace {
AlertRecord alert_at_ms(AlertRecord r) {
  r.active_since = at_ms(r.active_since);
  r.fired = at_ms(r.fired);
  r.resolved = at_ms(r.resolved);
  r.acknowledged = at_ms(r.acknowledged);
  r.notified = at_ms(r.notified);
  r.updated = at_ms(r.updated);
  return r;
}

// The conflict of a second firing alert for (rule, labels) (the message matches SqliteStore's), or
// nothing when no alert but `self` is firing for them.
std::optional<Error> firing_conflict(const std::map<std::int64_t, AlertRecord>& alerts, std::int64_t self, const std::string& rule,
                                     const std::string& labels) {
  for (const auto& [id, a] : alerts)
    if (id != self && a.state == "firing" && a.rule == rule && a.labels == labels)
      return fail(
          errc::conflict,
          fmt::format("rule \"{}\" labels \"{}\": alert {} is firing already (one firing alert per rule and labels)", rule, labels, id));
  return std::nullopt;
}
}  // namespace

Result<std::size_t> MemoryStore::append_metric_points(std::span<const MetricPoint> points) {
  for (const auto& p : points)
    if (auto v = validate(p); !v) return v.error();
  std::lock_guard lock(state_->mu);
  for (const auto& p : points) state_->points[{p.name, p.labels, to_epoch_ms(p.time)}] = p.value;
  return points.size();
}

Result<std::vector<MetricPoint>> MemoryStore::query_metric_points(const MetricQuery& q) {
  if (q.name.empty()) return fail(errc::invalid_argument, "metric query: \"name\" is required");
  std::lock_guard lock(state_->mu);
  const auto since = q.since ? to_epoch_ms(*q.since) : std::numeric_limits<std::int64_t>::min();
  std::vector<MetricPoint> out;
  for (auto it = state_->points.lower_bound({q.name, q.labels.value_or(""), since}); it != state_->points.end(); ++it) {
    const auto& [name, labels, ms] = it->first;
    if (name != q.name || (q.labels && labels != *q.labels)) break;
    if (ms < since || (q.until && ms >= to_epoch_ms(*q.until))) continue;
    out.push_back(MetricPoint{name, labels, from_epoch_ms(ms), it->second});
  }
  if (q.newest_first) {
    for (auto b = out.begin(); b != out.end();) {
      auto e = std::find_if(b, out.end(), [&](const MetricPoint& p) { return p.labels != b->labels; });
      std::reverse(b, e);
      b = e;
    }
  }
  if (q.limit && out.size() > q.limit) out.resize(q.limit);
  return out;
}

Result<std::int64_t> MemoryStore::prune_metric_points(TimePoint before) {
  std::lock_guard lock(state_->mu);
  return static_cast<std::int64_t>(
      std::erase_if(state_->points, [&](const auto& kv) { return std::get<2>(kv.first) < to_epoch_ms(before); }));
}

Result<std::int64_t> MemoryStore::create_alert(const AlertRecord& record) {
  if (auto v = validate(record); !v) return v.error();
  std::lock_guard lock(state_->mu);
  if (record.state == "firing")
    if (auto e = firing_conflict(state_->alerts, 0, record.rule, record.labels)) return *e;
  AlertRecord r = alert_at_ms(record);
  r.id = state_->next_alert_id++;
  r.version = 1;
  state_->alerts.emplace(r.id, r);
  return r.id;
}

Result<std::optional<AlertRecord>> MemoryStore::get_alert(std::int64_t id) {
  std::lock_guard lock(state_->mu);
  auto it = state_->alerts.find(id);
  if (it == state_->alerts.end()) return std::optional<AlertRecord>{};
  return std::optional<AlertRecord>(it->second);
}

Result<std::vector<AlertRecord>> MemoryStore::list_alerts(const AlertQuery& q) {
  std::lock_guard lock(state_->mu);
  std::vector<AlertRecord> out;
  auto take = [&](const AlertRecord& r) {
    if (q.state && r.state != *q.state) return true;
    if (q.rule && r.rule != *q.rule) return true;
    if (q.labels && r.labels != *q.labels) return true;
    if (q.since && r.fired < at_ms(*q.since)) return true;
    if (q.notice_owed && (r.notified_state.empty() || r.state == r.notified_state)) return true;
    out.push_back(r);
    return q.limit == 0 || out.size() < q.limit;
  };
  if (q.newest_first) {
    for (auto it = state_->alerts.rbegin(); it != state_->alerts.rend(); ++it)
      if (!take(it->second)) break;
  } else {
    for (const auto& [id, r] : state_->alerts)
      if (!take(r)) break;
  }
  return out;
}

Result<std::int64_t> MemoryStore::update_alert(const AlertRecord& record) {
  if (auto v = validate(record); !v) return v.error();
  std::lock_guard lock(state_->mu);
  auto it = state_->alerts.find(record.id);
  if (it == state_->alerts.end()) return fail(errc::not_found, fmt::format("alert {} does not exist", record.id));
  auto& r = it->second;
  if (r.version != record.version)
    return fail(errc::conflict,
                fmt::format("alert '{}' is at version {}, not {}: another writer changed it", record.id, r.version, record.version));
  if (record.state == "firing")
    if (auto e = firing_conflict(state_->alerts, r.id, r.rule, r.labels)) return *e;
  AlertRecord next = alert_at_ms(record);
  next.id = r.id;
  next.rule = r.rule;
  next.labels = r.labels;
  next.version = r.version + 1;
  r = std::move(next);
  return r.version;
}

Result<std::int64_t> MemoryStore::prune_alerts(TimePoint before) {
  std::lock_guard lock(state_->mu);
  return static_cast<std::int64_t>(
      std::erase_if(state_->alerts, [&](const auto& kv) { return kv.second.state == "resolved" && kv.second.resolved < at_ms(before); }));
}

Result<std::int64_t> MemoryStore::append_forecast(const ForecastRecord& record) {
  if (auto v = validate(record); !v) return v.error();
  std::lock_guard lock(state_->mu);
  ForecastRecord r = record;
  r.id = state_->next_forecast_id++;
  r.created = at_ms(r.created);
  state_->forecasts.emplace(r.id, r);
  return r.id;
}

Result<std::optional<ForecastRecord>> MemoryStore::get_forecast(std::int64_t id) {
  std::lock_guard lock(state_->mu);
  auto it = state_->forecasts.find(id);
  if (it == state_->forecasts.end()) return std::optional<ForecastRecord>{};
  return std::optional<ForecastRecord>(it->second);
}

Result<std::vector<ForecastRecord>> MemoryStore::list_forecasts(const ForecastQuery& q) {
  std::lock_guard lock(state_->mu);
  std::vector<ForecastRecord> out;
  auto take = [&](const ForecastRecord& r) {
    if (q.metric && r.metric != *q.metric) return true;
    if (q.since && r.created < at_ms(*q.since)) return true;
    if (q.time_zone && r.time_zone != *q.time_zone) return true;
    out.push_back(r);
    return q.limit == 0 || out.size() < q.limit;
  };
  if (q.newest_first) {
    for (auto it = state_->forecasts.rbegin(); it != state_->forecasts.rend(); ++it)
      if (!take(it->second)) break;
  } else {
    for (const auto& [id, r] : state_->forecasts)
      if (!take(r)) break;
  }
  return out;
}

Result<std::int64_t> MemoryStore::prune_forecasts(TimePoint before) {
  std::lock_guard lock(state_->mu);
  return static_cast<std::int64_t>(std::erase_if(state_->forecasts, [&](const auto& kv) { return kv.second.created < at_ms(before); }));
}

namespace {
// The records of an id-ordered map that `keep` accepts, newest or oldest first, at most `limit` (0: all).
template <class R, class Keep>
std::vector<R> select_by_id(const std::map<std::int64_t, R>& all, bool newest_first, std::size_t limit, Keep&& keep) {
  std::vector<R> out;
  auto take = [&](const R& r) {
    if (!keep(r)) return true;
    out.push_back(r);
    return limit == 0 || out.size() < limit;
  };
  if (newest_first) {
    for (auto it = all.rbegin(); it != all.rend(); ++it)
      if (!take(it->second)) break;
  } else {
    for (const auto& [id, r] : all)
      if (!take(r)) break;
  }
  return out;
}

// A finish of record `id` of `records`, whose messages match SqliteStore's: not_found for an unknown
// id, conflict when it is not pending; else `apply` changes it.
template <class R, class Apply>
Result<void> finish_pending(std::map<std::int64_t, R>& records, std::string_view what, std::int64_t id, Apply&& apply) {
  auto it = records.find(id);
  if (it == records.end()) return fail(errc::not_found, fmt::format("{} record {} does not exist", what, id));
  if (it->second.outcome != "pending")
    return fail(errc::conflict, fmt::format("{} record {} is not pending (its outcome is \"{}\"): another writer finished it, or it "
                                            "never was pending",
                                            what, id, it->second.outcome));
  apply(it->second);
  return {};
}
}  // namespace

Result<std::int64_t> MemoryStore::append_scaling(const ScalingRecord& record, std::optional<std::int64_t> after) {
  if (auto v = validate(record); !v) return v.error();
  std::lock_guard lock(state_->mu);
  if (after) {
    std::int64_t current = 0;
    for (auto it = state_->scaling.rbegin(); it != state_->scaling.rend(); ++it)
      if (it->second.resource == record.resource) {
        current = it->first;
        break;
      }
    if (current != *after)
      return fail(errc::conflict, fmt::format("resource \"{}\": the newest scaling record is {}, not {}: another writer recorded one first",
                                              record.resource, current, *after));
  }
  ScalingRecord r = record;
  r.id = state_->next_scaling_id++;
  r.time = at_ms(r.time);
  r.updated = at_ms(r.updated);
  state_->scaling.emplace(r.id, r);
  return r.id;
}

Result<void> MemoryStore::finish_scaling(std::int64_t id, std::string_view outcome, std::string_view error, TimePoint updated) {
  if (auto v = detail::check_scaling_finish(id, outcome); !v) return v.error();
  std::lock_guard lock(state_->mu);
  return finish_pending(state_->scaling, "scaling", id, [&](ScalingRecord& r) {
    r.outcome = outcome;
    r.error = error;
    r.updated = at_ms(updated);
  });
}

Result<std::vector<ScalingRecord>> MemoryStore::list_scaling(const ScalingQuery& q) {
  std::lock_guard lock(state_->mu);
  return select_by_id(state_->scaling, q.newest_first, q.limit, [&](const ScalingRecord& r) {
    if (q.resource && r.resource != *q.resource) return false;
    if (q.action && r.action != *q.action) return false;
    if (q.outcome && r.outcome != *q.outcome) return false;
    if (q.since && r.time < at_ms(*q.since)) return false;
    if (q.changes_only && r.desired == r.current && r.action != "scale-up" && r.action != "scale-down" && r.action != "restart")
      return false;
    return true;
  });
}

Result<std::int64_t> MemoryStore::prune_scaling(TimePoint before) {
  std::lock_guard lock(state_->mu);
  std::map<std::string_view, std::int64_t> thresholds;  // each resource's newest "thresholds" record
  for (const auto& [id, r] : state_->scaling)
    if (r.action == "thresholds") thresholds[r.resource] = id;
  std::set<std::int64_t> kept;
  for (const auto& [resource, id] : thresholds) kept.insert(id);
  return static_cast<std::int64_t>(
      std::erase_if(state_->scaling, [&](const auto& kv) { return kv.second.time < at_ms(before) && !kept.contains(kv.first); }));
}

Result<std::int64_t> MemoryStore::append_healing(const HealingRecord& record) {
  if (auto v = validate(record); !v) return v.error();
  std::lock_guard lock(state_->mu);
  HealingRecord r = record;
  r.id = state_->next_healing_id++;
  r.time = at_ms(r.time);
  r.updated = at_ms(r.updated);
  state_->healing.emplace(r.id, r);
  return r.id;
}

Result<void> MemoryStore::finish_healing(std::int64_t id, std::string_view outcome, std::string_view error, std::string_view detail,
                                         TimePoint updated) {
  if (auto v = detail::check_healing_finish(id, outcome, detail); !v) return v.error();
  std::lock_guard lock(state_->mu);
  return finish_pending(state_->healing, "healing", id, [&](HealingRecord& r) {
    r.outcome = outcome;
    r.error = error;
    if (!detail.empty()) r.detail = detail;
    r.updated = at_ms(updated);
  });
}

Result<std::vector<HealingRecord>> MemoryStore::list_healing(const HealingQuery& q) {
  std::lock_guard lock(state_->mu);
  return select_by_id(state_->healing, q.newest_first, q.limit, [&](const HealingRecord& r) {
    if (q.target && r.target != *q.target) return false;
    if (q.kind && r.kind != *q.kind) return false;
    if (q.action && r.action != *q.action) return false;
    if (q.since && r.time < at_ms(*q.since)) return false;
    return true;
  });
}

Result<std::int64_t> MemoryStore::prune_healing(TimePoint before) {
  std::lock_guard lock(state_->mu);
  return static_cast<std::int64_t>(std::erase_if(state_->healing, [&](const auto& kv) { return kv.second.time < at_ms(before); }));
}

// The messages below match SqliteStore's.

Result<void> MemoryStore::create_token(const TokenRecord& record) {
  if (auto v = validate(record); !v) return v.error();
  std::lock_guard lock(state_->mu);
  if (state_->tokens.contains(record.id)) return fail(errc::already_exists, fmt::format("token \"{}\" already exists", record.id));
  if (to_epoch_ms(record.revoked) == 0)
    for (const auto& [id, t] : state_->tokens)
      if (t.name == record.name && to_epoch_ms(t.revoked) == 0)
        return fail(errc::already_exists, fmt::format("a token not revoked is already named \"{}\" (token \"{}\")", record.name, id));
  TokenRecord r = record;
  r.created = at_ms(r.created);
  r.expires = at_ms(r.expires);
  r.revoked = at_ms(r.revoked);
  r.last_used = at_ms(r.last_used);
  state_->tokens.emplace(r.id, std::move(r));
  return {};
}

Result<std::optional<TokenRecord>> MemoryStore::get_token(std::string_view id) {
  std::lock_guard lock(state_->mu);
  auto it = state_->tokens.find(id);
  if (it == state_->tokens.end()) return std::optional<TokenRecord>();
  return std::optional<TokenRecord>(it->second);
}

Result<std::vector<TokenRecord>> MemoryStore::list_tokens(bool include_revoked) {
  std::lock_guard lock(state_->mu);
  std::vector<TokenRecord> out;
  for (const auto& [id, t] : state_->tokens)
    if (include_revoked || to_epoch_ms(t.revoked) == 0) out.push_back(t);
  // By id already (the map's order); a stable sort by creation time keeps it within equal times.
  std::stable_sort(out.begin(), out.end(), [](const TokenRecord& a, const TokenRecord& b) { return a.created < b.created; });
  return out;
}

Result<TokenRecord> MemoryStore::revoke_token(std::string_view id_or_name, TimePoint time, std::string_view by, std::string_view reason) {
  if (auto v = check_token_revocation(id_or_name, time, by); !v) return v.error();
  std::lock_guard lock(state_->mu);
  auto it = state_->tokens.find(id_or_name);
  if (it == state_->tokens.end()) {
    // The token not revoked with that name, else the one revoked last (then the greatest id), to say it is revoked.
    for (auto t = state_->tokens.begin(); t != state_->tokens.end(); ++t) {
      if (t->second.name != id_or_name) continue;
      if (to_epoch_ms(t->second.revoked) == 0) {
        it = t;
        break;
      }
      if (it == state_->tokens.end() || t->second.revoked >= it->second.revoked) it = t;
    }
  }
  if (it == state_->tokens.end()) return fail(errc::not_found, fmt::format("no token has the id or name \"{}\"", id_or_name));
  TokenRecord& t = it->second;
  if (to_epoch_ms(t.revoked) != 0)
    return fail(errc::conflict, fmt::format("token \"{}\" (name \"{}\") is already revoked (by {})", t.id, t.name, t.revoked_by));
  t.revoked = at_ms(time);
  t.revoked_by = by;
  t.revoke_reason = reason;
  return t;
}

Result<void> MemoryStore::touch_token(std::string_view id, TimePoint time, std::string_view from) {
  std::lock_guard lock(state_->mu);
  auto it = state_->tokens.find(id);
  if (it == state_->tokens.end()) return fail(errc::not_found, fmt::format("token \"{}\" does not exist", id));
  if (to_epoch_ms(time) > to_epoch_ms(it->second.last_used)) {
    it->second.last_used = at_ms(time);
    it->second.last_used_from = from;
  }
  return {};
}

Result<std::optional<NodeRecord>> MemoryStore::get_node(std::string_view id) {
  std::lock_guard lock(state_->mu);
  auto it = state_->nodes.find(id);
  if (it == state_->nodes.end()) return std::optional<NodeRecord>();
  return std::optional<NodeRecord>(it->second);
}

Result<std::vector<NodeRecord>> MemoryStore::list_nodes() {
  std::lock_guard lock(state_->mu);
  std::vector<NodeRecord> out;
  for (const auto& [id, n] : state_->nodes) out.push_back(n);
  return out;
}

Result<std::int64_t> MemoryStore::put_node(const NodeRecord& r, std::optional<std::int64_t> expected_version) {
  if (auto v = validate(r); !v) return v.error();
  std::lock_guard lock(state_->mu);
  auto cur = checked_version(state_->nodes, "node", r.id, r.id, expected_version);
  if (!cur) return cur.error();
  NodeRecord stored = r;
  stored.registered = at_ms(r.registered);
  stored.last_seen = at_ms(r.last_seen);
  stored.state_since = at_ms(r.state_since);
  stored.version = *cur + 1;
  state_->nodes.insert_or_assign(r.id, std::move(stored));
  return *cur + 1;
}

Result<bool> MemoryStore::delete_node(std::string_view id) {
  std::lock_guard lock(state_->mu);
  auto it = state_->nodes.find(id);
  if (it == state_->nodes.end()) return false;
  state_->nodes.erase(it);
  return true;
}

Result<std::int64_t> MemoryStore::append_scan(const ScanRecord& r) {
  if (auto v = validate(r); !v) return v.error();
  std::lock_guard lock(state_->mu);
  ScanRecord stored = r;
  stored.id = state_->next_scan_id++;
  stored.started = at_ms(r.started);
  stored.finished = at_ms(r.finished);
  state_->scans.emplace(stored.id, stored);
  return stored.id;
}

Result<std::vector<ScanRecord>> MemoryStore::list_scans(std::size_t limit, std::int64_t before_id) {
  std::lock_guard lock(state_->mu);
  std::vector<ScanRecord> out;
  auto end = before_id > 0 ? state_->scans.lower_bound(before_id) : state_->scans.end();
  for (auto it = std::make_reverse_iterator(end); it != state_->scans.rend() && (limit == 0 || out.size() < limit); ++it)
    out.push_back(it->second);
  return out;
}

Result<std::int64_t> MemoryStore::prune_scans(TimePoint before) {
  std::lock_guard lock(state_->mu);
  return static_cast<std::int64_t>(std::erase_if(state_->scans, [&](const auto& kv) { return kv.second.started < at_ms(before); }));
}

}  // namespace automation::storage
