// The node registry and discovery: registrations, heartbeats and expiry on a manual clock, with
// the events and reasons they leave; the topology's edges; scans of a real HTTP server on
// 127.0.0.1 that find it, lose it and leave registered nodes alone.
#include <automation/core/json.hpp>
#include <automation/registry/discovery.hpp>
#include <automation/registry/registry.hpp>
#include <automation/storage/memory_store.hpp>
#include <automation/testing/manual_clock.hpp>

#include "support/catch_result.hpp"
#include "support/http_server.hpp"
#include "support/ports.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <optional>

using namespace automation;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;
namespace bj = boost::json;

namespace {

std::vector<storage::EventRecord> events(storage::Store& store, std::string_view name) {
  storage::EventQuery q;
  q.name = std::string(name);
  return store.list_events(q).value();
}

bj::object payload(const storage::EventRecord& e) { return json::parse(e.payload).value().as_object(); }

registry::Registration parse(std::string_view id, std::string_view body) {
  auto r = registry::parse_registration(id, json::parse(body).value().as_object());
  REQUIRE(r);
  return *r;
}

}  // namespace

TEST_CASE(
    "registry: heartbeats keep a node up, silence past its ttl marks it down with an event and a reason, a heartbeat brings it back") {
  storage::MemoryStore store;
  testing::ManualClock clock;
  registry::Registry reg(store, clock);
  const TimePoint t0 = clock.now();

  auto web = reg.register_node(parse("web1", R"({"kind":"host","address":"10.0.0.7","ttl":"30s",
      "services":[{"name":"api","port":8080,"depends_on":["db/postgres","cache"]}],"depends_on":["db"],"labels":{"zone":"a"}})"),
                               "node web1");
  REQUIRE(web);
  CHECK(web->state == "up");
  CHECK(web->source == "registered");
  CHECK(web->ttl == 30s);
  CHECK(web->version == 1);
  REQUIRE(reg.register_node(parse("db", R"({"kind":"service","services":[{"name":"postgres","port":5432}],"ttl":10})"), "node db"));
  CHECK(events(store, "registry.node.registered").size() == 2);

  // 20 s on: web1 beats, db has been silent for twice its ttl.
  clock.advance(20s);
  auto beat = reg.heartbeat("web1", "node web1");
  REQUIRE(beat);
  CHECK(beat->last_seen == clock.now());
  CHECK(beat->version == 2);
  auto down = reg.expire();
  REQUIRE(down);
  REQUIRE(down->size() == 1);
  CHECK(down->front().node == "db");
  CHECK(down->front().reason == "no heartbeat for 20s (ttl 10s)");
  auto db = store.get_node("db").value();
  REQUIRE(db);
  CHECK(db->state == "down");
  CHECK(db->state_since == clock.now());
  CHECK(db->reason == "no heartbeat for 20s (ttl 10s)");
  auto raised = events(store, "registry.node.down");
  REQUIRE(raised.size() == 1);
  CHECK(payload(raised[0]).at("node") == bj::value("db"));
  CHECK(payload(raised[0]).at("reason") == bj::value("no heartbeat for 20s (ttl 10s)"));
  // A second pass raises nothing more.
  CHECK(reg.expire()->empty());

  // web1 is down exactly when its ttl has passed, not a millisecond before.
  clock.advance(30s - 1ms);
  CHECK(reg.expire()->empty());
  clock.advance(1ms);
  REQUIRE(reg.expire()->size() == 1);
  CHECK(store.get_node("web1").value()->state == "down");

  // A heartbeat brings db back up, and says so.
  auto back = reg.heartbeat("db", "node db");
  REQUIRE(back);
  CHECK(back->state == "up");
  CHECK(back->reason == "heartbeat after being down");
  REQUIRE(events(store, "registry.node.up").size() == 1);
  CHECK(payload(events(store, "registry.node.up")[0]).at("from") == bj::value("down"));
  // Registering again keeps the registration time.
  clock.advance(1s);
  auto again = reg.register_node(parse("web1", R"({"kind":"host","ttl":0})"), "node web1");
  REQUIRE(again);
  CHECK(again->registered == t0);
  CHECK(again->state == "up");
  CHECK(again->ttl == 0ms);
  clock.advance(24h);  // ttl 0: never expires
  for (const auto& t : reg.expire().value()) CHECK(t.node != "web1");

  auto unknown = reg.heartbeat("ghost", "node ghost");
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().is(errc::not_found));
  CHECK_THAT(unknown.error().message, Contains("register it"));
  CHECK(reg.deregister("web1").value());
  CHECK_FALSE(reg.deregister("web1").value());
}

