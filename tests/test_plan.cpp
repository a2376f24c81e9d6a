// Tests of the planner (include/edgepipe/plan.h) and the cluster description parser
// (include/edgepipe/cluster.h): pure code, no MPI, no Torch.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "edgepipe/cluster.h"
#include "edgepipe/error.h"
#include "edgepipe/plan.h"

#ifndef EDGEPIPE_SOURCE_DIR
#define EDGEPIPE_SOURCE_DIR "."
#endif

namespace edgepipe {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

// Expects `f` to throw edgepipe::Error whose message contains every string in `parts`.
template <typename F>
void expect_error(F f, std::vector<std::string> parts) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one containing '" << parts[0] << "'";
  } catch (const Error& e) {
    for (const std::string& p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos)
          << "message: " << e.what() << "\nmissing: " << p;
  }
}

// ---------------------------------------------------------------------------------------------
// partition_chain (used by the pipeline before the planner existed)

TEST(PartitionChain, SplitsEvenly) {
  EXPECT_EQ(partition_chain({1, 1, 1, 1}, 2), (std::vector<size_t>{0, 2, 4}));
  EXPECT_EQ(partition_chain({5, 1, 1, 1, 1, 1}, 2), (std::vector<size_t>{0, 1, 6}));
  EXPECT_EQ(partition_chain({1, 2, 3}, 1), (std::vector<size_t>{0, 3}));
  EXPECT_EQ(partition_chain({1, 2, 3}, 3), (std::vector<size_t>{0, 1, 2, 3}));
}

TEST(PartitionChain, RejectsBadK) {
  EXPECT_THROW(partition_chain({1, 2}, 0), Error);
  expect_error([] { partition_chain({1, 2}, 3); }, {"2 blocks", "3 stages"});
}

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
// A ResNet50-shaped chain at batch 1: one block per bottleneck, with torchvision's parameter
// counts (fp32), output sizes, and compute from FLOPs at 20 GFLOP/s for speed 1.0. Synthetic:
// `edgepipe plan` measures the real model.

ModelCosts resnet50_shaped() {
  struct Row {
    double params, mflops, out_bytes;
  };
  std::vector<Row> rows = {{9536, 118, 802816}};  // stem: conv1 + maxpool
  auto add = [&](int count, double p0, double p, double f0, double f, double out) {
    for (int i = 0; i < count; ++i) rows.push_back({i == 0 ? p0 : p, i == 0 ? f0 : f, out});
  };
  add(3, 75008, 70400, 241, 218, 3211264);
  add(4, 379392, 280064, 379, 218, 1605632);
  add(6, 1512448, 1117184, 379, 218, 802816);
  add(3, 6039552, 4462592, 379, 218, 401408);
  rows.push_back({2049000, 4, 4000});  // avgpool + fc
  ModelCosts m;
  m.cut_bytes.push_back(3 * 224 * 224 * 4);
  for (const Row& r : rows) {
    const double in = m.cut_bytes.back();
    m.blocks.push_back({r.mflops / 20.0, r.params * 4, in + 2 * r.out_bytes});
    m.cut_bytes.push_back(r.out_bytes);
  }
  return m;
}

