#pragma once
// Workflows in tests: definitions from JSON, and driving an engine (poll, and wait in real time only
// for processes and callbacks).
#include <automation/workflow/definition.hpp>
#include <automation/workflow/engine.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <string_view>

namespace automation::test {

/// A workflow definition from JSON; the test fails with the reader's message when it does not parse.
inline workflow::WorkflowDefinition parse(std::string_view json) {
  auto w = workflow::parse_workflow(json, "test");
  if (!w) FAIL(w.error().message);
  return std::move(w.value());
}

/// Polls `e` (waiting up to 20 ms at a time for process or callback news) until `done()` holds or
/// `limit` of real time passes; whether it held.
template <class Pred>
bool drive(workflow::WorkflowEngine& e, Pred done, std::chrono::seconds limit = std::chrono::seconds(30)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  for (;;) {
    e.poll();
    if (done()) return true;
    if (std::chrono::steady_clock::now() > until) return false;
    e.wait(std::chrono::milliseconds(20));
  }
}

}  // namespace automation::test
