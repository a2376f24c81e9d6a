// memory: how much memory this rank may use: --max-memory, else the node's cgroup limit if one
// is set, else its physical memory.
#pragma once
#include <cstdint>
#include <string>

namespace edgepipe {

// The node's limit: cgroup v2 memory.max or v1 memory.limit_in_bytes, else MemTotal.
int64_t node_memory_limit();

// Cores this process may use: the CPUs in its affinity mask, fewer if a cgroup CPU quota (v2
// cpu.max, v1 cpu.cfs_quota_us) allows less (fractional: a quota of 1.5 CPUs is 1.5).
double usable_cores();

// `max_memory` ("512MiB", "2GB"; "" = node_memory_limit()) in bytes, and where it came from.
int64_t rank_memory_limit(const std::string& max_memory, std::string* source);

}  // namespace edgepipe

namespace edgepipe {

// Counts the bytes LibTorch holds in CPU tensors, by wrapping its CPU allocator (installed on
// first use, for the rest of the process; the cost is an atomic add per allocation). Used to
// measure a block's peak activation memory: reset_peak() before it runs, peak() - before after.
class AllocationMeter {
 public:
  static AllocationMeter& instance();
  int64_t current() const;
  int64_t peak() const;
  void reset_peak();  // peak := current
};

}  // namespace edgepipe
