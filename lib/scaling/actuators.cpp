#include <automation/core/files.hpp>
#include <automation/core/json.hpp>
#include <automation/core/time.hpp>
#include <automation/scaling/actuator.hpp>
#include <automation/storage/store.hpp>

#include "workflow/process.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstring>
#include <limits>
#include <thread>

namespace automation::scaling {

namespace wd = automation::workflow::detail;
namespace bj = boost::json;

namespace {

constexpr std::size_t kMaxOutput = 64 * 1024;

void keep_tail(std::string& s) {
  if (s.size() > kMaxOutput) s.erase(0, s.size() - kMaxOutput);
}

/// The last line(s) of a command's output, for an error message.
std::string tail_of(std::string_view s, std::size_t max = 300) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.remove_suffix(1);
  if (s.size() > max) s = s.substr(s.size() - max);
  return std::string(s);
}

std::string join_argv(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    out += a;
  }
  return out;
}

/// Waits up to `timeout` for the process behind `pidfd` to exit.
bool wait_pidfd(int pidfd, Duration timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    pollfd p{pidfd, POLLIN, 0};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    const int rc = ::poll(&p, 1, static_cast<int>(std::max<long long>(0, std::min<long long>(left, 1000))));
    if (rc > 0) return true;
    if (left <= 0) return false;
  }
}

int pidfd_signal(int pidfd, int sig) noexcept {
#ifdef SYS_pidfd_send_signal
  return static_cast<int>(syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
#else
  (void)pidfd;
  (void)sig;
  errno = ENOSYS;
  return -1;
#endif
}

std::string substitute(std::string_view text, const std::map<std::string, std::string>& values) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '{') {
      const auto close = text.find('}', i);
      if (close != std::string_view::npos) {
        auto it = values.find(std::string(text.substr(i + 1, close - i - 1)));
        if (it != values.end()) {
          out += it->second;
          i = close + 1;
          continue;
        }
      }
    }
    out += text[i++];
  }
  return out;
}

Result<void> check_placeholders(const std::vector<std::string>& argv, std::string_view what) {
  // No {reason}: free text has no place in an argument a shell may read ($AUTOMATION_REASON has it).
  static const std::vector<std::string> known{"resource", "size", "current"};
  for (const auto& arg : argv) {
    for (std::size_t i = arg.find('{'); i != std::string::npos; i = arg.find('{', i + 1)) {
      const auto close = arg.find('}', i);
      if (close == std::string::npos) continue;
      const auto name = arg.substr(i + 1, close - i - 1);
      if (std::find(known.begin(), known.end(), name) == known.end() && !name.empty() && name.find_first_of(" \"'") == std::string::npos)
        return fail(
            errc::invalid_argument,
            fmt::format(
                "{} command: unknown placeholder {{{}}} (use {{resource}}, {{size}} or {{current}}; the reason is in $AUTOMATION_REASON)",
                what, name));
    }
  }
  return {};
}

}  // namespace

// ---- run_command -------------------------------------------------------------------------------

Result<CommandResult> run_command(const std::vector<std::string>& argv, Duration timeout,
                                  const std::map<std::string, std::string>& environment) {
  wd::SpawnRequest req;
  req.argv = argv;
  req.env = wd::current_environment();
  for (const auto& [k, v] : environment) req.env.insert_or_assign(k, v);
  auto child = wd::Child::spawn(req);
  if (!child) return with_context(child.error(), fmt::format("command \"{}\"", join_argv(argv)));
  CommandResult result;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    child->read_stdout(result.out);
    child->read_stderr(result.err);
    keep_tail(result.out);
    keep_tail(result.err);
    if (child->reap()) break;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      child->signal_group(SIGKILL);
      return fail(errc::timeout, fmt::format("command \"{}\" did not finish within {} (killed){}", join_argv(argv),
                                             format_duration(std::chrono::duration_cast<Millis>(timeout)),
                                             result.err.empty() ? std::string() : ": " + tail_of(result.err)));
    }
    std::vector<pollfd> fds;
    for (int fd : {child->stdout_fd(), child->stderr_fd(), child->exit_fd()})
      if (fd >= 0) fds.push_back({fd, POLLIN, 0});
    const bool can_wait = child->exit_fd() >= 0;
    ::poll(fds.data(), fds.size(), static_cast<int>(std::min<long long>(left.count(), can_wait ? 1000 : 20)));
  }
  child->read_stdout(result.out);
  child->read_stderr(result.err);
  keep_tail(result.out);
  keep_tail(result.err);
  result.status = wd::describe_status(*child->status());
  result.exit_code = wd::exit_code(*child->status());
  return result;
}

