#include "detail/smtp_client.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace automation::detail {

namespace {

class Connection {
 public:
  Connection(const SmtpMessage& m) : m_(m), deadline_(std::chrono::steady_clock::now() + m.timeout) {}
  ~Connection() {
    if (fd_ >= 0) ::close(fd_);
  }

  Result<void> connect() {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    const auto port = std::to_string(m_.port);
    if (int rc = ::getaddrinfo(m_.host.c_str(), port.c_str(), &hints, &res); rc != 0)
      return fail(errc::unavailable, fmt::format("SMTP server {}: {}", m_.host, ::gai_strerror(rc)));
    std::string last = "no address";
    for (auto* a = res; a; a = a->ai_next) {
      int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) continue;
      if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0 || errno == EINPROGRESS) {
        auto w = wait(fd, POLLOUT);
        int err = 0;
        socklen_t len = sizeof err;
        if (w && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
          fd_ = fd;
          break;
        }
        if (!w && w.error().code == errc::timeout) {
          ::close(fd);
          ::freeaddrinfo(res);
          return w.error();
        }
        last = std::strerror(err ? err : errno);
      } else {
        last = std::strerror(errno);
      }
      ::close(fd);
    }
    ::freeaddrinfo(res);
    if (fd_ < 0) return fail(errc::unavailable, fmt::format("cannot connect to SMTP server {}:{}: {}", m_.host, m_.port, last));
    return {};
  }

  // One reply (possibly multi-line: "250-..." lines then "250 ...").
  Result<std::pair<int, std::string>> reply() {
    std::string text;
    for (;;) {
      auto nl = buf_.find('\n');
      while (nl == std::string::npos) {
        if (buf_.size() > 64 * 1024) return fail(errc::unavailable, "SMTP server sent an over-long reply line");
        if (auto w = wait(fd_, POLLIN); !w) return w.error();
        char chunk[4096];
        const auto n = ::recv(fd_, chunk, sizeof chunk, 0);
        if (n == 0) return fail(errc::unavailable, fmt::format("SMTP server {}:{} closed the connection", m_.host, m_.port));
        if (n < 0) {
          if (errno == EINTR || errno == EAGAIN) continue;
          return fail(errc::unavailable, fmt::format("SMTP read: {}", std::strerror(errno)));
        }
        buf_.append(chunk, static_cast<std::size_t>(n));
        nl = buf_.find('\n');
      }
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.size() < 3 || line[0] < '2' || line[0] > '5')
        return fail(errc::unavailable, fmt::format("SMTP server sent a malformed reply \"{}\"", line));
      if (!text.empty()) text += ' ';
      text += line.size() > 4 ? line.substr(4) : "";
      if (line.size() == 3 || line[3] == ' ') return std::pair{std::stoi(line.substr(0, 3)), text};
    }
  }

  Result<void> send(std::string_view data) {
    while (!data.empty()) {
      if (auto w = wait(fd_, POLLOUT); !w) return w.error();
      const auto n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return fail(errc::unavailable, fmt::format("SMTP write: {}", std::strerror(errno)));
      }
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return {};
  }

  // Sends a command (without CRLF) and expects a reply in [lo, hi].
  Result<std::pair<int, std::string>> command(const std::string& cmd, int lo, int hi, std::string_view step) {
    if (!cmd.empty())
      if (auto s = send(cmd + "\r\n"); !s) return s.error();
    auto r = reply();
    if (!r) return r.error();
    if (r->first < lo || r->first > hi) {
      const auto msg = fmt::format("SMTP server {}:{} refused {}: {} {}", m_.host, m_.port, step, r->first, r->second);
      return fail(r->first >= 500 ? errc::invalid_argument : errc::unavailable, msg);
    }
    return r;
  }

 private:
  Result<void> wait(int fd, short events) {
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - std::chrono::steady_clock::now()).count();
      if (left <= 0)
        return fail(errc::timeout, fmt::format("SMTP server {}:{} did not answer within {} ms", m_.host, m_.port, m_.timeout.count()));
      pollfd p{fd, events, 0};
      const int n = ::poll(&p, 1, static_cast<int>(left));
      if (n > 0) return {};
      if (n < 0 && errno != EINTR) return fail(errc::unavailable, fmt::format("SMTP poll: {}", std::strerror(errno)));
    }
  }

  const SmtpMessage& m_;
  std::chrono::steady_clock::time_point deadline_;
  int fd_ = -1;
  std::string buf_;
};

// CRLF line ends, and a '.' doubled at the start of a line (RFC 5321 4.5.2).
std::string dot_stuffed(std::string_view data) {
  std::string out;
  out.reserve(data.size() + data.size() / 40);
  bool line_start = true;
  for (std::size_t i = 0; i < data.size(); ++i) {
    const char c = data[i];
    if (line_start && c == '.') out += '.';
    if (c == '\r') {  // CRLF stays; a bare CR (not allowed in DATA) becomes a line end
      out += "\r\n";
      if (i + 1 < data.size() && data[i + 1] == '\n') ++i;
      line_start = true;
      continue;
    }
    if (c == '\n') {
      if (out.empty() || out.back() != '\r') out += '\r';
      out += '\n';
      line_start = true;
      continue;
    }
    out += c;
    line_start = false;
  }
  if (!out.empty() && out.back() != '\n') out += "\r\n";
  return out;
}

}  // namespace

bool is_bare_address(std::string_view a) noexcept {
  const auto at = a.find('@');
  return at != std::string_view::npos && at > 0 && at + 1 < a.size() && a.find_first_of("<>\r\n\t ,") == std::string_view::npos;
}

Result<SmtpAnswer> send_smtp(const SmtpMessage& m) {
  if (m.host.empty()) return fail(errc::invalid_argument, "SMTP: no server host");
  if (m.to.empty()) return fail(errc::invalid_argument, "SMTP: no recipients");
  if (!is_bare_address(m.from)) return fail(errc::invalid_argument, fmt::format("SMTP: invalid sender \"{}\"", m.from));
  for (const auto& t : m.to)
    if (!is_bare_address(t)) return fail(errc::invalid_argument, fmt::format("SMTP: invalid recipient \"{}\"", t));
  Connection c(m);
  if (auto r = c.connect(); !r) return r.error();
  if (auto r = c.command("", 220, 220, "the connection"); !r) return r.error();
  const auto helo = m.helo.empty() ? std::string("localhost") : m.helo;
  if (auto r = c.command("EHLO " + helo, 250, 250, "EHLO"); !r) {
    // Only a server that does not know EHLO (a 5xx answer) is greeted with HELO instead.
    if (r.error().code != errc::invalid_argument) return r.error();
    if (auto h = c.command("HELO " + helo, 250, 250, "HELO"); !h) return h.error();
  }
  if (auto r = c.command(fmt::format("MAIL FROM:<{}>", m.from), 250, 250, "the sender"); !r) return r.error();
  for (const auto& t : m.to)
    if (auto r = c.command(fmt::format("RCPT TO:<{}>", t), 250, 251, "recipient " + t); !r) return r.error();
  if (auto r = c.command("DATA", 354, 354, "DATA"); !r) return r.error();
  if (auto s = c.send(dot_stuffed(m.data) + ".\r\n"); !s) return s.error();
  auto done = c.command("", 250, 250, "the message");
  if (!done) return done.error();
  (void)c.command("QUIT", 221, 221, "QUIT");  // the message is accepted whatever QUIT answers
  return SmtpAnswer{done->first, done->second};
}

}  // namespace automation::detail
