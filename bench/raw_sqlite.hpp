#pragma once
// Raw sqlite3 for the baselines, with every call checked: the first failure is kept in `error`,
// and the benchmark skips with it instead of timing an error path.
#include <sqlite3.h>

#include <string>
#include <string_view>
#include <vector>

namespace automation::bench {

class RawSqlite {
 public:
  /// Opens `path`; a writable database gets the store's pragmas (WAL, synchronous NORMAL).
  explicit RawSqlite(const std::string& path, bool read_only = false) {
    if (!check(sqlite3_open_v2(path.c_str(), &db_, read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK, "open"))
      return;
    if (!read_only) exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
  }
  ~RawSqlite() {
    for (auto* st : statements_) sqlite3_finalize(st);
    sqlite3_close(db_);
  }
  RawSqlite(const RawSqlite&) = delete;
  RawSqlite& operator=(const RawSqlite&) = delete;

  bool ok() const noexcept { return error_.empty(); }
  const std::string& error() const noexcept { return error_; }

  void exec(const char* sql) { check(sqlite3_exec(db_, sql, nullptr, nullptr, nullptr), SQLITE_OK, sql); }
  /// A statement finalized with the connection.
  sqlite3_stmt* prepare(const char* sql) {
    sqlite3_stmt* st = nullptr;
    if (check(sqlite3_prepare_v2(db_, sql, -1, &st, nullptr), SQLITE_OK, sql)) statements_.push_back(st);
    return st;
  }
  void text(sqlite3_stmt* st, int i, std::string_view v) {
    sqlite3_bind_text(st, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  /// Steps a statement that returns no rows, then resets it.
  void step_done(sqlite3_stmt* st) {
    check(sqlite3_step(st), SQLITE_DONE, "step");
    sqlite3_reset(st);
  }
  /// Steps through every row of a query, then resets it; the number of rows.
  int count_rows(sqlite3_stmt* st) {
    int rows = 0, rc = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) ++rows;
    check(rc, SQLITE_DONE, "query");
    sqlite3_reset(st);
    return rows;
  }

 private:
  bool check(int rc, int expected, std::string_view what) {
    if (rc == expected) return true;
    if (error_.empty()) error_ = std::string(what) + ": " + (db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
    return false;
  }
  sqlite3* db_ = nullptr;
  std::vector<sqlite3_stmt*> statements_;
  std::string error_;
};

}  // namespace automation::bench