TEST(ShippedClusters, ParseAndPlanAResNet50ShapedModel) {
  const ModelCosts m = resnet50_shaped();
  double weights = 0;
  for (const BlockCost& b : m.blocks) weights += b.param_bytes;
  EXPECT_NEAR(weights / 1e6, 102, 1);  // ~100 MB of weights, like ResNet50
  for (const char* name : {"cluster-8-small.ini", "cluster-mixed.ini", "cluster-too-small.ini"}) {
    SCOPED_TRACE(name);
    const std::string path = std::string(EDGEPIPE_SOURCE_DIR) + "/configs/" + name;
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
  const std::string path = std::string(EDGEPIPE_SOURCE_DIR) + "/configs/cluster-too-small.ini";
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

// ---------------------------------------------------------------------------------------------
// The cost model on a hand-computed example

TEST(CostModel, MatchesHandComputedPeriod) {
  ModelCosts m;
  m.blocks = {{10, 100, 50}, {20, 200, 10}, {30, 300, 20}};
  m.cut_bytes = {1000, 2000, 3000, 4000};
  Cluster c = uniform_cluster(2, 1.0, 1000, {0.001, 1e6});
  c.ranks[2].speed = 2;
  c.links[1][2] = {0.002, 1e5};  // 3000 bytes: 2 ms + 30 ms
  const PlanCost pc = evaluate_plan(m, c, {{1, 0, 2}, {2, 2, 3}});
  ASSERT_EQ(pc.stages.size(), 2u);
  EXPECT_DOUBLE_EQ(pc.stages[0].compute_s, 0.030);
  EXPECT_DOUBLE_EQ(pc.stages[0].recv_s, 0.001 + 1000 / 1e6);
  EXPECT_DOUBLE_EQ(pc.stages[0].send_s, 0.032);
  EXPECT_DOUBLE_EQ(pc.stages[0].memory_bytes, 300 + 50);
  EXPECT_DOUBLE_EQ(pc.stages[1].compute_s, 0.015);
  EXPECT_DOUBLE_EQ(pc.stages[1].recv_s, 0.032);
  EXPECT_DOUBLE_EQ(pc.stages[1].send_s, 0.001 + 4000 / 1e6);
  EXPECT_DOUBLE_EQ(pc.period_s, 0.032);
  EXPECT_DOUBLE_EQ(pc.link_bytes, 3000);
  EXPECT_TRUE(pc.fits);
  // Codec work lands on the ranks' compute and on the dispatcher.
  m.cut_encode_ms = {5, 0, 1, 50};
  m.cut_decode_ms = {0, 0, 2, 3};
  const PlanCost pc2 = evaluate_plan(m, c, {{1, 0, 2}, {2, 2, 3}});
  EXPECT_DOUBLE_EQ(pc2.stages[0].compute_s, 0.031);
  EXPECT_DOUBLE_EQ(pc2.stages[1].compute_s, 0.002 + 0.015 + 0.050);
  EXPECT_DOUBLE_EQ(pc2.dispatcher_s, 0.008);
  EXPECT_DOUBLE_EQ(pc2.period_s, 0.067);
  // Memory: 600 + 50 > 400.
  c.ranks[1].memory_bytes = 400;
  EXPECT_FALSE(evaluate_plan(m, c, {{1, 0, 3}}).fits);
}

TEST(CostModel, RejectsMalformedPlans) {
  ModelCosts m;
  m.blocks = {{1, 1, 1}, {1, 1, 1}};
  m.cut_bytes = {1, 1, 1};
  const Cluster c = uniform_cluster(2, 1, 100, {0, 1e6});
  expect_error([&] { evaluate_plan(m, c, {{1, 0, 1}}); }, {"end at block 1 of 2"});
  expect_error([&] { evaluate_plan(m, c, {{1, 0, 1}, {1, 1, 2}}); }, {"rank 1 runs two stages"});
  expect_error([&] { evaluate_plan(m, c, {{3, 0, 2}}); }, {"not a stage rank"});
  expect_error([&] { evaluate_plan(m, c, {{1, 1, 2}}); }, {"cover blocks"});
  m.cut_bytes.pop_back();
  expect_error([&] { plan_optimal(m, c); }, {"2 blocks but 2 cut sizes"});
}

// ---------------------------------------------------------------------------------------------
// Random instances

struct Instance {
  ModelCosts model;
  Cluster cluster;
};

// `classes` classes of ranks: ranks of a class are identical (speed or block times, memory, links),
// so the planner groups them. With `ties`, values come from tiny sets so that many plans tie. With
// `perturb`, a few single links are redrawn.
Instance random_instance(std::mt19937_64& rng, size_t R, size_t n, size_t classes, bool ties,
                         bool perturb = false) {
  auto uni = [&](double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng); };
  auto logu = [&](double a, double b) { return std::exp(uni(std::log(a), std::log(b))); };
  auto pick = [&](std::vector<double> v) { return v[rng() % v.size()]; };
  auto chance = [&](double p) { return uni(0, 1) < p; };
  Instance in;
  ModelCosts& m = in.model;
  for (size_t b = 0; b < n; ++b) {
    BlockCost bc;
    bc.ref_ms = ties ? pick({1, 2, 3}) : logu(0.1, 100);
    bc.param_bytes = std::round(ties ? pick({1e6, 2e6}) : logu(1e4, 5e7));
    bc.act_bytes = std::round(ties ? pick({1e5, 1e6}) : logu(1e4, 1e7));
    m.blocks.push_back(bc);
  }
  for (size_t cut = 0; cut <= n; ++cut)
    m.cut_bytes.push_back(std::round(ties ? pick({1e3, 1e5}) : logu(1e2, 1e7)));
  if (chance(0.25)) {
    for (size_t cut = 0; cut <= n; ++cut) {
      m.cut_encode_ms.push_back(ties ? pick({0, 1}) : logu(0.01, 5));
      m.cut_decode_ms.push_back(ties ? pick({0, 1}) : logu(0.01, 5));
    }
  }
  double need = 0, act = 0;
  for (const BlockCost& b : m.blocks) {
    need += b.param_bytes;
    act = std::max(act, b.act_bytes);
  }
  need += act;

  // Classes: rank r belongs to class_of[r]; every class has at least one rank.
  std::vector<size_t> class_of(R + 1, 0);
  for (size_t r = 1; r <= R; ++r) class_of[r] = r <= classes ? r - 1 : rng() % classes;
  std::vector<RankInfo> proto(classes);
  for (RankInfo& p : proto) {
    if (chance(0.3)) {
      for (const BlockCost& b : m.blocks)
        p.block_ms.push_back(ties ? pick({1, 2}) : b.ref_ms * logu(0.2, 5));
    } else {
      p.speed = ties ? pick({1, 2}) : logu(0.25, 4);
    }
    // Mostly enough for a share of the model; sometimes too little for anything.
    p.memory_bytes = std::round(need * (ties ? pick({0.3, 0.7, 1.5}) : logu(0.1, 3)));
  }
  auto random_link = [&]() -> Link {
    if (ties) return {pick({0, 1e-3}), pick({1e6, 1e7})};
    return {uni(0, 5e-3), logu(1e5, 1e9)};
  };
  // Links by class pair (and the dispatcher as class `classes`); within a class one link.
  std::vector<std::vector<Link>> class_link(classes + 1, std::vector<Link>(classes + 1));
  for (auto& row : class_link)
    for (Link& l : row) l = random_link();
  Cluster& c = in.cluster;
  c.ranks.resize(R + 1);
  for (size_t r = 1; r <= R; ++r) c.ranks[r] = proto[class_of[r]];
  c.links.assign(R + 1, std::vector<Link>(R + 1));
  for (size_t a = 0; a <= R; ++a)
    for (size_t b = 0; b <= R; ++b) {
      size_t ca = a == 0 ? classes : class_of[a], cb = b == 0 ? classes : class_of[b];
      c.links[a][b] = class_link[ca][cb];
    }
  // Sometimes a few single links differ from their class pair's, so that the planner must not
  // group all of a class.
  if (perturb && R >= 2) {
    for (int k = 1 + static_cast<int>(rng() % 3); k > 0; --k) {
      size_t a = rng() % (R + 1), b = rng() % (R + 1);
      if (a != b) c.links[a][b] = random_link();
    }
  }
  return in;
}

// Plans a brute force enumerates: sum over k of C(n-1, k-1) cut sets x R!/(R-k)! placements.
double brute_force_plans(size_t n, size_t R) {
  double plans = 0, cuts = 1, places = 1;
  for (size_t k = 1; k <= std::min(n, R); ++k) {
    if (k > 1) cuts = cuts * static_cast<double>(n - k + 1) / static_cast<double>(k - 1);
    places *= static_cast<double>(R - k + 1);
    plans += cuts * places;
  }
  return plans;
}

bool same_period(double a, double b) { return std::abs(a - b) <= 1e-12 * std::max(a, b); }

// The acceptance test of issue 4: on 1500 random instances (1..8 ranks, 1..30 blocks; each size
// bounded so that the brute force enumerates at most 2e6 plans: 30 blocks up to 4 ranks, 8 blocks
// at 8 ranks; random speeds or measured block times, memories, bandwidths, latencies, codec times;
// identical ranks in some, nearly identical in others; many ties in some; some that do not fit at
// all), the exact planner's period equals the brute force's every time, and no baseline beats it.
TEST(ExactPlanner, EqualsBruteForceOnRandomInstances) {
  std::mt19937_64 rng(20240604);
  const double kMaxPlans = 2e6;
  size_t infeasible = 0, compared = 0, grouped = 0, largest_n_at_8 = 0, largest_n = 0;
  const int kInstances = 1500;
  for (int it = 0; it < kInstances; ++it) {
    const size_t R = 1 + rng() % 8;
    size_t n_max = 1;
    while (n_max < 30 && brute_force_plans(n_max + 1, R) <= kMaxPlans) ++n_max;
    // Half the instances at the largest size the bound allows, the rest anywhere below.
    const size_t n = it % 2 ? n_max : 1 + rng() % n_max;
    const size_t classes = it % 3 == 0 ? 1 + rng() % R : R;
    const bool ties = it % 5 == 0;
    const Instance in = random_instance(rng, R, n, classes, ties, it % 6 == 3);
    SCOPED_TRACE("instance " + std::to_string(it) + ": " + std::to_string(R) + " ranks, " +
                 std::to_string(n) + " blocks, " + std::to_string(classes) + " classes" +
                 (ties ? ", ties" : ""));
    largest_n = std::max(largest_n, n);
    if (R == 8) largest_n_at_8 = std::max(largest_n_at_8, n);

    const Plan bf = plan_brute_force(in.model, in.cluster);
    if (!bf.found()) {
      ++infeasible;
      expect_error([&] { plan_optimal(in.model, in.cluster); },
                   {"does not fit in memory", "more on every rank"});
      continue;
    }
    const Plan opt = plan_optimal(in.model, in.cluster);
    ASSERT_TRUE(opt.found());
    ASSERT_TRUE(opt.cost.fits);
    ++compared;
    if (opt.rank_types < R) ++grouped;
    ASSERT_TRUE(same_period(opt.period_s(), bf.period_s()))
        << "optimal " << opt.period_s() << " s, brute force " << bf.period_s() << " s\n"
        << format_plan(opt, in.model, in.cluster) << format_plan(bf, in.model, in.cluster);
    EXPECT_LE(opt.stages.size(), bf.stages.size());  // ties go to fewer stages
    for (const Plan& base :
         {plan_random(in.model, in.cluster), plan_greedy(in.model, in.cluster),
          plan_equal_blocks(in.model, in.cluster), plan_pipeedge(in.model, in.cluster)})
      if (base.found()) {
        EXPECT_GE(base.period_s(), opt.period_s() * (1 - 1e-12)) << base.method;
      }
  }
  std::printf(
      "%d instances: %zu periods compared, %zu do not fit, %zu planned over fewer types "
      "than ranks, at most %zu blocks (%zu at 8 ranks)\n",
      kInstances, compared, infeasible, grouped, largest_n, largest_n_at_8);
  // The instances cover what they claim to.
  EXPECT_GE(compared, 1000u);
  EXPECT_GT(infeasible, 20u);
  EXPECT_GT(grouped, 100u);
  EXPECT_EQ(largest_n, 30u);
  EXPECT_GE(largest_n_at_8, 8u);
}

// Every plan, by evaluate_plan: the best by (period, stages, bytes between stages).
struct Lexicographic {
  const Instance& in;
  std::vector<Stage> cur;
  std::vector<char> used;
  double period = std::numeric_limits<double>::infinity(), bytes = 0;
  size_t stages = 0;
  void go(size_t i) {
    const size_t n = in.model.num_blocks();
    if (i == n) {
      const PlanCost pc = evaluate_plan(in.model, in.cluster, cur);
      if (!pc.fits) return;
      if (std::make_tuple(pc.period_s, cur.size(), pc.link_bytes) <
          std::make_tuple(period, stages, bytes)) {
        period = pc.period_s;
        stages = cur.size();
        bytes = pc.link_bytes;
      }
      return;
    }
    for (size_t r = 1; r < in.cluster.num_ranks(); ++r) {
      if (used[r]) continue;
      used[r] = 1;
      for (size_t j = i + 1; j <= n; ++j) {
        cur.push_back({r, i, j});
        go(j);
        cur.pop_back();
      }
      used[r] = 0;
    }
  }
};

TEST(ExactPlanner, TieBreakMatchesExhaustiveSearch) {
  std::mt19937_64 rng(5);
  size_t checked = 0;
  for (int it = 0; it < 600; ++it) {
    const size_t R = 1 + rng() % 5, n = 1 + rng() % (R <= 3 ? 8 : 6);
    const Instance in = random_instance(rng, R, n, 1 + rng() % R, true, it % 3 == 0);
    Lexicographic lex{in, {}, std::vector<char>(R + 1, 0)};
    lex.go(0);
    if (lex.stages == 0) continue;
    SCOPED_TRACE("instance " + std::to_string(it));
    const Plan p = plan_optimal(in.model, in.cluster);
    ASSERT_EQ(p.period_s(), lex.period);
    ASSERT_EQ(p.stages.size(), lex.stages);
    ASSERT_EQ(p.cost.link_bytes, lex.bytes);
    ++checked;
  }
  EXPECT_GT(checked, 300u);
}

// Grouping identical ranks into types changes the state space, not the answer: on instances too
// large for the brute force, the typed DP equals the DP over single ranks.
TEST(ExactPlanner, GroupedEqualsUngrouped) {
  std::mt19937_64 rng(7);
  for (int it = 0; it < 30; ++it) {
    const size_t R = 9 + rng() % 4, n = 10 + rng() % 15, classes = 2 + rng() % 3;
    const Instance in = random_instance(rng, R, n, classes, it % 4 == 0);
    SCOPED_TRACE("instance " + std::to_string(it));
    double grouped = 0, single = 0;
    try {
      PlanOptions no_groups;
      no_groups.group_tolerance = -1;
      const Plan g = plan_optimal(in.model, in.cluster);
      const Plan s = plan_optimal(in.model, in.cluster, no_groups);
      EXPECT_LE(g.rank_types, classes);
      EXPECT_EQ(s.rank_types, R);
      grouped = g.period_s();
      single = s.period_s();
      EXPECT_EQ(g.stages.size(), s.stages.size());
      EXPECT_EQ(g.cost.link_bytes, s.cost.link_bytes);
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("does not fit"), std::string::npos) << e.what();
      continue;
    }
    EXPECT_TRUE(same_period(grouped, single)) << grouped << " vs " << single;
  }
}

