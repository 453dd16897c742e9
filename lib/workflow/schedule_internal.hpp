#pragma once
// What schedule.cpp and scheduler.cpp share.
#include <automation/core/clock.hpp>
#include <automation/storage/store.hpp>

#include <string>
#include <string_view>

namespace automation::workflow::internal {

/// The trigger of a run a schedule started: "schedule:" + its name.
inline constexpr std::string_view kScheduleTriggerPrefix = "schedule:";

/// Appends the audit record of a change to a schedule's state (schedule.pause, schedule.resume);
/// a failure to record is logged, never returned.
void audit_schedule(storage::Store& store, TimePoint now, std::string actor, std::string action, const storage::ScheduleRecord& r);

/// Whether an event name matches a pattern: an exact name, a prefix "name.*", or "*".
bool event_name_matches(std::string_view pattern, std::string_view name) noexcept;

}  // namespace automation::workflow::internal
