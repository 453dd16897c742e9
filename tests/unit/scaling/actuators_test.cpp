// Actuators with real processes: a process pool started, scaled down, adopted, restarted and
// pruned of members that died; command templates run without a shell; and the scaler driving a
// real pool.
#include <automation/core/files.hpp>
#include <automation/core/json.hpp>
#include <automation/scaling/actuator.hpp>
#include <automation/scaling/resource_scaler.hpp>
#include <automation/storage/memory_store.hpp>
#include <automation/testing/manual_clock.hpp>

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "support/catch_result.hpp"
#include "support/http_server.hpp"
#include "support/temp_dir.hpp"

using namespace automation;
using namespace automation::scaling;
using namespace std::chrono_literals;

namespace {

bool alive(pid_t pid) { return ::kill(pid, 0) == 0; }

/// Whether any process of group `pgid` is still running (zombies waiting for their reaper are not).
bool group_running(pid_t pgid) {
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    auto stat = read_file((e.path() / "stat").string());
    if (!stat) continue;
    const auto close = stat->rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream in(stat->substr(close + 2));
    char state = 0;
    long ppid = 0, pgrp = 0;
    in >> state >> ppid >> pgrp;
    if (pgrp == pgid && state != 'Z' && state != 'X') return true;
  }
  return false;
}

/// Waits until `pid` (a child of this process) has exited, leaving it for the pool to reap.
void wait_dead(pid_t pid) {
  siginfo_t info{};
  ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT);
}

std::string environ_of(pid_t pid) {
  auto text = read_file("/proc/" + std::to_string(pid) + "/environ");
  if (!text) return {};
  std::replace(text->begin(), text->end(), '\0', '\n');
  return *text;
}

ProcessPoolOptions sleeper(const test::TempDir& dir) {
  ProcessPoolOptions o;
  o.command = {"sleep", "600"};
  o.state_directory = dir.path() / "pools";
  o.stop_timeout = 5s;
  return o;
}

std::set<pid_t> pids(const ResourceStatus& st) {
  std::set<pid_t> out;
  for (const auto& m : st.members) out.insert(m.pid);
  return out;
}

}  // namespace

TEST_CASE("process pool: real workers started with their names, the newest stopped first, adopted by a second pool",
          "[scaling][actuator]") {
  test::TempDir dir;
  testing::ManualClock clock;
  auto pool = std::make_unique<ProcessPool>("workers", sleeper(dir), clock);
  struct Cleanup {
    const test::TempDir& dir;
    testing::ManualClock& clock;
    ~Cleanup() { (void)ProcessPool("workers", sleeper(dir), clock).resize(0, "test over"); }
  } cleanup{dir, clock};
  REQUIRE(pool->resize(3, "test"));
  auto st = pool->status();
  REQUIRE(st);
  REQUIRE(st->size == 3);
  REQUIRE(st->members.size() == 3);
  CHECK(st->members[0].name == "workers-1");
  CHECK(st->members[2].name == "workers-3");
  for (const auto& m : st->members) {
    CHECK(alive(m.pid));
    CHECK_THAT(environ_of(m.pid), Catch::Contains("AUTOMATION_MEMBER=" + m.name) && Catch::Contains("AUTOMATION_RESOURCE=workers"));
    CHECK(::getpgid(m.pid) == m.pid);  // each leads its own group (and session)
    CHECK(::getsid(m.pid) == m.pid);
  }
  const auto first = st->members[0].pid, second = st->members[1].pid, third = st->members[2].pid;

  REQUIRE(pool->resize(1, "test"));
  CHECK_FALSE(alive(second));
  CHECK_FALSE(alive(third));
  CHECK(alive(first));

  // Another pool over the same state directory (the next autoctl, a restarted daemon) adopts it.
  ProcessPool other("workers", sleeper(dir), clock);
  st = other.status();
  REQUIRE(st);
  REQUIRE(st->size == 1);
  CHECK(st->members[0].pid == first);
  // A member that dies is forgotten; the next one gets a new name.
  ::kill(first, SIGKILL);
  wait_dead(first);
  st = other.status();
  REQUIRE(st);
  CHECK(st->size == 0);
  REQUIRE(other.resize(2, "test"));
  st = other.status();
  REQUIRE(st);
  CHECK(st->members[0].name == "workers-4");
  // A restart replaces every member, one at a time.
  const auto before = pids(*st);
  REQUIRE(other.restart("test"));
  st = other.status();
  REQUIRE(st);
  CHECK(st->size == 2);
  for (pid_t p : before) CHECK_FALSE(alive(p));
  for (pid_t p : pids(*st)) CHECK(alive(p));
  CHECK(st->members[0].name == "workers-6");
  REQUIRE(other.resize(0, "test"));
  for (pid_t p : pids(*st)) CHECK_FALSE(alive(p));
}

