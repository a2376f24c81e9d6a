// planner_common: what the planners share besides the cost model (private to src/plan/): how
// many stages a plan may have, and a plan's result built through evaluate_plan.
#pragma once
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "edgepipe/plan/cluster.h"
#include "edgepipe/plan/cost_model.h"
#include "edgepipe/plan/planner.h"

namespace edgepipe {

// The most stages a plan may have: min(blocks, stage ranks, PlanOptions::max_stages if set).
size_t stage_limit(const ModelCosts& m, const Cluster& c, const PlanOptions& o);

// The fewest and the most stages a plan may have: PlanOptions::min_stages (at least 1) and
// stage_limit(). Throws edgepipe::Error if no number of stages is allowed.
std::pair<size_t, size_t> stage_range(const ModelCosts& m, const Cluster& c, const PlanOptions& o);

// A Plan of `method` with these stages, costed by evaluate_plan (none: nothing found, `note` says
// why).
Plan finish(const std::string& method, const ModelCosts& m, const Cluster& c,
            std::vector<Stage> stages, std::string note = "");

}  // namespace edgepipe
