// The cost model (include/edgepipe/plan/cost_model.h) on hand-computed examples.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "plan_test_support.h"

namespace edgepipe {
namespace {

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

// ModelCosts::codec_thread: a stage's compute term is max(its blocks, decode + encode) instead of
// their sum; codec_s is decode + encode in both modes; the dispatcher's codec work is the same.
TEST(CostModel, CodecThreadTakesMaxOfBlocksAndCodec) {
  ModelCosts m;
  m.blocks = {{10, 1, 1}, {6, 1, 1}, {10, 1, 1}};
  m.cut_bytes = {1, 1, 1, 1};
  const Cluster c = uniform_cluster(3, 1.0, 100, {0, 1e12});  // links: 1e-12 s per cut
  const std::vector<Stage> plan = {{1, 0, 1}, {2, 1, 2}, {3, 2, 3}};
  // No codec times: both modes are the blocks alone.
  for (bool thread : {false, true}) {
    m.codec_thread = thread;
    const PlanCost pc = evaluate_plan(m, c, plan);
    EXPECT_DOUBLE_EQ(pc.stages[1].compute_s, 0.006) << thread;
    EXPECT_EQ(pc.stages[1].codec_s, 0.0) << thread;
    EXPECT_DOUBLE_EQ(pc.period_s, 0.010) << thread;
  }
  m.cut_encode_ms = {1, 2, 4, 0};
  m.cut_decode_ms = {0, 3, 2, 1};
  const double codec[3] = {0.002, 0.007, 0.002};  // decode of the input + encode of the output
  // One thread: decode + blocks + encode.
  m.codec_thread = false;
  const PlanCost serial = evaluate_plan(m, c, plan);
  EXPECT_DOUBLE_EQ(serial.stages[0].compute_s, 0.012);
  EXPECT_DOUBLE_EQ(serial.stages[1].compute_s, 0.013);
  EXPECT_DOUBLE_EQ(serial.stages[2].compute_s, 0.012);
  EXPECT_DOUBLE_EQ(serial.dispatcher_s, 0.002);
  EXPECT_DOUBLE_EQ(serial.period_s, 0.013);
  // Codec thread: the middle stage decodes (3 ms) and encodes (4 ms) on one thread, each less
  // than its blocks (6 ms) but 7 ms together: the codec bounds it. The others are their blocks.
  m.codec_thread = true;
  const PlanCost overlap = evaluate_plan(m, c, plan);
  EXPECT_DOUBLE_EQ(overlap.stages[0].compute_s, 0.010);
  EXPECT_DOUBLE_EQ(overlap.stages[1].compute_s, 0.007);
  EXPECT_DOUBLE_EQ(overlap.stages[2].compute_s, 0.010);
  EXPECT_DOUBLE_EQ(overlap.dispatcher_s, 0.002);
  EXPECT_DOUBLE_EQ(overlap.period_s, 0.010);
  for (size_t k = 0; k < 3; ++k) {
    const double dec_enc =
        m.cut_decode_ms[plan[k].first] / 1000 + m.cut_encode_ms[plan[k].end] / 1000;
    EXPECT_DOUBLE_EQ(dec_enc, codec[k]);
    EXPECT_DOUBLE_EQ(serial.stages[k].codec_s, dec_enc) << "stage " << k;
    EXPECT_DOUBLE_EQ(overlap.stages[k].codec_s, dec_enc) << "stage " << k;
  }
  // The table says which rule its compute column follows.
  Plan p;
  p.method = "test";
  p.stages = plan;
  p.cost = overlap;
  EXPECT_NE(format_plan(p, m, c).find("codec beside compute"), std::string::npos);
  m.codec_thread = false;
  p.cost = serial;
  EXPECT_EQ(format_plan(p, m, c).find("codec beside compute"), std::string::npos);
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

}  // namespace
}  // namespace edgepipe
