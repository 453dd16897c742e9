#pragma once
// Shared state of one autoctl invocation: global options, configuration, output and exit codes.
#include <automation/core/config.hpp>
#include <automation/core/error.hpp>
#include <automation/storage/store.hpp>

#include <CLI/CLI.hpp>
#include <boost/json/value.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace autoctl {

// sysexits(3)
enum exit_code : int {
  ex_ok = 0,
  ex_no = 1,  // ran, and the answer is no
  ex_usage = 64,
  ex_dataerr = 65,
  ex_noinput = 66,
  ex_unavailable = 69,
  ex_software = 70,
  ex_ioerr = 74,
  ex_tempfail = 75,
  ex_noperm = 77,
  ex_config = 78,
};

int exit_code_for(automation::errc e) noexcept;

struct GlobalOptions {
  std::string db;                     // --db (empty: from config)
  std::optional<std::string> config;  // --config
  bool json = false;
  int verbose = 0;
  bool quiet = false;
  std::string server;  // --server URL (else remote.url)
  std::string token;   // --token (else remote.token)
};

class Context {
 public:
  GlobalOptions global;
  automation::Config config;
  // The action chosen by the parsed subcommand; returns an exit code.
  std::function<int()> run;

  /// Loads config (file + environment) and sets up logging. Returns an exit code on failure.
  std::optional<int> load();
  /// (Re)configures logging from `config` and the flags; `unconfigured` is the level when log.level
  /// is not set (warn for a command, info for the daemon).
  void setup_logging(automation::LogLevel unconfigured);

  /// The store URI in effect: --db, else AUTOMATION_DB / config "db".
  std::string store_uri() const;
  automation::storage::OpenOptions open_options() const;
  /// Opens the store in effect; read-only opens never create, migrate or change anything.
  enum class Access { read, write };
  automation::Result<std::unique_ptr<automation::storage::Store>> open_store(Access access) const;
  /// The store for reading; one that does not exist yet reads as an empty one (in memory: nothing
  /// is created).
  automation::Result<std::unique_ptr<automation::storage::Store>> open_store_or_empty() const;
  /// Whether the file a configuration key names exists: a missing file is fine at its default name
  /// (the caller falls back), but one the configuration named must exist (errc::config, naming
  /// the key, the file and where the name came from).
  automation::Result<bool> configured_file(const std::string& key, const std::string& path) const;
  /// A point in time given to `option` ("--since"): ISO-8601, or a duration before now ("24h");
  /// nullopt for an empty text; errors name the option.
  static automation::Result<std::optional<automation::TimePoint>> time_option(std::string_view text, std::string_view option);

  /// Who and where, for audit records.
  std::string actor() const;
  std::string origin() const;
  /// Appends an audit record for a mutating action; a failure to record is reported on stderr.
  void audit(automation::storage::Store& store, std::string action, std::string resource, automation::storage::AuditOutcome outcome,
             std::string reason, boost::json::object details) const;

  /// Whether commands go through a running daemon's API (--server or remote.url).
  bool remote() const { return !server_url().empty(); }
  std::string server_url() const { return global.server.empty() ? config.remote.url : global.server; }
  /// Set by a command that can run through the API; main refuses the others when remote() is true.
  bool remote_capable = false;
  /// Calls the daemon: the answer's JSON document, or its error ({"error": {"code", "message"}}
  /// as the Error of that code); errc::unavailable when it cannot be reached.
  automation::Result<boost::json::value> api(std::string method, std::string path, std::optional<boost::json::value> body = {}) const;
  /// A path segment or query value %-encoded.
  static std::string encode(std::string_view text);
  /// "?a=1&b=x%20y" from the pairs with a value (%-encoded); "" when none has one.
  static std::string query(const std::vector<std::pair<std::string, std::string>>& params);
  /// Prints an API answer (the JSON document, pretty unless --json) or its error; an exit code.
  int print_api(const automation::Result<boost::json::value>& answer) const;

  /// Prints an error (plain or JSON per --json) and returns its exit code.
  int error(const automation::Error& e) const;
  /// Prints a JSON document to stdout.
  void print_json(const boost::json::value& v) const;
  /// Prints a document (a local operation's, or a daemon's answer): as JSON with --json, else with
  /// `text`; its error otherwise. An exit code.
  int print_document(const automation::Result<boost::json::object>& doc, const std::function<void(const boost::json::object&)>& text) const;
  /// A daemon's answer printed as print_document() does (an answer that is not an object is an error).
  int print_answer(const automation::Result<boost::json::value>& answer,
                   const std::function<void(const boost::json::object&)>& text) const {
    return print_document(object_of(answer), text);
  }
  /// A daemon's answer as an object (errc::internal when it is another JSON value).
  static automation::Result<boost::json::object> object_of(const automation::Result<boost::json::value>& answer);
};

/// A field of a document as text: a string as it is, another value as JSON, `missing` when absent or null.
std::string field_text(const boost::json::object& o, std::string_view key, std::string_view missing = "");

// Subcommand registration, one per file.
void register_store(CLI::App& app, Context& ctx);
void register_audit(CLI::App& app, Context& ctx);
void register_config(CLI::App& app, Context& ctx);
void register_breaker(CLI::App& app, Context& ctx);
void register_history(CLI::App& app, Context& ctx);
void register_cron(CLI::App& app, Context& ctx);
void register_workflow(CLI::App& app, Context& ctx);
void register_schedule(CLI::App& app, Context& ctx);
void register_forecast(CLI::App& app, Context& ctx);
void register_emit(CLI::App& app, Context& ctx);
void register_ingest(CLI::App& app, Context& ctx);
void register_aggregate(CLI::App& app, Context& ctx);
void register_anomalies(CLI::App& app, Context& ctx);
void register_insights(CLI::App& app, Context& ctx);
void register_metrics(CLI::App& app, Context& ctx);
void register_report(CLI::App& app, Context& ctx);
void register_alerts(CLI::App& app, Context& ctx);
void register_scale(CLI::App& app, Context& ctx);
void register_health(CLI::App& app, Context& ctx);
void register_serve(CLI::App& app, Context& ctx);
void register_token(CLI::App& app, Context& ctx);
void register_timeline(CLI::App& app, Context& ctx);
void register_registry(CLI::App& app, Context& ctx);
void register_suggestions(CLI::App& app, Context& ctx);
void register_services(CLI::App& app, Context& ctx);

}  // namespace autoctl
