// last_stage: which of the ranks left the last stage of a plan with replicas takes (private to
// src/plan/; docs/planner.md, "Replicas"): the only stage that may mix types, whose replicas each
// send to rank 0 over their own link.
#pragma once
#include <cstddef>
#include <utility>
#include <vector>

namespace edgepipe {

// A type that could take part in the last stage after some state: its replicas' period there,
// its link to rank 0 (rank 0 receives one output at a time), and how many of its ranks are left.
struct LastCandidate {
  size_t type;
  double period, out;
  size_t avail;
};

// Some of the last stage's candidates: stage_period's groups, how many of each type, how many
// in all, and the slowest link to rank 0 among them.
struct LastPick {
  std::vector<std::pair<double, size_t>> groups;
  std::vector<size_t> counts;  // by type
  size_t replicas = 0;
  double out = 0;
};

// How many replicas a stage may have; `types`: how many types there are.
struct ReplicaBounds {
  size_t types = 0, min_replicas = 1, max_replicas = 1;
};

// The best last stage after a state of value v: the smallest max(v, link to rank 0, stage period)
// (candidates in ascending order of period). Infinity if none has enough replicas.
double best_last_stage(const std::vector<LastCandidate>& candidates, double v,
                       const ReplicaBounds& b);

// The fewest candidates whose last stage is within V, the fastest first; no replicas if none is.
LastPick fewest_last_stage(const std::vector<LastCandidate>& candidates, double V,
                           const ReplicaBounds& b);

}  // namespace edgepipe
