#pragma once
/// MetricsAggregator: loads usage events and revenue records into a Store and rolls them up by day,
/// ISO week, month or any date range in a configured time zone.
///
/// Events are stored in blocks of up to 65,536 in a columnar encoding, each with the aggregates of
/// its events per local day (partials); a rollup merges partials and never rereads the events, so it
/// takes milliseconds over millions of events. Appends are idempotent: a block's key is the hash of
/// its content, so loading the same events again stores nothing. Rollups are stored; a stored one is
/// returned as it is while no later block or changed revenue touches its period (late events re-open
/// it), and a period another process is computing is refused as busy ("already running") unless
/// forced. See docs/metrics.md.
///
/// Thread-safety: safe from several threads (and processes sharing the store). Needs a Store and a
/// Clock, both outliving it.
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>
#include <automation/core/time.hpp>
#include <automation/metrics/insights.hpp>
#include <automation/metrics/metrics.hpp>
#include <automation/metrics/report.hpp>
#include <automation/storage/store.hpp>

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

namespace automation::metrics {

struct AggregatorOptions {
  TimeZone time_zone;                         ///< the zone local dates are in (default UTC)
  Duration lease = std::chrono::minutes(10);  ///< how long a "running" claim on a period holds
  std::size_t block_events = 65536;           ///< events per stored block (1..1,048,576)
  std::string owner;                          ///< who claims periods (default "pid N on HOST")
};

/// Where a batch of events comes from. A file source with first_row lets a file that has grown
/// since it was loaded continue where the last load stopped (see docs/metrics.md).
struct BatchSource {
  std::string name = "api";    ///< "api", "file:/abs/path.csv"
  std::int64_t first_row = 0;  ///< the source row of the batch's first event (0-based)
};

struct IngestResult {
  std::uint64_t events = 0;      ///< events in the input
  std::uint64_t stored = 0;      ///< events newly stored
  std::uint64_t duplicates = 0;  ///< events already stored (their block's key existed)
  std::uint64_t blocks_written = 0, blocks_skipped = 0;

  IngestResult& operator+=(const IngestResult& o) noexcept {
    events += o.events;
    stored += o.stored;
    duplicates += o.duplicates;
    blocks_written += o.blocks_written;
    blocks_skipped += o.blocks_skipped;
    return *this;
  }
};

struct RevenueIngestResult {
  std::uint64_t inserted = 0, updated = 0, unchanged = 0;

  RevenueIngestResult& operator+=(const RevenueIngestResult& o) noexcept {
    inserted += o.inserted;
    updated += o.updated;
    unchanged += o.unchanged;
    return *this;
  }
};

enum class RecordKind { events, revenue };
enum class FileFormat { automatic, csv, ndjson };

struct FileIngestOptions {
  FileFormat format = FileFormat::automatic;  ///< automatic: .ndjson/.jsonl is NDJSON, .csv CSV, else NDJSON when it starts with '{'
  bool strict = false;                        ///< any bad row rejects the whole file (nothing is stored)
  std::string rejects_path;                   ///< where bad rows go (default PATH.rejects); not written in strict mode
  /// Called after each stored batch with the bytes read so far and the file's size.
  std::function<void(std::uint64_t done, std::uint64_t total)> progress;
};

struct RowError {
  std::uint64_t line = 0;  ///< 1-based line where the row starts
  std::string reason;
};

struct FileIngestReport {
  std::string path, format;    ///< format "csv" or "ndjson"
  std::uint64_t rows = 0;      ///< data rows read
  std::uint64_t accepted = 0;  ///< rows that parsed
  std::uint64_t rejected = 0;
  bool strict_rejected = false;  ///< strict mode found bad rows: nothing was stored
  std::string rejects_path;      ///< the file the bad rows were written to (empty: none)
  std::vector<std::string> ignored_columns;
  IngestResult events;           ///< kind events
  RevenueIngestResult revenue;   ///< kind revenue
  std::vector<RowError> errors;  ///< the first 100
};

/// A figure a daily rollup gives, by name: the series anomaly detection and forecasts read.
struct DailyFigure {
  std::string_view name;
  std::string_view description;
  double (*of)(const Rollup&);
  bool from_revenue = false;  ///< read from revenue records (else from usage events)
  /// Whether the day has any data this figure is made from (events, or revenue records).
  bool has_data(const Rollup& r) const noexcept;
};
/// events, unique_users, errors, error_rate, duration_p95, revenue, new_subscribers, active_users
/// and churn, then the seed's names: usage (events) and users (active_users).
std::span<const DailyFigure> daily_figures() noexcept;
/// errc::invalid_argument listing the names for an unknown one.
Result<DailyFigure> daily_figure(std::string_view name);

class MetricsAggregator {
 public:
  MetricsAggregator(storage::Store& store, const Clock& clock, AggregatorOptions options = {});