TEST(ExactPlanner, GroupsOnlyInterchangeableRanks) {
  ModelCosts m;
  m.blocks = {{10, 1, 1}, {10, 1, 1}};
  m.cut_bytes = {1, 1, 1};
  Cluster c = uniform_cluster(4, 1.0, 100, {1e-3, 1e6});
  EXPECT_EQ(group_ranks(m, c).members.size(), 1u);
  // Rank 3's link to rank 1 is slower: 3 is no longer interchangeable with 2 or 4 (its links to
  // them are fast), and 1 is not either (only 1 is reached slowly from 3). 2 and 4 still are.
  c.links[3][1].bandwidth_Bps = 1e3;
  RankTypes t = group_ranks(m, c);
  EXPECT_EQ(t.type_of_rank[2], t.type_of_rank[4]);
  EXPECT_NE(t.type_of_rank[3], t.type_of_rank[2]);
  EXPECT_NE(t.type_of_rank[1], t.type_of_rank[2]);
  // Links within a type must agree: each type's ranks are all alike towards every other rank.
  for (size_t a = 1; a <= 4; ++a)
    for (size_t b = 1; b <= 4; ++b)
      for (size_t a2 = 1; a2 <= 4; ++a2)
        for (size_t b2 = 1; b2 <= 4; ++b2)
          if (a != b && a2 != b2 && t.type_of_rank[a] == t.type_of_rank[a2] &&
              t.type_of_rank[b] == t.type_of_rank[b2]) {
            EXPECT_EQ(c.link(a, b).bandwidth_Bps, c.link(a2, b2).bandwidth_Bps);
          }
  // A different speed or memory also separates.
  Cluster d = uniform_cluster(3, 1.0, 100, {1e-3, 1e6});
  d.ranks[2].speed = 1.01;
  d.ranks[3].memory_bytes = 99;
  EXPECT_EQ(group_ranks(m, d).members.size(), 3u);
  // ... unless within the tolerance; the type then takes the worst values.
  EXPECT_EQ(group_ranks(m, d, 0.05).members.size(), 1u);
  PlanOptions tol;
  tol.group_tolerance = 0.05;
  const Plan p = plan_optimal(m, d, tol);
  EXPECT_TRUE(p.cost.fits);
}

