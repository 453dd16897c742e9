// The HTTP server on 127.0.0.1, port 0: routing with parameters, 404 and 405, JSON errors, query
// decoding, correlation ids, limits on body and headers, a slow client cut off, keep-alive, and
// requests served in parallel; WebSocket channels (refused upgrades, greetings, broadcasts, close on stop).
#include <automation/core/json.hpp>
#include <automation/core/logging.hpp>
#include <automation/runtime/http_server.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "support/catch_result.hpp"
#include "support/http_client.hpp"
#include "support/websocket_client.hpp"

using namespace automation;
using namespace automation::runtime;
using namespace std::chrono_literals;

namespace {

std::mutex gate_mu;
std::condition_variable gate_cv;

Router test_router(std::atomic<int>& concurrent, std::atomic<int>& peak) {
  Router r;
  REQUIRE(r.add("GET", "/healthz", [](const HttpRequest&) { return HttpResponse::json(200, boost::json::object{{"status", "ok"}}); }));
  REQUIRE(r.add("GET", "/api/v1/workflows/:name/runs", [](const HttpRequest& req) {
    return HttpResponse::json(200, boost::json::object{{"workflow", req.params.at("name")},
                                                       {"limit", req.query.count("limit") ? req.query.at("limit") : ""},
                                                       {"q", req.query.count("q") ? req.query.at("q") : ""},
                                                       {"correlation_id", std::string(current_correlation_id())}});
  }));
  REQUIRE(r.add("POST", "/api/v1/echo", [](const HttpRequest& req) {
    auto doc = json::parse(req.body, "request body");
    if (!doc) return HttpResponse::error(doc.error());
    return HttpResponse::json(201, *doc);
  }));
  REQUIRE(r.add("GET", "/api/v1/fail", [](const HttpRequest&) -> HttpResponse { throw std::runtime_error("secret detail"); }));
  REQUIRE(r.add("GET", "/api/v1/missing", [](const HttpRequest&) { return HttpResponse::error(fail(errc::not_found, "no run 42")); }));
  REQUIRE(r.add("GET", "/api/v1/slow", [&](const HttpRequest&) {
    // Each request waits (at most 5 s) until two are in their handlers at once: only a server that
    // runs them in parallel answers both quickly.
    std::unique_lock lock(gate_mu);
    const int now = ++concurrent;
    peak = std::max(peak.load(), now);
    gate_cv.notify_all();
    gate_cv.wait_for(lock, 5s, [&] { return peak.load() >= 2; });
    --concurrent;
    return HttpResponse::json(200, boost::json::object{{"done", true}});
  }));
  return r;
}

detail::HttpAnswer call(int port, std::string method, std::string path, std::string body = {},
                        std::vector<std::pair<std::string, std::string>> headers = {}) {
  auto a = test::http_call(port, std::move(method), std::move(path), std::move(body), std::move(headers), 5s);
  REQUIRE(a);
  return *a;
}

boost::json::value body_of(const detail::HttpAnswer& a) {
  auto doc = json::parse(a.body);
  REQUIRE(doc);
  return *doc;
}

int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<unsigned short>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  return fd;
}

void send_all(int fd, std::string_view s) { REQUIRE(::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size())); }

/// Reads until the peer closes or `until` appears (or 5 s pass).
std::string receive(int fd, std::string_view until = {}) {
  std::string got;
  char buf[4096];
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
    if (!until.empty() && got.find(until) != std::string::npos) break;
  }
  return got;
}

}  // namespace

