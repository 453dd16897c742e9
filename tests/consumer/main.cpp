#include <automation/automation.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  using namespace automation;
  if (argc < 2) return 2;
  auto store = storage::open_store(std::string("sqlite:") + argv[1]);
  if (!store) {
    std::fprintf(stderr, "%s\n", store.error().what().c_str());
    return 1;
  }
  storage::AuditRecord r;
  r.time = SystemClock::instance().now();
  r.actor = "consumer";
  r.action = "consumer.run";
  r.resource = "consumer";
  if (!(*store)->append_audit({&r, 1})) return 1;
  std::printf("automation %s: %zu audit records\n", version_string, (*store)->query_audit({}).value().size());
  return 0;
}