  const AggregatorOptions& options() const noexcept { return options_; }

  /// Validates every event first (errc::invalid_argument naming the index and field; nothing is
  /// stored then) and appends them in blocks, each with its partials, one transaction per block.
  Result<IngestResult> ingest(std::span<const UsageEvent> events, const BatchSource& source = {});
  /// Validates every record first, then inserts or replaces them by (date, plan) in one transaction.
  Result<RevenueIngestResult> ingest_revenue(std::span<const RevenueRecord> records);

  /// Loads a CSV (columns mapped by header) or NDJSON file, streaming: memory stays constant
  /// whatever the file's size. Bad rows are reported by line; see FileIngestOptions. errc::not_found
  /// for a missing file, errc::invalid_argument for a file without the required columns.
  Result<FileIngestReport> ingest_file(RecordKind kind, const std::string& path, const FileIngestOptions& options = {});

  /// The rollup of `period`: the stored one when it is current and `force` is false, else computed
  /// and stored. errc::busy ("already running") when another owner holds an unexpired claim on the
  /// period and `force` is false.
  Result<Rollup> aggregate(const Period& period, bool force = false);
  /// Computes the rollup of `period` without storing it or looking at stored rollups (it may merge a
  /// day's stored partials into one, which changes no figure).
  Result<Rollup> compute(const Period& period);
  /// The figures of `period` alone: compute() without the previous period, so `changes` is empty.
  /// For series of many periods, where the changes would be thrown away.
  Result<Rollup> summary(const Period& period);
  /// The revenue records of the dates first..last (inclusive), by date then plan.
  Result<std::vector<RevenueRecord>> revenue_records(std::chrono::year_month_day first, std::chrono::year_month_day last);

  /// The insights of `period`: its rollup as aggregate() returns it (stored when current; errc::busy
  /// when another owner is computing it) and the revenue of the trend window before its end.
  /// errc::invalid_argument for invalid options.
  Result<std::vector<Insight>> insights(const Period& period, const InsightOptions& options = {});

  /// The rollup of each day first..last (at most 3,660 days), oldest first, as aggregate() returns it:
  /// a stored one still current is reused (checked against one read of the range's blocks and
  /// revenue), the others are computed and stored. errc::busy when another owner is computing one.
  Result<std::vector<Rollup>> daily_rollups(std::chrono::year_month_day first, std::chrono::year_month_day last);

  /// One daily figure (daily_figure()) for each day first..last, oldest first; nullopt for a day
  /// without the data it is made from (no events, or no revenue records). It only reads: a day's
  /// stored rollup is used while current, any other day is computed (summary()) and not stored, so it
  /// never waits for or claims a day another process is aggregating.
  Result<std::vector<std::optional<double>>> daily_series(std::string_view figure, std::chrono::year_month_day first,
                                                          std::chrono::year_month_day last);

  /// The report of `period`: its rollup as aggregate() returns it, the daily figures of its trend
  /// window (report_days(), from daily_rollups()) and its insights. See report.hpp.
  Result<Report> report(const Period& period, const InsightOptions& options = {});

  /// Stored rollups, newest computed first.
  Result<std::vector<Rollup>> stored_rollups(std::size_t limit = 100);

  /// The local date of `t` in the configured zone.
  std::chrono::year_month_day local_date(TimePoint t) const { return options_.time_zone.local_date(t); }

 private:
  // The rollup of each day first..last: stored ones while current, the others aggregate()d (and
  // stored) when `store`, else summary()'d.
  Result<std::vector<Rollup>> daily(std::chrono::year_month_day first, std::chrono::year_month_day last, bool store);
  // The insights of a rollup: the revenue of its trend window read, then derive_insights().
  Result<std::vector<Insight>> insights_of(const Rollup& rollup, const InsightOptions& options);

  storage::Store& store_;
  const Clock& clock_;
  AggregatorOptions options_;
};

}  // namespace automation::metrics
