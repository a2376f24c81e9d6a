// cgroup: the memory limit and CPU quota of this process's own cgroup, v1 or v2. The process's
// cgroup comes from /proc/self/cgroup, the hierarchies' mount points from /proc/self/mountinfo;
// the limits are read from that cgroup up to its hierarchy's root, keeping the smallest: a Slurm
// job's (--mem-per-cpu, --cpus-per-task) or a systemd unit's limits apply, not only the root's.
// Pure (no Torch, no MPI): the planner's inputs, unit-tested on fake trees.
#pragma once
#include <cstdint>
#include <string>

namespace edgepipe {

// Where the cgroup facts are read: the running system by default. Tests point them at a fake
// tree in a temporary directory.
struct CgroupFiles {
  std::string self_cgroup = "/proc/self/cgroup";
  std::string mountinfo = "/proc/self/mountinfo";
  std::string root;  // prefixed to every mount point from mountinfo ("" = this system's root)
};

// The smallest memory limit (bytes) on the path from this process's cgroup to the root: v2
// memory.max, v1 memory.limit_in_bytes. 0 when none is set.
int64_t cgroup_memory_limit(const CgroupFiles& files = {});

// The smallest CPU quota on that path, in CPUs (v2 cpu.max, v1 cpu.cfs_quota_us /
// cpu.cfs_period_us; fractional: 150000/100000 is 1.5). 0 when none is set.
double cgroup_cpu_limit(const CgroupFiles& files = {});

}  // namespace edgepipe
