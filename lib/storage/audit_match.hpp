#pragma once
// The audit filter semantics in C++, for backends that filter in memory.
#include <automation/storage/store.hpp>

namespace automation::storage::detail {

inline bool matches_text(const std::string& value, const std::optional<std::string>& pattern) {
  if (!pattern) return true;
  const std::string& p = *pattern;
  if (!p.empty() && p.back() == '*') return value.compare(0, p.size() - 1, p, 0, p.size() - 1) == 0;
  return value == p;
}

inline bool matches(const AuditRecord& r, const AuditQuery& q) {
  if (q.since && r.time < *q.since) return false;
  if (q.until && r.time >= *q.until) return false;
  if (q.outcome && r.outcome != *q.outcome) return false;
  return matches_text(r.actor, q.actor) && matches_text(r.action, q.action) && matches_text(r.resource, q.resource);
}

}  // namespace automation::storage::detail
