// The Docker Engine API actuator (https://docs.docker.com/engine/api/), over its unix socket.
#include <automation/core/json.hpp>
#include <automation/scaling/actuator.hpp>
#include <automation/storage/store.hpp>

#include "detail/http_client.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>

namespace automation::scaling {

namespace bj = boost::json;

struct DockerActuator::Container {
  std::string id;
  std::string name;
  std::string state;  // "running", "exited", ...
  TimePoint created{};
  int index = 0;  // from the automation.member label <resource>-<index>
};

namespace {

/// %-encodes a query parameter's value.
std::string encode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
      out += static_cast<char>(c);
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

std::string seconds(Duration d) {
  return std::to_string(std::max<long long>(0, std::chrono::duration_cast<std::chrono::seconds>(d).count()));
}

}  // namespace

Result<void> DockerOptions::validate() const {
  if (socket.empty()) return fail(errc::invalid_argument, "a docker actuator needs the API's socket");
  if (socket.size() >= 108)
    return fail(errc::invalid_argument, fmt::format("the Docker socket path {} is too long for a unix socket (107 bytes at most)", socket));
  if (image.empty()) return fail(errc::invalid_argument, "a docker actuator needs an image");
  if (timeout <= Duration{} || stop_timeout < Duration{})
    return fail(errc::invalid_argument, "a docker actuator's timeouts must be positive");
  return {};
}

DockerActuator::DockerActuator(std::string resource, DockerOptions options, const Clock& clock)
    : resource_(std::move(resource)), options_(std::move(options)), clock_(clock) {
  if (auto v = storage::check_resource_name("resource", resource_); !v) throw Exception(v.error());
  if (auto v = options_.validate(); !v) throw Exception(with_context(v.error(), fmt::format("resource \"{}\"", resource_)));
}

Result<std::string> DockerActuator::call(const std::string& method, const std::string& target, const std::string& body,
                                         std::vector<int> expect, Duration extra) {
  detail::HttpCall c;
  c.method = method;
  c.url = "http://docker" + target;
  c.unix_socket = options_.socket;
  c.body = body;
  if (!body.empty()) c.headers.emplace_back("Content-Type", "application/json");
  c.expect_status = std::move(expect);
  c.timeout = std::chrono::duration_cast<Millis>(options_.timeout + extra);  // a stop takes its grace on top
  const std::atomic<bool> never{false};
  auto a = detail::perform_http(c, never);
  if (!a) return with_context(a.error(), fmt::format("resource \"{}\": the Docker API at {}", resource_, options_.socket));
  if (!a->accepted) {
    std::string said = a->body;
    if (auto doc = json::parse(a->body); doc && doc->is_object())
      if (auto* m = doc->as_object().if_contains("message"); m && m->is_string()) said = std::string(m->as_string());
    return fail(errc::unavailable,
                fmt::format("resource \"{}\": Docker answered {} {} with {}: {}", resource_, method, target, a->status, said));
  }
  return std::move(a->body);
}

Result<std::vector<DockerActuator::Container>> DockerActuator::list(bool all) {
  const auto filters = json::dump(bj::object{{"label", bj::array{bj::value("automation.resource=" + resource_)}}});
  auto body = call("GET", fmt::format("/containers/json?all={}&filters={}", all ? "true" : "false", encode(filters)), "", {200});
  if (!body) return body.error();
  auto doc = json::parse(*body, "the Docker API's container list");
  if (!doc) return doc.error();
  if (!doc->is_array()) return fail(errc::corrupt, "the Docker API's container list is not an array");
  std::vector<Container> out;
  for (const auto& v : doc->as_array()) {
    if (!v.is_object()) continue;
    const auto& o = v.as_object();
    Container c;
    if (auto* id = o.if_contains("Id"); id && id->is_string()) c.id = std::string(id->as_string());
    if (auto* names = o.if_contains("Names");
        names && names->is_array() && !names->as_array().empty() && names->as_array()[0].is_string()) {
      c.name = std::string(names->as_array()[0].as_string());
      if (!c.name.empty() && c.name.front() == '/') c.name.erase(0, 1);
    }
    if (auto* st = o.if_contains("State"); st && st->is_string()) c.state = std::string(st->as_string());
    if (auto* cr = o.if_contains("Created"); cr && cr->is_number())
      c.created = TimePoint(std::chrono::seconds(cr->to_number<std::int64_t>()));
    if (auto* labels = o.if_contains("Labels"); labels && labels->is_object())
      if (auto* m = labels->as_object().if_contains("automation.member"); m && m->is_string()) {
        const std::string_view member = m->as_string();
        const auto dash = member.rfind('-');
        if (dash != std::string_view::npos) std::from_chars(member.data() + dash + 1, member.data() + member.size(), c.index);
      }
    if (!c.id.empty()) out.push_back(std::move(c));
  }
  // Oldest first, as a pool's members.
  std::sort(out.begin(), out.end(),
            [](const Container& a, const Container& b) { return std::tie(a.created, a.index) < std::tie(b.created, b.index); });
  return out;
}

Result<ResourceStatus> DockerActuator::status() {
  auto running = list(false);
  if (!running) return running.error();
  ResourceStatus st;
  st.size = static_cast<int>(running->size());
  const auto now = clock_.now();
  int warming = 0;
  for (const auto& c : *running) {
    Member m;
    m.name = c.name;
    m.started = c.created;
    m.ready = now - c.created >= options_.warmup;
    warming += m.ready ? 0 : 1;
    st.members.push_back(std::move(m));
  }
  st.detail = fmt::format("{} container{}{}", *st.size, *st.size == 1 ? "" : "s", warming ? fmt::format(", {} warming up", warming) : "");
  return st;
}

Result<void> DockerActuator::resize(int size, const std::string& reason) {
  if (size < 0) return fail(errc::invalid_argument, fmt::format("resource \"{}\": a size cannot be negative ({})", resource_, size));
  auto all = list(true);
  if (!all) return all.error();
  std::vector<Container> running, finished;
  int next = 1;
  for (const auto& c : *all) {
    next = std::max(next, c.index + 1);
    if (c.state == "running") running.push_back(c);
    if (c.state == "exited" || c.state == "dead" || c.state == "created") finished.push_back(c);
  }
  // Before adding members, the resource's finished containers are removed (their names are free
  // again); paused or restarting ones are left alone.
  if (static_cast<int>(running.size()) < size)
    for (const auto& c : finished)
      if (auto r = call("DELETE", fmt::format("/containers/{}?force=true", c.id), "", {204, 404}); !r) return r.error();
  while (static_cast<int>(running.size()) < size) {
    const auto name = fmt::format("{}-{}", resource_, next++);
    bj::array env;
    for (const auto& [k, v] : options_.environment) env.push_back(bj::value(k + "=" + v));
    env.push_back(bj::value("AUTOMATION_RESOURCE=" + resource_));
    env.push_back(bj::value("AUTOMATION_MEMBER=" + name));
    bj::object labels{{"automation.resource", resource_}, {"automation.member", name}, {"automation.reason", reason}};
    for (const auto& [k, v] : options_.labels) labels[k] = v;
    bj::object spec{{"Image", options_.image}, {"Env", std::move(env)}, {"Labels", std::move(labels)}};
    if (!options_.command.empty()) {
      bj::array cmd;
      for (const auto& a : options_.command) cmd.push_back(bj::value(a));
      spec["Cmd"] = std::move(cmd);
    }
    if (!options_.network.empty()) spec["HostConfig"] = bj::object{{"NetworkMode", options_.network}};
    auto created = call("POST", "/containers/create?name=" + encode(name), json::dump(spec), {201});
    if (!created) return created.error();
    auto doc = json::parse(*created, "the Docker API's answer to create");
    if (!doc || !doc->is_object() || !doc->as_object().contains("Id") || !doc->as_object().at("Id").is_string())
      return fail(errc::corrupt, fmt::format("resource \"{}\": Docker's answer to creating {} has no Id", resource_, name));
    const std::string id(doc->as_object().at("Id").as_string());
    if (auto r = call("POST", fmt::format("/containers/{}/start", id), "", {204, 304}); !r) return r.error();
    running.push_back(Container{id, name, "running", clock_.now(), next - 1});
  }
  while (static_cast<int>(running.size()) > size) {
    const auto newest = running.back();
    if (auto r = call("POST", fmt::format("/containers/{}/stop?t={}", newest.id, seconds(options_.stop_timeout)), "", {204, 304, 404},
                      options_.stop_timeout);
        !r)
      return r.error();
    if (auto r = call("DELETE", fmt::format("/containers/{}?force=true", newest.id), "", {204, 404}); !r) return r.error();
    running.pop_back();
  }
  return {};
}

Result<void> DockerActuator::restart(const std::string&) {
  auto running = list(false);
  if (!running) return running.error();
  for (const auto& c : *running)
    if (auto r = call("POST", fmt::format("/containers/{}/restart?t={}", c.id, seconds(options_.stop_timeout)), "", {204, 404},
                      options_.stop_timeout);
        !r)
      return r.error();
  return {};
}

}  // namespace automation::scaling
