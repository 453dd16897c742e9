#pragma once
// Running the autoctl binary under test (AUTOCTL_PATH, defined for the integration tests).
#include "support/process.hpp"

#include <map>
#include <string>
#include <vector>

namespace automation::test {

inline ProcessResult autoctl(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {},
                             const std::string& cwd = {}) {
  std::vector<std::string> argv{AUTOCTL_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, env, cwd);
}

}  // namespace automation::test
