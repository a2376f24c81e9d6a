#include "edgepipe/base/test_hooks.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace edgepipe {

namespace {
// EDGEPIPE_TEST_CRASH as read at the first use; constant afterwards.
const std::string& armed_hook() {
  static const std::string hook = [] {
    const char* v = std::getenv("EDGEPIPE_TEST_CRASH");
    return std::string(v ? v : "");
  }();
  return hook;
}
}  // namespace

bool test_hook_armed(const char* point, int64_t count) {
  const std::string& hook = armed_hook();
  if (hook.empty()) return false;
  const std::string name = hook.substr(0, hook.find(':'));
  const int64_t n = hook.find(':') == std::string::npos
                        ? 1
                        : std::strtoll(hook.c_str() + hook.find(':') + 1, nullptr, 10);
  return name == point && n == count;
}

void test_crash_point(const char* point, int64_t count) {
  if (!test_hook_armed(point, count)) return;
  std::fprintf(stderr, "edgepipe: test crash at %s (EDGEPIPE_TEST_CRASH)\n", point);
  std::fflush(stderr);
  _exit(kTestCrashStatus);
}

}  // namespace edgepipe
