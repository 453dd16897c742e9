#pragma once
/// The HTTP/1.1 server behind `autoctl serve` (and any host that wants one): Boost.Beast on an Asio
/// io_context with a small thread pool, a route table with `:param` segments, JSON in and out, and
/// the limits a server on a network needs: a body and header size limit (413 / 431), a deadline for
/// reading a request (a slow client is cut off), keep-alive with an idle limit, and a correlation id
/// per request (from `traceparent` or `X-Request-Id`, else new) set on the handler's thread and
/// echoed back in `X-Request-Id`. Errors are {"error": {"code", "message"}} with the proper status.
/// WebSocket channels (WebSocketChannel) push live updates to browsers on the same port.
///
/// Thread-safety: handlers run on the pool's threads, several at once; a Router is read-only once
/// the server started. Beast and Asio stay in lib/runtime/http_server.cpp.
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>

#include <boost/json/fwd.hpp>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace automation::runtime {

struct HttpRequest {
  std::string method;                         ///< "GET", "POST", ...
  std::string target;                         ///< as sent: "/api/v1/tasks/history?limit=10"
  std::string path;                           ///< without the query, %-decoded
  std::map<std::string, std::string> query;   ///< %-decoded; a repeated key keeps the last value
  std::map<std::string, std::string> params;  ///< the route's :param segments
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string remote;          ///< "127.0.0.1:53122"
  std::string correlation_id;  ///< this request's
  /// The first header of that name (case-insensitive), "" when absent.
  std::string header(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  /// Not sent: why the call did what it did, for its audit record (guard() records "answered 200"
  /// or the error's message without it), and a JSON object of what it changed.
  std::string audit_reason;
  std::string audit_result;

  static HttpResponse json(int status, const boost::json::value& body);
  /// {"error": {"code": code, "message": message}}
  static HttpResponse error(int status, std::string_view code, std::string_view message);
  /// The error of a Result, with the status its code calls for (not_found 404, invalid_argument
  /// 400, conflict and busy 409, ... see docs/http-api.md).
  static HttpResponse error(const Error& error);
};

using Handler = std::function<HttpResponse(const HttpRequest&)>;

/// Messages from the server to WebSocket clients (RFC 6455) on one path: live updates. A client
/// upgrades a GET on the channel's path; `authorize` decides (nullopt accepts, a response refuses
/// the upgrade with it), a new client gets `greeting()` first, and every broadcast() goes to every
/// client connected (one copy of each message, whatever the number of clients). What a client
/// sends is read and dropped (pings are answered); a client with 64 messages it has not taken yet
/// is cut off (it falls too far behind), and so is one that does not read while the server stops.
/// WebSocket clients count against ServerOptions::max_connections. A browser cannot set
/// headers on a WebSocket, so a channel with a `subprotocol` ("automation.v1") echoes it when the
/// client offers it, and the client may offer its credentials as a second one ("bearer.TOKEN").
/// Thread-safety: broadcast(), clients() and close_all() from any thread.
class WebSocketChannel {
 public:
  using Authorize = std::function<std::optional<HttpResponse>(const HttpRequest&)>;
  using Greeting = std::function<std::optional<std::string>()>;
  /// With `max_age`, a client is closed ("try again later") that long after it connected, so a
  /// client whose credentials were revoked stops getting messages within it (it reconnects and is
  /// checked again).
  explicit WebSocketChannel(Authorize authorize, Greeting greeting = {}, std::string subprotocol = {}, Duration max_age = {});
  ~WebSocketChannel();
  WebSocketChannel(const WebSocketChannel&) = delete;
  WebSocketChannel& operator=(const WebSocketChannel&) = delete;

  /// Queues a text message for every client connected now.
  void broadcast(std::string text);
  /// Clients connected now.
  std::size_t clients() const;
  /// Closes every client ("going away").
  void close_all();

  struct Impl;
  std::shared_ptr<Impl> impl_;
};

/// Routes by method and path: "/api/v1/workflows/:name/runs" matches "/api/v1/workflows/x/runs"
/// with params["name"] == "x". An unknown path is 404, a known path with another method 405 with
/// an Allow header; a handler that throws is 500 (logged, its message not shown).
class Router {
 public:
  /// errc::invalid_argument for a pattern that does not start with '/' or is added twice.
  Result<void> add(std::string method, std::string pattern, Handler handler);
  HttpResponse route(HttpRequest& request) const;
  /// The routes as "METHOD pattern", in the order added.
  std::vector<std::string> routes() const;
  /// A WebSocket channel on an exact path (a GET without an upgrade there goes to the routes);
  /// errc::invalid_argument for a path added twice.
  Result<void> add_websocket(std::string path, std::shared_ptr<WebSocketChannel> channel);
  std::shared_ptr<WebSocketChannel> websocket(std::string_view path) const;
  std::vector<std::shared_ptr<WebSocketChannel>> websockets() const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    std::string pattern;
    Handler handler;
  };
  std::vector<Route> routes_;
  std::vector<std::pair<std::string, std::shared_ptr<WebSocketChannel>>> websockets_;
};

struct ServerOptions {
  std::string address = "127.0.0.1";
  int port = 8080;  ///< 0: any free port (see HttpServer::port())
  int threads = 2;
  std::size_t max_body = 1 << 20;                    ///< larger: 413
  std::size_t max_header = 16 << 10;                 ///< larger: 431
  Duration read_timeout = std::chrono::seconds(10);  ///< to read one whole request; a slower client is cut off
  Duration idle_timeout = std::chrono::seconds(30);  ///< for the next request to begin on a kept-alive connection
  std::size_t max_connections = 1024;                ///< more at once are closed as they come
};

class EventLoop;

class HttpServer {
 public:
  /// A server with its own loop of `options.threads` threads.
  HttpServer(Router router, ServerOptions options);
  /// A server on a host's loop (`options.threads` is ignored); the loop must outlive it, and is
  /// started by start() when it is not running yet.
  HttpServer(EventLoop& loop, Router router, ServerOptions options);
  ~HttpServer();  ///< stops it
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Binds and starts serving; errc::unavailable naming the address when it cannot bind.
  Result<void> start();
  /// The bound port (after start()).
  int port() const noexcept;
  /// Stops accepting and closes the connections; start() may serve again. Its own loop is stopped
  /// (its threads joined); on a shared loop, it waits (up to 10 s) for the connections' handlers to
  /// end, and the loop keeps running. A host drains its own work first.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace automation::runtime
