// bench_planner_models: what `edgepipe plan` predicts with replicas for real models: each model is
// profiled here (as `edgepipe plan` does: batch 1, 1 thread, optimised blocks, raw links) and
// planned on each cluster description with and without replicas (format_replica_comparison). It
// also prints each model's heaviest block as a share of its compute: a single pipeline can go no
// faster than that block. Periods are predictions of the cost model, not measured runs.
//
// Usage: bench_planner_models --cluster FILE.ini [--cluster ...] MODEL.pt [MODEL.pt ...]
#include <ATen/ATen.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "edgepipe/base/error.h"
#include "edgepipe/model/graph.h"
#include "edgepipe/model/profile.h"
#include "edgepipe/plan/plan.h"
#include "edgepipe/wire/codec_spec.h"

using namespace edgepipe;

namespace {

// The model's blocks as the planner sees them, profiled on this machine.
ModelCosts profiled_costs(const std::string& path) {
  const ModelGraph graph = load_model_graph(path);
  EP_CHECK(!graph.input_shape.empty(), path, " records no input shape (tools/export_models.py)");
  std::vector<int64_t> shape = graph.input_shape;
  shape[0] = 1;
  at::manual_seed(1);
  ProfileOptions options;
  options.optimize = true;
  options.codecs = {parse_codec("raw")};
  return model_costs(profile_model(graph, at::randn(shape), options));
}

int run(int argc, char** argv) {
  std::vector<std::string> clusters, models;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--cluster") {
      EP_CHECK(i + 1 < argc, "--cluster needs a file");
      clusters.push_back(argv[++i]);
    } else {
      models.push_back(a);
    }
  }
  EP_CHECK(!clusters.empty() && !models.empty(),
           "usage: bench_planner_models --cluster FILE.ini [--cluster ...] MODEL.pt [...]");
  for (const std::string& path : models) {
    const ModelCosts costs = profiled_costs(path);
    double total = 0, heaviest = 0;
    for (const BlockCost& b : costs.blocks) {
      total += b.ref_ms;
      heaviest = std::max(heaviest, b.ref_ms);
    }
    std::printf("# %s: %zu blocks, %.3f ms per batch here; heaviest block %.3f ms (%.1f%%)\n",
                path.c_str(), costs.num_blocks(), total, heaviest, 100 * heaviest / total);
    for (const std::string& file : clusters) {
      std::printf("\n## %s on %s\n", path.c_str(), file.c_str());
      std::cout << format_replica_comparison(costs, load_cluster(file), PlanOptions{})
                << std::flush;
    }
    std::printf("\n");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_planner_models: %s\n", e.what());
    return 2;
  }
}
