#include "edgepipe/plan/baselines.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "edgepipe/plan/exact_planner.h"
#include "planner_common.h"

namespace edgepipe {

namespace {

// A small, portable generator for the random baseline (std distributions differ across libraries).
struct SplitMix64 {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }  // bias < n / 2^64
};

// k stages with random cuts (without repetition) on a random permutation of the ranks.
std::vector<Stage> random_stages(SplitMix64& rng, size_t k, size_t n, size_t R) {
  std::vector<size_t> cut_pool(n - 1), rank_pool(R);
  std::iota(cut_pool.begin(), cut_pool.end(), size_t{1});
  std::iota(rank_pool.begin(), rank_pool.end(), size_t{1});
  for (size_t x = 0; x + 1 < k; ++x) std::swap(cut_pool[x], cut_pool[x + rng.below(n - 1 - x)]);
  for (size_t x = 0; x < k; ++x) std::swap(rank_pool[x], rank_pool[x + rng.below(R - x)]);
  std::vector<size_t> bounds(cut_pool.begin(), cut_pool.begin() + (k - 1));
  bounds.push_back(0);
  bounds.push_back(n);
  std::sort(bounds.begin(), bounds.end());
  std::vector<Stage> stages;
  for (size_t x = 0; x < k; ++x) stages.push_back({rank_pool[x], bounds[x], bounds[x + 1]});
  return stages;
}

// The blocks [i, j) that greedy puts on rank r: until one more would exceed `share` of the
// reference compute (unless `last`) or the rank's memory.
size_t greedy_end(const ModelCosts& m, const Cluster& c, size_t r, size_t i, double share,
                  bool last) {
  double params = 0, act = 0, work = 0;
  size_t j = i;
  while (j < m.num_blocks()) {
    const BlockCost& b = m.blocks[j];
    if (params + b.param_bytes + std::max(act, b.act_bytes) > c.ranks[r].memory_bytes) break;
    if (!last && j > i && work + b.ref_ms > share) break;
    params += b.param_bytes;
    act = std::max(act, b.act_bytes);
    work += b.ref_ms;
    ++j;
  }
  return j;
}

}  // namespace

Plan plan_random(const ModelCosts& m, const Cluster& c, const PlanOptions& o) {
  validate_problem(m, c);
  const size_t n = m.num_blocks(), R = c.num_stage_ranks();
  const auto [Kmin, K] = stage_range(m, c, o);
  SplitMix64 rng{o.seed};
  for (size_t tries = 0; tries < o.random_tries; ++tries) {
    const size_t k = Kmin + rng.below(K - Kmin + 1);
    std::vector<Stage> stages = random_stages(rng, k, n, R);
    if (evaluate_plan(m, c, stages).fits) return finish("random", m, c, std::move(stages));
  }
  return finish("random", m, c, {},
                "none of " + std::to_string(o.random_tries) + " random plans fits in memory");
}

Plan plan_greedy(const ModelCosts& m, const Cluster& c, const PlanOptions& o) {
  validate_problem(m, c);
  const size_t n = m.num_blocks(), R = c.num_stage_ranks(), K = stage_limit(m, c, o);
  double total = 0;
  for (const BlockCost& b : m.blocks) total += b.ref_ms;
  const double share = total / static_cast<double>(K);
  std::vector<Stage> stages;
  size_t i = 0;
  for (size_t r = 1; r <= R && i < n && stages.size() < K; ++r) {
    const bool last = r == R || stages.size() + 1 == K;  // the last rank takes the rest
    const size_t j = greedy_end(m, c, r, i, share, last);
    if (j == i) continue;  // not even block i fits here: try the next rank
    stages.push_back({r, i, j});
    i = j;
  }
  if (i < n)
    return finish("greedy", m, c, {},
                  "the ranks filled in turn hold only the first " + std::to_string(i) + " of " +
                      std::to_string(n) + " blocks");
  return finish("greedy", m, c, std::move(stages));
}

Plan plan_equal_blocks(const ModelCosts& m, const Cluster& c, const PlanOptions& o) {
  validate_problem(m, c);
  const size_t n = m.num_blocks(), k = stage_range(m, c, o).second;  // >= min_stages
  std::vector<Stage> stages;
  for (size_t x = 0; x < k; ++x) stages.push_back({x + 1, x * n / k, (x + 1) * n / k});
  PlanCost pc = evaluate_plan(m, c, stages);
  for (size_t x = 0; x < k; ++x)
    if (!pc.stages[x].fits())
      return finish("equal-blocks", m, c, {},
                    "stage " + std::to_string(x) + " needs " +
                        format_bytes(pc.stages[x].memory_bytes) + " but rank " +
                        std::to_string(x + 1) + " has " +
                        format_bytes(pc.stages[x].memory_limit_bytes));
  return finish("equal-blocks", m, c, std::move(stages));
}

Cluster pipeedge_view(const Cluster& c) {
  Cluster v = c;
  const size_t N = c.num_ranks();
  for (size_t a = 0; a < N; ++a) {
    double bw = 0, lat = 0;
    for (size_t b = 0; b < N; ++b)
      if (b != a) {
        bw += c.link(a, b).bandwidth_Bps;
        lat += c.link(a, b).latency_s;
      }
    if (N < 2) continue;
    const Link mean{lat / static_cast<double>(N - 1), bw / static_cast<double>(N - 1)};
    for (size_t b = 0; b < N; ++b)
      if (b != a) v.links[a][b] = mean;
  }
  return v;
}

Plan plan_pipeedge(const ModelCosts& m, const Cluster& c, const PlanOptions& o) {
  validate_problem(m, c);
  PlanOptions no_replicas = o;  // PipeEdge plans one device per stage
  no_replicas.max_replicas = 1;
  no_replicas.min_replicas = 0;
  Plan seen = plan_optimal(m, pipeedge_view(c), no_replicas);
  Plan p = finish("pipeedge", m, c, seen.stages);
  p.rank_types = seen.rank_types;
  char buf[96];
  std::snprintf(buf, sizeof buf, "planned for a period of %.3f ms under one link per device",
                seen.cost.period_s * 1e3);
  p.note = buf;
  return p;
}

Plan plan_single_pipeline(const ModelCosts& m, const Cluster& c, const PlanOptions& o) {
  PlanOptions single = o;
  single.max_replicas = 1;
  single.min_replicas = 0;
  Plan p = plan_optimal(m, c, single);
  p.method = "single-pipeline";
  return p;
}

Plan plan_data_parallel(const ModelCosts& m, const Cluster& c, const PlanOptions&) {
  validate_problem(m, c);
  std::vector<size_t> ranks;
  for (size_t r = 1; r <= c.num_stage_ranks(); ++r)
    if (evaluate_plan(m, c, {{r, 0, m.num_blocks()}}).fits) ranks.push_back(r);
  if (ranks.empty())
    return finish("data-parallel", m, c, {}, "no stage rank holds the whole model");
  Stage s{ranks.front(), 0, m.num_blocks()};
  if (ranks.size() > 1) s.ranks = ranks;
  return finish("data-parallel", m, c, {s});
}

}  // namespace edgepipe
