// The HTTP server: the one translation unit with Beast's server side.
#include <automation/core/ids.hpp>
#include <automation/core/json.hpp>
#include <automation/core/logging.hpp>
#include <automation/runtime/event_loop.hpp>
#include <automation/runtime/http_server.hpp>

#include "detail/clean_text.hpp"
#include "detail/names.hpp"

#include <fmt/format.h>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

namespace automation::runtime {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace bj = boost::json;
using tcp = asio::ip::tcp;

namespace {

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// %-decoding ('+' as a space in a query); an invalid escape is kept as it is.
std::string decode(std::string_view s, bool query) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else if (query && s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

/// The segments of a path as sent, each %-decoded on its own ("/a%2Fb" is one segment "a/b"); an
/// empty segment ("//x", "/x/") stays empty, so no route matches it. "/" has none.
std::vector<std::string> split_path(std::string_view path, bool decoded) {
  std::vector<std::string> out;
  if (path.empty() || path == "/") return out;
  std::size_t i = path.front() == '/' ? 1 : 0;
  for (;;) {
    const auto end = std::min(path.find('/', i), path.size());
    const auto raw = path.substr(i, end - i);
    out.push_back(decoded ? decode(raw, false) : std::string(raw));
    if (end >= path.size()) break;
    i = end + 1;
  }
  return out;
}

int status_for(errc e) {
  switch (e) {
    case errc::invalid_argument:
      return 400;
    case errc::unauthenticated:
      return 401;
    case errc::permission_denied:
      return 403;
    case errc::not_found:
      return 404;
    case errc::already_exists:
    case errc::conflict:
    case errc::busy:
    case errc::cancelled:
      return 409;
    case errc::unavailable:
      return 503;
    case errc::timeout:
      return 504;
    default:
      return 500;
  }
}

}  // namespace

std::string HttpRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (beast::iequals(k, name)) return v;
  return {};
}

HttpResponse HttpResponse::json(int status, const bj::value& body) {
  HttpResponse r;
  r.status = status;
  r.body = json::dump(body);
  return r;
}

HttpResponse HttpResponse::error(int status, std::string_view code, std::string_view message) {
  return json(status, bj::object{{"error", bj::object{{"code", code}, {"message", message}}}});
}

HttpResponse HttpResponse::error(const Error& e) {
  const errc code = e.kind();
  return error(status_for(code), to_string(code), e.message);
}

// ---- Router ------------------------------------------------------------------------------------

Result<void> Router::add(std::string method, std::string pattern, Handler handler) {
  if (pattern.empty() || pattern.front() != '/')
    return fail(errc::invalid_argument, fmt::format("route \"{}\" must start with '/'", pattern));
  for (const auto& r : routes_)
    if (r.method == method && r.pattern == pattern)
      return fail(errc::invalid_argument, fmt::format("route {} {} is added twice", method, pattern));
  routes_.push_back(Route{std::move(method), split_path(pattern, false), pattern, std::move(handler)});
  return {};
}

Result<void> Router::add_websocket(std::string path, std::shared_ptr<WebSocketChannel> channel) {
  if (path.empty() || path.front() != '/') return fail(errc::invalid_argument, fmt::format("websocket \"{}\" must start with '/'", path));
  if (websocket(path)) return fail(errc::invalid_argument, fmt::format("websocket {} is added twice", path));
  websockets_.emplace_back(std::move(path), std::move(channel));
  return {};
}

std::shared_ptr<WebSocketChannel> Router::websocket(std::string_view path) const {
  for (const auto& [p, c] : websockets_)
    if (p == path) return c;
  return nullptr;
}

std::vector<std::shared_ptr<WebSocketChannel>> Router::websockets() const {
  std::vector<std::shared_ptr<WebSocketChannel>> out;
  for (const auto& [p, c] : websockets_) out.push_back(c);
  return out;
}

std::vector<std::string> Router::routes() const {
  std::vector<std::string> out;
  for (const auto& r : routes_) out.push_back(r.method + " " + r.pattern);
  return out;
}

HttpResponse Router::route(HttpRequest& req) const {
  const auto raw = std::string_view(req.target).substr(0, req.target.find('?'));
  const auto segments = split_path(raw, true);
  std::vector<std::string> allowed;
  const Route* best = nullptr;
  int best_literals = -1;
  for (const auto& r : routes_) {
    if (r.segments.size() != segments.size()) continue;
    int literals = 0;
    bool match = true;
    for (std::size_t i = 0; i < segments.size() && match; ++i) {
      const bool param = !r.segments[i].empty() && r.segments[i].front() == ':';
      if (param) {
        match = !segments[i].empty();
      } else {
        match = r.segments[i] == segments[i];
        ++literals;
      }
    }
    if (!match) continue;
    if (r.method != req.method && !(r.method == "GET" && req.method == "HEAD")) {
      allowed.push_back(r.method);
      continue;
    }
    // The most specific route wins: /workflows/executions before /workflows/:name.
    if (literals > best_literals) {
      best = &r;
      best_literals = literals;
    }
  }
  if (best) {
    req.params.clear();
    for (std::size_t i = 0; i < segments.size(); ++i)
      if (!best->segments[i].empty() && best->segments[i].front() == ':') req.params[best->segments[i].substr(1)] = segments[i];
    try {
      return best->handler(req);
    } catch (const std::exception& e) {
      log(LogLevel::error, "http", fmt::format("{} {}: the handler threw: {}", req.method, req.path, e.what()));
    } catch (...) {
      log(LogLevel::error, "http", fmt::format("{} {}: the handler threw", req.method, req.path));
    }
    return HttpResponse::error(500, "internal", "the request could not be handled (see the server's log)");
  }
  const auto shown = detail::clean_text(req.path);
  if (allowed.empty()) return HttpResponse::error(404, "not_found", fmt::format("no such endpoint: {} {}", req.method, shown));
  std::sort(allowed.begin(), allowed.end());
  allowed.erase(std::unique(allowed.begin(), allowed.end()), allowed.end());
  std::string allow;
  for (const auto& m : allowed) allow += (allow.empty() ? "" : ", ") + m;
  auto r = HttpResponse::error(405, "method_not_allowed", fmt::format("{} {} is not allowed (use {})", req.method, shown, allow));
  r.headers.emplace_back("Allow", allow);
  return r;
}

// ---- the server --------------------------------------------------------------------------------

namespace {
class WsSession;
}  // namespace

struct WebSocketChannel::Impl {
  Authorize authorize;
  Greeting greeting;
  std::string subprotocol;
  Duration max_age{};
  mutable std::mutex mu;
  std::vector<std::weak_ptr<WsSession>> clients;  // under mu
  std::vector<std::shared_ptr<WsSession>> live();
};

namespace {

constexpr std::size_t kMaxQueued = 64;
using Message = std::shared_ptr<const std::string>;  // one copy, however many clients it goes to

/// One WebSocket client: the connection a Session upgraded. Every handler runs on the connection's strand.
class WsSession : public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(beast::tcp_stream&& stream, std::shared_ptr<WebSocketChannel::Impl> channel)
      : ws_(std::move(stream)), channel_(std::move(channel)), age_(ws_.get_executor()) {}

