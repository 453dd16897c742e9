#pragma once
/// The pluggable storage interface. Operations are coarse and domain-level, grouped by area (meta,
/// audit; later areas add theirs), and every one is written to stay correct when several processes
/// share one database: appends get store-assigned ids, updates use compare-and-set on a version,
/// "exactly once" uses unique keys, and claims carry an owner and a lease.
/// Thread-safety: every Store implementation is safe to call from several threads.
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace automation::storage {

// ---- meta area ---------------------------------------------------------------------------------

struct FileInfo {
  std::string path;
  std::int64_t bytes = 0;
};

struct AreaInfo {
  std::string area;   ///< "audit", ...
  std::string table;  ///< the table (or collection) holding it
  std::int64_t rows = 0;
};

struct StoreInfo {
  std::string backend;   ///< "sqlite" or "memory"
  std::string location;  ///< the database path, or "memory:"
  int schema_version = 0;
  int latest_schema_version = 0;
  std::vector<FileInfo> files;  ///< the database file, its -wal and -shm (those that exist)
  std::vector<AreaInfo> areas;
  std::string journal_mode;  ///< "wal" for SQLite
  std::string synchronous;   ///< "normal" or "full" for SQLite
};

struct MigrationReport {
  int from_version = 0;
  int to_version = 0;
  std::vector<std::string> applied;  ///< "2: add the audit area", in order
};

/// The schema version this build writes; a database with a higher one is refused (schema_too_new).
int latest_schema_version() noexcept;
/// The migrations a database at `from_version` still needs, as "N: description", in order.
std::vector<std::string> pending_migrations(int from_version);

// ---- audit area --------------------------------------------------------------------------------

enum class AuditOutcome { success, failure, denied };
std::string_view to_string(AuditOutcome o) noexcept;
Result<AuditOutcome> parse_audit_outcome(std::string_view text);

/// One mutating action: who did what to which resource, when, from where, how it ended and why.
struct AuditRecord {
  std::int64_t id = 0;  ///< assigned by the store on append; increases with append order
  TimePoint time{};
  std::string actor;     ///< "user:alice", "token:deploy-bot", "system:scheduler"
  std::string action;    ///< dotted verb: "store.migrate", "breaker.reset"
  std::string resource;  ///< "store", "breaker:payments"
  std::string origin;    ///< "cli pid=4242 host=web1", "http 127.0.0.1:51234"
  AuditOutcome outcome = AuditOutcome::success;
  std::string reason;          ///< why it was done, or why it failed / was denied
  std::string details = "{}";  ///< a JSON object with the inputs
  std::string correlation_id;

  friend bool operator==(const AuditRecord&, const AuditRecord&) = default;
};

/// Filters are ANDed. `resource` and `actor` match exactly, or by prefix when they end in '*'.
struct AuditQuery {
  std::optional<TimePoint> since;  ///< inclusive
  std::optional<TimePoint> until;  ///< exclusive
  std::optional<std::string> actor;
  std::optional<std::string> action;
  std::optional<std::string> resource;
  std::optional<AuditOutcome> outcome;
  std::size_t limit = 100;   ///< at most this many records (0: no limit)
  bool newest_first = true;  ///< order by id descending (else ascending)
};

/// Checks a record before it is stored (non-empty actor/action/resource, details a JSON object).
/// Every backend calls this, so all of them reject the same input with the same message.
Result<void> validate(const AuditRecord& record);

// ---- the interface -----------------------------------------------------------------------------

class Store {
 public:
  virtual ~Store() = default;

  /// "sqlite" or "memory".
  virtual std::string_view backend() const noexcept = 0;

  // meta
  virtual Result<StoreInfo> info() = 0;
  virtual Result<int> schema_version() = 0;
  /// Applies pending migrations in order, each in its own transaction; a no-op when current.
  virtual Result<MigrationReport> migrate() = 0;

  // audit
  /// Appends records atomically (all or none) and returns the id given to the last one.
  /// Ids and times of the input are ignored/kept respectively: the store assigns ids.
  virtual Result<std::int64_t> append_audit(std::span<const AuditRecord> records) = 0;
  virtual Result<std::vector<AuditRecord>> query_audit(const AuditQuery& query) = 0;
};

enum class Synchronous { normal, full };

struct OpenOptions {
  bool create_if_missing = true;  ///< else errc::not_found for a missing database file
  bool migrate = true;            ///< apply pending migrations on open
  bool read_only = false;         ///< open without any write (implies no create, no migrate)
  Synchronous synchronous = Synchronous::normal;
  Millis busy_timeout{5000};
};

/// Opens a store by URI: "sqlite:PATH" (a relative PATH is relative to the working directory;
/// missing parent directories are created) or "memory:". errc::invalid_argument for any other form.
Result<std::unique_ptr<Store>> open_store(std::string_view uri, const OpenOptions& options = {});

}  // namespace automation::storage
