#pragma once
// A daemon for integration tests: a store with a token of each role, and `autoctl serve` on it on
// port 0, called through real HTTP.
#include <automation/core/json.hpp>

#include "support/autoctl.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <csignal>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace automation::test {

namespace bj = boost::json;
using namespace std::chrono_literals;

/// A store, tokens of each role, and a daemon on it.
class Served {
 public:
  explicit Served(std::string config = "{}") {
    test::write_file(dir.file("config.json"), config);
    env = {{"AUTOMATION_DB", "sqlite:" + dir.file("a.db")}, {"AUTOMATION_SERVER_PORT", "0"}, {"AUTOMATION_LOG_FORMAT", "json"}};
    for (const auto* role : {"viewer", "operator", "admin"}) {
      auto r = autoctl({"token", "create", "--name", std::string(role) + "-token", "--role", role}, env, cwd());
      INFO(r.err);
      REQUIRE(r.exit_code == 0);
      tokens[role] = r.out.substr(0, r.out.find('\n'));
    }
  }
  std::string cwd() const { return dir.path().string(); }

  void start() {
    std::filesystem::remove(dir.file("port"));
    daemon = std::make_unique<test::BackgroundProcess>(
        std::vector<std::string>{AUTOCTL_PATH, "--config", dir.file("config.json"), "serve", "--port-file", dir.file("port")}, env, cwd(),
        dir.file("serve.log"));
    // Waits for the daemon to say where it listens (checked every 10 ms, for up to 30 s).
    for (int i = 0; i < 3000 && !std::filesystem::exists(dir.file("port")); ++i) {
      REQUIRE(daemon->running());
      std::this_thread::sleep_for(10ms);
    }
    INFO(log());
    REQUIRE(std::filesystem::exists(dir.file("port")));
    port = std::stoi(test::read_file(dir.file("port")));
  }
  std::string log() const { return std::filesystem::exists(dir.file("serve.log")) ? test::read_file(dir.file("serve.log")) : ""; }

  /// The call without Catch's macros (they are not thread-safe): for another thread.
  Result<detail::HttpAnswer> call_quietly(std::string method, std::string path, std::string role, std::string body) {
    return test::http_call(port, std::move(method), std::move(path), std::move(body), {{"Authorization", "Bearer " + tokens.at(role)}},
                           90s);
  }

  detail::HttpAnswer call(std::string method, std::string path, std::string role = {}, std::string body = {},
                          std::vector<std::pair<std::string, std::string>> headers = {}) {
    if (!role.empty()) headers.emplace_back("Authorization", "Bearer " + (tokens.contains(role) ? tokens[role] : role));
    auto a = test::http_call(port, std::move(method), std::move(path), std::move(body), std::move(headers), 30s);
    INFO(log());
    REQUIRE(a);
    return *a;
  }
  static bj::value doc(const detail::HttpAnswer& a) {
    auto d = json::parse(a.body);
    INFO(a.body);
    REQUIRE(d);
    return *d;
  }
  /// POSTs a run (with "wait") and, when the daemon answers 202 (a loaded machine), polls the run
  /// until it is final: its final record.
  bj::value run_to_end(const std::string& path, const std::string& role, const std::string& body,
                       std::vector<std::pair<std::string, std::string>> headers = {}) {
    auto a = call("POST", path, role, body, headers);
    INFO(a.body);
    REQUIRE((a.status == 200 || a.status == 202));
    auto run = doc(a).at("run");
    for (int i = 0; i < 600 && (run.at("state") == "queued" || run.at("state") == "running"); ++i) {
      std::this_thread::sleep_for(100ms);  // polling the daemon for the run's end
      run = doc(call("GET", fmt::format("/api/v1/runs/{}", run.at("id").as_int64()), "viewer"));
    }
    return run;
  }
  int stop() {
    daemon->signal(SIGTERM);
    return daemon->wait(60);
  }

  test::TempDir dir;
  std::map<std::string, std::string> env;
  std::map<std::string, std::string> tokens;
  std::unique_ptr<test::BackgroundProcess> daemon;
  int port = 0;
};

inline std::vector<bj::value> audit_records(Served& s, std::string query) {
  auto a = s.call("GET", "/api/v1/audit?limit=1000&" + query, "admin");
  REQUIRE(a.status == 200);
  std::vector<bj::value> out;
  const auto d = Served::doc(a);
  for (const auto& v : d.at("items").as_array()) out.push_back(v);
  return out;
}

}  // namespace automation::test
