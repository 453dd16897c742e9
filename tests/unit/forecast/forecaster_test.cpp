// The Forecaster's LLM backend against a real local server speaking the chat-completions protocol,
// over HTTP and HTTPS, and every path back to the statistical forecast.
#include <automation/core/json.hpp>
#include <automation/forecast/forecaster.hpp>
#include <automation/testing/manual_clock.hpp>

#include "support/http_server.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <atomic>
#include <limits>

using automation::errc;
using namespace automation::forecast;
using automation::test::chat_completion;
using automation::test::HttpReply;
using automation::test::HttpServer;
using Catch::Matchers::Contains;

namespace {

std::vector<double> history() {
  std::vector<double> y;
  for (int t = 0; t < 40; ++t) y.push_back(100 + 2.0 * t + (t % 4) * 3);
  return y;
}

Options options(std::size_t h = 3) {
  Options o;
  o.horizon = h;
  o.levels = {80, 95};
  return o;
}

std::string good_answer(std::size_t h) {
  boost::json::array a;
  for (std::size_t k = 0; k < h; ++k) {
    const double v = 200 + 10.0 * static_cast<double>(k);
    a.push_back({{"value", v}, {"lower_80", v - 5}, {"upper_80", v + 5}, {"lower_95", v - 9}, {"upper_95", v + 9}});
  }
  return automation::json::dump(boost::json::object{{"forecast", a}});
}

LlmConfig config_for(const HttpServer& server) {
  LlmConfig c;
  c.base_url = server.url() + "/v1";
  c.model = "test-model";
  c.api_key = "sk-test";
  c.timeout = std::chrono::milliseconds(2000);
  return c;
}

}  // namespace

TEST_CASE("forecaster: without an LLM backend the statistical forecast says so") {
  automation::testing::ManualClock clock;
  Forecaster f(clock);
  CHECK_FALSE(f.llm_enabled());
  auto r = f.forecast(history(), options());
  REQUIRE(r);
  CHECK(r->backend == "statistical");
  CHECK_THAT(r->why, Contains("no LLM backend is configured"));
}

TEST_CASE("forecaster: a valid LLM answer is used, and the request follows the protocol") {
  HttpServer server([](const std::string&) { return HttpReply{200, chat_completion("```json\n" + good_answer(3) + "\n```")}; });
  automation::testing::ManualClock clock;
  Forecaster f(clock, {config_for(server)});
  // Input errors come back before the backend is asked (no request: see the count below).
  CHECK(f.forecast(std::vector<double>{}, options()).error().is(errc::invalid_argument));
  auto r = f.forecast(history(), options());
  REQUIRE(r);
  CHECK(r->backend == "llm");
  CHECK(r->mean == std::vector<double>{200, 210, 220});
  CHECK(r->intervals[0].level == 80);
  CHECK(r->intervals[0].lower[1] == 205);
  CHECK(r->intervals[1].upper[2] == 229);
  CHECK_THAT(r->why, Contains("test-model"));
  CHECK_THAT(r->detail, Contains("llm test-model"));

  // Gaps filled for the statistical method are filled for the LLM too (no nulls in the prompt).
  auto gappy = history();
  gappy[10] = std::numeric_limits<double>::quiet_NaN();
  auto fill = options();
  fill.gaps = Gaps::interpolate;
  REQUIRE(f.forecast(gappy, fill));
  const auto requests = server.requests();
  const auto bodies = server.bodies();
  REQUIRE(requests.size() == 2);
  auto second = automation::json::parse(bodies[1]).value();
  auto sent = automation::json::parse(second.at("messages").as_array()[1].at("content").as_string()).value();
  CHECK(sent.at("history_oldest_first").as_array()[10].to_number<double>() == Approx((history()[9] + history()[11]) / 2));

  CHECK_THAT(requests[0], Contains("POST /v1/chat/completions HTTP/1.1"));
  CHECK_THAT(requests[0], Contains("Authorization: Bearer sk-test"));
  auto body = automation::json::parse(bodies[0]).value().as_object();
  CHECK(body.at("model").as_string() == "test-model");
  const auto& messages = body.at("messages").as_array();
  REQUIRE(messages.size() == 2);
  auto task = automation::json::parse(messages[1].at("content").as_string()).value().as_object();
  CHECK(task.at("horizon").as_int64() == 3);
  CHECK(task.at("history_oldest_first").as_array().size() == 40);
  CHECK(task.at("answer_format").at("forecast").as_array()[0].as_object().contains("upper_95"));
}

