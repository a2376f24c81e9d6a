// Plans with replicas (docs/planner.md, "Replicas"): the cost model on hand-computed examples, the
// exact planner on the three cases, its options, and the text `edgepipe plan` prints.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "edgepipe/base/text.h"
#include "plan_test_support.h"

namespace edgepipe {

namespace {

PlanOptions replicas(size_t most, size_t least = 0) {
  PlanOptions o;
  o.max_replicas = most;
  o.min_replicas = least;
  return o;
}

// A chain of `n` blocks of `ms` each at speed 1, with next to nothing crossing the cuts.
ModelCosts even_chain(size_t n, double ms) {
  ModelCosts m;
  for (size_t b = 0; b < n; ++b) m.blocks.push_back({ms, 1, 1});
  m.cut_bytes.assign(n + 1, 1);
  return m;
}

// Links that cost nothing (1 byte per cut at 1 TB/s).
Cluster free_links(size_t ranks) { return uniform_cluster(ranks, 1.0, 100, {0, 1e12}); }

// Blocks of 10 and 30 ms; rank 1 runs the first, ranks 2 (speed 1) and 3 (speed 3) the second as
// replicas. Links: 1 ms + bytes / 1 MB/s.
//   stage 0 on 1: compute 10, recv 1 + 1 = 2, send: two replicas next, so its interface:
//                 2000 B / 1 MB/s = 2; period 10.
//   stage 1 on 2: compute 30, recv 1 + 2 = 3, send 1 + 0.1 = 1.1: 30; on 3: compute 10: 10;
//                 the stage: 1 / (1/30 + 1/10) = 7.5.
//   rank 0: sends 1 + 1 = 2 (one rank first), receives max(1.1, 1.1).
TEST(ReplicaCosts, MatchHandComputedPeriods) {
  ModelCosts m;
  m.blocks = {{10, 1, 1}, {30, 1, 1}};
  m.cut_bytes = {1000, 2000, 100};
  Cluster c = uniform_cluster(3, 1.0, 100, {0.001, 1e6});
  c.ranks[3].speed = 3;
  const PlanCost pc = evaluate_plan(m, c, {{1, 0, 1}, {2, 1, 2, {2, 3}}});
  ASSERT_EQ(pc.stages.size(), 2u);
  ASSERT_EQ(pc.stages[0].replicas.size(), 1u);
  ASSERT_EQ(pc.stages[1].replicas.size(), 2u);
  EXPECT_DOUBLE_EQ(pc.stages[0].recv_s, 0.002);
  EXPECT_DOUBLE_EQ(pc.stages[0].send_s, 0.002);
  EXPECT_DOUBLE_EQ(pc.stages[0].period_s(), 0.010);
  const ReplicaCost &r2 = pc.stages[1].replicas[0], &r3 = pc.stages[1].replicas[1];
  EXPECT_EQ(r2.rank, 2u);
  EXPECT_EQ(r3.rank, 3u);
  EXPECT_DOUBLE_EQ(r2.compute_s, 0.030);
  EXPECT_DOUBLE_EQ(r3.compute_s, 0.010);
  EXPECT_DOUBLE_EQ(r2.recv_s, 0.003);
  EXPECT_DOUBLE_EQ(r3.recv_s, 0.003);
  EXPECT_DOUBLE_EQ(r2.send_s, 0.0011);
  EXPECT_DOUBLE_EQ(r3.period_s(), 0.010);
  EXPECT_DOUBLE_EQ(pc.stages[1].compute_s, 0.030);  // the stage's figures are its first replica's
  EXPECT_DOUBLE_EQ(pc.stages[1].period_s(), 0.0075);
  EXPECT_DOUBLE_EQ(pc.dispatcher_send_s, 0.002);
  EXPECT_DOUBLE_EQ(pc.dispatcher_recv_s, 0.0011);
  EXPECT_DOUBLE_EQ(pc.period_s, 0.010);
  EXPECT_DOUBLE_EQ(pc.link_bytes, 2000);
  EXPECT_TRUE(pc.fits);
  // Rank 1 twice as fast: stage 0 at 5 ms, and the replicated stage bounds the plan.
  c.ranks[1].speed = 2;
  EXPECT_DOUBLE_EQ(evaluate_plan(m, c, {{1, 0, 1}, {2, 1, 2, {2, 3}}}).period_s, 0.0075);
  // One replica too small: the plan does not fit.
  c.ranks[3].memory_bytes = 1;
  EXPECT_FALSE(evaluate_plan(m, c, {{1, 0, 1}, {2, 1, 2, {2, 3}}}).fits);
}

// Eight replicas of the whole model at 8 ms each take a batch per ms, but rank 0 sends every
// input: 20 kB through its interface (its fastest link, 10 MB/s) is 2 ms per batch. It receives
// one output at a time: with one slow link back from a replica, that bounds the job.
TEST(ReplicaCosts, RankZeroBoundsTheJob) {
  ModelCosts m = even_chain(1, 8);
  m.cut_bytes = {20000, 10};
  Cluster c = uniform_cluster(8, 1.0, 100, {0, 1e7});
  const std::vector<size_t> all = {1, 2, 3, 4, 5, 6, 7, 8};
  const PlanCost pc = evaluate_plan(m, c, {{1, 0, 1, all}});
  EXPECT_DOUBLE_EQ(pc.stages[0].period_s(), 0.001);
  EXPECT_DOUBLE_EQ(pc.stages[0].replicas[0].recv_s, 0.002);  // each replica's own link
  EXPECT_DOUBLE_EQ(pc.dispatcher_send_s, 0.002);
  EXPECT_DOUBLE_EQ(pc.dispatcher_recv_s, 10 / 1e7);
  EXPECT_DOUBLE_EQ(pc.period_s, 0.002);
  c.links[5][0] = {0.003, 1e7};
  const PlanCost slow = evaluate_plan(m, c, {{1, 0, 1, all}});
  EXPECT_DOUBLE_EQ(slow.dispatcher_recv_s, 0.003 + 10 / 1e7);
  EXPECT_DOUBLE_EQ(slow.period_s, 0.003 + 10 / 1e7);
  // Without replicas rank 0's terms are the first stage's receive and the last one's send.
  const PlanCost one = evaluate_plan(m, c, {{1, 0, 1}});
  EXPECT_DOUBLE_EQ(one.dispatcher_send_s, one.stages[0].recv_s);
  EXPECT_DOUBLE_EQ(one.dispatcher_recv_s, one.stages[0].send_s);
  EXPECT_DOUBLE_EQ(one.period_s, 0.008);
}

TEST(ReplicaCosts, RejectsMalformedReplicas) {
  const ModelCosts m = even_chain(2, 1);
  const Cluster c = free_links(3);
  expect_error(
      [&] {
        evaluate_plan(m, c, {{1, 0, 2, {2, 3}}});
      },
      {"stage on rank 1 lists replicas that start with rank 2"});
  expect_error(
      [&] {
        evaluate_plan(m, c, {{1, 0, 1, {1, 2}}, {2, 1, 2}});
      },
      {"rank 2 runs two stages"});
  expect_error([&] { evaluate_plan(m, c, {{1, 0, 2, {1, 4}}}); }, {"rank 4", "not a stage rank"});
}

// The cases. ViT-B/16 has 12 encoder blocks: on 16 nodes a pipeline leaves 4 idle and
// runs at one block per period; 16 replicas of the whole model take a batch per 12/16 block.
TEST(ReplicaPlanner, UsesMoreNodesThanBlocks) {
  const ModelCosts m = even_chain(12, 10);
  const Cluster c = free_links(16);
  const Plan single = plan_optimal(m, c);
  EXPECT_NEAR(single.period_s(), 0.010, 1e-12);
  EXPECT_EQ(single.ranks_used(), 12u);
  const Plan rep = plan_optimal(m, c, replicas(0));
  EXPECT_NEAR(rep.period_s(), 0.120 / 16,
              1e-12);  // the total work over 16 ranks: the best there is
  EXPECT_EQ(rep.ranks_used(), 16u);
  EXPECT_GE(single.period_s() / rep.period_s(), 1.3);
}

// A model whose heaviest block is 6 of its 10 ms cannot go below 6 ms as one pipeline; with
// replicas, four ranks take a batch per 2.5 ms (each the whole model, or the heavy block's stage
// replicated: the planner takes the fewest stages).
TEST(ReplicaPlanner, ReplicatesTheHeaviestBlock) {
  ModelCosts m = even_chain(3, 2);
  m.blocks[1].ref_ms = 6;
  const Cluster c = free_links(4);
  EXPECT_NEAR(plan_optimal(m, c).period_s(), 0.006, 1e-12);
  const Plan rep = plan_optimal(m, c, replicas(0));
  EXPECT_NEAR(rep.period_s(), 0.0025, 1e-12);
  EXPECT_EQ(rep.stages.size(), 1u);
  // With at most 2 replicas per stage: [0, 2) on 2 ranks (4 ms) or the heavy block on 2 (3 ms)
  // beside two single stages of 2 ms: 3 ms.
  const Plan two = plan_optimal(m, c, replicas(2));
  EXPECT_NEAR(two.period_s(), 0.003, 1e-12);
  for (const Stage& s : two.stages) EXPECT_LE(s.replicas().size(), 2u);
}

// One fast node (speed 4) and three slow ones: the fast node runs a whole replica beside three
// more on the slow ones (1 + 3/4 batches per ms), faster than any pipeline (1 ms).
TEST(ReplicaPlanner, FastNodeRunsAWholeReplica) {
  const ModelCosts m = even_chain(4, 1);
  Cluster c = free_links(4);
  c.ranks[1].speed = 4;
  EXPECT_NEAR(plan_optimal(m, c).period_s(), 0.001, 1e-12);
  const Plan rep = plan_optimal(m, c, replicas(0));
  EXPECT_NEAR(rep.period_s(), 0.001 / 1.75, 1e-12);
  ASSERT_EQ(rep.stages.size(), 1u);
  EXPECT_EQ(rep.stages[0].ranks, (std::vector<size_t>{1, 2, 3, 4}));
  const Plan dp = plan_data_parallel(m, c);
  EXPECT_EQ(dp.method, "data-parallel");
  EXPECT_DOUBLE_EQ(dp.period_s(), rep.period_s());
}

// max_replicas = 1 (the default) is the planner without replicas: the same plan, no Stage::ranks.
TEST(ReplicaPlanner, DefaultPlansNoReplicas) {
  const ModelCosts m = resnet50_shaped();
  const Cluster c = uniform_cluster(6, 1.0, 64 * kMiB, {5e-4, 12.5e6});
  EXPECT_EQ(PlanOptions{}.max_replicas, 1u);
  const Plan p = plan_optimal(m, c);
  for (const Stage& s : p.stages) EXPECT_TRUE(s.ranks.empty());
  EXPECT_EQ(p.ranks_used(), p.stages.size());
  const Plan rep = plan_optimal(m, c, replicas(0));
  EXPECT_LE(rep.period_s(), p.period_s());
}

// min_replicas = max_replicas = 2: two pipelines side by side, every stage on two ranks.
TEST(ReplicaPlanner, ForcedReplicas) {
  const ModelCosts m = even_chain(4, 4);
  const Cluster c = free_links(6);
  const Plan p = plan_optimal(m, c, replicas(2, 2));
  ASSERT_TRUE(p.found());
  for (const Stage& s : p.stages) EXPECT_EQ(s.replicas().size(), 2u);
  // The best: 2 stages of 2 blocks (8 ms) on 2 replicas each, 4 ms (3 stages are no faster).
  EXPECT_NEAR(p.period_s(), 0.004, 1e-12);
  expect_error([&] { plan_optimal(m, c, replicas(2, 3)); }, {"at least 3 replicas", "at most 2"});
  PlanOptions o = replicas(0, 4);
  o.min_stages = 2;
  expect_error([&] { plan_optimal(m, c, o); }, {"need 8 stage ranks", "has 6"});
  // More replicas of each stage than fit beside the others: 4 ranks hold the model only whole.
  ModelCosts big = even_chain(2, 1);
  big.blocks[0].param_bytes = 60;
  Cluster small = free_links(3);
  small.ranks[3].memory_bytes = 10;
  expect_error([&] { plan_optimal(big, small, replicas(0, 3)); },
               {"no plan with at least 3 replicas per stage fits"});
}

// The goal on the shipped mixed cluster: a plan with replicas predicted at least 1.3x
// faster than the best single pipeline, for the synthetic ResNet50-shaped chain.
TEST(ReplicaPlanner, MixedClusterGoal) {
  const std::string path = source_path("configs/cluster-mixed.ini");
  if (!std::ifstream(path)) GTEST_SKIP() << path << " not found (set EDGEPIPE_SOURCE_DIR)";
  const ModelCosts m = resnet50_shaped();
  const Cluster c = load_cluster(path);
  const Plan single = plan_single_pipeline(m, c);
  const Plan rep = plan_optimal(m, c, replicas(0));
  EXPECT_EQ(single.method, "single-pipeline");
  EXPECT_GE(single.period_s() / rep.period_s(), 1.3)
      << format_plan(rep, m, c) << format_plan(single, m, c);
  EXPECT_LE(rep.period_s(), plan_data_parallel(m, c).period_s());
}

TEST(ReplicaFormat, TablesAndComparison) {
  const ModelCosts m = even_chain(4, 1);
  Cluster c = free_links(4);
  c.ranks[1].speed = 4;
  c.ranks[1].name = "fast";
  const Plan rep = plan_optimal(m, c, replicas(0));
  const std::string table = format_plan(rep, m, c);
  EXPECT_NE(table.find("stage_ms"), std::string::npos) << table;
  EXPECT_NE(table.find("1 (fast)"), std::string::npos) << table;
  EXPECT_NE(table.find("2-4 x3"), std::string::npos) << table;
  EXPECT_NE(table.find("on 4 ranks (with replicas)"), std::string::npos) << table;
  EXPECT_NE(table.find("rank 0 per batch"), std::string::npos) << table;
  // Without replicas, the table is the one of before (`edgepipe plan`'s tests read it).
  const std::string plain = format_plan(plan_optimal(m, c), m, c);
  EXPECT_EQ(plain.find("stage_ms"), std::string::npos);
  EXPECT_NE(plain.find("period_ms"), std::string::npos);

  const std::string text = format_replica_comparison(m, c, PlanOptions{});
  EXPECT_NE(text.find("plan with replicas (as many per stage as pay)"), std::string::npos) << text;
  EXPECT_NE(text.find("best single pipeline"), std::string::npos) << text;
  EXPECT_NE(text.find("data parallelism (the whole model on each of 4 ranks)"), std::string::npos)
      << text;
  EXPECT_NE(text.find(strprintf("%.3f ms for the single pipeline: 1.75x faster", 1.0)),
            std::string::npos)
      << text;
  EXPECT_NE(format_replica_comparison(m, c, replicas(2)).find("at most 2 per stage"),
            std::string::npos);
  // Nothing to gain: one rank.
  EXPECT_NE(format_replica_comparison(m, free_links(1), {}).find("1.00x (no faster)"),
            std::string::npos);
}

TEST(ReplicaBaselines, DataParallelAndPipeEdge) {
  ModelCosts m = even_chain(2, 1);
  Cluster c = free_links(3);
  c.ranks[2].memory_bytes = 2;  // holds one block, not the model
  const Plan dp = plan_data_parallel(m, c);
  ASSERT_TRUE(dp.found());
  EXPECT_EQ(dp.stages[0].ranks, (std::vector<size_t>{1, 3}));
  for (size_t r = 1; r <= 3; ++r) c.ranks[r].memory_bytes = 2;
  const Plan none = plan_data_parallel(m, c);
  EXPECT_FALSE(none.found());
  EXPECT_NE(none.note.find("no stage rank holds the whole model"), std::string::npos);
  // PipeEdge has no replicas, whatever the options say.
  for (const Stage& s : plan_pipeedge(m, free_links(3), replicas(0)).stages)
    EXPECT_TRUE(s.ranks.empty());
}

}  // namespace
}  // namespace edgepipe
