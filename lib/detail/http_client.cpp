#include "detail/http_client.hpp"

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <algorithm>
#include <charconv>
#include <optional>

namespace automation::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {
struct Url {
  bool tls = false;
  std::string host, port, target;
};

// Errors show the URL as `shown`.
Result<Url> parse_url(const std::string& url, std::string_view shown) {
  Url u;
  std::string_view rest(url);
  if (rest.rfind("https://", 0) == 0) {
    u.tls = true;
    rest.remove_prefix(8);
  } else if (rest.rfind("http://", 0) == 0) {
    rest.remove_prefix(7);
  } else {
    return fail(errc::invalid_argument, fmt::format("\"{}\" is not an http:// or https:// URL", shown));
  }
  const auto end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  u.target = end == std::string_view::npos ? "/" : std::string(rest.substr(end));
  if (u.target.front() != '/') u.target.insert(0, "/");  // "http://h?x=1"
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {  // an IPv6 literal: [::1] or [::1]:8443
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return fail(errc::invalid_argument, fmt::format("\"{}\": unclosed '[' in the host", shown));
    u.host = std::string(authority.substr(1, close - 1));
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return fail(errc::invalid_argument, fmt::format("\"{}\": bad host", shown));
      port = authority.substr(close + 2);
    }
  } else if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    u.host = std::string(authority.substr(0, colon));
    port = authority.substr(colon + 1);
  } else {
    u.host = std::string(authority);
  }
  if (u.host.empty()) return fail(errc::invalid_argument, fmt::format("\"{}\" has no host", shown));
  if (port.data() == nullptr) {
    u.port = u.tls ? "443" : "80";
  } else {
    u.port = std::string(port);
    int number = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
    if (ec != std::errc() || p != port.data() + port.size() || number <= 0 || number > 65535)
      return fail(errc::invalid_argument, fmt::format("\"{}\": bad port \"{}\"", shown, u.port));
  }
  return u;
}

using unix_stream = beast::basic_stream<asio::local::stream_protocol>;

// connect -> write -> read over a unix socket, recording the stage for errors.
void start_unix(unix_stream& stream, const std::string& path, http::request<http::string_body>& req, beast::flat_buffer& buffer,
                http::response_parser<http::string_body>& parser, beast::error_code& failure, std::string& stage) {
  stage = "connect to " + path;
  stream.async_connect(asio::local::stream_protocol::endpoint(path), [&](beast::error_code ec) {
    if (ec) {
      failure = ec;
      return;
    }
    stage = "send the request";
    http::async_write(stream, req, [&](beast::error_code ec2, std::size_t) {
      if (ec2) {
        failure = ec2;
        return;
      }
      stage = "read the response";
      http::async_read(stream, buffer, parser, [&](beast::error_code ec3, std::size_t) { failure = ec3; });
    });
  });
}

// resolve -> connect -> (TLS handshake) -> write -> read, recording the stage for errors.
template <class Stream>
void start(Stream& stream, asio::ip::tcp::resolver& resolver, const Url& url, http::request<http::string_body>& req,
           beast::flat_buffer& buffer, http::response_parser<http::string_body>& parser, beast::error_code& failure, std::string& stage) {
  auto send = [&] {
    stage = "send the request";
    http::async_write(stream, req, [&](beast::error_code ec, std::size_t) {
      if (ec) {
        failure = ec;
        return;
      }
      stage = "read the response";
      http::async_read(stream, buffer, parser, [&](beast::error_code ec2, std::size_t) { failure = ec2; });
    });
  };
  resolver.async_resolve(url.host, url.port, [&, send](beast::error_code ec, asio::ip::tcp::resolver::results_type results) {
    if (ec) {
      failure = ec;
      return;
    }
    stage = "connect";
    beast::get_lowest_layer(stream).async_connect(results, [&, send](beast::error_code ec2, const asio::ip::tcp::endpoint&) {
      if (ec2) {
        failure = ec2;
        return;
      }
      if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
        send();
      } else {
        stage = "complete the TLS handshake";
        stream.async_handshake(asio::ssl::stream_base::client, [&, send](beast::error_code ec3) {
          if (ec3) {
            failure = ec3;
            return;
          }
          send();
        });
      }
    });
  });
}
}  // namespace

std::string redact_url(std::string_view url) {
  const auto scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  auto path = url.find_first_of("/?#", scheme + 3);
  if (path == std::string_view::npos) path = url.size();
  // user:password@ is a secret too.
  auto host_start = scheme + 3;
  if (const auto at = url.substr(0, path).rfind('@'); at != std::string_view::npos && at > scheme) host_start = at + 1;
  std::string out(url.substr(0, scheme + 3));
  if (host_start != scheme + 3) out += "***@";
  out += url.substr(host_start, path - host_start);
  if (path + 1 < url.size())
    out += "/...";
  else
    out += url.substr(path);
  return out;
}

