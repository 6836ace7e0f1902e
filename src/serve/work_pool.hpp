// A fixed set of worker threads and a bounded queue in front of them. try_submit never blocks and
// never grows the queue past its capacity: the caller turns "full" into 429, so a burst of uploads
// cannot queue unbounded work (or hold unbounded temp files) behind the workers.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace brine::serve {

class WorkPool {
 public:
  WorkPool(unsigned workers, std::size_t queue_capacity);
  ~WorkPool();
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  /// Queues `job`; false (and `job` is dropped) when `queue_capacity` jobs already wait.
  bool try_submit(std::function<void()> job);
  /// True when a job submitted now would be queued (not refused).
  [[nodiscard]] bool has_room() const;
  /// Runs every queued job, then joins the workers. Later submissions are refused.
  void shutdown();

  [[nodiscard]] std::size_t queued() const;
  [[nodiscard]] unsigned busy() const;
  [[nodiscard]] unsigned workers() const { return worker_count_; }
  [[nodiscard]] std::size_t capacity() const { return capacity_; }

 private:
  void work();

  const unsigned worker_count_;
  const std::size_t capacity_;
  mutable std::mutex lock_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  unsigned busy_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace brine::serve