TEST_CASE("http server: routes with parameters, query decoding, JSON errors, 404, 405 and a handler that throws", "[runtime][http]") {
  std::atomic<int> concurrent{0}, peak{0};
  HttpServer server(test_router(concurrent, peak), {.port = 0});
  REQUIRE(server.start());
  const int port = server.port();
  REQUIRE(port > 0);

  auto a = call(port, "GET", "/healthz");
  CHECK(a.status == 200);
  CHECK(body_of(a).at("status") == "ok");
  a = call(port, "GET", "/api/v1/workflows/nightly%20backup/runs?limit=10&q=a+b%26c", {}, {{"X-Request-Id", "req-42"}});
  CHECK(a.status == 200);
  auto doc = body_of(a);
  CHECK(doc.at("workflow") == "nightly backup");
  CHECK(doc.at("limit") == "10");
  CHECK(doc.at("q") == "a b&c");
  CHECK(doc.at("correlation_id") == "req-42");  // set on the handler's thread

  a = call(port, "POST", "/api/v1/echo", R"({"x": [1, 2]})");
  CHECK(a.status == 201);
  CHECK(body_of(a).at("x").as_array().size() == 2);
  a = call(port, "POST", "/api/v1/echo", "{nope");
  CHECK(a.status == 400);
  CHECK(body_of(a).at("error").at("code") == "invalid_argument");
  CHECK_THAT(std::string(body_of(a).at("error").at("message").as_string()), Catch::Contains("request body"));

  a = call(port, "GET", "/api/v1/nothing");
  CHECK(a.status == 404);
  CHECK(body_of(a).at("error").at("code") == "not_found");
  a = call(port, "DELETE", "/api/v1/echo");
  CHECK(a.status == 405);
  CHECK_THAT(std::string(body_of(a).at("error").at("message").as_string()), Catch::Contains("use POST"));
  a = call(port, "GET", "/api/v1/fail");
  CHECK(a.status == 500);
  CHECK_THAT(a.body, !Catch::Contains("secret detail"));
  a = call(port, "GET", "/api/v1/missing");
  CHECK(a.status == 404);
  CHECK(body_of(a).at("error").at("message") == "no run 42");
  server.stop();
}

