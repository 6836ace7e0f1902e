#include "serve/work_pool.hpp"

namespace brine::serve {

WorkPool::WorkPool(unsigned workers, std::size_t queue_capacity) : worker_count_(workers), capacity_(queue_capacity) {
  for (unsigned i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
}

WorkPool::~WorkPool() { shutdown(); }

bool WorkPool::try_submit(std::function<void()> job) {
  {
    const std::lock_guard<std::mutex> guard(lock_);
    // A job waits only if no worker is free to take it at once: with idle workers the queue
    // holds it for an instant, so the capacity counts real waiting only.
    const std::size_t idle = worker_count_ - busy_;
    if (stopping_ || jobs_.size() >= capacity_ + (idle > jobs_.size() ? idle - jobs_.size() : 0)) return false;
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
  return true;
}

bool WorkPool::has_room() const {
  const std::lock_guard<std::mutex> guard(lock_);
  const std::size_t idle = worker_count_ - busy_;
  return !stopping_ && jobs_.size() < capacity_ + (idle > jobs_.size() ? idle - jobs_.size() : 0);
}

void WorkPool::shutdown() {
  {
    const std::lock_guard<std::mutex> guard(lock_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

std::size_t WorkPool::queued() const {
  const std::lock_guard<std::mutex> guard(lock_);
  return jobs_.size();
}

unsigned WorkPool::busy() const {
  const std::lock_guard<std::mutex> guard(lock_);
  return busy_;
}

void WorkPool::work() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> guard(lock_);
      wake_.wait(guard, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, and nothing left to run
      job = std::move(jobs_.front());
      jobs_.pop_front();
      ++busy_;
    }
    job();
    const std::lock_guard<std::mutex> guard(lock_);
    --busy_;
  }
}

}  // namespace brine::serve
