// run_timer: how long one run of a piece of work took, as the planner needs it on a node with a
// CPU quota. Pure (no Torch, no MPI).
#pragma once
#include <chrono>

namespace edgepipe {

// CPU time this process has used (all its threads), in milliseconds.
double process_cpu_ms();

// The time of one run (a block, a stage, a codec call): its wall time, or the CPU time the
// process spent in it if that is less. Under a CPU quota (an edge node's cgroup, tools/emulate's
// nodes) a process is throttled at arbitrary points of each CFS period, so a short run's wall
// time is sometimes the run and sometimes the run plus a throttled wait (on a 0.2-core node with
// a 10 ms period, a 2 ms block waits 8 ms in about half of its runs, and a median is either);
// the planner scales the times by the rank's cores itself (host_slowdown), so it needs the run
// alone. On one thread the process's CPU time is that, throttled or preempted or not; on several
// threads it exceeds the wall time, which then counts. Measured under tools/emulate (4 nodes of
// 0.2 cores, ResNet18 64x64): the planner's predicted period was 4.7x the measured one with wall
// times, 1.01x with these (docs/performance.md).
class RunTimer {
 public:
  RunTimer();
  double ms() const;  // since construction

 private:
  std::chrono::steady_clock::time_point wall_;
  double cpu_ms_;
};

}  // namespace edgepipe
