#pragma once
// A small real HTTP (or HTTPS) server on 127.0.0.1, port 0, for tests: each request is answered by
// a handler (status 0 = hold the connection without answering until the server stops).
#include "support/process.hpp"

#include <automation/core/json.hpp>

#include <boost/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace automation::test {

struct HttpReply {
  int status = 200;
  std::string body;
  std::string extra_headers;  ///< sent as they are: "Server: demo/1.0\r\n"
};

/// An OpenAI-style chat-completions reply whose message content is `content`.
inline std::string chat_completion(const std::string& content) {
  return automation::json::dump(boost::json::object{
      {"id", "chatcmpl-1"},
      {"object", "chat.completion"},
      {"choices",
       boost::json::array{boost::json::object{
           {"index", 0}, {"message", boost::json::object{{"role", "assistant"}, {"content", content}}}, {"finish_reason", "stop"}}}}});
}

/// A self-signed certificate for 127.0.0.1 (cert.pem, key.pem in `dir`), made by the openssl tool.
inline std::pair<std::string, std::string> make_self_signed(const std::filesystem::path& dir) {
  const auto cert = (dir / "cert.pem").string(), key = (dir / "key.pem").string();
  auto r = run_process({OPENSSL_PATH, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
                        "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"});
  if (r.exit_code != 0) throw std::runtime_error("openssl req failed: " + r.err);
  return {cert, key};
}

/// Where an HttpServer listens instead of 127.0.0.1: a unix socket (a fake Docker Engine API).
struct UnixSocket {
  std::string path;
};

class HttpServer {
 public:
  using Handler = std::function<HttpReply(const std::string& request)>;

  HttpServer(UnixSocket where, Handler handler) : handler_(std::move(handler)) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (where.path.size() >= sizeof a.sun_path) throw std::runtime_error("unix socket path too long: " + where.path);
    std::copy(where.path.begin(), where.path.end(), a.sun_path);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("cannot bind " + where.path);
    ::listen(fd_, 16);
    thread_ = std::thread([this] { serve(); });
  }

  explicit HttpServer(Handler handler, std::string cert = {}, std::string key = {}) : handler_(std::move(handler)) {
    if (!cert.empty()) {
      tls_ = SSL_CTX_new(TLS_server_method());
      if (SSL_CTX_use_certificate_file(tls_, cert.c_str(), SSL_FILETYPE_PEM) != 1 ||
          SSL_CTX_use_PrivateKey_file(tls_, key.c_str(), SSL_FILETYPE_PEM) != 1)
        throw std::runtime_error("cannot load the test certificate");
    }
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::listen(fd_, 16);
    thread_ = std::thread([this] { serve(); });
  }
  /// Answers every request with `status` and `body`.
  HttpServer(int status, std::string body) : HttpServer([status, body](const std::string&) { return HttpReply{status, body}; }) {}

  ~HttpServer() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
    if (tls_) SSL_CTX_free(tls_);
  }
  int port() const { return port_; }
  std::string url() const { return (tls_ ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(port_); }
  std::vector<std::string> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }
  /// The body of each request, in order.
  std::vector<std::string> bodies() {
    std::vector<std::string> out;
    for (const auto& r : requests()) {
      const auto end = r.find("\r\n\r\n");
      out.push_back(end == std::string::npos ? "" : r.substr(end + 4));
    }
    return out;
  }

 private:
  void serve() {
    for (;;) {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      SSL* ssl = nullptr;
      if (tls_) {
        ssl = SSL_new(tls_);
        SSL_set_fd(ssl, c);
        if (SSL_accept(ssl) <= 0) {  // e.g. the client refused our certificate
          SSL_free(ssl);
          ::close(c);
          continue;
        }
      }
      auto read_some = [&](char* buf, int n) { return ssl ? SSL_read(ssl, buf, n) : static_cast<int>(::read(c, buf, n)); };
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos) {
        const int n = read_some(buf, sizeof buf);
        if (n <= 0) break;
        req.append(buf, static_cast<std::size_t>(n));
      }
      const auto head_end = req.find("\r\n\r\n");
      std::size_t want = 0;
      for (const char* h : {"Content-Length: ", "content-length: "})
        if (auto cl = req.find(h); cl != std::string::npos) want = std::stoul(req.substr(cl + 16));
      while (head_end != std::string::npos && req.size() < head_end + 4 + want) {
        const int n = read_some(buf, sizeof buf);
        if (n <= 0) break;
        req.append(buf, static_cast<std::size_t>(n));
      }
      {
        std::lock_guard lock(mu_);
        requests_.push_back(req);
      }
      const HttpReply reply = handler_(req);
      if (reply.status == 0) {  // hold the connection until the server stops
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stopping_; });
      } else {
        const std::string resp = "HTTP/1.1 " + std::to_string(reply.status) + " X\r\n" + reply.extra_headers +
                                 "Content-Type: application/json\r\nContent-Length: " + std::to_string(reply.body.size()) +
                                 "\r\nConnection: close\r\n\r\n" + reply.body;
        if (ssl)
          SSL_write(ssl, resp.data(), static_cast<int>(resp.size()));
        else [[maybe_unused]]
          auto w = ::send(c, resp.data(), resp.size(), MSG_NOSIGNAL);  // no SIGPIPE if the client left
      }
      if (ssl) {
        SSL_shutdown(ssl);
        SSL_free(ssl);
      }
      ::close(c);
    }
  }

  Handler handler_;
  SSL_CTX* tls_ = nullptr;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::vector<std::string> requests_;
};

}  // namespace automation::test
