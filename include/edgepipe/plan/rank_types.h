// rank_types: stage ranks grouped into types of interchangeable ranks, which the exact planner
// plans over instead of single ranks (docs/planner.md, "Types of ranks"). Pure: no MPI, no Torch.
#pragma once
#include <cstddef>
#include <vector>

#include "edgepipe/plan/cluster.h"
#include "edgepipe/plan/cost_model.h"

namespace edgepipe {

// Which type each stage rank has, and each type's ranks: within a type, block times, memory and
// links to and from every other rank agree (within the tolerance of group_ranks).
struct RankTypes {
  std::vector<size_t> type_of_rank;          // by rank; entry 0 (the dispatcher) is unused
  std::vector<std::vector<size_t>> members;  // by type: its ranks, ascending
};

// Groups the stage ranks into types (see PlanOptions::group_tolerance): ranks alike on their own
// within `tolerance`, refined until the link between two distinct ranks depends only on their
// types. Negative tolerance: every rank its own type.
RankTypes group_ranks(const ModelCosts& model, const Cluster& cluster, double tolerance = 0);

}  // namespace edgepipe