  void accept(http::request<http::string_body> req) {
    beast::get_lowest_layer(ws_).expires_never();
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));  // pings a silent client, drops a dead one
    // The subprotocol is echoed only when the client offered it (a browser refuses any other).
    bool offered = false;
    if (!channel_->subprotocol.empty())
      for (const auto item : detail::comma_list(req[http::field::sec_websocket_protocol]))
        offered = offered || item == channel_->subprotocol;
    ws_.set_option(websocket::stream_base::decorator([p = offered ? channel_->subprotocol : std::string()](websocket::response_type& res) {
      res.set(http::field::server, "automation");
      if (!p.empty()) res.set(http::field::sec_websocket_protocol, p);
    }));
    ws_.read_message_max(64 * 1024);
    ws_.auto_fragment(false);  // a message is one frame, however long
    ws_.async_accept(req, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return;
      {
        std::lock_guard lock(self->channel_->mu);
        self->channel_->clients.push_back(self);
      }
      if (self->channel_->max_age > Duration::zero()) {
        // Its credentials were checked once: after max_age it must connect (and be checked) again.
        self->age_.expires_after(self->channel_->max_age);
        self->age_.async_wait([self](beast::error_code e) {
          if (!e) self->close_now(websocket::close_code::try_again_later, "reconnect");
        });
      }
      if (self->channel_->greeting)
        if (auto first = self->channel_->greeting()) self->queue(std::make_shared<const std::string>(std::move(*first)));
      self->read();
    });
  }

  /// From any thread.
  void send(Message text) {
    asio::post(ws_.get_executor(), [self = shared_from_this(), t = std::move(text)]() mutable { self->queue(std::move(t)); });
  }
  /// From any thread: the server stops.
  void shut() {
    asio::post(ws_.get_executor(), [self = shared_from_this()] { self->close_now(websocket::close_code::going_away, ""); });
  }

 private:
  void read() {
    ws_.async_read(in_, [self = shared_from_this()](beast::error_code ec, std::size_t n) {
      if (ec) {  // closed, or the client left: the last handlers holding it end here
        self->age_.cancel();
        return;
      }
      self->in_.consume(n);
      self->read();
    });
  }
  /// A close handshake when nothing is being written (the client gets a second to answer it);
  /// with a write under way (a client not reading), the connection is cut at once, since the close
  /// frame would wait behind that write.
  void close_now(websocket::close_code code, std::string_view why) {
    if (closing_) return;
    closing_ = true;
    age_.cancel();
    if (!out_.empty()) return cut();
    auto t = websocket::stream_base::timeout::suggested(beast::role_type::server);
    t.handshake_timeout = std::chrono::seconds(1);
    ws_.set_option(t);
    ws_.async_close(websocket::close_reason(code, why), [self = shared_from_this()](beast::error_code) {});
  }
  void cut() {
    closing_ = true;
    age_.cancel();
    beast::error_code ec;
    beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(ws_).socket().close(ec);
  }
  void queue(Message text) {
    if (closing_) return;
    if (out_.size() >= kMaxQueued) return cut();  // too far behind: it gets a fresh start by reconnecting
    out_.push_back(std::move(text));
    if (out_.size() == 1) write();
  }
  void write() {
    ws_.text(true);
    ws_.async_write(asio::buffer(*out_.front()), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->out_.pop_front();
      if (ec) {
        self->out_.clear();
        return;
      }
      if (!self->out_.empty() && !self->closing_) self->write();
    });
  }

  websocket::stream<beast::tcp_stream> ws_;
  std::shared_ptr<WebSocketChannel::Impl> channel_;
  asio::steady_timer age_;
  beast::flat_buffer in_;
  std::deque<Message> out_;
  bool closing_ = false;
};

}  // namespace

