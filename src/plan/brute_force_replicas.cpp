#include <algorithm>
#include <string>
#include <tuple>
#include <vector>

#include "edgepipe/base/error.h"
#include "edgepipe/plan/brute_force.h"
#include "edgepipe/plan/rank_types.h"
#include "planner_common.h"
#include "stage_rule.h"

namespace edgepipe {

namespace {

// Every plan with replicas, recursively: stage by stage, every end block and every set of ranks
// left (of one type but for the last stage), each costed whole by evaluate_plan.
struct ReplicaSearch {
  const ModelCosts& m;
  const Cluster& c;
  const RankTypes& types;
  size_t min_stages, max_stages, min_replicas, max_replicas;
  double max_plans;
  std::vector<std::vector<std::vector<char>>> fits;  // [rank][first][end]: the blocks fit it
  std::vector<char> used;
  std::vector<Stage> cur, best_stages;
  std::tuple<double, size_t, size_t, double> best{kInf, 0, 0, 0};
  double plans = 0;

  void go(size_t i) {
    if (cur.size() == max_stages) return;
    for (size_t j = i + 1; j <= m.num_blocks(); ++j) {
      if (j == m.num_blocks()) {
        place(i, j, free_ranks(SIZE_MAX));
        continue;
      }
      for (size_t ty = 0; ty < types.members.size(); ++ty) place(i, j, free_ranks(ty));
    }
  }

  // The unused ranks (of type ty; SIZE_MAX: of any type).
  std::vector<size_t> free_ranks(size_t ty) const {
    std::vector<size_t> out;
    for (size_t r = 1; r < c.num_ranks(); ++r)
      if (!used[r] && (ty == SIZE_MAX || types.type_of_rank[r] == ty)) out.push_back(r);
    return out;
  }

  // Every subset of `pool` as the replicas of stage [i, j).
  void place(size_t i, size_t j, const std::vector<size_t>& pool) {
    for (size_t mask = 1; mask < (size_t{1} << pool.size()); ++mask) {
      std::vector<size_t> ranks;
      bool fit = true;
      for (size_t x = 0; x < pool.size(); ++x)
        if (mask >> x & 1) {
          ranks.push_back(pool[x]);
          fit = fit && fits[pool[x]][i][j];
        }
      if (!fit || ranks.size() < min_replicas || ranks.size() > max_replicas) continue;
      Stage s{ranks.front(), i, j};
      if (ranks.size() > 1) s.ranks = ranks;
      for (size_t r : ranks) used[r] = 1;
      cur.push_back(s);
      if (j == m.num_blocks())
        cost();
      else
        go(j);
      cur.pop_back();
      for (size_t r : ranks) used[r] = 0;
    }
  }

  void cost() {
    EP_CHECK(++plans <= max_plans, "brute force with replicas: more than ", max_plans,
             " plans (limit)");
    if (cur.size() < min_stages) return;
    const PlanCost pc = evaluate_plan(m, c, cur);
    if (!pc.fits) return;
    size_t ranks = 0;
    for (const Stage& s : cur) ranks += s.replicas().size();
    const auto key = std::make_tuple(pc.period_s, cur.size(), ranks, pc.link_bytes);
    if (key < best) {
      best = key;
      best_stages = cur;
    }
  }
};

// fits[r][i][j]: blocks [i, j) fit rank r's memory.
std::vector<std::vector<std::vector<char>>> fit_table(const ModelCosts& m, const Cluster& c) {
  const size_t n = m.num_blocks();
  std::vector<std::vector<std::vector<char>>> fits(
      c.num_ranks(), std::vector<std::vector<char>>(n + 1, std::vector<char>(n + 1, 0)));
  for (size_t r = 1; r < c.num_ranks(); ++r)
    for (size_t i = 0; i < n; ++i) {
      double params = 0, act = 0;
      for (size_t j = i + 1; j <= n; ++j) {
        params += m.blocks[j - 1].param_bytes;
        act = std::max(act, m.blocks[j - 1].act_bytes);
        fits[r][i][j] = params + act <= c.ranks[r].memory_bytes;
      }
    }
  return fits;
}

}  // namespace

Plan plan_brute_force_replicated(const ModelCosts& m, const Cluster& c, const PlanOptions& o,
                                 double max_plans) {
  validate_problem(m, c);
  const size_t R = c.num_stage_ranks();
  EP_CHECK(R <= 16, "brute force with replicas: at most 16 stage ranks, not ", R);
  const RankTypes types = group_ranks(m, c, o.group_tolerance);
  ReplicaSearch search{m,
                       c,
                       types,
                       std::max<size_t>(o.min_stages, 1),
                       o.max_stages == 0 ? R : o.max_stages,
                       std::max<size_t>(o.min_replicas, 1),
                       o.max_replicas == 0 ? R : o.max_replicas,
                       max_plans,
                       fit_table(m, c),
                       std::vector<char>(R + 1, 0),
                       {},
                       {},
                       {kInf, 0, 0, 0},
                       0};
  search.go(0);
  return finish("brute-force", m, c, search.best_stages,
                search.best_stages.empty() ? "no plan with replicas fits in memory" : "");
}

}  // namespace edgepipe
