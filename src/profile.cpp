#include "edgepipe/profile.h"

#include <torch/csrc/jit/passes/freeze_module.h>

#include <algorithm>
#include <chrono>

#include "edgepipe/error.h"
#include "edgepipe/stage.h"

namespace edgepipe {

int64_t ModelProfile::cut_bytes(size_t cut) const {
  int64_t n = 0;
  for (const auto& m : cut_metas.at(cut)) n += m.bytes();
  return n;
}

ModelProfile profile_model(const ModelGraph& model, const at::Tensor& input, int warmup,
                           int reps) {
  const size_t nb = model.num_blocks();
  std::vector<StageRunner> blocks;
  ModelProfile p;
  for (size_t b = 0; b < nb; ++b) {
    blocks.emplace_back(build_stage_module(model, model.cuts[b], model.cuts[b + 1]));
    p.block_param_bytes.push_back(parameter_bytes(blocks.back().module()));
  }
  std::vector<std::vector<double>> times(nb);
  const int passes = reps > 0 ? warmup + reps : 1;
  for (int pass = 0; pass < passes; ++pass) {
    std::vector<at::Tensor> x{input};
    if (pass == 0) p.cut_metas.push_back(metas_of(x));
    for (size_t b = 0; b < nb; ++b) {
      auto t0 = std::chrono::steady_clock::now();
      try {
        x = blocks[b].run(x);
      } catch (const std::exception& e) {
        EP_FAIL("the model fails on an input batch of shape ", input.sizes(), " (in block ", b,
                ", node ", describe_node(model.nodes[model.cuts[b]]),
                "): ", torch_error_summary(e));
      }
      double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                      .count();
      if (pass >= warmup) times[b].push_back(ms);
      if (pass == 0) p.cut_metas.push_back(metas_of(x));
    }
  }
  for (auto& t : times) {
    std::sort(t.begin(), t.end());
    p.block_ms.push_back(t.empty() ? 0.0 : t[t.size() / 2]);
  }
  return p;
}

std::vector<double> time_stages(const ModelGraph& model, const std::vector<size_t>& node_bounds,
                                const at::Tensor& input, bool optimize, int warmup, int reps) {
  std::vector<double> ms;
  std::vector<at::Tensor> x{input};
  for (size_t s = 0; s + 1 < node_bounds.size(); ++s) {
    torch::jit::Module m = build_stage_module(model, node_bounds[s], node_bounds[s + 1]);
    if (optimize) m = torch::jit::optimize_for_inference(m);
    StageRunner stage(m);
    std::vector<double> t;
    std::vector<at::Tensor> y;
    for (int i = 0; i < warmup + reps; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      y = stage.run(x);
      if (i >= warmup)
        t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                        .count());
    }
    std::sort(t.begin(), t.end());
    ms.push_back(t.empty() ? 0.0 : t[t.size() / 2]);
    x = y;
  }
  return ms;
}

}  // namespace edgepipe