std::vector<std::shared_ptr<WsSession>> WebSocketChannel::Impl::live() {
  std::lock_guard lock(mu);
  std::vector<std::shared_ptr<WsSession>> out;
  std::erase_if(clients, [&](const std::weak_ptr<WsSession>& w) {
    auto s = w.lock();
    if (!s) return true;  // gone
    out.push_back(std::move(s));
    return false;
  });
  return out;
}

WebSocketChannel::WebSocketChannel(Authorize authorize, Greeting greeting, std::string subprotocol, Duration max_age)
    : impl_(std::make_shared<Impl>()) {
  impl_->authorize = std::move(authorize);
  impl_->greeting = std::move(greeting);
  impl_->subprotocol = std::move(subprotocol);
  impl_->max_age = max_age;
}

WebSocketChannel::~WebSocketChannel() = default;

void WebSocketChannel::broadcast(std::string text) {
  const auto message = std::make_shared<const std::string>(std::move(text));
  for (auto& c : impl_->live()) c->send(message);
}

std::size_t WebSocketChannel::clients() const { return impl_->live().size(); }

void WebSocketChannel::close_all() {
  for (auto& c : impl_->live()) c->shut();
}

namespace {

class Session;

/// The live sessions, so that stop() can close them.
struct Sessions {
  std::mutex mu;
  std::vector<std::weak_ptr<Session>> live;
  std::size_t count() {
    std::lock_guard lock(mu);
    std::erase_if(live, [](const auto& w) { return w.expired(); });
    return live.size();
  }
};

bool no_body(int status) { return (status >= 100 && status < 200) || status == 204 || status == 304; }

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const Router& router, const ServerOptions& options)
      : stream_(std::move(socket)), router_(router), options_(options) {
    beast::error_code ec;
    const auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = fmt::format("{}:{}", ep.address().to_string(), ep.port());
  }

  void run() { asio::dispatch(stream_.get_executor(), beast::bind_front_handler(&Session::read, shared_from_this())); }

  /// Closes the connection from another thread (the server stopping).
  void shut() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] {
      if (!self->upgraded_) self->close();
    });
  }

 private:
  void read() {
    // On a kept-alive connection the next request may wait `idle_timeout` to begin; once it has
    // begun (or when it is already buffered) it must arrive whole within `read_timeout`.
    if (served_ > 0 && buffer_.size() == 0) {
      stream_.expires_after(options_.idle_timeout);
      stream_.async_read_some(buffer_.prepare(4096), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
        if (ec) return self->close();
        self->buffer_.commit(n);
        self->read_request();
      });
      return;
    }
    read_request();
  }

  void read_request() {
    parser_.emplace();
    parser_->body_limit(options_.max_body);
    parser_->header_limit(static_cast<std::uint32_t>(options_.max_header));
    stream_.expires_after(options_.read_timeout);
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&Session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == http::error::body_limit)
      return reply_error(413, "payload_too_large", fmt::format("the request body is larger than {} bytes", options_.max_body));
    if (ec == http::error::header_limit)
      return reply_error(431, "headers_too_large", fmt::format("the request headers are larger than {} bytes", options_.max_header));
    // A parse error gets a 400; anything else (the client left, a timeout, the server stopping) a close.
    if (ec && ec.category() == http::make_error_code(http::error::bad_target).category() && ec != http::error::end_of_stream &&
        ec != http::error::partial_message)
      return reply_error(400, "bad_request", fmt::format("a malformed request: {}", ec.message()));
    if (ec) return close();
    auto msg = parser_->release();
    HttpRequest req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    const auto q = req.target.find('?');
    req.path = decode(std::string_view(req.target).substr(0, q), false);
    if (q != std::string::npos) {
      std::string_view query = std::string_view(req.target).substr(q + 1);
      while (!query.empty()) {
        const auto amp = query.find('&');
        const auto pair = query.substr(0, amp);
        const auto eq = pair.find('=');
        if (!pair.empty())
          req.query[decode(pair.substr(0, eq), true)] = eq == std::string_view::npos ? "" : decode(pair.substr(eq + 1), true);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
      }
    }
    req.headers.reserve(16);
    for (const auto& f : msg) req.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    req.body = std::move(msg.body());
    req.remote = remote_;
    req.correlation_id = correlation_id_from(req.header("traceparent"), req.header("X-Request-Id"));
    keep_alive_ = msg.keep_alive();
    version_ = msg.version();
    if (websocket::is_upgrade(msg))
      if (auto channel = router_.websocket(req.path)) {
        std::optional<HttpResponse> refused;
        {
          CorrelationScope scope(req.correlation_id);
          refused = channel->impl_->authorize ? channel->impl_->authorize(req) : std::nullopt;
        }
        if (refused) {
          keep_alive_ = false;
          return send(std::move(*refused), false, req.correlation_id);
        }
        // The connection is the WebSocket's from here; this session ends.
        upgraded_ = true;
        std::make_shared<WsSession>(std::move(stream_), channel->impl_)->accept(std::move(msg));
        return;
      }
    HttpResponse res;
    {
      CorrelationScope scope(req.correlation_id);
      res = router_.route(req);
    }
    send(std::move(res), req.method == "HEAD", req.correlation_id);
  }

  void reply_error(int status, std::string_view code, std::string message) {
    keep_alive_ = false;  // what follows on this connection cannot be trusted
    linger_ = true;       // the client may still be sending: let it finish before closing, so it reads the answer
    send(HttpResponse::error(status, code, message), false, generate_id());
  }

  void send(HttpResponse res, bool head, const std::string& correlation_id) {
    auto out = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(res.status), version_);
    out->set(http::field::server, "automation");
    out->set("X-Request-Id", correlation_id);
    for (const auto& [k, v] : res.headers) out->set(k, v);
    out->keep_alive(keep_alive_);
    if (no_body(res.status)) {
      // 1xx, 204 and 304 carry no body (and no length): a handler's body is dropped.
    } else {
      out->set(http::field::content_type, res.content_type);
      const auto size = res.body.size();
      if (!head) out->body() = std::move(res.body);
      out->prepare_payload();
      if (head) out->content_length(size);
    }
    response_ = out;
    stream_.expires_after(options_.read_timeout);
    http::async_write(stream_, *out, beast::bind_front_handler(&Session::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    response_.reset();
    ++served_;
    if (ec) return close();
    if (linger_) return linger();
    if (!keep_alive_) return close();
    read();
  }

  /// After an error answer: stop sending, read and discard what the client still sends (for a
  /// second, up to 16 MiB), then close, so that a client that reads only after sending everything
  /// gets the answer rather than a reset.
  void linger() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(std::chrono::seconds(1));
    drain();
  }
  void drain() {
    buffer_.clear();
    stream_.async_read_some(buffer_.prepare(64 * 1024), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
      self->drained_ += n;
      if (ec || self->drained_ > (16u << 20)) return self->close();
      self->drain();
    });
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<void> response_;
  const Router& router_;
  const ServerOptions& options_;
  std::string remote_;
  bool keep_alive_ = false;
  bool linger_ = false;
  unsigned version_ = 11;
  std::size_t served_ = 0;
  std::size_t drained_ = 0;
  bool upgraded_ = false;  // the stream went to a WebSocket
};

}  // namespace

