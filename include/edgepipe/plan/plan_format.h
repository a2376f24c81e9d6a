// plan_format: plans as text tables, for `edgepipe plan`, `edgepipe run`'s start-up and the
// tools. Pure: no MPI, no Torch.
#pragma once
#include <string>

#include "edgepipe/plan/cluster.h"
#include "edgepipe/plan/cost_model.h"
#include "edgepipe/plan/planner.h"

namespace edgepipe {

// A table of a plan: stage, rank, blocks, compute / recv / send ms, memory, bytes out, period
// (compute as in StageCost::compute_s; the summary line says when codec work runs beside it).
// With replicas: per stage, a row per group of alike replicas with each one's period and the
// stage's, and rank 0's terms.
std::string format_plan(const Plan& plan, const ModelCosts& model, const Cluster& cluster);

// What `edgepipe plan` prints about replicas: the optimal plan with replicas (PlanOptions as
// given, max_replicas = 1 read as 0: the planner decides), the best single pipeline's table
// below it, pure data parallelism's period, and how much faster the replicated plan is predicted
// to be. Throws edgepipe::Error as plan_optimal does (nothing fits, bad options).
std::string format_replica_comparison(const ModelCosts& model, const Cluster& cluster,
                                      const PlanOptions& options);

}  // namespace edgepipe
