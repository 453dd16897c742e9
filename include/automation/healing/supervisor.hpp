#pragma once
/// Supervisor: child processes the library owns (systemd's services, without the unit files):
/// each started in its own process group with its output appended to a log file, stopped with
/// SIGTERM to the group and SIGKILL after a grace, restarted, and watched for its exit and exit
/// code. The SelfHealer restarts them; they die with the Supervisor.
///
/// Thread-safety: all methods may be called from any thread.
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace automation::healing {

struct ServiceSpec {
  std::string name;                                ///< storage::is_resource_name
  std::vector<std::string> command;                ///< argv, no shell; argv[0] looked up in PATH
  std::map<std::string, std::string> environment;  ///< added to the inherited environment
  std::filesystem::path working_directory;         ///< empty: inherit
  std::filesystem::path log_file;                  ///< stdout and stderr appended here (empty: /dev/null)
  Duration stop_timeout = std::chrono::seconds(10);
  Result<void> validate() const;
};

struct ServiceStatus {
  std::string name;
  bool running = false;
  pid_t pid = 0;                 ///< while running
  TimePoint started{};           ///< the last start
  int starts = 0;                ///< since the Supervisor was made
  std::optional<int> exit_code;  ///< of the last exit: the code, or 128 + the signal
  std::string exit;              ///< "exit 3", "killed by SIGKILL"
  TimePoint exited{};
  bool stopped = false;  ///< stopped on purpose by stop() (not to be healed); cleared by start()
};

class Supervisor {
 public:
  explicit Supervisor(const Clock& clock);
  ~Supervisor();  ///< stops every service
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  /// Registers a service without starting it; errc::already_exists, errc::invalid_argument.
  Result<void> add(ServiceSpec spec);
  std::vector<std::string> services() const;
  /// Starts it (errc::busy when it is running; the spawn's error when it cannot start).
  Result<ServiceStatus> start(std::string_view name);
  /// Stops it on purpose (status().stopped, so a healer leaves it alone, even when it had exited
  /// already): SIGTERM to its group, SIGKILL to what is left after stop_timeout. The wait does not
  /// hold up status() or other services; start() is errc::busy meanwhile.
  Result<ServiceStatus> stop(std::string_view name);
  Result<ServiceStatus> restart(std::string_view name);
  /// Its state now (an exit is noticed and reaped here). errc::not_found for an unknown name.
  Result<ServiceStatus> status(std::string_view name);

 private:
  struct Service;
  const Clock& clock_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Service>, std::less<>> services_;
};

}  // namespace automation::healing
