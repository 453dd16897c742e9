#pragma once
/// Reading a whole file, and writing one so that readers see the old contents or the new, never a
/// part: a temporary file of its own beside it, synced, then renamed over it. Thread-safety: pure; concurrent writers of
/// one path each leave a whole file (the last rename wins).
#include <automation/core/error.hpp>

#include <string>
#include <string_view>

namespace automation {

/// The whole contents of `path`; errc::not_found when it cannot be opened, errc::io when reading
/// fails, the message being the reason alone ("No such file or directory") for the caller to place.
Result<std::string> read_file(const std::string& path);

/// Writes `contents` to `path` (mode 0644), creating missing parent directories; errc::io naming
/// the path and the reason otherwise (no temporary file is left behind).
Result<void> write_file_atomically(const std::string& path, std::string_view contents);

}  // namespace automation