TEST_CASE("forecaster: every bad answer falls back to the statistical method and says why") {
  struct Case {
    std::string name;
    HttpReply reply;
    std::string why;
  };
  auto entry = [](double v, double lo80, double hi80, double lo95, double hi95) {
    return boost::json::object{{"value", v}, {"lower_80", lo80}, {"upper_80", hi80}, {"lower_95", lo95}, {"upper_95", hi95}};
  };
  auto answer = [](boost::json::array a) { return chat_completion(automation::json::dump(boost::json::object{{"forecast", a}})); };
  const std::vector<Case> cases{
      {"HTTP error", {500, R"({"error":{"message":"overloaded"}})"}, "answered HTTP 500"},
      {"not JSON", {200, chat_completion("I think it will go up.")}, "the LLM's answer"},
      {"no forecast", {200, chat_completion(R"({"prediction":[]})")}, "has no \"forecast\" array"},
      {"wrong length", {200, answer({entry(1, 0, 2, -1, 3)})}, "has 1 entries, the horizon is 3"},
      {"not a number",
       {200, answer({entry(1, 0, 2, -1, 3), boost::json::object{{"value", "high"}}, entry(1, 0, 2, -1, 3)})},
       "forecast[1].value: a string"},
      {"unordered bounds",
       {200, answer({entry(1, 0, 2, -1, 3), entry(5, 6, 7, 4, 8), entry(1, 0, 2, -1, 3)})},
       "forecast[1]: the 80 % bounds 6 .. 7 do not enclose 5 .. 5"},
      {"levels not nested",
       {200, answer({entry(1, 0, 2, 0.5, 3), entry(1, 0, 2, -1, 3), entry(1, 0, 2, -1, 3)})},
       "forecast[0]: the 95 % bounds"},
      {"no content", {200, R"({"choices":[]})"}, "no choices[0].message.content"},
  };
  for (const auto& c : cases) {
    DYNAMIC_SECTION(c.name) {
      HttpServer server([&](const std::string&) { return c.reply; });
      automation::testing::ManualClock clock;
      Forecaster f(clock, {config_for(server)});
      auto r = f.forecast(history(), options());
      REQUIRE(r);
      CHECK(r->backend == "statistical");
      CHECK_THAT(r->why, Contains("the LLM backend failed"));
      CHECK_THAT(r->why, Contains(c.why));
      CHECK_THAT(r->why, Contains("fell back to auto"));
      CHECK(r->mean.size() == 3);
      CHECK(server.requests().size() == 1);
    }
  }
}

TEST_CASE("forecaster: a timeout and an unreachable server fall back") {
  HttpServer silent([](const std::string&) { return HttpReply{0, ""}; });
  automation::testing::ManualClock clock;
  auto config = config_for(silent);
  config.timeout = std::chrono::milliseconds(200);
  Forecaster f(clock, {config});
  auto r = f.forecast(history(), options());
  REQUIRE(r);
  CHECK(r->backend == "statistical");
  CHECK_THAT(r->why, Contains("timeout"));

  LlmConfig nowhere;
  nowhere.base_url = "http://127.0.0.1:1/v1";
  nowhere.model = "m";
  Forecaster g(clock, {nowhere});
  auto r2 = g.forecast(history(), options());
  REQUIRE(r2);
  CHECK_THAT(r2->why, Contains("unavailable"));
}

