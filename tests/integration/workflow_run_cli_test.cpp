// autoctl workflow run/status/history/logs/cancel/resume against the real binary, including a
// kill -9 in the middle of a run and the recovery that follows.
#include "support/autoctl.hpp"
#include "support/json_out.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <thread>

extern char** environ;

using automation::test::autoctl;
using automation::test::json_out;
using automation::test::TempDir;
using namespace std::chrono_literals;

namespace {

// autoctl started in the background (stdout and stderr to files in `dir`).
class Background {
 public:
  Background(const std::vector<std::string>& args, const TempDir& dir) : out_(dir.file("bg.out")), err_(dir.file("bg.err")) {
    std::vector<std::string> argv{AUTOCTL_PATH};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addchdir_np(&fa, dir.path().c_str());
    posix_spawn_file_actions_addopen(&fa, 1, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    REQUIRE(posix_spawn(&pid_, argv[0].c_str(), &fa, nullptr, cargv.data(), environ) == 0);
    posix_spawn_file_actions_destroy(&fa);
  }
  ~Background() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }
  // The exit status once it ends (waits up to 30 s of real time).
  int wait() {
    int st = 0;
    for (int i = 0; i < 3000; ++i) {
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      }
      std::this_thread::sleep_for(10ms);
    }
    return -1;
  }
  void kill(int sig) { ::kill(pid_, sig); }
  std::string err() const { return automation::test::read_file(err_); }

 private:
  pid_t pid_ = -1;
  std::string out_, err_;
};

// Waits (real time, up to 30 s) for a file to hold a pid.
pid_t wait_for_pid_file(const std::string& path) {
  for (int i = 0; i < 3000; ++i) {
    std::ifstream in(path);
    pid_t p = 0;
    if (in >> p && p > 0) return p;
    std::this_thread::sleep_for(10ms);
  }
  return 0;
}

bool gone(pid_t pid) {
  for (int i = 0; i < 500; ++i) {
    if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

}  // namespace

TEST_CASE("cli: a run killed with SIGKILL is marked interrupted at the next start and resumes where it stopped", "[workflow]") {
  TempDir dir;
  const std::string db = "sqlite:" + dir.file("w.db");
  {
    std::ofstream(dir.file("wf.json")) << R"json({"name":"crashy","steps":[
      {"id":"a","shell":"echo ran >> a.count; echo v=7","outputs":["v"]},
      {"id":"b","shell":"if [ -f b.marker ]; then echo second time $V; else touch b.marker; echo $$ > b.pid; sleep 300; fi",
       "env":{"V":"${{ steps.a.outputs.v }}"},"needs":"a"},
      {"id":"c","run":["true"],"needs":"b"}]})json";
    std::ofstream(dir.file("other.json")) << R"json({"name":"other","steps":[{"id":"x","run":["true"]}]})json";
  }
  Background bg({"--db", db, "workflow", "run", "wf.json"}, dir);
  const pid_t step_pid = wait_for_pid_file(dir.file("b.pid"));
  REQUIRE(step_pid > 0);
  bg.kill(SIGKILL);
  CHECK(bg.wait() == 128 + SIGKILL);

  // Nothing recorded is lost: a succeeded with its output; the run still says running, its owner is gone.
  auto status = autoctl({"--db", db, "--json", "workflow", "status", "1"}, {}, dir.path().string());
  INFO(status.err);
  REQUIRE(status.exit_code == 0);
  auto doc = json_out(status);
  CHECK(doc.at("state").as_string() == "running");
  CHECK_FALSE(doc.at("owner_alive").as_bool());
  CHECK(doc.at("steps").as_array()[0].at("state").as_string() == "succeeded");
  CHECK(doc.at("steps").as_array()[0].at("outputs").at("v").as_string() == "7");
  CHECK(doc.at("steps").as_array()[1].at("state").as_string() == "running");
  CHECK(::kill(step_pid, 0) == 0);  // the step's process group outlived its engine

  // The next engine to start marks it interrupted and kills the orphaned process group.
  auto other = autoctl({"--db", db, "workflow", "run", "other.json"}, {}, dir.path().string());
  INFO(other.err);
  CHECK(other.exit_code == 0);
  CHECK_THAT(other.err, Catch::Contains("run 1 was left running by an engine that is gone; marked interrupted"));
  CHECK_THAT(other.err, Catch::Contains("killed an orphaned process group: run 1 step b"));
  CHECK(gone(step_pid));
  doc = json_out(autoctl({"--db", db, "--json", "workflow", "status", "1"}, {}, dir.path().string()));
  CHECK(doc.at("state").as_string() == "interrupted");
  CHECK_THAT(std::string(doc.at("reason").as_string()), Catch::Contains("is gone"));
  CHECK(doc.at("steps").as_array()[1].at("state").as_string() == "interrupted");

  // Resuming reruns only what did not finish.
  auto resumed = autoctl({"--db", db, "workflow", "resume", "1"}, {}, dir.path().string());
  INFO(resumed.err);
  CHECK(resumed.exit_code == 0);
  CHECK_THAT(resumed.out, Catch::Contains("run 1 of crashy succeeded"));
  CHECK(automation::test::read_file(dir.file("a.count")) == "ran\n");
  auto logs = autoctl({"--db", db, "workflow", "logs", "1", "b"}, {}, dir.path().string());
  CHECK_THAT(logs.out, Catch::Contains("==> b attempt 1: interrupted") && Catch::Contains("==> b attempt 2: succeeded") &&
                           Catch::Contains("second time 7"));
  // The audit log has the start and the resume.
  auto audit = autoctl({"--db", db, "--json", "audit", "list", "--action", "workflow.*"}, {}, dir.path().string());
  INFO(audit.err);
  CHECK_THAT(audit.out, Catch::Contains("workflow.resume"));
}