// Whatever the cluster, the types found have uniform links: the link between two distinct ranks
// depends only on their types (what makes the typed DP exact).
TEST(ExactPlanner, TypesHaveUniformLinks) {
  std::mt19937_64 rng(11);
  for (int it = 0; it < 300; ++it) {
    const size_t R = 2 + rng() % 11;
    const Instance in = random_instance(rng, R, 3, 1 + rng() % R, it % 2 == 0, true);
    const Cluster& c = in.cluster;
    const RankTypes t = group_ranks(in.model, c);
    size_t ranks = 0;
    for (const auto& mem : t.members) ranks += mem.size();
    ASSERT_EQ(ranks, R);
    for (size_t a = 1; a <= R; ++a)
      for (size_t b = 0; b <= R; ++b)
        for (size_t a2 = 1; a2 <= R; ++a2)
          for (size_t b2 = 0; b2 <= R; ++b2) {
            if (a == b || a2 == b2 || t.type_of_rank[a] != t.type_of_rank[a2]) continue;
            // b, b2 of the same type, or both the dispatcher.
            if ((b == 0) != (b2 == 0) || (b > 0 && t.type_of_rank[b] != t.type_of_rank[b2]))
              continue;
            ASSERT_EQ(c.link(a, b).bandwidth_Bps, c.link(a2, b2).bandwidth_Bps) << it;
            ASSERT_EQ(c.link(a, b).latency_s, c.link(a2, b2).latency_s) << it;
            ASSERT_EQ(c.link(b, a).bandwidth_Bps, c.link(b2, a2).bandwidth_Bps) << it;
            ASSERT_EQ(c.link(b, a).latency_s, c.link(b2, a2).latency_s) << it;
          }
  }
}

