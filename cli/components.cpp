#include "components.hpp"
#include "delivery_support.hpp"

#include <automation/core/files.hpp>
#include <automation/core/json.hpp>
#include <automation/core/time.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

#include <filesystem>
#include <set>

namespace autoctl {
namespace hl = automation::healing;
namespace sc = automation::scaling;
namespace st = automation::storage;
namespace rs = automation::resilience;
namespace bj = boost::json;
using automation::errc;
using automation::Result;

Result<HealingSetup> healing_setup(const Context& ctx) {
  HealingSetup s;
  const auto& file = ctx.config.healing.targets_file;
  auto exists = ctx.configured_file("healing.targets_file", file);
  if (!exists) return exists.error();
  if (*exists) {
    auto text = automation::read_file(file);
    if (!text) return automation::fail(errc::io, fmt::format("healing.targets_file {}: cannot be read: {}", file, text.error().message));
    auto parsed = hl::parse_healing(*text, file, std::filesystem::absolute(file).parent_path(),
                                    std::filesystem::absolute(ctx.config.healing.log_dir));
    if (!parsed) return automation::Error(errc::config, parsed.error().message);
    s.config = std::move(*parsed);
    s.source = "file:" + file;
  } else {
    s.source = fmt::format("the seed strategies ({} does not exist)", file.empty() ? "no healing.targets_file" : file);
  }
  if (s.config.seeds) {
    hl::SeedOptions seeds;
    if (auto path = st::sqlite_path(ctx.store_uri()); path && !path->empty()) {
      seeds.database = std::filesystem::absolute(*path).string();
      seeds.data_directory = std::filesystem::absolute(*path).parent_path().string();
    }
    seeds.disk_limit = ctx.config.thresholds.disk_high;
    for (const auto& svc : s.config.services) seeds.services.push_back(svc.name);
    std::set<std::string> named;
    for (const auto& t : s.config.targets) named.insert(t.name);
    for (auto& t : hl::seed_targets(seeds))
      if (!named.contains(t.name)) s.targets.push_back(std::move(t));
  }
  for (auto& t : s.config.targets) s.targets.push_back(t);
  return s;
}

Result<ScalingSetup> scaling_configs(const Context& ctx) {
  ScalingSetup s;
  const auto& file = ctx.config.scaling.resources_file;
  auto exists = ctx.configured_file("scaling.resources_file", file);
  if (!exists) return exists.error();
  s.source = *exists ? "file:" + file : fmt::format("none ({} does not exist)", file.empty() ? "no scaling.resources_file" : file);
  if (*exists) {
    auto text = automation::read_file(file);
    if (!text) return automation::fail(errc::io, fmt::format("scaling.resources_file {}: cannot be read: {}", file, text.error().message));
    auto base = std::filesystem::absolute(file).parent_path();
    auto configs = sc::parse_resources(*text, file, base, std::filesystem::absolute(ctx.config.scaling.state_dir));
    if (!configs) return automation::Error(errc::config, configs.error().message);
    s.configs = std::move(*configs);
  }
  const auto& th = ctx.config.thresholds;
  for (auto& c : s.configs)
    // The seed thresholds follow the configuration's thresholds.*.
    if (c.spec.policy.mode == sc::PolicyMode::steps && c.spec.policy.bands.empty())
      c.spec.policy.bands = sc::seed_steps(th.cpu_high, th.cpu_low, th.memory_high).bands;
  return s;
}

Result<Scaler> make_scaler(const Context& ctx, st::Store& store, const ScalingSetup& setup, const automation::Clock& clock) {
  Scaler s;
  bool predictive = false;
  for (const auto& c : setup.configs) predictive = predictive || c.spec.predictive.has_value();
  if (predictive) {
    auto fo = forecaster_options(ctx, false);
    if (!fo) return fo.error();
    s.forecaster = std::make_unique<automation::forecast::Forecaster>(clock, std::move(*fo));
  }
  s.scaler = std::make_unique<sc::ResourceScaler>(store, clock, s.forecaster.get());
  for (const auto& c : setup.configs) {
    auto actuator = sc::make_actuator(c, clock);
    if (!actuator)
      return automation::Error(errc::config, fmt::format("{}: {}", ctx.config.scaling.resources_file, actuator.error().message));
    if (auto r = s.scaler->add(c.spec, std::move(*actuator)); !r) return automation::Error(errc::config, r.error().message);
  }
  return s;
}

bj::object healing_record_json(const st::HealingRecord& r) {
  auto detail = automation::json::parse(r.detail);
  return {{"id", r.id},
          {"target", r.target},
          {"time", automation::format_timestamp(r.time)},
          {"kind", r.kind},
          {"state", r.state},
          {"action", r.action},
          {"step", r.step},
          {"attempt", r.attempt},
          {"actor", r.actor},
          {"reason", r.reason},
          {"outcome", r.outcome},
          {"error", r.error},
          {"dry_run", r.dry_run},
          {"detail", detail ? *detail : bj::value(bj::object{})}};
}

bj::object scaling_record_json(const st::ScalingRecord& r) {
  auto inputs = automation::json::parse(r.inputs);
  return {{"id", r.id},
          {"resource", r.resource},
          {"action", r.action},
          {"time", automation::format_timestamp(r.time)},
          {"actor", r.actor},
          {"current", r.current},
          {"recommended", r.recommended},
          {"desired", r.desired},
          {"reason", r.reason},
          {"message", r.message},
          {"outcome", r.outcome},
          {"error", r.error},
          {"dry_run", r.dry_run},
          {"metrics_ok", r.metrics_ok},
          {"active", r.active},
          {"inputs", inputs ? *inputs : bj::value(bj::object{})}};
}

bj::object scaling_report_json(const sc::ResourceReport& rep) {
  bj::object o{{"resource", rep.spec.name},
               {"actuator", rep.actuator},
               {"policy", sc::to_json(rep.spec.policy)},
               {"policy_source", rep.policy_source},
               {"dry_run", rep.spec.dry_run}};
  if (rep.status) {
    bj::array members;
    for (const auto& m : rep.status->members) {
      bj::object mo{{"name", m.name}, {"ready", m.ready}};
      if (m.pid) mo["pid"] = m.pid;
      if (m.started != automation::TimePoint{}) mo["started"] = automation::format_timestamp(m.started);
      members.push_back(std::move(mo));
    }
    o["size"] = automation::json::or_null(rep.status->size);
    o["members"] = std::move(members);
    o["detail"] = rep.status->detail;
  } else {
    o["size"] = nullptr;
    o["error"] = rep.status.error().message;
  }
  o["last_decision"] = rep.last_decision ? bj::value(scaling_record_json(*rep.last_decision)) : bj::value(nullptr);
  o["last_change"] = rep.last_change ? bj::value(scaling_record_json(*rep.last_change)) : bj::value(nullptr);
  return o;
}

boost::json::object alert_record_json(const st::AlertRecord& a) {
  auto values = automation::json::parse(a.values);
  const auto at = automation::json::time_or_null;

  return {{"id", a.id},
          {"rule", a.rule},
          {"labels", a.labels},
          {"severity", a.severity},
          {"state", a.state},
          {"summary", a.summary},
          {"values", values ? *values : boost::json::value(boost::json::object{})},
          {"active_since", at(a.active_since)},
          {"fired", at(a.fired)},
          {"resolved", at(a.resolved)},
          {"acknowledged", at(a.acknowledged)},
          {"acknowledged_by", a.acknowledged_by},
          {"ack_reason", a.ack_reason},
          {"notified_state", a.notified_state},
          {"notified", at(a.notified)},
          {"level", a.level},
          {"reopened", a.reopened},
          {"reason", a.reason},
          {"updated", at(a.updated)}};
}

bj::object token_record_json(const st::TokenRecord& t) {
  const auto at = automation::json::time_or_null;

  return {{"id", t.id},
          {"name", t.name},
          {"role", t.role},
          {"created", at(t.created)},
          {"created_by", t.created_by},
          {"expires", at(t.expires)},
          {"revoked", at(t.revoked)},
          {"revoked_by", t.revoked_by},
          {"last_used", at(t.last_used)},
          {"last_used_from", t.last_used_from}};
}

bj::object audit_record_json(const st::AuditRecord& r) {
  return {{"id", r.id},
          {"time", automation::format_timestamp(r.time)},
          {"actor", r.actor},
          {"action", r.action},
          {"resource", r.resource},
          {"origin", r.origin},
          {"outcome", std::string(st::to_string(r.outcome))},
          {"reason", r.reason},
          {"details", automation::json::object_or_text(r.details)},
          {"correlation_id", r.correlation_id}};
}

Result<BreakerChange> set_breaker(st::Store& store, const automation::Clock& clock, const std::string& name, rs::BreakerState to,
                                  const std::string& reason, const std::string& actor) {
  auto existing = store.get_breaker(name);
  if (!existing) return existing.error();
  if (!*existing && to == rs::BreakerState::closed)
    return automation::fail(errc::not_found, fmt::format("no circuit breaker named '{}' is stored (see `autoctl breaker list`)", name));
  st::BreakerRecord rec = *existing ? **existing : st::BreakerRecord{.name = name};
  BreakerChange change;
  change.from = *existing ? rec.state : "none";
  rec.state = std::string(rs::to_string(to));
  rec.reason = to == rs::BreakerState::closed ? "reset" : "forced_open";
  rec.open_until = {};
  rec.open_attempt = 0;
  // The window starts over: sharing processes clear theirs when they adopt a reset.
  rec.details = automation::json::dump(bj::object{{"by", actor}, {"why", reason}});
  rec.updated = clock.now();
  rec.updated_by = actor;
  auto w = store.put_breaker(rec, *existing ? (*existing)->version : 0);
  if (!w) return w.error();
  change.to = rec.state;
  change.version = *w;
  return change;
}

}  // namespace autoctl
