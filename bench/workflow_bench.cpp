// WorkflowEngine throughput, each beside a baseline doing the same work without the engine:
//  - in-process callback steps on the memory store vs calling the callbacks directly;
//  - durable steps on SQLite (each step's outcome committed before the next starts) vs raw sqlite3
//    committing one row per transaction;
//  - N `true` command steps vs /bin/sh running the same N processes in a loop.
#include <automation/storage/memory_store.hpp>
#include <automation/storage/sqlite_store.hpp>
#include <automation/testing/manual_clock.hpp>
#include <automation/workflow/engine.hpp>

#include "raw_sqlite.hpp"
#include "support/temp_dir.hpp"

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <spawn.h>
#include <sys/wait.h>
#include <fstream>

extern char** environ;

using namespace automation;
using namespace automation::workflow;

namespace {

// A chain of n steps (each needs the previous) of one kind.
WorkflowDefinition chain(std::size_t n, StepAction action) {
  WorkflowDefinition w;
  w.name = "chain";
  for (std::size_t i = 0; i < n; ++i) {
    StepDefinition s;
    s.id = fmt::format("s{}", i);
    s.action = action;
    if (i) s.needs.push_back(fmt::format("s{}", i - 1));
    w.steps.push_back(std::move(s));
  }
  return w;
}

StepAction callback(std::string name) {
  StepAction a;
  a.kind = StepKind::callback;
  a.name = std::move(name);
  return a;
}

struct Engine {
  testing::ManualClock clock;
  resilience::TaskHistory history;
  WorkflowEngine engine;
  std::uint64_t calls = 0;
  Engine(storage::Store& store, std::size_t steps)
      : history(store, clock, {.batch_size = 4096}), engine(store, clock, [&] {
          WorkflowEngine::Options o;
          o.history = &history;
          return o;
        }()) {
    engine.register_callback("work", [this](StepContext&) {
      ++calls;
      return Result<void>();
    });
    (void)engine.register_workflow(chain(steps, callback("work")));
  }
  bool run_once(benchmark::State& state) {
    auto id = engine.start("chain");
    if (!id) {
      state.SkipWithError(id.error().message.c_str());
      return false;
    }
    while (engine.is_active(*id)) engine.poll();
    return true;
  }
};

void BM_Workflow_CallbackSteps_Memory(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  storage::MemoryStore store;
  Engine e(store, n);
  for (auto _ : state)
    if (!e.run_once(state)) break;
  if (e.calls != n * state.iterations()) state.SkipWithError("not every step ran");
  state.counters["steps/s"] = benchmark::Counter(static_cast<double>(n * state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Workflow_CallbackSteps_Memory)->Arg(100)->Unit(benchmark::kMillisecond);

void BM_Workflow_CallbackSteps_DirectBaseline(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::uint64_t calls = 0;
  std::function<Result<void>(StepContext&)> fn = [&](StepContext&) {
    ++calls;
    return Result<void>();
  };
  StepContext ctx;
  for (auto _ : state)
    for (std::size_t i = 0; i < n; ++i) benchmark::DoNotOptimize(fn(ctx));
  state.counters["steps/s"] = benchmark::Counter(static_cast<double>(n * state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Workflow_CallbackSteps_DirectBaseline)->Arg(100)->Unit(benchmark::kMillisecond);

void BM_Workflow_DurableSteps_Sqlite(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  test::TempDir dir;
  auto store = storage::SqliteStore::open(dir.file("bench.db")).value();
  Engine e(*store, n);
  for (auto _ : state)
    if (!e.run_once(state)) break;
  if (e.calls != n * state.iterations()) state.SkipWithError("not every step ran");
  state.counters["steps/s"] = benchmark::Counter(static_cast<double>(n * state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Workflow_DurableSteps_Sqlite)->Arg(100)->Unit(benchmark::kMillisecond);

// The floor for a durable queue on this disk: one row committed per transaction.
void BM_Workflow_DurableSteps_RawSqliteBaseline(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  test::TempDir dir;
  std::ofstream(dir.file("raw.db")).flush();  // an empty file is an empty database
  bench::RawSqlite db(dir.file("raw.db"));
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, step TEXT, state TEXT)");
  auto* begin = db.prepare("BEGIN IMMEDIATE");
  auto* ins = db.prepare("INSERT INTO t (step, state) VALUES (?1, 'succeeded')");
  auto* commit = db.prepare("COMMIT");
  for (auto _ : state) {
    for (std::size_t i = 0; i < n; ++i) {
      db.step_done(begin);
      db.text(ins, 1, "step");
      db.step_done(ins);
      db.step_done(commit);
    }
  }
  if (!db.ok()) state.SkipWithError(db.error().c_str());
  state.counters["steps/s"] = benchmark::Counter(static_cast<double>(n * state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Workflow_DurableSteps_RawSqliteBaseline)->Arg(100)->Unit(benchmark::kMillisecond);

void BM_Workflow_TrueCommands(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  storage::MemoryStore store;
  Engine e(store, 0);
  StepAction t;
  t.kind = StepKind::command;
  t.argv.push_back(Template::parse("true").value());
  auto w = chain(n, t);
  w.name = "trues";
  (void)e.engine.register_workflow(w);
  for (auto _ : state) {
    auto id = e.engine.start("trues");
    if (!id) {
      state.SkipWithError(id.error().message.c_str());
      break;
    }
    while (e.engine.is_active(*id)) {
      e.engine.poll();
      if (e.engine.is_active(*id)) e.engine.wait(std::chrono::milliseconds(100));
    }
    if (store.get_run(*id).value()->state != storage::RunState::succeeded) state.SkipWithError("the run did not succeed");
  }
  state.counters["processes/s"] = benchmark::Counter(static_cast<double>(n * state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Workflow_TrueCommands)->Arg(50)->Unit(benchmark::kMillisecond)->UseRealTime();

// /bin/sh running /usr/bin/true (the program the steps run) n times in a loop.
void BM_Workflow_TrueCommands_ShellLoopBaseline(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::string script = fmt::format("i=0; while [ $i -lt {} ]; do /usr/bin/true; i=$((i+1)); done", n);
  for (auto _ : state) {
    const char* argv[] = {"/bin/sh", "-c", script.c_str(), nullptr};
    pid_t pid = 0;
    if (posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ) != 0) {
      state.SkipWithError("cannot spawn /bin/sh");
      break;
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) state.SkipWithError("the loop failed");
  }
  state.counters["processes/s"] = benchmark::Counter(static_cast<double>(n * state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Workflow_TrueCommands_ShellLoopBaseline)->Arg(50)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