struct HttpServer::Impl {
  Router router;
  ServerOptions options;
  std::unique_ptr<EventLoop> own_loop;  // when the server runs its own
  EventLoop* loop;
  asio::io_context& io;
  std::optional<tcp::acceptor> acceptor;
  std::optional<asio::strand<asio::io_context::executor_type>> accept_strand;
  std::optional<asio::steady_timer> backoff;
  Sessions sessions;
  std::atomic<int> port{0};
  bool started = false;

  /// WebSocket clients count against max_connections too (an upgraded connection leaves `sessions`).
  std::size_t websocket_clients() const {
    std::size_t n = 0;
    for (const auto& channel : router.websockets()) n += channel->clients();
    return n;
  }

  Impl(Router r, ServerOptions o, EventLoop* shared)
      : router(std::move(r)),
        options(std::move(o)),
        own_loop(shared ? nullptr : std::make_unique<EventLoop>(std::max(1, options.threads))),
        loop(shared ? shared : own_loop.get()),
        io(*static_cast<asio::io_context*>(loop->native())) {}

  void accept() {
    acceptor->async_accept(asio::make_strand(io), asio::bind_executor(*accept_strand, [this](beast::error_code ec, tcp::socket socket) {
                             if (ec == asio::error::operation_aborted || !acceptor->is_open()) return;
                             if (ec) {
                               // Out of descriptors, say: wait a little rather than spin on the same pending connection.
                               log(LogLevel::warn, "http", fmt::format("accepting a connection failed: {}", ec.message()));
                               backoff->expires_after(std::chrono::milliseconds(50));
                               backoff->async_wait(asio::bind_executor(*accept_strand, [this](beast::error_code) {
                                 if (acceptor->is_open()) accept();
                               }));
                               return;
                             }
                             if (sessions.count() + websocket_clients() >= options.max_connections) {
                               beast::error_code ignored;
                               socket.close(ignored);  // over the limit: refused at once
                             } else {
                               auto session = std::make_shared<Session>(std::move(socket), router, options);
                               {
                                 std::lock_guard lock(sessions.mu);
                                 sessions.live.push_back(session);
                               }
                               session->run();
                             }
                             accept();
                           }));
  }
};

