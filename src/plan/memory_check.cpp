#include "memory_check.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "edgepipe/base/error.h"
#include "edgepipe/base/units.h"

namespace edgepipe {

namespace {

using Reach = std::vector<std::vector<size_t>>;

// Without a minimum, a count vector need not use all its ranks, and the farthest block reachable
// with it dominates every nearer one.
bool fits_without_minimum(const TypedInstance& t, const ComboSpace& s, const Reach& reach) {
  std::vector<size_t> farthest(s.count, 0), d(s.T);
  for (size_t idx = 1; idx < s.count; ++idx) {
    s.digits(idx, d);
    size_t f = 0;
    for (size_t ty = 0; ty < s.T; ++ty) {
      if (d[ty] == 0) continue;
      size_t p = farthest[idx - s.stride[ty]];
      f = std::max({f, p, p == t.n ? t.n : reach[ty][p]});
    }
    farthest[idx] = f;
  }
  for (const auto& layer : s.layer)
    for (uint32_t idx : layer)
      if (farthest[idx] == t.n) return true;
  return false;
}

// The blocks reachable with exactly the stages of vector `idx` (its place `loc` in its layer),
// each non-empty, from those of the previous layer `prev`: q is reachable if some type ty of the
// vector has, for the vector without it, a reachable p < q with reach[ty][p] >= q; reach is
// non-decreasing, so the largest such p decides. Returns whether any block is reachable.
bool reach_exactly(const TypedInstance& t, const ComboSpace& s, const Reach& reach, size_t idx,
                   const std::vector<char>& prev, char* out) {
  const size_t N = t.n + 1;
  std::vector<size_t> d(s.T);
  s.digits(idx, d);
  bool any = false;
  for (size_t ty = 0; ty < s.T; ++ty) {
    if (d[ty] == 0) continue;
    const char* in = &prev[s.local[idx - s.stride[ty]] * N];
    size_t last = SIZE_MAX;
    for (size_t q = 1; q <= t.n; ++q) {
      if (in[q - 1]) last = q - 1;
      if (last != SIZE_MAX && reach[ty][last] >= q) {
        out[q] = 1;
        any = true;
      }
    }
  }
  return any;
}

// With a minimum every stage must hold at least one block, and a rank that fits no block cannot
// pad the count: the positions reachable with exactly the stages of a count vector, all
// non-empty, need not be an interval. So keep them all, one layer of count vectors at a time.
bool fits_with_minimum(const TypedInstance& t, const ComboSpace& s, const Reach& reach,
                       size_t min_stages) {
  const size_t N = t.n + 1;
  std::vector<char> prev(N, 0), cur;
  prev[0] = 1;  // layer 0: the empty vector, at block 0
  for (size_t k = 1; k < s.layer.size(); ++k) {
    const auto& layer = s.layer[k];
    cur.assign(layer.size() * N, 0);
    bool any = false, done = false;
    for (size_t loc = 0; loc < layer.size(); ++loc) {
      any = reach_exactly(t, s, reach, layer[loc], prev, &cur[loc * N]) || any;
      done = done || (k >= min_stages && cur[loc * N + t.n]);
    }
    if (done) return true;
    if (!any) return false;
    prev.swap(cur);
  }
  return false;
}

}  // namespace

bool memory_feasible(const ModelCosts& m, const TypedInstance& t, const ComboSpace& s, double extra,
                     size_t min_stages) {
  const Reach reach = memory_reach(m, t, extra);
  return min_stages > 1 ? fits_with_minimum(t, s, reach, min_stages)
                        : fits_without_minimum(t, s, reach);
}

void fail_memory(const ModelCosts& m, const Cluster& c, const TypedInstance& t, const ComboSpace& s,
                 size_t min_stages, size_t max_stages) {
  double weights = 0, largest_act = 0, block_need = 0, largest_rank = 0, all_ranks = 0;
  size_t worst_block = 0;
  for (size_t b = 0; b < t.n; ++b) {
    weights += m.blocks[b].param_bytes;
    largest_act = std::max(largest_act, m.blocks[b].act_bytes);
    double need = m.blocks[b].param_bytes + m.blocks[b].act_bytes;
    if (need > block_need) {
      block_need = need;
      worst_block = b;
    }
  }
  for (size_t r = 1; r < c.num_ranks(); ++r) {
    largest_rank = std::max(largest_rank, c.ranks[r].memory_bytes);
    all_ranks += c.ranks[r].memory_bytes;
  }
  // The least memory that, added to every rank, makes the model fit (bisection; to 0.1%).
  double lo = 0, hi = weights + largest_act;
  while (hi - lo > std::max(1.0, hi * 1e-3)) {
    double mid = (lo + hi) / 2;
    (memory_feasible(m, t, s, mid, min_stages) ? hi : lo) = mid;
  }
  std::string why;
  if (block_need > largest_rank) {
    why = detail::concat(
        "the model needs at least ", format_bytes(block_need), " on some rank (block ", worst_block,
        ": weights + peak activations) but the largest rank has ", format_bytes(largest_rank), ": ",
        format_bytes(block_need - largest_rank), " missing");
  } else {
    const std::string count = min_stages <= 1 ? detail::concat("at most ", max_stages)
                              : min_stages == max_stages
                                  ? detail::concat("exactly ", max_stages)
                                  : detail::concat(min_stages, " to ", max_stages);
    const std::string fewer = min_stages > 1 && memory_feasible(m, t, s, 0.0)
                                  ? detail::concat(" (fewer than ", min_stages, " would fit)")
                                  : "";
    why = detail::concat("no split of the model into ", count, " stages", fewer,
                         " fits the memory of its ", c.num_stage_ranks(),
                         " stage ranks (the weights total ", format_bytes(weights),
                         ", the ranks have ", format_bytes(all_ranks), " together, the largest ",
                         format_bytes(largest_rank), ")");
  }
  EP_FAIL("the model does not fit in memory: ", why, "; it would fit with ", format_bytes(hi),
          " more on every rank");
}

}  // namespace edgepipe
