#pragma once
// The argument checks of finish_scaling and finish_healing, shared by every backend so that all of
// them refuse the same input with the same message.
#include <automation/core/error.hpp>

#include <cstdint>
#include <string_view>

namespace automation::storage::detail {

/// invalid_argument unless `outcome` is a final scaling outcome (applied, unchanged, blocked, failed, dry-run).
Result<void> check_scaling_finish(std::int64_t id, std::string_view outcome);
/// invalid_argument unless `outcome` is a final healing outcome (succeeded, failed, skipped, dry-run)
/// and `detail` is empty or a JSON object.
Result<void> check_healing_finish(std::int64_t id, std::string_view outcome, std::string_view detail);

}  // namespace automation::storage::detail