TEST_CASE("http server: oversized bodies and headers are refused, a slow client is cut off, keep-alive serves several requests",
          "[runtime][http]") {
  std::atomic<int> concurrent{0}, peak{0};
  HttpServer server(test_router(concurrent, peak),
                    {.port = 0, .max_body = 1024, .max_header = 2048, .read_timeout = 300ms, .idle_timeout = 300ms});
  REQUIRE(server.start());
  const int port = server.port();

  auto a = call(port, "POST", "/api/v1/echo", "[" + std::string(2000, '1') + "]");
  CHECK(a.status == 413);
  CHECK(body_of(a).at("error").at("code") == "payload_too_large");
  a = call(port, "GET", "/healthz", {}, {{"X-Padding", std::string(4000, 'x')}});
  CHECK(a.status == 431);

  // A client that sends half a request and then nothing is disconnected after the read timeout.
  const int slow = connect_to(port);
  send_all(slow, "GET /healthz HTTP/1.1\r\nHost: x\r\n");
  const auto start = std::chrono::steady_clock::now();
  const auto got = receive(slow);
  CHECK(got.empty());
  CHECK(std::chrono::steady_clock::now() - start < 3s);  // closed by the server, not by our 5 s limit
  ::close(slow);

  // Two requests on one connection, each answered with its correlation id.
  const int fd = connect_to(port);
  send_all(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: first\r\n\r\n");
  auto first = receive(fd, "\"ok\"}");
  CHECK_THAT(first, Catch::Contains("200 OK") && Catch::Contains("X-Request-Id: first"));
  send_all(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: second\r\nConnection: close\r\n\r\n");
  auto second = receive(fd);
  CHECK_THAT(second, Catch::Contains("X-Request-Id: second"));
  ::close(fd);
  // A malformed request: 400, and the connection closed.
  const int bad = connect_to(port);
  send_all(bad, "NOT A REQUEST\r\n\r\n");
  CHECK_THAT(receive(bad), Catch::Contains("400 Bad Request") && Catch::Contains("bad_request"));
  ::close(bad);
}

TEST_CASE("http server: requests are served in parallel on the pool, a port in use is refused, stop is prompt", "[runtime][http]") {
  std::atomic<int> concurrent{0}, peak{0};
  HttpServer server(test_router(concurrent, peak), {.port = 0, .threads = 2});
  REQUIRE(server.start());
  const int port = server.port();
  auto one = std::async(std::launch::async, [&] { return call(port, "GET", "/api/v1/slow").status; });
  auto two = std::async(std::launch::async, [&] { return call(port, "GET", "/api/v1/slow").status; });
  const auto start_both = std::chrono::steady_clock::now();
  CHECK(one.get() == 200);
  CHECK(two.get() == 200);
  CHECK(peak.load() == 2);
  CHECK(std::chrono::steady_clock::now() - start_both < 4s);

  HttpServer clash(Router{}, {.port = port});
  auto r = clash.start();
  REQUIRE_FALSE(r);
  CHECK(r.error().code == errc::unavailable);
  CHECK_THAT(r.error().message, Catch::Contains(fmt::format("127.0.0.1:{}", port)));
  // A connection left open does not keep stop() waiting.
  const int idle = connect_to(port);
  const auto start = std::chrono::steady_clock::now();
  server.stop();
  CHECK(std::chrono::steady_clock::now() - start < 2s);
  ::close(idle);
}

TEST_CASE(
    "http server: a 204 never carries a body, a large upload gets its 413, segments decode alone, literal routes win, stop and start again",
    "[runtime][http]") {
  Router r;
  REQUIRE(r.add("DELETE", "/api/v1/things/:id", [](const HttpRequest&) { return HttpResponse::json(204, nullptr); }));
  REQUIRE(r.add("GET", "/api/v1/workflows/:name", [](const HttpRequest& req) {
    return HttpResponse::json(200, boost::json::object{{"name", req.params.at("name")}});
  }));
  REQUIRE(r.add("GET", "/api/v1/workflows/executions", [](const HttpRequest&) {
    return HttpResponse::json(200, boost::json::object{{"executions", boost::json::array{}}});
  }));
  REQUIRE(r.add("POST", "/api/v1/upload", [](const HttpRequest&) { return HttpResponse::json(200, nullptr); }));
  HttpServer server(std::move(r), {.port = 0, .max_body = 1024});
  REQUIRE(server.start());
  int port = server.port();

  auto a = call(port, "DELETE", "/api/v1/things/7");
  CHECK(a.status == 204);
  CHECK(a.body.empty());
  CHECK(call(port, "GET", "/healthz").status == 404);  // the server is still up

  // 5 MB against a 1 KiB limit: the client reads the 413 rather than a reset connection.
  a = call(port, "POST", "/api/v1/upload", std::string(5 << 20, 'x'));
  CHECK(a.status == 413);

  a = call(port, "GET", "/api/v1/workflows/a%2Fb");
  CHECK(a.status == 200);
  CHECK(body_of(a).at("name") == "a/b");
  CHECK(body_of(call(port, "GET", "/api/v1/workflows/executions")).as_object().contains("executions"));
  CHECK(call(port, "GET", "/api/v1//workflows/x").status == 404);
  CHECK(call(port, "GET", "/api/v1/workflows/x/").status == 404);

  server.stop();
  // Stopped: nothing listens.
  {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<unsigned short>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0);
    ::close(fd);
  }
  // And it serves again after start().
  REQUIRE(server.start());
  port = server.port();
  CHECK(call(port, "DELETE", "/api/v1/things/8").status == 204);
}

TEST_CASE(
    "http server: a WebSocket channel refuses what authorize refuses, greets a new client, broadcasts to every client in order, "
    "and closes them when the server stops",
    "[runtime][http]") {
  std::atomic<int> greeted{0};
  auto channel = std::make_shared<WebSocketChannel>(
      [](const HttpRequest& req) -> std::optional<HttpResponse> {
        if (req.header("Sec-WebSocket-Protocol").find("bearer.good") == std::string::npos)
          return HttpResponse::error(401, "unauthenticated", "no token");
        return std::nullopt;
      },
      [&greeted]() -> std::optional<std::string> { return "hello " + std::to_string(++greeted); }, "automation.v1");
  Router r;
  REQUIRE(r.add("GET", "/live", [](const HttpRequest&) { return HttpResponse::json(200, boost::json::object{{"plain", true}}); }));
  REQUIRE(r.add_websocket("/live", channel));
  CHECK_FALSE(r.add_websocket("/live", channel));
  ServerOptions o;
  o.port = 0;
  HttpServer server(std::move(r), o);
  REQUIRE(server.start());

  // No credentials: the upgrade is refused with authorize's answer.
  test::WebSocketClient refused(server.port(), "/live");
  CHECK_FALSE(refused.upgraded());
  CHECK(refused.head().rfind("HTTP/1.1 401", 0) == 0);
  // A plain GET of the same path is an ordinary request.
  auto plain = test::http_call(server.port(), "GET", "/live", "", {}, 10s);
  REQUIRE(plain);
  CHECK(plain->status == 200);

  test::WebSocketClient a(server.port(), "/live", {{"Sec-WebSocket-Protocol", "automation.v1, bearer.good"}});
  REQUIRE(a.upgraded());
  CHECK(a.head().find("Sec-WebSocket-Protocol: automation.v1") != std::string::npos);
  CHECK(a.text() == "hello 1");
  // A client that offers only its credentials gets no subprotocol back (a browser would refuse another).
  test::WebSocketClient b(server.port(), "/live", {{"Sec-WebSocket-Protocol", "bearer.good"}});
  REQUIRE(b.upgraded());
  CHECK(b.head().find("automation.v1") == std::string::npos);
  CHECK(b.text() == "hello 2");
  CHECK(channel->clients() == 2);

  for (int i = 0; i < 3; ++i) channel->broadcast("update " + std::to_string(i));
  for (auto* c : {&a, &b})
    for (int i = 0; i < 3; ++i) CHECK(c->text() == "update " + std::to_string(i));
  // A large message (a long length field) arrives whole.
  channel->broadcast(std::string(70'000, 'x'));
  CHECK(a.text()->size() == 70'000);
  CHECK(b.text()->size() == 70'000);

  // Stopping closes them: each client answers the close (its reader runs beside the stop), so the
  // stop does not wait for the second a silent client gets.
  auto answer = [](test::WebSocketClient& c) {
    auto f = c.frame();
    return f && f->opcode == 8;
  };
  auto fa = std::async(std::launch::async, answer, std::ref(a));
  auto fb = std::async(std::launch::async, answer, std::ref(b));
  server.stop();
  CHECK(fa.get());
  CHECK(fb.get());
  CHECK(channel->clients() == 0);
}

TEST_CASE("http server: a WebSocket client that does not read is cut off, and one past the channel's max age is closed to reconnect",
          "[runtime][http]") {
  auto aged = std::make_shared<WebSocketChannel>([](const HttpRequest&) { return std::optional<HttpResponse>(); },
                                                 WebSocketChannel::Greeting{}, "", 300ms);
  auto channel = std::make_shared<WebSocketChannel>([](const HttpRequest&) { return std::optional<HttpResponse>(); });
  Router r;
  REQUIRE(r.add_websocket("/aged", aged));
  REQUIRE(r.add_websocket("/live", channel));
  ServerOptions o;
  o.port = 0;
  HttpServer server(std::move(r), o);
  REQUIRE(server.start());

  // Past its age: closed with "try again later" (1013), while it reads.
  test::WebSocketClient aging(server.port(), "/aged");
  REQUIRE(aging.upgraded());
  auto close = aging.frame();  // the server's timer, within the frame's 10 s
  REQUIRE(close);
  CHECK(close->opcode == 8);
  REQUIRE(close->payload.size() >= 2);
  CHECK(((static_cast<unsigned char>(close->payload[0]) << 8) | static_cast<unsigned char>(close->payload[1])) == 1013);

  // Never reading: once 64 messages wait behind a write the socket cannot take, it is cut off.
  test::WebSocketClient stalled(server.port(), "/live");
  REQUIRE(stalled.upgraded());
  for (int i = 0; i < 100 && channel->clients() == 0; ++i) std::this_thread::sleep_for(10ms);  // its accept handler runs
  const std::string big(256 * 1024, 'x');
  for (int i = 0; i < 400 && channel->clients() > 0; ++i) channel->broadcast(big);
  for (int i = 0; i < 1000 && channel->clients() > 0; ++i) std::this_thread::sleep_for(10ms);  // the server's strand acts
  CHECK(channel->clients() == 0);  // this channel has no max age: only falling behind ends it
  server.stop();
}
