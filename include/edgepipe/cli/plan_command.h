// plan_command: `edgepipe plan`. Profiles a model on this machine (block times at the given batch
// and thread count, weights, peak activations, cut sizes and codec times), plans its stages for a
// described cluster with the exact planner and prints the plan, its predicted period and
// throughput, and the same figures for each baseline. No MPI. docs/planner.md, "edgepipe plan".
#pragma once
#include <ostream>

#include "edgepipe/cli/config.h"
#include "edgepipe/plan/cluster.h"

namespace edgepipe {

// Returns the exit status (0). Throws edgepipe::Error naming the cause: an unreadable model or
// cluster file (named), a cluster that does not suit the model, or a model that does not fit in
// the cluster's memory (saying how much is missing).
int run_plan_command(const PlanCommandConfig& cfg, std::ostream& out);

// The cluster `cfg` describes: its --cluster file, or --ranks identical ranks like this machine
// (speed 1, --max-memory or this node's memory, every link --bandwidth / --latency).
Cluster plan_command_cluster(const PlanCommandConfig& cfg);

}  // namespace edgepipe
