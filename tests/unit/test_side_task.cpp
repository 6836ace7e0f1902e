// core::SideTask: a task on a second thread, kept off the caller's CPU.
#include <doctest/doctest.h>
#include <sched.h>

#include <stdexcept>

#include "core/side_task.hpp"

using namespace brine;

TEST_CASE("a side task may run on every CPU but its caller's, and hands back what it threw") {
  cpu_set_t all;
  REQUIRE(::sched_getaffinity(0, sizeof all, &all) == 0);
  if (CPU_COUNT(&all) >= 2) {
    cpu_set_t seen;
    CPU_ZERO(&seen);
    int ran_on = -1;
    core::SideTask task;
    REQUIRE(task.start([&] {
      ::sched_getaffinity(0, sizeof seen, &seen);
      ran_on = ::sched_getcpu();
    }));
    task.wait();
    // One CPU fewer than the process has: the one the caller was on when it started the task.
    CHECK(CPU_COUNT(&seen) == CPU_COUNT(&all) - 1);
    CHECK(CPU_ISSET(ran_on, &seen));

    // kAnywhere: started elsewhere, then free to run on every CPU the caller may use.
    cpu_set_t widened;
    CPU_ZERO(&widened);
    core::SideTask free_task;
    REQUIRE(free_task.start([&] { ::sched_getaffinity(0, sizeof widened, &widened); }, core::SideTask::After::kAnywhere));
    free_task.wait();
    CHECK(CPU_EQUAL(&widened, &all));

    core::SideTask failing;
    REQUIRE(failing.start([] { throw std::runtime_error("from the side"); }));
    CHECK_THROWS_WITH_AS(failing.wait(), "from the side", std::runtime_error);
    failing.wait();  // handed back once; waiting again is a no-op
  } else {
    MESSAGE("one CPU: only the refusal is checked");
  }
  // A caller allowed a single CPU has no other to put the task on: kElsewhere declines, and
  // kAnywhere runs it anyway (a long task may still wait on I/O while the caller computes).
  cpu_set_t only;
  CPU_ZERO(&only);
  CPU_SET(::sched_getcpu(), &only);
  REQUIRE(::sched_setaffinity(0, sizeof only, &only) == 0);
  bool ran = false, ran_anywhere = false;
  core::SideTask task, anywhere;
  const bool started = task.start([&] { ran = true; });
  task.wait();
  const bool started_anywhere = anywhere.start([&] { ran_anywhere = true; }, core::SideTask::After::kAnywhere);
  anywhere.wait();
  REQUIRE(::sched_setaffinity(0, sizeof all, &all) == 0);
  CHECK_FALSE(started);
  CHECK_FALSE(ran);
  CHECK(started_anywhere);
  CHECK(ran_anywhere);
}