TEST(ExactPlanner, TiesGoToFewerStagesThenFewerBytes) {
  // The input link dominates every plan: one stage is enough.
  ModelCosts m;
  m.blocks = {{1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}};
  m.cut_bytes = {1e9, 10, 10, 10, 10};
  const Cluster c = uniform_cluster(4, 1.0, 100, {0, 1e6});
  Plan p = plan_optimal(m, c);
  EXPECT_EQ(p.stages.size(), 1u);
  EXPECT_DOUBLE_EQ(p.period_s(), 1000.0);
  // Memory forces two stages; every two-stage split has the same period (the input link); the
  // smallest cut wins.
  m.blocks = {{1, 40, 1}, {1, 40, 1}, {1, 40, 1}, {1, 40, 1}};
  m.cut_bytes = {1e9, 30, 20, 30, 10};
  p = plan_optimal(m, c);
  ASSERT_EQ(p.stages.size(), 2u);
  EXPECT_EQ(p.stages[0].end, 2u);
  EXPECT_EQ(p.stages[0].rank, 1u);  // among identical ranks, the lowest numbers
  EXPECT_EQ(p.stages[1].rank, 2u);
}

TEST(ExactPlanner, UsesFastRanksAndAvoidsSlowLinks) {
  ModelCosts m;
  for (int b = 0; b < 8; ++b) m.blocks.push_back({10, 1, 1});
  m.cut_bytes.assign(9, 1e5);
  Cluster c = uniform_cluster(4, 1.0, 1000, {0, 1e8});
  c.ranks[3].speed = 4;  // the fast one
  const Plan one = plan_optimal(m, c, [] {
    PlanOptions o;
    o.max_stages = 1;
    return o;
  }());
  ASSERT_EQ(one.stages.size(), 1u);
  EXPECT_EQ(one.stages[0].rank, 3u);
  EXPECT_DOUBLE_EQ(one.period_s(), 0.020);
  // Every link into rank 3 is slow: it is then best left out... unless it runs the first stage
  // (fed by the dispatcher over a fast link).
  for (size_t a = 1; a <= 4; ++a)
    if (a != 3) c.links[a][3].bandwidth_Bps = 1e5;  // 1 s per cut
  const Plan p = plan_optimal(m, c);
  for (size_t k = 1; k < p.stages.size(); ++k) EXPECT_NE(p.stages[k].rank, 3u);
  EXPECT_LT(p.period_s(), 0.1);
}