TEST_CASE("cli: workflow cancel from another process stops a running run, and Ctrl-C cancels too", "[workflow]") {
  TempDir dir;
  const std::string db = "sqlite:" + dir.file("w.db");
  std::ofstream(dir.file("slow.json")) << R"json({"name":"slow","steps":[
    {"id":"s","shell":"echo $$ > s.pid; exec sleep 300"},{"id":"fin","run":["true"],"finally":true}]})json";
  SECTION("autoctl workflow cancel") {
    Background bg({"--db", db, "workflow", "run", "slow.json"}, dir);
    const pid_t p = wait_for_pid_file(dir.file("s.pid"));
    REQUIRE(p > 0);
    auto c = autoctl({"--db", db, "workflow", "cancel", "1", "--reason", "maintenance window"}, {}, dir.path().string());
    INFO(c.err);
    CHECK(c.exit_code == 0);
    CHECK_THAT(c.out, Catch::Contains("cancel requested"));
    CHECK(bg.wait() == 1);
    CHECK(gone(p));
  }
  SECTION("SIGINT") {
    Background bg({"--db", db, "workflow", "run", "slow.json"}, dir);
    const pid_t p = wait_for_pid_file(dir.file("s.pid"));
    REQUIRE(p > 0);
    bg.kill(SIGINT);
    CHECK(bg.wait() == 1);
    CHECK_THAT(bg.err(), Catch::Contains("received SIGINT; cancelling run 1"));
    CHECK(gone(p));
  }
  auto doc = json_out(autoctl({"--db", db, "--json", "workflow", "status", "1"}, {}, dir.path().string()));
  CHECK(doc.at("state").as_string() == "cancelled");
  CHECK(doc.at("steps").as_array()[0].at("state").as_string() == "cancelled");
  CHECK(doc.at("steps").as_array()[1].at("state").as_string() == "succeeded");  // finally
  auto again = autoctl({"--db", db, "workflow", "cancel", "1"}, {}, dir.path().string());
  CHECK(again.exit_code != 0);
  CHECK_THAT(again.err, Catch::Contains("already ended"));
}

TEST_CASE("cli: workflow run reports bad parameters and unknown workflows clearly", "[workflow]") {
  TempDir dir;
  const std::string db = "sqlite:" + dir.file("w.db");
  auto unknown = autoctl({"--db", db, "workflow", "run", "auto_bakup"}, {}, dir.path().string());
  CHECK(unknown.exit_code == 66);
  CHECK_THAT(unknown.err, Catch::Contains("no workflow named \"auto_bakup\"") && Catch::Contains("auto_backup"));
  auto bad = autoctl({"--db", db, "workflow", "run", "auto_backup", "-p", "kep=3"}, {}, dir.path().string());
  CHECK(bad.exit_code == 65);
  CHECK_THAT(bad.err, Catch::Contains("unknown parameter \"kep\""));
  auto form = autoctl({"--db", db, "workflow", "run", "auto_backup", "-p", "keep"}, {}, dir.path().string());
  CHECK(form.exit_code == 65);
  CHECK_THAT(form.err, Catch::Contains("expected NAME=VALUE"));
  // A file in workflows_dir overrides the built-in of the same name; list shows where each comes from.
  std::filesystem::create_directories(dir.path() / "workflows");
  std::ofstream(dir.file("workflows/auto_backup.json")) << R"json({"name":"auto_backup","steps":[{"id":"x","run":["true"]}]})json";
  std::ofstream(dir.file("workflows/broken.json")) << R"json({"name":"broken","steps":[]})json";
  auto list = autoctl({"--db", db, "--json", "workflow", "list"}, {}, dir.path().string());
  INFO(list.err);
  auto doc = json_out(list);
  bool overridden = false;
  for (const auto& w : doc.at("workflows").as_array())
    if (w.at("name").as_string() == "auto_backup") overridden = w.at("source").as_string() == "workflows/auto_backup.json";
  CHECK(overridden);
  CHECK(doc.at("problems").as_array().size() == 1);
  auto b = autoctl({"--db", db, "workflow", "run", "broken"}, {}, dir.path().string());
  CHECK(b.exit_code == 65);
  CHECK_THAT(b.err, Catch::Contains("$.steps: must be a non-empty array"));
}