TEST_CASE("process pool: a member that ignores SIGTERM is killed after the stop timeout, with its whole group", "[scaling][actuator]") {
  test::TempDir dir;
  testing::ManualClock clock;
  auto o = sleeper(dir);
  o.command = {"sh", "-c", "trap '' TERM; sleep 600 & wait"};
  o.stop_timeout = 200ms;
  ProcessPool pool("stubborn", o, clock);
  struct Cleanup {
    ProcessPool& pool;
    ~Cleanup() { (void)pool.resize(0, "test over"); }
  } cleanup{pool};
  REQUIRE(pool.resize(1, "test"));
  auto st = pool.status();
  REQUIRE(st);
  const pid_t leader = st->members.at(0).pid;
  REQUIRE(pool.resize(0, "test"));
  CHECK_FALSE(alive(leader));
  CHECK_FALSE(group_running(leader));  // nothing is left of its group
}

TEST_CASE("process pool: members are not ready while warming up, and an in-memory pool stops its members when it dies",
          "[scaling][actuator]") {
  testing::ManualClock clock;
  ProcessPoolOptions o;
  o.command = {"sleep", "600"};
  o.warmup = 30s;
  pid_t pid = 0;
  {
    ProcessPool pool("warm", o, clock);
    REQUIRE(pool.resize(1, "test"));
    auto st = pool.status();
    REQUIRE(st);
    CHECK_FALSE(st->members.at(0).ready);
    CHECK_THAT(st->detail, Catch::Contains("1 warming up"));
    clock.advance(30s);
    st = pool.status();
    REQUIRE(st);
    CHECK(st->members.at(0).ready);
    pid = st->members.at(0).pid;
    CHECK(alive(pid));
  }
  CHECK_FALSE(alive(pid));
}

TEST_CASE("process pool: a program that cannot start is an error naming it, and bad options are refused", "[scaling][actuator]") {
  testing::ManualClock clock;
  ProcessPoolOptions o;
  o.command = {"/nonexistent/worker"};
  ProcessPool pool("broken", o, clock);
  auto r = pool.resize(1, "test");
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("/nonexistent/worker") && Catch::Contains("broken-1"));
  o.command.clear();
  CHECK_THROWS_WITH(ProcessPool("broken", o, clock), Catch::Contains("needs a command"));
  o.command = {"sleep", "1"};
  CHECK_THROWS_WITH(ProcessPool("bad name!", o, clock), Catch::Contains("invalid resource name"));
}

TEST_CASE("process pool: a damaged state file is refused, naming it, and never leads to a signal", "[scaling][actuator]") {
  test::TempDir dir;
  testing::ManualClock clock;
  ProcessPool pool("workers", sleeper(dir), clock);
  const auto state = (dir.path() / "pools" / "workers.json").string();
  // pid 0 would mean this process's own group to kill().
  test::write_file(state, R"({"next": 2, "members": [{"name": "workers-1", "pid": 0, "start_ticks": 0, "started_ms": 0}]})");
  auto r = pool.resize(0, "test");
  REQUIRE_FALSE(r);
  CHECK(r.error().code == errc::corrupt);
  CHECK_THAT(r.error().message, Catch::Contains("workers.json") && Catch::Contains("impossible pid 0"));
  test::write_file(state, "{not json");
  CHECK(pool.status().error().code == errc::corrupt);
  // A recorded pid that is now another process (its start time differs) is not a member.
  test::write_file(
      state,
      fmt::format(R"({{"next": 2, "members": [{{"name": "workers-1", "pid": {}, "start_ticks": 1, "started_ms": 0}}]}})", ::getpid()));
  auto st = pool.status();
  REQUIRE(st);
  CHECK(st->size == 0);
  CHECK(alive(::getpid()));
}