// ---- CommandActuator ---------------------------------------------------------------------------

Result<void> CommandOptions::validate() const {
  if (resize.empty() || resize.front().empty()) return fail(errc::invalid_argument, "a command actuator needs a resize command");
  if (timeout <= Duration{}) return fail(errc::invalid_argument, "a command actuator's timeout must be positive");
  for (const auto& [argv, what] : {std::pair{&resize, "resize"}, std::pair{&status, "status"}, std::pair{&restart, "restart"}}) {
    if (!argv->empty() && argv->front().empty()) return fail(errc::invalid_argument, fmt::format("the {} command has no program", what));
    if (auto v = check_placeholders(*argv, what); !v) return v;
  }
  return {};
}

CommandActuator::CommandActuator(std::string resource, CommandOptions options)
    : resource_(std::move(resource)), options_(std::move(options)) {
  if (auto v = options_.validate(); !v) throw Exception(with_context(v.error(), fmt::format("resource \"{}\"", resource_)));
}

Result<std::string> CommandActuator::run(const std::vector<std::string>& argv, std::map<std::string, std::string> values,
                                         const std::string& reason) {
  values["resource"] = resource_;
  std::vector<std::string> args;
  for (const auto& a : argv) args.push_back(substitute(a, values));
  // The reason is free text: the environment only, never an argument.
  std::map<std::string, std::string> env = options_.environment;
  env["AUTOMATION_RESOURCE"] = resource_;
  if (auto it = values.find("size"); it != values.end()) env["AUTOMATION_SIZE"] = it->second;
  if (!reason.empty()) env["AUTOMATION_REASON"] = reason;
  auto r = run_command(args, options_.timeout, env);
  if (!r) return r.error();
  if (r->exit_code != 0) {
    const auto& said = r->err.empty() ? r->out : r->err;
    return fail(errc::unavailable, fmt::format("command \"{}\" failed: {}{}", join_argv(args), r->status,
                                               said.empty() ? std::string() : ": " + tail_of(said)));
  }
  return std::move(r->out);
}

Result<ResourceStatus> CommandActuator::status() {
  ResourceStatus st;
  if (options_.status.empty()) {
    st.size = last_size_;
    st.detail = "no status command";
    return st;
  }
  auto out = run(options_.status, {}, {});
  if (!out) return out.error();
  const std::string text = tail_of(*out, std::string::npos);  // owned: tail_of returns a new string
  const auto shown = tail_of(*out, 200);
  int size = -1;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), size);
  if (ec == std::errc{} && end == text.data() + text.size() && size >= 0) {
    st.size = size;
  } else {
    auto doc = json::parse(text, "the status command's output");
    if (!doc || !doc->is_object() || !doc->as_object().contains("size") || !doc->as_object().at("size").is_int64() ||
        doc->as_object().at("size").as_int64() < 0)
      return fail(errc::corrupt, fmt::format("resource \"{}\": the status command printed \"{}\", not a size (an integer, or "
                                             "a JSON object with \"size\")",
                                             resource_, shown));
    st.size = static_cast<int>(std::min<std::int64_t>(doc->as_object().at("size").as_int64(), 1000000));
    if (auto* m = doc->as_object().if_contains("members"); m && m->is_array())
      for (const auto& v : m->as_array())
        if (v.is_string()) st.members.push_back(Member{.name = std::string(v.as_string())});
  }
  st.detail = shown;
  last_size_ = st.size;  // {current} for the next resize
  return st;
}

Result<void> CommandActuator::resize(int size, const std::string& reason) {
  if (size < 0) return fail(errc::invalid_argument, fmt::format("resource \"{}\": a size cannot be negative ({})", resource_, size));
  auto out = run(options_.resize, {{"size", std::to_string(size)}, {"current", last_size_ ? std::to_string(*last_size_) : ""}}, reason);
  if (!out) return out.error();
  last_size_ = size;
  return {};
}

