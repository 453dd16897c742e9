#include "workflow/process.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>

extern char** environ;

namespace automation::workflow::detail {

int open_pidfd(pid_t pid) noexcept {
#ifdef SYS_pidfd_open
  const long fd = syscall(SYS_pidfd_open, pid, 0);
  if (fd >= 0) {
    ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
    return static_cast<int>(fd);
  }
#endif
  return -1;
}

namespace {

void close_fd(int& fd) noexcept {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

bool drain(int& fd, std::string& into) {
  if (fd < 0) return false;
  char buf[16384];
  // At most 256 KiB a call: a writer that keeps the pipe full cannot keep the caller from its
  // timeout and its trimming.
  for (int reads = 0; reads < 16; ++reads) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      into.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0) {
      close_fd(fd);
      return false;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
    close_fd(fd);
    return false;
  }
  return true;
}

struct SpawnAttrs {
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t actions;
  SpawnAttrs() {
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_init(&actions);
  }
  ~SpawnAttrs() {
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
  }
};
}  // namespace

long long process_start_ticks(pid_t pid) noexcept {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string line;
  if (!in || !std::getline(in, line)) return 0;
  // The command name (field 2) is in parentheses and may contain spaces: count from the last ')'.
  const auto close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::size_t pos = close + 2;
  for (int field = 3; field < 22; ++field) {
    pos = line.find(' ', pos);
    if (pos == std::string::npos) return 0;
    ++pos;
  }
  return std::atoll(line.c_str() + pos);
}

char process_state(pid_t pid) noexcept {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string line;
  if (!std::getline(in, line)) return '\0';
  const auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() ? line[close + 2] : '\0';
}

std::string describe_status(int st) {
  if (WIFEXITED(st)) return fmt::format("exit {}", WEXITSTATUS(st));
  if (WIFSIGNALED(st)) {
    const char* name = sigabbrev_np(WTERMSIG(st));
    return name ? fmt::format("killed by SIG{}", name) : fmt::format("killed by signal {}", WTERMSIG(st));
  }
  return fmt::format("wait status {}", st);
}

int exit_code(int st) noexcept {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return -1;
}

std::map<std::string, std::string> current_environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    const auto eq = kv.find('=');
    if (eq != std::string_view::npos) env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return env;
}

