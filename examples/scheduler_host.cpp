// Embedding the scheduler: a C++ step, a cron schedule and an event schedule, driven on a manual
// clock (a host would use SystemClock::instance() and wait() between polls).
#include <automation/automation.hpp>

#include <cstdio>

int main() {
  using namespace automation;
  using namespace std::chrono_literals;
  testing::ManualClock clock;
  storage::MemoryStore store;
  workflow::WorkflowEngine engine(store, clock);
  int greeted = 0, reports = 0;
  engine.register_callback("greet", [&](workflow::StepContext& c) -> Result<void> {
    std::printf("welcome %s\n", c.params.at("payload").c_str());
    ++greeted;
    return {};
  });
  engine.register_callback("report", [&](workflow::StepContext&) -> Result<void> {
    ++reports;
    return {};
  });
  auto welcome = workflow::parse_workflow(
      R"({"name":"welcome","params":{"payload":{"default":"{}"}},"steps":[{"id":"greet","callback":"greet"}]})", "welcome");
  auto report = workflow::parse_workflow(R"({"name":"report","steps":[{"id":"send","callback":"report"}]})", "report");
  if (!welcome || !report || !engine.register_workflow(*welcome) || !engine.register_workflow(*report)) return 1;

  workflow::Scheduler scheduler(engine);
  if (!scheduler.add({.name = "welcome", .workflow = "welcome", .event = "user.registered"})) return 1;
  if (!scheduler.add({.name = "hourly-report", .workflow = "report", .cron = "every hour"})) return 1;
  if (!scheduler.emit("user.registered", {{"user", "ada"}})) return 1;
  for (int minute = 0; minute <= 180; ++minute) {  // three hours, a poll a minute
    scheduler.poll();
    clock.advance(1min);
  }
  for (const auto& f : store.list_fires("hourly-report", 0).value())
    std::printf("%s %s %s\n", f.schedule.c_str(), format_timestamp(f.fire_time).c_str(), f.outcome.c_str());
  return greeted == 1 && reports == 3 ? 0 : 1;
}
