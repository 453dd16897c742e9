#pragma once
// Child processes for command steps: each in its own process group, stdin from /dev/null, stdout
// and stderr through non-blocking pipes, exit observed through a pidfd, so one poll() waits on
// every step at once. Kills go to the whole group.
#include <automation/core/error.hpp>

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace automation::workflow::detail {

struct SpawnRequest {
  std::vector<std::string> argv;           // argv[0] is looked up in PATH
  std::map<std::string, std::string> env;  // the whole environment
  std::string working_directory;           // empty: inherit
  // Non-empty: stdout and stderr are appended to this file instead of pipes (a pool member's log).
  std::string output_file;
  bool new_session = false;  // its own session (setsid), so it outlives a terminal that closes
};

// The environment of this process, as a SpawnRequest wants it.
std::map<std::string, std::string> current_environment();

class Child {
 public:
  static Result<Child> spawn(const SpawnRequest& request);
  Child() = default;
  Child(Child&& o) noexcept;
  Child& operator=(Child&& o) noexcept;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child();  // kills the group if it is still running and reaps the leader

  pid_t pid() const noexcept { return pid_; }
  long long start_ticks() const noexcept { return start_ticks_; }
  int stdout_fd() const noexcept { return out_; }
  int stderr_fd() const noexcept { return err_; }
  int exit_fd() const noexcept { return pidfd_; }  // readable when the leader exits (-1: poll reap())

  // Reads what is available now (non-blocking); false at end of file (the fd is then closed).
  bool read_stdout(std::string& into);
  bool read_stderr(std::string& into);
  // Reaps the leader if it exited: its wait status.
  std::optional<int> reap();
  bool exited() const noexcept { return status_.has_value(); }
  std::optional<int> status() const noexcept { return status_; }

  // Signals the whole group (ESRCH is not an error).
  void signal_group(int sig) const noexcept;
  // True when no process of the group is left.
  bool group_gone() const noexcept;
  void close_pipes() noexcept;
  // Lets the process go on without this object: no kill, no reap (the caller reaps it by pid).
  pid_t detach() noexcept;

 private:
  void release() noexcept;
  pid_t pid_ = -1;
  long long start_ticks_ = 0;
  int out_ = -1, err_ = -1, pidfd_ = -1;
  std::optional<int> status_;
};

// The start time of a process in clock ticks since boot (/proc/PID/stat field 22); 0 when it is gone.
long long process_start_ticks(pid_t pid) noexcept;
// Its state letter (/proc/PID/stat field 3: 'R', 'S', 'Z', ...); '\0' when it is gone.
char process_state(pid_t pid) noexcept;
// A close-on-exec pidfd for `pid` (-1 when it is gone or pidfds are not supported).
int open_pidfd(pid_t pid) noexcept;
// "exit 3", "killed by SIGKILL", ...
std::string describe_status(int wait_status);
// The exit code a shell would report: the code, or 128 + the signal.
int exit_code(int wait_status) noexcept;

}  // namespace automation::workflow::detail
