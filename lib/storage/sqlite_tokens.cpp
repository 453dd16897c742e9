// SqliteStore's tokens area: API bearer tokens (only the secrets' SHA-256 is kept). Names are unique
// among the tokens not revoked through a partial unique index, so across every process.
#include "storage/sqlite_impl.hpp"

#include <sqlite3.h>

namespace automation::storage {

namespace {

constexpr std::string_view kTokenColumns =
    "id, name, role, secret_hash, created_ms, created_by, expires_ms, revoked_ms, revoked_by, revoke_reason, last_used_ms, last_used_from";

TokenRecord read_token(const sq::Statement& st) {
  TokenRecord r;
  r.id = st.text(0);
  r.name = st.text(1);
  r.role = st.text(2);
  r.secret_hash = st.text(3);
  r.created = from_epoch_ms(st.int64(4));
  r.created_by = st.text(5);
  r.expires = from_epoch_ms(st.int64(6));
  r.revoked = from_epoch_ms(st.int64(7));
  r.revoked_by = st.text(8);
  r.revoke_reason = st.text(9);
  r.last_used = from_epoch_ms(st.int64(10));
  r.last_used_from = st.text(11);
  return r;
}

// The statements that find one token, binding ?1: by id, the token not revoked with a name, and the
// token with a name revoked last (then the greatest id).
constexpr std::string_view kTokenById =
    "SELECT id, name, role, secret_hash, created_ms, created_by, expires_ms, revoked_ms, revoked_by, revoke_reason, last_used_ms, "
    "last_used_from FROM api_token WHERE id = ?1";
constexpr std::string_view kTokenByLiveName =
    "SELECT id, name, role, secret_hash, created_ms, created_by, expires_ms, revoked_ms, revoked_by, revoke_reason, last_used_ms, "
    "last_used_from FROM api_token WHERE name = ?1 AND revoked_ms = 0";
constexpr std::string_view kTokenByRevokedName =
    "SELECT id, name, role, secret_hash, created_ms, created_by, expires_ms, revoked_ms, revoked_by, revoke_reason, last_used_ms, "
    "last_used_from FROM api_token WHERE name = ?1 ORDER BY revoked_ms DESC, id DESC LIMIT 1";

// The token the cached statement `st` (one of the above, or an error) finds for `key`, or nullopt.
Result<std::optional<TokenRecord>> find_token(Result<sq::Statement*> st, std::string_view key) {
  if (!st) return st.error();
  auto& q = **st;
  q.bind(1, key);
  auto row = q.step("read a token");
  std::optional<TokenRecord> out;
  if (row && *row) out = read_token(q);
  q.reset();
  if (!row) return row.error();
  return out;
}

}  // namespace

// The messages below match MemoryStore's.

Result<void> SqliteStore::create_token(const TokenRecord& r) {
  if (auto v = validate(r); !v) return v.error();
  if (auto w = impl_->writable(); !w) return w.error();
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  // BEGIN IMMEDIATE holds the write lock from here, so the checks and the insert see one state; the
  // primary key and the partial unique index hold the same rules for writers that bypass them.
  sq::Transaction tx(impl_->db);
  if (auto e = tx.begin(); !e) return with_context(e.error(), fmt::format("store token \"{}\"", r.id));
  auto same_id = find_token(impl_->cached(kTokenById), r.id);
  if (!same_id) return same_id.error();
  if (*same_id) return fail(errc::already_exists, fmt::format("token \"{}\" already exists", r.id));
  if (to_epoch_ms(r.revoked) == 0) {
    auto same_name = find_token(impl_->cached(kTokenByLiveName), r.name);
    if (!same_name) return same_name.error();
    if (*same_name)
      return fail(errc::already_exists,
                  fmt::format("a token not revoked is already named \"{}\" (token \"{}\")", r.name, (*same_name)->id));
  }
  auto st = impl_->cached(
      "INSERT INTO api_token (id, name, role, secret_hash, created_ms, created_by, expires_ms, revoked_ms, revoked_by, revoke_reason, "
      "last_used_ms, last_used_from) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");
  if (!st) return st.error();
  auto& q = **st;
  q.bind(1, std::string_view(r.id));
  q.bind(2, std::string_view(r.name));
  q.bind(3, std::string_view(r.role));
  q.bind(4, std::string_view(r.secret_hash));
  q.bind(5, to_epoch_ms(r.created));
  q.bind(6, std::string_view(r.created_by));
  q.bind(7, to_epoch_ms(r.expires));
  q.bind(8, to_epoch_ms(r.revoked));
  q.bind(9, std::string_view(r.revoked_by));
  q.bind(10, std::string_view(r.revoke_reason));
  q.bind(11, to_epoch_ms(r.last_used));
  q.bind(12, std::string_view(r.last_used_from));
  auto done = q.step("store a token");
  q.reset();
  if (!done) return with_context(done.error(), fmt::format("token \"{}\"", r.id));
  return tx.commit();
}

Result<std::optional<TokenRecord>> SqliteStore::get_token(std::string_view id) {
  std::lock_guard lock(impl_->mu);
  if (auto c = impl_->ensure_current(); !c) return c.error();
  return find_token(impl_->cached(kTokenById), id);
}

Result<std::vector<TokenRecord>> SqliteStore::list_tokens(bool include_revoked) {
  std::lock_guard lock(impl_->mu);
  if (auto c = impl_->ensure_current(); !c) return c.error();
  auto st = impl_->db.prepare(
      fmt::format("SELECT {} FROM api_token{} ORDER BY created_ms, id", kTokenColumns, include_revoked ? "" : " WHERE revoked_ms = 0"));
  if (!st) return st.error();
  std::vector<TokenRecord> out;
  for (;;) {
    auto row = st->step("list tokens");
    if (!row) return row.error();
    if (!*row) break;
    out.push_back(read_token(*st));
  }
  return out;
}

Result<TokenRecord> SqliteStore::revoke_token(std::string_view id_or_name, TimePoint time, std::string_view by, std::string_view reason) {
  if (auto v = check_token_revocation(id_or_name, time, by); !v) return v.error();
  if (auto w = impl_->writable(); !w) return w.error();
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  // One write transaction: the token found is the token revoked, whatever other processes do.
  sq::Transaction tx(impl_->db);
  if (auto e = tx.begin(); !e) return with_context(e.error(), fmt::format("revoke token \"{}\"", id_or_name));
  // By id; else the token not revoked with that name; else the one with that name revoked last, to
  // say it is revoked.
  auto found = find_token(impl_->cached(kTokenById), id_or_name);
  if (found && !*found) found = find_token(impl_->cached(kTokenByLiveName), id_or_name);
  if (found && !*found) found = find_token(impl_->cached(kTokenByRevokedName), id_or_name);
  if (!found) return found.error();
  if (!*found) return fail(errc::not_found, fmt::format("no token has the id or name \"{}\"", id_or_name));
  TokenRecord t = std::move(**found);
  if (to_epoch_ms(t.revoked) != 0)
    return fail(errc::conflict, fmt::format("token \"{}\" (name \"{}\") is already revoked (by {})", t.id, t.name, t.revoked_by));
  t.revoked = from_epoch_ms(to_epoch_ms(time));
  t.revoked_by = by;
  t.revoke_reason = reason;
  auto st = impl_->cached("UPDATE api_token SET revoked_ms = ?2, revoked_by = ?3, revoke_reason = ?4 WHERE id = ?1 AND revoked_ms = 0");
  if (!st) return st.error();
  auto& q = **st;
  q.bind(1, std::string_view(t.id));
  q.bind(2, to_epoch_ms(t.revoked));
  q.bind(3, by);
  q.bind(4, reason);
  auto done = q.step("revoke a token");
  const int changed = done ? sqlite3_changes(impl_->db.get()) : 0;
  q.reset();
  if (!done) return with_context(done.error(), fmt::format("token \"{}\"", t.id));
  if (changed != 1) return fail(errc::internal, fmt::format("token \"{}\" changed inside a write transaction", t.id));
  if (auto e = tx.commit(); !e) return e.error();
  return t;
}

Result<void> SqliteStore::touch_token(std::string_view id, TimePoint time, std::string_view from) {
  if (auto w = impl_->writable(); !w) return w.error();
  std::lock_guard lock(impl_->mu);
  if (auto e = impl_->ensure_current(); !e) return e.error();
  // One statement, so a use recorded by another process in between is compared with, never overwritten
  // by an older one.
  auto st = impl_->cached("UPDATE api_token SET last_used_ms = ?2, last_used_from = ?3 WHERE id = ?1 AND last_used_ms < ?2");
  if (!st) return st.error();
  auto& q = **st;
  q.bind(1, id);
  q.bind(2, to_epoch_ms(time));
  q.bind(3, from);
  auto done = q.step("record a token's use");
  const int changed = done ? sqlite3_changes(impl_->db.get()) : 0;
  q.reset();
  if (!done) return with_context(done.error(), fmt::format("token \"{}\"", id));
  if (changed == 1) return {};
  // Nothing changed: a later use is recorded already, or there is no such token (tokens are never deleted).
  auto exists = find_token(impl_->cached(kTokenById), id);
  if (!exists) return exists.error();
  if (!*exists) return fail(errc::not_found, fmt::format("token \"{}\" does not exist", id));
  return {};
}

}  // namespace automation::storage
