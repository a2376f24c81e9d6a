// profile: per-block compute time on this rank (at the run's batch size and thread count), the
// tensors live at each cut candidate, and parameter bytes per block.
#pragma once
#include <ATen/ATen.h>

#include <vector>

#include "edgepipe/codec.h"
#include "edgepipe/graph.h"

namespace edgepipe {

struct ModelProfile {
  std::vector<double> block_ms;                    // median compute time of each block
  std::vector<int64_t> block_param_bytes;          // frozen weights of each block
  std::vector<std::vector<TensorMeta>> cut_metas;  // tensors at each cut candidate (blocks + 1)
  int64_t cut_bytes(size_t cut) const;
};

// Runs the model block by block on `input`: `warmup` untimed passes, then `reps` timed ones
// (reps = 0: one pass, shapes only). Throws an error naming the input's shape if the model
// rejects it.
ModelProfile profile_model(const ModelGraph& model, const at::Tensor& input, int warmup = 2,
                           int reps = 5);

// Median time of each stage [node_bounds[s], node_bounds[s+1]) run as it will run on its rank
// (built as its own module and, with `optimize`, optimize_for_inference), fed the previous
// stage's outputs: `warmup` untimed runs, then `reps` timed.
std::vector<double> time_stages(const ModelGraph& model, const std::vector<size_t>& node_bounds,
                                const at::Tensor& input, bool optimize, int warmup = 2,
                                int reps = 3);

}  // namespace edgepipe
