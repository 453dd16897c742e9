#pragma once
// A minimal RAII layer over the sqlite3 C API, mapping SQLite result codes to automation::errc.
#include <automation/core/error.hpp>

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace automation::detail::sqlite {

errc map_code(int rc) noexcept;
Error error(sqlite3* db, int rc, std::string_view what);

class Statement {
 public:
  Statement() = default;
  Statement(sqlite3* db, sqlite3_stmt* s) : db_(db), s_(s) {}
  Statement(Statement&& o) noexcept : db_(o.db_), s_(o.s_) { o.s_ = nullptr; }
  Statement& operator=(Statement&& o) noexcept {
    if (this != &o) {
      finalize();
      db_ = o.db_;
      s_ = o.s_;
      o.s_ = nullptr;
    }
    return *this;
  }
  ~Statement() { finalize(); }

  explicit operator bool() const noexcept { return s_ != nullptr; }
  sqlite3_stmt* get() const noexcept { return s_; }

  void bind(int i, std::int64_t v) { sqlite3_bind_int64(s_, i, v); }
  void bind(int i, int v) { sqlite3_bind_int64(s_, i, v); }
  void bind(int i, double v) { sqlite3_bind_double(s_, i, v); }
  void bind(int i, std::string_view v) { sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT); }
  void bind_null(int i) { sqlite3_bind_null(s_, i); }
  // A BLOB the statement does not copy: `v` must outlive the step.
  void bind_blob_static(int i, std::string_view v) { sqlite3_bind_blob64(s_, i, v.data(), v.size(), SQLITE_STATIC); }

  /// SQLITE_ROW -> true, SQLITE_DONE -> false, otherwise an error.
  Result<bool> step(std::string_view what);
  void reset() noexcept {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }

  std::int64_t int64(int col) const { return sqlite3_column_int64(s_, col); }
  double real(int col) const { return sqlite3_column_double(s_, col); }
  std::string text(int col) const {
    const auto* p = sqlite3_column_text(s_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(s_, col))) : std::string();
  }
  /// Valid until the next step/reset of this statement.
  std::string_view text_view(int col) const {
    const auto* p = sqlite3_column_text(s_, col);
    return p ? std::string_view(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(s_, col)))
             : std::string_view();
  }
  std::string blob(int col) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(s_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, col))) : std::string();
  }
  bool is_null(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }

 private:
  void finalize() noexcept {
    if (s_) sqlite3_finalize(s_);
    s_ = nullptr;
  }
  sqlite3* db_ = nullptr;
  sqlite3_stmt* s_ = nullptr;
};

class Connection {
 public:
  Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() { close(); }

  Result<void> open(const std::string& path, int flags);
  void close() noexcept;
  sqlite3* get() const noexcept { return db_; }

  Result<void> exec(std::string_view sql, std::string_view what);
  Result<Statement> prepare(std::string_view sql);
  /// First column of the first row as an integer.
  Result<std::int64_t> scalar_int(std::string_view sql, std::string_view what);
  Result<std::string> scalar_text(std::string_view sql, std::string_view what);

 private:
  sqlite3* db_ = nullptr;
};

/// A transaction: begin() (BEGIN IMMEDIATE for writes, or plain BEGIN for a consistent read);
/// ROLLBACK on destruction unless committed.
class Transaction {
 public:
  explicit Transaction(Connection& c) : c_(c) {}
  ~Transaction() {
    if (active_) (void)c_.exec("ROLLBACK", "rollback");
  }
  Result<void> begin(std::string_view statement = "BEGIN IMMEDIATE") {
    auto r = c_.exec(statement, "begin a transaction");
    if (r) active_ = true;
    return r;
  }
  Result<void> commit() {
    auto r = c_.exec("COMMIT", "commit");
    if (r) active_ = false;
    return r;
  }

 private:
  Connection& c_;
  bool active_ = false;
};

}  // namespace automation::detail::sqlite
