#include <automation/core/files.hpp>
#include <automation/core/time.hpp>
#include <automation/healing/probe.hpp>
#include <automation/scaling/actuator.hpp>

#include "workflow/process.hpp"

#include "detail/http_client.hpp"
#include "detail/names.hpp"
#include "detail/sqlite.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <sstream>

namespace automation::healing {

namespace {

constexpr std::array kKinds{ProbeKind::http, ProbeKind::tcp,    ProbeKind::process, ProbeKind::command,
                            ProbeKind::disk, ProbeKind::memory, ProbeKind::sqlite,  ProbeKind::callback};

std::string percent(double v) { return fmt::format("{:.1f}%", v); }

ProbeResult failed(std::string why) { return ProbeResult{false, std::move(why), std::nullopt, {}}; }

ProbeResult probe_pid(long pid, const std::string& what) {
  const char st = workflow::detail::process_state(static_cast<pid_t>(pid));
  if (st == '\0') return failed(fmt::format("{}: pid {} is not running", what, pid));
  if (st == 'Z' || st == 'X') return failed(fmt::format("{}: pid {} has exited (a zombie)", what, pid));
  return ProbeResult{true, fmt::format("{}: pid {} is running", what, pid), std::nullopt, {}};
}

ProbeResult probe_process(const ProbeSpec& p) {
  if (p.pid > 0) return probe_pid(p.pid, fmt::format("pid {}", p.pid));
  if (!p.pidfile.empty()) {
    auto text = read_file(p.pidfile);
    if (!text) return failed(fmt::format("pidfile {}: {}", p.pidfile, text.error().message));
    const auto t = detail::trim(*text);
    long pid = 0;
    auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), pid);
    if (ec != std::errc{} || end != t.data() + t.size() || pid <= 0)
      return failed(fmt::format("pidfile {}: \"{}\" is not a pid", p.pidfile, std::string(t.substr(0, 40))));
    return probe_pid(pid, "pidfile " + p.pidfile);
  }
  if (!p.process_name.empty()) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
      const auto name = e.path().filename().string();
      if (name.empty() || !std::isdigit(static_cast<unsigned char>(name.front()))) continue;
      // The kernel keeps 15 bytes of a name (TASK_COMM_LEN).
      auto comm = read_file((e.path() / "comm").string());
      if (!comm || detail::trim(*comm) != std::string_view(p.process_name).substr(0, 15)) continue;
      const long pid = std::stol(name);
      const char st = workflow::detail::process_state(static_cast<pid_t>(pid));
      if (st != 'Z' && st != 'X' && st != '\0')
        return ProbeResult{true, fmt::format("process {} is running (pid {})", p.process_name, pid), std::nullopt, {}};
    }
    return failed(fmt::format("no process named {} is running", p.process_name));
  }
  return failed("a process probe of a supervised service needs the SelfHealer's supervisor");
}

ProbeResult probe_tcp(const ProbeSpec& p) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const auto port = std::to_string(p.port);
  if (const int rc = ::getaddrinfo(p.host.c_str(), port.c_str(), &hints, &res); rc != 0)
    return failed(fmt::format("tcp {}:{}: cannot resolve: {}", p.host, p.port, ::gai_strerror(rc)));
  std::string last = "no address";
  const auto deadline = std::chrono::steady_clock::now() + p.timeout;
  for (auto* a = res; a; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd pf{fd, POLLOUT, 0};
      do {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
        rc = ::poll(&pf, 1, static_cast<int>(std::max<long long>(left, 0)));
      } while (rc < 0 && errno == EINTR);
      if (rc <= 0 || !(pf.revents & (POLLOUT | POLLERR | POLLHUP))) {
        ::close(fd);
        ::freeaddrinfo(res);
        return failed(
            fmt::format("tcp {}:{}: no answer within {}", p.host, p.port, format_duration(std::chrono::duration_cast<Millis>(p.timeout))));
      }
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      rc = err == 0 ? 0 : -1;
      errno = err;
    }
    if (rc == 0) {
      ::close(fd);
      ::freeaddrinfo(res);
      return ProbeResult{true, fmt::format("tcp {}:{} accepted the connection", p.host, p.port), std::nullopt, {}};
    }
    last = std::strerror(errno);
    ::close(fd);
  }
  ::freeaddrinfo(res);
  return failed(fmt::format("tcp {}:{}: {}", p.host, p.port, last));
}