Result<void> CommandActuator::restart(const std::string& reason) {
  if (options_.restart.empty()) return fail(errc::invalid_argument, fmt::format("resource \"{}\" has no restart command", resource_));
  auto out = run(options_.restart, {}, reason);
  if (!out) return out.error();
  return {};
}

// ---- CallbackActuator --------------------------------------------------------------------------

CallbackActuator::CallbackActuator(Callbacks callbacks) : callbacks_(std::move(callbacks)) {
  if (!callbacks_.size || !callbacks_.resize)
    throw Exception(fail(errc::invalid_argument, "a callback actuator needs a size and a resize callback"));
}

Result<ResourceStatus> CallbackActuator::status() {
  auto n = callbacks_.size();
  if (!n) return n.error();
  if (*n < 0) return fail(errc::corrupt, fmt::format("the size callback returned {}", *n));
  ResourceStatus st;
  st.size = *n;
  st.detail = fmt::format("size {}", *n);
  return st;
}

Result<void> CallbackActuator::resize(int size, const std::string& reason) {
  if (size < 0) return fail(errc::invalid_argument, fmt::format("a size cannot be negative ({})", size));
  return callbacks_.resize(size, reason);
}

Result<void> CallbackActuator::restart(const std::string& reason) {
  if (!callbacks_.restart) return fail(errc::invalid_argument, "this resource has no restart callback");
  return callbacks_.restart(reason);
}

// ---- ProcessPool -------------------------------------------------------------------------------

struct ProcessPool::State {
  struct Entry {
    Member member;
    long long ticks = 0;  // the start time in clock ticks since boot: the same pid is the same process only with it
  };
  int next = 1;
  std::vector<Entry> members;
};

/// flock() on <state dir>/<resource>.lock for the duration of one operation (a no-op without a
/// state directory).
class ProcessPool::Lock {
 public:
  static Result<Lock> take(const ProcessPoolOptions& o, const std::string& resource) {
    Lock l;
    if (o.state_directory.empty()) return l;
    std::error_code ec;
    std::filesystem::create_directories(o.state_directory, ec);
    const auto path = (o.state_directory / (resource + ".lock")).string();
    l.fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (l.fd_ < 0) return fail(errc::io, fmt::format("cannot open {}: {}", path, std::strerror(errno)));
    // Another process holds it while it starts or stops members: wait a while, then say so.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (::flock(l.fd_, LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK && errno != EINTR) return fail(errc::io, fmt::format("cannot lock {}: {}", path, std::strerror(errno)));
      if (std::chrono::steady_clock::now() > deadline)
        return fail(errc::busy,
                    fmt::format("resource \"{}\": another process has been changing its members for a minute ({})", resource, path));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return l;
  }
  Lock() = default;
  Lock(Lock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Lock& operator=(Lock&&) = delete;
  ~Lock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }

 private:
  int fd_ = -1;
};

Result<void> ProcessPoolOptions::validate() const {
  if (command.empty() || command.front().empty()) return fail(errc::invalid_argument, "a process pool needs a command");
  if (stop_timeout <= Duration{}) return fail(errc::invalid_argument, "a process pool's stop_timeout must be positive");
  if (warmup < Duration{}) return fail(errc::invalid_argument, "a process pool's warmup cannot be negative");
  return {};
}

ProcessPool::ProcessPool(std::string resource, ProcessPoolOptions options, const Clock& clock)
    : resource_(std::move(resource)), options_(std::move(options)), clock_(clock) {
  if (auto v = storage::check_resource_name("resource", resource_); !v) throw Exception(v.error());
  if (auto v = options_.validate(); !v) throw Exception(with_context(v.error(), fmt::format("resource \"{}\"", resource_)));
  if (options_.state_directory.empty()) memory_ = std::make_unique<State>();
}

ProcessPool::~ProcessPool() {
  if (!memory_) return;  // recorded members outlive this object, for the next one to adopt
  prune(*memory_);
  for (auto it = memory_->members.rbegin(); it != memory_->members.rend(); ++it) (void)stop_member(it->member, it->ticks);
}

