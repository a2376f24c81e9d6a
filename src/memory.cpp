#include "edgepipe/memory.h"

#include <fstream>
#include <sstream>

#include "edgepipe/cluster.h"
#include "edgepipe/error.h"

namespace edgepipe {

namespace {
// A cgroup limit file holds a byte count, or "max" when there is no limit.
int64_t read_limit(const char* path) {
  std::ifstream in(path);
  std::string text;
  if (!(in >> text) || text == "max") return 0;
  try {
    long long v = std::stoll(text);
    return v > 0 && v < (int64_t(1) << 60) ? v : 0;  // v1 says "no limit" with a huge number
  } catch (const std::exception&) {
    return 0;
  }
}
}  // namespace

int64_t node_memory_limit() {
  if (int64_t v = read_limit("/sys/fs/cgroup/memory.max")) return v;
  if (int64_t v = read_limit("/sys/fs/cgroup/memory/memory.limit_in_bytes")) return v;
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  long long kb = 0;
  std::string unit;
  while (meminfo >> key >> kb >> unit) {
    if (key == "MemTotal:") return static_cast<int64_t>(kb) * 1024;
  }
  return 0;
}

int64_t rank_memory_limit(const std::string& max_memory, std::string* source) {
  if (!max_memory.empty()) {
    if (source) *source = "--max-memory";
    return static_cast<int64_t>(parse_bytes(max_memory));
  }
  if (source) *source = "the node's cgroup limit or physical memory";
  return node_memory_limit();
}

}  // namespace edgepipe