TEST_CASE("forecaster: after 3 failures the breaker opens and the LLM is not called until it half-opens") {
  std::atomic<bool> healthy{false};
  HttpServer server([&](const std::string&) { return healthy ? HttpReply{200, chat_completion(good_answer(3))} : HttpReply{503, "busy"}; });
  automation::testing::ManualClock clock;
  Forecaster f(clock, {config_for(server)});
  for (int i = 0; i < 3; ++i) {
    auto r = f.forecast(history(), options());
    REQUIRE(r);
    CHECK(r->backend == "statistical");
  }
  CHECK(server.requests().size() == 3);
  CHECK(f.llm_breaker()->state() == automation::resilience::BreakerState::open);
  healthy = true;
  auto open = f.forecast(history(), options());
  REQUIRE(open);
  CHECK(open->backend == "statistical");
  CHECK_THAT(open->why, Contains("forecast-llm"));
  CHECK(server.requests().size() == 3);  // not called while open
  clock.advance(std::chrono::minutes(5));
  auto probe = f.forecast(history(), options());
  REQUIRE(probe);
  CHECK(probe->backend == "llm");
  CHECK(f.llm_breaker()->state() == automation::resilience::BreakerState::closed);
}

TEST_CASE("forecaster: HTTPS with a trusted certificate works, an untrusted one falls back") {
  automation::test::TempDir dir;
  const auto [cert, key] = automation::test::make_self_signed(dir.path());
  HttpServer server([](const std::string&) { return HttpReply{200, chat_completion(good_answer(3))}; }, cert, key);
  automation::testing::ManualClock clock;
  auto trusted = config_for(server);
  trusted.ca_file = cert;
  auto r = Forecaster(clock, {trusted}).forecast(history(), options());
  REQUIRE(r);
  CHECK(r->backend == "llm");

  // Trusted, but issued for 127.0.0.1 only: a request to "localhost" must not accept it.
  auto wrong_name = trusted;
  wrong_name.base_url = "https://localhost:" + std::to_string(server.port()) + "/v1";
  auto r3 = Forecaster(clock, {wrong_name}).forecast(history(), options());
  REQUIRE(r3);
  CHECK(r3->backend == "statistical");
  CHECK_THAT(r3->why, Contains("TLS handshake"));

  auto untrusted = config_for(server);
  auto r2 = Forecaster(clock, {untrusted}).forecast(history(), options());
  REQUIRE(r2);
  CHECK(r2->backend == "statistical");
  CHECK_THAT(r2->why, Contains("TLS handshake"));
}

TEST_CASE("forecaster: the LLM backend is configured by the llm section, OPENAI_* filling gaps") {
  auto none = LlmConfig::from_config(automation::Config{}, {});
  REQUIRE(none);
  CHECK_FALSE(none->has_value());

  auto config = automation::parse_config(R"({"llm":{"model":"m2","timeout":"5s"}})", "test.json",
                                         {{"AUTOMATION_LLM_BASE_URL", "https://llm.example/v1"}});
  REQUIRE(config);
  auto llm = LlmConfig::from_config(*config, {{"OPENAI_API_KEY", "sk-env"}, {"OPENAI_BASE_URL", "https://ignored/v1"}});
  REQUIRE(llm);
  REQUIRE(llm->has_value());
  CHECK((*llm)->base_url == "https://llm.example/v1");
  CHECK((*llm)->model == "m2");
  CHECK((*llm)->api_key == "sk-env");
  CHECK((*llm)->timeout == std::chrono::seconds(5));

  config->llm.api_key = "sk-secret";
  CHECK(config->to_json().at("llm").at("api_key").as_string() == "***");

  auto no_model = automation::parse_config("{}", "test.json", {{"AUTOMATION_LLM_BASE_URL", "http://x/v1"}});
  REQUIRE(no_model);
  CHECK_THAT(LlmConfig::from_config(*no_model, {}).error().message, Contains("llm.model is not set"));
}

TEST_CASE("forecaster: a bad LLM configuration is refused") {
  LlmConfig bad;
  bad.base_url = "ftp://x";
  bad.model = "m";
  CHECK(bad.validate().error().is(errc::config));
  bad.base_url = "https://api.example.com/v1";
  bad.model = "";
  CHECK_THAT(bad.validate().error().message, Contains("model"));
  automation::testing::ManualClock clock;
  CHECK_THROWS_AS(Forecaster(clock, {bad}), automation::Exception);
}
