#include <automation/core/ids.hpp>
#include <automation/core/json.hpp>

#include <catch2/catch.hpp>

#include <set>

using namespace automation;

TEST_CASE("generate_id gives distinct 32-hex-digit trace ids") {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto id = generate_id();
    CHECK(is_trace_id(id));
    seen.insert(id);
  }
  CHECK(seen.size() == 1000);
  CHECK_FALSE(is_trace_id("00000000000000000000000000000000"));
  CHECK_FALSE(is_trace_id("ABCDEF00000000000000000000000000"));
  CHECK_FALSE(is_trace_id("abc"));
}

TEST_CASE("json::parse reports where the error is") {
  auto ok = json::parse(R"({"a": [1, 2]})");
  REQUIRE(ok);
  CHECK(ok->at("a").as_array().size() == 2);
  auto bad = json::parse("{\"a\": 1,\n\"b\": }", "body");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().is(errc::invalid_argument));
  CHECK_THAT(bad.error().message, Catch::Contains("body: invalid JSON at line 2, column 6"));
  auto trailing = json::parse("{} x");
  REQUIRE_FALSE(trailing);
  auto empty = json::parse("");
  REQUIRE_FALSE(empty);
  CHECK(json::pretty(json::parse(R"({"a":[1,{"b":null}],"c":{}})").value()) ==
        "{\n  \"a\": [\n    1,\n    {\n      \"b\": null\n    }\n  ],\n  \"c\": {}\n}");
  CHECK(json::type_name(boost::json::value(1.5)) == "number");
}
