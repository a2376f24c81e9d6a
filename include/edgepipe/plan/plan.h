// plan: block costs + cluster description -> stages and their placement. Pure: no MPI, no Torch.
// An umbrella over the planner's headers (one concern each); the cost model and the algorithms
// are described in docs/planner.md.
#pragma once

#include "edgepipe/plan/baselines.h"      // plan_random, plan_greedy, plan_equal_blocks, ...
#include "edgepipe/plan/brute_force.h"    // plan_brute_force
#include "edgepipe/plan/chain_split.h"    // partition_chain
#include "edgepipe/plan/cluster.h"        // Link, RankInfo, Cluster
#include "edgepipe/plan/cluster_file.h"   // load_cluster, parse_cluster
#include "edgepipe/plan/cost_model.h"     // ModelCosts, Stage, StageCost, PlanCost, evaluate_plan
#include "edgepipe/plan/exact_planner.h"  // plan_optimal
#include "edgepipe/plan/plan_format.h"    // format_plan
#include "edgepipe/plan/planner.h"        // Plan, PlanOptions
#include "edgepipe/plan/rank_types.h"     // RankTypes, group_ranks
