#include "cli/parallel_walk.hpp"

#include "core/side_task.hpp"

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace brine::cli {

namespace {

/// Targets one walk step hands out: enough that the lock is taken rarely, few enough that a
/// step (at most a directory listing beyond them) keeps the other threads waiting briefly.
constexpr std::size_t kStep = 32;
/// Below this many queued targets per thread, the next free thread walks on before it scans.
constexpr std::size_t kLowPerThread = 64;

class Pool {
 public:
  Pool(Walk& walk, unsigned jobs, const std::function<void(unsigned, std::size_t, WalkTarget&&)>& visit)
      : walk_(walk), jobs_(std::max(1u, jobs)), visit_(visit), low_water_(kLowPerThread * jobs_) {
    threads_.reserve(jobs_ - 1);
  }

  std::size_t run() {
    work(0);
    // Every thread was started by a walk step, all before the step that ended the walk, which
    // work(0) waited for: the list is complete.
    for (auto& t : threads_) t->wait();
    return handed_out_;
  }

 private:
  void work(unsigned worker) {
    std::unique_lock lock(mutex_);
    std::vector<WalkTarget> batch;
    for (;;) {
      if (!over_ && !walking_ && queue_.size() < low_water_) {
        walking_ = true;
        lock.unlock();
        batch.clear();
        const bool more = walk_.next(batch, kStep);
        lock.lock();
        walking_ = false;
        for (auto& t : batch) queue_.push_back(std::move(t));
        found_ += batch.size();
        if (!more) over_ = true;
        start_threads();
        ready_.notify_all();
        continue;
      }
      if (!queue_.empty()) {
        WalkTarget target = std::move(queue_.front());
        queue_.pop_front();
        const std::size_t index = handed_out_++;
        lock.unlock();
        visit_(worker, index, std::move(target));
        lock.lock();
        continue;
      }
      if (over_) return;
      ready_.wait(lock);  // another thread is walking: it notifies when its step is queued
    }
  }

  /// With the lock held: one more thread for every target found beyond the threads running.
  void start_threads() {
    while (threads_.size() + 1 < jobs_ && threads_.size() + 1 < found_) {
      const auto worker = static_cast<unsigned>(threads_.size() + 1);
      // Started off this thread's CPU, then free to run anywhere: a thread woken on its
      // creator's CPU takes turns with it until the scheduler moves one (core::SideTask).
      auto thread = std::make_unique<core::SideTask>();
      if (!thread->start([this, worker] { work(worker); }, core::SideTask::After::kAnywhere)) {
        jobs_ = static_cast<unsigned>(threads_.size() + 1);  // no more threads: scan with those running
        break;
      }
      threads_.push_back(std::move(thread));
    }
  }

  Walk& walk_;
  unsigned jobs_;
  const std::function<void(unsigned, std::size_t, WalkTarget&&)>& visit_;
  const std::size_t low_water_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<WalkTarget> queue_;
  std::vector<std::unique_ptr<core::SideTask>> threads_;
  std::size_t found_ = 0, handed_out_ = 0;
  bool walking_ = false, over_ = false;
};

}  // namespace

std::size_t visit_while_walking(Walk& walk, unsigned jobs,
                                const std::function<void(unsigned worker, std::size_t index, WalkTarget&& target)>& visit) {
  return Pool(walk, jobs, visit).run();
}

}  // namespace brine::cli
