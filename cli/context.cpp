#include "context.hpp"

#include <automation/core/time.hpp>
#include <automation/storage/memory_store.hpp>

#include <filesystem>

#include <automation/core/ids.hpp>

#include <automation/core/json.hpp>
#include <automation/core/logging.hpp>

#include "detail/http_client.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <climits>
#include <cstdio>
#include <cstdlib>

#include <pwd.h>
#include <unistd.h>

namespace autoctl {

using automation::errc;

int exit_code_for(errc e) noexcept {
  switch (e) {
    case errc::invalid_argument:
    case errc::corrupt:
    case errc::schema_too_new:
      return ex_dataerr;
    case errc::not_found:
      return ex_noinput;
    case errc::unavailable:
      return ex_unavailable;
    case errc::io:
      return ex_ioerr;
    case errc::busy:
    case errc::conflict:
    case errc::timeout:
    case errc::cancelled:
      return ex_tempfail;
    case errc::permission_denied:
    case errc::unauthenticated:
      return ex_noperm;
    case errc::config:
      return ex_config;
    case errc::already_exists:
      return ex_dataerr;
    case errc::internal:
      return ex_software;
  }
  return ex_software;
}

std::optional<int> Context::load() {
  auto cfg = automation::load_config(global.config, automation::process_environment());
  if (!cfg) {
    auto e = cfg.error();
    if (e.is(errc::not_found)) e = automation::Error(errc::config, e.message);
    return error(e);
  }
  config = std::move(cfg.value());
  setup_logging(automation::LogLevel::warn);
  return std::nullopt;
}

void Context::setup_logging(automation::LogLevel unconfigured) {
  automation::LoggingOptions lo;
  lo.level = config.log.level;
  lo.format = config.log.format;
  lo.file = config.log.file;
  // On a terminal, unconfigured logs are short text and only warnings (a command's default); -v/-q adjust.
  const bool level_default = config.sources["log.level"] == "default";
  if (level_default) lo.level = unconfigured;
  if (config.sources["log.format"] == "default" && ::isatty(STDERR_FILENO)) lo.format = automation::LogFormat::text;
  if (global.verbose == 1) lo.level = automation::LogLevel::debug;
  if (global.verbose >= 2) lo.level = automation::LogLevel::trace;
  if (global.quiet) lo.level = automation::LogLevel::error;
  automation::configure_logging(lo);
}

std::string Context::store_uri() const { return global.db.empty() ? config.db : global.db; }

automation::storage::OpenOptions Context::open_options() const {
  automation::storage::OpenOptions o;
  o.busy_timeout = config.storage.busy_timeout;
  o.synchronous = config.storage.synchronous == "full" ? automation::storage::Synchronous::full : automation::storage::Synchronous::normal;
  return o;
}

automation::Result<std::unique_ptr<automation::storage::Store>> Context::open_store(Access access) const {
  auto o = open_options();
  o.read_only = access == Access::read;
  return automation::storage::open_store(store_uri(), o);
}

automation::Result<std::unique_ptr<automation::storage::Store>> Context::open_store_or_empty() const {
  auto opened = open_store(Access::read);
  if (opened || opened.error().code != automation::errc::not_found) return opened;
  return std::unique_ptr<automation::storage::Store>(std::make_unique<automation::storage::MemoryStore>());
}

automation::Result<std::optional<automation::TimePoint>> Context::time_option(std::string_view text, std::string_view option) {
  if (text.empty()) return std::optional<automation::TimePoint>();
  auto t = automation::parse_time_spec(text, automation::SystemClock::instance().now());
  if (!t) return automation::with_context(t.error(), option);
  return std::optional<automation::TimePoint>(*t);
}

automation::Result<bool> Context::configured_file(const std::string& key, const std::string& path) const {
  std::error_code ec;
  const bool exists = !path.empty() && std::filesystem::exists(path, ec);
  if (ec) return automation::fail(automation::errc::config, fmt::format("{} {}: {}", key, path, ec.message()));
  const auto source = config.sources.find(key);
  if (!exists && source != config.sources.end() && source->second != "default")
    return automation::fail(automation::errc::config, fmt::format("{} {} (from {}) does not exist{}", key, path, source->second,
                                                                  path.empty() || path.front() == '/' ? "" : " in the working directory"));
  return exists;
}

std::string Context::actor() const {
  if (const char* a = std::getenv("AUTOCTL_ACTOR"); a && *a) return a;
  if (const passwd* pw = ::getpwuid(::geteuid()); pw && pw->pw_name) return fmt::format("user:{}", pw->pw_name);
  return fmt::format("uid:{}", ::geteuid());
}

std::string Context::origin() const { return fmt::format("cli pid={} host={}", ::getpid(), automation::host_name()); }

void Context::audit(automation::storage::Store& store, std::string action, std::string resource, automation::storage::AuditOutcome outcome,
                    std::string reason, boost::json::object details) const {
  automation::storage::AuditRecord r;
  r.time = automation::SystemClock::instance().now();
  r.actor = actor();
  r.action = std::move(action);
  r.resource = std::move(resource);
  r.origin = origin();
  r.outcome = outcome;
  r.reason = std::move(reason);
  r.details = automation::json::dump(details);
  r.correlation_id = std::string(automation::current_correlation_id());
  if (auto res = store.append_audit({&r, 1}); !res)
    fmt::print(stderr, "autoctl: warning: could not record the audit entry: {}\n", res.error().message);
}

int Context::error(const automation::Error& e) const {
  if (global.json) {
    boost::json::object err{{"code", std::string(e.name())}, {"message", e.what()}};
    fmt::print(stderr, "{}\n", automation::json::dump(boost::json::object{{"error", err}}));
  } else {
    fmt::print(stderr, "autoctl: error: {}\n", e.what());
  }
  return exit_code_for(e.kind());
}

void Context::print_json(const boost::json::value& v) const { fmt::print("{}\n", automation::json::pretty(v)); }

int Context::print_document(const automation::Result<boost::json::object>& doc,
                            const std::function<void(const boost::json::object&)>& text) const {
  if (!doc) return error(doc.error());
  if (global.json)
    print_json(*doc);
  else
    text(*doc);
  return ex_ok;
}

automation::Result<boost::json::object> Context::object_of(const automation::Result<boost::json::value>& answer) {
  if (!answer) return answer.error();
  if (!answer->is_object()) return automation::fail(automation::errc::internal, "the daemon's answer is not a JSON object");
  return answer->as_object();
}

std::string field_text(const boost::json::object& o, std::string_view key, std::string_view missing) {
  const auto* v = o.if_contains(key);
  if (!v || v->is_null()) return std::string(missing);
  return v->is_string() ? std::string(v->as_string()) : automation::json::dump(*v);
}

automation::Result<boost::json::value> Context::api(std::string method, std::string path, std::optional<boost::json::value> body) const {
  automation::detail::HttpCall call;
  call.method = std::move(method);
  std::string base = server_url();
  while (!base.empty() && base.back() == '/') base.pop_back();
  call.url = base + path;
  const std::string token = global.token.empty() ? config.remote.token : global.token;
  if (!token.empty()) call.headers.emplace_back("Authorization", "Bearer " + token);
  // The daemon's audit records of this call carry this command's correlation id.
  if (auto id = automation::current_correlation_id(); !id.empty()) call.headers.emplace_back("X-Request-Id", std::string(id));
  if (body) {
    call.headers.emplace_back("Content-Type", "application/json");
    call.body = automation::json::dump(*body);
  }
  call.ca_file = config.remote.ca_file;
  call.timeout = std::chrono::minutes(6);  // a run the daemon waits for: at most 5 minutes
  const std::atomic<bool> never{false};
  auto answer = automation::detail::perform_http(call, never);
  if (!answer) return automation::with_context(answer.error(), fmt::format("the daemon at {}", base));
  auto doc = automation::json::parse(answer->body, "the daemon's answer");
  if (answer->status >= 400) {
    if (doc && doc->is_object())
      if (auto* e = doc->as_object().if_contains("error"); e && e->is_object()) {
        const auto* code = e->as_object().if_contains("code");
        const auto* message = e->as_object().if_contains("message");
        auto kind = code && code->is_string() ? automation::errc_from_string(code->as_string()) : std::nullopt;
        if (!kind) kind = answer->status == 401 ? errc::unauthenticated : answer->status == 413 ? errc::invalid_argument : errc::internal;
        return automation::Error(*kind, fmt::format("the daemon answered {}: {}", answer->status,
                                                    message && message->is_string() ? std::string(message->as_string()) : answer->body));
      }
    return automation::Error(errc::unavailable, fmt::format("the daemon answered {}: {}", answer->status, answer->body.substr(0, 200)));
  }
  if (!doc) return automation::Error(errc::corrupt, doc.error().message);
  return std::move(*doc);
}

std::string Context::encode(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '*' || c == ':')
      out += static_cast<char>(c);
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

std::string Context::query(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out;
  for (const auto& [k, v] : params) {
    if (v.empty()) continue;
    out += out.empty() ? '?' : '&';
    out += k + '=' + encode(v);
  }
  return out;
}

int Context::print_api(const automation::Result<boost::json::value>& answer) const {
  if (!answer) return error(answer.error());
  print_json(*answer);
  return ex_ok;
}

}  // namespace autoctl
