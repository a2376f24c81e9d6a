// The memory figures of the run log (base/memory.h): /proc/self/status parsed, VmHWM reset per
// phase, glibc's freed memory given back.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "edgepipe/base/memory.h"

namespace edgepipe {
namespace {

constexpr int64_t kMiB = 1 << 20;

TEST(ProcStatus, ParsesRssAndPeakInBytes) {
  const std::string status =
      "Name:\tedgepipe\nVmPeak:\t 4000000 kB\nVmHWM:\t  912340 kB\nVmRSS:\t  204800 kB\n"
      "RssAnon:\t  100000 kB\nThreads:\t7\n";
  const ProcMemory m = parse_proc_status(status);
  EXPECT_EQ(m.rss_bytes, 204800 * int64_t{1024});
  EXPECT_EQ(m.hwm_bytes, 912340 * int64_t{1024});
}

TEST(ProcStatus, MissingOrMalformedLinesAreUnknown) {
  EXPECT_EQ(parse_proc_status("").rss_bytes, -1);
  EXPECT_EQ(parse_proc_status("").hwm_bytes, -1);
  const ProcMemory m = parse_proc_status("VmRSS:\t  abc kB\nVmHWM:\t 12 MB\nVmRSSx:\t1 kB\n");
  EXPECT_EQ(m.rss_bytes, -1);
  EXPECT_EQ(m.hwm_bytes, -1);
  // RssAnon and VmPeak are other figures, not the ones read.
  EXPECT_EQ(parse_proc_status("RssAnon:\t 5 kB\nVmPeak:\t 6 kB\n").rss_bytes, -1);
}

TEST(ProcStatus, ThisProcess) {
  const ProcMemory m = read_proc_memory();
  EXPECT_GT(m.rss_bytes, 0);
  EXPECT_GE(m.hwm_bytes, m.rss_bytes);
}

TEST(PeakReset, FailsWithoutTheFile) { EXPECT_FALSE(reset_peak_rss("/nonexistent/clear_refs")); }

// Many small blocks (glibc's heap, not mmap), touched, then freed behind a block still in use so
// that the heap cannot shrink from its top: glibc keeps them until malloc_trim gives the pages
// back. Then the peak: it stays until reset, and a reset brings it down to about the RSS now.
TEST(FreeMemory, TrimGivesBackAndPeakResets) {
  std::vector<char*> blocks;
  for (int i = 0; i < 64 * 1024; ++i) {
    blocks.push_back(static_cast<char*>(std::malloc(1024)));
    std::memset(blocks.back(), i & 0xff, 1024);
  }
  char* keep = static_cast<char*>(std::malloc(1024));
  std::memset(keep, 1, 1024);
  for (char* b : blocks) std::free(b);
  const ProcMemory held = read_proc_memory();
  ASSERT_TRUE(release_free_memory());
  const ProcMemory trimmed = read_proc_memory();
  EXPECT_LT(trimmed.rss_bytes, held.rss_bytes - 32 * kMiB)
      << "held " << held.rss_bytes << ", after malloc_trim " << trimmed.rss_bytes;
  EXPECT_GE(trimmed.hwm_bytes, held.rss_bytes);  // the peak is still the held memory's
  if (!reset_peak_rss()) GTEST_SKIP() << "the kernel refuses to reset VmHWM (Linux < 4.0?)";
  const ProcMemory reset = read_proc_memory();
  EXPECT_LT(reset.hwm_bytes, held.rss_bytes - 32 * kMiB);
  EXPECT_GE(reset.hwm_bytes, reset.rss_bytes);
  std::free(keep);
}

}  // namespace
}  // namespace edgepipe
