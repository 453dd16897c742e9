#pragma once
// Runs a real child process and captures its exit code, stdout and stderr (for CLI integration tests).
#include <map>
#include <string>
#include <vector>

namespace automation::test {

struct ProcessResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

/// Runs argv[0] (a path) with `argv`, the current environment minus AUTOMATION_* plus `env`, in `cwd`.
ProcessResult run_process(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {},
                          const std::string& cwd = {}, const std::string& stdin_data = {});

}  // namespace automation::test