TEST_CASE("registry: the topology lists every dependency edge with the state of what it points at, and the ones nothing answers for") {
  storage::MemoryStore store;
  testing::ManualClock clock;
  registry::Registry reg(store, clock);
  REQUIRE(reg.register_node(
      parse("web1", R"({"services":[{"name":"api","depends_on":["db/postgres","db/redis"]}],"depends_on":["db","cache"]})"), "t"));
  REQUIRE(reg.register_node(parse("db", R"({"services":[{"name":"postgres"}],"ttl":"5s"})"), "t"));
  clock.advance(6s);
  REQUIRE(reg.expire());
  auto t = reg.topology();
  REQUIRE(t);
  CHECK(t->nodes.size() == 2);
  CHECK(t->up == 1);
  CHECK(t->down == 1);
  REQUIRE(t->edges.size() == 4);
  // by from, then to
  CHECK(t->edges[0].from == "web1");
  CHECK(t->edges[0].to == "cache");
  CHECK_FALSE(t->edges[0].resolved);
  CHECK(t->edges[1].to == "db");
  CHECK(t->edges[1].resolved);
  CHECK(t->edges[1].state == "down");
  CHECK(t->edges[2].from == "web1/api");
  CHECK(t->edges[2].to == "db/postgres");
  CHECK(t->edges[2].resolved);
  CHECK(t->edges[3].to == "db/redis");
  CHECK_FALSE(t->edges[3].resolved);  // db has no such service
  auto doc = registry::to_json(*t);
  CHECK(doc.at("edges").as_array().size() == 4);
  CHECK(doc.at("nodes").as_array()[0].as_object().at("services").is_array());
}

TEST_CASE("registry: a registration names what is wrong with it") {
  auto bad = [](std::string_view id, std::string_view body) {
    auto r = registry::parse_registration(id, json::parse(body).value().as_object());
    REQUIRE_FALSE(r);
    CHECK(r.error().is(errc::invalid_argument));
    return r.error().message;
  };
  CHECK_THAT(bad("web1", R"({"services":[{"name":"api","port":70000}]})"), Contains("services[0]") && Contains("port"));
  CHECK_THAT(bad("web1", R"({"servces":[]})"), Contains("unknown field \"servces\""));
  CHECK_THAT(bad("web 1", R"({})"), Contains("web 1"));
  CHECK_THAT(bad("web1", R"({"ttl":"soon"})"), Contains("ttl"));
  CHECK_THAT(bad("web1", R"({"labels":{"zone":1}})"), Contains("zone"));
  CHECK_THAT(bad("web1", R"({"services":[{"port":80}]})"), Contains("name"));
}