TEST_CASE("command actuator: templates run without a shell, the status parsed, failures and timeouts explained", "[scaling][actuator]") {
  test::TempDir dir;
  const auto file = dir.file("size");
  CommandOptions o;
  // {size} lands inside one argument; a value with spaces or quotes can never become a second one.
  o.resize = {"sh", "-c", "printf '%s' \"$1\" > \"$2\"", "resize", "{size}", file};
  o.status = {"cat", file};
  CommandActuator a("web", o);
  REQUIRE(a.resize(4, "test"));
  auto st = a.status();
  REQUIRE(st);
  CHECK(st->size == 4);

  test::write_file(file, R"({"size": 2, "members": ["web-a", "web-b"]})");
  st = a.status();
  REQUIRE(st);
  CHECK(st->size == 2);
  REQUIRE(st->members.size() == 2);
  CHECK(st->members[1].name == "web-b");
  test::write_file(file, "lots");
  st = a.status();
  REQUIRE_FALSE(st);
  CHECK_THAT(st.error().message, Catch::Contains("printed \"lots\", not a size"));

  CommandOptions failing;
  failing.resize = {"sh", "-c", "echo 'no such deployment' >&2; exit 3"};
  CommandActuator f("web", failing);
  auto r = f.resize(2, "test");
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("exit 3: no such deployment"));
  auto none = f.status();
  REQUIRE(none);
  CHECK_FALSE(none->size);
  CHECK_FALSE(f.restart("test"));

  CommandOptions slow;
  slow.resize = {"sleep", "30"};
  slow.timeout = 200ms;
  CommandActuator s("web", slow);
  r = s.resize(2, "test");
  REQUIRE_FALSE(r);
  CHECK(r.error().code == errc::timeout);

  CommandOptions typo;
  typo.resize = {"kubectl", "scale", "--replicas={sise}"};
  CHECK_THROWS_WITH(CommandActuator("web", typo), Catch::Contains("unknown placeholder {sise}"));
  // Free text never goes into an argument (a shell script might read it): the reason is in the environment.
  CommandOptions reason;
  reason.resize = {"sh", "-c", "echo {reason}"};
  CHECK_THROWS_WITH(CommandActuator("web", reason),
                    Catch::Contains("unknown placeholder {reason}") && Catch::Contains("$AUTOMATION_REASON"));
  CommandOptions env;
  env.resize = {"sh", "-c", "printf '%s' \"$AUTOMATION_REASON\" > \"$1\"", "resize", dir.file("reason")};
  REQUIRE(CommandActuator("web", env).resize(1, "queue; rm -rf /"));
  CHECK(test::read_file(dir.file("reason")) == "queue; rm -rf /");
}