ProbeResult probe_http(const ProbeSpec& p) {
  detail::HttpCall c;
  c.url = p.url;
  c.shown_url = detail::redact_url(p.url);
  c.ca_file = p.ca_file;
  c.timeout = std::chrono::duration_cast<Millis>(p.timeout);
  const std::atomic<bool> never{false};
  auto a = detail::perform_http(c, never);
  if (!a) return failed(a.error().message);
  const bool status_ok = p.expect_status.empty()
                             ? a->status >= 200 && a->status < 400
                             : std::find(p.expect_status.begin(), p.expect_status.end(), a->status) != p.expect_status.end();
  if (!status_ok) return failed(fmt::format("GET {}: status {}", c.shown_url, a->status));
  if (!p.expect_body.empty() && a->body.find(p.expect_body) == std::string::npos)
    return failed(fmt::format("GET {}: status {} but the body does not contain \"{}\"", c.shown_url, a->status, p.expect_body));
  return ProbeResult{true, fmt::format("GET {}: status {}", c.shown_url, a->status), std::nullopt, {}};
}

ProbeResult probe_command(const ProbeSpec& p) {
  auto r = scaling::run_command(p.command, p.timeout);
  if (!r) return failed(r.error().message);
  std::string said = r->err.empty() ? r->out : r->err;
  while (!said.empty() && (said.back() == '\n' || said.back() == ' ')) said.pop_back();
  if (said.size() > 200) said = said.substr(said.size() - 200);
  ProbeResult out{
      r->exit_code == 0, fmt::format("{}: {}{}", p.command.front(), r->status, said.empty() ? "" : ": " + said), r->exit_code, {}};
  return out;
}

ProbeResult probe_disk(const ProbeSpec& p) {
  struct statvfs st {};
  if (::statvfs(p.path.c_str(), &st) != 0) return failed(fmt::format("disk {}: {}", p.path, std::strerror(errno)));
  // As df: used / (used + available to unprivileged users).
  const double used = static_cast<double>(st.f_blocks - st.f_bfree);
  const double avail = static_cast<double>(st.f_bavail);
  const double pct = used + avail > 0 ? 100.0 * used / (used + avail) : 0.0;
  return ProbeResult{
      pct < p.max_percent, fmt::format("disk {} {} used (limit {})", p.path, percent(pct), percent(p.max_percent)), std::nullopt, {}};
}

ProbeResult probe_memory(const ProbeSpec& p) {
  auto text = read_file("/proc/meminfo");
  if (!text) return failed(fmt::format("/proc/meminfo: {}", text.error().message));
  double total = -1, available = -1;
  std::istringstream in(*text);
  std::string key;
  double value = 0;
  std::string unit;
  while (in >> key >> value) {
    std::getline(in, unit);
    if (key == "MemTotal:") total = value;
    if (key == "MemAvailable:") available = value;
  }
  if (total <= 0 || available < 0) return failed("/proc/meminfo has no MemTotal or MemAvailable");
  double pct = 100.0 * (total - available) / total;
  std::string where = "memory";
  // Inside a container the cgroup's limit comes first (cgroup v2: memory.current / memory.max).
  if (auto cg = read_file("/proc/self/cgroup"); cg && cg->rfind("0::", 0) == 0) {
    const auto path = std::string(detail::trim(std::string_view(*cg).substr(3)));
    auto max = read_file("/sys/fs/cgroup" + path + "/memory.max");
    auto current = read_file("/sys/fs/cgroup" + path + "/memory.current");
    if (max && current && detail::trim(*max) != "max") {
      const double limit = std::strtod(std::string(detail::trim(*max)).c_str(), nullptr);
      const double used = std::strtod(std::string(detail::trim(*current)).c_str(), nullptr);
      if (limit > 0 && 100.0 * used / limit > pct) {
        pct = 100.0 * used / limit;
        where = "memory (cgroup limit)";
      }
    }
  }
  return ProbeResult{
      pct < p.max_percent, fmt::format("{} {} used (limit {})", where, percent(pct), percent(p.max_percent)), std::nullopt, {}};
}

ProbeResult probe_sqlite(const ProbeSpec& p) {
  std::error_code ec;
  if (!std::filesystem::exists(p.database, ec)) return failed(fmt::format("database {} does not exist", p.database));
  detail::sqlite::Connection db;
  if (auto r = db.open(p.database, SQLITE_OPEN_READWRITE); !r) return failed(fmt::format("database {}: {}", p.database, r.error().message));
  sqlite3_busy_timeout(db.get(), static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(p.timeout).count()));
  if (auto r = db.exec("BEGIN IMMEDIATE", "take the write lock"); !r)
    return failed(fmt::format("database {}: {}", p.database, r.error().message));
  (void)db.exec("ROLLBACK", "rollback");
  return ProbeResult{true, fmt::format("database {} takes writes", p.database), std::nullopt, {}};
}

}  // namespace

