// replica_planner: the exact planner with replicas (private to src/plan/; docs/planner.md,
// "Replicas"): plan_optimal's dynamic program when PlanOptions allows more than one rank per stage.
#pragma once
#include "edgepipe/plan/cluster.h"
#include "edgepipe/plan/cost_model.h"
#include "edgepipe/plan/planner.h"

namespace edgepipe {

// The optimal plan with replicas under PlanOptions (max_replicas, min_replicas and the stage
// limits). `bound`: the period of a plan known to be in the plan space (the best plan without
// replicas), or infinity. Throws edgepipe::Error if no plan fits.
Plan plan_with_replicas(const ModelCosts& model, const Cluster& cluster, const PlanOptions& options,
                        double bound);

}  // namespace edgepipe
