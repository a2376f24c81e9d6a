// The exact planner against the brute force and exhaustive searches on random instances: equal
// periods, the same tie-break, typed planning equal to untyped planning.
#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <string>

#include "plan_test_support.h"

namespace edgepipe {
namespace {

// The acceptance test of issue 4: on 1500 random instances (1..8 ranks, 1..30 blocks; each size
// bounded so that the brute force enumerates at most 2e6 plans: 30 blocks up to 4 ranks, 8 blocks
// at 8 ranks; random speeds or measured block times, memories, bandwidths, latencies, codec times;
// identical ranks in some, nearly identical in others; many ties in some; some that do not fit at
// all), the exact planner's period equals the brute force's every time, and no baseline beats it.
TEST(ExactPlanner, EqualsBruteForceOnRandomInstances) {
  BruteForceTally t;
  const int kInstances = 1500;
  compare_with_brute_force(20240604, kInstances, false, t);
  if (HasFatalFailure()) return;
  std::printf(
      "%d instances: %zu periods compared, %zu do not fit, %zu planned over fewer types "
      "than ranks, at most %zu blocks (%zu at 8 ranks)\n",
      kInstances, t.compared, t.infeasible, t.grouped, t.largest_n, t.largest_n_at_8);
  // The instances cover what they claim to.
  EXPECT_GE(t.compared, 1000u);
  EXPECT_GT(t.infeasible, 20u);
  EXPECT_GT(t.grouped, 100u);
  EXPECT_EQ(t.largest_n, 30u);
  EXPECT_GE(t.largest_n_at_8, 8u);
}

// The same comparison with ModelCosts::codec_thread and codec times on every cut: the DP's prunes
// (which may use only the block-time part of max(blocks, decode + encode)) stay exact, every
// optimal stage's compute is max(blocks, decode + encode) recomputed from the tables, and the
// codec thread's optimum is never worse than the one-thread optimum.
TEST(ExactPlanner, EqualsBruteForceOnRandomInstancesWithCodecThread) {
  BruteForceTally t;
  const int kInstances = 400;
  compare_with_brute_force(20250301, kInstances, true, t);
  if (HasFatalFailure()) return;
  std::printf(
      "%d instances (codec thread): %zu periods compared, %zu do not fit, %zu planned over fewer "
      "types than ranks, at most %zu blocks (%zu at 8 ranks); %zu optimal plans have a stage "
      "bound by its codec work, %zu beat the one-thread optimum, %zu cut elsewhere\n",
      kInstances, t.compared, t.infeasible, t.grouped, t.largest_n, t.largest_n_at_8, t.codec_bound,
      t.faster_than_serial, t.other_cuts);
  EXPECT_GE(t.compared, 250u);
  EXPECT_GT(t.infeasible, 5u);
  EXPECT_GT(t.grouped, 25u);
  EXPECT_EQ(t.largest_n, 30u);
  EXPECT_GE(t.largest_n_at_8, 8u);
  EXPECT_GT(t.codec_bound, 25u);
  EXPECT_GT(t.faster_than_serial, 100u);
  EXPECT_GT(t.other_cuts, 25u);
}

TEST(ExactPlanner, TieBreakMatchesExhaustiveSearch) { check_tie_break(5, false); }

TEST(ExactPlanner, TieBreakMatchesExhaustiveSearchWithCodecThread) { check_tie_break(6, true); }

// Among plans of at least min_stages stages: the same period, fewest stages, fewest bytes.
TEST(MinStages, TieBreakMatchesExhaustiveSearch) {
  check_tie_break(8, false, true);
  check_tie_break(9, true, true);
}

// Grouping identical ranks into types changes the state space, not the answer: on instances too

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

}  // namespace
}  // namespace edgepipe
