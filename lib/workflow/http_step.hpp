#pragma once
// The HTTP request of an "http" step, performed synchronously with a timeout (Boost.Beast lives
// in http_step.cpp only).
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>

#include <atomic>
#include <string>
#include <utility>
#include <vector>

namespace automation::workflow {

struct HttpCall {
  std::string method = "GET";
  std::string url;  // http://host[:port]/path
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::vector<int> expect_status;  // empty: any 2xx
  Millis timeout{30'000};
};

struct HttpAnswer {
  int status = 0;
  std::string body;  // at most 1 MiB is kept
  bool accepted = false;
};

// errc::invalid_argument for a bad URL, errc::unavailable when the server cannot be reached,
// errc::timeout past the timeout, errc::cancelled when `cancel` is set.
Result<HttpAnswer> perform_http(const HttpCall& call, const std::atomic<bool>& cancel);

}  // namespace automation::workflow
