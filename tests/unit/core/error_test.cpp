#include <automation/core/error.hpp>

#include <catch2/catch.hpp>

using namespace automation;

TEST_CASE("errc names are stable and round-trip") {
  CHECK(to_string(errc::not_found) == "not_found");
  CHECK(to_string(errc::schema_too_new) == "schema_too_new");
  CHECK(to_string(errc::invalid_argument) == "invalid_argument");
  for (int v = static_cast<int>(errc::invalid_argument); v <= static_cast<int>(errc::unauthenticated); ++v) {
    const auto e = static_cast<errc>(v);
    const auto back = errc_from_string(to_string(e));
    REQUIRE(back);
    CHECK(*back == e);
  }
  CHECK_FALSE(errc_from_string("no_such_code"));
}

TEST_CASE("Error carries a code and a message and maps foreign codes") {
  Error e(errc::busy, "database locked");
  CHECK(e.kind() == errc::busy);
  CHECK(e.name() == "busy");
  CHECK(e.what() == "database locked");
  CHECK(std::error_code(errc::busy) == e.code);
  CHECK(Error(std::make_error_code(std::errc::timed_out), "").kind() == errc::timeout);
  CHECK(Error(std::make_error_code(std::errc::io_error), "").kind() == errc::io);
  CHECK(Error(errc::io, "").what() == "input/output error");
}

TEST_CASE("Result holds a value or an Error and value() throws Exception on error") {
  Result<int> ok = 42;
  REQUIRE(ok);
  CHECK(*ok == 42);
  Result<int> bad = fail(errc::not_found, "no such thing");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().is(errc::not_found));
  try {
    (void)bad.value();
    FAIL("value() should throw");
  } catch (const Exception& ex) {
    CHECK(ex.error().is(errc::not_found));
    CHECK(std::string(ex.what()) == "no such thing");
  }
  Result<void> v = {};
  CHECK(v);
  Result<void> vbad = fail(errc::io, "x");
  CHECK(with_context(vbad.error(), "reading a.csv").message == "reading a.csv: x");
}
