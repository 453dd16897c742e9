#include <detail/sqlite.hpp>

#include <fmt/format.h>

namespace automation::detail::sqlite {

errc map_code(int rc) noexcept {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return errc::busy;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
    case SQLITE_FORMAT:
      return errc::corrupt;
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_NOLFS:
    case SQLITE_PROTOCOL:
      return errc::io;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return errc::permission_denied;
    case SQLITE_CONSTRAINT:
      return errc::conflict;
    case SQLITE_INTERRUPT:
      return errc::cancelled;
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
    case SQLITE_MISMATCH:
      return errc::invalid_argument;
    default:
      return errc::internal;
  }
}

Error error(sqlite3* db, int rc, std::string_view what) {
  const char* msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  std::string m = fmt::format("{}: {} (sqlite code {})", what, msg ? msg : sqlite3_errstr(rc), rc);
  if ((rc & 0xff) == SQLITE_BUSY) m += "; another process holds the database lock, try again";
  return fail(map_code(rc), std::move(m));
}

Result<bool> Statement::step(std::string_view what) {
  const int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return error(db_, rc, what);
}

Result<void> Connection::open(const std::string& path, int flags) {
  close();
  const int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    auto e = error(db_, rc, fmt::format("cannot open database {}", path));
    close();
    return e;
  }
  sqlite3_extended_result_codes(db_, 1);
  return {};
}

void Connection::close() noexcept {
  if (db_) sqlite3_close_v2(db_);
  db_ = nullptr;
}

Result<void> Connection::exec(std::string_view sql, std::string_view what) {
  char* err = nullptr;
  const std::string s(sql);
  const int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
  if (err) sqlite3_free(err);
  if (rc != SQLITE_OK) return error(db_, rc, what);
  return {};
}

Result<Statement> Connection::prepare(std::string_view sql) {
  sqlite3_stmt* s = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &s, nullptr);
  if (rc != SQLITE_OK) return error(db_, rc, fmt::format("prepare \"{}\"", sql.substr(0, 60)));
  return Statement(db_, s);
}

Result<std::int64_t> Connection::scalar_int(std::string_view sql, std::string_view what) {
  auto st = prepare(sql);
  if (!st) return with_context(st.error(), what);
  auto row = st->step(what);
  if (!row) return row.error();
  return *row ? st->int64(0) : 0;
}

Result<std::string> Connection::scalar_text(std::string_view sql, std::string_view what) {
  auto st = prepare(sql);
  if (!st) return with_context(st.error(), what);
  auto row = st->step(what);
  if (!row) return row.error();
  return *row ? st->text(0) : std::string();
}

}  // namespace automation::detail::sqlite