TEST_CASE("scaler: the seed thresholds drive a real process pool up and down", "[scaling][actuator]") {
  test::TempDir dir;
  testing::ManualClock clock;
  storage::MemoryStore store;
  ResourceScaler scaler(store, clock);
  ResourceSpec spec;
  spec.name = "workers";
  spec.policy.max_replicas = 3;
  spec.cooldown_up = spec.cooldown_down = 0s;
  REQUIRE(scaler.add(spec, std::make_unique<ProcessPool>("workers", sleeper(dir), clock)));
  // Recorded members outlive their pool object: stop whatever is left when the test ends.
  struct Cleanup {
    const test::TempDir& dir;
    testing::ManualClock& clock;
    ~Cleanup() { (void)ProcessPool("workers", sleeper(dir), clock).resize(0, "test over"); }
  } cleanup{dir, clock};
  auto sample = [&](double cpu) {
    std::vector<storage::MetricPoint> pts{{"cpu_usage", "", clock.now(), cpu}, {"memory_usage", "", clock.now(), 40}};
    REQUIRE(store.append_metric_points(pts));
  };
  sample(95);
  auto r = scaler.evaluate("workers");
  REQUIRE(r);
  CHECK(r->desired == 1);  // the pool starts empty, below the minimum of 1: corrected first
  CHECK(r->reason == "TooFewReplicas");
  for (int i = 0; i < 2; ++i) {
    clock.advance(1min);
    sample(95);
    r = scaler.evaluate("workers");
    REQUIRE(r);
    CHECK(r->outcome == "applied");
  }
  auto rep = scaler.report("workers");
  REQUIRE(rep);
  REQUIRE(rep->status);
  CHECK(rep->status->size == 3);
  CHECK(rep->last_change->desired == 3);
  for (const auto& m : rep->status->members) CHECK(alive(m.pid));
  clock.advance(1min);
  sample(5);
  r = scaler.evaluate("workers");
  REQUIRE(r);
  CHECK(r->desired == 2);
  rep = scaler.report("workers");
  REQUIRE(rep);
  CHECK(rep->status->size == 2);
  REQUIRE(scaler.scale_to("workers", 1, "user:test"));
  REQUIRE(scaler.scale_to("workers", 1, "user:test").error().code == errc::invalid_argument);
}

namespace {

/// A fake Docker Engine API on a unix socket: containers created, started, listed by label, stopped,
/// restarted and removed, as the real daemon answers.
struct FakeDocker {
  struct Container {
    std::string id, name, state;
    boost::json::object labels;
    long created;
    int restarts = 0;
  };
  std::mutex mu;
  std::vector<Container> containers;
  int next_id = 1;
  long clock = 1767225600;
  std::vector<std::string> calls;

  test::HttpReply handle(const std::string& request) {
    std::lock_guard lock(mu);
    const auto sp = request.find(' '), sp2 = request.find(' ', sp + 1);
    const auto method = request.substr(0, sp);
    const auto target = request.substr(sp + 1, sp2 - sp - 1);
    calls.push_back(method + " " + target.substr(0, target.find('?')));
    const auto body_at = request.find("\r\n\r\n");
    const auto body = body_at == std::string::npos ? std::string() : request.substr(body_at + 4);
    auto find = [&](std::string_view id) -> Container* {
      for (auto& c : containers)
        if (c.id == id) return &c;
      return nullptr;
    };
    if (method == "GET" && target.starts_with("/containers/json")) {
      const bool all = target.find("all=true") != std::string::npos;
      std::string query;  // %-decoded
      for (std::size_t i = 0; i < target.size(); ++i) {
        if (target[i] == '%' && i + 2 < target.size()) {
          query += static_cast<char>(std::stoi(target.substr(i + 1, 2), nullptr, 16));
          i += 2;
        } else {
          query += target[i];
        }
      }
      boost::json::array out;
      for (const auto& c : containers)
        if ((all || c.state == "running") &&
            query.find("\"automation.resource=" + std::string(c.labels.at("automation.resource").as_string()) + "\"") != std::string::npos)
          out.push_back(boost::json::object{{"Id", c.id},
                                            {"Names", boost::json::array{boost::json::value("/" + c.name)}},
                                            {"State", c.state},
                                            {"Created", c.created},
                                            {"Labels", c.labels}});
      return {200, json::dump(out)};
    }
    if (method == "POST" && target.starts_with("/containers/create?name=")) {
      const auto name = target.substr(24);
      for (const auto& c : containers)
        if (c.name == name) return {409, R"({"message": "Conflict. The container name is already in use"})"};
      auto spec = json::parse(body);
      if (!spec || !spec->as_object().contains("Image")) return {400, R"({"message": "no image"})"};
      if (spec->at("Image") == "missing:1") return {404, R"({"message": "No such image: missing:1"})"};
      containers.push_back({"c" + std::to_string(next_id++), name, "created", spec->at("Labels").as_object(), clock++});
      return {201, json::dump(boost::json::object{{"Id", containers.back().id}, {"Warnings", boost::json::array{}}})};
    }
    const auto slash = target.find('/', 12);
    const auto id = target.substr(12, (slash == std::string::npos ? target.find('?') : slash) - 12);
    Container* c = find(id);
    if (!c) return {404, R"({"message": "No such container"})"};
    if (method == "POST" && target.find("/start") != std::string::npos) {
      c->state = "running";
      return {204, ""};
    }
    if (method == "POST" && target.find("/stop") != std::string::npos) {
      c->state = "exited";
      return {204, ""};
    }
    if (method == "POST" && target.find("/restart") != std::string::npos) {
      ++c->restarts;
      return {204, ""};
    }
    if (method == "DELETE") {
      std::erase_if(containers, [&](const Container& x) { return x.id == id; });
      return {204, ""};
    }
    return {404, R"({"message": "page not found"})"};
  }
};

}  // namespace

