// The event loop: Asio's io_context, its threads and steady timers.
#include <automation/core/logging.hpp>
#include <automation/runtime/event_loop.hpp>

#include <fmt/format.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace automation::runtime {

namespace asio = boost::asio;

namespace {

/// Runs `fn` so that no exception leaves it; false when it threw.
template <class F>
bool guarded(std::string_view name, F&& fn) {
  try {
    fn();
    return true;
  } catch (const std::exception& e) {
    log(LogLevel::error, "loop", fmt::format("task {} threw: {}", name, e.what()));
  } catch (...) {
    log(LogLevel::error, "loop", fmt::format("task {} threw an unknown exception", name));
  }
  return false;
}

}  // namespace

struct EventLoop::Impl {
  struct Task {
    std::string name;
    std::function<Duration()> fn;
    asio::steady_timer timer;
    Duration last{std::chrono::seconds(1)};
    bool cancelled = false;
    Task(asio::io_context& io, std::string n, std::function<Duration()> f) : name(std::move(n)), fn(std::move(f)), timer(io) {}
  };

  int nthreads;
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
  std::vector<std::thread> threads;
  std::mutex mu;
  std::map<TaskId, std::shared_ptr<Task>> tasks;
  TaskId next_id = 1;
  bool running = false;

  void arm(const std::shared_ptr<Task>& task, Duration delay) {
    task->timer.expires_after(std::max(delay, Duration::zero()));
    task->timer.async_wait([this, task](const boost::system::error_code& ec) {
      if (ec) return;  // cancelled
      {
        std::lock_guard lock(mu);
        if (task->cancelled) return;
      }
      Duration next = task->last;
      guarded(task->name, [&] { next = task->fn(); });
      std::lock_guard lock(mu);
      if (task->cancelled || !running) return;
      task->last = next;
      arm(task, next);
    });
  }
};

EventLoop::EventLoop(int threads) : impl_(new Impl{std::max(1, threads)}) {}

EventLoop::~EventLoop() { stop(); }

void EventLoop::start() {
  auto& im = *impl_;
  std::lock_guard lock(im.mu);
  if (im.running) return;
  im.io.restart();
  im.guard.emplace(im.io.get_executor());
  im.running = true;
  for (int i = 0; i < im.nthreads; ++i)
    im.threads.emplace_back([&im] {
      // A handler's exception must not end the thread (and the process with it).
      for (;;) {
        if (guarded("loop", [&] { im.io.run(); })) return;
      }
    });
}

void EventLoop::stop() {
  auto& im = *impl_;
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(im.mu);
    if (!im.running) return;
    im.running = false;
    for (auto& [id, task] : im.tasks) {
      task->cancelled = true;
      task->timer.cancel();
    }
    im.tasks.clear();
    im.guard.reset();
    threads.swap(im.threads);
  }
  im.io.stop();
  for (auto& t : threads)
    if (t.get_id() != std::this_thread::get_id())
      t.join();
    else
      t.detach();
}

bool EventLoop::running() const noexcept {
  std::lock_guard lock(impl_->mu);
  return impl_->running;
}

int EventLoop::threads() const noexcept { return impl_->nthreads; }

void EventLoop::post(std::function<void()> fn) {
  asio::post(impl_->io, [fn = std::move(fn)] { guarded("posted", fn); });
}

EventLoop::TaskId EventLoop::every(std::string name, Duration first_delay, std::function<Duration()> fn) {
  auto& im = *impl_;
  std::lock_guard lock(im.mu);
  const TaskId id = im.next_id++;
  auto task = std::make_shared<Impl::Task>(im.io, std::move(name), std::move(fn));
  im.tasks.emplace(id, task);
  im.arm(task, first_delay);
  return id;
}

bool EventLoop::cancel(TaskId id) {
  auto& im = *impl_;
  std::lock_guard lock(im.mu);
  auto it = im.tasks.find(id);
  if (it == im.tasks.end()) return false;
  it->second->cancelled = true;
  it->second->timer.cancel();
  im.tasks.erase(it);
  return true;
}

void* EventLoop::native() noexcept { return &impl_->io; }

}  // namespace automation::runtime