HttpServer::HttpServer(Router router, ServerOptions options) : impl_(new Impl(std::move(router), std::move(options), nullptr)) {}

HttpServer::HttpServer(EventLoop& loop, Router router, ServerOptions options)
    : impl_(new Impl(std::move(router), std::move(options), &loop)) {}

HttpServer::~HttpServer() { stop(); }

Result<void> HttpServer::start() {
  auto& im = *impl_;
  if (im.started) return fail(errc::busy, "the server is already started");
  beast::error_code ec;
  const auto address = asio::ip::make_address(im.options.address, ec);
  if (ec) return fail(errc::invalid_argument, fmt::format("\"{}\" is not an IP address", im.options.address));
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(im.options.port));
  im.accept_strand.emplace(asio::make_strand(im.io));
  im.acceptor.emplace(*im.accept_strand);
  im.backoff.emplace(*im.accept_strand);
  auto bind_error = [&](std::string_view what) {
    return fail(errc::unavailable, fmt::format("cannot {} {}:{}: {}", what, im.options.address, im.options.port, ec.message()));
  };
  im.acceptor->open(endpoint.protocol(), ec);
  if (ec) return bind_error("open");
  im.acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  im.acceptor->bind(endpoint, ec);
  if (ec) return bind_error("listen on");
  im.acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return bind_error("listen on");
  im.port = im.acceptor->local_endpoint().port();
  asio::dispatch(*im.accept_strand, [&im] { im.accept(); });
  if (!im.loop->running()) im.loop->start();
  im.started = true;
  return {};
}

