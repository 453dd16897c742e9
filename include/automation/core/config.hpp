#pragma once
/// Configuration: one JSON file plus AUTOMATION_* environment overrides, checked against a schema of
/// known keys. Unknown keys, unknown AUTOMATION_* variables, wrong types and out-of-range values are
/// all reported (every problem, each with its key path and origin), never silently ignored.
/// Precedence: defaults < file < environment < explicit command-line flags (applied by the host).
/// Thread-safety: Config is a plain value; the functions are pure given their inputs.
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>
#include <automation/core/logging.hpp>

#include <boost/json/object.hpp>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace automation {

struct LogConfig {
  LogLevel level = LogLevel::info;
  LogFormat format = LogFormat::json;
  std::string file;  ///< empty: stderr
};

struct StorageConfig {
  std::string synchronous = "normal";  ///< "normal" or "full"
  Millis busy_timeout{5000};
};

/// Alert and scaling thresholds in percent (seed defaults).
struct ThresholdsConfig {
  double cpu_high = 80;
  double cpu_low = 20;
  double memory_high = 85;
  double disk_high = 90;
};

/// The forecaster's optional LLM backend (see docs/forecasting.md).
struct LlmSettings {
  std::string base_url;  ///< empty: no LLM backend
  std::string model;
  std::string api_key;  ///< shown as "***" by to_json()
  Millis timeout{30'000};
  std::string ca_file;
};

/// Where reports go when delivered (autoctl report --deliver, the weekly-report job); see
/// docs/metrics.md.
struct ReportsConfig {
  std::string directory = "var/reports";  ///< file deliveries (empty: none), relative to the working directory
  std::string format = "html";            ///< of the files: json, md or html
  std::string webhook_url;                ///< empty: no webhook; shown as "***" by to_json() (it carries a secret)
  std::string webhook_style = "slack";    ///< slack ({"text": summary}) or json (the whole report)
  std::string email_to;                   ///< comma-separated recipients (empty: no email)
  std::string email_from = "automation@localhost";
  std::string smtp_host;  ///< the SMTP relay (needed for email)
  double smtp_port = 25;
  std::string ca_file;  ///< extra trusted CA certificates (PEM) for an https webhook
};

/// Metric samples and alert rules (see docs/metrics.md).
struct AlertsConfig {
  /// Alert rules (JSON), relative to the working directory; while the file does not exist the seed's
  /// rules apply (thresholds.*), notifying reports.webhook_url and reports.email_to.
  std::string rules_file = "alerts.json";
  Millis interval{30'000};    ///< how often metrics are sampled and the rules evaluated
  Millis staleness{300'000};  ///< a sample older than this is no data
};

/// Scaled resources (see docs/scaling.md).
struct ScalingConfig {
  /// The resources and their policies and actuators (JSON), relative to the working directory; while
  /// it does not exist no resource is configured.
  std::string resources_file = "scaling.json";
  /// Where process pools record their members (so the next autoctl or a restarted daemon adopts them) and their logs.
  std::string state_dir = "var/pools";
  Millis interval{60'000};  ///< how often the daemon evaluates every resource
};

/// Health targets and their healing (see docs/healing.md).
struct HealingConfig {
  /// Services to supervise and targets to heal (JSON), relative to the working directory; while it
  /// does not exist the seed strategies apply.
  std::string targets_file = "healing.json";
  std::string log_dir = "var/log";  ///< supervised services' output: <log_dir>/<service>.log
};

/// The daemon, `autoctl serve` (see docs/http-api.md).
struct ServerConfig {
  std::string address = "127.0.0.1";  ///< the address it listens on (another than loopback exposes it to the network)
  double port = 8080;                 ///< 0: any free port
  double threads = 4;                 ///< the event loop's threads (HTTP, periodic component work, in-process steps)
  Millis drain_timeout{
      30'000};  ///< on SIGTERM, how long running workflow runs get to finish before they are interrupted (the next start resumes them)
};

/// The node registry (see docs/registry.md).
struct RegistryConfig {
  Millis default_ttl{30'000};    ///< a node that does not say its own ttl is down after this long without a heartbeat
  Millis check_interval{5'000};  ///< how often the daemon expires silent nodes and sends its own heartbeat
};

/// Discovery of HTTP services (see docs/registry.md).
struct DiscoveryConfig {
  std::string hosts = "127.0.0.1";                 ///< comma-separated
  std::string ports = "3000,3001,8000,8080,5000";  ///< comma-separated
  Millis interval{300'000};                        ///< 0: only when asked
  Millis timeout{1'000};                           ///< per address
};

/// autoctl as a client of a running daemon (`--server`, `--token`; see docs/cli.md).
struct RemoteConfig {
  std::string url;      ///< empty: commands open the store themselves
  std::string token;    ///< the bearer token; shown as "***" by to_json()
  std::string ca_file;  ///< extra trusted CA certificates (PEM) for an https URL
};

struct Config {
  std::string db = "sqlite:var/automation.db";  ///< store URI: "sqlite:PATH" or "memory:"
  std::string time_zone = "UTC";                ///< IANA name, used for calendar periods
  std::string workflows_dir = "workflows";      ///< workflow definitions (NAME.json), relative to the working directory
  LogConfig log;
  StorageConfig storage;
  ThresholdsConfig thresholds;
  LlmSettings llm;
  ReportsConfig reports;
  AlertsConfig alerts;
  ScalingConfig scaling;
  HealingConfig healing;
  ServerConfig server;
  RemoteConfig remote;
  RegistryConfig registry;
  DiscoveryConfig discovery;

  /// Where each key's value came from: "default", "file:PATH" or "env:NAME".
  std::map<std::string, std::string> sources;

  /// The effective configuration as a JSON object with the same shape as the file.
  boost::json::object to_json() const;
};

/// One known key: its path in the file ("storage.busy_timeout"), its environment variable, its type
/// ("string", "number", "duration", ...) and what it does.
struct ConfigKey {
  std::string path;
  std::string env;
  std::string type;
  std::string description;
};
const std::vector<ConfigKey>& config_keys();

/// Environment variables by name. process_environment() returns the AUTOMATION_* variables.
using Environment = std::map<std::string, std::string, std::less<>>;
Environment process_environment();

/// Applies `json_text` (from `origin`, used in messages) and then `env` over the defaults.
/// errc::config with every problem listed, one per line, when anything is wrong.
Result<Config> parse_config(std::string_view json_text, std::string_view origin, const Environment& env);
/// Reads the file when given (errc::not_found if it does not exist), then as parse_config.
Result<Config> load_config(const std::optional<std::string>& file, const Environment& env);

}  // namespace automation
