#pragma once
/// The one event loop of a host (`autoctl serve`): an Asio io_context run by a small thread pool,
/// with posted work and repeating tasks. An HttpServer can serve on it, so the daemon's HTTP
/// connections, its periodic component work (health checks, scaler passes, metric collection) and
/// in-process workflow steps share one pool.
///
/// A repeating task never overlaps itself: its next run is scheduled when the current one returns,
/// after the delay the task itself returns (so a component says when it is next due). A task that
/// throws is logged and runs again after its last delay. Tasks run on the pool's threads; a task
/// that blocks holds one thread, so give the pool a thread more than the tasks that may block at once.
///
/// Thread-safety: every member may be called from any thread, including from the loop's own tasks
/// (except stop(), which a task must not call).
#include <automation/core/clock.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace automation::runtime {

class EventLoop {
 public:
  explicit EventLoop(int threads = 4);
  ~EventLoop();  ///< stops it
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  /// Starts the threads (idempotent while running).
  void start();
  /// Cancels the repeating tasks, lets a task that is running finish, and joins the threads.
  /// start() may run it again (the tasks are gone).
  void stop();
  bool running() const noexcept;
  int threads() const noexcept;

  /// Runs `fn` once on the pool, soon.
  void post(std::function<void()> fn);

  using TaskId = std::uint64_t;
  /// Runs `fn` after `first_delay`, then again after each delay it returns, until cancelled or the
  /// loop stops. `name` appears in the log when it throws.
  TaskId every(std::string name, Duration first_delay, std::function<Duration()> fn);
  /// Ends a repeating task (a run in progress finishes); false when it is unknown.
  bool cancel(TaskId id);

  /// The io_context, for code in lib/runtime (an `boost::asio::io_context*`).
  void* native() noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace automation::runtime
