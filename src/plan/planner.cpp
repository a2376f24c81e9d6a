#include <algorithm>

#include "edgepipe/base/error.h"
#include "planner_common.h"
#include "stage_rule.h"

namespace edgepipe {

size_t stage_limit(const ModelCosts& m, const Cluster& c, const PlanOptions& o) {
  size_t k = std::min(m.num_blocks(), c.num_stage_ranks());
  if (o.max_stages > 0) k = std::min(k, o.max_stages);
  return k;
}

std::pair<size_t, size_t> stage_range(const ModelCosts& m, const Cluster& c, const PlanOptions& o) {
  const size_t most = stage_limit(m, c, o), least = std::max<size_t>(o.min_stages, 1);
  EP_CHECK(o.max_stages == 0 || least <= o.max_stages, "at least ", least,
           " stages asked for (PlanOptions::min_stages) but at most ", o.max_stages,
           " (max_stages): no plan can have both");
  EP_CHECK(least <= c.num_stage_ranks(), "at least ", least,
           " stages asked for (PlanOptions::min_stages) but the cluster has only ",
           c.num_stage_ranks(), " stage ranks (one stage per rank)");
  EP_CHECK(least <= m.num_blocks(), "at least ", least,
           " stages asked for (PlanOptions::min_stages) but the model has only ", m.num_blocks(),
           " blocks (a stage needs one)");
  return {least, most};
}

Plan finish(const std::string& method, const ModelCosts& m, const Cluster& c,
            std::vector<Stage> stages, std::string note) {
  Plan p;
  p.method = method;
  p.note = std::move(note);
  if (!stages.empty()) {
    p.cost = evaluate_plan(m, c, stages);
    p.stages = std::move(stages);
  }
  return p;
}

size_t Plan::ranks_used() const {
  size_t ranks = 0;
  for (const Stage& s : stages) ranks += s.ranks.empty() ? 1 : s.ranks.size();
  return ranks;
}

double Plan::period_s() const { return found() && cost.fits ? cost.period_s : kInf; }

}  // namespace edgepipe
