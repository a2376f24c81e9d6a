#include "last_stage.h"

#include <algorithm>

#include "stage_rule.h"

namespace edgepipe {

namespace {

void add_replicas(LastPick& pick, const LastCandidate& cand, size_t count) {
  if (count == 0) return;
  if (pick.groups.empty() || pick.groups.back().first != cand.period)
    pick.groups.push_back({cand.period, 0});
  pick.groups.back().second += count;
  pick.counts[cand.type] += count;
  pick.replicas += count;
  pick.out = std::max(pick.out, cand.out);
}

// The fastest candidates, at most `most` replicas, only those whose link to rank 0 is at most
// `out_limit`.
LastPick pick_fastest(const std::vector<LastCandidate>& candidates, size_t types, size_t most,
                      double out_limit) {
  LastPick pick;
  pick.counts.assign(types, 0);
  for (const LastCandidate& cand : candidates)
    if (cand.out <= out_limit) add_replicas(pick, cand, std::min(cand.avail, most - pick.replicas));
  return pick;
}

}  // namespace

// The best completion of a state of value v: for each bound on the links to rank 0, the fastest
// replicas left (at most max_replicas), all of which only help.
double best_last_stage(const std::vector<LastCandidate>& candidates, double v,
                       const ReplicaBounds& b) {
  double best = kInf;
  for (const LastCandidate& limit : candidates) {
    const LastPick pick = pick_fastest(candidates, b.types, b.max_replicas, limit.out);
    if (pick.replicas < b.min_replicas) continue;
    best = std::min(best, std::max({v, pick.out, stage_period(pick.groups)}));
  }
  return best;
}

// The fewest replicas left that make a last stage within V (none if they cannot): the fastest
// first, among those whose link to rank 0 is within V.
LastPick fewest_last_stage(const std::vector<LastCandidate>& candidates, double V,
                           const ReplicaBounds& b) {
  LastPick pick;
  pick.counts.assign(b.types, 0);
  for (const LastCandidate& cand : candidates) {
    if (cand.out > V) continue;
    const size_t most = std::min(cand.avail, b.max_replicas - pick.replicas);
    if (most == 0) continue;
    LastPick all = pick;
    add_replicas(all, cand, most);
    if (all.replicas < b.min_replicas || stage_period(all.groups) > V) {
      pick = all;  // not enough yet: take them all and go on to the next type
      continue;
    }
    // The fewest of this type that are enough (and at least min_replicas in all).
    size_t lo = 1, hi = most;
    while (lo < hi) {
      const size_t mid = (lo + hi) / 2;
      LastPick some = pick;
      add_replicas(some, cand, mid);
      const bool enough = some.replicas >= b.min_replicas && stage_period(some.groups) <= V;
      (enough ? hi : lo) = enough ? mid : mid + 1;
    }
    add_replicas(pick, cand, lo);
    return pick;
  }
  pick.replicas = 0;  // not within V
  return pick;
}

}  // namespace edgepipe
