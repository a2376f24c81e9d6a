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
std::string format_plan(const Plan& plan, const ModelCosts& model, const Cluster& cluster);

}  // namespace edgepipe
