#include "edgepipe/records/metrics.h"

namespace edgepipe {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace edgepipe
