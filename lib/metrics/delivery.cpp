#include <automation/core/files.hpp>
#include <automation/core/ids.hpp>
#include <automation/core/json.hpp>
#include <automation/core/time.hpp>
#include <automation/metrics/delivery.hpp>

#include <detail/hash.hpp>
#include <detail/http_client.hpp>
#include <detail/log.hpp>
#include <detail/names.hpp>
#include <detail/smtp_client.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>

namespace automation::metrics {

namespace bj = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono;

std::string_view to_string(TargetKind k) noexcept {
  switch (k) {
    case TargetKind::file:
      return "file";
    case TargetKind::webhook:
      return "webhook";
    case TargetKind::email:
      return "email";
  }
  return "file";
}

namespace {

std::vector<std::string> split_recipients(std::string_view text) {
  const auto items = automation::detail::comma_list(text);
  return {items.begin(), items.end()};
}

std::string base64_lines(std::string_view in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t line = 0;
  for (std::size_t i = 0; i < in.size(); i += 3) {
    const auto b0 = static_cast<unsigned char>(in[i]);
    const auto b1 = i + 1 < in.size() ? static_cast<unsigned char>(in[i + 1]) : 0u;
    const auto b2 = i + 2 < in.size() ? static_cast<unsigned char>(in[i + 2]) : 0u;
    out += kAlphabet[b0 >> 2];
    out += kAlphabet[((b0 & 3) << 4) | (b1 >> 4)];
    out += i + 1 < in.size() ? kAlphabet[((b1 & 15) << 2) | (b2 >> 6)] : '=';
    out += i + 2 < in.size() ? kAlphabet[b2 & 63] : '=';
    if ((line += 4) >= 76) {
      out += "\r\n";
      line = 0;
    }
  }
  if (line) out += "\r\n";
  return out;
}

// "Mon, 30 Nov 2026 06:00:00 +0000" (RFC 5322 3.3).
std::string mail_date(TimePoint t) {
  const auto secs = floor<seconds>(t);
  const auto day = floor<days>(secs);
  const year_month_day ymd{day};
  const hh_mm_ss hms{secs - day};
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  return fmt::format("{}, {:02} {} {} {:02}:{:02}:{:02} +0000", kDays[weekday{day}.c_encoding()], unsigned(ymd.day()),
                     kMonths[unsigned(ymd.month()) - 1], int(ymd.year()), hms.hours().count(), hms.minutes().count(),
                     hms.seconds().count());
}

// A Subject header's value: control characters become spaces, a title longer than 200 bytes is cut
// (between characters) with "...", and one that is not plain ASCII is sent as RFC 2047 encoded
// words of at most 39 bytes each (64 characters, so "Subject: " and the first word stay under 76).
std::string subject_header(std::string_view title) {
  const auto continuation = [](char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; };
  // Cuts `text` to at most `n` bytes, not inside a character (a run of stray continuation bytes is
  // cut anywhere: it is no character).
  const auto cut = [&](std::string_view text, std::size_t n) {
    if (text.size() <= n) return text.size();
    std::size_t end = n;
    while (end > 0 && end > n - 4 && continuation(text[end])) --end;
    return continuation(text[end]) ? n : end;
  };
  std::string clean;
  bool ascii = true;
  for (const char c : title) {
    const auto u = static_cast<unsigned char>(c);
    clean += u < 0x20 || u == 0x7f ? ' ' : c;
    if (u >= 0x80) ascii = false;
  }
  if (clean.size() > 200) clean = clean.substr(0, cut(clean, 197)) + "...";
  if (ascii) return clean;
  std::string out;
  for (std::size_t i = 0; i < clean.size();) {
    const auto n = std::max<std::size_t>(1, cut(std::string_view(clean).substr(i), 39));
    auto b64 = base64_lines(std::string_view(clean).substr(i, n));
    while (!b64.empty() && (b64.back() == '\n' || b64.back() == '\r')) b64.pop_back();
    if (!out.empty()) out += "\r\n ";
    out += "=?utf-8?B?" + b64 + "?=";
    i += n;
  }
  return out;
}

struct Message {
  std::string target, content_type, body;
  std::string variant;  // what else shapes the body: the format or webhook style
};

std::string key_of(std::string_view subject, std::string_view target, std::string_view body) {
  auto h = automation::detail::fnv1a(subject);
  h = automation::detail::fnv1a("\x1f", h);
  h = automation::detail::fnv1a(target, h);
  h = automation::detail::fnv1a("\x1f", h);
  h = automation::detail::fnv1a(body, h);
  return fmt::format("{:016x}-{}", h, body.size());
}

// The report without what changes from one run to the next over the same data (when it was
// generated, whether its rollup was reused and why): its JSON keys a delivery.
Report normalized(const Report& r) {
  Report k = r;
  k.generated = {};
  k.rollup.computed = {};
  k.rollup.reused = false;
  k.rollup.why.clear();
  k.rollup.partials_read = 0;
  return k;
}

// A delivery as it stands, for a call that leaves it alone; `detail` says why.
DeliveryOutcome outcome_of(const storage::DeliveryRecord& r) {
  DeliveryOutcome o;
  o.id = r.id;
  o.subject = r.subject;
  o.target = shown_target(r.target);
  o.state = r.state;
  o.attempts = r.attempts;
  o.next_attempt = r.next_attempt;
  if (r.state == "delivered") {
    o.detail = fmt::format("already delivered at {}", format_timestamp(r.updated));
  } else if (r.state == "failed") {
    o.detail = fmt::format("gave up at {}: {}", format_timestamp(r.updated), r.last_error);
  } else {
    o.detail = fmt::format("stored before, next attempt at {}", format_timestamp(r.next_attempt));
  }
  return o;
}

}  // namespace

std::string shown_target(std::string_view target) {
  if (target.rfind("webhook:", 0) != 0) return std::string(target);
  return "webhook:" + automation::detail::redact_url(target.substr(8));
}

Result<DeliveryTarget> parse_target(std::string_view text) {
  DeliveryTarget t;
  // A URL's path and query (and user info) usually carry its secret: never in a message.
  auto bad = [&](std::string_view why) {
    const auto scheme = text.find("://");
    const auto shown = scheme == std::string_view::npos ? std::string(text) : automation::detail::redact_url(text);
    return fail(errc::invalid_argument, fmt::format("delivery target \"{}\": {}", shown, why));
  };
  if (text.rfind("http://", 0) == 0 || text.rfind("https://", 0) == 0) {
    t.kind = TargetKind::webhook;
    t.destination = std::string(text);
  } else if (text.rfind("webhook:", 0) == 0) {
    t.kind = TargetKind::webhook;
    t.destination = std::string(text.substr(8));
    if (t.destination.rfind("http://", 0) != 0 && t.destination.rfind("https://", 0) != 0)
      return bad("expected an http:// or https:// URL");
  } else if (text.rfind("file:", 0) == 0) {
    t.kind = TargetKind::file;
    t.destination = std::string(text.substr(5));
  } else if (text.rfind("email:", 0) == 0) {
    t.kind = TargetKind::email;
    t.destination = std::string(text.substr(6));
    const auto to = split_recipients(t.destination);
    if (to.empty()) return bad("no recipients");
    for (const auto& r : to)
      if (!automation::detail::is_bare_address(r)) return bad(fmt::format("\"{}\" is not an email address", r));
  } else {
    return bad("expected file:PATH, webhook:URL or email:ADDRESSES");
  }
  if (t.destination.empty()) return bad("empty destination");
  return t;
}

resilience::RetryPolicy DeliveryOptions::default_retry() {
  resilience::RetryPolicy p;
  p.max_attempts = 8;
  p.backoff = resilience::Backoff::exponential;
  p.initial_delay = minutes(1);
  p.multiplier = 2;
  p.max_delay = hours(6);
  return p;
}

resilience::BreakerConfig DeliveryOptions::default_webhook_breaker() {
  resilience::BreakerConfig c;
  c.consecutive_failures = 3;
  c.open_duration.base = minutes(5);
  c.half_open_successes_to_close = 1;
  return c;
}

Notice notice_of(const Report& report) {
  Notice n;
  n.subject = "report:" + report.key();
  n.name = report.key();
  n.title = report.title();
  n.summary = render_summary(report);
  n.markdown = render(report, ReportFormat::markdown);
  n.html = render(report, ReportFormat::html);
  n.json = json::dump(to_json(report));
  n.identity = json::dump(to_json(normalized(report)));
  return n;
}

std::string compose_email(const Notice& notice, const std::string& from, const std::vector<std::string>& to, TimePoint date) {
  const auto id = key_of(notice.subject, fmt::format("{}", fmt::join(to, ",")), notice.markdown);
  const auto boundary = "=_automation_" + id;
  std::string m;
  std::vector<std::string> quoted;
  for (const auto& t : to) quoted.push_back("<" + t + ">");
  // One recipient per line (folded), so a long list stays under SMTP's line limit.
  m += fmt::format("From: <{}>\r\nTo: {}\r\nSubject: {}\r\nDate: {}\r\nMessage-ID: <{}@automation>\r\nMIME-Version: 1.0\r\n", from,
                   fmt::join(quoted, ",\r\n "), subject_header(notice.title), mail_date(date), id);
  const auto text_part = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n";
  if (notice.html.empty()) return m + text_part + base64_lines(notice.markdown);
  m += fmt::format("Content-Type: multipart/alternative; boundary=\"{}\"\r\n\r\n", boundary);
  m += fmt::format("--{}\r\n{}", boundary, text_part);
  m += base64_lines(notice.markdown);
  m += fmt::format("--{}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n", boundary);
  m += base64_lines(notice.html);
  m += fmt::format("--{}--\r\n", boundary);
  return m;
}

ReportDeliverer::ReportDeliverer(storage::Store& store, const Clock& clock, DeliveryOptions options)
    : store_(store), clock_(clock), options_(std::move(options)) {
  if (auto v = options_.retry.validate(); !v) throw Exception(with_context(v.error(), "delivery retry policy"));
  if (auto v = options_.webhook_breaker.validate(); !v) throw Exception(with_context(v.error(), "webhook breaker"));
  if (options_.smtp.helo.empty()) options_.smtp.helo = host_name();
  breaker_ = std::make_unique<resilience::CircuitBreaker>(options_.breaker_name, options_.webhook_breaker, clock);
}

ReportDeliverer::~ReportDeliverer() = default;

Result<std::vector<DeliveryOutcome>> ReportDeliverer::deliver(const Report& report, std::string_view reason) {
  if (options_.targets.empty()) return fail(errc::invalid_argument, "no delivery targets are configured");  // before rendering
  return deliver(notice_of(report), options_.targets, reason);
}

Result<std::vector<DeliveryOutcome>> ReportDeliverer::deliver(const Notice& notice, std::span<const DeliveryTarget> targets,
                                                              std::string_view reason) {
  if (targets.empty()) return fail(errc::invalid_argument, "no delivery targets are configured");
  const auto now = clock_.now();
  const auto& subject = notice.subject;
  // Every message is composed before any is stored, so a bad target stores nothing.
  std::vector<Message> messages;
  for (const auto& t : targets) {
    Message m;
    if (t.destination.empty()) return fail(errc::invalid_argument, fmt::format("{} target without a destination", to_string(t.kind)));
    switch (t.kind) {
      case TargetKind::file: {
        // A notice without HTML is written as its text.
        const auto format = t.format == ReportFormat::html && notice.html.empty() ? ReportFormat::markdown : t.format;
        fs::path p(t.destination);
        std::error_code ec;
        if (t.destination.back() == '/' || fs::is_directory(p, ec)) p /= fmt::format("{}.{}", notice.name, file_extension(format));
        const auto abs = fs::absolute(p, ec);
        if (ec) return fail(errc::invalid_argument, fmt::format("file target {}: {}", t.destination, ec.message()));
        m.target = "file:" + abs.lexically_normal().string();
        m.content_type = std::string(media_type(format));
        m.body = format == ReportFormat::html ? notice.html : format == ReportFormat::json ? notice.json : notice.markdown;
        m.variant = to_string(format);
        break;
      }
      case TargetKind::webhook:
        if (auto checked = parse_target("webhook:" + t.destination); !checked) return checked.error();
        m.target = "webhook:" + t.destination;
        m.content_type = "application/json";
        m.body = t.style == WebhookStyle::slack ? json::dump(bj::object{{"text", notice.summary}}) : notice.json;
        m.variant = t.style == WebhookStyle::slack ? "slack" : "json";
        break;
      case TargetKind::email: {
        if (options_.smtp.host.empty())
          return fail(errc::invalid_argument,
                      fmt::format("email target {}: no SMTP server is configured (reports.smtp_host)", t.destination));
        if (auto checked = parse_target("email:" + t.destination); !checked) return checked.error();
        const auto& from = options_.smtp.from;
        if (!automation::detail::is_bare_address(from))
          return fail(errc::invalid_argument, fmt::format("email sender \"{}\" is not a bare address (reports.email_from)", from));
        const auto to = split_recipients(t.destination);
        m.target = fmt::format("email:{}", fmt::join(to, ","));
        m.content_type = "message/rfc822";
        m.body = compose_email(notice, from, to, now);
        m.variant = "email";
        break;
      }
    }
    messages.push_back(std::move(m));
  }
  // The key: the notice's identity (for a report its data, not when it was rendered), its target and
  // how it is shaped there.
  const auto& data = notice.identity.empty() ? notice.json : notice.identity;
  std::vector<DeliveryOutcome> out;
  for (auto& m : messages) {
    storage::DeliveryRecord rec;
    rec.key = key_of(subject, m.target + "\x1f" + m.variant, data);
    rec.subject = subject;
    rec.target = m.target;
    rec.content_type = m.content_type;
    rec.body = std::move(m.body);
    rec.state = "pending";
    rec.next_attempt = now;
    rec.reason = std::string(reason);
    rec.created = now;
    auto q = store_.enqueue_delivery(rec);
    if (!q) return q.error();
    if (q->created) {  // stored as given: attempt it now
      rec.id = q->id;
      rec.updated = rec.created;
      rec.version = 1;
      out.push_back(attempt(std::move(rec)));
      out.back().created = true;
      continue;
    }
    auto stored = store_.get_delivery(q->id);
    if (!stored) return stored.error();
    if (!*stored) return fail(errc::not_found, fmt::format("delivery {} vanished after it was stored", q->id));
    const auto& s = **stored;
    out.push_back(s.state == "pending" && s.next_attempt <= now && s.claimed_until <= now ? attempt(s) : outcome_of(s));
  }
  return out;
}

Result<std::vector<DeliveryOutcome>> ReportDeliverer::retry_due(std::size_t limit) {
  // Only this deliverer's messages (reports, or alert notices): each is sent with its own breaker
  // and recorded in its own domain. Others' due ones are read past, up to a bound.
  const auto& prefix = options_.subject_prefix;
  auto due = store_.list_deliveries({.state = std::string("pending"),
                                     .due_by = clock_.now(),
                                     .limit = prefix.empty() ? limit : std::max<std::size_t>(limit, 1000),
                                     .with_body = true});
  if (!due) return due.error();
  std::vector<DeliveryOutcome> out;
  for (auto& d : *due) {
    if (!prefix.empty() && d.subject.rfind(prefix, 0) != 0) continue;
    if (limit && out.size() >= limit) break;
    out.push_back(attempt(std::move(d)));
  }
  return out;
}

Result<DeliveryOutcome> ReportDeliverer::retry(std::int64_t id) {
  auto d = store_.get_delivery(id);
  if (!d) return d.error();
  if (!*d) return fail(errc::not_found, fmt::format("delivery {} does not exist", id));
  if ((*d)->state == "delivered") return outcome_of(**d);
  return attempt(std::move(**d));
}

Result<std::string> ReportDeliverer::send_file(const storage::DeliveryRecord& rec, const std::string& path) {
  if (auto w = write_file_atomically(path, rec.body); !w) return w.error();
  return fmt::format("wrote {} ({} bytes)", path, rec.body.size());
}

Result<std::string> ReportDeliverer::send_webhook(const storage::DeliveryRecord& rec, const std::string& url,
                                                  std::optional<Duration>& breaker_wait) {
  const auto shown = automation::detail::redact_url(url);
  auto permit = breaker_->try_acquire();
  if (!permit) {
    breaker_wait = permit.retry_after();
    return fail(errc::unavailable, fmt::format("circuit breaker {} is {}: not calling {}", breaker_->name(),
                                               resilience::to_string(permit.rejected_state()), shown));
  }
  automation::detail::HttpCall call;
  call.method = "POST";
  call.url = url;
  call.shown_url = shown;
  call.headers = {{"Content-Type", rec.content_type}, {"User-Agent", "automation-reports"}};
  call.body = rec.body;
  call.timeout = options_.timeout;
  call.ca_file = options_.ca_file;
  const std::atomic<bool> cancel{false};
  auto answer = automation::detail::perform_http(call, cancel);
  if (!answer) {
    permit.failure();
    return answer.error();
  }
  if (answer->accepted) {
    permit.success();
    return fmt::format("HTTP {}", answer->status);
  }
  const auto body = answer->body.substr(0, 200);
  if (answer->status >= 400 && answer->status < 500 && answer->status != 408 && answer->status != 429) {
    permit.ignore();  // the endpoint is up and refuses this message: retrying will not help
    return fail(errc::invalid_argument, fmt::format("{} refused the message: HTTP {} {}", shown, answer->status, body));
  }
  permit.failure();
  return fail(errc::unavailable, fmt::format("{} answered HTTP {} {}", shown, answer->status, body));
}

Result<std::string> ReportDeliverer::send_email(const storage::DeliveryRecord& rec, const std::string& recipients) {
  automation::detail::SmtpMessage m;
  m.host = options_.smtp.host;
  m.port = options_.smtp.port;
  m.helo = options_.smtp.helo;
  m.from = options_.smtp.from;
  m.to = split_recipients(recipients);
  m.data = rec.body;
  m.timeout = options_.timeout;
  if (m.host.empty()) return fail(errc::unavailable, "no SMTP server is configured (reports.smtp_host)");
  auto sent = automation::detail::send_smtp(m);
  if (!sent) return sent.error();
  return fmt::format("SMTP {} {}", sent->code, sent->reply);
}

DeliveryOutcome ReportDeliverer::attempt(storage::DeliveryRecord rec) {
  DeliveryOutcome out = outcome_of(rec);
  const auto start = clock_.now();
  if (rec.claimed_until > start) {
    out.detail = fmt::format("claimed by another sender until {}", format_timestamp(rec.claimed_until));
    return out;
  }
  // Claim it (compare-and-set): no other sender attempts it until the claim runs out.
  const bool was_failed = rec.state == "failed";
  rec.state = "pending";
  rec.claimed_until = start + options_.claim;
  rec.updated = start;
  auto claimed = store_.update_delivery(rec);
  if (!claimed) {
    out.detail = claimed.error().code == errc::conflict ? "claimed by another sender" : "could not claim it: " + claimed.error().message;
    return out;
  }
  rec.version = *claimed;
  out.attempted = true;

  const auto colon = rec.target.find(':');
  const auto kind = rec.target.substr(0, colon);
  const auto where = rec.target.substr(colon + 1);
  std::optional<Duration> breaker_wait;
  auto sent = kind == "file"      ? send_file(rec, where)
              : kind == "webhook" ? send_webhook(rec, where, breaker_wait)
              : kind == "email"   ? send_email(rec, where)
                                  : Result<std::string>(fail(errc::invalid_argument, fmt::format("unknown target kind \"{}\"", kind)));
  const auto end = clock_.now();
  if (!breaker_wait) rec.attempts += 1;  // a call the breaker refused was not an attempt
  rec.updated = end;
  rec.claimed_until = {};
  if (sent) {
    rec.state = "delivered";
    rec.last_error.clear();
    rec.next_attempt = end;
    out.detail = *sent;
  } else {
    rec.last_error = sent.error().message;
    // A failed delivery retried by hand gets that one attempt.
    const bool give_up = !options_.retry.retryable(sent.error()) || was_failed || rec.attempts >= options_.retry.max_attempts;
    if (give_up) {
      rec.state = "failed";
      rec.next_attempt = end;
      out.detail = fmt::format("gave up after {} attempt{}: {}", rec.attempts, rec.attempts == 1 ? "" : "s", rec.last_error);
    } else {
      rec.state = "pending";
      Duration delay = options_.retry.base_delay(rec.attempts + 1);
      if (breaker_wait) delay = std::max(delay, *breaker_wait);
      rec.next_attempt = end + delay;
      out.detail = fmt::format("{}; next attempt at {}", rec.last_error, format_timestamp(rec.next_attempt));
    }
  }
  if (auto w = store_.update_delivery(rec); !w) {
    automation::detail::logf(LogLevel::warn, options_.domain,
                             "delivery {} to {}: could not record the attempt ({}); it is retried after its claim", rec.id,
                             shown_target(rec.target), w.error().message);
    out.detail += "; the result could not be recorded: " + w.error().message;
  }
  out.state = rec.state;
  out.attempts = rec.attempts;
  out.next_attempt = rec.next_attempt;

  storage::TaskRecord t;
  t.domain = options_.domain;
  t.action = "deliver." + kind;
  t.params = json::dump(bj::object{{"delivery", rec.id},
                                   {"subject", rec.subject},
                                   {"target", shown_target(rec.target)},
                                   {"attempt", rec.attempts},
                                   {"reason", rec.reason},
                                   {"actor", options_.actor}});
  t.outcome = sent                                 ? storage::TaskOutcome::success
              : sent.error().code == errc::timeout ? storage::TaskOutcome::timeout
                                                   : storage::TaskOutcome::failure;
  if (!sent) t.error = sent.error().message;
  t.started = start;
  t.ended = end;
  t.duration = end - start;
  if (auto a = store_.append_tasks({&t, 1}); !a)
    automation::detail::logf(LogLevel::warn, options_.domain, "could not record delivery {} in the task history: {}", rec.id,
                             a.error().message);
  return out;
}

}  // namespace automation::metrics
