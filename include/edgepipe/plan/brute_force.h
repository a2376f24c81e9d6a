// brute_force: every plan enumerated, to check the exact planner on small instances (tests and
// tools/bench_planner). Pure: no MPI, no Torch.
#pragma once
#include <cstddef>

#include "edgepipe/plan/cluster.h"
#include "edgepipe/plan/cost_model.h"
#include "edgepipe/plan/planner.h"

namespace edgepipe {

// How many plans plan_brute_force enumerates for n blocks on R stage ranks (before memory prunes
// any): the sum over k of C(n-1, k-1) cut sets x R!/(R-k)! placements.
double brute_force_plan_count(size_t n, size_t R);

// Enumerates every cut set and placement (throws if there are more than max_plans). Keeps only
// plans of at least min_stages stages (0: any). Returns no stages if nothing fits.
Plan plan_brute_force(const ModelCosts& model, const Cluster& cluster, double max_plans = 1e8,
                      size_t min_stages = 0);

// The same with replicas, over plan_optimal's plan space with replicas (docs/planner.md,
// "Replicas"): every cut set; every stage but the last on a set of ranks of one type
// (group_ranks at PlanOptions::group_tolerance), the last on any set of the ranks left; between
// min_replicas and max_replicas ranks per stage and min_stages to max_stages stages. Every plan is
// costed by evaluate_plan; the best by (period, stages, ranks, bytes between stages). Throws if it
// would cost more than max_plans plans. Returns no stages if nothing fits.
Plan plan_brute_force_replicated(const ModelCosts& model, const Cluster& cluster,
                                 const PlanOptions& options, double max_plans = 1e6);

}  // namespace edgepipe
