#pragma once
/// Actuators: what a ResourceScaler resizes. A resource is made of members (worker processes,
/// containers, pool connections); an actuator reports them and sets how many there are.
///
///  - ProcessPool: worker processes the library runs itself, each in its own session and process
///    group, recorded in a state file so that another process (the next `autoctl scale`, a
///    restarted daemon) adopts them.
///  - CommandActuator: a command template (docker, kubectl, a script), run without a shell.
///  - CallbackActuator: C++ callbacks (connection pools and caches inside the host).
///
/// Thread-safety: an actuator is used by one thread at a time (the ResourceScaler serializes its
/// calls per resource); ProcessPool also locks its state file against other processes.
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace automation::scaling {

/// One member of a resource.
struct Member {
  std::string name;  ///< "workers-3"
  pid_t pid = 0;     ///< for processes (0 otherwise)
  TimePoint started{};
  bool ready = true;  ///< false while warming up
};

struct ResourceStatus {
  /// The size: how many members there are. nullopt when the actuator cannot tell (a command
  /// template without a status command); the scaler then takes the last size it set.
  std::optional<int> size;
  std::vector<Member> members;  ///< when the actuator knows them
  std::string detail;           ///< what it saw, in words ("3 workers, 1 warming up", the status command's output)
};

class Actuator {
 public:
  virtual ~Actuator() = default;
  /// "process_pool", "command", "callback", "docker"
  virtual std::string_view kind() const noexcept = 0;
  virtual Result<ResourceStatus> status() = 0;
  /// Sets the size to `size` (>= 0). `reason` says why (it is passed on where it can be: the
  /// environment of a command, the log).
  virtual Result<void> resize(int size, const std::string& reason) = 0;
  /// Restarts every member (errc::invalid_argument when the actuator cannot).
  virtual Result<void> restart(const std::string& reason) = 0;
};

struct ProcessPoolOptions {
  std::vector<std::string> command;                ///< argv; argv[0] is looked up in PATH
  std::map<std::string, std::string> environment;  ///< added to the inherited environment
  std::filesystem::path working_directory;         ///< empty: inherit
  /// Where the members are recorded (<dir>/<resource>.json, locked through <resource>.lock) so
  /// another process adopts them; empty: only in this object, whose destructor then stops them.
  std::filesystem::path state_directory;
  /// Each member's stdout and stderr are appended to <dir>/<resource>.log; empty: /dev/null.
  std::filesystem::path log_directory;
  Duration stop_timeout = std::chrono::seconds(10);  ///< SIGTERM to the group, SIGKILL after this
  Duration warmup{};                                 ///< members younger than this are not ready
  Result<void> validate() const;
};

/// Worker processes: resize() starts members (each with AUTOMATION_RESOURCE and AUTOMATION_MEMBER
/// in its environment, in a session of its own) or stops the newest ones (SIGTERM to the group,
/// then SIGKILL after stop_timeout); restart() replaces them one at a time. status() forgets
/// members that have exited (a member is the same process only while its pid has the recorded
/// start time).
class ProcessPool final : public Actuator {
 public:
  /// Throws automation::Exception (errc::invalid_argument) for invalid options or resource name.
  ProcessPool(std::string resource, ProcessPoolOptions options, const Clock& clock);
  ~ProcessPool() override;
  ProcessPool(const ProcessPool&) = delete;
  ProcessPool& operator=(const ProcessPool&) = delete;

  std::string_view kind() const noexcept override { return "process_pool"; }
  Result<ResourceStatus> status() override;
  Result<void> resize(int size, const std::string& reason) override;
  Result<void> restart(const std::string& reason) override;

 private:
  struct State;
  class Lock;
  Result<State> load();
  Result<void> save(const State& state);
  Result<Member> start_member(State& state, const std::string& reason);
  Result<void> stop_member(const Member& member, long long ticks);
  void prune(State& state);

  std::string resource_;
  ProcessPoolOptions options_;
  const Clock& clock_;
  std::unique_ptr<State> memory_;  // without a state directory
  std::set<pid_t> spawned_;        // members this object started: its children, reaped by it
};

struct CommandOptions {
  /// Each a command's argv, run without a shell (a template that wants one says sh -c itself).
  /// Placeholders, replaced inside each argument: {resource}, {size} (the new size), {current}
  /// (the size its status last said). The environment has AUTOMATION_RESOURCE, AUTOMATION_SIZE
  /// and AUTOMATION_REASON. `resize` is required.
  std::vector<std::string> resize;
  /// Prints the current size: an integer, or a JSON object with "size" (and optionally "members",
  /// an array of names). Without it the size is unknown to the actuator.
  std::vector<std::string> status;
  std::vector<std::string> restart;  ///< without it, restart() is refused
  Duration timeout = std::chrono::seconds(60);
  std::map<std::string, std::string> environment;  ///< added to the inherited environment
  Result<void> validate() const;
};

/// A command template: `kubectl scale deployment/{resource} --replicas={size}`,
/// `docker compose up -d --scale {resource}={size}`. A command that exits non-zero or outlives its
/// timeout is an error with its exit status and the end of its output.
class CommandActuator final : public Actuator {
 public:
  /// Throws automation::Exception (errc::invalid_argument) for invalid options.
  CommandActuator(std::string resource, CommandOptions options);
  std::string_view kind() const noexcept override { return "command"; }
  Result<ResourceStatus> status() override;
  Result<void> resize(int size, const std::string& reason) override;
  Result<void> restart(const std::string& reason) override;

 private:
  Result<std::string> run(const std::vector<std::string>& argv, std::map<std::string, std::string> values, const std::string& reason);
  std::string resource_;
  CommandOptions options_;
  std::optional<int> last_size_;
};

struct DockerOptions {
  std::string socket = "/var/run/docker.sock";  ///< the Docker Engine API's unix socket
  std::string image;                            ///< required
  std::vector<std::string> command;             ///< the container's Cmd (empty: the image's)
  std::map<std::string, std::string> environment;
  std::map<std::string, std::string> labels;  ///< added to automation.resource and automation.member
  std::string network;                        ///< HostConfig.NetworkMode (empty: Docker's default)
  Duration stop_timeout = std::chrono::seconds(10);
  Duration timeout = std::chrono::seconds(60);  ///< for each API call
  Duration warmup{};                            ///< members younger than this are not ready
  Result<void> validate() const;
};

/// Containers through the Docker Engine API on its unix socket: the members are the running
/// containers labelled automation.resource=<resource>. resize() creates and starts containers
/// named <resource>-<n> (removing exited ones of the resource first) or stops and removes the
/// newest; restart() restarts each in turn. An API error is errc::unavailable with Docker's message.
class DockerActuator final : public Actuator {
 public:
  /// Throws automation::Exception (errc::invalid_argument) for invalid options.
  DockerActuator(std::string resource, DockerOptions options, const Clock& clock);
  std::string_view kind() const noexcept override { return "docker"; }
  Result<ResourceStatus> status() override;
  Result<void> resize(int size, const std::string& reason) override;
  Result<void> restart(const std::string& reason) override;

 private:
  struct Container;
  Result<std::vector<Container>> list(bool all);
  Result<std::string> call(const std::string& method, const std::string& target, const std::string& body, std::vector<int> expect,
                           Duration extra = {});
  std::string resource_;
  DockerOptions options_;
  const Clock& clock_;
};

/// C++ callbacks: a connection pool's or a cache's size inside the host.
struct Callbacks {
  std::function<Result<int>()> size;                                        ///< required
  std::function<Result<void>(int size, const std::string& reason)> resize;  ///< required
  std::function<Result<void>(const std::string& reason)> restart;           ///< optional (recycle the connections)
};

class CallbackActuator final : public Actuator {
 public:
  /// Throws automation::Exception (errc::invalid_argument) without `size` or `resize`.
  explicit CallbackActuator(Callbacks callbacks);
  std::string_view kind() const noexcept override { return "callback"; }
  Result<ResourceStatus> status() override;
  Result<void> resize(int size, const std::string& reason) override;
  Result<void> restart(const std::string& reason) override;

 private:
  Callbacks callbacks_;
};

/// Runs `argv` (no shell) to completion: its exit code and output. errc::timeout (killing its
/// process group) when it outlives `timeout`; errc::io when it cannot start. Output beyond 64 KiB
/// per stream is dropped from the front. The command's process group does not outlive it: what it
/// left running in the background is killed when it exits.
struct CommandResult {
  int exit_code = 0;
  std::string status;  ///< "exit 0", "killed by SIGKILL"
  std::string out, err;
};
Result<CommandResult> run_command(const std::vector<std::string>& argv, Duration timeout,
                                  const std::map<std::string, std::string>& environment = {});

}  // namespace automation::scaling