TEST(ExactPlanner, MissingMemoryIsReported) {
  ModelCosts m;
  m.blocks = {{1, 30 * kMiB, 2 * kMiB}, {1, 10 * kMiB, 1 * kMiB}};
  m.cut_bytes = {1, 1, 1};
  // The first block needs 32 MiB; the largest rank has 20.
  Cluster c = uniform_cluster(3, 1.0, 20 * kMiB, {0, 1e6});
  expect_error([&] { plan_optimal(m, c); },
               {"needs at least 32.0 MiB on some rank", "largest rank has 20.0 MiB",
                "12.0 MiB missing", "12.0 MiB more on every rank"});
  // Every block fits somewhere, but not all of them at once on 2 ranks of 33 MiB.
  m.blocks.push_back({1, 30 * kMiB, 2 * kMiB});
  m.cut_bytes.push_back(1);
  Cluster d = uniform_cluster(2, 1.0, 33 * kMiB, {0, 1e6});
  expect_error([&] { plan_optimal(m, d); },
               {"no split of the model into at most 2 stages", "2 stage ranks",
                "weights total 70.0 MiB", "fit with"});
  // ... which 3 ranks fix.
  EXPECT_TRUE(plan_optimal(m, uniform_cluster(3, 1.0, 33 * kMiB, {0, 1e6})).found());
}

