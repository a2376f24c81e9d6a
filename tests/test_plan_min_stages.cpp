// PlanOptions::min_stages (`edgepipe run --stages N` sets min_stages = max_stages = N): honoured
// exactly, with the memory error when nothing fits that many stages.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "plan_test_support.h"

namespace edgepipe {
namespace {

// A hand-computed instance: blocks of 4, 2, 2 and 4 ms on three identical ranks, free links (no
// bytes), and on each cut between blocks an encode and a decode of 7, 6.5 and 8 ms (one thread):
//   1 stage:  12 ms (the unconstrained optimum);
//   2 stages: cut 1 max(4 + 7, 7 + 8) = 15, cut 2 max(6 + 6.5, 6.5 + 6) = 12.5, cut 3 16;
//   3 stages: cuts 1, 2: max(11, 7 + 2 + 6.5, 6.5 + 6) = 15.5; 1, 3: 19; 2, 3: 16.5.
TEST(MinStages, ForcesMoreStagesEvenWhenFewerAreFaster) {
  ModelCosts m;
  m.blocks = {{4, 1, 1}, {2, 1, 1}, {2, 1, 1}, {4, 1, 1}};
  m.cut_bytes = {0, 0, 0, 0, 0};
  m.cut_encode_ms = {0, 7, 6.5, 8, 0};
  m.cut_decode_ms = {0, 7, 6.5, 8, 0};
  const Cluster c = uniform_cluster(3, 1.0, 100, {0, 1e9});
  const Plan free = plan_optimal(m, c);
  ASSERT_EQ(free.stages.size(), 1u);
  EXPECT_DOUBLE_EQ(free.period_s(), 0.012);

  for (double tolerance : {0.0, -1.0}) {  // one type of three ranks; three types of one
    SCOPED_TRACE(tolerance);
    PlanOptions o;
    o.group_tolerance = tolerance;
    o.min_stages = o.max_stages = 3;  // what `--stages 3` asks
    const Plan three = plan_optimal(m, c, o);
    ASSERT_EQ(three.stages.size(), 3u);
    EXPECT_DOUBLE_EQ(three.period_s(), 0.0155);
    EXPECT_EQ(three.stages[0].end, 1u);
    EXPECT_EQ(three.stages[1].end, 2u);
    EXPECT_EQ(three.stages[2].end, 4u);
    if (tolerance == 0) {  // one type: its ranks in order (as types, any order ties)
      EXPECT_EQ(three.stages[0].rank, 1u);
      EXPECT_EQ(three.stages[1].rank, 2u);
      EXPECT_EQ(three.stages[2].rank, 3u);
    }
    EXPECT_DOUBLE_EQ(three.cost.stages[1].compute_s, 0.0155);
    EXPECT_EQ(three.period_s(), plan_brute_force(m, c, 1e8, 3).period_s());
    o.max_stages = 0;  // at least 3 of 3 ranks: the same
    EXPECT_EQ(plan_optimal(m, c, o).period_s(), three.period_s());

    // At least 2 (of up to 3): the best 2-stage plan, cut 2, beats every 3-stage one.
    o.min_stages = 2;
    const Plan two = plan_optimal(m, c, o);
    ASSERT_EQ(two.stages.size(), 2u);
    EXPECT_EQ(two.stages[0].end, 2u);
    EXPECT_DOUBLE_EQ(two.period_s(), 0.0125);
    EXPECT_EQ(two.period_s(), plan_brute_force(m, c, 1e8, 2).period_s());
    // 0 and 1 mean no minimum.
    for (size_t least : {0, 1}) {
      o.min_stages = least;
      EXPECT_EQ(plan_optimal(m, c, o).stages.size(), 1u) << least;
    }
  }
  // The baselines that keep to the minimum.
  PlanOptions o;
  o.min_stages = 3;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    o.seed = seed;
    const Plan r = plan_random(m, c, o);
    ASSERT_TRUE(r.found());
    EXPECT_EQ(r.stages.size(), 3u);
  }
  EXPECT_EQ(plan_equal_blocks(m, c, o).stages.size(), 3u);
  EXPECT_EQ(plan_pipeedge(m, c, o).stages.size(), 3u);
}

// Ranks 1 and 2 hold the whole model; rank 3 holds no block. With at least 3 stages nothing fits:
// the usual memory error, for the range asked, with what is missing.
TEST(MinStages, NothingFitsWithEnoughStages) {
  ModelCosts m;
  m.blocks = {{1, 10 * kMiB, 0}, {1, 10 * kMiB, 0}, {1, 10 * kMiB, 0}};
  m.cut_bytes = {1, 1, 1, 1};
  Cluster c = uniform_cluster(3, 1.0, 100 * kMiB, {0, 1e6});
  c.ranks[3].memory_bytes = 5 * kMiB;
  PlanOptions o;
  o.min_stages = 2;
  EXPECT_EQ(plan_optimal(m, c, o).stages.size(), 2u);
  o.min_stages = 3;
  EXPECT_FALSE(plan_brute_force(m, c, 1e8, 3).found());
  expect_error([&] { plan_optimal(m, c, o); },
               {"does not fit in memory", "no split of the model into exactly 3 stages",
                "(fewer than 3 would fit)", "5.0 MiB more on every rank"});
  // A fourth rank that fits one block makes 3 stages fit (ranks 1, 2, 4); 3 to 4 are asked.
  c = uniform_cluster(4, 1.0, 100 * kMiB, {0, 1e6});
  c.ranks[3].memory_bytes = 5 * kMiB;
  c.ranks[4].memory_bytes = 10 * kMiB;
  const Plan p = plan_optimal(m, c, o);
  ASSERT_EQ(p.stages.size(), 3u);
  for (const Stage& s : p.stages) EXPECT_NE(s.rank, 3u);
  // 4 stages need rank 3.
  o.min_stages = 4;
  m.blocks.push_back({1, 10 * kMiB, 0});
  m.cut_bytes.push_back(1);
  expect_error([&] { plan_optimal(m, c, o); },
               {"no split of the model into exactly 4 stages", "more on every rank"});
  o.max_stages = 0;
  o.min_stages = 2;
  c.ranks[4].memory_bytes = 5 * kMiB;
  c.ranks[2].memory_bytes = 5 * kMiB;  // only rank 1 holds a block: nothing fits 2 stages
  expect_error([&] { plan_optimal(m, c, o); },
               {"no split of the model into 2 to 4 stages", "4 stage ranks"});
}

TEST(MinStages, RejectsImpossibleCounts) {
  ModelCosts m;
  m.blocks = {{1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}};
  m.cut_bytes = {1, 1, 1, 1, 1};
  const Cluster c = uniform_cluster(3, 1.0, 100, {0, 1e6});
  PlanOptions o;
  o.min_stages = 3;
  o.max_stages = 2;
  expect_error([&] { plan_optimal(m, c, o); }, {"at least 3 stages", "at most 2"});
  o.max_stages = 0;
  o.min_stages = 4;
  expect_error([&] { plan_optimal(m, c, o); }, {"at least 4 stages", "only 3 stage ranks"});
  expect_error([&] { plan_random(m, c, o); }, {"at least 4 stages", "only 3 stage ranks"});
  expect_error([&] { plan_equal_blocks(m, c, o); }, {"at least 4 stages", "only 3 stage ranks"});
  o.max_stages = 5;  // 5 >= 4, but still only 3 ranks
  expect_error([&] { plan_optimal(m, c, o); }, {"at least 4 stages", "only 3 stage ranks"});
  o.min_stages = 5;
  o.max_stages = 0;
  expect_error(
      [&] {
        plan_optimal(m, uniform_cluster(6, 1.0, 100, {0, 1e6}), o);
      },
      {"at least 5 stages", "only 4 blocks"});
  // The greedy baseline ignores the minimum: it does not throw.
  EXPECT_TRUE(plan_greedy(m, c, o).found());
}

// The acceptance test of the minimum: on random instances (as EqualsBruteForceOnRandomInstances,
// smaller) with min_stages drawn in 1..ranks, the exact planner equals the brute force restricted
// to that many stages or more, returns at least that many, and throws the memory error exactly
// when the brute force finds nothing (and the count error when the model has too few blocks).
TEST(MinStages, EqualsBruteForceOnRandomInstances) {
  BruteForceTally t;
  compare_with_brute_force(20250611, 600, false, t, true, 3e5);
  if (HasFatalFailure()) return;
  BruteForceTally u;
  compare_with_brute_force(20250612, 300, true, u, true, 3e5);
  if (HasFatalFailure()) return;
  std::printf(
      "900 instances with a minimum (300 codec thread): %zu periods compared, %zu do not fit (%zu "
      "only with fewer stages than the minimum), %zu minimums above the blocks, %zu where the "
      "unconstrained optimum has fewer stages (%zu of them faster)\n",
      t.compared + u.compared, t.infeasible + u.infeasible,
      t.fit_only_below_min + u.fit_only_below_min, t.too_few_blocks + u.too_few_blocks,
      t.min_binding + u.min_binding, t.min_slower + u.min_slower);
  EXPECT_GE(t.compared + u.compared, 450u);
  EXPECT_GE(t.fit_only_below_min + u.fit_only_below_min, 10u);
  EXPECT_GT(t.too_few_blocks + u.too_few_blocks, 50u);
  EXPECT_GT(t.min_binding + u.min_binding, 120u);
  EXPECT_GT(t.min_slower + u.min_slower, 25u);
  EXPECT_GT(u.min_binding, 40u);
}

// The memory check with a minimum (every stage holds a block; a rank too small for some blocks
// leaves holes in what its stages can reach) against the brute force, on instances where the
// ranks' memories run from half the smallest block to beyond an even share: with min_stages and
// sometimes max_stages, it throws exactly when no plan of min..max stages fits, and otherwise the
// planner's period, stages and bytes are those of the exhaustive search (and of the brute force).
TEST(MinStages, MemoryCheckIsExact) {
  std::mt19937_64 rng(31);
  size_t fit = 0, fit_only_below = 0, none = 0;
  for (int it = 0; it < 1500; ++it) {
    const size_t R = 2 + rng() % 4, n = 2 + rng() % 6;
    Instance in = random_instance(rng, R, n, R, it % 4 == 0);
    double least = std::numeric_limits<double>::infinity(), most = 0, total = 0, act = 0;
    for (const BlockCost& b : in.model.blocks) {
      least = std::min(least, b.param_bytes + b.act_bytes);
      most = std::max(most, b.param_bytes + b.act_bytes);
      total += b.param_bytes;
      act = std::max(act, b.act_bytes);
    }
    PlanOptions o;
    o.min_stages = 2 + rng() % (std::min(R, n) - 1);
    if (rng() % 2) o.max_stages = o.min_stages + rng() % (R - o.min_stages + 1);
    // A third of the ranks from half the smallest block (fits nothing) to the largest (fits
    // some blocks only); the others from the largest block to that plus twice an even share.
    const double share = 2 * (total + act) / static_cast<double>(o.min_stages);
    std::uniform_real_distribution<double> small(std::log(least / 2), std::log(most)),
        large(std::log(most), std::log(most + share));
    for (size_t r = 1; r <= R; ++r)
      in.cluster.ranks[r].memory_bytes = std::round(std::exp(rng() % 3 ? large(rng) : small(rng)));
    SCOPED_TRACE("instance " + std::to_string(it) + ": " + std::to_string(R) + " ranks, " +
                 std::to_string(n) + " blocks, " + std::to_string(o.min_stages) + " to " +
                 std::to_string(o.max_stages) + " stages");
    // Every plan of min..max stages, by evaluate_plan; without a maximum, the brute force too.
    Lexicographic lex{in, {}, std::vector<char>(R + 1, 0)};
    lex.min_stages = o.min_stages;
    lex.max_stages = o.max_stages;
    lex.go(0);
    if (o.max_stages == 0) {
      ASSERT_EQ(plan_brute_force(in.model, in.cluster, 1e8, o.min_stages).period_s(), lex.period);
    }
    if (lex.stages == 0) {
      ++(plan_brute_force(in.model, in.cluster).found() ? fit_only_below : none);
      expect_error([&] { plan_optimal(in.model, in.cluster, o); },
                   {"does not fit in memory", "more on every rank"});
      continue;
    }
    ++fit;
    const Plan p = plan_optimal(in.model, in.cluster, o);
    ASSERT_EQ(p.period_s(), lex.period);
    ASSERT_EQ(p.stages.size(), lex.stages);
    ASSERT_EQ(p.cost.link_bytes, lex.bytes);
  }
  std::printf("memory check: %zu fit, %zu fit only with fewer stages, %zu fit not at all\n", fit,
              fit_only_below, none);
  EXPECT_GT(fit, 800u);
  EXPECT_GT(fit_only_below, 60u);
  EXPECT_GT(none, 150u);
}

}  // namespace
}  // namespace edgepipe
