#pragma once
// A minimal WebSocket client (RFC 6455) over a plain socket, for tests: the upgrade request, then
// the server's frames (unmasked) read one at a time with a deadline. Enough to check what a server
// sends; it never sends data frames itself.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace automation::test {

class WebSocketClient {
 public:
  /// Connects and sends the upgrade; `head()` is the server's answer (its status line and headers).
  WebSocketClient(int port, const std::string& path, const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return;
    std::string req = "GET " + path +
                      " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
    req += "\r\n";
    if (::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) return;
    while (buffer_.find("\r\n\r\n") == std::string::npos)
      if (!fill(std::chrono::seconds(10))) return;
    const auto end = buffer_.find("\r\n\r\n") + 4;
    head_ = buffer_.substr(0, end);
    buffer_.erase(0, end);
  }
  ~WebSocketClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  WebSocketClient(const WebSocketClient&) = delete;
  WebSocketClient& operator=(const WebSocketClient&) = delete;

  const std::string& head() const { return head_; }
  bool upgraded() const { return head_.rfind("HTTP/1.1 101", 0) == 0; }

  struct Frame {
    int opcode = 0;  ///< 0 continuation, 1 text, 2 binary, 8 close, 9 ping, 10 pong
    std::string payload;
    bool fin = true;  ///< the last frame of its message
  };
  /// The next frame within `timeout`; nullopt on a timeout or when the connection ended.
  std::optional<Frame> frame(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    auto need = [&](std::size_t n) {
      while (buffer_.size() < n) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0 || !fill(left)) return false;
      }
      return true;
    };
    if (!need(2)) return std::nullopt;
    const auto b0 = static_cast<unsigned char>(buffer_[0]), b1 = static_cast<unsigned char>(buffer_[1]);
    std::size_t header = 2;
    std::uint64_t len = b1 & 0x7f;
    if (len == 126) {
      if (!need(4)) return std::nullopt;
      len = (static_cast<unsigned char>(buffer_[2]) << 8) | static_cast<unsigned char>(buffer_[3]);
      header = 4;
    } else if (len == 127) {
      if (!need(10)) return std::nullopt;
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<unsigned char>(buffer_[2 + i]);
      header = 10;
    }
    if (!need(header + len)) return std::nullopt;
    Frame f{b0 & 0x0f, buffer_.substr(header, len), (b0 & 0x80) != 0};
    buffer_.erase(0, header + len);
    if (f.opcode == 8) {  // a close is answered with a close (masked, as a client's frames are)
      const unsigned char reply[] = {0x88, 0x80, 0, 0, 0, 0};
      (void)::send(fd_, reply, sizeof reply, MSG_NOSIGNAL);
      ::shutdown(fd_, SHUT_WR);  // and the TCP connection, as a browser does
    }
    return f;
  }
  /// Sends a text message (masked, as a client must).
  bool send_text(const std::string& text) {
    std::string f;
    f += static_cast<char>(0x81);
    const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    if (text.size() < 126) {
      f += static_cast<char>(0x80 | text.size());
    } else if (text.size() < 65536) {
      f += static_cast<char>(0x80 | 126);
      f += static_cast<char>(text.size() >> 8);
      f += static_cast<char>(text.size() & 0xff);
    } else {
      f += static_cast<char>(0x80 | 127);
      for (int i = 7; i >= 0; --i) f += static_cast<char>((static_cast<std::uint64_t>(text.size()) >> (8 * i)) & 0xff);
    }
    f.append(reinterpret_cast<const char*>(mask), 4);
    for (std::size_t i = 0; i < text.size(); ++i) f += static_cast<char>(text[i] ^ mask[i % 4]);
    return ::send(fd_, f.data(), f.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(f.size());
  }
  /// The next text message, skipping control frames; nullopt on a timeout, a close or the end.
  std::optional<std::string> text(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::optional<std::string> message;  // a fragmented one, so far
    for (;;) {
      auto f = frame(timeout);
      if (!f || f->opcode == 8) return std::nullopt;
      if (f->opcode == 1)
        message = f->payload;
      else if (f->opcode == 0 && message)
        *message += f->payload;
      else
        continue;  // ping, pong, binary
      if (f->fin) return message;
    }
  }

 private:
  bool fill(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
    char buf[8192];
    const auto n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return false;
    buffer_.append(buf, static_cast<std::size_t>(n));
    return true;
  }
  int fd_ = -1;
  std::string head_, buffer_;
};

}  // namespace automation::test
