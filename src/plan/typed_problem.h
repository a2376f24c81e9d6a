// typed_problem: the problem the exact planner solves (private to src/plan/): ranks grouped into
// types with each type's worst values, and the count vectors (how many ranks of each type a plan
// uses) that index its states.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "edgepipe/plan/cluster.h"
#include "edgepipe/plan/cost_model.h"
#include "edgepipe/plan/rank_types.h"

namespace edgepipe {

// The cluster seen by types: each type takes its members' worst block times, memory and links.
struct TypedInstance {
  size_t n = 0, T = 0;
  std::vector<std::vector<size_t>> members;          // [type] -> ranks
  std::vector<std::vector<double>> time_s;           // [type][block]
  std::vector<double> memory;                        // [type]
  std::vector<Link> from_dispatcher, to_dispatcher;  // [type]
  std::vector<Link> between;                         // [from type * T + to type]
  std::vector<double> interface_Bps;                 // [type]: interface_Bps (stage_rule.h)
  double dispatcher_interface_Bps = 0;               // rank 0's
};

TypedInstance make_typed(const ModelCosts& m, const Cluster& c, const RankTypes& types);

// Count vectors over the types: counts[ty] <= cap[ty], encoded in mixed radix. Layer k lists the
// vectors whose counts sum to k (plans with k stages); local[] is a vector's place in its layer.
struct ComboSpace {
  size_t T = 0;
  std::vector<size_t> cap, stride;
  size_t count = 1;
  std::vector<std::vector<uint32_t>> layer;
  std::vector<uint32_t> local;

  void digits(size_t idx, std::vector<size_t>& out) const {
    for (size_t ty = 0; ty < T; ++ty) out[ty] = (idx / stride[ty]) % (cap[ty] + 1);
  }
};

// Every count vector up to `cap`, in layers up to `max_stages`.
ComboSpace make_combos(const std::vector<size_t>& cap, size_t max_stages);

// reach[ty][i]: the largest j such that blocks [i, j) fit on a rank of type ty with `extra` more
// bytes; i if block i alone does not fit. Non-decreasing in i (a shorter stage needs no more).
std::vector<std::vector<size_t>> memory_reach(const ModelCosts& m, const TypedInstance& t,
                                              double extra);

}  // namespace edgepipe
