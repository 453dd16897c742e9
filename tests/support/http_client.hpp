#pragma once
// One HTTP call to a server the test started on 127.0.0.1 (the library's own client).
#include "detail/http_client.hpp"

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace automation::test {

/// `method` `path` on 127.0.0.1:`port`; `expect`: the statuses that are an answer rather than an
/// error (empty: any 2xx).
inline Result<detail::HttpAnswer> http_call(int port, std::string method, std::string path, std::string body = {},
                                            std::vector<std::pair<std::string, std::string>> headers = {},
                                            std::chrono::milliseconds timeout = std::chrono::seconds(30), std::vector<int> expect = {}) {
  detail::HttpCall c;
  c.method = std::move(method);
  c.url = fmt::format("http://127.0.0.1:{}{}", port, path);
  c.body = std::move(body);
  c.headers = std::move(headers);
  c.timeout = timeout;
  c.expect_status = std::move(expect);
  const std::atomic<bool> never{false};
  return detail::perform_http(c, never);
}

}  // namespace automation::test
