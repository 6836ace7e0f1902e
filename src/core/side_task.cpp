#include "core/side_task.hpp"

#include <utility>

namespace brine::core {

SideTask::~SideTask() {
  if (running_) ::pthread_join(thread_, nullptr);  // an error then is the caller's to have seen
}

bool SideTask::start(std::function<void()> task, After after) {
  if (running_) return false;
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  const int here = ::sched_getcpu();
  if (here < 0 || ::sched_getaffinity(0, sizeof cpus, &cpus) != 0) return false;
  anywhere_ = cpus;
  widen_ = after == After::kAnywhere;
  CPU_CLR(here, &cpus);
  // One CPU: a short task would only take turns with its caller; a long one may still wait on
  // I/O while the caller computes, so it runs where the scheduler puts it.
  const bool elsewhere = CPU_COUNT(&cpus) != 0;
  if (!elsewhere && !widen_) return false;
  pthread_attr_t attr;
  if (::pthread_attr_init(&attr) != 0) return false;
  bool ok = !elsewhere || ::pthread_attr_setaffinity_np(&attr, sizeof cpus, &cpus) == 0;
  task_ = std::move(task);
  ok = ok && ::pthread_create(&thread_, &attr, &SideTask::body, this) == 0;
  ::pthread_attr_destroy(&attr);
  running_ = ok;
  if (!ok) task_ = nullptr;
  return ok;
}

void SideTask::wait() {
  if (!running_) return;
  ::pthread_join(thread_, nullptr);
  running_ = false;
  task_ = nullptr;
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

void* SideTask::body(void* self) {
  auto* t = static_cast<SideTask*>(self);
  if (t->widen_) ::sched_setaffinity(0, sizeof t->anywhere_, &t->anywhere_);  // placed: now the scheduler's
  try {
    t->task_();
  } catch (...) {
    t->error_ = std::current_exception();
  }
  return nullptr;
}

}  // namespace brine::core
