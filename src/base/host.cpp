#include "edgepipe/base/host.h"

#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "edgepipe/base/cgroup.h"
#include "edgepipe/base/error.h"
#include "edgepipe/base/units.h"
#include "edgepipe/plan/cluster.h"

namespace edgepipe {

int64_t node_memory_limit() {
  int64_t physical = 0;
  std::ifstream meminfo("/proc/meminfo");
  std::string key, unit;
  long long kb = 0;
  while (meminfo >> key >> kb >> unit) {
    if (key == "MemTotal:") {
      physical = static_cast<int64_t>(kb) * 1024;
      break;
    }
  }
  const int64_t cgroup = cgroup_memory_limit();
  return cgroup > 0 && (physical <= 0 || cgroup < physical) ? cgroup : physical;
}

double usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  double cores = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
  if (const double quota = cgroup_cpu_limit(); quota > 0) cores = std::min(cores, quota);
  return std::max(cores, 0.01);
}

int64_t rank_memory_limit(const std::string& max_memory, std::string* source) {
  if (!max_memory.empty()) {
    if (source) *source = "--max-memory";
    return static_cast<int64_t>(parse_bytes(max_memory));
  }
  if (source) *source = "the cgroup limit or physical memory";
  return node_memory_limit();
}

namespace {

std::atomic<int64_t> g_current{0}, g_peak{0};
std::atomic<int64_t> g_limit{0};    // 0: none (AllocationMeter::set_limit)
std::atomic<int64_t> g_refused{0};  // the first allocation refused since the limit was set

// LibTorch's CPU allocation (c10::alloc_cpu: aligned, 64 bytes) with a 64-byte header in front
// that holds the size, so that the pointer is its own context and raw_deleter works (LibTorch
// uses raw_allocate for some buffers).
constexpr size_t kHeader = 64;

void release(void* data) {
  if (!data) return;
  char* base = static_cast<char*>(data) - kHeader;
  int64_t bytes = 0;
  std::memcpy(&bytes, base, sizeof bytes);
  g_current.fetch_sub(bytes, std::memory_order_relaxed);
  c10::free_cpu(base);
}

struct CountingAllocator final : c10::Allocator {
  c10::DataPtr allocate(size_t n) const override {
    const auto asked = static_cast<int64_t>(n);
    if (const int64_t limit = g_limit.load(std::memory_order_relaxed);
        limit > 0 && g_current.load(std::memory_order_relaxed) + asked > limit) {
      int64_t none = 0;
      g_refused.compare_exchange_strong(none, asked, std::memory_order_relaxed);
      EP_FAIL("an allocation of ", format_bytes(static_cast<double>(asked)),
              " would pass the memory limit (", format_bytes(static_cast<double>(limit)),
              " of tensors)");
    }
    char* base = static_cast<char*>(c10::alloc_cpu(n + kHeader));
    const auto bytes = static_cast<int64_t>(n);
    std::memcpy(base, &bytes, sizeof bytes);
    const int64_t now = g_current.fetch_add(bytes, std::memory_order_relaxed) + bytes;
    int64_t peak = g_peak.load(std::memory_order_relaxed);
    while (now > peak && !g_peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
    }
    void* data = base + kHeader;
    return {data, data, &release, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &release; }
};

}  // namespace

AllocationMeter& AllocationMeter::instance() {
  static AllocationMeter meter;
  static CountingAllocator* allocator = [] {
    auto* a = new CountingAllocator();  // lives as long as the process
    c10::SetCPUAllocator(a, /*priority=*/100);
    return a;
  }();
  (void)allocator;
  return meter;
}

int64_t AllocationMeter::current() const { return g_current.load(std::memory_order_relaxed); }
int64_t AllocationMeter::peak() const { return g_peak.load(std::memory_order_relaxed); }
void AllocationMeter::reset_peak() { g_peak.store(current(), std::memory_order_relaxed); }
void AllocationMeter::set_limit(int64_t bytes) {
  g_refused.store(0, std::memory_order_relaxed);
  g_limit.store(std::max<int64_t>(bytes, 0), std::memory_order_relaxed);
}
int64_t AllocationMeter::limit() const { return g_limit.load(std::memory_order_relaxed); }
int64_t AllocationMeter::refused() const { return g_refused.load(std::memory_order_relaxed); }

int64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0, resident = 0;
  if (!(statm >> pages >> resident)) return 0;
  return resident * static_cast<int64_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace edgepipe
