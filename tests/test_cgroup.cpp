// The memory limit and CPU quota of a process's own cgroup, on fake cgroup trees (v1, v2, a
// container's partial mount) in a temporary directory: the limits of a Slurm job's cgroup count,
// not only the root's, and the smallest on the way up wins. And RunTimer (base/run_timer.h),
// which the planner's timings take under such a quota.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "edgepipe/base/cgroup.h"
#include "edgepipe/base/run_timer.h"
#include "temp_dir.h"

namespace edgepipe {
namespace {

// A fake system root: proc/self/{cgroup,mountinfo} and files under it.
class FakeRoot : public TempDir {
 public:
  void write(const std::string& rel, const std::string& text) const { touch(rel, text); }
  CgroupFiles files() const {
    return {path("proc/self/cgroup"), path("proc/self/mountinfo"), dir()};
  }
};

const char* kMountsV2 = "31 23 0:28 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n";
const char* kMountsV1 =
    "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct\n"
    "33 31 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n";

TEST(Cgroup, V2JobLimitsBelowTheRootCount) {
  FakeRoot r;
  r.write("proc/self/mountinfo", kMountsV2);
  r.write("proc/self/cgroup", "0::/system.slice/slurmstepd.scope/job_42/step_0/user/task_0\n");
  const std::string job = "sys/fs/cgroup/system.slice/slurmstepd.scope/job_42";
  r.write("sys/fs/cgroup/system.slice/memory.max", "max\n");
  r.write(job + "/memory.max", "1073741824\n");
  r.write(job + "/cpu.max", "150000 100000\n");
  r.write(job + "/step_0/memory.max", "max\n");
  r.write(job + "/step_0/cpu.max", "max 100000\n");
  r.write(job + "/step_0/user/task_0/memory.max", "max\n");
  EXPECT_EQ(cgroup_memory_limit(r.files()), int64_t(1) << 30);
  EXPECT_DOUBLE_EQ(cgroup_cpu_limit(r.files()), 1.5);
}

TEST(Cgroup, V1MemoryAndCpuControllersEachFromTheirOwnPath) {
  FakeRoot r;
  r.write("proc/self/mountinfo", kMountsV1);
  r.write("proc/self/cgroup",
          "5:cpuset:/\n4:memory:/slurm/uid_0/job_7/step_0\n3:cpu,cpuacct:/slurm/uid_0/job_7\n"
          "0::/\n");
  r.write("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
  r.write("sys/fs/cgroup/memory/slurm/uid_0/job_7/memory.limit_in_bytes", "536870912\n");
  r.write("sys/fs/cgroup/memory/slurm/uid_0/job_7/step_0/memory.limit_in_bytes",
          "9223372036854771712\n");
  r.write("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
  r.write("sys/fs/cgroup/cpu,cpuacct/slurm/uid_0/job_7/cpu.cfs_quota_us", "200000\n");
  r.write("sys/fs/cgroup/cpu,cpuacct/slurm/uid_0/job_7/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(cgroup_memory_limit(r.files()), 512 << 20);
  EXPECT_DOUBLE_EQ(cgroup_cpu_limit(r.files()), 2.0);
}

TEST(Cgroup, SmallestLimitOnTheWayUpWins) {
  FakeRoot r;
  r.write("proc/self/mountinfo", kMountsV2);
  r.write("proc/self/cgroup", "0::/a/b/c\n");
  r.write("sys/fs/cgroup/a/memory.max", "300000000\n");
  r.write("sys/fs/cgroup/a/b/memory.max", "900000000\n");
  r.write("sys/fs/cgroup/a/b/c/memory.max", "500000000\n");
  r.write("sys/fs/cgroup/a/cpu.max", "50000 100000\n");
  r.write("sys/fs/cgroup/a/b/c/cpu.max", "300000 100000\n");
  EXPECT_EQ(cgroup_memory_limit(r.files()), 300000000);
  EXPECT_DOUBLE_EQ(cgroup_cpu_limit(r.files()), 0.5);
}

TEST(Cgroup, ContainerMountOfItsOwnCgroup) {
  // Docker without a cgroup namespace: /proc/self/cgroup names the full path, and the memory
  // hierarchy is mounted from that path down.
  FakeRoot r;
  r.write("proc/self/mountinfo",
          "35 31 0:32 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n");
  r.write("proc/self/cgroup", "4:memory:/docker/abc\n");
  r.write("sys/fs/cgroup/memory/memory.limit_in_bytes", "268435456\n");
  EXPECT_EQ(cgroup_memory_limit(r.files()), 256 << 20);
}

TEST(Cgroup, MountPointsWithEscapedSpaces) {
  FakeRoot r;
  r.write("proc/self/mountinfo", "31 23 0:28 / /cg\\040root rw - cgroup2 cgroup2 rw\n");
  r.write("proc/self/cgroup", "0::/job\n");
  r.write("cg root/job/memory.max", "123456789\n");
  EXPECT_EQ(cgroup_memory_limit(r.files()), 123456789);
}

TEST(Cgroup, NoLimitsAnywhereIsZero) {
  FakeRoot r;
  r.write("proc/self/mountinfo", std::string(kMountsV1) + kMountsV2);
  r.write("proc/self/cgroup", "4:memory:/x\n3:cpu,cpuacct:/x\n0::/x\n");
  r.write("sys/fs/cgroup/memory/x/memory.limit_in_bytes", "9223372036854771712\n");
  r.write("sys/fs/cgroup/cpu,cpuacct/x/cpu.cfs_quota_us", "-1\n");
  r.write("sys/fs/cgroup/cpu,cpuacct/x/cpu.cfs_period_us", "100000\n");
  r.write("sys/fs/cgroup/x/memory.max", "max\n");
  r.write("sys/fs/cgroup/x/cpu.max", "max 100000\n");
  EXPECT_EQ(cgroup_memory_limit(r.files()), 0);
  EXPECT_EQ(cgroup_cpu_limit(r.files()), 0.0);
}

TEST(Cgroup, MissingFilesAreNoLimit) {
  FakeRoot r;  // neither proc/self/cgroup nor mountinfo exists
  EXPECT_EQ(cgroup_memory_limit(r.files()), 0);
  EXPECT_EQ(cgroup_cpu_limit(r.files()), 0.0);
}

// What the planner's timings count on a node with a CPU quota: a run that waits (as a throttled
// process does) counts only the CPU it used; a run that computes counts its time.
TEST(RunTimer, CountsTheRunNotAThrottledWait) {
  const RunTimer waiting;
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  EXPECT_LT(waiting.ms(), 20.0);  // wall 60 ms, CPU about 0: a wall-clock timer gives 60
  const RunTimer working;
  volatile double x = 0;
  const double until = process_cpu_ms() + 30;
  while (process_cpu_ms() < until) x = x + 1;
  EXPECT_GE(working.ms(), 29.0);  // 30 ms of CPU: counted
  EXPECT_LT(working.ms(), 5000.0);
}

}  // namespace
}  // namespace edgepipe
