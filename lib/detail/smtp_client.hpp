#pragma once
// Sends one message over SMTP (RFC 5321): EHLO (HELO if refused), MAIL FROM, RCPT TO for each
// recipient, DATA with dot-stuffing, QUIT; plain TCP with a timeout on every step. For a relay on
// the local network or localhost (no TLS or authentication yet: see docs/metrics.md).
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace automation::detail {

struct SmtpMessage {
  std::string host;
  int port = 25;
  std::string helo;  // the name given in EHLO
  std::string from;
  std::vector<std::string> to;
  std::string data;  // the RFC 5322 message, lines ending in \r\n or \n
  Millis timeout{30'000};
};

struct SmtpAnswer {
  int code = 0;       // the server's reply to the end of DATA
  std::string reply;  // its text
};

// An address as MAIL FROM and RCPT TO take it: local@domain, without brackets, spaces, commas or
// line breaks.
bool is_bare_address(std::string_view address) noexcept;

// errc::unavailable when the server cannot be reached or answers with a 4xx (temporary) code,
// errc::invalid_argument for a 5xx (permanent) answer, errc::timeout past the timeout.
Result<SmtpAnswer> send_smtp(const SmtpMessage& message);

}  // namespace automation::detail