int HttpServer::port() const noexcept { return impl_->port.load(); }

void HttpServer::stop() {
  auto& im = *impl_;
  if (!im.started) return;
  // Stop accepting (on the acceptor's strand, and wait for it), then close every connection.
  std::promise<void> closed;
  asio::dispatch(*im.accept_strand, [&im, &closed] {
    beast::error_code ec;
    im.acceptor->close(ec);
    im.backoff->cancel();
    closed.set_value();
  });
  closed.get_future().wait();
  {
    std::lock_guard lock(im.sessions.mu);
    for (auto& w : im.sessions.live)
      if (auto s = w.lock()) s->shut();
  }
  for (auto& channel : im.router.websockets()) channel->close_all();
  auto websocket_clients = [&im] { return im.websocket_clients(); };
  // WebSocket clients get their close (a second to answer it) before the loop goes.
  const auto ws_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (websocket_clients() > 0 && std::chrono::steady_clock::now() < ws_deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  // What the sessions still have to do ends with their sockets: the server's own loop is stopped;
  // on a shared loop, the sessions' last handlers run out before the router they use goes away.
  if (im.own_loop) {
    im.own_loop->stop();
  } else {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while ((im.sessions.count() > 0 || websocket_clients() > 0) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  {
    std::lock_guard lock(im.sessions.mu);
    im.sessions.live.clear();
  }
  im.acceptor.reset();
  im.started = false;
}

}  // namespace automation::runtime
