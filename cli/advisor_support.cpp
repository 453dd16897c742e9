#include "advisor_support.hpp"

#include "delivery_support.hpp"

#include <automation/core/json.hpp>
#include <automation/core/time.hpp>
#include <automation/forecast/forecaster.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

namespace autoctl {

namespace it = automation::intelligence;
namespace st = automation::storage;
namespace bj = boost::json;
using automation::errc;
using automation::Result;

Definitions definitions_of(const Catalog& catalog, const std::vector<ScheduleEntry>& schedules) {
  Definitions d;
  for (const auto& e : catalog.entries) {
    d.workflows.push_back(e.definition);
    if (e.source != "built-in") d.sources.emplace(e.definition.name, e.source);
  }
  for (const auto& e : schedules) d.schedules.push_back(e.definition);
  return d;
}

it::AdvisorOptions advisor_options(const Context& ctx) {
  it::AdvisorOptions o;
  o.time_zone = ctx.config.time_zone;
  auto backend = forecaster_options(ctx, false);
  auto forecaster = std::make_shared<automation::forecast::Forecaster>(automation::SystemClock::instance(),
                                                                       backend ? *backend : automation::forecast::ForecasterOptions{});
  o.forecaster = [forecaster](std::span<const double> history, const automation::forecast::Options& options) {
    return forecaster->forecast(history, options);
  };
  return o;
}

Result<bj::object> suggestions_json(st::Store& store, const Definitions& defs, automation::TimePoint now, const it::AdvisorOptions& options,
                                    const std::string& kind) {
  auto got = it::suggest(store, defs.workflows, defs.schedules, now, options);
  if (!got) return got.error();
  bj::array out;
  for (const auto& s : *got)
    if (kind.empty() || s.kind == kind) out.push_back(it::to_json(s));
  return bj::object{{"as_of", automation::format_timestamp(now)}, {"suggestions", std::move(out)}};
}

Result<it::Suggestion> find_suggestion(st::Store& store, const Definitions& defs, automation::TimePoint now,
                                       const it::AdvisorOptions& options, const std::string& id) {
  auto got = it::suggest(store, defs.workflows, defs.schedules, now, options);
  if (!got) return got.error();
  for (auto& s : *got)
    if (s.id == id) return std::move(s);
  return automation::fail(errc::not_found,
                          fmt::format("no suggestion {} now: it was applied, or what it was based on no longer holds "
                                      "(the audit log has every suggestion.apply; list the current ones with `autoctl suggestions list`)",
                                      id));
}

Result<bj::object> insights_json(st::Store& store, automation::TimePoint now, const it::AdvisorOptions& options) {
  auto got = it::insights(store, now, options);
  if (!got) return got.error();
  bj::array out;
  for (const auto& i : *got) out.push_back(it::to_json(i));
  return bj::object{{"as_of", automation::format_timestamp(now)}, {"insights", std::move(out)}};
}

bj::object applied_json(const it::Suggestion& s, const it::Applied& a) {
  return bj::object{{"id", s.id},
                    {"kind", s.kind},
                    {"title", s.title},
                    {"summary", a.summary},
                    {"files", bj::value_from(a.files)},
                    {"workflow", a.workflow ? bj::value(a.workflow->name) : bj::value(nullptr)},
                    {"schedule", a.schedule ? bj::value(a.schedule->name) : bj::value(nullptr)}};
}

}  // namespace autoctl
