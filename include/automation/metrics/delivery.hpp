#pragma once
/// ReportDeliverer: sends rendered reports (and other notices: alerts) to files, webhooks (Slack-compatible or the JSON report)
/// and mailboxes (SMTP), so that a report is never lost: each message is stored in the Store's
/// delivery area before its first attempt, and a failed attempt leaves it pending with the error
/// and the time of its next attempt (exponential backoff; given up after the retry policy's
/// attempts). Webhook calls go through a circuit breaker, so a dead endpoint is not hammered.
/// Several processes may share the store: a sender claims a delivery (compare-and-set) before it
/// attempts it. Every attempt is recorded in the task history (domain "reports") with its reason.
///
/// Thread-safety: safe from several threads. Needs a Store and a Clock, both outliving it.
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>
#include <automation/metrics/report.hpp>
#include <automation/resilience/circuit_breaker.hpp>
#include <automation/resilience/retry.hpp>
#include <automation/storage/store.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace automation::metrics {

enum class TargetKind { file, webhook, email };
std::string_view to_string(TargetKind k) noexcept;

/// What a webhook receives: Slack's {"text": summary} (also understood by Mattermost, Rocket.Chat
/// and Teams' incoming webhooks) or the whole report as JSON.
enum class WebhookStyle { slack, json };

struct DeliveryTarget {
  TargetKind kind = TargetKind::file;
  /// file: a file path, or a directory (one that exists, or a path ending in '/') that receives
  /// KEY.EXT; webhook: an http:// or https:// URL; email: recipients, comma-separated.
  std::string destination;
  ReportFormat format = ReportFormat::html;  ///< file: the format written (email sends text and HTML; webhooks by style)
  WebhookStyle style = WebhookStyle::slack;
};

/// "file:PATH", "webhook:URL" (or a bare http(s) URL), "email:A,B"; errc::invalid_argument naming
/// the text otherwise.
Result<DeliveryTarget> parse_target(std::string_view text);

/// A stored target as it may be shown: a webhook's URL as scheme://host[:port]/... (its path and
/// query usually carry the secret); other targets as they are.
std::string shown_target(std::string_view target);

struct SmtpSettings {
  std::string host;  ///< empty: no email delivery
  int port = 25;
  std::string from = "automation@localhost";
  std::string helo;  ///< the name given in EHLO (default: this host's name)
};

struct DeliveryOptions {
  std::vector<DeliveryTarget> targets;
  /// Attempts and delays between stored attempts: by default 8 attempts, 1 minute doubling to at
  /// most 6 hours apart (the 8 attempts span about 2 hours).
  resilience::RetryPolicy retry = default_retry();
  Duration claim = std::chrono::minutes(2);  ///< how long a sender's claim on a delivery holds
  Millis timeout{30'000};                    ///< per webhook or SMTP attempt
  std::string ca_file;                       ///< extra trusted CA certificates (PEM) for https webhooks
  SmtpSettings smtp;
  /// The webhook breaker: opens after 3 consecutive failures, for 5 minutes.
  resilience::BreakerConfig webhook_breaker = default_webhook_breaker();
  std::string actor = "system:reports";  ///< recorded as the sender in the task history
  std::string domain = "reports";        ///< the task history's domain for attempts (and the log category)
  std::string breaker_name = "reports-webhook";
  /// retry_due() attempts only deliveries whose subject starts with this (empty: every one).
  std::string subject_prefix = "report:";

  static resilience::RetryPolicy default_retry();
  static resilience::BreakerConfig default_webhook_breaker();
};

/// A message to deliver, in every shape a target may want: a report (notice_of()) or an alert notice.
struct Notice {
  std::string subject;   ///< what it delivers: "report:weekly-2026-W48", "alert:12:firing"
  std::string name;      ///< the file name (without extension) in a directory target: "weekly-2026-W48"
  std::string title;     ///< an email's subject
  std::string summary;   ///< a Slack-style webhook's text
  std::string markdown;  ///< a .md file; an email's text part
  std::string html;      ///< a .html file; an email's HTML part (empty: the email is text only; a file gets the text)
  std::string json;      ///< a .json file; a json-style webhook's body
  /// What makes two notices the same message, so that it is stored and sent once (empty: `json`).
  std::string identity;
};

/// A report as a notice: all three renderings; its identity is its data (not when it was rendered).
Notice notice_of(const Report& report);

/// One delivery after an attempt (or after finding it claimed or done).
struct DeliveryOutcome {
  std::int64_t id = 0;
  std::string subject, target;
  std::string state;  ///< "delivered", "pending" (will be retried at next_attempt) or "failed" (gave up)
  int attempts = 0;
  TimePoint next_attempt{};
  std::string detail;    ///< what happened: "wrote /srv/reports/weekly-2026-W48.html", "HTTP 200", the error
  bool created = false;  ///< deliver(): stored by this call (false: the same message was stored before)
  bool attempted = false;
};

class ReportDeliverer {
 public:
  /// errc::invalid_argument (thrown as automation::Exception) for an invalid retry policy or breaker.
  ReportDeliverer(storage::Store& store, const Clock& clock, DeliveryOptions options);
  ~ReportDeliverer();
  ReportDeliverer(const ReportDeliverer&) = delete;
  ReportDeliverer& operator=(const ReportDeliverer&) = delete;

  const DeliveryOptions& options() const noexcept { return options_; }

  /// Renders `report` for every target and stores each message with `reason`, then attempts the new
  /// ones and stored pending ones that are due. A report of the same data to the same target is the
  /// same message (its generation time and rollup bookkeeping do not count), stored once: running a
  /// job twice does not send twice. Webhook URLs are shown redacted (scheme://host/...) in outcomes,
  /// errors, logs and the task history. errc::invalid_argument without targets; an email target
  /// without an SMTP host is refused before anything is stored.
  Result<std::vector<DeliveryOutcome>> deliver(const Report& report, std::string_view reason);
  /// The same for any notice, to the given targets (options().targets are not used).
  Result<std::vector<DeliveryOutcome>> deliver(const Notice& notice, std::span<const DeliveryTarget> targets, std::string_view reason);
  /// Attempts the pending deliveries of options().subject_prefix that are due, oldest due first, at
  /// most `limit`.
  Result<std::vector<DeliveryOutcome>> retry_due(std::size_t limit = 100);
  /// Attempts one delivery now, whatever its due time; a failed one gets this one more attempt. A
  /// delivered one, or one another sender has claimed, is left alone. errc::not_found for an unknown id.
  Result<DeliveryOutcome> retry(std::int64_t id);

  /// The webhook breaker.
  resilience::CircuitBreaker& webhook_breaker() noexcept { return *breaker_; }

 private:
  DeliveryOutcome attempt(storage::DeliveryRecord record);
  Result<std::string> send_file(const storage::DeliveryRecord& record, const std::string& path);
  /// Sets `breaker_wait` when the breaker refused the call (how long it stays open).
  Result<std::string> send_webhook(const storage::DeliveryRecord& record, const std::string& url, std::optional<Duration>& breaker_wait);
  Result<std::string> send_email(const storage::DeliveryRecord& record, const std::string& recipients);

  storage::Store& store_;
  const Clock& clock_;
  DeliveryOptions options_;
  std::unique_ptr<resilience::CircuitBreaker> breaker_;
};

/// The email a notice is sent as: an RFC 5322 message with a text (Markdown) part and, when the
/// notice has HTML, an HTML part.
std::string compose_email(const Notice& notice, const std::string& from, const std::vector<std::string>& to, TimePoint date);

}  // namespace automation::metrics