Result<ProcessPool::State> ProcessPool::load() {
  if (memory_) return *memory_;
  const auto path = (options_.state_directory / (resource_ + ".json")).string();
  auto text = read_file(path);
  if (!text) {
    if (text.error().code == errc::not_found) return State{};
    return Error(text.error().code, fmt::format("cannot read {}: {}", path, text.error().message));
  }
  auto doc = json::parse(*text, path);
  auto bad = [&](std::string_view what) { return fail(errc::corrupt, fmt::format("{}: {}", path, what)); };
  if (!doc) return Error(errc::corrupt, doc.error().message);
  if (!doc->is_object()) return bad("not a JSON object");
  State s;
  const auto& o = doc->as_object();
  if (auto* n = o.if_contains("next"); n && n->is_int64()) s.next = static_cast<int>(n->as_int64());
  if (auto* m = o.if_contains("members"); m) {
    if (!m->is_array()) return bad("\"members\" is not an array");
    for (const auto& v : m->as_array()) {
      if (!v.is_object()) return bad("a member is not an object");
      const auto& e = v.as_object();
      auto* name = e.if_contains("name");
      auto* pid = e.if_contains("pid");
      auto* ticks = e.if_contains("start_ticks");
      auto* started = e.if_contains("started_ms");
      if (!name || !name->is_string() || !pid || !pid->is_int64() || !ticks || !ticks->is_int64() || !started || !started->is_int64())
        return bad("a member needs name, pid, start_ticks and started_ms");
      if (pid->as_int64() <= 1 || pid->as_int64() > std::numeric_limits<pid_t>::max() || ticks->as_int64() <= 0)
        return bad(fmt::format("member \"{}\" has an impossible pid {} or start time {}", std::string_view(name->as_string()),
                               pid->as_int64(), ticks->as_int64()));
      State::Entry entry;
      entry.member.name = std::string(name->as_string());
      entry.member.pid = static_cast<pid_t>(pid->as_int64());
      entry.member.started = from_epoch_ms(started->as_int64());
      entry.ticks = ticks->as_int64();
      s.members.push_back(std::move(entry));
    }
  }
  return s;
}

Result<void> ProcessPool::save(const State& state) {
  if (memory_) {
    *memory_ = state;
    return {};
  }
  bj::array members;
  for (const auto& e : state.members)
    members.push_back(bj::object{
        {"name", e.member.name}, {"pid", e.member.pid}, {"start_ticks", e.ticks}, {"started_ms", to_epoch_ms(e.member.started)}});
  bj::object doc{{"resource", resource_}, {"next", state.next}, {"members", std::move(members)}};
  return write_file_atomically((options_.state_directory / (resource_ + ".json")).string(), json::pretty(doc));
}

void ProcessPool::prune(State& state) {
  std::erase_if(state.members, [this](const State::Entry& e) {
    const pid_t pid = e.member.pid;
    // Another process with the pid now (or none): the member is gone. Only this pool's own
    // children are ever reaped here, never a pid that may belong to someone else.
    if (wd::process_start_ticks(pid) != e.ticks) return true;
    const char state = wd::process_state(pid);
    if (state != 'Z' && state != 'X' && state != '\0') return false;
    if (spawned_.erase(pid) > 0) {
      int st = 0;
      ::waitpid(pid, &st, WNOHANG);
    }
    return true;  // exited
  });
}

Result<Member> ProcessPool::start_member(State& state, const std::string& reason) {
  wd::SpawnRequest req;
  req.argv = options_.command;
  req.env = wd::current_environment();
  for (const auto& [k, v] : options_.environment) req.env.insert_or_assign(k, v);
  Member m;
  m.name = fmt::format("{}-{}", resource_, state.next);
  req.env["AUTOMATION_RESOURCE"] = resource_;
  req.env["AUTOMATION_MEMBER"] = m.name;
  req.env["AUTOMATION_REASON"] = reason;
  req.working_directory = options_.working_directory.string();
  if (!options_.log_directory.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(options_.log_directory, ec);
    req.output_file = (options_.log_directory / (resource_ + ".log")).string();
  } else {
    req.output_file = "/dev/null";
  }
  req.new_session = true;
  auto child = wd::Child::spawn(req);
  if (!child) return with_context(child.error(), fmt::format("resource \"{}\": starting {}", resource_, m.name));
  const long long ticks = child->start_ticks();
  m.pid = child->detach();
  spawned_.insert(m.pid);
  m.started = clock_.now();
  ++state.next;
  state.members.push_back({m, ticks});
  return m;
}

