// host: how much memory this rank may use (--max-memory, else its cgroup's limit if one is set
// and smaller than physical memory, else physical memory) and how many cores (cgroup.h).
#pragma once
#include <cstdint>
#include <string>

namespace edgepipe {

// The smallest memory limit of this process's cgroup and its ancestors (v2 memory.max, v1
// memory.limit_in_bytes: a Slurm job's or systemd unit's own), or MemTotal if that is smaller.
int64_t node_memory_limit();

// Cores this process may use: the CPUs in its affinity mask, fewer if a CPU quota of its cgroup
// or an ancestor (v2 cpu.max, v1 cpu.cfs_quota_us) allows less (fractional: 1.5 CPUs is 1.5).
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
  // From now on an allocation that would make current() pass `bytes` throws edgepipe::Error
  // instead of allocating (0: no limit). Clears refused().
  void set_limit(int64_t bytes);
  int64_t limit() const;
  // The size of the first allocation refused since set_limit (0: none). LibTorch's interpreter
  // rewraps the error, so this is how a caller knows that the limit, not the model, failed.
  int64_t refused() const;
};

// The resident memory of this process (/proc/self/statm), 0 if unknown.
int64_t resident_bytes();

}  // namespace edgepipe
