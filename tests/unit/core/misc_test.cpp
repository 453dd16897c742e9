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

TEST_CASE("json::parse reads back every double dump wrote, exactly") {
  // Boost.JSON 1.81's own conversion returns 0.09090909090909093 for this one.
  for (double d : {1.0 / 11, 0.1, 2.0 / 3, 1e-300, 123456.789, -5e-324, 1.7976931348623157e308, 0.30000000000000004}) {
    INFO(d);
    const auto text = json::dump(boost::json::array{d});
    CHECK(json::parse(text).value().as_array()[0].as_double() == d);
  }
  auto mixed = json::parse(R"({"k":[1,-2,18446744073709551615,2.5e3,"s",true,null]})").value();
  const auto& a = mixed.at("k").as_array();
  CHECK(a[0].as_int64() == 1);
  CHECK(a[1].as_int64() == -2);
  CHECK(a[2].as_uint64() == 18446744073709551615ull);
  CHECK(a[3].as_double() == 2500);
  CHECK(a[4].as_string() == "s");
  CHECK(json::parse("1e400"));  // out of range: Boost's infinity, as before
}
