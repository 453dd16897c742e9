#pragma once
/// Writing a file so that readers see the old contents or the new, never a part: a temporary file
/// of its own beside it, synced, then renamed over it. Thread-safety: pure; concurrent writers of
/// one path each leave a whole file (the last rename wins).
#include <automation/core/error.hpp>

#include <string>
#include <string_view>

namespace automation {

/// Writes `contents` to `path` (mode 0644), creating missing parent directories; errc::io naming
/// the path and the reason otherwise (no temporary file is left behind).
Result<void> write_file_atomically(const std::string& path, std::string_view contents);

}  // namespace automation
