// Embedding the library: open a store, record an audited action on a manual clock, read it back.
#include <automation/automation.hpp>

#include <cstdio>

int main() {
  using namespace automation;
  testing::ManualClock clock;  // a host would use SystemClock::instance()
  auto store = storage::open_store("memory:");
  if (!store) {
    std::fprintf(stderr, "open: %s\n", store.error().what().c_str());
    return 1;
  }
  storage::AuditRecord r;
  r.time = clock.now();
  r.actor = "service:billing";
  r.action = "report.send";
  r.resource = "report:daily";
  r.reason = "scheduled daily report";
  r.details = R"({"recipients": 3})";
  if (auto id = (*store)->append_audit({&r, 1}); !id) {
    std::fprintf(stderr, "append: %s\n", id.error().what().c_str());
    return 1;
  }
  auto rows = (*store)->query_audit({.actor = "service:*"});
  if (!rows || rows->size() != 1) return 1;
  std::printf("%s %s %s %s\n", format_timestamp(rows->front().time).c_str(), rows->front().actor.c_str(), rows->front().action.c_str(),
              rows->front().reason.c_str());
  return 0;
}
