// Live sets, cut candidates and stages on small models defined in TorchScript source.
#include <gtest/gtest.h>
#include <torch/script.h>

#include "edgepipe/base/error.h"
#include "edgepipe/model/graph.h"
#include "edgepipe/model/stage.h"

using namespace edgepipe;

namespace {

torch::jit::Module define(const std::string& src, bool with_weight = true) {
  torch::jit::Module m("m");
  if (with_weight) m.register_parameter("w", torch::randn({4, 4}), false);
  m.define(src);
  return m;
}

// A skip connection (x is used again at the end), a branch whose block uses an outer value, and
// a weight that freezing turns into a constant.
const char* kSkipBranch = R"(
def forward(self, x):
    a = torch.relu(torch.matmul(x, self.w))
    b = a * 2.0
    if bool(b.sum() > 0.0):
        c = b + a
    else:
        c = b - a
    d = torch.sigmoid(c)
    return d + x
)";

// Several outputs in a tuple.
const char* kTupleOut = R"(
def forward(self, x):
    a = torch.matmul(x, self.w)
    b = torch.tanh(a)
    c = b * a
    return (c, b)
)";

std::vector<at::Tensor> run_whole(ModelGraph& mg, const at::Tensor& x) {
  std::vector<at::Tensor> out;
  flatten_tensors(mg.module.forward({x}), out);
  return out;
}

// Runs the model as consecutive stages cut at the given node positions, each saved to bytes and
// loaded back, and returns the last stage's outputs.
std::vector<at::Tensor> run_stages(const ModelGraph& mg, std::vector<size_t> bounds,
                                   const at::Tensor& x, bool optimize = false) {
  std::vector<at::Tensor> cur{x};
  for (size_t s = 0; s + 1 < bounds.size(); ++s) {
    auto m = load_module_bytes(save_module_bytes(build_stage_module(mg, bounds[s], bounds[s + 1])));
    if (optimize) m = torch::jit::optimize_for_inference(m);
    StageRunner stage(m);
    cur = stage.run(cur);
  }
  return cur;
}

size_t position_of(const ModelGraph& mg, const std::string& kind) {
  for (size_t i = 0; i < mg.nodes.size(); ++i)
    if (std::string(mg.nodes[i]->kind().toQualString()) == kind) return i;
  ADD_FAILURE() << "no node " << kind;
  return 0;
}

}  // namespace

TEST(Graph, LiveSetsOfSkipAndBranch) {
  ModelGraph mg = make_model_graph(define(kSkipBranch));
  const size_t n = mg.nodes.size();
  ASSERT_GE(n, 6u);
  // The input x is live at every cut up to the final add.
  size_t add = n - 1;
  EXPECT_EQ(std::string(mg.nodes[add]->kind().toQualString()), "aten::add");
  for (size_t i = 0; i <= add; ++i) {
    bool has_x = false;
    for (auto* v : mg.live[i]) has_x |= v == mg.graph->inputs()[1];
    EXPECT_TRUE(has_x) << "x not live at cut " << i;
  }
  // The if node's blocks use a (the relu output) and b, which are computed before the condition:
  // the cut before b.sum() carries x, a and b, all tensors, so it is a candidate.
  size_t sum_pos = position_of(mg, "aten::sum");
  EXPECT_EQ(mg.live[sum_pos].size(), 3u);
  EXPECT_NE(std::find(mg.cuts.begin(), mg.cuts.end(), sum_pos), mg.cuts.end());
  // Just before the If, its bool condition is live too: not a candidate.
  size_t if_pos = position_of(mg, "prim::If");
  EXPECT_EQ(mg.live[if_pos].size(), 4u);
  EXPECT_EQ(std::find(mg.cuts.begin(), mg.cuts.end(), if_pos), mg.cuts.end());
  for (size_t c : mg.cuts) {
    for (auto* v : mg.live[c]) EXPECT_TRUE(v->type()->cast<c10::TensorType>());
  }
  EXPECT_EQ(mg.live[n].size(), 1u);
}

TEST(Graph, StagesAtEveryCandidateMatchTheWholeModel) {
  ModelGraph mg = make_model_graph(define(kSkipBranch));
  at::Tensor x = torch::randn({3, 4});
  auto ref = run_whole(mg, x);
  const size_t n = mg.nodes.size();
  bool saw_multi = false;
  for (size_t c : mg.cuts) {
    if (c == 0 || c == n) continue;
    saw_multi |= mg.live[c].size() > 1;
    auto out = run_stages(mg, {0, c, n}, x);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(torch::allclose(out[0], ref[0])) << "cut at " << c;
  }
  EXPECT_TRUE(saw_multi) << "expected a cut with several live tensors";
  // All candidates at once: one stage per block.
  std::vector<size_t> all(mg.cuts.begin(), mg.cuts.end());
  auto out = run_stages(mg, all, x, /*optimize=*/true);
  EXPECT_LT((out[0] - ref[0]).norm().item<double>(), 1e-5 * ref[0].norm().item<double>());
}

TEST(Graph, BranchTakesBothWays) {
  ModelGraph mg = make_model_graph(define(kSkipBranch));
  size_t sum_pos = position_of(mg, "aten::sum");
  // The If node and its blocks stay whole in the second stage, and use values from the first.
  for (float sign : {1.0f, -1.0f}) {
    at::Tensor x = sign * torch::rand({2, 4}) + sign;
    auto ref = run_whole(mg, x);
    auto out = run_stages(mg, {0, sum_pos, mg.nodes.size()}, x);
    EXPECT_TRUE(torch::allclose(out[0], ref[0]));
  }
}

TEST(Graph, TupleOutputPassesThrough) {
  ModelGraph mg = make_model_graph(define(kTupleOut));
  at::Tensor x = torch::randn({2, 4});
  auto ref = run_whole(mg, x);
  ASSERT_EQ(ref.size(), 2u);
  size_t tanh = position_of(mg, "aten::tanh");
  auto out = run_stages(mg, {0, tanh + 1, mg.nodes.size()}, x);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(torch::equal(out[0], ref[0]));
  EXPECT_TRUE(torch::equal(out[1], ref[1]));
  // The cut after tanh carries a and b.
  EXPECT_EQ(mg.live[tanh + 1].size(), 2u);
}

TEST(Graph, SavedStageKeepsItsWeights) {
  ModelGraph mg = make_model_graph(define(kTupleOut));
  auto m = build_stage_module(mg, 0, 1);
  EXPECT_EQ(parameter_bytes(m), 4 * 4 * 4);
  auto loaded = load_module_bytes(save_module_bytes(m));
  at::Tensor x = torch::randn({2, 4});
  StageRunner a(m), b(loaded);
  EXPECT_TRUE(torch::equal(a.run({x})[0], b.run({x})[0]));
}

TEST(Graph, BadModelFilesAreNamed) {
  EXPECT_THROW(
      {
        try {
          load_model_graph("/nonexistent/model.pt");
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos);
          throw;
        }
      },
      Error);
  EXPECT_THROW(load_module_bytes("not a zip archive"), Error);
}
