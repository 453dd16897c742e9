#pragma once
// A loopback port that was free a moment ago: bound to port 0, read back, closed. For a peer the
// test cannot start on port 0 itself (a Prometheus server), or for a port nothing listens on.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace automation::test {

inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace automation::test