Result<Child> Child::spawn(const SpawnRequest& req) {
  if (req.argv.empty() || req.argv[0].empty()) return fail(errc::invalid_argument, "no program to run");
  int out[2] = {-1, -1}, err[2] = {-1, -1};
  const bool to_file = !req.output_file.empty();
  if (to_file) {
    out[1] = ::open(req.output_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out[1] < 0) return fail(errc::io, fmt::format("cannot open {}: {}", req.output_file, std::strerror(errno)));
    err[1] = ::fcntl(out[1], F_DUPFD_CLOEXEC, 0);
    if (err[1] < 0) {
      ::close(out[1]);
      return fail(errc::io, fmt::format("cannot open {}: {}", req.output_file, std::strerror(errno)));
    }
  } else {
    if (::pipe2(out, O_CLOEXEC) != 0) return fail(errc::io, fmt::format("cannot create a pipe: {}", std::strerror(errno)));
    if (::pipe2(err, O_CLOEXEC) != 0) {
      ::close(out[0]);
      ::close(out[1]);
      return fail(errc::io, fmt::format("cannot create a pipe: {}", std::strerror(errno)));
    }
  }
  SpawnAttrs a;
  posix_spawnattr_setpgroup(&a.attr, 0);  // its own group, led by the child
  sigset_t none, dflt;
  sigemptyset(&none);
  sigemptyset(&dflt);
  for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2}) sigaddset(&dflt, sig);
  posix_spawnattr_setsigmask(&a.attr, &none);
  posix_spawnattr_setsigdefault(&a.attr, &dflt);
  // A new session also makes it the leader of its own group.
  posix_spawnattr_setflags(&a.attr, static_cast<short>((req.new_session ? POSIX_SPAWN_SETSID : POSIX_SPAWN_SETPGROUP) |
                                                       POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF));
  posix_spawn_file_actions_addopen(&a.actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&a.actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&a.actions, err[1], 2);
  if (!req.working_directory.empty()) posix_spawn_file_actions_addchdir_np(&a.actions, req.working_directory.c_str());

  std::vector<char*> argv;
  for (const auto& s : req.argv) argv.push_back(const_cast<char*>(s.c_str()));
  argv.push_back(nullptr);
  std::vector<std::string> env_text;
  env_text.reserve(req.env.size());
  for (const auto& [k, v] : req.env) env_text.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_text) envp.push_back(s.data());
  envp.push_back(nullptr);

  // posix_spawnp searches the caller's PATH; use the child's when it sets one.
  std::string program = req.argv[0];
  if (program.find('/') == std::string::npos) {
    if (auto it = req.env.find("PATH"); it != req.env.end()) {
      std::size_t start = 0;
      const std::string& path = it->second;
      while (start <= path.size()) {
        const auto end = std::min(path.find(':', start), path.size());
        std::string dir = path.substr(start, end - start);
        if (dir.empty()) dir = ".";
        std::string candidate = dir + "/" + program;
        if (::access(candidate.c_str(), X_OK) == 0) {
          program = std::move(candidate);
          break;
        }
        start = end + 1;
      }
    }
  }
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, program.c_str(), &a.actions, &a.attr, argv.data(), envp.data());
  ::close(out[1]);
  ::close(err[1]);
  if (rc != 0) {
    if (!to_file) {
      ::close(out[0]);
      ::close(err[0]);
    }
    const errc code = rc == ENOENT ? errc::not_found : rc == EACCES ? errc::permission_denied : errc::io;
    std::string msg = fmt::format("cannot run \"{}\": {}", req.argv[0], std::strerror(rc));
    if (rc == ENOENT && !req.working_directory.empty() && ::access(req.working_directory.c_str(), F_OK) != 0)
      msg = fmt::format("cannot run \"{}\": working directory {} does not exist", req.argv[0], req.working_directory);
    return fail(code, msg);
  }
  Child c;
  c.pid_ = pid;
  if (!to_file) {
    ::fcntl(out[0], F_SETFL, O_NONBLOCK);
    ::fcntl(err[0], F_SETFL, O_NONBLOCK);
    c.out_ = out[0];
    c.err_ = err[0];
  }
  c.pidfd_ = open_pidfd(pid);
  c.start_ticks_ = process_start_ticks(pid);
  return c;
}

Child::Child(Child&& o) noexcept
    : pid_(o.pid_), start_ticks_(o.start_ticks_), out_(o.out_), err_(o.err_), pidfd_(o.pidfd_), status_(o.status_) {
  o.pid_ = -1;
  o.out_ = o.err_ = o.pidfd_ = -1;
}

Child& Child::operator=(Child&& o) noexcept {
  if (this != &o) {
    release();
    pid_ = o.pid_;
    start_ticks_ = o.start_ticks_;
    out_ = o.out_;
    err_ = o.err_;
    pidfd_ = o.pidfd_;
    status_ = o.status_;
    o.pid_ = -1;
    o.out_ = o.err_ = o.pidfd_ = -1;
  }
  return *this;
}

Child::~Child() { release(); }

void Child::release() noexcept {
  if (pid_ > 0) {
    signal_group(SIGKILL);  // the leader, or the stragglers of a finished one
    int st = 0;
    if (!status_)
      while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
      }
  }
  close_pipes();
  close_fd(pidfd_);
  pid_ = -1;
}

bool Child::read_stdout(std::string& into) { return drain(out_, into); }
bool Child::read_stderr(std::string& into) { return drain(err_, into); }

std::optional<int> Child::reap() {
  if (status_ || pid_ <= 0) return status_;
  int st = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &st, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) {
    status_ = st;
    close_fd(pidfd_);
  } else if (r < 0 && errno == ECHILD) {
    // Reaped by someone else (a waitpid(-1) in the host): it is gone, its status unknown.
    status_ = 255 << 8;
    close_fd(pidfd_);
  }
  return status_;
}

void Child::signal_group(int sig) const noexcept {
  if (pid_ > 0) ::kill(-pid_, sig);
}

bool Child::group_gone() const noexcept { return pid_ <= 0 || (::kill(-pid_, 0) != 0 && errno == ESRCH); }

pid_t Child::detach() noexcept {
  const pid_t pid = pid_;
  close_pipes();
  close_fd(pidfd_);
  pid_ = -1;
  return pid;
}

void Child::close_pipes() noexcept {
  close_fd(out_);
  close_fd(err_);
}

}  // namespace automation::workflow::detail