Result<HttpAnswer> perform_http(const HttpCall& call, const std::atomic<bool>& cancel) {
  const std::string_view shown = call.shown_url.empty() ? std::string_view(call.url) : std::string_view(call.shown_url);
  auto url = parse_url(call.url, shown);
  if (!url) return url.error();
  asio::io_context io;
  asio::ip::tcp::resolver resolver(io);
  http::response_parser<http::string_body> parser;
  parser.body_limit(1 << 20);
  beast::flat_buffer buffer;
  http::request<http::string_body> req;
  req.method_string(call.method);                // any token; an unknown verb is the server's to refuse
  if (call.method == "HEAD") parser.skip(true);  // a HEAD answer has no body whatever its length says
  req.target(url->target);
  req.version(11);
  const bool default_port = url->port == (url->tls ? "443" : "80");
  const std::string host = url->host.find(':') == std::string::npos ? url->host : "[" + url->host + "]";
  req.set(http::field::host, default_port ? host : host + ":" + url->port);
  req.set(http::field::user_agent, "automation");
  req.set(http::field::connection, "close");
  for (const auto& [k, v] : call.headers) req.set(k, v);
  if (!call.body.empty() || call.method == "POST" || call.method == "PUT" || call.method == "PATCH") {
    req.body() = call.body;
    if (req.find(http::field::content_type) == req.end()) {
      const auto first = call.body.find_first_not_of(" \t\r\n");
      const bool json = first != std::string::npos && (call.body[first] == '{' || call.body[first] == '[');
      req.set(http::field::content_type, json ? "application/json" : "text/plain; charset=utf-8");
    }
    req.prepare_payload();
  }
  beast::error_code failure;
  std::string stage = "resolve";
  std::optional<beast::tcp_stream> plain;
  std::optional<asio::ssl::context> tls_context;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  std::optional<unix_stream> local;
  if (!call.unix_socket.empty()) {
    if (url->tls) return fail(errc::invalid_argument, fmt::format("{}: https over a unix socket is not supported", shown));
    local.emplace(io);
    local->expires_after(call.timeout);
    start_unix(*local, call.unix_socket, req, buffer, parser, failure, stage);
  } else if (url->tls) {
    tls_context.emplace(asio::ssl::context::tls_client);
    beast::error_code ec;
    tls_context->set_default_verify_paths(ec);
    if (!call.ca_file.empty()) {
      tls_context->load_verify_file(call.ca_file, ec);
      if (ec) return fail(errc::invalid_argument, fmt::format("{}: cannot load the CA file: {}", call.ca_file, ec.message()));
    }
    tls_context->set_verify_mode(asio::ssl::verify_peer);
    tls.emplace(io, *tls_context);
    boost::system::error_code not_ip;
    asio::ip::make_address(url->host, not_ip);
    if (not_ip) SSL_set_tlsext_host_name(tls->native_handle(), url->host.c_str());  // SNI for names only
    tls->set_verify_callback(asio::ssl::host_name_verification(url->host));
    beast::get_lowest_layer(*tls).expires_after(call.timeout);
    start(*tls, resolver, *url, req, buffer, parser, failure, stage);
  } else {
    plain.emplace(io);
    plain->expires_after(call.timeout);
    start(*plain, resolver, *url, req, buffer, parser, failure, stage);
  }
  // Run in slices so a cancel is noticed.
  const auto deadline = std::chrono::steady_clock::now() + call.timeout;
  while (!io.stopped()) {
    io.run_for(std::chrono::milliseconds(50));
    if (cancel.load()) {
      io.stop();
      return fail(errc::cancelled, fmt::format("{} {}: cancelled", call.method, shown));
    }
    if (std::chrono::steady_clock::now() > deadline + std::chrono::seconds(1)) {
      io.stop();
      failure = beast::error::timeout;
    }
  }
  if (failure == beast::error::timeout)
    return fail(errc::timeout, fmt::format("{} {}: no answer within {} ms ({})", call.method, shown, call.timeout.count(), stage));
  if (failure) return fail(errc::unavailable, fmt::format("{} {}: cannot {}: {}", call.method, shown, stage, failure.message()));
  HttpAnswer a;
  a.status = static_cast<int>(parser.get().result_int());
  a.body = std::move(parser.get().body());
  if (auto it = parser.get().find(http::field::server); it != parser.get().end()) a.server = std::string(it->value().substr(0, 200));
  a.accepted = call.expect_status.empty()
                   ? a.status >= 200 && a.status < 300
                   : std::find(call.expect_status.begin(), call.expect_status.end(), a.status) != call.expect_status.end();
  return a;
}

}  // namespace automation::detail
