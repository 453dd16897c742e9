#pragma once
// A small real SMTP server on 127.0.0.1, port 0, for tests: it speaks EHLO/HELO, MAIL, RCPT, DATA
// (undoing dot-stuffing), RSET, NOOP and QUIT, one connection at a time, and keeps every accepted
// message. refuse_next(n, code) answers the end of the next n messages' DATA with `code` instead.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace automation::test {

struct Mail {
  std::string helo, from;
  std::vector<std::string> to;
  std::string data;  // with CRLF line ends, dot-stuffing undone, without the final "."
};

class SmtpServer {
 public:
  SmtpServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 8) != 0) {
      ::close(fd_);
      throw std::runtime_error("smtp bind");
    }
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~SmtpServer() {
    stopping_ = true;
    ::shutdown(fd_, SHUT_RDWR);  // wakes accept4; the descriptor is closed once the thread is done with it
    thread_.join();
    ::close(fd_);
  }
  SmtpServer(const SmtpServer&) = delete;
  SmtpServer& operator=(const SmtpServer&) = delete;

  int port() const { return port_; }
  void refuse_next(int n, int code = 451) {
    std::lock_guard l(mu_);
    refuse_ = n;
    refuse_code_ = code;
  }
  std::vector<Mail> mails() {
    std::lock_guard l(mu_);
    return mails_;
  }

 private:
  void serve() {
    for (;;) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        if (stopping_) return;
        continue;
      }
      session(c);
      ::close(c);
    }
  }

  static void put(int c, const std::string& s) { (void)::send(c, s.data(), s.size(), MSG_NOSIGNAL); }

  static bool line(int c, std::string& buf, std::string& out) {
    for (;;) {
      auto nl = buf.find("\r\n");
      if (nl != std::string::npos) {
        out = buf.substr(0, nl);
        buf.erase(0, nl + 2);
        return true;
      }
      char chunk[4096];
      auto n = ::recv(c, chunk, sizeof chunk, 0);
      if (n <= 0) return false;
      buf.append(chunk, static_cast<std::size_t>(n));
    }
  }

  void session(int c) {
    std::string buf, l;
    Mail m;
    put(c, "220 test SMTP ready\r\n");
    while (line(c, buf, l)) {
      const auto verb = l.substr(0, 4);
      if (verb == "EHLO" || verb == "HELO") {
        m.helo = l.size() > 5 ? l.substr(5) : "";
        put(c, verb == "EHLO" ? "250-test greets you\r\n250 8BITMIME\r\n" : "250 test\r\n");
      } else if (l.rfind("MAIL FROM:<", 0) == 0) {
        m.from = l.substr(11, l.find('>') - 11);
        put(c, "250 OK\r\n");
      } else if (l.rfind("RCPT TO:<", 0) == 0) {
        m.to.push_back(l.substr(9, l.find('>') - 9));
        put(c, "250 OK\r\n");
      } else if (verb == "DATA") {
        put(c, "354 go ahead\r\n");
        std::string d;
        while (line(c, buf, l) && l != ".") d += (l.rfind("..", 0) == 0 ? l.substr(1) : l) + "\r\n";
        m.data = d;
        std::lock_guard g(mu_);
        if (refuse_ > 0) {
          --refuse_;
          put(c, std::to_string(refuse_code_) + " try again later\r\n");
        } else {
          mails_.push_back(m);
          put(c, "250 queued as " + std::to_string(mails_.size()) + "\r\n");
        }
        m = Mail{m.helo};
      } else if (verb == "QUIT") {
        put(c, "221 bye\r\n");
        return;
      } else if (verb == "RSET" || verb == "NOOP") {
        put(c, "250 OK\r\n");
      } else {
        put(c, "502 unknown command\r\n");
      }
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<Mail> mails_;
  int refuse_ = 0, refuse_code_ = 451;
};

}  // namespace automation::test
