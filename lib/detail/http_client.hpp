#pragma once
// One HTTP or HTTPS request, performed synchronously with a timeout: the client behind workflow
// "http" steps and the forecaster's LLM backend. Boost.Beast, Asio and OpenSSL live in
// http_client.cpp only.
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>

#include <atomic>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace automation::detail {

struct HttpCall {
  std::string method = "GET";
  std::string url;  // http://host[:port]/path or https://host[:port]/path
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::vector<int> expect_status;  // empty: any 2xx
  Millis timeout{30'000};
  // HTTPS: the peer's certificate must chain to the system's trust store or to this PEM file and
  // name the host (or IP address) of the URL.
  std::string ca_file;
  // The URL as errors show it (default: url); for a URL that carries a secret, redact_url(url).
  std::string shown_url;
  // Non-empty: connect to this unix socket instead of the URL's host (as curl --unix-socket; the
  // Docker Engine API at /var/run/docker.sock). The URL still gives the path and the Host header.
  std::string unix_socket;
};

// scheme://host[:port]/... for a URL with a path or query (which often carries a secret, as in a
// webhook's), else the URL as it is.
std::string redact_url(std::string_view url);

struct HttpAnswer {
  int status = 0;
  std::string body;    // a larger body than 1 MiB fails the call (errc::unavailable)
  std::string server;  // the Server header, at most 200 characters
  bool accepted = false;
};

// errc::invalid_argument for a bad URL, errc::unavailable when the server cannot be reached or
// its certificate is not trusted,
// errc::timeout past the timeout, errc::cancelled when `cancel` is set.
Result<HttpAnswer> perform_http(const HttpCall& call, const std::atomic<bool>& cancel);

}  // namespace automation::detail
