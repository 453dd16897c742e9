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

/// `method` `path` on 127.0.0.1:`port`: the answer whatever its status; an error only when there is
/// none (no connection, a timeout).
inline Result<detail::HttpAnswer> http_call(int port, std::string method, std::string path, std::string body = {},
                                            std::vector<std::pair<std::string, std::string>> headers = {},
                                            std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  detail::HttpCall c;
  c.method = std::move(method);
  c.url = fmt::format("http://127.0.0.1:{}{}", port, path);
  c.body = std::move(body);
  c.headers = std::move(headers);
  c.timeout = timeout;
  const std::atomic<bool> never{false};
  return detail::perform_http(c, never);
}

}  // namespace automation::test