TEST_CASE("docker actuator: containers created, started, listed by label, stopped and removed through the Engine API",
          "[scaling][actuator]") {
  test::TempDir dir;
  testing::ManualClock clock;
  FakeDocker docker;
  const auto socket = dir.file("docker.sock");
  test::HttpServer server(test::UnixSocket{socket}, [&](const std::string& r) { return docker.handle(r); });
  DockerOptions o;
  o.socket = socket;
  o.image = "worker:1";
  o.command = {"python3", "worker.py"};
  o.environment = {{"QUEUE", "jobs"}};
  DockerActuator a("workers", o, clock);
  REQUIRE(a.resize(2, "queue deep"));
  auto st = a.status();
  REQUIRE(st);
  CHECK(st->size == 2);
  REQUIRE(st->members.size() == 2);
  CHECK(st->members[0].name == "workers-1");
  CHECK(st->members[1].name == "workers-2");
  {
    std::lock_guard lock(docker.mu);
    CHECK(docker.containers[0].labels.at("automation.resource") == "workers");
    CHECK(docker.containers[1].labels.at("automation.member") == "workers-2");
  }
  const auto created = server.bodies();
  bool saw_env = false;
  for (const auto& b : created)
    saw_env = saw_env || (b.find("AUTOMATION_MEMBER=workers-1") != std::string::npos && b.find("QUEUE=jobs") != std::string::npos);
  CHECK(saw_env);

  REQUIRE(a.resize(1, "quiet"));
  st = a.status();
  REQUIRE(st);
  CHECK(st->size == 1);
  CHECK(st->members[0].name == "workers-1");  // the newest went
  REQUIRE(a.restart("test"));
  {
    std::lock_guard lock(docker.mu);
    CHECK(docker.containers.size() == 1);
    CHECK(docker.containers[0].restarts == 1);
    // A member that stopped by itself is removed before a new one takes a name.
    docker.containers[0].state = "exited";
  }
  REQUIRE(a.resize(1, "again"));
  st = a.status();
  REQUIRE(st);
  CHECK(st->size == 1);
  CHECK(st->members[0].name == "workers-2");  // the name of the removed one is free again

  // Docker's own error message comes through.
  o.image = "missing:1";
  DockerActuator missing("other", o, clock);
  auto r = missing.resize(1, "test");
  REQUIRE_FALSE(r);
  CHECK(r.error().code == errc::unavailable);
  CHECK_THAT(r.error().message, Catch::Contains("No such image: missing:1"));
  // No daemon on the socket: unavailable, naming it.
  o.socket = dir.file("nothing.sock");
  DockerActuator absent("workers", o, clock);
  auto s = absent.status();
  REQUIRE_FALSE(s);
  CHECK_THAT(s.error().message, Catch::Contains("nothing.sock"));
}
