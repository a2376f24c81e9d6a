#include "edgepipe/records/metrics.h"

#include <cstring>

#include "edgepipe/base/error.h"

namespace edgepipe {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string counters_to_bytes(const StageCounters& c) {
  std::string out(sizeof c, '\0');
  std::memcpy(out.data(), &c, sizeof c);
  return out;
}

StageCounters counters_from_bytes(const std::string& bytes) {
  StageCounters c;
  EP_CHECK(bytes.size() == sizeof c, "counters message has ", bytes.size(), " bytes, expected ",
           sizeof c);
  std::memcpy(&c, bytes.data(), sizeof c);
  return c;
}

}  // namespace edgepipe
