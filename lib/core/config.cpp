#include <automation/core/config.hpp>
#include <automation/core/files.hpp>
#include <automation/core/json.hpp>
#include <automation/core/time.hpp>
#include <detail/names.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <variant>

extern char** environ;

namespace automation {
namespace {

enum class Kind { string, number, duration, enumeration, zone, store_uri, log_level, log_format };

using Value = std::variant<std::string, double, Millis, LogLevel, LogFormat>;

struct KeyDef {
  std::string path;
  std::string env;
  Kind kind;
  std::string description;
  std::vector<std::string> choices;  // for Kind::enumeration
  double min = -INFINITY, max = INFINITY;
  std::function<void(Config&, const Value&)> set;
  std::function<boost::json::value(const Config&)> get;
};

std::string_view kind_name(Kind k) {
  switch (k) {
    case Kind::string:
      return "string";
    case Kind::number:
      return "number";
    case Kind::duration:
      return "duration";
    case Kind::enumeration:
      return "enum";
    case Kind::zone:
      return "time zone";
    case Kind::store_uri:
      return "store URI";
    case Kind::log_level:
      return "log level";
    case Kind::log_format:
      return "log format";
  }
  return "value";
}

const std::vector<KeyDef>& defs() {
  static const std::vector<KeyDef> d = [] {
    std::vector<KeyDef> v;
    auto str = [](std::string Config::*m) {
      return std::pair{[m](Config& c, const Value& x) { c.*m = std::get<std::string>(x); },
                       [m](const Config& c) { return boost::json::value(c.*m); }};
    };
    {
      auto [s, g] = str(&Config::db);
      v.push_back({"db", "AUTOMATION_DB", Kind::store_uri, "store URI: sqlite:PATH or memory:", {}, -INFINITY, INFINITY, s, g});
    }
    {
      auto [s, g] = str(&Config::workflows_dir);
      v.push_back({"workflows_dir",
                   "AUTOMATION_WORKFLOWS_DIR",
                   Kind::string,
                   "directory of workflow definitions (NAME.json); a file overrides the built-in of the same name",
                   {},
                   -INFINITY,
                   INFINITY,
                   s,
                   g});
    }
    {
      auto [s, g] = str(&Config::time_zone);
      v.push_back({"time_zone", "AUTOMATION_TIME_ZONE", Kind::zone, "IANA time zone for calendar periods", {}, -INFINITY, INFINITY, s, g});
    }
    v.push_back({"log.level",
                 "AUTOMATION_LOG_LEVEL",
                 Kind::log_level,
                 "trace, debug, info, warn, error or off",
                 {},
                 -INFINITY,
                 INFINITY,
                 [](Config& c, const Value& x) { c.log.level = std::get<LogLevel>(x); },
                 [](const Config& c) { return boost::json::value(std::string(to_string(c.log.level))); }});
    v.push_back({"log.format",
                 "AUTOMATION_LOG_FORMAT",
                 Kind::log_format,
                 "json or text",
                 {},
                 -INFINITY,
                 INFINITY,
                 [](Config& c, const Value& x) { c.log.format = std::get<LogFormat>(x); },
                 [](const Config& c) { return boost::json::value(c.log.format == LogFormat::json ? "json" : "text"); }});
    v.push_back({"log.file",
                 "AUTOMATION_LOG_FILE",
                 Kind::string,
                 "log file (empty: stderr)",
                 {},
                 -INFINITY,
                 INFINITY,
                 [](Config& c, const Value& x) { c.log.file = std::get<std::string>(x); },
                 [](const Config& c) { return boost::json::value(c.log.file); }});
    v.push_back({"storage.synchronous",
                 "AUTOMATION_STORAGE_SYNCHRONOUS",
                 Kind::enumeration,
                 "SQLite synchronous: normal or full",
                 {"normal", "full"},
                 -INFINITY,
                 INFINITY,
                 [](Config& c, const Value& x) { c.storage.synchronous = std::get<std::string>(x); },
                 [](const Config& c) { return boost::json::value(c.storage.synchronous); }});
    v.push_back({"storage.busy_timeout",
                 "AUTOMATION_STORAGE_BUSY_TIMEOUT",
                 Kind::duration,
                 "how long a write waits for a lock",
                 {},
                 -INFINITY,
                 INFINITY,
                 [](Config& c, const Value& x) { c.storage.busy_timeout = std::get<Millis>(x); },
                 [](const Config& c) { return boost::json::value(format_duration(c.storage.busy_timeout)); }});
    // A string key of a section (llm, reports): free text, or one of `choices`; a secret one (an API
    // key, a webhook URL) is shown as "***" when set.
    enum class Shown { plain, secret };
    auto text_key = [&v](std::string path, std::string env, auto section, auto member, std::string desc, std::vector<std::string> choices,
                         Shown shown) {
      const auto kind = choices.empty() ? Kind::string : Kind::enumeration;
      v.push_back({std::move(path), std::move(env), kind, std::move(desc), std::move(choices), -INFINITY, INFINITY,
                   [section, member](Config& c, const Value& x) { c.*section.*member = std::get<std::string>(x); },
                   [section, member, shown](const Config& c) {
                     const auto& value = c.*section.*member;
                     return boost::json::value(shown == Shown::secret && !value.empty() ? "***" : value);
                   }});
    };
    // A duration key of a section.
    auto duration_key = [&v](std::string path, std::string env, auto section, auto member, std::string desc) {
      v.push_back({std::move(path),
                   std::move(env),
                   Kind::duration,
                   std::move(desc),
                   {},
                   -INFINITY,
                   INFINITY,
                   [section, member](Config& c, const Value& x) { c.*section.*member = std::get<Millis>(x); },
                   [section, member](const Config& c) { return boost::json::value(format_duration(c.*section.*member)); }});
    };
    auto llm_text = [&](std::string name, std::string env, std::string LlmSettings::*m, std::string desc, bool secret) {
      text_key("llm." + name, std::move(env), &Config::llm, m, std::move(desc), {}, secret ? Shown::secret : Shown::plain);
    };
    llm_text("base_url", "AUTOMATION_LLM_BASE_URL", &LlmSettings::base_url,
             "OpenAI-compatible API base URL for LLM forecasts (empty: statistical only; else OPENAI_BASE_URL)", false);
    llm_text("model", "AUTOMATION_LLM_MODEL", &LlmSettings::model, "model name for LLM forecasts", false);
    llm_text("api_key", "AUTOMATION_LLM_API_KEY", &LlmSettings::api_key, "bearer token for the LLM API (else OPENAI_API_KEY)", true);
    llm_text("ca_file", "AUTOMATION_LLM_CA_FILE", &LlmSettings::ca_file, "extra trusted CA certificates (PEM) for the LLM API", false);
    v.push_back({"llm.timeout",
                 "AUTOMATION_LLM_TIMEOUT",
                 Kind::duration,
                 "how long to wait for the LLM before falling back",
                 {},
                 -INFINITY,
                 INFINITY,
                 [](Config& c, const Value& x) { c.llm.timeout = std::get<Millis>(x); },
                 [](const Config& c) { return boost::json::value(format_duration(c.llm.timeout)); }});
    auto reports_text = [&](std::string name, std::string env, std::string ReportsConfig::*m, std::string desc, bool secret) {
      text_key("reports." + name, std::move(env), &Config::reports, m, std::move(desc), {}, secret ? Shown::secret : Shown::plain);
    };
    auto reports_choice = [&](std::string name, std::string env, std::string ReportsConfig::*m, std::string desc,
                              std::vector<std::string> choices) {
      text_key("reports." + name, std::move(env), &Config::reports, m, std::move(desc), std::move(choices), Shown::plain);
    };
    reports_text("directory", "AUTOMATION_REPORTS_DIR", &ReportsConfig::directory,
                 "directory delivered reports are written to (empty: none)", false);
    reports_choice("format", "AUTOMATION_REPORTS_FORMAT", &ReportsConfig::format, "format of report files: json, md or html",
                   {"json", "md", "html"});
    reports_text("webhook_url", "AUTOMATION_REPORTS_WEBHOOK_URL", &ReportsConfig::webhook_url,
                 "http(s) URL reports are posted to, e.g. a Slack incoming webhook (empty: none)", true);
    reports_choice("webhook_style", "AUTOMATION_REPORTS_WEBHOOK_STYLE", &ReportsConfig::webhook_style,
                   "webhook payload: slack ({\"text\": summary}) or json (the whole report)", {"slack", "json"});
    reports_text("email_to", "AUTOMATION_REPORTS_EMAIL_TO", &ReportsConfig::email_to, "comma-separated report recipients (empty: none)",
                 false);
    reports_text("email_from", "AUTOMATION_REPORTS_EMAIL_FROM", &ReportsConfig::email_from, "sender address of report emails", false);
    reports_text("smtp_host", "AUTOMATION_SMTP_HOST", &ReportsConfig::smtp_host, "SMTP relay for report emails", false);
    v.push_back({"reports.smtp_port",
                 "AUTOMATION_SMTP_PORT",
                 Kind::number,
                 "SMTP relay port",
                 {},
                 1,
                 65535,
                 [](Config& c, const Value& x) { c.reports.smtp_port = std::get<double>(x); },
                 [](const Config& c) { return boost::json::value(c.reports.smtp_port); }});
    reports_text("ca_file", "AUTOMATION_REPORTS_CA_FILE", &ReportsConfig::ca_file, "extra trusted CA certificates (PEM) for the webhook",
                 false);
    text_key("alerts.rules_file", "AUTOMATION_ALERTS_RULES_FILE", &Config::alerts, &AlertsConfig::rules_file,
             "alert rules (JSON); while it does not exist the seed's thresholds apply", {}, Shown::plain);
    duration_key("alerts.interval", "AUTOMATION_ALERTS_INTERVAL", &Config::alerts, &AlertsConfig::interval,
                 "how often metrics are sampled and alert rules evaluated");
    duration_key("alerts.staleness", "AUTOMATION_ALERTS_STALENESS", &Config::alerts, &AlertsConfig::staleness,
                 "a metric sample older than this is no data");
    text_key("scaling.resources_file", "AUTOMATION_SCALING_RESOURCES_FILE", &Config::scaling, &ScalingConfig::resources_file,
             "scaled resources with their policies and actuators (JSON); while it does not exist there are none", {}, Shown::plain);
    text_key("scaling.state_dir", "AUTOMATION_SCALING_STATE_DIR", &Config::scaling, &ScalingConfig::state_dir,
             "where process pools record their members and write their logs", {}, Shown::plain);
    text_key("healing.targets_file", "AUTOMATION_HEALING_TARGETS_FILE", &Config::healing, &HealingConfig::targets_file,
             "services to supervise and health targets to heal (JSON); while it does not exist the seed strategies apply", {},
             Shown::plain);
    text_key("healing.log_dir", "AUTOMATION_HEALING_LOG_DIR", &Config::healing, &HealingConfig::log_dir,
             "where supervised services' output goes (<log_dir>/<service>.log)", {}, Shown::plain);
    v.push_back({"scaling.interval",
                 "AUTOMATION_SCALING_INTERVAL",
                 Kind::duration,
                 "how often the daemon evaluates every resource",
                 {},
                 -INFINITY,
                 INFINITY,
                 [](Config& c, const Value& x) { c.scaling.interval = std::get<Millis>(x); },
                 [](const Config& c) { return boost::json::value(format_duration(c.scaling.interval)); }});
    text_key("remote.url", "AUTOMATION_REMOTE_URL", &Config::remote, &RemoteConfig::url,
             "a running daemon's URL: commands that can go through its API do, instead of opening the store (--server)", {}, Shown::plain);
    text_key("remote.token", "AUTOMATION_REMOTE_TOKEN", &Config::remote, &RemoteConfig::token, "the bearer token for remote.url (--token)",
             {}, Shown::secret);
    text_key("remote.ca_file", "AUTOMATION_REMOTE_CA_FILE", &Config::remote, &RemoteConfig::ca_file,
             "extra trusted CA certificates (PEM) for an https remote.url", {}, Shown::plain);
    text_key("server.address", "AUTOMATION_SERVER_ADDRESS", &Config::server, &ServerConfig::address,
             "the address autoctl serve listens on (127.0.0.1: this host only)", {}, Shown::plain);
    auto server_number = [&v](std::string name, std::string env, double ServerConfig::*m, std::string desc, double lo, double hi) {
      v.push_back({"server." + name,
                   std::move(env),
                   Kind::number,
                   std::move(desc),
                   {},
                   lo,
                   hi,
                   [m](Config& c, const Value& x) { c.server.*m = std::get<double>(x); },
                   [m](const Config& c) { return boost::json::value(c.server.*m); }});
    };
    server_number("port", "AUTOMATION_SERVER_PORT", &ServerConfig::port, "the port autoctl serve listens on (0: any free port)", 0, 65535);
    server_number("threads", "AUTOMATION_SERVER_THREADS", &ServerConfig::threads,
                  "the daemon's event-loop threads (HTTP, periodic component work, in-process workflow steps)", 1, 64);
    v.push_back({"server.drain_timeout",
                 "AUTOMATION_SERVER_DRAIN_TIMEOUT",
                 Kind::duration,
                 "on SIGTERM, how long running workflow runs get to finish before they are interrupted (the next start resumes them)",
                 {},
                 -INFINITY,
                 INFINITY,
                 [](Config& c, const Value& x) { c.server.drain_timeout = std::get<Millis>(x); },
                 [](const Config& c) { return boost::json::value(format_duration(c.server.drain_timeout)); }});
    duration_key("registry.default_ttl", "AUTOMATION_REGISTRY_DEFAULT_TTL", &Config::registry, &RegistryConfig::default_ttl,
                 "how long a registered node may go without a heartbeat before it is down, unless it says (0: never)");
    duration_key("registry.check_interval", "AUTOMATION_REGISTRY_CHECK_INTERVAL", &Config::registry, &RegistryConfig::check_interval,
                 "how often the daemon marks silent nodes down and sends its own heartbeat");
    text_key("discovery.hosts", "AUTOMATION_DISCOVERY_HOSTS", &Config::discovery, &DiscoveryConfig::hosts,
             "comma-separated hosts the daemon scans for HTTP services", {}, Shown::plain);
    text_key("discovery.ports", "AUTOMATION_DISCOVERY_PORTS", &Config::discovery, &DiscoveryConfig::ports,
             "comma-separated ports the daemon scans on each host", {}, Shown::plain);
    duration_key("discovery.interval", "AUTOMATION_DISCOVERY_INTERVAL", &Config::discovery, &DiscoveryConfig::interval,
                 "how often the daemon scans (0: only when asked, POST /api/v1/automation/discovery/scan)");
    duration_key("discovery.timeout", "AUTOMATION_DISCOVERY_TIMEOUT", &Config::discovery, &DiscoveryConfig::timeout,
                 "how long a scan waits for each address to answer");
    auto pct = [&v](std::string name, std::string env, double ThresholdsConfig::*m, std::string desc) {
      v.push_back({"thresholds." + name,
                   std::move(env),
                   Kind::number,
                   std::move(desc),
                   {},
                   0,
                   100,
                   [m](Config& c, const Value& x) { c.thresholds.*m = std::get<double>(x); },
                   [m](const Config& c) { return boost::json::value(c.thresholds.*m); }});
    };
    pct("cpu_high", "AUTOMATION_CPU_HIGH_THRESHOLD", &ThresholdsConfig::cpu_high, "CPU percent above which to alert / scale up");
    pct("cpu_low", "AUTOMATION_CPU_LOW_THRESHOLD", &ThresholdsConfig::cpu_low, "CPU percent below which to scale down");
    pct("memory_high", "AUTOMATION_MEMORY_HIGH_THRESHOLD", &ThresholdsConfig::memory_high, "memory percent above which to alert");
    pct("disk_high", "AUTOMATION_DISK_HIGH_THRESHOLD", &ThresholdsConfig::disk_high, "disk percent above which to alert");
    return v;
  }();
  return d;
}

// Converts a JSON value (from the file) or a string (from the environment) to the key's type.
Result<Value> convert(const KeyDef& k, const boost::json::value* jv, const std::string* text) {
  auto type_error = [&](std::string_view expected) -> Error {
    if (jv) return fail(errc::config, fmt::format("expected {}, got {} {}", expected, json::type_name(*jv), json::dump(*jv)));
    return fail(errc::config, fmt::format("expected {}, got \"{}\"", expected, *text));
  };
  std::string s;
  if (k.kind == Kind::number) {
    double d = 0;
    if (jv) {
      if (!jv->is_number()) return type_error("a number");
      d = jv->to_number<double>();
    } else {
      const char* b = text->c_str();
      char* e = nullptr;
      errno = 0;
      d = std::strtod(b, &e);
      if (text->empty() || e != b + text->size() || errno == ERANGE || !std::isfinite(d)) return type_error("a number");
    }
    if (d < k.min || d > k.max) return fail(errc::config, fmt::format("{} is out of range [{}, {}]", d, k.min, k.max));
    return Value(d);
  }
  if (jv) {
    if (!jv->is_string()) return type_error(fmt::format("a string ({})", kind_name(k.kind)));
    s = std::string(jv->get_string());
  } else {
    s = *text;
  }
  switch (k.kind) {
    case Kind::string:
      return Value(s);
    case Kind::duration: {
      auto d = parse_duration(s);
      if (!d) return fail(errc::config, d.error().message);
      return Value(d.value());
    }
    case Kind::enumeration:
      for (const auto& c : k.choices)
        if (c == s) return Value(s);
      return fail(errc::config, fmt::format("\"{}\" is not one of {}", s, fmt::join(k.choices, ", ")));
    case Kind::zone: {
      auto z = TimeZone::locate(s);
      if (!z) return fail(errc::config, z.error().message);
      return Value(s);
    }
    case Kind::store_uri:
      if (s == "memory:" || (s.rfind("sqlite:", 0) == 0 && s.size() > 7)) return Value(s);
      return fail(errc::config, fmt::format("\"{}\" is not a store URI (use sqlite:PATH or memory:)", s));
    case Kind::log_level: {
      auto l = parse_log_level(s);
      if (!l) return fail(errc::config, l.error().message);
      return Value(l.value());
    }
    case Kind::log_format: {
      auto f = parse_log_format(s);
      if (!f) return fail(errc::config, f.error().message);
      return Value(f.value());
    }
    case Kind::number:
      break;
  }
  return fail(errc::internal, "unhandled config kind");
}

std::string suggestion(std::string_view unknown, bool env) {
  std::vector<std::string_view> names;
  for (const auto& k : defs()) names.push_back(env ? std::string_view(k.env) : std::string_view(k.path));
  return detail::did_you_mean(unknown, names);
}

void walk(const boost::json::object& obj, const std::string& prefix, std::string_view origin, Config& cfg,
          std::vector<std::string>& problems) {
  for (const auto& kv : obj) {
    const std::string path = prefix.empty() ? std::string(kv.key()) : prefix + "." + std::string(kv.key());
    const KeyDef* def = nullptr;
    bool is_section = false;
    for (const auto& k : defs()) {
      if (k.path == path) def = &k;
      if (k.path.rfind(path + ".", 0) == 0) is_section = true;
    }
    if (def) {
      auto v = convert(*def, &kv.value(), nullptr);
      if (!v) {
        problems.push_back(fmt::format("{}: \"{}\": {}", origin, path, v.error().message));
        continue;
      }
      def->set(cfg, v.value());
      cfg.sources[path] = fmt::format("file:{}", origin);
    } else if (is_section) {
      if (!kv.value().is_object()) {
        problems.push_back(fmt::format("{}: \"{}\": expected an object, got {}", origin, path, json::type_name(kv.value())));
        continue;
      }
      walk(kv.value().get_object(), path, origin, cfg, problems);
    } else {
      problems.push_back(fmt::format("{}: unknown key \"{}\"{}", origin, path, suggestion(path, false)));
    }
  }
}

}  // namespace

boost::json::object Config::to_json() const {
  boost::json::object root;
  for (const auto& k : defs()) {
    boost::json::object* node = &root;
    std::string_view path = k.path;
    std::size_t dot;
    while ((dot = path.find('.')) != std::string_view::npos) {
      auto& child = (*node)[path.substr(0, dot)];
      if (!child.is_object()) child = boost::json::object();
      node = &child.get_object();
      path.remove_prefix(dot + 1);
    }
    (*node)[path] = k.get(*this);
  }
  return root;
}

const std::vector<ConfigKey>& config_keys() {
  static const std::vector<ConfigKey> keys = [] {
    std::vector<ConfigKey> out;
    for (const auto& k : defs()) out.push_back({k.path, k.env, std::string(kind_name(k.kind)), k.description});
    return out;
  }();
  return keys;
}

Environment process_environment() {
  Environment env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    if (kv.rfind("AUTOMATION_", 0) != 0) continue;
    const auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return env;
}

Result<Config> parse_config(std::string_view json_text, std::string_view origin, const Environment& env) {
  Config cfg;
  for (const auto& k : defs()) cfg.sources[k.path] = "default";
  std::vector<std::string> problems;
  if (!json_text.empty()) {
    auto doc = json::parse(json_text, origin);
    if (!doc) return fail(errc::config, doc.error().message);
    if (!doc->is_object())
      return fail(errc::config, fmt::format("{}: expected a JSON object at the top level, got {}", origin, json::type_name(*doc)));
    walk(doc->get_object(), "", origin, cfg, problems);
  }
  for (const auto& [name, value] : env) {
    if (name.rfind("AUTOMATION_", 0) != 0) continue;
    // Variables that select the config itself or belong to the test harness are not keys.
    if (name == "AUTOMATION_CONFIG") continue;
    const KeyDef* def = nullptr;
    for (const auto& k : defs())
      if (k.env == name) def = &k;
    if (!def) {
      problems.push_back(fmt::format("environment: unknown variable {}{}", name, suggestion(name, true)));
      continue;
    }
    auto v = convert(*def, nullptr, &value);
    if (!v) {
      problems.push_back(fmt::format("environment: {} (\"{}\"): {}", name, def->path, v.error().message));
      continue;
    }
    def->set(cfg, v.value());
    cfg.sources[def->path] = "env:" + name;
  }
  if (!problems.empty()) {
    std::string msg = problems.size() == 1 ? problems.front()
                                           : fmt::format("{} configuration problems:\n  {}", problems.size(), fmt::join(problems, "\n  "));
    return fail(errc::config, msg);
  }
  return cfg;
}

Result<Config> load_config(const std::optional<std::string>& file, const Environment& env) {
  std::string text;
  std::string origin = "defaults";
  if (file) {
    auto read = read_file(*file);
    if (!read) return fail(errc::not_found, fmt::format("config file {} cannot be read: {}", *file, read.error().message));
    text = std::move(*read);
    origin = *file;
    if (text.find_first_not_of(" \t\r\n") == std::string::npos)
      return fail(errc::config, fmt::format("{}: the file is empty (expected a JSON object, e.g. {{}})", *file));
  }
  return parse_config(text, origin, env);
}

}  // namespace automation
