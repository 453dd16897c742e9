#pragma once
// Driving a WorkflowEngine in tests: poll, and wait in real time only for processes and callbacks.
#include <automation/workflow/engine.hpp>

#include <chrono>

namespace automation::test {

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
