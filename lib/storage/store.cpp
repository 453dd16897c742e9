#include <automation/core/json.hpp>
#include <automation/storage/memory_store.hpp>
#include <automation/storage/sqlite_store.hpp>
#include <automation/storage/store.hpp>

#include "storage/schema.hpp"

#include <fmt/format.h>

namespace automation::storage {

int latest_schema_version() noexcept { return detail::migrations().back().version; }

std::vector<std::string> pending_migrations(int from_version) {
  std::vector<std::string> out;
  for (const auto& m : detail::migrations())
    if (m.version > from_version) out.push_back(fmt::format("{}: {}", m.version, m.description));
  return out;
}

std::string_view to_string(AuditOutcome o) noexcept {
  switch (o) {
    case AuditOutcome::success:
      return "success";
    case AuditOutcome::failure:
      return "failure";
    case AuditOutcome::denied:
      return "denied";
  }
  return "failure";
}

Result<AuditOutcome> parse_audit_outcome(std::string_view text) {
  for (auto o : {AuditOutcome::success, AuditOutcome::failure, AuditOutcome::denied})
    if (to_string(o) == text) return o;
  return fail(errc::invalid_argument, fmt::format("unknown audit outcome \"{}\" (use success, failure or denied)", text));
}

Result<void> validate(const AuditRecord& r) {
  auto missing = [](std::string_view field) {
    return fail(errc::invalid_argument, fmt::format("audit record: \"{}\" must not be empty", field));
  };
  if (r.actor.empty()) return missing("actor");
  if (r.action.empty()) return missing("action");
  if (r.resource.empty()) return missing("resource");
  auto doc = json::parse(r.details, "audit record \"details\"");
  if (!doc) return fail(errc::invalid_argument, doc.error().message);
  if (!doc->is_object())
    return fail(errc::invalid_argument, fmt::format("audit record: \"details\" must be a JSON object, got {}", json::type_name(*doc)));
  return {};
}

Result<std::unique_ptr<Store>> open_store(std::string_view uri, const OpenOptions& options) {
  if (uri == "memory:") return std::unique_ptr<Store>(std::make_unique<MemoryStore>());
  std::string path;
  if (uri.rfind("sqlite:", 0) == 0) {
    path = std::string(uri.substr(7));
  } else if (!uri.empty() && uri.find(':') == std::string_view::npos) {
    path = std::string(uri);  // a bare path means SQLite
  } else {
    return fail(errc::invalid_argument, fmt::format("invalid store URI \"{}\" (use sqlite:PATH or memory:)", uri));
  }
  if (path.empty()) return fail(errc::invalid_argument, fmt::format("invalid store URI \"{}\": the path is empty", uri));
  auto s = SqliteStore::open(path, options);
  if (!s) return s.error();
  return std::unique_ptr<Store>(std::move(s.value()));
}

}  // namespace automation::storage
