// The HTTP server: the one translation unit with Beast's server side.
#include <automation/core/ids.hpp>
#include <automation/core/json.hpp>
#include <automation/core/logging.hpp>
#include <automation/runtime/http_server.hpp>

#include <fmt/format.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <thread>

namespace automation::runtime {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace bj = boost::json;
using tcp = asio::ip::tcp;

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

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

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    const auto end = std::min(path.find('/', i), path.size());
    if (end > i) out.emplace_back(path.substr(i, end - i));
    i = end;
  }
  return out;
}

int status_for(errc e) {
  switch (e) {
    case errc::invalid_argument:
      return 400;
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
    if (iequals(k, name)) return v;
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
  routes_.push_back(Route{std::move(method), split_path(pattern), pattern, std::move(handler)});
  return {};
}

std::vector<std::string> Router::routes() const {
  std::vector<std::string> out;
  for (const auto& r : routes_) out.push_back(r.method + " " + r.pattern);
  return out;
}

HttpResponse Router::route(HttpRequest& req) const {
  const auto segments = split_path(req.path);
  std::vector<std::string> allowed;
  for (const auto& r : routes_) {
    if (r.segments.size() != segments.size()) continue;
    std::map<std::string, std::string> params;
    bool match = true;
    for (std::size_t i = 0; i < segments.size() && match; ++i) {
      if (!r.segments[i].empty() && r.segments[i].front() == ':')
        params[r.segments[i].substr(1)] = segments[i];
      else
        match = r.segments[i] == segments[i];
    }
    if (!match) continue;
    if (r.method != req.method && !(r.method == "GET" && req.method == "HEAD")) {
      allowed.push_back(r.method);
      continue;
    }
    req.params = std::move(params);
    try {
      return r.handler(req);
    } catch (const std::exception& e) {
      log(LogLevel::error, "http", fmt::format("{} {}: the handler threw: {}", req.method, req.path, e.what()));
      return HttpResponse::error(500, "internal", "the request could not be handled (see the server's log)");
    }
  }
  if (allowed.empty()) return HttpResponse::error(404, "not_found", fmt::format("no such endpoint: {} {}", req.method, req.path));
  std::sort(allowed.begin(), allowed.end());
  allowed.erase(std::unique(allowed.begin(), allowed.end()), allowed.end());
  std::string allow;
  for (const auto& m : allowed) allow += (allow.empty() ? "" : ", ") + m;
  auto r = HttpResponse::error(405, "method_not_allowed", fmt::format("{} {} is not allowed (use {})", req.method, req.path, allow));
  r.headers.emplace_back("Allow", allow);
  return r;
}

// ---- the server --------------------------------------------------------------------------------

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const Router& router, const ServerOptions& options)
      : stream_(std::move(socket)), router_(router), options_(options) {
    beast::error_code ec;
    const auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = fmt::format("{}:{}", ep.address().to_string(), ep.port());
  }

  void run() { asio::dispatch(stream_.get_executor(), beast::bind_front_handler(&Session::read, shared_from_this())); }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(options_.max_body);
    parser_->header_limit(static_cast<std::uint32_t>(options_.max_header));
    // The first request must arrive whole within the read timeout; a kept-alive connection may idle
    // that long more between requests.
    stream_.expires_after(served_ == 0 ? options_.read_timeout : options_.idle_timeout + options_.read_timeout);
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&Session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::connection_reset ||
        ec == asio::error::operation_aborted) {
      return close();
    }
    if (ec == http::error::body_limit)
      return reply_error(413, "payload_too_large", fmt::format("the request body is larger than {} bytes", options_.max_body));
    if (ec == http::error::header_limit)
      return reply_error(431, "headers_too_large", fmt::format("the request headers are larger than {} bytes", options_.max_header));
    if (ec) return reply_error(400, "bad_request", fmt::format("a malformed request: {}", ec.message()));
    const auto& msg = parser_->get();
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
    for (const auto& f : msg) req.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    req.body = msg.body();
    req.remote = remote_;
    req.correlation_id = correlation_id_from(req.header("traceparent"), req.header("X-Request-Id"));
    keep_alive_ = msg.keep_alive();
    const unsigned version = msg.version();
    HttpResponse res;
    {
      CorrelationScope scope(req.correlation_id);
      res = router_.route(req);
    }
    send(std::move(res), version, req.method == "HEAD", req.correlation_id);
  }

  void reply_error(int status, std::string_view code, std::string message) {
    keep_alive_ = false;  // what follows on this connection cannot be trusted
    send(HttpResponse::error(status, code, message), 11, false, generate_id());
  }

  void send(HttpResponse res, unsigned version, bool head, const std::string& correlation_id) {
    auto out = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(res.status), version);
    out->set(http::field::server, "automation");
    out->set(http::field::content_type, res.content_type);
    out->set("X-Request-Id", correlation_id);
    for (const auto& [k, v] : res.headers) out->set(k, v);
    out->keep_alive(keep_alive_);
    const auto size = res.body.size();
    if (!head) out->body() = std::move(res.body);
    out->prepare_payload();
    if (head) out->content_length(size);
    response_ = out;
    stream_.expires_after(options_.read_timeout);
    http::async_write(stream_, *out, beast::bind_front_handler(&Session::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    response_.reset();
    ++served_;
    if (ec || !keep_alive_) return close();
    read();
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
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
  std::size_t served_ = 0;
};

}  // namespace

struct HttpServer::Impl {
  Router router;
  ServerOptions options;
  asio::io_context io;
  std::optional<tcp::acceptor> acceptor;
  std::vector<std::thread> threads;
  std::atomic<int> port{0};
  bool started = false;

  void accept() {
    acceptor->async_accept(asio::make_strand(io), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor->is_open()) return;
      if (!ec) std::make_shared<Session>(std::move(socket), router, options)->run();
      accept();
    });
  }
};

HttpServer::HttpServer(Router router, ServerOptions options) : impl_(new Impl{std::move(router), std::move(options)}) {}

HttpServer::~HttpServer() { stop(); }

Result<void> HttpServer::start() {
  auto& im = *impl_;
  if (im.started) return fail(errc::busy, "the server is already started");
  beast::error_code ec;
  const auto address = asio::ip::make_address(im.options.address, ec);
  if (ec) return fail(errc::invalid_argument, fmt::format("\"{}\" is not an IP address", im.options.address));
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(im.options.port));
  im.acceptor.emplace(im.io);
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
  im.accept();
  const int n = std::max(1, im.options.threads);
  for (int i = 0; i < n; ++i) im.threads.emplace_back([&im] { im.io.run(); });
  im.started = true;
  return {};
}

int HttpServer::port() const noexcept { return impl_->port.load(); }

void HttpServer::stop() {
  auto& im = *impl_;
  if (!im.started) return;
  asio::post(im.io, [&im] {
    beast::error_code ec;
    im.acceptor->close(ec);
  });
  im.io.stop();
  for (auto& t : im.threads) t.join();
  im.threads.clear();
  im.started = false;
}

}  // namespace automation::runtime