TEST(Baselines, ProducePlansThatFit) {
  const ModelCosts m = resnet50_shaped();
  Cluster c = uniform_cluster(8, 1.0, 64 * kMiB, {5e-4, 12.5e6});
  c.ranks[2].speed = 3;
  c.ranks[5].memory_bytes = 8 * kMiB;
  const Plan opt = plan_optimal(m, c);
  for (const Plan& p :
       {plan_random(m, c), plan_greedy(m, c), plan_equal_blocks(m, c), plan_pipeedge(m, c)}) {
    SCOPED_TRACE(p.method);
    if (!p.found()) {
      EXPECT_FALSE(p.note.empty());
      continue;
    }
    EXPECT_TRUE(p.cost.fits);
    EXPECT_GE(p.period_s(), opt.period_s());
  }
  // Random is seeded: the same seed gives the same plan.
  PlanOptions o;
  o.seed = 42;
  const Plan r1 = plan_random(m, c, o), r2 = plan_random(m, c, o);
  ASSERT_EQ(r1.stages.size(), r2.stages.size());
  for (size_t k = 0; k < r1.stages.size(); ++k) EXPECT_EQ(r1.stages[k].rank, r2.stages[k].rank);
  // PipeEdge's view of uniform links is the truth: it then finds the optimum.
  const Cluster u = uniform_cluster(6, 1.0, 64 * kMiB, {5e-4, 12.5e6});
  EXPECT_DOUBLE_EQ(plan_pipeedge(m, u).period_s(), plan_optimal(m, u).period_s());
}

TEST(ExactPlanner, PlansManyRanksOfFewTypes) {
  // 64 ranks of 4 types on a ResNet50-shaped chain: must finish quickly (the timing itself is
  // reported by tools/bench_planner).
  const ModelCosts m = resnet50_shaped();
  Cluster c = uniform_cluster(64, 1.0, 48 * kMiB, {1e-3, 12.5e6});
  for (size_t r = 1; r <= 64; ++r) {
    const size_t ty = (r - 1) / 16;
    c.ranks[r].speed = 0.5 + ty;
    c.ranks[r].memory_bytes = (32 + 32 * ty) * kMiB;
  }
  for (size_t a = 1; a <= 64; ++a)
    for (size_t b = 1; b <= 64; ++b)
      if (a != b && (a - 1) / 16 == (b - 1) / 16) c.links[a][b] = {1e-4, 125e6};
  const auto start = std::chrono::steady_clock::now();
  const Plan p = plan_optimal(m, c);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(p.rank_types, 4u);
  EXPECT_TRUE(p.cost.fits);
  EXPECT_LT(seconds, 10.0);  // about 0.1 s on the development machine; generous for CI
}

}  // namespace
}  // namespace edgepipe