TEST_CASE(
    "discovery: a scan registers the HTTP server that answers, records what it tried, marks it down when it stops answering and leaves "
    "registered nodes alone") {
  storage::MemoryStore store;
  testing::ManualClock clock;
  auto server = std::make_unique<test::HttpServer>([](const std::string&) { return test::HttpReply{404, "{}", "Server: demo/1.0\r\n"}; });
  const int live = server->port();
  const int closed = test::free_port();
  registry::DiscoveryOptions o;
  o.ports = {live, closed};
  o.timeout = 2000ms;
  auto d = registry::Discovery::create(store, clock, o);
  REQUIRE(d);

  auto first = d->scan("user:alice", "requested");
  REQUIRE(first);
  CHECK(first->id > 0);
  CHECK(first->added == 1);
  CHECK(first->lost == 0);
  CHECK(first->error.empty());
  auto targets = json::parse(first->targets).value().as_array();
  REQUIRE(targets.size() == 2);
  CHECK(targets[0] == bj::value("127.0.0.1:" + std::to_string(live)));
  auto found = json::parse(first->found).value().as_array();
  REQUIRE(found.size() == 1);
  CHECK(found[0].as_object().at("status") == bj::value(404));  // any HTTP answer counts
  CHECK(found[0].as_object().at("server") == bj::value("demo/1.0"));
  CHECK(found[0].as_object().at("new") == bj::value(true));
  const std::string id = registry::discovered_node_id("127.0.0.1", live);
  CHECK(id == "http-127.0.0.1-" + std::to_string(live));
  auto node = store.get_node(id).value();
  REQUIRE(node);
  CHECK(node->source == "discovered");
  CHECK(node->kind == "http");
  CHECK(node->state == "up");
  CHECK(node->reason == "answered HTTP 404 to discovery");
  CHECK(json::parse(node->labels).value().as_object().at("server") == bj::value("demo/1.0"));
  REQUIRE(events(store, "discovery.service.found").size() == 1);
  CHECK(d->services().value().size() == 1);

  // Found again: not new, no second event.
  clock.advance(5min);
  auto second = d->scan("discovery", "every 5m");
  REQUIRE(second);
  CHECK(second->added == 0);
  CHECK(json::parse(second->found).value().as_array()[0].as_object().at("new") == bj::value(false));
  CHECK(events(store, "discovery.service.found").size() == 1);
  CHECK(store.get_node(id).value()->last_seen == clock.now());

  // The server goes away: the node is down, with why.
  server.reset();
  clock.advance(5min);
  auto third = d->scan("discovery", "every 5m");
  REQUIRE(third);
  CHECK(third->lost == 1);
  CHECK(json::parse(third->found).value().as_array().empty());
  node = store.get_node(id).value();
  CHECK(node->state == "down");
  CHECK_THAT(node->reason, Contains("did not answer discovery"));
  REQUIRE(events(store, "discovery.service.lost").size() == 1);
  CHECK(d->scan("discovery", "every 5m")->lost == 0);  // already down

  // History: newest first.
  auto scans = store.list_scans(10, 0).value();
  REQUIRE(scans.size() == 4);
  CHECK(scans[0].id > scans[1].id);
  CHECK(scans[3].actor == "user:alice");

  // A node that registered itself under a discovered id is not touched by a scan.
  test::HttpServer again([](const std::string&) { return test::HttpReply{200, "{}"}; });
  registry::Registry reg(store, clock);
  const std::string mine = registry::discovered_node_id("127.0.0.1", again.port());
  REQUIRE(reg.register_node(parse(mine, R"({"kind":"daemon"})"), "node self"));
  registry::DiscoveryOptions o2;
  o2.ports = {again.port()};
  auto scan = registry::Discovery::create(store, clock, o2)->scan("discovery", "test");
  REQUIRE(scan);
  CHECK(scan->added == 0);
  CHECK(json::parse(scan->found).value().as_array()[0].as_object().at("registered") == bj::value(true));
  CHECK(store.get_node(mine).value()->kind == "daemon");
}

TEST_CASE("discovery: bad hosts and ports are refused when it is made") {
  storage::MemoryStore store;
  testing::ManualClock clock;
  auto make = [&](std::vector<std::string> hosts, std::vector<int> ports) {
    registry::DiscoveryOptions o;
    o.hosts = std::move(hosts);
    o.ports = std::move(ports);
    return registry::Discovery::create(store, clock, o);
  };
  CHECK(make({"127.0.0.1"}, {80}));
  CHECK_THAT(make({}, {80}).error().message, Contains("no hosts"));
  CHECK_THAT(make({"127.0.0.1"}, {}).error().message, Contains("no ports"));
  CHECK_THAT(make({"127.0.0.1"}, {0}).error().message, Contains("port 0"));
  CHECK_THAT(make({"a/b"}, {80}).error().message, Contains("invalid host \"a/b\""));
}
