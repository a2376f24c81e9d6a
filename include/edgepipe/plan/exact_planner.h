// exact_planner: the optimal plan under the cost model (cost_model.h): the number of stages, the
// cuts, each stage's rank (or replicas), by a dynamic program over types of ranks
// (docs/planner.md, "The exact planner", "Replicas"). Pure: no MPI, no Torch.
#pragma once
#include "edgepipe/plan/cluster.h"
#include "edgepipe/plan/cost_model.h"
#include "edgepipe/plan/planner.h"

namespace edgepipe {

// The number of stages, the cuts and each stage's rank (each rank at most once) that minimise the
// period subject to memory, among plans of PlanOptions::min_stages to max_stages stages. Ties:
// fewer stages, then fewer bytes on links between stages, then a fixed order. Throws
// edgepipe::Error if no such plan fits in memory, saying how much is missing.
// With PlanOptions::max_replicas != 1, each stage may run on several ranks (min_replicas to
// max_replicas): every stage but the last on ranks of one type, the last on any (the plan space
// of docs/planner.md, "Replicas"), and ties go to fewer stages, then fewer ranks, then fewer
// bytes between stages.
Plan plan_optimal(const ModelCosts& model, const Cluster& cluster, const PlanOptions& options = {});

}  // namespace edgepipe
