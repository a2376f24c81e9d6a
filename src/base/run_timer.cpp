#include "edgepipe/base/run_timer.h"

#include <time.h>

#include <algorithm>

namespace edgepipe {

double process_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return 1e3 * static_cast<double>(ts.tv_sec) + 1e-6 * static_cast<double>(ts.tv_nsec);
}

RunTimer::RunTimer() : wall_(std::chrono::steady_clock::now()), cpu_ms_(process_cpu_ms()) {}

double RunTimer::ms() const {
  const double wall =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - wall_).count();
  return std::min(wall, process_cpu_ms() - cpu_ms_);
}

}  // namespace edgepipe
