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

/// A child process left running (a daemon, a browser), in its own process group: stdout and stderr
/// go to `log_file`. The destructor kills (SIGKILL) and reaps it if it is still running, and kills
/// what is left of its group.
class BackgroundProcess {
 public:
  BackgroundProcess(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env, const std::string& cwd,
                    const std::string& log_file);
  ~BackgroundProcess();
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;
  int pid() const noexcept { return pid_; }
  void signal(int sig) const;
  /// To it and every process of its group.
  void signal_group(int sig) const;
  /// Waits up to `seconds` for it to exit: its exit code (128 + signal when killed), or -1 if it is still running.
  int wait(int seconds);
  bool running();

 private:
  int pid_ = -1;
  int exit_code_ = -1;
};

}  // namespace automation::test
