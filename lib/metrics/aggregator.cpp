#include <automation/core/ids.hpp>
#include <automation/core/json.hpp>
#include <automation/metrics/aggregator.hpp>

#include <detail/hash.hpp>
#include <detail/log.hpp>
#include "metrics/blocks.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <boost/json.hpp>

#include <unistd.h>
#include <algorithm>
#include <map>
#include <optional>

namespace automation::metrics {

using namespace std::chrono;
namespace bj = boost::json;

namespace detail {

namespace {

Result<std::optional<std::int64_t>> append(storage::Store& store, const TimeZone& zone, TimePoint now, const Block& block,
                                           const BatchSource& source, std::int64_t first_row) {
  storage::UsageBlockRecord rec;
  rec.data = encode_block(block);
  rec.key = block_key(rec.data);
  rec.source = source.name;
  rec.first_row = first_row;
  rec.events = static_cast<std::int64_t>(block.size());
  const auto [lo, hi] = std::minmax_element(block.time_ms.begin(), block.time_ms.end());
  rec.first_time = from_epoch_ms(*lo);
  rec.last_time = from_epoch_ms(*hi);
  rec.recorded = now;
  std::vector<storage::UsagePartialRecord> parts;
  const auto zone_name = zone.name();
  for (auto& p : partials(block, zone)) parts.push_back({0, zone_name, p.day, std::move(p.data)});
  return store.append_usage_block(rec, zone_name, parts);
}

}  // namespace

Result<IngestResult> store_block(storage::Store& store, const TimeZone& zone, TimePoint now, const Block& block,
                                 const BatchSource& source) {
  IngestResult out;
  out.events = block.size();
  if (block.size() == 0) return out;
  std::size_t skip = 0;
  if (source.name != "api") {
    // A file that grew since it was loaded: its last block then was shorter and is a prefix of this one.
    // It may have grown several times: follow the stored blocks from row to row.
    for (bool found = true; found && skip < block.size();) {
      found = false;
      auto stored = store.usage_blocks({.source = source.name, .first_row = source.first_row + static_cast<std::int64_t>(skip)});
      if (!stored) return stored.error();
      for (const auto& s : *stored) {
        const auto n = static_cast<std::size_t>(s.events);
        if (n >= block.size() - skip) continue;
        if (block_key(encode_block(slice_block(block, skip, skip + n))) == s.key) {
          skip += n;
          found = true;
          break;
        }
      }
    }
  }
  out.duplicates = skip;
  out.blocks_skipped = skip ? 1 : 0;
  auto id = append(store, zone, now, skip ? slice_block(block, skip, block.size()) : block, source,
                   source.first_row + static_cast<std::int64_t>(skip));
  if (!id) return id.error();
  if (*id) {
    out.stored += block.size() - skip;
    ++out.blocks_written;
  } else {
    out.duplicates += block.size() - skip;
    ++out.blocks_skipped;
  }
  return out;
}

}  // namespace detail

namespace {

RevenueSummary revenue_summary(const std::vector<storage::RevenueRow>& rows) {
  RevenueSummary s;
  std::map<std::int32_t, std::int64_t> active_by_day;
  std::map<std::string, PlanRevenue> plans;
  // Rows come by day then plan (query_revenue), so a plan's last row is its latest day's.
  for (const auto& r : rows) {
    s.total_revenue += r.total_revenue;
    s.new_subscribers += r.new_subscribers;
    s.churn_count += r.churn_count;
    active_by_day[r.day] += r.active_users;
    auto& p = plans[r.plan];
    p.plan = r.plan;
    p.revenue += r.total_revenue;
    p.new_subscribers += r.new_subscribers;
    p.churn_count += r.churn_count;
    p.active_users = r.active_users;
  }
  s.days = static_cast<int>(active_by_day.size());
  if (!active_by_day.empty()) {
    s.active_users = active_by_day.rbegin()->second;
    const auto first = active_by_day.begin()->second;
    if (first > 0) s.churn_rate = static_cast<double>(s.churn_count) / static_cast<double>(first);
    double sum = 0;
    for (const auto& [d, n] : active_by_day) sum += static_cast<double>(n);
    const double mean = sum / static_cast<double>(active_by_day.size());
    if (mean > 0) s.revenue_per_active_user = s.total_revenue / mean;
  }
  for (auto& [name, p] : plans) s.plans.push_back(std::move(p));
  std::sort(s.plans.begin(), s.plans.end(),
            [](const PlanRevenue& a, const PlanRevenue& b) { return a.revenue != b.revenue ? a.revenue > b.revenue : a.plan < b.plan; });
  return s;
}

std::string revenue_digest(const std::vector<storage::RevenueRow>& rows) {
  std::uint64_t h = automation::detail::fnv1a("revenue");
  for (const auto& r : rows)
    h = automation::detail::fnv1a(
        fmt::format("{}|{}|{}|{}|{}|{};", r.day, r.plan, r.total_revenue, r.new_subscribers, r.active_users, r.churn_count), h);
  return fmt::format("{:016x}/{}", h, rows.size());
}

template <class T>
void add_change(std::vector<Change>& out, std::string figure, T value_in, T previous_in) {
  Change c;
  c.figure = std::move(figure);
  c.value = static_cast<double>(value_in);
  c.previous = static_cast<double>(previous_in);
  c.absolute = c.value - c.previous;
  if (c.previous != 0) c.relative = c.absolute / c.previous;
  out.push_back(std::move(c));
}

// Calls fn(name, current, previous) for every name in either list, by name; a missing item is T{}.
template <class T, class Key, class Fn>
void paired(const std::vector<T>& cur, const std::vector<T>& prev, Key key, Fn fn) {
  std::map<std::string, std::pair<const T*, const T*>> both;
  for (const auto& x : cur) both[key(x)].first = &x;
  for (const auto& x : prev) both[key(x)].second = &x;
  const T none{};
  for (const auto& [name, p] : both) fn(name, p.first ? *p.first : none, p.second ? *p.second : none);
}

std::vector<Change> changes(const Rollup& cur, const Rollup& prev) {
  std::vector<Change> out;
  const auto& u = cur.usage;
  const auto& p = prev.usage;
  add_change(out, "usage.events", u.events, p.events);
  add_change(out, "usage.unique_users", u.unique_users, p.unique_users);
  add_change(out, "usage.errors", u.errors, p.errors);
  add_change(out, "usage.error_rate", u.error_rate, p.error_rate);
  add_change(out, "usage.duration.mean_ms", u.duration.mean_ms, p.duration.mean_ms);
  add_change(out, "usage.duration.p50_ms", u.duration.p50_ms, p.duration.p50_ms);
  add_change(out, "usage.duration.p95_ms", u.duration.p95_ms, p.duration.p95_ms);
  paired(
      u.features, p.features, [](const FeatureUsage& f) { return f.feature; },
      [&](const std::string& name, const FeatureUsage& a, const FeatureUsage& b) {
        const auto base = "usage.feature." + name;
        add_change(out, base + ".events", a.events, b.events);
        add_change(out, base + ".errors", a.errors, b.errors);
        add_change(out, base + ".error_rate", a.error_rate, b.error_rate);
        add_change(out, base + ".duration.p50_ms", a.duration.p50_ms, b.duration.p50_ms);
        add_change(out, base + ".duration.p95_ms", a.duration.p95_ms, b.duration.p95_ms);
      });
  paired(
      u.event_types, p.event_types, [](const NamedCount& t) { return t.name; },
      [&](const std::string& name, const NamedCount& a, const NamedCount& b) {
        add_change(out, "usage.event_type." + name, a.count, b.count);
      });

  const auto& r = cur.revenue;
  const auto& q = prev.revenue;
  add_change(out, "revenue.total", r.total_revenue, q.total_revenue);
  add_change(out, "revenue.new_subscribers", r.new_subscribers, q.new_subscribers);
  add_change(out, "revenue.active_users", r.active_users, q.active_users);
  add_change(out, "revenue.churn_count", r.churn_count, q.churn_count);
  add_change(out, "revenue.churn_rate", r.churn_rate.value_or(0), q.churn_rate.value_or(0));
  add_change(out, "revenue.per_active_user", r.revenue_per_active_user.value_or(0), q.revenue_per_active_user.value_or(0));
  paired(
      r.plans, q.plans, [](const PlanRevenue& pl) { return pl.plan; },
      [&](const std::string& name, const PlanRevenue& a, const PlanRevenue& b) {
        const auto base = "revenue.plan." + name;
        add_change(out, base + ".revenue", a.revenue, b.revenue);
        add_change(out, base + ".new_subscribers", a.new_subscribers, b.new_subscribers);
        add_change(out, base + ".active_users", a.active_users, b.active_users);
        add_change(out, base + ".churn_count", a.churn_count, b.churn_count);
      });
  return out;
}

// What a period's stored data looks like now: the newest block touching it and the revenue digest.
struct Fingerprint {
  std::int64_t watermark = 0;
  std::string revenue_digest;
};

// The rollup a stored record holds.
Result<Rollup> parse_stored(const storage::RollupRecord& s) {
  auto doc = json::parse(s.document, "stored rollup");
  if (!doc) return doc.error();
  auto r = rollup_from_json(*doc);
  if (!r) return with_context(r.error(), fmt::format("stored rollup {} ({})", s.period, s.time_zone));
  return r;
}

// A stored rollup found current, as aggregate() returns it.
Result<Rollup> reuse(const storage::RollupRecord& s) {
  auto r = parse_stored(s);
  if (!r) return r;
  r->reused = true;
  r->why = fmt::format("already aggregated at {}: no events or revenue arrived for {} since; force to recompute",
                       format_timestamp(s.computed), s.period);
  return r;
}

}  // namespace

MetricsAggregator::MetricsAggregator(storage::Store& store, const Clock& clock, AggregatorOptions options)
    : store_(store), clock_(clock), options_(std::move(options)) {
  options_.block_events = std::clamp<std::size_t>(options_.block_events, 1, 1 << 20);
  if (options_.owner.empty()) options_.owner = this_process();
}

Result<IngestResult> MetricsAggregator::ingest(std::span<const UsageEvent> events, const BatchSource& source) {
  for (std::size_t i = 0; i < events.size(); ++i)
    if (auto v = validate(events[i]); !v) return with_context(v.error(), fmt::format("event {} of {}", i, events.size()));
  IngestResult total;
  detail::BlockBuilder builder;
  BatchSource src = source;
  for (std::size_t i = 0; i < events.size();) {
    builder.clear();
    const auto first = i;
    for (; i < events.size() && builder.size() < options_.block_events; ++i) builder.add(events[i]);
    src.first_row = source.first_row + static_cast<std::int64_t>(first);
    auto r = detail::store_block(store_, options_.time_zone, clock_.now(), builder.block(), src);
    if (!r) return with_context(r.error(), fmt::format("store events {}..{}", first, i - 1));
    total += *r;
  }
  return total;
}

Result<RevenueIngestResult> MetricsAggregator::ingest_revenue(std::span<const RevenueRecord> records) {
  std::vector<storage::RevenueRow> rows;
  rows.reserve(records.size());
  const auto now = clock_.now();
  for (std::size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    if (auto v = validate(r); !v) return with_context(v.error(), fmt::format("revenue record {} of {}", i, records.size()));
    rows.push_back({day_number(r.date), r.plan, r.total_revenue, r.new_subscribers, r.active_users, r.churn_count, now});
  }
  auto u = store_.upsert_revenue(rows);
  if (!u) return u.error();
  return RevenueIngestResult{u->inserted, u->updated, u->unchanged};
}

namespace {

// What a fingerprint covers: the period and the one before it (its changes depend on both).
struct FingerprintScope {
  TimePoint begin, end;              // blocks overlapping [begin, end)
  std::int32_t first_day, last_day;  // revenue rows of these days
};

FingerprintScope fingerprint_scope(const TimeZone& zone, const Period& period) {
  const auto prev = period.previous();
  return {zone.start_of_day(prev.first), zone.start_of_day(sys_days{period.last} + days{1}), day_number(prev.first),
          day_number(period.last)};
}

// The fingerprint of `period` from blocks and revenue rows (by day then plan) read over any range
// that includes its scope.
Fingerprint fingerprint_of(const std::vector<storage::UsageBlockRecord>& blocks, const std::vector<storage::RevenueRow>& rows,
                           const FingerprintScope& scope) {
  Fingerprint f;
  for (const auto& b : blocks)
    if (b.first_time < scope.end && b.last_time >= scope.begin) f.watermark = std::max(f.watermark, b.id);
  std::vector<storage::RevenueRow> in_scope;
  for (const auto& r : rows)
    if (r.day >= scope.first_day && r.day <= scope.last_day) in_scope.push_back(r);
  f.revenue_digest = revenue_digest(in_scope);
  return f;
}

// Taken before reading, so a block stored meanwhile makes the stored rollup stale rather than
// silently missing.
Result<Fingerprint> fingerprint(storage::Store& store, const TimeZone& zone, const Period& period) {
  const auto scope = fingerprint_scope(zone, period);
  auto blocks = store.usage_blocks({.since = scope.begin, .until = scope.end});
  if (!blocks) return blocks.error();
  auto rows = store.query_revenue(scope.first_day, scope.last_day);
  if (!rows) return rows.error();
  return fingerprint_of(*blocks, *rows, scope);
}

// The usage and revenue of one period (no changes), and its fingerprint.
Result<Rollup> summarize(storage::Store& store, const TimeZone& zone, const Period& period) {
  Rollup r;
  r.period = period;
  r.time_zone = zone.name();
  r.begin = zone.start_of_day(period.first);
  r.end = zone.start_of_day(sys_days{period.last} + days{1});
  const auto first_day = day_number(period.first), last_day = day_number(period.last);
  // Blocks stored while another zone was configured get their partials for this one now.
  auto missing = store.usage_blocks_without_partials(r.time_zone, r.begin, r.end);
  if (!missing) return missing.error();
  for (auto id : *missing) {
    auto blocks = store.usage_blocks({.id = id, .with_data = true});
    if (!blocks) return blocks.error();
    if (blocks->empty()) continue;  // pruned meanwhile
    auto block = detail::decode_block(blocks->front().data);
    if (!block) return with_context(block.error(), fmt::format("usage block {}", id));
    std::vector<storage::UsagePartialRecord> parts;
    for (auto& p : detail::partials(*block, zone)) parts.push_back({id, r.time_zone, p.day, std::move(p.data)});
    if (auto put = store.put_usage_partials(id, r.time_zone, parts); !put) return put.error();
  }
  auto parts = store.usage_partials(r.time_zone, first_day, last_day);
  if (!parts) return parts.error();
  detail::UsageAccumulator acc;
  // A day's partials (one per block that touched it) are merged into one the first time a rollup
  // reads them, so later rollups of the day, its week and its month read one partial per day.
  for (std::size_t i = 0; i < parts->size();) {
    std::size_t j = i;
    while (j < parts->size() && (*parts)[j].day == (*parts)[i].day) ++j;
    auto merge = [](detail::UsageAccumulator& into, const storage::UsagePartialRecord& p) -> Result<void> {
      if (auto m = into.merge(p.data); !m) return with_context(m.error(), fmt::format("usage block {} day {}", p.block_id, p.day));
      return {};
    };
    if (j - i == 1) {
      if (auto m = merge(acc, (*parts)[i++]); !m) return m.error();
      continue;
    }
    detail::UsageAccumulator day;
    std::vector<std::int64_t> ids;
    for (std::size_t k = i; k < j; ++k) {
      if (auto m = merge(day, (*parts)[k]); !m) return m.error();
      ids.push_back((*parts)[k].block_id);
    }
    const auto merged = day.encode();
    if (auto m = acc.merge(merged); !m) return m.error();
    if (auto c = store.compact_usage_partials(r.time_zone, (*parts)[i].day, ids, merged); !c)
      automation::detail::logf(LogLevel::debug, "metrics", "did not compact the partials of day {}: {}", (*parts)[i].day,
                               c.error().message);
    i = j;
  }
  r.usage = acc.summary();
  r.partials_read = static_cast<std::int64_t>(parts->size());
  auto rows = store.query_revenue(first_day, last_day);
  if (!rows) return rows.error();
  r.revenue = revenue_summary(*rows);
  return r;
}

}  // namespace

Result<std::vector<RevenueRecord>> MetricsAggregator::revenue_records(year_month_day first, year_month_day last) {
  if (!first.ok() || !last.ok()) return fail(errc::invalid_argument, "revenue records: invalid date");
  auto rows = store_.query_revenue(day_number(first), day_number(last));
  if (!rows) return rows.error();
  std::vector<RevenueRecord> out;
  out.reserve(rows->size());
  for (auto& r : *rows)
    out.push_back({date_of_day(r.day), std::move(r.plan), r.total_revenue, r.new_subscribers, r.active_users, r.churn_count});
  std::sort(out.begin(), out.end(), [](const RevenueRecord& a, const RevenueRecord& b) {
    return std::pair(sys_days{a.date}, std::string_view(a.plan)) < std::pair(sys_days{b.date}, std::string_view(b.plan));
  });
  return out;
}

Result<std::vector<Insight>> MetricsAggregator::insights(const Period& period, const InsightOptions& options) {
  if (auto ok = options.validate(); !ok) return ok.error();
  auto rollup = aggregate(period);
  if (!rollup) return rollup.error();
  return insights_of(*rollup, options);
}

Result<std::vector<Insight>> MetricsAggregator::insights_of(const Rollup& rollup, const InsightOptions& options) {
  const auto& period = rollup.period;
  auto revenue = revenue_records(year_month_day{sys_days{period.last} - days{trend_days(period, options) - 1}}, period.last);
  if (!revenue) return revenue.error();
  return derive_insights(rollup, *revenue, options);
}

Result<Rollup> MetricsAggregator::summary(const Period& period) {
  auto r = summarize(store_, options_.time_zone, period);
  if (r) r->computed = clock_.now();
  return r;
}

Result<Rollup> MetricsAggregator::compute(const Period& period) {
  auto cur = summary(period);
  if (!cur) return cur.error();
  auto prev = summarize(store_, options_.time_zone, period.previous());
  if (!prev) return prev.error();
  cur->changes = changes(*cur, *prev);
  return cur;
}

Result<Rollup> MetricsAggregator::aggregate(const Period& period, bool force) {
  const auto zone = options_.time_zone.name();
  const auto key = period.key();
  const auto started = clock_.now();
  auto stored = store_.get_rollup(zone, key);
  if (!stored) return stored.error();
  std::string why = force ? "forced by the caller" : fmt::format("first aggregation of {}", key);
  std::optional<Fingerprint> stale;  // the fingerprint that showed the stored rollup stale, taken before reading
  if (*stored && !force) {
    const auto& s = **stored;
    if (s.state == "running" && s.lease_until > started)
      return fail(errc::busy,
                  fmt::format("already running: {} ({}) is being aggregated by {} since {} (claim until {}); force to run anyway", key,
                              zone, s.owner, format_timestamp(s.started), format_timestamp(s.lease_until)));
    if (s.state == "done") {
      auto fp = fingerprint(store_, options_.time_zone, period);
      if (!fp) return fp.error();
      if (fp->watermark == s.usage_watermark && fp->revenue_digest == s.revenue_digest) return reuse(s);
      stale = *fp;
      why = fp->watermark != s.usage_watermark
                ? fmt::format("events arrived for {} or the period before after its aggregation at {} (late events re-open a period)", key,
                              format_timestamp(s.computed))
                : fmt::format("revenue for {} or the period before changed after its aggregation at {}", key, format_timestamp(s.computed));
    } else if (s.state == "failed") {
      why = fmt::format("the last aggregation of {} failed: {}", key, s.reason);
    } else {
      why = fmt::format("the claim of {} on {} expired at {}", s.owner, key, format_timestamp(s.lease_until));
    }
  }
  // Claim the period, so a concurrent run reports "already running"; the last result stays until replaced.
  storage::RollupRecord claim = *stored ? **stored : storage::RollupRecord{};
  claim.time_zone = zone;
  claim.period = key;
  claim.state = "running";
  claim.started = started;
  claim.owner = options_.owner;
  claim.lease_until = started + options_.lease;
  claim.reason = why;
  auto version = store_.put_rollup(claim, *stored ? (*stored)->version : 0);
  if (!version) {
    if (version.error().code == errc::conflict)
      return fail(errc::busy, fmt::format("already running: another process claimed {} ({}) first", key, zone));
    return version.error();
  }
  auto finish = [&](std::string state, std::string reason, std::string document, const Fingerprint& fp) -> Result<std::int64_t> {
    storage::RollupRecord done = claim;
    done.state = std::move(state);
    done.reason = std::move(reason);
    done.computed = clock_.now();
    done.owner.clear();
    done.lease_until = {};
    if (done.state == "done") {
      done.document = std::move(document);
      done.usage_watermark = fp.watermark;
      done.revenue_digest = fp.revenue_digest;
    }
    return store_.put_rollup(done, *version);
  };
  auto record_task = [&](storage::TaskOutcome outcome, std::string error) {
    storage::TaskRecord t;
    t.domain = "metrics";
    t.action = fmt::format("aggregate.{}", to_string(period.granularity));
    t.params = json::dump(bj::object{{"period", key}, {"time_zone", zone}, {"force", force}, {"why", why}});
    t.outcome = outcome;
    t.error = std::move(error);
    t.started = started;
    t.ended = clock_.now();
    t.duration = t.ended - t.started;
    if (auto a = store_.append_tasks({&t, 1}); !a)
      automation::detail::logf(LogLevel::warn, "metrics", "could not record the aggregation of {} in the task history: {}", key,
                               a.error().message);
  };

  auto fp = stale ? Result<Fingerprint>(*stale) : fingerprint(store_, options_.time_zone, period);
  auto r = fp ? compute(period) : Result<Rollup>(fp.error());
  if (!r) {
    (void)finish("failed", r.error().message, {}, {});
    record_task(storage::TaskOutcome::failure, r.error().message);
    return r.error();
  }
  r->why = why;
  if (auto w = finish("done", why, json::dump(to_json(*r)), *fp); !w) {
    record_task(storage::TaskOutcome::failure, w.error().message);
    if (w.error().code == errc::conflict)
      return fail(errc::busy, fmt::format("{} ({}) was taken over by another process while it ran; its result was not stored", key, zone));
    return w.error();
  }
  record_task(storage::TaskOutcome::success, {});
  return r;
}

std::span<const DailyFigure> daily_figures() noexcept {
  static constexpr DailyFigure kFigures[] = {
      {"events", "usage events per day", [](const Rollup& r) { return static_cast<double>(r.usage.events); }},
      {"unique_users", "distinct users with an event that day", [](const Rollup& r) { return static_cast<double>(r.usage.unique_users); }},
      {"errors", "events with an error code", [](const Rollup& r) { return static_cast<double>(r.usage.errors); }},
      {"error_rate", "errors / events", [](const Rollup& r) { return r.usage.error_rate; }},
      {"duration_p95", "95th percentile of event durations, ms", [](const Rollup& r) { return r.usage.duration.p95_ms; }},
      {"revenue", "total revenue of all plans", [](const Rollup& r) { return r.revenue.total_revenue; }, true},
      {"new_subscribers", "new subscribers of all plans", [](const Rollup& r) { return static_cast<double>(r.revenue.new_subscribers); },
       true},
      {"active_users", "active users of all plans (revenue records)",
       [](const Rollup& r) { return static_cast<double>(r.revenue.active_users); }, true},
      {"churn", "churned users of all plans", [](const Rollup& r) { return static_cast<double>(r.revenue.churn_count); }, true},
      {"usage", "the seed's name for events", [](const Rollup& r) { return static_cast<double>(r.usage.events); }},
      {"users", "the seed's name for active_users", [](const Rollup& r) { return static_cast<double>(r.revenue.active_users); }, true},
  };
  return kFigures;
}

bool DailyFigure::has_data(const Rollup& r) const noexcept { return from_revenue ? r.revenue.days > 0 : r.usage.events > 0; }

Result<DailyFigure> daily_figure(std::string_view name) {
  std::vector<std::string_view> names;
  for (const auto& f : daily_figures()) {
    if (f.name == name) return f;
    names.push_back(f.name);
  }
  return fail(errc::invalid_argument, fmt::format("unknown metric \"{}\" (use {})", name, fmt::join(names, ", ")));
}

Result<std::vector<std::optional<double>>> MetricsAggregator::daily_series(std::string_view figure, year_month_day first,
                                                                           year_month_day last) {
  auto f = daily_figure(figure);
  if (!f) return f.error();
  auto rollups = daily(first, last, false);
  if (!rollups) return rollups.error();
  std::vector<std::optional<double>> out;
  out.reserve(rollups->size());
  for (const auto& r : *rollups) out.push_back(f->has_data(r) ? std::optional<double>(f->of(r)) : std::nullopt);
  return out;
}

Result<std::vector<Rollup>> MetricsAggregator::daily_rollups(year_month_day first, year_month_day last) { return daily(first, last, true); }

Result<std::vector<Rollup>> MetricsAggregator::daily(year_month_day first, year_month_day last, bool store) {
  if (!first.ok() || !last.ok()) return fail(errc::invalid_argument, "daily rollups: invalid date");
  if (sys_days{last} < sys_days{first})
    return fail(errc::invalid_argument, fmt::format("daily rollups: {} is before {}", format_date(last), format_date(first)));
  if ((sys_days{last} - sys_days{first}).count() >= 3660)
    return fail(errc::invalid_argument,
                fmt::format("daily rollups: {}..{} is more than 3,660 days", format_date(first), format_date(last)));
  const auto& zone = options_.time_zone;
  // One read of the blocks and revenue of the scopes of all the days gives every day's fingerprint
  // as aggregate() would compute it.
  const auto lo = fingerprint_scope(zone, day_of(first)), hi = fingerprint_scope(zone, day_of(last));
  auto blocks = store_.usage_blocks({.since = lo.begin, .until = hi.end});
  if (!blocks) return blocks.error();
  auto rows = store_.query_revenue(lo.first_day, hi.last_day);
  if (!rows) return rows.error();
  std::vector<Rollup> out;
  for (auto d = sys_days{first}; d <= sys_days{last}; d += days{1}) {
    const auto period = day_of(year_month_day{d});
    auto stored = store_.get_rollup(zone.name(), period.key());
    if (!stored) return stored.error();
    if (*stored && (*stored)->state == "done") {
      const auto fp = fingerprint_of(*blocks, *rows, fingerprint_scope(zone, period));
      if (fp.watermark == (*stored)->usage_watermark && fp.revenue_digest == (*stored)->revenue_digest) {
        auto r = reuse(**stored);
        if (!r) return r.error();
        out.push_back(std::move(*r));
        continue;
      }
    }
    auto r = store ? aggregate(period) : summary(period);
    if (!r) return with_context(r.error(), period.key());
    out.push_back(std::move(*r));
  }
  return out;
}

Result<Report> MetricsAggregator::report(const Period& period, const InsightOptions& options) {
  if (auto ok = options.validate(); !ok) return ok.error();
  Report rep;
  rep.period = period;
  rep.time_zone = options_.time_zone.name();
  auto rollup = aggregate(period);
  if (!rollup) return rollup.error();
  rep.rollup = std::move(*rollup);
  const auto last = sys_days{period.last};
  auto dailies = daily_rollups(year_month_day{last - days{report_days(period) - 1}}, period.last);
  if (!dailies) return dailies.error();
  for (const auto& r : *dailies) {
    DayFigures d;
    d.date = r.period.first;
    d.events = r.usage.events;
    d.unique_users = r.usage.unique_users;
    d.errors = r.usage.errors;
    d.error_rate = r.usage.error_rate;
    d.has_revenue = r.revenue.days > 0;
    d.revenue = r.revenue.total_revenue;
    d.new_subscribers = r.revenue.new_subscribers;
    d.active_users = r.revenue.active_users;
    d.churn_count = r.revenue.churn_count;
    rep.days.push_back(d);
  }
  auto insights = insights_of(rep.rollup, options);
  if (!insights) return insights.error();
  rep.insights = std::move(*insights);
  rep.generated = clock_.now();
  return rep;
}

Result<std::vector<Rollup>> MetricsAggregator::stored_rollups(std::size_t limit) {
  auto recs = store_.list_rollups(limit);
  if (!recs) return recs.error();
  std::vector<Rollup> out;
  for (const auto& s : *recs) {
    if (s.state != "done") continue;
    auto r = parse_stored(s);
    if (!r) return r.error();
    out.push_back(std::move(*r));
  }
  return out;
}

}  // namespace automation::metrics
