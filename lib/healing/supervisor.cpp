#include <automation/core/time.hpp>
#include <automation/healing/supervisor.hpp>
#include <automation/storage/store.hpp>

#include "workflow/process.hpp"

#include <fmt/format.h>

#include <poll.h>

#include <csignal>
#include <mutex>
#include <thread>

namespace automation::healing {

namespace wd = automation::workflow::detail;

struct Supervisor::Service {
  ServiceSpec spec;
  std::optional<wd::Child> child;
  ServiceStatus status;
  bool stopping = false;  // stop() is waiting for it, outside the lock

  /// Notices an exit.
  void observe(TimePoint now) {
    if (!child) return;
    if (auto st = child->reap()) {
      status.running = false;
      status.exit_code = wd::exit_code(*st);
      status.exit = wd::describe_status(*st);
      status.exited = now;
      status.pid = 0;
      child.reset();  // kills what is left of its group
    }
  }
};

Result<void> ServiceSpec::validate() const {
  if (auto v = storage::check_resource_name("service", name); !v) return v;
  if (command.empty() || command.front().empty()) return fail(errc::invalid_argument, fmt::format("service \"{}\" needs a command", name));
  if (stop_timeout < Duration{}) return fail(errc::invalid_argument, fmt::format("service \"{}\": stop_timeout cannot be negative", name));
  return {};
}

Supervisor::Supervisor(const Clock& clock) : clock_(clock) {}

Supervisor::~Supervisor() {
  std::vector<std::string> names = services();
  for (const auto& n : names) (void)stop(n);
}

Result<void> Supervisor::add(ServiceSpec spec) {
  if (auto v = spec.validate(); !v) return v;
  std::lock_guard lock(mu_);
  if (services_.contains(spec.name)) return fail(errc::already_exists, fmt::format("service \"{}\" is already supervised", spec.name));
  auto s = std::make_unique<Service>();
  s->status.name = spec.name;
  s->spec = std::move(spec);
  services_.emplace(s->spec.name, std::move(s));
  return {};
}

std::vector<std::string> Supervisor::services() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [n, s] : services_) out.push_back(n);
  return out;
}

Result<ServiceStatus> Supervisor::status(std::string_view name) {
  std::lock_guard lock(mu_);
  auto it = services_.find(name);
  if (it == services_.end()) return fail(errc::not_found, fmt::format("no supervised service \"{}\"", name));
  it->second->observe(clock_.now());
  return it->second->status;
}

Result<ServiceStatus> Supervisor::start(std::string_view name) {
  std::lock_guard lock(mu_);
  auto it = services_.find(name);
  if (it == services_.end()) return fail(errc::not_found, fmt::format("no supervised service \"{}\"", name));
  auto& s = *it->second;
  s.observe(clock_.now());
  if (s.child) return fail(errc::busy, fmt::format("service \"{}\" is running (pid {})", name, s.status.pid));
  if (s.stopping) return fail(errc::busy, fmt::format("service \"{}\" is being stopped", name));
  wd::SpawnRequest req;
  req.argv = s.spec.command;
  req.env = wd::current_environment();
  for (const auto& [k, v] : s.spec.environment) req.env.insert_or_assign(k, v);
  req.env["AUTOMATION_SERVICE"] = s.spec.name;
  req.working_directory = s.spec.working_directory.string();
  req.output_file = s.spec.log_file.empty() ? std::string("/dev/null") : s.spec.log_file.string();
  if (!s.spec.log_file.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(s.spec.log_file.parent_path(), ec);
  }
  auto child = wd::Child::spawn(req);
  if (!child) return with_context(child.error(), fmt::format("service \"{}\"", name));
  s.status.pid = child->pid();
  s.child.emplace(std::move(*child));
  s.status.running = true;
  s.status.stopped = false;
  s.status.started = clock_.now();
  ++s.status.starts;
  return s.status;
}

// The child is taken out under the lock and waited for outside it, so status() and the other
// services are not held up for the grace; start() refuses while it is being stopped.
Result<ServiceStatus> Supervisor::stop(std::string_view name) {
  std::optional<wd::Child> child;
  Duration grace{};
  Service* service = nullptr;
  {
    std::lock_guard lock(mu_);
    auto it = services_.find(name);
    if (it == services_.end()) return fail(errc::not_found, fmt::format("no supervised service \"{}\"", name));
    auto& s = *it->second;
    s.observe(clock_.now());
    s.status.stopped = true;  // on purpose: not to be healed, whether it runs now or had exited
    if (s.stopping) return fail(errc::busy, fmt::format("service \"{}\" is being stopped", name));
    if (!s.child) return s.status;
    s.stopping = true;
    child = std::move(s.child);
    s.child.reset();
    grace = s.spec.stop_timeout;
    service = &s;  // services are never removed
  }
  child->signal_group(SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (!child->reap()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      child->signal_group(SIGKILL);
      break;
    }
    if (child->exit_fd() >= 0) {
      pollfd p{child->exit_fd(), POLLIN, 0};
      ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min<long long>(left, 20)));
    }
  }
  // The rest of its group gets what is left of the grace, then SIGKILL (with the Child's end).
  while (!child->group_gone() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const auto st = child->status();
  child.reset();
  std::lock_guard lock(mu_);
  auto& s = *service;
  if (st) {
    s.status.exit_code = wd::exit_code(*st);
    s.status.exit = wd::describe_status(*st) + ", stopped";
  } else {
    s.status.exit = "stopped";
  }
  s.stopping = false;
  s.status.running = false;
  s.status.stopped = true;
  s.status.pid = 0;
  s.status.exited = clock_.now();
  return s.status;
}

Result<ServiceStatus> Supervisor::restart(std::string_view name) {
  if (auto r = stop(name); !r) return r;
  return start(name);
}

}  // namespace automation::healing
