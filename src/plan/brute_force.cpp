#include "edgepipe/plan/brute_force.h"

#include <algorithm>
#include <string>
#include <vector>

#include "edgepipe/base/error.h"
#include "planner_common.h"
#include "stage_rule.h"

namespace edgepipe {

namespace {

// Every placement, recursively, pruning only stages that already do not fit in memory. The
// period is computed per rank (no types), independently of the exact planner's tables.
struct Search {
  const ModelCosts& m;
  const Cluster& c;
  const StageRule& rule;
  size_t n, R, min_stages;
  std::vector<char> used;
  std::vector<Stage> cur, best_stages;
  double best = kInf;

  // Blocks [0, i) are placed, the last stage on rank prev; so_far = max of the terms so far.
  void go(size_t i, size_t prev, double so_far) {
    if (i == n) {
      finish_plan(prev, so_far);
      return;
    }
    for (size_t r = 1; r <= R; ++r)
      if (!used[r]) place(i, prev, r, so_far);
  }

  void finish_plan(size_t prev, double so_far) {
    if (cur.size() < min_stages) return;
    const double total = std::max(so_far, c.link(prev, 0).time_s(m.cut_bytes[n]));
    if (total < best) {
      best = total;
      best_stages = cur;
    }
  }

  // Every stage [i, j) on rank r.
  void place(size_t i, size_t prev, size_t r, double so_far) {
    const double recv = c.link(prev, r).time_s(m.cut_bytes[i]);
    double work = rule.start(i), params = 0, act = 0;
    for (size_t j = i + 1; j <= n; ++j) {
      work += block_s(m, c.ranks[r], j - 1);
      params += m.blocks[j - 1].param_bytes;
      act = std::max(act, m.blocks[j - 1].act_bytes);
      if (params + act > c.ranks[r].memory_bytes) break;  // longer stages do not fit either
      used[r] = 1;
      cur.push_back({r, i, j});
      go(j, r, std::max({so_far, recv, rule.term(work, i, j)}));
      cur.pop_back();
      used[r] = 0;
    }
  }
};

}  // namespace

double brute_force_plan_count(size_t n, size_t R) {
  double plans = 0, cuts = 1, places = 1;
  for (size_t k = 1; k <= std::min(n, R); ++k) {
    if (k > 1) cuts = cuts * static_cast<double>(n - k + 1) / static_cast<double>(k - 1);
    places *= static_cast<double>(R - k + 1);
    plans += cuts * places;
  }
  return plans;
}

Plan plan_brute_force(const ModelCosts& m, const Cluster& c, double max_plans, size_t min_stages) {
  validate_problem(m, c);
  const size_t n = m.num_blocks(), R = c.num_stage_ranks();
  const double plans = brute_force_plan_count(n, R);
  EP_CHECK(plans <= max_plans, "brute force: ", plans, " plans are too many (limit ", max_plans,
           ")");
  const StageRule rule(m);
  Search search{m, c, rule, n, R, min_stages, std::vector<char>(R + 1, 0), {}, {}, kInf};
  search.go(0, 0, dispatcher_s(m));
  return finish("brute-force", m, c, search.best_stages,
                search.best_stages.empty()
                    ? (min_stages > 1 ? "no plan of at least " + std::to_string(min_stages) +
                                            " stages fits in memory"
                                      : "no plan fits in memory")
                    : "");
}

}  // namespace edgepipe
