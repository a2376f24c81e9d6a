// The exact planner with replicas against the brute force with replicas on random instances:
// the same period (never worse), the same tie-break, every option kept.
#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "plan_test_support.h"

namespace edgepipe {
namespace {

struct ReplicaTally {
  size_t compared = 0, infeasible = 0, replicated = 0, mixed_last = 0, beats_single = 0;
  size_t limited_replicas = 0, forced_replicas = 0, stage_limits = 0;
};

// Options drawn for instance `it`: replicas up to the planner (half), 2 or 3; a fifth with at
// least 2 replicas per stage; a sixth each with a maximum or a minimum of stages.
PlanOptions draw_options(std::mt19937_64& rng, int it, size_t R, size_t n) {
  PlanOptions o;
  const size_t most[] = {0, 0, 2, 3};
  o.max_replicas = most[rng() % 4];
  if (it % 5 == 1) o.min_replicas = 2;
  if (it % 6 == 2) o.max_stages = 1 + rng() % std::min(R, n);
  if (it % 6 == 4) o.min_stages = 1 + rng() % std::min(R, n);
  return o;
}

// The plan keeps to the options; tallies what it shows.
void check_options(const Plan& opt, const PlanOptions& o, ReplicaTally& t) {
  const size_t most = o.max_replicas == 0 ? SIZE_MAX : o.max_replicas;
  bool replicated = false;
  for (const Stage& s : opt.stages) {
    const size_t m = s.replicas().size();
    EXPECT_GE(m, std::max<size_t>(o.min_replicas, 1));
    EXPECT_LE(m, most);
    replicated = replicated || m > 1;
  }
  EXPECT_GE(opt.stages.size(), std::max<size_t>(o.min_stages, 1));
  if (o.max_stages > 0) {
    EXPECT_LE(opt.stages.size(), o.max_stages);
  }
  t.replicated += replicated;
  t.limited_replicas += o.max_replicas > 1;
  t.forced_replicas += o.min_replicas > 1;
  t.stage_limits += o.min_stages > 1 || o.max_stages > 0;
}

void compare_one(const Instance& in, const PlanOptions& o, ReplicaTally& t) {
  const Plan bf = plan_brute_force_replicated(in.model, in.cluster, o, 2e6);
  if (!bf.found()) {
    ++t.infeasible;
    EXPECT_THROW(plan_optimal(in.model, in.cluster, o), Error);
    return;
  }
  const Plan opt = plan_optimal(in.model, in.cluster, o);
  ASSERT_TRUE(opt.found());
  ASSERT_TRUE(opt.cost.fits);
  ++t.compared;
  // Never worse than any plan of the space, and one of them.
  ASSERT_TRUE(same_period(opt.period_s(), bf.period_s()))
      << "optimal " << opt.period_s() << " s, brute force " << bf.period_s() << " s\n"
      << format_plan(opt, in.model, in.cluster) << format_plan(bf, in.model, in.cluster);
  // Ties: fewer stages, then fewer ranks, then fewer bytes between stages.
  EXPECT_EQ(opt.stages.size(), bf.stages.size());
  EXPECT_EQ(opt.ranks_used(), bf.ranks_used());
  EXPECT_EQ(opt.cost.link_bytes, bf.cost.link_bytes);
  check_options(opt, o, t);
  const RankTypes types = group_ranks(in.model, in.cluster);
  for (size_t s = 0; s + 1 < opt.stages.size(); ++s)
    for (size_t r : opt.stages[s].replicas())
      EXPECT_EQ(types.type_of_rank[r], types.type_of_rank[opt.stages[s].rank]) << "stage " << s;
  const std::vector<size_t> last = opt.stages.back().replicas();
  for (size_t r : last)
    if (types.type_of_rank[r] != types.type_of_rank[last[0]]) {
      ++t.mixed_last;
      break;
    }
  if (o.min_replicas > 1) return;
  // Replicas can only help: the best plan without them is in the space.
  const Plan single = plan_single_pipeline(in.model, in.cluster, o);
  EXPECT_LE(opt.period_s(), single.period_s() * (1 + 1e-12));
  t.beats_single += opt.period_s() < single.period_s() * (1 - 1e-9);
}

// Up to 6 ranks in up to 3 classes (so that types have several members), up to 8 blocks; in two
// thirds, 4x the memory (so that ranks hold more of the model, whole replicas among them).
void compare_replicated(uint64_t seed, int instances, bool codec_thread, ReplicaTally& t) {
  std::mt19937_64 rng(seed);
  for (int it = 0; it < instances; ++it) {
    const size_t R = 1 + rng() % 6, n = 1 + rng() % (R <= 4 ? 8 : 6);
    const size_t classes = 1 + rng() % std::min<size_t>(R, 3);
    const bool ties = it % 4 == 0;
    Instance in = random_instance(rng, R, n, classes, ties, it % 7 == 3);
    if (it % 3 != 0)
      for (RankInfo& r : in.cluster.ranks) r.memory_bytes *= 4;
    if (codec_thread) use_codec_thread(rng, in.model, ties);
    const PlanOptions o = draw_options(rng, it, R, n);
    SCOPED_TRACE("instance " + std::to_string(it) + ": " + std::to_string(R) + " ranks, " +
                 std::to_string(n) + " blocks, " + std::to_string(classes) + " classes" +
                 (ties ? ", ties" : "") + ", replicas " + std::to_string(o.min_replicas) + ".." +
                 std::to_string(o.max_replicas) + ", stages " + std::to_string(o.min_stages) +
                 ".." + std::to_string(o.max_stages));
    compare_one(in, o, t);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

void print_tally(const char* what, int instances, const ReplicaTally& t) {
  std::printf(
      "%d instances%s: %zu compared, %zu fit nowhere; %zu optimal plans with replicas (%zu with a "
      "mixed last stage), %zu faster than the best single pipeline; %zu with a maximum of "
      "replicas, %zu with a minimum, %zu with stage limits\n",
      instances, what, t.compared, t.infeasible, t.replicated, t.mixed_last, t.beats_single,
      t.limited_replicas, t.forced_replicas, t.stage_limits);
}

// The acceptance test of issue 16: on 2000 random instances (1..6 ranks in 1..3 classes, 1..8
// blocks; random speeds or block times, memories, links, codec times; ties in a quarter; options
// drawn by draw_options), the exact planner with replicas is never worse than the best plan the
// brute force enumerates, equal to it to 1e-12, with the same stages, ranks and bytes.
TEST(ReplicaPlanner, EqualsBruteForceOnRandomInstances) {
  ReplicaTally t;
  const int kInstances = 2000;
  compare_replicated(20261201, kInstances, false, t);
  if (HasFatalFailure()) return;
  print_tally("", kInstances, t);
  EXPECT_GE(t.compared, 1400u);
  EXPECT_GT(t.infeasible, 300u);
  EXPECT_GT(t.replicated, 700u);
  EXPECT_GT(t.mixed_last, 200u);
  EXPECT_GT(t.beats_single, 500u);
  EXPECT_GT(t.limited_replicas, 650u);
  EXPECT_GT(t.forced_replicas, 180u);
  EXPECT_GT(t.stage_limits, 380u);
}

// The same with ModelCosts::codec_thread and codec times on every cut.
TEST(ReplicaPlanner, EqualsBruteForceOnRandomInstancesWithCodecThread) {
  ReplicaTally t;
  const int kInstances = 600;
  compare_replicated(20261202, kInstances, true, t);
  if (HasFatalFailure()) return;
  print_tally(" (codec thread)", kInstances, t);
  EXPECT_GE(t.compared, 400u);
  EXPECT_GT(t.replicated, 190u);
  EXPECT_GT(t.mixed_last, 50u);
  EXPECT_GT(t.beats_single, 130u);
}

}  // namespace
}  // namespace edgepipe
