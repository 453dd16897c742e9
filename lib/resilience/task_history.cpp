#include <automation/core/json.hpp>
#include <automation/core/logging.hpp>
#include <automation/core/time.hpp>
#include <automation/resilience/task_history.hpp>

#include <detail/log.hpp>

#include <boost/json.hpp>

#include <cmath>

namespace automation::resilience {

using automation::detail::logf;
namespace bj = boost::json;

namespace {

double ms(Duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

std::optional<Change> change(double current, double previous) {
  Change c;
  c.previous = previous;
  c.absolute = current - previous;
  if (previous != 0) c.relative = c.absolute / std::fabs(previous);
  return c;
}

bj::value change_json(const std::optional<Change>& c) {
  if (!c) return nullptr;
  bj::object o{{"previous", c->previous}, {"absolute", c->absolute}};
  o["relative"] = json::or_null(c->relative);
  return o;
}

bj::value stats_json(const storage::TaskGroupStats& s) {
  bj::object o{{"domain", s.domain},
               {"action", s.action},
               {"count", s.count},
               {"successes", s.successes},
               {"failures", s.failures},
               {"timeouts", s.timeouts},
               {"cancelled", s.cancelled},
               {"success_rate", s.success_rate},
               {"mean_duration_ms", ms(s.mean_duration)},
               {"p50_duration_ms", ms(s.p50_duration)},
               {"p95_duration_ms", ms(s.p95_duration)},
               {"impact_samples", s.impact_samples}};
  o["mean_impact"] = json::or_null(s.mean_impact);
  bj::array failures;
  for (const auto& f : s.top_failures) failures.push_back(bj::object{{"reason", f.reason}, {"count", f.count}});
  o["top_failures"] = std::move(failures);
  bj::array params;
  for (const auto& p : s.success_params)
    params.push_back(bj::object{{"key", p.key},
                                {"value", p.value},
                                {"support", p.support},
                                {"successes", p.successes},
                                {"success_rate", p.success_rate},
                                {"lift", p.lift}});
  o["success_params"] = std::move(params);
  return o;
}

}  // namespace

bj::value to_json(const TaskRecord& r) {
  bj::object o{{"id", r.id},
               {"domain", r.domain},
               {"action", r.action},
               {"outcome", to_string(r.outcome)},
               {"error", r.error},
               {"started", format_timestamp(r.started)},
               {"ended", format_timestamp(r.ended)},
               {"duration_ms", ms(r.duration)},
               {"correlation_id", r.correlation_id}};
  boost::system::error_code ec;
  auto params = bj::parse(r.params, ec);
  o["params"] = ec ? bj::value(r.params) : std::move(params);  // a row written around the library: show the text
  o["impact"] = json::or_null(r.impact);
  return o;
}

bj::value to_json(const TaskStatsReport& r) {
  bj::object o;
  o["since"] = r.since ? bj::value(format_timestamp(*r.since)) : bj::value(nullptr);
  o["until"] = r.until ? bj::value(format_timestamp(*r.until)) : bj::value(nullptr);
  o["previous_since"] = r.previous_since ? bj::value(format_timestamp(*r.previous_since)) : bj::value(nullptr);
  bj::array groups;
  for (const auto& g : r.groups) {
    bj::object e = stats_json(g.current).as_object();
    e["previous"] = g.previous ? stats_json(*g.previous) : bj::value(nullptr);
    e["change"] = bj::object{{"count", change_json(g.count)},
                             {"success_rate", change_json(g.success_rate)},
                             {"mean_duration_ms", change_json(g.mean_duration_ms)},
                             {"p95_duration_ms", change_json(g.p95_duration_ms)},
                             {"mean_impact", change_json(g.mean_impact)}};
    groups.push_back(std::move(e));
  }
  o["groups"] = std::move(groups);
  return o;
}

TaskHistory::TaskHistory(storage::Store& store, const Clock& clock) : TaskHistory(store, clock, Options{}) {}
TaskHistory::TaskHistory(storage::Store& store, const Clock& clock, Options options) : store_(store), clock_(clock), options_(options) {
  if (options_.batch_size == 0) options_.batch_size = 1;
  if (options_.max_buffered < options_.batch_size) options_.max_buffered = options_.batch_size;
}

TaskHistory::~TaskHistory() {
  if (auto r = flush(); !r)
    logf(LogLevel::error, "history", "{} task records could not be written at shutdown: {}", buffered(), r.error().message);
}

Result<std::int64_t> TaskHistory::record(TaskRecord r) {
  if (r.correlation_id.empty()) r.correlation_id = std::string(current_correlation_id());
  return store_.append_tasks(std::span<const TaskRecord>(&r, 1));
}

Result<std::int64_t> TaskHistory::record(std::span<const TaskRecord> records) {
  const auto cid = current_correlation_id();
  if (cid.empty() || std::none_of(records.begin(), records.end(), [](const TaskRecord& r) { return r.correlation_id.empty(); }))
    return store_.append_tasks(records);
  std::vector<TaskRecord> copy(records.begin(), records.end());
  for (auto& r : copy)
    if (r.correlation_id.empty()) r.correlation_id = std::string(cid);
  return store_.append_tasks(copy);
}

Result<void> TaskHistory::add(TaskRecord r) {
  if (auto v = storage::validate(r); !v) return v.error();
  if (r.correlation_id.empty()) r.correlation_id = std::string(current_correlation_id());
  bool full = false;
  {
    std::lock_guard lock(mu_);
    if (buffer_.size() >= options_.max_buffered) {
      buffer_.pop_front();
      if (dropped_++ == 0)
        logf(LogLevel::warn, "history", "task history buffer full ({} records): dropping the oldest", options_.max_buffered);
    }
    buffer_.push_back(std::move(r));
    // Once per batch_size adds: while the store is down, one attempt per batch of adds, not one
    // per add (an attempt may wait out the store's busy timeout).
    full = ++adds_since_flush_ >= options_.batch_size;
  }
  if (full) return flush();
  return {};
}

Result<void> TaskHistory::flush() {
  std::vector<TaskRecord> batch;
  {
    std::lock_guard lock(mu_);
    batch.assign(std::make_move_iterator(buffer_.begin()), std::make_move_iterator(buffer_.end()));
    buffer_.clear();
    adds_since_flush_ = 0;
  }
  if (batch.empty()) return {};
  auto r = store_.append_tasks(batch);
  if (!r) {
    std::lock_guard lock(mu_);
    // Put the batch back in front of anything added meanwhile, within the cap (oldest dropped).
    buffer_.insert(buffer_.begin(), std::make_move_iterator(batch.begin()), std::make_move_iterator(batch.end()));
    if (buffer_.size() > options_.max_buffered) {
      const auto excess = buffer_.size() - options_.max_buffered;
      dropped_ += excess;
      buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(excess));
    }
    return with_context(r.error(), fmt::format("write {} buffered task records (kept for the next flush)", buffer_.size()));
  }
  return {};
}

std::size_t TaskHistory::buffered() const {
  std::lock_guard lock(mu_);
  return buffer_.size();
}

std::uint64_t TaskHistory::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

Result<std::vector<TaskRecord>> TaskHistory::list(const TaskQuery& q) { return store_.query_tasks(q); }

Result<TaskStatsReport> TaskHistory::stats(TaskStatsQuery q) {
  if (q.since && !q.until) q.until = clock_.now();
  if (q.since && q.until && *q.until <= *q.since)
    return automation::fail(errc::invalid_argument, "task statistics: the range is empty (until is not after since)");
  TaskStatsReport report;
  report.since = q.since;
  report.until = q.until;
  auto cur = store_.task_stats(q);
  if (!cur) return cur.error();
  std::vector<storage::TaskGroupStats> prev;
  if (q.since) {
    TaskStatsQuery pq = q;
    pq.until = q.since;
    pq.since = *q.since - (*q.until - *q.since);
    report.previous_since = pq.since;
    auto p = store_.task_stats(pq);
    if (!p) return p.error();
    prev = std::move(*p);
  }
  for (auto& g : *cur) {
    TaskStatsEntry e;
    auto it = std::find_if(prev.begin(), prev.end(), [&](const auto& p) { return p.domain == g.domain && p.action == g.action; });
    if (it != prev.end()) {
      e.previous = *it;
      e.count = change(static_cast<double>(g.count), static_cast<double>(it->count));
      e.success_rate = change(g.success_rate, it->success_rate);
      e.mean_duration_ms = change(ms(g.mean_duration), ms(it->mean_duration));
      e.p95_duration_ms = change(ms(g.p95_duration), ms(it->p95_duration));
      if (g.mean_impact && it->mean_impact) e.mean_impact = change(*g.mean_impact, *it->mean_impact);
    }
    e.current = std::move(g);
    report.groups.push_back(std::move(e));
  }
  return report;
}

Result<std::int64_t> TaskHistory::prune() { return prune_older_than(options_.retention); }

Result<std::int64_t> TaskHistory::prune_older_than(Duration age) {
  if (age < Duration::zero()) return automation::fail(errc::invalid_argument, "task history: a negative age to prune");
  auto n = store_.prune_tasks(clock_.now() - age);
  if (n && *n > 0)
    logf(LogLevel::info, "history", "pruned {} task records older than {}", *n, format_duration(std::chrono::duration_cast<Millis>(age)));
  return n;
}

TaskHistory::Execution TaskHistory::begin(std::string domain, std::string action, std::string params_json) {
  TaskRecord r;
  r.domain = std::move(domain);
  r.action = std::move(action);
  r.params = std::move(params_json);
  r.started = clock_.now();
  r.correlation_id = std::string(current_correlation_id());
  return Execution(this, std::move(r));
}

TaskHistory::Execution::Execution(Execution&& o) noexcept : history_(o.history_), record_(std::move(o.record_)) { o.history_ = nullptr; }

TaskHistory::Execution::~Execution() {
  if (!history_) return;
  try {
    (void)finish_with(TaskOutcome::cancelled, "abandoned", std::nullopt);
  } catch (...) {  // a destructor must not throw; the record is lost (out of memory)
  }
}

Result<std::int64_t> TaskHistory::Execution::succeed(std::optional<double> impact) { return finish_with(TaskOutcome::success, {}, impact); }

Result<std::int64_t> TaskHistory::Execution::fail(std::string error, TaskOutcome outcome, std::optional<double> impact) {
  return finish_with(outcome, std::move(error), impact);
}

Result<std::int64_t> TaskHistory::Execution::finish_with(TaskOutcome o, std::string error, std::optional<double> impact) {
  if (!history_)
    return automation::fail(errc::invalid_argument, fmt::format("task {}/{} was already recorded", record_.domain, record_.action));
  TaskHistory* h = history_;
  history_ = nullptr;
  record_.outcome = o;
  record_.error = std::move(error);
  record_.impact = impact;
  record_.ended = h->clock_.now();
  record_.duration = record_.ended - record_.started;
  return h->record(std::move(record_));
}

}  // namespace automation::resilience
