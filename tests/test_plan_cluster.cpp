// Cluster descriptions (include/edgepipe/plan/cluster_file.h), the units they are written in, and
// the shipped descriptions under configs/ planned with a ResNet50-shaped chain.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "plan_test_support.h"

namespace edgepipe {
namespace {

// ---------------------------------------------------------------------------------------------
// Units

TEST(Units, ParsesSizesBandwidthsAndTimes) {
  EXPECT_DOUBLE_EQ(parse_bytes("512MiB"), 512 * kMiB);
  EXPECT_DOUBLE_EQ(parse_bytes("1.5 GB"), 1.5e9);
  EXPECT_DOUBLE_EQ(parse_bytes("4096"), 4096);
  EXPECT_DOUBLE_EQ(parse_bandwidth("100Mbit/s"), 12.5e6);
  EXPECT_DOUBLE_EQ(parse_bandwidth("1 Gbps"), 125e6);
  EXPECT_DOUBLE_EQ(parse_bandwidth("10MB/s"), 10e6);
  EXPECT_DOUBLE_EQ(parse_duration("1ms"), 1e-3);
  EXPECT_DOUBLE_EQ(parse_duration("250 us"), 250e-6);
  EXPECT_DOUBLE_EQ(parse_duration("2s"), 2);
}

TEST(Units, RejectsBadValues) {
  expect_error([] { parse_bytes("512 MiBs"); }, {"unknown size unit 'MiBs'", "MiB"});
  expect_error([] { parse_bytes("lots"); }, {"does not start with a number"});
  expect_error([] { parse_bytes("-3MB"); }, {"negative"});
  expect_error([] { parse_bandwidth("100"); }, {"needs a unit", "Mbit/s"});
  expect_error([] { parse_bandwidth("0Mbit/s"); }, {"above 0"});
  expect_error([] { parse_duration("5"); }, {"needs a unit"});
  expect_error([] { parse_duration("5 min"); }, {"unknown time unit 'min'"});
}

// ---------------------------------------------------------------------------------------------
// Cluster descriptions

TEST(ClusterParser, ReadsRanksCountsAndLinks) {
  const Cluster c = parse_cluster(R"(
# two fast nodes and two slow ones
[link]
bandwidth = 100Mbit/s
latency = 1ms

[dispatcher]
bandwidth = 1Gbit/s

[rank.1]
count = 2
name = fast
speed = 4
memory = 1GiB
bandwidth = 1Gbit/s   ; NIC
latency = 0.1ms

[rank.3]
count = 2
speed = 0.5
memory = 256MiB

[link.3>4]
bandwidth = 10Mbit/s
)",
                                  "test.ini");
  ASSERT_EQ(c.num_stage_ranks(), 4u);
  EXPECT_EQ(c.ranks[1].name, "fast");
  EXPECT_EQ(c.ranks[2].name, "fast");
  EXPECT_DOUBLE_EQ(c.ranks[2].speed, 4);
  EXPECT_DOUBLE_EQ(c.ranks[2].memory_bytes, 1024 * kMiB);
  EXPECT_DOUBLE_EQ(c.ranks[4].speed, 0.5);
  EXPECT_DOUBLE_EQ(c.ranks[4].memory_bytes, 256 * kMiB);
  // Fast to fast: both NICs at 1 Gbit/s; latency the larger of the two ends.
  EXPECT_DOUBLE_EQ(c.link(1, 2).bandwidth_Bps, 125e6);
  EXPECT_DOUBLE_EQ(c.link(1, 2).latency_s, 1e-4);
  // Dispatcher (1 Gbit/s NIC, default latency 1 ms) to a fast node.
  EXPECT_DOUBLE_EQ(c.link(0, 1).bandwidth_Bps, 125e6);
  EXPECT_DOUBLE_EQ(c.link(0, 1).latency_s, 1e-3);
  // Fast to slow: limited by the slow end's default.
  EXPECT_DOUBLE_EQ(c.link(2, 3).bandwidth_Bps, 12.5e6);
  EXPECT_DOUBLE_EQ(c.link(2, 3).latency_s, 1e-3);
  // One-way override.
  EXPECT_DOUBLE_EQ(c.link(3, 4).bandwidth_Bps, 1.25e6);
  EXPECT_DOUBLE_EQ(c.link(4, 3).bandwidth_Bps, 12.5e6);
}

TEST(ClusterParser, LinkSectionsTakeRankSets) {
  const Cluster c = parse_cluster(R"(
[link]
bandwidth = 100Mbit/s
[rank.1]
count = 6
memory = 1GB
[link.1..3-1..3]
bandwidth = 1Gbit/s
[link.1,2-5..6]
latency = 3ms
)");
  EXPECT_DOUBLE_EQ(c.link(1, 3).bandwidth_Bps, 125e6);
  EXPECT_DOUBLE_EQ(c.link(3, 2).bandwidth_Bps, 125e6);
  EXPECT_DOUBLE_EQ(c.link(3, 4).bandwidth_Bps, 12.5e6);
  EXPECT_DOUBLE_EQ(c.link(2, 6).latency_s, 3e-3);
  EXPECT_DOUBLE_EQ(c.link(6, 1).latency_s, 3e-3);
  EXPECT_DOUBLE_EQ(c.link(6, 1).bandwidth_Bps, 12.5e6);
  EXPECT_DOUBLE_EQ(c.link(3, 5).latency_s, 0);
}

TEST(ClusterParser, ReadsMeasuredBlockTimes) {
  const Cluster c = parse_cluster(
      "[link]\nbandwidth = 1Gbit/s\n[rank.1]\nmemory = 1GB\nblock_ms = 1.5, 2, 0.25\n");
  EXPECT_EQ(c.ranks[1].block_ms, (std::vector<double>{1.5, 2, 0.25}));
}

// Emulated nodes (tools/emulate): a CPU share and packet loss; the planner reads and keeps them.
TEST(ClusterParser, ReadsCpuSharesAndLoss) {
  const Cluster c = parse_cluster(
      "[link]\nbandwidth = 1Gbit/s\nloss = 0.1%\n[dispatcher]\ncpu = 0.5\n"
      "[rank.1]\ncount = 2\nmemory = 1GB\ncpu = 0.2\nloss = 0.01\n[link.1-2]\nloss = 2%\n");
  EXPECT_DOUBLE_EQ(c.ranks[0].cpu_cores, 0.5);
  EXPECT_DOUBLE_EQ(c.ranks[1].cpu_cores, 0.2);
  EXPECT_DOUBLE_EQ(c.ranks[2].cpu_cores, 0.2);
  EXPECT_DOUBLE_EQ(c.link(0, 1).loss, 0.01);  // the larger end's loss
  EXPECT_DOUBLE_EQ(c.link(1, 2).loss, 0.02);  // the pair's own section
  const std::string head = "[link]\nbandwidth = 100Mbit/s\n";
  expect_error([&] { parse_cluster(head + "[rank.1]\nmemory = 1GB\ncpu = 0\n", "c.ini"); },
               {"c.ini:5:", "[rank.1] cpu", "above 0"});
  expect_error([&] { parse_cluster(head + "[rank.1]\nmemory = 1GB\ncpu = 2GHz\n", "c.ini"); },
               {"c.ini:5:", "[rank.1] cpu", "plain number of cores"});
  expect_error([&] { parse_cluster(head + "loss = 100%\n[rank.1]\nmemory = 1GB\n", "c.ini"); },
               {"c.ini:3:", "[link] loss", "below 100%"});
}

TEST(ClusterParser, ErrorsNameFileLineAndKey) {
  const std::string head = "[link]\nbandwidth = 100Mbit/s\n";
  expect_error([&] { parse_cluster(head + "[rank.1]\nmemory = 512 MiBs\n", "c.ini"); },
               {"c.ini:4:", "[rank.1] memory", "unknown size unit 'MiBs'"});
  expect_error([&] { parse_cluster(head + "[rank.1]\nmemory = 1GB\nsped = 2\n", "c.ini"); },
               {"c.ini:5:", "[rank.1] sped", "unknown key", "speed"});
  expect_error([&] { parse_cluster(head + "[rank.1]\nmemory = 1GB\nmemory = 2GB\n", "c.ini"); },
               {"c.ini:5:", "memory is set twice", "line 4"});
  expect_error([&] { parse_cluster(head + "[rank.1]\nspeed = 2\n", "c.ini"); },
               {"c.ini:3:", "[rank.1]", "memory is missing"});
  expect_error([&] { parse_cluster(head + "[rank.2]\nmemory = 1GB\n", "c.ini"); },
               {"c.ini", "rank 1 is not described"});
  expect_error(
      [&] {
        parse_cluster(head + "[rank.1]\ncount = 3\nmemory = 1GB\n[rank.2]\nmemory = 1GB\n",
                      "c.ini");
      },
      {"c.ini:6:", "rank 2 is already described by [rank.1] on line 3"});
  expect_error([&] { parse_cluster(head + "[rank.1]\nmemory = 1GB\n[nodes]\n", "c.ini"); },
               {"c.ini:5:", "[nodes]", "unknown section"});
  expect_error([&] { parse_cluster(head + "[rank.1]\nmemory = 1GB\nspeed = fast\n", "c.ini"); },
               {"c.ini:5:", "[rank.1] speed", "does not start with a number"});
  expect_error([&] { parse_cluster("speed = 1\n", "c.ini"); }, {"c.ini:1:", "outside any section"});
  expect_error(
      [&] { parse_cluster(head + "[rank.1]\nmemory = 1GB\n[link.1-7]\nlatency=1ms\n", "c.ini"); },
      {"c.ini:5:", "[link.1-7]", "rank 7 does not exist"});
  expect_error([&] { parse_cluster("[rank.1]\nmemory = 1GB\n", "c.ini"); },
               {"c.ini", "no bandwidth for the link from rank 0 to rank 1"});
  expect_error([&] { parse_cluster(head + "[rank.0]\nmemory = 1GB\n", "c.ini"); },
               {"c.ini:3:", "rank 0 is the dispatcher"});
  expect_error(
      [&] { parse_cluster(head + "[dispatcher]\nmemory = 1GB\n[rank.1]\nmemory=1GB\n", "c.ini"); },
      {"c.ini:4:", "[dispatcher] memory", "runs no stage"});
  expect_error([] { load_cluster("/nonexistent/cluster.ini"); },
               {"cannot read", "/nonexistent/cluster.ini"});
}

// ---------------------------------------------------------------------------------------------
// The shipped cluster descriptions with the synthetic ResNet50-shaped chain (resnet50_shaped.h).

TEST(ShippedClusters, ParseAndPlanAResNet50ShapedModel) {
  const ModelCosts m = resnet50_shaped();
  double weights = 0;
  for (const BlockCost& b : m.blocks) weights += b.param_bytes;
  EXPECT_NEAR(weights / 1e6, 102, 1);  // ~100 MB of weights, like ResNet50
  for (const char* name : {"cluster-8-small.ini", "cluster-mixed.ini", "cluster-too-small.ini"}) {
    SCOPED_TRACE(name);
    const std::string path = source_path(std::string("configs/") + name);
    if (!std::ifstream(path)) GTEST_SKIP() << path << " not found (set EDGEPIPE_SOURCE_DIR)";
    const Cluster c = load_cluster(path);
    EXPECT_GE(c.num_stage_ranks(), 4u);
    const Plan p = plan_optimal(m, c);
    ASSERT_TRUE(p.found());
    EXPECT_TRUE(p.cost.fits);
    EXPECT_LT(p.period_s(), plan_equal_blocks(m, c).period_s() + 1e-12);
  }
}

TEST(ShippedClusters, TooSmallFitsOnlyAcrossSeveralNodes) {
  const std::string path = source_path("configs/cluster-too-small.ini");
  if (!std::ifstream(path)) GTEST_SKIP() << path << " not found (set EDGEPIPE_SOURCE_DIR)";
  const ModelCosts m = resnet50_shaped();
  const Cluster c = load_cluster(path);
  const Plan p = plan_optimal(m, c);
  EXPECT_GE(p.stages.size(), 2u);
  // No single node holds the whole model.
  for (size_t r = 1; r <= c.num_stage_ranks(); ++r)
    EXPECT_FALSE(evaluate_plan(m, c, {{r, 0, m.num_blocks()}}).fits) << "rank " << r;
  // One node alone: a clear error with the missing amount.
  Cluster one = c;
  one.ranks.resize(2);
  one.links.resize(2);
  for (auto& row : one.links) row.resize(2);
  expect_error([&] { plan_optimal(m, one); },
               {"does not fit in memory", "MiB", "would fit with", "more on every rank"});
}

}  // namespace
}  // namespace edgepipe
