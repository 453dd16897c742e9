#pragma once
// Headless Chromium driven over the DevTools protocol, for end-to-end tests of the dashboard: a
// real browser process (CHROMIUM_PATH), one page, JavaScript evaluated in it, screenshots. The
// protocol runs over a WebSocket (test::WebSocketClient) to the page's debugger address.
#include <automation/core/json.hpp>

#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"
#include "support/websocket_client.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

namespace automation::test {

/// Standard base64 (the protocol's screenshots).
inline std::string base64_decode(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  int bits = 0, acc = 0;
  for (char c : in) {
    const int v = value(c);
    if (v < 0) continue;  // '=' and line breaks
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

class Chromium {
 public:
  explicit Chromium(const TempDir& dir, int width = 1280, int height = 1400) : profile_(dir.file("chromium-profile")) {
    std::filesystem::create_directories(profile_);
    process_ = std::make_unique<BackgroundProcess>(
        std::vector<std::string>{CHROMIUM_PATH, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                                 "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
                                 "--user-data-dir=" + profile_, "--remote-debugging-port=0", "--remote-allow-origins=*",
                                 fmt::format("--window-size={},{}", width, height), "about:blank"},
        std::map<std::string, std::string>{{"HOME", dir.path().string()}}, dir.path().string(), dir.file("chromium.log"));
    // Chromium writes the port it chose to DevToolsActivePort (checked every 50 ms for up to 60 s).
    const auto active = profile_ + "/DevToolsActivePort";
    for (int i = 0; i < 1200 && !std::filesystem::exists(active); ++i) {
      if (!process_->running()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    INFO(read_file_or_empty(dir.file("chromium.log")));
    REQUIRE(std::filesystem::exists(active));
    // It may still be writing it: read until the port is there.
    for (int i = 0; i < 200 && port_ <= 0; ++i) {
      std::ifstream in(active);
      in >> port_;
      if (port_ <= 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    REQUIRE(port_ > 0);
    // The page target: its debugger WebSocket.
    std::string page;
    for (int i = 0; i < 100 && page.empty(); ++i) {
      auto list = http_call(port_, "GET", "/json/list", "", {}, std::chrono::seconds(10));
      if (list && list->status == 200)
        if (auto doc = json::parse(list->body); doc && doc->is_array())
          for (const auto& t : doc->as_array())
            if (t.at("type") == "page") {
              const std::string url(t.at("webSocketDebuggerUrl").as_string());
              page = url.substr(url.find("/devtools/"));
              break;
            }
      if (page.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    REQUIRE_FALSE(page.empty());
    socket_ = std::make_unique<WebSocketClient>(port_, page);
    REQUIRE(socket_->upgraded());
  }
  ~Chromium() {
    socket_.reset();
    if (process_ && process_->running()) {
      process_->signal_group(SIGTERM);  // the browser and its helper processes
      process_->wait(10);
    }
  }
  Chromium(const Chromium&) = delete;
  Chromium& operator=(const Chromium&) = delete;

  /// A protocol command's result; the test fails with the protocol's error.
  boost::json::value call(const std::string& method, boost::json::object params = {}) {
    const int id = ++next_id_;
    REQUIRE(socket_->send_text(json::dump(boost::json::object{{"id", id}, {"method", method}, {"params", std::move(params)}})));
    for (;;) {
      auto text = socket_->text(std::chrono::seconds(60));
      INFO(method);
      REQUIRE(text);
      auto doc = json::parse(*text);
      REQUIRE(doc);
      const auto& o = doc->as_object();
      if (!o.contains("id") || o.at("id") != id) continue;  // an event, or another answer
      INFO(*text);
      REQUIRE_FALSE(o.contains("error"));
      return o.at("result");
    }
  }

  /// Loads `url` and waits for the document to be complete.
  void open(const std::string& url) {
    call("Page.navigate", {{"url", url}});
    const auto base = url.substr(0, url.find('#'));  // the page may drop the fragment
    REQUIRE(
        wait_for(fmt::format("document.readyState === 'complete' && location.href.startsWith({})", json::dump(boost::json::value(base)))));
  }

  /// The value of a JavaScript expression (promises awaited); the test fails on an exception.
  boost::json::value eval(const std::string& expression) {
    auto r = call("Runtime.evaluate", {{"expression", expression}, {"returnByValue", true}, {"awaitPromise", true}});
    INFO(expression << "\n" << json::dump(r));
    REQUIRE_FALSE(r.as_object().contains("exceptionDetails"));
    const auto& result = r.at("result").as_object();
    return result.contains("value") ? result.at("value") : boost::json::value(nullptr);
  }

  /// The value of an expression, or null when it threw or the protocol refused (no test failure).
  boost::json::value try_eval(const std::string& expression) {
    const int id = ++next_id_;
    const boost::json::object params{{"expression", expression}, {"returnByValue", true}, {"awaitPromise", true}};
    if (!socket_->send_text(json::dump(boost::json::object{{"id", id}, {"method", "Runtime.evaluate"}, {"params", params}})))
      return nullptr;
    for (;;) {
      auto text = socket_->text(std::chrono::seconds(60));
      if (!text) return nullptr;
      auto doc = json::parse(*text);
      if (!doc || !doc->is_object()) continue;
      const auto& o = doc->as_object();
      if (!o.contains("id") || o.at("id") != id) continue;
      if (o.contains("error") || o.at("result").as_object().contains("exceptionDetails")) return nullptr;
      const auto& result = o.at("result").at("result").as_object();
      return result.contains("value") ? result.at("value") : boost::json::value(nullptr);
    }
  }

  /// Polls (every 100 ms, for up to `seconds` of real time: the browser and the daemon run on their
  /// own) until `expression` is true.
  bool wait_for(const std::string& expression, int seconds = 30) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    for (;;) {
      if (try_eval("Boolean(" + expression + ")") == true) return true;  // an error (a page being replaced) is a no
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  /// A PNG of the viewport, written to `path`; its size in bytes.
  std::size_t screenshot(const std::string& path) {
    auto r = call("Page.captureScreenshot", {{"format", "png"}, {"captureBeyondViewport", true}});
    const auto png = base64_decode(r.at("data").as_string());
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path, std::ios::binary) << png;
    return png.size();
  }

  /// The viewport as a phone's (width in CSS pixels, touch, mobile layout).
  void emulate_phone(int width, int height) {
    call("Emulation.setDeviceMetricsOverride", {{"width", width}, {"height", height}, {"deviceScaleFactor", 2}, {"mobile", true}});
  }

 private:
  static std::string read_file_or_empty(const std::string& path) { return std::filesystem::exists(path) ? read_file(path) : ""; }

  std::string profile_;
  std::unique_ptr<BackgroundProcess> process_;
  std::unique_ptr<WebSocketClient> socket_;
  int port_ = 0;
  int next_id_ = 0;
};

}  // namespace automation::test
