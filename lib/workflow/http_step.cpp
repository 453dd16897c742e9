#include "workflow/http_step.hpp"

#include <fmt/format.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <charconv>

namespace automation::workflow {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {
struct Url {
  std::string host, port, target;
};

Result<Url> parse_url(const std::string& url) {
  constexpr std::string_view kScheme = "http://";
  if (url.rfind("https://", 0) == 0)
    return fail(errc::invalid_argument,
                fmt::format("{}: https is not supported by http steps yet (use http:// or a command step with curl)", url));
  if (url.rfind(kScheme, 0) != 0) return fail(errc::invalid_argument, fmt::format("\"{}\" is not an http:// URL", url));
  std::string_view rest(url);
  rest.remove_prefix(kScheme.size());
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  Url u;
  u.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (authority.empty()) return fail(errc::invalid_argument, fmt::format("\"{}\" has no host", url));
  const auto colon = authority.rfind(':');
  if (colon != std::string_view::npos && authority.find(']') == std::string_view::npos) {
    u.host = std::string(authority.substr(0, colon));
    u.port = std::string(authority.substr(colon + 1));
    int port = 0;
    auto [p, ec] = std::from_chars(u.port.data(), u.port.data() + u.port.size(), port);
    if (ec != std::errc() || p != u.port.data() + u.port.size() || port <= 0 || port > 65535)
      return fail(errc::invalid_argument, fmt::format("\"{}\": bad port \"{}\"", url, u.port));
  } else {
    u.host = std::string(authority);
    u.port = "80";
  }
  return u;
}
}  // namespace

Result<HttpAnswer> perform_http(const HttpCall& call, const std::atomic<bool>& cancel) {
  auto url = parse_url(call.url);
  if (!url) return url.error();
  asio::io_context io;
  beast::tcp_stream stream(io);
  asio::ip::tcp::resolver resolver(io);
  http::response_parser<http::string_body> parser;
  parser.body_limit(1 << 20);
  beast::flat_buffer buffer;
  http::request<http::string_body> req;
  req.method(http::string_to_verb(call.method));
  req.target(url->target);
  req.version(11);
  req.set(http::field::host, url->host + ":" + url->port);
  req.set(http::field::user_agent, "automation-workflow");
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
  stream.expires_after(call.timeout);
  resolver.async_resolve(url->host, url->port, [&](beast::error_code ec, asio::ip::tcp::resolver::results_type results) {
    if (ec) {
      failure = ec;
      return;
    }
    stage = "connect";
    stream.async_connect(results, [&](beast::error_code ec2, const asio::ip::tcp::endpoint&) {
      if (ec2) {
        failure = ec2;
        return;
      }
      stage = "send the request";
      http::async_write(stream, req, [&](beast::error_code ec3, std::size_t) {
        if (ec3) {
          failure = ec3;
          return;
        }
        stage = "read the response";
        http::async_read(stream, buffer, parser, [&](beast::error_code ec4, std::size_t) { failure = ec4; });
      });
    });
  });
  // Run in slices so a cancel is noticed.
  const auto deadline = std::chrono::steady_clock::now() + call.timeout;
  while (!io.stopped()) {
    io.run_for(std::chrono::milliseconds(50));
    if (cancel.load()) {
      io.stop();
      return fail(errc::cancelled, fmt::format("{} {}: cancelled", call.method, call.url));
    }
    if (std::chrono::steady_clock::now() > deadline + std::chrono::seconds(1)) {
      io.stop();
      failure = beast::error::timeout;
    }
  }
  if (failure == beast::error::timeout)
    return fail(errc::timeout, fmt::format("{} {}: no answer within {} ms ({})", call.method, call.url, call.timeout.count(), stage));
  if (failure) return fail(errc::unavailable, fmt::format("{} {}: cannot {}: {}", call.method, call.url, stage, failure.message()));
  HttpAnswer a;
  a.status = static_cast<int>(parser.get().result_int());
  a.body = std::move(parser.get().body());
  a.accepted = call.expect_status.empty()
                   ? a.status >= 200 && a.status < 300
                   : std::find(call.expect_status.begin(), call.expect_status.end(), a.status) != call.expect_status.end();
  return a;
}

}  // namespace automation::workflow
