#pragma once
// Reading autoctl's --json output in integration tests.
#include <automation/core/json.hpp>

#include "support/process.hpp"

#include <boost/json/object.hpp>
#include <catch2/catch.hpp>

namespace automation::test {

/// stdout as a JSON object (the test fails when it is not one).
inline boost::json::object json_out(const ProcessResult& r) {
  auto v = json::parse(r.out, "stdout");
  INFO(r.out << r.err);
  REQUIRE(v);
  REQUIRE(v->is_object());
  return v->as_object();
}

}  // namespace automation::test
