// baselines: simpler planners to measure the exact one against (docs/planner.md, "Baselines"),
// evaluated under the same cost model. Pure: no MPI, no Torch.
#pragma once
#include "edgepipe/plan/cluster.h"
#include "edgepipe/plan/cost_model.h"
#include "edgepipe/plan/planner.h"

namespace edgepipe {

// They return no stages (with a note) when they find no plan that fits.
Plan plan_random(const ModelCosts& model, const Cluster& cluster, const PlanOptions& options = {});
Plan plan_greedy(const ModelCosts& model, const Cluster& cluster, const PlanOptions& options = {});
Plan plan_equal_blocks(const ModelCosts& model, const Cluster& cluster,
                       const PlanOptions& options = {});
// Plans exactly under PipeEdge's model (one bandwidth and latency per sending device: the mean of
// its links; no replicas) and evaluates the result under the real per-link model.
Plan plan_pipeedge(const ModelCosts& model, const Cluster& cluster,
                   const PlanOptions& options = {});

// Against plans with replicas (PlanOptions::max_replicas != 1): the best plan without replicas
// ("single-pipeline": plan_optimal with max_replicas = 1), and pure data parallelism
// ("data-parallel": one stage, the whole model, on every stage rank whose memory holds it).
Plan plan_single_pipeline(const ModelCosts& model, const Cluster& cluster,
                          const PlanOptions& options = {});
Plan plan_data_parallel(const ModelCosts& model, const Cluster& cluster,
                        const PlanOptions& options = {});

// The cluster as PipeEdge sees it: every link from rank a replaced by a's mean link.
Cluster pipeedge_view(const Cluster& cluster);

}  // namespace edgepipe
