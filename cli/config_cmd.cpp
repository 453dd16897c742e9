// autoctl config show | check | keys
#include "context.hpp"

#include <automation/core/json.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>

namespace autoctl {

void register_config(CLI::App& app, Context& ctx) {
  auto* config = app.add_subcommand("config", "Show and check configuration");
  config->require_subcommand(1);

  auto* show = config->add_subcommand("show", "The effective configuration and where each value came from");
  show->footer("Examples:\n  autoctl --config prod.json config show\n  AUTOMATION_CPU_HIGH_THRESHOLD=75 autoctl config show --json");
  show->callback([&ctx] {
    ctx.run = [&ctx] {
      if (ctx.global.json) {
        boost::json::object sources;
        for (const auto& [k, v] : ctx.config.sources) sources[k] = v;
        ctx.print_json(boost::json::object{{"config", ctx.config.to_json()}, {"sources", sources}});
      } else {
        const boost::json::value doc = ctx.config.to_json();
        for (const auto& key : automation::config_keys()) {
          std::string pointer = "/" + key.path;
          std::replace(pointer.begin(), pointer.end(), '.', '/');
          const auto& v = doc.at_pointer(pointer);
          const std::string shown = automation::json::dump(v);  // 75, not Boost's 7.5E1
          fmt::print("{:<24} {:<28} ({})\n", key.path, shown, ctx.config.sources[key.path]);
        }
      }
      return ex_ok;
    };
  });

  auto* check = config->add_subcommand("check", "Check a configuration file and the AUTOMATION_* environment; exit 78 on any problem");
  auto file = std::make_shared<std::string>();
  check->add_option("file", *file, "The file to check (default: --config)");
  check->footer("Examples:\n  autoctl config check /etc/automation.json");
  check->callback([&ctx, file] {
    ctx.run = [&ctx, file]() -> int {
      if (!file->empty()) {
        auto cfg = automation::load_config(*file, automation::process_environment());
        if (!cfg)
          return ctx.error(cfg.error().is(automation::errc::not_found) ? automation::Error(automation::errc::config, cfg.error().message)
                                                                       : cfg.error());
      }
      if (ctx.global.json) {
        ctx.print_json(boost::json::object{{"ok", true}});
      } else {
        fmt::print("configuration is valid\n");
      }
      return ex_ok;
    };
  });

  auto* keys = config->add_subcommand("keys", "Every configuration key with its environment variable and type");
  keys->callback([&ctx] {
    ctx.run = [&ctx] {
      if (ctx.global.json) {
        boost::json::array arr;
        for (const auto& k : automation::config_keys())
          arr.push_back(boost::json::object{{"path", k.path}, {"env", k.env}, {"type", k.type}, {"description", k.description}});
        ctx.print_json(boost::json::object{{"keys", arr}});
      } else {
        for (const auto& k : automation::config_keys()) fmt::print("{:<24} {:<34} {:<10} {}\n", k.path, k.env, k.type, k.description);
      }
      return ex_ok;
    };
  });
}

}  // namespace autoctl
