#include "delivery_support.hpp"

#include <automation/core/files.hpp>

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>

namespace autoctl {
namespace mx = automation::metrics;
using automation::errc;

// How a deliverer sends (SMTP, trusted CAs, who it acts for), from the configuration; no targets.
automation::Result<mx::DeliveryOptions> delivery_settings(const Context& ctx) {
  const auto& r = ctx.config.reports;
  mx::DeliveryOptions o;
  if (r.smtp_port != std::floor(r.smtp_port))
    return automation::fail(errc::config, fmt::format("reports.smtp_port: {} is not a whole number", r.smtp_port));
  o.smtp.host = r.smtp_host;
  o.smtp.port = static_cast<int>(r.smtp_port);
  o.smtp.from = r.email_from;
  o.ca_file = r.ca_file;
  o.actor = ctx.actor();
  return o;
}

// The targets: those given (--target), else the configured directory, webhook and mailbox that are set.
automation::Result<std::vector<mx::DeliveryTarget>> delivery_targets(const Context& ctx, const std::vector<std::string>& given) {
  const auto& r = ctx.config.reports;
  auto format = mx::parse_report_format(r.format);
  if (!format) return automation::with_context(format.error(), "reports.format");
  const auto style = r.webhook_style == "json" ? mx::WebhookStyle::json : mx::WebhookStyle::slack;
  std::vector<mx::DeliveryTarget> out;
  auto add = [&](const std::string& text, std::string_view where) -> automation::Result<void> {
    auto t = mx::parse_target(text);
    if (!t) return automation::with_context(t.error(), where);
    t->format = *format;
    t->style = style;
    out.push_back(std::move(*t));
    return {};
  };
  if (!given.empty()) {
    for (const auto& text : given)
      if (auto a = add(text, "--target"); !a) return a.error();
    return out;
  }
  if (!r.directory.empty()) out.push_back({mx::TargetKind::file, r.directory + "/", *format, style});
  if (!r.webhook_url.empty()) {
    if (r.webhook_url.rfind("http://", 0) != 0 && r.webhook_url.rfind("https://", 0) != 0)
      return automation::fail(errc::config, "reports.webhook_url: expected an http:// or https:// URL");
    if (auto a = add(r.webhook_url, "reports.webhook_url"); !a) return automation::fail(errc::config, a.error().message);
  }
  if (!r.email_to.empty())
    if (auto a = add("email:" + r.email_to, "reports.email_to"); !a) return automation::fail(errc::config, a.error().message);
  return out;
}

automation::Result<AlertSetup> alert_setup(const Context& ctx) {
  AlertSetup s;
  auto d = delivery_settings(ctx);
  if (!d) return d.error();
  auto& o = s.options;
  o.delivery.smtp = d->smtp;
  o.delivery.ca_file = d->ca_file;  // actor, domain and breaker stay the alerts' own
  o.staleness = ctx.config.alerts.staleness;
  if (o.staleness.count() <= 0) return automation::fail(errc::config, "alerts.staleness: must be longer than 0");
  const auto& file = ctx.config.alerts.rules_file;
  // A file someone named must be there: falling back to the seed's rules would resolve every alert of
  // theirs (run from another directory, a typo).
  auto exists = ctx.configured_file("alerts.rules_file", file);
  if (!exists) return exists.error();
  if (*exists) {
    auto text = automation::read_file(file);
    if (!text) return automation::fail(errc::io, fmt::format("alerts.rules_file {}: cannot be read: {}", file, text.error().message));
    auto rules = mx::parse_alert_rules(*text, file);
    if (!rules) return rules.error();
    o.rules = std::move(*rules);
    s.source = "file:" + file;
    return s;
  }
  // The seed's thresholds, notifying the configured webhook and mailbox (not the report directory).
  std::vector<mx::DeliveryTarget> notify;
  auto targets = delivery_targets(ctx, {});
  if (!targets) return targets.error();
  for (auto& t : *targets)
    if (t.kind != mx::TargetKind::file) notify.push_back(std::move(t));
  const auto& th = ctx.config.thresholds;
  o.rules = mx::default_alert_rules(th.cpu_high, th.memory_high, th.disk_high, std::move(notify));
  s.source = fmt::format("defaults (thresholds.*; {} does not exist)", file.empty() ? "no alerts.rules_file" : file);
  return s;
}

automation::Result<automation::forecast::ForecasterOptions> forecaster_options(const Context& ctx, bool statistical) {
  automation::forecast::ForecasterOptions backend;
  if (statistical) return backend;
  automation::Environment openai;
  for (const char* name : {"OPENAI_BASE_URL", "OPENAI_API_KEY"})
    if (const char* v = std::getenv(name)) openai.emplace(name, v);
  auto llm = automation::forecast::LlmConfig::from_config(ctx.config, openai);
  if (!llm) return llm.error();
  backend.llm = *llm;
  return backend;
}

automation::workflow::BuiltinSettings builtin_settings(const Context& ctx, std::vector<std::string>& warnings) {
  automation::workflow::BuiltinSettings s;
  if (auto zone = automation::TimeZone::locate(ctx.config.time_zone); zone)
    s.time_zone = *zone;
  else
    warnings.push_back(fmt::format("time_zone: {}; the metrics actions use UTC", zone.error().message));
  if (auto d = delivery_settings(ctx); !d) {
    s.reports_problem = d.error().message;
  } else {
    s.reports = std::move(*d);
    s.reports.actor = "system:workflow";
    if (auto t = delivery_targets(ctx, {}); t)
      s.reports.targets = std::move(*t);
    else
      s.reports_problem = t.error().message;
  }
  if (!s.reports_problem.empty()) warnings.push_back(fmt::format("reports: {}; the report and delivery jobs will fail", s.reports_problem));
  s.cpu_high = ctx.config.thresholds.cpu_high;
  s.memory_high = ctx.config.thresholds.memory_high;
  s.disk_high = ctx.config.thresholds.disk_high;
  if (auto f = forecaster_options(ctx, false); f)
    s.forecaster = std::move(*f);
  else
    warnings.push_back(fmt::format("llm: {}; forecasts are statistical", f.error().message));
  return s;
}

}  // namespace autoctl
