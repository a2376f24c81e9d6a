// The exact planner (include/edgepipe/plan/exact_planner.h) and the types it plans over on
// hand-made instances, and the baselines against it.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "plan_test_support.h"

namespace edgepipe {
namespace {

// A hand-computed instance: blocks of 2, 4 and 6 ms on two identical ranks, cut 1 cheap to code
// (0.5 ms each way), cut 2 dear (5 ms each way), links free. One thread: cutting at 1 gives
// max(2 + 0.5, 0.5 + 10) = 10.5 ms, at 2 max(6 + 5, 5 + 6) = 11 ms, one stage 12 ms: cut 1.
// Codec thread: at 1 max(max(2, 0.5), max(10, 0.5)) = 10 ms, at 2 max(max(6, 5), max(6, 5)) = 6 ms:
// cut 2.
TEST(ExactPlanner, CodecThreadChangesPeriodAndCuts) {
  ModelCosts m;
  m.blocks = {{2, 1, 1}, {4, 1, 1}, {6, 1, 1}};
  m.cut_bytes = {1, 1, 1, 1};
  m.cut_encode_ms = {0, 0.5, 5, 0};
  m.cut_decode_ms = {0, 0.5, 5, 0};
  const Cluster c = uniform_cluster(2, 1.0, 100, {0, 1e12});
  const Plan serial = plan_optimal(m, c);
  ASSERT_EQ(serial.stages.size(), 2u);
  EXPECT_EQ(serial.stages[0].end, 1u);
  EXPECT_EQ(serial.stages[0].rank, 1u);
  EXPECT_EQ(serial.stages[1].rank, 2u);
  EXPECT_DOUBLE_EQ(serial.period_s(), 0.0105);
  EXPECT_DOUBLE_EQ(serial.cost.stages[0].compute_s, 0.0025);
  EXPECT_DOUBLE_EQ(serial.cost.stages[1].compute_s, 0.0105);
  EXPECT_EQ(plan_brute_force(m, c).period_s(), serial.period_s());

  m.codec_thread = true;
  const Plan overlap = plan_optimal(m, c);
  ASSERT_EQ(overlap.stages.size(), 2u);
  EXPECT_EQ(overlap.stages[0].end, 2u);
  EXPECT_DOUBLE_EQ(overlap.period_s(), 0.006);
  EXPECT_DOUBLE_EQ(overlap.cost.stages[0].compute_s, 0.006);
  EXPECT_DOUBLE_EQ(overlap.cost.stages[0].codec_s, 0.005);
  EXPECT_DOUBLE_EQ(overlap.cost.stages[1].compute_s, 0.006);
  EXPECT_DOUBLE_EQ(overlap.cost.stages[1].codec_s, 0.005);
  EXPECT_EQ(plan_brute_force(m, c).period_s(), overlap.period_s());
  // The one-thread plan under the codec thread: 10 ms, worse than the codec thread's own.
  EXPECT_DOUBLE_EQ(evaluate_plan(m, c, serial.stages).period_s, 0.010);
  // Baselines go through the same rule: equal-blocks (2 stages: [0, 1), [1, 3)) gives 10 ms.
  const Plan equal = plan_equal_blocks(m, c);
  ASSERT_TRUE(equal.found());
  EXPECT_DOUBLE_EQ(equal.period_s(), 0.010);
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
  // 64 ranks of 4 types on a ResNet50-shaped chain: grouped into 4 types, and a plan that fits.
  // How long it takes is measured by tools/bench_planner (timings are checked by benchmarks,
  // never by unit tests).
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
  const Plan p = plan_optimal(m, c);
  EXPECT_EQ(p.rank_types, 4u);
  EXPECT_TRUE(p.cost.fits);
}

}  // namespace
}  // namespace edgepipe
