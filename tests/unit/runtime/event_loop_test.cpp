// EventLoop: posted work runs, a repeating task runs again after the delay it returns and never
// overlaps itself, a task that throws keeps its schedule, cancel and stop end tasks.
#include <automation/runtime/event_loop.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>

using namespace automation;
using namespace std::chrono_literals;

namespace {

/// Counts events and lets a test wait for a number of them (a bounded wait for the loop to act).
struct Counter {
  std::mutex mu;
  std::condition_variable cv;
  int n = 0;
  void hit() {
    std::lock_guard lock(mu);
    ++n;
    cv.notify_all();
  }
  bool reaches(int target) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, 10s, [&] { return n >= target; });
  }
  int value() {
    std::lock_guard lock(mu);
    return n;
  }
};

}  // namespace

TEST_CASE("EventLoop: posted work and repeating tasks, which never overlap themselves") {
  runtime::EventLoop loop(4);
  loop.start();
  Counter posted;
  for (int i = 0; i < 20; ++i) loop.post([&] { posted.hit(); });
  CHECK(posted.reaches(20));

  Counter runs;
  std::atomic<int> inside{0}, overlap{0};
  loop.every("busy", 0ms, [&] {
    if (inside.fetch_add(1) > 0) overlap.fetch_add(1);
    std::this_thread::sleep_for(std::chrono::microseconds(200));  // a window another run would fall into
    inside.fetch_sub(1);
    runs.hit();
    return Duration::zero();
  });
  CHECK(runs.reaches(50));
  CHECK(overlap.load() == 0);

  // Every other run throws: it is logged, and the task runs again after the delay it last returned.
  Counter thrown;
  std::atomic<int> calls{0};
  loop.every("throws", 0ms, [&]() -> Duration {
    thrown.hit();
    if (calls.fetch_add(1) % 2 == 1) throw std::runtime_error("boom");
    return std::chrono::milliseconds(1);
  });
  CHECK(thrown.reaches(6));
  loop.stop();
  CHECK_FALSE(loop.running());
}

TEST_CASE("EventLoop: cancel ends a task, and a long delay is honoured") {
  runtime::EventLoop loop(2);
  loop.start();
  Counter fast, slow;
  const auto id = loop.every("fast", 0ms, [&] {
    fast.hit();
    return Duration(std::chrono::milliseconds(1));
  });
  loop.every("slow", 0ms, [&] {
    slow.hit();
    return Duration(std::chrono::hours(1));
  });
  CHECK(fast.reaches(5));
  CHECK(slow.reaches(1));
  CHECK(loop.cancel(id));
  CHECK_FALSE(loop.cancel(id));
  const int after = fast.value();
  // A task every 20 ms running three times proves 40 ms passed: the cancelled 1 ms task would have
  // run many times meanwhile.
  Counter probe;
  loop.every("probe", 0ms, [&] {
    probe.hit();
    return Duration(std::chrono::milliseconds(20));
  });
  CHECK(probe.reaches(3));
  CHECK(fast.value() <= after + 1);  // at most the run already in progress
  CHECK(slow.value() == 1);
  loop.stop();
}
