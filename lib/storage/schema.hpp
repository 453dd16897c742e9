#pragma once
// The SQLite schema as ordered migrations. Append only: a released migration is never edited.
#include <span>

namespace automation::storage::detail {

struct Migration {
  int version;
  const char* description;
  const char* sql;
};

std::span<const Migration> migrations() noexcept;

/// Written into every database we create (PRAGMA application_id), so a foreign SQLite file is refused.
inline constexpr int kApplicationId = 0x4155544f;  // "AUTO"

}  // namespace automation::storage::detail
