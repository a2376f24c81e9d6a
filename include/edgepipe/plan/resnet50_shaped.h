// resnet50_shaped: a synthetic ResNet50-shaped chain of block costs, for the planner's tests and
// tools/bench_planner (`edgepipe plan` measures the real model). Pure: no MPI, no Torch.
#pragma once
#include "edgepipe/plan/cost_model.h"

namespace edgepipe {

// Batch 1: one block per bottleneck (18: stem, 16 bottlenecks, avgpool + fc), torchvision's
// parameter counts (fp32), output sizes, and compute from FLOPs at 20 GFLOP/s for speed 1.0;
// peak activations are a block's input plus twice its output.
ModelCosts resnet50_shaped();

}  // namespace edgepipe