std::string_view to_string(ProbeKind k) noexcept {
  switch (k) {
    case ProbeKind::http:
      return "http";
    case ProbeKind::tcp:
      return "tcp";
    case ProbeKind::process:
      return "process";
    case ProbeKind::command:
      return "command";
    case ProbeKind::disk:
      return "disk";
    case ProbeKind::memory:
      return "memory";
    case ProbeKind::sqlite:
      return "sqlite";
    case ProbeKind::callback:
      return "callback";
  }
  return "?";
}

Result<ProbeKind> parse_probe_kind(std::string_view text) {
  return detail::parse_name(text, std::span<const ProbeKind>(kKinds), "probe type");
}

Result<void> ProbeSpec::validate() const {
  auto bad = [&](std::string msg) { return fail(errc::invalid_argument, fmt::format("{} probe: {}", to_string(kind), msg)); };
  switch (kind) {
    case ProbeKind::http:
      if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) return bad("\"url\" must be an http:// or https:// URL");
      break;
    case ProbeKind::tcp:
      if (host.empty() || port < 1 || port > 65535) return bad("needs a host and a port from 1 to 65535");
      break;
    case ProbeKind::process:
      if (pid <= 0 && pidfile.empty() && process_name.empty() && service.empty())
        return bad("needs a pid, a pidfile, a process name or a supervised service");
      break;
    case ProbeKind::command:
      if (command.empty() || command.front().empty()) return bad("needs a command");
      break;
    case ProbeKind::disk:
    case ProbeKind::memory:
      if (!(max_percent > 0 && max_percent <= 100)) return bad("\"max_percent\" must be above 0 and at most 100");
      if (kind == ProbeKind::disk && path.empty()) return bad("needs a path");
      break;
    case ProbeKind::sqlite:
      if (database.empty()) return bad("needs a database file");
      break;
    case ProbeKind::callback:
      if (!callback && callback_name.empty()) return bad("needs a callback or the name of a registered one");
      break;
  }
  if (timeout <= Duration{}) return bad("\"timeout\" must be positive");
  if (interval <= Duration{}) return bad("\"interval\" must be positive");
  if (initial_delay < Duration{}) return bad("\"initial_delay\" cannot be negative");
  if (failure_threshold < 1 || success_threshold < 1) return bad("the failure and success thresholds must be at least 1");
  if (flap_window < 0 || flap_failures < 0 || flap_failures > flap_window || (flap_window > 0 && flap_failures < 1))
    return bad("flap detection needs 1 <= flap_failures <= flap_window (or both 0)");
  return {};
}

std::string ProbeSpec::describe() const {
  switch (kind) {
    case ProbeKind::http:
      return "GET " + detail::redact_url(url);
    case ProbeKind::tcp:
      return fmt::format("tcp {}:{}", host, port);
    case ProbeKind::process:
      if (!service.empty()) return "service " + service + " running";
      if (pid > 0) return fmt::format("pid {} running", pid);
      if (!pidfile.empty()) return "pidfile " + pidfile + " running";
      return "process " + process_name + " running";
    case ProbeKind::command:
      return "command " + command.front();
    case ProbeKind::disk:
      return fmt::format("disk {} below {}", path, percent(max_percent));
    case ProbeKind::memory:
      return fmt::format("memory below {}", percent(max_percent));
    case ProbeKind::sqlite:
      return "database " + database + " writable";
    case ProbeKind::callback:
      return "callback " + (callback_name.empty() ? std::string("(host)") : callback_name);
  }
  return "?";
}

ProbeResult run_probe(const ProbeSpec& p) {
  const auto start = std::chrono::steady_clock::now();
  ProbeResult r;
  try {
    switch (p.kind) {
      case ProbeKind::http:
        r = probe_http(p);
        break;
      case ProbeKind::tcp:
        r = probe_tcp(p);
        break;
      case ProbeKind::process:
        r = probe_process(p);
        break;
      case ProbeKind::command:
        r = probe_command(p);
        break;
      case ProbeKind::disk:
        r = probe_disk(p);
        break;
      case ProbeKind::memory:
        r = probe_memory(p);
        break;
      case ProbeKind::sqlite:
        r = probe_sqlite(p);
        break;
      case ProbeKind::callback:
        if (!p.callback) {
          r = failed(fmt::format("no callback \"{}\" is registered", p.callback_name));
        } else if (auto v = p.callback(); v) {
          r = ProbeResult{true, *v, std::nullopt, {}};
        } else {
          r = failed(v.error().message);
        }
        break;
    }
  } catch (const std::exception& e) {
    r = failed(fmt::format("the probe threw: {}", e.what()));
  }
  r.took = std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now() - start);
  return r;
}

}  // namespace automation::healing