Result<void> ProcessPool::stop_member(const Member& m, long long ticks) {
  // A pidfd pins the member: once its start time is checked through it, no signal can reach a
  // process that took its pid after it.
  const int fd = wd::open_pidfd(m.pid);
  if (fd < 0) return {};  // gone
  if (wd::process_start_ticks(m.pid) != ticks) {
    ::close(fd);
    return {};
  }
  ::kill(-m.pid, SIGTERM);  // the group the member leads
  pidfd_signal(fd, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + options_.stop_timeout;
  bool exited = wait_pidfd(fd, options_.stop_timeout);
  if (!exited) {
    ::kill(-m.pid, SIGKILL);
    pidfd_signal(fd, SIGKILL);
    exited = wait_pidfd(fd, std::chrono::seconds(5));
  }
  ::close(fd);
  if (spawned_.erase(m.pid) > 0) {
    int st = 0;
    ::waitpid(m.pid, &st, exited ? 0 : WNOHANG);
  }
  if (!exited) return fail(errc::timeout, fmt::format("resource \"{}\": {} (pid {}) did not exit after SIGKILL", resource_, m.name, m.pid));
  // The rest of its group gets what is left of the grace (at most 2 s), then SIGKILL.
  const auto group_deadline = std::min(deadline, std::chrono::steady_clock::now() + std::chrono::seconds(2));
  while (::kill(-m.pid, 0) == 0 && std::chrono::steady_clock::now() < group_deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ::kill(-m.pid, SIGKILL);
  return {};
}

Result<ResourceStatus> ProcessPool::status() {
  auto lock = Lock::take(options_, resource_);
  if (!lock) return lock.error();
  auto state = load();
  if (!state) return state.error();
  const auto before = state->members.size();
  prune(*state);
  if (state->members.size() != before)
    if (auto r = save(*state); !r) return r.error();
  ResourceStatus st;
  st.size = static_cast<int>(state->members.size());
  const auto now = clock_.now();
  int warming = 0;
  for (auto& e : state->members) {
    e.member.ready = now - e.member.started >= options_.warmup;
    warming += e.member.ready ? 0 : 1;
    st.members.push_back(e.member);
  }
  st.detail = fmt::format("{} member{}{}", *st.size, *st.size == 1 ? "" : "s", warming ? fmt::format(", {} warming up", warming) : "");
  return st;
}

Result<void> ProcessPool::resize(int size, const std::string& reason) {
  if (size < 0) return fail(errc::invalid_argument, fmt::format("resource \"{}\": a size cannot be negative ({})", resource_, size));
  auto lock = Lock::take(options_, resource_);
  if (!lock) return lock.error();
  auto state = load();
  if (!state) return state.error();
  prune(*state);
  while (static_cast<int>(state->members.size()) < size) {
    auto m = start_member(*state, reason);
    if (!m) {
      (void)save(*state);
      return m.error();
    }
    if (auto r = save(*state); !r) {
      // Not recorded: nobody could find it again; stop it rather than leave it running.
      const auto e = state->members.back();
      (void)stop_member(e.member, e.ticks);
      return r.error();
    }
  }
  while (static_cast<int>(state->members.size()) > size) {
    const auto newest = state->members.back();
    // A member that cannot be stopped stays recorded.
    if (auto r = stop_member(newest.member, newest.ticks); !r) return r.error();
    state->members.pop_back();
    if (auto s = save(*state); !s) return s.error();
  }
  return save(*state);
}

Result<void> ProcessPool::restart(const std::string& reason) {
  auto lock = Lock::take(options_, resource_);
  if (!lock) return lock.error();
  auto state = load();
  if (!state) return state.error();
  prune(*state);
  // One at a time, a replacement first: the pool is never below its size.
  const auto old = state->members;
  for (const auto& e : old) {
    auto m = start_member(*state, reason);
    if (!m) {
      (void)save(*state);
      return m.error();
    }
    if (auto s = save(*state); !s) return s.error();
    if (auto r = stop_member(e.member, e.ticks); !r) return r.error();
    std::erase_if(state->members, [&](const State::Entry& x) { return x.member.name == e.member.name; });
    if (auto s = save(*state); !s) return s.error();
  }
  return save(*state);
}

}  // namespace automation::scaling
