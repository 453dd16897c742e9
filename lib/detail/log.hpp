#pragma once
// Internal logging helpers: fmt-style formatting that is skipped when the level is off and never throws.
#include <automation/core/logging.hpp>

#include <fmt/format.h>

namespace automation::detail {

bool log_enabled(LogLevel level) noexcept;

template <class... Args>
void logf(LogLevel level, std::string_view logger, fmt::format_string<Args...> f, Args&&... args) noexcept {
  if (!log_enabled(level)) return;
  try {
    log(level, logger, fmt::format(f, std::forward<Args>(args)...));
  } catch (...) {
  }
}

}  // namespace automation::detail
