// autoctl workflow validate FILE (the engine's run/list/history commands come with the engine)
#include "context.hpp"

#include <automation/workflow/definition.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

namespace autoctl {

void register_workflow(CLI::App& app, Context& ctx) {
  auto* wf = app.add_subcommand("workflow", "Workflow definitions");
  wf->require_subcommand(1);
  auto file = std::make_shared<std::string>();
  auto* validate = wf->add_subcommand("validate", "Check a workflow JSON file; every problem is listed with its JSON path (exit 65)");
  validate->add_option("file", *file, "The workflow definition (JSON)")->required();
  validate->footer("Examples:\n  autoctl workflow validate workflows/deploy.json\n  autoctl --json workflow validate deploy.json");
  validate->callback([&ctx, file] {
    ctx.run = [&ctx, file]() -> int {
      auto w = automation::workflow::load_workflow_file(*file);
      if (!w) return ctx.error(w.error());
      const auto order = w->topological_order();
      if (ctx.global.json) {
        boost::json::array steps;
        for (auto i : order) {
          const auto& s = w->steps[i];
          boost::json::array needs;
          for (const auto& n : s.needs) needs.emplace_back(n);
          steps.push_back(
              boost::json::object{{"id", s.id}, {"kind", automation::workflow::to_string(s.action.kind)}, {"needs", std::move(needs)}});
        }
        ctx.print_json(boost::json::object{{"valid", true}, {"name", w->name}, {"steps", std::move(steps)}});
      } else {
        std::vector<std::string_view> ids;
        for (auto i : order) ids.push_back(w->steps[i].id);
        fmt::print("{}: workflow \"{}\" is valid: {} step{} ({})\n", *file, w->name, w->steps.size(), w->steps.size() == 1 ? "" : "s",
                   fmt::join(ids, " -> "));
      }
      return ex_ok;
    };
  });
}

}  // namespace autoctl
